// Fused passes over the nonzeros of X for the KL multiplicative updates.
//
// Each pass evaluates lambda = maps_i . spectra_j only where x_ij > 0: one dot
// product of length k and one division per nonzero, then a scatter of length k.
// `K` > 0 fixes the number of components at compile time (unrolled, vectorised
// loops); K == 0 handles any k at run time.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "parallel.hpp"
#include "psnmf/divergence.hpp"
#include "row_access.hpp"

namespace psnmf::detail {

/// Per-component scratch of length k: on the stack when K is known.
template <int K> struct KBuffer {
  double data[K];
  explicit KBuffer(int) {}
  double *get() { return data; }
};
template <> struct KBuffer<0> {
  std::vector<double> data;
  explicit KBuffer(int k) : data(static_cast<std::size_t>(k)) {}
  double *get() { return data.data(); }
};

template <int K> inline double model_at(const double *w, const double *h, int k_runtime) {
  const int k = K > 0 ? K : k_runtime;
  double lambda = 0.0;
  for (int q = 0; q < k; ++q)
    lambda += w[q] * h[q];
  return lambda < kModelFloor ? kModelFloor : lambda;
}

/// Sum over x > 0 of x log(x / lambda), the only data-dependent part of D.
template <int K, class Rows>
double log_term(const Rows &rows, const double *maps, const double *spectra_t, int k_runtime,
                int n_threads) {
  const int k = K > 0 ? K : k_runtime;
  const RowPartition part(rows.n_rows());
  std::vector<double> partial(static_cast<std::size_t>(part.n_chunks), 0.0);
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
  for (std::int64_t c = 0; c < part.n_chunks; ++c) {
    double acc = 0.0;
    for (std::int64_t i = part.begin(c); i < part.end(c); ++i) {
      const double *w = maps + i * k;
      rows.for_each_nonzero(i, [&](std::int32_t j, double x) {
        acc += x * std::log(x / model_at<K>(w, spectra_t + std::int64_t(j) * k, k));
      });
    }
    partial[static_cast<std::size_t>(c)] = acc;
  }
  return ordered_sum(partial);
}

/// ratio[p] = x_p / lambda_p for the entries of one row of X, in three simple
/// loops (gather-dot, divide, log) rather than one: the division loop
/// vectorises, and each loop keeps few values live. Returns the row's log term
/// when `with_loss` (explicit zeros skipped), else 0.
template <int K, class Value>
double row_ratios(const RowSpan<Value> &r, const double *w, const double *spectra_t, int k_runtime,
                  bool with_loss, double *ratio) {
  const int k = K > 0 ? K : k_runtime;
  for (std::int64_t p = 0; p < r.n; ++p)
    ratio[p] = model_at<K>(w, spectra_t + std::int64_t(r.cols[p]) * k, k);
  for (std::int64_t p = 0; p < r.n; ++p)
    ratio[p] = static_cast<double>(r.x[p]) / ratio[p];
  double loss = 0.0;
  if (with_loss)
    for (std::int64_t p = 0; p < r.n; ++p) {
      const double x = static_cast<double>(r.x[p]);
      if (x != 0.0)
        loss += x * std::log(ratio[p]);
    }
  return loss;
}

/// maps <- maps * ((X / lambda) spectra^T) / denominator, row by row.
/// Returns the log term of the loss of the state *before* the update when
/// `with_loss`, and writes the column sums of the updated maps.
template <int K, class Rows>
double update_maps_pass(const Rows &rows, double *maps, const double *spectra_t,
                        const double *denominator, int k_runtime, bool with_loss,
                        double *maps_colsum, int n_threads) {
  using Value = typename Rows::value_type;
  const int k = K > 0 ? K : k_runtime;
  const RowPartition part(rows.n_rows());
  std::vector<double> loss_partial(static_cast<std::size_t>(part.n_chunks), 0.0);
  std::vector<double> colsum_partial(static_cast<std::size_t>(part.n_chunks * k), 0.0);
#pragma omp parallel num_threads(n_threads)
  {
    RowScratch<Value> row_scratch;
    std::vector<double> ratio(static_cast<std::size_t>(rows.n_cols()));
    KBuffer<K> numerator_buf(k);
    double *numerator = numerator_buf.get();
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t c = 0; c < part.n_chunks; ++c) {
      double *colsum = colsum_partial.data() + c * k;
      double loss = 0.0;
      for (std::int64_t i = part.begin(c); i < part.end(c); ++i) {
        double *w = maps + i * k;
        const RowSpan<Value> r = rows.row(i, row_scratch);
        loss += row_ratios<K>(r, w, spectra_t, k, with_loss, ratio.data());
        std::fill(numerator, numerator + k, 0.0);
        for (std::int64_t p = 0; p < r.n; ++p) {
          const double *h = spectra_t + std::int64_t(r.cols[p]) * k;
          const double rp = ratio[p];
          for (int q = 0; q < k; ++q)
            numerator[q] += rp * h[q];
        }
        for (int q = 0; q < k; ++q) {
          w[q] *= numerator[q] / denominator[q];
          colsum[q] += w[q];
        }
      }
      loss_partial[static_cast<std::size_t>(c)] = loss;
    }
  }
  for (int q = 0; q < k; ++q) {
    double s = 0.0;
    for (std::int64_t c = 0; c < part.n_chunks; ++c)
      s += colsum_partial[c * k + q];
    maps_colsum[q] = s;
  }
  return ordered_sum(loss_partial);
}

