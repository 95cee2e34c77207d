// AVX-512 fused row bodies for k = 4 and 8.
//
// The same arithmetic as the AVX rows of mu_rows_avx.hpp (same lambda, the
// same ratio for every entry, the same spectra numerator), eight entries per
// group instead of four: a group takes about a third fewer instructions, which
// is what bounds these rows (they run at about 2.7 instructions per cycle, far
// from the memory bandwidth). Only the maps numerator is summed in another
// order (eight partial sums instead of four). Only compiled where
// cpu_features.hpp allows; only run when the CPU has AVX-512 F, VL and DQ.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "mu_rows_avx.hpp"
#include "psnmf/divergence.hpp"
#include "row_access.hpp"
#include "simd_log512.hpp"

#define PSNMF_AVX512_TARGET __attribute__((target("avx,fma,avx2,avx512f,avx512vl,avx512dq")))
#define PSNMF_AVX512 PSNMF_AVX512_TARGET inline

namespace psnmf::detail::simd8 {

PSNMF_AVX512 __m512d load8(const float *x) {
  return _mm512_cvtps_pd(_mm256_loadu_ps(x));
}
PSNMF_AVX512 __m512d load8(const double *x) {
  return _mm512_loadu_pd(x);
}
/// The counts of the lanes in `valid`, zero elsewhere (no load there).
PSNMF_AVX512 __m512d load8_masked(__mmask8 valid, const float *x) {
  return _mm512_cvtps_pd(_mm256_maskz_loadu_ps(valid, x));
}
PSNMF_AVX512 __m512d load8_masked(__mmask8 valid, const double *x) {
  return _mm512_maskz_loadu_pd(valid, x);
}

/// Calls f(cols, x, p) for each group of eight entries of the row: cols[8]
/// columns, x the eight counts as doubles, p the group's first entry. The tail
/// group repeats the last column with x = 0, which adds nothing anywhere.
template <class Value, class F> PSNMF_AVX512 void for_each_group(const RowSpan<Value> &r, F &&f) {
  // Locals: the stores f makes could alias the span's fields.
  const std::int32_t *const cols = r.cols;
  const Value *const x = r.x;
  const std::int64_t n = r.n;
  std::int64_t p = 0;
  for (; p + 8 <= n; p += 8) {
    simd4::prefetch_ahead(cols + p, simd4::kPrefetchEntries * sizeof(std::int32_t));
    simd4::prefetch_ahead(x + p, simd4::kPrefetchEntries * sizeof(Value));
    f(cols + p, load8(x + p), p);
  }
  if (p < n) {
    // Branch-free (masked loads): the tail's length varies from row to row.
    const __mmask8 valid = static_cast<__mmask8>((1u << (n - p)) - 1u);
    alignas(32) std::int32_t tail_cols[8];
    _mm256_store_si256(reinterpret_cast<__m256i *>(tail_cols),
                       _mm256_mask_loadu_epi32(_mm256_set1_epi32(cols[n - 1]), valid, cols + p));
    f(tail_cols, load8_masked(valid, x + p), p);
  }
}

/// Components off..off+3 of the eight spectra rows h[e], transposed:
/// t[q] = (h0[off + q], ..., h7[off + q]).
PSNMF_AVX512 void transpose8x4(const double *const h[8], int off, __m512d t[4]) {
  // Rows 0|2, 1|3, 4|6, 5|7 side by side; unpacking pairs the rows within each
  // 128-bit lane, and the lane shuffle puts each component's lanes in order.
  const auto pair = [off](const double *lo, const double *hi) PSNMF_AVX512_TARGET {
    return _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_loadu_pd(lo + off)),
                              _mm256_loadu_pd(hi + off), 1);
  };
  const __m512d a = pair(h[0], h[2]), b = pair(h[1], h[3]);
  const __m512d c = pair(h[4], h[6]), d = pair(h[5], h[7]);
  const __m512d ab_lo = _mm512_unpacklo_pd(a, b), ab_hi = _mm512_unpackhi_pd(a, b);
  const __m512d cd_lo = _mm512_unpacklo_pd(c, d), cd_hi = _mm512_unpackhi_pd(c, d);
  t[0] = _mm512_shuffle_f64x2(ab_lo, cd_lo, _MM_SHUFFLE(2, 0, 2, 0));
  t[1] = _mm512_shuffle_f64x2(ab_hi, cd_hi, _MM_SHUFFLE(2, 0, 2, 0));
  t[2] = _mm512_shuffle_f64x2(ab_lo, cd_lo, _MM_SHUFFLE(3, 1, 3, 1));
  t[3] = _mm512_shuffle_f64x2(ab_hi, cd_hi, _MM_SHUFFLE(3, 1, 3, 1));
}

