// Parallel passes over the nonzeros of X for the KL multiplicative updates.
//
// The rows are split into a fixed partition (parallel.hpp); each chunk runs a
// row-range body from mu_rows.inl and writes its own partial sums, which are
// reduced in chunk order: results do not depend on the thread count. The
// bodies exist twice, for the baseline ISA and for AVX + FMA (cpu_features.hpp);
// every pass picks one at run time.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpu_features.hpp"
#include "factor_state.hpp"
#if PSNMF_HAVE_AVX_FMA_KERNELS
#include "mu_rows_avx.hpp"
#endif
#if PSNMF_HAVE_AVX512_KERNELS
#include "mu_rows_avx512.hpp"
#include "newton_rows_avx512.hpp"
#endif
#include "newton_step.hpp"
#include "parallel.hpp"
#include "psnmf/divergence.hpp"
#include "row_access.hpp"

namespace psnmf::detail {

/// Per-thread scratch of the row bodies.
template <class Counts> struct RowBuffers {
  RowScratch<typename Counts::value_type> row;
  AlignedDoubles ratio;          ///< one value per stored entry of a row, + 8 (SIMD tail)
  std::vector<double> numerator; ///< k values
  AlignedDoubles transposed;     ///< k values per stored entry of a row, + 8 (SIMD tail)
  /// Newton rows only, sized by with_newton_scratch on first use (MU passes never need them).
  std::vector<double> newton;    ///< newton_scratch_size(k) values
  AlignedDoubles newton_entries; ///< three values per stored entry of a row (+ 8)
  RowBuffers(std::int64_t n_cols, int k)
      : ratio(static_cast<std::size_t>(n_cols + 8)), numerator(static_cast<std::size_t>(k)),
        transposed(static_cast<std::size_t>((n_cols + 8) * k)) {}

  /// This buffer with the Newton rows' scratch allocated.
  RowBuffers &with_newton_scratch() {
    if (newton_entries.empty()) {
      newton.resize(
          static_cast<std::size_t>(newton_scratch_size(static_cast<int>(numerator.size()))));
      newton_entries.resize(3 * ratio.size());
    }
    return *this;
  }
};

#define PSNMF_ROWS_NS portable
#define PSNMF_ROWS_TARGET
#define PSNMF_ROWS_SIMD4 0
#define PSNMF_ROWS_SIMD8 0
#include "mu_rows.inl"
#undef PSNMF_ROWS_NS
#undef PSNMF_ROWS_TARGET
#undef PSNMF_ROWS_SIMD4
#undef PSNMF_ROWS_SIMD8

#if PSNMF_HAVE_AVX_FMA_KERNELS
#define PSNMF_ROWS_NS avx_fma
#define PSNMF_ROWS_TARGET __attribute__((target("avx,fma")))
#define PSNMF_ROWS_SIMD4 1
#define PSNMF_ROWS_SIMD8 0
#include "mu_rows.inl"
#undef PSNMF_ROWS_NS
#undef PSNMF_ROWS_TARGET
#undef PSNMF_ROWS_SIMD4
#undef PSNMF_ROWS_SIMD8
#endif

#if PSNMF_HAVE_AVX512_KERNELS
#define PSNMF_ROWS_NS avx512
#define PSNMF_ROWS_TARGET __attribute__((target("avx,fma,avx2,avx512f,avx512vl,avx512dq")))
#define PSNMF_ROWS_SIMD4 1
#define PSNMF_ROWS_SIMD8 1
#include "mu_rows.inl"
#undef PSNMF_ROWS_NS
#undef PSNMF_ROWS_TARGET
#undef PSNMF_ROWS_SIMD4
#undef PSNMF_ROWS_SIMD8
#endif

/// Calls f(variant) with the row bodies this CPU should run (a type with static members).
template <class F> decltype(auto) with_row_kernels(F &&f) {
#if PSNMF_HAVE_AVX512_KERNELS
  if (use_avx512_kernels())
    return f(avx512::RowKernels{});
#endif
#if PSNMF_HAVE_AVX_FMA_KERNELS
  if (use_avx_fma_kernels())
    return f(avx_fma::RowKernels{});
#endif
  return f(portable::RowKernels{});
}

/// One parallel pass over the fixed row partition: chunk(kernels, c, buffers)
/// for every chunk, with the row bodies this CPU runs, then finish() once in
/// the same parallel region after every chunk is done (the loop's barrier), for
/// a closing parallel step.
template <class Counts, class Chunk, class Finish>
void run_chunks(const Counts &rows, const RowPartition &part, int k, int n_threads, Chunk &&chunk,
                Finish &&finish) {
  with_row_kernels([&](auto kernels) {
#pragma omp parallel num_threads(n_threads)
    {
      RowBuffers<Counts> buf(rows.n_cols(), k);
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t c = 0; c < part.n_chunks; ++c)
        chunk(kernels, c, buf);
      finish();
    }
  });
}

