"""The compiled one-pass likelihoods (Numba) and their NumPy fallback give the same numbers; the
analytic Hessians are the derivatives of the gradients; rows are grouped where it pays; the
Pareto/NBD log-likelihood is exact against mpmath on a drawn grid up to thousands of purchases."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haina.analytics.clv import _kernels, bgnbd, gammagamma, pnbd, simulate
from haina.analytics.clv._fitting import worth_grouping
from haina.analytics.clv.estimators import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

needs_numba = pytest.mark.skipif(not _kernels.available(), reason="Numba is not installed")


def paths():
    """Both implementations: the compiled one (where Numba is installed) and NumPy's."""
    yield "numpy", _kernels.numpy_only
    if _kernels.available():
        yield "compiled", contextlib.nullcontext


PATHS = [pytest.param(ctx, id=name) for name, ctx in paths()]


def continuous_bgnbd(n=6000, seed=1):
    rng = np.random.default_rng(seed)
    return simulate.bgnbd(rng.uniform(1.0, 100.0, n), 0.5, 8.0, 0.7, 2.5, rng=rng)


def continuous_pnbd(n=6000, seed=2):
    rng = np.random.default_rng(seed)
    return simulate.pareto_nbd(rng.uniform(1.0, 100.0, n), 0.6, 9.0, 0.7, 12.0, rng=rng)


