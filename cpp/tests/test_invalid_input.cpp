// Invalid input is rejected with std::invalid_argument before anything is modified.
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "check.hpp"
#include "psnmf/binning.hpp"
#include "psnmf/convert.hpp"
#include "psnmf/divergence.hpp"
#include "psnmf/poisson_nmf.hpp"
#include "psnmf/products.hpp"

namespace {

using psnmf::ConstFactorsView;
using psnmf::CsrView;
using psnmf::DenseView;
using psnmf::FactorsView;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// A valid 3 x 4 problem with k = 2.
//   [1 0 2 0]
//   [0 0 0 3]
//   [4 5 0 0]
struct Valid {
  std::vector<double> dense = {1, 0, 2, 0, 0, 0, 0, 3, 4, 5, 0, 0};
  std::vector<std::int64_t> indptr = {0, 2, 3, 5};
  std::vector<std::int32_t> indices = {0, 2, 3, 0, 1};
  std::vector<double> values = {1, 2, 3, 4, 5};
  std::vector<double> maps = {1, 0.5, 0.5, 1, 1, 1};
  std::vector<double> spectra = {0.4, 0.3, 0.2, 0.1, 0.1, 0.2, 0.3, 0.4};
  std::int64_t rows = 3, cols = 4, k = 2;

