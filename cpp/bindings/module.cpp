// The compiled extension psnmf._core: registration only, the API is designed in Python.
#include "bindings.hpp"

#include "../src/cpu_features.hpp"
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
  m.def(
      "row_kernels",
      [] {
        if (psnmf::detail::use_avx512_kernels())
          return "avx512";
        return psnmf::detail::use_avx_fma_kernels() ? "avx_fma" : "portable";
      },
      "Instruction set of the MU row kernels chosen for this CPU (PSNMF_KERNELS=portable forces "
      "the baseline, PSNMF_KERNELS=avx_fma caps them at AVX + FMA).");
  m.def(
      "convert_kernels",
      [] {
        return psnmf::detail::use_avx512_fill()    ? "avx512"
               : psnmf::detail::use_avx2_kernels() ? "avx2"
                                                   : "portable";
      },
      "Instruction set of the dense -> CSR conversion kernels chosen for this CPU "
      "(avx512: its fill of 1- and 2-byte counts; PSNMF_KERNELS=portable forces the baseline, "
      "PSNMF_KERNELS=avx_fma caps it at AVX2).");
  psnmf::bindings::bind_binning(m);
  psnmf::bindings::bind_chunked(m);
  psnmf::bindings::bind_convert(m);
  psnmf::bindings::bind_nmf(m);
  psnmf::bindings::bind_products(m);
}
