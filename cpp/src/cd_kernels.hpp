// Cyclic coordinate descent for the KL objective (Hsieh & Dhillon, KDD 2011),
// evaluated only at the nonzeros of X.
//
// For a maps row i and component q the loss, as a function of w = maps_iq, is
//   f(w) = w * s_q - sum_j x_ij log(lambda_ij) + const,  s_q = sum_j spectra_qj,
// convex, with lambda_ij = maps_i . spectra_j kept for the row's nonzeros. One
// projected Newton step per coordinate: delta = max(-w, -f'/f''). A step up
// (f' < 0) cannot overshoot, because f'' decreases along it; a step down is
// accepted only if f' >= 0 at its end (f convex: f decreased all the way),
// halved otherwise. Every accepted step therefore lowers the loss. Spectra
// columns are updated the same way through a column-major copy of X. Rows
// (columns) are independent: results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "parallel.hpp"
#include "psnmf/divergence.hpp"
#include "row_access.hpp"

namespace psnmf::detail {

/// Counts in compressed sparse columns, built once per fit for the spectra sweep.
struct CscCounts {
  std::int64_t n_rows = 0, n_cols = 0;
  std::vector<std::int64_t> indptr;
  std::vector<std::int32_t> rows;
  std::vector<double> x;

  template <class Rows> explicit CscCounts(const Rows &m) : n_rows(m.n_rows()), n_cols(m.n_cols()) {
    using Value = typename Rows::value_type;
    indptr.assign(static_cast<std::size_t>(n_cols + 1), 0);
    RowScratch<Value> s;
    for (std::int64_t i = 0; i < n_rows; ++i) {
      const RowSpan<Value> r = m.row(i, s);
      for (std::int64_t p = 0; p < r.n; ++p)
        if (r.x[p] != Value(0))
          ++indptr[r.cols[p] + 1];
    }
    for (std::int64_t j = 0; j < n_cols; ++j)
      indptr[j + 1] += indptr[j];
    rows.resize(static_cast<std::size_t>(indptr[n_cols]));
    x.resize(rows.size());
    std::vector<std::int64_t> next(indptr.begin(), indptr.end() - 1);
    for (std::int64_t i = 0; i < n_rows; ++i) {
      const RowSpan<Value> r = m.row(i, s);
      for (std::int64_t p = 0; p < r.n; ++p)
        if (r.x[p] != Value(0)) {
          const std::int64_t at = next[r.cols[p]]++;
          rows[at] = static_cast<std::int32_t>(i);
          x[at] = static_cast<double>(r.x[p]);
        }
    }
  }
};

inline double floored(double lambda) {
  return lambda < kModelFloor ? kModelFloor : lambda;
}

/// Projected Newton steps on the k coordinates of one factor vector `v` (a maps
/// row or a spectra column), in order. The entries of X it touches are x(p),
/// p < n, whose partner factor vectors are partner(p) (length k). `linear[q]` is
/// the derivative of the linear part of the loss (sum of lambda over all
/// entries). One pass over the entries per coordinate: it applies the pending
/// step of coordinate q - 1 to lambda (into `spare`), checks it, and gathers the
/// derivatives of coordinate q at the new lambda; a step down that fails the
/// check is halved and the pass redone. The first pass computes lambda afresh.
/// Returns the buffer, `lambda` or `spare`, that holds the final lambda.
template <int K, class X, class Partner>
double *newton_sweep(double *v, const double *linear, std::int64_t n, const X &x,
                     const Partner &partner, double *lambda, double *spare, int k_runtime) {
  constexpr int kMaxHalvings = 8;
  const int k = K > 0 ? K : k_runtime;
  int pending = -1; // coordinate whose step `step` is being applied
  double step = 0.0;
  for (int q = 0; q <= k; ++q) {
    double gradient = 0.0, curvature = 0.0, end_gradient = 0.0;
    for (int halving = 0;; ++halving) {
      // Four partial sums per derivative, in a fixed order: independent add
      // chains instead of one long one (latency, not arithmetic, bounds the loop).
      double g[4] = {0.0, 0.0, 0.0, 0.0}, h[4] = {0.0, 0.0, 0.0, 0.0}, e[4] = {0.0, 0.0, 0.0, 0.0};
      const auto visit = [&](std::int64_t p, double &gp, double &hp, double &ep) {
        const double *a = partner(p);
        double l;
        if (pending < 0) {
          l = 0.0;
          for (int c = 0; c < k; ++c)
            l += v[c] * a[c];
        } else {
          l = lambda[p] + step * a[pending];
        }
        spare[p] = l;
        const double inverse = 1.0 / floored(l);
        const double ratio = x(p) * inverse;
        if (pending >= 0)
          ep += ratio * a[pending];
        if (q < k) {
          gp += ratio * a[q];
          hp += ratio * a[q] * a[q] * inverse;
        }
      };
      std::int64_t p = 0;
      for (; p + 4 <= n; p += 4) {
        visit(p, g[0], h[0], e[0]);
        visit(p + 1, g[1], h[1], e[1]);
        visit(p + 2, g[2], h[2], e[2]);
        visit(p + 3, g[3], h[3], e[3]);
      }
      for (; p < n; ++p)
        visit(p, g[0], h[0], e[0]);
      gradient = (q < k ? linear[q] : 0.0) - ((g[0] + g[1]) + (g[2] + g[3]));
      curvature = (h[0] + h[1]) + (h[2] + h[3]);
      end_gradient = (pending >= 0 ? linear[pending] : 0.0) - ((e[0] + e[1]) + (e[2] + e[3]));
      // f convex: f' >= 0 at the end of a step down means f fell all the way.
      if (pending < 0 || step >= 0.0 || end_gradient >= 0.0)
        break;
      step = halving + 1 < kMaxHalvings ? 0.5 * step : 0.0;
    }
    if (pending >= 0) {
      const double moved = v[pending] + step;
      v[pending] = moved < 0.0 ? 0.0 : moved;
    }
    std::swap(lambda, spare);
    if (q == k)
      break;
    // Newton step, projected on v >= 0; where f is linear, its minimum on [0, inf).
    if (curvature > 0.0)
      step = std::max(-v[q], -gradient / curvature);
    else
      step = gradient > 0.0 ? -v[q] : 0.0;
    pending = q;
  }
  return lambda;
}

/// Sum of x log(x / lambda) over the given entries, explicit zeros skipped.
template <class X> double entries_log_term(std::int64_t n, const X &x, const double *lambda) {
  double acc = 0.0;
  for (std::int64_t p = 0; p < n; ++p) {
    const double xp = x(p);
    if (xp != 0.0)
      acc += xp * std::log(xp / floored(lambda[p]));
  }
  return acc;
}

/// Coordinate descent on every maps row, spectra fixed. Writes the column sums
/// of the new maps; returns the log term of the new state when `with_loss`.
template <int K, class Rows>
double cd_maps_sweep(const Rows &rows, double *maps, const double *spectra_t,
                     const double *spectra_rowsum, int k_runtime, bool with_loss,
                     double *maps_colsum, int n_threads) {
  using Value = typename Rows::value_type;
  const int k = K > 0 ? K : k_runtime;
  const RowPartition part(rows.n_rows());
  std::vector<double> loss_partial(static_cast<std::size_t>(part.n_chunks), 0.0);
  ChunkPartials colsum_partial;
  colsum_partial.assign(part.n_chunks, k);
#pragma omp parallel num_threads(n_threads)
  {
    RowScratch<Value> row_scratch;
    std::vector<double> lambda(static_cast<std::size_t>(rows.n_cols()));
    std::vector<double> spare(lambda.size());
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t c = 0; c < part.n_chunks; ++c) {
      double *colsum = colsum_partial.of(c);
      double loss = 0.0;
      for (std::int64_t i = part.begin(c); i < part.end(c); ++i) {
        double *w = maps + i * k;
        const RowSpan<Value> r = rows.row(i, row_scratch);
        const auto x = [&](std::int64_t p) { return static_cast<double>(r.x[p]); };
        const auto h = [&](std::int64_t p) { return spectra_t + std::int64_t(r.cols[p]) * k; };
        const double *final_lambda =
            newton_sweep<K>(w, spectra_rowsum, r.n, x, h, lambda.data(), spare.data(), k);
        if (with_loss)
          loss += entries_log_term(r.n, x, final_lambda);
        for (int q = 0; q < k; ++q)
          colsum[q] += w[q];
      }
      loss_partial[static_cast<std::size_t>(c)] = loss;
    }
  }
  colsum_partial.sum_into(maps_colsum);
  return ordered_sum(loss_partial);
}

