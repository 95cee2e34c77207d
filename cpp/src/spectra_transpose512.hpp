// Eight entries' spectra rows, transposed into vectors over the entries
// (AVX-512 F): what every AVX-512 row body (MU and Newton) does first with a
// group of eight stored entries, so that lambda, the ratios and the sums
// over entries are vector operations. Only compiled where cpu_features.hpp
// allows; only run when the CPU has AVX-512 F, VL and DQ.
#pragma once

#include <immintrin.h>

#include <cstdint>

#define PSNMF_TRANSPOSE512 __attribute__((target("avx,fma,avx2,avx512f,avx512vl,avx512dq"))) inline

namespace psnmf::detail::simd8 {

/// The 256-bit rows at lo and hi side by side.
PSNMF_TRANSPOSE512 __m512d two_quads(const double *lo, const double *hi) {
  return _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_loadu_pd(lo)), _mm256_loadu_pd(hi), 1);
}

/// Components off..off+3 of the eight spectra rows h[e], transposed:
/// t[q] = (h0[off + q], ..., h7[off + q]).
PSNMF_TRANSPOSE512 void transpose8x4(const double *const h[8], int off, __m512d t[4]) {
  // Rows 0|2, 1|3, 4|6, 5|7 side by side; unpacking pairs the rows within each
  // 128-bit lane, and the lane shuffle puts each component's lanes in order.
  const __m512d a = two_quads(h[0] + off, h[2] + off), b = two_quads(h[1] + off, h[3] + off);
  const __m512d c = two_quads(h[4] + off, h[6] + off), d = two_quads(h[5] + off, h[7] + off);
  const __m512d ab_lo = _mm512_unpacklo_pd(a, b), ab_hi = _mm512_unpackhi_pd(a, b);
  const __m512d cd_lo = _mm512_unpacklo_pd(c, d), cd_hi = _mm512_unpackhi_pd(c, d);
  t[0] = _mm512_shuffle_f64x2(ab_lo, cd_lo, _MM_SHUFFLE(2, 0, 2, 0));
  t[1] = _mm512_shuffle_f64x2(ab_hi, cd_hi, _MM_SHUFFLE(2, 0, 2, 0));
  t[2] = _mm512_shuffle_f64x2(ab_lo, cd_lo, _MM_SHUFFLE(3, 1, 3, 1));
  t[3] = _mm512_shuffle_f64x2(ab_hi, cd_hi, _MM_SHUFFLE(3, 1, 3, 1));
}

/// The two values at a, b, c and d, in this order in the vector's four 128-bit lanes.
PSNMF_TRANSPOSE512 __m512d four_pairs(const double *a, const double *b, const double *c,
                                      const double *d) {
  const __m512d ab =
      _mm512_insertf64x2(_mm512_castpd128_pd512(_mm_loadu_pd(a)), _mm_loadu_pd(b), 1);
  return _mm512_insertf64x2(_mm512_insertf64x2(ab, _mm_loadu_pd(c), 2), _mm_loadu_pd(d), 3);
}

/// Components off and off + 1 of the eight spectra rows h[e], transposed:
/// t[q] = (h0[off + q], ..., h7[off + q]).
PSNMF_TRANSPOSE512 void transpose8x2(const double *const h[8], int off, __m512d t[2]) {
  // Rows 0|2|4|6 and 1|3|5|7 side by side: unpacking pairs them within each
  // 128-bit lane, already in order.
  const __m512d even = four_pairs(h[0] + off, h[2] + off, h[4] + off, h[6] + off);
  const __m512d odd = four_pairs(h[1] + off, h[3] + off, h[5] + off, h[7] + off);
  t[0] = _mm512_unpacklo_pd(even, odd);
  t[1] = _mm512_unpackhi_pd(even, odd);
}

/// The spectra rows (K values each, 2 <= K <= 8) of the eight columns,
/// transposed: t[q] = component q of each column's row.
template <int K>
PSNMF_TRANSPOSE512 void transpose_rows(const std::int32_t *cols, const double *spectra_t,
                                       __m512d t[K]) {
  static_assert(K >= 2 && K <= 8, "rows of 2 to 8 components");
  const double *h[8];
  for (int e = 0; e < 8; ++e)
    h[e] = spectra_t + std::int64_t(cols[e]) * K;
  // Groups of four components, then two, then a last odd one.
  constexpr int quads = K / 4, pair = K % 4 >= 2 ? 2 : 0;
  for (int i = 0; i < quads; ++i)
    transpose8x4(h, 4 * i, t + 4 * i);
  if constexpr (pair > 0)
    transpose8x2(h, 4 * quads, t + 4 * quads);
  if constexpr (K % 2 == 1)
    t[K - 1] = _mm512_set_pd(h[7][K - 1], h[6][K - 1], h[5][K - 1], h[4][K - 1], h[3][K - 1],
                             h[2][K - 1], h[1][K - 1], h[0][K - 1]);
}

} // namespace psnmf::detail::simd8

#undef PSNMF_TRANSPOSE512
