// Dense -> CSR conversion: row offsets, indices and values for every input type; validation;
// the row offsets of COO input in row order.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "check.hpp"
#include "psnmf/convert.hpp"

namespace {

using psnmf::DenseOrder;

// 3 x 4 with an empty middle row:
//   [0 3 0   1]
//   [0 0 0   0]
//   [7 0 250 0]
constexpr std::int64_t kRows = 3, kCols = 4;
const std::vector<std::int64_t> kIndptr = {0, 2, 2, 4};
const std::vector<std::int32_t> kIndices = {1, 3, 0, 2};
const std::vector<double> kValues = {3, 1, 7, 250};

template <class In> std::vector<In> dense_case() {
  return {In(0), In(3), In(0), In(1), In(0), In(0), In(0), In(0), In(7), In(0), In(250), In(0)};
}

template <class In, class Value> void check_fill(const std::vector<In> &dense, int n_threads) {
  std::vector<std::int64_t> indptr(kRows + 1, -1);
  const std::int64_t nnz =
      psnmf::csr_row_offsets(dense.data(), kRows, kCols, indptr.data(), n_threads);
  CHECK_EQ(nnz, 4);
  CHECK(indptr == kIndptr);
  std::vector<std::int32_t> indices(static_cast<std::size_t>(nnz), -1);
  std::vector<Value> values(static_cast<std::size_t>(nnz), Value(-1));
  psnmf::fill_csr(dense.data(), kRows, kCols, indptr.data(), indices.data(), values.data(),
                  n_threads);
  CHECK(indices == kIndices);
  for (std::size_t p = 0; p < values.size(); ++p)
    CHECK_EQ(values[p], static_cast<Value>(kValues[p]));
}

template <class In> void check_type() {
  const std::vector<In> dense = dense_case<In>();
  for (int threads : {1, 2, 3}) {
    check_fill<In, float>(dense, threads);
    check_fill<In, double>(dense, threads);
  }
}

// The same matrix stored column by column gives the same CSR and maximum.
template <class In> void check_column_major() {
  const std::vector<In> rows = dense_case<In>();
  std::vector<In> columns(rows.size());
  for (std::int64_t i = 0; i < kRows; ++i)
    for (std::int64_t j = 0; j < kCols; ++j)
      columns[j * kRows + i] = rows[i * kCols + j];
  for (int threads : {1, 2}) {
    std::vector<std::int64_t> indptr(kRows + 1, -1);
    double max_value = -1;
    CHECK_EQ(psnmf::csr_row_offsets(columns.data(), kRows, kCols, indptr.data(), threads,
                                    psnmf::DenseOrder::column_major, &max_value),
             4);
    CHECK(indptr == kIndptr);
    if (std::is_floating_point_v<In>)
      CHECK_EQ(max_value, 250.0);
    else if (!(std::is_unsigned_v<In> && sizeof(In) <= 2))
      CHECK(max_value >= 250.0 && max_value < 16777216.0); // a bound below 2**24
    std::vector<std::int32_t> indices(4, -1);
    std::vector<double> values(4, -1);
    psnmf::fill_csr(columns.data(), kRows, kCols, indptr.data(), indices.data(), values.data(),
                    threads, psnmf::DenseOrder::column_major);
    CHECK(indices == kIndices);
    CHECK(values == kValues);
  }
}

void test_column_major() {
  check_column_major<std::uint8_t>();
  check_column_major<std::uint16_t>();
  check_column_major<std::int32_t>();
  check_column_major<std::int64_t>();
  check_column_major<double>();
}

void test_types() {
  check_type<std::uint8_t>();
  check_type<std::uint16_t>();
  check_type<std::uint32_t>();
  check_type<std::int32_t>();
  check_type<std::int64_t>();
  check_type<float>();
  check_type<double>();
}

void test_all_zero_and_full() {
  std::vector<std::uint16_t> zeros(static_cast<std::size_t>(kRows * kCols), 0);
  std::vector<std::int64_t> indptr(kRows + 1, -1);
  CHECK_EQ(psnmf::csr_row_offsets(zeros.data(), kRows, kCols, indptr.data()), 0);
  CHECK(indptr == (std::vector<std::int64_t>{0, 0, 0, 0}));

  std::vector<double> full = {0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1e-300};
  CHECK_EQ(psnmf::csr_row_offsets(full.data(), kRows, kCols, indptr.data()), 12);
  CHECK(indptr == (std::vector<std::int64_t>{0, 4, 8, 12}));
  std::vector<std::int32_t> indices(12);
  std::vector<double> values(12);
  psnmf::fill_csr(full.data(), kRows, kCols, indptr.data(), indices.data(), values.data());
  CHECK(values == full);
  CHECK(indices == (std::vector<std::int32_t>{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3}));
}

template <class In> void check_rejects(In bad) {
  std::vector<In> dense = dense_case<In>();
  dense[6] = bad;
  std::vector<std::int64_t> indptr(kRows + 1);
  for (int threads : {1, 2})
    CHECK_THROWS(psnmf::csr_row_offsets(dense.data(), kRows, kCols, indptr.data(), threads),
                 std::invalid_argument);
}

void test_invalid_values() {
  check_rejects<std::int32_t>(-1);
  check_rejects<std::int64_t>(std::numeric_limits<std::int64_t>::min());
  check_rejects<float>(-0.5f);
  check_rejects<double>(-1e-300);
  check_rejects<float>(std::numeric_limits<float>::quiet_NaN());
  check_rejects<double>(std::numeric_limits<double>::quiet_NaN());
  check_rejects<double>(std::numeric_limits<double>::infinity());
  std::vector<double> dense = dense_case<double>();
  std::vector<std::int64_t> indptr(kRows + 1);
  CHECK_THROWS(psnmf::csr_row_offsets(dense.data(), 0, kCols, indptr.data()),
               std::invalid_argument);
  CHECK_THROWS(psnmf::csr_row_offsets(dense.data(), kRows, 0, indptr.data()),
               std::invalid_argument);
}

// A matrix large enough for every path of the kernels (64-value masks with a
// remainder, several column-major row blocks with a remainder), against a plain
// loop over the values.
template <class In> void check_against_loop(DenseOrder order) {
  constexpr std::int64_t rows = 1100, cols = 131;
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<In> dense(static_cast<std::size_t>(rows * cols), In(0));
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      const std::int64_t at = order == DenseOrder::row_major ? i * cols + j : j * rows + i;
      if (i % 9 != 4 && unit(rng) < 0.2) // rows 4, 13, ... stay empty
        dense[at] = static_cast<In>(1 + static_cast<int>(unit(rng) * 120));
    }
  std::vector<std::int64_t> expected_indptr = {0};
  std::vector<std::int32_t> expected_indices;
  std::vector<double> expected_values;
  for (std::int64_t i = 0; i < rows; ++i) {
    for (std::int64_t j = 0; j < cols; ++j) {
      const In v = dense[order == DenseOrder::row_major ? i * cols + j : j * rows + i];
      if (v != In(0)) {
        expected_indices.push_back(static_cast<std::int32_t>(j));
        expected_values.push_back(static_cast<double>(v));
      }
    }
    expected_indptr.push_back(static_cast<std::int64_t>(expected_indices.size()));
  }
  for (int threads : {1, 2, 3}) {
    std::vector<std::int64_t> indptr(rows + 1, -1);
    CHECK_EQ(psnmf::csr_row_offsets(dense.data(), rows, cols, indptr.data(), threads, order),
             expected_indptr.back());
    CHECK(indptr == expected_indptr);
    std::vector<std::int32_t> indices(expected_indices.size(), -1);
    std::vector<double> values(expected_values.size(), -1);
    psnmf::fill_csr(dense.data(), rows, cols, indptr.data(), indices.data(), values.data(), threads,
                    order);
    CHECK(indices == expected_indices);
    CHECK(values == expected_values);
  }
}

