// Conversion of dense counts of any numeric type into the CSR working format.
#pragma once

#include <cstdint>

namespace psnmf {

/// First pass: validate a dense row-major (n_rows, n_cols) matrix (every value
/// finite and >= 0, else std::invalid_argument) and write the CSR row offsets
/// of its nonzeros into indptr (n_rows + 1). Returns the number of nonzeros.
template <class In>
std::int64_t csr_row_offsets(const In *dense, std::int64_t n_rows, std::int64_t n_cols,
                             std::int64_t *indptr, int n_threads = 0);

/// Second pass: copy the nonzeros into indices and values (sized by indptr).
template <class In, class Value>
void fill_csr(const In *dense, std::int64_t n_rows, std::int64_t n_cols, const std::int64_t *indptr,
              std::int32_t *indices, Value *values, int n_threads = 0);

} // namespace psnmf
