// Binding of update_block / apply_spectra_update: one iteration split over row blocks.
#include "psnmf/chunked.hpp"

#include "bindings.hpp"
#include "counts_view.hpp"

namespace psnmf::bindings {

namespace {

using Factors = py::array_t<double, py::array::c_style>;

py::dict block(const py::object &counts, std::int64_t n_cols, Factors maps, const Factors &spectra,
               bool accumulate_spectra, bool with_loss, bool check_counts, int n_threads) {
  BlockUpdate result = with_counts(counts, n_cols, [&](const auto &view) {
    if (maps.ndim() != 2 || spectra.ndim() != 2 || maps.shape(0) != view.n_rows ||
        spectra.shape(1) != n_cols || maps.shape(1) != spectra.shape(0))
      throw py::value_error("update_block: maps must be (n_rows, k) and spectra (k, n_cols)");
    double *maps_data = maps.mutable_data();
    const std::int64_t k = maps.shape(1);
    py::gil_scoped_release release;
    BlockOptions options;
    options.accumulate_spectra = accumulate_spectra;
    options.with_loss = with_loss;
    options.check_counts = check_counts;
    options.n_threads = n_threads;
    return update_block(view, maps_data, spectra.data(), k, options);
  });
  const auto k = static_cast<py::ssize_t>(result.maps_colsum.size());
  py::dict out;
  out["loss"] = result.loss ? py::object(py::float_(*result.loss)) : py::none();
  out["maps_colsum"] = py::array_t<double>(k, result.maps_colsum.data());
  if (accumulate_spectra)
    out["spectra_numerator"] =
        py::array_t<double>({k, static_cast<py::ssize_t>(n_cols)}, result.spectra_numerator.data());
  else
    out["spectra_numerator"] = py::none();
  return out;
}

void apply(Factors spectra, const Factors &numerator, const Factors &maps_colsum) {
  if (spectra.ndim() != 2 || numerator.ndim() != 2 || maps_colsum.ndim() != 1 ||
      numerator.shape(0) != spectra.shape(0) || numerator.shape(1) != spectra.shape(1) ||
      maps_colsum.shape(0) != spectra.shape(0))
    throw py::value_error("apply_spectra_update: spectra and numerator must be (k, n_cols), "
                          "maps_colsum (k)");
  apply_spectra_update(spectra.mutable_data(), numerator.data(), maps_colsum.data(),
                       spectra.shape(0), spectra.shape(1));
}

} // namespace

void bind_chunked(py::module_ &m) {
  m.def("update_block", &block, py::arg("counts"), py::arg("n_cols"), py::arg("maps").noconvert(),
        py::arg("spectra").noconvert(), py::arg("accumulate_spectra") = true,
        py::arg("with_loss") = true, py::arg("check_counts") = true, py::arg("n_threads") = 0,
        "One maps update on a row block, spectra fixed, in place; returns the block's maps "
        "column sums, spectra numerator (None unless accumulate_spectra) and loss before the "
        "update (None unless with_loss). check_counts=False skips reading every count for "
        "validity: only for working-format counts validated before (to_counts).");
  m.def("apply_spectra_update", &apply, py::arg("spectra").noconvert(), py::arg("numerator"),
        py::arg("maps_colsum"),
        "spectra <- spectra * numerator / maps_colsum in place, with the core's guards.");
}

} // namespace psnmf::bindings
