"""Tests of psnmf.quantify: intensities, Cliff-Lorimer, absorption, uncertainties, errors."""

import json
import math

import numpy as np
import pytest
import xraydb

from psnmf import xray
from psnmf.quantify import (
    QuantificationResult,
    ThinFilm,
    nnls_batched,
    quantify,
    quantify_intensities,
)

BEAM = 200.0
ENERGY = np.arange(0.05, 20.48, 0.01)  # 2043 channel centres, keV


def continuum(energy, beam=BEAM):
    """Kramers' law with a detector-window cut-off below ~0.5 keV and a slow tilt."""
    return (beam - energy) / energy * np.exp(-((0.4 / energy) ** 3)) * (1 + 0.02 * energy)


def phase_spectrum(weight_fractions, k_factors, energy=ENERGY, background=0.4, total=1e6):
    """Noise-free spectrum of a phase: every excited line of each element, scaled so that the
    quantified family has intensity weight fraction / k-factor (Cliff-Lorimer), plus continuum
    holding ``background`` times the peak counts; ``total`` counts in all."""
    peaks = np.zeros_like(energy)
    erange = (energy[0], energy[-1])
    for line, fraction in weight_fractions.items():
        element, family = xray.parse_line(line)
        families = xray.element_families(element, BEAM, erange)
        centres, intensities, _ = xray.element_lines(element, BEAM, erange)
        scale = fraction / k_factors[line] / families[family]
        peaks += xray.gaussian_peaks(energy, centres, intensities * scale)
    bg = continuum(energy)
    spectrum = peaks + background * peaks.sum() * bg / bg.sum()
    return spectrum * total / spectrum.sum()


def atomic_percent(weight_fractions):
    """Independent weight → atomic conversion with xraydb's atomic masses."""
    moles = np.array(
        [w / xraydb.atomic_mass(line.split("_")[0]) for line, w in weight_fractions.items()]
    )
    return 100.0 * moles / moles.sum()


# Phases: (weight fractions, k-factors). Ti Kβ sits on V Kα; Pt Mα/Mβ sit on Zr Lα/Lβ.
PHASES = [
    ({"Ti_Ka": 0.35, "V_Ka": 0.45, "O_Ka": 0.20}, {"Ti_Ka": 1.08, "V_Ka": 1.12, "O_Ka": 2.1}),
    ({"Ti_Ka": 0.05, "V_Ka": 0.95}, {"Ti_Ka": 1.0, "V_Ka": 1.05}),
    ({"Pt_Ma": 0.55, "Zr_La": 0.45}, {"Pt_Ma": 1.6, "Zr_La": 1.3}),
    ({"Pt_La": 0.7, "Zr_La": 0.2, "O_Ka": 0.1}, {"Pt_La": 2.6, "Zr_La": 1.3, "O_Ka": 2.0}),
    ({"Fe_Ka": 0.45, "Pt_La": 0.55}, {"Fe_Ka": 1.25, "Pt_La": 2.5}),
    ({"Al_Ka": 0.08, "Ni_Ka": 0.72, "Cr_Ka": 0.20}, {"Al_Ka": 1.02, "Ni_Ka": 1.4, "Cr_Ka": 1.15}),
]


# ----------------------------------------------------------------------------- fit accuracy


@pytest.mark.parametrize(("weights", "k_factors"), PHASES)
def test_fit_recovers_composition(weights, k_factors):
    spectrum = phase_spectrum(weights, k_factors)
    result = quantify(spectrum, ENERGY, list(weights), k_factors, method="fit")
    expected = atomic_percent(weights)
    assert result.atomic_percent.shape == (len(weights),)
    np.testing.assert_allclose(result.atomic_percent, expected, atol=0.5)
    np.testing.assert_allclose(
        result.weight_percent, 100 * np.array(list(weights.values())), atol=0.5
    )


