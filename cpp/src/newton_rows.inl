// The row body of the Newton solver, for one instruction set (included by
// mu_rows.inl inside its variant namespace, which also supplies model_at).
//
// One maps row takes a projected Newton step with the spectra fixed, lengthened
// (over_relaxed, newton_step.hpp), accepted at the largest t in kRowTrials
// that passes the trapezoid test below and lowers the row's loss; otherwise it
// takes the MU step, which never raises it. The row then adds its share of the spectra
// columns' gradient and curvature at its new values, while it is in cache.

/// ratio = x / lambda and curvature = x / lambda^2 for the row's entries: one
/// division each, in a loop of its own that the compiler vectorises.
template <class Value>
PSNMF_ROWS_TARGET inline void ratios_and_curvatures(const RowSpan<Value> &r, const double *lambda,
                                                    double *ratio, double *curvature) {
  for (std::int64_t p = 0; p < r.n; ++p) {
    const double inverse = 1.0 / lambda[p];
    ratio[p] = static_cast<double>(r.x[p]) * inverse;
    curvature[p] = ratio[p] * inverse;
  }
}

/// The exact change of the row's loss at step t along the step: t e_linear -
/// sum_p x_p log(lambda_p(t) / lambda_p), with lambda_p(t) = max(lambda_p + t
/// along_p, floor) (e_linear = e . spectra row sums). `q` takes the ratios.
template <class Value>
PSNMF_ROWS_TARGET inline double row_loss_change(const RowSpan<Value> &r, const double *lambda,
                                                const double *along, double t, double e_linear,
                                                double *q) {
  for (std::int64_t p = 0; p < r.n; ++p) {
    const double moved = lambda[p] + t * along[p];
    q[p] = (moved < kModelFloor ? kModelFloor : moved) / lambda[p];
  }
  return t * e_linear - row_log_sum(r, q);
}

/// The largest relative rise along_p / lambda_p of the row's n entries (at least 0).
PSNMF_ROWS_TARGET inline double largest_rise(const double *lambda, const double *along,
                                             std::int64_t n) {
  double rise = 0.0;
  for (std::int64_t p = 0; p < n; ++p)
    rise = std::max(rise, along[p] / lambda[p]);
  return rise;
}

/// Eight doubles (GCC vector extension: zmm where the variant has AVX-512).
typedef double Vec8 __attribute__((vector_size(64)));

/// out = h[0 .. N) in the first N lanes, zeros after: built lane by lane,
/// which the compiler turns into one load (copied into a zeroed vector, the
/// partial store and the wider load after it missed store forwarding).
template <int N, std::size_t... L>
PSNMF_ROWS_TARGET inline void load_first(const double *h, Vec8 &out, std::index_sequence<L...>) {
  out = Vec8{(int(L) < N ? h[L] : 0.0)...};
}

/// The K values of a spectra row as Vec8s, the lanes past K zero.
template <int K, int V = (K + 7) / 8>
PSNMF_ROWS_TARGET inline void load_spectra_row(const double *h, Vec8 (&hv)[V]) {
#pragma GCC unroll 4
  for (int v = 0; v + 1 < V; ++v)
    __builtin_memcpy(&hv[v], h + 8 * v, sizeof(Vec8));
  load_first<K - 8 * (V - 1)>(h + 8 * (V - 1), hv[V - 1], std::make_index_sequence<8>{});
}

