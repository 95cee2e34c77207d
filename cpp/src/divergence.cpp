// The generalised KL divergence, evaluated only at the nonzeros of X.
#include "psnmf/divergence.hpp"

#include "factor_state.hpp"
#include "mu_kernels.hpp"
#include "row_access.hpp"

namespace psnmf {
namespace {

template <class Rows>
double divergence(const Rows &rows, const ConstFactorsView &f, int n_threads_requested) {
  detail::check_factors(f, rows.n_rows(), rows.n_cols());
  const std::int64_t k = f.n_components;
  const int n_threads = detail::resolve_threads(n_threads_requested);
  const std::vector<double> spectra_t = detail::transpose_spectra(f.spectra, k, rows.n_cols());
  const double sum_lambda = detail::dot(detail::maps_column_sums(f.maps, rows.n_rows(), k),
                                        detail::spectra_row_sums(spectra_t, k, rows.n_cols()));
  const double log_term = detail::dispatch_rank(k, [&](auto rank) {
    return detail::log_term<decltype(rank)::value>(rows, f.maps, spectra_t.data(), int(k),
                                                   n_threads);
  });
  return log_term - detail::total_counts(rows, n_threads) + sum_lambda;
}

} // namespace

template <class Value>
double kl_divergence(const CsrView<Value> &counts, const ConstFactorsView &factors, int n_threads) {
  detail::validate(counts);
  return divergence(detail::CsrRows<Value>{counts}, factors, n_threads);
}

template <class Value>
double kl_divergence(const DenseView<Value> &counts, const ConstFactorsView &factors,
                     int n_threads) {
  detail::validate(counts);
  return divergence(detail::DenseRows<Value>{counts}, factors, n_threads);
}

template double kl_divergence(const CsrView<float> &, const ConstFactorsView &, int);
template double kl_divergence(const CsrView<double> &, const ConstFactorsView &, int);
template double kl_divergence(const DenseView<float> &, const ConstFactorsView &, int);
template double kl_divergence(const DenseView<double> &, const ConstFactorsView &, int);

} // namespace psnmf
