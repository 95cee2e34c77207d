// Poisson NMF by Lee-Seung multiplicative updates, evaluated only at nonzero counts.
#pragma once

#include <functional>
#include <vector>

#include "psnmf/matrix_view.hpp"

namespace psnmf {

struct IterationReport {
  int iteration = 0; ///< iterations completed so far (1-based)
  double loss =
      0.0; ///< latest loss known (of the state before this iteration when loss_every == 1)
};

/// How the factors are updated; both minimise the same objective.
enum class Solver {
  /// Lee-Seung multiplicative updates (scikit-learn's "mu" iterates).
  mu,
  /// Cyclic coordinate descent with one safeguarded projected Newton step per
  /// coordinate (Hsieh & Dhillon 2011); every step lowers the loss. Updating
  /// the spectra uses a column-major copy of X (nnz entries). Usually reaches
  /// a given loss in far fewer iterations than mu.
  cd,
  /// Alternating projected Newton steps: one MU iteration, then per iteration
  /// one Newton step for every maps row (tried at t = 1, 2/3, 1/2, 1/4, 1/8 by
  /// a trapezoid test on the derivative along it and an exact check of the
  /// row's loss where a bound does not settle it, else the MU step) and one for
  /// every spectra column, from gradients and curvatures gathered in the same
  /// pass over X. Every step is lengthened 1.5 times (over-relaxation: about a
  /// third fewer iterations) before it is tested. Whenever the loss is
  /// evaluated (every loss_every iterations) a rise restores the last evaluated
  /// state and safer steps (guaranteed column steps, then MU) continue from
  /// there, so the reported losses never increase. An iteration costs several
  /// MU ones, but it converges far faster. Both factors updated; at most 64
  /// components.
  newton,
};

struct NmfOptions {
  Solver solver = Solver::mu;
  int max_iter = 200;
  /// Stop when the relative decrease of the loss over one iteration,
  /// (L_prev - L) / L_prev, is <= tol. The loss of an iteration's starting
  /// state is computed inside that iteration's first pass, so the rule sees a
  /// decrease one iteration after it happened. tol <= 0 runs max_iter iterations.
  double tol = 1e-4;
  bool update_maps = true;    ///< false: maps held fixed
  bool update_spectra = true; ///< false: spectra held fixed (stage 2 of PSNMF, transform)
  int n_threads = 0;          ///< 0: the OpenMP default
  /// Evaluate the loss only every `loss_every` iterations (and at the end): the
  /// loss costs one log per nonzero, as much as the rest of an iteration. The
  /// stopping rule is checked when a loss is known, on the mean decrease per
  /// iteration since the previous one: (L_prev - L) / (L_prev * m) <= tol over
  /// m iterations. 1 checks every iteration.
  int loss_every = 1;
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
  /// Loss of the initial state, then every `loss_every` iterations, then of the
  /// returned factors: loss_history[t] is the loss after loss_iterations[t]
  /// iterations (0 first, n_iter last; n_iter + 1 values when loss_every == 1).
  std::vector<double> loss_history;
  std::vector<int> loss_iterations;
};

/// Fit X ~ maps * spectra by minimising the generalised KL divergence.
///
/// One iteration updates the maps, then the spectra. With Solver::mu (as
/// scikit-learn's NMF):
///   maps    <- maps    * ((X / lambda) spectra^T) / (1 spectra^T)
///   spectra <- spectra * (maps^T (X / lambda))    / (maps^T 1)
/// with lambda = maps * spectra evaluated only where X > 0 and floored at
/// kModelFloor. With Solver::cd an iteration is one sweep over all maps, then
/// all spectra entries (see Solver); its loss is that of the state after the
/// iteration, and loss_iterations say which. Zero denominators are guarded like scikit-learn's, and
/// spectra entries below double epsilon are set to 0. Results are bitwise identical for any
/// n_threads: reductions run over a fixed partition of the rows in a fixed order. The factors are
/// updated in place and must be non-negative.
template <class Value>
NmfResult fit_poisson_nmf(const CsrView<Value> &counts, FactorsView factors,
                          const NmfOptions &options = {});

template <class Value>
NmfResult fit_poisson_nmf(const DenseView<Value> &counts, FactorsView factors,
                          const NmfOptions &options = {});

} // namespace psnmf