template <class In> void check_against_loop_both_orders() {
  check_against_loop<In>(DenseOrder::row_major);
  check_against_loop<In>(DenseOrder::column_major);
}

void test_against_loop() {
  check_against_loop_both_orders<std::uint8_t>();
  check_against_loop_both_orders<std::uint16_t>();
  check_against_loop_both_orders<std::uint32_t>();
  check_against_loop_both_orders<std::int32_t>();
  check_against_loop_both_orders<std::int64_t>();
  check_against_loop_both_orders<float>();
  check_against_loop_both_orders<double>();
}

// Integer maxima at and above 2**24 are exact; above 2**53 never rounded down to it.
template <class In> double maximum_of(std::vector<In> dense, In big, DenseOrder order) {
  dense[150] = big;
  std::vector<std::int64_t> indptr(kRows * 50 + 1);
  double max_value = -1;
  psnmf::csr_row_offsets(dense.data(), kRows * 50, kCols, indptr.data(), 2, order, &max_value);
  return max_value;
}

void test_large_maximum() {
  for (auto order : {DenseOrder::row_major, DenseOrder::column_major}) {
    const std::vector<std::uint32_t> small(kRows * 50 * kCols, 3);
    CHECK_EQ(maximum_of<std::uint32_t>(small, (1u << 24) + 1, order), 16777217.0);
    CHECK_EQ(maximum_of<std::uint32_t>(small, 1u << 24, order), 16777216.0);
    const std::vector<std::int64_t> wide(kRows * 50 * kCols, 3);
    CHECK_EQ(maximum_of<std::int64_t>(wide, std::int64_t(1) << 40, order), 1099511627776.0);
    CHECK(maximum_of<std::int64_t>(wide, (std::int64_t(1) << 53) + 1, order) > 9007199254740992.0);
    CHECK_EQ(maximum_of<std::int64_t>(wide, std::int64_t(1) << 53, order), 9007199254740992.0);
    const std::vector<float> floats(kRows * 50 * kCols, 0.5f);
    CHECK_EQ(maximum_of<float>(floats, 3e38f, order), double(3e38f));
  }
}

