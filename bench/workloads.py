"""Low-rank Poisson count data for the benchmarks, generated fast and seeded.

Both generators draw the counts of each pixel as independent Poisson counts per
component (a sum of Poisson counts is Poisson), then place each photon in a
channel drawn from its component's spectrum: the counts are exactly Poisson with
mean ``maps @ spectra``, built as scipy CSR without a dense (pixels x channels)
array.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def random_spectra(k: int, n_channels: int, rng) -> np.ndarray:
    """(k, n_channels) spiky non-negative spectra, rows summing to 1."""
    spectra = rng.gamma(0.3, 1.0, (k, n_channels))
    return spectra / spectra.sum(axis=1, keepdims=True)


def _photons_to_csr(photon_counts, spectra, rng, n_channels):
    """CSR (float64 values, int32 indices) of photons: photon_counts (n_pixels, k)."""
    n_pixels, k = photon_counts.shape
    cdf = np.cumsum(spectra, axis=1)
    cdf[:, -1] = 1.0
    keys = []
    for q in range(k):
        pixel = np.repeat(np.arange(n_pixels, dtype=np.int64), photon_counts[:, q])
        channel = np.searchsorted(cdf[q], rng.random(pixel.size), side="right")
        keys.append(pixel * n_channels + np.minimum(channel, n_channels - 1))
    keys, values = np.unique(np.concatenate(keys), return_counts=True)
    rows = keys // n_channels
    indptr = np.zeros(n_pixels + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_pixels), out=indptr[1:])
    return indptr, (keys % n_channels).astype(np.int32), values


def low_rank_counts(n_pixels, n_channels, k, mean_per_channel, seed=0, chunk=16384):
    """Counts (n_pixels, n_channels) as float64 CSR with Dirichlet(0.5) maps.

    Returns
    -------
    X : scipy.sparse.csr_matrix, float64 values (integers)
    """
    rng = np.random.default_rng(seed)
    spectra = random_spectra(k, n_channels, rng)
    parts = []
    for start in range(0, n_pixels, chunk):
        rows = min(chunk, n_pixels - start)
        maps = rng.dirichlet(np.full(k, 0.5), rows) * mean_per_channel * n_channels
        parts.append(_photons_to_csr(rng.poisson(maps), spectra, rng, n_channels))
    return _stack(parts, n_pixels, n_channels, np.float64)


def smooth_fractions(y, x, ny, nx, k, rng_state):
    """(n, k) phase fractions at pixel coordinates: softmax of smooth waves."""
    phases, wave_y, wave_x = rng_state
    field = np.sin(2 * np.pi * (wave_y * y[:, None] / ny + wave_x * x[:, None] / nx) + phases)
    weights = np.exp(3.0 * field)
    return weights / weights.sum(axis=1, keepdims=True)


def cube_counts(ny, nx, n_channels, k, mean_per_channel, seed=0, rows_per_chunk=32):
    """Spectrum image (ny * nx, n_channels) as CSR: float32 values, int32 indices.

    Smooth phase maps (a few waves per phase) mix k random spectra; the mean
    is ``mean_per_channel`` counts per channel everywhere. Generated in chunks
    of image rows, so memory stays near the size of the result.
    """
    rng = np.random.default_rng(seed)
    spectra = random_spectra(k, n_channels, rng)
    waves = (rng.uniform(0, 2 * np.pi, k), rng.uniform(0.5, 3, k), rng.uniform(0.5, 3, k))
    parts = []
    for y0 in range(0, ny, rows_per_chunk):
        rows = min(rows_per_chunk, ny - y0)
        y, x = np.divmod(np.arange(rows * nx), nx)
        fractions = smooth_fractions(y + y0, x, ny, nx, k, waves)
        photons = rng.poisson(fractions * mean_per_channel * n_channels)
        parts.append(_photons_to_csr(photons, spectra, rng, n_channels))
    return _stack(parts, ny * nx, n_channels, np.float32)


def _stack(parts, n_pixels, n_channels, dtype):
    nnz = sum(p[1].size for p in parts)
    indptr = np.empty(n_pixels + 1, dtype=np.int64 if nnz >= 2**31 else np.int32)
    indices = np.empty(nnz, dtype=np.int32)
    values = np.empty(nnz, dtype=dtype)
    indptr[0] = row = at = 0
    for part_indptr, part_indices, part_values in parts:
        n = part_indptr.size - 1
        indptr[row + 1 : row + n + 1] = part_indptr[1:] + at
        indices[at : at + part_indices.size] = part_indices
        values[at : at + part_values.size] = part_values
        row += n
        at += part_indices.size
    parts.clear()
    return sp.csr_matrix((values, indices, indptr), shape=(n_pixels, n_channels), copy=False)
