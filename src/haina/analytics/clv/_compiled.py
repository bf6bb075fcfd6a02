"""Compiled per-customer passes of the lifecycle likelihoods (Numba, on every core).

Imported only through :mod:`._kernels`, which falls back to the NumPy code of each model when
Numba is missing or switched off. Each kernel makes ONE pass over the customer rows and returns
the sums the fit needs (the log-likelihood, its gradient and, for BG/NBD and Gamma-Gamma, its
Hessian) over rows ``lo .. hi-1``, so no per-customer temporary is written to memory. The
kernels release the GIL: :func:`._kernels.run` cuts the rows into one slice per core and runs
the slices on threads, then adds their sums in a fixed order (so a result does not depend on
how threads were scheduled). Threads rather than Numba's ``prange``: measured on this project's
2-core machine, the ``prange`` form of the same loop ran at half the speed of the serial one. The formulas are those of the NumPy code in ``bgnbd``, ``pnbd`` and ``gammagamma``
(read their docstrings); tests check both paths against each other and against lifetimes.

Compiled code is cached on disk (``cache=True``): only the first call after an install compiles.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_jit = njit(cache=True, nogil=True, error_model="numpy")


@_jit
def bgnbd_sums(lo, hi, x, tx, T, w, log_bx, inv_bx, r, alpha, a):  # pragma: no cover - compiled
    """Sums over rows of the ``A3``/``A4`` part of the BG/NBD log-likelihood (FHL eq. 6).

    ``log_bx[k] = log(b + k - 1)`` and ``inv_bx[k] = 1/(b + k - 1)`` for whole ``k = x``.
    Returns ``[ll, g_r, g_alpha, g_a, g_b, H_rr, H_ralpha, H_alphaalpha, H_aa, H_bb, H_ab...]``
    in natural parameters: the 4 gradient entries and the 10 Hessian entries (upper triangle,
    row-major: rr, ralpha, ra, rb, alphaalpha, alphaa, alphab, aa, ab, bb)."""
    log_a = math.log(a)
    inv_a = 1.0 / a
    ll = 0.0
    g0 = 0.0
    g1 = 0.0
    g2 = 0.0
    g3 = 0.0
    h00 = 0.0
    h01 = 0.0
    h02 = 0.0
    h03 = 0.0
    h11 = 0.0
    h12 = 0.0
    h13 = 0.0
    h22 = 0.0
    h23 = 0.0
    h33 = 0.0
    for i in range(lo, hi):
        wi = w[i]
        xi = x[i]
        at = alpha + T[i]
        lT = math.log(at)
        iT = 1.0 / at
        if xi == 0.0:
            # A3 only: -r log(alpha + T)
            ll -= wi * r * lT
            g0 -= wi * lT
            g1 -= wi * r * iT
            h01 -= wi * iT
            h11 += wi * r * iT * iT
        else:
            k = int(xi)
            atx = alpha + tx[i]
            ltx = math.log(atx)
            itx = 1.0 / atx
            rx = r + xi
            lbx = log_bx[k]
            ibx = inv_bx[k]
            A3 = -rx * lT
            A4 = log_a - lbx - rx * ltx
            if A3 >= A4:
                e = math.exp(A4 - A3)
                lse = A3 + math.log1p(e)
                w3 = 1.0 / (1.0 + e)
                w4 = e * w3
            else:
                e = math.exp(A3 - A4)
                lse = A4 + math.log1p(e)
                w4 = 1.0 / (1.0 + e)
                w3 = e * w4
            ll += wi * lse
            # gradients of A3: (-lT, -rx iT, 0, 0); of A4: (-ltx, -rx itx, 1/a, -1/(b+x-1))
            g0 += wi * (-w3 * lT - w4 * ltx)
            g1 += wi * (-rx) * (w3 * iT + w4 * itx)
            g2 += wi * w4 * inv_a
            g3 -= wi * w4 * ibx
            # Hessian: w3 H3 + w4 H4 + w3 w4 (g3 - g4)(g3 - g4)'
            d0 = ltx - lT
            d1 = rx * (itx - iT)
            d2 = -inv_a
            d3 = ibx
            c34 = wi * w3 * w4
            h00 += c34 * d0 * d0
            h01 += wi * (-w3 * iT - w4 * itx) + c34 * d0 * d1
            h02 += c34 * d0 * d2
            h03 += c34 * d0 * d3
            h11 += wi * rx * (w3 * iT * iT + w4 * itx * itx) + c34 * d1 * d1
            h12 += c34 * d1 * d2
            h13 += c34 * d1 * d3
            h22 += -wi * w4 * inv_a * inv_a + c34 * d2 * d2
            h23 += c34 * d2 * d3
            h33 += wi * w4 * ibx * ibx + c34 * d3 * d3
    row = np.empty(15)
    row[0] = ll
    row[1] = g0
    row[2] = g1
    row[3] = g2
    row[4] = g3
    row[5] = h00
    row[6] = h01
    row[7] = h02
    row[8] = h03
    row[9] = h11
    row[10] = h12
    row[11] = h13
    row[12] = h22
    row[13] = h23
    row[14] = h33
    return row


@_jit
def gamma_gamma_sums(lo, hi, x, m, w, gamma):  # pragma: no cover - compiled
    """``[sum w x L, sum w L, sum w x/(xm+g), sum w/(xm+g), sum w x/(xm+g)^2, sum w/(xm+g)^2]``
    with ``L = log(x m + gamma)``: every sum over customers the Gamma-Gamma likelihood, its
    gradient and its Hessian need (the rest depends on ``x`` alone)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    s5 = 0.0
    for i in range(lo, hi):
        xi = x[i]
        wi = w[i]
        u = xi * m[i] + gamma
        L = math.log(u)
        inv = 1.0 / u
        wx = wi * xi
        s0 += wx * L
        s1 += wi * L
        s2 += wx * inv
        s3 += wi * inv
        s4 += wx * inv * inv
        s5 += wi * inv * inv
    row = np.empty(6)
    row[0] = s0
    row[1] = s1
    row[2] = s2
    row[3] = s3
    row[4] = s4
    row[5] = s5
    return row


