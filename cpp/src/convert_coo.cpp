// COO input whose rows are sorted -> CSR row offsets, without scipy's sort.
//
// scipy's coo -> csr conversion counts the rows, scatters every entry to its
// row's place and then checks the result, each a pass of its own over all
// arrays. A COO matrix whose entries are already in row order (as tocoo() and
// coo_matrix(dense) give them) is a CSR matrix once its row offsets are known:
// one pass over the row indices checks their order, a second writes the
// offsets where the row changes. The columns and values are then used as they
// are (convert_csr validates and converts them). Other COO input is left to
// scipy.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "parallel.hpp"
#include "psnmf/convert.hpp"

namespace psnmf {

namespace {

// Entries [begin, end) of a thread's share; the entry before it is read too.
struct Slice {
  std::int64_t begin, end;
  Slice(std::int64_t nnz, int slice, int n_slices)
      : begin(slice * nnz / n_slices), end((slice + 1) * nnz / n_slices) {}
};

} // namespace

template <class Index>
bool sorted_coo_row_offsets(const Index *rows, std::int64_t nnz, std::int64_t n_rows, Index *indptr,
                            int n_threads) {
  if (n_rows <= 0)
    throw std::invalid_argument("counts: empty matrix");
  if (nnz < 0 || (nnz > 0 && !rows) || !indptr)
    throw std::invalid_argument("counts: null buffer");
  const int threads = detail::resolve_threads(n_threads);
  // First pass: the order, as an OR reduction the compiler vectorises (a
  // descent sets a bit; Index-wide lanes, no widening). Sorted rows lie within
  // [first, last]: two tests check their range.
  using Flag = std::make_unsigned_t<Index>;
  std::vector<Flag> descents(static_cast<std::size_t>(threads), 0);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int t = 0; t < threads; ++t) {
    const Slice slice(nnz, t, threads);
    Flag down = 0;
    for (std::int64_t p = std::max<std::int64_t>(slice.begin, 1); p < slice.end; ++p)
      down |= Flag(rows[p] < rows[p - 1]);
    descents[t] = down;
  }
  if (!std::all_of(descents.begin(), descents.end(), [](Flag down) { return down == 0; }))
    return false;
  if (nnz > 0 && (rows[0] < 0 || std::int64_t(rows[nnz - 1]) >= n_rows))
    throw std::invalid_argument("counts: COO row index out of range [0, n_rows)");
  // Second pass: row r starts at the first entry of a row >= r, so an entry
  // whose row differs from its predecessor's writes the offsets of the rows
  // from just after that one to its own: every offset up to the last row is
  // written once. As the rows are sorted, a block of entries lies within one
  // row when its last entry's row is its predecessor's: most blocks are
  // skipped on that one comparison.
  constexpr std::int64_t kBlock = 16;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int t = 0; t < threads; ++t) {
    const Slice slice(nnz, t, threads);
    std::int64_t before = slice.begin > 0 ? std::int64_t(rows[slice.begin - 1]) : -1;
    std::int64_t p = slice.begin;
    for (;;) {
      while (p + kBlock <= slice.end && std::int64_t(rows[p + kBlock - 1]) == before)
        p += kBlock;
      if (p == slice.end)
        break;
      const std::int64_t stop = std::min(p + kBlock, slice.end);
      for (; p < stop; ++p) {
        const std::int64_t row = rows[p];
        for (std::int64_t r = before + 1; r <= row; ++r)
          indptr[r] = static_cast<Index>(p);
        before = row;
      }
    }
  }
  for (std::int64_t r = nnz > 0 ? std::int64_t(rows[nnz - 1]) + 1 : 0; r <= n_rows; ++r)
    indptr[r] = static_cast<Index>(nnz);
  return true;
}

template bool sorted_coo_row_offsets<std::int32_t>(const std::int32_t *, std::int64_t, std::int64_t,
                                                   std::int32_t *, int);
template bool sorted_coo_row_offsets<std::int64_t>(const std::int64_t *, std::int64_t, std::int64_t,
                                                   std::int64_t *, int);

} // namespace psnmf
