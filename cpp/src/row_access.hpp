// Uniform access to the nonzeros of a row, for CSR and dense counts alike.
// Both visit a row's nonzeros in column order, so the two storage formats
// give bitwise identical arithmetic.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "psnmf/matrix_view.hpp"

namespace psnmf::detail {

/// The stored entries of one row: columns and counts, n of them. A CSR row may
/// hold explicit zeros; kernels that take a log must skip them.
template <class Value> struct RowSpan {
  const std::int32_t *cols = nullptr;
  const Value *x = nullptr;
  std::int64_t n = 0;
};

/// The row's total count.
template <class Value> inline double row_counts(const RowSpan<Value> &r) {
  double sum = 0.0;
  for (std::int64_t p = 0; p < r.n; ++p)
    sum += static_cast<double>(r.x[p]);
  return sum;
}

/// Per-thread buffers a dense row is gathered into.
template <class Value> struct RowScratch {
  std::vector<std::int32_t> cols;
  std::vector<Value> x;
};

template <class Value> struct CsrRows {
  using value_type = Value;
  const CsrView<Value> &m;
  std::int64_t n_rows() const { return m.n_rows; }
  std::int64_t n_cols() const { return m.n_cols; }

  template <class F> void for_each_nonzero(std::int64_t row, F &&f) const {
    for (std::int64_t p = m.indptr[row]; p < m.indptr[row + 1]; ++p) {
      const double x = static_cast<double>(m.values[p]);
      if (x != 0.0)
        f(m.indices[p], x);
    }
  }

  RowSpan<Value> row(std::int64_t i, RowScratch<Value> &) const {
    const std::int64_t begin = m.indptr[i];
    return {m.indices + begin, m.values + begin, m.indptr[i + 1] - begin};
  }
};

template <class Value> struct DenseRows {
  using value_type = Value;
  const DenseView<Value> &m;
  std::int64_t n_rows() const { return m.n_rows; }
  std::int64_t n_cols() const { return m.n_cols; }

  template <class F> void for_each_nonzero(std::int64_t row, F &&f) const {
    const Value *x_row = m.values + row * m.n_cols;
    for (std::int64_t j = 0; j < m.n_cols; ++j) {
      const double x = static_cast<double>(x_row[j]);
      if (x != 0.0)
        f(static_cast<std::int32_t>(j), x);
    }
  }

  /// The nonzeros of row i, gathered into `s`.
  RowSpan<Value> row(std::int64_t i, RowScratch<Value> &s) const {
    s.cols.resize(static_cast<std::size_t>(m.n_cols));
    s.x.resize(static_cast<std::size_t>(m.n_cols));
    const Value *x_row = m.values + i * m.n_cols;
    // Branch-free compaction: every value is written at the next free slot,
    // which only a nonzero claims (n <= j, so within the buffers). A branch per
    // value mispredicts at the middle densities where dense input is kept.
    std::int32_t *cols = s.cols.data();
    Value *x = s.x.data();
    std::int64_t n = 0;
    for (std::int64_t j = 0; j < m.n_cols; ++j) {
      const Value v = x_row[j];
      cols[n] = static_cast<std::int32_t>(j);
      x[n] = v;
      n += v != Value(0);
    }
    return {cols, x, n};
  }
};

/// Structure and value checks done once per call at the API boundary.
template <class Value> void validate(const CsrView<Value> &m) {
  if (m.n_rows <= 0 || m.n_cols <= 0)
    throw std::invalid_argument("counts: empty matrix (" + std::to_string(m.n_rows) + " x " +
                                std::to_string(m.n_cols) + ")");
  if (!m.indptr || (m.indptr[m.n_rows] > 0 && (!m.indices || !m.values)))
    throw std::invalid_argument("counts: null CSR buffer");
  if (m.indptr[0] != 0)
    throw std::invalid_argument("counts: CSR indptr[0] must be 0");
  for (std::int64_t i = 0; i < m.n_rows; ++i)
    if (m.indptr[i + 1] < m.indptr[i])
      throw std::invalid_argument("counts: CSR indptr must be non-decreasing");
  const std::int64_t nnz = m.indptr[m.n_rows];
  for (std::int64_t p = 0; p < nnz; ++p) {
    if (m.indices[p] < 0 || m.indices[p] >= m.n_cols)
      throw std::invalid_argument("counts: CSR column index " + std::to_string(m.indices[p]) +
                                  " out of range [0, " + std::to_string(m.n_cols) + ")");
    const double x = static_cast<double>(m.values[p]);
    if (!(x >= 0.0) || !std::isfinite(x))
      throw std::invalid_argument("counts: values must be finite and non-negative");
  }
}

template <class Value> void validate(const DenseView<Value> &m) {
  if (m.n_rows <= 0 || m.n_cols <= 0)
    throw std::invalid_argument("counts: empty matrix (" + std::to_string(m.n_rows) + " x " +
                                std::to_string(m.n_cols) + ")");
  if (!m.values)
    throw std::invalid_argument("counts: null buffer");
  const std::int64_t n = m.n_rows * m.n_cols;
  for (std::int64_t p = 0; p < n; ++p) {
    const double x = static_cast<double>(m.values[p]);
    if (!(x >= 0.0) || !std::isfinite(x))
      throw std::invalid_argument("counts: values must be finite and non-negative");
  }
}

} // namespace psnmf::detail
