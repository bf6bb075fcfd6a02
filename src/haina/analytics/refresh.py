"""The refresh pipeline: read a tenant's purchases (:mod:`.sources`), score them
(:mod:`.scoring`) and then, in one transaction, replace the tenant's member scores, record the run
and mark the job succeeded — readers see the old scores or the new ones, never a mix.

Run by :func:`.jobs.run_job`, which owns the job's status; this module only reports progress.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import zoneinfo
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import delete, insert, update
from sqlalchemy.orm import Session, sessionmaker

from haina.core.context import Tenant
from haina.core.db import rowcount, transaction, utcnow
from haina.core.errors import Invalid
from haina.core.ids import new_id
from haina.members import service as members

from .models import AnalyticsJob, AnalyticsRun, MemberScore
from .schemas import RefreshIn

SCORE_ROWS_PER_INSERT = 5_000


def _user_facing_errors() -> tuple[type[BaseException], ...]:
    from .scoring import NothingToScore
    return (NothingToScore,)


class UserFacing(Exception):
    """A failure whose message is meant for the merchant (bad data, not a bug)."""


class _JobTakenAway(Exception):
    """The job is no longer ours to finish (declared abandoned meanwhile): write nothing."""


def today(timezone: str) -> dt.date:
    """The calendar day it is now in ``timezone``: the default and the latest observation end."""
    return dt.datetime.now(zoneinfo.ZoneInfo(timezone)).date()


def observation_end_in_future(end: dt.date, timezone: str) -> str | None:
    """Why ``end`` cannot be a refresh's observation end, or None. After today, every member
    would be counted as silent until that day: all "lapsed", the live scores replaced."""
    latest = today(timezone)
    if end <= latest:
        return None
    return (f"observation_end {end} is in the future: the latest observation end is today, "
            f"{latest} in {timezone}")


def check_observation_end(params: RefreshIn) -> None:
    """422 ``observation-end-in-future`` when the refresh asks to observe beyond today."""
    if params.observation_end is None:
        return
    reason = observation_end_in_future(params.observation_end, params.timezone)
    if reason:
        raise Invalid(reason, slug="observation-end-in-future",
                      latest=today(params.timezone).isoformat())


def refresh(sessions: sessionmaker[Session], tenant: Tenant, job: AnalyticsJob,
             params: RefreshIn, report: Callable[[int, str], None]) -> str | None:
    from . import scoring, sources

    end = params.observation_end or today(params.timezone)
    if reason := observation_end_in_future(end, params.timezone):  # queued before the check
        raise UserFacing(reason)
    with tempfile.TemporaryDirectory(prefix="haina-analytics-") as tmp:
        path = Path(tmp) / "transactions.parquet"
        report(5, f"reading {'orders' if params.source == 'orders' else 'imported transactions'}")
        export = sources.export_paid_orders if params.source == "orders" else \
            sources.export_imported

        def read_progress(done: int, total: int) -> None:
            report(5 + 35 * done // max(total, 1), f"read {done:,} of {total:,} purchases")

        options = {"consented_only": True} if params.consented_only else {}
        stats = export(sessions, tenant, path, timezone=params.timezone, progress=read_progress,
                       **options)
        if stats.rows == 0:
            raise UserFacing(
                "no imported transactions" if params.source != "orders" else
                "no purchases to analyse: no paid orders of members who granted the "
                "data_analysis consent" if params.consented_only else
                "no purchases to analyse: the tenant has no paid orders of members")
        if params.engine == "spark":
            from . import spark
            report(41, "starting Spark")
            table = spark.read_parquet(spark.connect(), path)
        else:
            table = sources.duckdb_table(path)
        try:
            scores = scoring.score_customers(table, params, end, tenant.currency, report)
        except _user_facing_errors() as exc:
            raise UserFacing(str(exc)) from None
    notes = stats.note(tenant.currency) + scores.notes  # a degenerate spend fit says so there
    report(90, f"writing the scores of {len(scores.customers):,} customers")
    return _store(sessions, tenant, job, params, end, scores, notes)


def _store(sessions: sessionmaker[Session], tenant: Tenant, job: AnalyticsJob,
           params: RefreshIn, end: dt.date, scores, notes: list[str]) -> str | None:
    now = utcnow()
    run_id = new_id("analytics_run")
    try:
        with transaction(sessions) as session:
            _replace_scores(session, tenant, job, params, end, scores, notes, run_id, now)
    except _JobTakenAway:  # nothing was written: the conditional update matched no row
        return None
    return run_id


def _replace_scores(session: Session, tenant: Tenant, job: AnalyticsJob, params: RefreshIn,
                    end: dt.date, scores, notes: list[str], run_id: str, now: dt.datetime) -> None:
    """Mark the job succeeded, replace the tenant's member scores and record the run — or,
    when the job is no longer running, raise :class:`_JobTakenAway` before writing anything."""
    customers = scores.customers
    # still ours? (a job declared abandoned meanwhile must not overwrite a newer run)
    owned = rowcount(session.execute(
        update(AnalyticsJob).where(AnalyticsJob.id == job.id,
                                   AnalyticsJob.status == "running")
        .values(status="succeeded", progress=100, run_id=run_id, finished_at=now,
                updated_at=now,
                message=f"scored {len(customers):,} customers from "
                        f"{scores.transactions:,} purchases")))
    if not owned:
        raise _JobTakenAway(job.id)
    session.execute(delete(MemberScore).where(MemberScore.tenant_id == tenant.id))
    # PIPL Art. 15/24: a member who withdrew data_analysis (or was erased) is not scored
    refused = members.withdrawn_member_ids(session, tenant, "data_analysis")
    if refused:
        customers = customers[~customers.index.astype(str).isin(refused)]
    columns = {
        "member_id": customers.index.astype(str).tolist(),
        "frequency": customers["frequency"].astype(int).tolist(),
        "recency": customers["recency"].astype(float).tolist(),
        "age": customers["T"].astype(float).tolist(),
        "monetary_minor": customers["monetary_minor"].astype(int).tolist(),
        "p_alive": customers["p_alive"].astype(float).tolist(),
        "expected_purchases_90d": customers["expected_purchases_90d"].astype(float).tolist(),
        "clv_minor": customers["clv_minor"].astype(int).tolist(),
        "r_score": customers["r_score"].astype(int).tolist(),
        "f_score": customers["f_score"].astype(int).tolist(),
        "m_score": customers["m_score"].astype(int).tolist(),
        "segment": customers["segment"].astype(str).tolist(),
        "stage": customers["stage"].astype(str).tolist(),
    }
    names = list(columns)
    rows = [dict(zip(names, values, strict=True), tenant_id=tenant.id, run_id=run_id,
                 computed_at=now)
            for values in zip(*columns.values(), strict=True)]
    for start in range(0, len(rows), SCORE_ROWS_PER_INSERT):
        session.execute(insert(MemberScore), rows[start:start + SCORE_ROWS_PER_INSERT])
    purchases = scores.purchases
    session.add(AnalyticsRun(
        id=run_id, tenant_id=tenant.id, job_id=job.id, source=params.source,
        engine=params.engine, model=params.model, freq=params.freq,
        currency=tenant.currency, observation_end=end, customers=len(customers),
        transactions=scores.transactions, params=purchases["params"],
        standard_errors=purchases["standard_errors"],
        log_likelihood=purchases["log_likelihood"], spend=scores.spend,
        holdout=scores.holdout, cohorts=scores.cohorts, plot_data=scores.plot_data,
        settings={"clv_months": params.clv_months, "discount_rate": params.discount_rate,
                  "timezone": params.timezone, "holdout_days": params.holdout_days},
        notes=notes, created_at=now))

