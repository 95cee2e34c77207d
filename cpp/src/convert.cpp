// Dense counts of any numeric type -> CSR working format, validated on the way.
//
// Both passes stream the input once at memory speed: the scan is branch-free
// (count, min, max reductions the compiler vectorises) and the fill walks a bit
// mask of the nonzeros of each group of columns. Fortran-ordered
// input is read column by column over blocks of rows, so it needs no transposed
// copy.
#include "psnmf/convert.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "parallel.hpp"

namespace psnmf {

namespace {

// Rows per block of the column-major passes: the block's row counters or write
// cursors (and the output lines they point to) stay in cache.
constexpr std::int64_t kColumnMajorBlock = 2048;
// Columns per nonzero bit mask in the row-major fill.
constexpr int kGroup = 64;

// Running validation and maximum over the values seen by one thread.
template <class In> struct Range {
  In low = In(0), high = In(0);
  bool not_a_number = false;

  void add(In v) {
    low = std::min(low, v);
    high = std::max(high, v);
  }
  bool valid() const {
    if constexpr (std::is_floating_point_v<In>)
      return !not_a_number && low >= 0 && high <= std::numeric_limits<In>::max();
    else
      return low >= 0;
  }
};

template <class In> void check_shape(std::int64_t n_rows, std::int64_t n_cols) {
  if (n_rows <= 0 || n_cols <= 0)
    throw std::invalid_argument("counts: empty matrix");
  if (n_cols > INT32_MAX)
    throw std::invalid_argument("counts: too many columns for CSR");
}

// Unsigned lane of In's width: counting in it lets the compiler vectorise the
// nonzero count without widening; blocks stay below the lane's maximum.
template <class In>
using Lane = std::conditional_t<
    sizeof(In) == 1, std::uint8_t,
    std::conditional_t<sizeof(In) == 2, std::uint16_t,
                       std::conditional_t<sizeof(In) == 4, std::uint32_t, std::uint64_t>>>;

// Values that need no range check: unsigned up to 16 bits (float32 holds them exactly).
template <class In> constexpr bool kNoRange = std::is_unsigned_v<In> && sizeof(In) <= 2;

// Nonzeros of one contiguous row, with its value range.
template <class In> std::int64_t scan_row(const In *row, std::int64_t n_cols, Range<In> &range) {
  constexpr std::int64_t block =
      sizeof(In) <= 2 ? std::int64_t(std::numeric_limits<Lane<In>>::max()) : std::int64_t(1) << 30;
  std::int64_t count = 0;
  for (std::int64_t j0 = 0; j0 < n_cols; j0 += block) {
    const std::int64_t j1 = std::min(n_cols, j0 + block);
    Lane<In> partial = 0;
    for (std::int64_t j = j0; j < j1; ++j)
      partial += row[j] != In(0);
    count += partial;
  }
  if constexpr (!kNoRange<In>) {
    In low = range.low, high = range.high;
    bool nan = false;
    for (std::int64_t j = 0; j < n_cols; ++j) {
      const In v = row[j];
      low = std::min(low, v);
      high = std::max(high, v);
      if constexpr (std::is_floating_point_v<In>)
        nan |= v != v;
    }
    range.low = low;
    range.high = high;
    range.not_a_number |= nan;
  }
  return count;
}

template <class In>
void scan_rows(const In *dense, std::int64_t n_rows, std::int64_t n_cols, std::int64_t *counts,
               int threads, Range<In> *ranges) {
#pragma omp parallel num_threads(threads)
  {
#ifdef _OPENMP
    Range<In> &range = ranges[omp_get_thread_num()];
#else
    Range<In> &range = ranges[0];
#endif
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < n_rows; ++i)
      counts[i] = scan_row(dense + i * n_cols, n_cols, range);
  }
}

template <class In>
void scan_columns(const In *dense, std::int64_t n_rows, std::int64_t n_cols, std::int64_t *counts,
                  int threads, Range<In> *ranges) {
  const std::int64_t n_blocks = (n_rows + kColumnMajorBlock - 1) / kColumnMajorBlock;
#pragma omp parallel num_threads(threads)
  {
#ifdef _OPENMP
    Range<In> &range = ranges[omp_get_thread_num()];
#else
    Range<In> &range = ranges[0];
#endif
    std::vector<std::int32_t> block_counts(kColumnMajorBlock);
#pragma omp for schedule(static)
    for (std::int64_t b = 0; b < n_blocks; ++b) {
      const std::int64_t r0 = b * kColumnMajorBlock;
      const std::int64_t rows = std::min(kColumnMajorBlock, n_rows - r0);
      std::fill(block_counts.begin(), block_counts.end(), 0);
      std::int32_t *c = block_counts.data();
      In low = range.low, high = range.high;
      bool nan = false;
      for (std::int64_t j = 0; j < n_cols; ++j) {
        const In *col = dense + j * n_rows + r0;
        for (std::int64_t i = 0; i < rows; ++i) {
          const In v = col[i];
          c[i] += v != In(0);
          if constexpr (!kNoRange<In>) {
            low = std::min(low, v);
            high = std::max(high, v);
          }
          if constexpr (std::is_floating_point_v<In>)
            nan |= v != v;
        }
      }
      range.low = low;
      range.high = high;
      range.not_a_number |= nan;
      for (std::int64_t i = 0; i < rows; ++i)
        counts[r0 + i] = c[i];
    }
  }
}

// Index of the lowest set bit of a nonzero mask.
inline int lowest_bit(std::uint64_t mask) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(mask);
#else
  int bit = 0;
  while (!(mask & 1)) {
    mask >>= 1;
    ++bit;
  }
  return bit;
#endif
}

