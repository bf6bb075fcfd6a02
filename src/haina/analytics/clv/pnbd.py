"""The Pareto/NBD model of repeat purchasing (Schmittlein, Morrison & Colombo 1987).

Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987), "Counting Your Customers: Who Are They
and What Will They Do Next?", *Management Science* 33(1), 1-24; the likelihood and the
expressions below follow Fader & Hardie (2005), "A Note on Deriving the Pareto/NBD Model and
Related Expressions" (note 009, cited as FH below).

While alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha); her lifetime is exponential
with rate mu ~ Gamma(s, beta).

Numerical method
----------------
FH eq. (18): ``L = G(r+x) alpha^r beta^s / G(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0 ]``
with ``A0`` given by FH eqs. (19)-(20) as a difference of two Gauss hypergeometric terms. Both
terms are integrals of one function (integrating the individual-level likelihood over
the mixing distributions)::

    s/(r+s+x) A0 = s [G(t_x) - G(T)],  G(t) = int_t^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du

and, by Euler's transformation of the 2F1 in FH eq. (19) (alpha >= beta)::

    G(t) = (alpha+t)^-(r+x) (beta+t)^-s / (r+s+x) * S(r+x, s+1; z),  z = (alpha-beta)/(alpha+t)

and symmetrically for alpha < beta (FH eq. 20)::

    G(t) = (beta+t)^-(s+1) (alpha+t)^(1-r-x) / (r+s+x) * S(s+1, r+x; z),  z = (beta-alpha)/(beta+t)

where ``S(a, b; z) = 2F1(a, 1; a+b; z) = sum_n (a)_n / (a+b)_n z^n``. Every term of ``S`` is
positive and smaller than the one before (the term ratio is below ``z < 1``), so the series
neither overflows nor cancels whatever the frequency: the ``(1-z)^(c-a-b)`` factor that makes
the untransformed 2F1 overflow for customers with thousands of purchases (lifetimes issue #25)
is taken out analytically and kept in log space. ``alpha == beta`` gives ``z = 0``, ``S = 1``.
The series is differentiated term by term for the analytic gradient (its derivatives with
respect to ``a``, ``b`` and ``z``), and the two terms of the likelihood are combined with
log-sum-exp.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln, hyp2f1

from . import _kernels
from ._fitting import (
    PurchaseModel,
    counts_by_value,
    distinct_rows,
    dot,
    same_shape_output,
    worth_grouping,
)

PARAM_NAMES = ("r", "alpha", "s", "beta")

_SERIES_RTOL = 1e-16
_SERIES_MAX_TERMS = 1 << 14
_SERIES_DIRECT_TERMS = 1 << 11
_CHUNK_ELEMENTS = 1 << 15


def hypergeometric_series(a: np.ndarray, b: np.ndarray, z: np.ndarray):
    """``S = 2F1(a, 1; a+b; z) = sum_n prod_{k<n} (a+k)/(a+b+k) z^n`` and its partial derivatives.

    Returns ``(S, dS/da, dS/db, dS/dz)`` for arrays ``a > 0``, ``b > 0``, ``0 <= z < 1``.
    Differentiating term by term: ``d log t_n / da = sum_{k<n} 1/(a+k) - 1/(a+b+k)``,
    ``d log t_n / db = -sum_{k<n} 1/(a+b+k)``, ``dt_n/dz = n t_n / z``.

    Summed in blocks, vectorised over rows and over the terms of a block. The term ratio is below
    ``z``, so ``log(1e-17)/log(z)`` terms bound what a row needs: rows are started on the shortest
    of 4, 8, 16 or 32 terms that the bound allows. A row stops once what is left, at most
    ``t_N z/(1-z)`` (weighted for the derivative sums), is below ``1e-16 S``; rows with ``z``
    near 1 take further blocks, each twice as long as the one before.
    """
    state = _SeriesState(a, b, z)
    with np.errstate(divide="ignore"):
        need = np.log(1e-17) / np.log(z)
    pending = np.flatnonzero(z > 0)
    # rows whose geometric bound is beyond 2048 terms (z > 0.98) go to the connection formulas
    # first; what SciPy cannot evaluate there is summed like the rest
    far = pending[need[pending] > _SERIES_DIRECT_TERMS]
    if far.size:
        done = _near_one(state.a, state.b, state.z, far, state.S, state.Sa, state.Sb, state.Sz)
        pending = np.setdiff1d(pending, done, assume_unique=True)
    unfinished = []
    for block in (4, 8, 16, 32):
        if not pending.size:
            break
        rows = pending[need[pending] <= block] if block < 32 else pending
        pending = pending[need[pending] > block] if block < 32 else pending[:0]
        if rows.size:
            unfinished.append(state.advance(rows, block))
    active = np.concatenate(unfinished) if unfinished else pending
    block = 64
    while active.size:
        active = state.advance(active, block)
        active = active[state.n0[active] < _SERIES_MAX_TERMS]
        block = min(block * 2, 4096)
    stuck = np.flatnonzero(state.unconverged)
    if stuck.size:
        _near_one(state.a, state.b, state.z, stuck, state.S, state.Sa, state.Sb, state.Sz)
    return state.S, state.Sa, state.Sb, state.Sz


class _SeriesState:
    """Partial sums of :func:`hypergeometric_series`, and where each row has got to."""

    def __init__(self, a, b, z) -> None:
        self.a = np.asarray(a, dtype=float)
        self.b = np.asarray(b, dtype=float)
        self.z = np.asarray(z, dtype=float)
        n_rows = self.a.shape[0]
        self.S = np.ones(n_rows)
        self.Sa = np.zeros(n_rows)
        self.Sb = np.zeros(n_rows)
        # dS/dz at z = 0 is the first term ratio
        self.Sz = np.where(self.z == 0, self.a / (self.a + self.b), 0.0)
        self.term = np.ones(n_rows)  # t_n at n = n0
        self.da = np.zeros(n_rows)  # d log t_n / da at n = n0
        self.db = np.zeros(n_rows)
        self.n0 = np.zeros(n_rows)
        self.unconverged = np.zeros(n_rows, dtype=bool)

    def advance(self, rows: np.ndarray, block: int) -> np.ndarray:
        """Add terms ``n0+1 .. n0+block`` for ``rows``; return the rows that need more."""
        # chunks of rows keep the (rows x block) temporaries in cache
        chunk = max(1, _CHUNK_ELEMENTS // block)
        if rows.size <= chunk:
            return self._advance(rows, block)
        return np.concatenate(
            [self._advance(rows[i : i + chunk], block) for i in range(0, rows.size, chunk)]
        )

    def _advance(self, rows: np.ndarray, block: int) -> np.ndarray:
        aa = self.a[rows, None]
        zz = self.z[rows]
        k = self.n0[rows, None] + np.arange(block, dtype=float)
        num = aa + k
        den = num + self.b[rows, None]
        frac = num / den  # t_{k+1} / t_k = frac * z
        start = self.term[rows]
        terms = start[:, None] * np.cumprod(frac * zz[:, None], axis=1)  # t_{n0+1} .. t_{n0+block}
        prev = np.empty_like(terms)
        prev[:, 0] = start
        prev[:, 1:] = terms[:, :-1]
        inv_den = 1.0 / den
        cum_a = self.da[rows, None] + np.cumsum(1.0 / num - inv_den, axis=1)
        cum_b = self.db[rows, None] - np.cumsum(inv_den, axis=1)
        S = self.S[rows] + terms.sum(axis=1)
        self.S[rows] = S
        self.Sa[rows] += np.einsum("ij,ij->i", terms, cum_a)
        self.Sb[rows] += np.einsum("ij,ij->i", terms, cum_b)
        # dt_n/dz = n t_n / z = n t_{n-1} frac_{n-1}: no division by z.
        self.Sz[rows] += np.einsum("ij,ij->i", prev * frac, k + 1.0)
        last = terms[:, -1]
        self.term[rows] = last
        self.da[rows] = cum_a[:, -1]
        self.db[rows] = cum_b[:, -1]
        n0 = self.n0[rows] + block
        self.n0[rows] = n0
        one_minus_z = 1.0 - zz
        weight = (1.0 + np.abs(cum_a[:, -1]) + np.abs(cum_b[:, -1]) + n0) / (
            one_minus_z * one_minus_z
        )
        more = last * weight > _SERIES_RTOL * S
        self.unconverged[rows] = more
        return rows[more]


def _near_one(a, b, z, rows, S, Sa, Sb, Sz) -> np.ndarray:
    """Rows whose ``z`` is so close to 1 that the series would need thousands of terms: take the
    value from ``scipy.special.hyp2f1`` (which uses the connection formulas at ``1 - z``), ``dS/dz``
    from its closed form ``a/(a+b) 2F1(a+1, 2; a+b+1; z)``, and the parameter derivatives by
    central differences. Such rows need ``beta + t`` and ``alpha + t`` orders of magnitude apart.
    Returns the rows it filled in; SciPy gives no finite value for the others."""
    aa, bb, zz = a[rows], b[rows], z[rows]
    with np.errstate(all="ignore"):
        value = hyp2f1(aa, 1.0, aa + bb, zz)
        ha = 1e-6 * np.maximum(aa, 1.0)
        hb = 1e-6 * np.maximum(bb, 1.0)
        d_a = (hyp2f1(aa + ha, 1.0, aa + ha + bb, zz) - hyp2f1(aa - ha, 1.0, aa - ha + bb, zz)) / (
            2 * ha
        )
        d_b = (hyp2f1(aa, 1.0, aa + bb + hb, zz) - hyp2f1(aa, 1.0, aa + bb - hb, zz)) / (2 * hb)
        d_z = aa / (aa + bb) * hyp2f1(aa + 1.0, 2.0, aa + bb + 1.0, zz)
    ok = np.isfinite(value) & np.isfinite(d_a) & np.isfinite(d_b) & np.isfinite(d_z) & (value >= 1)
    rows = rows[ok]
    S[rows], Sa[rows], Sb[rows], Sz[rows] = value[ok], d_a[ok], d_b[ok], d_z[ok]
    return rows


#: one row of a Pareto/NBD fit costs this many sorts of a row (two series per row and
#: evaluation, some 60 evaluations a fit): grouping pays as soon as a few rows repeat
_COST_PER_ROW = {"compiled": 50.0, "numpy": 100.0}


class _GroupedData:
    """The rows of a fit, ``(x, t_x, T)`` with weights, collapsed to distinct tuples when that
    pays (:func:`worth_grouping`; ``group`` forces it either way). For the NumPy path, the
    distinct ``(x, t)`` points at which ``G`` is needed (``t`` being a recency or an age)."""

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
        self.n = float(self.w.sum())
        self.rows = self.x.shape[0]
        self.ux, self.wx = counts_by_value(self.x, self.w)
        self.max_x = int(self.ux[-1]) if self.ux.shape[0] else 0
        self._points: tuple[np.ndarray, ...] | None = None

    def points(self) -> tuple[np.ndarray, ...]:
        """``(point_x, point_t, i_tx, i_T, same)``: the distinct points and, per row, which
        of them are its ``(x, t_x)`` and ``(x, T)``; ``same`` where ``t_x == T`` (the ``A0``
        difference is exactly zero there)."""
        if self._points is None:
            m = self.rows
            (px, pt), _, inverse = distinct_rows(
                np.concatenate([self.x, self.x]),
                np.concatenate([self.tx, self.T]),
                weights=np.ones(2 * m),
            )
            i_tx, i_T = inverse[:m], inverse[m:]
            self._points = (px, pt, i_tx, i_T, i_tx == i_T)
        return self._points


def _log_G(r, alpha, s, beta, x, t, with_gradient: bool = True):
    """``log G(t)`` (see the module docstring) and its gradient w.r.t. ``(r, alpha, s, beta)``."""
    p = r + x  # exponent of (alpha + u)
    log_at = np.log(alpha + t)
    log_bt = np.log(beta + t)
    rsx = r + s + x
    if alpha >= beta:
        z = (alpha - beta) / (alpha + t)
        S, Sa, Sb, Sz = hypergeometric_series(p, np.full_like(p, s + 1.0), z)
        logS = np.log(S)
        logG = -p * log_at - s * log_bt - np.log(rsx) + logS
        if not with_gradient:
            return logG, None
        dz = Sz / S
        d_r = -log_at - 1.0 / rsx + Sa / S
        d_s = -log_bt - 1.0 / rsx + Sb / S
        d_alpha = -p / (alpha + t) + dz * (beta + t) / (alpha + t) ** 2
        d_beta = -s / (beta + t) - dz / (alpha + t)
    else:
        z = (beta - alpha) / (beta + t)
        S, Sa, Sb, Sz = hypergeometric_series(np.full_like(p, s + 1.0), p, z)
        logS = np.log(S)
        logG = -(s + 1.0) * log_bt - (p - 1.0) * log_at - np.log(rsx) + logS
        if not with_gradient:
            return logG, None
        dz = Sz / S
        d_r = -log_at - 1.0 / rsx + Sb / S
        d_s = -log_bt - 1.0 / rsx + Sa / S
        d_beta = -(s + 1.0) / (beta + t) + dz * (alpha + t) / (beta + t) ** 2
        d_alpha = -(p - 1.0) / (alpha + t) - dz / (beta + t)
    return logG, (d_r, d_alpha, d_s, d_beta)


def _log_bracket(theta, x, tx, T, logG_tx, logG_T, same, grads=None):
    """``log B`` with ``B = (alpha+T)^-(r+x) (beta+T)^-s + s (G(t_x) - G(T))`` (the bracket of
    FH eq. 18), in log space, and its gradient when ``grads = (dlogG_tx, dlogG_T)`` is given."""
    r, alpha, s, beta = theta
    log_aT = np.log(alpha + T)
    log_bT = np.log(beta + T)
    logP = -(r + x) * log_aT - s * log_bT
    # log(G(t_x) - G(T)); G decreases in t, clip rounding so the log stays defined.
    gap = np.minimum(logG_T - logG_tx, 0.0)
    with np.errstate(divide="ignore"):
        log_diff = np.where(same, -np.inf, logG_tx + np.log(-np.expm1(np.where(same, -1.0, gap))))
    log_sdiff = np.log(s) + log_diff
    logB = np.logaddexp(logP, log_sdiff)
    if grads is None:
        return logB, logP, None
    d_tx, d_T = grads
    w_P = np.exp(logP - logB)
    w_tx = np.where(same, 0.0, np.exp(np.log(s) + logG_tx - logB))
    w_T = np.where(same, 0.0, np.exp(np.log(s) + logG_T - logB))
    dP = (-log_aT, -(r + x) / (alpha + T), -log_bT, -s / (beta + T))
    dB = [w_P * dP[i] + w_tx * d_tx[i] - w_T * d_T[i] for i in range(4)]
    dB[2] = dB[2] + (w_tx - w_T) / s  # d/ds of the factor s in front of the difference
    return logB, logP, dB


#: the compiled pass leaves to the NumPy code (connection formulas, longer series) the points
#: whose series would need more than 2,048 terms by its geometric bound, as the NumPy code does
_Z_MAX = float(np.exp(np.log(1e-17) / _SERIES_DIRECT_TERMS))
#: series coefficients tabulated per evaluation for x < 32, 128 terms (enough for z < 0.75)
_TABLE_ROWS = 32
_TABLE_TERMS = 128


def _bracket_sums_numpy(theta, d: _GroupedData) -> tuple[float, np.ndarray]:
    """``sum w log B`` and its gradient w.r.t. ``(r, alpha, s, beta)``, vectorised over the
    distinct points."""
    r, alpha, s, beta = theta
    point_x, point_t, i_tx, i_T, same = d.points()
    logG, dG = _log_G(r, alpha, s, beta, point_x, point_t)
    logG_tx, logG_T = logG[i_tx], logG[i_T]
    d_tx = [g[i_tx] for g in dG]
    d_T = [g[i_T] for g in dG]
    logB, _, dB = _log_bracket(theta, d.x, d.tx, d.T, logG_tx, logG_T, same, (d_tx, d_T))
    return dot(d.w, logB), np.array([dot(d.w, dB[i]) for i in range(4)])


def _bracket_sums(theta, d: _GroupedData) -> tuple[float, np.ndarray]:
    """:func:`_bracket_sums_numpy`, in one compiled pass where Numba is there; rows whose series
    needs the connection formulas (``z`` near 1) are left to the NumPy code."""
    kernels = _kernels.compiled()
    if kernels is None or d.rows == 0:
        return _bracket_sums_numpy(theta, d)
    r, alpha, s, beta = (float(v) for v in theta)
    table = kernels.pnbd_table(r, s, alpha >= beta, min(_TABLE_ROWS, d.max_x + 1), _TABLE_TERMS)
    if d.grouped:
        # rows repeat, and their (x, t) points repeat more: G once per distinct point
        px, pt, i_tx, i_T, _ = d.points()
        G = np.empty((5, px.shape[0]))
        left_points = np.zeros(px.shape[0], dtype=np.int8)
        _kernels.run(kernels.pnbd_points, px.shape[0], px, pt, r, alpha, s, beta, _Z_MAX,
                     _SERIES_MAX_TERMS, table, G, left_points)
        rest = np.flatnonzero(left_points)
        if rest.size:
            logG, dG = _log_G(r, alpha, s, beta, px[rest], pt[rest])
            G[0, rest] = logG
            for k in range(4):
                G[k + 1, rest] = dG[k]
        sums = _kernels.run(kernels.pnbd_point_sums, d.rows, d.x, d.tx, d.T, d.w, i_tx, i_T, G,
                            r, alpha, s, beta)
        return float(sums[0]), sums[1:]
    left = np.zeros(d.rows, dtype=np.int8)
    sums = _kernels.run(kernels.pnbd_sums, d.rows, d.x, d.tx, d.T, d.w, r, alpha, s, beta,
                        _Z_MAX, _SERIES_MAX_TERMS, table, left)
    rest = np.flatnonzero(left)
    if rest.size:
        part = _GroupedData.__new__(_GroupedData)
        part.x, part.tx, part.T, part.w = d.x[rest], d.tx[rest], d.T[rest], d.w[rest]
        part.rows = rest.size
        part._points = None  # noqa: SLF001
        ll, g = _bracket_sums_numpy(theta, part)
        sums = sums + np.r_[ll, g]
    return float(sums[0]), sums[1:]


def _neg_log_likelihood_and_gradient(
    log_theta: np.ndarray, d: _GroupedData
) -> tuple[float, np.ndarray]:
    """Total negative log-likelihood, FH eq. (18), and its gradient w.r.t. log-parameters."""
    theta = np.exp(log_theta)
    r, alpha, s, beta = theta
    ll_B, g_B = _bracket_sums(theta, d)
    # the constant part, lnG(r+x) - lnG(r) + r ln alpha + s ln beta, once per distinct x
    ux, wx = d.ux, d.wx
    ll = dot(wx, gammaln(r + ux) - gammaln(r)) + d.n * (r * np.log(alpha) + s * np.log(beta)) + ll_B
    g = np.array(
        [
            dot(wx, digamma(r + ux) - digamma(r)) + d.n * np.log(alpha) + g_B[0],
            d.n * r / alpha + g_B[1],
            d.n * np.log(beta) + g_B[2],
            d.n * s / beta + g_B[3],
        ]
    )
    return -float(ll), -(g * theta)


def _individual_log_likelihood(theta, x, tx, T):
    """Per-customer log-likelihood (FH eq. 18) and ``log P``, the log of its first term."""
    r, alpha, s, beta = theta
    logG_tx, _ = _log_G(r, alpha, s, beta, x, tx, with_gradient=False)
    logG_T, _ = _log_G(r, alpha, s, beta, x, T, with_gradient=False)
    logB, logP, _ = _log_bracket(theta, x, tx, T, logG_tx, logG_T, tx == T)
    const = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return const + logB, const + logP


def log_likelihood(params, frequency, recency, T, weights=None) -> float:
    """Total Pareto/NBD log-likelihood (FH eq. 18) at ``params = (r, alpha, s, beta)``."""
    return log_likelihood_and_gradient(params, frequency, recency, T, weights)[0]


def log_likelihood_and_gradient(
    params, frequency, recency, T, weights=None
) -> tuple[float, np.ndarray]:
    """Total log-likelihood and its gradient w.r.t. ``(r, alpha, s, beta)``."""
    return ParetoNBDFitter.log_likelihood_and_gradient(params, frequency, recency, T, weights)


class ParetoNBDFitter(PurchaseModel):
    """Pareto/NBD estimator: ``fit(frequency, recency, T)`` then predict with lifetimes' names.

    Attributes after ``fit``: ``params_`` (``r, alpha, s, beta``), ``standard_errors_``,
    ``log_likelihood_`` (total, in the data's time unit), ``n_``.
    """

    param_names = PARAM_NAMES
    grouped = _GroupedData  # fitted by maximum likelihood on FH eq. (18)
    neg_log_likelihood = staticmethod(_neg_log_likelihood_and_gradient)

    def initial_params(self, mean_x: float, mean_T: float) -> tuple[float, ...]:
        return (1.0, mean_T / max(mean_x, 0.05), 1.0, mean_T)

    def _arrays(self, frequency, recency, T):
        x = np.asarray(frequency, dtype=float)
        tx = np.asarray(recency, dtype=float)
        age = np.asarray(T, dtype=float)
        x, tx, age = np.broadcast_arrays(np.atleast_1d(x), np.atleast_1d(tx), np.atleast_1d(age))
        return x.astype(float), tx.astype(float), age.astype(float)

    def _log_p_alive(self, x, tx, T):
        ll, logP = _individual_log_likelihood(self._unload(), x, tx, T)
        return logP - ll

    def conditional_probability_alive(self, frequency, recency, T):
        """P(alive | x, t_x, T), FH section 5.1, eqs. (36)-(37): the first term of the
        likelihood over the whole."""
        shape = np.shape(
            np.broadcast_arrays(np.asarray(frequency), np.asarray(recency), np.asarray(T))[0]
        )
        p = np.exp(self._log_p_alive(*self._arrays(frequency, recency, T))).reshape(shape)
        return same_shape_output(frequency, p)

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        """E[Y(t) | x, t_x, T], FH eq. (41):
        ``P(alive) (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]``."""
        r, alpha, s, beta = self._unload()
        shape = np.shape(
            np.broadcast_arrays(
                np.asarray(t), np.asarray(frequency), np.asarray(recency), np.asarray(T)
            )[0]
        )
        t_arr, x, tx, age = (
            np.broadcast_to(np.asarray(v, dtype=float), shape).reshape(-1)
            for v in (t, frequency, recency, T)
        )
        log_alive = self._log_p_alive(x, tx, age)
        value = (
            np.exp(log_alive)
            * (r + x)
            * (beta + age)
            / (alpha + age)
            * _lifetime_factor(s, beta + age, t_arr)
        )
        return same_shape_output(frequency, value.reshape(shape))

    predict = conditional_expected_number_of_purchases_up_to_time

    def expected_number_of_purchases_up_to_time(self, t):
        """E[X(t)] for a randomly chosen customer, FH eq. (27):
        ``r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]``."""
        r, alpha, s, beta = self._unload()
        t = np.asarray(t, dtype=float)
        return same_shape_output(t, r * beta / alpha * _lifetime_factor(s, beta, t))

    def log_likelihood(self, frequency, recency, T, weights=None) -> float:
        """Total log-likelihood of other customers under the fitted parameters."""
        return log_likelihood(self.params_, frequency, recency, T, weights)


def _lifetime_factor(s: float, base, t):
    """``[1 - (base/(base+t))^(s-1)] / (s-1)``; at ``s = 1`` its limit ``log((base+t)/base)``."""
    log_ratio = np.log(base / (base + t))
    if abs(s - 1.0) < 1e-12:
        return -log_ratio
    return -np.expm1((s - 1.0) * log_ratio) / (s - 1.0)
