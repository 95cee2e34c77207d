// Spatial binning: each output spectrum is the sum of a fy x fx block of input spectra.
#include "psnmf/binning.hpp"

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

} // namespace psnmf
