"""Tests of psnmf.simulate against xraydb data and independent computations."""

import numpy as np
import pytest

xraydb = pytest.importorskip("xraydb")

from psnmf import simulate  # noqa: E402

PHANTOMS = [simulate.particles_in_matrix, simulate.core_shell_catalyst, simulate.layered_lamella]


def window_sum(energy, spectrum, centre, half_width):
    sel = np.abs(energy - centre) <= half_width
    return spectrum[sel].sum()


def xraydb_energy(element, line):
    return xraydb.xray_lines(element)[line].energy / 1000.0


# --------------------------------------------------------------------------- dose and noise


@pytest.mark.parametrize("builder", PHANTOMS)
@pytest.mark.parametrize("pure", [True, False])
def test_phantom_dose_matches_request(builder, pure):
    data = builder((48, 40), dose=75.0, seed=3, pure_pixels=pure)
    per_pixel = data.expected.sum(axis=-1, dtype=np.float64)
    assert per_pixel.mean() == pytest.approx(75.0, rel=0.01)
    assert data.counts.shape == (48, 40, 1024)
    assert data.counts.dtype == np.uint16
    assert data.maps.shape == (3, 48, 40)


def test_expected_is_sum_of_maps_times_spectra():
    data = simulate.particles_in_matrix((32, 32), dose=40.0, seed=1)
    direct = np.einsum("kyx,kc->yxc", data.maps, data.spectra)
    np.testing.assert_allclose(data.expected, direct, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("sampling", ["photons", "dense"])
def test_poisson_total_counts_within_sigma(sampling):
    data = simulate.layered_lamella((64, 64), dose=50.0, seed=11, sampling=sampling)
    total = data.expected.sum(dtype=np.float64)
    assert abs(data.counts.sum(dtype=np.int64) - total) < 5.0 * np.sqrt(total)


@pytest.mark.parametrize("sampling", ["photons", "dense"])
def test_poisson_channel_means_and_variance(sampling):
    # Identical pixels: per-channel sample means must match the expected spectrum, and the
    # variance must equal the mean (Poisson), whichever sampler is used.
    phase = simulate.Phase("Fe", {"Fe": 100.0}, density=7.87)
    maps = np.ones((1, 100, 100))
    data = simulate.simulate_cube([phase], maps, dose=400.0, seed=5, sampling=sampling)
    counts = data.counts.reshape(-1, data.counts.shape[-1]).astype(float)
    lam = data.expected[0, 0].astype(float)
    n = counts.shape[0]
    busy = lam * n > 50
    z = (counts.sum(axis=0)[busy] - n * lam[busy]) / np.sqrt(n * lam[busy])
    assert np.all(np.abs(z) < 6.0)
    top = np.argmax(lam)
    assert counts[:, top].var() == pytest.approx(lam[top], rel=0.1)


def test_same_seed_same_counts_different_seed_different():
    a = simulate.core_shell_catalyst((32, 32), dose=30.0, seed=7)
    b = simulate.core_shell_catalyst((32, 32), dose=30.0, seed=7)
    c = simulate.core_shell_catalyst((32, 32), dose=30.0, seed=8)
    np.testing.assert_array_equal(a.counts, b.counts)
    assert not np.array_equal(a.counts, c.counts)
    phase = simulate.Phase("Si", {"Si": 100.0})
    maps = np.ones((1, 8, 8))
    d1 = simulate.simulate_cube([phase], maps, dose=20.0, seed=1)
    d2 = simulate.simulate_cube([phase], maps, dose=20.0, seed=1)
    d3 = simulate.simulate_cube([phase], maps, dose=20.0, seed=2)
    np.testing.assert_array_equal(d1.counts, d2.counts)
    assert not np.array_equal(d1.counts, d3.counts)


# --------------------------------------------------------------------------- spectra


@pytest.mark.parametrize("builder", PHANTOMS)
def test_spectra_are_probabilities(builder):
    data = builder((16, 16), dose=10.0, seed=0)
    assert np.all(data.spectra >= 0)
    np.testing.assert_allclose(data.spectra.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize(
    "element, line",
    [("Fe", "Ka1"), ("Cu", "Ka1"), ("Ti", "Ka1"), ("Pt", "Ma"), ("Pt", "La1"), ("Zr", "La1")],
)
def test_lines_at_xraydb_energies(element, line):
    energy = simulate.energy_axis()
    spectrum = simulate.phase_spectrum(
        simulate.Phase(element, {element: 100.0}, line_fraction=1.0), energy
    )
    target = xraydb_energy(element, line)
    near = np.abs(energy - target) < 0.06
    peak = energy[near][np.argmax(spectrum[near])]
    assert abs(peak - target) <= 0.02  # one channel


def test_lines_above_beam_energy_absent():
    energy = simulate.energy_axis()
    fe = simulate.Phase("Fe", {"Fe": 100.0}, line_fraction=1.0)
    spectrum = simulate.phase_spectrum(fe, energy, beam_energy=5.0)
    # The Fe K edge (7.11 keV) is above a 5 keV beam: no K lines at all.
    assert window_sum(energy, spectrum, xraydb_energy("Fe", "Ka1"), 0.3) < 1e-12
    assert window_sum(energy, spectrum, xraydb_energy("Fe", "La1"), 0.1) > 0.5
    with_continuum = simulate.phase_spectrum(
        simulate.Phase("Fe", {"Fe": 100.0}, line_fraction=0.5), energy, beam_energy=5.0
    )
    assert with_continuum[energy > 5.0].max() < 1e-12  # Kramers ends at the beam energy


def test_lines_outside_axis_absent():
    energy = simulate.energy_axis(400)  # edges 0 - 8.0 keV; Cu Ka1 is at 8.048 keV
    cu = simulate.Phase("Cu", {"Cu": 100.0}, line_fraction=1.0)
    spectrum = simulate.phase_spectrum(cu, energy)
    assert spectrum[-5:].max() < 1e-6
    assert simulate.default_line("Cu", 200.0, (0.0, 8.0)) == "Cu_La"
    assert simulate.default_line("Cu") == "Cu_Ka"
    assert simulate.default_line("Pt") == "Pt_La"
    assert simulate.default_line("Pt", 200.0, (0.0, 8.0)) == "Pt_Ma"
    assert simulate.default_line("Pd") == "Pd_La"  # Pd Ka at 21.2 keV is off the axis


def _ratio_from_composition(wt, k, a, b):
    # Cliff-Lorimer: C_a / C_b = k_a I_a / (k_b I_b)  =>  I_a / I_b = (C_a / k_a) / (C_b / k_b)
    return (wt[a] / k[f"{a}_Ka"]) / (wt[b] / k[f"{b}_Ka"])


@pytest.mark.parametrize("k_factors", [None, {"Fe_Ka": 1.3, "Cu_Ka": 1.9}])
def test_cliff_lorimer_ratio_of_quantified_lines(k_factors):
    phase = simulate.Phase("FeCu", {"Fe": 40.0, "Cu": 60.0}, fraction="wt", line_fraction=1.0)
    maps = np.ones((1, 2, 2))
    data = simulate.simulate_cube([phase], maps, dose=1.0, k_factors=k_factors, seed=0)
    energy, spectrum = data.energy, data.spectra[0]
    measured = window_sum(energy, spectrum, 6.40, 0.25) / window_sum(energy, spectrum, 8.04, 0.25)
    expected = _ratio_from_composition({"Fe": 40.0, "Cu": 60.0}, data.k_factors, "Fe", "Cu")
    assert measured == pytest.approx(expected, rel=1e-3)
    if k_factors is not None:
        assert data.k_factors == k_factors


def test_cliff_lorimer_ratio_with_continuum_and_atomic_percent():
    at = {"Fe": 30.0, "Ni": 70.0}
    masses = {el: xraydb.atomic_mass(el) for el in at}
    total = sum(at[el] * masses[el] for el in at)
    wt = {el: 100.0 * at[el] * masses[el] / total for el in at}
    phase = simulate.Phase("FeNi", at, line_fraction=0.4)
    data = simulate.simulate_cube([phase], np.ones((1, 2, 2)), dose=1.0, seed=0)
    energy, spectrum = data.energy, data.spectra[0]

    def net(centre):
        # Peak minus a linear background from flanking windows.
        inner = np.abs(energy - centre) <= 0.2
        left = (energy < centre - 0.2) & (energy >= centre - 0.3)
        right = (energy > centre + 0.2) & (energy <= centre + 0.3)
        bg = 0.5 * (spectrum[left].mean() + spectrum[right].mean())
        return spectrum[inner].sum() - bg * inner.sum()

    measured = net(xraydb_energy("Fe", "Ka1")) / net(xraydb_energy("Ni", "Ka1"))
    assert measured == pytest.approx(
        _ratio_from_composition(wt, data.k_factors, "Fe", "Ni"), rel=0.02
    )
    np.testing.assert_allclose(data.weight_percent[0], [wt["Fe"], wt["Ni"]], rtol=1e-10)


def test_lines_override_quantifies_zr_on_ka():
    phase = simulate.Phase("ZrO2", {"Zr": 100 / 3, "O": 200 / 3}, line_fraction=1.0)
    k = {"Zr_Ka": 3.0, "O_Ka": 1.5}
    data = simulate.simulate_cube(
        [phase], np.ones((1, 2, 2)), dose=1.0, lines=["Zr_Ka"], k_factors=k, seed=0
    )
    assert data.lines == ("O_Ka", "Zr_Ka")
    energy, spectrum = data.energy, data.spectra[0]
    zr = window_sum(energy, spectrum, xraydb_energy("Zr", "Ka1"), 0.4)
    o = window_sum(energy, spectrum, xraydb_energy("O", "Ka1"), 0.15)
    wt = phase.weight_percent
    assert zr / o == pytest.approx((wt["Zr"] / 3.0) / (wt["O"] / 1.5), rel=2e-3)
    with pytest.raises(ValueError, match="in no phase"):
        simulate.simulate_cube([phase], np.ones((1, 2, 2)), dose=1.0, lines=["Fe_Ka"])


def test_other_families_follow_element_families_and_efficiency():
    from psnmf import xray

    phase = simulate.Phase("Fe", {"Fe": 100.0}, line_fraction=1.0)
    energy = simulate.energy_axis()
    spectrum = simulate.phase_spectrum(phase, energy)
    fam = xray.element_families("Fe", 200.0, (0.0, 20.48))
    eff = simulate.Detector().efficiency
    e = {f: xray.line_energy(f"Fe_{f}") for f in fam}
    l_over_k = sum(fam[f] * eff(e[f]) for f in ("La", "Lb")) / (fam["Ka"] * eff(e["Ka"]))
    measured = window_sum(energy, spectrum, 0.71, 0.2) / window_sum(energy, spectrum, 6.40, 0.25)
    assert measured == pytest.approx(l_over_k, rel=2e-3)


def test_continuum_is_kramers_times_efficiency():
    phase = simulate.Phase("Si", {"Si": 100.0}, line_fraction=0.3)
    energy = simulate.energy_axis()
    spectrum = simulate.phase_spectrum(phase, energy, beam_energy=120.0)
    eff = simulate.Detector().efficiency
    i, j = np.searchsorted(energy, [6.0, 15.0])
    e1, e2 = energy[i], energy[j]
    kramers = ((120.0 - e1) / e1 * eff(e1)) / ((120.0 - e2) / e2 * eff(e2))
    assert spectrum[i] / spectrum[j] == pytest.approx(kramers, rel=1e-9)


def test_detector_efficiency_against_xraydb():
    eff = simulate.Detector().efficiency
    # At 20 keV the window is transparent: efficiency = crystal absorption, 450 µm Si.
    mu = xraydb.mu_elam("Si", 20000.0)
    assert eff(20.0) == pytest.approx(1.0 - np.exp(-mu * 2.329 * 0.045), rel=0.01)
    # The Si K edge (1.839 keV) in the dead layer makes a step down in efficiency.
    assert eff(1.83) > eff(1.85)
    values = eff(simulate.energy_axis())
    assert np.all((values >= 0) & (values <= 1))


# --------------------------------------------------------------------------- phases


def test_atomic_to_weight_percent_uses_xraydb_masses():
    at = {"Fe": 300 / 7, "O": 400 / 7}
    phase = simulate.Phase("Fe3O4", at)
    m_fe, m_o = xraydb.atomic_mass("Fe"), xraydb.atomic_mass("O")
    wt_fe = 100 * 3 * m_fe / (3 * m_fe + 4 * m_o)
    assert phase.weight_percent["Fe"] == pytest.approx(wt_fe, rel=1e-12)
    assert phase.weight_percent["O"] == pytest.approx(100 - wt_fe, rel=1e-12)
    back = simulate.Phase("Fe3O4", phase.weight_percent, fraction="wt")
    assert back.atomic_percent["Fe"] == pytest.approx(at["Fe"], rel=1e-12)
    assert back.elements == ("O", "Fe")


def test_simulated_data_compositions_in_element_order():
    data = simulate.core_shell_catalyst((16, 16), dose=5.0, seed=0)
    assert data.elements == ("O", "Ni", "Zr", "Pt")
    assert data.lines == ("O_Ka", "Ni_Ka", "Zr_La", "Pt_La")
    assert set(data.k_factors) == set(data.lines)
    np.testing.assert_allclose(data.atomic_percent[0], [0, 70, 0, 30])
    np.testing.assert_allclose(data.weight_percent.sum(axis=1), 100.0)
    assert data.compositions["Pt shell"]["atomic_percent"] == {"Pt": 100.0}


# --------------------------------------------------------------------------- phantoms


def _shares(maps):
    total = maps.sum(axis=0)
    occupied = total > 0
    return maps[:, occupied] / total[occupied]


@pytest.mark.parametrize("builder", PHANTOMS)
def test_pure_pixels_true_every_phase_has_pure_pixels(builder):
    shares = _shares(builder(dose=10.0, seed=4).maps)
    assert np.all((shares >= 0.99).any(axis=1))
    # Phases overlap along the beam somewhere (mixed pixels exist too).
    assert np.any(np.sort(shares, axis=0)[-2] > 0.1)


@pytest.mark.parametrize("builder", PHANTOMS)
def test_pure_pixels_false_no_pixel_is_pure(builder):
    shares = _shares(builder(dose=10.0, seed=4, pure_pixels=False).maps)
    assert shares.max() < 0.99
    assert shares.min() > 0.0


def test_demo_dataset():
    data = simulate.demo_dataset()
    assert data.counts.shape == (64, 64, 1024)
    assert data.n_components == 3
    assert data.expected.sum(axis=-1).mean() == pytest.approx(100.0, rel=1e-3)
    np.testing.assert_array_equal(data.counts, simulate.demo_dataset().counts)


# --------------------------------------------------------------------------- errors


def test_bad_input_errors():
    with pytest.raises(ValueError, match="unknown element"):
        simulate.Phase("x", {"Xx": 100.0})
    with pytest.raises(ValueError, match="sums to 90"):
        simulate.Phase("x", {"Fe": 50.0, "O": 40.0})
    with pytest.raises(ValueError, match="fraction"):
        simulate.Phase("x", {"Fe": 100.0}, fraction="mol")
    with pytest.raises(ValueError, match="density"):
        simulate.Phase("x", {"Fe": 100.0}, density=-1.0)
    with pytest.raises(ValueError, match="no line"):
        simulate.phase_spectrum(simulate.Phase("H", {"H": 100.0}))
    phase = simulate.Phase("Fe", {"Fe": 100.0})
    with pytest.raises(ValueError, match="dose"):
        simulate.simulate_cube([phase], np.ones((1, 4, 4)), dose=-5.0)
    with pytest.raises(ValueError, match="maps"):
        simulate.simulate_cube([phase], np.ones((2, 4, 4)), dose=5.0)
    with pytest.raises(ValueError, match="maps"):
        simulate.simulate_cube([phase], -np.ones((1, 4, 4)), dose=5.0)
    with pytest.raises(ValueError, match="k_factors"):
        simulate.simulate_cube([phase], np.ones((1, 4, 4)), dose=5.0, k_factors={"Cu_Ka": 1})
    with pytest.raises(TypeError, match="phases"):
        simulate.simulate_cube(["Fe"], np.ones((1, 4, 4)), dose=5.0)
    with pytest.raises(ValueError, match="dose too high"):
        simulate.simulate_cube([phase], np.ones((1, 2, 2)), dose=1e7)
