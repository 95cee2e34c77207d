// Spatial binning: each output spectrum is the sum of a fy x fx block of input spectra.
#include "psnmf/binning.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "parallel.hpp"

namespace psnmf {

BinnedShape binned_shape(std::int64_t ny, std::int64_t nx, std::int64_t fy, std::int64_t fx,
                         Remainder remainder) {
  if (ny <= 0 || nx <= 0)
    throw std::invalid_argument("cube: empty image (" + std::to_string(ny) + " x " +
                                std::to_string(nx) + ")");
  if (fy < 1 || fx < 1)
    throw std::invalid_argument("factor must be >= 1, got (" + std::to_string(fy) + ", " +
                                std::to_string(fx) + ")");
  if (fy > ny || fx > nx)
    throw std::invalid_argument("factor (" + std::to_string(fy) + ", " + std::to_string(fx) +
                                ") is larger than the image (" + std::to_string(ny) + ", " +
                                std::to_string(nx) + ")");
  if (remainder == Remainder::error && (ny % fy != 0 || nx % fx != 0))
    throw std::invalid_argument("factor (" + std::to_string(fy) + ", " + std::to_string(fx) +
                                ") does not divide the image (" + std::to_string(ny) + ", " +
                                std::to_string(nx) + ") and remainder='error'");
  return {ny / fy, nx / fx};
}

template <class In, class Out>
void bin_spatial(const In *cube, std::int64_t ny, std::int64_t nx, std::int64_t n_channels,
                 std::int64_t fy, std::int64_t fx, Out *out, Remainder remainder, int n_threads) {
  const BinnedShape shape = binned_shape(ny, nx, fy, fx, remainder);
  if (n_channels <= 0)
    throw std::invalid_argument("cube: no channels");
  if (!cube || !out)
    throw std::invalid_argument("cube: null buffer");
  // Floats accumulate in double whatever they are stored as; integers in Out (64-bit).
  using Acc = std::conditional_t<std::is_floating_point_v<In>, double, Out>;
  const int threads = detail::resolve_threads(n_threads);
  bool bad = false; // NaN, infinite or negative counts, found on the way
#pragma omp parallel num_threads(threads) reduction(|| : bad)
  {
    std::vector<Acc> acc(static_cast<std::size_t>(n_channels));
#pragma omp for schedule(static)
    for (std::int64_t by = 0; by < shape.ny; ++by) {
      for (std::int64_t bx = 0; bx < shape.nx; ++bx) {
        std::fill(acc.begin(), acc.end(), Acc(0));
        for (std::int64_t dy = 0; dy < fy; ++dy) {
          const In *row = cube + ((by * fy + dy) * nx + bx * fx) * n_channels;
          for (std::int64_t dx = 0; dx < fx; ++dx) {
            const In *spectrum = row + dx * n_channels;
            for (std::int64_t c = 0; c < n_channels; ++c) {
              if constexpr (std::is_floating_point_v<In>)
                bad |= !(spectrum[c] >= 0 && spectrum[c] <= std::numeric_limits<In>::max());
              else if constexpr (std::is_signed_v<In>)
                bad |= spectrum[c] < 0;
              acc[c] += static_cast<Acc>(spectrum[c]);
            }
          }
        }
        Out *target = out + (by * shape.nx + bx) * n_channels;
        for (std::int64_t c = 0; c < n_channels; ++c)
          target[c] = static_cast<Out>(acc[c]);
      }
    }
  }
  if (bad)
    throw std::invalid_argument("cube: counts must be finite and non-negative");
}

#define PSNMF_BIN(IN, OUT)                                                                         \
  template void bin_spatial<IN, OUT>(const IN *, std::int64_t, std::int64_t, std::int64_t,         \
                                     std::int64_t, std::int64_t, OUT *, Remainder, int);
PSNMF_BIN(std::uint8_t, std::uint64_t)
PSNMF_BIN(std::uint16_t, std::uint64_t)
PSNMF_BIN(std::uint32_t, std::uint64_t)
PSNMF_BIN(std::int32_t, std::int64_t)
PSNMF_BIN(std::int64_t, std::int64_t)
PSNMF_BIN(float, float)
PSNMF_BIN(float, double)
PSNMF_BIN(double, double)
#undef PSNMF_BIN

namespace {

/// One thread's sums of a block of pixels over the channels.
///
/// Two ways to sum, chosen per block by its number of stored entries:
/// - few entries (sparse output): the touched channels are listed (the stamp
///   of a channel is the binned row that last touched it) and sorted, and only
///   they are cleared afterwards;
/// - many entries (most low-dose bins from 2 x 2 up): the sums go into an
///   all-zero accumulator with no branch per entry (the stamp test mispredicts
///   about half the time there), and the nonzero sums are read back in channel
///   order by a branch-free compaction, which also clears the accumulator.
/// Both add each channel's values in the same order, so the sums are the same.
class BlockSum {
public:
  explicit BlockSum(std::int64_t n_channels)
      : stamp_(static_cast<std::size_t>(n_channels), -1),
        sum_(static_cast<std::size_t>(n_channels), 0.0),
        staged_channels_(static_cast<std::size_t>(n_channels) + 1),
        staged_sums_(static_cast<std::size_t>(n_channels) + 1) {}

