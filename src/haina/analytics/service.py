"""Analytics' public face: refresh jobs, member scores, segments, cohorts and charts.

A refresh is a job (``analytics_jobs``): :func:`start_refresh` queues it, :func:`run_job` runs
it — in a background thread of the API process that queued it, or in ``haina worker``
(:func:`run_queued_jobs`), whichever claims it first (a conditional update, so it runs once).
A run reads the tenant's purchases (:mod:`.sources`), scores them (:mod:`.scoring`) and then,
in one transaction, replaces the tenant's member scores, records the run and marks the job
succeeded: readers see the old scores or the new ones, never a mix.
"""

from __future__ import annotations

import datetime as dt
import logging
import operator
import tempfile
import threading
import zoneinfo
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from haina.core.context import Tenant
from haina.core.db import tenant_row, transaction, utcnow
from haina.core.errors import Conflict, Invalid, NotFound
from haina.core.ids import new_id
from haina.core.money import Money, MoneyError, to_minor
from haina.core.pagination import Page, paginate

from .models import (
    ACTIVE_JOB_STATES,
    AnalyticsJob,
    AnalyticsRun,
    ImportedTransaction,
    MemberScore,
    SavedSegment,
)
from .schemas import (
    CohortMonthOut,
    CohortOut,
    CohortsOut,
    CountOut,
    FittedModelOut,
    HoldoutOut,
    JobOut,
    MemberScoresOut,
    PlotName,
    RefreshIn,
    RfmOut,
    RunOut,
    SavedSegmentOut,
    Segment,
    SegmentCreate,
    SegmentMemberOut,
    SegmentRule,
    SegmentsOut,
    Stage,
)

log = logging.getLogger("haina.analytics")

#: a queued or running job not heard from for this long was orphaned (its process ended)
STALE_AFTER = dt.timedelta(minutes=30)
HEARTBEAT = dt.timedelta(minutes=1)
SCORE_ROWS_PER_INSERT = 5_000
UNITS = {"D": "day", "W": "week"}
SEGMENT_NAMES: tuple[str, ...] = Segment.__args__  # type: ignore[attr-defined]
STAGE_NAMES: tuple[str, ...] = Stage.__args__  # type: ignore[attr-defined]


# ---------------------------------------------------------------- jobs

def _job_out(job: AnalyticsJob) -> JobOut:
    return JobOut(id=job.id, status=job.status, progress=job.progress, message=job.message,
                  params=RefreshIn.model_validate(job.params), run_id=job.run_id,
                  created_at=job.created_at, started_at=job.started_at,
                  finished_at=job.finished_at)


def fail_stale_jobs(session: Session, now: dt.datetime | None = None) -> int:
    """Mark jobs whose process went away (no heartbeat for :data:`STALE_AFTER`) as failed,
    which frees their tenant's refresh slot."""
    now = now or utcnow()
    result = session.execute(
        update(AnalyticsJob)
        .where(AnalyticsJob.status.in_(ACTIVE_JOB_STATES),
               AnalyticsJob.updated_at < now - STALE_AFTER)
        .values(status="failed", finished_at=now, updated_at=now,
                message=f"abandoned: no progress for {int(STALE_AFTER.total_seconds() // 60)} "
                        "minutes (the process running it stopped); start a new refresh"))
    return result.rowcount or 0


