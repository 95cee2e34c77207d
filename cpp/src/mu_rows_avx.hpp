// AVX + FMA row bodies for k a multiple of 4 (4, 8, 12, 16).
//
// Entries of a row are taken four at a time and one vector division gives
// their four ratios; the last, partial group is padded with x = 0, which adds
// nothing anywhere. For k = 4, 8 the group's four spectra rows are transposed
// in registers and the group is processed SIMD over its entries (maps_row,
// spectra_row_transposed). For k = 12, 16 that would not fit in the 16
// registers: SIMD over the components (V = k / 4 vectors per spectra row),
// four dot products through one horizontal reduction (model4). Only compiled
// where cpu_features.hpp allows; only run when the CPU has AVX and FMA.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "psnmf/divergence.hpp"
#include "row_access.hpp"
#include "simd_log.hpp"

#define PSNMF_AVX_FMA __attribute__((target("avx,fma"))) inline

namespace psnmf::detail::simd4 {

template <int V> struct Vecs {
  __m256d v[V];
};

template <int V> PSNMF_AVX_FMA Vecs<V> load(const double *p) {
  Vecs<V> out;
  for (int i = 0; i < V; ++i)
    out.v[i] = _mm256_loadu_pd(p + 4 * i);
  return out;
}

template <int V> PSNMF_AVX_FMA __m256d partial_dot(const Vecs<V> &w, const double *h) {
  __m256d m = _mm256_mul_pd(w.v[0], _mm256_loadu_pd(h));
  for (int i = 1; i < V; ++i)
    m = _mm256_fmadd_pd(w.v[i], _mm256_loadu_pd(h + 4 * i), m);
  return m;
}

/// (w . h0, w . h1, w . h2, w . h3), floored at kModelFloor.
template <int V>
PSNMF_AVX_FMA __m256d model4(const Vecs<V> &w, const double *h0, const double *h1, const double *h2,
                             const double *h3) {
  // Pairwise sums by unpack + add: cheaper than vhaddpd on common cores.
  const __m256d m0 = partial_dot<V>(w, h0), m1 = partial_dot<V>(w, h1);
  const __m256d m2 = partial_dot<V>(w, h2), m3 = partial_dot<V>(w, h3);
  const __m256d t01 = _mm256_add_pd(_mm256_unpacklo_pd(m0, m1), _mm256_unpackhi_pd(m0, m1));
  const __m256d t23 = _mm256_add_pd(_mm256_unpacklo_pd(m2, m3), _mm256_unpackhi_pd(m2, m3));
  const __m256d lambda =
      _mm256_add_pd(_mm256_permute2f128_pd(t01, t23, 0x20), _mm256_permute2f128_pd(t01, t23, 0x31));
  return _mm256_max_pd(lambda, _mm256_set1_pd(kModelFloor));
}

/// The four lanes of v, each broadcast to a whole vector (in registers: a
/// store and reload would wait on store forwarding).
PSNMF_AVX_FMA void broadcast_lanes(__m256d v, __m256d out[4]) {
  const __m256d low = _mm256_permute2f128_pd(v, v, 0x00);
  const __m256d high = _mm256_permute2f128_pd(v, v, 0x11);
  out[0] = _mm256_permute_pd(low, 0x0);
  out[1] = _mm256_permute_pd(low, 0xF);
  out[2] = _mm256_permute_pd(high, 0x0);
  out[3] = _mm256_permute_pd(high, 0xF);
}

PSNMF_AVX_FMA __m256d load4(const float *x) {
  return _mm256_cvtps_pd(_mm_loadu_ps(x));
}
PSNMF_AVX_FMA __m256d load4(const double *x) {
  return _mm256_loadu_pd(x);
}

/// Entries ahead of the current group whose columns and counts are
/// prefetched: the hardware prefetcher alone leaves the row loop waiting on
/// the CSR streams (1 thread, 65536 x 1024, k = 4: 15.2 -> 13.2 ms per
/// iteration with float64 counts, 13.2 -> 12.7 with float32).
inline constexpr std::int64_t kPrefetchEntries = 256;

/// Hint to fetch the line `bytes` past p. The address is formed as an integer:
/// it may lie past the end of the row's arrays, and a prefetch never faults.
inline void prefetch_ahead(const void *p, std::int64_t bytes) {
  __builtin_prefetch(reinterpret_cast<const void *>(reinterpret_cast<std::uintptr_t>(p) +
                                                    static_cast<std::uintptr_t>(bytes)));
}

/// Calls f(cols, x) for each group of four entries of the row: cols[4]
/// columns, x the four counts as doubles. The tail group repeats the last
/// column with x = 0.
template <class Value, class F> PSNMF_AVX_FMA void for_each_group(const RowSpan<Value> &r, F &&f) {
  // Locals: the stores f makes could alias the span's fields, which would
  // otherwise be reloaded for every group.
  const std::int32_t *const cols = r.cols;
  const Value *const x = r.x;
  const std::int64_t n = r.n;
  std::int64_t p = 0;
  for (; p + 4 <= n; p += 4) {
    prefetch_ahead(cols + p, kPrefetchEntries * sizeof(std::int32_t));
    prefetch_ahead(x + p, kPrefetchEntries * sizeof(Value));
    f(cols + p, load4(x + p), p);
  }
  if (p < n) {
    std::int32_t tail_cols[4];
    double tail_x[4] = {0.0, 0.0, 0.0, 0.0};
    for (int j = 0; j < 4; ++j) {
      const std::int64_t at = p + j < n ? p + j : n - 1;
      tail_cols[j] = cols[at];
      tail_x[j] = p + j < n ? static_cast<double>(x[at]) : 0.0;
    }
    f(tail_cols, _mm256_loadu_pd(tail_x), p);
  }
}

/// Sum of x log(ratio) over the row's nonzero counts: four at a time by log4
/// (simd_log.hpp), stored zeros contributing nothing; the sum order is fixed.
template <class Value>
PSNMF_AVX_FMA double row_log_term(const RowSpan<Value> &r, const double *ratio) {
  const __m256d zero = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0);
  __m256d sums = zero;
  std::int64_t p = 0;
  for (; p + 4 <= r.n; p += 4) {
    const __m256d x = load4(r.x + p);
    // A stored zero has ratio 0: take log 1 instead (times x = 0). Added, not
    // blended: GCC 12 turns the blend into a branch per lane.
    const __m256d at = _mm256_add_pd(_mm256_loadu_pd(ratio + p),
                                     _mm256_and_pd(_mm256_cmp_pd(x, zero, _CMP_EQ_OQ), one));
    sums = _mm256_fmadd_pd(x, log4_or_scalar(at), sums);
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, sums);
  double loss = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; p < r.n; ++p) {
    const double x = static_cast<double>(r.x[p]);
    if (x != 0.0)
      loss += x * std::log(ratio[p]);
  }
  return loss;
}

