"""Where the installed C++ library lives, for C++ tools that build against psnmf."""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parent


def get_cmake_dir() -> str:
    """Directory holding ``psnmfConfig.cmake`` of this installation.

    Pass it as ``-Dpsnmf_DIR=$(python -c "import psnmf; print(psnmf.get_cmake_dir())")``
    so that ``find_package(psnmf)`` gives the target ``psnmf::psnmf``.
    """
    for libdir in ("lib", "lib64"):
        candidate = _ROOT / libdir / "cmake" / "psnmf"
        if (candidate / "psnmfConfig.cmake").is_file():
            return str(candidate)
    raise FileNotFoundError(f"psnmfConfig.cmake not found under {_ROOT}; reinstall psnmf")


def get_include() -> str:
    """Directory of the C++ headers (``#include <psnmf/psnmf.hpp>``)."""
    return str(_ROOT / "include")
