// The generalised KL divergence, evaluated only at the nonzeros of X.
#include "psnmf/divergence.hpp"

#include "factor_state.hpp"
#include "loss.hpp"
#include "row_access.hpp"

namespace psnmf {
namespace {

template <class Rows>
double checked_divergence(const Rows &rows, const ConstFactorsView &f, int n_threads_requested) {
  detail::check_factors(f, rows.n_rows(), rows.n_cols());
  return detail::divergence(rows, f, detail::resolve_threads(n_threads_requested));
}

} // namespace

template <class Value>
double kl_divergence(const CsrView<Value> &counts, const ConstFactorsView &factors, int n_threads) {
  detail::validate(counts);
  return checked_divergence(detail::CsrRows<Value>{counts}, factors, n_threads);
}

template <class Value>
double kl_divergence(const DenseView<Value> &counts, const ConstFactorsView &factors,
                     int n_threads) {
  detail::validate(counts);
  return checked_divergence(detail::DenseRows<Value>{counts}, factors, n_threads);
}

template double kl_divergence(const CsrView<float> &, const ConstFactorsView &, int);
template double kl_divergence(const CsrView<double> &, const ConstFactorsView &, int);
template double kl_divergence(const DenseView<float> &, const ConstFactorsView &, int);
template double kl_divergence(const DenseView<double> &, const ConstFactorsView &, int);

} // namespace psnmf
