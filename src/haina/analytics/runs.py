"""Reading what the latest runs computed: runs (fitted models, holdout checks), member scores,
cohorts and charts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.db import tenant_row
from haina.core.errors import NotFound
from haina.core.money import Money
from haina.core.pagination import Page, paginate

from .models import AnalyticsRun, MemberScore
from .schemas import (
    CohortMonthOut,
    CohortOut,
    CohortsOut,
    FittedModelOut,
    HoldoutOut,
    MemberScoresOut,
    PlotName,
    RfmOut,
    RunOut,
    SpendModelOut,
)

UNITS = {"D": "day", "W": "week"}


# ---------------------------------------------------------------- runs

def latest_run(session: Session, tenant: Tenant) -> AnalyticsRun | None:
    return session.scalar(select(AnalyticsRun).where(AnalyticsRun.tenant_id == tenant.id)
                          .order_by(AnalyticsRun.id.desc()).limit(1))


def _fitted_out(d: dict[str, Any]) -> FittedModelOut:
    return FittedModelOut(model=d["model"], params=d["params"],
                          standard_errors=d["standard_errors"],
                          log_likelihood=d["log_likelihood"], customers=d["customers"])


def clv_basis(run: AnalyticsRun | None) -> str:
    """What the run's CLVs rest on (stored with its spend model; runs from before it was
    recorded served Gamma-Gamma's)."""
    return (run.spend or {}).get("clv_basis", "gamma_gamma") if run is not None else "gamma_gamma"


def _spend_out(d: dict[str, Any]) -> SpendModelOut:
    return SpendModelOut(model=d["model"], params=d["params"],
                         standard_errors=d["standard_errors"],
                         log_likelihood=d["log_likelihood"], customers=d["customers"],
                         degenerate=d.get("degenerate", []), fallback=d.get("fallback"))


def _run_out(run: AnalyticsRun) -> RunOut:
    holdout = None
    if run.holdout:
        h = run.holdout
        holdout = HoldoutOut(calibration_end=h["calibration_end"],
                             observation_end=h["observation_end"], duration=h["duration"],
                             customers=h["customers"], actual_purchases=h["actual_purchases"],
                             predicted_purchases=h["predicted_purchases"], buckets=h["buckets"],
                             model=_fitted_out(h["model"]))
    purchases = {"model": run.model, "params": run.params,
                 "standard_errors": run.standard_errors, "log_likelihood": run.log_likelihood,
                 "customers": run.customers}
    return RunOut(id=run.id, job_id=run.job_id, source=run.source, engine=run.engine,
                  unit=UNITS[run.freq], currency=run.currency,
                  observation_end=run.observation_end, customers=run.customers,
                  transactions=run.transactions, purchases=_fitted_out(purchases),
                  spend=_spend_out(run.spend), clv_basis=clv_basis(run), holdout=holdout,
                  clv_months=run.settings["clv_months"],
                  discount_rate=run.settings["discount_rate"],
                  timezone=run.settings["timezone"], notes=run.notes, created_at=run.created_at)


def get_run(session: Session, tenant: Tenant, run_id: str) -> RunOut:
    return _run_out(tenant_row(session, tenant.id, AnalyticsRun, run_id, "analytics run"))


def list_runs(session: Session, tenant: Tenant, *, limit: int = 20,
              cursor: str | None = None) -> Page[RunOut]:
    stmt = select(AnalyticsRun).where(AnalyticsRun.tenant_id == tenant.id)
    return paginate(session, stmt, AnalyticsRun.id, limit=limit, cursor=cursor, convert=_run_out)


# ---------------------------------------------------------------- member scores

def _score_row(session: Session, tenant: Tenant, member_id: str) -> MemberScore | None:
    return session.get(MemberScore, (tenant.id, member_id))


