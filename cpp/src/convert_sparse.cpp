// CSR input of any index and value type -> the working format, in one pass.
//
// scipy's own route (has_canonical_format, then astype of the indices and the
// values, then numpy min/max to validate) reads the arrays four or five times;
// here each row's indices and values are read once: canonical order, index
// range and value range are checked and the converted copies written together.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "nonzero_mask.hpp"
#include "parallel.hpp"
#include "psnmf/convert.hpp"

namespace psnmf {

namespace {

using detail::exact_maximum;
using detail::ValueRange;

// What one thread saw over its rows.
template <class In> struct RowsSeen {
  ValueRange<In> range;
  bool canonical = true;
  bool index_out_of_range = false;
};

template <class Index, class In, class Value>
void convert_row(const Index *indices, const In *data, std::int64_t begin, std::int64_t end,
                 std::int64_t n_cols, std::int32_t *out_indices, Value *out_values,
                 RowsSeen<In> &seen) {
  if (begin == end)
    return;
  // Strictly increasing indices lie within [first, last]: two tests check them all.
  bool increasing = true;
  for (std::int64_t p = begin + 1; p < end; ++p)
    increasing &= indices[p - 1] < indices[p];
  if (!increasing)
    seen.canonical = false;
  else if (indices[begin] < 0 || static_cast<std::int64_t>(indices[end - 1]) >= n_cols)
    seen.index_out_of_range = true;
  if (out_indices)
    for (std::int64_t p = begin; p < end; ++p)
      out_indices[p] = static_cast<std::int32_t>(indices[p]);
  seen.range.add(data + begin, end - begin);
  if (out_values)
    for (std::int64_t p = begin; p < end; ++p)
      out_values[p] = static_cast<Value>(data[p]);
}

} // namespace

template <class Index, class In, class Value>
CsrCheck convert_csr(const Index *indptr, const Index *indices, const In *data, std::int64_t n_rows,
                     std::int64_t n_cols, std::int32_t *out_indices, Value *out_values,
                     int n_threads) {
  if (n_rows <= 0 || n_cols <= 0)
    throw std::invalid_argument("counts: empty matrix");
  if (n_cols > INT32_MAX)
    throw std::invalid_argument("counts: too many columns for CSR");
  if (!indptr)
    throw std::invalid_argument("counts: null buffer");
  const int threads = detail::resolve_threads(n_threads);
  bool ordered = indptr[0] == 0;
  for (std::int64_t i = 0; i < n_rows; ++i)
    ordered &= indptr[i] <= indptr[i + 1];
  if (!ordered)
    throw std::invalid_argument("counts: CSR indptr must start at 0 and be non-decreasing");
  const std::int64_t nnz = indptr[n_rows];
  if (nnz > 0 && (!indices || !data))
    throw std::invalid_argument("counts: null buffer");

  std::vector<RowsSeen<In>> seen(static_cast<std::size_t>(threads));
#pragma omp parallel num_threads(threads)
  {
    RowsSeen<In> mine;
    // Rows in chunks: one row is often too little work to balance on its own.
#pragma omp for schedule(dynamic, 1024)
    for (std::int64_t i = 0; i < n_rows; ++i)
      convert_row(indices, data, std::int64_t(indptr[i]), std::int64_t(indptr[i + 1]), n_cols,
                  out_indices, out_values, mine);
    RowsSeen<In> &slot = seen[detail::thread_index()];
    slot = mine;
  }
  CsrCheck check;
  ValueRange<In> range;
  bool out_of_range = false;
  for (const auto &s : seen) {
    range.merge(s.range);
    check.canonical = check.canonical && s.canonical;
    out_of_range = out_of_range || s.index_out_of_range;
  }
  if (!range.valid())
    throw std::invalid_argument("counts: values must be finite and non-negative");
  if (out_of_range)
    throw std::invalid_argument("counts: CSR column index out of range [0, n_cols)");
  In high = In(0);
  if constexpr (std::is_floating_point_v<In>)
    high = range.high;
  else if constexpr (ValueRange<In>::kTracked)
    high = std::uint64_t(range.bound()) >= detail::kExactMaximumFrom
               ? exact_maximum(data, nnz, threads)
               : In(range.bound());
  check.max_value = detail::maximum_as_double(high);
  return check;
}

#define PSNMF_CONVERT_CSR(INDEX, IN)                                                               \
  template CsrCheck convert_csr<INDEX, IN, float>(const INDEX *, const INDEX *, const IN *,        \
                                                  std::int64_t, std::int64_t, std::int32_t *,      \
                                                  float *, int);                                   \
  template CsrCheck convert_csr<INDEX, IN, double>(const INDEX *, const INDEX *, const IN *,       \
                                                   std::int64_t, std::int64_t, std::int32_t *,     \
                                                   double *, int);
#define PSNMF_CONVERT_CSR_INDEX(IN)                                                                \
  PSNMF_CONVERT_CSR(std::int32_t, IN)                                                              \
  PSNMF_CONVERT_CSR(std::int64_t, IN)
PSNMF_CONVERT_CSR_INDEX(std::uint8_t)
PSNMF_CONVERT_CSR_INDEX(std::uint16_t)
PSNMF_CONVERT_CSR_INDEX(std::uint32_t)
PSNMF_CONVERT_CSR_INDEX(std::int32_t)
PSNMF_CONVERT_CSR_INDEX(std::int64_t)
PSNMF_CONVERT_CSR_INDEX(float)
PSNMF_CONVERT_CSR_INDEX(double)
#undef PSNMF_CONVERT_CSR_INDEX
#undef PSNMF_CONVERT_CSR

} // namespace psnmf
