// AVX-512 fill of the dense -> CSR conversion for 1- and 2-byte counts, chosen
// at run time (cpu_features.hpp) over the AVX2 one.
//
// The AVX2 fill permutes every run of 8 values through a lookup table whether
// or not it holds a nonzero: at 1 or 2 bytes per value that is about one
// instruction per input byte, and the fill of uint8 counts ran at a third of
// memory speed. Here each run of 32 values, widened to 16-bit lanes, is tested
// in one instruction; an all-zero run is skipped; otherwise AVX-512 VBMI2
// compresses its nonzeros and their column numbers to the front of a register
// (vpcompressw), and the first 16 of each are widened to 32 bits and stored
// (a second 16 only when the run has more). Lanes past the nonzeros are
// overwritten by the next store, so a run is stored this way only while 32
// entries of slack remain before the end of the calling thread's positions;
// otherwise its nonzeros are written one at a time. uint8 and uint16 convert to
// float and double exactly, so the CSR is bitwise that of the other variants.
//
// Only compiled with GCC/Clang on x86; only run when the CPU has AVX-512 F, BW
// and VBMI2.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "convert_avx2.hpp"

#define PSNMF_AVX512_FILL                                                                          \
  __attribute__((target("avx2,popcnt,avx512f,avx512bw,avx512vl,avx512vbmi2"))) inline

namespace psnmf::detail::avx512 {

/// True for the input types this fill handles.
template <class In>
inline constexpr bool kFills =
    std::is_same_v<In, std::uint8_t> || std::is_same_v<In, std::uint16_t>;

/// Values per run: one register of uint8, two of uint16.
inline constexpr std::int64_t kRun = 64;

/// 16 values (16-bit lanes of a 256-bit half) stored as Value from `at`.
template <class Value> PSNMF_AVX512_FILL void store_values16(__m256i half, Value *at) {
  const __m512i ints = _mm512_cvtepu16_epi32(half);
  if constexpr (std::is_same_v<Value, float>) {
    _mm512_storeu_ps(at, _mm512_cvtepi32_ps(ints));
  } else {
    _mm512_storeu_pd(at, _mm512_cvtepi32_pd(_mm512_castsi512_si256(ints)));
    _mm512_storeu_pd(at + 8, _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(ints, 1)));
  }
}

/// Column numbers (16-bit lanes of a 256-bit half, relative to `first`) stored as int32 from `at`.
PSNMF_AVX512_FILL void store_indices16(__m256i half, __m512i first, std::int32_t *at) {
  _mm512_storeu_si512(at, _mm512_add_epi32(_mm512_cvtepu16_epi32(half), first));
}

/// 16 bytes (values or column numbers) from byte 16 * q of v, q < 4.
PSNMF_AVX512_FILL __m128i quarter(__m512i v, int q) {
  switch (q) {
  case 0:
    return _mm512_castsi512_si128(v);
  case 1:
    return _mm512_extracti32x4_epi32(v, 1);
  case 2:
    return _mm512_extracti32x4_epi32(v, 2);
  default:
    return _mm512_extracti32x4_epi32(v, 3);
  }
}

/// The nonzeros among 64 uint8 values (mask: bit g set when p[g] != 0), from
/// position p: values and column numbers fit bytes, so one vpcompressb each.
template <class Value>
PSNMF_AVX512_FILL std::int64_t pack64(__m512i bytes, __mmask64 mask, std::int64_t col0,
                                      std::int64_t p, std::int32_t *indices, Value *values) {
  const __m512i lane = _mm512_set_epi8(
      63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41,
      40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18,
      17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i packed = _mm512_maskz_compress_epi8(mask, bytes);
  const __m512i columns = _mm512_maskz_compress_epi8(mask, lane);
  const __m512i first = _mm512_set1_epi32(static_cast<int>(col0));
  const int n = static_cast<int>(_mm_popcnt_u64(mask));
  for (int q = 0; 16 * q < n; ++q) {
    _mm512_storeu_si512(indices + p + 16 * q,
                        _mm512_add_epi32(_mm512_cvtepu8_epi32(quarter(columns, q)), first));
    const __m512i ints = _mm512_cvtepu8_epi32(quarter(packed, q));
    if constexpr (std::is_same_v<Value, float>) {
      _mm512_storeu_ps(values + p + 16 * q, _mm512_cvtepi32_ps(ints));
    } else {
      _mm512_storeu_pd(values + p + 16 * q, _mm512_cvtepi32_pd(_mm512_castsi512_si256(ints)));
      _mm512_storeu_pd(values + p + 16 * q + 8,
                       _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(ints, 1)));
    }
  }
  return p + n;
}

