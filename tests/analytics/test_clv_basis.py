"""A CLV a merchant can trust: a degenerate Gamma-Gamma fit (q <= 1, a Hessian that is not
positive definite, a boundary optimum) is not served; CLV falls back to each customer's mean
spend shrunk to the population's, and the run and every score of it say so (API and CLI).
Spend drawn per customer around her own mean fits, and is served as the model predicts."""

from __future__ import annotations

import datetime as dt
import random
import warnings

import ibis
import numpy as np
import pandas as pd
import pytest

from haina.analytics import scoring, service
from haina.analytics.clv import gammagamma, simulate
from haina.analytics.clv.estimators import BetaGeoFitter, GammaGammaFitter
from haina.analytics.schemas import RefreshIn
from haina.core.db import transaction

from .platform_data import UTC, new_members, order_rows, write_orders

END = dt.date(2025, 6, 30)


# ---------------------------------------------------------------- the library


def test_a_sound_fit_is_not_degenerate():
    rng = np.random.default_rng(3)
    x = rng.poisson(3.0, 5000).astype(float)
    m = simulate.gamma_gamma(x, 6.0, 4.0, 15.0, rng=rng)
    assert GammaGammaFitter().fit(x, m).degeneracy() == []


def test_q_below_one_is_degenerate():
    """q < 1: spend with so heavy a tail that its population mean is infinite."""
    rng = np.random.default_rng(4)
    x = rng.poisson(3.0, 5000).astype(float)
    m = simulate.gamma_gamma(x, 3.0, 0.6, 5.0, rng=rng)
    fit = GammaGammaFitter().fit(x, m)
    assert fit.params_["q"] <= 1
    assert any("q = " in reason and "<= 1" in reason for reason in fit.degeneracy())


def test_spend_that_does_not_depend_on_the_customer_is_degenerate():
    """Every order drawn from one distribution: nothing tells customers apart, the likelihood
    keeps rising as q and gamma run off together (a boundary optimum, no standard errors)."""
    rng = np.random.default_rng(5)
    x = rng.poisson(4.0, 3000).astype(float)
    x = x[x > 0]
    m = np.array([rng.gamma(4.0, 25.0, int(k)).mean() for k in x])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it may stop short of the (infinite) optimum
        fit = GammaGammaFitter().fit(x, m)
    reasons = fit.degeneracy()
    assert reasons and any("boundary" in r or "Hessian" in r for r in reasons), fit.params_


def test_the_shrunk_spend_weighs_the_population_as_one_more_purchase():
    x = np.array([0.0, 1.0, 3.0, 9.0])
    m = np.array([0.0, 200.0, 100.0, 50.0])
    population = gammagamma.population_spend(x, m)
    assert population == 100.0  # the median of the repeat buyers' mean spends
    got = gammagamma.shrunk_average_spend(x, m, population)
    np.testing.assert_allclose(got, [100.0, 150.0, 100.0, (450.0 + 100.0) / 10.0])


def test_the_discounted_value_of_the_model_s_spend_is_its_clv(cdnow_with_monetary):
    df = cdnow_with_monetary
    x, tx, T, m = (df[c].to_numpy(float) for c in ("frequency", "recency", "T",
                                                     "monetary_value"))
    purchases = BetaGeoFitter().fit(x, tx, T)
    spend = GammaGammaFitter().fit(x, m)
    np.testing.assert_allclose(
        gammagamma.discounted_value(purchases, spend.conditional_expected_average_profit(x, m),
                                    x, tx, T, freq="W"),
        spend.customer_lifetime_value(purchases, x, tx, T, m, freq="W"),
    )


# ---------------------------------------------------------------- a refresh's computation


def order_amount(rnd: random.Random, mode: str, mean: float) -> float:
    """One order's amount in major units: around the customer's own ``mean`` (Gamma-Gamma's
    story), or, for ``bimodal``, a small basket or (45 %) a set of tyres whoever buys: nothing
    tells customers apart (the old demo's spend, a boundary optimum)."""
    if mode == "bimodal":
        big = rnd.random() < 0.45 and rnd.random() < 0.5
        return rnd.randrange(1_500, 6_000) if big else rnd.randrange(20, 300)
    return rnd.gammavariate(4.0, mean / 4.0) + 1.0


def customer_mean(rnd: random.Random, mode: str) -> float:
    """``per_customer``: means vary as Gamma-Gamma's ``1/nu`` with q = 4; ``heavy``: with
    q = 0.7, so heavy-tailed that the population mean is infinite (q <= 1)."""
    q = {"per_customer": 4.0, "heavy": 0.7}.get(mode)
    return 300.0 if q is None else 300.0 / rnd.gammavariate(q, 1.0)


def spend_log(customers: int, seed: int, mode: str) -> pd.DataFrame:
    """Purchases of ``customers`` over 400 days, amounts drawn as ``mode`` says."""
    rnd = random.Random(seed)
    rows = []
    for c in range(customers):
        mean = customer_mean(rnd, mode)
        day = rnd.randrange(0, 300)
        while day < 400:
            amount = round(order_amount(rnd, mode, mean) * 100)
            rows.append((f"c{c:04d}", pd.Timestamp(END) - pd.Timedelta(days=400 - day), amount))
            if rnd.random() < 0.1:
                break
            day += 1 + int(rnd.expovariate(1 / 25))
    df = pd.DataFrame(rows, columns=["customer_id", "ordered_at", "amount_minor"])
    return df.assign(amount=df["amount_minor"] / 100)


