// Per-block pieces of a multiplicative-update iteration (see psnmf/chunked.hpp).
//
// The block runs the in-memory fit's passes (mu_kernels.hpp) on the same row
// kernels, picked by the same rule (dispatch_mu_rank): the arithmetic per row
// is that of fit_poisson_nmf, so a fit over blocks matches the in-memory fit
// up to the order of the sums over rows. Only the spectra update is left to
// the caller, which sums the numerators of all blocks first.
#include "psnmf/chunked.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "factor_state.hpp"
#include "mu_kernels.hpp"
#include "parallel.hpp"
#include "psnmf/divergence.hpp"
#include "row_access.hpp"

namespace psnmf {
namespace {

/// sum_c scratch[c] (n_cols, k) -> numerator (k, n_cols), in chunk order.
/// Called inside the pass's parallel region.
void reduce_numerators(const detail::AlignedDoubles &scratch, std::int64_t n_chunks,
                       std::int64_t n_cols, int k, double *numerator) {
  const std::int64_t block = n_cols * k;
#pragma omp for schedule(static)
  for (std::int64_t j = 0; j < n_cols; ++j)
    for (int q = 0; q < k; ++q) {
      double sum = 0.0;
      for (std::int64_t c = 0; c < n_chunks; ++c)
        sum += scratch[c * block + j * k + q];
      numerator[q * n_cols + j] = sum;
    }
}

/// The block on the rows for K components (K == k, or K == 0 for any k at run
/// time); the factors are validated.
template <int K, class Rows>
BlockUpdate run(const Rows &rows, double *maps, const double *spectra, int k,
                const BlockOptions &options, int n_threads) {
  const std::int64_t n_rows = rows.n_rows(), n_cols = rows.n_cols();
  const detail::AlignedDoubles spectra_t = detail::transpose_spectra(spectra, k, n_cols);
  const std::vector<double> spectra_rowsum = detail::spectra_row_sums(spectra_t, k, n_cols);
  std::vector<double> denominator(spectra_rowsum);
  for (double &d : denominator)
    d = d == 0.0 ? kModelFloor : d;
  // sum lambda = colsum(maps) . rowsum(spectra), with the maps on entry.
  const double sum_lambda =
      options.with_loss ? detail::dot(detail::maps_column_sums(maps, n_rows, k), spectra_rowsum)
                        : 0.0;

  BlockUpdate out;
  out.maps_colsum.assign(static_cast<std::size_t>(k), 0.0);
  double log_term = 0.0;
  if (options.accumulate_spectra) {
    out.spectra_numerator.assign(static_cast<std::size_t>(k * n_cols), 0.0);
    const detail::RowPartition part(n_rows);
    detail::ChunkPartials colsum_partial;
    detail::AlignedDoubles scratch;
    log_term = detail::numerators_pass<K>(
        rows, part, maps, spectra_t.data(), denominator.data(), k, options.with_loss,
        colsum_partial, scratch, n_threads, [&] {
          reduce_numerators(scratch, part.n_chunks, n_cols, k, out.spectra_numerator.data());
        });
    colsum_partial.sum_into(out.maps_colsum.data());
  } else {
    log_term = detail::update_maps_pass<K>(rows, maps, spectra_t.data(), denominator.data(), k,
                                           options.with_loss, out.maps_colsum.data(), n_threads);
  }
  if (options.with_loss)
    out.loss = log_term - detail::total_counts(rows, n_threads) + sum_lambda;
  return out;
}

/// run on factors padded with zero components to KPadded, copied back after
/// (n_rows x KPadded values each way: small beside the pass over the counts).
/// Zero components stay zero under the update and add exactly nothing to the
/// model, the loss, the numerators or the other components.
template <int KPadded, class Rows>
BlockUpdate run_padded(const Rows &rows, double *maps, const double *spectra, int k,
                       const BlockOptions &options, int n_threads) {
  const std::int64_t n_rows = rows.n_rows(), n_cols = rows.n_cols();
  std::vector<double> maps_padded(static_cast<std::size_t>(n_rows * KPadded), 0.0);
  std::vector<double> spectra_padded(static_cast<std::size_t>(KPadded * n_cols), 0.0);
  for (std::int64_t i = 0; i < n_rows; ++i)
    std::copy(maps + i * k, maps + (i + 1) * k, maps_padded.data() + i * KPadded);
  std::copy(spectra, spectra + k * n_cols, spectra_padded.data());
  BlockUpdate out =
      run<KPadded>(rows, maps_padded.data(), spectra_padded.data(), KPadded, options, n_threads);
  for (std::int64_t i = 0; i < n_rows; ++i)
    std::copy(maps_padded.data() + i * KPadded, maps_padded.data() + i * KPadded + k, maps + i * k);
  out.maps_colsum.resize(static_cast<std::size_t>(k));
  if (options.accumulate_spectra)
    out.spectra_numerator.resize(static_cast<std::size_t>(k * n_cols)); // the first k rows
  return out;
}

template <class Rows>
BlockUpdate update(const Rows &rows, double *maps, const double *spectra, std::int64_t k,
                   const BlockOptions &options) {
  const int n_threads = detail::resolve_threads(options.n_threads);
  detail::check_factors(ConstFactorsView{k, maps, spectra}, rows.n_rows(), rows.n_cols());
  return detail::dispatch_mu_rank(k, [&](auto rank, auto padded) {
    constexpr int K = decltype(rank)::value;
    if constexpr (decltype(padded)::value)
      return run_padded<K>(rows, maps, spectra, int(k), options, n_threads);
    else
      return run<K>(rows, maps, spectra, int(k), options, n_threads);
  });
}

void check_finite_non_negative(const double *values, std::int64_t size, const char *name) {
  if (size > 0 && !values)
    throw std::invalid_argument(std::string(name) + ": null buffer");
  for (std::int64_t p = 0; p < size; ++p)
    if (!(values[p] >= 0.0) || !std::isfinite(values[p]))
      throw std::invalid_argument(std::string(name) + ": values must be finite and non-negative");
}

/// The shape and buffers of the counts, without reading their entries.
void check_size(std::int64_t n_rows, std::int64_t n_cols) {
  if (n_rows <= 0 || n_cols <= 0)
    throw std::invalid_argument("counts: empty matrix (" + std::to_string(n_rows) + " x " +
                                std::to_string(n_cols) + ")");
}

template <class Value> void check_structure(const CsrView<Value> &m) {
  check_size(m.n_rows, m.n_cols);
  if (!m.indptr || (m.indptr[m.n_rows] > 0 && (!m.indices || !m.values)))
    throw std::invalid_argument("counts: null CSR buffer");
}

template <class Value> void check_structure(const DenseView<Value> &m) {
  check_size(m.n_rows, m.n_cols);
  if (!m.values)
    throw std::invalid_argument("counts: null buffer");
}

} // namespace

template <class Value>
BlockUpdate update_block(const CsrView<Value> &counts, double *maps, const double *spectra,
                         std::int64_t n_components, const BlockOptions &options) {
  if (options.check_counts)
    detail::validate(counts);
  else
    check_structure(counts);
  return update(detail::CsrRows<Value>{counts}, maps, spectra, n_components, options);
}

template <class Value>
BlockUpdate update_block(const DenseView<Value> &counts, double *maps, const double *spectra,
                         std::int64_t n_components, const BlockOptions &options) {
  if (options.check_counts)
    detail::validate(counts);
  else
    check_structure(counts);
  return update(detail::DenseRows<Value>{counts}, maps, spectra, n_components, options);
}

void apply_spectra_update(double *spectra, const double *numerator, const double *maps_colsum,
                          std::int64_t n_components, std::int64_t n_cols) {
  if (n_components < 1 || n_cols < 1)
    throw std::invalid_argument("apply_spectra_update: empty factors");
  check_finite_non_negative(numerator, n_components * n_cols, "numerator");
  check_finite_non_negative(maps_colsum, n_components, "maps_colsum");
  const double tiny = std::numeric_limits<double>::epsilon();
  for (std::int64_t q = 0; q < n_components; ++q) {
    // An all-zero map leaves its spectrum untouched instead of dividing by 0.
    const double denominator = maps_colsum[q] == 0.0 ? 1.0 : maps_colsum[q];
    for (std::int64_t j = 0; j < n_cols; ++j) {
      double &h = spectra[q * n_cols + j];
      const double updated = h * (numerator[q * n_cols + j] / denominator);
      h = updated < tiny ? 0.0 : updated;
    }
  }
}

#define PSNMF_INSTANTIATE(View, Value)                                                             \
  template BlockUpdate update_block(const View<Value> &, double *, const double *, std::int64_t,   \
                                    const BlockOptions &);
PSNMF_INSTANTIATE(CsrView, float)
PSNMF_INSTANTIATE(CsrView, double)
PSNMF_INSTANTIATE(DenseView, float)
PSNMF_INSTANTIATE(DenseView, double)
#undef PSNMF_INSTANTIATE

} // namespace psnmf
