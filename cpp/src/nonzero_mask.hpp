// Bit masks of the nonzeros of 64 consecutive values, and the value-range
// accumulators of the dense -> CSR conversion.
//
// Both passes of the conversion read every input value once, so they run at
// memory speed only when each value costs well under a cycle. A compiler does
// not turn "bit g of the mask = (p[g] != 0)" into vector code, so x86-64 (where
// SSE2 is always present) gets SSE2 compare + movemask; other architectures get
// the portable loop (also with -DPSNMF_NO_SIMD, to test it). Zero tests follow C++ `!= 0`: -0.0 is
// zero, NaN is not (the scan rejects NaN before any fill).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#if (defined(__SSE2__) || defined(_M_X64)) && !defined(PSNMF_NO_SIMD)
#include <emmintrin.h>
#define PSNMF_SSE2 1
#endif

namespace psnmf::detail {

/// Values per nonzero mask.
inline constexpr int kMaskWidth = 64;

/// Portable reference: bit g set when p[g] != 0, g < 64.
template <class In> std::uint64_t nonzero_mask_scalar(const In *p) {
  std::uint64_t mask = 0;
  for (int g = 0; g < kMaskWidth; ++g)
    mask |= std::uint64_t(p[g] != In(0)) << g;
  return mask;
}

#ifdef PSNMF_SSE2
inline __m128i load16(const void *p) {
  return _mm_loadu_si128(static_cast<const __m128i *>(p));
}

// 16 bytes (0xFF where a lane compared equal to zero) -> 16 bits set where nonzero.
inline std::uint64_t nonzero_bits16(__m128i zero_lanes) {
  return std::uint64_t(~_mm_movemask_epi8(zero_lanes) & 0xFFFF);
}

inline std::uint64_t nonzero_mask(const std::uint8_t *p) {
  const __m128i zero = _mm_setzero_si128();
  std::uint64_t mask = 0;
  for (int k = 0; k < 4; ++k)
    mask |= nonzero_bits16(_mm_cmpeq_epi8(load16(p + 16 * k), zero)) << (16 * k);
  return mask;
}

inline std::uint64_t nonzero_mask(const std::uint16_t *p) {
  const __m128i zero = _mm_setzero_si128();
  std::uint64_t mask = 0;
  for (int k = 0; k < 4; ++k) {
    const __m128i a = _mm_cmpeq_epi16(load16(p + 16 * k), zero);
    const __m128i b = _mm_cmpeq_epi16(load16(p + 16 * k + 8), zero);
    mask |= nonzero_bits16(_mm_packs_epi16(a, b)) << (16 * k); // -1/0 saturate to -1/0
  }
  return mask;
}

// 32-bit lanes: 4 compares packed to 16 bytes, lane order preserved.
inline std::uint64_t nonzero_mask_32(const void *data) {
  const auto *p = static_cast<const char *>(data);
  const __m128i zero = _mm_setzero_si128();
  std::uint64_t mask = 0;
  for (int k = 0; k < 4; ++k) {
    const char *q = p + 64 * k;
    const __m128i a = _mm_cmpeq_epi32(load16(q), zero);
    const __m128i b = _mm_cmpeq_epi32(load16(q + 16), zero);
    const __m128i c = _mm_cmpeq_epi32(load16(q + 32), zero);
    const __m128i d = _mm_cmpeq_epi32(load16(q + 48), zero);
    const __m128i ab = _mm_packs_epi32(a, b), cd = _mm_packs_epi32(c, d);
    mask |= nonzero_bits16(_mm_packs_epi16(ab, cd)) << (16 * k);
  }
  return mask;
}
inline std::uint64_t nonzero_mask(const std::uint32_t *p) {
  return nonzero_mask_32(p);
}
inline std::uint64_t nonzero_mask(const std::int32_t *p) {
  return nonzero_mask_32(p);
}

// 64-bit integers: a lane is zero when both of its 32-bit halves are.
inline std::uint64_t nonzero_mask(const std::int64_t *p) {
  const __m128i zero = _mm_setzero_si128();
  std::uint64_t mask = 0;
  for (int k = 0; k < 32; ++k) {
    const __m128i half = _mm_cmpeq_epi32(load16(p + 2 * k), zero);
    const __m128i both = _mm_and_si128(half, _mm_shuffle_epi32(half, 0xB1));
    mask |= std::uint64_t(~_mm_movemask_pd(_mm_castsi128_pd(both)) & 3) << (2 * k);
  }
  return mask;
}

inline std::uint64_t nonzero_mask(const float *p) {
  const __m128 zero = _mm_setzero_ps();
  std::uint64_t mask = 0;
  for (int k = 0; k < 16; ++k)
    mask |= std::uint64_t(_mm_movemask_ps(_mm_cmpneq_ps(_mm_loadu_ps(p + 4 * k), zero))) << (4 * k);
  return mask;
}

inline std::uint64_t nonzero_mask(const double *p) {
  const __m128d zero = _mm_setzero_pd();
  std::uint64_t mask = 0;
  for (int k = 0; k < 32; ++k)
    mask |= std::uint64_t(_mm_movemask_pd(_mm_cmpneq_pd(_mm_loadu_pd(p + 2 * k), zero))) << (2 * k);
  return mask;
}
#else
template <class In> std::uint64_t nonzero_mask(const In *p) {
  return nonzero_mask_scalar(p);
}
#endif

/// Index of the lowest set bit of a nonzero mask.
inline int lowest_bit(std::uint64_t mask) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(mask);
#else
  int bit = 0;
  while (!(mask & 1)) {
    mask >>= 1;
    ++bit;
  }
  return bit;
#endif
}