/// The spectra rows (K = 4 V values each) of the eight columns, transposed:
/// t[q] = component q of each column's row.
template <int V>
PSNMF_AVX512 void transpose_group(const std::int32_t *cols, const double *spectra_t,
                                  __m512d t[4 * V]) {
  const double *h[8];
  for (int e = 0; e < 8; ++e)
    h[e] = spectra_t + std::int64_t(cols[e]) * (4 * V);
  for (int i = 0; i < V; ++i)
    transpose8x4(h, 4 * i, t + 4 * i);
}

/// sum_q c[q] t[q] over K components: c[0] t[0], then one FMA per component in
/// order (every lambda of these rows is summed so).
template <int K> PSNMF_AVX512 __m512d combine(const __m512d c[K], const __m512d t[K]) {
  __m512d sum = _mm512_mul_pd(c[0], t[0]);
  for (int q = 1; q < K; ++q)
    sum = _mm512_fmadd_pd(c[q], t[q], sum);
  return sum;
}

/// combine with t read from a saved transposed group (K vectors of 8 from t).
template <int K> PSNMF_AVX512 __m512d combine_saved(const __m512d c[K], const double *t) {
  __m512d sum = _mm512_mul_pd(c[0], _mm512_loadu_pd(t));
  for (int q = 1; q < K; ++q)
    sum = _mm512_fmadd_pd(c[q], _mm512_loadu_pd(t + 8 * q), sum);
  return sum;
}

/// Sum of the eight lanes, in a fixed order.
PSNMF_AVX512 double lane_sum(__m512d v) {
  const __m256d half = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, half);
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

/// Sum of x log(ratio) over the row's nonzero counts, eight at a time by log8
/// (simd4::row_log_term with eight lanes: the same logs, summed in another
/// fixed order). Every loss of these rows comes from it.
template <class Value>
PSNMF_AVX512 double row_log_term(const RowSpan<Value> &r, const double *ratio) {
  const __m512d one = _mm512_set1_pd(1.0);
  __m512d sums = _mm512_setzero_pd();
  for (std::int64_t p = 0; p < r.n; p += 8) {
    // Lanes past the row: x = 0 and ratio 0; a stored zero has ratio 0: log 1
    // instead (times x = 0).
    const __mmask8 valid =
        r.n - p >= 8 ? __mmask8(0xFF) : static_cast<__mmask8>((1u << (r.n - p)) - 1u);
    const __m512d x = load8_masked(valid, r.x + p);
    const __m512d ratio8 = _mm512_maskz_loadu_pd(valid, ratio + p);
    const __mmask8 zero = _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_EQ_OQ);
    sums = _mm512_fmadd_pd(x, log8_or_scalar(_mm512_mask_add_pd(ratio8, zero, ratio8, one)), sums);
  }
  return lane_sum(sums);
}

/// a[0, 4 V) += ratio * w_row (ratio: the same value in every lane).
template <int V> PSNMF_AVX512 void add_scaled(double *a, __m512d ratio, __m512d w_row) {
  if constexpr (V == 1)
    _mm256_storeu_pd(a, _mm256_fmadd_pd(_mm512_castpd512_pd256(ratio),
                                        _mm512_castpd512_pd256(w_row), _mm256_loadu_pd(a)));
  else
    _mm512_storeu_pd(a, _mm512_fmadd_pd(ratio, w_row, _mm512_loadu_pd(a)));
}

/// ratio_p = x_p / max(lambda_p, floor) over the row, k = 4 V, with the same
/// lambda as maps_row (the same operations in the same order): the losses of
/// the fused rows and of a pass of its own agree to the bit. `ratio` needs
/// room for n rounded up to 8.
template <int V, class Value>
PSNMF_AVX512 void row_ratios(const RowSpan<Value> &r, const double *w, const double *spectra_t,
                             double *ratio) {
  constexpr int K = 4 * V;
  __m512d w_q[K];
  for (int q = 0; q < K; ++q)
    w_q[q] = _mm512_set1_pd(w[q]);
  const __m512d floor = _mm512_set1_pd(kModelFloor);
  for_each_group(r, [&](const std::int32_t *cols, __m512d x, std::int64_t p) PSNMF_AVX512_TARGET {
    __m512d t[K];
    transpose_group<V>(cols, spectra_t, t);
    _mm512_storeu_pd(ratio + p, _mm512_div_pd(x, _mm512_max_pd(combine<K>(w_q, t), floor)));
  });
}