/// Rows h0..h3 (4 doubles each) transposed: t[q] = (h0[q], h1[q], h2[q], h3[q]).
PSNMF_AVX_FMA void transpose4(const double *h0, const double *h1, const double *h2,
                              const double *h3, __m256d t[4]) {
  const __m256d a = _mm256_loadu_pd(h0), b = _mm256_loadu_pd(h1);
  const __m256d c = _mm256_loadu_pd(h2), d = _mm256_loadu_pd(h3);
  const __m256d ab_lo = _mm256_unpacklo_pd(a, b), ab_hi = _mm256_unpackhi_pd(a, b);
  const __m256d cd_lo = _mm256_unpacklo_pd(c, d), cd_hi = _mm256_unpackhi_pd(c, d);
  t[0] = _mm256_permute2f128_pd(ab_lo, cd_lo, 0x20);
  t[1] = _mm256_permute2f128_pd(ab_hi, cd_hi, 0x20);
  t[2] = _mm256_permute2f128_pd(ab_lo, cd_lo, 0x31);
  t[3] = _mm256_permute2f128_pd(ab_hi, cd_hi, 0x31);
}

/// maps_row for k = 12, 16: too many components to hold the transposed group
/// in registers, so SIMD over the components instead: four dot products by
/// one horizontal reduction (model4), numerator by broadcast ratios.
template <int V, class Value>
PSNMF_AVX_FMA double maps_row_wide(const RowSpan<Value> &r, double *w, const double *spectra_t,
                                   const double *denominator, bool with_loss, double *colsum,
                                   double *ratio) {
  constexpr int K = 4 * V;
  const Vecs<V> wv = load<V>(w);
  Vecs<V> numerator;
  for (int i = 0; i < V; ++i)
    numerator.v[i] = _mm256_setzero_pd();
  for_each_group(r, [&](const std::int32_t *cols, __m256d x,
                        std::int64_t p) __attribute__((target("avx,fma"))) {
    const double *h[4] = {
        spectra_t + std::int64_t(cols[0]) * K, spectra_t + std::int64_t(cols[1]) * K,
        spectra_t + std::int64_t(cols[2]) * K, spectra_t + std::int64_t(cols[3]) * K};
    const __m256d ratio4 = _mm256_div_pd(x, model4<V>(wv, h[0], h[1], h[2], h[3]));
    _mm256_storeu_pd(ratio + p, ratio4);
    __m256d rj[4];
    broadcast_lanes(ratio4, rj);
    // Pairwise sums: one dependent add per group on each accumulator.
    for (int i = 0; i < V; ++i) {
      const __m256d s01 = _mm256_fmadd_pd(rj[0], _mm256_loadu_pd(h[0] + 4 * i),
                                          _mm256_mul_pd(rj[1], _mm256_loadu_pd(h[1] + 4 * i)));
      const __m256d s23 = _mm256_fmadd_pd(rj[2], _mm256_loadu_pd(h[2] + 4 * i),
                                          _mm256_mul_pd(rj[3], _mm256_loadu_pd(h[3] + 4 * i)));
      numerator.v[i] = _mm256_add_pd(numerator.v[i], _mm256_add_pd(s01, s23));
    }
  });
  const double loss = with_loss ? row_log_term(r, ratio) : 0.0;
  for (int i = 0; i < V; ++i) {
    const __m256d updated =
        _mm256_mul_pd(wv.v[i], _mm256_div_pd(numerator.v[i], _mm256_loadu_pd(denominator + 4 * i)));
    _mm256_storeu_pd(w + 4 * i, updated);
    _mm256_storeu_pd(colsum + 4 * i, _mm256_add_pd(_mm256_loadu_pd(colsum + 4 * i), updated));
  }
  return loss;
}

