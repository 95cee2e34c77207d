"""Checks shared by the public functions: each names the parameter and the problem.

Every public entry point validates its arguments here before any work starts, so
that bad input gives a ValueError or TypeError that says what to fix, never a
crash, a hang or a NaN result. Array checks run in one pass without full-size
temporaries; the location of the first bad value is searched only on failure.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

# Integers above 2**53 are not all representable in float64, the core's accumulator type.
FLOAT64_EXACT_LIMIT = 2**53
# As the core's kMaxThreads: more threads than any machine has only exhaust their stacks.
MAX_THREADS = 1024


def check_int(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (not bool) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}={value} must be <= {maximum}")
    return value


def check_real(
    value, name: str, *, minimum: float | None = None, exclusive: bool = False
) -> float:
    """A finite real number (not bool) >= minimum (> minimum when exclusive)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name}={value} must be finite")
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        raise ValueError(f"{name}={value} must be {'>' if exclusive else '>='} {minimum}")
    return value


def check_choice(value, name: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_n_threads(n_threads) -> int:
    """None -> 0 (the OpenMP default, which honours OMP_NUM_THREADS and threadpoolctl)."""
    if n_threads is None:
        return 0
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(f"n_threads must be None or a positive int, got {n_threads!r}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1 or None, got n_threads={n_threads}")
    if n_threads > MAX_THREADS:
        raise ValueError(f"n_threads={n_threads} must be <= {MAX_THREADS}")
    return int(n_threads)


def check_n_components(k, n_pixels: int, n_channels: int, name: str = "n_components") -> int:
    """1 <= k <= min(n_pixels, n_channels)."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {k!r} ({type(k).__name__})")
    limit = min(n_pixels, n_channels)
    if not 1 <= k <= limit:
        raise ValueError(
            f"{name}={k} is out of range: {name} must be >= 1 and <= "
            f"min(n_pixels, n_channels)={limit} (n_pixels={n_pixels}, n_channels={n_channels})"
        )
    return int(k)


def check_image_shape(image_shape, name: str = "image_shape") -> tuple[int, int]:
    """A pair (ny, nx) of positive ints."""
    try:
        pair = tuple(image_shape)
    except TypeError:
        raise TypeError(f"{name} must be a pair (ny, nx) of ints, got {image_shape!r}") from None
    if len(pair) != 2 or isinstance(image_shape, str):
        raise ValueError(f"{name} must be a pair (ny, nx) of ints, got {image_shape!r}")
    ny = check_int(pair[0], f"{name}[0] (ny)", minimum=1)
    nx = check_int(pair[1], f"{name}[1] (nx)", minimum=1)
    return ny, nx


def check_real_dtype(dtype: np.dtype, name: str) -> None:
    """Counts must be booleans, integers or real floats."""
    if dtype.kind not in "buif":
        raise TypeError(
            f"{name} must hold real numbers, got unsupported dtype {dtype} "
            "(expected bool, uint8..uint64, int8..int64 or float16..float64)"
        )


def _first_location(mask_fn, values: np.ndarray):
    """Index of the first element where mask_fn is true (computed only on failure)."""
    where = np.argwhere(mask_fn(values))
    return tuple(int(i) for i in where[0]) if where.size else None


def check_counts_values(values: np.ndarray, name: str, *, sparse_data: bool = False) -> None:
    """Finite, non-negative, exactly representable in float64.

    ``values`` is a numpy array (the data of a sparse matrix with ``sparse_data``).
    Raises ValueError naming ``name`` and the index of the first bad value.
    """
    if values.size == 0:
        return
    where = "at stored entry" if sparse_data else "at index"
    kind = values.dtype.kind
    if kind == "f":
        # min/max propagate NaN and expose inf without a full-size boolean temporary.
        low, high = values.min(), values.max()
        if np.isnan(low) or np.isnan(high):
            at = _first_location(np.isnan, values)
            raise ValueError(f"{name} contains NaN {where} {at}; counts must be finite")
        if np.isinf(low) or np.isinf(high):
            at = _first_location(np.isinf, values)
            raise ValueError(f"{name} contains infinity {where} {at}; counts must be finite")
        if high > FLOAT64_EXACT_LIMIT:
            # Found by fuzzing: 4e304 overflowed the model to NaN. No count is this large.
            raise ValueError(
                f"{name} holds values up to {float(high):.3g} > 2**53; counts must be at most "
                "2**53 (the model's sums would lose precision or overflow): rescale them"
            )
    elif kind in "iu":
        # Only what can fail is scanned: the sign of signed types, the 2**53 limit of
        # 64-bit ones. uint8/16/32 need no pass at all.
        low = values.min() if kind == "i" else 0
        high = values.max() if values.dtype.itemsize == 8 else 0
    elif kind == "b":
        return
    else:
        check_real_dtype(values.dtype, name)
        return
    if low < 0:
        at = _first_location(lambda v: v < 0, values)
        raise ValueError(
            f"{name} contains negative values (minimum {low} {where} {at}); counts must be >= 0"
        )
    if kind in "iu" and int(high) > FLOAT64_EXACT_LIMIT:
        raise ValueError(
            f"{name} holds counts up to {int(high)} > 2**53, which float64 (the core's "
            "accumulator) cannot represent exactly; rescale or split the data"
        )


def check_counts(
    X,
    name: str,
    *,
    ndim: int | tuple[int, ...] = 2,
    allow_sparse: bool = True,
    check_values: bool = True,
):
    """Validate a counts array (or sparse matrix) and return it as an ndarray / sparse matrix.

    Checks the type, dtype, number of dimensions, emptiness and (unless
    ``check_values`` is false, for callers whose core checks them in its own pass)
    values. The array is returned as given (no copy) when it already is a numpy array.
    """
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    layout = {2: "(n_pixels, n_channels)", 3: "(ny, nx, n_channels)"}
    expected = " or ".join(f"{d}-D {layout.get(d, '')}".strip() for d in ndims)
    if sp.issparse(X):
        if not allow_sparse:
            raise TypeError(f"{name} must be a dense array, got a scipy.sparse matrix")
        if X.ndim not in ndims:
            raise ValueError(f"{name} must be {expected}, got shape {X.shape}")
        if 0 in X.shape:
            raise ValueError(f"{name} is empty (shape {X.shape})")
        check_real_dtype(X.dtype, name)
        if check_values:
            data = X.tocsr().data if X.format not in ("csr", "csc", "coo") else X.data
            check_counts_values(np.asarray(data), name, sparse_data=True)
        return X
    if isinstance(X, (str, bytes)) or X is None:
        raise TypeError(f"{name} must be an array of counts, got {type(X).__name__}")
    try:
        array = np.asarray(X)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of counts: {err}") from None
    if array.dtype == object:
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must hold real numbers, got dtype object") from None
    check_real_dtype(array.dtype, name)
    if array.ndim not in ndims:
        raise ValueError(f"{name} must be {expected}, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if check_values:
        check_counts_values(array, name)
    return array


def check_factor_matrix(values, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A finite, non-negative float64 array (maps, spectra, W, H)."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of real numbers: {err}") from None
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {array.shape}")
    if array.size and not np.all(np.isfinite(array)):
        at = _first_location(lambda v: ~np.isfinite(v), array)
        raise ValueError(f"{name} contains NaN or infinity at index {at}")
    if array.size and array.min() < 0:
        at = _first_location(lambda v: v < 0, array)
        raise ValueError(f"{name} contains negative values at index {at}; must be non-negative")
    return array


def clear_fitted(estimator) -> None:
    """Remove every fitted attribute (name ending in '_'), so that an interrupted or
    failed fit leaves the estimator unfitted rather than half-fitted."""
    for attribute in [a for a in vars(estimator) if a.endswith("_") and not a.startswith("__")]:
        delattr(estimator, attribute)


def check_psnmf_params(estimator, image_shape=None) -> None:
    """Parameters of :class:`psnmf.PSNMF` (all checked before any work starts)."""
    k = estimator.n_components
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"n_components must be an int, got {k!r} ({type(k).__name__})")
    if k < 1:
        raise ValueError(f"n_components={k} is out of range: n_components must be >= 1")
    check_choice(estimator.init, "init", ("nndsvda", "random"))
    if isinstance(estimator.n_init, str):
        check_choice(estimator.n_init, "n_init", ("auto",))
    else:
        check_int(estimator.n_init, "n_init", minimum=1)
    check_int(estimator.max_iter_binned, "max_iter_binned", minimum=1)
    check_int(estimator.max_iter, "max_iter", minimum=1)
    check_int(estimator.refine_iter, "refine_iter", minimum=0)
    check_real(estimator.tol, "tol", minimum=0.0)
    check_n_threads(estimator.n_threads)
    factor = estimator.bin_factor
    if isinstance(factor, str):
        check_choice(factor, "bin_factor", ("auto",))
    else:
        pair = factor if isinstance(factor, (tuple, list, np.ndarray)) else (factor, factor)
        if len(pair) != 2:
            raise ValueError(
                f"bin_factor must be 'auto', an int or a pair (fy, fx), got {factor!r}"
            )
        for f in pair:
            check_int(f, "bin_factor", minimum=1)
    if image_shape is not None:
        check_image_shape(image_shape)
