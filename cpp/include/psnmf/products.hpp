// Products of the counts matrix with small dense matrices (initialisation, totals).
#pragma once

#include <cstdint>

#include "psnmf/matrix_view.hpp"

namespace psnmf {

/// out (n_rows, width) = X * dense, with dense (n_cols, width); all row-major float64.
/// Each row sums over its nonzeros in column order: CSR and dense X give
/// bitwise identical results, for any thread count.
template <class Value>
void multiply(const CsrView<Value> &counts, const double *dense, std::int64_t width, double *out,
              int n_threads = 0);
template <class Value>
void multiply(const DenseView<Value> &counts, const double *dense, std::int64_t width, double *out,
              int n_threads = 0);

/// out (n_cols, width) = X^T * dense, with dense (n_rows, width). Rows are
/// accumulated per fixed chunk and the chunks summed in order: deterministic.
template <class Value>
void multiply_transposed(const CsrView<Value> &counts, const double *dense, std::int64_t width,
                         double *out, int n_threads = 0);
template <class Value>
void multiply_transposed(const DenseView<Value> &counts, const double *dense, std::int64_t width,
                         double *out, int n_threads = 0);

} // namespace psnmf