def test_fit_all_phases_as_one_stack():
    # The k phase spectra of an unmixing, normalised, each with its map's total counts.
    lines = ["Ti_Ka", "V_Ka", "Pt_La", "Zr_La"]
    k_factors = dict(zip(lines, [1.1, 1.15, 2.5, 1.3]))
    phases = [
        {"Ti_Ka": 0.3, "V_Ka": 0.7},
        {"Pt_La": 0.6, "Zr_La": 0.4},
        {"Ti_Ka": 0.1, "V_Ka": 0.1, "Pt_La": 0.5, "Zr_La": 0.3},
    ]
    spectra = np.array([phase_spectrum(p, k_factors) for p in phases])
    spectra /= spectra.sum(axis=1, keepdims=True)
    result = quantify(spectra, ENERGY, lines, k_factors, counts=[1e5, 2e5, 5e4])
    for row, phase in zip(result.atomic_percent, phases):
        full = {line: phase.get(line, 0.0) for line in lines}
        moles = np.array([full[ln] / xraydb.atomic_mass(ln.split("_")[0]) for ln in lines])
        np.testing.assert_allclose(row, 100 * moles / moles.sum(), atol=0.5)


def test_fit_coincident_lines_on_a_short_axis():
    # Pt Mα and Zr Lα are 4 eV apart. Below 3 keV neither Pt L nor Zr K helps, yet the element
    # templates still split them through their different β/α (and Lγ) ratios.
    energy = np.arange(0.05, 3.0, 0.01)
    weights, k_factors = PHASES[2]
    spectrum = phase_spectrum(weights, k_factors, energy=energy)
    result = quantify(spectrum, energy, list(weights), k_factors)
    np.testing.assert_allclose(result.atomic_percent, atomic_percent(weights), atol=0.5)


def smooth_efficiency(energy):
    """A detector-like efficiency: a window cut-off at low energy, a thin crystal at high."""
    energy = np.asarray(energy, dtype=float)
    return np.exp(-((0.6 / energy) ** 3)) * (1 - np.exp(-40.0 / energy**2))


def efficiency_phase_spectrum(weight_fractions, k_factors, efficiency=None):
    """Lines and continuum seen through ``efficiency`` (default ``smooth_efficiency``): each
    family scaled by the efficiency ratio to the quantified family (the k-factor holds the
    latter's)."""
    smooth_efficiency = globals()["smooth_efficiency"] if efficiency is None else efficiency
    peaks = np.zeros_like(ENERGY)
    erange = (ENERGY[0], ENERGY[-1])
    for line, fraction in weight_fractions.items():
        element, quantified = xray.parse_line(line)
        families = xray.element_families(element, BEAM, erange)
        eff_q = smooth_efficiency(xray.line_energy(line))
        for family, intensity in families.items():
            eff = smooth_efficiency(xray.line_energy(f"{element}_{family}"))
            centres, weights = xray.family_lines(element, family, BEAM)
            area = fraction / k_factors[line] * intensity / families[quantified] * eff / eff_q
            peaks += xray.gaussian_peaks(ENERGY, centres, weights * area)
    bg = (BEAM - ENERGY) / ENERGY * smooth_efficiency(ENERGY)
    return 1e6 * (peaks + 0.5 * peaks.sum() * bg / bg.sum())


@pytest.mark.parametrize(("weights", "k_factors"), [PHASES[0], PHASES[3], PHASES[5]])
def test_fit_detector_efficiency_known(weights, k_factors):
    # Any curve the user passes is used as given, physical or not.
    spectrum = efficiency_phase_spectrum(weights, k_factors)
    known = quantify(spectrum, ENERGY, list(weights), k_factors, efficiency=smooth_efficiency)
    np.testing.assert_allclose(known.atomic_percent, atomic_percent(weights), atol=0.05)