# ------------------------------------------------------------------------------------------
# Pareto/NBD


@_jit
def _series(a, b, z, max_terms):  # pragma: no cover - compiled
    """``S = 2F1(a, 1; a+b; z)`` and ``dS/da, dS/db, dS/dz`` term by term (``pnbd`` module
    docstring), stopping when the remainder is below ``1e-16 S``. The last value says whether
    it converged within ``max_terms``."""
    if z == 0.0:
        return 1.0, 0.0, 0.0, a / (a + b), True
    S = 1.0
    Sa = 0.0
    Sb = 0.0
    Sz = 0.0
    term = 1.0
    da = 0.0
    db = 0.0
    inv_1mz = 1.0 / (1.0 - z)
    inv_1mz2 = inv_1mz * inv_1mz
    n = 0
    while n < max_terms:
        num = a + n
        den = num + b
        inv_den = 1.0 / den
        frac = num * inv_den
        Sz += (n + 1.0) * term * frac  # dt_{n+1}/dz = (n+1) t_n frac_n
        da += 1.0 / num - inv_den
        db -= inv_den
        term *= frac * z
        n += 1
        S += term
        Sa += term * da
        Sb += term * db
        if term * (1.0 + abs(da) + abs(db) + n) * inv_1mz2 <= 1e-16 * S:
            return S, Sa, Sb, Sz, True
    return S, Sa, Sb, Sz, False