def start_refresh(session: Session, tenant: Tenant, params: RefreshIn) -> JobOut:
    """Queue a refresh of the tenant's scores; 409 while another one is queued or running."""
    fail_stale_jobs(session)
    running = session.scalar(select(AnalyticsJob.id).where(
        AnalyticsJob.tenant_id == tenant.id, AnalyticsJob.status.in_(ACTIVE_JOB_STATES)))
    if running is not None:
        raise _refresh_running(running)
    if params.engine == "spark":
        from .spark import unavailable_reason
        reason = unavailable_reason()
        if reason:
            raise Invalid(f"the spark engine is unavailable here: {reason}",
                          slug="analytics-engine-unavailable")
    if params.source == "import" and not session.scalar(select(exists().where(
            ImportedTransaction.tenant_id == tenant.id))):
        raise Invalid("there are no imported transactions: run `haina analytics import FILE "
                      f"--tenant {tenant.slug} …` first, or refresh from the orders",
                      slug="analytics-nothing-imported")
    now = utcnow()
    job = AnalyticsJob(id=new_id("analytics_job"), tenant_id=tenant.id, kind="refresh", status="queued",
                       progress=0, message="queued", params=params.model_dump(mode="json"),
                       created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:  # another request queued one in between (uq_analytics_jobs_active)
        running = session.scalar(select(AnalyticsJob.id).where(
            AnalyticsJob.tenant_id == tenant.id, AnalyticsJob.status.in_(ACTIVE_JOB_STATES)))
        raise _refresh_running(running) from None
    return _job_out(job)


def _refresh_running(job_id: str | None) -> Conflict:
    return Conflict(f"a refresh is already queued or running ({job_id}); follow it at "
                    f"GET /v1/analytics/jobs/{job_id}", slug="analytics-refresh-running",
                    job_id=job_id)


def get_job(session: Session, tenant: Tenant, job_id: str) -> JobOut:
    return _job_out(tenant_row(session, tenant.id, AnalyticsJob, job_id, "analytics job"))


def list_jobs(session: Session, tenant: Tenant, *, limit: int = 20,
              cursor: str | None = None) -> Page[JobOut]:
    stmt = select(AnalyticsJob).where(AnalyticsJob.tenant_id == tenant.id)
    return paginate(session, stmt, AnalyticsJob.id, limit=limit, cursor=cursor, convert=_job_out)


OnProgress = Callable[[int, str], None]


class _JobReporter:
    """Writes a running job's progress and message in short transactions of their own (never
    while the run holds a transaction open: on SQLite that would wait for itself)."""

    def __init__(self, sessions: sessionmaker[Session], job_id: str,
                 also: OnProgress | None = None) -> None:
        self.sessions, self.job_id, self.last, self.also = sessions, job_id, -1, also

    def __call__(self, progress: int, message: str) -> None:
        progress = max(0, min(99, int(progress)))
        if self.also is not None:
            self.also(progress, message)
        if progress == self.last:
            return
        self.last = progress
        with transaction(self.sessions) as session:
            session.execute(update(AnalyticsJob)
                            .where(AnalyticsJob.id == self.job_id,
                                   AnalyticsJob.status == "running")
                            .values(progress=progress, message=message[:500],
                                    updated_at=utcnow()))


def _claim(sessions: sessionmaker[Session], job_id: str) -> AnalyticsJob | None:
    with transaction(sessions) as session:
        now = utcnow()
        claimed = session.execute(
            update(AnalyticsJob).where(AnalyticsJob.id == job_id,
                                       AnalyticsJob.status == "queued")
            .values(status="running", started_at=now, updated_at=now, progress=1,
                    message="starting")).rowcount
        if not claimed:
            return None
        return session.get(AnalyticsJob, job_id)


def _finish_failed(sessions: sessionmaker[Session], job_id: str, message: str) -> None:
    with transaction(sessions) as session:
        now = utcnow()
        session.execute(update(AnalyticsJob)
                        .where(AnalyticsJob.id == job_id, AnalyticsJob.status == "running")
                        .values(status="failed", message=" ".join(message.split())[:500],
                                finished_at=now, updated_at=now))


def _tenant_context(sessions: sessionmaker[Session], tenant_id: str) -> Tenant:
    from haina.platform import service as platform
    with transaction(sessions) as session:
        t = platform.get_tenant(session, tenant_id)
    return Tenant(id=t.id, slug=t.slug, currency=t.currency)


def run_job(sessions: sessionmaker[Session], job_id: str,
            on_progress: OnProgress | None = None) -> str | None:
    """Claim the queued job ``job_id`` and run it to the end; returns its final status, or None
    when someone else had claimed it. Never raises: a failure is the job's status and message.
    ``on_progress(percent, message)`` follows the run (the CLI's progress bar)."""
    job = _claim(sessions, job_id)
    if job is None:
        return None
    report = _JobReporter(sessions, job_id, on_progress)
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(sessions, job_id, stop), daemon=True,
                     name=f"haina-analytics-heartbeat-{job_id}").start()
    try:
        params = RefreshIn.model_validate(job.params)
        tenant = _tenant_context(sessions, job.tenant_id)
        run_id = _refresh(sessions, tenant, job, params, report)
    except _UserFacing as exc:
        _finish_failed(sessions, job_id, str(exc))
        return "failed"
    except Exception as exc:  # a bug or the database: logged in full, summarised on the job
        log.exception("analytics job %s failed", job_id)
        _finish_failed(sessions, job_id, f"internal error: {type(exc).__name__}: {exc}")
        return "failed"
    finally:
        stop.set()
    return "succeeded" if run_id else "failed"