  /// Sums binned row `row` (block (by, bx)); false if an entry read is invalid.
  template <class Value>
  bool add_block(const CsrView<Value> &counts, std::int64_t nx, std::int64_t fy, std::int64_t fx,
                 std::int64_t by, std::int64_t bx, std::int64_t row) {
    std::int64_t entries = 0;
    for (std::int64_t dy = 0; dy < fy; ++dy) {
      const std::int64_t first = (by * fy + dy) * nx + bx * fx;
      entries += counts.indptr[first + fx] - counts.indptr[first];
    }
    dense_ = entries * kDenseFrom >= n_channels();
    return dense_ ? add_dense(counts, nx, fy, fx, by, bx)
                  : add_sparse(counts, nx, fy, fx, by, bx, row);
  }

  /// Nonzero sums of the block. For a dense block, also stages them and clears
  /// the accumulator: call once per add_block, before write.
  std::int64_t finish() {
    if (!dense_)
      return static_cast<std::int64_t>(touched_.size());
    const std::int64_t n = n_channels();
    std::int64_t at = 0;
    for (std::int64_t c = 0; c < n; ++c) {
      const double s = sum_[c];
      staged_channels_[at] = static_cast<std::int32_t>(c);
      staged_sums_[at] = s;
      at += s != 0.0;
      sum_[c] = 0.0;
    }
    return staged_size_ = at;
  }

  /// Writes the block's channels in ascending order and their sums (after finish).
  template <class Out> void write(std::int64_t row, std::int32_t *indices, Out *values) {
    if (dense_) {
      for (std::int64_t p = 0; p < staged_size_; ++p) {
        indices[p] = staged_channels_[p];
        values[p] = static_cast<Out>(staged_sums_[p]);
      }
      return;
    }
    std::int64_t at = 0;
    // A block touching many channels is cheaper to walk in channel order than to sort.
    if (static_cast<std::int64_t>(touched_.size()) * 16 > n_channels()) {
      for (std::int64_t c = 0; c < n_channels(); ++c)
        if (stamp_[c] == row) {
          indices[at] = static_cast<std::int32_t>(c);
          values[at++] = static_cast<Out>(sum_[c]);
        }
      return;
    }
    std::sort(touched_.begin(), touched_.end());
    for (const std::int32_t c : touched_) {
      indices[at] = c;
      values[at++] = static_cast<Out>(sum_[c]);
    }
  }

private:
  /// Entries per channel from which a block is summed densely.
  static constexpr std::int64_t kDenseFrom = 8;

  std::int64_t n_channels() const { return static_cast<std::int64_t>(sum_.size()); }

  static bool valid_entry(std::int32_t c, double v, std::int64_t n) {
    return c >= 0 && c < n && v >= 0.0 && std::isfinite(v);
  }

  /// Calls add(channel, value) for each valid entry of block (by, bx), in
  /// storage order; false if an entry is invalid (it is skipped).
  template <class Value, class Add>
  static bool for_each_entry(const CsrView<Value> &counts, std::int64_t nx, std::int64_t fy,
                             std::int64_t fx, std::int64_t by, std::int64_t bx, Add &&add) {
    bool valid = true;
    for (std::int64_t dy = 0; dy < fy; ++dy) {
      const std::int64_t first = (by * fy + dy) * nx + bx * fx;
      for (std::int64_t p = counts.indptr[first]; p < counts.indptr[first + fx]; ++p) {
        const std::int32_t c = counts.indices[p];
        const double v = static_cast<double>(counts.values[p]);
        if (!valid_entry(c, v, counts.n_cols)) {
          valid = false;
          continue;
        }
        add(c, v);
      }
    }
    return valid;
  }

  template <class Value>
  bool add_sparse(const CsrView<Value> &counts, std::int64_t nx, std::int64_t fy, std::int64_t fx,
                  std::int64_t by, std::int64_t bx, std::int64_t row) {
    clear_touched();
    return for_each_entry(counts, nx, fy, fx, by, bx, [&](std::int32_t c, double v) {
      if (v == 0.0)
        return; // a stored zero adds nothing and is not stored
      if (stamp_[c] != row) {
        stamp_[c] = row;
        sum_[c] = 0.0;
        touched_.push_back(c);
      }
      sum_[c] += v;
    });
  }

  // Keeps the accumulator all-zero outside the current sparse block: the
  // dense path relies on it.
  void clear_touched() {
    for (const std::int32_t c : touched_)
      sum_[c] = 0.0;
    touched_.clear();
  }

  template <class Value>
  bool add_dense(const CsrView<Value> &counts, std::int64_t nx, std::int64_t fy, std::int64_t fx,
                 std::int64_t by, std::int64_t bx) {
    clear_touched();
    // A stored zero adds nothing, and a zero sum is not stored.
    return for_each_entry(counts, nx, fy, fx, by, bx,
                          [&](std::int32_t c, double v) { sum_[c] += v; });
  }

