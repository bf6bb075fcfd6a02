"""The BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005).

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), "'Counting Your Customers' the Easy Way: An
Alternative to the Pareto/NBD Model", *Marketing Science* 24(2), 275-284 (cited as FHL below), and
Fader & Hardie, "Computing P(alive) Using the BG/NBD Model" (2008, note 021).

While alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after each repeat purchase
she drops out with probability p ~ Beta(a, b). A customer is summarised by ``x`` (frequency:
repeat purchases), ``t_x`` (recency: time of the last repeat purchase since the first purchase)
and ``T`` (age: time since the first purchase), all in one time unit.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1, polygamma

from . import _kernels
from ._fitting import (
    PurchaseModel,
    counts_by_value,
    distinct_rows,
    dot,
    same_shape_output,
    symmetric,
    to_log_space,
    worth_grouping,
)

PARAM_NAMES = ("r", "alpha", "a", "b")


#: one row of a BG/NBD fit costs this many sorts of a row (measured on 1,000,000 customers):
#: compiled, a handful of cheap passes, so grouping rarely pays; NumPy, a few dozen passes
_COST_PER_ROW = {"compiled": 0.8, "numpy": 6.0}


class _GroupedData:
    """The rows of a fit: ``x, t_x, T`` and weights, collapsed to distinct tuples when that pays
    (:func:`worth_grouping`; ``group`` forces it either way), split at ``x == 0``, with the
    customers per distinct ``x`` (the terms that depend on ``x`` alone are evaluated once per
    distinct ``x``)."""

    def __init__(self, frequency, recency, T, weights, group: bool | None = None) -> None:
        if group is None:
            mode = "compiled" if _kernels.compiled() is not None else "numpy"
            group = worth_grouping(frequency, recency, T, cost_per_row=_COST_PER_ROW[mode])
        if group:
            (x, tx, age), w, _ = distinct_rows(frequency, recency, T, weights=weights)
        else:
            x, tx, age, w = frequency, recency, T, weights
        keep = w > 0
        if not np.all(keep):
            x, tx, age, w = x[keep], tx[keep], age[keep], w[keep]
        self.x, self.tx, self.T, self.w = x, tx, age, w
        self.grouped = bool(group)
        self.n = float(w.sum())
        self.rows = x.shape[0]
        self.ux, self.wx = counts_by_value(x, w)  # customers per distinct x
        self.max_x = int(self.ux[-1]) if self.ux.shape[0] else 0
        self._split: tuple[np.ndarray, ...] | None = None

    def split(self) -> tuple[np.ndarray, ...]:
        """``(T, w)`` of the rows with ``x == 0`` and ``(x, t_x, T, w)`` of the others (NumPy
        path)."""
        if self._split is None:
            zero = self.x == 0
            pos = ~zero
            self._split = (self.T[zero], self.w[zero],
                           self.x[pos], self.tx[pos], self.T[pos], self.w[pos])
        return self._split


def _row_sums_numpy(d: _GroupedData, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """The sums of :func:`._compiled.bgnbd_sums`, vectorised."""
    T0, w0, x1, tx1, T1, w1 = d.split()
    out = np.zeros(15)
    iT0 = 1.0 / (alpha + T0)
    lT0 = np.log(alpha + T0)
    out[0] = -r * dot(w0, lT0)
    out[1] = -dot(w0, lT0)
    out[2] = -r * dot(w0, iT0)
    out[6] = -dot(w0, iT0)
    out[9] = r * dot(w0, iT0 * iT0)
    if x1.shape[0]:
        at, atx = alpha + T1, alpha + tx1
        lT, ltx = np.log(at), np.log(atx)
        iT, itx = 1.0 / at, 1.0 / atx
        rx = r + x1
        bx = b + x1 - 1.0
        ibx = 1.0 / bx
        A3 = -rx * lT
        A4 = np.log(a) - np.log(bx) - rx * ltx
        m = np.maximum(A3, A4)
        e3 = np.exp(A3 - m)
        e4 = np.exp(A4 - m)
        total = e3 + e4
        w3 = e3 / total
        w4 = e4 / total
        v3, v4 = w1 * w3, w1 * w4
        c34 = v3 * w4
        d0 = ltx - lT
        d1 = rx * (itx - iT)
        inv_a = 1.0 / a
        out[0] += dot(w1, m + np.log(total))
        out[1] += -dot(v3, lT) - dot(v4, ltx)
        out[2] += -dot(v3 * rx, iT) - dot(v4 * rx, itx)
        out[3] += v4.sum() * inv_a
        out[4] += -dot(v4, ibx)
        out[5] += dot(c34, d0 * d0)
        out[6] += -dot(v3, iT) - dot(v4, itx) + dot(c34, d0 * d1)
        out[7] += -inv_a * dot(c34, d0)
        out[8] += dot(c34, d0 * ibx)
        out[9] += dot(v3 * rx, iT * iT) + dot(v4 * rx, itx * itx) + dot(c34, d1 * d1)
        out[10] += -inv_a * dot(c34, d1)
        out[11] += dot(c34, d1 * ibx)
        out[12] += -inv_a * inv_a * v4.sum() + inv_a * inv_a * c34.sum()
        out[13] += -inv_a * dot(c34, ibx)
        out[14] += dot(v4, ibx * ibx) + dot(c34, ibx * ibx)
    return out


#: frequencies up to this go through the compiled pass's tables of ``log(b+x-1)``
_MAX_TABLE_X = 50_000_000


def _row_sums(d: _GroupedData, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    kernels = _kernels.compiled()
    if kernels is None or d.max_x > _MAX_TABLE_X or d.rows == 0:
        return _row_sums_numpy(d, r, alpha, a, b)
    k = np.arange(d.max_x + 1, dtype=np.float64)
    bx = b + k - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):  # k = 0 is never read
        log_bx, inv_bx = np.log(bx), 1.0 / bx
    return _kernels.run(kernels.bgnbd_sums, d.rows, d.x, d.tx, d.T, d.w, log_bx, inv_bx,
                        float(r), float(alpha), float(a))


def _neg_log_likelihood_gradient_hessian(
    log_theta: np.ndarray, d: _GroupedData, hessian: bool = True
) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Total negative log-likelihood, FHL eq. (6), its gradient and its Hessian w.r.t.
    log-parameters.

    ``LL_i = A1 + A2 + log(exp(A3) + delta_{x>0} exp(A4))`` with (FHL section 7 / note 004)
    ``A1 = lnG(r+x) - lnG(r) + r ln(alpha)``,
    ``A2 = lnG(a+b) + lnG(b+x) - lnG(b) - lnG(a+b+x)``,
    ``A3 = -(r+x) ln(alpha+T)``,
    ``A4 = ln(a) - ln(b+x-1) - (r+x) ln(alpha+t_x)``.

    ``A1 + A2`` depends on ``x`` only (one evaluation per distinct ``x``); the log-sum-exp of
    ``A3`` and ``A4`` is one pass over the rows (:func:`_row_sums`), whose Hessian is
    ``w3 H3 + w4 H4 + w3 w4 (g3 - g4)(g3 - g4)'`` with ``w3, w4`` the shares of the two terms.
    """
    theta = np.exp(log_theta)
    r, alpha, a, b = theta
    ux, wx, n = d.ux, d.wx, d.n
    ll = (
        dot(wx, gammaln(r + ux) - gammaln(r) + gammaln(a + b) + gammaln(b + ux) - gammaln(b)
            - gammaln(a + b + ux))
        + n * r * np.log(alpha)
    )
    psi_abx = digamma(a + b + ux)
    psi_ab = digamma(a + b)
    g = np.array([
        dot(wx, digamma(r + ux) - digamma(r)) + n * np.log(alpha),
        n * r / alpha,
        dot(wx, psi_ab - psi_abx),
        dot(wx, psi_ab + digamma(b + ux) - digamma(b) - psi_abx),
    ])
    rows = _row_sums(d, r, alpha, a, b)
    ll += rows[0]
    g += rows[1:5]
    H = None
    if hessian:
        t_abx = polygamma(1, a + b + ux)
        t_ab = polygamma(1, a + b)
        h_ab = dot(wx, t_ab - t_abx)
        upper = np.array([
            dot(wx, polygamma(1, r + ux) - polygamma(1, r)), n / alpha, 0.0, 0.0,
            -n * r / alpha**2, 0.0, 0.0,
            h_ab, h_ab,
            dot(wx, t_ab + polygamma(1, b + ux) - polygamma(1, b) - t_abx),
        ]) + rows[5:]
        H = symmetric(upper, 4)
    f, g_log, H_log = to_log_space(-float(ll), -g, None if H is None else -H, theta)
    return f, g_log, H_log


