"""Simulated STEM-EDX spectrum images with ground truth.

A phase is a composition (at% or wt%) and a density. Its spectrum, a probability over the
energy channels, is characteristic lines plus a bremsstrahlung continuum:

* Lines: every excited family (Ka, Kb, La, Lb, Lg, Ma, Mb) of every element inside the energy
  axis, with energies and relative intensities from :mod:`psnmf.xray` (xraydb data), as
  Gaussians whose FWHM follows the detector law from the FWHM at Mn Kα.
* Cliff–Lorimer (exspy convention, weight fractions): ``C_a / C_b = k_a I_a / (k_b I_b)``. Each
  element is quantified on one line (:func:`default_line`); that line's intensity is
  ``I_e ∝ C_e / k_e``. The element's other families follow
  :func:`psnmf.xray.element_families` relative to the quantified family, times the ratio of
  detector efficiencies at the two energies (a measured k-factor includes the efficiency).
* Continuum: Kramers' law ``Z̄ (E0 - E) / E`` times the detector efficiency
  (:class:`Detector`). ``Z̄`` only scales it; the phase's ``line_fraction`` (share of the
  spectrum's counts in the lines) sets the magnitude, so ``Z̄`` drops out.

A spectrum image is ``expected = Σ_k maps[k] ⊗ spectra[k]`` with maps in expected counts per
pixel; ``counts`` are Poisson samples of it (uint16).

Default energy axis: 1024 channels of 20 eV, channel centres ``0.01 + 0.02 i`` keV, i.e.
channel edges from 0 to 20.48 keV (HyperSpy offset 0.01 keV, scale 0.02 keV).
"""

from .builders import core_shell_catalyst, demo_dataset, layered_lamella, particles_in_matrix
from .cube import SimulatedData, simulate_cube
from .detector import Detector, energy_axis
from .spectra import Phase, default_k_factor, default_line, phase_spectrum

__all__ = [
    "Detector",
    "Phase",
    "SimulatedData",
    "core_shell_catalyst",
    "default_k_factor",
    "default_line",
    "demo_dataset",
    "energy_axis",
    "layered_lamella",
    "particles_in_matrix",
    "phase_spectrum",
    "simulate_cube",
]