/// Maps row update for k = 4 V (V = 1, 2), as simd4::maps_row: w <- w *
/// (sum_p ratio_p h_p) / denominator at the current w, the new w added to
/// colsum; the transposed spectra of every group saved in `transposed_out`,
/// if given, for spectra_row_transposed (k values per entry). Returns the row's log term
/// before the update when `with_loss`. `ratio` needs room for n rounded up to 8.
template <int V, class Value>
PSNMF_AVX512 double maps_row(const RowSpan<Value> &r, double *w, const double *spectra_t,
                             const double *denominator, bool with_loss, double *colsum,
                             double *ratio, double *transposed_out) {
  static_assert(V == 1 || V == 2, "eight entries by 4 V components fit the registers for V <= 2");
  constexpr int K = 4 * V;
  __m512d w_q[K], numerator_q[K];
  for (int q = 0; q < K; ++q) {
    w_q[q] = _mm512_set1_pd(w[q]);
    numerator_q[q] = _mm512_setzero_pd();
  }
  const __m512d floor = _mm512_set1_pd(kModelFloor);
  for_each_group(r, [&](const std::int32_t *cols, __m512d x, std::int64_t p) PSNMF_AVX512_TARGET {
    __m512d t[K];
    transpose_group<V>(cols, spectra_t, t);
    if (transposed_out)
      for (int q = 0; q < K; ++q)
        _mm512_storeu_pd(transposed_out + p * K + 8 * q, t[q]);
    const __m512d lambda = combine<K>(w_q, t);
    const __m512d ratio8 = _mm512_div_pd(x, _mm512_max_pd(lambda, floor));
    _mm512_storeu_pd(ratio + p, ratio8);
    for (int q = 0; q < K; ++q)
      numerator_q[q] = _mm512_fmadd_pd(ratio8, t[q], numerator_q[q]);
  });
  const double loss = with_loss ? row_log_term(r, ratio) : 0.0;
  for (int q = 0; q < K; ++q) {
    const double updated = w[q] * (lane_sum(numerator_q[q]) / denominator[q]);
    w[q] = updated;
    colsum[q] += updated;
  }
  return loss;
}

/// Spectra numerator of the row right after maps_row, from the transposed
/// spectra it saved: acc_j += ratio_j * w at the updated w, entry by entry in
/// order (the same sums as simd4::spectra_row_transposed).
template <int V, class Value>
PSNMF_AVX512 void spectra_row_transposed(const RowSpan<Value> &r, const double *w,
                                         const double *transposed, double *acc) {
  constexpr int K = 4 * V;
  __m512d w_q[K];
  for (int q = 0; q < K; ++q)
    w_q[q] = _mm512_set1_pd(w[q]);
  // The row of w as one vector: its four values twice for V = 1, all eight for V = 2.
  const __m512d w_row = V == 1 ? _mm512_broadcast_f64x4(_mm256_loadu_pd(w)) : _mm512_loadu_pd(w);
  const __m512d floor = _mm512_set1_pd(kModelFloor);
  for_each_group(r, [&](const std::int32_t *cols, __m512d x, std::int64_t p) PSNMF_AVX512_TARGET {
    const __m512d lambda = combine_saved<K>(w_q, transposed + p * K);
    const __m512d ratio8 = _mm512_div_pd(x, _mm512_max_pd(lambda, floor));
    for (int e = 0; e < 8; ++e) {
      // One lane to all: vpermpd with an index vector was faster here than
      // four-lane permutes of the two halves.
      const __m512d ratio_e = _mm512_permutexvar_pd(_mm512_set1_epi64(e), ratio8);
      add_scaled<V>(acc + std::int64_t(cols[e]) * K, ratio_e, w_row);
    }
  });
}

} // namespace psnmf::detail::simd8

#undef PSNMF_AVX512
#undef PSNMF_AVX512_TARGET