@pytest.mark.parametrize(
    "thicknesses",
    [
        {"window_um": 0.12, "coating_um": 0.06, "dead_layer_um": 0.1, "crystal_um": 300.0},
        {"window_um": 0.8, "coating_um": 0.01, "dead_layer_um": 0.01, "crystal_um": 1500.0},
    ],
)
@pytest.mark.parametrize(("weights", "k_factors"), [PHASES[0], PHASES[3], PHASES[5]])
def test_fit_detector_efficiency_estimated(weights, k_factors, thicknesses):
    # efficiency="auto" fits the thicknesses of the window/coating/dead layer/crystal model;
    # these detectors are far from its starting point (0.3, 0.03, 0.03, 450 µm).
    def efficiency(energy):
        return xray.detector_efficiency(energy, **thicknesses)

    spectrum = efficiency_phase_spectrum(weights, k_factors, efficiency)
    estimated = quantify(spectrum, ENERGY, list(weights), k_factors)  # efficiency="auto"
    np.testing.assert_allclose(estimated.atomic_percent, atomic_percent(weights), atol=0.05)
    # Without any efficiency the Ti L / O K / Cr L region is misfit: the test can fail.
    if "O_Ka" in weights or "Al_Ka" in weights:
        tabulated = quantify(spectrum, ENERGY, list(weights), k_factors, efficiency=None)
        assert np.abs(tabulated.atomic_percent - atomic_percent(weights)).max() > 0.5


def test_fit_family_templates_without_overlap():
    weights, k_factors = PHASES[4]
    spectrum = phase_spectrum(weights, k_factors)
    result = quantify(spectrum, ENERGY, list(weights), k_factors, templates="family")
    np.testing.assert_allclose(result.atomic_percent, atomic_percent(weights), atol=0.5)


def test_fit_extra_elements_are_modelled_not_quantified():
    # A Cu grid: its lines must not leak into the quantified elements (Cu Lα sits on Ni Lα,
    # Cu Kβ near Zn Kα); here Ni and Fe are quantified with Cu present.
    weights, k_factors = {"Fe_Ka": 0.4, "Ni_Ka": 0.6}, {"Fe_Ka": 1.2, "Ni_Ka": 1.35}
    with_cu = {**weights, "Cu_Ka": 0.3}
    spectrum = phase_spectrum(with_cu, {**k_factors, "Cu_Ka": 1.4})
    result = quantify(spectrum, ENERGY, list(weights), k_factors, extra_elements=["Cu"])
    np.testing.assert_allclose(result.atomic_percent, atomic_percent(weights), atol=0.5)


# ----------------------------------------------------------------------------- exspy


def test_cliff_lorimer_matches_exspy():
    utils = pytest.importorskip("exspy._misc.eds.utils")
    material = pytest.importorskip("exspy.material")
    # Elements whose atomic masses are identical in exspy's and xraydb's tables.
    lines = ["Fe_Ka", "Pt_La", "Ni_Ka", "Zr_Ka"]
    elements = [ln.split("_")[0] for ln in lines]
    rng = np.random.default_rng(1)
    intensities = rng.uniform(50, 5000, size=(40, len(lines)))
    k_factors = rng.uniform(0.8, 3.0, size=len(lines))
    ours = quantify_intensities(intensities, lines, k_factors)
    weight = utils.quantification_cliff_lorimer(intensities.T, list(k_factors))
    np.testing.assert_allclose(ours.weight_percent, 100 * weight.T, atol=1e-6)
    atomic = material.weight_to_atomic(100 * weight, elements)
    np.testing.assert_allclose(ours.atomic_percent, atomic.T, atol=1e-6)


def test_quantify_intensities_feed_exspy():
    # The same intensities that quantify() measured, passed through exspy's CL.
    utils = pytest.importorskip("exspy._misc.eds.utils")
    material = pytest.importorskip("exspy.material")
    weights, k_factors = PHASES[4]
    spectra = np.array([phase_spectrum(weights, k_factors, total=t) for t in (1e4, 1e6)])
    for method in ("fit", "windows"):
        result = quantify(spectra, ENERGY, list(weights), k_factors, method=method)
        k = [k_factors[ln] for ln in weights]
        weight = utils.quantification_cliff_lorimer(result.intensities.T, k)
        atomic = material.weight_to_atomic(100 * weight, ["Fe", "Pt"])
        np.testing.assert_allclose(result.atomic_percent, atomic.T, atol=1e-6)