@pytest.mark.parametrize(("mode", "reason"), [("heavy", "<= 1"), ("bimodal", "boundary")])
def test_a_degenerate_spend_fit_falls_back_to_the_shrunk_mean_spend(mode, reason):
    df = spend_log(300, 11, mode)
    scores = scoring.score_customers(ibis.memtable(df), RefreshIn(), END, "CNY")
    spend = scores.spend
    assert spend["clv_basis"] == "shrunk_mean_spend"
    assert any(reason in r for r in spend["degenerate"]), spend
    assert any(n.startswith("Gamma-Gamma fit is degenerate") for n in scores.notes)
    population = spend["fallback"]["population_spend"]
    c = scores.customers
    x, m = c["frequency"].to_numpy(float), c["monetary_minor"].to_numpy(float) / 100
    assert population == pytest.approx(np.median(m[x > 0]), rel=1e-9, abs=0.01)
    # the CLV is the purchase model's discounted purchases times the shrunk spend
    model = scoring.fitted("bgnbd", scores.purchases["params"])
    per_purchase = gammagamma.shrunk_average_spend(x, m, population)
    expected = gammagamma.discounted_value(model, per_purchase, x, c["recency"].to_numpy(float),
                                           c["T"].to_numpy(float))
    np.testing.assert_allclose(c["clv_minor"].to_numpy(float) / 100, expected, rtol=2e-4,
                               atol=0.02)
    # nobody's spend per purchase leaves the range of what customers actually spent
    assert per_purchase.min() >= m[x > 0].min() and per_purchase.max() <= m.max()


def test_spend_drawn_per_customer_fits_and_is_served_as_the_model_predicts():
    df = spend_log(300, 12, "per_customer")
    scores = scoring.score_customers(ibis.memtable(df), RefreshIn(), END, "CNY")
    assert scores.spend["clv_basis"] == "gamma_gamma" and scores.spend["degenerate"] == []
    assert "fallback" not in scores.spend
    assert all(v is not None and v > 0 for v in scores.spend["standard_errors"].values())
    c = scores.customers
    x, m = c["frequency"].to_numpy(float), c["monetary_minor"].to_numpy(float) / 100
    spend = scoring.fitted("gg", scores.spend["params"])
    model = scoring.fitted("bgnbd", scores.purchases["params"])
    expected = spend.customer_lifetime_value(model, x, c["recency"].to_numpy(float),
                                             c["T"].to_numpy(float), m)
    np.testing.assert_allclose(c["clv_minor"].to_numpy(float) / 100, expected, rtol=2e-4,
                               atol=0.02)


# ---------------------------------------------------------------- the platform: API and CLI


def history(tenant_id: str, member_ids: list[str], mode: str, seed: int):
    rnd = random.Random(seed)
    rows = []
    start = dt.datetime.combine(END - dt.timedelta(days=400), dt.time(10), tzinfo=UTC)
    for member_id in member_ids:
        mean = customer_mean(rnd, mode)
        day = rnd.randrange(0, 200)
        while day < 400:
            at = start + dt.timedelta(days=day, minutes=rnd.randrange(600))
            rows.append(order_rows(tenant_id, member_id, at,
                                   round(order_amount(rnd, mode, mean) * 100)))
            if rnd.random() < 0.08:
                break
            day += 1 + int(rnd.expovariate(1 / 25))
    return rows


@pytest.mark.parametrize("per_customer", [False, True], ids=["degenerate", "sound"])
def test_the_run_and_every_score_say_what_the_clv_rests_on(sessions, tenant, app, per_customer,
                                                            capsys):
    from fastapi.testclient import TestClient

    from haina.analytics.cli import _print_run
    from haina.platform import service as platform

    ids = new_members(sessions, tenant, 300)
    mode = "per_customer" if per_customer else "bimodal"
    write_orders(sessions, tenant, history(tenant.id, ids, mode, seed=22))
    with transaction(sessions) as s:
        job = service.start_refresh(s, tenant, RefreshIn(observation_end=END))
        token = platform.create_token(s, tenant.slug, "*").token
    assert service.run_job(sessions, job.id) == "succeeded"
    expected = "gamma_gamma" if per_customer else "shrunk_mean_spend"
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        run = client.get("/v1/analytics/runs").json()["data"][0]
        assert run["clv_basis"] == expected, run["spend"]
        assert bool(run["spend"]["degenerate"]) is not per_customer
        assert (run["spend"]["fallback"] is None) is per_customer
        member = client.get(f"/v1/analytics/members/{ids[0]}").json()
        assert member["clv_basis"] == expected
        segment = client.post("/v1/analytics/segments", json={
            "name": "all", "rule": {"p_alive_gte": 0}}).json()
        listed = client.get(f"/v1/analytics/segments/{segment['id']}/members").json()["data"]
        assert listed and {m["clv_basis"] for m in listed} == {expected}
    with transaction(sessions) as s:
        out = service.get_run(s, tenant, run["id"])
        overview = service.segments_overview(s, tenant)
    _print_run(out, overview)
    printed = capsys.readouterr().out
    if per_customer:
        assert "CLV basis: Gamma-Gamma" in printed
    else:
        assert "CLV basis: shrunk mean spend" in printed and "degenerate" in printed