/// The maps row's gradient numerators sum_p ratio_p h_p (K values) and packed
/// curvature sum_p curvature_p h_p h_p^T (packed_size(K)) for K > 8 known at
/// compile time, in vectors over the second component b: row a of the
/// curvature keeps the vectors of lanes from a's own vector of 8 on (the upper
/// block). Each sum takes the same products in the same order as the scalar
/// loop of newton_row (curvature_p h_a, times h_b), which spilled its
/// packed_size(K) sums to the stack.
template <int K, class Value>
PSNMF_ROWS_TARGET inline void wide_row_statistics(const RowSpan<Value> &r, const double *spectra_t,
                                                  const double *ratio, const double *curvature,
                                                  double *numerator, double *hessian) {
  constexpr int V = (K + 7) / 8;
  Vec8 num[V] = {};
  Vec8 hess[K][V] = {}; // [a][v]: lanes b = 8 v to 8 v + 7, for v >= a / 8
  for (std::int64_t p = 0; p < r.n; ++p) {
    const double *h = spectra_t + std::int64_t(r.cols[p]) * K;
    Vec8 hv[V];
    load_spectra_row<K>(h, hv);
    const double ratio_p = ratio[p], curvature_p = curvature[p];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v)
      num[v] += ratio_p * hv[v];
#pragma GCC unroll 16
    for (int a = 0; a < K; ++a) {
      const double ca = curvature_p * h[a];
#pragma GCC unroll 4
      for (int v = a / 8; v < V; ++v)
        hess[a][v] += ca * hv[v];
    }
  }
  for (int q = 0; q < K; ++q)
    numerator[q] = num[q / 8][q % 8];
  for (int a = 0; a < K; ++a)
    for (int b = a; b < K; ++b)
      hessian[packed_row_start(a, K) + b - a] = hess[a][b / 8][b % 8];
}

/// Vectors of N doubles and of their N lane numbers (GCC vector extensions;
/// a vector_size that depends on a template parameter is not applied).
template <int N> struct Vectors;
template <> struct Vectors<4> {
  typedef double Values __attribute__((vector_size(32)));
  typedef long long Lanes __attribute__((vector_size(32)));
};
template <> struct Vectors<8> {
  typedef double Values __attribute__((vector_size(64)));
  typedef long long Lanes __attribute__((vector_size(64)));
};

/// acc[i + l] += c_l outer[i + l] for l < N, c_l = ratio_p where i + l < k (a
/// gradient value), else curvature_p: one vector of N (a blend where both occur).
template <int N>
PSNMF_ROWS_TARGET inline void add_scaled(double *acc, const double *outer, int i, int k,
                                         double ratio_p, double curvature_p) {
  using Vec = typename Vectors<N>::Values;
  typename Vectors<N>::Lanes lane;
  for (int l = 0; l < N; ++l)
    lane[l] = i + l;
  Vec sum, part;
  __builtin_memcpy(&sum, acc + i, sizeof sum);
  __builtin_memcpy(&part, outer + i, sizeof part);
  sum += (lane < k ? Vec{} + ratio_p : Vec{} + curvature_p) * part;
  __builtin_memcpy(acc + i, &sum, sizeof sum);
}

/// add_scaled over one spectra column's newton_stats_stride(K) values (K known
/// at compile time): W at a time (8 with AVX-512, else 4), then the last four
/// where W does not divide the stride (a multiple of 4).
template <int K, int W>
PSNMF_ROWS_TARGET inline void add_column_statistics(double *acc, const double *outer,
                                                    double ratio_p, double curvature_p) {
  constexpr int S = newton_stats_stride(K);
#pragma GCC unroll 64
  for (int i = 0; i + W <= S; i += W)
    add_scaled<W>(acc, outer, i, K, ratio_p, curvature_p);
  if constexpr (S % W != 0)
    add_scaled<4>(acc, outer, S - 4, K, ratio_p, curvature_p);
}

