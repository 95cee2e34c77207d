// Multiplicative updates against a dense Eigen reference; loss bookkeeping; stopping rules;
// determinism across storage formats and thread counts; held factors; degenerate data.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <Eigen/Dense>

#include "check.hpp"
#include "psnmf/divergence.hpp"
#include "psnmf/poisson_nmf.hpp"

namespace {

using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using psnmf::kModelFloor;

// ---------------------------------------------------------------------------------------------
// Dense reference, written from the formulas documented in poisson_nmf.hpp.

/// X ./ (W H) where X > 0 (the model floored at kModelFloor), 0 elsewhere.
Mat ratio(const Mat &x, const Mat &w, const Mat &h) {
  const Mat lambda = w * h;
  Mat r = Mat::Zero(x.rows(), x.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      if (x(i, j) > 0)
        r(i, j) = x(i, j) / std::max(lambda(i, j), kModelFloor);
  return r;
}

double reference_loss(const Mat &x, const Mat &w, const Mat &h) {
  const Mat lambda = w * h;
  double d = 0.0;
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      if (x(i, j) > 0)
        d += x(i, j) * std::log(x(i, j) / std::max(lambda(i, j), kModelFloor));
  return d - x.sum() + lambda.sum();
}

/// W <- W .* ((X ./ WH) H^T) ./ (1 H^T), zero denominators -> kModelFloor.
void reference_maps_update(const Mat &x, Mat &w, const Mat &h) {
  Eigen::RowVectorXd den = h.rowwise().sum().transpose();
  for (Eigen::Index q = 0; q < den.size(); ++q)
    if (den(q) == 0.0)
      den(q) = kModelFloor;
  const Mat numerator = ratio(x, w, h) * h.transpose();
  w = (w.array() * numerator.array()).rowwise() / den.array();
}

/// H <- H .* (W^T (X ./ WH)) ./ (W^T 1), zero column sums of W -> 1, entries < DBL_EPSILON -> 0.
void reference_spectra_update(const Mat &x, const Mat &w, Mat &h) {
  Eigen::VectorXd den = w.colwise().sum().transpose();
  for (Eigen::Index q = 0; q < den.size(); ++q)
    if (den(q) == 0.0)
      den(q) = 1.0;
  const Mat numerator = w.transpose() * ratio(x, w, h);
  h = (h.array() * numerator.array()).colwise() / den.array();
  h = (h.array() < DBL_EPSILON).select(0.0, h);
}

struct Reference {
  Mat w, h;
  std::vector<double> losses; // loss of the initial state and after every iteration
};

Reference reference_fit(const Mat &x, Mat w, Mat h, int n_iter, bool maps = true,
                        bool spectra = true) {
  Reference r;
  r.losses.push_back(reference_loss(x, w, h));
  for (int it = 0; it < n_iter; ++it) {
    if (maps)
      reference_maps_update(x, w, h);
    if (spectra)
      reference_spectra_update(x, w, h);
    r.losses.push_back(reference_loss(x, w, h));
  }
  r.w = std::move(w);
  r.h = std::move(h);
  return r;
}

/// max |a - b| <= rtol * max |b| (elementwise relative to the scale of the matrix).
bool close(const Mat &a, const Mat &b, double rtol) {
  if (a.rows() != b.rows() || a.cols() != b.cols() || !a.allFinite())
    return false;
  const double scale = std::max(b.cwiseAbs().maxCoeff(), 1e-300);
  return (a - b).cwiseAbs().maxCoeff() <= rtol * scale;
}

#define CHECK_MAT_CLOSE(a, b, rtol)                                                                \
  do {                                                                                             \
    ++psnmf_test::counters().checks;                                                               \
    if (!close((a), (b), (rtol)))                                                                  \
      psnmf_test::fail(__FILE__, __LINE__,                                                         \
                       std::string(#a " ~ " #b ": max abs diff ") +                                \
                           psnmf_test::show(((a) - (b)).cwiseAbs().maxCoeff()) + ", scale " +      \
                           psnmf_test::show((b).cwiseAbs().maxCoeff()));                           \
  } while (0)

// ---------------------------------------------------------------------------------------------
// Problems.

/// Deterministic pseudo-random numbers (PCG-style LCG), identical on every platform.
struct Rng {
  std::uint64_t s;
  double uniform() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(s >> 11) * 0x1.0p-53;
  }
  /// Poisson by inversion: fine for the small means used here.
  double poisson(double mean) {
    const double u = uniform();
    double p = std::exp(-mean), cdf = p;
    int n = 0;
    while (u > cdf && n < 1000) {
      ++n;
      p *= mean / n;
      cdf += p;
    }
    return n;
  }
};

struct Problem {
  Mat x, w, h; // counts and initial factors
};

/// Counts drawn from a rank-`true_k` model, sparse (mean ~0.6 per entry), with initial
/// factors of rank k that differ from the truth.
Problem make_problem(Eigen::Index rows, Eigen::Index cols, Eigen::Index k, std::uint64_t seed,
                     Eigen::Index true_k = 3) {
  Rng rng{seed};
  Mat tw(rows, true_k), th(true_k, cols);
  for (Eigen::Index e = 0; e < tw.size(); ++e)
    tw.data()[e] = 3 * rng.uniform();
  for (Eigen::Index e = 0; e < th.size(); ++e)
    th.data()[e] = rng.uniform() < 0.3 ? 0.0 : rng.uniform();
  th /= th.sum() / double(true_k * cols) * 5; // mean entry of tw * th ~ 0.6
  const Mat lambda = tw * th;
  Problem p;
  p.x.resize(rows, cols);
  for (Eigen::Index i = 0; i < rows; ++i)
    for (Eigen::Index j = 0; j < cols; ++j)
      p.x(i, j) = rng.poisson(lambda(i, j));
  p.w.resize(rows, k);
  p.h.resize(k, cols);
  for (Eigen::Index e = 0; e < p.w.size(); ++e)
    p.w.data()[e] = 0.2 + rng.uniform();
  for (Eigen::Index e = 0; e < p.h.size(); ++e)
    p.h.data()[e] = 0.05 + rng.uniform();
  return p;
}

struct Csr {
  std::vector<std::int64_t> indptr;
  std::vector<std::int32_t> indices;
  std::vector<double> values;
  psnmf::CsrView<double> view(Eigen::Index rows, Eigen::Index cols) const {
    return {rows, cols, indptr.data(), indices.data(), values.data()};
  }
};

Csr to_csr(const Mat &x) {
  Csr m;
  m.indptr.push_back(0);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      if (x(i, j) != 0.0) {
        m.indices.push_back(static_cast<std::int32_t>(j));
        m.values.push_back(x(i, j));
      }
    m.indptr.push_back(static_cast<std::int64_t>(m.values.size()));
  }
  return m;
}

psnmf::DenseView<double> dense_view(const Mat &x) {
  return {x.rows(), x.cols(), x.data()};
}

struct Fit {
  Mat w, h;
  psnmf::NmfResult result;
};

/// Runs the core on copies of the initial factors (dense input unless `csr`).
Fit run(const Problem &p, psnmf::NmfOptions options, bool csr = false) {
  Fit f{p.w, p.h, {}};
  const psnmf::FactorsView factors{f.w.cols(), f.w.data(), f.h.data()};
  if (csr) {
    const Csr m = to_csr(p.x);
    f.result = psnmf::fit_poisson_nmf(m.view(p.x.rows(), p.x.cols()), factors, options);
  } else {
    f.result = psnmf::fit_poisson_nmf(dense_view(p.x), factors, options);
  }
  return f;
}

psnmf::NmfOptions fixed_iterations(int n, int threads = 1) {
  psnmf::NmfOptions o;
  o.max_iter = n;
  o.tol = 0.0;
  o.n_threads = threads;
  return o;
}

/// Options of a one-thread `solver` fit of n iterations, the loss after every one.
psnmf::NmfOptions logged_iterations(psnmf::Solver solver, int n) {
  psnmf::NmfOptions o = fixed_iterations(n, 1);
  o.solver = solver;
  o.loss_every = 1;
  return o;
}

bool bitwise_equal(const Mat &a, const Mat &b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(double) * std::size_t(a.size())) == 0;
}

