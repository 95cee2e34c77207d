"""Build and run the C++ side: the ctest suite, and the example against the installed package.

Both tests configure with CMake into a temporary directory and compile (about a minute on two
cores in total). cmake, ninja and cmeel-eigen come from the test extras; the tests are skipped
only when cmake or a C++ compiler is absent.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "cpp" / "examples"
DATA = EXAMPLES / "data" / "two_phases.txt"
TRUE_SPECTRA = EXAMPLES / "data" / "two_phases_spectra.txt"
TRUE_MAPS = EXAMPLES / "data" / "two_phases_maps.txt"

JOBS = "2"
TIMEOUT = 600  # seconds per command; the whole module takes about a minute

pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------------------------
# Tools


def _exe(name: str) -> str:
    return name + ".exe" if os.name == "nt" else name


def _from_module(module: str, attribute: str, name: str) -> str | None:
    """A binary shipped by a PyPI wheel (cmake.CMAKE_BIN_DIR, ninja.BIN_DIR), if installed."""
    try:
        mod = __import__(module)
    except ImportError:
        return None
    directory = getattr(mod, attribute, None)
    if directory is None:
        return None
    path = Path(directory) / _exe(name)
    return str(path) if path.is_file() else None


def _find_compiler() -> str | None:
    if os.environ.get("CXX"):
        cxx = os.environ["CXX"].split()[0]
        return shutil.which(cxx) or (cxx if Path(cxx).is_file() else None)
    for name in ("c++", "g++", "clang++", "cl"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def tools():
    cmake = _from_module("cmake", "CMAKE_BIN_DIR", "cmake") or shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not installed (pip install cmake, or the 'test' extra)")
    ctest = str(Path(cmake).with_name(_exe("ctest")))
    if not Path(ctest).is_file():
        ctest = shutil.which("ctest")
    if ctest is None:
        pytest.skip("ctest is not installed next to cmake")
    if _find_compiler() is None:
        pytest.skip("no C++ compiler found (set CXX or install g++/clang++)")
    ninja = _from_module("ninja", "BIN_DIR", "ninja") or shutil.which("ninja")
    generator = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"] if ninja else []
    return {"cmake": cmake, "ctest": ctest, "generator": generator}


def _run(command, cwd=None) -> subprocess.CompletedProcess:
    """Run a command; on failure, fail the test with its full output."""
    command = [str(c) for c in command]
    env = dict(os.environ, CMAKE_BUILD_PARALLEL_LEVEL=JOBS)
    proc = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    if proc.returncode != 0:
        pytest.fail(
            f"command failed with exit code {proc.returncode}:\n  {' '.join(command)}\n"
            f"--- stdout ---\n{proc.stdout[-20000:]}\n--- stderr ---\n{proc.stderr[-20000:]}",
            pytrace=False,
        )
    return proc


def _configure_and_build(tools, source: Path, build: Path, *definitions: str) -> None:
    _run(
        [
            tools["cmake"],
            "-S",
            source,
            "-B",
            build,
            *tools["generator"],
            "-DCMAKE_BUILD_TYPE=Release",
            *definitions,
        ]
    )
    _run([tools["cmake"], "--build", build, "--config", "Release", "-j", JOBS])


# --------------------------------------------------------------------------------------------
# The C++ unit tests


def test_cpp_unit_tests_pass(tools, tmp_path_factory):
    build = tmp_path_factory.mktemp("cpp-tests")
    _configure_and_build(
        tools,
        REPO,
        build,
        "-DPSNMF_BUILD_TESTS=ON",
        "-DPSNMF_BUILD_PYTHON=OFF",
        # Eigen from the cmeel-eigen wheel of *this* interpreter's environment.
        f"-DPython_EXECUTABLE={sys.executable}",
    )
    proc = _run(
        [tools["ctest"], "--output-on-failure", "-C", "Release", "-j", JOBS, "--timeout", "300"],
        cwd=build,
    )
    assert "100% tests passed" in proc.stdout, proc.stdout
    for name in ("binning", "convert", "divergence", "updates", "invalid_input", "newton_step"):
        assert name in proc.stdout, f"ctest did not run {name!r}:\n{proc.stdout}"


# --------------------------------------------------------------------------------------------
# The example, built against the installed package's CMake config


def _parse_example_output(text: str):
    lines = [line for line in text.splitlines() if line.strip()]
    fields = {}
    for line in lines[:4]:
        key, *values = line.split()
        fields[key] = values
    assert {"n_iter", "converged", "loss", "spectra"} <= fields.keys(), text
    k, n_cols = (int(v) for v in fields["spectra"])
    spectra = np.array([[float(v) for v in line.split()] for line in lines[4 : 4 + k]])
    assert spectra.shape == (k, n_cols), text
    return int(fields["n_iter"][0]), int(fields["converged"][0]), float(fields["loss"][0]), spectra


def _spectral_angle_deg(a, b) -> float:
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(min(1.0, max(-1.0, cosine))))


def _kl(x, lam) -> float:
    m = x > 0
    return float(np.sum(x[m] * np.log(x[m] / lam[m])) - x.sum() + lam.sum())


@pytest.fixture(scope="module")
def example(tools, tmp_path_factory) -> Path:
    import psnmf

    cmake_dir = Path(psnmf.get_cmake_dir())
    assert (cmake_dir / "psnmfConfig.cmake").is_file(), f"no psnmfConfig.cmake in {cmake_dir}"
    build = tmp_path_factory.mktemp("cpp-example")
    _configure_and_build(tools, EXAMPLES, build, f"-Dpsnmf_DIR={cmake_dir}")
    found = sorted(build.rglob(_exe("factorize")))
    assert found, f"factorize was not built in {build}"
    return found[0]


def test_cpp_example_recovers_two_phases(example):
    k = 2
    proc = _run([example, DATA, str(k)])
    n_iter, converged, loss, spectra = _parse_example_output(proc.stdout)

    counts = np.loadtxt(DATA, skiprows=1)
    assert spectra.shape == (k, counts.shape[1])
    assert 1 <= n_iter <= 2000
    assert converged in (0, 1)
    assert math.isfinite(loss) and loss >= 0.0
    assert np.all(spectra >= 0.0)
    np.testing.assert_allclose(spectra.sum(axis=1), 1.0, rtol=0, atol=1e-6)

    if TRUE_SPECTRA.is_file():
        truth = np.loadtxt(TRUE_SPECTRA, ndmin=2)
        assert truth.shape == spectra.shape
        angles = min(
            (
                [_spectral_angle_deg(spectra[i], truth[j]) for i, j in enumerate(perm)]
                for perm in itertools.permutations(range(k))
            ),
            key=sum,
        )
        assert max(angles) < 5.0, f"spectral angles to the generating spectra: {angles} deg"
    if TRUE_SPECTRA.is_file() and TRUE_MAPS.is_file():
        # The fit maximises the likelihood: it explains the noisy counts at least as well as
        # the generating model does.
        truth_loss = _kl(counts, np.loadtxt(TRUE_MAPS, ndmin=2) @ np.loadtxt(TRUE_SPECTRA))
        assert loss <= truth_loss, (loss, truth_loss)


def test_cpp_example_fewer_iterations_and_one_component(example):
    proc = _run([example, DATA, "1", "--max-iter", "5", "--tol", "0"])
    n_iter, converged, loss, spectra = _parse_example_output(proc.stdout)
    assert n_iter == 5 and converged == 0
    assert math.isfinite(loss)
    # With k = 1 the maximum-likelihood spectrum is the mean spectrum, reached at once.
    counts = np.loadtxt(DATA, skiprows=1)
    mean = counts.sum(axis=0) / counts.sum()
    np.testing.assert_allclose(spectra[0], mean, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("2 3\n1 2 3\n4 -5 6\n", "non-negative"),
        ("2 3\n1 2 3\n", "expected 2 rows"),
        ("2 3\n1 2 3\n4 abc 6\n", "not a number"),
        ("2 3\n1 2 3\n4 5\n", "expected 3 values"),
        ("two 3\n", "n_rows"),
        ("", "empty file"),
    ],
)
def test_cpp_example_rejects_bad_files(example, tmp_path, content, message):
    bad = tmp_path / "bad.txt"
    bad.write_text(content)
    proc = subprocess.run(
        [str(example), str(bad), "2"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "error:" in proc.stderr and message in proc.stderr, proc.stderr
    assert proc.stdout == ""


def test_cpp_example_missing_file(example, tmp_path):
    proc = subprocess.run(
        [str(example), str(tmp_path / "nope.txt"), "2"], capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "cannot open" in proc.stderr
