// AVX2 kernels of the dense -> CSR conversion, chosen at run time (cpu_features.hpp).
//
// The portable fill loops over the set bits of each 64-value nonzero mask; the
// loop exit mispredicts once per mask, which made the fill cost several ns per
// nonzero. Here the fill is branch-free: each run of 8 values gives an 8-bit
// nonzero mask that indexes a table of lane permutations ("left-pack"); the 8
// column indices and the 8 converted values are permuted so that the nonzeros
// come first, all 8 lanes are stored, and the write position advances by the
// popcount. Lanes past the nonzeros are overwritten by the next store, so a
// block is stored this way only while 32 entries of slack remain before the
// end of the positions the calling thread owns (its chunk of rows); otherwise
// its nonzeros are written one at a time. Blocks whose values the vector
// conversion cannot take exactly (uint32 >= 2**31, int64 outside [0, 2**31))
// go the same way. Values are converted with the rounding of static_cast, so
// both variants give bitwise identical CSR.
//
// Column-major input is transposed block by block (512 bytes of rows of every
// column, at most 4 MiB in all) into a per-thread row-major scratch with
// in-register tile transposes, and filled from there like row-major input. The
// column-major scan counts zeros vertically over long column segments.
//
// Only compiled with GCC/Clang on x86; only run when the CPU has AVX2.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "nonzero_mask.hpp"

#define PSNMF_AVX2 __attribute__((target("avx2,popcnt"))) inline

namespace psnmf::detail::avx2 {

/// Values per block of the row kernels: one 32-bit nonzero mask.
inline constexpr std::int64_t kBlock = 32;

/// Lane permutations that move the set lanes of a mask to the front, in order.
/// pack8: lanes of 32 bits by an 8-bit mask; pack4: lanes of 64 bits (as pairs
/// of 32-bit lanes) by a 4-bit mask. Unused lanes point at lane 0.
struct PackTables {
  alignas(32) std::int32_t pack8[256][8];
  alignas(32) std::int32_t pack4[16][8];
};

constexpr PackTables make_pack_tables() {
  PackTables t{};
  for (int m = 0; m < 256; ++m) {
    int k = 0;
    for (int b = 0; b < 8; ++b)
      if (m >> b & 1)
        t.pack8[m][k++] = b;
  }
  for (int m = 0; m < 16; ++m) {
    int k = 0;
    for (int b = 0; b < 4; ++b)
      if (m >> b & 1) {
        t.pack4[m][2 * k] = 2 * b;
        t.pack4[m][2 * k + 1] = 2 * b + 1;
        ++k;
      }
  }
  return t;
}

inline constexpr PackTables kPack = make_pack_tables();

PSNMF_AVX2 __m256i load256(const void *p) {
  return _mm256_loadu_si256(static_cast<const __m256i *>(p));
}

PSNMF_AVX2 __m256 join(__m128 low, __m128 high) {
  return _mm256_insertf128_ps(_mm256_castps128_ps256(low), high, 1);
}

// Per input type: mask32 (bit g set when p[g] != 0, g < 32), exact32 (the
// vector conversion equals static_cast for all 32 values; otherwise the block
// is filled by the scalar loop), floats8 and doubles8 (8 values converted).

PSNMF_AVX2 std::uint32_t mask32(const std::uint8_t *p) {
  const __m256i zero = _mm256_cmpeq_epi8(load256(p), _mm256_setzero_si256());
  return ~std::uint32_t(_mm256_movemask_epi8(zero));
}
PSNMF_AVX2 __m256i ints8(const std::uint8_t *p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p)));
}

PSNMF_AVX2 std::uint32_t mask32(const std::uint16_t *p) {
  const __m256i a = _mm256_cmpeq_epi16(load256(p), _mm256_setzero_si256());
  const __m256i b = _mm256_cmpeq_epi16(load256(p + 16), _mm256_setzero_si256());
  // packs works within 128-bit lanes: reorder the four 64-bit quarters.
  const __m256i bytes = _mm256_permute4x64_epi64(_mm256_packs_epi16(a, b), 0xD8);
  return ~std::uint32_t(_mm256_movemask_epi8(bytes));
}
PSNMF_AVX2 __m256i ints8(const std::uint16_t *p) {
  return _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
}

