// Machine peaks for the roofline of bench/run.py, compiled at benchmark time.
//
//   peak <threads>   prints  fma_gflops=<x> triad_gbs=<y>
//
// FMA: each thread updates independent accumulators a = a * x + y in a loop the
// compiler vectorises; enough of them to hide the FMA latency. 2 flops per
// update. Triad: a[i] = b[i] + s * c[i] over arrays far larger than the caches,
// 24 bytes per element (STREAM's count: write-allocate traffic not counted).
// Best of several repeats, as STREAM reports.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

// The widest vector the compile flags allow; 12 independent accumulators cover
// 2 FMA pipes x 4+ cycles of latency and fit in the registers of every ISA.
#if defined(__AVX512F__)
constexpr int kBytes = 64;
#elif defined(__AVX__)
constexpr int kBytes = 32;
#else
constexpr int kBytes = 16;
#endif
typedef double Vec __attribute__((vector_size(kBytes)));
constexpr int kLanes = kBytes / 8;
constexpr int kAccumulators = 12;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double fma_gflops(int threads, double x, double y) {
  const long iterations = 10000000;
  double best = 0, sink = 0;
  for (int repeat = 0; repeat < 5; ++repeat) {
    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      Vec acc[kAccumulators];
      const Vec xv = Vec{} + x, yv = Vec{} + y;
      for (int a = 0; a < kAccumulators; ++a)
        acc[a] = Vec{} + (a * 1e-3 + omp_get_thread_num());
      for (long it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
        for (int a = 0; a < kAccumulators; ++a)
          acc[a] = acc[a] * xv + yv;
      }
      for (int a = 0; a < kAccumulators; ++a)
        for (int lane = 0; lane < kLanes; ++lane)
          sink += acc[a][lane];
    }
    const double flops = 2.0 * kLanes * kAccumulators * iterations * threads;
    const double rate = flops / seconds_since(start) / 1e9;
    best = rate > best ? rate : best;
  }
  if (sink == 42.0)
    std::printf("#\n"); // keeps the accumulators alive
  return best;
}

double triad_gbs(int threads) {
  const long n = 1L << 24; // 128 MiB per array
  std::vector<double> a(n), b(n), c(n);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (long i = 0; i < n; ++i) {
    a[i] = 0.0;
    b[i] = 1.0;
    c[i] = 2.0;
  }
  const double s = 3.0;
  double best = 0;
  for (int repeat = 0; repeat < 8; ++repeat) {
    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long i = 0; i < n; ++i)
      a[i] = b[i] + s * c[i];
    const double rate = 24.0 * n / seconds_since(start) / 1e9;
    best = rate > best ? rate : best;
  }
  if (a[n / 2] != 7.0)
    std::printf("# triad check failed\n");
  return best;
}

} // namespace

int main(int argc, char **argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  volatile double x = 0.999999, y = 1e-6; // unknown at compile time
  std::printf("fma_gflops=%.3f triad_gbs=%.3f\n", fma_gflops(threads, x, y), triad_gbs(threads));
  return 0;
}