/// spectra <- spectra * (maps^T (X / lambda)) / denominator, with spectra held
/// transposed (n_cols, k). Each chunk of rows accumulates into its own (n_cols, k)
/// buffer; the buffers are summed in chunk order. Returns the log term of the
/// loss before the update when `with_loss`.
template <int K, class Rows>
double update_spectra_pass(const Rows &rows, const double *maps, double *spectra_t,
                           const double *denominator, int k_runtime, bool with_loss,
                           std::vector<double> &scratch, int n_threads) {
  using Value = typename Rows::value_type;
  const int k = K > 0 ? K : k_runtime;
  const std::int64_t n_cols = rows.n_cols();
  const std::int64_t block = n_cols * k;
  const RowPartition part(rows.n_rows());
  scratch.resize(static_cast<std::size_t>(part.n_chunks * block));
  std::vector<double> loss_partial(static_cast<std::size_t>(part.n_chunks), 0.0);
#pragma omp parallel num_threads(n_threads)
  {
    RowScratch<Value> row_scratch;
    std::vector<double> ratio(static_cast<std::size_t>(n_cols));
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t c = 0; c < part.n_chunks; ++c) {
      double *acc = scratch.data() + c * block;
      std::fill(acc, acc + block, 0.0);
      double loss = 0.0;
      for (std::int64_t i = part.begin(c); i < part.end(c); ++i) {
        const double *w = maps + i * k;
        const RowSpan<Value> r = rows.row(i, row_scratch);
        loss += row_ratios<K>(r, w, spectra_t, k, with_loss, ratio.data());
        for (std::int64_t p = 0; p < r.n; ++p) {
          double *a = acc + std::int64_t(r.cols[p]) * k;
          const double rp = ratio[p];
          for (int q = 0; q < k; ++q)
            a[q] += rp * w[q];
        }
      }
      loss_partial[static_cast<std::size_t>(c)] = loss;
    }
    // Implicit barrier above: every chunk's buffer is complete.
    const double tiny = std::numeric_limits<double>::epsilon();
#pragma omp for schedule(static)
    for (std::int64_t j = 0; j < n_cols; ++j) {
      for (int q = 0; q < k; ++q) {
        const std::int64_t at = j * k + q;
        double numerator = 0.0;
        for (std::int64_t c = 0; c < part.n_chunks; ++c)
          numerator += scratch[c * block + at];
        double h = spectra_t[at] * (numerator / denominator[q]);
        spectra_t[at] = h < tiny ? 0.0 : h; // as scikit-learn: avoids denormal drift to 0
      }
    }
  }
  return ordered_sum(loss_partial);
}

} // namespace psnmf::detail