void check_losses(const Fit &f, const Reference &ref, double rtol) {
  CHECK_EQ(f.result.loss_history.size(), ref.losses.size());
  for (std::size_t t = 0; t < ref.losses.size() && t < f.result.loss_history.size(); ++t)
    CHECK_NEAR(f.result.loss_history[t], ref.losses[t], rtol * std::abs(ref.losses[t]));
}

// ---------------------------------------------------------------------------------------------
// Tests.

void test_one_iteration_hand_sized() {
  // 4 x 3 counts with zeros, k = 2: small enough to follow by hand.
  Problem p;
  p.x = (Mat(4, 3) << 2, 0, 1, 0, 3, 0, 1, 1, 4, 0, 0, 2).finished();
  p.w = (Mat(4, 2) << 1.0, 0.5, 0.2, 1.5, 0.7, 0.7, 0.3, 0.9).finished();
  p.h = (Mat(2, 3) << 0.6, 0.3, 0.1, 0.1, 0.5, 0.4).finished();
  for (bool csr : {false, true}) {
    const Fit f = run(p, fixed_iterations(1), csr);
    const Reference ref = reference_fit(p.x, p.w, p.h, 1);
    CHECK_EQ(f.result.n_iter, 1);
    CHECK_MAT_CLOSE(f.w, ref.w, 1e-12);
    CHECK_MAT_CLOSE(f.h, ref.h, 1e-12);
    check_losses(f, ref, 1e-12);
  }
  // The maps half-update alone (spectra held) and the spectra half-update alone (maps held).
  psnmf::NmfOptions maps_only = fixed_iterations(1);
  maps_only.update_spectra = false;
  const Fit fm = run(p, maps_only);
  Mat w = p.w;
  reference_maps_update(p.x, w, p.h);
  CHECK_MAT_CLOSE(fm.w, w, 1e-12);
  psnmf::NmfOptions spectra_only = fixed_iterations(1);
  spectra_only.update_maps = false;
  const Fit fs = run(p, spectra_only);
  Mat h = p.h;
  reference_spectra_update(p.x, p.w, h);
  CHECK_MAT_CLOSE(fs.h, h, 1e-12);
}

