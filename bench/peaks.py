"""The machine's own peaks for the roofline: FMA throughput and a STREAM-like triad.

``peak.cpp`` is compiled at benchmark time with the system g++ twice: with
``-O3 -march=native`` (the machine's peak) and with the flags of the default
wheel build (``-O3``, baseline x86-64: no AVX/FMA), and run with OpenMP on 1
and 2 threads. A numpy triad (single-threaded) is reported alongside.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("peak.cpp")
FLAGS = {"native": ["-O3", "-march=native"], "wheel": ["-O3"]}


def compiler_version() -> str:
    gxx = shutil.which("g++")
    if gxx is None:
        return "g++ not found"
    return subprocess.run([gxx, "--version"], capture_output=True, text=True).stdout.split("\n")[0]


def compiled_peaks(threads=(1, 2)) -> dict:
    """{(flags, threads): {"fma_gflops": x, "triad_gbs": y}}; empty without g++."""
    gxx = shutil.which("g++")
    if gxx is None:
        return {}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in FLAGS.items():
            exe = os.path.join(tmp, f"peak_{name}")
            subprocess.run([gxx, *flags, "-fopenmp", str(SOURCE), "-o", exe], check=True)
            for n in threads:
                out = subprocess.run([exe, str(n)], capture_output=True, text=True, check=True)
                fields = dict(item.split("=") for item in out.stdout.split() if "=" in item)
                results[(name, n)] = {key: float(value) for key, value in fields.items()}
    return results


def numpy_triad_gbs(n=1 << 24, repeats=5) -> float:
    """Best-of-repeats a = b + s * c in numpy (one thread).

    numpy makes two passes (a = s * c, then a += b): 40 bytes move per element.
    """
    b, c, a = np.ones(n), np.full(n, 2.0), np.empty(n)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        np.multiply(c, 3.0, out=a)
        np.add(a, b, out=a)
        best = max(best, 40 * n / (time.perf_counter() - start) / 1e9)
    return best
