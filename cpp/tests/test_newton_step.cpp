// The projected Newton step (cpp/src/newton_step.hpp) against Eigen's Cholesky
// solve on the free set, for k known at compile time and at run time; the rule
// for which maps supports the columns' sets need.
#include <Eigen/Dense>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "check.hpp"
#include "newton_step.hpp"

namespace {

using psnmf::detail::packed_size;
using psnmf::detail::projected_newton_step;

struct Case {
  int k;
  Eigen::VectorXd v, g;
  Eigen::MatrixXd hessian;
};

/// The step as the header documents it, written with Eigen on the compacted
/// solved set: e = max(d, -v) there, -v for the coordinates sent to their
/// bound, 0 outside the free set; returns g . e. `rounds` counts the solves.
double reference_step(const Case &c, Eigen::VectorXd &e, int *rounds = nullptr) {
  e = Eigen::VectorXd::Zero(c.k);
  std::vector<int> solved, at_bound;
  for (int q = 0; q < c.k; ++q)
    if (c.v[q] > 0.0 || c.g[q] < 0.0)
      solved.push_back(q);
  if (rounds)
    *rounds = 0;
  if (solved.empty())
    return 0.0;
  for (;;) {
    if (rounds)
      ++*rounds;
    const int m = static_cast<int>(solved.size());
    Eigen::MatrixXd a(m, m);
    Eigen::VectorXd rhs(m);
    for (int i = 0; i < m; ++i) {
      rhs[i] = -c.g[solved[i]];
      for (int b : at_bound) // the bound coordinates move by -v_b
        rhs[i] += c.hessian(solved[i], b) * c.v[b];
      for (int j = 0; j < m; ++j)
        a(i, j) = c.hessian(solved[i], solved[j]);
    }
    const double trace = a.trace();
    if (!(trace > 0.0)) {
      // No curvature left: every free coordinate with positive gradient to 0.
      for (int q : solved)
        e[q] = c.g[q] > 0.0 ? -c.v[q] : 0.0;
      for (int q : at_bound)
        e[q] = -c.v[q];
      return c.g.dot(e);
    }
    a.diagonal().array() += 1e-10 * trace / m;
    const Eigen::LLT<Eigen::MatrixXd> llt(a);
    if (llt.info() != Eigen::Success) {
      e.setZero();
      return 0.0;
    }
    const Eigen::VectorXd d = llt.solve(rhs);
    // Sent to the bound: those crossing zero against their gradient, or if none,
    // those at zero solved below it (held there: -v = 0).
    std::vector<int> kept;
    for (int i = 0; i < m; ++i) {
      const int q = solved[i];
      if (d[i] < -c.v[q] && c.g[q] > 0.0)
        at_bound.push_back(q);
      else
        kept.push_back(q);
    }
    if (kept.size() == solved.size()) {
      kept.clear();
      for (int i = 0; i < m; ++i) {
        const int q = solved[i];
        if (c.v[q] == 0.0 && d[i] < 0.0)
          at_bound.push_back(q);
        else
          kept.push_back(q);
      }
    }
    if (kept.size() == solved.size()) {
      for (int i = 0; i < m; ++i)
        e[solved[i]] = std::max(d[i], -c.v[solved[i]]);
      for (int q : at_bound)
        e[q] = -c.v[q];
      return c.g.dot(e);
    }
    solved = kept;
  }
}

/// Runs the header's step with k fixed at compile time (K) or at run time (K = 0).
template <int K> double header_step(const Case &c, Eigen::VectorXd &e) {
  std::vector<double> packed;
  for (int a = 0; a < c.k; ++a)
    for (int b = a; b < c.k; ++b)
      packed.push_back(c.hessian(a, b));
  std::vector<double> work(static_cast<std::size_t>(c.k * c.k + 2 * c.k), -1.0);
  e = Eigen::VectorXd::Constant(c.k, 99.0); // every value must be written
  return projected_newton_step<K>(c.v.data(), c.g.data(), packed.data(), c.k, work.data(),
                                  e.data());
}

/// Checks the header's step against the reference; returns the reference's solves.
template <int K> int check_case(const Case &c, double rtol) {
  Eigen::VectorXd want, got;
  int rounds = 0;
  const double want_slope = reference_step(c, want, &rounds);
  const double got_slope = header_step<K>(c, got);
  const double scale = want.cwiseAbs().maxCoeff() + 1e-300;
  for (int q = 0; q < c.k; ++q) {
    CHECK_NEAR(got[q], want[q], rtol * scale);
    if (!(c.v[q] > 0.0 || c.g[q] < 0.0))
      CHECK_EQ(got[q], 0.0);  // outside the free set: exactly no move
    CHECK(got[q] >= -c.v[q]); // projected: v + e >= 0
  }
  CHECK_NEAR(got_slope, want_slope, rtol * (std::fabs(want_slope) + 1e-300));
  return rounds;
}

/// A random case: Hessian sum_p c_p u_p u_p^T over `n_terms` nonnegative u_p
/// (fewer than k: singular), v with zeros where `zero_bits` says and a quarter
/// of the others small (their steps often cross zero), g of both signs.
Case random_case(int k, int n_terms, unsigned zero_bits, std::mt19937_64 &rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  Case c{k, Eigen::VectorXd(k), Eigen::VectorXd(k), Eigen::MatrixXd::Zero(k, k)};
  for (int p = 0; p < n_terms; ++p) {
    Eigen::VectorXd u(k);
    for (int q = 0; q < k; ++q)
      u[q] = unit(rng);
    c.hessian += (0.5 + unit(rng)) * u * u.transpose();
  }
  for (int q = 0; q < k; ++q) {
    const double scale = unit(rng) < 0.25 ? 1e-3 : 1.0;
    c.v[q] = (zero_bits >> (q % 32) & 1) ? 0.0 : scale * (0.1 + unit(rng));
    c.g[q] = unit(rng) - 0.5;
  }
  return c;
}

template <int K> void check_random_cases(int k) {
  std::mt19937_64 rng(7 + k);
  int resolved = 0;
  for (int trial = 0; trial < 300; ++trial) {
    // Every free-set pattern for small k; random ones above.
    const unsigned zeros = k <= 8 ? unsigned(trial) % (1u << k) : unsigned(rng());
    const Case c = random_case(k, 3 * k, zeros, rng);
    resolved += check_case<K>(c, 1e-9) > 1;
  }
  if (k > 1)
    CHECK(resolved > 0); // the cases reach the solves after a move to the bound
}

template <int K> void test_random_fixed() {
  check_random_cases<K>(K);
}

void test_random_dynamic() {
  for (int k : {1, 3, 4, 8, 12})
    check_random_cases<0>(k);
}

void test_no_free_component() {
  Case c{4, Eigen::VectorXd::Zero(4), Eigen::VectorXd::Constant(4, 1.0),
         Eigen::MatrixXd::Identity(4, 4)};
  Eigen::VectorXd e;
  CHECK_EQ(header_step<4>(c, e), 0.0);
  CHECK(e.isZero(0.0));
}

void test_linear_without_counts() {
  // No curvature: a free coordinate with positive gradient goes to zero; one
  // with a negative gradient cannot move (it would need counts).
  Case c{4, Eigen::Vector4d(1.0, 2.0, 0.0, 3.0), Eigen::Vector4d(0.5, -0.5, -1.0, 0.0),
         Eigen::MatrixXd::Zero(4, 4)};
  Eigen::VectorXd e;
  CHECK_EQ(header_step<4>(c, e), -0.5);
  CHECK_EQ(e[0], -1.0);
  CHECK_EQ(e[1], 0.0);
  CHECK_EQ(e[2], 0.0);
  CHECK_EQ(e[3], 0.0);
  check_case<0>(c, 0.0);
}

void test_tiny_value_does_not_block_a_zero() {
  // Component 2 is tiny with a large positive gradient, component 1 zero with a
  // negative one. Clipped alone, the step solved as if component 2 went far
  // below zero pushes 0 and 3 up and 1 down, so 1 stays at zero; with 2 sent to
  // its bound and the rest solved again, 1 rises.
  Eigen::MatrixXd u(5, 4);
  u << 3, 2, 2, 3, 2, 3, 1, 3, 3, 0, 2, 1, 0, 0, 1, 0, 2, 0, 2, 3;
  Case c{4, Eigen::Vector4d(1.0, 0.0, 1e-30, 1.0), Eigen::Vector4d(0.0, -1.0, 10.0, 0.0),
         u.transpose() * u};
  Eigen::VectorXd e;
  const double slope = header_step<4>(c, e);
  CHECK(e[1] > 0.1);
  CHECK_EQ(e[2], -1e-30);
  // The reduced system on 0, 1 and 3 with component 2 at zero, solved apart.
  const std::vector<int> rest{0, 1, 3};
  Eigen::Matrix3d a;
  Eigen::Vector3d rhs;
  for (int i = 0; i < 3; ++i) {
    rhs[i] = -c.g[rest[i]] + c.hessian(rest[i], 2) * c.v[2];
    for (int j = 0; j < 3; ++j)
      a(i, j) = c.hessian(rest[i], rest[j]);
  }
  a.diagonal().array() += 1e-10 * a.trace() / 3;
  const Eigen::Vector3d d = a.ldlt().solve(rhs);
  for (int i = 0; i < 3; ++i)
    CHECK_NEAR(e[rest[i]], d[i], 1e-12);
  CHECK(slope < 0.0);
  check_case<4>(c, 1e-9);
  check_case<0>(c, 1e-9);
}

void test_zero_solved_below_zero_is_held() {
  // Component 1 is zero with a small negative gradient; coupled to component 0,
  // whose gradient is large and negative, the full solve takes it to -4.2.
  // Clipped alone, component 0's step would be 4.8 (as if 1 went down);
  // held at zero, 0 takes the step of its own block, 1.
  Eigen::Matrix3d h;
  h << 1.0, 0.9, 0.0, 0.9, 1.0, 0.0, 0.0, 0.0, 1.0;
  Case c{3, Eigen::Vector3d(1.0, 0.0, 1.0), Eigen::Vector3d(-1.0, -0.1, 0.5), h};
  Eigen::VectorXd e;
  const double slope = header_step<3>(c, e);
  CHECK_EQ(e[1], 0.0);
  CHECK_NEAR(e[0], 1.0, 1e-9);
  CHECK_NEAR(e[2], -0.5, 1e-9);
  CHECK_NEAR(slope, -1.25, 1e-9);
  check_case<3>(c, 1e-9);
  check_case<0>(c, 1e-9);
}

void test_not_positive_definite() {
  Case c{3, Eigen::Vector3d(1.0, 1.0, 1.0), Eigen::Vector3d(0.1, -0.2, 0.3),
         Eigen::Matrix3d::Identity()};
  c.hessian(1, 1) = -1.0; // positive trace, indefinite
  Eigen::VectorXd e;
  CHECK_EQ(header_step<3>(c, e), 0.0);
  CHECK(e.isZero(0.0));
}

void test_singular_with_ridge() {
  // One count for four components: rank 1, the ridge keeps the step finite
  // and it still descends. The ridged matrix's condition number is about
  // 1e10, so two correct solvers agree to about 1e10 eps.
  std::mt19937_64 rng(3);
  const Case c = random_case(4, 1, 0u, rng);
  Eigen::VectorXd e;
  const double slope = header_step<4>(c, e);
  CHECK(e.allFinite());
  CHECK(slope <= 0.0);
  check_case<4>(c, 1e-4);
}

void test_trapezoid_guarantee_is_a_bound() {
  // Random rows phi(t) = t c - sum_p x_p log(lambda_p + t a_p) with lambda_p =
  // w . h_p, a_p = e . h_p (h_p >= 0, w + e >= 0): wherever the trapezoid test
  // passes and trapezoid_guarantees holds (with the exact largest rise, and
  // with rise_bound), phi(t) <= phi(0). The test alone must fail somewhere, or
  // the guarantee would check nothing.
  using psnmf::detail::rise_bound;
  using psnmf::detail::trapezoid_guarantees;
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::poisson_distribution<int> count(1.5);
  const int k = 4;
  int guaranteed = 0, estimate_wrong = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    const int n = 1 + static_cast<int>(rng() % 12);
    double w[k], e[k];
    for (int q = 0; q < k; ++q) {
      w[q] = unit(rng) < 0.2 ? 0.0 : unit(rng);
      e[q] = std::max(-w[q], 3.0 * (unit(rng) - 0.5));
    }
    std::vector<double> lambda(n), along(n), x(n);
    double c = 0.0, quadratic = 0.0, rise = 0.0, slope = 0.0;
    for (int q = 0; q < k; ++q)
      c += e[q] * (0.5 + 2.0 * unit(rng)); // e . (spectra row sums)
    bool usable = true;
    for (int p = 0; p < n; ++p) {
      lambda[p] = along[p] = 0.0;
      for (int q = 0; q < k; ++q) {
        const double h = unit(rng) < 0.3 ? 0.0 : unit(rng);
        lambda[p] += w[q] * h;
        along[p] += e[q] * h;
      }
      x[p] = 1 + count(rng);
      usable = usable && lambda[p] > 1e-3;
      if (!usable)
        break;
      quadratic += x[p] * along[p] * along[p] / (lambda[p] * lambda[p]);
      rise = std::max(rise, along[p] / lambda[p]);
      slope -= x[p] * along[p] / lambda[p];
    }
    slope += c;
    if (!usable || !(slope < 0.0))
      continue;
    for (double t = 1.0; t >= 0.125; t *= 0.5) {
      double end_slope = c, change = t * c;
      bool floored = false;
      for (int p = 0; p < n; ++p) {
        const double moved = lambda[p] + t * along[p];
        floored = floored || moved <= 1e-3;
        end_slope -= x[p] * along[p] / moved;
        change -= x[p] * std::log(moved / lambda[p]);
      }
      if (floored || !(slope + end_slope <= 0.0))
        continue;
      const double scale = 1e-12 * (std::fabs(t * c) + 100.0);
      estimate_wrong += change > scale;
      if (trapezoid_guarantees(t, slope + end_slope, quadratic, rise, false)) {
        ++guaranteed;
        CHECK(change <= scale);
      }
      if (trapezoid_guarantees(t, slope + end_slope, quadratic, rise_bound(w, e, k), false))
        CHECK(change <= scale);
      CHECK(!trapezoid_guarantees(t, slope + end_slope, quadratic, rise, true));
    }
  }
  CHECK(guaranteed > 1000);
  CHECK(estimate_wrong > 0);
}

