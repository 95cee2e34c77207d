// X * B and X^T * Q over the nonzeros of X, in a fixed order.
#include "psnmf/products.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "parallel.hpp"
#include "row_access.hpp"

namespace psnmf {
namespace {

void check_width(std::int64_t width, const double *dense, const double *out) {
  if (width < 1)
    throw std::invalid_argument("multiply: width must be >= 1");
  if (!dense || !out)
    throw std::invalid_argument("multiply: null buffer");
}

template <class Rows>
void product(const Rows &rows, const double *dense, std::int64_t width, double *out,
             int n_threads) {
  const int threads = detail::resolve_threads(n_threads);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::int64_t i = 0; i < rows.n_rows(); ++i) {
    double *target = out + i * width;
    std::fill(target, target + width, 0.0);
    rows.for_each_nonzero(i, [&](std::int32_t j, double x) {
      const double *b = dense + std::int64_t(j) * width;
      for (std::int64_t l = 0; l < width; ++l)
        target[l] += x * b[l];
    });
  }
}

template <class Rows>
void product_transposed(const Rows &rows, const double *dense, std::int64_t width, double *out,
                        int n_threads) {
  const int threads = detail::resolve_threads(n_threads);
  const detail::RowPartition part(rows.n_rows());
  const std::int64_t block = rows.n_cols() * width;
  std::vector<double> partial(static_cast<std::size_t>(part.n_chunks * block));
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t c = 0; c < part.n_chunks; ++c) {
      double *acc = partial.data() + c * block;
      std::fill(acc, acc + block, 0.0);
      for (std::int64_t i = part.begin(c); i < part.end(c); ++i) {
        const double *q = dense + i * width;
        rows.for_each_nonzero(i, [&](std::int32_t j, double x) {
          double *a = acc + std::int64_t(j) * width;
          for (std::int64_t l = 0; l < width; ++l)
            a[l] += x * q[l];
        });
      }
    }
#pragma omp for schedule(static)
    for (std::int64_t at = 0; at < block; ++at) {
      double sum = 0.0;
      for (std::int64_t c = 0; c < part.n_chunks; ++c)
        sum += partial[c * block + at];
      out[at] = sum;
    }
  }
}

} // namespace

template <class Value>
void multiply(const CsrView<Value> &counts, const double *dense, std::int64_t width, double *out,
              int n_threads) {
  detail::validate(counts);
  check_width(width, dense, out);
  product(detail::CsrRows<Value>{counts}, dense, width, out, n_threads);
}

template <class Value>
void multiply(const DenseView<Value> &counts, const double *dense, std::int64_t width, double *out,
              int n_threads) {
  detail::validate(counts);
  check_width(width, dense, out);
  product(detail::DenseRows<Value>{counts}, dense, width, out, n_threads);
}

template <class Value>
void multiply_transposed(const CsrView<Value> &counts, const double *dense, std::int64_t width,
                         double *out, int n_threads) {
  detail::validate(counts);
  check_width(width, dense, out);
  product_transposed(detail::CsrRows<Value>{counts}, dense, width, out, n_threads);
}

template <class Value>
void multiply_transposed(const DenseView<Value> &counts, const double *dense, std::int64_t width,
                         double *out, int n_threads) {
  detail::validate(counts);
  check_width(width, dense, out);
  product_transposed(detail::DenseRows<Value>{counts}, dense, width, out, n_threads);
}

#define PSNMF_PRODUCTS(VIEW, VALUE)                                                                \
  template void multiply(const VIEW<VALUE> &, const double *, std::int64_t, double *, int);        \
  template void multiply_transposed(const VIEW<VALUE> &, const double *, std::int64_t, double *,   \
                                    int);
PSNMF_PRODUCTS(CsrView, float)
PSNMF_PRODUCTS(CsrView, double)
PSNMF_PRODUCTS(DenseView, float)
PSNMF_PRODUCTS(DenseView, double)
#undef PSNMF_PRODUCTS

} // namespace psnmf