/// The nonzeros among 32 values as 16-bit lanes (mask: bit g set when lane g
/// != 0), from position p.
template <class Value>
PSNMF_AVX512_FILL std::int64_t pack32(__m512i words, __mmask32 mask, std::int64_t col0,
                                      std::int64_t p, std::int32_t *indices, Value *values) {
  const __m512i lane = _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
                                        16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i packed = _mm512_maskz_compress_epi16(mask, words);
  const __m512i columns = _mm512_maskz_compress_epi16(mask, lane);
  const __m512i first = _mm512_set1_epi32(static_cast<int>(col0));
  store_indices16(_mm512_castsi512_si256(columns), first, indices + p);
  store_values16(_mm512_castsi512_si256(packed), values + p);
  const int n = _mm_popcnt_u32(mask);
  if (n > 16) {
    store_indices16(_mm512_extracti64x4_epi64(columns, 1), first, indices + p + 16);
    store_values16(_mm512_extracti64x4_epi64(packed, 1), values + p + 16);
  }
  return p + n;
}

/// Left-pack the nonzeros of one contiguous row of n_cols values, whose first
/// value is column col0, from position p; vector stores only while p + kRun <=
/// limit (nothing at or past limit is written), else one nonzero at a time.
/// Returns the position after the row's last nonzero.
template <class In, class Value>
PSNMF_AVX512_FILL std::int64_t fill_row(const In *row, std::int64_t n_cols, std::int64_t col0,
                                        std::int64_t p, std::int64_t limit, std::int32_t *indices,
                                        Value *values) {
  static_assert(kFills<In>);
  std::int64_t j = 0;
  for (; j + kRun <= n_cols; j += kRun) {
    const In *run = row + j;
    if constexpr (std::is_same_v<In, std::uint8_t>) {
      const __m512i bytes = _mm512_loadu_si512(run);
      const __mmask64 mask = _mm512_test_epi8_mask(bytes, bytes);
      if (!mask)
        continue;
      if (p + kRun > limit) {
        p = avx2::fill_bits(run, std::uint32_t(mask), col0 + j, p, indices, values);
        p = avx2::fill_bits(run + 32, std::uint32_t(mask >> 32), col0 + j + 32, p, indices, values);
        continue;
      }
      p = pack64(bytes, mask, col0 + j, p, indices, values);
    } else {
      for (int h = 0; h < 2; ++h) {
        const __m512i words = _mm512_loadu_si512(run + 32 * h);
        const __mmask32 mask = _mm512_test_epi16_mask(words, words);
        if (!mask)
          continue;
        if (p + kRun > limit)
          p = avx2::fill_bits(run + 32 * h, mask, col0 + j + 32 * h, p, indices, values);
        else
          p = pack32(words, mask, col0 + j + 32 * h, p, indices, values);
      }
    }
  }
  return avx2::fill_remaining(row, j, n_cols, col0, p, indices, values);
}

/// Row-major fill of rows [r0, r1), which own positions indptr[r0] to indptr[r1].
template <class In, class Value>
__attribute__((target("avx2,popcnt,avx512f,avx512bw,avx512vl,avx512vbmi2"))) void
fill_rows(const In *dense, std::int64_t r0, std::int64_t r1, std::int64_t n_cols,
          const std::int64_t *indptr, std::int32_t *indices, Value *values) {
  std::int64_t p = indptr[r0];
  const std::int64_t limit = indptr[r1];
  for (std::int64_t i = r0; i < r1; ++i)
    p = fill_row(dense + i * n_cols, n_cols, 0, p, limit, indices, values);
}

/// fill_row as a function object, for avx2::fill_columns.
struct FillRow {
  template <class In, class Value>
  PSNMF_AVX512_FILL std::int64_t operator()(const In *row, std::int64_t n_cols, std::int64_t p,
                                            std::int64_t limit, std::int32_t *indices,
                                            Value *values) const {
    return fill_row(row, n_cols, 0, p, limit, indices, values);
  }
};

} // namespace psnmf::detail::avx512