PSNMF_AVX2 std::uint32_t mask32_of_32bit(const void *data) {
  const auto *p = static_cast<const std::int32_t *>(data);
  std::uint32_t zero = 0;
  for (int k = 0; k < 4; ++k) {
    const __m256i z = _mm256_cmpeq_epi32(load256(p + 8 * k), _mm256_setzero_si256());
    zero |= std::uint32_t(_mm256_movemask_ps(_mm256_castsi256_ps(z))) << (8 * k);
  }
  return ~zero;
}
PSNMF_AVX2 std::uint32_t mask32(const std::int32_t *p) {
  return mask32_of_32bit(p);
}
PSNMF_AVX2 std::uint32_t mask32(const std::uint32_t *p) {
  return mask32_of_32bit(p);
}
PSNMF_AVX2 __m256i ints8(const std::int32_t *p) {
  return load256(p);
}
PSNMF_AVX2 __m256i ints8(const std::uint32_t *p) {
  return load256(p);
}

PSNMF_AVX2 std::uint32_t mask32(const std::int64_t *p) {
  std::uint32_t zero = 0;
  for (int k = 0; k < 8; ++k) {
    const __m256i z = _mm256_cmpeq_epi64(load256(p + 4 * k), _mm256_setzero_si256());
    zero |= std::uint32_t(_mm256_movemask_pd(_mm256_castsi256_pd(z))) << (4 * k);
  }
  return ~zero;
}
// The low halves of 8 int64 (exact when all are in [0, 2**31), see exact32).
PSNMF_AVX2 __m256i ints8(const std::int64_t *p) {
  const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
  const __m256i low = _mm256_permutevar8x32_epi32(load256(p), even);
  const __m256i high = _mm256_permutevar8x32_epi32(load256(p + 4), even);
  return _mm256_blend_epi32(low, high, 0xF0);
}

PSNMF_AVX2 std::uint32_t mask32(const float *p) {
  std::uint32_t mask = 0;
  for (int k = 0; k < 4; ++k) {
    const __m256 nz = _mm256_cmp_ps(_mm256_loadu_ps(p + 8 * k), _mm256_setzero_ps(), _CMP_NEQ_UQ);
    mask |= std::uint32_t(_mm256_movemask_ps(nz)) << (8 * k);
  }
  return mask;
}

PSNMF_AVX2 std::uint32_t mask32(const double *p) {
  std::uint32_t mask = 0;
  for (int k = 0; k < 8; ++k) {
    const __m256d nz = _mm256_cmp_pd(_mm256_loadu_pd(p + 4 * k), _mm256_setzero_pd(), _CMP_NEQ_UQ);
    mask |= std::uint32_t(_mm256_movemask_pd(nz)) << (4 * k);
  }
  return mask;
}

template <class In> PSNMF_AVX2 bool exact32(const In *p) {
  if constexpr (std::is_same_v<In, std::uint32_t>) {
    // Above 2**31 the signed conversion would be wrong.
    __m256i any = load256(p);
    for (int k = 1; k < 4; ++k)
      any = _mm256_or_si256(any, load256(p + 8 * k));
    return _mm256_movemask_ps(_mm256_castsi256_ps(any)) == 0;
  } else if constexpr (std::is_same_v<In, std::int64_t>) {
    __m256i any = load256(p);
    for (int k = 1; k < 8; ++k)
      any = _mm256_or_si256(any, load256(p + 4 * k));
    return _mm256_testz_si256(any, _mm256_set1_epi64x(std::int64_t(0xFFFFFFFF80000000ull)));
  } else {
    (void)p;
    return true;
  }
}

