"""The computation of a refresh, without a database: edge cases a live shop always has."""

from __future__ import annotations

import datetime as dt
import random

import ibis
import numpy as np
import pandas as pd
import pytest

from haina.analytics import scoring
from haina.analytics.clv.estimators import BetaGeoFitter
from haina.analytics.schemas import RefreshIn

END = dt.date(2025, 6, 30)


def log(customers: int = 60, seed: int = 5) -> pd.DataFrame:
    rnd = random.Random(seed)
    rows = []
    for c in range(customers):
        day = rnd.randrange(0, 300)
        while day < 400:
            amount = rnd.randrange(1_000, 30_000)
            rows.append((f"c{c:03d}", pd.Timestamp(END) - pd.Timedelta(days=400 - day), amount))
            if rnd.random() < 0.1:
                break
            day += 1 + int(rnd.expovariate(1 / 20))
    df = pd.DataFrame(rows, columns=["customer_id", "ordered_at", "amount_minor"])
    return df.assign(amount=df["amount_minor"] / 100)


def test_customers_who_first_bought_on_the_last_day_are_scored_but_not_fitted():
    df = log()
    newcomers = pd.DataFrame({"customer_id": ["new1", "new2"],
                              "ordered_at": [pd.Timestamp(END) + pd.Timedelta(hours=9)] * 2,
                              "amount_minor": [5_000, 7_000], "amount": [50.0, 70.0]})
    table = ibis.memtable(pd.concat([df, newcomers], ignore_index=True))
    for freq in ("D", "W"):
        scores = scoring.score_customers(table, RefreshIn(freq=freq), END, "CNY")
        new = scores.customers.loc[["new1", "new2"]]
        assert (new["T"] == 0).all() and (new["p_alive"] == 1).all()
        assert (new["stage"] == "new").all()
        assert scores.purchases["customers"] == df["customer_id"].nunique() + 2 - (
            scores.customers["T"] == 0).sum()
        assert np.isfinite(scores.customers[["p_alive", "expected_purchases_90d"]]).all().all()


def test_amounts_are_stored_in_minor_units_rounded_half_even():
    assert scoring._to_minor([0.125, 0.135, 2.5 / 100], 100).tolist() == [12, 14, 2]


def test_bgnbd_predictions_stay_finite_when_dropout_has_no_heterogeneity():
    # a fit at the boundary a, b -> infinity (seen on small weekly logs): eq. (10) has a limit
    model = BetaGeoFitter()
    a, b = 698675.58, 20866870.26
    model.params_ = {"r": 0.495, "alpha": 2.164, "a": a, "b": b}
    x, tx, T, t = np.array([0.0, 2.0, 8.0]), np.array([0.0, 30.0, 60.0]), np.array(
        [42.0, 73.0, 69.0]), 13.0
    got = model.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
    assert np.all(np.isfinite(got)) and np.all(got > 0)
    # the limit: p = a/(a+b) fixed, E = (1/p) [1 - ((alpha+T)/(alpha+T+t))^(r+x)
    #   (1 - (1-p) t/(alpha+T+t))^-(r+x)] / (1 + delta_{x>0} p/(1-p) ((alpha+T)/(alpha+tx))^(r+x))
    r, alpha, p = 0.495, 2.164, a / (a + b)
    z = t / (alpha + T + t)
    tail = (1 - z) ** (r + x) * (1 - (1 - p) * z) ** (-(r + x))
    limit = (1 / p) * (1 - tail) / (
        1 + (x > 0) * p / (1 - p) * ((alpha + T) / (alpha + tx)) ** (r + x))
    np.testing.assert_allclose(got, limit, rtol=1e-4)


def test_a_log_without_repeat_buyers_cannot_be_scored():
    once = pd.DataFrame({"customer_id": [f"c{i}" for i in range(30)],
                         "ordered_at": [pd.Timestamp(END) - pd.Timedelta(days=i) for i in range(30)],
                         "amount_minor": 1000, "amount": 10.0})
    with pytest.raises(scoring.NothingToScore, match="repeat purchase"):
        scoring.score_customers(ibis.memtable(once), RefreshIn(), END, "CNY")
