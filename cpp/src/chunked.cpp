// Per-block pieces of a multiplicative-update iteration (see psnmf/chunked.hpp).
//
// Self-contained on purpose: it shares only the row access and the thread-count
// rule with the in-memory kernels, and repeats their arithmetic per nonzero in
// the same order, so a fit over blocks matches the in-memory fit up to the order
// of the sums over rows.
#include "psnmf/chunked.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "parallel.hpp"
#include "psnmf/divergence.hpp"
#include "row_access.hpp"

namespace psnmf {
namespace {

void check_finite_non_negative(const double *values, std::int64_t size, const char *name) {
  if (size > 0 && !values)
    throw std::invalid_argument(std::string(name) + ": null buffer");
  for (std::int64_t p = 0; p < size; ++p)
    if (!(values[p] >= 0.0) || !std::isfinite(values[p]))
      throw std::invalid_argument(std::string(name) + ": values must be finite and non-negative");
}

double model_at(const double *w, const double *h, std::int64_t k) {
  double lambda = 0.0;
  for (std::int64_t q = 0; q < k; ++q)
    lambda += w[q] * h[q];
  return lambda < kModelFloor ? kModelFloor : lambda;
}

/// Sums kept per part of a fixed row partition, reduced in part order.
struct PartSums {
  double log_term = 0.0;
  double counts = 0.0;
  std::vector<double> colsum_before; // k
  std::vector<double> colsum_after;  // k
  std::vector<double> numerator_t;   // (n_cols, k), empty unless accumulating
};

template <class Rows>
BlockUpdate run(const Rows &rows, double *maps, const double *spectra, std::int64_t k,
                bool update_maps, bool accumulate_spectra, int n_threads_requested) {
  if (k < 1)
    throw std::invalid_argument("n_components must be >= 1, got " + std::to_string(k));
  const std::int64_t n_rows = rows.n_rows(), n_cols = rows.n_cols();
  check_finite_non_negative(maps, n_rows * k, "maps");
  check_finite_non_negative(spectra, k * n_cols, "spectra");
  const int n_threads = detail::resolve_threads(n_threads_requested);

  // spectra_t (n_cols, k): a channel's k values contiguous, as the in-memory kernels.
  std::vector<double> spectra_t(static_cast<std::size_t>(n_cols * k));
  std::vector<double> rowsum(static_cast<std::size_t>(k), 0.0);
  for (std::int64_t q = 0; q < k; ++q)
    for (std::int64_t j = 0; j < n_cols; ++j) {
      spectra_t[j * k + q] = spectra[q * n_cols + j];
      rowsum[q] += spectra[q * n_cols + j];
    }
  std::vector<double> maps_denominator(rowsum);
  for (double &d : maps_denominator)
    d = d == 0.0 ? kModelFloor : d;

  const detail::RowPartition part(n_rows);
  std::vector<PartSums> parts(static_cast<std::size_t>(part.n_chunks));
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
  for (std::int64_t c = 0; c < part.n_chunks; ++c) {
    PartSums &s = parts[static_cast<std::size_t>(c)];
    s.colsum_before.assign(static_cast<std::size_t>(k), 0.0);
    s.colsum_after.assign(static_cast<std::size_t>(k), 0.0);
    if (accumulate_spectra)
      s.numerator_t.assign(static_cast<std::size_t>(n_cols * k), 0.0);
    std::vector<double> numerator(static_cast<std::size_t>(k));
    for (std::int64_t i = part.begin(c); i < part.end(c); ++i) {
      double *w = maps + i * k;
      for (std::int64_t q = 0; q < k; ++q)
        s.colsum_before[q] += w[q];
      // Pass 1 (maps update, or loss only): ratios with the maps on entry.
      if (update_maps || !accumulate_spectra) {
        std::fill(numerator.begin(), numerator.end(), 0.0);
        rows.for_each_nonzero(i, [&](std::int32_t j, double x) {
          const double *h = spectra_t.data() + std::int64_t(j) * k;
          const double ratio = x / model_at(w, h, k);
          s.log_term += x * std::log(ratio);
          s.counts += x;
          for (std::int64_t q = 0; q < k; ++q)
            numerator[q] += ratio * h[q];
        });
        if (update_maps)
          for (std::int64_t q = 0; q < k; ++q)
            w[q] *= numerator[q] / maps_denominator[q];
      }
      for (std::int64_t q = 0; q < k; ++q)
        s.colsum_after[q] += w[q];
      // Pass 2: the spectra numerator with the maps as returned.
      if (accumulate_spectra) {
        const bool with_loss = !update_maps;
        rows.for_each_nonzero(i, [&](std::int32_t j, double x) {
          const std::int64_t offset = std::int64_t(j) * k;
          const double ratio = x / model_at(w, spectra_t.data() + offset, k);
          if (with_loss) {
            s.log_term += x * std::log(ratio);
            s.counts += x;
          }
          double *a = s.numerator_t.data() + offset;
          for (std::int64_t q = 0; q < k; ++q)
            a[q] += ratio * w[q];
        });
      }
    }
  }

  BlockUpdate out;
  out.maps_colsum.assign(static_cast<std::size_t>(k), 0.0);
  std::vector<double> colsum_before(static_cast<std::size_t>(k), 0.0);
  double log_term = 0.0, counts = 0.0;
  if (accumulate_spectra)
    out.spectra_numerator.assign(static_cast<std::size_t>(k * n_cols), 0.0);
  for (const PartSums &s : parts) {
    log_term += s.log_term;
    counts += s.counts;
    for (std::int64_t q = 0; q < k; ++q) {
      colsum_before[q] += s.colsum_before[q];
      out.maps_colsum[q] += s.colsum_after[q];
    }
    if (accumulate_spectra)
      for (std::int64_t j = 0; j < n_cols; ++j)
        for (std::int64_t q = 0; q < k; ++q)
          out.spectra_numerator[q * n_cols + j] += s.numerator_t[j * k + q];
  }
  double sum_lambda = 0.0;
  for (std::int64_t q = 0; q < k; ++q)
    sum_lambda += colsum_before[q] * rowsum[q];
  out.loss = log_term - counts + sum_lambda;
  return out;
}

} // namespace

template <class Value>
BlockUpdate update_block(const CsrView<Value> &counts, double *maps, const double *spectra,
                         std::int64_t n_components, bool update_maps, bool accumulate_spectra,
                         int n_threads) {
  detail::validate(counts);
  return run(detail::CsrRows<Value>{counts}, maps, spectra, n_components, update_maps,
             accumulate_spectra, n_threads);
}

template <class Value>
BlockUpdate update_block(const DenseView<Value> &counts, double *maps, const double *spectra,
                         std::int64_t n_components, bool update_maps, bool accumulate_spectra,
                         int n_threads) {
  detail::validate(counts);
  return run(detail::DenseRows<Value>{counts}, maps, spectra, n_components, update_maps,
             accumulate_spectra, n_threads);
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
                                    bool, bool, int);
PSNMF_INSTANTIATE(CsrView, float)
PSNMF_INSTANTIATE(CsrView, double)
PSNMF_INSTANTIATE(DenseView, float)
PSNMF_INSTANTIATE(DenseView, double)
#undef PSNMF_INSTANTIATE

} // namespace psnmf
