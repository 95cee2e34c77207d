// Binding of the dense -> CSR conversion into the working format.
#include "psnmf/convert.hpp"

#include "bindings.hpp"

namespace psnmf::bindings {

namespace {

template <class In, class Value> py::tuple to_csr(const py::array &dense, int n_threads) {
  const auto n_rows = dense.shape(0), n_cols = dense.shape(1);
  const In *data = static_cast<const In *>(dense.data());
  py::array_t<std::int64_t> indptr(n_rows + 1);
  std::int64_t *offsets = indptr.mutable_data();
  std::int64_t nnz = 0;
  {
    py::gil_scoped_release release;
    nnz = csr_row_offsets<In>(data, n_rows, n_cols, offsets, n_threads);
  }
  py::array_t<std::int32_t> indices(nnz);
  py::array_t<Value> values(nnz);
  std::int32_t *idx = indices.mutable_data();
  Value *val = values.mutable_data();
  {
    py::gil_scoped_release release;
    fill_csr<In, Value>(data, n_rows, n_cols, offsets, idx, val, n_threads);
  }
  return py::make_tuple(indptr, indices, values);
}

} // namespace

void bind_convert(py::module_ &m) {
  m.def(
      "dense_to_csr",
      [](const py::array &dense, bool double_values, int n_threads) {
        require_c_contiguous(dense, 2, "counts");
        return dispatch_counts_dtype(dense.dtype(), "counts", [&](auto tag) {
          using In = decltype(tag);
          return double_values ? to_csr<In, double>(dense, n_threads)
                               : to_csr<In, float>(dense, n_threads);
        });
      },
      py::arg("dense"), py::arg("double_values"), py::arg("n_threads") = 0,
      "Validate a dense (n_rows, n_cols) counts matrix and return CSR (indptr int64, "
      "indices int32, values float32 or float64).");
}

} // namespace psnmf::bindings