def spend(n=6000, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.poisson(3.0, n).astype(float)
    return x, simulate.gamma_gamma(x, 5.0, 3.0, 12.0, rng=rng)


@needs_numba
@pytest.mark.parametrize("params", [(0.5, 8.0, 0.7, 2.5), (2.0, 0.5, 3.0, 0.4), (0.1, 90.0, 5, 9)])
def test_bgnbd_compiled_pass_equals_numpy(params):
    x, tx, T = continuous_bgnbd()
    d = bgnbd._GroupedData(x, tx, T, np.ones_like(x), group=False)
    z = np.log(params)
    f, g, H = bgnbd._neg_log_likelihood_gradient_hessian(z, d)
    with _kernels.numpy_only():
        f0, g0, H0 = bgnbd._neg_log_likelihood_gradient_hessian(z, d)
    assert f == pytest.approx(f0, rel=1e-13)
    np.testing.assert_allclose(g, g0, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(H, H0, rtol=1e-10, atol=1e-8)


@needs_numba
@pytest.mark.parametrize("group", [False, True], ids=["rows", "distinct-points"])
@pytest.mark.parametrize(
    "params",
    [(0.6, 9.0, 0.7, 12.0), (0.6, 14.0, 0.7, 12.0), (1.0, 3.0, 1.0, 3.0), (0.5, 300.0, 0.3, 2.0)],
)
def test_pareto_nbd_compiled_pass_equals_numpy(params, group):
    """Per row, or per distinct (x, t) point for grouped data; including parameters where many
    customers' series need the connection formulas (``z`` near 1: alpha = 300, beta = 2), which
    the compiled pass leaves to the NumPy code."""
    x, tx, T = continuous_pnbd()
    if group:  # whole days: points repeat
        T = np.ceil(T)
        tx = np.where(x > 0, np.clip(np.ceil(tx), 1.0, T), 0.0)
    x = np.r_[x, 2000.0, 5000.0]
    tx, T = np.r_[tx, 90.0, 99.0], np.r_[T, 100.0, 100.0]
    d = pnbd._GroupedData(x, tx, T, np.ones_like(x), group=group)
    z = np.log(params)
    f, g = pnbd._neg_log_likelihood_and_gradient(z, d)
    with _kernels.numpy_only():
        f0, g0 = pnbd._neg_log_likelihood_and_gradient(z, d)
    assert f == pytest.approx(f0, rel=1e-13)
    np.testing.assert_allclose(g, g0, rtol=1e-9, atol=1e-7)


@needs_numba
@pytest.mark.parametrize("params", [(5.0, 3.0, 12.0), (0.5, 0.8, 300.0)])
def test_gamma_gamma_compiled_pass_equals_numpy(params):
    x, m = spend()
    d = gammagamma._Data(x, m, np.ones_like(x))
    z = np.log(params)
    f, g, H = gammagamma._neg_log_likelihood_gradient_hessian(z, d)
    with _kernels.numpy_only():
        f0, g0, H0 = gammagamma._neg_log_likelihood_gradient_hessian(z, d)
    assert f == pytest.approx(f0, rel=1e-13)
    np.testing.assert_allclose(g, g0, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(H, H0, rtol=1e-10, atol=1e-8)


def numerical_jacobian(grad, z, h=1e-6):
    cols = []
    for i in range(z.shape[0]):
        e = np.zeros_like(z)
        e[i] = h
        cols.append((grad(z + e) - grad(z - e)) / (2 * h))
    return np.array(cols).T


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("params", [(0.5, 8.0, 0.7, 2.5), (2.0, 0.5, 3.0, 0.4)])
def test_bgnbd_hessian_is_the_derivative_of_the_gradient(path, params):
    x, tx, T = continuous_bgnbd(2000)
    d = bgnbd._GroupedData(x, tx, T, np.ones_like(x))
    z = np.log(params)
    with path():
        _, _, H = bgnbd._neg_log_likelihood_gradient_hessian(z, d)
        numeric = numerical_jacobian(lambda v: bgnbd._neg_log_likelihood_and_gradient(v, d)[1], z)
    np.testing.assert_allclose(H, numeric, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("params", [(5.0, 3.0, 12.0), (0.5, 0.8, 300.0)])
def test_gamma_gamma_hessian_is_the_derivative_of_the_gradient(path, params):
    x, m = spend(2000)
    d = gammagamma._Data(x, m, np.ones_like(x))
    z = np.log(params)
    with path():
        _, _, H = gammagamma._neg_log_likelihood_gradient_hessian(z, d)
        numeric = numerical_jacobian(
            lambda v: gammagamma._neg_log_likelihood_and_gradient(v, d)[1], z
        )
    np.testing.assert_allclose(H, numeric, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("path", PATHS)
def test_fits_are_the_same_grouped_or_not_on_either_path(path):
    """The same optimum whether rows are grouped or not, on the compiled path or NumPy's (the
    Pareto/NBD fit on more than 40,000 rows starts from a pilot fit on 20,000 of them)."""
    rng = np.random.default_rng(5)
    ages = np.floor(rng.uniform(1.0, 200.0, 45_000))
    cases = [
        (BetaGeoFitter, simulate.bgnbd(ages, 0.5, 8.0, 0.7, 2.5, rng=rng, whole_periods=True)),
        (ParetoNBDFitter,
         simulate.pareto_nbd(ages, 0.6, 9.0, 0.7, 12.0, rng=rng, whole_periods=True)),
    ]
    with path():
        for cls, (x, tx, T) in cases:
            grouped = cls().fit(x, tx, T, group=True)
            rows = cls().fit(x, tx, T, group=False)
            assert grouped.grouped_ and not rows.grouped_
            assert grouped.distinct_rows_ < rows.distinct_rows_ == x.shape[0]
            for k, v in grouped.params_.items():
                assert rows.params_[k] == pytest.approx(v, rel=1e-5), k
            assert rows.log_likelihood_ == pytest.approx(grouped.log_likelihood_, rel=1e-12)
            for k, v in grouped.standard_errors_.items():
                assert rows.standard_errors_[k] == pytest.approx(v, rel=1e-3), k


@pytest.mark.parametrize("path", PATHS)
def test_gamma_gamma_fit_is_the_same_on_either_path(path):
    x, m = spend(4000)
    with _kernels.numpy_only():
        expected = GammaGammaFitter().fit(x, m)
    with path():
        got = GammaGammaFitter().fit(x, m)
    for k, v in expected.params_.items():
        assert got.params_[k] == pytest.approx(v, rel=1e-8)


def test_grouping_is_chosen_where_rows_repeat():
    """Day-grained ages and recencies repeat (grouping pays for the Pareto/NBD); continuous
    ones do not; small data is always grouped."""
    rng = np.random.default_rng(9)
    n = 80_000
    days = simulate.pareto_nbd(np.floor(rng.uniform(1, 365, n)), 0.55, 70.0, 0.6, 80.0, rng=rng,
                               whole_periods=True)
    continuous = simulate.pareto_nbd(rng.uniform(1, 365, n), 0.55, 70.0, 0.6, 80.0, rng=rng)
    assert worth_grouping(*days, cost_per_row=pnbd._COST_PER_ROW["compiled"])
    assert not worth_grouping(*continuous, cost_per_row=pnbd._COST_PER_ROW["compiled"])
    assert worth_grouping(*(c[:1000] for c in continuous), cost_per_row=1.0)
    assert ParetoNBDFitter().fit(*days).grouped_
    assert not ParetoNBDFitter().fit(*continuous).grouped_


def reference_log_likelihood(mp, r, alpha, s, beta, x, tx, T):
    """FH eq. (18) with eqs. (19)-(20), term for term in mpmath arithmetic."""
    r, alpha, s, beta, x, tx, T = (mp.mpf(float(v)) for v in (r, alpha, s, beta, x, tx, T))
    hi, lo, shape = (alpha, beta, s + 1) if alpha >= beta else (beta, alpha, r + x)
    rsx = r + s + x

    def term(t):
        return mp.hyp2f1(rsx, shape, rsx + 1, (hi - lo) / (hi + t)) / (hi + t) ** rsx

    A0 = term(tx) - term(T)
    first = 1 / ((alpha + T) ** (r + x) * (beta + T) ** s)
    L = mp.gamma(r + x) * alpha**r * beta**s / mp.gamma(r) * (first + s / rsx * A0)
    return mp.log(L)


@st.composite
def customers(draw):
    x = draw(st.one_of(st.just(0), st.integers(1, 30), st.integers(1000, 8000)))
    T = draw(st.floats(1.0, 400.0))
    tx = 0.0 if x == 0 else T * draw(st.floats(0.001, 1.0))
    return float(x), tx, T


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    r=st.floats(0.05, 5.0),
    alpha=st.floats(0.5, 200.0),
    s=st.floats(0.05, 5.0),
    beta=st.floats(0.5, 200.0),
    customer=customers(),
)
def test_pareto_nbd_log_likelihood_is_exact_against_mpmath(path, r, alpha, s, beta, customer):
    """Each customer's log-likelihood, the Gauss hypergeometric term included, to 1e-10
    relative of a 40-digit evaluation, for frequencies from 0 to 8,000."""
    mp = pytest.importorskip("mpmath")
    x, tx, T = customer
    with mp.workdps(40):
        expected = float(reference_log_likelihood(mp, r, alpha, s, beta, x, tx, T))
    with path():
        got = pnbd.log_likelihood((r, alpha, s, beta), [x], [tx], [T])
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-10)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_fits_on_threads_of_its_own():
    """The pool of threads is the parent's: a child forked after a fit starts its own (a child
    submitting to the parent's would wait for threads it does not have)."""
    x, tx, T = continuous_bgnbd(60_000)
    expected = BetaGeoFitter().fit(x, tx, T).params_["r"]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, repr(BetaGeoFitter().fit(x, tx, T).params_["r"]).encode())
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
        time.sleep(0.05)
    else:
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("the forked child's fit did not finish")
    got = float(os.read(read, 100).decode())
    os.close(read)
    assert got == pytest.approx(expected, rel=1e-12)
