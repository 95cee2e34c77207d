// The projected Newton step on the k values of one factor vector (a maps row or
// a spectra column) for the KL objective with the other factor fixed.
//
// For v >= 0 the objective f(v) = v . s - sum_p x_p log(v . u_p) has gradient
// g = s - sum_p (x_p / lambda_p) u_p and Hessian sum_p (x_p / lambda_p^2) u_p u_p^T.
// The step solves the Newton system on the free set (v_q > 0 or g_q < 0: the
// other coordinates sit at their bound with the gradient pushing outwards and
// stay there) and is projected on v >= 0. The Newton solver takes it for every
// maps row (newton_rows.inl) and spectra column (newton_kernels.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "psnmf/divergence.hpp"
#include "row_access.hpp"

namespace psnmf::detail {

/// Most components the Newton step handles (its free-set index is on the stack).
inline constexpr int kMaxNewtonComponents = 64;

/// Most components for which the columns' whole steps check that they empty
/// no pixel's model: each spectra column keeps the set of the supports (sets of
/// nonzero components, 2^k of them) of the maps rows with counts in it, in
/// support_words(k) bit words. Beyond, supports are not tracked: a hashed set
/// tried for more components forbade so many whole steps that k = 12 did not
/// reach MU's 200-iteration loss in 80 iterations (19 without the check).
inline constexpr int kMaxSupportComponents = 8;

/// 64-bit words of a column's support set: one up to 6 components (one word
/// per column keeps the rows' updates of the sets in L1), 4 up to 8.
inline constexpr int support_words(int k) {
  return k <= 6 ? 1 : (1 << kMaxSupportComponents) / 64;
}

/// The support of w (k <= kMaxSupportComponents values): bit q set when w_q > 0.
inline unsigned support_of(const double *w, int k) {
  unsigned support = 0;
  for (int q = 0; q < k; ++q)
    support |= unsigned(w[q] > 0.0) << q;
  return support;
}

/// Whether a row's support can decide a column's whole step (empties_a_model),
/// so must be added to its columns' sets. Neither the empty support nor the
/// full one (all k components) can: the first is in no nonempty subset, and the
/// second only in the set of all components, which a whole step never sets to
/// zero (newton_column takes one only if it keeps a component). Most rows of a
/// well-mixed fit have the full support: the rows skip most of the updates.
inline bool support_can_decide(unsigned support, int k) {
  return support != 0 && support != (1u << k) - 1u;
}

/// Adds a support to a column's set.
inline void add_support(std::uint64_t *set, unsigned support) {
  set[support / 64] |= std::uint64_t(1) << (support % 64);
}

/// Adds the support of a maps row w (k values) to the sets of the n columns
/// `cols` it has counts in (`supports`, support_words(k) words per column),
/// unless it cannot decide a whole step.
inline void add_row_support(const double *w, int k, const std::int32_t *cols, std::int64_t n,
                            std::uint64_t *supports) {
  const unsigned support = support_of(w, k);
  if (!support_can_decide(support, k))
    return;
  const std::int64_t words = support_words(k);
  for (std::int64_t p = 0; p < n; ++p)
    add_support(supports + std::int64_t(cols[p]) * words, support);
}

/// Whether a column whose rows with counts have the support set `set` would
/// leave one of them without model if the components in `zeros` (a bit set)
/// were zero: some nonempty support lies within `zeros`.
inline bool empties_a_model(const std::uint64_t *set, unsigned zeros) {
  for (unsigned subset = zeros; subset != 0; subset = (subset - 1) & zeros)
    if (set[subset / 64] >> (subset % 64) & 1)
      return true;
  return false;
}

/// Packed upper triangle of a symmetric k x k matrix, row by row: (a, b), a <= b.
inline constexpr int packed_size(int k) {
  return k * (k + 1) / 2;
}

/// Index of (a, a), the first entry of row a, in the packed upper triangle of a
/// k x k matrix (packed_size): (a, b) is at packed_row_start(a, k) + b - a.
inline constexpr int packed_row_start(int a, int k) {
  return a * k - a * (a - 1) / 2;
}

/// Factor by which the solver lengthens every Newton step (successive
/// over-relaxation; over_relaxed). Alternating exact block steps converge
/// linearly: on bench/workloads.py counts each iteration left about 0.4-0.5 of
/// the gap to the minimum. Steps 1.5 times as long cut the iterations to MU's
/// 200-iteration loss (C++ driver, own synthetic counts, 2 threads) from 17 to
/// 13 (65536 x 1024, k = 4), 15 to 11 (16384 x 1024), 46 to 18 (k = 8), 16 to
/// 12 (0.03 counts per channel) and 18 to 12 (16384 x 2048, k = 6); 1.2 and
/// 1.3 needed as many or more, 1.7 too except at k = 8 (16). The rows' and
/// columns' acceptance tests judge the lengthened step, so the safeguards are
/// unchanged.
inline constexpr double kOverRelaxation = 1.5;

/// A maps row's step is tried at these t, largest first (newton_rows.inl);
/// 2/3 = 1 / kOverRelaxation is the plain Newton step. Trying it before 1/2
/// took the 65536 x 1024 data above from 12 iterations to 11 (the others
/// unchanged).
inline constexpr double kRowTrials[] = {1.0, 2.0 / 3.0, 0.5, 0.25, 0.125};

/// A spectra column's guaranteed step is tried at these t (newton_column).
/// Early on, the lengthened whole step fails the bound for most columns (9 in
/// 10 in the third iteration on the 65536 x 1024 data); 5/6 and 2/3 before 1/2
/// took the data above from 13, 11, 18, 12 and 12 iterations to 12, 10, 16, 11
/// and 11.
inline constexpr double kColumnTrials[] = {1.0, 5.0 / 6.0, 2.0 / 3.0, 0.5, 0.25, 0.125};

/// e^T H e for the packed symmetric H (packed_size(k) values).
inline double quadratic_form(const double *packed, const double *e, int k) {
  double sum = 0.0;
  int at = 0;
  for (int a = 0; a < k; ++a) {
    sum += packed[at++] * e[a] * e[a];
    for (int b = a + 1; b < k; ++b)
      sum += 2.0 * packed[at++] * e[a] * e[b];
  }
  return sum;
}

/// Whether the trapezoid test's acceptance of a maps row's step t guarantees
/// that the row's loss does not rise, so that its exact change need not be
/// evaluated (newton_rows.inl). `trapezoid` = phi'(0) + phi'(t) (<= 0),
/// `quadratic` = phi''(0) = e^T H e, `rise` >= the largest relative rise of an
/// entry's model at t = 1, a_p / lambda_p (a_p = e . h_p); `floored`: some
/// entry's model is at the floor at 0 or t (then phi'(t) is not the floored
/// loss's, and there is no guarantee).
///
/// The trapezoid rule's error on phi' gives phi(t) - phi(0) = t/2 (phi'(0) +
/// phi'(t)) + t^3/6 sum_p x_p a_p^3 / (lambda_p + s a_p)^3 for some s in (0,
/// t). Entries whose model falls only lower it; a rising one adds at most rise
/// x_p a_p^2 / lambda_p^2, so the sum is at most rise phi''(0).
inline bool trapezoid_guarantees(double t, double trapezoid, double quadratic, double rise,
                                 bool floored) {
  return !floored && 0.5 * t * trapezoid + t * t * t / 6.0 * rise * quadratic <= 0.0;
}

/// A bound on a maps row's relative model rises a_p / lambda_p without a pass
/// over its entries: as h_p >= 0, (e . h_p) / (w . h_p) <= max_q e_q / w_q
/// (infinite if a zero component rises).
inline double rise_bound(const double *w, const double *e, int k) {
  double rise = 0.0;
  for (int q = 0; q < k; ++q)
    if (e[q] > 0.0)
      rise = std::max(rise, w[q] > 0.0 ? e[q] / w[q] : HUGE_VAL);
  return rise;
}

/// Whether a maps row's exact loss change `change` (row_loss_change) at step t
/// accepts it: no rise beyond the rounding of its terms (t e_linear, and the
/// logs of the ratios of new to old model, at most about the row's counts in
/// size).
inline bool loss_change_accepted(double change, double t, double e_linear, double counts) {
  return change <= 1e-13 * (std::fabs(t * e_linear) + counts);
}

/// A maps row's step t > 0, accepted by the trapezoid test (`trapezoid` =
/// phi'(0) + phi'(t)), once the row's loss is known not to rise: t itself if a
/// bound on the rises guarantees it (rise_bound, then largest_rise()), else
/// the largest of kRowTrials up to t whose exact change (change(t))
/// loss_change_accepted takes, else 0. `hessian` is packed; `floored` as for
/// trapezoid_guarantees.
template <class Value, class LargestRise, class Change>
inline double confirmed_step(double t, double trapezoid, const double *hessian, const double *w,
                             const double *e, int k, bool floored, double e_linear,
                             const RowSpan<Value> &r, LargestRise largest_rise, Change change) {
  const double quadratic = quadratic_form(hessian, e, k);
  if (trapezoid_guarantees(t, trapezoid, quadratic, rise_bound(w, e, k), floored) ||
      trapezoid_guarantees(t, trapezoid, quadratic, largest_rise(), floored))
    return t;
  const double counts = row_counts(r);
  for (const double trial : kRowTrials)
    if (trial <= t && loss_change_accepted(change(trial), trial, e_linear, counts))
      return trial;
  return 0.0;
}

/// Doubles per spectra column of the Newton statistics: k gradient values, the
/// packed curvature, padded to a multiple of 4 (whole vectors).
inline constexpr int newton_stats_stride(int k) {
  return (k + packed_size(k) + 3) / 4 * 4;
}

/// Doubles of scratch the Newton row body (newton_rows.inl) needs for k components.
inline constexpr int newton_scratch_size(int k) {
  return 5 * k + packed_size(k) + newton_stats_stride(k) + k * k;
}

/// The projected Newton step e = max(0, v + d) - v (k values; 0 outside the
/// free set). `hessian` is packed (packed_size(k) values); `work` holds k * k +
/// 2 k doubles. Returns the directional derivative g . e: negative for a
/// descent step, 0 when there is none (e = 0). K > 0: k = K, known at compile
/// time (the loops unroll).
///
/// A free coordinate whose Newton value falls below zero with its gradient
/// positive is sent to its bound (e_q = -v_q) and the rest is solved again
/// with it fixed there, until no more such coordinates appear (at most k extra
/// solves, rare near the optimum). Clipping it alone would leave the other
/// coordinates' step computed as if it went far below zero: a tiny value with a
/// large positive gradient (MU-like shortened steps leave values of 1e-36 and
/// less) then kept a coordinate at zero whose gradient was strongly negative,
/// and the solver stalled above the optimum (65536 x 1024, k = 4: 26 such
/// coordinates after 150 iterations, the loss 9.8e-7 above MU's 200-iteration
/// loss for good). Once no such coordinate is left, a free coordinate at zero
/// (negative gradient) that the solve still takes below zero is held there
/// (e_q = 0) and the rest solved again: clipped alone, it left the others'
/// step so long that every trial raised the row's loss, the row fell back to
/// MU, which cannot move a zero, and the solver stalled (bench/workloads.py
/// counts, 65536 x 1024 at 0.02 per channel, k = 4: after 100 iterations 110
/// zeros with gradients down to -1.7e4 and the loss 1.4e-5 above MU's
/// 200-iteration loss, not reached in 1000; reached in 11 with the rule). Held
/// in the first round, a zero could not rise once the first kind was sent to
/// its bound.
///
/// The solved block is factored as L D L^T with a relative ridge of 1e-10 of
/// its mean diagonal: rows or columns with fewer counts than components have a
/// singular Hessian, and the ridge keeps the step finite (the projection and
/// the callers' safeguards handle what is left). The step is latency-bound (one
/// small solve per maps row); two choices shorten its chain of dependent
/// operations:
/// - L D L^T needs no square root and one division per row of the factor;
/// - the coordinates not solved for take rows and columns of the identity and
///   their own step as right-hand side (0, or -v_q at the bound) instead of
///   being compacted away: the factor has exact zeros there, and the loops have
///   fixed bounds and no branches on the free set.
/// A compacted Cholesky solve took a sixth of a Newton iteration (65536 x 1024,
/// k = 4); this form took the iteration from 39 to 33 ms.
template <int K = 0>
inline double projected_newton_step(const double *v, const double *g, const double *hessian, int k,
                                    double *work, double *e) {
  if constexpr (K > 0)
    k = K;
  // Locals when k is known: the compiler keeps them in registers.
  double local[K > 0 ? K * K + 2 * K : 1];
  double *a = K > 0 ? local : work; // k x k, row-major: the matrix, then its factors
  double *b = a + k * k;            // right-hand side, then the solution
  double *y = a + k * k + k;        // forward-substitution result
  bool free_q[K > 0 ? K : kMaxNewtonComponents];
  bool solved_q[K > 0 ? K : kMaxNewtonComponents]; // free and not sent to the bound
  int m = 0;
  for (int i = 0; i < k; ++i) {
    e[i] = 0.0;
    free_q[i] = v[i] > 0.0 || g[i] < 0.0;
    solved_q[i] = free_q[i];
    m += free_q[i];
  }
  if (m == 0)
    return 0.0;
  const auto packed = [hessian, k](int i, int j) { // (i, j), i <= j
    return hessian[packed_row_start(i, k) + (j - i)];
  };
  for (bool any_at_bound = false;;) {
    double trace = 0.0;
    int solved = 0;
    for (int i = 0; i < k; ++i) {
      for (int j = 0; j < i; ++j)
        a[i * k + j] = solved_q[i] && solved_q[j] ? packed(j, i) : 0.0;
      const double diagonal = packed(i, i);
      a[i * k + i] = solved_q[i] ? diagonal : 1.0;
      trace += solved_q[i] ? diagonal : 0.0;
      solved += solved_q[i];
      b[i] = solved_q[i] ? -g[i] : free_q[i] ? -v[i] : 0.0;
    }
    if (any_at_bound) // the solved coordinates' share of the moves to the bounds
      for (int i = 0; i < k; ++i)
        for (int j = 0; j < k; ++j)
          if (solved_q[i] && free_q[j] && !solved_q[j])
            b[i] += (i < j ? packed(i, j) : packed(j, i)) * v[j];
    if (!(trace > 0.0) || !std::isfinite(trace)) {
      // Linear along the solved coordinates (no counts): each free one goes
      // to 0 if its gradient is positive (a negative gradient needs counts, so
      // curvature).
      double slope = 0.0;
      for (int q = 0; q < k; ++q) {
        e[q] = free_q[q] && g[q] > 0.0 ? -v[q] : 0.0;
        slope += free_q[q] ? g[q] * e[q] : 0.0;
      }
      return slope;
    }
    const double ridge = 1e-10 * trace / solved;
    // a = L D L^T in place: L below the diagonal, W = L D above it (W_ij at
    // (j, i)); the reciprocals of D apart. No square roots, and one division
    // per row: the factorisation's chain of dependent operations is short.
    double inverse[K > 0 ? K : kMaxNewtonComponents];
#pragma GCC unroll 16
    for (int i = 0; i < k; ++i) {
#pragma GCC unroll 16
      for (int j = 0; j < i; ++j) {
        double s = a[i * k + j];
#pragma GCC unroll 16
        for (int c = 0; c < j; ++c)
          s -= a[c * k + i] * a[j * k + c];
        a[j * k + i] = s;
        a[i * k + j] = s * inverse[j];
      }
      double d = a[i * k + i] + (solved_q[i] ? ridge : 0.0);
#pragma GCC unroll 16
      for (int c = 0; c < i; ++c)
        d -= a[c * k + i] * a[i * k + c];
      if (!(d > 0.0))
        return 0.0; // not positive definite even with the ridge: no step
      inverse[i] = 1.0 / d;
    }
#pragma GCC unroll 16
    for (int i = 0; i < k; ++i) {
      double s = b[i];
#pragma GCC unroll 16
      for (int c = 0; c < i; ++c)
        s -= a[i * k + c] * y[c];
      y[i] = s;
    }
#pragma GCC unroll 16
    for (int i = k - 1; i >= 0; --i) {
      double s = y[i] * inverse[i];
#pragma GCC unroll 16
      for (int c = i + 1; c < k; ++c)
        s -= a[c * k + i] * b[c];
      b[i] = s;
    }
    // First the coordinates that cross zero against their gradient; once there
    // are none, those at zero that the solve still takes below it.
    bool sent = false;
    for (int q = 0; q < k; ++q) {
      const bool to_bound = solved_q[q] && b[q] < -v[q] && g[q] > 0.0;
      solved_q[q] = solved_q[q] && !to_bound;
      sent = sent || to_bound;
    }
    if (!sent)
      for (int q = 0; q < k; ++q) {
        const bool held = solved_q[q] && v[q] == 0.0 && b[q] < 0.0;
        solved_q[q] = solved_q[q] && !held;
        sent = sent || held;
      }
    if (!sent)
      break;
    any_at_bound = true;
  }
  double slope = 0.0;
  for (int q = 0; q < k; ++q) {
    const double d = b[q];
    e[q] = !free_q[q] ? 0.0 : d < -v[q] ? -v[q] : d;
    if (!std::isfinite(e[q]))
      e[q] = 0.0;
    slope += free_q[q] ? g[q] * e[q] : 0.0;
  }
  return slope;
}

/// e_q lengthened kOverRelaxation times, or -v_q if that would cross zero
/// (branch-free: rows cross at random).
inline double lengthened(double v, double e) {
  return std::max(kOverRelaxation * e, -v);
}

/// The projected step e of v (k values), with slope g . e < 0, lengthened
/// (lengthened); returns the slope along it. (Leaving the coordinates that
/// would cross zero at the plain step instead, or shortening the whole step to
/// keep them positive, took up to 3 more iterations.) Where coupling moves
/// some coordinates against their gradient and the decrease comes from ones
/// the bound caps, lengthening can turn the slope: then e stays the plain step.
template <int K>
__attribute__((always_inline)) inline double over_relaxed(const double *v, const double *g, int k,
                                                          double *e, double slope) {
  if constexpr (K > 0)
    k = K;
  double longer_slope = 0.0;
  for (int q = 0; q < k; ++q)
    longer_slope += g[q] * lengthened(v[q], e[q]);
  if (!(longer_slope < 0.0))
    return slope;
  for (int q = 0; q < k; ++q)
    e[q] = lengthened(v[q], e[q]);
  return longer_slope;
}

/// The step every Newton path takes: projected_newton_step, lengthened
/// (over_relaxed) where it descends. Returns the slope along e.
template <int K = 0>
inline double lengthened_newton_step(const double *v, const double *g, const double *hessian, int k,
                                     double *work, double *e) {
  const double slope = projected_newton_step<K>(v, g, hessian, k, work, e);
  return slope < 0.0 ? over_relaxed<K>(v, g, k, e, slope) : slope;
}

} // namespace psnmf::detail