def _neg_log_likelihood_and_gradient(
    log_theta: np.ndarray, d: _GroupedData
) -> tuple[float, np.ndarray]:
    """Total negative log-likelihood, FHL eq. (6), and its gradient w.r.t. log-parameters."""
    f, g, _ = _neg_log_likelihood_gradient_hessian(log_theta, d, hessian=False)
    return f, g


def log_likelihood(params, frequency, recency, T, weights=None) -> float:
    """Total BG/NBD log-likelihood (FHL eq. 6) of the customers at ``params = (r, alpha, a, b)``."""
    return BetaGeoFitter.log_likelihood_and_gradient(params, frequency, recency, T, weights)[0]


class BetaGeoFitter(PurchaseModel):
    """BG/NBD estimator: ``fit(frequency, recency, T)`` then predict with lifetimes' method names.

    Attributes after ``fit``: ``params_`` (``r, alpha, a, b``), ``standard_errors_``,
    ``log_likelihood_`` (total, in the data's time unit), ``n_``.
    """

    param_names = PARAM_NAMES
    grouped = _GroupedData  # fitted by maximum likelihood on FHL eq. (6)
    neg_log_likelihood = staticmethod(_neg_log_likelihood_and_gradient)
    neg_log_likelihood_hessian = staticmethod(_neg_log_likelihood_gradient_hessian)

    def initial_params(self, mean_x: float, mean_T: float) -> tuple[float, ...]:
        return (1.0, mean_T / max(mean_x, 0.05), 1.0, 2.0)

    def conditional_probability_alive(self, frequency, recency, T):
        """P(alive | x, t_x, T), Fader & Hardie note 021 eq. (2):
        ``1 / (1 + delta_{x>0} a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``."""
        r, alpha, a, b = self._unload()
        x = np.asarray(frequency, dtype=float)
        log_div = (r + x) * np.log(
            (alpha + np.asarray(T, dtype=float)) / (alpha + np.asarray(recency, dtype=float))
        )
        log_div = log_div + np.log(a / (b + np.maximum(x, 1.0) - 1.0))
        p = np.where(x == 0, 1.0, expit(-log_div))
        return same_shape_output(frequency, p)

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        """E[Y(t) | x, t_x, T], FHL eq. (10).

        The factor ``((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)`` is evaluated through
        Euler's transformation as ``(1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``, which neither
        overflows nor loses precision when ``x`` is large.
        """
        r, alpha, a, b = self._unload()
        x = np.asarray(frequency, dtype=float)
        tx = np.asarray(recency, dtype=float)
        age = np.asarray(T, dtype=float)
        t = np.asarray(t, dtype=float)
        z = t / (alpha + age + t)
        c = a + b + x - 1.0
        with np.errstate(invalid="ignore", over="ignore"):
            tail = np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
        bad = ~np.isfinite(tail)
        if np.any(bad):
            # a and b huge (a fit at the boundary where dropout has no heterogeneity): Euler's
            # form is inf * 0 there, while eq. (10) as written, (1-z)^(r+x) 2F1(r+x, b+x; c; z),
            # tends to (1-z)^(r+x) (1 - z b/(a+b))^-(r+x) and is evaluated without trouble
            tail, xs, zs, cs = (np.array(v, dtype=float) for v in np.broadcast_arrays(
                tail, x, z, c))
            tail[bad] = np.exp((r + xs[bad]) * np.log1p(-zs[bad])) * hyp2f1(
                r + xs[bad], b + xs[bad], cs[bad], zs[bad])
        numerator = c / (a - 1.0) * (1.0 - tail)
        denominator = 1.0 + (x > 0) * (a / (b + np.maximum(x, 1.0) - 1.0)) * np.exp(
            (r + x) * np.log((alpha + age) / (alpha + tx))
        )
        return same_shape_output(frequency, numerator / denominator)

    predict = conditional_expected_number_of_purchases_up_to_time

    def expected_number_of_purchases_up_to_time(self, t):
        """E[X(t)] for a randomly chosen customer, FHL eq. (9):
        ``(a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]``."""
        r, alpha, a, b = self._unload()
        t = np.asarray(t, dtype=float)
        hyp = hyp2f1(r, b, a + b - 1.0, t / (alpha + t))
        return same_shape_output(
            t, (a + b - 1.0) / (a - 1.0) * (1.0 - hyp * (alpha / (alpha + t)) ** r)
        )

    def probability_of_n_purchases_up_to_time(self, t: float, n: int) -> float:
        """P(X(t) = n), FHL eq. (8)."""
        r, alpha, a, b = self._unload()
        log_first = (
            betaln(a, b + n)
            - betaln(a, b)
            + gammaln(r + n)
            - gammaln(r)
            - gammaln(n + 1)
            + r * np.log(alpha / (alpha + t))
            + n * np.log(t / (alpha + t))
        )
        total = np.exp(log_first)
        if n > 0:
            j = np.arange(n)
            finite_sum = np.exp(
                gammaln(r + j) - gammaln(r) - gammaln(j + 1) + j * np.log(t / (alpha + t))
            ).sum()
            total += np.exp(betaln(a + 1, b + n - 1) - betaln(a, b)) * (
                1 - (alpha / (alpha + t)) ** r * finite_sum
            )
        return float(total)

    def log_likelihood(self, frequency, recency, T, weights=None) -> float:
        """Total log-likelihood of other customers under the fitted parameters."""
        return log_likelihood(self.params_, frequency, recency, T, weights)