@_jit
def pnbd_table(r, s, alpha_ge_beta, rows, terms):  # pragma: no cover - compiled
    """The coefficients of the series ``S`` for ``x = 0 .. rows-1``, so that a customer's series
    is a polynomial in her ``z`` (no division per term): ``table[0, x, n] = c_n`` (the term
    without ``z^n``), ``[1] = c_n dlog t_n/da``, ``[2] = c_n dlog t_n/db``, ``[3] = n c_n``
    (the coefficient of ``z^(n-1)`` in ``dS/dz``), ``[4]`` the weight of the stopping rule
    ``1 + |dlog t_n/da| + |dlog t_n/db| + n``. ``(a, b)`` is ``(r+x, s+1)`` when
    ``alpha >= beta``, else ``(s+1, r+x)`` (``pnbd`` module docstring)."""
    table = np.empty((5, rows, terms + 1))
    for xi in range(rows):
        if alpha_ge_beta:
            a = r + xi
            b = s + 1.0
        else:
            a = s + 1.0
            b = r + xi
        term = 1.0
        da = 0.0
        db = 0.0
        table[0, xi, 0] = 1.0
        table[1, xi, 0] = 0.0
        table[2, xi, 0] = 0.0
        table[3, xi, 0] = 0.0
        table[4, xi, 0] = 1.0
        for n in range(terms):
            num = a + n
            den = num + b
            frac = num / den
            table[3, xi, n + 1] = (n + 1.0) * term * frac
            da += 1.0 / num - 1.0 / den
            db -= 1.0 / den
            term *= frac
            table[0, xi, n + 1] = term
            table[1, xi, n + 1] = term * da
            table[2, xi, n + 1] = term * db
            table[4, xi, n + 1] = 1.0 + abs(da) + abs(db) + n + 1.0
    return table


@_jit
def _series_from_table(table, xi, z):  # pragma: no cover - compiled
    """:func:`_series` from the coefficients of :func:`pnbd_table` (row ``xi``); the last value
    is False when the table is too short for this ``z``."""
    inv_1mz = 1.0 / (1.0 - z)
    inv_1mz2 = inv_1mz * inv_1mz
    S = 1.0
    Sa = 0.0
    Sb = 0.0
    Sz = 0.0
    zk = 1.0  # z^(n-1)
    for n in range(1, table.shape[2]):
        Sz += table[3, xi, n] * zk
        zk *= z
        tn = table[0, xi, n] * zk
        S += tn
        Sa += table[1, xi, n] * zk
        Sb += table[2, xi, n] * zk
        if tn * table[4, xi, n] * inv_1mz2 <= 1e-16 * S:
            return S, Sa, Sb, Sz, True
    return S, Sa, Sb, Sz, False


@_jit
def _log_G(r, alpha, s, beta, x, t, log_at, log_bt, log_rsx, z_max, max_terms, table):
    # pragma: no cover - compiled
    """``log G(t)`` and its gradient w.r.t. ``(r, alpha, s, beta)`` (``pnbd._log_G``), given
    ``log(alpha+t)``, ``log(beta+t)`` and ``log(r+s+x)``; the last value is False when the
    series is left to the NumPy path (``z`` too close to 1)."""
    p = r + x
    at = alpha + t
    bt = beta + t
    rsx = r + s + x
    xi = int(x)
    if alpha >= beta:
        z = (alpha - beta) / at
        if z > z_max:
            return 0.0, 0.0, 0.0, 0.0, 0.0, False
        ok = False
        if xi < table.shape[1]:
            S, Sa, Sb, Sz, ok = _series_from_table(table, xi, z)
        if not ok:
            S, Sa, Sb, Sz, ok = _series(p, s + 1.0, z, max_terms)
        dz = Sz / S
        logG = -p * log_at - s * log_bt - log_rsx + math.log(S)
        d_r = -log_at - 1.0 / rsx + Sa / S
        d_s = -log_bt - 1.0 / rsx + Sb / S
        d_alpha = -p / at + dz * bt / (at * at)
        d_beta = -s / bt - dz / at
    else:
        z = (beta - alpha) / bt
        if z > z_max:
            return 0.0, 0.0, 0.0, 0.0, 0.0, False
        ok = False
        if xi < table.shape[1]:
            S, Sa, Sb, Sz, ok = _series_from_table(table, xi, z)
        if not ok:
            S, Sa, Sb, Sz, ok = _series(s + 1.0, p, z, max_terms)
        dz = Sz / S
        logG = -(s + 1.0) * log_bt - (p - 1.0) * log_at - log_rsx + math.log(S)
        d_r = -log_at - 1.0 / rsx + Sb / S
        d_s = -log_bt - 1.0 / rsx + Sa / S
        d_beta = -(s + 1.0) / bt + dz * at / (bt * bt)
        d_alpha = -(p - 1.0) / at - dz / bt
    return logG, d_r, d_alpha, d_s, d_beta, ok


