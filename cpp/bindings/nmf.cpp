// Binding of fit_poisson_nmf and kl_divergence: counts views, GIL release, interrupts.
#include "psnmf/divergence.hpp"
#include "psnmf/poisson_nmf.hpp"

#include "bindings.hpp"
#include "counts_view.hpp"

namespace psnmf::bindings {

namespace {

using Factors = py::array_t<double, py::array::c_style>;

void check_factor_shapes(const py::array &maps, const py::array &spectra, std::int64_t n_rows,
                         std::int64_t n_cols) {
  if (maps.ndim() != 2 || spectra.ndim() != 2 || maps.shape(0) != n_rows ||
      spectra.shape(1) != n_cols || maps.shape(1) != spectra.shape(0))
    throw py::value_error("factors: maps must be (n_rows, k) and spectra (k, n_cols)");
}

py::dict fit(const py::object &counts, std::int64_t n_cols, Factors maps, Factors spectra,
             int max_iter, double tol, bool update_maps, bool update_spectra, int n_threads,
             const py::object &callback, int loss_every, const std::string &solver) {
  NmfOptions options;
  if (solver == "mu")
    options.solver = Solver::mu;
  else if (solver == "cd")
    options.solver = Solver::cd;
  else if (solver == "newton")
    options.solver = Solver::newton;
  else
    throw py::value_error("solver must be 'mu', 'cd' or 'newton', got '" + solver + "'");
  options.max_iter = max_iter;
  options.tol = tol;
  options.update_maps = update_maps;
  options.update_spectra = update_spectra;
  options.n_threads = n_threads;
  options.loss_every = loss_every;
  // Both run on this thread outside parallel regions: reacquire the GIL to let
  // Ctrl-C in between the passes of every iteration (latency: one pass), and the
  // user's progress callback after each iteration.
  options.check_interrupt = [] {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0)
      throw py::error_already_set();
  };
  options.callback = [&callback](const IterationReport &report) {
    if (callback.is_none())
      return true;
    py::gil_scoped_acquire gil;
    return callback(report.iteration, report.loss).cast<bool>();
  };
  NmfResult result = with_counts(counts, n_cols, [&](const auto &view) {
    check_factor_shapes(maps, spectra, view.n_rows, n_cols);
    FactorsView factors{maps.shape(1), maps.mutable_data(), spectra.mutable_data()};
    py::gil_scoped_release release;
    return fit_poisson_nmf(view, factors, options);
  });
  py::dict out;
  out["n_iter"] = result.n_iter;
  out["converged"] = result.converged;
  out["stopped_by_callback"] = result.stopped_by_callback;
  out["loss_history"] = py::array_t<double>(static_cast<py::ssize_t>(result.loss_history.size()),
                                            result.loss_history.data());
  out["loss_iterations"] = py::array_t<int>(static_cast<py::ssize_t>(result.loss_iterations.size()),
                                            result.loss_iterations.data());
  return out;
}

double divergence(const py::object &counts, std::int64_t n_cols, const Factors &maps,
                  const Factors &spectra, int n_threads) {
  return with_counts(counts, n_cols, [&](const auto &view) {
    check_factor_shapes(maps, spectra, view.n_rows, n_cols);
    ConstFactorsView factors{maps.shape(1), maps.data(), spectra.data()};
    py::gil_scoped_release release;
    return kl_divergence(view, factors, n_threads);
  });
}

} // namespace

void bind_nmf(py::module_ &m) {
  m.def("fit_poisson_nmf", &fit, py::arg("counts"), py::arg("n_cols"), py::arg("maps").noconvert(),
        py::arg("spectra").noconvert(), py::arg("max_iter"), py::arg("tol"),
        py::arg("update_maps") = true, py::arg("update_spectra") = true, py::arg("n_threads") = 0,
        py::arg("callback") = py::none(), py::arg("loss_every") = 1, py::arg("solver") = "mu",
        "KL updates (solver 'mu', 'cd' or 'newton') of maps (n_rows, k) and spectra (k, n_cols) in "
        "place.");
  m.def("kl_divergence", &divergence, py::arg("counts"), py::arg("n_cols"),
        py::arg("maps").noconvert(), py::arg("spectra").noconvert(), py::arg("n_threads") = 0,
        "Generalised KL divergence D(X || maps @ spectra), evaluated at the nonzeros of X.");
}

} // namespace psnmf::bindings
