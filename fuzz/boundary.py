"""Fuzz target (atheris, libFuzzer) for psnmf's input boundary.

Each input is decoded into one call of a public entry point — the working-format
conversion (of dense arrays, and of CSR, CSC and COO matrices against scipy's own),
bin_spatial, PoissonNMF fit/transform, PSNMF, denoise_pca, quantify — with an array of a
random dtype, shape, memory layout and raw bytes (so NaN, infinities, negative and huge
values all occur) and random parameters. The call must either return finite, non-negative
results of the right shape or raise ValueError/TypeError (the documented errors); anything
else — another exception, a NaN, a crash in the core — is a finding.

Run: python fuzz/boundary.py -max_total_time=60   (see .ci/fuzz)
"""

from __future__ import annotations

import sys
import warnings

import atheris
import numpy as np
import scipy.sparse as sp

# Coverage feedback from psnmf's own Python code only (the C++ core is not instrumented:
# no clang here; its crashes still surface as a crash of this process).
with atheris.instrument_imports(include=["psnmf"]):
    import psnmf
    from psnmf._counts import to_counts
    from psnmf._init import nndsvda, random_init

DTYPES = [
    np.bool_, np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32,
    np.int64, np.float16, np.float32, np.float64, np.complex64, np.dtype(">f8"),
    np.dtype(">u2"),
]  # fmt: skip
ENERGY = np.linspace(0.2, 12.0, 64)
EXPECTED = (ValueError, TypeError)


def _array(fdp: atheris.FuzzedDataProvider, ndim: int, max_side: int = 6) -> np.ndarray:
    dtype = np.dtype(DTYPES[fdp.ConsumeIntInRange(0, len(DTYPES) - 1)])
    shape = tuple(fdp.ConsumeIntInRange(0, max_side) for _ in range(ndim))
    size = int(np.prod(shape))
    raw = fdp.ConsumeBytes(size * dtype.itemsize)
    if fdp.ConsumeBool():  # small counts are the common case: map the bytes to 0..3
        values = np.frombuffer(raw.ljust(size, b"\0")[:size], dtype=np.uint8) % 4
        array = values.astype(dtype).reshape(shape)
    else:
        array = np.frombuffer(raw.ljust(size * dtype.itemsize, b"\0"), dtype=dtype)
        array = array.reshape(shape).copy()
    layout = fdp.ConsumeIntInRange(0, 3)
    if layout == 1:
        array = np.asfortranarray(array)
    elif layout == 2 and array.ndim:
        array = np.repeat(array, 2, axis=-1)[..., ::2]  # a strided view, same values
    elif layout == 3:
        array.flags.writeable = False
    return array


def _sparse(fdp: atheris.FuzzedDataProvider, dense: np.ndarray):
    """The nonzeros of a 2-D array as CSR, CSC or COO, their entries reordered or
    stored twice (COO: duplicates to sum)."""
    rows, cols = np.nonzero(dense)
    order = np.arange(rows.size)
    how = fdp.ConsumeIntInRange(0, 3)
    if how == 1:
        order = order[::-1]  # rows and columns descending
    elif how == 2:
        order = np.random.default_rng(fdp.ConsumeIntInRange(0, 9)).permutation(rows.size)
    elif how == 3:
        order = np.repeat(order, 2)  # every entry twice, next to itself
    coo = sp.coo_matrix((dense[rows, cols][order], (rows[order], cols[order])), shape=dense.shape)
    return coo.asformat(["csr", "csc", "coo"][fdp.ConsumeIntInRange(0, 2)])


def _csr_of(counts):
    return sp.csr_matrix((counts.values, counts.indices, counts.indptr), shape=counts.shape)


def _check_result(value) -> None:
    value = np.asarray(value, dtype=np.float64)
    assert np.all(np.isfinite(value)), "non-finite result"
    assert np.all(value >= 0), "negative result"


