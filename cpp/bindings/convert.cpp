// Binding of the dense -> CSR conversion into the working format.
//
// Two calls, so that Python can decide between CSR and dense from the nonzero
// count of the first pass without an extra pass of its own: dense_scan
// (validate, row offsets, maximum) and dense_fill (indices and values).
// Both take C- or Fortran-ordered input without copying it. csr_convert does
// the same for scipy.sparse input: validate and convert in one pass;
// coo_row_offsets turns COO input in row order into CSR for it.
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

// A 1-D C-contiguous array of at least n elements of type T, or null for None.
template <class T> T *optional_output(const py::object &out, std::int64_t n, const char *what) {
  if (out.is_none())
    return nullptr;
  auto array = out.cast<py::array>();
  if (!array.dtype().equal(py::dtype::of<T>()) || array.ndim() != 1 ||
      !(array.flags() & py::array::c_style) || !array.writeable() || array.shape(0) < n)
    throw py::value_error(std::string(what) + ": expected a writable contiguous 1-D " +
                          py::str(static_cast<py::object>(py::dtype::of<T>())).cast<std::string>() +
                          " array of at least " + std::to_string(n) + " elements");
  return static_cast<T *>(array.mutable_data());
}

template <class Index>
py::tuple csr_typed(const py::array &indptr, const py::array &indices, const py::array &data,
                    std::int64_t n_cols, const py::object &out_indices,
                    const py::object &out_values, int n_threads) {
  require_c_contiguous(indptr, 1, "indptr");
  require_c_contiguous(indices, 1, "indices");
  require_c_contiguous(data, 1, "data");
  if (!indices.dtype().equal(indptr.dtype()))
    throw py::type_error("indices: must have the dtype of indptr");
  const std::int64_t n_rows = indptr.shape(0) - 1;
  if (n_rows < 1)
    throw py::value_error("indptr: expected at least 2 elements");
  const Index *offsets = static_cast<const Index *>(indptr.data());
  const std::int64_t nnz = offsets[n_rows];
  if (nnz < 0 || nnz > indices.shape(0) || nnz > data.shape(0))
    throw py::value_error("indptr: its last entry exceeds the length of indices or data");
  std::int32_t *idx = optional_output<std::int32_t>(out_indices, nnz, "out_indices");
  if (!idx && !std::is_same_v<Index, std::int32_t>)
    throw py::value_error("out_indices: needed for 64-bit indices");
  const bool double_values =
      !out_values.is_none() && out_values.cast<py::array>().dtype().equal(py::dtype::of<double>());
  return dispatch_counts_dtype(data.dtype(), "data", [&](auto tag) {
    using In = decltype(tag);
    const In *values = static_cast<const In *>(data.data());
    const Index *columns = static_cast<const Index *>(indices.data());
    CsrCheck check;
    if (double_values) {
      double *out = optional_output<double>(out_values, nnz, "out_values");
      py::gil_scoped_release release;
      check = convert_csr<Index, In, double>(offsets, columns, values, n_rows, n_cols, idx, out,
                                             n_threads);
    } else {
      float *out = optional_output<float>(out_values, nnz, "out_values");
      py::gil_scoped_release release;
      check = convert_csr<Index, In, float>(offsets, columns, values, n_rows, n_cols, idx, out,
                                            n_threads);
    }
    return py::make_tuple(check.canonical, check.max_value);
  });
}

py::tuple csr_any(const py::array &indptr, const py::array &indices, const py::array &data,
                  std::int64_t n_cols, const py::object &out_indices, const py::object &out_values,
                  int n_threads) {
  if (indptr.dtype().equal(py::dtype::of<std::int32_t>()))
    return csr_typed<std::int32_t>(indptr, indices, data, n_cols, out_indices, out_values,
                                   n_threads);
  if (indptr.dtype().equal(py::dtype::of<std::int64_t>()))
    return csr_typed<std::int64_t>(indptr, indices, data, n_cols, out_indices, out_values,
                                   n_threads);
  throw py::type_error("indptr: expected int32 or int64");
}

template <class Index>
py::object coo_typed(const py::array &rows, std::int64_t n_rows, int n_threads) {
  py::array_t<Index> indptr(n_rows + 1);
  Index *offsets = indptr.mutable_data();
  const Index *row = static_cast<const Index *>(rows.data());
  bool sorted = false;
  {
    py::gil_scoped_release release;
    sorted = sorted_coo_row_offsets<Index>(row, rows.shape(0), n_rows, offsets, n_threads);
  }
  return sorted ? py::object(indptr) : py::object(py::none());
}

py::object coo_any(const py::array &rows, std::int64_t n_rows, int n_threads) {
  require_c_contiguous(rows, 1, "rows");
  if (n_rows < 1)
    throw py::value_error("n_rows: expected at least 1, got " + std::to_string(n_rows));
  if (rows.dtype().equal(py::dtype::of<std::int32_t>()))
    return coo_typed<std::int32_t>(rows, n_rows, n_threads);
  if (rows.dtype().equal(py::dtype::of<std::int64_t>()))
    return coo_typed<std::int64_t>(rows, n_rows, n_threads);
  throw py::type_error("rows: expected int32 or int64");
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
  m.def("csr_convert", &csr_any, py::arg("indptr"), py::arg("indices"), py::arg("data"),
        py::arg("n_cols"), py::arg("out_indices") = py::none(), py::arg("out_values") = py::none(),
        py::arg("n_threads") = 0,
        "One pass over a CSR matrix: validate values (finite, >= 0) and structure, copy indices "
        "to out_indices (int32) and values to out_values (float32/float64) when given. Returns "
        "(canonical, max value); when not canonical the copies are incomplete.");
  m.def("coo_row_offsets", &coo_any, py::arg("rows"), py::arg("n_rows"), py::arg("n_threads") = 0,
        "CSR row offsets (n_rows + 1, the dtype of rows) of COO entries whose row indices are "
        "sorted, or None when they are not; ValueError when one is outside [0, n_rows).");
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