void test_against_reference(Eigen::Index k) {
  const Problem p = make_problem(40, 11, k, 1000 + std::uint64_t(k));
  for (int n_iter : {1, 30}) {
    const Reference ref = reference_fit(p.x, p.w, p.h, n_iter);
    for (bool csr : {false, true}) {
      const Fit f = run(p, fixed_iterations(n_iter, 2), csr);
      CHECK_EQ(f.result.n_iter, n_iter);
      CHECK(!f.result.converged && !f.result.stopped_by_callback);
      CHECK_MAT_CLOSE(f.w, ref.w, 1e-12);
      CHECK_MAT_CLOSE(f.h, ref.h, 1e-12);
      check_losses(f, ref, 1e-12);
    }
  }
}

void test_reference_k1() {
  test_against_reference(1);
}
void test_reference_k3() {
  test_against_reference(3);
}
void test_reference_k8() {
  test_against_reference(8);
}
void test_reference_k9_dynamic() {
  test_against_reference(9);
}

void test_loss_history() {
  const Problem p = make_problem(60, 17, 3, 7);
  const Fit f = run(p, fixed_iterations(50, 2));
  const auto &h = f.result.loss_history;
  CHECK_EQ(f.result.n_iter, 50);
  CHECK_EQ(h.size(), std::size_t(f.result.n_iter) + 1);
  for (std::size_t t = 1; t < h.size(); ++t) {
    CHECK(std::isfinite(h[t]));
    CHECK(h[t] <= h[t - 1] + 1e-12 * std::abs(h[t - 1])); // non-increasing (MU is monotone)
  }
  CHECK(h.back() < h.front());
  // The last value is the divergence of the returned factors, exactly, for any thread count.
  for (int threads : {1, 2, 3}) {
    const double d = psnmf::kl_divergence(
        dense_view(p.x), psnmf::ConstFactorsView{3, f.w.data(), f.h.data()}, threads);
    CHECK_EQ(h.back(), d);
  }
  const Csr m = to_csr(p.x);
  CHECK_EQ(h.back(), psnmf::kl_divergence(m.view(p.x.rows(), p.x.cols()),
                                          psnmf::ConstFactorsView{3, f.w.data(), f.h.data()}));
  // The first value is the divergence of the initial factors.
  CHECK_EQ(h.front(), psnmf::kl_divergence(dense_view(p.x),
                                           psnmf::ConstFactorsView{3, p.w.data(), p.h.data()}));
  // max_iter = 0: no update, one loss value.
  const Fit none = run(p, fixed_iterations(0));
  CHECK_EQ(none.result.n_iter, 0);
  CHECK_EQ(none.result.loss_history.size(), std::size_t(1));
  CHECK(bitwise_equal(none.w, p.w) && bitwise_equal(none.h, p.h));
}

