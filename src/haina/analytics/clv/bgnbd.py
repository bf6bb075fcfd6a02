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
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from ._fitting import (
    PurchaseModel,
    distinct_rows,
    dot,
    factorize,
    same_shape_output,
)

PARAM_NAMES = ("r", "alpha", "a", "b")


class _GroupedData:
    """Distinct ``(x, t_x, T)`` tuples with weights, split at ``x == 0``, with the distinct values
    of ``x``, ``t_x`` and ``T`` factorised so each transcendental function is evaluated once per
    distinct value rather than once per customer."""

    def __init__(self, frequency, recency, T, weights) -> None:
        (x, tx, age), w, _ = distinct_rows(frequency, recency, T, weights=weights)
        keep = w > 0
        x, tx, age, w = x[keep], tx[keep], age[keep], w[keep]
        self.n = float(w.sum())
        self.rows = x.shape[0]
        self.ux, ix = factorize(x)
        self.wx = np.bincount(ix, weights=w, minlength=self.ux.shape[0])  # customers per distinct x
        zero = x == 0
        # x == 0: only the "alive at T" term of FHL eq. (6)
        self.uT0, self.iT0 = factorize(age[zero])
        self.wT0 = np.bincount(self.iT0, weights=w[zero], minlength=self.uT0.shape[0])
        # x > 0: both terms
        pos = ~zero
        self.x1 = x[pos]
        self.w1 = w[pos]
        self.ux1, self.ix1 = factorize(self.x1)
        self.uT1, self.iT1 = factorize(age[pos])
        self.utx1, self.itx1 = factorize(tx[pos])


def _neg_log_likelihood_and_gradient(
    log_theta: np.ndarray, d: _GroupedData
) -> tuple[float, np.ndarray]:
    """Total negative log-likelihood, FHL eq. (6), and its gradient w.r.t. log-parameters.

    ``LL_i = A1 + A2 + log(exp(A3) + delta_{x>0} exp(A4))`` with (FHL section 7 / note 004)
    ``A1 = lnG(r+x) - lnG(r) + r ln(alpha)``,
    ``A2 = lnG(a+b) + lnG(b+x) - lnG(b) - lnG(a+b+x)``,
    ``A3 = -(r+x) ln(alpha+T)``,
    ``A4 = ln(a) - ln(b+x-1) - (r+x) ln(alpha+t_x)``.
    """
    r, alpha, a, b = np.exp(log_theta)
    ux, wx = d.ux, d.wx

    # A1 + A2 and their derivatives depend on x only: one evaluation per distinct x.
    A12 = (
        gammaln(r + ux)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + ux)
        - gammaln(b)
        - gammaln(a + b + ux)
    )
    psi_abx = digamma(a + b + ux)
    psi_ab = digamma(a + b)
    ll = dot(wx, A12)
    g_r = dot(wx, digamma(r + ux) - digamma(r) + np.log(alpha))
    g_alpha = d.n * r / alpha
    g_a = dot(wx, psi_ab - psi_abx)
    g_b = dot(wx, psi_ab + digamma(b + ux) - digamma(b) - psi_abx)

    # x == 0: A3 only.
    if d.uT0.shape[0]:
        log_aT0 = np.log(alpha + d.uT0)
        ll += -r * dot(d.wT0, log_aT0)
        g_r += -dot(d.wT0, log_aT0)
        g_alpha += -r * dot(d.wT0, 1.0 / (alpha + d.uT0))

    # x > 0: log-sum-exp of A3 and A4.
    if d.x1.shape[0]:
        x1, w1 = d.x1, d.w1
        log_aT = np.log(alpha + d.uT1)[d.iT1]
        log_atx = np.log(alpha + d.utx1)[d.itx1]
        log_a_over_bx = (np.log(a) - np.log(b + d.ux1 - 1.0))[d.ix1]
        rx = r + x1
        A3 = -rx * log_aT
        A4 = log_a_over_bx - rx * log_atx
        m = np.maximum(A3, A4)
        e3 = np.exp(A3 - m)
        e4 = np.exp(A4 - m)
        total = e3 + e4
        ll += dot(w1, m + np.log(total))
        v3 = w1 * (e3 / total)  # weight of the A3 term, times the customer count
        v4 = w1 - v3
        g_r += -dot(v3, log_aT) - dot(v4, log_atx)
        inv_aT = (1.0 / (alpha + d.uT1))[d.iT1]
        inv_atx = (1.0 / (alpha + d.utx1))[d.itx1]
        g_alpha += -dot(v3 * rx, inv_aT) - dot(v4 * rx, inv_atx)
        v4_sum = v4.sum()
        g_a += v4_sum / a
        g_b += -dot(
            np.bincount(d.ix1, weights=v4, minlength=d.ux1.shape[0]), 1.0 / (b + d.ux1 - 1.0)
        )

    grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
    return -float(ll), -grad


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
