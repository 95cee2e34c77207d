"""Automatic bin factor for PSNMF: held-out Poisson likelihood by count splitting.

A Poisson count x with mean lambda splits into x_a ~ Binomial(x, 1/2) and
x_b = x - x_a, two *independent* Poisson counts with mean lambda / 2 each. So
one half can fit a model and the other judge it, pixel for pixel and channel
for channel, with no pixel left out. For each candidate bin factor b, PSNMF
(stage 1 on half a binned b x b, stage 2 on half a at full resolution) gives a
model of half a; its generalised KL divergence from half b is the held-out
Poisson deviance (up to a constant that does not depend on the model). Noise
fitted by a too-small b and detail blurred by a too-large b both raise it. The
candidates run exactly the stages (iterations, tolerance) the final fit will
run, from one stage-1 start.

Neighbouring candidates often differ by less than the noise of the held-out
half, so the choice follows the one-standard-error rule towards less binning:
the deviance is summed over horizontal stripes of the image, and the smallest
factor whose excess over the best one is within one standard error of the
stripe-paired differences wins (binning only where the data show it pays).

The halves carry half the dose, and the counts a binned pixel needs are what
sets b, so the factor chosen on the halves is divided by sqrt(2) (rounded, at
least 1) for the full data. Large images are judged on a central crop of at
most ``max_pixels`` pixels, since the choice depends on the counts per pixel and
the size of the features, not on the field of view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from . import _core, _stages
from ._counts import to_counts
from .binning import bin_pixels

# Candidate bin factors (per axis) tried on the half-dose data; divided by
# sqrt(2) they give the full-data factors 1, 1, 2, 3, 4, 6 and 8.
CANDIDATES = (1, 2, 3, 4, 6, 8, 11)
# Stripes of the held-out half whose paired deviance differences give the
# standard error of the one-standard-error rule.
N_STRIPES = 16
# A binned image must keep this many pixels per component for stage 1.
MIN_BINNED_PIXELS_PER_COMPONENT = 16
# Central crop used for the selection on large images.
MAX_SELECTION_PIXELS = 128 * 128


@dataclass
class BinSelection:
    """Outcome of :func:`select_bin_factor`.

    Attributes
    ----------
    factor : int
        Bin factor for the full data.
    candidates : tuple of int
        Factors tried on the halves.
    heldout_deviance : ndarray (n_candidates,)
        Generalised KL of the held-out half from each candidate's model, per
        held-out count (lower is better).
    standard_error : ndarray (n_candidates,)
        Standard error of each candidate's excess over the lowest deviance,
        from stripe-paired differences (0 for the lowest).
    crop : (slice, slice)
        Region of the image the selection used.
    """

    factor: int
    candidates: tuple
    heldout_deviance: np.ndarray
    standard_error: np.ndarray
    crop: tuple


def split_counts(pixels, rng) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Binomial thinning: two independent halves of a counts matrix, as CSR.

    Parameters
    ----------
    pixels : ndarray or scipy.sparse (n_pixels, C)
        Non-negative integer counts (the fraction of a non-integer value goes to half b).
    rng : numpy RandomState

    Returns
    -------
    half_a, half_b : csr_matrix (n_pixels, C), float64, ``half_a + half_b == pixels``.
    """
    counts = sp.csr_matrix(pixels, dtype=np.float64)
    whole = np.floor(counts.data).astype(np.int64)
    drawn = rng.binomial(whole, 0.5).astype(np.float64)
    # Each half owns its index arrays: eliminate_zeros() edits them in place.
    half_a = sp.csr_matrix((drawn, counts.indices.copy(), counts.indptr.copy()), counts.shape)
    half_b = sp.csr_matrix((counts.data - drawn, counts.indices, counts.indptr), counts.shape)
    half_a.eliminate_zeros()
    half_b.eliminate_zeros()
    return half_a, half_b


def central_crop(image_shape, max_pixels: int) -> tuple[slice, slice]:
    """The central window of at most ``max_pixels`` pixels with the image's aspect ratio."""
    ny, nx = image_shape
    scale = min(1.0, np.sqrt(max_pixels / (ny * nx)))
    cy, cx = max(1, int(ny * scale)), max(1, int(nx * scale))
    y0, x0 = (ny - cy) // 2, (nx - cx) // 2
    return slice(y0, y0 + cy), slice(x0, x0 + cx)


