"""Tests of psnmf.xray against xraydb's tables and independent computations."""

import math

import numpy as np
import pytest
import xraydb

from psnmf import xray


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Fe_Ka", ("Fe", "Ka")),
        ("Pt_Ma", ("Pt", "Ma")),
        ("Zr_Lg", ("Zr", "Lg")),
        ("O_Ka", ("O", "Ka")),
    ],
)
def test_parse_line(name, expected):
    assert xray.parse_line(name) == expected


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("Xx_Ka", "unknown element"),
        ("Fe_Kc", "unknown family"),
        ("O_Kb", "no Kb"),
        ("Fe_Ma", "no Ma"),
        ("FeKa", "not of the form"),
        ("Pt_Ll", "unknown family"),
    ],
)
def test_parse_line_errors(name, fragment):
    with pytest.raises(ValueError, match=fragment):
        xray.parse_line(name)


def test_parse_line_type_error():
    with pytest.raises(TypeError):
        xray.parse_line(26)


def test_k_family_is_xraydb_intensities():
    # A K family has one initial level, so its weights are xraydb's renormalised intensities.
    lines = xraydb.xray_lines("Cu")
    ka = {k: v for k, v in lines.items() if k.startswith("Ka")}
    energies, weights = xray.family_lines("Cu", "Ka")
    total = sum(v.intensity for v in ka.values())
    expected = sorted((v.energy / 1000, v.intensity / total) for v in ka.values())
    got = sorted(zip(energies, weights))
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-12)


@pytest.mark.parametrize("name", ["Pt_Lb", "Pt_La", "W_Lg", "Fe_Kb", "Au_Ma"])
def test_family_weights_sum_to_one(name):
    energies, weights = xray.family_lines(*xray.parse_line(name))
    assert energies.shape == weights.shape
    assert np.all(weights > 0)
    assert weights.sum() == pytest.approx(1.0)


def test_line_energy_literature_values():
    # Main-line energies from standard tables (Bearden): Fe Ka1 6.404, Pt La1 9.442,
    # Pt Ma 2.048, Zr La1 2.042, Ti Kb1 4.932 keV.
    for name, ref in [
        ("Fe_Ka", 6.404),
        ("Pt_La", 9.442),
        ("Pt_Ma", 2.048),
        ("Zr_La", 2.042),
        ("Ti_Kb", 4.932),
    ]:
        assert xray.line_energy(name) == pytest.approx(ref, abs=3e-3)


def test_fwhm_law():
    assert xray.fwhm_at(5.8987, 130.0) == pytest.approx(0.130)
    e = np.array([1.0, 10.0])
    expected = np.sqrt(130.0**2 + 2.5 * (e - 5.8987) * 1000) / 1000
    np.testing.assert_allclose(xray.fwhm_at(e, 130.0), expected)


def test_fwhm_matches_exspy():
    utils = pytest.importorskip("exspy._misc.eds.utils")
    for e in [0.5, 2.0, 6.4, 15.0]:
        assert xray.fwhm_at(e, 128.0) == pytest.approx(utils.get_FWHM_at_Energy(128.0, e))


def test_element_families_excitation_and_range():
    # Fe K edge is 7.11 keV: at a 5 keV beam only the L lines are excited.
    fams = xray.element_families("Fe", 5.0, (0.1, 20.0))
    assert "Ka" not in fams
    assert "La" in fams
    fams = xray.element_families("Fe", 200.0, (1.0, 20.0))
    assert set(fams) == {"Ka", "Kb"}
    assert max(fams.values()) == pytest.approx(1.0)
    assert fams["Kb"] < fams["Ka"]
    assert xray.element_families("Fe", 200.0, (8.0, 20.0)) == {}


def test_cross_shell_model_by_hand():
    # Pt Ma (M5) over Pt Mb (M4) from the documented model, computed here from xraydb directly.
    e0 = 200.0

    def weight(level, n):
        edge = xraydb.xray_edge("Pt", level)
        ec = edge.energy / 1000
        u = e0 / ec
        return n * edge.fyield * np.log(u) / (u * ec**2)

    lines = xraydb.xray_lines("Pt")
    ma = weight("M5", 6) * lines["Ma"].intensity
    mb = weight("M4", 4) * lines["Mb"].intensity
    fams = xray.element_families("Pt", e0, (1.0, 3.0))
    assert fams["Mb"] / fams["Ma"] == pytest.approx(mb / ma, rel=1e-9)