def _heartbeat(sessions: sessionmaker[Session], job_id: str, stop: threading.Event) -> None:
    """Touch the running job every :data:`HEARTBEAT` so that a long fit without progress to
    report is not taken for an orphan (:func:`fail_stale_jobs`)."""
    while not stop.wait(HEARTBEAT.total_seconds()):
        try:
            with transaction(sessions) as session:
                session.execute(update(AnalyticsJob).where(AnalyticsJob.id == job_id,
                                                           AnalyticsJob.status == "running")
                                .values(updated_at=utcnow()))
        except Exception:  # a busy database: the next beat will do
            log.warning("heartbeat of analytics job %s failed", job_id, exc_info=True)


def run_in_background(sessions: sessionmaker[Session], job_id: str) -> threading.Thread:
    """Run the job in a daemon thread of this process (what the API does after queueing)."""
    thread = threading.Thread(target=run_job, args=(sessions, job_id), daemon=True,
                              name=f"haina-analytics-{job_id}")
    thread.start()
    return thread


_worker_thread: threading.Thread | None = None


def run_queued_jobs(session: Session) -> int:
    """The worker's analytics job: fail orphaned jobs, then start the oldest queued refresh in a
    thread of the worker process — one at a time, so a long refresh neither blocks the worker's
    other jobs (expiring unpaid orders) nor piles up. Returns the number of refreshes started.
    (The worker's session only lends its connection settings: a run commits step by step.)"""
    global _worker_thread
    sessions = sessionmaker(session.get_bind(), expire_on_commit=False, autoflush=False)
    with transaction(sessions) as s:
        fail_stale_jobs(s)
        if _worker_thread is not None and _worker_thread.is_alive():
            return 0
        job_id = s.scalar(select(AnalyticsJob.id).where(AnalyticsJob.status == "queued")
                          .order_by(AnalyticsJob.id).limit(1))
    if job_id is None:
        return 0
    _worker_thread = run_in_background(sessions, job_id)
    return 1


# ---------------------------------------------------------------- the refresh itself

def _user_facing_errors() -> tuple[type[BaseException], ...]:
    from .scoring import NothingToScore
    return (NothingToScore,)


class _UserFacing(Exception):
    """A failure whose message is meant for the merchant (bad data, not a bug)."""