void test_csr_dense_threads_bitwise() {
  // More rows than the fixed partition has chunks (32), so the chunks hold several rows.
  for (Eigen::Index k : {2, 9}) {
    const Problem p = make_problem(203, 29, k, 99 + std::uint64_t(k));
    const Fit base = run(p, fixed_iterations(25, 1));
    for (int threads : {1, 2, 3}) {
      for (bool csr : {false, true}) {
        const Fit f = run(p, fixed_iterations(25, threads), csr);
        CHECK(bitwise_equal(f.w, base.w));
        CHECK(bitwise_equal(f.h, base.h));
        CHECK(f.result.loss_history == base.result.loss_history);
      }
    }
  }
}

void test_held_factors() {
  const Problem p = make_problem(50, 13, 3, 5);
  psnmf::NmfOptions o = fixed_iterations(20, 2);
  o.update_spectra = false;
  const Fit maps_only = run(p, o);
  CHECK(bitwise_equal(maps_only.h, p.h));
  CHECK(!bitwise_equal(maps_only.w, p.w));
  const Reference ref_maps = reference_fit(p.x, p.w, p.h, 20, true, false);
  CHECK_MAT_CLOSE(maps_only.w, ref_maps.w, 1e-12);
  check_losses(maps_only, ref_maps, 1e-12);

  o.update_spectra = true;
  o.update_maps = false;
  const Fit spectra_only = run(p, o, true);
  CHECK(bitwise_equal(spectra_only.w, p.w));
  CHECK(!bitwise_equal(spectra_only.h, p.h));
  const Reference ref_spectra = reference_fit(p.x, p.w, p.h, 20, false, true);
  CHECK_MAT_CLOSE(spectra_only.h, ref_spectra.h, 1e-12);
  check_losses(spectra_only, ref_spectra, 1e-12);

  // Both held: nothing moves.
  o.update_maps = false;
  o.update_spectra = false;
  const Fit neither = run(p, o);
  CHECK(bitwise_equal(neither.w, p.w) && bitwise_equal(neither.h, p.h));
  CHECK(!neither.result.loss_history.empty());
}

void test_callback_stops() {
  const Problem p = make_problem(30, 9, 2, 11);
  psnmf::NmfOptions o = fixed_iterations(100, 2);
  std::vector<psnmf::IterationReport> reports;
  o.callback = [&](const psnmf::IterationReport &r) {
    reports.push_back(r);
    return r.iteration < 4;
  };
  const Fit f = run(p, o);
  CHECK(f.result.stopped_by_callback);
  CHECK(!f.result.converged);
  CHECK_EQ(f.result.n_iter, 4);
  CHECK_EQ(reports.size(), std::size_t(4));
  CHECK_EQ(f.result.loss_history.size(), std::size_t(5));
  for (std::size_t t = 0; t < reports.size(); ++t) {
    CHECK_EQ(reports[t].iteration, int(t) + 1);
    CHECK_EQ(reports[t].loss, f.result.loss_history[t]); // the state before iteration t + 1
  }
  // Stopping after iteration 4 leaves the same factors as max_iter = 4.
  const Fit four = run(p, fixed_iterations(4, 2));
  CHECK(bitwise_equal(f.w, four.w) && bitwise_equal(f.h, four.h));
}

