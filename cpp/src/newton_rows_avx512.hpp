// AVX-512 Newton rows for k = 2 to 8: newton_row of newton_rows.inl (the same step,
// test and spectra statistics) with every pass over the row's entries taking
// eight entries at a time.
//
// The portable body gathers each entry's spectra row in every pass and sums
// the gradient and curvature terms (4 + 10 for k = 4) entry by entry, in scalar
// registers: it ran at about 20 cycles per stored entry, five times the MU
// rows. Here the eight spectra rows of a group are transposed once (as
// simd8::maps_row does) and saved; lambda, the ratios, curvatures and the sums
// are vectors over the group's entries, and the later passes (the step's
// direction, the trial steps, the model at the new w) read the saved
// transposes. Sums over entries are taken in eight lanes, so they round
// differently from the portable ones.
// Only compiled where cpu_features.hpp allows; only run when the CPU has
// AVX-512 F, VL and DQ.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "mu_rows_avx512.hpp"
#include "newton_step.hpp"
#include "psnmf/divergence.hpp"
#include "row_access.hpp"
#include "spectra_transpose512.hpp"

#define PSNMF_NEWTON512_TARGET __attribute__((target("avx,fma,avx2,avx512f,avx512vl,avx512dq")))

namespace psnmf::detail::simd8 {

/// The counts of the group of eight entries from p as doubles, and their
/// columns in `cols`: the row's own, or for the tail group (fewer than eight
/// left) `tail` filled with them and the last column repeated, whose count is 0
/// (as for_each_group, which also prefetches the same way).
template <class Value>
PSNMF_NEWTON512_TARGET inline __m512d group_at(const RowSpan<Value> &r, std::int64_t p,
                                               std::int32_t *tail, const std::int32_t *&cols) {
  if (p + 8 <= r.n) {
    simd4::prefetch_ahead(r.cols + p, simd4::kPrefetchEntries * sizeof(std::int32_t));
    simd4::prefetch_ahead(r.x + p, simd4::kPrefetchEntries * sizeof(Value));
    cols = r.cols + p;
    return load8(r.x + p);
  }
  const __mmask8 valid = static_cast<__mmask8>((1u << (r.n - p)) - 1u);
  _mm256_store_si256(
      reinterpret_cast<__m256i *>(tail),
      _mm256_mask_loadu_epi32(_mm256_set1_epi32(r.cols[r.n - 1]), valid, r.cols + p));
  cols = tail;
  return load8_masked(valid, r.x + p);
}

/// The largest relative rise along_p / lambda_p of the row's entries (at
/// least 0; both arrays hold the entries rounded up to 8).
PSNMF_NEWTON512_TARGET inline double largest_rise8(const double *lambda, const double *along,
                                                   std::int64_t n) {
  __m512d rise = _mm512_setzero_pd();
  for (std::int64_t p = 0; p < n; p += 8)
    rise =
        _mm512_max_pd(rise, _mm512_div_pd(_mm512_loadu_pd(along + p), _mm512_loadu_pd(lambda + p)));
  return _mm512_reduce_max_pd(rise);
}

/// The row's exact loss change at step t (row_loss_change of newton_rows.inl);
/// `q` takes the ratios of new to old model (room for the entries rounded up
/// to 8).
template <class Value>
PSNMF_NEWTON512_TARGET inline double row_loss_change8(const RowSpan<Value> &r, const double *lambda,
                                                      const double *along, double t,
                                                      double e_linear, double *q) {
  const __m512d t8 = _mm512_set1_pd(t), floor = _mm512_set1_pd(kModelFloor);
  for (std::int64_t p = 0; p < r.n; p += 8) {
    const __m512d l = _mm512_loadu_pd(lambda + p);
    const __m512d moved = _mm512_fmadd_pd(t8, _mm512_loadu_pd(along + p), l);
    _mm512_storeu_pd(q + p, _mm512_div_pd(_mm512_max_pd(moved, floor), l));
  }
  return t * e_linear - row_log_term(r, q);
}

/// First of the packed curvature's rows that the first pass over a row's
/// groups leaves to later passes (hessian_rows), which read the transposes and
/// curvatures it saved. In one pass, the accumulators (K numerator and
/// K (K + 1) / 2 curvature sums) did not fit the registers beside the
/// transposes: a store and a load for many of them in every group. One thread,
/// ms per Newton iteration at 65536 x 1024, 0.1 counts per channel, one pass
/// against these: k = 4 24.1-24.5 against 22.3-22.8, k = 5 32.8-33.3 against
/// 31.7-32.0, k = 6 45.3-46.1 against 40.7-41.5, k = 7 61.6-62.6 against
/// 59.2-59.9, k = 8 68.1-68.9 against 61.9-62.3 (the same iterates).
template <int K> inline constexpr int kFirstPassHessianRows = K <= 3 ? K : 1;

/// Curvature sums hessian_q of packed rows [A0, A1) (packed index of (a, b),
/// a <= b, as newton_row's), from the row's saved transposes and curvatures
/// (`curvature`, n rounded up to 8): the same products, summed in the same
/// order as the first pass would have.
template <int K, int A0, int A1>
PSNMF_NEWTON512_TARGET inline void hessian_rows(std::int64_t n, const double *transposed,
                                                const double *curvature, __m512d *hessian_q) {
  constexpr int first = packed_row_start(A0, K), last = packed_row_start(A1, K);
  __m512d sums[last - first];
  for (int i = 0; i < last - first; ++i)
    sums[i] = _mm512_setzero_pd();
  for (std::int64_t p = 0; p < n; p += 8) {
    const double *t = transposed + p * K;
    const __m512d c = _mm512_loadu_pd(curvature + p);
    int at = 0;
    for (int a = A0; a < A1; ++a) {
      const __m512d ca = _mm512_mul_pd(c, _mm512_loadu_pd(t + 8 * a));
      for (int b = a; b < K; ++b, ++at)
        sums[at] = _mm512_fmadd_pd(ca, _mm512_loadu_pd(t + 8 * b), sums[at]);
    }
  }
  for (int i = 0; i < last - first; ++i)
    hessian_q[first + i] = sums[i];
}

/// newton_row (newton_rows.inl) for k = K, with the same arguments plus
/// `transposed` (k values per stored entry of the row, + 8 k) and
/// `model_ratio` (room for the entries rounded up to 8; row_loss_change8).
template <int K, class Value>
PSNMF_NEWTON512_TARGET inline void
newton_row_simd8(const RowSpan<Value> &r, double *w, const double *spectra_t,
                 const double *spectra_rowsum, const double *mu_denominator, double *colsum,
                 double *acc, std::uint64_t *supports, double *lambda, double *along,
                 double *model_ratio, double *transposed, double *s) {
  constexpr int M = packed_size(K), kStride = newton_stats_stride(K);
  static_assert(kStride % 8 == 0 || kStride % 8 == 4, "whole vectors of 8 or 4 statistics");
  const __m512d floor = _mm512_set1_pd(kModelFloor), one = _mm512_set1_pd(1.0);
  // Model, ratios and curvatures at the current w; gradient and curvature sums.
  __m512d w_q[K], numerator_q[K], hessian_q[M];
  for (int q = 0; q < K; ++q) {
    w_q[q] = _mm512_set1_pd(w[q]);
    numerator_q[q] = _mm512_setzero_pd();
  }
  // The first pass's sums only (hessian_rows sets the others): zeroing all 36
  // of k = 8 took a rep stos per row.
  for (int i = 0; i < packed_row_start(kFirstPassHessianRows<K>, K); ++i)
    hessian_q[i] = _mm512_setzero_pd();
  // A plain loop, not for_each_group: through a closure's references GCC kept
  // the accumulators on the stack.
  alignas(32) std::int32_t tail_cols[8];
  for (std::int64_t p = 0; p < r.n; p += 8) {
    const std::int32_t *cols;
    const __m512d x = group_at(r, p, tail_cols, cols);
    __m512d t[K];
    transpose_rows<K>(cols, spectra_t, t);
    for (int q = 0; q < K; ++q)
      _mm512_storeu_pd(transposed + p * K + 8 * q, t[q]);
    const __m512d model = _mm512_max_pd(combine<K>(w_q, t), floor);
    _mm512_storeu_pd(lambda + p, model);
    const __m512d inverse = _mm512_div_pd(one, model);
    const __m512d ratio = _mm512_mul_pd(x, inverse), curvature = _mm512_mul_pd(ratio, inverse);
    for (int a = 0; a < K; ++a)
      numerator_q[a] = _mm512_fmadd_pd(ratio, t[a], numerator_q[a]);
    int at = 0;
    for (int a = 0; a < kFirstPassHessianRows<K>; ++a) {
      const __m512d ca = _mm512_mul_pd(curvature, t[a]);
      for (int b = a; b < K; ++b, ++at)
        hessian_q[at] = _mm512_fmadd_pd(ca, t[b], hessian_q[at]);
    }
    if constexpr (kFirstPassHessianRows<K> < K)
      _mm512_storeu_pd(along + p, curvature); // for the later passes (along is free until the step)
  }
  // The rest of the curvature sums, in passes of at most 15 sums.
  if constexpr (kFirstPassHessianRows<K> < K) {
    constexpr int R = kFirstPassHessianRows<K>, split = K <= 6 ? K : R + 2;
    hessian_rows<K, R, split>(r.n, transposed, along, hessian_q);
    if constexpr (split < K)
      hessian_rows<K, split, K>(r.n, transposed, along, hessian_q);
  }
  double numerator[K], hessian[M], g[K], e[K];
  for (int q = 0; q < K; ++q) {
    numerator[q] = lane_sum(numerator_q[q]);
    g[q] = spectra_rowsum[q] - numerator[q];
  }
  for (int i = 0; i < M; ++i)
    hessian[i] = lane_sum(hessian_q[i]);
  const double slope = lengthened_newton_step<K>(w, g, hessian, K, s, e);

  // The largest trial step in kRowTrials that passes the trapezoid test,
  // and lowers the row's loss (newton_rows.inl).
  double step = 0.0;
  if (slope < 0.0) {
    double e_linear = 0.0;
    __m512d e_q[K];
    for (int q = 0; q < K; ++q) {
      e_linear += e[q] * spectra_rowsum[q];
      e_q[q] = _mm512_set1_pd(e[q]);
    }
    // Whether some model is at the floor, now or at the accepted trial step.
    __mmask8 floored = 0;
    for (std::int64_t p = 0; p < r.n; p += 8) {
      _mm512_storeu_pd(along + p, combine_saved<K>(e_q, transposed + p * K));
      floored |= _mm512_cmp_pd_mask(_mm512_loadu_pd(lambda + p), floor, _CMP_LE_OQ);
    }
    double trapezoid = 0.0;
    for (const double trial : kRowTrials) {
      const __m512d trial8 = _mm512_set1_pd(trial);
      __m512d sum8 = _mm512_setzero_pd();
      __mmask8 at_floor = 0;
      for_each_group(r, [&](const std::int32_t *, __m512d x,
                            std::int64_t p) PSNMF_NEWTON512_TARGET {
        const __m512d a = _mm512_loadu_pd(along + p);
        const __m512d moved = _mm512_fmadd_pd(trial8, a, _mm512_loadu_pd(lambda + p));
        at_floor |= _mm512_cmp_pd_mask(moved, floor, _CMP_LE_OQ);
        sum8 = _mm512_add_pd(sum8, _mm512_div_pd(_mm512_mul_pd(x, a), _mm512_max_pd(moved, floor)));
      });
      trapezoid = slope + (e_linear - lane_sum(sum8));
      if (trapezoid <= 0.0) {
        step = trial;
        floored |= at_floor;
        break;
      }
    }
    if (step > 0.0)
      step = confirmed_step(
          step, trapezoid, hessian, w, e, K, floored != 0, e_linear, r,
          [=]() PSNMF_NEWTON512_TARGET { return largest_rise8(lambda, along, r.n); },
          [=](double at) PSNMF_NEWTON512_TARGET {
            return row_loss_change8(r, lambda, along, at, e_linear, model_ratio);
          });
  }
  // The new w and the model there: along the step, or else the MU step.
  if (step > 0.0) {
    for (int q = 0; q < K; ++q) {
      const double moved = w[q] + step * e[q];
      w[q] = moved < 0.0 ? 0.0 : moved;
    }
    const __m512d step8 = _mm512_set1_pd(step);
    for (std::int64_t p = 0; p < r.n; p += 8)
      _mm512_storeu_pd(lambda + p, _mm512_max_pd(_mm512_fmadd_pd(step8, _mm512_loadu_pd(along + p),
                                                                 _mm512_loadu_pd(lambda + p)),
                                                 floor));
  } else {
    for (int q = 0; q < K; ++q) {
      w[q] *= numerator[q] / mu_denominator[q];
      w_q[q] = _mm512_set1_pd(w[q]);
    }
    for (std::int64_t p = 0; p < r.n; p += 8)
      _mm512_storeu_pd(lambda + p, _mm512_max_pd(combine_saved<K>(w_q, transposed + p * K), floor));
  }

  // Statistics of the spectra columns at the new w: (w, packed w w^T, zero
  // padding) scaled by the ratio (first k) and the curvature (the rest).
  alignas(64) double outer[(kStride + 7) / 8 * 8];
  int at = K;
  for (int a = 0; a < K; ++a) {
    outer[a] = w[a];
    colsum[a] += w[a];
    for (int b = a; b < K; ++b)
      outer[at++] = w[a] * w[b];
  }
  for (; at < (kStride + 7) / 8 * 8; ++at)
    outer[at] = 0.0; // (not "= {}" on the array: a rep stos per row)
  if (supports)
    add_row_support(w, K, r.cols, r.n, supports);
  __m512d outer_v[(kStride + 7) / 8];
  for (int i = 0; i < kStride; i += 8)
    outer_v[i / 8] = _mm512_load_pd(outer + i);
  for_each_group(r, [&](const std::int32_t *cols, __m512d x,
                        std::int64_t p) PSNMF_NEWTON512_TARGET {
    const __m512d inverse = _mm512_div_pd(one, _mm512_loadu_pd(lambda + p));
    const __m512d ratio = _mm512_mul_pd(x, inverse), curvature = _mm512_mul_pd(ratio, inverse);
    // Fetch for writing the statistics of the entries two groups ahead: the
    // columns' statistics (128 KiB for 1024 columns at k = 4) live in L2, and
    // each entry's read-modify-write waited for them (this saved 6 % of an
    // iteration at k = 4, 8 % at k = 8).
    if (p + 24 <= r.n)
      for (int e = 16; e < 24; ++e)
        for (int i = 0; i < kStride; i += 8)
          __builtin_prefetch(acc + std::int64_t(cols[e]) * kStride + i, 1, 3);
    for (int e = 0; e < 8; ++e) {
      const __m512i lane = _mm512_set1_epi64(e);
      const __m512d ratio_e = _mm512_permutexvar_pd(lane, ratio);
      const __m512d curvature_e = _mm512_permutexvar_pd(lane, curvature);
      double *a = acc + std::int64_t(cols[e]) * kStride;
      // Vector i / 8 covers statistics i..i+7: ratio below K, curvature from K.
      for (int i = 0; i + 8 <= kStride; i += 8) {
        const __m512d coef = i + 8 <= K ? ratio_e
                             : i >= K ? curvature_e
                                      : _mm512_mask_blend_pd(static_cast<__mmask8>(0xFF << (K - i)),
                                                             ratio_e, curvature_e);
        _mm512_storeu_pd(a + i, _mm512_fmadd_pd(coef, outer_v[i / 8], _mm512_loadu_pd(a + i)));
      }
      if constexpr (kStride % 8 == 4) { // the last four: curvature (K <= kStride - 4)
        constexpr int i = kStride - 4;
        _mm256_storeu_pd(a + i, _mm256_fmadd_pd(_mm512_castpd512_pd256(curvature_e),
                                                _mm512_castpd512_pd256(outer_v[i / 8]),
                                                _mm256_loadu_pd(a + i)));
      }
    }
  });
}

} // namespace psnmf::detail::simd8

#undef PSNMF_NEWTON512_TARGET
