// Shared declarations of the binding files: each registers one concept.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

namespace psnmf::bindings {

namespace py = pybind11;

void bind_binning(py::module_ &m);
void bind_chunked(py::module_ &m);
void bind_convert(py::module_ &m);
void bind_nmf(py::module_ &m);
void bind_products(py::module_ &m);

/// Calls f(T{}) with T the C++ type of a numpy dtype among the supported counts types.
template <class F>
decltype(auto) dispatch_counts_dtype(const py::dtype &dtype, const char *what, F &&f) {
  if (dtype.equal(py::dtype::of<std::uint8_t>()))
    return f(std::uint8_t{});
  if (dtype.equal(py::dtype::of<std::uint16_t>()))
    return f(std::uint16_t{});
  if (dtype.equal(py::dtype::of<std::uint32_t>()))
    return f(std::uint32_t{});
  if (dtype.equal(py::dtype::of<std::int32_t>()))
    return f(std::int32_t{});
  if (dtype.equal(py::dtype::of<std::int64_t>()))
    return f(std::int64_t{});
  if (dtype.equal(py::dtype::of<float>()))
    return f(float{});
  if (dtype.equal(py::dtype::of<double>()))
    return f(double{});
  throw py::type_error(std::string(what) + ": unsupported dtype " +
                       py::str(static_cast<py::object>(dtype)).cast<std::string>() +
                       "; expected uint8, uint16, uint32, int32, int64, float32 or float64");
}

/// Throws unless a is C-contiguous with the expected number of dimensions.
inline void require_c_contiguous(const py::array &a, py::ssize_t ndim, const char *what) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(what) + ": expected " + std::to_string(ndim) +
                          " dimensions, got " + std::to_string(a.ndim()));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(what) + ": array must be C-contiguous");
}

} // namespace psnmf::bindings
