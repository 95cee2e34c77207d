// Vectors whose data start on a cache line, for the buffers the row kernels
// read and write at random: the transposed spectra and the spectra numerators.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace psnmf::detail {

inline constexpr std::size_t kCacheLine = 64;

/// std::allocator, but every block starts on a cache line. With k = 8 a
/// channel's 8 values fill one line exactly; from malloc's 16-byte alignment
/// they straddled two, and an MU iteration took 17.9 ms against 13.5 aligned
/// (65536 x 1024, one thread).
template <class T> struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U> CacheLineAllocator(const CacheLineAllocator<U> &) noexcept {}
  T *allocate(std::size_t n) {
    return static_cast<T *>(::operator new(n * sizeof(T), std::align_val_t{kCacheLine}));
  }
  void deallocate(T *p, std::size_t) noexcept {
    ::operator delete(p, std::align_val_t{kCacheLine});
  }
  template <class U> bool operator==(const CacheLineAllocator<U> &) const noexcept { return true; }
  template <class U> bool operator!=(const CacheLineAllocator<U> &) const noexcept { return false; }
};

using AlignedDoubles = std::vector<double, CacheLineAllocator<double>>;

} // namespace psnmf::detail
