// The Poisson loss: generalised Kullback-Leibler divergence D(X || maps * spectra).
#pragma once

#include "psnmf/matrix_view.hpp"

namespace psnmf {

/// Smallest model value used where a count is observed (float32 epsilon, as
/// scikit-learn's MU): keeps x / lambda and log(x / lambda) finite.
inline constexpr double kModelFloor = 1.1920928955078125e-07;

/// D = sum_{x>0} x log(x / lambda) - sum x + sum lambda, lambda = maps * spectra.
///
/// lambda is evaluated only where x > 0 (floored at kModelFloor); sum lambda
/// comes from the column sums of maps and the row sums of spectra, so no dense
/// lambda is ever formed. Deterministic for any thread count.
template <class Value>
double kl_divergence(const CsrView<Value> &counts, const ConstFactorsView &factors,
                     int n_threads = 0);

template <class Value>
double kl_divergence(const DenseView<Value> &counts, const ConstFactorsView &factors,
                     int n_threads = 0);

} // namespace psnmf