@_jit
def _combine(logP, dP0, dP1, dP2, dP3, gx, ax0, ax1, ax2, ax3, gT, aT0, aT1, aT2, aT3, log_s, s):
    # pragma: no cover - compiled
    """``log B`` and its gradient for one customer, ``B = P + s (G(t_x) - G(T))`` with
    ``log P = logP`` and its gradient ``dP``, ``log G`` and gradients at ``t_x`` and ``T``: the
    shares of the three terms come from the exponentials of the log-sum-exp."""
    gap = gT - gx
    if gap > 0.0:
        gap = 0.0
    em1 = math.expm1(gap)  # G(T)/G(t_x) - 1
    # log s(G(t_x) - G(T))
    lsd = log_s + gx + math.log(-em1)
    if logP >= lsd:
        e = math.exp(lsd - logP)
        logB = logP + math.log1p(e)
        wP = 1.0 / (1.0 + e)
        wD = e * wP  # share of s(G(t_x) - G(T)) in B
    else:
        e = math.exp(logP - lsd)
        logB = lsd + math.log1p(e)
        wD = 1.0 / (1.0 + e)
        wP = e * wD
    # s G(t_x)/B and s G(T)/B from the share of their difference
    if em1 == 0.0:
        wx_ = math.exp(log_s + gx - logB)
        wT = wx_
    else:
        wx_ = wD / -em1
        wT = wx_ * (1.0 + em1)
    return (
        logB,
        wP * dP0 + wx_ * ax0 - wT * aT0,
        wP * dP1 + wx_ * ax1 - wT * aT1,
        wP * dP2 + wx_ * ax2 - wT * aT2 + wD / s,
        wP * dP3 + wx_ * ax3 - wT * aT3,
    )


@_jit
def pnbd_points(lo, hi, px, pt, r, alpha, s, beta, z_max, max_terms, table, G, left):
    # pragma: no cover - compiled
    """``log G`` and its gradient at the distinct points ``(x, t)`` of grouped data, into the
    rows of ``G`` (5 x points); points left to the NumPy code flagged in ``left``."""
    for j in range(lo, hi):
        x = px[j]
        t = pt[j]
        g, d0, d1, d2, d3, ok = _log_G(r, alpha, s, beta, x, t, math.log(alpha + t),
                                       math.log(beta + t), math.log(r + s + x), z_max,
                                       max_terms, table)
        G[0, j] = g
        G[1, j] = d0
        G[2, j] = d1
        G[3, j] = d2
        G[4, j] = d3
        left[j] = 0 if ok else 1
    return np.zeros(1)