// Every path of the kernel variants (ctest runs this file with the default
// kernels, with PSNMF_KERNELS=avx_fma and with PSNMF_KERNELS=portable): row lengths around the 8-,
// 32- and 64-value groups, all-zero and all-nonzero rows, rows ending with nonzeros, column-major
// blocks and tiles with remainders, several chunks per thread, and values the vector conversion
// does not take (uint16 above 255 with a zero low byte, uint32 >= 2**31, int64 >= 2**31, doubles
// that round or underflow in float32), against a plain loop.
template <class In> In special_value(std::int64_t i, std::int64_t j) {
  if constexpr (std::is_same_v<In, std::uint16_t>) // zero low bytes: not zero as 16 bits
    return (i + j) % 13 == 0 ? In((i + j) % 26 == 0 ? 65535 : 256 * (1 + j % 255))
                             : In(1 + (i * 7 + j) % 200);
  else if constexpr (std::is_same_v<In, std::uint32_t>)
    return (i + j) % 13 == 0 ? In(2147483648u + std::uint32_t(j)) : In(1 + (i * 7 + j) % 200);
  else if constexpr (std::is_same_v<In, std::int64_t>)
    return (i + j) % 13 == 0 ? In((std::int64_t(1) << 31) + j) : In(1 + (i * 7 + j) % 200);
  else if constexpr (std::is_same_v<In, double>)
    return (i + j) % 5 == 0 ? 1e-300 : 0.1 * double(1 + (i * 7 + j) % 200);
  else if constexpr (std::is_same_v<In, float>)
    return 0.1f * float(1 + (i * 7 + j) % 200);
  else
    return In(1 + (i * 7 + j) % 200);
}

template <class In> std::vector<In> patterned(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<In> dense(static_cast<std::size_t>(rows * cols), In(0));
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      const int kind = int(i % 5); // 0: sparse, 1: empty, 2: full, 3: ends with a nonzero, 4: dense
      const bool nonzero = kind == 2 || (kind == 3 && j == cols - 1) ||
                           (kind != 1 && unit(rng) < (kind == 4 ? 0.7 : 0.15));
      if (nonzero)
        dense[i * cols + j] = special_value<In>(i, j);
      else if (std::is_floating_point_v<In> && unit(rng) < 0.1)
        dense[i * cols + j] = In(-0.0); // a zero
    }
  return dense;
}