void test_supports_that_cannot_decide() {
  // A support the rows skip must never make empties_a_model true for a whole
  // step, which keeps at least one component (zeros != all); every other must.
  using psnmf::detail::add_support;
  using psnmf::detail::empties_a_model;
  using psnmf::detail::support_can_decide;
  using psnmf::detail::support_words;
  for (int k = 1; k <= psnmf::detail::kMaxSupportComponents; ++k) {
    const unsigned all = (1u << k) - 1u;
    for (unsigned support = 0; support <= all; ++support) {
      std::vector<std::uint64_t> set(static_cast<std::size_t>(support_words(k)), 0);
      add_support(set.data(), support);
      bool decides = false;
      for (unsigned zeros = 0; zeros < all; ++zeros)
        decides = decides || empties_a_model(set.data(), zeros);
      CHECK_EQ(support_can_decide(support, k), decides);
    }
  }
}

void test_over_relaxed() {
  // Hand-made cases: the lengthened step, a coordinate that would cross zero
  // sent to it, and the plain step kept where sending one turns the slope.
  using psnmf::detail::kOverRelaxation;
  using psnmf::detail::over_relaxed;
  {
    const double v[3] = {1.0, 0.5, 0.0}, g[3] = {-1.0, 2.0, -3.0};
    double e[3] = {0.4, -0.4, 0.2};
    const double slope = over_relaxed<3>(v, g, 3, e, -0.4 - 0.8 - 0.6);
    CHECK_EQ(e[0], kOverRelaxation * 0.4);
    CHECK_EQ(e[1], -0.5); // 0.5 - 0.6 would cross zero
    CHECK_EQ(e[2], kOverRelaxation * 0.2);
    CHECK_NEAR(slope, -kOverRelaxation * 0.4 - 1.0 - kOverRelaxation * 0.6, 1e-15);
  }
  {
    // Coupling moves v_0 against its gradient; the decrease comes from v_1,
    // whose plain step already reaches zero. Lengthened, v_0 would move further
    // and v_1 no further: the slope turns positive, so the plain step stays.
    const double v[2] = {1.0, 1.0}, g[2] = {1.0, 1.2};
    double e[2] = {1.0, -1.0};
    const double plain_slope = 1.0 - 1.2;
    const double slope = over_relaxed<0>(v, g, 2, e, plain_slope);
    CHECK_EQ(slope, plain_slope);
    CHECK_EQ(e[0], 1.0);
    CHECK_EQ(e[1], -1.0);
  }
}

} // namespace

int main() {
  psnmf_test::run("random k=1", test_random_fixed<1>);
  psnmf_test::run("random k=3", test_random_fixed<3>);
  psnmf_test::run("random k=4", test_random_fixed<4>);
  psnmf_test::run("random k=8", test_random_fixed<8>);
  psnmf_test::run("random k=16", test_random_fixed<16>);
  psnmf_test::run("random k at run time", test_random_dynamic);
  psnmf_test::run("no free component", test_no_free_component);
  psnmf_test::run("linear without counts", test_linear_without_counts);
  psnmf_test::run("tiny value does not block a zero", test_tiny_value_does_not_block_a_zero);
  psnmf_test::run("zero solved below zero is held", test_zero_solved_below_zero_is_held);
  psnmf_test::run("not positive definite", test_not_positive_definite);
  psnmf_test::run("singular with ridge", test_singular_with_ridge);
  psnmf_test::run("trapezoid guarantee is a bound", test_trapezoid_guarantee_is_a_bound);
  psnmf_test::run("supports that cannot decide", test_supports_that_cannot_decide);
  psnmf_test::run("over-relaxed step", test_over_relaxed);
  return psnmf_test::finish("newton_step");
}