template <class In> PSNMF_AVX2 __m256 floats8(const In *p) {
  if constexpr (std::is_same_v<In, float>)
    return _mm256_loadu_ps(p);
  else if constexpr (std::is_same_v<In, double>)
    return join(_mm256_cvtpd_ps(_mm256_loadu_pd(p)), _mm256_cvtpd_ps(_mm256_loadu_pd(p + 4)));
  else
    return _mm256_cvtepi32_ps(ints8(p));
}

template <class In> PSNMF_AVX2 void doubles8(const In *p, __m256d &low, __m256d &high) {
  if constexpr (std::is_same_v<In, double>) {
    low = _mm256_loadu_pd(p);
    high = _mm256_loadu_pd(p + 4);
  } else if constexpr (std::is_same_v<In, float>) {
    low = _mm256_cvtps_pd(_mm_loadu_ps(p));
    high = _mm256_cvtps_pd(_mm_loadu_ps(p + 4));
  } else {
    const __m256i v = ints8(p);
    low = _mm256_cvtepi32_pd(_mm256_castsi256_si128(v));
    high = _mm256_cvtepi32_pd(_mm256_extracti128_si256(v, 1));
  }
}

/// The nonzeros among 32 values by their mask, one at a time (the portable
/// way), for blocks whose values the vector conversion does not cover.
template <class In, class Value>
PSNMF_AVX2 std::int64_t fill_bits(const In *block, std::uint32_t mask, std::int64_t col0,
                                  std::int64_t p, std::int32_t *indices, Value *values) {
  for (; mask; mask &= mask - 1) {
    const int g = __builtin_ctz(mask);
    indices[p] = static_cast<std::int32_t>(col0 + g);
    values[p] = static_cast<Value>(block[g]);
    ++p;
  }
  return p;
}

/// The nonzeros of row[j..n_cols) (column col0 + j onwards) one at a time from
/// position p, after the vector blocks; returns the position after the last.
template <class In, class Value>
PSNMF_AVX2 std::int64_t fill_remaining(const In *row, std::int64_t j, std::int64_t n_cols,
                                       std::int64_t col0, std::int64_t p, std::int32_t *indices,
                                       Value *values) {
  for (; j < n_cols; ++j) {
    const In v = row[j];
    if (v != In(0)) {
      indices[p] = static_cast<std::int32_t>(col0 + j);
      values[p] = static_cast<Value>(v);
      ++p;
    }
  }
  return p;
}

/// Left-pack the nonzeros of one contiguous row of n_cols values, whose first
/// value is column col0, from position p; vector stores only while p + kBlock
/// <= limit (nothing at or past limit is written), else one nonzero at a time.
/// Returns the position after the row's last nonzero.
template <class In, class Value>
PSNMF_AVX2 std::int64_t fill_row(const In *row, std::int64_t n_cols, std::int64_t col0,
                                 std::int64_t p, std::int64_t limit, std::int32_t *indices,
                                 Value *values) {
  std::int64_t j = 0;
  for (; j + kBlock <= n_cols; j += kBlock) {
    const In *block = row + j;
    const std::uint32_t mask = mask32(block);
    if (!mask)
      continue;
    if (p + kBlock > limit || !exact32(block)) {
      p = fill_bits(block, mask, col0 + j, p, indices, values);
      continue;
    }
    __m256i first = _mm256_set1_epi32(int(col0 + j)); // column of the group's lane 0
    for (int g = 0; g < 4; ++g) {
      const unsigned m = (mask >> (8 * g)) & 0xFF;
      const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i *>(kPack.pack8[m]));
      _mm256_storeu_si256(reinterpret_cast<__m256i *>(indices + p), _mm256_add_epi32(perm, first));
      first = _mm256_add_epi32(first, _mm256_set1_epi32(8));
      if constexpr (std::is_same_v<Value, float>) {
        _mm256_storeu_ps(values + p, _mm256_permutevar8x32_ps(floats8(block + 8 * g), perm));
        p += _mm_popcnt_u32(m);
      } else {
        __m256d low, high;
        doubles8(block + 8 * g, low, high);
        const unsigned m_low = m & 0xF, m_high = m >> 4;
        const __m256i perm_low =
            _mm256_load_si256(reinterpret_cast<const __m256i *>(kPack.pack4[m_low]));
        const __m256i perm_high =
            _mm256_load_si256(reinterpret_cast<const __m256i *>(kPack.pack4[m_high]));
        _mm256_storeu_ps(reinterpret_cast<float *>(values + p),
                         _mm256_permutevar8x32_ps(_mm256_castpd_ps(low), perm_low));
        p += _mm_popcnt_u32(m_low);
        _mm256_storeu_ps(reinterpret_cast<float *>(values + p),
                         _mm256_permutevar8x32_ps(_mm256_castpd_ps(high), perm_high));
        p += _mm_popcnt_u32(m_high);
      }
    }
  }
  return fill_remaining(row, j, n_cols, col0, p, indices, values);
}

