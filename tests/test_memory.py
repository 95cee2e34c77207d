"""A clear MemoryError, naming the size needed and available, before an allocation that
cannot fit, instead of being killed. The available memory is monkeypatched."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from psnmf import PSNMF, PoissonNMF, _memory, bin_spatial, denoise_pca
from psnmf._counts import to_counts

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

CUBE = np.random.default_rng(0).poisson(1.0, (8, 8, 32)).astype(np.uint16)
X = CUBE.reshape(-1, 32)


@pytest.fixture
def available(monkeypatch):
    """Set the available memory (bytes) seen by the guard."""

    def set_to(n_bytes):
        monkeypatch.setattr(_memory, "available_memory", lambda: n_bytes)

    return set_to


def test_available_memory_is_read_from_the_system():
    n = _memory.available_memory()
    assert n is None or n > 0
    if n is not None:
        assert _memory._meminfo_available() is not None


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda: to_counts(X), "the working copy of X"),
        (lambda: to_counts(sp.csr_matrix(X)), "the CSR working copy of X"),
        (lambda: PoissonNMF(2).fit(X), "the factors"),
        (lambda: bin_spatial(CUBE, 2), "the binned cube"),
        (lambda: PSNMF(2).fit(CUBE), "working copy of X"),
        (lambda: denoise_pca(X, 2), "denoise_pca"),
    ],
)
def test_memory_error_names_the_sizes(available, call, what):
    available(100)
    with pytest.raises(MemoryError, match=what) as info:
        call()
    message = str(info.value)
    assert "needs" in message and "only 100 B is available" in message


def test_factor_and_reconstruct_allocations_are_guarded(available):
    model = PSNMF(2, max_iter=5, max_iter_binned=5, random_state=0).fit(CUBE)
    fitted = PoissonNMF(2, max_iter=5, random_state=0).fit(X)
    # the counts fit, the cube of expected counts (64 x 32 float64 + float32) does not
    available(64 * 32 * 12 - 1)
    with pytest.raises(MemoryError, match=r"reconstruct\(\) \(dense cube\): it needs 24.0 KiB"):
        model.reconstruct()
    with pytest.raises(MemoryError, match="inverse_transform"):
        fitted.inverse_transform(np.ones((64 * 12, 2)))
    available(64 * 32 * 12)
    assert model.reconstruct().shape == (8, 8, 32)
    available(8 * 2 * (64 + 4 * 32) - 1)  # below what the factors of a k=2 fit need
    with pytest.raises(MemoryError, match="the factors"):
        PoissonNMF(2).fit(X)


def test_no_error_when_memory_is_unknown_or_ample(available):
    available(None)
    assert bin_spatial(CUBE, 2).shape == (4, 4, 32)
    available(1 << 40)
    assert to_counts(X).shape == X.shape


def test_format_bytes():
    assert _memory.format_bytes(100) == "100 B"
    assert _memory.format_bytes(3 * 1024**3) == "3.0 GiB"
