// The compiled extension psnmf._core: registration only, the API is designed in Python.
#include "bindings.hpp"

#include "../src/parallel.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "psnmf compiled core: Poisson NMF kernels, binning and conversions";
#ifdef _OPENMP
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
  m.def(
      "max_threads", [] { return psnmf::detail::resolve_threads(0); },
      "Threads used when n_threads is not given (OpenMP default, honours OMP_NUM_THREADS).");
  psnmf::bindings::bind_binning(m);
  psnmf::bindings::bind_chunked(m);
  psnmf::bindings::bind_convert(m);
  psnmf::bindings::bind_nmf(m);
  psnmf::bindings::bind_products(m);
}
