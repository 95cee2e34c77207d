// The generalised KL divergence of given factors, evaluated only at the nonzeros of X.
#pragma once

#include <vector>

#include "factor_state.hpp"
#include "mu_kernels.hpp"
#include "parallel.hpp"

namespace psnmf::detail {

/// D(X || maps spectra) for validated counts and factors, summed in a fixed order.
template <class Rows>
double divergence(const Rows &rows, const ConstFactorsView &f, int n_threads) {
  const std::int64_t k = f.n_components;
  const AlignedDoubles spectra_t = transpose_spectra(f.spectra, k, rows.n_cols());
  const double sum_lambda = dot(maps_column_sums(f.maps, rows.n_rows(), k),
                                spectra_row_sums(spectra_t, k, rows.n_cols()));
  const double log_term = dispatch_rank(k, [&](auto rank) {
    return detail::log_term<decltype(rank)::value>(rows, f.maps, spectra_t.data(), int(k),
                                                   n_threads);
  });
  return log_term - total_counts(rows, n_threads) + sum_lambda;
}

} // namespace psnmf::detail
