"""``n_threads`` for functions that compute in numpy/scipy (BLAS, LAPACK) rather than the core.

The core's OpenMP threads take ``n_threads`` directly; numpy's BLAS does not, so these
functions run inside a threadpoolctl limit (threadpoolctl is a scikit-learn dependency).
"""

from __future__ import annotations

import functools

from threadpoolctl import threadpool_limits

from ._validation import check_n_threads


def limits_blas_threads(function):
    """Give ``function`` a keyword ``n_threads`` (None: the libraries' own default)."""

    @functools.wraps(function)
    def limited(*args, n_threads=None, **kwargs):
        if check_n_threads(n_threads) == 0:
            return function(*args, **kwargs)
        with threadpool_limits(limits=int(n_threads)):
            return function(*args, **kwargs)

    return limited
