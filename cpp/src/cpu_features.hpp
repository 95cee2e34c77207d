// Which instruction-set variant of the kernels this CPU runs.
//
// Wheels are built for the baseline ISA (x86-64: SSE2), which has no fused
// multiply-add and only 2-wide double vectors. The row kernels are therefore
// also compiled for AVX + FMA and for AVX-512, and the dense conversion for
// AVX2 (its fill of 1- and 2-byte counts also for AVX-512), and chosen at run
// time when the CPU has them.
#pragma once

#include <cstdlib>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define PSNMF_HAVE_AVX_FMA_KERNELS 1
#else
#define PSNMF_HAVE_AVX_FMA_KERNELS 0
#endif
// The AVX2 conversion kernels are compiled where the AVX + FMA ones are (and not
// with -DPSNMF_NO_SIMD, which tests the portable code alone).
#if PSNMF_HAVE_AVX_FMA_KERNELS && !defined(PSNMF_NO_SIMD)
#define PSNMF_HAVE_AVX2_KERNELS 1
#else
#define PSNMF_HAVE_AVX2_KERNELS 0
#endif
// Likewise the AVX-512 row kernels.
#if PSNMF_HAVE_AVX_FMA_KERNELS && !defined(PSNMF_NO_SIMD)
#define PSNMF_HAVE_AVX512_KERNELS 1
#else
#define PSNMF_HAVE_AVX512_KERNELS 0
#endif

namespace psnmf::detail {

/// PSNMF_KERNELS=portable (any value starting with 'p') forces the baseline
/// kernels everywhere, to compare or debug the variants.
inline bool portable_forced() {
  const char *choice = std::getenv("PSNMF_KERNELS");
  return choice && choice[0] == 'p';
}

/// PSNMF_KERNELS=avx_fma (any value starting with 'a') caps the row kernels at
/// AVX + FMA on CPUs that have AVX-512.
inline bool avx_fma_forced() {
  const char *choice = std::getenv("PSNMF_KERNELS");
  return choice && choice[0] == 'a';
}

/// True when the AVX + FMA kernels may run: the CPU and the OS support them,
/// and the portable ones are not forced.
inline bool use_avx_fma_kernels() {
#if PSNMF_HAVE_AVX_FMA_KERNELS
  static const bool use = !portable_forced() && [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx") && __builtin_cpu_supports("fma");
  }();
  return use;
#else
  return false;
#endif
}

/// True when the AVX-512 row kernels may run: AVX-512 F, VL and DQ on top of
/// the AVX + FMA ones, and neither those nor the portable ones forced.
inline bool use_avx512_kernels() {
#if PSNMF_HAVE_AVX512_KERNELS
  static const bool use = use_avx_fma_kernels() && !avx_fma_forced() && [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx2");
  }();
  return use;
#else
  return false;
#endif
}

/// True when the AVX2 conversion kernels may run (same rules as above).
inline bool use_avx2_kernels() {
#if PSNMF_HAVE_AVX2_KERNELS
  static const bool use = !portable_forced() && [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
  }();
  return use;
#else
  return false;
#endif
}

/// True when the AVX-512 fill of 1- and 2-byte counts may run: AVX-512 F, BW,
/// VL and VBMI2 on top of the AVX2 conversion; capped at AVX2 with
/// PSNMF_KERNELS=avx_fma, like the row kernels.
inline bool use_avx512_fill() {
#if PSNMF_HAVE_AVX512_KERNELS
  static const bool use = use_avx2_kernels() && !avx_fma_forced() && [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi2");
  }();
  return use;
#else
  return false;
#endif
}

} // namespace psnmf::detail