def member_scores(session: Session, tenant: Tenant, member_id: str) -> MemberScoresOut:
    """The member's scores from the latest run. A member merged into another answers with the
    survivor's scores (``member_id`` then names the survivor). 404 when the member has none yet
    (no refresh since its first paid order) or is another tenant's."""
    row = _score_row(session, tenant, member_id)
    if row is None:
        from haina.members import service as members
        try:
            survivor = members.resolve_member_id(session, tenant, member_id)
        except NotFound:
            survivor = member_id
        if survivor != member_id:
            row = _score_row(session, tenant, survivor)
    if row is None:
        raise NotFound(f"no analytics scores for member {member_id!r}: scores are computed for "
                       "members with a paid order by POST /v1/analytics/refresh",
                       slug="analytics-scores-not-found")
    run = session.get(AnalyticsRun, (tenant.id, row.run_id))
    currency = run.currency if run else tenant.currency
    return MemberScoresOut(
        member_id=row.member_id, run_id=row.run_id, unit=UNITS[run.freq if run else "D"],
        frequency=row.frequency, recency=row.recency, T=row.age,
        monetary_value=Money.of(row.monetary_minor, currency), p_alive=row.p_alive,
        expected_purchases_90d=row.expected_purchases_90d, clv=Money.of(row.clv_minor, currency),
        clv_months=run.settings["clv_months"] if run else 12, clv_basis=clv_basis(run),
        rfm=RfmOut(r=row.r_score, f=row.f_score, m=row.m_score,
                   code=f"{row.r_score}{row.f_score}{row.m_score}"),
        segment=row.segment, stage=row.stage, computed_at=row.computed_at)




# ---------------------------------------------------------------- cohorts

def _month_index(label: str) -> int:
    year, month = label.split("-")
    return int(year) * 12 + int(month) - 1


def cohorts(session: Session, tenant: Tenant) -> CohortsOut:
    """Monthly acquisition cohorts of the latest run: for each month of first purchase, every
    month since (up to the run's observation end), how many of the cohort bought and for how
    much."""
    run = latest_run(session, tenant)
    if run is None:
        return CohortsOut(currency=tenant.currency, cohorts=[])
    cells: dict[str, dict[int, dict[str, Any]]] = {}
    for cell in run.cohorts:
        cells.setdefault(cell["cohort"], {})[cell["months_since_first"]] = cell
    end = run.observation_end.year * 12 + run.observation_end.month - 1
    out = []
    for label in sorted(cells):
        months = cells[label]
        size = months[0]["size"]
        span = max(end - _month_index(label), max(months))
        out.append(CohortOut(cohort=label, size=size, months=[
            CohortMonthOut(months_since_first=m, active=months.get(m, {}).get("active", 0),
                           retention=months.get(m, {}).get("active", 0) / size,
                           revenue=Money.of(months.get(m, {}).get("revenue_minor", 0),
                                            run.currency))
            for m in range(span + 1)]))
    return CohortsOut(run_id=run.id, computed_at=run.created_at, currency=run.currency,
                      cohorts=out)




# ---------------------------------------------------------------- charts

MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


def plot(session: Session, tenant: Tenant, name: PlotName, fmt: str) -> bytes:
    """A chart of the latest run as PNG or SVG bytes; 404 before the first run (or, for
    ``holdout_fit``, when the run had no holdout check)."""
    from .clv import plots
    from .scoring import fitted

    run = latest_run(session, tenant)
    if run is None:
        raise NotFound("no analytics run yet: POST /v1/analytics/refresh first",
                       slug="analytics-run-not-found")
    unit = UNITS[run.freq]
    if name == "cohort_heatmap":
        fig = plots.cohort_heatmap_figure(cohorts(session, tenant).model_dump(mode="json"))
    elif name == "p_alive_vs_recency":
        sample = run.plot_data["sample"]
        fig = plots.p_alive_figure(fitted(run.model, run.params), sample["frequency"],
                                   sample["recency"], sample["T"], unit=unit)
    elif name == "clv_distribution":
        hist = run.plot_data["clv_histogram"]
        fig = plots.clv_histogram_figure(
            hist["edges"], hist["counts"],
            xlabel=f"expected value of the next {run.settings['clv_months']} months "
                   f"({run.currency})")
    else:
        if not run.holdout:
            raise NotFound("the latest run has no holdout check (refresh with holdout_days > 0 "
                           "on a longer history)", slug="analytics-plot-not-found")
        fig = plots.holdout_figure(run.holdout["buckets"])
    return plots.render(fig, fmt)
