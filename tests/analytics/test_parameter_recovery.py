"""Fitting data simulated from known parameters recovers them (within a few standard errors)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from haina.analytics.clv import simulate
from haina.analytics.clv.estimators import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

CUSTOMERS = 8000
recovery = settings(max_examples=4, deadline=None, derandomize=True, database=None)


def assert_recovered(model, truth: dict, z: float = 5.0) -> None:
    """Each estimate within ``z`` standard errors of the truth (the standard error is the
    asymptotic one from the inverse Hessian; z = 5 keeps a false alarm below 1e-6 per check)."""
    for name, value in truth.items():
        estimate, se = model.params_[name], model.standard_errors_[name]
        assert np.isfinite(se) and se > 0, (name, se)
        assert abs(estimate - value) <= z * se, (name, estimate, value, se)


def ages(rng: np.random.Generator) -> np.ndarray:
    """Customers acquired uniformly over a year, observed for another year (in weeks)."""
    return rng.uniform(52.0, 104.0, CUSTOMERS)


@recovery
@given(
    r=st.floats(0.3, 2.0),
    alpha=st.floats(2.0, 20.0),
    a=st.floats(0.3, 1.5),
    b=st.floats(1.0, 6.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_bgnbd_recovers_the_parameters_it_was_simulated_with(r, alpha, a, b, seed):
    rng = np.random.default_rng(seed)
    x, tx, T = simulate.bgnbd(ages(rng), r, alpha, a, b, rng=rng)
    model = BetaGeoFitter().fit(x, tx, T)
    assert_recovered(model, {"r": r, "alpha": alpha, "a": a, "b": b})


@recovery
@given(
    r=st.floats(0.3, 2.0),
    alpha=st.floats(2.0, 20.0),
    s=st.floats(0.3, 2.0),
    beta=st.floats(5.0, 60.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_pareto_nbd_recovers_the_parameters_it_was_simulated_with(r, alpha, s, beta, seed):
    rng = np.random.default_rng(seed)
    x, tx, T = simulate.pareto_nbd(ages(rng), r, alpha, s, beta, rng=rng)
    model = ParetoNBDFitter().fit(x, tx, T)
    assert_recovered(model, {"r": r, "alpha": alpha, "s": s, "beta": beta})


@recovery
@given(
    p=st.floats(1.0, 10.0),
    q=st.floats(2.0, 8.0),
    gamma=st.floats(5.0, 50.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_gamma_gamma_recovers_the_parameters_it_was_simulated_with(p, q, gamma, seed):
    rng = np.random.default_rng(seed)
    x = rng.poisson(3.0, CUSTOMERS).astype(float)
    m = simulate.gamma_gamma(x, p, q, gamma, rng=rng)
    model = GammaGammaFitter().fit(x, m)
    assert model.n_ == int((x > 0).sum())
    assert_recovered(model, {"p": p, "q": q, "gamma": gamma})


def test_simulated_summaries_obey_the_data_contract():
    rng = np.random.default_rng(1)
    for draw in (
        simulate.bgnbd(ages(rng), 0.5, 5.0, 0.8, 2.0, rng=rng, whole_periods=False),
        simulate.pareto_nbd(np.floor(ages(rng)), 0.5, 5.0, 0.8, 20.0, rng=rng, whole_periods=True),
    ):
        x, tx, T = draw
        assert np.all(tx <= T) and np.all(tx[x == 0] == 0) and np.all(tx[x > 0] > 0)
        assert np.all(x == np.round(x))
