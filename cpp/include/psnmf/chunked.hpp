// One multiplicative-update iteration split over row blocks of the counts, for fits
// where the pixels live in chunks (out of core, or on the workers of a cluster).
//
// Each block updates its own maps and returns the small pieces of the spectra
// update; the caller sums the pieces over the blocks, in any order or tree, and
// applies the spectra update once. The spectra (k x n_cols) are the only factor
// every block needs: they are broadcast, the maps never leave their block.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "psnmf/matrix_view.hpp"

namespace psnmf {

/// What update_block computes besides the maps update.
struct BlockOptions {
  /// Return the block's spectra numerator (a fit that updates the spectra);
  /// without it, only the maps are updated (spectra held fixed).
  bool accumulate_spectra = true;
  /// Return the block's share of the loss. It costs a log per nonzero and a
  /// pass over the counts: ask for it only on the iterations that record it.
  bool with_loss = true;
  /// Check every stored count (range of the CSR columns, finite, >= 0). The
  /// check reads the whole block, a quarter of the time of the pass itself:
  /// a driver that passes the same counts on every iteration, validated once
  /// (as the Python package's working-format counts are), may set it false.
  /// Unchecked counts must then be valid, or the pass reads out of bounds.
  bool check_counts = true;
  /// 0 for the OpenMP default, else 1..1024.
  int n_threads = 0;
};

/// What one row block contributes to an iteration. Sums over blocks give the
/// quantities of the whole matrix.
struct BlockUpdate {
  /// This block's share of D(X || maps * spectra), for the maps and spectra as
  /// they were on entry (before the maps update), as fit_poisson_nmf reports
  /// the loss of an iteration. Empty unless `with_loss`.
  std::optional<double> loss;
  /// maps^T (X / lambda), (n_components, n_cols) row-major, with lambda =
  /// maps * spectra at the nonzeros of X (floored at kModelFloor) and the maps
  /// as they are on return. Empty unless `accumulate_spectra`.
  std::vector<double> spectra_numerator;
  /// Column sums of the maps as they are on return, (n_components): the
  /// denominator of the spectra update.
  std::vector<double> maps_colsum;
};

/// One iteration's work on a block of rows with the spectra held fixed:
///   maps <- maps * ((X / lambda) spectra^T) / (1 spectra^T)
///   if accumulate_spectra: spectra_numerator = maps^T (X / lambda)
/// with the guards of fit_poisson_nmf (a zero spectra row sum divides by
/// kModelFloor), on the same row kernels and with the same arithmetic per row.
/// `maps` (n_rows, k) is updated in place, `spectra` (k, n_cols) is read only;
/// both row-major float64, finite and non-negative. The loss of factors
/// without an update is kl_divergence's. Deterministic for any n_threads.
/// Throws std::invalid_argument on bad input.
template <class Value>
BlockUpdate update_block(const CsrView<Value> &counts, double *maps, const double *spectra,
                         std::int64_t n_components, const BlockOptions &options = {});

template <class Value>
BlockUpdate update_block(const DenseView<Value> &counts, double *maps, const double *spectra,
                         std::int64_t n_components, const BlockOptions &options = {});

/// The spectra half of the iteration from the block sums:
///   spectra <- spectra * numerator / maps_colsum,
/// an all-zero map (maps_colsum == 0) leaves its spectrum unchanged and entries
/// below double epsilon become 0, as in fit_poisson_nmf. spectra and numerator
/// are (n_components, n_cols) row-major, maps_colsum (n_components).
void apply_spectra_update(double *spectra, const double *numerator, const double *maps_colsum,
                          std::int64_t n_components, std::int64_t n_cols);

} // namespace psnmf
