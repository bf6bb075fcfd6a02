"""Scoring customers from a transaction log: the computation of a refresh, on any Ibis backend.

:func:`score_customers` takes an Ibis table with ``customer_id, ordered_at, amount,
amount_minor`` (see :mod:`haina.analytics.sources`) and returns every number a refresh stores:

1. the per-customer summary up to the observation end (:mod:`haina.analytics.clv.summary`, with
   ``last_gap`` for the reactivated stage);
2. the holdout check: the purchase model fitted again on the calibration period (everything
   up to ``holdout_days`` before the end), its predicted purchases in the holdout period against
   the actual ones, per calibration frequency (:func:`estimators.calibration_vs_holdout_purchases`);
3. the purchase model (BG/NBD or Pareto/NBD) and Gamma-Gamma fitted on the whole period;
4. per customer: P(alive), expected purchases in the next 90 days, CLV over ``clv_months`` at a
   monthly ``discount_rate`` (Gamma-Gamma's ``customer_lifetime_value``), RFM scores and segment,
   lifecycle stage;
5. monthly acquisition cohorts (:mod:`haina.analytics.clv.cohorts`);
6. the data behind the charts: a CLV histogram and a sample of customers for P(alive).

Amounts (mean spend, CLV, cohort revenue) are rounded half-even to the currency's minor unit
here, once: the only rounding point of a refresh.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from haina.core.money import exponent

from .clv import cohorts as cohort_tables
from .clv import gammagamma, rfm
from .clv.estimators import (
    MODELS,
    PURCHASE_MODELS,
    ConvergenceError,
    ConvergenceWarning,
    GammaGammaFitter,
    calibration_vs_holdout_purchases,
)
from .clv.summary import FREQUENCIES, holdout_expression, summary_expression
from .schemas import HORIZON_DAYS, RefreshIn

#: what a run's CLV rests on: Gamma-Gamma's expected spend, or (a degenerate fit) each customer's
#: mean spend shrunk to the population's (see ``clv.gammagamma.shrunk_average_spend``)
CLV_BASIS_MODEL = "gamma_gamma"
CLV_BASIS_SHRUNK = "shrunk_mean_spend"

#: customers drawn for the P(alive) chart
PLOT_SAMPLE = 2000
#: fewest customers with a calibration purchase for a holdout check to mean anything
MIN_HOLDOUT_CUSTOMERS = 20

Progress = Callable[[int, str], None]


class NothingToScore(ValueError):
    """The log cannot support the models (no purchases, no repeat buyers …): a user error."""


@dataclass
class Scores:
    """The outcome of :func:`score_customers`."""

    customers: pd.DataFrame  # indexed by customer id
    transactions: int
    purchases: dict[str, Any]
    spend: dict[str, Any]
    holdout: dict[str, Any] | None
    cohorts: list[dict[str, Any]]
    plot_data: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _fit(name: str, summary: pd.DataFrame, notes: list[str], label: str):
    """Fit a purchase model, turning its warnings into notes and its failures into one error.

    Customers whose first purchase falls in the last period (``T = 0``) are left out of the fit:
    their likelihood is 1 whatever the parameters (nothing was observed yet), so the estimates
    are the same without them. They are scored all the same."""
    fitter = PURCHASE_MODELS[name]()
    summary = summary[summary["T"] > 0]
    if summary.empty:
        raise NothingToScore(f"{label} could not be fitted: every customer bought for the first "
                             "time in the last period")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            fitter.fit(summary["frequency"], summary["recency"], summary["T"])
        except (ConvergenceError, ValueError) as exc:
            raise NothingToScore(f"{label} could not be fitted: {exc}") from None
    notes += [f"{label}: {w.message}" for w in caught if issubclass(w.category, ConvergenceWarning)]
    return fitter


def _model_out(name: str, fitter) -> dict[str, Any]:
    return {
        "model": name,
        "params": dict(fitter.params_),
        "standard_errors": {k: (v if np.isfinite(v) else None) for k, v in
                            fitter.standard_errors_.items()},
        "log_likelihood": float(fitter.log_likelihood_),
        "customers": int(fitter.n_),
    }


def fitted(name: str, params: dict[str, float]):
    """A model of kind ``name`` (``bgnbd``, ``pnbd``, ``gg``) carrying stored parameters."""
    model = MODELS[name]()
    model.params_ = {k: float(params[k]) for k in model.param_names}
    return model


def _to_minor(values, scale: float) -> np.ndarray:
    # np.rint rounds half to even: the one rounding point of amounts
    return np.rint(np.asarray(values, dtype=float) * scale).astype(np.int64)


def _holdout(
    table: ir.Table, params: RefreshIn, end: dt.date, first: dt.date, notes: list[str]
) -> dict[str, Any] | None:
    if params.holdout_days == 0:
        return None
    calibration_end = end - dt.timedelta(days=params.holdout_days)
    if calibration_end < first:
        notes.append(
            f"no holdout check: the history starts {first}, after the calibration end "
            f"{calibration_end} ({params.holdout_days} days before {end})"
        )
        return None
    cal = (
        holdout_expression(
            table, "customer_id", "ordered_at", calibration_end, end, freq=params.freq
        )
        .order_by("customer_id")
        .to_pandas()
        .set_index("customer_id")
    )
    if len(cal) < MIN_HOLDOUT_CUSTOMERS:
        notes.append(
            f"no holdout check: {len(cal)} customers bought before {calibration_end}, "
            f"fewer than {MIN_HOLDOUT_CUSTOMERS}"
        )
        return None
    summary = cal.rename(columns={"frequency_cal": "frequency", "recency_cal": "recency",
                                  "T_cal": "T"})
    try:
        model = _fit(params.model, summary, notes, "holdout check")
    except NothingToScore as exc:
        notes.append(f"no holdout check: {exc}")
        return None
    predicted = model.conditional_expected_number_of_purchases_up_to_time(
        cal["duration_holdout"].to_numpy(float),
        cal["frequency_cal"].to_numpy(float),
        cal["recency_cal"].to_numpy(float),
        cal["T_cal"].to_numpy(float),
    )
    if not np.all(np.isfinite(predicted)):
        notes.append(f"no holdout check: the calibration model's predictions are not finite "
                     f"(parameters {model.params_})")
        return None
    rows = calibration_vs_holdout_purchases(model, cal)
    return {
        "calibration_end": calibration_end.isoformat(),
        "observation_end": end.isoformat(),
        "duration": float(cal["duration_holdout"].iloc[0]),
        "customers": len(cal),
        "actual_purchases": float(cal["frequency_holdout"].sum()),
        "predicted_purchases": float(np.sum(predicted)),
        "buckets": rows,
        "model": _model_out(params.model, model),
    }


def _cohorts(table: ir.Table) -> list[dict[str, Any]]:
    cells = (
        cohort_tables.cohort_expression(table, "customer_id", "ordered_at", "amount_minor")
        .order_by(["cohort_month", "months_since_first"])
        .to_pandas()
    )
    out = []
    for row in cells.itertuples(index=False):
        month = int(row.cohort_month)
        out.append(
            {
                "cohort": f"{month // 12:04d}-{month % 12 + 1:02d}",
                "months_since_first": int(row.months_since_first),
                "size": int(row.cohort_size),
                "active": int(row.active),
                "revenue_minor": round(float(row.revenue)),  # a sum of whole minor units
            }
        )
    return out


def score_customers(
    table: ir.Table,
    params: RefreshIn,
    observation_end: dt.date,
    currency: str,
    progress: Progress | None = None,
) -> Scores:
    """Everything a refresh stores, from the transactions of ``table`` up to
    ``observation_end`` (see the module docstring). Raises :class:`NothingToScore` when the log
    cannot support the models."""
    report = progress or (lambda pct, message: None)
    notes: list[str] = []
    table = table.filter(table.ordered_at.cast("date") <= ibis.date(observation_end))
    report(42, "summarising purchases per customer")
    counts = table.aggregate(n=table.count(), first=table.ordered_at.min()).to_pandas()
    transactions = int(counts["n"].iloc[0])
    if transactions == 0:
        raise NothingToScore(f"no purchases to analyse up to {observation_end}")
    first = pd.Timestamp(counts["first"].iloc[0]).date()
    summary = (
        summary_expression(
            table, "customer_id", "ordered_at", "amount",
            observation_end=observation_end, freq=params.freq, last_gap=True,
        )
        .order_by("customer_id")
        .to_pandas()
        .set_index("customer_id")
    )
    report(50, "checking the model on a holdout period")
    holdout = _holdout(table, params, observation_end, first, notes)

    label = {"bgnbd": "BG/NBD", "pnbd": "Pareto/NBD"}[params.model]
    report(60, f"fitting {label}")
    model = _fit(params.model, summary, notes, label)
    report(70, "fitting Gamma-Gamma")
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if len(repeat) < 2:
        raise NothingToScore(
            f"Gamma-Gamma needs customers with a repeat purchase; {len(repeat)} found"
        )
    spend = GammaGammaFitter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            spend.fit(repeat["frequency"], repeat["monetary_value"])
        except (ConvergenceError, ValueError) as exc:
            raise NothingToScore(f"Gamma-Gamma could not be fitted: {exc}") from None
    notes += [f"Gamma-Gamma: {w.message}" for w in caught
              if issubclass(w.category, ConvergenceWarning)]
    degenerate = spend.degeneracy()

    report(78, "scoring customers")
    x = summary["frequency"].to_numpy(float)
    tx = summary["recency"].to_numpy(float)
    age = summary["T"].to_numpy(float)
    m = summary["monetary_value"].to_numpy(float)
    p_alive = np.asarray(model.conditional_probability_alive(x, tx, age), dtype=float)
    horizon = HORIZON_DAYS / FREQUENCIES[params.freq]
    expected = np.asarray(
        model.conditional_expected_number_of_purchases_up_to_time(horizon, x, tx, age),
        dtype=float,
    )
    spend_out = _model_out("gg", spend)
    if degenerate:
        # do not serve a degenerate fit's spend: each customer's mean spend shrunk to the
        # population's median (gammagamma.shrunk_average_spend), marked on the run and so on
        # every score of it
        population = gammagamma.population_spend(x, m)
        per_purchase = gammagamma.shrunk_average_spend(x, m, population)
        spend_out.update(
            degenerate=degenerate, clv_basis=CLV_BASIS_SHRUNK,
            fallback={"population_spend": population,
                      "purchases": gammagamma.SHRINKAGE_PURCHASES},
        )
        notes.append(
            "Gamma-Gamma fit is degenerate (" + "; ".join(degenerate) + "): CLV uses each "
            "customer's mean spend shrunk to the population's median "
            f"({population:,.2f} {currency}) as if it were "
            f"{gammagamma.SHRINKAGE_PURCHASES:g} more purchase, not Gamma-Gamma's prediction"
        )
    else:
        per_purchase = spend.conditional_expected_average_profit(x, m)
        spend_out.update(degenerate=[], clv_basis=CLV_BASIS_MODEL)
    clv = np.asarray(
        gammagamma.discounted_value(
            model, per_purchase, x, tx, age,
            time=params.clv_months, discount_rate=params.discount_rate, freq=params.freq,
        ),
        dtype=float,
    )
    for name, values in (("P(alive)", p_alive), ("expected purchases", expected), ("CLV", clv)):
        if not np.all(np.isfinite(values)):
            raise NothingToScore(
                f"{label} gave non-finite {name} for {int(np.sum(~np.isfinite(values)))} "
                f"customers (parameters {model.params_}); try the other model or weekly units"
            )
    scale = 10.0 ** exponent(currency)
    out = summary[["frequency", "recency", "T"]].copy()
    out["frequency"] = out["frequency"].astype(np.int64)
    out["monetary_minor"] = _to_minor(m, scale)
    out["p_alive"] = p_alive
    out["expected_purchases_90d"] = expected
    out["clv_minor"] = _to_minor(clv, scale)
    out = out.join(rfm.rfm_segments(summary))
    out["stage"] = rfm.lifecycle_stages(summary, p_alive, freq=params.freq)

    report(84, "building monthly cohorts")
    cohorts = _cohorts(table)

    counts_, edges = np.histogram(clv, bins=40)
    sample = np.random.default_rng(0).permutation(len(out))[:PLOT_SAMPLE]
    plot_data = {
        "clv_histogram": {"edges": edges.tolist(), "counts": counts_.astype(int).tolist()},
        "sample": {
            "frequency": x[sample].tolist(),
            "recency": tx[sample].tolist(),
            "T": age[sample].tolist(),
        },
    }
    return Scores(
        customers=out,
        transactions=transactions,
        purchases=_model_out(params.model, model),
        spend=spend_out,
        holdout=holdout,
        cohorts=cohorts,
        plot_data=plot_data,
        notes=notes,
    )
