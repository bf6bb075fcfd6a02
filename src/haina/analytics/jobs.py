"""Refresh jobs (``analytics_jobs``): the queue, claiming, progress, heartbeats, stale jobs.

:func:`start_refresh` queues a job (the API and the CLI); :func:`run_job` claims it with a
conditional update (so it runs once, whoever asks) and runs it (:mod:`.refresh`), writing its
progress as it goes; :func:`run_queued_jobs`, the worker's job, starts the oldest queued one in
a thread of the worker process. The API only queues: no fit runs inside an API process.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from haina.core.context import Tenant
from haina.core.db import rowcount, tenant_row, transaction, utcnow
from haina.core.errors import Conflict, Invalid
from haina.core.ids import new_id
from haina.core.pagination import Page, paginate

from .models import ACTIVE_JOB_STATES, AnalyticsJob, ImportedTransaction
from .refresh import UserFacing, check_observation_end, refresh
from .schemas import JobOut, RefreshIn

log = logging.getLogger("haina.analytics")

#: a queued or running job not heard from for this long was orphaned (its process ended)
STALE_AFTER = dt.timedelta(minutes=30)
HEARTBEAT = dt.timedelta(minutes=1)


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
    return rowcount(result) or 0


def start_refresh(session: Session, tenant: Tenant, params: RefreshIn) -> JobOut:
    """Queue a refresh of the tenant's scores; 409 while another one is queued or running,
    422 for an observation end after today (it would score every member as lapsed)."""
    check_observation_end(params)
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
        claimed = rowcount(session.execute(
            update(AnalyticsJob).where(AnalyticsJob.id == job_id,
                                       AnalyticsJob.status == "queued")
            .values(status="running", started_at=now, updated_at=now, progress=1,
                    message="starting")))
        if not claimed:
            return None
        return session.scalar(select(AnalyticsJob).where(AnalyticsJob.id == job_id))


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
        run_id = refresh(sessions, tenant, job, params, report)
    except UserFacing as exc:
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


class _WorkerRun:
    """The refresh this worker process is running: one at a time."""
    thread: threading.Thread | None = None
    job_id: str | None = None
    sessions: sessionmaker[Session] | None = None


def run_queued_jobs(session: Session) -> int:
    """The worker's analytics job: fail orphaned jobs, then start the oldest queued refresh in a
    thread of the worker process — one at a time, so a long refresh neither blocks the worker's
    other jobs (expiring unpaid orders) nor piles up. Returns the number of refreshes started.
    (The worker's session only lends its connection settings: a run commits step by step.)

    Queued refreshes start here (or in ``haina analytics refresh``) and nowhere else: the API
    only queues them, so a fit never runs inside an API process."""
    sessions = sessionmaker(session.get_bind(), expire_on_commit=False, autoflush=False)
    with transaction(sessions) as s:
        fail_stale_jobs(s)
        if _WorkerRun.thread is not None and _WorkerRun.thread.is_alive():
            return 0
        job_id = s.scalar(select(AnalyticsJob.id).where(AnalyticsJob.status == "queued")
                          .order_by(AnalyticsJob.id).limit(1))
    if job_id is None:
        return 0
    thread = threading.Thread(target=run_job, args=(sessions, job_id), daemon=True,
                              name=f"haina-analytics-{job_id}")
    _WorkerRun.thread, _WorkerRun.job_id, _WorkerRun.sessions = thread, job_id, sessions
    thread.start()
    return 1


def wait_for_worker_job(timeout: float | None = None) -> str | None:
    """Wait for the refresh this worker process started to end; its job id, or None when there
    is none (tests, and a worker told to stop)."""
    thread = _WorkerRun.thread
    if thread is None:
        return None
    thread.join(timeout)
    return _WorkerRun.job_id


def stop_worker_job() -> str | None:
    """The worker is stopping, and the refresh thread it runs dies with it: mark that job
    failed now, which frees the merchant's slot at once rather than after :data:`STALE_AFTER`.
    Returns the job's id, or None when no refresh was running."""
    thread, job_id, sessions = _WorkerRun.thread, _WorkerRun.job_id, _WorkerRun.sessions
    if thread is None or not thread.is_alive() or job_id is None or sessions is None:
        return None
    _finish_failed(sessions, job_id, "the worker stopped before the refresh finished; "
                                     "start a new refresh")
    return job_id
