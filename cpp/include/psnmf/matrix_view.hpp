// Non-owning views of counts matrices: the core never copies the user's data.
#pragma once

#include <cstdint>

namespace psnmf {

/// Compressed sparse rows, as scipy.sparse.csr_matrix with sorted or unsorted
/// column indices. `Value` is float or double. Shape (n_rows, n_cols).
template <class Value> struct CsrView {
  std::int64_t n_rows = 0;
  std::int64_t n_cols = 0;
  const std::int64_t *indptr = nullptr;  ///< n_rows + 1 offsets into indices/values
  const std::int32_t *indices = nullptr; ///< column of each stored value
  const Value *values = nullptr;         ///< stored counts, >= 0
};

/// Dense row-major matrix, contiguous. `Value` is float or double.
template <class Value> struct DenseView {
  std::int64_t n_rows = 0;
  std::int64_t n_cols = 0;
  const Value *values = nullptr; ///< n_rows * n_cols counts, >= 0
};

/// The factors of X ~ maps * spectra, both row-major float64, updated in place.
/// maps: (n_rows, n_components) abundances in counts; spectra: (n_components, n_cols).
struct FactorsView {
  std::int64_t n_components = 0;
  double *maps = nullptr;
  double *spectra = nullptr;
};

struct ConstFactorsView {
  std::int64_t n_components = 0;
  const double *maps = nullptr;
  const double *spectra = nullptr;
};

} // namespace psnmf
