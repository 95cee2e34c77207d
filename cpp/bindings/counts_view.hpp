// The working-format counts as a core view, shared by the binding files.
#pragma once

#include "bindings.hpp"
#include "psnmf/matrix_view.hpp"

namespace psnmf::bindings {

/// Calls f(view) with a CsrView or DenseView over the working-format counts:
/// a tuple (indptr int64, indices int32, values float32|float64) with n_cols,
/// or a C-contiguous 2-D float32|float64 array. No copy is made.
template <class F>
decltype(auto) with_counts(const py::object &counts, std::int64_t n_cols, F &&f) {
  if (py::isinstance<py::tuple>(counts)) {
    const auto parts = counts.cast<py::tuple>();
    if (parts.size() != 3)
      throw py::value_error("counts: CSR tuple must be (indptr, indices, values)");
    const auto indptr = parts[0].cast<py::array_t<std::int64_t, py::array::c_style>>();
    const auto indices = parts[1].cast<py::array_t<std::int32_t, py::array::c_style>>();
    const auto values = parts[2].cast<py::array>();
    if (indptr.ndim() != 1 || indptr.size() < 2)
      throw py::value_error("counts: bad CSR indptr");
    if (indices.size() != values.size() || indptr.at(indptr.size() - 1) != values.size())
      throw py::value_error("counts: CSR indptr, indices and values disagree");
    const auto make = [&](auto tag) {
      using V = decltype(tag);
      return CsrView<V>{indptr.size() - 1, n_cols, indptr.data(), indices.data(),
                        static_cast<const V *>(values.data())};
    };
    if (values.dtype().equal(py::dtype::of<float>()))
      return f(make(float{}));
    if (values.dtype().equal(py::dtype::of<double>()))
      return f(make(double{}));
    throw py::type_error("counts: CSR values must be float32 or float64");
  }
  const auto dense = counts.cast<py::array>();
  require_c_contiguous(dense, 2, "counts");
  if (dense.shape(1) != n_cols)
    throw py::value_error("counts: n_cols does not match");
  if (dense.dtype().equal(py::dtype::of<float>()))
    return f(DenseView<float>{dense.shape(0), n_cols, static_cast<const float *>(dense.data())});
  if (dense.dtype().equal(py::dtype::of<double>()))
    return f(DenseView<double>{dense.shape(0), n_cols, static_cast<const double *>(dense.data())});
  throw py::type_error("counts: dense working format must be float32 or float64");
}

} // namespace psnmf::bindings