template <class In, class Value>
void check_matches_loop(const std::vector<In> &rows_first, std::int64_t rows, std::int64_t cols,
                        std::vector<int> thread_counts) {
  std::vector<std::int64_t> expected_indptr = {0};
  std::vector<std::int32_t> expected_indices;
  std::vector<Value> expected_values;
  for (std::int64_t i = 0; i < rows; ++i) {
    for (std::int64_t j = 0; j < cols; ++j)
      if (const In v = rows_first[i * cols + j]; v != In(0)) {
        expected_indices.push_back(static_cast<std::int32_t>(j));
        expected_values.push_back(static_cast<Value>(v));
      }
    expected_indptr.push_back(static_cast<std::int64_t>(expected_indices.size()));
  }
  std::vector<In> columns_first(rows_first.size());
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j)
      columns_first[j * rows + i] = rows_first[i * cols + j];
  for (auto order : {DenseOrder::row_major, DenseOrder::column_major}) {
    const In *dense = order == DenseOrder::row_major ? rows_first.data() : columns_first.data();
    for (int threads : thread_counts) {
      std::vector<std::int64_t> indptr(rows + 1, -1);
      CHECK_EQ(psnmf::csr_row_offsets(dense, rows, cols, indptr.data(), threads, order),
               expected_indptr.back());
      CHECK(indptr == expected_indptr);
      // Exactly sized: ASan reports any store past the last nonzero.
      std::vector<std::int32_t> indices(expected_indices.size(), -1);
      std::vector<Value> values(expected_values.size(), Value(-1));
      psnmf::fill_csr(dense, rows, cols, indptr.data(), indices.data(), values.data(), threads,
                      order);
      CHECK(indices == expected_indices);
      CHECK(values == expected_values);
    }
  }
}

template <class In> void check_shapes() {
  unsigned seed = 1;
  for (std::int64_t rows : {1, 37, 300})
    for (std::int64_t cols : {1, 7, 9, 31, 32, 33, 63, 64, 65, 100, 257}) {
      const std::vector<In> dense = patterned<In>(rows, cols, seed++);
      check_matches_loop<In, float>(dense, rows, cols, {1, 2});
      check_matches_loop<In, double>(dense, rows, cols, {2});
    }
  // Several column-major blocks (512 bytes of a column each) and row chunks per thread.
  const std::int64_t rows = 5000, cols = 45;
  const std::vector<In> dense = patterned<In>(rows, cols, 99);
  check_matches_loop<In, float>(dense, rows, cols, {1, 2, 3});
  check_matches_loop<In, double>(dense, rows, cols, {1, 3});
}

void test_every_kernel_path() {
  check_shapes<std::uint8_t>();
  check_shapes<std::uint16_t>();
  check_shapes<std::uint32_t>();
  check_shapes<std::int32_t>();
  check_shapes<std::int64_t>();
  check_shapes<float>();
  check_shapes<double>();
}

// A bad value anywhere (inside the 32-value vector blocks or in a remainder)
// is found in both orders.
template <class In> void check_rejects_everywhere(In bad) {
  const std::int64_t rows = 70, cols = 70;
  for (std::int64_t at :
       {std::int64_t(0), 5 * cols + 3, 40 * cols + 66, 69 * cols + 40, rows * cols - 1}) {
    std::vector<In> dense = patterned<In>(rows, cols, 3);
    dense[static_cast<std::size_t>(at)] = bad;
    std::vector<std::int64_t> indptr(rows + 1);
    for (auto order : {DenseOrder::row_major, DenseOrder::column_major})
      for (int threads : {1, 2})
        CHECK_THROWS(
            psnmf::csr_row_offsets(dense.data(), rows, cols, indptr.data(), threads, order),
            std::invalid_argument);
  }
}

void test_invalid_values_in_vector_blocks() {
  check_rejects_everywhere<std::int32_t>(-1);
  check_rejects_everywhere<std::int64_t>(-(std::int64_t(1) << 40));
  check_rejects_everywhere<float>(-0.5f);
  check_rejects_everywhere<float>(std::numeric_limits<float>::quiet_NaN());
  check_rejects_everywhere<float>(std::numeric_limits<float>::infinity());
  check_rejects_everywhere<double>(-1e-300);
  check_rejects_everywhere<double>(std::numeric_limits<double>::quiet_NaN());
  check_rejects_everywhere<double>(std::numeric_limits<double>::infinity());
}