/// ValueRange of 32 values at a time, in vector registers; merge() adds it to
/// the portable ValueRange of the same type.
template <class In, class Enable = void> struct VectorRange {
  PSNMF_AVX2 void add32(const In *) {}
  PSNMF_AVX2 void merge_into(ValueRange<In> &) const {}
};

template <class In>
struct VectorRange<In, std::enable_if_t<std::is_integral_v<In> && (sizeof(In) >= 4)>> {
  __m256i bits;
  PSNMF_AVX2 VectorRange() : bits(_mm256_setzero_si256()) {}
  PSNMF_AVX2 void add32(const In *p) {
    constexpr int n = 32 * sizeof(In) / 32;
    for (int k = 0; k < n; ++k)
      bits = _mm256_or_si256(bits, load256(reinterpret_cast<const char *>(p) + 32 * k));
  }
  PSNMF_AVX2 void merge_into(ValueRange<In> &range) const {
    alignas(32) typename ValueRange<In>::Bits lanes[32 / sizeof(In)];
    _mm256_store_si256(reinterpret_cast<__m256i *>(lanes), bits);
    for (auto lane : lanes)
      range.bits |= lane;
  }
};

// Floats: all values in [0, max finite] (false for NaN), and their maximum;
// two accumulators each, so that the max latency does not bound the loop.
template <> struct VectorRange<float> {
  __m256 ok[2], top[2];
  PSNMF_AVX2 VectorRange() {
    ok[0] = ok[1] = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    top[0] = top[1] = _mm256_setzero_ps();
  }
  PSNMF_AVX2 void add32(const float *p) {
    const __m256 zero = _mm256_setzero_ps(), limit = _mm256_set1_ps(3.40282347e38f);
    for (int k = 0; k < 4; ++k) {
      const __m256 v = _mm256_loadu_ps(p + 8 * k);
      const __m256 in =
          _mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_GE_OQ), _mm256_cmp_ps(v, limit, _CMP_LE_OQ));
      ok[k & 1] = _mm256_and_ps(ok[k & 1], in);
      top[k & 1] = _mm256_max_ps(top[k & 1], v);
    }
  }
  PSNMF_AVX2 void merge_into(ValueRange<float> &range) const {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, _mm256_max_ps(top[0], top[1]));
    for (float v : lanes)
      range.high = range.high < v ? v : range.high;
    range.all_valid = range.all_valid && _mm256_movemask_ps(_mm256_and_ps(ok[0], ok[1])) == 0xFF;
  }
};