void test_tol_converges() {
  const Problem p = make_problem(80, 15, 2, 21, 2);
  psnmf::NmfOptions o = fixed_iterations(5000, 2);
  o.tol = 1e-6;
  const Fit f = run(p, o);
  const auto &h = f.result.loss_history;
  const int n = f.result.n_iter;
  CHECK(f.result.converged);
  CHECK(!f.result.stopped_by_callback);
  CHECK(n >= 2 && n < 5000);
  CHECK_EQ(h.size(), std::size_t(n) + 1);
  if (n >= 2 && h.size() == std::size_t(n) + 1) {
    // The documented rule (L_prev - L) / L_prev < tol held at the last iteration only.
    CHECK(h[n - 2] - h[n - 1] <= o.tol * std::abs(h[n - 2]));
    for (int t = 1; t < n - 1; ++t)
      CHECK(h[t - 1] - h[t] > o.tol * std::abs(h[t - 1]));
  }
  // Same factors as running exactly n iterations without tol.
  const Fit fixed = run(p, fixed_iterations(n, 2));
  CHECK(bitwise_equal(f.w, fixed.w) && bitwise_equal(f.h, fixed.h));
  // tol = 0 runs max_iter iterations.
  const Fit all = run(p, fixed_iterations(120, 2));
  CHECK_EQ(all.result.n_iter, 120);
  CHECK(!all.result.converged);
}

void test_zero_row_and_column() {
  for (Eigen::Index k : {2, 9}) {
    Problem p = make_problem(37, 12, k, 31 + std::uint64_t(k));
    p.x.row(5).setZero();
    p.x.col(7).setZero();
    const Fit f = run(p, fixed_iterations(30, 2), k == 9);
    CHECK(f.w.allFinite());
    CHECK(f.h.allFinite());
    CHECK(f.w.row(5).isZero(0.0)); // a pixel without counts has zero abundances
    CHECK(f.h.col(7).isZero(0.0)); // a channel without counts has zero intensity
    for (double v : f.result.loss_history)
      CHECK(std::isfinite(v));
    const Reference ref = reference_fit(p.x, p.w, p.h, 30);
    CHECK_MAT_CLOSE(f.w, ref.w, 1e-12);
    CHECK_MAT_CLOSE(f.h, ref.h, 1e-12);
  }
}

void test_guards() {
  Problem p = make_problem(20, 8, 3, 41);
  // A component with an all-zero spectrum: the maps denominator is 0 -> kModelFloor, its map
  // becomes 0, and then its column sum of maps is 0 -> 1 in the spectra update. No NaN.
  p.h.row(1).setZero();
  // A spectrum entry that becomes < DBL_EPSILON after one update is set to exactly 0.
  p.h(2, 3) = 1e-30;
  // A model in (0, kModelFloor) at a nonzero count is floored, which changes the ratio.
  p.w.row(2) *= 1e-4;
  p.h.col(4) *= 1e-4;
  p.x(2, 4) = 3;
  // A model of exactly 0 at a nonzero count (a zero channel of every spectrum).
  p.h.col(6).setZero();
  p.x(0, 6) = 2;
  const Fit f = run(p, fixed_iterations(3, 2));
  CHECK(f.w.allFinite() && f.h.allFinite());
  CHECK(f.w.col(1).isZero(0.0));
  CHECK(f.h.row(1).isZero(0.0));
  CHECK_EQ(f.h(2, 3), 0.0);
  const Reference ref = reference_fit(p.x, p.w, p.h, 3);
  CHECK_MAT_CLOSE(f.w, ref.w, 1e-12);
  CHECK_MAT_CLOSE(f.h, ref.h, 1e-12);
  check_losses(f, ref, 1e-12);
  // An all-zero map column with the maps held: the spectra denominator 0 -> 1.
  Problem q = make_problem(20, 8, 3, 43);
  q.w.col(0).setZero();
  psnmf::NmfOptions o = fixed_iterations(2, 2);
  o.update_maps = false;
  const Fit g = run(q, o);
  CHECK(g.h.allFinite());
  CHECK(g.h.row(0).isZero(0.0));
  const Reference ref_q = reference_fit(q.x, q.w, q.h, 2, false, true);
  CHECK_MAT_CLOSE(g.h, ref_q.h, 1e-12);
}

