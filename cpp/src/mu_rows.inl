// The row-range bodies of the KL multiplicative updates, for one instruction set.
//
// Included by mu_kernels.hpp once per variant, with PSNMF_ROWS_NS naming the
// namespace and PSNMF_ROWS_TARGET the function attribute that selects the ISA
// (empty for the portable build); PSNMF_ROWS_SIMD4 set to 1 routes k = 4, 8,
// 12, 16 to the hand-vectorised rows of mu_rows_avx.hpp, and PSNMF_ROWS_SIMD8
// set to 1 the fused rows of k = 2 to 8 to the AVX-512 ones of mu_rows_avx512.hpp. Everything the
// inner loops call is defined here, so that all of it is compiled for that ISA. K > 0 fixes the
// number of components at compile time (unrolled, vectorised over k); K == 0 handles any k at run
// time.
//
// lambda = maps_i . spectra_j is evaluated only where x_ij > 0, floored at
// kModelFloor; ratio = x / lambda.

namespace PSNMF_ROWS_NS {

template <int K> PSNMF_ROWS_TARGET inline double model_at(const double *w, const double *h, int k) {
  if constexpr (K > 0)
    k = K;
#if PSNMF_ROWS_SIMD4
  // Fused as the vector rows are (w0 h0, then one FMA per component), in any
  // build: with -O0 the compiler would not contract a * b + c, and the losses
  // of the two would differ in the last bit.
  double lambda = w[0] * h[0];
  for (int q = 1; q < k; ++q)
    lambda = std::fma(w[q], h[q], lambda);
#else
  double lambda = 0.0;
  for (int q = 0; q < k; ++q)
    lambda += w[q] * h[q];
#endif
  return lambda < kModelFloor ? kModelFloor : lambda;
}

/// Sum of x log(ratio) over the row's nonzero counts (explicit zeros skipped):
/// with SIMD4 the vectorised rows' sum, so every loss this variant reports (and
/// kl_divergence) comes from one formula.
template <class Value>
PSNMF_ROWS_TARGET inline double row_log_sum(const RowSpan<Value> &r, const double *ratio) {
#if PSNMF_ROWS_SIMD4
  return simd4::row_log_term(r, ratio);
#else
  double loss = 0.0;
  for (std::int64_t p = 0; p < r.n; ++p) {
    const double x = static_cast<double>(r.x[p]);
    if (x != 0.0)
      loss += x * std::log(ratio[p]);
  }
  return loss;
#endif
}

/// ratio[p] = x_p / lambda_p over one row, in simple loops (gather-dot, then
/// divide: the division loop vectorises). Returns the row's sum of
/// x log(x / lambda) when `with_loss` (explicit zeros skipped), else 0.
template <int K, class Value>
PSNMF_ROWS_TARGET inline double row_ratios(const RowSpan<Value> &r, const double *w,
                                           const double *spectra_t, int k, bool with_loss,
                                           double *ratio) {
  if constexpr (K > 0)
    k = K;
#if PSNMF_ROWS_SIMD8
  // Eight entries at a time: the scalar gather took a third of a loss pass.
  if constexpr (K >= 2 && K <= 8) {
    simd8::row_ratios<K>(r, w, spectra_t, ratio);
    return with_loss ? simd8::row_log_term(r, ratio) : 0.0;
  }
#endif
  for (std::int64_t p = 0; p < r.n; ++p)
    ratio[p] = model_at<K>(w, spectra_t + std::int64_t(r.cols[p]) * k, k);
  for (std::int64_t p = 0; p < r.n; ++p)
    ratio[p] = static_cast<double>(r.x[p]) / ratio[p];
  return with_loss ? row_log_sum(r, ratio) : 0.0;
}

/// w <- w * (sum_p ratio_p spectra_p) / denominator for one row; adds the new
/// w to colsum. `numerator_any_k` is scratch of length k, used when K == 0.
template <int K, class Value>
PSNMF_ROWS_TARGET inline void scale_row(const RowSpan<Value> &r, const double *ratio,
                                        const double *spectra_t, const double *denominator, int k,
                                        double *w, double *colsum, double *numerator_any_k) {
  if constexpr (K > 0)
    k = K;
  double numerator_fixed[K > 0 ? K : 1];
  double *numerator = K > 0 ? numerator_fixed : numerator_any_k;
  for (int q = 0; q < k; ++q)
    numerator[q] = 0.0;
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

/// acc_j += ratio_p * w for the row's entries (the spectra numerator).
template <int K, class Value>
PSNMF_ROWS_TARGET inline void scatter_row(const RowSpan<Value> &r, const double *ratio,
                                          const double *w, int k, double *acc) {
  if constexpr (K > 0)
    k = K;
  for (std::int64_t p = 0; p < r.n; ++p) {
    double *a = acc + std::int64_t(r.cols[p]) * k;
    const double rp = ratio[p];
    for (int q = 0; q < k; ++q)
      a[q] += rp * w[q];
  }
}

/// Maps update of one row (ratios, numerator, w <- w * numerator / denominator);
/// returns its log term before the update when `with_loss`.
template <int K, class Value>
PSNMF_ROWS_TARGET inline double
maps_row(const RowSpan<Value> &r, double *w, const double *spectra_t, const double *denominator,
         int k, bool with_loss, double *colsum, double *ratio, double *numerator) {
#if PSNMF_ROWS_SIMD8
  // The fused rows' maps half: the same maps whether or not the spectra are updated.
  if constexpr (K >= 2 && K <= 8)
    return simd8::maps_row<K>(r, w, spectra_t, denominator, with_loss, colsum, ratio, nullptr);
#endif
#if PSNMF_ROWS_SIMD4
  if constexpr (K > 0 && K % 4 == 0)
    return simd4::maps_row<K / 4>(r, w, spectra_t, denominator, with_loss, colsum, ratio);
#endif
  const double loss = row_ratios<K>(r, w, spectra_t, k, with_loss, ratio);
  scale_row<K>(r, ratio, spectra_t, denominator, k, w, colsum, numerator);
  return loss;
}

/// Spectra numerator of one row at the given w; returns its log term when `with_loss`.
template <int K, class Value>
PSNMF_ROWS_TARGET inline double spectra_row(const RowSpan<Value> &r, const double *w,
                                            const double *spectra_t, int k, bool with_loss,
                                            double *acc, double *ratio) {
#if PSNMF_ROWS_SIMD4
  if constexpr (K > 0 && K % 4 == 0)
    return simd4::spectra_row<K / 4>(r, w, spectra_t, with_loss, acc, ratio);
#endif
  const double loss = row_ratios<K>(r, w, spectra_t, k, with_loss, ratio);
  scatter_row<K>(r, ratio, w, k, acc);
  return loss;
}

/// Both half-updates of one row: maps_row, then spectra_row at the updated w.
template <int K, class Value>
PSNMF_ROWS_TARGET inline double fused_row(const RowSpan<Value> &r, double *w,
                                          const double *spectra_t, const double *denominator, int k,
                                          bool with_loss, double *colsum, double *acc,
                                          double *ratio, double *numerator, double *transposed) {
#if PSNMF_ROWS_SIMD8
  if constexpr (K >= 2 && K <= 8) {
    const double loss =
        simd8::maps_row<K>(r, w, spectra_t, denominator, with_loss, colsum, ratio, transposed);
    simd8::spectra_row_transposed<K>(r, w, transposed, acc);
    return loss;
  }
#endif
#if PSNMF_ROWS_SIMD4
  if constexpr (K == 4 || K == 8) {
    const double loss =
        simd4::maps_row<K / 4>(r, w, spectra_t, denominator, with_loss, colsum, ratio, transposed);
    simd4::spectra_row_transposed<K / 4>(r, w, transposed, acc);
    return loss;
  }
#endif
  (void)transposed;
  const double loss =
      maps_row<K>(r, w, spectra_t, denominator, k, with_loss, colsum, ratio, numerator);
  spectra_row<K>(r, w, spectra_t, k, false, acc, ratio);
  return loss;
}

#include "newton_rows.inl"

/// The row-range passes, as static members so the drivers can take the
/// variant as a type.
struct RowKernels {
  /// Sum over rows [begin, end) and x > 0 of x log(x / lambda).
  template <int K, class Counts>
  PSNMF_ROWS_TARGET static double log_term(const Counts &rows, std::int64_t begin, std::int64_t end,
                                           const double *maps, const double *spectra_t, int k,
                                           RowBuffers<Counts> &buf) {
    double loss = 0.0;
    for (std::int64_t i = begin; i < end; ++i) {
      const auto r = rows.row(i, buf.row);
      loss += row_ratios<K>(r, maps + i * k, spectra_t, k, true, buf.ratio.data());
    }
    return loss;
  }

  /// Maps update of rows [begin, end); returns their log term before the update.
  template <int K, class Counts>
  PSNMF_ROWS_TARGET static double
  update_maps(const Counts &rows, std::int64_t begin, std::int64_t end, double *maps,
              const double *spectra_t, const double *denominator, int k, bool with_loss,
              double *colsum, RowBuffers<Counts> &buf) {
    double loss = 0.0;
    for (std::int64_t i = begin; i < end; ++i) {
      const auto r = rows.row(i, buf.row);
      loss += maps_row<K>(r, maps + i * k, spectra_t, denominator, k, with_loss, colsum,
                          buf.ratio.data(), buf.numerator.data());
    }
    return loss;
  }

  /// Spectra numerator of rows [begin, end) into acc (n_cols, k).
  template <int K, class Counts>
  PSNMF_ROWS_TARGET static double accumulate_spectra(const Counts &rows, std::int64_t begin,
                                                     std::int64_t end, const double *maps,
                                                     const double *spectra_t, int k, bool with_loss,
                                                     double *acc, RowBuffers<Counts> &buf) {
    double loss = 0.0;
    for (std::int64_t i = begin; i < end; ++i) {
      const auto r = rows.row(i, buf.row);
      loss += spectra_row<K>(r, maps + i * k, spectra_t, k, with_loss, acc, buf.ratio.data());
    }
    return loss;
  }

  /// Both half-updates of rows [begin, end) while each row is in cache: the
  /// maps row is updated from the current spectra, then its contribution to
  /// the spectra numerator is taken at the updated maps, exactly as the two
  /// separate passes would. Returns the log term before the update.
  template <int K, class Counts>
  PSNMF_ROWS_TARGET static double fused(const Counts &rows, std::int64_t begin, std::int64_t end,
                                        double *maps, const double *spectra_t,
                                        const double *denominator, int k, bool with_loss,
                                        double *colsum, double *acc, RowBuffers<Counts> &buf) {
    double loss = 0.0;
    for (std::int64_t i = begin; i < end; ++i) {
      const auto r = rows.row(i, buf.row);
      loss += fused_row<K>(r, maps + i * k, spectra_t, denominator, k, with_loss, colsum, acc,
                           buf.ratio.data(), buf.numerator.data(), buf.transposed.data());
    }
    return loss;
  }

  /// Newton steps of maps rows [begin, end) (newton_row), their spectra
  /// statistics into acc (n_cols, newton_stats_stride(k)), their supports
  /// into supports (n_cols, support_words(k)) unless null.
  template <int K, class Counts>
  PSNMF_ROWS_TARGET static void
  newton(const Counts &rows, std::int64_t begin, std::int64_t end, double *maps,
         const double *spectra_t, const double *spectra_rowsum, const double *mu_denominator, int k,
         double *colsum, double *acc, std::uint64_t *supports, RowBuffers<Counts> &buffers) {
    RowBuffers<Counts> &buf = buffers.with_newton_scratch();
    for (std::int64_t i = begin; i < end; ++i) {
      const auto r = rows.row(i, buf.row);
      newton_row<K>(r, maps + i * k, spectra_t, spectra_rowsum, mu_denominator, k, colsum, acc,
                    supports, buf.ratio.data(), buf.newton_entries.data(),
                    buf.newton_entries.data() + buf.ratio.size(),
                    buf.newton_entries.data() + 2 * buf.ratio.size(), buf.transposed.data(),
                    buf.newton.data());
    }
  }
};

} // namespace PSNMF_ROWS_NS