// sorted_coo_row_offsets against the first position of each row (a plain
// search), with empty rows first, in runs and last, and slices of one entry.
template <class Index> void check_coo_offsets(std::int64_t n_rows, std::int64_t nnz, int threads) {
  std::mt19937 rng(static_cast<unsigned>(n_rows * 31 + nnz));
  std::uniform_int_distribution<std::int64_t> row_of(n_rows > 6 ? 3 : 0,
                                                     n_rows > 6 ? n_rows - 4 : n_rows - 1);
  std::vector<Index> rows(static_cast<std::size_t>(nnz));
  for (auto &r : rows)
    r = static_cast<Index>(row_of(rng));
  std::sort(rows.begin(), rows.end());
  std::vector<Index> indptr(static_cast<std::size_t>(n_rows + 1), Index(-1));
  CHECK(psnmf::sorted_coo_row_offsets(rows.data(), nnz, n_rows, indptr.data(), threads));
  bool equal = true;
  for (std::int64_t r = 0; r <= n_rows; ++r)
    equal &= std::int64_t(indptr[r]) ==
             std::lower_bound(rows.begin(), rows.end(), Index(r)) - rows.begin();
  CHECK(equal);
}

void test_sorted_coo_offsets() {
  for (int threads : {1, 2, 3, 8})
    for (auto [n_rows, nnz] :
         {std::pair<std::int64_t, std::int64_t>{50, 0}, {50, 1}, {50, 9}, {1, 6}, {3000, 20000}}) {
      check_coo_offsets<std::int32_t>(n_rows, nnz, threads);
      check_coo_offsets<std::int64_t>(n_rows, nnz, threads);
    }
  // A descent anywhere, at the threads' slice boundaries too, is found.
  std::vector<std::int32_t> rows(300);
  for (std::size_t p = 0; p < rows.size(); ++p)
    rows[p] = std::int32_t(p / 3);
  std::vector<std::int32_t> indptr(102);
  bool found = true;
  for (int threads : {1, 2, 3})
    for (std::size_t at = 1; at < rows.size(); ++at) {
      std::vector<std::int32_t> unsorted = rows;
      unsorted[at - 1] = rows[at - 1] + 1;
      unsorted[at] = rows[at - 1];
      found &= !psnmf::sorted_coo_row_offsets(unsorted.data(), 300, 101, indptr.data(), threads);
    }
  CHECK(found);
  // Sorted rows outside [0, n_rows) are rejected.
  rows.back() = 100;
  CHECK_THROWS(psnmf::sorted_coo_row_offsets(rows.data(), 300, 100, indptr.data(), 2),
               std::invalid_argument);
  rows.back() = 99;
  rows.front() = -1;
  CHECK_THROWS(psnmf::sorted_coo_row_offsets(rows.data(), 300, 100, indptr.data(), 2),
               std::invalid_argument);
  // No rows, missing buffers, a negative count of entries.
  rows.front() = 0;
  CHECK_THROWS(psnmf::sorted_coo_row_offsets(rows.data(), 300, 0, indptr.data(), 2),
               std::invalid_argument);
  CHECK_THROWS(psnmf::sorted_coo_row_offsets<std::int32_t>(nullptr, 300, 100, indptr.data(), 2),
               std::invalid_argument);
  CHECK_THROWS(psnmf::sorted_coo_row_offsets<std::int32_t>(rows.data(), 300, 100, nullptr, 2),
               std::invalid_argument);
  CHECK_THROWS(psnmf::sorted_coo_row_offsets(rows.data(), -1, 100, indptr.data(), 2),
               std::invalid_argument);
}

} // namespace

int main() {
  RUN(test_types);
  RUN(test_column_major);
  RUN(test_all_zero_and_full);
  RUN(test_invalid_values);
  RUN(test_against_loop);
  RUN(test_large_maximum);
  RUN(test_every_kernel_path);
  RUN(test_invalid_values_in_vector_blocks);
  RUN(test_sorted_coo_offsets);
  return psnmf_test::finish("convert");
}
