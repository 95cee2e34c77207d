// Binding of psnmf::bin_spatial (dense cubes: dtype dispatch, output allocation) and of
// bin_csr_offsets / bin_csr_fill (working-format CSR counts -> binned CSR, both passes).
#include "psnmf/binning.hpp"

#include <type_traits>

#include "bindings.hpp"
#include "counts_view.hpp"

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

template <class Value, class Out>
py::tuple bin_csr(const CsrView<Value> &counts, std::int64_t ny, std::int64_t nx, std::int64_t fy,
                  std::int64_t fx, int n_threads) {
  const BinnedShape shape = binned_shape(ny, nx, fy, fx);
  py::array_t<std::int64_t> indptr(shape.ny * shape.nx + 1);
  std::int64_t *offsets = indptr.mutable_data();
  std::int64_t nnz = 0;
  {
    py::gil_scoped_release release;
    nnz = bin_csr_offsets(counts, ny, nx, fy, fx, offsets, n_threads);
  }
  py::array_t<std::int32_t> indices(nnz);
  py::array_t<Out> values(nnz);
  std::int32_t *idx = indices.mutable_data();
  Out *val = values.mutable_data();
  {
    py::gil_scoped_release release;
    bin_csr_fill<Value, Out>(counts, ny, nx, fy, fx, offsets, idx, val, n_threads);
  }
  return py::make_tuple(indptr, indices, values);
}

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
  m.def(
      "bin_csr",
      [](const py::tuple &counts, std::int64_t n_cols, std::int64_t ny, std::int64_t nx,
         std::int64_t fy, std::int64_t fx, bool double_values, int n_threads) {
        return with_counts(counts, n_cols, [&](const auto &view) -> py::tuple {
          using View = std::decay_t<decltype(view)>;
          if constexpr (std::is_same_v<View, CsrView<float>> ||
                        std::is_same_v<View, CsrView<double>>) {
            using Value = std::decay_t<decltype(*view.values)>;
            if (double_values)
              return bin_csr<Value, double>(view, ny, nx, fy, fx, n_threads);
            return bin_csr<Value, float>(view, ny, nx, fy, fx, n_threads);
          } else {
            throw py::type_error("counts: bin_csr takes the CSR working format");
          }
        });
      },
      py::arg("counts"), py::arg("n_cols"), py::arg("ny"), py::arg("nx"), py::arg("fy"),
      py::arg("fx"), py::arg("double_values"), py::arg("n_threads") = 0,
      "Sum fy x fx blocks of pixels of CSR counts (ny * nx, n_cols) -> (indptr, indices, "
      "values) of the binned (ny / fy * nx / fx, n_cols) CSR, trailing rows/columns cropped.");
}

} // namespace psnmf::bindings
