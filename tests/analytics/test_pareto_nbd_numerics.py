"""Pareto/NBD stays finite and exact where the textbook 2F1 formula overflows (lifetimes #25),
and the analytic gradients of all three models agree with finite differences."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import hyp2f1

from haina.analytics.clv import bgnbd, gammagamma, pnbd
from haina.analytics.clv.estimators import ParetoNBDFitter

PARAMS = [
    (0.55, 10.5, 0.6, 11.7),  # alpha < beta
    (0.55, 12.5, 0.6, 11.7),  # alpha > beta
    (1.0, 3.0, 1.0, 3.0),  # alpha == beta
    (2.0, 0.5, 3.0, 0.4),
]


def heavy_buyers():
    """Customers with thousands of repeat purchases, observed for a year in days."""
    x = np.array([0, 1, 10, 100, 1000, 3000, 8000, 20000], dtype=float)
    tx = np.array([0, 5, 30, 200, 300, 350, 364, 364.9])
    return x, tx, np.full(x.shape, 365.0)


@pytest.mark.parametrize("params", PARAMS + [(0.1, 100.0, 0.01, 0.01), (0.1, 0.01, 2.0, 1000.0)])
def test_frequency_in_the_thousands_gives_a_finite_log_likelihood_and_gradient(params):
    x, tx, T = heavy_buyers()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, no invalid value
        ll, grad = pnbd.log_likelihood_and_gradient(params, x, tx, T)
        ll_each, _ = pnbd._individual_log_likelihood(np.array(params), x, tx, T)
    assert np.isfinite(ll) and np.all(np.isfinite(grad))
    assert np.all(np.isfinite(ll_each))


def test_heavy_buyers_can_be_fitted_and_scored():
    from haina.analytics.clv import simulate

    x, tx, T = heavy_buyers()
    light_x, light_tx, light_T = simulate.pareto_nbd(365.0, 0.55, 70.0, 0.6, 80.0, 3000, rng=3)
    model = ParetoNBDFitter().fit(np.r_[x, light_x], np.r_[tx, light_tx], np.r_[T, light_T])
    assert np.isfinite(model.log_likelihood_)
    p = model.conditional_probability_alive(x, tx, T)
    e = model.conditional_expected_number_of_purchases_up_to_time(30, x, tx, T)
    assert np.all((p >= 0) & (p <= 1)) and np.all(np.isfinite(e))
    assert e[-1] > e[-2] > e[-3]  # more purchases, later: more expected


def reference_log_likelihood(mp, r, alpha, s, beta, x, tx, T):
    """FH eq. (18) and eqs. (19)-(20) term for term, in mpmath arithmetic."""
    r, alpha, s, beta, x, tx, T = (mp.mpf(float(v)) for v in (r, alpha, s, beta, x, tx, T))
    hi, lo, shape = (alpha, beta, s + 1) if alpha >= beta else (beta, alpha, r + x)
    rsx = r + s + x

    def term(t):
        return mp.hyp2f1(rsx, shape, rsx + 1, (hi - lo) / (hi + t)) / (hi + t) ** rsx

    A0 = term(tx) - term(T)
    first = 1 / ((alpha + T) ** (r + x) * (beta + T) ** s)
    L = mp.gamma(r + x) * alpha**r * beta**s / mp.gamma(r) * (first + s / rsx * A0)
    return float(mp.log(L))


def test_log_likelihood_agrees_with_an_independent_high_precision_evaluation():
    """Against mpmath's 2F1 at 40 digits, where mpmath is installed."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    x, tx, T = heavy_buyers()
    for params in PARAMS[:2]:
        ours, _ = pnbd._individual_log_likelihood(np.array(params), x, tx, T)
        for xi, txi, Ti, value in zip(x, tx, T, ours, strict=True):
            expected = reference_log_likelihood(mp, *params, xi, txi, Ti)
            assert value == pytest.approx(expected, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize(
    ("a", "b", "z"),
    [
        (0.6, 1.55, 0.05),
        (1.6, 0.55, 0.5),
        (1.6, 2.3, 0.9999),
        (50.6, 1.6, 0.99),
        (1000.5, 1.6, 0.3),
        (3.0, 0.1, 1 - 1e-7),
        (1.6, 2000.0, 0.9),
        (1.6, 0.55, 0.97),
    ],
)
def test_series_and_its_derivatives_equal_scipy_hyp2f1(a, b, z):
    """``S = 2F1(a, 1; a+b; z)``; ``dS/dz = a/(a+b) 2F1(a+1, 2; a+b+1; z)``; ``dS/da`` and ``dS/db``
    against a fourth-order central difference of SciPy's value."""
    S, Sa, Sb, Sz = pnbd.hypergeometric_series(np.array([a]), np.array([b]), np.array([z]))
    assert S[0] == pytest.approx(hyp2f1(a, 1.0, a + b, z), rel=1e-9)
    assert Sz[0] == pytest.approx(a / (a + b) * hyp2f1(a + 1, 2.0, a + b + 1, z), rel=1e-6)

    def central(f, v):
        h = 1e-3 * v
        return (8 * (f(v + h) - f(v - h)) - (f(v + 2 * h) - f(v - 2 * h))) / (12 * h)

    assert Sa[0] == pytest.approx(central(lambda v: hyp2f1(v, 1.0, v + b, z), a), rel=1e-5)
    assert Sb[0] == pytest.approx(central(lambda v: hyp2f1(a, 1.0, a + v, z), b), rel=1e-5)


def finite_difference_gradient(f, theta, h=1e-6):
    theta = np.asarray(theta, dtype=float)
    grad = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h * theta[i]
        grad[i] = (f(theta + e) - f(theta - e)) / (2 * e[i])
    return grad


@pytest.mark.parametrize("params", PARAMS)
def test_pareto_nbd_gradient_is_the_derivative_of_the_log_likelihood(params, cdnow_summary):
    x, tx, T = (cdnow_summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    _, grad = pnbd.log_likelihood_and_gradient(params, x, tx, T)
    numeric = finite_difference_gradient(lambda th: pnbd.log_likelihood(th, x, tx, T), params)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("params", [(0.25, 4.4, 0.8, 2.4), (2.0, 0.5, 3.0, 0.4)])
def test_bgnbd_gradient_is_the_derivative_of_the_log_likelihood(params, cdnow_summary):
    x, tx, T = (cdnow_summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    d = bgnbd._GroupedData(x, tx, T, np.ones_like(x))
    _, grad_log = bgnbd._neg_log_likelihood_and_gradient(np.log(params), d)
    numeric = finite_difference_gradient(lambda th: bgnbd.log_likelihood(th, x, tx, T), params)
    np.testing.assert_allclose(-grad_log / np.array(params), numeric, rtol=1e-5, atol=1e-3)


def test_gamma_gamma_gradient_is_the_derivative_of_the_log_likelihood(cdnow_with_monetary):
    x, m = (
        cdnow_with_monetary["frequency"].to_numpy(float),
        cdnow_with_monetary["monetary_value"].to_numpy(float),
    )
    params = (5.0, 3.0, 12.0)
    d = gammagamma._Data(x, m, np.ones_like(x))
    _, grad_log = gammagamma._neg_log_likelihood_and_gradient(np.log(params), d)
    numeric = finite_difference_gradient(lambda th: gammagamma.log_likelihood(th, x, m), params)
    np.testing.assert_allclose(-grad_log / np.array(params), numeric, rtol=1e-5, atol=1e-3)