/// Maps row update: w <- w * (sum_p ratio_p h_p) / denominator, ratios at the
/// current w; adds the new w to colsum. Returns the row's log term before the
/// update when `with_loss`. `ratio` needs room for n rounded up to 4;
/// `transposed_out`, if given, receives the transposed spectra of every group
/// (k values per entry) for spectra_row_transposed.
///
/// Each group of four entries is handled transposed, SIMD over the entries:
/// lambda = sum_q w_q t_q and numerator_q += ratio . t_q, with one vector per
/// component that is reduced once per row: no horizontal sum per group.
template <int V, class Value>
PSNMF_AVX_FMA double maps_row(const RowSpan<Value> &r, double *w, const double *spectra_t,
                              const double *denominator, bool with_loss, double *colsum,
                              double *ratio, double *transposed_out = nullptr) {
  if constexpr (V > 2) {
    (void)transposed_out;
    return maps_row_wide<V>(r, w, spectra_t, denominator, with_loss, colsum, ratio);
  }
  constexpr int K = 4 * V;
  __m256d w_q[K];
  __m256d numerator_q[K];
  for (int q = 0; q < K; ++q) {
    w_q[q] = _mm256_broadcast_sd(w + q);
    numerator_q[q] = _mm256_setzero_pd();
  }
  const __m256d floor = _mm256_set1_pd(kModelFloor);
  for_each_group(r, [&](const std::int32_t *cols, __m256d x, std::int64_t p)
                        __attribute__((target("avx,fma"))) {
                          const double *h0 = spectra_t + std::int64_t(cols[0]) * K;
                          const double *h1 = spectra_t + std::int64_t(cols[1]) * K;
                          const double *h2 = spectra_t + std::int64_t(cols[2]) * K;
                          const double *h3 = spectra_t + std::int64_t(cols[3]) * K;
                          __m256d t[K];
                          for (int i = 0; i < V; ++i)
                            transpose4(h0 + 4 * i, h1 + 4 * i, h2 + 4 * i, h3 + 4 * i, t + 4 * i);
                          if (transposed_out)
                            for (int q = 0; q < K; ++q)
                              _mm256_storeu_pd(transposed_out + p * K + 4 * q, t[q]);
                          __m256d lambda = _mm256_mul_pd(w_q[0], t[0]);
                          for (int q = 1; q < K; ++q)
                            lambda = _mm256_fmadd_pd(w_q[q], t[q], lambda);
                          const __m256d ratio4 = _mm256_div_pd(x, _mm256_max_pd(lambda, floor));
                          _mm256_storeu_pd(ratio + p, ratio4);
                          for (int q = 0; q < K; ++q)
                            numerator_q[q] = _mm256_fmadd_pd(ratio4, t[q], numerator_q[q]);
                        });
  const double loss = with_loss ? row_log_term(r, ratio) : 0.0;
  for (int q = 0; q < K; ++q) {
    alignas(32) double lanes[4];
    _mm256_store_pd(lanes, numerator_q[q]);
    const double updated =
        w[q] * (((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) / denominator[q]);
    w[q] = updated;
    colsum[q] += updated;
  }
  return loss;
}

/// Spectra numerator of one row: acc_j += ratio_j * w at its entries, ratios
/// at the given w. Returns the row's log term when `with_loss`.
template <int V, class Value>
PSNMF_AVX_FMA double spectra_row(const RowSpan<Value> &r, const double *w, const double *spectra_t,
                                 bool with_loss, double *acc, double *ratio) {
  constexpr int K = 4 * V;
  const Vecs<V> wv = load<V>(w);
  for_each_group(r, [&](const std::int32_t *cols, __m256d x,
                        std::int64_t p) __attribute__((target("avx,fma"))) {
    const std::int64_t at[4] = {std::int64_t(cols[0]) * K, std::int64_t(cols[1]) * K,
                                std::int64_t(cols[2]) * K, std::int64_t(cols[3]) * K};
    const __m256d lambda =
        model4<V>(wv, spectra_t + at[0], spectra_t + at[1], spectra_t + at[2], spectra_t + at[3]);
    const __m256d ratio4 = _mm256_div_pd(x, lambda);
    _mm256_storeu_pd(ratio + p, ratio4);
    __m256d rj[4];
    broadcast_lanes(ratio4, rj);
    for (int j = 0; j < 4; ++j) {
      double *a = acc + at[j];
      for (int i = 0; i < V; ++i)
        _mm256_storeu_pd(a + 4 * i, _mm256_fmadd_pd(rj[j], wv.v[i], _mm256_loadu_pd(a + 4 * i)));
    }
  });
  return with_loss ? row_log_term(r, ratio) : 0.0;
}

/// spectra_row for the same row right after maps_row, from the transposed
/// spectra maps_row saved: no gather or transposition again.
template <int V, class Value>
PSNMF_AVX_FMA void spectra_row_transposed(const RowSpan<Value> &r, const double *w,
                                          const double *transposed, double *acc) {
  constexpr int K = 4 * V;
  __m256d w_q[K];
  for (int q = 0; q < K; ++q)
    w_q[q] = _mm256_broadcast_sd(w + q);
  const Vecs<V> wv = load<V>(w);
  const __m256d floor = _mm256_set1_pd(kModelFloor);
  for_each_group(r, [&](const std::int32_t *cols, __m256d x,
                        std::int64_t p) __attribute__((target("avx,fma"))) {
    const double *t = transposed + p * K;
    __m256d lambda = _mm256_mul_pd(w_q[0], _mm256_loadu_pd(t));
    for (int q = 1; q < K; ++q)
      lambda = _mm256_fmadd_pd(w_q[q], _mm256_loadu_pd(t + 4 * q), lambda);
    const __m256d ratio4 = _mm256_div_pd(x, _mm256_max_pd(lambda, floor));
    __m256d rj[4];
    broadcast_lanes(ratio4, rj);
    for (int j = 0; j < 4; ++j) {
      double *a = acc + std::int64_t(cols[j]) * K;
      for (int i = 0; i < V; ++i)
        _mm256_storeu_pd(a + 4 * i, _mm256_fmadd_pd(rj[j], wv.v[i], _mm256_loadu_pd(a + 4 * i)));
    }
  });
}

} // namespace psnmf::detail::simd4

#undef PSNMF_AVX_FMA