# ----------------------------------------------------------------------------- uncertainties


def _replicates(spectrum, n, seed):
    return np.random.default_rng(seed).poisson(spectrum, size=(n, spectrum.size)).astype(float)


@pytest.mark.parametrize("method", ["fit", "windows"])
def test_reported_std_matches_poisson_spread(method):
    weights, k_factors = PHASES[0]  # includes the Ti Kβ / V Kα overlap
    spectrum = phase_spectrum(weights, k_factors, total=2e5)
    stack = _replicates(spectrum, 200, seed=7)
    result = quantify(stack, ENERGY, list(weights), k_factors, method=method)
    empirical = result.atomic_percent.std(axis=0, ddof=1)
    reported = result.atomic_percent_std.mean(axis=0)
    np.testing.assert_allclose(reported / empirical, 1.0, atol=0.2)


def test_reported_std_for_normalised_components_with_counts():
    weights, k_factors = PHASES[3]
    spectrum = phase_spectrum(weights, k_factors, total=1e5)
    stack = _replicates(spectrum, 200, seed=3)
    totals = stack.sum(axis=1)
    result = quantify(stack / totals[:, None], ENERGY, list(weights), k_factors, counts=totals)
    empirical = result.atomic_percent.std(axis=0, ddof=1)
    np.testing.assert_allclose(result.atomic_percent_std.mean(axis=0) / empirical, 1.0, atol=0.2)
    # Rescaling by counts is exactly quantifying the counts.
    # (The whole stack: "auto" fits one detector to the summed spectrum of the stack.)
    direct = quantify(stack, ENERGY, list(weights), k_factors)
    np.testing.assert_allclose(result.atomic_percent_std, direct.atomic_percent_std, rtol=1e-6)


def test_normalised_spectra_without_counts_warn():
    weights, k_factors = PHASES[4]
    spectrum = phase_spectrum(weights, k_factors, total=1.0)
    with pytest.warns(UserWarning, match="counts"):
        quantify(spectrum, ENERGY, list(weights), k_factors)


# ----------------------------------------------------------------------------- absorption


def _hand_factor(weights, line, thickness_nm, density, toa_deg):
    """x / (1 - exp(-x)), x = (μ/ρ)_specimen(E_line) ρ t / sin(toa), from xraydb directly."""
    element = line.split("_")[0]
    energy_ev = xraydb.xray_lines(element)["Ka1"].energy
    mu = sum(w * xraydb.mu_elam(el, energy_ev) for el, w in weights.items())
    x = mu * density * thickness_nm * 1e-7 / math.sin(math.radians(toa_deg))
    return x / (1 - math.exp(-x))


def test_absorption_correction_hand_computed():
    # Al Kα is strongly absorbed by Ni: the classic thin-film case.
    lines, k = ["Al_Ka", "Ni_Ka"], [1.05, 1.45]
    truth = {"Al": 0.3, "Ni": 0.7}
    film = {"thickness": 150.0, "density": 6.0, "take_off_angle": 20.0}
    factors = [_hand_factor(truth, ln, 150.0, 6.0, 20.0) for ln in lines]
    assert factors[0] > 1.1 > factors[1] > 1.0  # a large correction for Al, small for Ni
    # Measured (absorbed) intensities of that composition.
    intensities = np.array([truth["Al"] / k[0] / factors[0], truth["Ni"] / k[1] / factors[1]])
    result = quantify_intensities(intensities * 1e5, lines, k, absorption=film)
    np.testing.assert_allclose(result.weight_percent[0], [30.0, 70.0], atol=1e-6)
    np.testing.assert_allclose(result.absorption_factors[0], factors, rtol=1e-8)
    assert 1 < result.absorption_iterations < 100
    plain = quantify_intensities(intensities * 1e5, lines, k)
    assert abs(plain.weight_percent[0, 0] - 30.0) > 2.0