template <class Counts, class Chunk>
void run_chunks(const Counts &rows, const RowPartition &part, int k, int n_threads, Chunk &&chunk) {
  run_chunks(rows, part, k, n_threads, std::forward<Chunk>(chunk), [] {});
}

/// Chunk c's (n_cols, k) block of the spectra numerators in `scratch`, zeroed.
inline double *zeroed_block(AlignedDoubles &scratch, std::int64_t c, std::int64_t block) {
  double *acc = scratch.data() + c * block;
  std::fill(acc, acc + block, 0.0);
  return acc;
}

/// Sum over x > 0 of x log(x / lambda), the only data-dependent part of D.
template <int K, class Counts>
double log_term(const Counts &rows, const double *maps, const double *spectra_t, int k,
                int n_threads) {
  const RowPartition part(rows.n_rows());
  std::vector<double> partial(static_cast<std::size_t>(part.n_chunks), 0.0);
  run_chunks(rows, part, k, n_threads, [&](auto kernels, std::int64_t c, auto &buf) {
    partial[c] = decltype(kernels)::template log_term<K>(rows, part.begin(c), part.end(c), maps,
                                                         spectra_t, k, buf);
  });
  return ordered_sum(partial);
}

/// spectra <- spectra * (sum of the chunk numerators) / denominator, spectra
/// held transposed (n_cols, k). Called inside a parallel region.
inline void apply_spectra_numerators(const AlignedDoubles &acc, std::int64_t n_chunks,
                                     std::int64_t n_cols, int k, const double *denominator,
                                     double *spectra_t) {
  const std::int64_t block = n_cols * k;
  const double tiny = std::numeric_limits<double>::epsilon();
  std::vector<double> numerator(static_cast<std::size_t>(k)); // this thread's
#pragma omp for schedule(static)
  for (std::int64_t j = 0; j < n_cols; ++j) {
    sum_chunks(acc.data() + j * k, n_chunks, block, k, numerator.data());
    for (int q = 0; q < k; ++q) {
      const double h = spectra_t[j * k + q] * (numerator[q] / denominator[q]);
      spectra_t[j * k + q] = h < tiny ? 0.0 : h; // as scikit-learn: avoids denormal drift to 0
    }
  }
}

/// maps <- maps * ((X / lambda) spectra^T) / denominator, row by row.
/// Returns the log term of the loss of the state *before* the update when
/// `with_loss`, and writes the column sums of the updated maps.
template <int K, class Counts>
double update_maps_pass(const Counts &rows, double *maps, const double *spectra_t,
                        const double *denominator, int k, bool with_loss, double *maps_colsum,
                        int n_threads) {
  const RowPartition part(rows.n_rows());
  std::vector<double> loss_partial(static_cast<std::size_t>(part.n_chunks), 0.0);
  ChunkPartials colsum_partial;
  colsum_partial.assign(part.n_chunks, k);
  run_chunks(rows, part, k, n_threads, [&](auto kernels, std::int64_t c, auto &buf) {
    loss_partial[c] = decltype(kernels)::template update_maps<K>(
        rows, part.begin(c), part.end(c), maps, spectra_t, denominator, k, with_loss,
        colsum_partial.of(c), buf);
  });
  colsum_partial.sum_into(maps_colsum);
  return ordered_sum(loss_partial);
}

/// spectra <- spectra * (maps^T (X / lambda)) / denominator, with spectra held
/// transposed (n_cols, k). Each chunk of rows accumulates into its own (n_cols, k)
/// buffer; the buffers are summed in chunk order. Returns the log term of the
/// loss before the update when `with_loss`.
template <int K, class Counts>
double update_spectra_pass(const Counts &rows, const double *maps, double *spectra_t,
                           const double *denominator, int k, bool with_loss,
                           AlignedDoubles &scratch, int n_threads) {
  const std::int64_t n_cols = rows.n_cols();
  const std::int64_t block = n_cols * k;
  const RowPartition part(rows.n_rows());
  scratch.resize(static_cast<std::size_t>(part.n_chunks * block));
  std::vector<double> loss_partial(static_cast<std::size_t>(part.n_chunks), 0.0);
  run_chunks(
      rows, part, k, n_threads,
      [&](auto kernels, std::int64_t c, auto &buf) {
        loss_partial[c] = decltype(kernels)::template accumulate_spectra<K>(
            rows, part.begin(c), part.end(c), maps, spectra_t, k, with_loss,
            zeroed_block(scratch, c, block), buf);
      },
      [&] { apply_spectra_numerators(scratch, part.n_chunks, n_cols, k, denominator, spectra_t); });
  return ordered_sum(loss_partial);
}

