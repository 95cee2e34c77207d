// AVX-512 fused row bodies for k = 2 to 8.
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
#include "spectra_transpose512.hpp"

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

/// The two halves of v added (lane_sum's first step).
PSNMF_AVX512 __m256d halves_added(__m512d v) {
  return _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
}

/// Sum of the eight lanes, in a fixed order.
PSNMF_AVX512 double lane_sum(__m512d v) {
  const __m256d half = halves_added(v);
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, half);
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

/// lane_sum of four vectors at once, the same sums in the same order: each
/// vector's halves added, then (l0 + l1) + (l2 + l3).
PSNMF_AVX512 __m256d lane_sums4(__m512d a, __m512d b, __m512d c, __m512d d) {
  const __m256d ab = _mm256_hadd_pd(halves_added(a), halves_added(b)); // a01 b01 a23 b23
  const __m256d cd = _mm256_hadd_pd(halves_added(c), halves_added(d)); // c01 d01 c23 d23
  return _mm256_add_pd(_mm256_permute2f128_pd(ab, cd, 0x20), _mm256_permute2f128_pd(ab, cd, 0x31));
}

/// w <- w * (lane sums of numerator_q / denominator), the new w added to
/// colsum: four components per vector (one division for four instead of a
/// chain of scalar ones at the end of every row), the rest one by one.
template <int K>
PSNMF_AVX512 void update_row(const __m512d numerator_q[K], const double *denominator, double *w,
                             double *colsum) {
  int q = 0;
  for (; q + 4 <= K; q += 4) {
    const __m256d sums =
        lane_sums4(numerator_q[q], numerator_q[q + 1], numerator_q[q + 2], numerator_q[q + 3]);
    const __m256d updated = _mm256_mul_pd(_mm256_loadu_pd(w + q),
                                          _mm256_div_pd(sums, _mm256_loadu_pd(denominator + q)));
    _mm256_storeu_pd(w + q, updated);
    _mm256_storeu_pd(colsum + q, _mm256_add_pd(_mm256_loadu_pd(colsum + q), updated));
  }
  for (; q < K; ++q) {
    const double updated = w[q] * (lane_sum(numerator_q[q]) / denominator[q]);
    w[q] = updated;
    colsum[q] += updated;
  }
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

/// a[0, K) += ratio * w_row (ratio: the same value in every lane; lanes of
/// w_row from K on are not used). Nothing past a[K - 1] is read or written:
/// the next column's values follow. In pieces of 8, 4, 2 and 1 values: one
/// masked read-modify-write per entry instead made k = 6 slower than padding it
/// to 8 (21.5 against 18.7 ms per iteration; 15.5 in pieces).
template <int K> PSNMF_AVX512 void add_scaled(double *a, __m512d ratio, __m512d w_row) {
  if constexpr (K == 8) {
    _mm512_storeu_pd(a, _mm512_fmadd_pd(ratio, w_row, _mm512_loadu_pd(a)));
  } else {
    constexpr int quad = K >= 4 ? 4 : 0, pair = K - quad >= 2 ? 2 : 0;
    const __m256d r = _mm512_castpd512_pd256(ratio);
    if constexpr (quad > 0)
      _mm256_storeu_pd(a, _mm256_fmadd_pd(r, _mm512_castpd512_pd256(w_row), _mm256_loadu_pd(a)));
    if constexpr (pair > 0) {
      const __m128d w2 =
          quad > 0 ? _mm512_extractf64x2_pd(w_row, 2) : _mm512_castpd512_pd128(w_row);
      _mm_storeu_pd(a + quad, _mm_fmadd_pd(_mm256_castpd256_pd128(r), w2, _mm_loadu_pd(a + quad)));
    }
    if constexpr (K % 2 == 1) {
      // Lane K - 1 is the low one of its 128-bit lane.
      const __m128d w1 = _mm512_extractf64x2_pd(w_row, (K - 1) / 2);
      _mm_store_sd(a + K - 1, _mm_fmadd_sd(_mm256_castpd256_pd128(r), w1, _mm_load_sd(a + K - 1)));
    }
  }
}

/// ratio_p = x_p / max(lambda_p, floor) over the row, k = K, with the same
/// lambda as maps_row (the same operations in the same order): the losses of
/// the fused rows and of a pass of its own agree to the bit. `ratio` needs
/// room for n rounded up to 8.
template <int K, class Value>
PSNMF_AVX512 void row_ratios(const RowSpan<Value> &r, const double *w, const double *spectra_t,
                             double *ratio) {
  __m512d w_q[K];
  for (int q = 0; q < K; ++q)
    w_q[q] = _mm512_set1_pd(w[q]);
  const __m512d floor = _mm512_set1_pd(kModelFloor);
  for_each_group(r, [&](const std::int32_t *cols, __m512d x, std::int64_t p) PSNMF_AVX512_TARGET {
    __m512d t[K];
    transpose_rows<K>(cols, spectra_t, t);
    _mm512_storeu_pd(ratio + p, _mm512_div_pd(x, _mm512_max_pd(combine<K>(w_q, t), floor)));
  });
}

/// Maps row update for k = K (2 to 8), as simd4::maps_row: w <- w *
/// (sum_p ratio_p h_p) / denominator at the current w, the new w added to
/// colsum; the transposed spectra of every group saved in `transposed_out`,
/// if given, for spectra_row_transposed (k values per entry). Returns the row's log term
/// before the update when `with_loss`. `ratio` needs room for n rounded up to 8.
template <int K, class Value>
PSNMF_AVX512 double maps_row(const RowSpan<Value> &r, double *w, const double *spectra_t,
                             const double *denominator, bool with_loss, double *colsum,
                             double *ratio, double *transposed_out) {
  static_assert(K >= 2 && K <= 8, "eight entries by K components fit the registers for K <= 8");
  __m512d w_q[K], numerator_q[K];
  for (int q = 0; q < K; ++q) {
    w_q[q] = _mm512_set1_pd(w[q]);
    numerator_q[q] = _mm512_setzero_pd();
  }
  const __m512d floor = _mm512_set1_pd(kModelFloor);
  for_each_group(r, [&](const std::int32_t *cols, __m512d x, std::int64_t p) PSNMF_AVX512_TARGET {
    __m512d t[K];
    transpose_rows<K>(cols, spectra_t, t);
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
  update_row<K>(numerator_q, denominator, w, colsum);
  return loss;
}

/// Spectra numerator of the row right after maps_row, from the transposed
/// spectra it saved: acc_j += ratio_j * w at the updated w, entry by entry in
/// order (the same sums as simd4::spectra_row_transposed).
template <int K, class Value>
PSNMF_AVX512 void spectra_row_transposed(const RowSpan<Value> &r, const double *w,
                                         const double *transposed, double *acc) {
  __m512d w_q[K];
  for (int q = 0; q < K; ++q)
    w_q[q] = _mm512_set1_pd(w[q]);
  // The row of w as one vector, zero past K.
  const __m512d w_row = _mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << K) - 1u), w);
  const __m512d floor = _mm512_set1_pd(kModelFloor);
  const std::int64_t n = r.n;
  for_each_group(r, [&](const std::int32_t *cols, __m512d x, std::int64_t p) PSNMF_AVX512_TARGET {
    const __m512d lambda = combine_saved<K>(w_q, transposed + p * K);
    const __m512d ratio8 = _mm512_div_pd(x, _mm512_max_pd(lambda, floor));
    const auto add_entry = [&](int e) PSNMF_AVX512_TARGET {
      // One lane to all: vpermpd with an index vector was faster here than
      // four-lane permutes of the two halves.
      const __m512d ratio_e = _mm512_permutexvar_pd(_mm512_set1_epi64(e), ratio8);
      add_scaled<K>(acc + std::int64_t(cols[e]) * K, ratio_e, w_row);
    };
    if (n - p >= 8) {
      for (int e = 0; e < 8; ++e)
        add_entry(e);
    } else {
      // The tail's padding entries (x = 0) would add zeros to the last
      // column, each read-modify-write waiting for the one before.
      for (int e = 0; e < n - p; ++e)
        add_entry(e);
    }
  });
}

} // namespace psnmf::detail::simd8

#undef PSNMF_AVX512
#undef PSNMF_AVX512_TARGET
