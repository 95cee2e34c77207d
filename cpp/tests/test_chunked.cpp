// update_block / apply_spectra_update against a direct dense computation for ranks on
// every row-kernel path (padded, vectorised, fixed, any k); the options change only what
// is returned; blocks summed equal the whole matrix and one in-memory iteration; CSR ==
// dense; guards; bad input.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <Eigen/Dense>

#include "check.hpp"
#include "psnmf/chunked.hpp"
#include "psnmf/divergence.hpp"
#include "psnmf/poisson_nmf.hpp"

namespace {

using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using psnmf::kModelFloor;

constexpr std::int64_t kRows = 37, kCols = 11, kRank = 3;

struct Problem {
  Mat x, w, h;
};

Problem make_problem(unsigned seed, std::int64_t rank = kRank) {
  std::mt19937 gen(seed);
  std::poisson_distribution<int> counts(0.8);
  std::uniform_real_distribution<double> uniform(0.1, 2.0);
  Problem p{Mat(kRows, kCols), Mat(kRows, rank), Mat(rank, kCols)};
  for (Eigen::Index i = 0; i < p.x.size(); ++i)
    p.x.data()[i] = counts(gen);
  for (Eigen::Index i = 0; i < p.w.size(); ++i)
    p.w.data()[i] = uniform(gen);
  for (Eigen::Index i = 0; i < p.h.size(); ++i)
    p.h.data()[i] = uniform(gen);
  return p;
}

/// X ./ max(W H, floor) where X > 0, 0 elsewhere: the direct computation.
Mat ratio(const Mat &x, const Mat &w, const Mat &h) {
  const Mat lambda = w * h;
  Mat r = Mat::Zero(x.rows(), x.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      if (x(i, j) > 0)
        r(i, j) = x(i, j) / std::max(lambda(i, j), kModelFloor);
  return r;
}

double direct_loss(const Mat &x, const Mat &w, const Mat &h) {
  const Mat lambda = w * h;
  double d = 0.0;
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      if (x(i, j) > 0)
        d += x(i, j) * std::log(x(i, j) / std::max(lambda(i, j), kModelFloor));
  return d - x.sum() + lambda.sum();
}

double max_abs_diff(const Mat &a, const Mat &b) {
  return (a - b).cwiseAbs().maxCoeff();
}

Mat as_mat(const std::vector<double> &v, Eigen::Index rows, Eigen::Index cols) {
  return Eigen::Map<const Mat>(v.data(), rows, cols);
}

psnmf::DenseView<double> view_of(const Mat &x, Eigen::Index first_row, Eigen::Index n_rows) {
  return {n_rows, x.cols(), x.data() + first_row * x.cols()};
}

psnmf::BlockOptions block_options(bool accumulate_spectra, bool with_loss, int n_threads) {
  psnmf::BlockOptions o;
  o.accumulate_spectra = accumulate_spectra;
  o.with_loss = with_loss;
  o.n_threads = n_threads;
  return o;
}

/// k = 1..3, 5..7, 9..11, 13..15 run zero-padded on AVX, 4, 8, 12, 16 vectorised,
/// 17 on the rows for any k.
void test_against_direct_computation() {
  for (const std::int64_t rank : {1, 3, 4, 5, 8, 12, 13, 17}) {
    const Problem p = make_problem(1, rank);
    Mat w = p.w;
    const auto out = psnmf::update_block(view_of(p.x, 0, kRows), w.data(), p.h.data(), rank,
                                         block_options(true, true, 2));
    // maps <- maps * ((X / lambda) H^T) / rowsum(H)
    const Mat w_direct =
        (p.w.array() * (ratio(p.x, p.w, p.h) * p.h.transpose()).array()).rowwise() /
        p.h.rowwise().sum().transpose().array();
    CHECK(max_abs_diff(w, w_direct) < 1e-12);
    CHECK(out.loss.has_value());
    CHECK_NEAR(*out.loss, direct_loss(p.x, p.w, p.h), 1e-10);
    const Mat numerator_direct = w_direct.transpose() * ratio(p.x, w_direct, p.h);
    CHECK(max_abs_diff(as_mat(out.spectra_numerator, rank, kCols), numerator_direct) < 1e-11);
    const Eigen::RowVectorXd colsum = w_direct.colwise().sum();
    CHECK_EQ(static_cast<std::int64_t>(out.maps_colsum.size()), rank);
    for (std::int64_t q = 0; q < rank; ++q)
      CHECK_NEAR(out.maps_colsum[q], colsum(q), 1e-11);
  }
}

/// Without accumulate_spectra or with_loss the maps and what is returned are
/// bitwise those of the full call; only the skipped pieces are missing.
void test_options_only_skip_pieces() {
  for (const std::int64_t rank : {3, 4, 12}) {
    const Problem p = make_problem(2, rank);
    Mat w_full = p.w, w_maps = p.w, w_no_loss = p.w;
    const auto full = psnmf::update_block(view_of(p.x, 0, kRows), w_full.data(), p.h.data(), rank,
                                          block_options(true, true, 2));
    const auto maps_only = psnmf::update_block(view_of(p.x, 0, kRows), w_maps.data(), p.h.data(),
                                               rank, block_options(false, true, 2));
    const auto no_loss = psnmf::update_block(view_of(p.x, 0, kRows), w_no_loss.data(), p.h.data(),
                                             rank, block_options(true, false, 1));
    CHECK(w_maps == w_full);
    CHECK(w_no_loss == w_full);
    CHECK(maps_only.spectra_numerator.empty());
    CHECK(maps_only.maps_colsum == full.maps_colsum);
    CHECK(maps_only.loss.has_value() && *maps_only.loss == *full.loss);
    CHECK(!no_loss.loss.has_value());
    CHECK(no_loss.spectra_numerator == full.spectra_numerator);
    CHECK(no_loss.maps_colsum == full.maps_colsum);
  }
}

/// Blocks of rows summed, then apply_spectra_update == one in-memory iteration.
void test_blocks_sum_to_one_in_memory_iteration() {
  const Problem p = make_problem(3);
  Mat w_memory = p.w, h_memory = p.h;
  psnmf::NmfOptions options;
  options.max_iter = 1;
  options.tol = 0.0;
  const auto report = psnmf::fit_poisson_nmf(view_of(p.x, 0, kRows),
                                             {kRank, w_memory.data(), h_memory.data()}, options);

  Mat w = p.w, h = p.h;
  std::vector<double> numerator(kRank * kCols, 0.0), colsum(kRank, 0.0);
  double loss = 0.0;
  const std::int64_t edges[] = {0, 5, 6, 20, kRows};
  for (int b = 0; b < 4; ++b) {
    const std::int64_t first = edges[b], n = edges[b + 1] - edges[b];
    const auto out = psnmf::update_block(view_of(p.x, first, n), w.data() + first * kRank, h.data(),
                                         kRank, block_options(true, true, 2));
    loss += *out.loss;
    for (std::size_t i = 0; i < numerator.size(); ++i)
      numerator[i] += out.spectra_numerator[i];
    for (std::int64_t q = 0; q < kRank; ++q)
      colsum[q] += out.maps_colsum[q];
  }
  psnmf::apply_spectra_update(h.data(), numerator.data(), colsum.data(), kRank, kCols);
  CHECK(max_abs_diff(w, w_memory) < 1e-12);
  CHECK(max_abs_diff(h, h_memory) < 1e-12);
  CHECK_NEAR(loss, report.loss_history[0], 1e-10);
}

void test_csr_equals_dense_and_threads() {
  const Problem p = make_problem(4);
  std::vector<std::int64_t> indptr{0};
  std::vector<std::int32_t> indices;
  std::vector<float> values;
  for (Eigen::Index i = 0; i < p.x.rows(); ++i) {
    for (Eigen::Index j = 0; j < p.x.cols(); ++j)
      if (p.x(i, j) > 0) {
        indices.push_back(static_cast<std::int32_t>(j));
        values.push_back(static_cast<float>(p.x(i, j)));
      }
    indptr.push_back(static_cast<std::int64_t>(indices.size()));
  }
  const psnmf::CsrView<float> csr{kRows, kCols, indptr.data(), indices.data(), values.data()};
  Mat w_dense = p.w, w_csr = p.w, w_one = p.w;
  const auto dense = psnmf::update_block(view_of(p.x, 0, kRows), w_dense.data(), p.h.data(), kRank,
                                         block_options(true, true, 2));
  const auto sparse =
      psnmf::update_block(csr, w_csr.data(), p.h.data(), kRank, block_options(true, true, 2));
  const auto one =
      psnmf::update_block(csr, w_one.data(), p.h.data(), kRank, block_options(true, true, 1));
  psnmf::BlockOptions unchecked = block_options(true, true, 2);
  unchecked.check_counts = false;
  Mat w_unchecked = p.w;
  const auto trusted = psnmf::update_block(csr, w_unchecked.data(), p.h.data(), kRank, unchecked);
  CHECK(w_unchecked == w_csr);
  CHECK(trusted.spectra_numerator == sparse.spectra_numerator);
  CHECK(w_dense == w_csr);
  CHECK(w_one == w_csr);
  CHECK(dense.spectra_numerator == sparse.spectra_numerator);
  CHECK(one.spectra_numerator == sparse.spectra_numerator);
  CHECK_EQ(*dense.loss, *sparse.loss);
  CHECK_EQ(*one.loss, *sparse.loss);
}

void test_guards() {
  // An all-zero map keeps its spectrum; tiny entries become 0.
  std::vector<double> spectra{0.5, 0.25, 1e-300, 2.0};
  const std::vector<double> numerator{3.0, 1.0, 1.0, 4.0};
  const std::vector<double> colsum{2.0, 0.0};
  psnmf::apply_spectra_update(spectra.data(), numerator.data(), colsum.data(), 2, 2);
  CHECK_EQ(spectra[0], 0.75);
  CHECK_EQ(spectra[1], 0.125);
  CHECK_EQ(spectra[2], 0.0); // 1e-300 * 1 < DBL_EPSILON
  CHECK_EQ(spectra[3], 8.0);
  // A zero spectrum row divides the maps update by the model floor, not by 0.
  Problem p = make_problem(5);
  p.h.row(1).setZero();
  Mat w = p.w;
  psnmf::update_block(view_of(p.x, 0, kRows), w.data(), p.h.data(), kRank,
                      block_options(true, true, 1));
  CHECK(w.allFinite());
  CHECK((w.col(1).array() == 0.0).all());
}

void test_bad_input_throws() {
  const Problem p = make_problem(6);
  Mat w = p.w;
  CHECK_THROWS(psnmf::update_block(view_of(p.x, 0, kRows), w.data(), p.h.data(), 0),
               std::invalid_argument);
  CHECK_THROWS(psnmf::update_block(view_of(p.x, 0, kRows), w.data(), p.h.data(), kRank,
                                   block_options(true, true, -1)),
               std::invalid_argument);
  w(3, 1) = -1.0;
  CHECK_THROWS(psnmf::update_block(view_of(p.x, 0, kRows), w.data(), p.h.data(), kRank),
               std::invalid_argument);
  Mat x = p.x;
  x(0, 0) = std::nan("");
  Mat w_ok = p.w;
  CHECK_THROWS(psnmf::update_block(view_of(x, 0, kRows), w_ok.data(), p.h.data(), kRank),
               std::invalid_argument);
  // Unchecked counts still have their shape and buffers checked.
  psnmf::BlockOptions unchecked;
  unchecked.check_counts = false;
  CHECK_THROWS(psnmf::update_block(psnmf::DenseView<double>{0, kCols, p.x.data()}, w_ok.data(),
                                   p.h.data(), kRank, unchecked),
               std::invalid_argument);
  CHECK_THROWS(psnmf::update_block(psnmf::DenseView<double>{kRows, kCols, nullptr}, w_ok.data(),
                                   p.h.data(), kRank, unchecked),
               std::invalid_argument);
  const std::vector<double> bad{-1.0};
  std::vector<double> spectra{1.0};
  CHECK_THROWS(psnmf::apply_spectra_update(spectra.data(), bad.data(), bad.data(), 1, 1),
               std::invalid_argument);
}

} // namespace

int main() {
  RUN(test_against_direct_computation);
  RUN(test_options_only_skip_pieces);
  RUN(test_blocks_sum_to_one_in_memory_iteration);
  RUN(test_csr_equals_dense_and_threads);
  RUN(test_guards);
  RUN(test_bad_input_throws);
  return psnmf_test::finish("chunked");
}
