"""The estimators reproduce the published CDNOW fits (Fader, Hardie & Lee 2005; lifetimes' docs)."""

from __future__ import annotations

import math

import lifetimes
import numpy as np
import pytest

from haina.analytics.clv import bgnbd, gammagamma, pnbd
from haina.analytics.clv.estimators import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter


def same_to_3_significant_digits(value: float, expected: float) -> bool:
    """Within half a unit of the third significant digit of ``expected``."""
    unit = 10 ** (math.floor(math.log10(abs(expected))) - 2)
    return abs(value - expected) <= 0.5 * unit


def test_bgnbd_reproduces_the_published_cdnow_fit(cdnow_summary):
    model = BetaGeoFitter().fit(
        cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"]
    )
    expected = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in expected.items():
        assert same_to_3_significant_digits(model.params_[name], value), (name, model.params_[name])
    assert model.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
    assert model.n_ == 2357


def test_pareto_nbd_reproduces_the_published_cdnow_fit(cdnow_summary):
    model = ParetoNBDFitter().fit(
        cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"]
    )
    expected = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    for name, value in expected.items():
        assert same_to_3_significant_digits(model.params_[name], value), (name, model.params_[name])
    assert model.log_likelihood_ == pytest.approx(-9595.0, abs=0.05)
    assert model.n_ == 2357


def test_gamma_gamma_reproduces_the_published_cdnow_fit_on_repeat_buyers(cdnow_with_monetary):
    model = GammaGammaFitter().fit(
        cdnow_with_monetary["frequency"], cdnow_with_monetary["monetary_value"]
    )
    expected = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    for name, value in expected.items():
        assert same_to_3_significant_digits(model.params_[name], value), (name, model.params_[name])
    assert model.n_ == int((cdnow_with_monetary["frequency"] > 0).sum()) == 946


def test_log_likelihood_is_the_total_and_equals_lifetimes_per_customer_sum(
    cdnow_summary, cdnow_with_monetary
):
    x, tx, T = (cdnow_summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    params = {"r": 0.3, "alpha": 5.0, "a": 0.9, "b": 2.0}
    ours = bgnbd.log_likelihood(params, x, tx, T)
    # lifetimes returns the mean negative log-likelihood
    theirs = -lifetimes.BetaGeoFitter._negative_log_likelihood(
        np.log(list(params.values())), x, tx, T, np.ones_like(x), 0.0
    ) * len(x)
    assert ours == pytest.approx(theirs, rel=1e-12)

    params = {"r": 0.5, "alpha": 9.0, "s": 0.7, "beta": 13.0}
    ours = pnbd.log_likelihood(params, x, tx, T)
    theirs = lifetimes.ParetoNBDFitter._conditional_log_likelihood(
        list(params.values()), x, tx, T
    ).sum()
    assert ours == pytest.approx(theirs, rel=1e-12)

    repeat = cdnow_with_monetary[cdnow_with_monetary["frequency"] > 0]
    params = {"p": 5.0, "q": 3.0, "gamma": 12.0}
    ours = gammagamma.log_likelihood(
        params, cdnow_with_monetary["frequency"], cdnow_with_monetary["monetary_value"]
    )
    theirs = -lifetimes.GammaGammaFitter._negative_log_likelihood(
        np.log(list(params.values())),
        repeat["frequency"].to_numpy(float),
        repeat["monetary_value"].to_numpy(float),
        np.ones(len(repeat)),
        0.0,
    ) * len(repeat)
    assert ours == pytest.approx(theirs, rel=1e-12)


def test_our_maximum_is_at_least_as_high_as_lifetimes(cdnow_summary, cdnow_with_monetary):
    x, tx, T = (cdnow_summary[c] for c in ("frequency", "recency", "T"))
    np.random.seed(0)  # lifetimes' Pareto/NBD starts from random parameters
    for ours_cls, theirs_cls, module, names in (
        (BetaGeoFitter, lifetimes.BetaGeoFitter, bgnbd, ["r", "alpha", "a", "b"]),
        (ParetoNBDFitter, lifetimes.ParetoNBDFitter, pnbd, ["r", "alpha", "s", "beta"]),
    ):
        ours = ours_cls().fit(x, tx, T)
        theirs = theirs_cls().fit(x, tx, T)
        ll_theirs = module.log_likelihood(list(theirs.params_[names]), x, tx, T)
        assert ours.log_likelihood_ >= ll_theirs - 1e-9 * abs(ll_theirs)
        assert ours.log_likelihood_ == pytest.approx(ll_theirs, rel=1e-6)


def test_standard_errors_match_lifetimes_inverse_hessian(cdnow_summary, cdnow_with_monetary):
    x, tx, T = (cdnow_summary[c] for c in ("frequency", "recency", "T"))
    ours = BetaGeoFitter().fit(x, tx, T)
    theirs = lifetimes.BetaGeoFitter().fit(x, tx, T)
    for ours_name, their_name in zip(
        ("r", "alpha", "a", "b"), ("r", "alpha", "a", "b"), strict=True
    ):
        assert ours.standard_errors_[ours_name] == pytest.approx(
            theirs.standard_errors_[their_name], rel=2e-3
        )

    repeat = cdnow_with_monetary[cdnow_with_monetary["frequency"] > 0]
    ours = GammaGammaFitter().fit(
        cdnow_with_monetary["frequency"], cdnow_with_monetary["monetary_value"]
    )
    theirs = lifetimes.GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    for ours_name, their_name in (("p", "p"), ("q", "q"), ("gamma", "v")):
        assert ours.standard_errors_[ours_name] == pytest.approx(
            theirs.standard_errors_[their_name], rel=2e-3
        )


def test_pareto_nbd_standard_errors_are_finite_and_positive(cdnow_summary):
    model = ParetoNBDFitter().fit(
        cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"]
    )
    assert all(np.isfinite(v) and v > 0 for v in model.standard_errors_.values())


def test_weights_give_the_same_fit_as_repeated_rows(cdnow_summary):
    grouped = cdnow_summary.groupby(["frequency", "recency", "T"]).size().reset_index(name="count")
    plain = BetaGeoFitter().fit(
        cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"]
    )
    weighted = BetaGeoFitter().fit(
        grouped["frequency"], grouped["recency"], grouped["T"], weights=grouped["count"]
    )
    assert weighted.n_ == plain.n_
    assert weighted.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-10)
    for name in plain.params_:
        assert weighted.params_[name] == pytest.approx(plain.params_[name], rel=1e-6)


