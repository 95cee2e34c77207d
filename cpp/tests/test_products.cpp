// multiply / multiply_transposed on a hand-checkable 2 x 3 case; CSR == dense; threads.
#include <psnmf/products.hpp>

#include <cstdint>
#include <vector>

#include "check.hpp"

namespace {

// X = [[1, 0, 2],
//      [0, 3, 0]]
const std::vector<double> kDense = {1, 0, 2, 0, 3, 0};
const std::vector<std::int64_t> kIndptr = {0, 2, 3};
const std::vector<std::int32_t> kIndices = {0, 2, 1};
const std::vector<double> kValues = {1, 2, 3};

psnmf::DenseView<double> dense_view() {
  return {2, 3, kDense.data()};
}
psnmf::CsrView<double> csr_view() {
  return {2, 3, kIndptr.data(), kIndices.data(), kValues.data()};
}

void test_multiply_by_hand() {
  // B = [[1, 10], [2, 20], [3, 30]] -> X B = [[7, 70], [6, 60]]
  const std::vector<double> b = {1, 10, 2, 20, 3, 30};
  for (int threads : {1, 2}) {
    std::vector<double> from_dense(4), from_csr(4);
    psnmf::multiply(dense_view(), b.data(), 2, from_dense.data(), threads);
    psnmf::multiply(csr_view(), b.data(), 2, from_csr.data(), threads);
    CHECK(from_dense == (std::vector<double>{7, 70, 6, 60}));
    CHECK(from_csr == from_dense);
  }
}

void test_multiply_transposed_by_hand() {
  // Q = [[1], [2]] -> X^T Q = [[1], [6], [2]]
  const std::vector<double> q = {1, 2};
  for (int threads : {1, 3}) {
    std::vector<double> from_dense(3), from_csr(3);
    psnmf::multiply_transposed(dense_view(), q.data(), 1, from_dense.data(), threads);
    psnmf::multiply_transposed(csr_view(), q.data(), 1, from_csr.data(), threads);
    CHECK(from_dense == (std::vector<double>{1, 6, 2}));
    CHECK(from_csr == from_dense);
  }
}

void test_bad_width_throws() {
  std::vector<double> out(4);
  CHECK_THROWS(psnmf::multiply(dense_view(), kDense.data(), 0, out.data()), std::invalid_argument);
}

} // namespace

int main() {
  RUN(test_multiply_by_hand);
  RUN(test_multiply_transposed_by_hand);
  RUN(test_bad_width_throws);
  return psnmf_test::finish("products");
}
