"""With the same parameters, our predictions equal lifetimes' on CDNOW (to 1e-6 relative)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from haina.analytics.clv.estimators import (
    BetaGeoFitter,
    GammaGammaFitter,
    ParetoNBDFitter,
    calibration_vs_holdout_purchases,
)

RTOL = 1e-6
HORIZONS = [0.5, 1, 10, 39, 52, 104]


@pytest.fixture(scope="module")
def fitted(cdnow_with_monetary):
    d = cdnow_with_monetary
    return {
        "bgnbd": BetaGeoFitter().fit(d["frequency"], d["recency"], d["T"]),
        "pnbd": ParetoNBDFitter().fit(d["frequency"], d["recency"], d["T"]),
        "gg": GammaGammaFitter().fit(d["frequency"], d["monetary_value"]),
    }


@pytest.mark.parametrize("name", ["bgnbd", "pnbd"])
def test_conditional_expected_purchases_equal_lifetimes(
    name, fitted, lifetimes_twin, cdnow_with_monetary
):
    ours, theirs = fitted[name], lifetimes_twin(fitted[name])
    x, tx, T = (cdnow_with_monetary[c] for c in ("frequency", "recency", "T"))
    for t in HORIZONS:
        np.testing.assert_allclose(
            np.asarray(ours.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)),
            np.asarray(theirs.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)),
            rtol=RTOL,
        )


@pytest.mark.parametrize("name", ["bgnbd", "pnbd"])
def test_probability_alive_equals_lifetimes(name, fitted, lifetimes_twin, cdnow_with_monetary):
    ours, theirs = fitted[name], lifetimes_twin(fitted[name])
    x, tx, T = (cdnow_with_monetary[c] for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(
        np.asarray(ours.conditional_probability_alive(x, tx, T)),
        np.asarray(theirs.conditional_probability_alive(x, tx, T)),
        rtol=RTOL,
    )


@pytest.mark.parametrize("name", ["bgnbd", "pnbd"])
def test_unconditional_expected_purchases_equal_lifetimes(name, fitted, lifetimes_twin):
    ours, theirs = fitted[name], lifetimes_twin(fitted[name])
    t = np.array(HORIZONS)
    np.testing.assert_allclose(
        ours.expected_number_of_purchases_up_to_time(t),
        theirs.expected_number_of_purchases_up_to_time(t),
        rtol=RTOL,
    )


def test_expected_average_profit_equals_lifetimes(fitted, lifetimes_twin, cdnow_with_monetary):
    ours, theirs = fitted["gg"], lifetimes_twin(fitted["gg"])
    x, m = cdnow_with_monetary["frequency"], cdnow_with_monetary["monetary_value"]
    np.testing.assert_allclose(
        np.asarray(ours.conditional_expected_average_profit(x, m)),
        np.asarray(theirs.conditional_expected_average_profit(x, m)),
        rtol=RTOL,
    )


@pytest.mark.parametrize("name", ["bgnbd", "pnbd"])
@pytest.mark.parametrize("freq", ["W", "D"])
@pytest.mark.filterwarnings(
    "ignore:divide by zero encountered in log:RuntimeWarning"
)  # lifetimes' log(0) at t=0
def test_customer_lifetime_value_equals_lifetimes(
    name, freq, fitted, lifetimes_twin, cdnow_with_monetary
):
    d = cdnow_with_monetary
    args = (d["frequency"], d["recency"], d["T"], d["monetary_value"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ours computes without floating-point warnings
        ours = fitted["gg"].customer_lifetime_value(
            fitted[name], *args, time=12, discount_rate=0.01, freq=freq
        )
    theirs = lifetimes_twin(fitted["gg"]).customer_lifetime_value(
        lifetimes_twin(fitted[name]), *args, time=12, discount_rate=0.01, freq=freq
    )
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=RTOL)
    assert list(ours.index) == list(d.index)  # a Series in, a Series out, like lifetimes


def test_predictions_accept_scalars_and_arrays(fitted):
    model = fitted["bgnbd"]
    scalar = model.conditional_expected_number_of_purchases_up_to_time(10, 2, 30.43, 38.86)
    array = model.conditional_expected_number_of_purchases_up_to_time(
        10, np.array([2]), np.array([30.43]), np.array([38.86])
    )
    assert isinstance(scalar, float)
    assert array.shape == (1,) and array[0] == pytest.approx(scalar)
    assert fitted["pnbd"].conditional_probability_alive(0, 0.0, 38.86) == pytest.approx(
        fitted["pnbd"].conditional_probability_alive(
            np.array([0.0]), np.array([0.0]), np.array([38.86])
        )[0]
    )


def test_holdout_table_equals_lifetimes_calibration_plot_data(
    fitted, lifetimes_twin, cdnow_transactions
):
    import lifetimes.utils

    from haina.analytics.clv.summary import calibration_and_holdout_data

    summary = calibration_and_holdout_data(
        cdnow_transactions,
        "customer_id",
        "date",
        "1997-09-30",
        "1998-06-30",
        "dollar_value",
        freq="D",
        freq_multiplier=7,
    )
    model = BetaGeoFitter().fit(summary["frequency_cal"], summary["recency_cal"], summary["T_cal"])
    rows = calibration_vs_holdout_purchases(model, summary, max_buckets=7)

    # what lifetimes' plot_calibration_purchases_vs_holdout_purchases draws
    theirs = lifetimes_twin(model)
    # (lifetimes 0.11.3 under pandas 3 needs a monetary column here: without one its holdout
    # groupby aggregates no column and pandas raises "No objects to concatenate")
    reference = lifetimes.utils.calibration_and_holdout_data(
        cdnow_transactions,
        "customer_id",
        "date",
        "1997-09-30",
        "1998-06-30",
        freq="D",
        freq_multiplier=7,
        monetary_value_col="dollar_value",
    )
    reference["model_predictions"] = theirs.conditional_expected_number_of_purchases_up_to_time(
        reference["duration_holdout"].iloc[0],
        reference["frequency_cal"],
        reference["recency_cal"],
        reference["T_cal"],
    )
    expected = (
        reference.groupby("frequency_cal")[["frequency_holdout", "model_predictions"]]
        .mean()
        .iloc[:7]
    )

    assert [r["bucket"] for r in rows] == list(expected.index)
    np.testing.assert_allclose(
        [r["actual"] for r in rows], expected["frequency_holdout"], rtol=1e-12
    )
    np.testing.assert_allclose(
        [r["predicted"] for r in rows], expected["model_predictions"], rtol=RTOL
    )
    assert sum(r["customers"] for r in rows) <= len(summary)
