"""Plain-numpy reference implementations the compiled kernels are checked against."""

import numpy as np
from scipy.special import xlogy

EPS32 = np.finfo(np.float32).eps
EPS64 = np.finfo(np.float64).eps


def mu_kl(X, W, H, n_iter, update_W=True, update_H=True):
    """Lee-Seung KL multiplicative updates on dense float64 X, maps first.

    lambda is floored at float32 eps where X > 0; the maps denominator 0 -> eps32,
    the spectra denominator 0 -> 1; spectra below float64 eps are set to 0.
    """
    X = np.asarray(X, dtype=np.float64)
    W, H = W.astype(np.float64), H.astype(np.float64)
    observed = X > 0
    for _ in range(n_iter):
        if update_W:
            ratio = np.where(observed, X / np.maximum(W @ H, EPS32), 0.0)
            denominator = H.sum(axis=1)
            denominator[denominator == 0] = EPS32
            W = W * ((ratio @ H.T) / denominator)
        if update_H:
            ratio = np.where(observed, X / np.maximum(W @ H, EPS32), 0.0)
            denominator = W.sum(axis=0)
            denominator[denominator == 0] = 1.0
            H = H * ((W.T @ ratio) / denominator[:, None])
            H[H < EPS64] = 0.0
    return W, H


def mu_kl_block(X, W, H):
    """A row block's share of one KL MU iteration with the spectra fixed, densely.

    Returns the maps after their update (as ``mu_kl`` with update_H=False), the
    spectra numerator ``W_new.T @ (X / lambda)`` (k, C) at the updated maps, the
    column sums of the updated maps (k) and D(X || W H) before the update.
    """
    W_new, _ = mu_kl(X, W, H, n_iter=1, update_H=False)
    X = np.asarray(X, dtype=np.float64)
    ratio = np.where(X > 0, X / np.maximum(W_new @ H, EPS32), 0.0)
    return W_new, W_new.T @ ratio, W_new.sum(axis=0), generalized_kl(X, W, H)


def generalized_kl(X, W, H):
    """D(X || WH) = sum xlogy(x, x) - xlogy(x, lambda) - x + lambda, densely."""
    X = np.asarray(X, dtype=np.float64)
    model = W @ H
    return float(np.sum(xlogy(X, X) - xlogy(X, model) - X + model))


def spectral_angles_deg(true, learned):
    """Angle (degrees) between each true spectrum and its best-matching learned one."""
    from scipy.optimize import linear_sum_assignment

    a = true / np.linalg.norm(true, axis=1, keepdims=True)
    b = learned / np.linalg.norm(learned, axis=1, keepdims=True)
    cosines = np.clip(a @ b.T, -1, 1)
    rows, cols = linear_sum_assignment(-cosines)
    return np.degrees(np.arccos(cosines[rows, cols]))


def low_rank_poisson(n_pixels, n_channels, k, counts_per_pixel, seed=0, concentration=0.3):
    """Poisson counts of a known model: peaked spectra (rows sum to 1), Dirichlet maps."""
    rng = np.random.default_rng(seed)
    channels = np.arange(n_channels)
    spectra = np.full((k, n_channels), 0.2 / n_channels)
    for q in range(k):
        for centre in rng.choice(n_channels, size=3, replace=False):
            spectra[q] += rng.uniform(0.5, 1.0) * np.exp(-0.5 * ((channels - centre) / 2.0) ** 2)
    spectra /= spectra.sum(axis=1, keepdims=True)
    fractions = rng.dirichlet(np.full(k, concentration), size=n_pixels)
    maps = fractions * counts_per_pixel
    X = rng.poisson(maps @ spectra)
    return X, maps, spectra


def _newton_coordinates(v, linear, x, partner, max_halvings=8):
    """Projected Newton steps on each coordinate of v in turn (the "cd" solver).

    v (k,) is updated in place; x (n,) are the nonzero counts it touches and
    partner (n, k) the partner factor vectors there; linear (k,) the derivative
    of sum(lambda). A step down is halved until the derivative at its end is >= 0.
    """
    lam = partner @ v
    for q in range(v.size):
        a = partner[:, q]
        floored = np.maximum(lam, EPS32)
        gradient = linear[q] - np.sum(x / floored * a)
        curvature = np.sum(x / floored**2 * a * a)
        if curvature > 0:
            step = max(-v[q], -gradient / curvature)
        else:
            step = -v[q] if gradient > 0 else 0.0
        if step < 0:
            for halving in range(max_halvings):
                end = linear[q] - np.sum(x * a / np.maximum(lam + step * a, EPS32))
                if end >= 0:
                    break
                step = 0.5 * step if halving + 1 < max_halvings else 0.0
        v[q] = max(v[q] + step, 0.0)
        lam = lam + step * a


