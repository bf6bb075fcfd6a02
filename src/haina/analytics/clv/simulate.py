"""Draw customer summaries from each estimator's generative process, vectorised.

Used by the parameter-recovery tests and the benchmark. Each draw returns NumPy arrays
``frequency`` (repeat purchases), ``recency`` (time of the last repeat purchase, 0 without one)
and ``T`` (customer age), in continuous time unless ``whole_periods`` is set, in which case ``T``
must be whole numbers and a recency is rounded up to the period it falls in (what a daily or
weekly summary of a transaction log reports).
"""

from __future__ import annotations

import numpy as np


def _ages(T, size: int) -> np.ndarray:
    T = np.asarray(T, dtype=float)
    return np.broadcast_to(T, (size,)).astype(float) if T.ndim == 0 else T.astype(float)


def _last_purchase(
    rng: np.random.Generator, x: np.ndarray, n: np.ndarray, window: np.ndarray
) -> np.ndarray:
    """Time of the ``x``-th of ``n`` Poisson arrivals in ``[0, window]``: the arrival times are
    ``n`` sorted uniforms, so it is ``window`` times a Beta(x, n-x+1) order statistic."""
    recency = np.zeros_like(window)
    pos = x > 0
    recency[pos] = window[pos] * rng.beta(x[pos], n[pos] - x[pos] + 1.0)
    return recency


def _round_up(
    recency: np.ndarray, T: np.ndarray, frequency: np.ndarray, whole_periods: bool
) -> np.ndarray:
    if not whole_periods:
        return recency
    rounded = np.minimum(np.ceil(recency), T)
    return np.where(frequency > 0, np.maximum(rounded, 1.0), 0.0)


def bgnbd(
    T,
    r: float,
    alpha: float,
    a: float,
    b: float,
    size: int | None = None,
    *,
    rng: np.random.Generator | int | None = None,
    whole_periods: bool = False,
):
    """BG/NBD (FHL 2005, section 3): lambda ~ Gamma(r, alpha), p ~ Beta(a, b); purchases at rate
    lambda; after each repeat purchase the customer drops out with probability p.

    With ``D ~ Geometric(p)`` the repeat purchase after which she drops out and ``N ~
    Poisson(lambda T)`` the purchases she would make alive, ``x = min(D, N)``.
    """
    rng = np.random.default_rng(rng)
    size = int(np.size(T)) if size is None else size
    T = _ages(T, size)
    lam = rng.gamma(r, 1.0 / alpha, size)
    p = rng.beta(a, b, size)
    n = rng.poisson(lam * T).astype(float)
    dropout_at = rng.geometric(np.clip(p, 1e-300, 1.0)).astype(float)
    x = np.minimum(n, dropout_at)
    recency = _last_purchase(rng, x, n, T)
    return x, _round_up(recency, T, x, whole_periods), T


def pareto_nbd(
    T,
    r: float,
    alpha: float,
    s: float,
    beta: float,
    size: int | None = None,
    *,
    rng: np.random.Generator | int | None = None,
    whole_periods: bool = False,
):
    """Pareto/NBD (FH note 009, section 2): lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta);
    purchases at rate lambda until an exponential(mu) lifetime ends."""
    rng = np.random.default_rng(rng)
    size = int(np.size(T)) if size is None else size
    T = _ages(T, size)
    lam = rng.gamma(r, 1.0 / alpha, size)
    mu = rng.gamma(s, 1.0 / beta, size)
    lifetime = rng.exponential(1.0, size) / np.maximum(mu, 1e-300)
    window = np.minimum(lifetime, T)
    x = rng.poisson(lam * window).astype(float)
    recency = _last_purchase(rng, x, x, window)
    return x, _round_up(recency, T, x, whole_periods), T


def gamma_gamma(
    frequency, p: float, q: float, gamma: float, *, rng: np.random.Generator | int | None = None
):
    """Mean spend of ``frequency`` transactions (FH note 025): nu ~ Gamma(q, gamma), each
    transaction ~ Gamma(p, nu), so the sum of ``x`` of them is Gamma(p x, nu). Customers with no
    repeat purchase get 0."""
    rng = np.random.default_rng(rng)
    x = np.asarray(frequency, dtype=float)
    nu = rng.gamma(q, 1.0 / gamma, x.shape)
    mean = np.zeros_like(x)
    pos = x > 0
    mean[pos] = rng.gamma(p * x[pos], 1.0 / nu[pos]) / x[pos]
    return mean
