// Dense counts of any numeric type -> CSR working format, validated on the way.
#include "psnmf/convert.hpp"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "parallel.hpp"

namespace psnmf {

template <class In>
std::int64_t csr_row_offsets(const In *dense, std::int64_t n_rows, std::int64_t n_cols,
                             std::int64_t *indptr, int n_threads) {
  if (n_rows <= 0 || n_cols <= 0)
    throw std::invalid_argument("counts: empty matrix");
  if (n_cols > INT32_MAX)
    throw std::invalid_argument("counts: too many columns for CSR");
  if (!dense || !indptr)
    throw std::invalid_argument("counts: null buffer");
  const int threads = detail::resolve_threads(n_threads);
  bool bad = false;
#pragma omp parallel for schedule(static) num_threads(threads) reduction(|| : bad)
  for (std::int64_t i = 0; i < n_rows; ++i) {
    const In *row = dense + i * n_cols;
    std::int64_t count = 0;
    for (std::int64_t j = 0; j < n_cols; ++j) {
      if constexpr (std::is_floating_point_v<In>) {
        bad = bad || !(row[j] >= 0) || !std::isfinite(row[j]);
      } else if constexpr (std::is_signed_v<In>) {
        bad = bad || row[j] < 0;
      }
      count += row[j] != 0;
    }
    indptr[i + 1] = count;
  }
  if (bad)
    throw std::invalid_argument("counts: values must be finite and non-negative");
  indptr[0] = 0;
  for (std::int64_t i = 0; i < n_rows; ++i)
    indptr[i + 1] += indptr[i];
  return indptr[n_rows];
}

template <class In, class Value>
void fill_csr(const In *dense, std::int64_t n_rows, std::int64_t n_cols, const std::int64_t *indptr,
              std::int32_t *indices, Value *values, int n_threads) {
  if (n_rows <= 0 || n_cols <= 0 || n_cols > INT32_MAX)
    throw std::invalid_argument("counts: empty matrix or too many columns");
  if (!dense || !indptr || (indptr[n_rows] > 0 && (!indices || !values)))
    throw std::invalid_argument("counts: null buffer");
  const int threads = detail::resolve_threads(n_threads);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::int64_t i = 0; i < n_rows; ++i) {
    const In *row = dense + i * n_cols;
    std::int64_t p = indptr[i];
    for (std::int64_t j = 0; j < n_cols; ++j) {
      if (row[j] != 0) {
        indices[p] = static_cast<std::int32_t>(j);
        values[p] = static_cast<Value>(row[j]);
        ++p;
      }
    }
  }
}

#define PSNMF_CONVERT(IN)                                                                          \
  template std::int64_t csr_row_offsets<IN>(const IN *, std::int64_t, std::int64_t,                \
                                            std::int64_t *, int);                                  \
  template void fill_csr<IN, float>(const IN *, std::int64_t, std::int64_t, const std::int64_t *,  \
                                    std::int32_t *, float *, int);                                 \
  template void fill_csr<IN, double>(const IN *, std::int64_t, std::int64_t, const std::int64_t *, \
                                     std::int32_t *, double *, int);
PSNMF_CONVERT(std::uint8_t)
PSNMF_CONVERT(std::uint16_t)
PSNMF_CONVERT(std::uint32_t)
PSNMF_CONVERT(std::int32_t)
PSNMF_CONVERT(std::int64_t)
PSNMF_CONVERT(float)
PSNMF_CONVERT(double)
#undef PSNMF_CONVERT

} // namespace psnmf
