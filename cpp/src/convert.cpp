// Dense counts of any numeric type -> CSR working format, validated on the way.
//
// Two passes, each reading the input once at memory speed: the scan counts the
// nonzeros of each row and validates the values (vectorised count and range
// reductions), the fill copies the nonzeros. Two variants of both, giving the
// same CSR bit for bit:
// - portable (this file): the fill walks a bit mask of the nonzeros of each run
//   of 64 values (SSE2 compare + movemask on x86-64), one iteration per nonzero.
//   Fortran-ordered input is read column by column over blocks of rows: each
//   column segment is a contiguous run of a few KiB, so the reads stream.
// - AVX2 (convert_avx2.hpp), chosen at run time when the CPU has it: a
//   branch-free left-pack fill, and for Fortran order a transpose of each block
//   of rows into a small per-thread scratch (never the whole matrix). 1- and
//   2-byte counts are filled by AVX-512 (convert_avx512.hpp) where the CPU has
//   it, for either order.
#include "psnmf/convert.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "cpu_features.hpp"
#include "nonzero_mask.hpp"
#include "parallel.hpp"
#if PSNMF_HAVE_AVX2_KERNELS
#include "convert_avx2.hpp"
#endif
#if PSNMF_HAVE_AVX512_KERNELS
#include "convert_avx512.hpp"
#endif

