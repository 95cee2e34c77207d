// A tiny self-contained check framework for the C++ tests: no downloads, no dependencies.
//
// CHECK(cond), CHECK_EQ(a, b), CHECK_NEAR(a, b, tol), CHECK_THROWS(expr, Exception) record a
// failure with file, line and values instead of aborting; RUN(test) runs a test function and
// reports an unexpected exception; finish() prints a summary and gives the exit code.
#pragma once

#include <cmath>
#include <cstdio>
#include <exception>
#include <iomanip>
#include <sstream>
#include <string>

namespace psnmf_test {

struct Counters {
  int checks = 0;
  int failures = 0;
  const char *current = "";
};

inline Counters &counters() {
  static Counters c;
  return c;
}

inline void fail(const char *file, int line, const std::string &what) {
  ++counters().failures;
  std::fprintf(stderr, "%s:%d: [%s] FAILED: %s\n", file, line, counters().current, what.c_str());
}

template <class T> std::string show(const T &v) {
  std::ostringstream s;
  s << std::setprecision(17) << +v; // unary + prints small integers as numbers
  return s.str();
}

template <class F> void run(const char *name, F &&test) {
  counters().current = name;
  const int before = counters().failures;
  try {
    test();
  } catch (const std::exception &e) {
    fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  } catch (...) {
    fail(__FILE__, __LINE__, "unexpected non-standard exception");
  }
  std::printf("%s %s\n", counters().failures == before ? "[ ok ]" : "[FAIL]", name);
}

inline int finish(const char *suite) {
  const Counters &c = counters();
  std::printf("%s: %d checks, %d failures\n", suite, c.checks, c.failures);
  return c.failures == 0 ? 0 : 1;
}

} // namespace psnmf_test

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    ++psnmf_test::counters().checks;                                                               \
    if (!(cond))                                                                                   \
      psnmf_test::fail(__FILE__, __LINE__, #cond);                                                 \
  } while (0)

#define CHECK_EQ(a, b)                                                                             \
  do {                                                                                             \
    ++psnmf_test::counters().checks;                                                               \
    const auto &check_a_ = (a);                                                                    \
    const auto &check_b_ = (b);                                                                    \
    if (!(check_a_ == check_b_))                                                                   \
      psnmf_test::fail(__FILE__, __LINE__,                                                         \
                       std::string(#a " == " #b ": ") + psnmf_test::show(check_a_) +               \
                           " != " + psnmf_test::show(check_b_));                                   \
  } while (0)

/// |a - b| <= tol (absolute); NaN always fails.
#define CHECK_NEAR(a, b, tol)                                                                      \
  do {                                                                                             \
    ++psnmf_test::counters().checks;                                                               \
    const double check_a_ = (a);                                                                   \
    const double check_b_ = (b);                                                                   \
    if (!(std::abs(check_a_ - check_b_) <= (tol)))                                                 \
      psnmf_test::fail(__FILE__, __LINE__,                                                         \
                       std::string(#a " ~ " #b ": ") + psnmf_test::show(check_a_) + " vs " +       \
                           psnmf_test::show(check_b_) + " (tol " + psnmf_test::show(tol) + ")");   \
  } while (0)

#define CHECK_THROWS(expr, Exception)                                                              \
  do {                                                                                             \
    ++psnmf_test::counters().checks;                                                               \
    bool check_thrown_ = false;                                                                    \
    try {                                                                                          \
      (void)(expr);                                                                                \
    } catch (const Exception &) {                                                                  \
      check_thrown_ = true;                                                                        \
    } catch (const std::exception &e) {                                                            \
      psnmf_test::fail(__FILE__, __LINE__,                                                         \
                       std::string(#expr ": threw the wrong exception: ") + e.what());             \
      check_thrown_ = true;                                                                        \
    }                                                                                              \
    if (!check_thrown_)                                                                            \
      psnmf_test::fail(__FILE__, __LINE__, std::string(#expr ": did not throw " #Exception));      \
  } while (0)

#define RUN(test) psnmf_test::run(#test, test)