/// What the scan must know about the values: whether all are valid counts
/// (finite, >= 0) and how large they get. uint8/uint16 need neither (always
/// valid, always exact in float32).
template <class In, class Enable = void> struct ValueRange {
  static constexpr bool kTracked = false;
  void add(const In *, std::int64_t) {}
  void merge(const ValueRange &) {}
  bool valid() const { return true; }
};

/// Integers of 32 and 64 bits: the bitwise OR of all values, one instruction per
/// vector. Its sign bit is set when any value is negative, and it bounds the
/// maximum from above; the exact maximum is searched only when the bound is
/// large enough to matter (rare_maximum).
template <class In>
struct ValueRange<In, std::enable_if_t<std::is_integral_v<In> && (sizeof(In) >= 4)>> {
  static constexpr bool kTracked = true;
  using Bits = std::make_unsigned_t<In>;
  Bits bits = 0;

  void add(const In *p, std::int64_t n) {
    Bits acc = 0;
    for (std::int64_t j = 0; j < n; ++j)
      acc |= static_cast<Bits>(p[j]);
    bits |= acc;
  }
  void merge(const ValueRange &other) { bits |= other.bits; }
  bool valid() const { return !std::is_signed_v<In> || !(bits >> (8 * sizeof(In) - 1)); }
  /// Upper bound of the maximum (exact when it is 0).
  Bits bound() const { return bits; }
};

/// Floats: all values in [0, max finite] (false for NaN), and their maximum.
template <class In> struct ValueRange<In, std::enable_if_t<std::is_floating_point_v<In>>> {
  static constexpr bool kTracked = true;
  In high = In(0);
  bool all_valid = true;

  void add(const In *p, std::int64_t n) {
    std::int64_t j = 0;
#ifdef PSNMF_SSE2
    if constexpr (std::is_same_v<In, float>) {
      const __m128 zero = _mm_setzero_ps(), limit = _mm_set1_ps(std::numeric_limits<float>::max());
      __m128 ok = _mm_cmpeq_ps(zero, zero), top = zero;
      for (; j + 4 <= n; j += 4) {
        const __m128 v = _mm_loadu_ps(p + j);
        ok = _mm_and_ps(ok, _mm_and_ps(_mm_cmpge_ps(v, zero), _mm_cmple_ps(v, limit)));
        top = _mm_max_ps(top, v);
      }
      alignas(16) float lanes[4];
      _mm_store_ps(lanes, top);
      for (float v : lanes)
        high = std::max(high, v);
      all_valid = all_valid && _mm_movemask_ps(ok) == 0xF;
    } else {
      const __m128d zero = _mm_setzero_pd(),
                    limit = _mm_set1_pd(std::numeric_limits<double>::max());
      __m128d ok = _mm_cmpeq_pd(zero, zero), top = zero;
      for (; j + 2 <= n; j += 2) {
        const __m128d v = _mm_loadu_pd(p + j);
        ok = _mm_and_pd(ok, _mm_and_pd(_mm_cmpge_pd(v, zero), _mm_cmple_pd(v, limit)));
        top = _mm_max_pd(top, v);
      }
      alignas(16) double lanes[2];
      _mm_store_pd(lanes, top);
      for (double v : lanes)
        high = std::max(high, v);
      all_valid = all_valid && _mm_movemask_pd(ok) == 0x3;
    }
#endif
    for (; j < n; ++j) {
      const In v = p[j];
      all_valid = all_valid && v >= In(0) && v <= std::numeric_limits<In>::max();
      high = std::max(high, v);
    }
  }
  void merge(const ValueRange &other) {
    all_valid = all_valid && other.all_valid;
    high = std::max(high, other.high);
  }
  bool valid() const { return all_valid; }
};

// Integer counts above this need float64 values; the exact maximum is searched
// only when the OR bound of the values reaches it.
inline constexpr std::uint64_t kExactMaximumFrom = std::uint64_t(1) << 24;

// Exact maximum of n contiguous values (a dense matrix in either order, or CSR data), for
// integer input whose OR bound does not settle the value type.
template <class In> In exact_maximum(const In *dense, std::int64_t n, int threads) {
  In high = In(0);
#pragma omp parallel for schedule(static) num_threads(threads) reduction(max : high)
  for (std::int64_t i = 0; i < n; ++i)
    high = std::max(high, dense[i]);
  return high;
}

// The largest value as a double. A 64-bit integer above 2**53 may round down to
// 2**53: report it as above the limit, where it is.
template <class In> double maximum_as_double(In high) {
  constexpr double exact = 9007199254740992.0; // 2**53
  const double d = static_cast<double>(high);
  if constexpr (std::is_integral_v<In> && sizeof(In) == 8)
    if (high > static_cast<In>(std::int64_t(1) << 53))
      return std::max(d, std::nextafter(exact, 2 * exact));
  return d;
}

} // namespace psnmf::detail