/// Newton step of one maps row w (k values), then its contribution to the
/// spectra columns' statistics: for each of its entries (column j),
/// acc[j * stride + q] += ratio * w_q (q < k) and the next packed_size(k)
/// values += curvature * (w w^T packed), at the new w (stride =
/// newton_stats_stride(k)). Adds the new w to colsum, and its support to the
/// support sets of its columns (`supports`, support_words(k) per column) unless
/// null.
/// `lambda`, `along`, `ratio` and `curvature` have room for the row's entries
/// + 8, `transposed` for k values per entry + 8 k (the AVX-512 bodies for k = 2
/// to 8, newton_rows_avx512.hpp, save the transposed spectra rows there); `s` holds
/// newton_scratch_size(k) doubles.
///
/// The test: along the step, phi(t) = f(w + t e) is convex; with phi'(0) < 0
/// and phi'(t) measured, t is accepted when phi'(0) + phi'(t) <= 0, the
/// trapezoid rule's estimate of phi(t) - phi(0) <= 0 (exact where phi is
/// quadratic). Unlike phi'(t) <= 0 alone it keeps the Newton step whole when it
/// lands just past the minimum along the step. Where the step moves the model
/// so far that the estimate could be wrong (trapezoid_guarantees), the row's
/// exact loss change must also be no rise, else the next shorter t of
/// kRowTrials is checked (confirmed_step): with few counts per pixel, trusted
/// estimates raised the loss twice in the first iterations and sent the solver
/// to MU for good (4000 x 100, k = 4, 10 counts per pixel: MU's 200-iteration
/// loss never reached; 14 iterations with the check).
template <int K, class Value>
PSNMF_ROWS_TARGET inline void
newton_row(const RowSpan<Value> &r, double *w, const double *spectra_t,
           const double *spectra_rowsum, const double *mu_denominator, int k, double *colsum,
           double *acc, std::uint64_t *supports, double *lambda, double *along, double *ratio,
           double *curvature, double *transposed, double *s) {
#if PSNMF_ROWS_SIMD8
  if constexpr (K >= 2 && K <= 8) {
    simd8::newton_row_simd8<K>(r, w, spectra_t, spectra_rowsum, mu_denominator, colsum, acc,
                               supports, lambda, along, ratio, transposed, s);
    return;
  }
#endif
  (void)transposed;
  if constexpr (K > 0)
    k = K;
  const int m = packed_size(k);
  double *numerator = s, *hessian = s + k, *g = hessian + m, *e = g + k, *outer = e + k;
  double *work = outer + k + m;
  for (std::int64_t p = 0; p < r.n; ++p)
    lambda[p] = model_at<K>(w, spectra_t + std::int64_t(r.cols[p]) * k, k);
  ratios_and_curvatures(r, lambda, ratio, curvature);
  if constexpr (K > 8 && PSNMF_ROWS_SIMD8) {
    // AVX-512 only: with AVX's 16 registers the vector sums spilled.
    wide_row_statistics<K>(r, spectra_t, ratio, curvature, numerator, hessian);
  } else {
    // Sums in locals when k is known at compile time: the compiler keeps them in
    // registers (through the scratch pointers it would store every update).
    constexpr int KL = K > 0 ? K : 1, ML = packed_size(KL);
    double numerator_l[KL] = {}, hessian_l[ML] = {};
    double *num_acc = K > 0 ? numerator_l : numerator, *hess_acc = K > 0 ? hessian_l : hessian;
    for (int q = 0; q < k; ++q)
      num_acc[q] = 0.0;
    for (int i = 0; i < m; ++i)
      hess_acc[i] = 0.0;
    for (std::int64_t p = 0; p < r.n; ++p) {
      const double *h = spectra_t + std::int64_t(r.cols[p]) * k;
      int at = 0;
#pragma GCC unroll 16
      for (int a = 0; a < k; ++a) {
        num_acc[a] += ratio[p] * h[a];
        const double ca = curvature[p] * h[a];
#pragma GCC unroll 16
        for (int b = a; b < k; ++b)
          hess_acc[at++] += ca * h[b];
      }
    }
    for (int q = 0; q < k; ++q)
      numerator[q] = num_acc[q];
    for (int i = 0; i < m; ++i)
      hessian[i] = hess_acc[i];
  }
  for (int q = 0; q < k; ++q)
    g[q] = spectra_rowsum[q] - numerator[q];
  const double slope = lengthened_newton_step<K>(w, g, hessian, k, work, e);
  double t = 0.0;
  if (slope < 0.0) {
    double e_linear = 0.0;
    for (int q = 0; q < k; ++q)
      e_linear += e[q] * spectra_rowsum[q];
    bool floored = false; // some model at the floor, now or at the accepted t
    for (std::int64_t p = 0; p < r.n; ++p) {
      const double *h = spectra_t + std::int64_t(r.cols[p]) * k;
      double c = 0.0;
      for (int q = 0; q < k; ++q)
        c += e[q] * h[q];
      along[p] = c;
      floored = floored || lambda[p] <= kModelFloor;
    }
    double trapezoid = 0.0;
    for (const double trial : kRowTrials) {
      double sum = 0.0;
      bool at_floor = false;
      for (std::int64_t p = 0; p < r.n; ++p) {
        const double l = lambda[p] + trial * along[p];
        at_floor = at_floor || l <= kModelFloor;
        sum += static_cast<double>(r.x[p]) * along[p] / (l < kModelFloor ? kModelFloor : l);
      }
      trapezoid = slope + (e_linear - sum);
      if (trapezoid <= 0.0) {
        t = trial;
        floored = floored || at_floor;
        break;
      }
    }
    if (t > 0.0)
      t = confirmed_step(
          t, trapezoid, hessian, w, e, k, floored, e_linear, r,
          [=]() PSNMF_ROWS_TARGET { return largest_rise(lambda, along, r.n); },
          [=](double at)
              PSNMF_ROWS_TARGET { return row_loss_change(r, lambda, along, at, e_linear, ratio); });
  }
  if (t > 0.0) {
    for (int q = 0; q < k; ++q) {
      const double moved = w[q] + t * e[q];
      w[q] = moved < 0.0 ? 0.0 : moved;
    }
    for (std::int64_t p = 0; p < r.n; ++p) {
      const double l = lambda[p] + t * along[p];
      lambda[p] = l < kModelFloor ? kModelFloor : l;
    }
  } else {
    for (int q = 0; q < k; ++q)
      w[q] *= numerator[q] / mu_denominator[q];
    for (std::int64_t p = 0; p < r.n; ++p)
      lambda[p] = model_at<K>(w, spectra_t + std::int64_t(r.cols[p]) * k, k);
  }
  // outer = (w, packed w w^T, zeros up to the stride): one vector loop per entry.
  const int stride = newton_stats_stride(k);
  int at = k;
  for (int a = 0; a < k; ++a) {
    outer[a] = w[a];
    colsum[a] += w[a];
    for (int b = a; b < k; ++b)
      outer[at++] = w[a] * w[b];
  }
  for (; at < stride; ++at)
    outer[at] = 0.0;
  if (supports)
    add_row_support(w, k, r.cols, r.n, supports);
  ratios_and_curvatures(r, lambda, ratio, curvature);
  constexpr int SL = K > 0 ? newton_stats_stride(K) : 1;
  double outer_l[SL]; // in registers (acc could alias the scratch, as far as the compiler knows)
  for (int i = 0; i < SL; ++i)
    outer_l[i] = outer[i < stride ? i : 0];
  // Locals: as far as the compiler knows, the stores into acc could change the span's fields.
  const std::int32_t *const cols = r.cols;
  const std::int64_t n = r.n;
  for (std::int64_t p = 0; p < n; ++p) {
    const double ratio_p = ratio[p], curvature_p = curvature[p];
    double *a = acc + std::int64_t(cols[p]) * stride;
    if constexpr (K > 0) {
      add_column_statistics<K, PSNMF_ROWS_SIMD8 ? 8 : 4>(a, outer_l, ratio_p, curvature_p);
    } else {
      for (int q = 0; q < k; ++q)
        a[q] += ratio_p * outer[q];
      for (int i = k; i < stride; ++i)
        a[i] += curvature_p * outer[i];
    }
  }
}