def test_absorption_converges_to_fixed_point():
    lines, k = ["Al_Ka", "Cu_Ka", "Pt_Ma"], [1.0, 1.5, 2.2]
    film = ThinFilm(thickness=300.0, density=9.0, take_off_angle=18.0)
    intensities = np.array([[300.0, 900.0, 500.0], [50.0, 2000.0, 100.0]])
    result = quantify_intensities(intensities, lines, k, absorption=film, tol=1e-12)
    for row, weight in enumerate(result.weight_percent / 100):
        composition = dict(zip(["Al", "Cu", "Pt"], weight))
        factors = [_hand_factor_any(composition, ln, film) for ln in lines]
        corrected = intensities[row] * np.array(k) * factors
        np.testing.assert_allclose(weight, corrected / corrected.sum(), atol=1e-9)


def _hand_factor_any(weights, line, film):
    energy_ev = 1000 * xray.line_energy(line)
    mu = sum(w * xraydb.mu_elam(el, energy_ev) for el, w in weights.items())
    x = mu * film.density * film.thickness * 1e-7 / math.sin(math.radians(film.take_off_angle))
    return x / (1 - math.exp(-x))


def test_absorption_through_quantify():
    lines, k = ["Al_Ka", "Ni_Ka"], {"Al_Ka": 1.05, "Ni_Ka": 1.45}
    truth = {"Al": 0.3, "Ni": 0.7}
    factors = [_hand_factor(truth, ln, 150.0, 6.0, 20.0) for ln in lines]
    # Build the spectrum with absorbed intensities: effective k-factor k * A.
    absorbed_k = {ln: k[ln] * f for ln, f in zip(lines, factors)}
    spectrum = phase_spectrum({"Al_Ka": 0.3, "Ni_Ka": 0.7}, absorbed_k)
    film = {"thickness": 150.0, "density": 6.0, "take_off_angle": 20.0}
    result = quantify(spectrum, ENERGY, lines, k, absorption=film)
    np.testing.assert_allclose(result.weight_percent, [30.0, 70.0], atol=0.3)


# ----------------------------------------------------------------------------- intensities