  std::vector<std::int64_t> stamp_;
  std::vector<double> sum_;
  std::vector<std::int32_t> touched_;
  std::vector<std::int32_t> staged_channels_;
  std::vector<double> staged_sums_;
  std::int64_t staged_size_ = 0;
  bool dense_ = false;
};

template <class Value>
BinnedShape check_binned_csr(const CsrView<Value> &counts, std::int64_t ny, std::int64_t nx,
                             std::int64_t fy, std::int64_t fx) {
  const BinnedShape shape = binned_shape(ny, nx, fy, fx);
  if (counts.n_rows != ny * nx)
    throw std::invalid_argument("counts: " + std::to_string(counts.n_rows) +
                                " pixels, the image (" + std::to_string(ny) + ", " +
                                std::to_string(nx) + ") holds " + std::to_string(ny * nx));
  if (counts.n_cols <= 0 || counts.n_cols > std::numeric_limits<std::int32_t>::max())
    throw std::invalid_argument("counts: number of channels must be in [1, 2**31 - 1]");
  if (!counts.indptr || (counts.indptr[counts.n_rows] > 0 && (!counts.indices || !counts.values)))
    throw std::invalid_argument("counts: null CSR buffer");
  if (counts.indptr[0] != 0)
    throw std::invalid_argument("counts: CSR indptr[0] must be 0");
  for (std::int64_t i = 0; i < counts.n_rows; ++i)
    if (counts.indptr[i + 1] < counts.indptr[i])
      throw std::invalid_argument("counts: CSR indptr must be non-decreasing");
  return shape;
}

} // namespace

template <class Value>
std::int64_t bin_csr_offsets(const CsrView<Value> &counts, std::int64_t ny, std::int64_t nx,
                             std::int64_t fy, std::int64_t fx, std::int64_t *indptr,
                             int n_threads) {
  const BinnedShape shape = check_binned_csr(counts, ny, nx, fy, fx);
  if (!indptr)
    throw std::invalid_argument("indptr: null buffer");
  const int threads = detail::resolve_threads(n_threads);
  const std::int64_t n_binned = shape.ny * shape.nx;
  bool valid = true;
  indptr[0] = 0;
#pragma omp parallel num_threads(threads) reduction(&& : valid)
  {
    BlockSum block(counts.n_cols);
#pragma omp for schedule(static)
    for (std::int64_t row = 0; row < n_binned; ++row) {
      valid = block.add_block(counts, nx, fy, fx, row / shape.nx, row % shape.nx, row) && valid;
      indptr[row + 1] = block.finish();
    }
  }
  if (!valid)
    throw std::invalid_argument("counts: CSR column indices must be in [0, n_channels) and "
                                "values finite and non-negative");
  for (std::int64_t row = 0; row < n_binned; ++row)
    indptr[row + 1] += indptr[row];
  return indptr[n_binned];
}

template <class Value, class Out>
void bin_csr_fill(const CsrView<Value> &counts, std::int64_t ny, std::int64_t nx, std::int64_t fy,
                  std::int64_t fx, const std::int64_t *indptr, std::int32_t *indices, Out *values,
                  int n_threads) {
  const BinnedShape shape = check_binned_csr(counts, ny, nx, fy, fx);
  const std::int64_t n_binned = shape.ny * shape.nx;
  if (!indptr || (indptr[n_binned] > 0 && (!indices || !values)))
    throw std::invalid_argument("binned: null buffer");
  const int threads = detail::resolve_threads(n_threads);
  bool consistent = true;
#pragma omp parallel num_threads(threads) reduction(&& : consistent)
  {
    BlockSum block(counts.n_cols);
#pragma omp for schedule(static)
    for (std::int64_t row = 0; row < n_binned; ++row) {
      const bool valid = block.add_block(counts, nx, fy, fx, row / shape.nx, row % shape.nx, row);
      const std::int64_t size = block.finish();
      // indptr must come from bin_csr_offsets on these counts: never write past a row.
      if (!valid || size != indptr[row + 1] - indptr[row]) {
        consistent = false;
        continue;
      }
      block.write(row, indices + indptr[row], values + indptr[row]);
    }
  }
  if (!consistent)
    throw std::invalid_argument("binned: indptr does not match these counts (call "
                                "bin_csr_offsets first) or the counts are invalid");
}

#define PSNMF_BIN_CSR(VALUE)                                                                       \
  template std::int64_t bin_csr_offsets<VALUE>(const CsrView<VALUE> &, std::int64_t, std::int64_t, \
                                               std::int64_t, std::int64_t, std::int64_t *, int);   \
  template void bin_csr_fill<VALUE, float>(const CsrView<VALUE> &, std::int64_t, std::int64_t,     \
                                           std::int64_t, std::int64_t, const std::int64_t *,       \
                                           std::int32_t *, float *, int);                          \
  template void bin_csr_fill<VALUE, double>(const CsrView<VALUE> &, std::int64_t, std::int64_t,    \
                                            std::int64_t, std::int64_t, const std::int64_t *,      \
                                            std::int32_t *, double *, int);
PSNMF_BIN_CSR(float)
PSNMF_BIN_CSR(double)
#undef PSNMF_BIN_CSR

} // namespace psnmf