def _model_stays_above_floor(data, k, init_index, model, threads) -> bool:
    """Whether maps @ spectra >= eps32 at every count, at the init and after each iteration.

    The iterates are the fits of 1 .. max_iter iterations (deterministic with tol=0).
    """
    counts = to_counts(data)
    observed = np.asarray(data, dtype=np.float64) > 0
    init = [nndsvda, random_init][init_index]
    states = [init(counts, model.n_components_, rng=0)]
    for n_iter in range(1, model.max_iter + 1):
        fit = psnmf.PoissonNMF(
            k, init=model.init, max_iter=n_iter, tol=0, random_state=0, n_threads=threads
        )
        states.append((fit.fit_transform(data), fit.components_))
    floor = np.finfo(np.float32).eps
    return all(np.all((maps @ spectra)[observed] >= floor) for maps, spectra in states)


def _one_call(fdp: atheris.FuzzedDataProvider) -> None:
    entry = fdp.ConsumeIntInRange(0, 6)
    ndim = fdp.ConsumeIntInRange(1, 4) if fdp.ConsumeBool() else (3 if entry in (1, 4) else 2)
    data = _array(fdp, ndim)
    k = fdp.ConsumeIntInRange(-1, 5)
    threads = fdp.ConsumeIntInRange(1, 2)
    if entry == 0:
        if data.ndim == 2 and fdp.ConsumeBool():
            data = _sparse(fdp, data)
        counts = to_counts(data, n_threads=threads)
        assert counts.shape == data.shape
        # The same matrix as numpy's or scipy's own (duplicates summed).
        ours = counts.dense if counts.dense is not None else _csr_of(counts).toarray()
        expected = data.toarray() if sp.issparse(data) else np.asarray(data)
        np.testing.assert_array_equal(ours, expected.astype(np.float64))
    elif entry == 1:
        factor = (fdp.ConsumeIntInRange(-1, 7), fdp.ConsumeIntInRange(-1, 7))
        binned = psnmf.bin_spatial(data, factor, n_threads=threads)
        total = np.asarray(data, dtype=np.float64)[
            : binned.shape[0] * factor[0], : binned.shape[1] * factor[1]
        ].sum()
        assert np.isclose(float(binned.astype(np.float64).sum()), total, rtol=1e-5)
    elif entry in (2, 3):
        model = psnmf.PoissonNMF(
            k, init=["nndsvda", "random"][entry - 2], max_iter=fdp.ConsumeIntInRange(0, 8),
            tol=0, random_state=0, n_threads=threads,
        )  # fmt: skip
        maps = model.fit_transform(data)
        _check_result(maps)
        _check_result(model.components_)
        _check_result(model.transform(data))
        # MU never increases the loss while the model stays above its floor at every count
        # (float32 eps, as scikit-learn). Below it the loss counts eps32, not the model
        # (found here: a rank-1 init of 1e-11 at a count of 2827, next to a count of 6e8).
        # The loss is a difference of terms as large as sum(x log x): rounding alone moves
        # it by about 1e-16 of that (found here: counts ~1e12, loss ~0).
        values = np.asarray(data, dtype=np.float64)
        values = values[values > 0]
        history = model.loss_history_
        rounding = 1e-12 * float(np.sum(values * (1 + np.abs(np.log(values)))))
        rises = np.diff(history) > 1e-9 * (1 + abs(history[0])) + rounding
        # the floor check refits 1 .. max_iter times: only when needed, to keep the fuzzer fast
        assert not np.any(rises) or not _model_stays_above_floor(
            data, k, entry - 2, model, threads
        ), "MU loss rose with the model above its floor"
    elif entry == 4:
        model = psnmf.PSNMF(
            k, bin_factor=fdp.ConsumeIntInRange(0, 3) or "auto", max_iter=3, max_iter_binned=3,
            random_state=0, n_threads=threads,
        )  # fmt: skip
        model.fit(data)
        _check_result(model.maps_)
        _check_result(model.spectra_)
    elif entry == 5:
        _check_result(psnmf.denoise_pca(data, k))
    else:
        spectra = _array(fdp, 2, max_side=3)
        spectra = np.resize(spectra, (max(spectra.shape[0], 1), ENERGY.size))
        result = psnmf.quantify(spectra, ENERGY, ["Fe_Ka", "O_Ka"], [1.0, 2.0], method="windows")
        at = result.atomic_percent
        # documented: NaN only for a spectrum without any positive line intensity
        undefined = np.clip(result.intensities, 0, None).sum(axis=-1) == 0
        assert np.all(np.isfinite(at[~undefined]))


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _one_call(fdp)
        except EXPECTED:
            pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