def _refresh(sessions: sessionmaker[Session], tenant: Tenant, job: AnalyticsJob,
             params: RefreshIn, report: Callable[[int, str], None]) -> str | None:
    from . import scoring, sources

    zone = zoneinfo.ZoneInfo(params.timezone)
    end = params.observation_end or dt.datetime.now(zone).date()
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
            raise _UserFacing(
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
            raise _UserFacing(str(exc)) from None
    notes = stats.note(tenant.currency) + scores.notes
    if any(v is None for v in scores.spend["standard_errors"].values()):
        notes.append("Gamma-Gamma: standard errors undefined (the likelihood is flat: spend "
                     "varies little between customers, so CLV leans on each one's own mean)")
    report(90, f"writing the scores of {len(scores.customers):,} customers")
    return _store(sessions, tenant, job, params, end, scores, notes)


def _store(sessions: sessionmaker[Session], tenant: Tenant, job: AnalyticsJob,
           params: RefreshIn, end: dt.date, scores, notes: list[str]) -> str | None:
    now = utcnow()
    run_id = new_id("analytics_run")
    customers = scores.customers
    with transaction(sessions) as session:
        # still ours? (a job declared abandoned meanwhile must not overwrite a newer run)
        owned = session.execute(
            update(AnalyticsJob).where(AnalyticsJob.id == job.id,
                                       AnalyticsJob.status == "running")
            .values(status="succeeded", progress=100, run_id=run_id, finished_at=now,
                    updated_at=now,
                    message=f"scored {len(customers):,} customers from "
                            f"{scores.transactions:,} purchases")).rowcount
        if not owned:
            session.rollback()
            return None
        session.execute(delete(MemberScore).where(MemberScore.tenant_id == tenant.id))
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
    return run_id


# ---------------------------------------------------------------- runs

def _latest_run(session: Session, tenant: Tenant) -> AnalyticsRun | None:
    return session.scalar(select(AnalyticsRun).where(AnalyticsRun.tenant_id == tenant.id)
                          .order_by(AnalyticsRun.id.desc()).limit(1))


def _fitted_out(d: dict[str, Any]) -> FittedModelOut:
    return FittedModelOut(model=d["model"], params=d["params"],
                          standard_errors=d["standard_errors"],
                          log_likelihood=d["log_likelihood"], customers=d["customers"])


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
                  spend=_fitted_out(run.spend), holdout=holdout,
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
    run = session.get(AnalyticsRun, row.run_id)
    currency = run.currency if run else tenant.currency
    return MemberScoresOut(
        member_id=row.member_id, run_id=row.run_id, unit=UNITS[run.freq if run else "D"],
        frequency=row.frequency, recency=row.recency, T=row.age,
        monetary_value=Money.of(row.monetary_minor, currency), p_alive=row.p_alive,
        expected_purchases_90d=row.expected_purchases_90d, clv=Money.of(row.clv_minor, currency),
        clv_months=run.settings["clv_months"] if run else 12,
        rfm=RfmOut(r=row.r_score, f=row.f_score, m=row.m_score,
                   code=f"{row.r_score}{row.f_score}{row.m_score}"),
        segment=row.segment, stage=row.stage, computed_at=row.computed_at)


# ---------------------------------------------------------------- segments

_OPS = {"lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge}


def _rule_conditions(rule: SegmentRule, tenant: Tenant, currency: str | None = None) -> list:
    """The SQL conditions of a rule over ``analytics_member_scores``."""
    currency = currency or tenant.currency
    conditions = [MemberScore.tenant_id == tenant.id]
    for metric, col in (("p_alive", MemberScore.p_alive), ("clv", MemberScore.clv_minor),
                        ("expected_purchases_90d", MemberScore.expected_purchases_90d)):
        for op, compare in _OPS.items():
            value = getattr(rule, f"{metric}_{op}")
            if value is None:
                continue
            if metric == "clv":
                value = _clv_minor(value, currency, f"{metric}_{op}")
            conditions.append(compare(col, value))
    if rule.segment_in:
        conditions.append(MemberScore.segment.in_(sorted(set(rule.segment_in))))
    if rule.stage_in:
        conditions.append(MemberScore.stage.in_(sorted(set(rule.stage_in))))
    return conditions


def _clv_minor(value: Decimal, currency: str, name: str) -> int:
    try:
        return to_minor(value, currency)
    except MoneyError as exc:
        raise Invalid(f"rule.{name}: {exc}", slug="validation-error") from None


def _count(session: Session, conditions: list) -> int:
    return int(session.scalar(select(func.count()).select_from(MemberScore).where(*conditions)))


def _segment_out(session: Session, tenant: Tenant, row: SavedSegment) -> SavedSegmentOut:
    rule = SegmentRule.model_validate(row.rule)
    return SavedSegmentOut(id=row.id, name=row.name, rule=rule.conditions(),
                           members=_count(session, _rule_conditions(rule, tenant)),
                           created_at=row.created_at)


def _segment_row(session: Session, tenant: Tenant, segment_id: str) -> SavedSegment:
    row = session.scalar(select(SavedSegment).where(SavedSegment.tenant_id == tenant.id,
                                                    SavedSegment.id == segment_id))
    if row is None:
        raise NotFound(f"no saved segment {segment_id!r}", slug="analytics-segment-not-found")
    return row


def create_segment(session: Session, tenant: Tenant, data: SegmentCreate) -> SavedSegmentOut:
    """Save a named rule; 409 when the name is taken, 422 when an amount does not fit the
    merchant's currency."""
    _rule_conditions(data.rule, tenant)  # validates amounts against the currency
    taken = session.scalar(select(SavedSegment.id).where(SavedSegment.tenant_id == tenant.id,
                                                         SavedSegment.name == data.name))
    if taken is not None:
        raise Conflict(f"a segment named {data.name!r} exists ({taken})",
                       slug="analytics-segment-name-taken", segment_id=taken)
    row = SavedSegment(id=new_id("segment"), tenant_id=tenant.id, name=data.name,
                       rule=data.rule.conditions(), created_at=utcnow())
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise Conflict(f"a segment named {data.name!r} exists",
                       slug="analytics-segment-name-taken") from None
    return _segment_out(session, tenant, row)


def get_segment(session: Session, tenant: Tenant, segment_id: str) -> SavedSegmentOut:
    return _segment_out(session, tenant, _segment_row(session, tenant, segment_id))


def delete_segment(session: Session, tenant: Tenant, segment_id: str) -> None:
    session.delete(_segment_row(session, tenant, segment_id))
    session.flush()


def segment_members(session: Session, tenant: Tenant, segment_id: str, *, limit: int = 100,
                    cursor: str | None = None) -> Page[SegmentMemberOut]:
    """The members matching a saved segment in the latest run, by member id descending."""
    rule = SegmentRule.model_validate(_segment_row(session, tenant, segment_id).rule)
    run = _latest_run(session, tenant)
    currency = run.currency if run else tenant.currency
    stmt = select(MemberScore).where(*_rule_conditions(rule, tenant, currency))

    def convert(row: MemberScore) -> SegmentMemberOut:
        return SegmentMemberOut(member_id=row.member_id, p_alive=row.p_alive,
                                expected_purchases_90d=row.expected_purchases_90d,
                                clv=Money.of(row.clv_minor, currency), segment=row.segment,
                                stage=row.stage)

    return paginate(session, stmt, MemberScore.member_id, limit=limit, cursor=cursor,
                    convert=convert)


def segments_overview(session: Session, tenant: Tenant) -> SegmentsOut:
    """How many members are in each RFM segment and lifecycle stage, and in each saved
    segment, in the latest run."""
    run = _latest_run(session, tenant)
    by_segment = dict(session.execute(
        select(MemberScore.segment, func.count()).where(MemberScore.tenant_id == tenant.id)
        .group_by(MemberScore.segment)).all())
    by_stage = dict(session.execute(
        select(MemberScore.stage, func.count()).where(MemberScore.tenant_id == tenant.id)
        .group_by(MemberScore.stage)).all())
    saved = session.scalars(select(SavedSegment).where(SavedSegment.tenant_id == tenant.id)
                            .order_by(SavedSegment.id))
    return SegmentsOut(
        run_id=run.id if run else None, computed_at=run.created_at if run else None,
        members=sum(by_segment.values()),
        rfm_segments=[CountOut(name=s, members=by_segment.get(s, 0)) for s in SEGMENT_NAMES],
        lifecycle_stages=[CountOut(name=s, members=by_stage.get(s, 0)) for s in STAGE_NAMES],
        saved=[_segment_out(session, tenant, row) for row in saved])


# ---------------------------------------------------------------- cohorts

def _month_index(label: str) -> int:
    year, month = label.split("-")
    return int(year) * 12 + int(month) - 1


def cohorts(session: Session, tenant: Tenant) -> CohortsOut:
    """Monthly acquisition cohorts of the latest run: for each month of first purchase, every
    month since (up to the run's observation end), how many of the cohort bought and for how
    much."""
    run = _latest_run(session, tenant)
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

    run = _latest_run(session, tenant)
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