def test_element_lines_consistent_with_families():
    fams = xray.element_families("Pt", 200.0, (0.5, 15.0))
    energies, intensities, names = xray.element_lines("Pt", 200.0, (0.5, 15.0))
    assert len(energies) == len(intensities) == len(names)
    for fam, value in fams.items():
        mask = np.array(names) == fam
        assert intensities[mask].sum() == pytest.approx(value)


def test_gaussian_peaks_area_centre_width():
    energy = np.arange(0.0025, 20.0, 0.005)
    spectrum = xray.gaussian_peaks(energy, [6.4, 2.0], [3.0, 1.5], fwhm_mnka_eV=130.0)
    assert spectrum.sum() == pytest.approx(4.5, rel=1e-9)
    # Width at half maximum of the isolated 6.4 keV peak, measured on the channel grid.
    near = np.abs(energy - 6.4) < 0.5
    e, s = energy[near], spectrum[near]
    above = e[s >= s.max() / 2]
    measured = above[-1] - above[0] + 0.005
    assert measured == pytest.approx(xray.fwhm_at(6.4), abs=0.006)
    assert e[np.argmax(s)] == pytest.approx(6.4, abs=0.003)


def test_gaussian_peaks_channel_width_invariance():
    # Area-normalised per channel: coarser channels hold proportionally more counts.
    fine = xray.gaussian_peaks(np.arange(0.005, 10, 0.01), [5.0], [1.0])
    coarse = xray.gaussian_peaks(np.arange(0.01, 10, 0.02), [5.0], [1.0])
    assert fine.max() * 2 == pytest.approx(coarse.max(), rel=0.02)


def test_atomic_mass_and_attenuation():
    assert xray.atomic_mass("Fe") == pytest.approx(55.845, abs=1e-3)
    assert xray.atomic_number("Pt") == 78
    e = np.array([2.0, 6.4])
    np.testing.assert_allclose(
        xray.mass_attenuation("Fe", e), xraydb.mu_elam("Fe", e * 1000), rtol=1e-12
    )
    mix = xray.mass_attenuation({"Fe": 30.0, "Pt": 70.0}, e)
    expected = 0.3 * xraydb.mu_elam("Fe", e * 1000) + 0.7 * xraydb.mu_elam("Pt", e * 1000)
    np.testing.assert_allclose(mix, expected, rtol=1e-12)


def test_detector_efficiency_hand_computed():
    # Transmission of each layer exp(-mu rho t) straight from xraydb, at 0.5 keV (below the
    # O K edge, 0.543 keV) and 0.56 keV (above): the window's O edge makes a step down.
    masses = {
        el: n * xraydb.atomic_mass(el) for el, n in {"C": 22, "H": 10, "N": 2, "O": 5}.items()
    }

    def hand(energy_kev, window, coating, dead, crystal):
        ev = 1000 * energy_kev
        mu_pi = sum(m * xraydb.mu_elam(el, ev) for el, m in masses.items()) / sum(masses.values())
        rho_al, rho_si = xraydb.atomic_density("Al"), xraydb.atomic_density("Si")
        mu_al, mu_si = xraydb.mu_elam("Al", ev) * rho_al, xraydb.mu_elam("Si", ev) * rho_si
        absorbed = mu_pi * 1.42 * window + mu_al * coating + mu_si * dead
        return math.exp(-absorbed * 1e-4) * (1 - math.exp(-mu_si * crystal * 1e-4))

    thick = {"window_um": 0.5, "coating_um": 0.05, "dead_layer_um": 0.1, "crystal_um": 300.0}
    for energy in (0.5, 0.56, 3.0, 15.0):
        expected = hand(energy, *thick.values())
        assert xray.detector_efficiency(energy, **thick) == pytest.approx(expected, rel=1e-9)
    assert xray.detector_efficiency(0.54, **thick) > 1.2 * xray.detector_efficiency(0.545, **thick)
    # Below the threshold nothing is detected; shapes are kept.
    assert xray.detector_efficiency(0.02) < 1e-5
    assert xray.detector_efficiency(np.ones((2, 3))).shape == (2, 3)
