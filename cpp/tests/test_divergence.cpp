// The generalised KL divergence: a hand-computed case, zero counts, the model floor, CSR = dense.
#include <cmath>
#include <cstdint>
#include <vector>

#include "check.hpp"
#include "psnmf/divergence.hpp"

namespace {

using psnmf::ConstFactorsView;
using psnmf::CsrView;
using psnmf::DenseView;
using psnmf::kModelFloor;

struct Csr {
  std::vector<std::int64_t> indptr;
  std::vector<std::int32_t> indices;
  std::vector<double> values;
};

Csr to_csr(const std::vector<double> &dense, std::int64_t rows, std::int64_t cols) {
  Csr m;
  m.indptr.push_back(0);
  for (std::int64_t i = 0; i < rows; ++i) {
    for (std::int64_t j = 0; j < cols; ++j) {
      const double x = dense[static_cast<std::size_t>(i * cols + j)];
      if (x != 0.0) {
        m.indices.push_back(static_cast<std::int32_t>(j));
        m.values.push_back(x);
      }
    }
    m.indptr.push_back(static_cast<std::int64_t>(m.values.size()));
  }
  return m;
}

double kl_dense(const std::vector<double> &x, std::int64_t rows, std::int64_t cols,
                const std::vector<double> &maps, const std::vector<double> &spectra, std::int64_t k,
                int threads = 0) {
  return psnmf::kl_divergence(DenseView<double>{rows, cols, x.data()},
                              ConstFactorsView{k, maps.data(), spectra.data()}, threads);
}

double kl_csr(const Csr &m, std::int64_t rows, std::int64_t cols, const std::vector<double> &maps,
              const std::vector<double> &spectra, std::int64_t k, int threads = 0) {
  return psnmf::kl_divergence(
      CsrView<double>{rows, cols, m.indptr.data(), m.indices.data(), m.values.data()},
      ConstFactorsView{k, maps.data(), spectra.data()}, threads);
}

// X = [1 0; 2 3], maps = [1 0.5; 0.25 2], spectra = [0.5 1; 2 0.25]
// lambda = maps * spectra = [1.5 1.125; 4.125 0.75].
const std::vector<double> kX = {1, 0, 2, 3};
const std::vector<double> kMaps = {1, 0.5, 0.25, 2};
const std::vector<double> kSpectra = {0.5, 1, 2, 0.25};

void test_hand_2x2() {
  const double expected = (1 * std::log(1 / 1.5) - 1 + 1.5)       // x = 1, lambda = 1.5
                          + (0 - 0 + 1.125)                       // x = 0: lambda only
                          + (2 * std::log(2 / 4.125) - 2 + 4.125) // x = 2
                          + (3 * std::log(3 / 0.75) - 3 + 0.75);  // x = 3
  const double d = kl_dense(kX, 2, 2, kMaps, kSpectra, 2);
  CHECK_NEAR(d, expected, 1e-14 * std::abs(expected));
  const Csr csr = to_csr(kX, 2, 2);
  CHECK_EQ(kl_csr(csr, 2, 2, kMaps, kSpectra, 2), d);
  // float counts give the same value (the counts are exact in float).
  const std::vector<float> xf(kX.begin(), kX.end());
  const double df = psnmf::kl_divergence(DenseView<float>{2, 2, xf.data()},
                                         ConstFactorsView{2, kMaps.data(), kSpectra.data()});
  CHECK_EQ(df, d);
  // A perfect model has zero divergence.
  const std::vector<double> lambda = {1.5, 1.125, 4.125, 0.75};
  const std::vector<double> identity = {1, 0, 0, 1};
  CHECK_NEAR(kl_dense(lambda, 2, 2, identity, lambda, 2), 0.0, 1e-15);
}

void test_zero_counts_contribute_lambda() {
  const std::vector<double> zeros(4, 0.0);
  // sum lambda = 1.5 + 1.125 + 4.125 + 0.75 = 7.5 (exact in binary).
  CHECK_EQ(kl_dense(zeros, 2, 2, kMaps, kSpectra, 2), 7.5);
  const Csr empty = to_csr(zeros, 2, 2);
  CHECK_EQ(kl_csr(empty, 2, 2, kMaps, kSpectra, 2), 7.5);
  // Zero factors with zero counts: exactly 0.
  const std::vector<double> zf(4, 0.0);
  CHECK_EQ(kl_dense(zeros, 2, 2, zf, zf, 2), 0.0);
}

void test_model_floor() {
  // maps = spectra = I, X = [0 2; 0 0]: lambda_01 = 0 where x = 2.
  const std::vector<double> x = {0, 2, 0, 0};
  const std::vector<double> identity = {1, 0, 0, 1};
  const double expected = 2 * std::log(2 / kModelFloor) - 2 + 0 // floored model at x = 2
                          + 2.0;                                // sum lambda = trace = 2
  const double d = kl_dense(x, 2, 2, identity, identity, 2);
  CHECK(std::isfinite(d));
  CHECK_NEAR(d, expected, 1e-14 * expected);
  CHECK_EQ(kl_csr(to_csr(x, 2, 2), 2, 2, identity, identity, 2), d);
  // All-zero factors with a nonzero count: the model is floored, not 0.
  const std::vector<double> zf(4, 0.0);
  const double dz = kl_dense(x, 2, 2, zf, zf, 2);
  CHECK_NEAR(dz, 2 * std::log(2 / kModelFloor) - 2, 1e-14 * dz);
  // A model below the floor (but > 0) is floored too.
  const std::vector<double> tiny = {1e-9, 0, 0, 1e-9};
  const double dt = kl_dense(x, 2, 2, tiny, tiny, 2);
  CHECK_NEAR(dt, 2 * std::log(2 / kModelFloor) - 2 + 2e-18, 1e-14 * dt);
}

void test_csr_equals_dense_random() {
  const std::int64_t rows = 75, cols = 13, k = 3;
  std::vector<double> x(static_cast<std::size_t>(rows * cols));
  std::vector<double> maps(static_cast<std::size_t>(rows * k));
  std::vector<double> spectra(static_cast<std::size_t>(k * cols));
  std::uint64_t s = 12345;
  auto next = [&] {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(s >> 11) * 0x1.0p-53;
  };
  for (double &v : x)
    v = next() < 0.7 ? 0.0 : std::floor(next() * 6);
  for (double &v : maps)
    v = 0.1 + next() * 5;
  for (double &v : spectra)
    v = next();
  const Csr csr = to_csr(x, rows, cols);
  const double ref = kl_dense(x, rows, cols, maps, spectra, k, 1);
  CHECK(std::isfinite(ref));
  for (int threads : {1, 2, 3}) {
    CHECK_EQ(kl_dense(x, rows, cols, maps, spectra, k, threads), ref);
    CHECK_EQ(kl_csr(csr, rows, cols, maps, spectra, k, threads), ref);
  }
  // Direct evaluation with a dense lambda.
  double direct = 0.0;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      double lambda = 0.0;
      for (std::int64_t q = 0; q < k; ++q)
        lambda += maps[static_cast<std::size_t>(i * k + q)] *
                  spectra[static_cast<std::size_t>(q * cols + j)];
      const double xv = x[static_cast<std::size_t>(i * cols + j)];
      direct += (xv > 0 ? xv * std::log(xv / lambda) - xv : 0.0) + lambda;
    }
  CHECK_NEAR(ref, direct, 1e-12 * std::abs(direct));
}

} // namespace

int main() {
  RUN(test_hand_2x2);
  RUN(test_zero_counts_contribute_lambda);
  RUN(test_model_floor);
  RUN(test_csr_equals_dense_random);
  return psnmf_test::finish("divergence");
}