def cd_kl(X, W, H, n_iter, update_W=True, update_H=True):
    """Cyclic coordinate descent for KL NMF: every map row, then every spectrum column."""
    X = np.asarray(X, dtype=np.float64)
    W, H = W.astype(np.float64), H.astype(np.float64)
    for _ in range(n_iter):
        if update_W:
            linear = H.sum(axis=1)
            for i in range(X.shape[0]):
                nz = X[i] > 0
                _newton_coordinates(W[i], linear, X[i, nz], H[:, nz].T)
        if update_H:
            linear = W.sum(axis=0)
            for j in range(X.shape[1]):
                nz = X[:, j] > 0
                column = H[:, j].copy()
                _newton_coordinates(column, linear, X[nz, j], W[nz])
                H[:, j] = column
    return W, H


def _projected_newton_step(v, g, hessian):
    """e = max(0, v + d) - v for the Newton step d on the free set; returns (e, g . e).

    A free coordinate whose d falls below -v with a positive gradient goes to
    its bound (e = -v) and d is solved again on the others, until none does;
    then a free coordinate at zero whose d is negative is held there (e = 0) and
    d solved again, until neither happens."""
    e = np.zeros_like(v)
    free = (v > 0) | (g < 0)
    if not free.any():
        return e, 0.0
    solved = free.copy()
    while True:
        bound = free & ~solved
        A = hessian[np.ix_(solved, solved)]
        trace = np.trace(A)
        if not trace > 0:
            e[free] = np.where(g[free] > 0, -v[free], 0.0)
            return e, float(g @ e)
        A = A + 1e-10 * trace / solved.sum() * np.eye(solved.sum())
        try:
            L = np.linalg.cholesky(A)
        except np.linalg.LinAlgError:
            return np.zeros_like(v), 0.0
        rhs = -g[solved] + hessian[np.ix_(solved, bound)] @ v[bound]
        d = np.linalg.solve(L.T, np.linalg.solve(L, rhs))
        to_bound = (d < -v[solved]) & (g[solved] > 0)
        if not to_bound.any():
            to_bound = (v[solved] == 0) & (d < 0)
        if not to_bound.any():
            e[solved] = np.maximum(d, -v[solved])
            e[bound] = -v[bound]
            return e, float(g @ e)
        solved[np.flatnonzero(solved)[to_bound]] = False


OVER_RELAXATION = 1.5
ROW_TRIALS = (1.0, 2 / 3, 0.5, 0.25, 0.125)
COLUMN_TRIALS = (1.0, 5 / 6, 2 / 3, 0.5, 0.25, 0.125)


def _over_relaxed(v, g, e, slope):
    """The projected step lengthened OVER_RELAXATION times, coordinates that
    would cross zero sent to it; the plain step if that turns the slope."""
    longer = np.where(v + OVER_RELAXATION * e < 0, -v, OVER_RELAXATION * e)
    longer_slope = float(g @ longer)
    return (longer, longer_slope) if longer_slope < 0 else (e, slope)


def _newton_statistics(v, x, partner, linear):
    """lambda, MU numerator, gradient and Hessian of the KL objective in the factor
    vector v (k,), whose counts x (n,) have partner vectors partner (n, k)."""
    lam = np.maximum(partner @ v, EPS32)
    numerator = partner.T @ (x / lam)
    hessian = (partner * (x / lam**2)[:, None]).T @ partner
    return lam, numerator, linear - numerator, hessian