def test_a_day_based_summary_gives_the_same_model_in_days(cdnow_summary):
    """alpha and beta carry the time unit; the other parameters do not."""
    weeks = ParetoNBDFitter().fit(
        cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"]
    )
    days = ParetoNBDFitter().fit(
        cdnow_summary["frequency"], cdnow_summary["recency"] * 7, cdnow_summary["T"] * 7
    )
    assert days.params_["alpha"] == pytest.approx(7 * weeks.params_["alpha"], rel=1e-5)
    assert days.params_["beta"] == pytest.approx(7 * weeks.params_["beta"], rel=1e-5)
    assert days.params_["r"] == pytest.approx(weeks.params_["r"], rel=1e-5)


@pytest.mark.parametrize(
    "bad",
    [
        {
            "frequency": [1, 0],
            "recency": [2.0, 1.0],
            "T": [5.0, 5.0],
        },  # recency without a repeat purchase
        {"frequency": [1, 0], "recency": [6.0, 0.0], "T": [5.0, 5.0]},  # recency beyond T
        {"frequency": [1.5, 0], "recency": [2.0, 0.0], "T": [5.0, 5.0]},  # fractional frequency
        {"frequency": [], "recency": [], "T": []},
    ],
)
def test_invalid_summaries_are_refused(bad):
    with pytest.raises(ValueError):
        BetaGeoFitter().fit(bad["frequency"], bad["recency"], bad["T"])
    with pytest.raises(ValueError):
        ParetoNBDFitter().fit(bad["frequency"], bad["recency"], bad["T"])


def test_gamma_gamma_refuses_non_positive_spend_of_repeat_buyers():
    with pytest.raises(ValueError):
        GammaGammaFitter().fit([2, 1, 0], [10.0, 0.0, 0.0])


def test_predicting_before_fitting_says_so():
    with pytest.raises(ValueError, match="fit"):
        BetaGeoFitter().conditional_probability_alive(1, 2.0, 3.0)