void test_float_counts() {
  // float32 counts hold small integers exactly: same arithmetic as double counts.
  const Problem p = make_problem(45, 10, 3, 51);
  const Fit fd = run(p, fixed_iterations(10, 2));
  const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> xf =
      p.x.cast<float>();
  Mat w = p.w, h = p.h;
  const auto r =
      psnmf::fit_poisson_nmf(psnmf::DenseView<float>{xf.rows(), xf.cols(), xf.data()},
                             psnmf::FactorsView{3, w.data(), h.data()}, fixed_iterations(10, 2));
  CHECK(bitwise_equal(w, fd.w) && bitwise_equal(h, fd.h));
  CHECK(r.loss_history == fd.result.loss_history);
}

/// The fit of `base` (1 thread, dense) again with 2 and 3 threads, dense and
/// CSR: bitwise the same factors and losses.
void check_threads_and_formats_bitwise(const Problem &p, psnmf::NmfOptions o, const Fit &base) {
  for (int threads : {2, 3})
    for (bool csr : {false, true}) {
      o.n_threads = threads;
      const Fit f = run(p, o, csr);
      CHECK(bitwise_equal(f.w, base.w) && bitwise_equal(f.h, base.h));
      CHECK(f.result.loss_history == base.result.loss_history);
    }
}

/// A monotone, thread-count-independent descent that converges where MU does.
void test_coordinate_descent() {
  for (Eigen::Index k : {2, 9}) {
    const Problem p = make_problem(203, 29, k, 7 + std::uint64_t(k));
    psnmf::NmfOptions o = logged_iterations(psnmf::Solver::cd, 60);
    const Fit base = run(p, o);
    const auto &h = base.result.loss_history;
    CHECK_EQ(h.size(), std::size_t(61));
    for (std::size_t t = 1; t < h.size(); ++t)
      CHECK(h[t] <= h[t - 1] + 1e-12 * std::abs(h[t - 1])); // every step lowers the loss
    CHECK_EQ(h.back(), psnmf::kl_divergence(dense_view(p.x), psnmf::ConstFactorsView{
                                                                 k, base.w.data(), base.h.data()}));
    CHECK(base.w.minCoeff() >= 0.0 && base.h.minCoeff() >= 0.0);
    check_threads_and_formats_bitwise(p, o, base);
    // Both converge to stationary points of the same objective, not always the
    // same one: cd sets entries to exactly 0, MU only lets them decay (here they
    // differ by 2e-4 relative for k = 2; with k = 9 on 29 channels, more).
    if (k == 2) {
      const Fit mu = run(p, fixed_iterations(3000, 1));
      const double mu_loss = mu.result.loss_history.back();
      o.max_iter = 300;
      const Fit cd = run(p, o);
      CHECK_NEAR(cd.result.loss_history.back(), mu_loss, 1e-3 * mu_loss);
    }
  }
}

