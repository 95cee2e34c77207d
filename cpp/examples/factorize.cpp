// Factorise a counts matrix read from a text file with Poisson NMF.
//
//   factorize <counts.txt> <k> [--max-iter N] [--tol T] [--threads N]
//
// The file holds "n_rows n_cols" on its first line, then n_rows lines of n_cols
// whitespace-separated non-negative numbers (blank lines are ignored). The program prints
//
//   n_iter <iterations run>
//   converged <0|1>
//   loss <final generalised KL divergence>
//   spectra <k> <n_cols>
//   <k lines: each spectrum normalised to sum 1>
//
// The initialisation is deterministic: spectra from the mean spectrum modulated by a
// different smooth profile per component, maps from the pixel totals.
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <psnmf/divergence.hpp>
#include <psnmf/poisson_nmf.hpp>

namespace {

struct Counts {
  std::int64_t n_rows = 0;
  std::int64_t n_cols = 0;
  std::vector<double> values; // row-major
};

/// An error in the input file: reported with the file name and line number.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::vector<std::string> split(const std::string &line) {
  std::istringstream in(line);
  std::vector<std::string> tokens;
  for (std::string t; in >> t;)
    tokens.push_back(t);
  return tokens;
}

std::int64_t parse_size(const std::string &token, const std::string &where, const char *what) {
  char *end = nullptr;
  errno = 0;
  const long long v = std::strtoll(token.c_str(), &end, 10);
  if (end == token.c_str() || *end != '\0' || errno == ERANGE || v <= 0)
    throw InputError(where + ": " + what + " must be a positive integer, got '" + token + "'");
  return v;
}

double parse_count(const std::string &token, const std::string &where) {
  char *end = nullptr;
  const double v = std::strtod(token.c_str(), &end);
  if (end == token.c_str() || *end != '\0')
    throw InputError(where + ": '" + token + "' is not a number");
  if (!std::isfinite(v) || v < 0)
    throw InputError(where + ": counts must be finite and non-negative, got " + token);
  return v;
}

Counts read_counts(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    throw InputError("cannot open '" + path + "'");
  Counts c;
  std::string line;
  std::int64_t line_no = 0;
  bool have_header = false;
  std::int64_t row = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::vector<std::string> tokens = split(line);
    if (tokens.empty())
      continue;
    const std::string where = path + ":" + std::to_string(line_no);
    if (!have_header) {
      if (tokens.size() != 2)
        throw InputError(where + ": the first line must be 'n_rows n_cols', got '" + line + "'");
      c.n_rows = parse_size(tokens[0], where, "n_rows");
      c.n_cols = parse_size(tokens[1], where, "n_cols");
      if (c.n_cols > INT32_MAX || c.n_rows > (std::int64_t(1) << 40) / c.n_cols)
        throw InputError(where + ": matrix too large");
      c.values.reserve(static_cast<std::size_t>(c.n_rows * c.n_cols));
      have_header = true;
      continue;
    }
    if (row == c.n_rows)
      throw InputError(where + ": more than the " + std::to_string(c.n_rows) +
                       " rows announced on the first line");
    if (static_cast<std::int64_t>(tokens.size()) != c.n_cols)
      throw InputError(where + ": expected " + std::to_string(c.n_cols) + " values, got " +
                       std::to_string(tokens.size()));
    for (const std::string &t : tokens)
      c.values.push_back(parse_count(t, where));
    ++row;
  }
  if (in.bad())
    throw InputError("error reading '" + path + "'");
  if (!have_header)
    throw InputError(path + ": empty file (expected 'n_rows n_cols')");
  if (row != c.n_rows)
    throw InputError(path + ": expected " + std::to_string(c.n_rows) + " rows, found " +
                     std::to_string(row));
  return c;
}