def feasible_factors(image_shape, n_components: int, candidates=CANDIDATES) -> tuple:
    """Candidates whose binned image keeps enough pixels for stage 1 (1 always stays)."""
    ny, nx = image_shape
    need = MIN_BINNED_PIXELS_PER_COMPONENT * n_components
    return tuple(b for b in candidates if b == 1 or (ny // b) * (nx // b) >= need)


def heldout_deviance(
    half_a, half_b, image_shape, n_components, factor, *, settings, random_state, n_threads
) -> np.ndarray:
    """PSNMF with bin ``factor`` on ``half_a``; its KL divergence from ``half_b``.

    Returns the divergence of each of ``N_STRIPES`` horizontal stripes of pixels,
    shape (n_stripes,), in counts (sum them for the whole crop).
    """
    factor2 = (factor, factor)
    binned = bin_pixels(half_a, image_shape, factor2) if factor > 1 else half_a
    _, spectra, maps, _ = _stages.two_stages(
        binned,
        to_counts(half_a, n_threads=n_threads),
        factor2,
        image_shape,
        n_components,
        init=settings["init"],
        n_init=1,
        max_iter_binned=settings["max_iter_binned"],
        max_iter=settings["max_iter"],
        tol=settings["tol"],
        random_state=random_state,
        n_threads=n_threads,
    )
    edges = stripe_edges(image_shape)
    deviance = np.zeros(len(edges) - 1)
    for j, (start, stop) in enumerate(zip(edges[:-1], edges[1:])):
        if half_b[start:stop].nnz == 0 and not maps[start:stop].any():
            continue  # nothing predicted, nothing held out: 0
        judge = to_counts(half_b[start:stop], n_threads=n_threads)
        stripe_maps = np.ascontiguousarray(maps[start:stop])
        deviance[j] = _core.kl_divergence(
            judge.core, judge.shape[1], stripe_maps, spectra, n_threads
        )
    return deviance


def stripe_edges(image_shape) -> np.ndarray:
    """Pixel offsets of up to ``N_STRIPES`` stripes of whole image rows."""
    ny, nx = image_shape
    rows = np.unique(np.linspace(0, ny, min(N_STRIPES, ny) + 1).round().astype(int))
    return rows * nx


def one_standard_error_choice(candidates, stripe_deviance) -> tuple[int, np.ndarray]:
    """Index of the smallest candidate within one standard error of the best.

    stripe_deviance : (n_candidates, n_stripes). Returns the index and the
    standard error of each candidate's excess over the best.
    """
    totals = stripe_deviance.sum(axis=1)
    best = int(np.argmin(totals))
    differences = stripe_deviance - stripe_deviance[best]
    n_stripes = stripe_deviance.shape[1]
    error = np.sqrt(n_stripes) * differences.std(axis=1, ddof=1) if n_stripes > 1 else 0 * totals
    order = np.argsort(candidates)
    for i in order:
        if totals[i] - totals[best] <= error[i]:
            return int(i), error
    return best, error


def select_bin_factor(
    pixels,
    image_shape,
    n_components: int,
    *,
    settings: dict,
    random_state=None,
    n_threads: int = 0,
    candidates=CANDIDATES,
    max_pixels: int = MAX_SELECTION_PIXELS,
) -> BinSelection:
    """Choose PSNMF's bin factor by held-out Poisson likelihood (module docstring).

    Parameters
    ----------
    pixels : ndarray or scipy.sparse (ny * nx, C)
        Counts, pixels unfolded row-major.
    image_shape : (int, int)
        (ny, nx).
    n_components : int
    settings : dict
        ``init``, ``max_iter_binned``, ``max_iter`` and ``tol`` of the stages
        (the final fit's).
    random_state : int, RandomState or None
        Seeds the split and the stage-1 fits.
    n_threads : int
    candidates : sequence of int
        Bin factors tried on the halves.
    max_pixels : int
        Largest crop judged.

    Returns
    -------
    BinSelection
    """
    rng = check_random_state(random_state)
    ys, xs = central_crop(image_shape, max_pixels)
    ny, nx = image_shape
    rows = (np.arange(ny)[ys, None] * nx + np.arange(nx)[None, xs]).ravel()
    crop_shape = (ys.stop - ys.start, xs.stop - xs.start)
    crop = pixels[rows] if sp.issparse(pixels) else np.asarray(pixels)[rows]
    half_a, half_b = split_counts(crop, rng)
    tried = feasible_factors(crop_shape, n_components, candidates)
    seed = int(rng.randint(np.iinfo(np.int32).max))
    stripes = np.array(
        [
            heldout_deviance(
                half_a,
                half_b,
                crop_shape,
                n_components,
                b,
                settings=settings,
                random_state=seed,
                n_threads=n_threads,
            )
            for b in tried
        ]
    )
    chosen, error = one_standard_error_choice(tried, stripes)
    per_count = stripes.sum(axis=1) / max(float(half_b.sum()), 1.0)
    error = error / max(float(half_b.sum()), 1.0)
    factor = max(1, int(round(tried[chosen] / np.sqrt(2.0))))
    return BinSelection(factor, tried, per_count, error, (ys, xs))