def _newton_row(w, x, partner, rowsum):
    """A maps row's (over-relaxed) Newton step, tried at ROW_TRIALS: the largest t that
    passes the trapezoid test phi'(0) + phi'(t) <= 0 and then, from there down
    ROW_TRIALS, whose exact change of the row's loss is no rise beyond rounding;
    else the MU step."""
    lam, numerator, g, hessian = _newton_statistics(w, x, partner, rowsum)
    e, slope = _projected_newton_step(w, g, hessian)
    if slope < 0:
        e, slope = _over_relaxed(w, g, e, slope)
        along = partner @ e
        e_linear = e @ rowsum
        trials = ROW_TRIALS
        for i, t in enumerate(trials):
            end_slope = e_linear - np.sum(x * along / np.maximum(lam + t * along, EPS32))
            if slope + end_slope <= 0:
                for t in trials[i:]:
                    moved = np.maximum(lam + t * along, EPS32)
                    change = t * e_linear - np.sum(x * np.log(moved / lam))
                    if change <= 1e-13 * (abs(t * e_linear) + x.sum()):
                        return np.maximum(w + t * e, 0.0)
                break
    return w * numerator / np.where(rowsum == 0, EPS32, rowsum)


def _curvature_growth(r):
    """B(r): the double integral of (1 - r u)^-2 over 0 <= u <= s <= 1 (series near 0)."""
    return 0.5 + r / 3 + r * r / 4 if r < 1e-4 else (-np.log1p(-r) / r - 1) / r


MAX_SUPPORT_COMPONENTS = 8


def _empties_a_model(partner, kept, colsum):
    """Whether zeroing the components not `kept` leaves a row of `partner` (the
    maps rows with counts in the column) without model: its support (nonzero
    components) lies within them. Checked up to MAX_SUPPORT_COMPONENTS."""
    if partner.shape[1] > MAX_SUPPORT_COMPONENTS:
        return False
    support = partner > 0
    zeroed = ~kept & (colsum > 0)
    return bool(np.any(support.any(axis=1) & ~(support & ~zeroed).any(axis=1)))


def _newton_column(h, x, partner, colsum):
    """A spectra column's (over-relaxed) Newton step: whole if the curvature bound holds over
    the components it keeps (zeros set by it included) and no row with counts in
    the column is left without model; else at the largest t in COLUMN_TRIALS
    whose decrease the bound guarantees; else the MU step. (The solver's
    cautious mode, guaranteed steps only, is not modelled.)"""
    _, numerator, g, hessian = _newton_statistics(h, x, partner, colsum)
    e, slope = _projected_newton_step(h, g, hessian)
    if slope < 0:
        e, slope = _over_relaxed(h, g, e, slope)
        falling = e < 0
        rho = np.max(-e[falling] / h[falling]) if falling.any() else 0.0
        kept = h + e > 0
        falling_kept = falling & kept
        rho_kept = np.max(-e[falling_kept] / h[falling_kept]) if falling_kept.any() else 0.0
        quadratic = e @ hessian @ e
        # The whole step, zeros included, if the bound holds over the kept components
        # and every row with counts here keeps a model.
        whole = kept.any() and not _empties_a_model(partner, kept, colsum)
        if whole and slope + quadratic * _curvature_growth(rho_kept) <= 0:
            return np.maximum(h + e, 0.0)
        for t in COLUMN_TRIALS:
            r = t * rho
            if r >= 1:
                continue
            if t * slope + t * t * quadratic * _curvature_growth(r) <= 0:
                return np.maximum(h + t * e, 0.0)
    safe = np.where(colsum == 0, 1.0, colsum)
    return h * np.where(colsum == 0, 1.0, numerator / safe)


def newton_kl(X, W, H, n_iter, warmup=1):
    """solver="newton" on dense X: `warmup` MU iterations (mu_kl), then per
    iteration a Newton step for every maps row, then for every spectra column at
    the new maps. The solver's checkpoints (a rise of the loss restores the last
    evaluated state, and the columns then take only guaranteed steps) are not
    modelled: compare only where the loss does not rise."""
    X = np.asarray(X, dtype=np.float64)
    W, H = mu_kl(X, W, H, min(n_iter, warmup))
    W, H = W.copy(), H.copy()
    for _ in range(max(0, n_iter - warmup)):
        rowsum = H.sum(axis=1)
        for i in range(X.shape[0]):
            observed = X[i] > 0
            W[i] = _newton_row(W[i], X[i, observed], H[:, observed].T, rowsum)
        colsum = W.sum(axis=0)
        for j in range(X.shape[1]):
            observed = X[:, j] > 0
            H[:, j] = _newton_column(H[:, j], X[observed, j], W[observed], colsum)
    return W, H
