// Natural logarithm of eight doubles at once (AVX-512 F), for the loss: the
// operations of simd4::log4 (simd_log.hpp) lane by lane, so each lane equals
// log4's bit for bit (cpp/tests/test_simd_log.cpp checks it), with half the
// instructions per value. Only compiled where cpu_features.hpp allows; only run
// when the CPU has AVX-512 F.
#pragma once

#include <immintrin.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <iterator>

#include "simd_log.hpp"

#define PSNMF_AVX512F __attribute__((target("avx,fma,avx2,avx512f"))) inline

namespace psnmf::detail::simd8 {

/// log(v) for eight positive normal finite doubles (other lanes: meaningless).
PSNMF_AVX512F __m512d log8(__m512d v) {
  const __m512d one = _mm512_set1_pd(1.0);
  const __m512i bits = _mm512_castpd_si512(v);
  // The 11 exponent bits under the exponent of 2^52, read as 2^52 + field; the
  // mantissa with the exponent of 1: m in [1, 2).
  const __m512d field = _mm512_castsi512_pd(
      _mm512_or_si512(_mm512_srli_epi64(bits, 52), _mm512_set1_epi64(0x4330000000000000LL)));
  __m512d e = _mm512_sub_pd(field, _mm512_set1_pd(4503599627370496.0 + 1023.0));
  __m512d m = _mm512_castsi512_pd(
      _mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi64(0x000FFFFFFFFFFFFFLL)),
                      _mm512_set1_epi64(0x3FF0000000000000LL)));
  // m in [sqrt(1/2), sqrt(2)): halve the mantissas above sqrt(2) (log4
  // multiplies the others by 1 and adds 0 to their e: the same values).
  const __mmask8 above = _mm512_cmp_pd_mask(m, _mm512_set1_pd(1.4142135623730951), _CMP_GT_OQ);
  m = _mm512_mask_mul_pd(m, above, m, _mm512_set1_pd(0.5));
  e = _mm512_mask_add_pd(e, above, e, one);
  const __m512d s = _mm512_div_pd(_mm512_sub_pd(m, one), _mm512_add_pd(m, one));
  const __m512d z = _mm512_mul_pd(s, s);
  __m512d series = _mm512_set1_pd(kAtanhSeries[0]);
  for (int i = 1; i < int(std::size(kAtanhSeries)); ++i)
    series = _mm512_fmadd_pd(series, z, _mm512_set1_pd(kAtanhSeries[i]));
  const __m512d two_s = _mm512_add_pd(s, s);
  const __m512d log_m = _mm512_fmadd_pd(_mm512_mul_pd(two_s, z), series, two_s);
  return _mm512_fmadd_pd(e, _mm512_set1_pd(kLn2High),
                         _mm512_fmadd_pd(e, _mm512_set1_pd(kLn2Low), log_m));
}

/// log8, with std::log for the lanes outside the positive normal finite
/// doubles (zero, subnormal, infinite, NaN), so every lane is a true logarithm.
PSNMF_AVX512F __m512d log8_or_scalar(__m512d v) {
  const __mmask8 normal = _mm512_cmp_pd_mask(v, _mm512_set1_pd(DBL_MIN), _CMP_GE_OQ) &
                          _mm512_cmp_pd_mask(v, _mm512_set1_pd(DBL_MAX), _CMP_LE_OQ);
  const __m512d logs = log8(v);
  if (normal == 0xFF)
    return logs;
  alignas(64) double in[8], out[8];
  _mm512_store_pd(in, v);
  _mm512_store_pd(out, logs);
  simd4::log_other_lanes(in, out, normal, 8);
  return _mm512_load_pd(out);
}

/// out[i] = log(in[i]): log8_or_scalar on groups of eight, std::log on the
/// last n % 8 (the plain-array entry point of the tests).
PSNMF_AVX512F void log_array(const double *in, double *out, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm512_storeu_pd(out + i, log8_or_scalar(_mm512_loadu_pd(in + i)));
  for (; i < n; ++i)
    out[i] = std::log(in[i]);
}

} // namespace psnmf::detail::simd8

#undef PSNMF_AVX512F
