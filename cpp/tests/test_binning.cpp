// Spatial binning: block sums, remainder handling, integer widening, factor validation;
// binning of CSR counts against the dense block sums.
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "check.hpp"
#include "psnmf/binning.hpp"

namespace {

using psnmf::Remainder;

constexpr std::int64_t kNy = 4, kNx = 6, kC = 3;

/// v(y, x, c) = 18 y + 3 x + c: distinct values 0..71 that fit every tested type.
template <class T> std::vector<T> ramp_cube(std::int64_t ny, std::int64_t nx, std::int64_t nc) {
  std::vector<T> cube(static_cast<std::size_t>(ny * nx * nc));
  for (std::int64_t y = 0; y < ny; ++y)
    for (std::int64_t x = 0; x < nx; ++x)
      for (std::int64_t c = 0; c < nc; ++c)
        cube[static_cast<std::size_t>((y * nx + x) * nc + c)] = static_cast<T>(18 * y + 3 * x + c);
  return cube;
}

/// Straightforward block sums over the cropped image, as the expected result.
template <class Out, class In>
std::vector<Out> naive_bin(const std::vector<In> &cube, std::int64_t ny, std::int64_t nx,
                           std::int64_t nc, std::int64_t fy, std::int64_t fx) {
  const std::int64_t by = ny / fy, bx = nx / fx;
  std::vector<Out> out(static_cast<std::size_t>(by * bx * nc), Out(0));
  for (std::int64_t y = 0; y < by * fy; ++y)
    for (std::int64_t x = 0; x < bx * fx; ++x)
      for (std::int64_t c = 0; c < nc; ++c)
        out[static_cast<std::size_t>(((y / fy) * bx + x / fx) * nc + c)] +=
            static_cast<Out>(cube[static_cast<std::size_t>((y * nx + x) * nc + c)]);
  return out;
}

template <class In, class Out>
std::vector<Out> bin(const std::vector<In> &cube, std::int64_t ny, std::int64_t nx, std::int64_t nc,
                     std::int64_t fy, std::int64_t fx, Remainder r = Remainder::crop,
                     int n_threads = 0) {
  const psnmf::BinnedShape s = psnmf::binned_shape(ny, nx, fy, fx, r);
  std::vector<Out> out(static_cast<std::size_t>(s.ny * s.nx * nc), Out(123)); // poisoned
  psnmf::bin_spatial<In, Out>(cube.data(), ny, nx, nc, fy, fx, out.data(), r, n_threads);
  return out;
}

void test_shapes() {
  const psnmf::BinnedShape a = psnmf::binned_shape(4, 6, 2, 3);
  CHECK_EQ(a.ny, 2);
  CHECK_EQ(a.nx, 2);
  const psnmf::BinnedShape b = psnmf::binned_shape(5, 7, 2, 2); // crop: 2 x 3
  CHECK_EQ(b.ny, 2);
  CHECK_EQ(b.nx, 3);
  const psnmf::BinnedShape c = psnmf::binned_shape(4, 6, 1, 1);
  CHECK_EQ(c.ny, 4);
  CHECK_EQ(c.nx, 6);
  const psnmf::BinnedShape d = psnmf::binned_shape(4, 6, 4, 6, Remainder::error);
  CHECK_EQ(d.ny, 1);
  CHECK_EQ(d.nx, 1);
}

void test_hand_values_2x3() {
  const auto cube = ramp_cube<std::int32_t>(kNy, kNx, kC);
  const auto out = bin<std::int32_t, std::int64_t>(cube, kNy, kNx, kC, 2, 3);
  CHECK_EQ(out.size(), std::size_t(2 * 2 * 3));
  // Block (0, 0): y in {0, 1}, x in {0, 1, 2}: sum = 3*18*1 + 2*3*(0+1+2) + 6c = 72 + 6c.
  CHECK_EQ(out[0], 72);
  CHECK_EQ(out[1], 78);
  CHECK_EQ(out[2], 84);
  // Block (0, 1): x in {3, 4, 5}: 54 + 2*3*(3+4+5) + 6c = 126 + 6c.
  CHECK_EQ(out[3], 126);
  // Block (1, 0): y in {2, 3}: 3*18*(2+3) + 18 + 6c = 288 + 6c.
  CHECK_EQ(out[6], 288);
  // Block (1, 1): 270 + 72 + 6c = 342 + 6c; last channel 354.
  CHECK_EQ(out[11], 354);
}

template <class In, class Out> void check_type() {
  const auto cube = ramp_cube<In>(kNy, kNx, kC);
  const Out total = std::accumulate(cube.begin(), cube.end(), Out(0));
  const std::int64_t factors[][2] = {{2, 3}, {2, 2}, {1, 1}, {4, 6}, {1, 6}, {4, 1}};
  for (const auto &f : factors) {
    for (int threads : {1, 2, 3}) {
      const auto out = bin<In, Out>(cube, kNy, kNx, kC, f[0], f[1], Remainder::error, threads);
      const auto expected = naive_bin<Out>(cube, kNy, kNx, kC, f[0], f[1]);
      CHECK(out == expected);
      // Every factor divides the image: all counts are kept.
      CHECK_EQ(std::accumulate(out.begin(), out.end(), Out(0)), total);
    }
  }
  // (1, 1) is the identity.
  const auto same = bin<In, Out>(cube, kNy, kNx, kC, 1, 1);
  for (std::size_t p = 0; p < cube.size(); ++p)
    CHECK_EQ(same[p], static_cast<Out>(cube[p]));
}

void test_types() {
  check_type<std::uint8_t, std::uint64_t>();
  check_type<std::uint16_t, std::uint64_t>();
  check_type<std::uint32_t, std::uint64_t>();
  check_type<std::int32_t, std::int64_t>();
  check_type<std::int64_t, std::int64_t>();
  check_type<float, float>();
  check_type<float, double>();
  check_type<double, double>();
}

void test_uint8_no_overflow() {
  std::vector<std::uint8_t> cube(static_cast<std::size_t>(kNy * kNx * kC));
  for (std::size_t p = 0; p < cube.size(); ++p)
    cube[p] = static_cast<std::uint8_t>(250 + p % 6);
  const std::uint64_t total = std::accumulate(cube.begin(), cube.end(), std::uint64_t(0));
  const auto out = bin<std::uint8_t, std::uint64_t>(cube, kNy, kNx, kC, 2, 3);
  CHECK(out == (naive_bin<std::uint64_t>(cube, kNy, kNx, kC, 2, 3)));
  for (std::uint64_t v : out)
    CHECK(v >= 6 * 250 && v <= 6 * 255);
  CHECK_EQ(std::accumulate(out.begin(), out.end(), std::uint64_t(0)), total);
  // The whole image in one bin: 72 values of 250..255.
  const auto all = bin<std::uint8_t, std::uint64_t>(cube, kNy, kNx, kC, 4, 6);
  CHECK_EQ(all[0] + all[1] + all[2], total);
  CHECK(all[0] > 255);
  // uint16 at its maximum: 24 * 65535 does not fit 16 bits.
  std::vector<std::uint16_t> big(static_cast<std::size_t>(kNy * kNx * kC), 65535);
  const auto big_out = bin<std::uint16_t, std::uint64_t>(big, kNy, kNx, kC, 4, 6);
  CHECK_EQ(big_out[0], std::uint64_t(24) * 65535);
}

void test_remainder_crop() {
  // 5 x 7 x 3 with (2, 2): the last row and column are dropped -> 2 x 3.
  const std::int64_t ny = 5, nx = 7;
  const auto cube = ramp_cube<std::int32_t>(ny, nx, kC);
  const auto out = bin<std::int32_t, std::int64_t>(cube, ny, nx, kC, 2, 2);
  CHECK_EQ(out.size(), std::size_t(2 * 3 * 3));
  CHECK(out == (naive_bin<std::int64_t>(cube, ny, nx, kC, 2, 2)));
  // Block (1, 2): y in {2, 3}, x in {4, 5}: 2*18*(2+3) + 2*3*(4+5) + 4c = 234 + 4c.
  CHECK_EQ(out[(1 * 3 + 2) * 3 + 0], 234);
  CHECK_EQ(out[(1 * 3 + 2) * 3 + 2], 242);
  // Total of the cropped 4 x 6 region.
  std::int64_t cropped = 0;
  for (std::int64_t y = 0; y < 4; ++y)
    for (std::int64_t x = 0; x < 6; ++x)
      for (std::int64_t c = 0; c < kC; ++c)
        cropped += 18 * y + 3 * x + c;
  CHECK_EQ(std::accumulate(out.begin(), out.end(), std::int64_t(0)), cropped);
  // On the 4 x 6 cube, (3, 4) crops to a single bin of the top-left 3 x 4 block.
  const auto cube46 = ramp_cube<double>(kNy, kNx, kC);
  const auto one = bin<double, double>(cube46, kNy, kNx, kC, 3, 4);
  CHECK_EQ(one.size(), std::size_t(3));
  // 4*18*(0+1+2) + 3*3*(0+1+2+3) + 12c = 216 + 54 + 12c.
  CHECK_EQ(one[0], 270.0);
  CHECK_EQ(one[2], 294.0);
}

void test_errors() {
  const auto cube = ramp_cube<double>(kNy, kNx, kC);
  std::vector<double> out(static_cast<std::size_t>(kNy * kNx * kC));
  auto run = [&](std::int64_t fy, std::int64_t fx, Remainder r) {
    psnmf::bin_spatial<double, double>(cube.data(), kNy, kNx, kC, fy, fx, out.data(), r);
  };
  // Remainder::error with a factor that does not divide the image.
  CHECK_THROWS(run(3, 3, Remainder::error), std::invalid_argument);
  CHECK_THROWS(run(2, 4, Remainder::error), std::invalid_argument);
  CHECK_THROWS(psnmf::binned_shape(5, 7, 2, 2, Remainder::error), std::invalid_argument);
  // Factor 0, negative, or larger than the image.
  CHECK_THROWS(run(0, 1, Remainder::crop), std::invalid_argument);
  CHECK_THROWS(run(1, 0, Remainder::crop), std::invalid_argument);
  CHECK_THROWS(run(-2, 2, Remainder::crop), std::invalid_argument);
  CHECK_THROWS(run(5, 1, Remainder::crop), std::invalid_argument);
  CHECK_THROWS(run(1, 7, Remainder::crop), std::invalid_argument);
  CHECK_THROWS(psnmf::binned_shape(4, 6, 0, 2), std::invalid_argument);
  CHECK_THROWS(psnmf::binned_shape(4, 6, 2, 7), std::invalid_argument);
  // Empty image or no channels.
  CHECK_THROWS(psnmf::binned_shape(0, 6, 1, 1), std::invalid_argument);
  CHECK_THROWS((psnmf::bin_spatial<double, double>(cube.data(), kNy, kNx, 0, 1, 1, out.data())),
               std::invalid_argument);
}

/// A CSR (ny * nx, nc) matrix with unsorted column indices, stored zeros and empty
/// rows, and its dense copy (row-major): v(p, c) = (p * 7 + c * 3) % 5 where kept.
struct SparseCounts {
  std::vector<std::int64_t> indptr{0};
  std::vector<std::int32_t> indices;
  std::vector<double> values;
  std::vector<double> dense;
  psnmf::CsrView<double> view(std::int64_t n_rows, std::int64_t nc) const {
    return {n_rows, nc, indptr.data(), indices.data(), values.data()};
  }
};

SparseCounts sparse_counts(std::int64_t n_rows, std::int64_t nc) {
  SparseCounts m;
  m.dense.assign(static_cast<std::size_t>(n_rows * nc), 0.0);
  for (std::int64_t p = 0; p < n_rows; ++p) {
    for (std::int64_t c = nc - 1; c >= 0; --c) { // descending: unsorted for the kernel
      if ((p + 2 * c) % 3 == 0 || p % 4 == 3)
        continue; // absent; every fourth pixel is empty
      const double v = static_cast<double>((p * 7 + c * 3) % 5); // 0 is a stored zero
      m.indices.push_back(static_cast<std::int32_t>(c));
      m.values.push_back(v);
      m.dense[static_cast<std::size_t>(p * nc + c)] = v;
    }
    m.indptr.push_back(static_cast<std::int64_t>(m.indices.size()));
  }
  return m;
}

template <class Out> struct BinnedCsr {
  std::vector<std::int64_t> indptr;
  std::vector<std::int32_t> indices;
  std::vector<Out> values;
};

template <class Out>
BinnedCsr<Out> bin_csr(const psnmf::CsrView<double> &counts, std::int64_t ny, std::int64_t nx,
                       std::int64_t fy, std::int64_t fx, int n_threads) {
  BinnedCsr<Out> b;
  b.indptr.assign(static_cast<std::size_t>((ny / fy) * (nx / fx) + 1), -1);
  const std::int64_t nnz =
      psnmf::bin_csr_offsets(counts, ny, nx, fy, fx, b.indptr.data(), n_threads);
  b.indices.assign(static_cast<std::size_t>(nnz), -1);
  b.values.assign(static_cast<std::size_t>(nnz), Out(-1));
  psnmf::bin_csr_fill<double, Out>(counts, ny, nx, fy, fx, b.indptr.data(), b.indices.data(),
                                   b.values.data(), n_threads);
  return b;
}

void test_csr_against_dense() {
  const std::int64_t nc = 5;
  const std::int64_t shapes[][2] = {{4, 6}, {5, 7}, {1, 9}};
  const std::int64_t factors[][2] = {{2, 3}, {2, 2}, {1, 1}, {1, 3}, {4, 6}};
  for (const auto &shape : shapes) {
    const std::int64_t ny = shape[0], nx = shape[1];
    const SparseCounts m = sparse_counts(ny * nx, nc);
    for (const auto &f : factors) {
      if (f[0] > ny || f[1] > nx)
        continue;
      const auto expected = naive_bin<double>(m.dense, ny, nx, nc, f[0], f[1]);
      for (int threads : {1, 2, 3}) {
        const auto b = bin_csr<float>(m.view(ny * nx, nc), ny, nx, f[0], f[1], threads);
        const std::int64_t n_binned = (ny / f[0]) * (nx / f[1]);
        CHECK_EQ(b.indptr.size(), static_cast<std::size_t>(n_binned + 1));
        std::vector<double> dense(static_cast<std::size_t>(n_binned * nc), 0.0);
        for (std::int64_t r = 0; r < n_binned; ++r) {
          for (std::int64_t p = b.indptr[r]; p < b.indptr[r + 1]; ++p) {
            CHECK(b.values[p] > 0.0f); // only nonzero sums are stored
            if (p > b.indptr[r])
              CHECK(b.indices[p] > b.indices[p - 1]); // ascending, no duplicates
            dense[static_cast<std::size_t>(r * nc + b.indices[p])] = b.values[p];
          }
        }
        CHECK(dense == expected);
      }
    }
  }
}

void test_csr_float_sums() {
  // Sums are accumulated in double: 1 + 2**-30 + ... survives in a double output.
  const std::int64_t indptr[] = {0, 1, 2, 3, 4};
  const std::int32_t indices[] = {0, 0, 0, 1};
  const double tiny = std::ldexp(1.0, -30);
  const double values[] = {1.0, tiny, tiny, 3.0};
  const psnmf::CsrView<double> counts{4, 2, indptr, indices, values};
  const auto b = bin_csr<double>(counts, 2, 2, 2, 2, 2);
  CHECK_EQ(b.indptr[1], 2);
  CHECK_EQ(b.values[0], 1.0 + 2 * tiny);
  CHECK_EQ(b.values[1], 3.0);
  const auto f = bin_csr<float>(counts, 2, 2, 2, 2, 1);
  CHECK_EQ(f.values[0], 1.0f);
}

void test_csr_errors() {
  const std::int64_t indptr[] = {0, 1, 2, 3, 4};
  const std::int32_t good_indices[] = {0, 1, 0, 1};
  const double good_values[] = {1.0, 2.0, 3.0, 4.0};
  std::vector<std::int64_t> out(2);
  auto offsets = [&](const std::int64_t *ip, const std::int32_t *idx, const double *val,
                     std::int64_t n_rows, std::int64_t ny, std::int64_t nx, std::int64_t fy) {
    const psnmf::CsrView<double> counts{n_rows, 2, ip, idx, val};
    return psnmf::bin_csr_offsets(counts, ny, nx, fy, fy, out.data());
  };
  CHECK_EQ(offsets(indptr, good_indices, good_values, 4, 2, 2, 2), 2);
  const std::int32_t bad_index[] = {0, 2, 0, 1};
  CHECK_THROWS(offsets(indptr, bad_index, good_values, 4, 2, 2, 2), std::invalid_argument);
  const std::int32_t negative_index[] = {0, -1, 0, 1};
  CHECK_THROWS(offsets(indptr, negative_index, good_values, 4, 2, 2, 2), std::invalid_argument);
  const double negative[] = {1.0, -2.0, 3.0, 4.0};
  CHECK_THROWS(offsets(indptr, good_indices, negative, 4, 2, 2, 2), std::invalid_argument);
  const double nan[] = {1.0, std::numeric_limits<double>::quiet_NaN(), 3.0, 4.0};
  CHECK_THROWS(offsets(indptr, good_indices, nan, 4, 2, 2, 2), std::invalid_argument);
  const double inf[] = {1.0, std::numeric_limits<double>::infinity(), 3.0, 4.0};
  CHECK_THROWS(offsets(indptr, good_indices, inf, 4, 2, 2, 2), std::invalid_argument);
  const std::int64_t decreasing[] = {0, 2, 1, 3, 4};
  CHECK_THROWS(offsets(decreasing, good_indices, good_values, 4, 2, 2, 2), std::invalid_argument);
  // The image must hold the rows; the factor must fit the image.
  CHECK_THROWS(offsets(indptr, good_indices, good_values, 4, 1, 2, 1), std::invalid_argument);
  CHECK_THROWS(offsets(indptr, good_indices, good_values, 4, 2, 2, 3), std::invalid_argument);
  CHECK_THROWS(offsets(indptr, good_indices, good_values, 4, 2, 2, 0), std::invalid_argument);
  // A fill with offsets of other counts is refused instead of writing past a row.
  const std::int64_t wrong[] = {0, 1};
  std::vector<std::int32_t> idx(4);
  std::vector<float> val(4);
  const psnmf::CsrView<double> counts{4, 2, indptr, good_indices, good_values};
  CHECK_THROWS(
      (psnmf::bin_csr_fill<double, float>(counts, 2, 2, 2, 2, wrong, idx.data(), val.data())),
      std::invalid_argument);
}

} // namespace

int main() {
  RUN(test_shapes);
  RUN(test_hand_values_2x3);
  RUN(test_types);
  RUN(test_uint8_no_overflow);
  RUN(test_remainder_crop);
  RUN(test_errors);
  RUN(test_csr_against_dense);
  RUN(test_csr_float_sums);
  RUN(test_csr_errors);
  return psnmf_test::finish("binning");
}
