"""From a transaction log to the per-customer summary the lifecycle estimators are fitted on.

One row per customer with

- ``frequency`` — repeat purchases: the number of distinct periods (days or weeks) with a
  purchase, minus one (the first purchase is not a repeat);
- ``recency`` — periods from the first purchase to the last one (0 without a repeat purchase);
- ``T`` — periods from the first purchase to the end of the observation;
- ``monetary_value`` — mean spend of the repeat purchase periods (amounts within one period are
  summed first; the first purchase is left out; 0 without a repeat purchase).

These are the definitions of lifetimes' ``summary_data_from_transaction_data`` and
``calibration_and_holdout_data``; a result equals lifetimes' on the same log. Periods are
calendar days (``freq="D"``) or ISO weeks starting on Monday (``freq="W"``, pandas' ``W``
periods); ``freq_multiplier`` divides the counts (``freq="D", freq_multiplier=7`` gives weeks as
fractional days/7, the unit of the published CDNOW summary).

One deliberate difference: an end date (``observation_end``, ``calibration_end``) includes the
whole calendar day, so an order at 14:00 on the calibration end date is a calibration order.
Lifetimes compares the raw timestamp with midnight there and would move it into the holdout.
On logs of dates without a time of day (CDNOW, most exports) the two agree exactly.

The work is an Ibis expression (:func:`summary_expression`, :func:`holdout_expression`), run on
DuckDB by default; the same expression runs on any Ibis backend with window functions, PySpark
included, for logs that outgrow one machine.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd

FREQUENCIES = {"D": 1, "W": 7}  # days per period


def read_transactions(source, *, connection=None) -> ir.Table:
    """An Ibis table from a pandas DataFrame, a CSV or Parquet path, or an Ibis table.

    Paths and DataFrames are read by DuckDB (``connection`` or a new in-memory database).
    """
    if isinstance(source, ir.Table):
        return source
    if isinstance(source, pd.DataFrame):
        if connection is not None:
            # (a fresh name: create_table(overwrite=True) fails on ibis 12 with duckdb 2)
            return connection.create_table(
                f"transactions_{uuid.uuid4().hex}", ibis.memtable(source), temp=True
            )
        return ibis.memtable(source)
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"no such file: {path}")
        con = connection or ibis.duckdb.connect()
        name = path.name.lower()
        if name.endswith((".parquet", ".pq")):
            return con.read_parquet(path)
        if name.endswith((".csv", ".csv.gz", ".tsv", ".txt")):
            return con.read_csv(path)
        raise ValueError(f"{path}: expected a .csv or .parquet file")
    raise TypeError("transactions must be a pandas DataFrame, a CSV/Parquet path or an Ibis table")


def _as_date(value) -> dt.date:
    return pd.Timestamp(value).date()


def _period_start(day: dt.date, freq: str) -> dt.date:
    if freq == "W":
        return day - dt.timedelta(days=day.weekday())
    return day


def _check_freq(freq: str, freq_multiplier: float) -> None:
    if freq not in FREQUENCIES:
        raise ValueError("freq must be 'D' (days) or 'W' (weeks)")
    if not freq_multiplier > 0:
        raise ValueError("freq_multiplier must be positive")


def _dated(table: ir.Table, date_col: str, date_format: str | None) -> ir.Table:
    """The table with ``_day``, the calendar day of each transaction."""
    if date_col not in table.columns:
        raise KeyError(
            f"no column {date_col!r} in the transactions (columns: {', '.join(table.columns)})"
        )
    col = table[date_col]
    if date_format is not None:
        col = col.cast("string").as_timestamp(date_format)
    elif col.type().is_string():
        col = col.cast("timestamp")
    elif not (col.type().is_timestamp() or col.type().is_date()):
        raise ValueError(
            f"column {date_col!r} is {col.type()}, not a date; pass date_format to parse it"
        )
    return table.mutate(_day=col.cast("date"))


def _with_period(table: ir.Table, freq: str) -> ir.Table:
    day = table._day
    return table.mutate(_period=day.truncate("W") if freq == "W" else day)


def _check_columns(table: ir.Table, *cols: str | None) -> None:
    for col in cols:
        if col is not None and col not in table.columns:
            raise KeyError(
                f"no column {col!r} in the transactions (columns: {', '.join(table.columns)})"
            )


def summary_expression(
    table: ir.Table,
    customer_col: str,
    date_col: str,
    amount_col: str | None = None,
    *,
    observation_end=None,
    freq: str = "D",
    freq_multiplier: float = 1,
    date_format: str | None = None,
    last_gap: bool = False,
) -> ir.Table:
    """The Ibis expression of the per-customer summary (see the module docstring).

    Columns: ``customer_col, frequency, recency, T``, ``monetary_value`` when ``amount_col`` is
    given, and with ``last_gap`` the periods between the last two purchase periods (0 without a
    repeat purchase), which :func:`haina.analytics.clv.rfm.lifecycle_stages` uses to spot customers
    who came back after a long silence.
    """
    _check_freq(freq, freq_multiplier)
    _check_columns(table, customer_col, amount_col)
    dated = _dated(table, date_col, date_format)
    if observation_end is None:
        observation_end = dated._day.max().to_pandas()
    end = _as_date(observation_end)
    dated = _with_period(dated.filter(dated._day <= ibis.date(end)), freq)
    return _summarise_periods(
        dated, customer_col, amount_col, _period_start(end, freq), freq, freq_multiplier, last_gap
    )


def _summarise_periods(
    dated: ir.Table,
    customer_col: str,
    amount_col: str | None,
    end_period: dt.date,
    freq: str,
    freq_multiplier: float,
    last_gap: bool = False,
) -> ir.Table:
    unit = FREQUENCIES[freq] * freq_multiplier
    aggs = {}
    if amount_col is not None:
        aggs["_amount"] = dated[amount_col].sum()
    periods = (
        dated.group_by([customer_col, "_period"]).aggregate(**aggs)
        if aggs
        else dated.select(customer_col, "_period").distinct()
    )
    periods = periods.mutate(_first=periods._period.min().over(group_by=periods[customer_col]))
    if last_gap:
        previous = periods._period.lag().over(
            group_by=periods[customer_col], order_by=periods._period
        )
        periods = periods.mutate(_gap=periods._period.delta(previous, unit="day"))
    metrics = {
        "_first": periods._first.min(),
        "_last": periods._period.max(),
        "_count": periods._period.count(),
    }
    if amount_col is not None:
        # the first purchase period is not a repeat purchase: its amount is left out of the mean
        metrics["_repeat_mean"] = ibis.cases(
            (periods._period > periods._first, periods._amount)
        ).mean()
    if last_gap:
        metrics["_last_gap"] = periods._gap.argmax(periods._period)
    customers = periods.group_by(customer_col).aggregate(**metrics)
    columns = {
        customer_col: customers[customer_col],
        "frequency": (customers._count - 1).cast("float64"),
        "recency": customers._last.delta(customers._first, unit="day").cast("float64") / unit,
        "T": ibis.date(end_period).delta(customers._first, unit="day").cast("float64") / unit,
    }
    if amount_col is not None:
        columns["monetary_value"] = customers._repeat_mean.cast("float64").fill_null(0.0)
    if last_gap:
        columns["last_gap"] = customers._last_gap.cast("float64").fill_null(0.0) / unit
    return customers.select(**columns)


def holdout_expression(
    table: ir.Table,
    customer_col: str,
    date_col: str,
    calibration_end,
    observation_end=None,
    amount_col: str | None = None,
    *,
    freq: str = "D",
    freq_multiplier: float = 1,
    date_format: str | None = None,
) -> ir.Table:
    """The calibration summary (``*_cal`` columns) joined with the holdout purchases.

    Calibration: transactions on or before ``calibration_end``, summarised at that date.
    Holdout: ``frequency_holdout`` is the number of distinct periods with a purchase after
    ``calibration_end`` up to ``observation_end``; ``monetary_value_holdout`` the mean amount of
    those transactions (lifetimes takes the mean over transactions here, not over periods);
    ``duration_holdout`` the periods from ``calibration_end`` to ``observation_end``. Only customers
    with a calibration purchase are listed; customers without holdout purchases get zeros.
    """
    _check_freq(freq, freq_multiplier)
    _check_columns(table, customer_col, amount_col)
    dated = _dated(table, date_col, date_format)
    cal_end = _as_date(calibration_end)
    if observation_end is None:
        observation_end = dated._day.max().to_pandas()
    obs_end = _as_date(observation_end)
    if obs_end <= cal_end:
        raise ValueError("observation_end must be after calibration_end")
    cal = _summarise_periods(
        _with_period(dated.filter(dated._day <= ibis.date(cal_end)), freq),
        customer_col,
        amount_col,
        _period_start(cal_end, freq),
        freq,
        freq_multiplier,
    )
    cal = cal.rename({f"{c}_cal": c for c in cal.columns if c != customer_col})
    hold = _with_period(
        dated.filter((dated._day > ibis.date(cal_end)) & (dated._day <= ibis.date(obs_end))), freq
    )
    metrics = {"frequency_holdout": hold._period.nunique().cast("float64")}
    if amount_col is not None:
        metrics["monetary_value_holdout"] = hold[amount_col].mean().cast("float64")
    hold = hold.group_by(customer_col).aggregate(**metrics)
    joined = cal.left_join(hold, customer_col)
    joined = joined.select(
        *[joined[c] for c in cal.columns],
        *[joined[c].fill_null(0.0).name(c) for c in metrics],
    )
    unit = FREQUENCIES[freq] * freq_multiplier
    duration = (_period_start(obs_end, freq) - _period_start(cal_end, freq)).days / unit
    return joined.mutate(duration_holdout=ibis.literal(float(duration)))


def _to_frame(expr: ir.Table, customer_col: str) -> pd.DataFrame:
    df = expr.order_by(customer_col).to_pandas()
    return df.set_index(customer_col)


def summary_data_from_transaction_data(
    transactions,
    customer_col: str,
    date_col: str,
    amount_col: str | None = None,
    *,
    observation_end=None,
    freq: str = "D",
    freq_multiplier: float = 1,
    date_format: str | None = None,
    last_gap: bool = False,
    connection=None,
) -> pd.DataFrame:
    """Per-customer ``frequency, recency, T[, monetary_value][, last_gap]``, indexed by customer,
    sorted. ``transactions`` is a pandas DataFrame, a CSV/Parquet path or an Ibis table.
    """
    table = read_transactions(transactions, connection=connection)
    expr = summary_expression(
        table,
        customer_col,
        date_col,
        amount_col,
        observation_end=observation_end,
        freq=freq,
        freq_multiplier=freq_multiplier,
        date_format=date_format,
        last_gap=last_gap,
    )
    return _to_frame(expr, customer_col)


def calibration_and_holdout_data(
    transactions,
    customer_col: str,
    date_col: str,
    calibration_end,
    observation_end=None,
    amount_col: str | None = None,
    *,
    freq: str = "D",
    freq_multiplier: float = 1,
    date_format: str | None = None,
    connection=None,
) -> pd.DataFrame:
    """lifetimes' calibration/holdout table: ``frequency_cal, recency_cal, T_cal[,
    monetary_value_cal], frequency_holdout[, monetary_value_holdout], duration_holdout``."""
    table = read_transactions(transactions, connection=connection)
    expr = holdout_expression(
        table,
        customer_col,
        date_col,
        calibration_end,
        observation_end,
        amount_col,
        freq=freq,
        freq_multiplier=freq_multiplier,
        date_format=date_format,
    )
    return _to_frame(expr, customer_col)