template <> struct VectorRange<double> {
  __m256d ok[2], top[2];
  PSNMF_AVX2 VectorRange() {
    ok[0] = ok[1] = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
    top[0] = top[1] = _mm256_setzero_pd();
  }
  PSNMF_AVX2 void add32(const double *p) {
    const __m256d zero = _mm256_setzero_pd(), limit = _mm256_set1_pd(1.7976931348623157e308);
    for (int k = 0; k < 8; ++k) {
      const __m256d v = _mm256_loadu_pd(p + 4 * k);
      const __m256d in =
          _mm256_and_pd(_mm256_cmp_pd(v, zero, _CMP_GE_OQ), _mm256_cmp_pd(v, limit, _CMP_LE_OQ));
      ok[k & 1] = _mm256_and_pd(ok[k & 1], in);
      top[k & 1] = _mm256_max_pd(top[k & 1], v);
    }
  }
  PSNMF_AVX2 void merge_into(ValueRange<double> &range) const {
    alignas(32) double lanes[4];
    _mm256_store_pd(lanes, _mm256_max_pd(top[0], top[1]));
    for (double v : lanes)
      range.high = range.high < v ? v : range.high;
    range.all_valid = range.all_valid && _mm256_movemask_pd(_mm256_and_pd(ok[0], ok[1])) == 0xF;
  }
};

/// Nonzeros of one contiguous row; whole blocks enter `vector`, the rest `tail`.
template <class In>
PSNMF_AVX2 std::int64_t scan_row(const In *row, std::int64_t n_cols, VectorRange<In> &vector,
                                 ValueRange<In> &tail) {
  std::int64_t count = 0, j = 0;
  for (; j + kBlock <= n_cols; j += kBlock) {
    count += _mm_popcnt_u32(mask32(row + j));
    vector.add32(row + j);
  }
  for (std::int64_t g = j; g < n_cols; ++g)
    count += row[g] != In(0);
  tail.add(row + j, n_cols - j);
  return count;
}

/// Row-major scan of rows [r0, r1): nonzeros per row into counts[r0..r1), the
/// values into range.
template <class In>
__attribute__((target("avx2,popcnt"))) void scan_rows(const In *dense, std::int64_t r0,
                                                      std::int64_t r1, std::int64_t n_cols,
                                                      std::int64_t *counts, ValueRange<In> &range) {
  VectorRange<In> vector;
  ValueRange<In> tail;
  for (std::int64_t i = r0; i < r1; ++i)
    counts[i] = scan_row(dense + i * n_cols, n_cols, vector, tail);
  vector.merge_into(range);
  range.merge(tail);
}

/// Row-major fill of rows [r0, r1), which own positions indptr[r0] to indptr[r1].
template <class In, class Value>
__attribute__((target("avx2,popcnt"))) void
fill_rows(const In *dense, std::int64_t r0, std::int64_t r1, std::int64_t n_cols,
          const std::int64_t *indptr, std::int32_t *indices, Value *values) {
  std::int64_t p = indptr[r0];
  const std::int64_t limit = indptr[r1];
  for (std::int64_t i = r0; i < r1; ++i)
    p = fill_row(dense + i * n_cols, n_cols, 0, p, limit, indices, values);
}

// In-register transposes of square tiles: column k of the tile (kTile values at
// src + k * src_stride, rows in order) becomes row k of dst (at dst + k * dst_stride).

/// Rows and columns of the transposed tiles: 16 bytes of 1- and 2-byte values,
/// 32 bytes of 4- and 8-byte ones.
template <class In>
constexpr int kTile = sizeof(In) <= 2 ? 16 / int(sizeof(In)) : 32 / int(sizeof(In));

PSNMF_AVX2 __m128i load128(const void *p) {
  return _mm_loadu_si128(static_cast<const __m128i *>(p));
}
PSNMF_AVX2 void store128(void *p, __m128i v) {
  _mm_storeu_si128(static_cast<__m128i *>(p), v);
}