/// The fused pass over X without the spectra update: each row updates its
/// maps and adds its contribution to the spectra numerator while it is in
/// cache. Chunk c of `part` leaves its numerators maps^T (X / lambda), at the
/// updated maps, in the (n_cols, k) block c of `scratch`, and the column sums
/// of its updated maps in the k values at c * k of `colsum_partial`: the caller
/// reduces them in chunk order. finish() runs once in the same parallel region,
/// after every chunk is done, to reduce or apply them there. Returns the log
/// term before the update when `with_loss`.
template <int K, class Counts, class Finish>
double numerators_pass(const Counts &rows, const RowPartition &part, double *maps,
                       const double *spectra_t, const double *maps_denominator, int k,
                       bool with_loss, ChunkPartials &colsum_partial, AlignedDoubles &scratch,
                       int n_threads, Finish &&finish) {
  const std::int64_t block = rows.n_cols() * k;
  scratch.resize(static_cast<std::size_t>(part.n_chunks * block));
  colsum_partial.assign(part.n_chunks, k);
  std::vector<double> loss_partial(static_cast<std::size_t>(part.n_chunks), 0.0);
  run_chunks(
      rows, part, k, n_threads,
      [&](auto kernels, std::int64_t c, auto &buf) {
        loss_partial[c] = decltype(kernels)::template fused<K>(
            rows, part.begin(c), part.end(c), maps, spectra_t, maps_denominator, k, with_loss,
            colsum_partial.of(c), zeroed_block(scratch, c, block), buf);
      },
      std::forward<Finish>(finish));
  return ordered_sum(loss_partial);
}

/// One full multiplicative-update iteration in a single pass over X:
/// numerators_pass, then the spectra update in the same parallel region.
/// Identical arithmetic to update_maps_pass followed by update_spectra_pass,
/// with half the memory traffic. The spectra denominator is the column sums
/// of the updated maps (guarded: an all-zero map leaves its spectrum as is).
/// Returns the log term before the update when `with_loss`.
template <int K, class Counts>
double update_both_pass(const Counts &rows, double *maps, double *spectra_t,
                        const double *maps_denominator, int k, bool with_loss, double *maps_colsum,
                        AlignedDoubles &scratch, int n_threads) {
  const RowPartition part(rows.n_rows());
  ChunkPartials colsum_partial;
  std::vector<double> spectra_denominator(static_cast<std::size_t>(k));
  const auto apply_update = [&] {
#pragma omp single
    {
      colsum_partial.sum_into(maps_colsum);
      for (int q = 0; q < k; ++q)
        spectra_denominator[q] = maps_colsum[q] == 0.0 ? 1.0 : maps_colsum[q];
    }
    apply_spectra_numerators(scratch, part.n_chunks, rows.n_cols(), k, spectra_denominator.data(),
                             spectra_t);
  };
  return numerators_pass<K>(rows, part, maps, spectra_t, maps_denominator, k, with_loss,
                            colsum_partial, scratch, n_threads, apply_update);
}

/// Calls f(std::integral_constant<int, K>, std::bool_constant<padded>) with
/// the K the MU rows run k components on, as fit_poisson_nmf does: the AVX-512
/// rows take k = 2, 4, 5 and 8 as they are; the AVX + FMA rows take k = 4, 8,
/// 12, 16; the other k < 16 run zero-padded to those (padded: K > k; zero
/// components stay zero and add exactly nothing); without them K = k for
/// k <= 8, else 0 (any k at run time).
template <class F> decltype(auto) dispatch_mu_rank(std::int64_t k, F &&f) {
  using Padded = std::true_type;
  using Exact = std::false_type;
  // A zero component costs about as much as a real one, but a spectra row of
  // 4 or 8 values keeps to one cache line (aligned_buffer.hpp) and to one
  // read-modify-write per entry. One thread, ms per iteration at 65536 x 1024,
  // padded against not: k = 2 9.4 against 7.6, k = 5 14.1 against 13.2 (the
  // same losses); but k = 3 9.6 against 10.9, k = 6 14.4 against 15.9 and
  // k = 7 14.5 against 18.8.
  if (use_avx512_kernels() && (k == 2 || k == 5))
    return dispatch_rank(k, [&](auto rank) { return f(rank, Exact{}); });
  if (use_avx_fma_kernels() && k <= 16) {
    if (k < 4)
      return f(std::integral_constant<int, 4>{}, Padded{});
    if (k < 8 && k != 4)
      return f(std::integral_constant<int, 8>{}, Padded{});
    if (k > 8 && k < 12)
      return f(std::integral_constant<int, 12>{}, Padded{});
    if (k > 12 && k < 16)
      return f(std::integral_constant<int, 16>{}, Padded{});
    if (k == 12)
      return f(std::integral_constant<int, 12>{}, Exact{});
    if (k == 16)
      return f(std::integral_constant<int, 16>{}, Exact{});
  }
  return dispatch_rank(k, [&](auto rank) { return f(rank, Exact{}); });
}

} // namespace psnmf::detail