/// Coordinate descent on every spectra column (spectra_t row), maps fixed.
/// Returns the log term of the new state when `with_loss`.
template <int K>
double cd_spectra_sweep(const CscCounts &csc, const double *maps, double *spectra_t,
                        const double *maps_colsum, int k_runtime, bool with_loss, int n_threads) {
  const int k = K > 0 ? K : k_runtime;
  const std::int64_t n_cols = csc.n_cols;
  std::vector<double> loss_partial(static_cast<std::size_t>(n_cols), 0.0);
#pragma omp parallel num_threads(n_threads)
  {
    std::vector<double> lambda, spare;
#pragma omp for schedule(dynamic, 8)
    for (std::int64_t j = 0; j < n_cols; ++j) {
      double *h = spectra_t + j * k;
      const std::int64_t begin = csc.indptr[j], n = csc.indptr[j + 1] - begin;
      const std::int32_t *rows = csc.rows.data() + begin;
      const double *xs = csc.x.data() + begin;
      const auto x = [&](std::int64_t p) { return xs[p]; };
      const auto w = [&](std::int64_t p) { return maps + std::int64_t(rows[p]) * k; };
      lambda.resize(static_cast<std::size_t>(n));
      spare.resize(static_cast<std::size_t>(n));
      const double *final_lambda =
          newton_sweep<K>(h, maps_colsum, n, x, w, lambda.data(), spare.data(), k);
      if (with_loss)
        loss_partial[static_cast<std::size_t>(j)] = entries_log_term(n, x, final_lambda);
    }
  }
  return ordered_sum(loss_partial);
}

} // namespace psnmf::detail
