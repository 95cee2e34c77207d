// One iteration of the Newton solver: a pass over the rows of X, then a
// projected Newton step for every spectra column.
//
// Each maps row takes its own safeguarded Newton step (newton_rows.inl) and,
// while in cache, adds the gradient and curvature it contributes to every
// spectra column it touches; each column then takes one projected Newton step
// from those sums (newton_step.hpp), shortened until a bound guarantees that
// it lowers the loss, or else the MU step. Chunks of rows accumulate into their own buffers,
// summed in chunk order: results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "mu_kernels.hpp"
#include "newton_step.hpp"
#include "parallel.hpp"

namespace psnmf::detail {

/// B(r) = integral over 0 <= u <= s <= 1 of (1 - r u)^-2, for 0 <= r < 1: the
/// factor that bounds a column's curvature along a step (newton_column).
inline double curvature_growth(double r) {
  if (r < 1e-4)
    return 0.5 + r / 3.0 + r * r / 4.0; // the series, where the closed form cancels
  return (-std::log1p(-r) / r - 1.0) / r;
}

/// Newton step of the spectra column h (k values) from its statistics `stats`
/// (the gradient's data part, k values, then the packed curvature), the maps'
/// column sums `maps_colsum` and scratch `s` (newton_scratch_size(k)).
///
/// The step is lengthened (over_relaxed). The column's counts are not at hand
/// here, so the step length t (kColumnTrials) is chosen by a bound that
/// guarantees a decrease: along the step e, every model value falls by at most
/// the fraction rho = max_q (-e_q / h_q) times t, so the curvature grows by at
/// most (1 - t rho)^-2 and
///   phi(t) - phi(0) <= t g.e + t^2 (e^T H e) B(t rho).
/// Where no t passes, the MU step (an all-zero map leaves its spectrum alone).
/// Unless `guaranteed`, a step that sets components to zero is taken whole
/// when the bound holds over the components it keeps, it keeps one, and it
/// leaves no maps row with counts in the column without model (`supports`:
/// the set of supports of those rows, empties_a_model; checked for k <=
/// kMaxSupportComponents, beyond only the checkpoints): zeros are where MU-like
/// shortened steps converge slowly (geometrically), and the solver's
/// checkpoints catch a step that raised the loss. Whole steps that emptied
/// models made the model's floor (kModelFloor) stand in for the infinite
/// loss, and the fit wander (16384 x 1024, k = 4: 1448 such entries after two
/// iterations; MU's 200-iteration loss reached at iteration 19 without the
/// check, 14 with it).
template <int K>
void newton_column(double *h, const double *stats, const double *maps_colsum, int k,
                   bool guaranteed, const std::uint64_t *supports, double *s) {
  if constexpr (K > 0)
    k = K;
  double *g = s, *e = s + k, *work = s + 2 * k;
  for (int q = 0; q < k; ++q)
    g[q] = maps_colsum[q] - stats[q];
  const double *hessian = stats + k;
  const double slope = lengthened_newton_step<K>(h, g, hessian, k, work, e);
  if (slope < 0.0) {
    // rho over all components, and over those the step leaves above zero.
    double rho = 0.0, rho_kept = 0.0;
    bool any_kept = false;
    unsigned zeros = 0; // components of some map, zero after the whole step (k <= 8)
    for (int a = 0; a < k; ++a) {
      const bool kept = h[a] + e[a] > 0.0;
      any_kept = any_kept || kept;
      // A component zero in every map (zero padding) is in no support.
      if (a < kMaxSupportComponents)
        zeros |= unsigned(!kept && maps_colsum[a] > 0.0) << a;
      if (e[a] < 0.0) {
        rho = std::max(rho, -e[a] / h[a]); // e >= -h: h[a] > 0 here
        if (kept)
          rho_kept = std::max(rho_kept, -e[a] / h[a]);
      }
    }
    const double quadratic = quadratic_form(hessian, e, k);
    // Bold: the whole step, components set to zero included (the bound cannot
    // cover those; the checkpoints guard the loss), if the rest passes it.
    if (!guaranteed && any_kept && !(supports && empties_a_model(supports, zeros)) &&
        slope + quadratic * curvature_growth(rho_kept) <= 0.0) {
      for (int q = 0; q < k; ++q) {
        const double moved = h[q] + e[q];
        h[q] = moved < 0.0 ? 0.0 : moved;
      }
      return;
    }
    for (const double t : kColumnTrials) {
      if (t * rho < 1.0 && t * slope + t * t * quadratic * curvature_growth(t * rho) <= 0.0) {
        for (int q = 0; q < k; ++q) {
          const double moved = h[q] + t * e[q];
          h[q] = moved < 0.0 ? 0.0 : moved;
        }
        return;
      }
    }
  }
  for (int q = 0; q < k; ++q)
    h[q] *= maps_colsum[q] == 0.0 ? 1.0 : stats[q] / maps_colsum[q];
}

/// One Newton iteration: maps rows, then spectra columns (held transposed,
/// (n_cols, k)). `spectra_rowsum` are the spectra's row sums before it;
/// `mu_denominator` the same with zeros guarded (the rows' MU fallback).
/// `guaranteed`: columns take only steps the bound guarantees (newton_column).
/// Writes the column sums of the new maps. `scratch` is reused across calls.
template <int K, class Counts>
void newton_pass(const Counts &rows, double *maps, double *spectra_t, const double *spectra_rowsum,
                 const double *mu_denominator, int k, bool guaranteed, double *maps_colsum,
                 AlignedDoubles &scratch, int n_threads) {
  const std::int64_t n_cols = rows.n_cols();
  const std::int64_t stride = newton_stats_stride(k), block = n_cols * stride;
  const RowPartition part(rows.n_rows());
  scratch.resize(static_cast<std::size_t>(part.n_chunks * block));
  ChunkPartials colsum_partial;
  colsum_partial.assign(part.n_chunks, k);
  const bool track_supports = !guaranteed && k <= kMaxSupportComponents;
  const int words = support_words(k);
  const std::int64_t set_block = n_cols * words;
  std::vector<std::uint64_t> supports(
      track_supports ? static_cast<std::size_t>(part.n_chunks * set_block) : 0, 0);
  run_chunks(
      rows, part, k, n_threads,
      [&](auto kernels, std::int64_t c, auto &buf) {
        decltype(kernels)::template newton<K>(
            rows, part.begin(c), part.end(c), maps, spectra_t, spectra_rowsum, mu_denominator, k,
            colsum_partial.of(c), zeroed_block(scratch, c, block),
            track_supports ? supports.data() + c * set_block : nullptr, buf);
      },
      [&] {
#pragma omp single
        colsum_partial.sum_into(maps_colsum);
        std::vector<double> stats(static_cast<std::size_t>(stride));
        std::vector<double> s(static_cast<std::size_t>(newton_scratch_size(k)));
#pragma omp for schedule(static)
        for (std::int64_t j = 0; j < n_cols; ++j) {
          sum_chunks(scratch.data() + j * stride, part.n_chunks, block, stride, stats.data());
          std::uint64_t set[support_words(kMaxSupportComponents)] = {};
          for (std::int64_t c = 0; track_supports && c < part.n_chunks; ++c)
            for (int word = 0; word < words; ++word)
              set[word] |= supports[c * set_block + j * words + word];
          newton_column<K>(spectra_t + j * k, stats.data(), maps_colsum, k, guaranteed,
                           track_supports ? set : nullptr, s.data());
        }
      });
}

} // namespace psnmf::detail
