// The vectorised logarithm of the loss (cpp/src/simd_log.hpp) against std::log,
// and its eight-lane twin (simd_log512.hpp) against it, bit for bit.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "check.hpp"
#include "cpu_features.hpp"
#if PSNMF_HAVE_AVX_FMA_KERNELS
#include "simd_log.hpp"
#endif
#if PSNMF_HAVE_AVX512_KERNELS
#include "simd_log512.hpp"
#endif

namespace {

#if PSNMF_HAVE_AVX_FMA_KERNELS
/// |a - b| in units in the last place of b.
double ulps(double a, double b) {
  return std::fabs(a - b) / std::fabs(std::nextafter(b, INFINITY) - b);
}

/// Largest error in ulps of log_array over `in`.
double worst_ulps(const std::vector<double> &in) {
  std::vector<double> out(in.size());
  psnmf::detail::simd4::log_array(in.data(), out.data(), static_cast<std::int64_t>(in.size()));
  double worst = 0.0;
  for (std::size_t i = 0; i < in.size(); ++i)
    worst = std::max(worst, ulps(out[i], std::log(in[i])));
  return worst;
}

void test_whole_range() {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> exponent(-700.0, 700.0);
  std::vector<double> in(400000);
  for (double &v : in)
    v = std::exp(exponent(rng));
  CHECK(worst_ulps(in) <= 2.0);
}

void test_near_one_and_powers_of_two() {
  // Where log is small (near 1) or the mantissa reduction switches (near
  // sqrt(2) times a power of two), the relative error must stay in ulps.
  std::mt19937_64 rng(8);
  std::uniform_real_distribution<double> offset(-1e-3, 1e-3);
  std::vector<double> in;
  for (int e = -60; e <= 60; ++e)
    for (const double centre : {1.0, std::sqrt(2.0)})
      for (int i = 0; i < 500; ++i)
        in.push_back(std::ldexp(centre * (1.0 + offset(rng)), e));
  for (int i = 1; i < 2000; ++i)
    in.push_back(1.0 + i * DBL_EPSILON);
  CHECK(worst_ulps(in) <= 2.0);
}

void test_special_lanes_fall_back() {
  // Zero, subnormal, infinite and NaN lanes next to normal ones: each lane is
  // std::log of its own value, the normal ones still within 2 ulps.
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> in = {0.0, 2.5, DBL_TRUE_MIN, 1e-310, inf, 3.0, nan, DBL_MAX};
  std::vector<double> out(in.size());
  psnmf::detail::simd4::log_array(in.data(), out.data(), static_cast<std::int64_t>(in.size()));
  CHECK(std::isinf(out[0]) && out[0] < 0.0);
  CHECK(ulps(out[1], std::log(2.5)) <= 2.0);
  CHECK_EQ(out[2], std::log(DBL_TRUE_MIN));
  CHECK_EQ(out[3], std::log(1e-310));
  CHECK(std::isinf(out[4]) && out[4] > 0.0);
  CHECK(ulps(out[5], std::log(3.0)) <= 2.0);
  CHECK(std::isnan(out[6]));
  CHECK(ulps(out[7], std::log(DBL_MAX)) <= 2.0);
}
#endif

#if PSNMF_HAVE_AVX512_KERNELS
void test_eight_lanes_equal_four() {
  // The whole range, values near 1 and near sqrt(2) times powers of two, and
  // the special lanes (through std::log in both): the same bits.
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> exponent(-700.0, 700.0), offset(-1e-3, 1e-3);
  std::vector<double> in(200000);
  for (double &v : in)
    v = std::exp(exponent(rng));
  for (int e = -60; e <= 60; ++e)
    for (const double centre : {1.0, std::sqrt(2.0)})
      for (int i = 0; i < 200; ++i)
        in.push_back(std::ldexp(centre * (1.0 + offset(rng)), e));
  for (const double special :
       {0.0, DBL_TRUE_MIN, 1e-310, std::numeric_limits<double>::infinity(), DBL_MAX, 1.0, -1.0})
    in.push_back(special);
  std::vector<double> four(in.size()), eight(in.size());
  const auto n = static_cast<std::int64_t>(in.size());
  psnmf::detail::simd4::log_array(in.data(), four.data(), n);
  psnmf::detail::simd8::log_array(in.data(), eight.data(), n);
  std::int64_t differ = 0;
  for (std::size_t i = 0; i < in.size(); ++i)
    differ += !(std::memcmp(&four[i], &eight[i], sizeof(double)) == 0 ||
                (std::isnan(four[i]) && std::isnan(eight[i])));
  CHECK_EQ(differ, std::int64_t(0));
}
#endif

} // namespace

int main() {
#if PSNMF_HAVE_AVX_FMA_KERNELS
  if (psnmf::detail::use_avx_fma_kernels()) {
    RUN(test_whole_range);
    RUN(test_near_one_and_powers_of_two);
    RUN(test_special_lanes_fall_back);
  }
#endif
#if PSNMF_HAVE_AVX512_KERNELS
  if (psnmf::detail::use_avx512_kernels())
    RUN(test_eight_lanes_equal_four);
#endif
  return psnmf_test::finish("simd_log");
}