@_jit
def pnbd_point_sums(lo, hi, x, tx, T, w, i_tx, i_T, G, r, alpha, s, beta):
    # pragma: no cover - compiled
    """:func:`pnbd_sums` from ``G`` at the distinct points (:func:`pnbd_points`)."""
    log_s = math.log(s)
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    for i in range(lo, hi):
        xi = x[i]
        at = alpha + T[i]
        bt = beta + T[i]
        log_aT = math.log(at)
        log_bT = math.log(bt)
        logP = -(r + xi) * log_aT - s * log_bT
        dP0 = -log_aT
        dP1 = -(r + xi) / at
        dP2 = -log_bT
        dP3 = -s / bt
        wi = w[i]
        j = i_tx[i]
        k = i_T[i]
        if j == k:
            s0 += wi * logP
            s1 += wi * dP0
            s2 += wi * dP1
            s3 += wi * dP2
            s4 += wi * dP3
            continue
        logB, c1, c2, c3, c4 = _combine(logP, dP0, dP1, dP2, dP3, G[0, j], G[1, j], G[2, j],
                                        G[3, j], G[4, j], G[0, k], G[1, k], G[2, k], G[3, k],
                                        G[4, k], log_s, s)
        s0 += wi * logB
        s1 += wi * c1
        s2 += wi * c2
        s3 += wi * c3
        s4 += wi * c4
    row = np.empty(5)
    row[0] = s0
    row[1] = s1
    row[2] = s2
    row[3] = s3
    row[4] = s4
    return row


@_jit
def pnbd_sums(lo, hi, x, tx, T, w, r, alpha, s, beta, z_max, max_terms, table, left):
    # pragma: no cover - compiled
    """``[sum w log B, sum w dlogB/d(r, alpha, s, beta)]`` over rows, ``B`` the bracket of FH
    eq. (18) (``pnbd._log_bracket``). Rows whose series is left to the NumPy path are flagged
    in ``left`` (set to 1) and not summed.

    Work shared between rows and terms: ``G(t_x)`` of every customer without a repeat purchase
    is ``G(0)`` at ``x = 0``, evaluated once; ``log(alpha+T)``, ``log(beta+T)`` and
    ``log(r+s+x)`` serve both the first term and ``G(T)``; the shares of the three terms of
    ``B`` come from the exponentials of the log-sum-exp."""
    log_s = math.log(s)
    log_rs = math.log(r + s)
    g0, a00, a01, a02, a03, ok0 = _log_G(r, alpha, s, beta, 0.0, 0.0, math.log(alpha),
                                         math.log(beta), log_rs, z_max, max_terms, table)
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    for i in range(lo, hi):
        xi = x[i]
        ti = T[i]
        txi = tx[i]
        at = alpha + ti
        bt = beta + ti
        log_aT = math.log(at)
        log_bT = math.log(bt)
        logP = -(r + xi) * log_aT - s * log_bT
        dP0 = -log_aT
        dP1 = -(r + xi) / at
        dP2 = -log_bT
        dP3 = -s / bt
        if txi == ti:
            # G(t_x) - G(T) = 0: the bracket is its first term
            wi = w[i]
            s0 += wi * logP
            s1 += wi * dP0
            s2 += wi * dP1
            s3 += wi * dP2
            s4 += wi * dP3
            left[i] = 0
            continue
        if xi == 0.0:
            log_rsx = log_rs
            gx, ax0, ax1, ax2, ax3, okx = g0, a00, a01, a02, a03, ok0
        else:
            log_rsx = math.log(r + s + xi)
            gx, ax0, ax1, ax2, ax3, okx = _log_G(
                r, alpha, s, beta, xi, txi, math.log(alpha + txi), math.log(beta + txi),
                log_rsx, z_max, max_terms, table)
        gT, aT0, aT1, aT2, aT3, okT = _log_G(r, alpha, s, beta, xi, ti, log_aT, log_bT,
                                             log_rsx, z_max, max_terms, table)
        if not (okx and okT):
            left[i] = 1
            continue
        left[i] = 0
        logB, c1, c2, c3, c4 = _combine(logP, dP0, dP1, dP2, dP3, gx, ax0, ax1, ax2, ax3,
                                        gT, aT0, aT1, aT2, aT3, log_s, s)
        wi = w[i]
        s0 += wi * logB
        s1 += wi * c1
        s2 += wi * c2
        s3 += wi * c3
        s4 += wi * c4
    row = np.empty(5)
    row[0] = s0
    row[1] = s1
    row[2] = s2
    row[3] = s3
    row[4] = s4
    return row
