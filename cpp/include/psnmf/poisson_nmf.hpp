// Poisson NMF by Lee-Seung multiplicative updates, evaluated only at nonzero counts.
#pragma once

#include <functional>
#include <vector>

#include "psnmf/matrix_view.hpp"

namespace psnmf {

struct IterationReport {
  int iteration = 0; ///< iterations completed so far (1-based)
  double loss = 0.0; ///< latest loss known: that of the state before this iteration
};

struct NmfOptions {
  int max_iter = 200;
  /// Stop when the relative decrease of the loss over one iteration,
  /// (L_prev - L) / L_prev, is <= tol. The loss of an iteration's starting
  /// state is computed inside that iteration's first pass, so the rule sees a
  /// decrease one iteration after it happened. tol <= 0 runs max_iter iterations.
  double tol = 1e-4;
  bool update_maps = true;    ///< false: maps held fixed
  bool update_spectra = true; ///< false: spectra held fixed (stage 2 of PSNMF, transform)
  int n_threads = 0;          ///< 0: the OpenMP default
  /// Called after every iteration on the calling thread; return false to stop early.
  std::function<bool(const IterationReport &)> callback;
  /// Called on the calling thread between the passes of every iteration, outside
  /// any parallel region; it may throw (e.g. on Ctrl-C) to abort the fit. The
  /// factors are then left partly updated and must be discarded.
  std::function<void()> check_interrupt;
};

struct NmfResult {
  int n_iter = 0;
  bool converged = false; ///< stopped by tol
  bool stopped_by_callback = false;
  /// Loss of the initial state and after every iteration: n_iter + 1 values.
  std::vector<double> loss_history;
};

/// Fit X ~ maps * spectra by minimising the generalised KL divergence.
///
/// One iteration updates the maps, then the spectra (as scikit-learn's NMF):
///   maps    <- maps    * ((X / lambda) spectra^T) / (1 spectra^T)
///   spectra <- spectra * (maps^T (X / lambda))    / (maps^T 1)
/// with lambda = maps * spectra evaluated only where X > 0 and floored at
/// kModelFloor. Zero denominators are guarded like scikit-learn's, and spectra
/// entries below double epsilon are set to 0. Results are bitwise identical
/// for any n_threads: reductions run over a fixed partition of the rows in a
/// fixed order. The factors are updated in place and must be non-negative.
template <class Value>
NmfResult fit_poisson_nmf(const CsrView<Value> &counts, FactorsView factors,
                          const NmfOptions &options = {});

template <class Value>
NmfResult fit_poisson_nmf(const DenseView<Value> &counts, FactorsView factors,
                          const NmfOptions &options = {});

} // namespace psnmf
