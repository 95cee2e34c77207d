// Conversion of dense counts of any numeric type into the CSR working format.
#pragma once

#include <cstdint>

namespace psnmf {

/// Memory layout of a dense (n_rows, n_cols) matrix: C order (rows contiguous)
/// or Fortran order (columns contiguous).
enum class DenseOrder { row_major, column_major };

/// First pass: validate a dense (n_rows, n_cols) matrix (every value finite and
/// >= 0, else std::invalid_argument) and write the CSR row offsets of its
/// nonzeros into indptr (n_rows + 1). Returns the number of nonzeros. When
/// max_value is given, stores there what decides the value type: the largest
/// value for float input and for integer input whose largest value is >= 2**24
/// (a 64-bit one above 2**53 is stored above 2**53, never rounded down to it);
/// below 2**24 an integer input's bound may exceed its largest value but stays
/// below 2**24. 0 for uint8/uint16 input, whose values float32 always holds
/// exactly, and for an all-zero matrix.
template <class In>
std::int64_t csr_row_offsets(const In *dense, std::int64_t n_rows, std::int64_t n_cols,
                             std::int64_t *indptr, int n_threads = 0,
                             DenseOrder order = DenseOrder::row_major, double *max_value = nullptr);

/// Second pass: copy the nonzeros into indices and values (sized by indptr),
/// column indices ascending within each row.
template <class In, class Value>
void fill_csr(const In *dense, std::int64_t n_rows, std::int64_t n_cols, const std::int64_t *indptr,
              std::int32_t *indices, Value *values, int n_threads = 0,
              DenseOrder order = DenseOrder::row_major);

} // namespace psnmf

namespace psnmf {

/// What convert_csr learned about a CSR matrix.
struct CsrCheck {
  /// Column indices strictly increasing within every row (sorted, no duplicates).
  bool canonical = true;
  /// As csr_row_offsets' max_value, over the stored values.
  double max_value = 0;
};

/// One pass over a CSR matrix (n_rows, n_cols) given by indptr (n_rows + 1,
/// from 0, non-decreasing), indices and data (indptr[n_rows] entries): validate
/// the values (finite, >= 0) and the structure (std::invalid_argument
/// otherwise), and copy the indices as int32 into out_indices and the values
/// converted into out_values, each when not null. A row that is not canonical
/// gives canonical = false; its indices are then checked only after sorting
/// (call again), and the copies are incomplete.
template <class Index, class In, class Value>
CsrCheck convert_csr(const Index *indptr, const Index *indices, const In *data, std::int64_t n_rows,
                     std::int64_t n_cols, std::int32_t *out_indices, Value *out_values,
                     int n_threads = 0);

/// CSR row offsets of COO entries (nnz of them) whose row indices `rows` are
/// sorted (non-decreasing): indptr (n_rows + 1) such that entries indptr[r] to
/// indptr[r + 1] are those of row r. Returns false, with indptr unspecified and
/// the rows' range unchecked, when they are not sorted; throws
/// std::invalid_argument when sorted rows leave [0, n_rows). With the rows
/// sorted, the entries' column indices and values are a CSR matrix's
/// (convert_csr checks them).
template <class Index>
bool sorted_coo_row_offsets(const Index *rows, std::int64_t nnz, std::int64_t n_rows, Index *indptr,
                            int n_threads = 0);

} // namespace psnmf