// Copy the nonzeros of one contiguous row to indices/values from position p.
// Groups of 64 columns: a bit mask of the nonzeros (built without branches),
// then one iteration per set bit, so the only unpredictable branch is the end
// of each group rather than one per value.
template <class In, class Value>
void fill_row(const In *row, std::int64_t n_cols, std::int64_t p, std::int32_t *indices,
              Value *values) {
  std::int64_t j = 0;
  for (; j + kGroup <= n_cols; j += kGroup) {
    std::uint64_t mask = 0;
    for (int g = 0; g < kGroup; ++g)
      mask |= std::uint64_t(row[j + g] != In(0)) << g;
    while (mask) {
      const int g = lowest_bit(mask);
      mask &= mask - 1;
      indices[p] = static_cast<std::int32_t>(j + g);
      values[p] = static_cast<Value>(row[j + g]);
      ++p;
    }
  }
  for (; j < n_cols; ++j) {
    const In v = row[j];
    if (v != In(0)) {
      indices[p] = static_cast<std::int32_t>(j);
      values[p] = static_cast<Value>(v);
      ++p;
    }
  }
}

template <class In, class Value>
void fill_columns(const In *dense, std::int64_t n_rows, std::int64_t n_cols,
                  const std::int64_t *indptr, std::int32_t *indices, Value *values, int threads) {
  const std::int64_t n_blocks = (n_rows + kColumnMajorBlock - 1) / kColumnMajorBlock;
#pragma omp parallel num_threads(threads)
  {
    std::vector<std::int64_t> cursor(kColumnMajorBlock);
#pragma omp for schedule(static)
    for (std::int64_t b = 0; b < n_blocks; ++b) {
      const std::int64_t r0 = b * kColumnMajorBlock;
      const std::int64_t rows = std::min(kColumnMajorBlock, n_rows - r0);
      std::copy(indptr + r0, indptr + r0 + rows, cursor.begin());
      for (std::int64_t j = 0; j < n_cols; ++j) {
        const In *col = dense + j * n_rows + r0;
        for (std::int64_t i = 0; i < rows; ++i) {
          const In v = col[i];
          if (v != In(0)) {
            const std::int64_t p = cursor[i]++;
            indices[p] = static_cast<std::int32_t>(j);
            values[p] = static_cast<Value>(v);
          }
        }
      }
    }
  }
}

} // namespace

template <class In>
std::int64_t csr_row_offsets(const In *dense, std::int64_t n_rows, std::int64_t n_cols,
                             std::int64_t *indptr, int n_threads, DenseOrder order,
                             double *max_value) {
  check_shape<In>(n_rows, n_cols);
  if (!dense || !indptr)
    throw std::invalid_argument("counts: null buffer");
  const int threads = detail::resolve_threads(n_threads);
  std::vector<Range<In>> ranges(static_cast<std::size_t>(threads));
  // Row counts go to indptr[1..n_rows], then become offsets by a prefix sum.
  if (order == DenseOrder::row_major)
    scan_rows(dense, n_rows, n_cols, indptr + 1, threads, ranges.data());
  else
    scan_columns(dense, n_rows, n_cols, indptr + 1, threads, ranges.data());
  In high = In(0);
  for (const auto &range : ranges) {
    if (!range.valid())
      throw std::invalid_argument("counts: values must be finite and non-negative");
    high = std::max(high, range.high);
  }
  indptr[0] = 0;
  for (std::int64_t i = 0; i < n_rows; ++i)
    indptr[i + 1] += indptr[i];
  if (max_value)
    *max_value = static_cast<double>(high);
  return indptr[n_rows];
}

template <class In, class Value>
void fill_csr(const In *dense, std::int64_t n_rows, std::int64_t n_cols, const std::int64_t *indptr,
              std::int32_t *indices, Value *values, int n_threads, DenseOrder order) {
  check_shape<In>(n_rows, n_cols);
  if (!dense || !indptr || (indptr[n_rows] > 0 && (!indices || !values)))
    throw std::invalid_argument("counts: null buffer");
  const int threads = detail::resolve_threads(n_threads);
  if (order == DenseOrder::column_major) {
    fill_columns(dense, n_rows, n_cols, indptr, indices, values, threads);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::int64_t i = 0; i < n_rows; ++i)
    fill_row(dense + i * n_cols, n_cols, indptr[i], indices, values);
}

#define PSNMF_CONVERT(IN)                                                                          \
  template std::int64_t csr_row_offsets<IN>(const IN *, std::int64_t, std::int64_t,                \
                                            std::int64_t *, int, DenseOrder, double *);            \
  template void fill_csr<IN, float>(const IN *, std::int64_t, std::int64_t, const std::int64_t *,  \
                                    std::int32_t *, float *, int, DenseOrder);                     \
  template void fill_csr<IN, double>(const IN *, std::int64_t, std::int64_t, const std::int64_t *, \
                                     std::int32_t *, double *, int, DenseOrder);
PSNMF_CONVERT(std::uint8_t)
PSNMF_CONVERT(std::uint16_t)
PSNMF_CONVERT(std::uint32_t)
PSNMF_CONVERT(std::int32_t)
PSNMF_CONVERT(std::int64_t)
PSNMF_CONVERT(float)
PSNMF_CONVERT(double)
#undef PSNMF_CONVERT

} // namespace psnmf
