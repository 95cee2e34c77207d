// Spatial binning of a spectrum image: sums counts of fy x fx neighbouring pixels.
#pragma once

#include <cstdint>

#include "psnmf/matrix_view.hpp"

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

/// Binning of unfolded counts in CSR, in two passes so that the binned matrix is
/// written once into arrays of its exact size (no dense temporary, no copy).
///
/// `counts` is (ny * nx, n_channels), pixels unfolded row-major from an (ny, nx)
/// image; fy x fx blocks of pixels are summed into the rows of the binned matrix
/// (ny / fy * nx / fx, n_channels), also unfolded row-major. Trailing rows and
/// columns that do not fill a block are cropped (their entries are not read). A
/// binned entry is stored when at least one of its summed values is > 0, so
/// stored zeros are dropped; column indices ascend within each row.
///
/// First pass: validates the factors and the CSR structure, and the column
/// indices and values of every entry read (finite, >= 0), then writes the row
/// offsets of the binned matrix into indptr (n_binned_pixels + 1) and returns
/// its number of nonzeros. Throws std::invalid_argument on bad input.
template <class Value>
std::int64_t bin_csr_offsets(const CsrView<Value> &counts, std::int64_t ny, std::int64_t nx,
                             std::int64_t fy, std::int64_t fx, std::int64_t *indptr,
                             int n_threads = 0);

/// Second pass: the column indices and values of the binned matrix (sized by the
/// indptr of bin_csr_offsets on the same input), sums accumulated in double and
/// stored as `Out` (float or double). Results do not depend on n_threads.
template <class Value, class Out>
void bin_csr_fill(const CsrView<Value> &counts, std::int64_t ny, std::int64_t nx, std::int64_t fy,
                  std::int64_t fx, const std::int64_t *indptr, std::int32_t *indices, Out *values,
                  int n_threads = 0);

} // namespace psnmf
