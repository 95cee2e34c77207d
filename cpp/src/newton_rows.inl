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
  // Sums in locals when k is known at compile time: the compiler keeps them in
  // registers (through the scratch pointers it would store every update).
  constexpr int KL = K > 0 ? K : 1, ML = packed_size(KL);
  double numerator_l[KL] = {}, hessian_l[ML] = {};
  double *num_acc = K > 0 ? numerator_l : numerator, *hess_acc = K > 0 ? hessian_l : hessian;
  for (int q = 0; q < k; ++q)
    num_acc[q] = 0.0;
  for (int i = 0; i < m; ++i)
    hess_acc[i] = 0.0;
  for (std::int64_t p = 0; p < r.n; ++p)
    lambda[p] = model_at<K>(w, spectra_t + std::int64_t(r.cols[p]) * k, k);
  ratios_and_curvatures(r, lambda, ratio, curvature);
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
  for (std::int64_t p = 0; p < r.n; ++p) {
    const double ratio_p = ratio[p], curvature_p = curvature[p];
    double *a = acc + std::int64_t(r.cols[p]) * stride;
    if constexpr (K > 0) {
      // Four values at a time (GCC vector extension: any ISA); the gradient
      // part takes ratio, the curvature part curvature.
      typedef double Vec4 __attribute__((vector_size(32)));
#pragma GCC unroll 16
      for (int i = 0; i < SL; i += 4) {
        Vec4 sum, part;
        __builtin_memcpy(&sum, a + i, sizeof sum);
        __builtin_memcpy(&part, outer_l + i, sizeof part);
        if (i + 4 <= K) {
          sum += ratio_p * part;
        } else if (i >= K) {
          sum += curvature_p * part;
        } else {
          const Vec4 coef = {i < K ? ratio_p : curvature_p, i + 1 < K ? ratio_p : curvature_p,
                             i + 2 < K ? ratio_p : curvature_p, i + 3 < K ? ratio_p : curvature_p};
          sum += coef * part;
        }
        __builtin_memcpy(a + i, &sum, sizeof sum);
      }
    } else {
      for (int q = 0; q < k; ++q)
        a[q] += ratio_p * outer[q];
      for (int i = k; i < stride; ++i)
        a[i] += curvature_p * outer[i];
    }
  }
}