// a[k]: 8 16-bit values of column k; out[r]: row r (see the stage comments).
PSNMF_AVX2 void transpose8x16bit(const __m128i a[8], __m128i out[8]) {
  __m128i b[8], c[8];
  for (int k = 0; k < 4; ++k) { // rows 0-3 and 4-7 of columns 2k, 2k + 1
    b[2 * k] = _mm_unpacklo_epi16(a[2 * k], a[2 * k + 1]);
    b[2 * k + 1] = _mm_unpackhi_epi16(a[2 * k], a[2 * k + 1]);
  }
  for (int h = 0; h < 2; ++h) // pairs of rows of columns 4h..4h+3
    for (int k = 0; k < 2; ++k) {
      c[4 * h + 2 * k] = _mm_unpacklo_epi32(b[4 * h + k], b[4 * h + k + 2]);
      c[4 * h + 2 * k + 1] = _mm_unpackhi_epi32(b[4 * h + k], b[4 * h + k + 2]);
    }
  for (int r = 0; r < 4; ++r) { // c[r]: rows 2r, 2r + 1 of columns 0-3; c[r + 4] of 4-7
    out[2 * r] = _mm_unpacklo_epi64(c[r], c[r + 4]);
    out[2 * r + 1] = _mm_unpackhi_epi64(c[r], c[r + 4]);
  }
}

PSNMF_AVX2 void transpose_tile(const std::uint16_t *src, std::int64_t src_stride,
                               std::uint16_t *dst, std::int64_t dst_stride) {
  __m128i a[8], out[8];
  for (int k = 0; k < 8; ++k)
    a[k] = load128(src + k * src_stride);
  transpose8x16bit(a, out);
  for (int r = 0; r < 8; ++r)
    store128(dst + r * dst_stride, out[r]);
}

// Bytes: interleaving columns 2k and 2k + 1 gives 16-bit pairs, whose 8 x 8
// transposes (rows 0-7 and 8-15) are the rows.
PSNMF_AVX2 void transpose_tile(const std::uint8_t *src, std::int64_t src_stride, std::uint8_t *dst,
                               std::int64_t dst_stride) {
  __m128i low[8], high[8], out[8];
  for (int k = 0; k < 8; ++k) {
    const __m128i a = load128(src + 2 * k * src_stride);
    const __m128i b = load128(src + (2 * k + 1) * src_stride);
    low[k] = _mm_unpacklo_epi8(a, b);
    high[k] = _mm_unpackhi_epi8(a, b);
  }
  transpose8x16bit(low, out);
  for (int r = 0; r < 8; ++r)
    store128(dst + r * dst_stride, out[r]);
  transpose8x16bit(high, out);
  for (int r = 0; r < 8; ++r)
    store128(dst + (r + 8) * dst_stride, out[r]);
}

PSNMF_AVX2 void transpose_tile_32bit(const float *src, std::int64_t src_stride, float *dst,
                                     std::int64_t dst_stride) {
  __m256 a[8], t[8], u[8];
  for (int k = 0; k < 8; ++k)
    a[k] = _mm256_loadu_ps(src + k * src_stride);
  for (int k = 0; k < 4; ++k) {
    t[2 * k] = _mm256_unpacklo_ps(a[2 * k], a[2 * k + 1]);
    t[2 * k + 1] = _mm256_unpackhi_ps(a[2 * k], a[2 * k + 1]);
  }
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 2; ++k) {
      u[4 * h + 2 * k] = _mm256_shuffle_ps(t[4 * h + k], t[4 * h + k + 2], 0x44);
      u[4 * h + 2 * k + 1] = _mm256_shuffle_ps(t[4 * h + k], t[4 * h + k + 2], 0xEE);
    }
  // u[0..3]: rows 0, 1, 2, 3 (and 4-7 in the high halves) of columns 0-3; u[4..7] of 4-7.
  for (int r = 0; r < 4; ++r) {
    _mm256_storeu_ps(dst + r * dst_stride, _mm256_permute2f128_ps(u[r], u[r + 4], 0x20));
    _mm256_storeu_ps(dst + (r + 4) * dst_stride, _mm256_permute2f128_ps(u[r], u[r + 4], 0x31));
  }
}

template <class In, std::enable_if_t<sizeof(In) == 4, int> = 0>
PSNMF_AVX2 void transpose_tile(const In *src, std::int64_t src_stride, In *dst,
                               std::int64_t dst_stride) {
  transpose_tile_32bit(reinterpret_cast<const float *>(src), src_stride,
                       reinterpret_cast<float *>(dst), dst_stride);
}

