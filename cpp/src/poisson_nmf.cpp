// The solver drivers (MU, coordinate descent, Newton): iteration loops, loss bookkeeping, stopping
// rules.
#include "psnmf/poisson_nmf.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cd_kernels.hpp"
#include "factor_state.hpp"
#include "loss.hpp"
#include "mu_kernels.hpp"
#include "newton_kernels.hpp"
#include "row_access.hpp"

namespace psnmf {
namespace {

using detail::dot;

/// What every driver keeps besides the factors: the spectra transposed
/// (n_cols, k) for the kernels, the sums that give the loss and the MU
/// denominators, and the total count.
template <int K, class Rows> struct DriverState {
  const Rows &rows;
  FactorsView f;
  std::int64_t k, n_cols;
  int n_threads;
  detail::AlignedDoubles spectra_t;
  std::vector<double> maps_colsum, spectra_rowsum;
  double sum_x;

  DriverState(const Rows &counts, FactorsView factors, const NmfOptions &options)
      : rows(counts), f(factors), k(factors.n_components), n_cols(counts.n_cols()),
        n_threads(detail::resolve_threads(options.n_threads)),
        spectra_t(detail::transpose_spectra(f.spectra, k, n_cols)),
        maps_colsum(detail::maps_column_sums(f.maps, counts.n_rows(), k)),
        spectra_rowsum(detail::spectra_row_sums(spectra_t, k, n_cols)),
        sum_x(detail::total_counts(counts, n_threads)) {}

  /// The loss of the current state, given its log term sum x log(x / lambda).
  double loss_from(double log_term) const {
    return log_term - sum_x + dot(maps_colsum, spectra_rowsum);
  }
  /// The loss of the state `pass` starts from: pass() returns that state's
  /// log term and updates the factors and their sums, so the model's sum is
  /// taken before it runs.
  template <class Pass> double loss_before(Pass &&pass) const {
    const double sum_lambda = dot(maps_colsum, spectra_rowsum);
    return pass() - sum_x + sum_lambda;
  }
  /// The loss of the current state (a pass over X).
  double loss() const {
    return loss_from(detail::log_term<K>(rows, f.maps, spectra_t.data(), int(k), n_threads));
  }
  void update_spectra_rowsum() { spectra_rowsum = detail::spectra_row_sums(spectra_t, k, n_cols); }
  void update_maps_colsum() { maps_colsum = detail::maps_column_sums(f.maps, rows.n_rows(), k); }
  /// Writes the spectra back to the caller's (k, n_cols) array.
  void store_spectra() { detail::untranspose_spectra(spectra_t, k, n_cols, f.spectra); }
};

/// Relative decrease per iteration between the last two losses <= tol.
inline bool loss_converged(const NmfResult &r, double tol) {
  const auto &h = r.loss_history;
  if (tol <= 0.0 || h.size() < 2)
    return false;
  const double previous = h[h.size() - 2];
  const int span = r.loss_iterations.back() - r.loss_iterations[h.size() - 2];
  return previous - h.back() <= tol * std::abs(previous) * span;
}

template <int K, class Rows>
NmfResult run_updates(const Rows &rows, FactorsView f, const NmfOptions &options) {
  DriverState<K, Rows> s(rows, f, options);
  const std::int64_t k = s.k;
  std::vector<double> denominator(static_cast<std::size_t>(k));
  detail::AlignedDoubles scratch;

  NmfResult result;
  const bool any_update = options.update_maps || options.update_spectra;
  double latest_loss = 0.0;
  for (int it = 1; any_update && it <= options.max_iter; ++it) {
    // The loss of the state after it - 1 iterations comes free of a pass of its own.
    const bool with_loss = (it - 1) % options.loss_every == 0;
    double loss = 0.0;
    if (options.update_maps) {
      for (std::int64_t q = 0; q < k; ++q)
        denominator[q] = s.spectra_rowsum[q] == 0.0 ? kModelFloor : s.spectra_rowsum[q];
      // Both factors: one pass over X does the whole iteration.
      loss = s.loss_before([&] {
        return options.update_spectra
                   ? detail::update_both_pass<K>(rows, f.maps, s.spectra_t.data(),
                                                 denominator.data(), int(k), with_loss,
                                                 s.maps_colsum.data(), scratch, s.n_threads)
                   : detail::update_maps_pass<K>(rows, f.maps, s.spectra_t.data(),
                                                 denominator.data(), int(k), with_loss,
                                                 s.maps_colsum.data(), s.n_threads);
      });
    } else if (options.update_spectra) {
      // An all-zero map leaves its spectrum untouched instead of dividing by 0.
      for (std::int64_t q = 0; q < k; ++q)
        denominator[q] = s.maps_colsum[q] == 0.0 ? 1.0 : s.maps_colsum[q];
      loss = s.loss_before([&] {
        return detail::update_spectra_pass<K>(rows, f.maps, s.spectra_t.data(), denominator.data(),
                                              int(k), with_loss, scratch, s.n_threads);
      });
    }
    if (options.update_spectra)
      s.update_spectra_rowsum();
    result.n_iter = it;
    if (options.check_interrupt)
      options.check_interrupt();
    if (with_loss) {
      result.loss_history.push_back(loss);
      result.loss_iterations.push_back(it - 1);
      latest_loss = loss;
    }
    if (options.callback && !options.callback(IterationReport{it, latest_loss})) {
      result.stopped_by_callback = true;
      break;
    }
    if (with_loss && loss_converged(result, options.tol)) {
      result.converged = true;
      break;
    }
  }
  const double final_loss = s.loss();
  if (result.loss_iterations.empty() || result.loss_iterations.back() != result.n_iter) {
    result.loss_history.push_back(final_loss);
    result.loss_iterations.push_back(result.n_iter);
  }
  s.store_spectra();
  return result;
}

/// run(FactorsView) on factors padded with zero components to KPadded (a
/// multiple of 4, for the vectorised rows), copied back after. Zero components
/// stay zero under the MU and the Newton updates and add exactly nothing to the
/// model, the loss or the others.
template <int KPadded, class Rows, class Run>
NmfResult run_padded(const Rows &rows, FactorsView f, const NmfOptions &options, Run &&run) {
  const std::int64_t k = f.n_components, n_rows = rows.n_rows(), n_cols = rows.n_cols();
  std::vector<double> maps(static_cast<std::size_t>(n_rows * KPadded), 0.0);
  std::vector<double> spectra(static_cast<std::size_t>(KPadded * n_cols), 0.0);
  for (std::int64_t i = 0; i < n_rows; ++i)
    std::copy(f.maps + i * k, f.maps + (i + 1) * k, maps.data() + i * KPadded);
  std::copy(f.spectra, f.spectra + k * n_cols, spectra.data());
  NmfResult result = run(FactorsView{KPadded, maps.data(), spectra.data()});
  for (std::int64_t i = 0; i < n_rows; ++i)
    std::copy(maps.data() + i * KPadded, maps.data() + i * KPadded + k, f.maps + i * k);
  std::copy(spectra.data(), spectra.data() + k * n_cols, f.spectra);
  // The reported loss of the returned factors is that of kl_divergence on them,
  // exactly: the padded sums may differ from it in the last bit.
  result.loss_history.back() = detail::divergence(rows, ConstFactorsView{k, f.maps, f.spectra},
                                                  detail::resolve_threads(options.n_threads));
  return result;
}

template <int K, class Rows>
NmfResult run_coordinate_descent(const Rows &rows, FactorsView f, const NmfOptions &options) {
  DriverState<K, Rows> s(rows, f, options);
  const std::int64_t k = s.k;
  std::unique_ptr<detail::CscCounts> csc;
  if (options.update_spectra && options.max_iter > 0)
    csc = std::make_unique<detail::CscCounts>(rows);

  NmfResult result;
  result.loss_history.push_back(s.loss());
  result.loss_iterations.push_back(0);
  const bool any_update = options.update_maps || options.update_spectra;
  for (int it = 1; any_update && it <= options.max_iter; ++it) {
    const bool with_loss = it % options.loss_every == 0;
    double log_term = 0.0;
    if (options.update_maps)
      log_term = detail::cd_maps_sweep<K>(rows, f.maps, s.spectra_t.data(), s.spectra_rowsum.data(),
                                          int(k), with_loss && !options.update_spectra,
                                          s.maps_colsum.data(), s.n_threads);
    if (options.check_interrupt)
      options.check_interrupt();
    if (options.update_spectra) {
      log_term = detail::cd_spectra_sweep<K>(*csc, f.maps, s.spectra_t.data(), s.maps_colsum.data(),
                                             int(k), with_loss, s.n_threads);
      s.update_spectra_rowsum();
    }
    result.n_iter = it;
    if (options.check_interrupt)
      options.check_interrupt();
    if (with_loss) {
      result.loss_history.push_back(s.loss_from(log_term));
      result.loss_iterations.push_back(it);
    }
    if (options.callback && !options.callback(IterationReport{it, result.loss_history.back()})) {
      result.stopped_by_callback = true;
      break;
    }
    if (with_loss && loss_converged(result, options.tol)) {
      result.converged = true;
      break;
    }
  }
  // The last value is the divergence of the returned factors, evaluated afresh.
  if (result.loss_iterations.back() == result.n_iter && result.n_iter > 0) {
    result.loss_history.pop_back();
    result.loss_iterations.pop_back();
  }
  if (result.n_iter > 0 || result.loss_history.empty()) {
    result.loss_history.push_back(s.loss());
    result.loss_iterations.push_back(result.n_iter);
  }
  s.store_spectra();
  return result;
}

/// MU iterations before the Newton ones. The first MU iteration fixes the
/// overall scale of a random start (the loss falls about 200-fold); Newton steps
/// from the start itself made slow progress, and more MU iterations only delay
/// the Newton ones. Iterations to MU's 200-iteration loss on bench/workloads.py
/// counts (0.1 counts per channel, k = 4 unless said), against the former
/// schedule (10 MU iterations, then 5 Newton ones with guaranteed column steps
/// only, and whole column steps without the support check of newton_column):
/// 14, 15, 18 against 28, 29, 30 (16384 x 1024, seeds 1-3); 15 (k = 8, seed
/// 1); 16 and 15 (65536 x 1024, seeds 4, 5). On seed 0 (bench/run.py's
/// data) it ends in a different local minimum, 12 above the target after 60
/// iterations (the former schedule reached it at 32).
inline constexpr int kNewtonWarmup = 1;

/// A loss above the checkpoint's by at most this fraction of it is taken for
/// rounding, not a failed step: a sum over millions of entries changes in its
/// last bits when the factors barely do. Near convergence the over-relaxed
/// steps (kOverRelaxation) gave such rises of 1e-16 to 5e-16 of the loss, and
/// had they counted as failures, the columns would have turned cautious and
/// then the solver to MU. The state is restored all the same.
inline constexpr double kRoundingRise = 1e-12;

/// The Newton solver (Solver::newton): kNewtonWarmup MU iterations, then
/// newton_pass iterations. Every time the loss is evaluated, the state is kept
/// as a checkpoint; a loss above the checkpoint's (the rows' trapezoid test and
/// the columns' whole steps to zero are not guaranteed) restores it, and the
/// columns take only guaranteed steps from there; after a second rise, MU
/// iterations follow. A rise within rounding (kRoundingRise) restores the
/// state too, but changes no step, and counts as convergence when tol > 0.
template <int K, class Rows>
NmfResult run_newton(const Rows &rows, FactorsView f, const NmfOptions &options) {
  DriverState<K, Rows> s(rows, f, options);
  const std::int64_t k = s.k, n_rows = rows.n_rows();
  std::vector<double> denominator(static_cast<std::size_t>(k));
  detail::AlignedDoubles scratch;

  NmfResult result;
  std::vector<double> saved_maps(f.maps, f.maps + n_rows * k);
  detail::AlignedDoubles saved_spectra_t = s.spectra_t;
  // The initial loss: from the first (MU) iteration's pass, which evaluates the
  // model at every nonzero of the initial state anyway (the same sum as a pass
  // of its own, to the bit), or else from a pass of its own.
  static_assert(kNewtonWarmup >= 1, "the first iteration is an MU one");
  double saved_loss = 0.0;
  if (options.max_iter < 1) {
    saved_loss = s.loss();
    result.loss_history.push_back(saved_loss);
    result.loss_iterations.push_back(0);
  }
  // After a rise: columns take only guaranteed steps (cautious); after a second, MU.
  bool newton_since_saved = false, cautious = false, newton_failed = false;
  for (int it = 1; it <= options.max_iter; ++it) {
    for (std::int64_t q = 0; q < k; ++q)
      denominator[q] = s.spectra_rowsum[q] == 0.0 ? kModelFloor : s.spectra_rowsum[q];
    if (it <= kNewtonWarmup || newton_failed) {
      const bool initial_loss = it == 1;
      const double loss = s.loss_before([&] {
        return detail::update_both_pass<K>(rows, f.maps, s.spectra_t.data(), denominator.data(),
                                           int(k), initial_loss, s.maps_colsum.data(), scratch,
                                           s.n_threads);
      });
      if (initial_loss) {
        saved_loss = loss;
        result.loss_history.push_back(saved_loss);
        result.loss_iterations.push_back(0);
      }
    } else {
      detail::newton_pass<K>(rows, f.maps, s.spectra_t.data(), s.spectra_rowsum.data(),
                             denominator.data(), int(k), cautious, s.maps_colsum.data(), scratch,
                             s.n_threads);
      newton_since_saved = true;
    }
    s.update_spectra_rowsum();
    result.n_iter = it;
    if (options.check_interrupt)
      options.check_interrupt();
    const bool with_loss = it % options.loss_every == 0 || it == options.max_iter;
    bool undone = false, rounding = false;
    if (with_loss) {
      double loss = s.loss();
      undone = newton_since_saved && !(loss <= saved_loss);
      rounding = undone && loss - saved_loss <= kRoundingRise * std::abs(saved_loss);
      if (undone) {
        std::copy(saved_maps.begin(), saved_maps.end(), f.maps);
        s.spectra_t = saved_spectra_t;
        s.update_maps_colsum();
        s.update_spectra_rowsum();
        loss = saved_loss;
        if (!rounding) {
          newton_failed = cautious;
          cautious = true;
        }
      } else {
        std::copy(f.maps, f.maps + n_rows * k, saved_maps.begin());
        saved_spectra_t = s.spectra_t;
        saved_loss = loss;
      }
      newton_since_saved = false;
      result.loss_history.push_back(loss);
      result.loss_iterations.push_back(it);
    }
    if (options.callback && !options.callback(IterationReport{it, result.loss_history.back()})) {
      result.stopped_by_callback = true;
      break;
    }
    // An undone iteration repeats the last loss: no sign of convergence, unless
    // the rise was rounding (no decrease is left).
    if (with_loss && (!undone || rounding) && loss_converged(result, options.tol)) {
      result.converged = true;
      break;
    }
  }
  if (result.loss_iterations.back() != result.n_iter) {
    // Stopped by the callback between evaluations: the returned state's loss,
    // unless a Newton iteration since the checkpoint raised it.
    const double loss = s.loss();
    if (newton_since_saved && !(loss <= saved_loss)) {
      std::copy(saved_maps.begin(), saved_maps.end(), f.maps);
      s.spectra_t = saved_spectra_t;
      result.loss_history.push_back(saved_loss);
    } else {
      result.loss_history.push_back(loss);
    }
    result.loss_iterations.push_back(result.n_iter);
  }
  s.store_spectra();
  return result;
}

template <class Rows> NmfResult fit(const Rows &rows, FactorsView f, const NmfOptions &options) {
  if (options.max_iter < 0)
    throw std::invalid_argument("max_iter must be >= 0, got " + std::to_string(options.max_iter));
  if (!(options.tol >= 0.0) || !std::isfinite(options.tol))
    throw std::invalid_argument("tol must be finite and >= 0");
  if (options.loss_every < 1)
    throw std::invalid_argument("loss_every must be >= 1, got " +
                                std::to_string(options.loss_every));
  detail::check_factors(ConstFactorsView{f.n_components, f.maps, f.spectra}, rows.n_rows(),
                        rows.n_cols());
  if (options.solver == Solver::cd)
    return detail::dispatch_rank(f.n_components, [&](auto rank) {
      return run_coordinate_descent<decltype(rank)::value>(rows, f, options);
    });
  const bool newton = options.solver == Solver::newton;
  if (newton && !(options.update_maps && options.update_spectra))
    throw std::invalid_argument("solver newton updates both factors; use mu with a fixed factor");
  if (newton && f.n_components > detail::kMaxNewtonComponents)
    throw std::invalid_argument("solver newton supports up to " +
                                std::to_string(detail::kMaxNewtonComponents) + " components, got " +
                                std::to_string(f.n_components));
  // Not padded to 4 or 8 as for MU: a Newton iteration's cost per entry grows
  // as k^2 (the curvature statistics). One thread, AVX-512 rows, ms per
  // iteration padded -> not: k = 2 30.8 -> 15.4, k = 3 31.6 -> 22.8 (65536 x
  // 1024); k = 5 19.3 -> 9.1, k = 6 20.9 -> 12.6, k = 7 19.6 -> 17.3 (16384 x
  // 1024), the same losses.
  if (newton && f.n_components >= 2 && f.n_components <= 8)
    return detail::dispatch_rank(f.n_components, [&](auto rank) {
      return run_newton<decltype(rank)::value>(rows, f, options);
    });
  return detail::dispatch_mu_rank(f.n_components, [&](auto rank, auto padded) {
    constexpr int K = decltype(rank)::value;
    const auto run = [&](FactorsView g) {
      return newton ? run_newton<K>(rows, g, options) : run_updates<K>(rows, g, options);
    };
    if constexpr (decltype(padded)::value)
      return run_padded<K>(rows, f, options, run);
    else
      return run(f);
  });
}

} // namespace

template <class Value>
NmfResult fit_poisson_nmf(const CsrView<Value> &counts, FactorsView factors,
                          const NmfOptions &options) {
  detail::validate(counts);
  return fit(detail::CsrRows<Value>{counts}, factors, options);
}

template <class Value>
NmfResult fit_poisson_nmf(const DenseView<Value> &counts, FactorsView factors,
                          const NmfOptions &options) {
  detail::validate(counts);
  return fit(detail::DenseRows<Value>{counts}, factors, options);
}

template NmfResult fit_poisson_nmf(const CsrView<float> &, FactorsView, const NmfOptions &);
template NmfResult fit_poisson_nmf(const CsrView<double> &, FactorsView, const NmfOptions &);
template NmfResult fit_poisson_nmf(const DenseView<float> &, FactorsView, const NmfOptions &);
template NmfResult fit_poisson_nmf(const DenseView<double> &, FactorsView, const NmfOptions &);

} // namespace psnmf
