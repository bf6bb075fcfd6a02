"""Monthly acquisition cohorts: retention and revenue by months since the first order.

A customer's cohort is the calendar month of her first order. For each cohort and each month
``m = 0, 1, 2, ...`` after it, ``active`` counts the cohort's customers with an order in that
month, ``retention = active / cohort_size`` (so month 0 is always 1.0) and ``revenue`` sums their
order amounts in that month. Computed as an Ibis expression (DuckDB by default; the expression
runs on PySpark too).
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.types as ir
import pandas as pd

from .summary import _check_columns, _dated, read_transactions


def cohort_expression(
    table: ir.Table,
    customer_col: str,
    date_col: str,
    amount_col: str | None = None,
    *,
    date_format: str | None = None,
) -> ir.Table:
    """Ibis expression with ``cohort_month`` (``year * 12 + month - 1``), ``months_since_first``,
    ``active``, ``cohort_size``, ``retention`` and, with ``amount_col``, ``revenue``."""
    _check_columns(table, customer_col, amount_col)
    dated = _dated(table, date_col, date_format)
    dated = dated.mutate(_month=dated._day.year() * 12 + dated._day.month() - 1)
    dated = dated.mutate(_cohort=dated._month.min().over(group_by=dated[customer_col]))
    dated = dated.mutate(_since=dated._month - dated._cohort)
    metrics = {"active": dated[customer_col].nunique()}
    if amount_col is not None:
        metrics["revenue"] = dated[amount_col].sum().cast("float64")
    cells = dated.group_by(["_cohort", "_since"]).aggregate(**metrics)
    sizes = cells.filter(cells._since == 0).select(_cohort=cells._cohort, cohort_size=cells.active)
    joined = cells.inner_join(sizes, "_cohort")
    columns = [
        joined._cohort.name("cohort_month"),
        joined._since.name("months_since_first"),
        joined.cohort_size,
        joined.active,
        (joined.active.cast("float64") / joined.cohort_size).name("retention"),
    ]
    if amount_col is not None:
        columns.append(joined.revenue)
    return joined.select(*columns)


def cohort_table(
    transactions,
    customer_col: str,
    date_col: str,
    amount_col: str | None = None,
    *,
    date_format: str | None = None,
    connection=None,
) -> pd.DataFrame:
    """One row per (cohort, months since first order): ``cohort`` (first day of the month),
    ``months_since_first``, ``cohort_size``, ``active``, ``retention`` and ``revenue``.

    Months in which none of a cohort's customers ordered are absent (retention 0).
    """
    table = read_transactions(transactions, connection=connection)
    expr = cohort_expression(table, customer_col, date_col, amount_col, date_format=date_format)
    df = expr.order_by(["cohort_month", "months_since_first"]).to_pandas()
    month = df.pop("cohort_month").astype(int)
    df.insert(0, "cohort", [dt.date(m // 12, m % 12 + 1, 1) for m in month])
    return df.reset_index(drop=True)


def retention_matrix(cohorts: pd.DataFrame, value: str = "retention") -> pd.DataFrame:
    """Cohorts as rows, months since the first order as columns (missing cells are 0)."""
    return cohorts.pivot(index="cohort", columns="months_since_first", values=value).fillna(0.0)
