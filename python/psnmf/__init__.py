"""psnmf: Poisson NMF pan-sharpening of STEM-EDX spectrum images.

Noisy counts in, clean phase spectra, full-resolution phase maps and
compositions out. The numerical core is C++ (see :func:`get_cmake_dir`).
"""

from . import metrics, simulate
from ._cmake import get_cmake_dir, get_include
from .binning import bin_spatial
from .denoise import denoise_pca
from .io import load
from .nmf import PoissonNMF
from .pipeline import PSNMF
from .quantify import quantify

__version__ = "0.1.0"

__all__ = [
    "PSNMF",
    "PoissonNMF",
    "bin_spatial",
    "denoise_pca",
    "get_cmake_dir",
    "get_include",
    "load",
    "metrics",
    "quantify",
    "simulate",
]
