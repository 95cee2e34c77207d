// Natural logarithm of four doubles at once (AVX + FMA), for the loss.
//
// The loss needs x log(x / lambda) at every nonzero; the C library's scalar log
// made an evaluation cost about twice a whole MU iteration. The method: write
// v = 2^e m with m in [sqrt(1/2), sqrt(2)), then log v = e log 2 + 2 atanh(s),
// s = (m - 1) / (m + 1), |s| < 0.1716, by its odd series to s^21 (the next
// term is below 1e-18 of the sum). log 2 is split in a high part with trailing
// zero bits (e * high is exact) and a low part. Accurate to within 2 units in
// the last place (cpp/tests/test_simd_log.cpp checks it against std::log) for
// positive normal finite v; log4_or_scalar sends any other lane to std::log.
// Only compiled where cpu_features.hpp allows; only run when the CPU has AVX and FMA.
#pragma once

#include <immintrin.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <iterator>

#define PSNMF_AVX_FMA __attribute__((target("avx,fma"))) inline

namespace psnmf::detail {

/// Coefficients of 2 atanh(s) / (2s) - 1 = z (1/3 + z/5 + ... + z^9/21), z =
/// s^2, highest first (Horner), and log 2 as high + low, high with 21 trailing
/// zero bits (e * high is exact): shared by log4 and simd8::log8, which must
/// agree bit for bit.
inline constexpr double kAtanhSeries[] = {1.0 / 21, 1.0 / 19, 1.0 / 17, 1.0 / 15, 1.0 / 13,
                                          1.0 / 11, 1.0 / 9,  1.0 / 7,  1.0 / 5,  1.0 / 3};
inline constexpr double kLn2High = 6.93147180369123816490e-01;
inline constexpr double kLn2Low = 1.90821492927058770002e-10;

} // namespace psnmf::detail

namespace psnmf::detail::simd4 {

/// 2^e m -> (e, m) for four positive normal doubles, m in [1, 2). Integer work
/// on 128-bit halves: AVX (without AVX2) has no 256-bit integer shifts.
PSNMF_AVX_FMA void split_exponent(__m256d v, __m256d &e, __m256d &m) {
  const __m128i mantissa_bits = _mm_set1_epi64x(0x000FFFFFFFFFFFFFLL);
  const __m128i one_bits = _mm_set1_epi64x(0x3FF0000000000000LL);
  // The 11 exponent bits, placed under the exponent of 2^52, read as 2^52 + field.
  const __m128i two52_bits = _mm_set1_epi64x(0x4330000000000000LL);
  const __m128i low = _mm_castpd_si128(_mm256_castpd256_pd128(v));
  const __m128i high = _mm_castpd_si128(_mm256_extractf128_pd(v, 1));
  const __m256d field =
      _mm256_set_m128d(_mm_castsi128_pd(_mm_or_si128(_mm_srli_epi64(high, 52), two52_bits)),
                       _mm_castsi128_pd(_mm_or_si128(_mm_srli_epi64(low, 52), two52_bits)));
  e = _mm256_sub_pd(field, _mm256_set1_pd(4503599627370496.0 + 1023.0)); // 2^52 + bias
  m = _mm256_set_m128d(_mm_castsi128_pd(_mm_or_si128(_mm_and_si128(high, mantissa_bits), one_bits)),
                       _mm_castsi128_pd(_mm_or_si128(_mm_and_si128(low, mantissa_bits), one_bits)));
}

/// log(v) for four positive normal finite doubles (other lanes: meaningless).
PSNMF_AVX_FMA __m256d log4(__m256d v) {
  const __m256d one = _mm256_set1_pd(1.0);
  __m256d e, m;
  split_exponent(v, e, m);
  // m in [sqrt(1/2), sqrt(2)): halve the mantissas above sqrt(2).
  const __m256d above = _mm256_cmp_pd(m, _mm256_set1_pd(1.4142135623730951), _CMP_GT_OQ);
  // Arithmetic on the compare masks, not blends: GCC 12 turns these blends
  // into a branch per lane.
  m = _mm256_mul_pd(m, _mm256_sub_pd(one, _mm256_and_pd(above, _mm256_set1_pd(0.5))));
  e = _mm256_add_pd(e, _mm256_and_pd(above, one));
  const __m256d s = _mm256_div_pd(_mm256_sub_pd(m, one), _mm256_add_pd(m, one));
  const __m256d z = _mm256_mul_pd(s, s);
  // 2 atanh(s) = 2s + 2s z (1/3 + z/5 + z^2/7 + ... + z^9/21)
  __m256d series = _mm256_set1_pd(kAtanhSeries[0]);
  for (int i = 1; i < int(std::size(kAtanhSeries)); ++i)
    series = _mm256_fmadd_pd(series, z, _mm256_set1_pd(kAtanhSeries[i]));
  const __m256d two_s = _mm256_add_pd(s, s);
  const __m256d log_m = _mm256_fmadd_pd(_mm256_mul_pd(two_s, z), series, two_s);
  return _mm256_fmadd_pd(e, _mm256_set1_pd(kLn2High),
                         _mm256_fmadd_pd(e, _mm256_set1_pd(kLn2Low), log_m));
}

/// out[lane] = std::log(in[lane]) for the lanes (of `lanes`) whose bit in
/// `normal` is clear: the vector logs' fallback outside the positive normal
/// finite doubles.
inline void log_other_lanes(const double *in, double *out, unsigned normal, int lanes) {
  for (int lane = 0; lane < lanes; ++lane)
    if (!(normal >> lane & 1))
      out[lane] = std::log(in[lane]);
}

/// log4, with std::log for the lanes outside the positive normal finite
/// doubles (zero, subnormal, infinite, NaN), so every lane is a true logarithm.
PSNMF_AVX_FMA __m256d log4_or_scalar(__m256d v) {
  const __m256d normal = _mm256_and_pd(_mm256_cmp_pd(v, _mm256_set1_pd(DBL_MIN), _CMP_GE_OQ),
                                       _mm256_cmp_pd(v, _mm256_set1_pd(DBL_MAX), _CMP_LE_OQ));
  const __m256d logs = log4(v);
  const int normal_lanes = _mm256_movemask_pd(normal);
  if (normal_lanes == 0xF)
    return logs;
  alignas(32) double in[4], out[4];
  _mm256_store_pd(in, v);
  _mm256_store_pd(out, logs);
  log_other_lanes(in, out, unsigned(normal_lanes), 4);
  return _mm256_load_pd(out);
}

/// out[i] = log(in[i]): log4_or_scalar on groups of four, std::log on the
/// last n % 4 (the plain-array entry point of the tests).
PSNMF_AVX_FMA void log_array(const double *in, double *out, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    _mm256_storeu_pd(out + i, log4_or_scalar(_mm256_loadu_pd(in + i)));
  for (; i < n; ++i)
    out[i] = std::log(in[i]);
}

} // namespace psnmf::detail::simd4

#undef PSNMF_AVX_FMA