  DenseView<double> dense_view() const { return {rows, cols, dense.data()}; }
  CsrView<double> csr_view() const {
    return {rows, cols, indptr.data(), indices.data(), values.data()};
  }
  FactorsView factors() { return {k, maps.data(), spectra.data()}; }
  ConstFactorsView const_factors() const { return {k, maps.data(), spectra.data()}; }
};

/// Every entry point must throw std::invalid_argument for `v`, leaving the factors untouched.
void expect_all_reject(Valid v, bool check_dense, bool check_csr) {
  const std::vector<double> maps0 = v.maps, spectra0 = v.spectra;
  psnmf::NmfOptions options;
  options.max_iter = 3;
  if (check_dense) {
    CHECK_THROWS(psnmf::fit_poisson_nmf(v.dense_view(), v.factors(), options),
                 std::invalid_argument);
    CHECK_THROWS(psnmf::kl_divergence(v.dense_view(), v.const_factors()), std::invalid_argument);
  }
  if (check_csr) {
    CHECK_THROWS(psnmf::fit_poisson_nmf(v.csr_view(), v.factors(), options), std::invalid_argument);
    CHECK_THROWS(psnmf::kl_divergence(v.csr_view(), v.const_factors()), std::invalid_argument);
  }
  if (v.maps.size() == maps0.size() && v.spectra.size() == spectra0.size()) {
    // NaN != NaN: compare the bits through the original values' positions.
    for (std::size_t p = 0; p < maps0.size(); ++p)
      CHECK(v.maps[p] == maps0[p] || (v.maps[p] != v.maps[p] && maps0[p] != maps0[p]));
    for (std::size_t p = 0; p < spectra0.size(); ++p)
      CHECK(v.spectra[p] == spectra0[p] ||
            (v.spectra[p] != v.spectra[p] && spectra0[p] != spectra0[p]));
  }
}

void test_valid_baseline() {
  Valid v;
  psnmf::NmfOptions options;
  options.max_iter = 3;
  const psnmf::NmfResult a = psnmf::fit_poisson_nmf(v.dense_view(), v.factors(), options);
  CHECK_EQ(a.n_iter, 3);
  Valid w;
  const psnmf::NmfResult b = psnmf::fit_poisson_nmf(w.csr_view(), w.factors(), options);
  CHECK(a.loss_history == b.loss_history);
}

void test_negative_counts() {
  Valid v;
  v.dense[2] = -2;
  v.values[1] = -2;
  expect_all_reject(v, true, true);
  Valid tiny;
  tiny.dense[0] = -1e-300;
  tiny.values[0] = -1e-300;
  expect_all_reject(tiny, true, true);
}

void test_nan_and_inf_counts() {
  Valid v;
  v.dense[4] = kNaN; // a "zero" position: the dense scan must still see it
  v.values[4] = kNaN;
  expect_all_reject(v, true, true);
  Valid inf;
  inf.dense[0] = kInf;
  inf.values[0] = kInf;
  expect_all_reject(inf, true, true);
  // float NaN counts too.
  Valid f;
  std::vector<float> xf(f.dense.begin(), f.dense.end());
  xf[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS(psnmf::fit_poisson_nmf(DenseView<float>{3, 4, xf.data()}, f.factors()),
               std::invalid_argument);
}

void test_column_index_out_of_range() {
  Valid v;
  v.indices[2] = 4; // == n_cols
  expect_all_reject(v, false, true);
  Valid neg;
  neg.indices[0] = -1;
  expect_all_reject(neg, false, true);
}

void test_bad_indptr() {
  Valid v;
  v.indptr = {0, 3, 2, 5}; // decreasing
  expect_all_reject(v, false, true);
  Valid start;
  start.indptr = {1, 2, 3, 5}; // indptr[0] != 0
  expect_all_reject(start, false, true);
}

void test_n_components_zero() {
  Valid v;
  v.k = 0;
  expect_all_reject(v, true, true);
  Valid neg;
  neg.k = -1;
  expect_all_reject(neg, true, true);
}

void test_negative_or_nan_factors() {
  Valid m;
  m.maps[3] = -0.1;
  expect_all_reject(m, true, true);
  Valid s;
  s.spectra[7] = -1e-12;
  expect_all_reject(s, true, true);
  Valid nan;
  nan.maps[0] = kNaN;
  expect_all_reject(nan, true, true);
  Valid inf;
  inf.spectra[0] = kInf;
  expect_all_reject(inf, true, true);
  Valid null;
  FactorsView f{2, nullptr, null.spectra.data()};
  CHECK_THROWS(psnmf::fit_poisson_nmf(null.dense_view(), f), std::invalid_argument);
}

void test_empty_matrix() {
  Valid rows;
  rows.rows = 0;
  rows.indptr = {0};
  expect_all_reject(rows, true, true);
  Valid cols;
  cols.cols = 0;
  expect_all_reject(cols, true, false);
}

void test_bad_options() {
  Valid v;
  psnmf::NmfOptions o;
  o.max_iter = -1;
  CHECK_THROWS(psnmf::fit_poisson_nmf(v.dense_view(), v.factors(), o), std::invalid_argument);
  o.max_iter = 10;
  o.tol = kNaN;
  CHECK_THROWS(psnmf::fit_poisson_nmf(v.dense_view(), v.factors(), o), std::invalid_argument);
  o.tol = -1.0;
  CHECK_THROWS(psnmf::fit_poisson_nmf(v.csr_view(), v.factors(), o), std::invalid_argument);
  o.tol = 0.0;
  o.n_threads = -1;
  CHECK_THROWS(psnmf::fit_poisson_nmf(v.csr_view(), v.factors(), o), std::invalid_argument);
  o.n_threads = 100000;
  CHECK_THROWS(psnmf::fit_poisson_nmf(v.dense_view(), v.factors(), o), std::invalid_argument);
  std::vector<double> out(12);
  CHECK_THROWS((psnmf::bin_spatial<double, double>(v.dense.data(), 3, 4, 1, 1, 1, out.data(),
                                                   psnmf::Remainder::crop, 5000)),
               std::invalid_argument);
}

void test_binning_rejects_bad_counts() {
  // 2 x 2 pixels, 3 channels.
  std::vector<double> cube(12, 1.0);
  std::vector<double> out(3, -1.0);
  psnmf::bin_spatial<double, double>(cube.data(), 2, 2, 3, 2, 2, out.data());
  CHECK_EQ(out[0], 4.0);
  for (const double bad : {kNaN, kInf, -1.0}) {
    std::vector<double> c = cube;
    c[7] = bad;
    CHECK_THROWS((psnmf::bin_spatial<double, double>(c.data(), 2, 2, 3, 2, 2, out.data())),
                 std::invalid_argument);
  }
  std::vector<float> cf(12, 1.0f);
  std::vector<float> outf(3);
  cf[11] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS((psnmf::bin_spatial<float, float>(cf.data(), 2, 2, 3, 2, 2, outf.data())),
               std::invalid_argument);
  std::vector<std::int32_t> ci(12, 2);
  std::vector<std::int64_t> outi(3);
  ci[0] = -3;
  CHECK_THROWS(
      (psnmf::bin_spatial<std::int32_t, std::int64_t>(ci.data(), 2, 2, 3, 2, 2, outi.data())),
      std::invalid_argument);
  CHECK_THROWS((psnmf::bin_spatial<double, double>(nullptr, 2, 2, 3, 1, 1, out.data())),
               std::invalid_argument);
  CHECK_THROWS((psnmf::bin_spatial<double, double>(cube.data(), 2, 2, 3, 1, 1, nullptr)),
               std::invalid_argument);
}

void test_conversion_rejects_bad_buffers() {
  Valid v;
  std::vector<std::int64_t> indptr(4);
  CHECK_THROWS(psnmf::csr_row_offsets<double>(nullptr, 3, 4, indptr.data()), std::invalid_argument);
  CHECK_THROWS(psnmf::csr_row_offsets(v.dense.data(), 3, 4, nullptr), std::invalid_argument);
  CHECK_EQ(psnmf::csr_row_offsets(v.dense.data(), 3, 4, indptr.data()), std::int64_t(5));
  std::vector<std::int32_t> indices(5);
  std::vector<double> values(5);
  CHECK_THROWS((psnmf::fill_csr<double, double>(v.dense.data(), 3, 4, indptr.data(), nullptr,
                                                values.data())),
               std::invalid_argument);
  CHECK_THROWS((psnmf::fill_csr<double, double>(v.dense.data(), 0, 4, indptr.data(), indices.data(),
                                                values.data())),
               std::invalid_argument);
  psnmf::fill_csr<double, double>(v.dense.data(), 3, 4, indptr.data(), indices.data(),
                                  values.data());
  CHECK(indices == v.indices);
  CHECK(values == v.values);
}

void test_products_reject_bad_input() {
  Valid v;
  std::vector<double> dense(4 * 2, 1.0), out(3 * 2);
  CHECK_THROWS(psnmf::multiply(v.dense_view(), nullptr, 2, out.data()), std::invalid_argument);
  CHECK_THROWS(psnmf::multiply_transposed(v.csr_view(), dense.data(), 0, out.data()),
               std::invalid_argument);
  Valid nan;
  nan.values[0] = kNaN;
  CHECK_THROWS(psnmf::multiply(nan.csr_view(), dense.data(), 2, out.data()), std::invalid_argument);
}

struct Interrupted {};

void test_interrupt_aborts_the_fit() {
  // check_interrupt runs between the passes of each iteration; an exception it throws
  // leaves fit_poisson_nmf as is, after the requested number of checks.
  for (const bool sparse : {false, true}) {
    Valid v;
    psnmf::NmfOptions options;
    options.max_iter = 100;
    options.tol = 0.0;
    int calls = 0;
    options.check_interrupt = [&calls] {
      if (++calls == 5)
        throw Interrupted{};
    };
    bool thrown = false;
    try {
      if (sparse)
        psnmf::fit_poisson_nmf(v.csr_view(), v.factors(), options);
      else
        psnmf::fit_poisson_nmf(v.dense_view(), v.factors(), options);
    } catch (const Interrupted &) {
      thrown = true;
    }
    CHECK(thrown);
    CHECK_EQ(calls, 5); // two checks per iteration: stopped inside the third iteration
  }
}

} // namespace

int main() {
  RUN(test_valid_baseline);
  RUN(test_negative_counts);
  RUN(test_nan_and_inf_counts);
  RUN(test_column_index_out_of_range);
  RUN(test_bad_indptr);
  RUN(test_n_components_zero);
  RUN(test_negative_or_nan_factors);
  RUN(test_empty_matrix);
  RUN(test_bad_options);
  RUN(test_binning_rejects_bad_counts);
  RUN(test_conversion_rejects_bad_buffers);
  RUN(test_products_reject_bad_input);
  RUN(test_interrupt_aborts_the_fit);
  return psnmf_test::finish("invalid_input");
}