/// Newton: reported losses never increase, results independent of threads and
/// format, below MU's loss after the same iterations; zero rows and columns, the
/// AVX-512 rows of 2 to 8 components (even and odd k) and the padded rows (k =
/// 9) run through it too.
void test_newton() {
  for (Eigen::Index k : {2, 3, 4, 5, 7, 9}) {
    Problem p = make_problem(203, 29, k, 11 + std::uint64_t(k));
    p.x.row(5).setZero();
    p.x.col(3).setZero();
    psnmf::NmfOptions o = logged_iterations(psnmf::Solver::newton, 40);
    const Fit base = run(p, o);
    const auto &h = base.result.loss_history;
    CHECK_EQ(h.size(), std::size_t(41));
    for (std::size_t t = 1; t < h.size(); ++t)
      CHECK(h[t] <= h[t - 1]);
    CHECK_NEAR(h.back(),
               psnmf::kl_divergence(dense_view(p.x),
                                    psnmf::ConstFactorsView{k, base.w.data(), base.h.data()}),
               1e-12 * h.back());
    CHECK(base.w.minCoeff() >= 0.0 && base.h.minCoeff() >= 0.0);
    CHECK(base.w.row(5).maxCoeff() == 0.0);
    const Fit mu = run(p, fixed_iterations(40, 1));
    // k = 9 components for 3 true ones on 29 channels: a degenerate fit where
    // Newton gains nothing over MU (40 iterations: 1637.9 against 1635.6).
    if (k < 9)
      CHECK(h.back() < mu.result.loss_history.back());
    check_threads_and_formats_bitwise(p, o, base);
  }
}

/// Newton's whole spectra steps leave every pixel a model where it has counts
/// (up to 8 components): after each of the first iterations, lambda > 0 at
/// every nonzero count.
void test_newton_keeps_models() {
  for (Eigen::Index k : {2, 4, 6}) {
    const Problem p = make_problem(300, 40, k, 31 + std::uint64_t(k));
    for (int n_iter = 2; n_iter <= 8; ++n_iter) {
      psnmf::NmfOptions o = fixed_iterations(n_iter, 1);
      o.solver = psnmf::Solver::newton;
      const Fit fit = run(p, o);
      const Mat lambda = fit.w * fit.h;
      Eigen::Index empty = 0;
      for (Eigen::Index i = 0; i < p.x.rows(); ++i)
        for (Eigen::Index j = 0; j < p.x.cols(); ++j)
          empty += p.x(i, j) > 0 && !(lambda(i, j) > 0);
      CHECK_EQ(empty, Eigen::Index(0));
    }
  }
}

void test_loss_every() {
  const Problem p = make_problem(40, 11, 3, 17);
  const Fit every = run(p, fixed_iterations(23, 2));
  psnmf::NmfOptions o = fixed_iterations(23, 2);
  o.loss_every = 10;
  const Fit sparse = run(p, o);
  CHECK(bitwise_equal(sparse.w, every.w) && bitwise_equal(sparse.h, every.h));
  CHECK(sparse.result.loss_iterations == std::vector<int>({0, 10, 20, 23}));
  for (std::size_t t = 0; t < sparse.result.loss_iterations.size(); ++t)
    CHECK_EQ(sparse.result.loss_history[t],
             every.result.loss_history[std::size_t(sparse.result.loss_iterations[t])]);
  o.loss_every = 0;
  bool threw = false;
  try {
    run(p, o);
  } catch (const std::invalid_argument &) {
    threw = true;
  }
  CHECK(threw);
}

} // namespace

int main() {
  RUN(test_coordinate_descent);
  RUN(test_newton);
  RUN(test_newton_keeps_models);
  RUN(test_loss_every);
  RUN(test_one_iteration_hand_sized);
  RUN(test_reference_k1);
  RUN(test_reference_k3);
  RUN(test_reference_k8);
  RUN(test_reference_k9_dynamic);
  RUN(test_loss_history);
  RUN(test_csr_dense_threads_bitwise);
  RUN(test_held_factors);
  RUN(test_callback_stops);
  RUN(test_tol_converges);
  RUN(test_zero_row_and_column);
  RUN(test_guards);
  RUN(test_float_counts);
  return psnmf_test::finish("updates");
}
