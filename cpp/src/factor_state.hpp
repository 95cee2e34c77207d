// The factors in the layout the kernels want, plus the sums the updates need.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "aligned_buffer.hpp"
#include "parallel.hpp"
#include "psnmf/matrix_view.hpp"

namespace psnmf::detail {

inline void check_factor_values(const double *values, std::int64_t size, const char *name) {
  for (std::int64_t p = 0; p < size; ++p)
    if (!(values[p] >= 0.0) || !std::isfinite(values[p]))
      throw std::invalid_argument(std::string(name) + ": values must be finite and non-negative");
}

inline void check_factors(const ConstFactorsView &f, std::int64_t n_rows, std::int64_t n_cols) {
  if (f.n_components < 1)
    throw std::invalid_argument("n_components must be >= 1, got " + std::to_string(f.n_components));
  if (!f.maps || !f.spectra)
    throw std::invalid_argument("factors: null buffer");
  check_factor_values(f.maps, n_rows * f.n_components, "maps");
  check_factor_values(f.spectra, n_cols * f.n_components, "spectra");
}

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// spectra (k, n_cols) -> spectra_t (n_cols, k): a channel's k values contiguous.
inline AlignedDoubles transpose_spectra(const double *spectra, std::int64_t k,
                                        std::int64_t n_cols) {
  AlignedDoubles t(static_cast<std::size_t>(k * n_cols));
  Eigen::Map<RowMajor>(t.data(), n_cols, k) =
      Eigen::Map<const RowMajor>(spectra, k, n_cols).transpose();
  return t;
}

inline void untranspose_spectra(const AlignedDoubles &t, std::int64_t k, std::int64_t n_cols,
                                double *spectra) {
  Eigen::Map<RowMajor>(spectra, k, n_cols) =
      Eigen::Map<const RowMajor>(t.data(), n_cols, k).transpose();
}

/// Column sums of maps (n_rows, k), summed per chunk then in chunk order, like the kernels.
inline std::vector<double> maps_column_sums(const double *maps, std::int64_t n_rows,
                                            std::int64_t k) {
  const RowPartition part(n_rows);
  std::vector<double> sums(static_cast<std::size_t>(k), 0.0);
  std::vector<double> chunk(static_cast<std::size_t>(k));
  for (std::int64_t c = 0; c < part.n_chunks; ++c) {
    std::fill(chunk.begin(), chunk.end(), 0.0);
    for (std::int64_t i = part.begin(c); i < part.end(c); ++i)
      for (std::int64_t q = 0; q < k; ++q)
        chunk[q] += maps[i * k + q];
    for (std::int64_t q = 0; q < k; ++q)
      sums[q] += chunk[q];
  }
  return sums;
}

/// Row sums of spectra held transposed (n_cols, k).
inline std::vector<double> spectra_row_sums(const AlignedDoubles &spectra_t, std::int64_t k,
                                            std::int64_t n_cols) {
  std::vector<double> sums(static_cast<std::size_t>(k));
  Eigen::Map<Eigen::RowVectorXd>(sums.data(), k) =
      Eigen::Map<const RowMajor>(spectra_t.data(), n_cols, k).colwise().sum();
  return sums;
}

inline double dot(const std::vector<double> &a, const std::vector<double> &b) {
  double s = 0.0;
  for (std::size_t q = 0; q < a.size(); ++q)
    s += a[q] * b[q];
  return s;
}

/// Total counts, summed per chunk then in chunk order.
template <class Rows> double total_counts(const Rows &rows, int n_threads) {
  const RowPartition part(rows.n_rows());
  std::vector<double> partial(static_cast<std::size_t>(part.n_chunks), 0.0);
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
  for (std::int64_t c = 0; c < part.n_chunks; ++c) {
    double acc = 0.0;
    for (std::int64_t i = part.begin(c); i < part.end(c); ++i)
      rows.for_each_nonzero(i, [&](std::int32_t, double x) { acc += x; });
    partial[static_cast<std::size_t>(c)] = acc;
  }
  double total = 0.0;
  for (double v : partial)
    total += v;
  return total;
}

/// Calls f(std::integral_constant<int, K>) with K = k for k <= 8, else K = 0.
template <class F> decltype(auto) dispatch_rank(std::int64_t k, F &&f) {
  switch (k) {
  case 1:
    return f(std::integral_constant<int, 1>{});
  case 2:
    return f(std::integral_constant<int, 2>{});
  case 3:
    return f(std::integral_constant<int, 3>{});
  case 4:
    return f(std::integral_constant<int, 4>{});
  case 5:
    return f(std::integral_constant<int, 5>{});
  case 6:
    return f(std::integral_constant<int, 6>{});
  case 7:
    return f(std::integral_constant<int, 7>{});
  case 8:
    return f(std::integral_constant<int, 8>{});
  default:
    return f(std::integral_constant<int, 0>{});
  }
}

} // namespace psnmf::detail