/// Deterministic start: spectra_q = mean spectrum * (1 + 0.5 sin(pi (q+1) (j+1/2) / C)),
/// normalised to sum 1; maps_iq = (total counts of pixel i) / k.
void initialise(const Counts &c, std::int64_t k, std::vector<double> &maps,
                std::vector<double> &spectra) {
  const double pi = std::acos(-1.0);
  std::vector<double> row_sum(static_cast<std::size_t>(c.n_rows), 0.0);
  std::vector<double> col_sum(static_cast<std::size_t>(c.n_cols), 0.0);
  double total = 0.0;
  for (std::int64_t i = 0; i < c.n_rows; ++i)
    for (std::int64_t j = 0; j < c.n_cols; ++j) {
      const double x = c.values[static_cast<std::size_t>(i * c.n_cols + j)];
      row_sum[static_cast<std::size_t>(i)] += x;
      col_sum[static_cast<std::size_t>(j)] += x;
      total += x;
    }
  if (total <= 0.0)
    throw std::invalid_argument("the counts are all zero: nothing to factorise");

  spectra.assign(static_cast<std::size_t>(k * c.n_cols), 0.0);
  for (std::int64_t q = 0; q < k; ++q) {
    double *s = spectra.data() + q * c.n_cols;
    double norm = 0.0;
    for (std::int64_t j = 0; j < c.n_cols; ++j) {
      const double mean = col_sum[static_cast<std::size_t>(j)] / total + 1e-3 / double(c.n_cols);
      const double profile =
          1.0 + 0.5 * std::sin(pi * double(q + 1) * (double(j) + 0.5) / double(c.n_cols));
      s[j] = mean * profile;
      norm += s[j];
    }
    for (std::int64_t j = 0; j < c.n_cols; ++j)
      s[j] /= norm;
  }
  maps.assign(static_cast<std::size_t>(c.n_rows * k), 0.0);
  for (std::int64_t i = 0; i < c.n_rows; ++i)
    for (std::int64_t q = 0; q < k; ++q)
      maps[static_cast<std::size_t>(i * k + q)] = row_sum[static_cast<std::size_t>(i)] / double(k);
}

int usage(const char *program) {
  std::cerr << "usage: " << program
            << " <counts.txt> <n_components> [--max-iter N] [--tol T] [--threads N]\n";
  return 2;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 3)
    return usage(argv[0]);
  const std::string path = argv[1];
  psnmf::NmfOptions options;
  options.max_iter = 2000;
  options.tol = 1e-9;
  std::int64_t k = 0;
  try {
    k = parse_size(argv[2], "command line", "n_components");
    for (int a = 3; a < argc; ++a) {
      const std::string flag = argv[a];
      if (a + 1 >= argc) {
        std::cerr << "error: " << flag << " needs a value\n";
        return usage(argv[0]);
      }
      const std::string value = argv[++a];
      if (flag == "--max-iter") {
        options.max_iter = int(parse_size(value, "command line", "--max-iter"));
      } else if (flag == "--threads") {
        options.n_threads = int(parse_size(value, "command line", "--threads"));
      } else if (flag == "--tol") {
        options.tol = parse_count(value, "command line --tol");
      } else {
        std::cerr << "error: unknown option '" << flag << "'\n";
        return usage(argv[0]);
      }
    }
  } catch (const InputError &e) {
    std::cerr << "error: " << e.what() << "\n";
    return usage(argv[0]);
  }

  try {
    const Counts counts = read_counts(path);
    if (k > counts.n_rows || k > counts.n_cols)
      throw std::invalid_argument("n_components = " + std::to_string(k) +
                                  " exceeds the matrix shape " + std::to_string(counts.n_rows) +
                                  " x " + std::to_string(counts.n_cols));
    std::vector<double> maps, spectra;
    initialise(counts, k, maps, spectra);

    const psnmf::DenseView<double> x{counts.n_rows, counts.n_cols, counts.values.data()};
    const psnmf::NmfResult result =
        psnmf::fit_poisson_nmf(x, psnmf::FactorsView{k, maps.data(), spectra.data()}, options);

    std::printf("n_iter %d\n", result.n_iter);
    std::printf("converged %d\n", result.converged ? 1 : 0);
    std::printf("loss %.17g\n", result.loss_history.back());
    std::printf("spectra %lld %lld\n", static_cast<long long>(k),
                static_cast<long long>(counts.n_cols));
    for (std::int64_t q = 0; q < k; ++q) {
      const double *s = spectra.data() + q * counts.n_cols;
      double sum = 0.0;
      for (std::int64_t j = 0; j < counts.n_cols; ++j)
        sum += s[j];
      if (sum <= 0.0)
        std::fprintf(stderr, "warning: component %lld has an all-zero spectrum\n",
                     static_cast<long long>(q));
      for (std::int64_t j = 0; j < counts.n_cols; ++j)
        std::printf("%s%.10g", j ? " " : "", sum > 0.0 ? s[j] / sum : 0.0);
      std::printf("\n");
    }
  } catch (const InputError &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