namespace psnmf {

namespace {

using detail::exact_maximum;
using detail::kExactMaximumFrom;
using detail::kMaskWidth;
using detail::lowest_bit;
using detail::maximum_as_double;
using detail::nonzero_mask;
using detail::ValueRange;

// Values per span of the row-major scan: the count and the range reductions
// read the same span, the second time from L1.
constexpr std::int64_t kSpan = 2048;
// Column-major passes work on blocks of rows. Scan: a column's segment of a
// block is 2 KiB, long enough for the hardware prefetcher to stream it, and the
// block's counters stay in L1. Fill: 256 rows, so that the block's write
// cursors and the output lines they point to stay in L1. Multiples of kMaskWidth.
constexpr std::int64_t kScanBlockBytes = 2048;
constexpr std::int64_t kFillBlockRows = 256;

void check_shape(std::int64_t n_rows, std::int64_t n_cols) {
  if (n_rows <= 0 || n_cols <= 0)
    throw std::invalid_argument("counts: empty matrix");
  if (n_cols > INT32_MAX)
    throw std::invalid_argument("counts: too many columns for CSR");
}

// Unsigned lane of In's width: counting in it lets the compiler vectorise the
// nonzero count without widening; spans stay below the lane's maximum.
template <class In>
using Lane = std::conditional_t<
    sizeof(In) == 1, std::uint8_t,
    std::conditional_t<sizeof(In) == 2, std::uint16_t,
                       std::conditional_t<sizeof(In) == 4, std::uint32_t, std::uint64_t>>>;

template <class In> std::int64_t count_nonzero(const In *p, std::int64_t n) {
  constexpr std::int64_t lane_max = sizeof(In) == 1 ? 255 : kSpan;
  std::int64_t count = 0;
  for (std::int64_t j0 = 0; j0 < n; j0 += lane_max) {
    const std::int64_t j1 = std::min(n, j0 + lane_max);
    Lane<In> partial = 0;
    for (std::int64_t j = j0; j < j1; ++j)
      partial += p[j] != In(0);
    count += partial;
  }
  return count;
}

// Nonzeros of one contiguous row; its values enter the thread's range.
template <class In>
std::int64_t scan_row(const In *row, std::int64_t n_cols, ValueRange<In> &range) {
  std::int64_t count = 0;
  for (std::int64_t j0 = 0; j0 < n_cols; j0 += kSpan) {
    const std::int64_t n = std::min(kSpan, n_cols - j0);
    count += count_nonzero(row + j0, n);
    range.add(row + j0, n);
  }
  return count;
}

// Contiguous chunks of rows for the row-major passes: a few per thread, each
// handled by one thread from start to end (the AVX2 fill needs the chunk's end
// as the limit of its stores).
struct RowChunks {
  std::int64_t n_rows, n_chunks;
  RowChunks(std::int64_t rows, int threads)
      : n_rows(rows), n_chunks(std::min<std::int64_t>(rows, 4 * std::int64_t(threads))) {}
  std::int64_t begin(std::int64_t c) const { return c * n_rows / n_chunks; }
  std::int64_t end(std::int64_t c) const { return (c + 1) * n_rows / n_chunks; }
};

template <class In>
void scan_rows(const In *dense, std::int64_t n_rows, std::int64_t n_cols, std::int64_t *counts,
               int threads, ValueRange<In> *ranges) {
  const RowChunks chunks(n_rows, threads);
  [[maybe_unused]] const bool avx2 = detail::use_avx2_kernels();
#pragma omp parallel num_threads(threads)
  {
    ValueRange<In> range;
#pragma omp for schedule(static)
    for (std::int64_t c = 0; c < chunks.n_chunks; ++c) {
#if PSNMF_HAVE_AVX2_KERNELS
      if (avx2) {
        detail::avx2::scan_rows(dense, chunks.begin(c), chunks.end(c), n_cols, counts, range);
        continue;
      }
#endif
      for (std::int64_t i = chunks.begin(c); i < chunks.end(c); ++i)
        counts[i] = scan_row(dense + i * n_cols, n_cols, range);
    }
    ranges[detail::thread_index()] = range;
  }
}

// Column-major scan: per-row counters in In-wide lanes (added to vertically, so
// the compiler vectorises them like the row-major count), flushed to int64
// before they can overflow.
template <class In>
void scan_columns(const In *dense, std::int64_t n_rows, std::int64_t n_cols, std::int64_t *counts,
                  int threads, ValueRange<In> *ranges) {
  constexpr std::int64_t block = kScanBlockBytes / sizeof(In);
  constexpr std::int64_t flush_every = sizeof(In) == 1 ? 255 : kSpan; // below the lane's maximum
  const std::int64_t n_blocks = (n_rows + block - 1) / block;
#pragma omp parallel num_threads(threads)
  {
    ValueRange<In> range;
    std::vector<Lane<In>> lanes(block);
#pragma omp for schedule(static)
    for (std::int64_t b = 0; b < n_blocks; ++b) {
      const std::int64_t r0 = b * block;
      const std::int64_t rows = std::min(block, n_rows - r0);
      std::int64_t *c = counts + r0;
      std::fill(c, c + rows, 0);
      Lane<In> *lane = lanes.data();
      for (std::int64_t j0 = 0; j0 < n_cols; j0 += flush_every) {
        const std::int64_t j1 = std::min(n_cols, j0 + flush_every);
        std::fill(lane, lane + rows, Lane<In>(0));
        for (std::int64_t j = j0; j < j1; ++j) {
          const In *col = dense + j * n_rows + r0;
          for (std::int64_t i = 0; i < rows; ++i)
            lane[i] += col[i] != In(0);
          range.add(col, rows);
        }
        for (std::int64_t i = 0; i < rows; ++i)
          c[i] += lane[i];
      }
    }
    ranges[detail::thread_index()] = range;
  }
}

// Copy the nonzeros of one contiguous row to indices/values from position p:
// one iteration per set bit of each 64-value mask.
template <class In, class Value>
void fill_row(const In *row, std::int64_t n_cols, std::int64_t p, std::int32_t *indices,
              Value *values) {
  std::int64_t j = 0;
  for (; j + kMaskWidth <= n_cols; j += kMaskWidth) {
    for (std::uint64_t mask = nonzero_mask(row + j); mask; mask &= mask - 1) {
      const std::int64_t col = j + lowest_bit(mask);
      indices[p] = static_cast<std::int32_t>(col);
      values[p] = static_cast<Value>(row[col]);
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

// Column-major fill: columns in ascending order, so each row's entries come out
// sorted; a write cursor per row of the block.
template <class In, class Value>
void fill_columns(const In *dense, std::int64_t n_rows, std::int64_t n_cols,
                  const std::int64_t *indptr, std::int32_t *indices, Value *values, int threads) {
  constexpr std::int64_t block = kFillBlockRows;
  const std::int64_t n_blocks = (n_rows + block - 1) / block;
#pragma omp parallel num_threads(threads)
  {
    std::vector<std::int64_t> cursor(block);
#pragma omp for schedule(static)
    for (std::int64_t b = 0; b < n_blocks; ++b) {
      const std::int64_t r0 = b * block;
      const std::int64_t rows = std::min(block, n_rows - r0);
      const std::int64_t full = rows - rows % kMaskWidth;
      std::copy(indptr + r0, indptr + r0 + rows, cursor.begin());
      std::int64_t *at = cursor.data();
      for (std::int64_t j = 0; j < n_cols; ++j) {
        const In *col = dense + j * n_rows + r0;
        const auto index = static_cast<std::int32_t>(j);
        for (std::int64_t i0 = 0; i0 < full; i0 += kMaskWidth) {
          for (std::uint64_t mask = nonzero_mask(col + i0); mask; mask &= mask - 1) {
            const std::int64_t i = i0 + lowest_bit(mask);
            const std::int64_t p = at[i]++;
            indices[p] = index;
            values[p] = static_cast<Value>(col[i]);
          }
        }
        for (std::int64_t i = full; i < rows; ++i) {
          const In v = col[i];
          if (v != In(0)) {
            const std::int64_t p = at[i]++;
            indices[p] = index;
            values[p] = static_cast<Value>(v);
          }
        }
      }
    }
  }
}

#if PSNMF_HAVE_AVX2_KERNELS
// Column-major passes with the AVX2 kernels: blocks of rows, chunks of whole blocks, a few per
// thread. The fill transposes each block into a per-thread scratch (block x n_cols) and fills from
// there.
template <class In>
void scan_columns_avx2(const In *dense, std::int64_t n_rows, std::int64_t n_cols,
                       std::int64_t *counts, int threads, ValueRange<In> *ranges) {
  const std::int64_t block = detail::avx2::scan_block_rows<In>(n_rows, threads);
  const std::int64_t n_blocks = (n_rows + block - 1) / block;
#pragma omp parallel num_threads(threads)
  {
    ValueRange<In> range;
    std::vector<detail::avx2::Counter<In>> zeros(static_cast<std::size_t>(block));
#pragma omp for schedule(static)
    for (std::int64_t b = 0; b < n_blocks; ++b) {
      const std::int64_t r0 = b * block;
      detail::avx2::scan_columns(dense, n_rows, n_cols, r0, std::min(block, n_rows - r0),
                                 counts + r0, zeros.data(), range);
    }
    ranges[detail::thread_index()] = range;
  }
}

template <class In, class Value, class Fill>
void fill_columns_avx2(const In *dense, std::int64_t n_rows, std::int64_t n_cols,
                       const std::int64_t *indptr, std::int32_t *indices, Value *values,
                       int threads, Fill fill) {
  const std::int64_t block = detail::avx2::block_rows<In>(n_rows, n_cols, threads);
  const RowChunks chunks((n_rows + block - 1) / block, threads);
#pragma omp parallel num_threads(threads)
  {
    std::vector<In> scratch(
        static_cast<std::size_t>(block * detail::avx2::scratch_stride<In>(n_cols)));
#pragma omp for schedule(static)
    for (std::int64_t c = 0; c < chunks.n_chunks; ++c)
      detail::avx2::fill_columns(dense, n_rows, n_cols, block, chunks.begin(c) * block,
                                 std::min(n_rows, chunks.end(c) * block), indptr, indices, values,
                                 scratch.data(), fill);
  }
}
#endif

} // namespace

template <class In>
std::int64_t csr_row_offsets(const In *dense, std::int64_t n_rows, std::int64_t n_cols,
                             std::int64_t *indptr, int n_threads, DenseOrder order,
                             double *max_value) {
  check_shape(n_rows, n_cols);
  if (!dense || !indptr)
    throw std::invalid_argument("counts: null buffer");
  const int threads = detail::resolve_threads(n_threads);
  std::vector<ValueRange<In>> ranges(static_cast<std::size_t>(threads));
  // Row counts go to indptr[1..n_rows], then become offsets by a prefix sum.
  if (order == DenseOrder::row_major)
    scan_rows(dense, n_rows, n_cols, indptr + 1, threads, ranges.data());
#if PSNMF_HAVE_AVX2_KERNELS
  else if (detail::use_avx2_kernels())
    scan_columns_avx2(dense, n_rows, n_cols, indptr + 1, threads, ranges.data());
#endif
  else
    scan_columns(dense, n_rows, n_cols, indptr + 1, threads, ranges.data());
  ValueRange<In> range;
  for (const auto &r : ranges)
    range.merge(r);
  if (!range.valid())
    throw std::invalid_argument("counts: values must be finite and non-negative");
  indptr[0] = 0;
  for (std::int64_t i = 0; i < n_rows; ++i)
    indptr[i + 1] += indptr[i];
  if (max_value) {
    In high = In(0);
    if constexpr (std::is_floating_point_v<In>)
      high = range.high;
    else if constexpr (ValueRange<In>::kTracked)
      high = std::uint64_t(range.bound()) >= kExactMaximumFrom
                 ? exact_maximum(dense, n_rows * n_cols, threads)
                 : In(range.bound()); // below 2**24: only "small" matters to the caller
    *max_value = maximum_as_double(high);
  }
  return indptr[n_rows];
}

template <class In, class Value>
void fill_csr(const In *dense, std::int64_t n_rows, std::int64_t n_cols, const std::int64_t *indptr,
              std::int32_t *indices, Value *values, int n_threads, DenseOrder order) {
  check_shape(n_rows, n_cols);
  if (!dense || !indptr || (indptr[n_rows] > 0 && (!indices || !values)))
    throw std::invalid_argument("counts: null buffer");
  const int threads = detail::resolve_threads(n_threads);
  [[maybe_unused]] const bool avx2 = detail::use_avx2_kernels();
  [[maybe_unused]] bool avx512 = false;
#if PSNMF_HAVE_AVX512_KERNELS
  if constexpr (detail::avx512::kFills<In>)
    avx512 = detail::use_avx512_fill();
#endif
  if (order == DenseOrder::column_major) {
#if PSNMF_HAVE_AVX512_KERNELS
    if constexpr (detail::avx512::kFills<In>) {
      if (avx512) {
        fill_columns_avx2(dense, n_rows, n_cols, indptr, indices, values, threads,
                          detail::avx512::FillRow{});
        return;
      }
    }
#endif
#if PSNMF_HAVE_AVX2_KERNELS
    if (avx2) {
      fill_columns_avx2(dense, n_rows, n_cols, indptr, indices, values, threads,
                        detail::avx2::FillRow{});
      return;
    }
#endif
    fill_columns(dense, n_rows, n_cols, indptr, indices, values, threads);
    return;
  }
  const RowChunks chunks(n_rows, threads);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::int64_t c = 0; c < chunks.n_chunks; ++c) {
#if PSNMF_HAVE_AVX512_KERNELS
    if constexpr (detail::avx512::kFills<In>) {
      if (avx512) {
        detail::avx512::fill_rows(dense, chunks.begin(c), chunks.end(c), n_cols, indptr, indices,
                                  values);
        continue;
      }
    }
#endif
#if PSNMF_HAVE_AVX2_KERNELS
    if (avx2) {
      detail::avx2::fill_rows(dense, chunks.begin(c), chunks.end(c), n_cols, indptr, indices,
                              values);
      continue;
    }
#endif
    for (std::int64_t i = chunks.begin(c); i < chunks.end(c); ++i)
      fill_row(dense + i * n_cols, n_cols, indptr[i], indices, values);
  }
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
