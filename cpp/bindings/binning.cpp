// Binding of psnmf::bin_spatial: dtype dispatch and output allocation.
#include "psnmf/binning.hpp"

#include <type_traits>

#include "bindings.hpp"

namespace psnmf::bindings {

namespace {

Remainder parse_remainder(const std::string &name) {
  if (name == "crop")
    return Remainder::crop;
  if (name == "error")
    return Remainder::error;
  throw py::value_error("remainder must be 'crop' or 'error', got '" + name + "'");
}

template <class In>
using BinnedType =
    std::conditional_t<std::is_floating_point_v<In>, In,
                       std::conditional_t<std::is_signed_v<In>, std::int64_t, std::uint64_t>>;

} // namespace

void bind_binning(py::module_ &m) {
  m.def(
      "bin_spatial",
      [](const py::array &cube, std::int64_t fy, std::int64_t fx, const std::string &remainder,
         int n_threads) {
        require_c_contiguous(cube, 3, "cube");
        const Remainder policy = parse_remainder(remainder);
        const auto ny = cube.shape(0), nx = cube.shape(1), nc = cube.shape(2);
        const BinnedShape shape = binned_shape(ny, nx, fy, fx, policy);
        return dispatch_counts_dtype(cube.dtype(), "cube", [&](auto tag) -> py::array {
          using In = decltype(tag);
          using Out = BinnedType<In>;
          py::array_t<Out> out({shape.ny, shape.nx, static_cast<std::int64_t>(nc)});
          const In *in = static_cast<const In *>(cube.data());
          Out *target = out.mutable_data();
          py::gil_scoped_release release;
          bin_spatial<In, Out>(in, ny, nx, nc, fy, fx, target, policy, n_threads);
          return out;
        });
      },
      py::arg("cube"), py::arg("fy"), py::arg("fx"), py::arg("remainder") = "crop",
      py::arg("n_threads") = 0);
}

} // namespace psnmf::bindings
