// Binding of the dense -> CSR conversion into the working format.
//
// Two calls, so that Python can decide between CSR and dense from the nonzero
// count of the first pass without an extra pass of its own: dense_scan
// (validate, row offsets, maximum) and dense_fill (indices and values).
// Both take C- or Fortran-ordered input without copying it.
#include "psnmf/convert.hpp"

#include "bindings.hpp"

namespace psnmf::bindings {

namespace {

DenseOrder order_of(const py::array &dense) {
  if (dense.ndim() != 2)
    throw py::value_error("counts: expected 2 dimensions, got " + std::to_string(dense.ndim()));
  if (dense.flags() & py::array::c_style)
    return DenseOrder::row_major;
  if (dense.flags() & py::array::f_style)
    return DenseOrder::column_major;
  throw py::value_error("counts: array must be C- or Fortran-contiguous");
}

template <class In> py::tuple scan(const py::array &dense, DenseOrder order, int n_threads) {
  const auto n_rows = dense.shape(0), n_cols = dense.shape(1);
  const In *data = static_cast<const In *>(dense.data());
  py::array_t<std::int64_t> indptr(n_rows + 1);
  std::int64_t *offsets = indptr.mutable_data();
  std::int64_t nnz = 0;
  double max_value = 0;
  {
    py::gil_scoped_release release;
    nnz = csr_row_offsets<In>(data, n_rows, n_cols, offsets, n_threads, order, &max_value);
  }
  return py::make_tuple(indptr, nnz, max_value);
}

template <class In, class Value>
py::tuple fill(const py::array &dense, DenseOrder order,
               const py::array_t<std::int64_t, py::array::c_style> &indptr, int n_threads) {
  const auto n_rows = dense.shape(0), n_cols = dense.shape(1);
  if (indptr.ndim() != 1 || indptr.shape(0) != n_rows + 1)
    throw py::value_error("indptr: expected shape (n_rows + 1,)");
  const std::int64_t *offsets = indptr.data();
  const std::int64_t nnz = offsets[n_rows];
  py::array_t<std::int32_t> indices(nnz);
  py::array_t<Value> values(nnz);
  std::int32_t *idx = indices.mutable_data();
  Value *val = values.mutable_data();
  {
    py::gil_scoped_release release;
    fill_csr<In, Value>(static_cast<const In *>(dense.data()), n_rows, n_cols, offsets, idx, val,
                        n_threads, order);
  }
  return py::make_tuple(indices, values);
}

py::tuple fill_any(const py::array &dense,
                   const py::array_t<std::int64_t, py::array::c_style> &indptr, bool double_values,
                   int n_threads) {
  const DenseOrder order = order_of(dense);
  return dispatch_counts_dtype(dense.dtype(), "counts", [&](auto tag) {
    using In = decltype(tag);
    return double_values ? fill<In, double>(dense, order, indptr, n_threads)
                         : fill<In, float>(dense, order, indptr, n_threads);
  });
}

py::tuple scan_any(const py::array &dense, int n_threads) {
  const DenseOrder order = order_of(dense);
  return dispatch_counts_dtype(dense.dtype(), "counts", [&](auto tag) {
    return scan<decltype(tag)>(dense, order, n_threads);
  });
}

} // namespace

void bind_convert(py::module_ &m) {
  m.def("dense_scan", &scan_any, py::arg("dense"), py::arg("n_threads") = 0,
        "First pass over a C- or Fortran-contiguous dense (n_rows, n_cols) counts matrix: "
        "validate (finite, >= 0) and return (indptr int64 of its nonzeros, nnz, max value).");
  m.def("dense_fill", &fill_any, py::arg("dense"), py::arg("indptr"), py::arg("double_values"),
        py::arg("n_threads") = 0,
        "Second pass: (indices int32, values float32 or float64) of the nonzeros, with the "
        "indptr of dense_scan.");
  m.def(
      "dense_to_csr",
      [](const py::array &dense, bool double_values, int n_threads) {
        const py::tuple scanned = scan_any(dense, n_threads);
        const auto indptr = scanned[0].cast<py::array_t<std::int64_t, py::array::c_style>>();
        const py::tuple filled = fill_any(dense, indptr, double_values, n_threads);
        return py::make_tuple(indptr, filled[0], filled[1]);
      },
      py::arg("dense"), py::arg("double_values"), py::arg("n_threads") = 0,
      "Validate a dense (n_rows, n_cols) counts matrix and return CSR (indptr int64, "
      "indices int32, values float32 or float64).");
}

} // namespace psnmf::bindings
