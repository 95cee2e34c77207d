// Spatial binning of a spectrum image: sums counts of fy x fx neighbouring pixels.
#pragma once

#include <cstdint>

namespace psnmf {

/// What to do with trailing rows/columns that do not fill a whole bin.
enum class Remainder {
  crop,  ///< drop them (default): the binned image is (ny / fy, nx / fx)
  error, ///< throw std::invalid_argument unless fy divides ny and fx divides nx
};

struct BinnedShape {
  std::int64_t ny = 0;
  std::int64_t nx = 0;
};

/// Shape of the binned image; validates the factors (>= 1, <= the image size).
BinnedShape binned_shape(std::int64_t ny, std::int64_t nx, std::int64_t fy, std::int64_t fx,
                         Remainder remainder = Remainder::crop);

/// Sum fy x fx blocks of a C-contiguous cube (ny, nx, n_channels) into
/// out (ny / fy, nx / fx, n_channels), C-contiguous.
///
/// Integer sums widen so they cannot overflow for realistic factors: unsigned
/// input sums into std::uint64_t, signed into std::int64_t. Floating input is
/// accumulated in double and stored as `Out` (float or double).
/// Instantiated for In in {uint8, uint16, uint32, int32, int64, float, double}.
/// Throws std::invalid_argument for bad shapes or factors, null buffers, and
/// NaN, infinite or negative counts (out is then unspecified).
template <class In, class Out>
void bin_spatial(const In *cube, std::int64_t ny, std::int64_t nx, std::int64_t n_channels,
                 std::int64_t fy, std::int64_t fx, Out *out, Remainder remainder = Remainder::crop,
                 int n_threads = 0);

} // namespace psnmf