template <class In, std::enable_if_t<sizeof(In) == 8, int> = 0>
PSNMF_AVX2 void transpose_tile(const In *src_values, std::int64_t src_stride, In *dst_values,
                               std::int64_t dst_stride) {
  const auto *src = reinterpret_cast<const double *>(src_values);
  auto *dst = reinterpret_cast<double *>(dst_values);
  __m256d a[4];
  for (int k = 0; k < 4; ++k)
    a[k] = _mm256_loadu_pd(src + k * src_stride);
  const __m256d t0 = _mm256_unpacklo_pd(a[0], a[1]), t1 = _mm256_unpackhi_pd(a[0], a[1]);
  const __m256d t2 = _mm256_unpacklo_pd(a[2], a[3]), t3 = _mm256_unpackhi_pd(a[2], a[3]);
  _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(dst + dst_stride, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(dst + 2 * dst_stride, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(dst + 3 * dst_stride, _mm256_permute2f128_pd(t1, t3, 0x31));
}

/// Rows per block of the column-major fill: 512 bytes of each column (8 cache
/// lines: the transposed block, 512 x n_cols bytes, stays in L2; 256 bytes and
/// 2 KiB measured slower), fewer when the scratch would exceed 4 MiB or so that
/// every thread gets a block. A multiple of the tile.
template <class In> std::int64_t block_rows(std::int64_t n_rows, std::int64_t n_cols, int threads) {
  constexpr std::int64_t tile = kTile<In>;
  const std::int64_t fit = (std::int64_t(4) << 20) / (n_cols * std::int64_t(sizeof(In)));
  const std::int64_t share = (n_rows + threads - 1) / threads;
  const std::int64_t rows = std::min({std::int64_t(512 / sizeof(In)), fit, share + tile - 1});
  return std::max(tile, rows / tile * tile);
}

/// Values per row of the scratch: n_cols rounded up to a cache line, plus one,
/// so that the rows a tile writes do not all fall into the same cache set.
template <class In> std::int64_t scratch_stride(std::int64_t n_cols) {
  constexpr std::int64_t line = 64 / sizeof(In);
  return (n_cols + line - 1) / line * line + line;
}

/// Rows [r0, r0 + rows) of a column-major (n_rows, n_cols) matrix into scratch,
/// row-major (rows, stride): whole tiles, then the last rows and columns value
/// by value.
template <class In>
PSNMF_AVX2 void transpose_block(const In *dense, std::int64_t n_rows, std::int64_t n_cols,
                                std::int64_t r0, std::int64_t rows, In *scratch,
                                std::int64_t stride) {
  constexpr int tile = kTile<In>;
  const std::int64_t tiled_rows = rows - rows % tile, tiled_cols = n_cols - n_cols % tile;
  for (std::int64_t j = 0; j < tiled_cols; j += tile) {
    const In *col = dense + j * n_rows + r0;
    const bool next_tile = j + 2 * tile <= n_cols;
    for (std::int64_t i = 0; i < tiled_rows; i += tile) {
      // The same lines of the next tile's columns: with this many streams the
      // hardware prefetcher falls behind.
      if (next_tile && (i * std::int64_t(sizeof(In))) % 64 == 0)
        for (int k = 0; k < tile; ++k)
          _mm_prefetch(reinterpret_cast<const char *>(col + (tile + k) * n_rows + i), _MM_HINT_T0);
      transpose_tile(col + i, n_rows, scratch + i * stride + j, stride);
    }
  }
  for (std::int64_t j = 0; j < n_cols; ++j) {
    const In *col = dense + j * n_rows + r0;
    for (std::int64_t i = j < tiled_cols ? tiled_rows : 0; i < rows; ++i)
      scratch[i * stride + j] = col[i];
  }
}

/// fill_row as a function object: the row fill of fill_columns (convert_avx512.hpp has another).
struct FillRow {
  template <class In, class Value>
  PSNMF_AVX2 std::int64_t operator()(const In *row, std::int64_t n_cols, std::int64_t p,
                                     std::int64_t limit, std::int32_t *indices,
                                     Value *values) const {
    return fill_row(row, n_cols, 0, p, limit, indices, values);
  }
};

/// Column-major fill of rows [r0, r1) by blocks of `block` rows; the rows own
/// positions indptr[r0] to indptr[r1]. scratch holds `block` rows of
/// scratch_stride(n_cols) values; each transposed row is filled by `fill`.
template <class In, class Value, class Fill = FillRow>
__attribute__((target("avx2,popcnt"))) void
fill_columns(const In *dense, std::int64_t n_rows, std::int64_t n_cols, std::int64_t block,
             std::int64_t r0, std::int64_t r1, const std::int64_t *indptr, std::int32_t *indices,
             Value *values, In *scratch, Fill fill = {}) {
  std::int64_t p = indptr[r0];
  const std::int64_t limit = indptr[r1];
  const std::int64_t stride = scratch_stride<In>(n_cols);
  for (std::int64_t b0 = r0; b0 < r1; b0 += block) {
    const std::int64_t rows = std::min(block, r1 - b0);
    transpose_block(dense, n_rows, n_cols, b0, rows, scratch, stride);
    for (std::int64_t i = 0; i < rows; ++i)
      p = fill(scratch + i * stride, n_cols, p, limit, indices, values);
  }
}

/// Zero counters of In's width for the column-major scan: added to vertically,
/// flushed before they can overflow.
template <class In>
using Counter = std::conditional_t<
    sizeof(In) == 1, std::uint8_t,
    std::conditional_t<sizeof(In) == 2, std::uint16_t,
                       std::conditional_t<sizeof(In) == 4, std::uint32_t, std::uint64_t>>>;

/// Rows per block of the column-major scan: up to 256 KiB of each column (the
/// scan needs no scratch, only a counter per row, so its column segments can be
/// much longer than the fill's: long segments read like one stream), fewer so
/// that every thread gets a block; a multiple of kBlock.
template <class In> std::int64_t scan_block_rows(std::int64_t n_rows, int threads) {
  constexpr std::int64_t most = (std::int64_t(256) << 10) / sizeof(In);
  const std::int64_t share = (n_rows + threads - 1) / threads;
  return std::max(kBlock, std::min(most, (share + kBlock - 1) / kBlock * kBlock));
}

/// Column-major scan of rows [r0, r0 + rows): nonzeros per row into counts[0..rows),
/// the values into range. zeros: scratch of `rows` counters.
template <class In>
__attribute__((target("avx2,popcnt"))) void
scan_columns(const In *dense, std::int64_t n_rows, std::int64_t n_cols, std::int64_t r0,
             std::int64_t rows, std::int64_t *counts, Counter<In> *zeros, ValueRange<In> &range) {
  constexpr std::int64_t flush_every = sizeof(In) == 1 ? 255 : 65535;
  VectorRange<In> vector;
  ValueRange<In> tail;
  const std::int64_t whole = rows - rows % kBlock;
  for (std::int64_t i = 0; i < rows; ++i)
    counts[i] = n_cols;
  for (std::int64_t j0 = 0; j0 < n_cols; j0 += flush_every) {
    const std::int64_t j1 = std::min(n_cols, j0 + flush_every);
    for (std::int64_t i = 0; i < rows; ++i)
      zeros[i] = 0;
    for (std::int64_t j = j0; j < j1; ++j) {
      const In *col = dense + j * n_rows + r0;
      for (std::int64_t i = 0; i < rows; ++i) // vectorised by the compiler
        zeros[i] += col[i] == In(0);
      for (std::int64_t i = 0; i < whole; i += kBlock)
        vector.add32(col + i);
      tail.add(col + whole, rows - whole);
    }
    for (std::int64_t i = 0; i < rows; ++i)
      counts[i] -= zeros[i];
  }
  vector.merge_into(range);
  range.merge(tail);
}

} // namespace psnmf::detail::avx2