def test_windows_intensity_by_hand():
    # One Gaussian on a linear background, 2 eV channels: the ±1 FWHM window holds
    # erf(sqrt(4 ln 2)) = 98.15 % of the peak and the side windows remove the linear background.
    energy = np.arange(0.001, 12.0, 0.002)
    centre, fwhm = xray.line_energy("Fe_Ka"), xray.fwhm_at(xray.line_energy("Fe_Ka"))
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    density = np.exp(-0.5 * ((energy - centre) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    spectrum = 1e4 * density * 0.002 + (5.0 + 0.3 * energy)
    spectrum += 2e4 * xray.gaussian_peaks(energy, [1.0], [1.0])  # far away, irrelevant
    result = quantify(spectrum, energy, ["Fe_Ka"], [1.0], method="windows")
    assert result.intensities[0] == pytest.approx(
        1e4 * math.erf(math.sqrt(4 * math.log(2))), rel=0.01
    )
    assert result.atomic_percent[0] == pytest.approx(100.0)


def test_windows_match_exspy_get_lines_intensity():
    exspy = pytest.importorskip("exspy")
    weights, k_factors = PHASES[4]
    spectrum = phase_spectrum(weights, k_factors)
    signal = exspy.signals.EDSTEMSpectrum(spectrum)
    axis = signal.axes_manager.signal_axes[0]
    axis.offset, axis.scale, axis.units = ENERGY[0], 0.01, "keV"
    signal.set_microscope_parameters(beam_energy=BEAM, energy_resolution_MnKa=130.0)
    lines = list(weights)
    windows = signal.estimate_background_windows(xray_lines=lines)
    reference = signal.get_lines_intensity(xray_lines=lines, background_windows=windows)
    ours = quantify(spectrum, ENERGY, lines, k_factors, method="windows")
    # exspy's own line-energy table differs by ~1 eV and it rounds windows to channels.
    np.testing.assert_allclose(ours.intensities, [float(r.data[0]) for r in reference], rtol=0.01)


def test_windows_without_background_is_window_sum():
    spectrum = np.ones_like(ENERGY)
    result = quantify(
        spectrum, ENERGY, ["Fe_Ka"], [1.0], method="windows", background_windows=None
    )
    half = xray.fwhm_at(xray.line_energy("Fe_Ka"))
    assert result.intensities[0] == pytest.approx(2 * half / 0.01, abs=1.0)


def test_fit_intensity_is_family_area():
    # Fe alone: the fitted Fe Kα area equals the area put in, whatever the continuum.
    spectrum = phase_spectrum({"Fe_Ka": 1.0}, {"Fe_Ka": 1.0}, total=1e6)
    peaks_only = phase_spectrum({"Fe_Ka": 1.0}, {"Fe_Ka": 1.0}, background=0.0, total=1.0)
    e, w = xray.family_lines("Fe", "Ka")
    ka_area = xray.gaussian_peaks(ENERGY, e, w).sum()  # unit-area family on the axis
    fams = xray.element_families("Fe", BEAM, (ENERGY[0], ENERGY[-1]))
    share = fams["Ka"] / sum(fams.values())
    result = quantify(spectrum, ENERGY, ["Fe_Ka"], [1.0])
    expected = share * ka_area * peaks_only.sum() / (1 + 0.4) * 1e6
    assert result.intensities[0] == pytest.approx(expected, rel=1e-3)


def test_stack_equals_spectrum_by_spectrum():
    weights, k_factors = PHASES[0]
    spectrum = phase_spectrum(weights, k_factors, total=3e3)
    stack = _replicates(spectrum, 25, seed=11)
    stack[0] = 0.0  # an empty pixel must not break the batch
    # efficiency=None: with "auto" the stack shares one efficiency estimated from its sum.
    together = quantify(stack, ENERGY, list(weights), k_factors, efficiency=None)
    for i in range(1, 6):
        alone = quantify(stack[i], ENERGY, list(weights), k_factors, efficiency=None)
        np.testing.assert_allclose(together.atomic_percent[i], alone.atomic_percent, atol=1e-8)
        np.testing.assert_allclose(
            together.atomic_percent_std[i], alone.atomic_percent_std, rtol=1e-6
        )
    assert np.all(np.isnan(together.atomic_percent[0]))


def test_nnls_batched_matches_scipy():
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(5)
    design = rng.normal(size=(80, 9))
    targets = rng.normal(size=(80, 40))
    solution, passive = nnls_batched(design.T @ design, design.T @ targets)
    for j in range(targets.shape[1]):
        expected, _ = optimize.nnls(design, targets[:, j])
        np.testing.assert_allclose(solution[:, j], expected, atol=1e-9)
    assert np.all(solution >= 0)
    assert np.array_equal(passive, solution > 0)


# ----------------------------------------------------------------------------- result object


def test_result_exports():
    weights, k_factors = PHASES[4]
    spectra = np.array([phase_spectrum(weights, k_factors, total=t) for t in (1e4, 1e5)])
    result = quantify(spectra, ENERGY, list(weights), k_factors)
    assert isinstance(result, QuantificationResult)
    assert result.lines == ("Fe_Ka", "Pt_La")
    data = json.loads(result.to_json())
    np.testing.assert_allclose(data["atomic_percent"], result.atomic_percent)
    text = result.to_csv()
    header, *rows = text.strip().splitlines()
    assert header.split(",")[:3] == ["spectrum", "Fe_Ka_atomic_percent", "Pt_La_atomic_percent"]
    assert len(rows) == 2
    assert float(rows[1].split(",")[1]) == pytest.approx(result.atomic_percent[1, 0])
    table = repr(result)
    assert "Fe_Ka" in table
    assert "Pt_La" in table
    assert f"{result.atomic_percent[0, 0]:.2f}" in table
    # one row per spectrum, cells apart: the index then "at±sd" and "[wt]" per line
    for i, row in enumerate(table.splitlines()[2:]):
        tokens = row.split()
        assert len(tokens) == 1 + 2 * len(result.lines)
        assert (
            tokens[1] == f"{result.atomic_percent[i, 0]:.2f}±{result.atomic_percent_std[i, 0]:.2f}"
        )
    # efficiency="auto" reports the detector it fitted, in the repr and in the JSON
    assert set(data["detector"]) == {"window_um", "coating_um", "dead_layer_um", "crystal_um"}
    assert "detector fitted" in table
    windows = quantify(spectra, ENERGY, list(weights), k_factors, method="windows")
    assert windows.detector is None and "detector" not in json.loads(windows.to_json())


def test_result_files(tmp_path):
    result = quantify_intensities([[100.0, 200.0]], ["Fe_Ka", "Pt_La"], [1.0, 2.0])
    result.to_csv(tmp_path / "q.csv")
    result.to_json(tmp_path / "q.json")
    assert (tmp_path / "q.csv").read_text().startswith("spectrum,")
    assert json.loads((tmp_path / "q.json").read_text())["lines"] == ["Fe_Ka", "Pt_La"]


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"lines": ["Xx_Ka", "Fe_Ka"]}, ValueError, "unknown element"),
        ({"lines": ["Fe_Kz", "Pt_La"]}, ValueError, "unknown family"),
        ({"lines": ["Fe_Ma", "Pt_La"]}, ValueError, "no Ma"),
        ({"lines": "Fe_Ka"}, TypeError, "sequence"),
        ({"lines": ["Fe_Ka", "Fe_La"], "k_factors": [1, 1]}, ValueError, "more than once"),
        ({"lines": ["Fe_Ka", "W_Ka"], "k_factors": [1, 1]}, ValueError, "outside the energy axis"),
        ({"k_factors": {"Fe_Ka": 1.0}}, ValueError, "Pt_La"),
        ({"k_factors": [1.0]}, ValueError, "k_factors"),
        ({"k_factors": [1.0, -2.0]}, ValueError, "positive"),
        ({"energy": ENERGY[:-1]}, ValueError, "does not match"),
        ({"energy": ENERGY[::-1]}, ValueError, "increasing"),
        ({"method": "peaks"}, ValueError, "method"),
        ({"efficiency": "measured"}, TypeError, "efficiency"),
        ({"counts": [1.0, 2.0]}, ValueError, "counts"),
        ({"absorption": {"thickness": 10}}, ValueError, "absorption"),
        (
            {"absorption": {"thickness": -1, "density": 2, "take_off_angle": 20}},
            ValueError,
            "thickness",
        ),
        ({"beam_energy": 5.0}, ValueError, "not excited"),
    ],
)
def test_errors(kwargs, error, fragment):
    args = {
        "spectra": np.ones_like(ENERGY),
        "energy": ENERGY,
        "lines": ["Fe_Ka", "Pt_La"],
        "k_factors": [1.0, 2.0],
    }
    args.update(kwargs)
    with pytest.raises(error, match=fragment):
        quantify(
            args.pop("spectra"),
            args.pop("energy"),
            args.pop("lines"),
            args.pop("k_factors"),
            **args,
        )


@pytest.mark.parametrize("bad", [np.nan, -1.0])
def test_bad_spectra_values(bad):
    spectrum = np.ones_like(ENERGY)
    spectrum[10] = bad
    with pytest.raises(ValueError, match="spectra"):
        quantify(spectrum, ENERGY, ["Fe_Ka", "Pt_La"], [1.0, 2.0])


def test_bad_spectra_shape():
    with pytest.raises(ValueError, match="shape"):
        quantify(np.ones((2, 3, ENERGY.size)), ENERGY, ["Fe_Ka"], [1.0])
