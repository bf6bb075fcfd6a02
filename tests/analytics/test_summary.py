"""The Ibis/DuckDB summary pipeline reproduces lifetimes' summaries and the published CDNOW one."""

from __future__ import annotations

import ibis
import lifetimes.utils
import numpy as np
import pandas as pd
import pytest

from haina.analytics.clv import summary

CAL_END, OBS_END = "1997-09-30", "1998-06-30"


def assert_same_summary(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert list(ours.columns) == list(theirs.columns)
    assert list(ours.index) == list(theirs.index)
    for col in theirs.columns:
        np.testing.assert_allclose(
            ours[col].to_numpy(float),
            theirs[col].to_numpy(float),
            rtol=1e-12,
            atol=1e-9,
            err_msg=col,
        )


def test_cdnow_summary_built_from_the_master_log_equals_the_published_summary(
    cdnow_transactions, cdnow_sample_ids, cdnow_summary, cdnow_with_monetary
):
    # the published summary: the 1-in-10 sample, weeks as days/7 from the first purchase,
    # calibration to 1997-09-30, rounded to 2 decimals
    log = cdnow_transactions[cdnow_transactions["customer_id"].isin(cdnow_sample_ids.index)]
    ours = summary.summary_data_from_transaction_data(
        log,
        "customer_id",
        "date",
        "dollar_value",
        observation_end=CAL_END,
        freq="D",
        freq_multiplier=7,
    )
    ours.index = cdnow_sample_ids.reindex(ours.index).to_numpy()
    ours = ours.sort_index()
    assert list(ours.index) == list(cdnow_summary.index)
    np.testing.assert_array_equal(ours["frequency"], cdnow_summary["frequency"])
    np.testing.assert_allclose(ours["recency"], cdnow_summary["recency"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(ours["T"], cdnow_summary["T"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(
        ours["monetary_value"], cdnow_with_monetary["monetary_value"], atol=0.005 + 1e-9
    )
    assert ours["T"].max() == pytest.approx(
        272 / 7
    )  # 1997-01-01 to 1997-09-30: 39 weeks less a day


@pytest.mark.parametrize(("freq", "multiplier"), [("D", 1), ("W", 1), ("D", 7)])
def test_summary_equals_lifetimes_on_the_whole_master_log(cdnow_transactions, freq, multiplier):
    ours = summary.summary_data_from_transaction_data(
        cdnow_transactions,
        "customer_id",
        "date",
        "dollar_value",
        observation_end=CAL_END,
        freq=freq,
        freq_multiplier=multiplier,
    )
    theirs = lifetimes.utils.summary_data_from_transaction_data(
        cdnow_transactions[cdnow_transactions["date"] <= CAL_END],
        "customer_id",
        "date",
        monetary_value_col="dollar_value",
        observation_period_end=CAL_END,
        freq=freq,
        freq_multiplier=multiplier,
    )
    assert_same_summary(ours, theirs)


@pytest.mark.parametrize(("freq", "multiplier"), [("D", 1), ("W", 1), ("D", 7)])
def test_calibration_and_holdout_equal_lifetimes(cdnow_transactions, freq, multiplier):
    ours = summary.calibration_and_holdout_data(
        cdnow_transactions,
        "customer_id",
        "date",
        CAL_END,
        OBS_END,
        "dollar_value",
        freq=freq,
        freq_multiplier=multiplier,
    )
    theirs = lifetimes.utils.calibration_and_holdout_data(
        cdnow_transactions,
        "customer_id",
        "date",
        CAL_END,
        OBS_END,
        freq=freq,
        freq_multiplier=multiplier,
        monetary_value_col="dollar_value",
    )
    assert_same_summary(ours, theirs)


def test_summary_without_amounts_has_no_monetary_value(cdnow_transactions):
    ours = summary.summary_data_from_transaction_data(
        cdnow_transactions, "customer_id", "date", observation_end=CAL_END, freq="W"
    )
    assert list(ours.columns) == ["frequency", "recency", "T"]
    assert (
        len(ours)
        == cdnow_transactions.loc[cdnow_transactions["date"] <= CAL_END, "customer_id"].nunique()
    )


@pytest.fixture
def small_log() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer": ["a", "a", "a", "a", "b", "c", "c"],
            "ordered_at": pd.to_datetime(
                [
                    "2024-01-01 09:00",
                    "2024-01-01 18:00",
                    "2024-01-10 12:00",
                    "2024-03-05 08:00",
                    "2024-02-01 10:00",
                    "2024-01-15 10:00",
                    "2024-03-31 23:30",
                ]
            ),
            "amount": [10.0, 5.0, 20.0, 30.0, 7.0, 3.0, 9.0],
        }
    )


def test_orders_on_the_same_day_are_one_purchase_with_their_amounts_added(small_log):
    ours = summary.summary_data_from_transaction_data(
        small_log, "customer", "ordered_at", "amount", observation_end="2024-03-31"
    )
    a = ours.loc["a"]
    assert a["frequency"] == 2  # 1 Jan (two orders), 10 Jan, 5 Mar
    assert a["recency"] == 64  # 1 Jan to 5 Mar 2024
    assert a["T"] == 90
    assert a["monetary_value"] == pytest.approx(
        25.0
    )  # (20 + 30) / 2; the first day is not a repeat
    assert ours.loc["b", "frequency"] == 0 and ours.loc["b", "monetary_value"] == 0


def test_an_order_late_on_the_end_date_counts_in_that_period(small_log):
    # lifetimes compares the timestamp with midnight and would leave the 23:30 order out
    ours = summary.summary_data_from_transaction_data(
        small_log, "customer", "ordered_at", "amount", observation_end="2024-03-31"
    )
    assert ours.loc["c", "frequency"] == 1 and ours.loc["c", "recency"] == 76
    held = summary.calibration_and_holdout_data(
        small_log, "customer", "ordered_at", "2024-03-05", "2024-03-31", "amount"
    )
    assert held.loc["a", "frequency_cal"] == 2  # the 08:00 order on the calibration end date
    assert held.loc["a", "frequency_holdout"] == 0
    assert held.loc["c", "frequency_holdout"] == 1
    assert held.loc["c", "monetary_value_holdout"] == 9.0
    assert held["duration_holdout"].iloc[0] == 26


def test_last_gap_is_the_silence_before_the_latest_purchase(small_log):
    ours = summary.summary_data_from_transaction_data(
        small_log, "customer", "ordered_at", "amount", observation_end="2024-03-31", last_gap=True
    )
    assert ours.loc["a", "last_gap"] == 55  # 10 Jan to 5 Mar
    assert ours.loc["b", "last_gap"] == 0


def test_csv_parquet_and_ibis_inputs_give_the_same_summary(small_log, tmp_path):
    expected = summary.summary_data_from_transaction_data(
        small_log, "customer", "ordered_at", "amount", freq="W"
    )
    csv, parquet = tmp_path / "orders.csv", tmp_path / "orders.parquet"
    small_log.to_csv(csv, index=False)
    small_log.to_parquet(parquet)
    con = ibis.duckdb.connect()
    for source in (csv, str(parquet), con.create_table("orders", ibis.memtable(small_log))):
        got = summary.summary_data_from_transaction_data(
            source, "customer", "ordered_at", "amount", freq="W"
        )
        assert_same_summary(got, expected)


def test_dates_stored_as_numbers_are_parsed_with_a_format(cdnow_transactions):
    raw = cdnow_transactions.assign(
        date=cdnow_transactions["date"].dt.strftime("%Y%m%d").astype(int)
    )
    ours = summary.summary_data_from_transaction_data(
        raw, "customer_id", "date", observation_end=CAL_END, date_format="%Y%m%d"
    )
    expected = summary.summary_data_from_transaction_data(
        cdnow_transactions, "customer_id", "date", observation_end=CAL_END
    )
    assert_same_summary(ours, expected)


def test_a_missing_column_is_named_in_the_error(small_log):
    with pytest.raises(KeyError, match="spend"):
        summary.summary_data_from_transaction_data(small_log, "customer", "ordered_at", "spend")
    with pytest.raises(KeyError, match="when"):
        summary.summary_data_from_transaction_data(small_log, "customer", "when")


def test_the_summary_expression_compiles_to_spark_sql():
    """The pipeline is plain Ibis: the same expression compiles for Spark (databricks dialect),
    window functions and all; running it on PySpark needs only a PySpark connection."""
    orders = ibis.table(
        {"customer": "string", "ordered_at": "timestamp", "amount": "float64"}, name="orders"
    )
    expr = summary.holdout_expression(
        orders, "customer", "ordered_at", "2024-01-31", "2024-03-31", "amount", freq="W"
    )
    sql = ibis.to_sql(expr, dialect="databricks")
    assert "PARTITION BY" in sql and "DATEDIFF" in sql
