// Binding of multiply / multiply_transposed: X @ B and X.T @ Q for the initialisation.
#include "psnmf/products.hpp"

#include "bindings.hpp"
#include "counts_view.hpp"

namespace psnmf::bindings {

void bind_products(py::module_ &m) {
  m.def(
      "multiply",
      [](const py::object &counts, std::int64_t n_cols,
         const py::array_t<double, py::array::c_style> &dense, bool transpose, int n_threads) {
        if (dense.ndim() != 2)
          throw py::value_error("multiply: dense must be 2-D");
        const std::int64_t width = dense.shape(1);
        return with_counts(counts, n_cols, [&](const auto &view) {
          const std::int64_t inner = transpose ? view.n_rows : view.n_cols;
          const std::int64_t outer = transpose ? view.n_cols : view.n_rows;
          if (dense.shape(0) != inner)
            throw py::value_error("multiply: dense has " + std::to_string(dense.shape(0)) +
                                  " rows, expected " + std::to_string(inner));
          py::array_t<double> out({outer, width});
          double *target = out.mutable_data();
          const double *source = dense.data();
          py::gil_scoped_release release;
          if (transpose)
            multiply_transposed(view, source, width, target, n_threads);
          else
            multiply(view, source, width, target, n_threads);
          return out;
        });
      },
      py::arg("counts"), py::arg("n_cols"), py::arg("dense"), py::arg("transpose") = false,
      py::arg("n_threads") = 0,
      "X @ dense, or X.T @ dense with transpose=True, in a fixed summation order.");
}

} // namespace psnmf::bindings
