"""Enrolling a campaign's audience in batches: the launch, and the re-evaluations that add
who joined the segment since (private to campaigns; ``service`` re-exports what others use).

An enrolment is a job (``campaign_jobs``). It reads the audience (the segment's or the list's
members who granted the channel's consent now), drops those enrolled already, and walks the
rest in the campaign's seeded order, ``campaign_batch_size`` members per transaction: each
batch locks the campaign's row, reads which of its members are enrolled (none, unless another
run got there first), puts each new one in the holdout by the seeded draw or issues the
coupon, and adds them to the counts — so a batch that fails is undone whole, and a job that
is run again (after a failure, or when its worker died) skips who is enrolled: nobody is
issued twice nor counted twice. A member who left the segment stays enrolled (the groups
stay comparable); a new one is drawn by the same seed (``lift.in_holdout``).

The budget stops the walk for both groups at the first treated member whose coupon would pass
it; once it is spent, the enrolment is closed: a re-evaluation enrols nobody more.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from haina.analytics import service as analytics
from haina.campaigns import lift
from haina.campaigns.models import ACTIVE_JOB_STATES, Campaign, CampaignJob, CampaignMember
from haina.campaigns.schemas import EnrolmentOut
from haina.core.config import get_settings
from haina.core.context import Tenant
from haina.core.db import rowcount, transaction, utcnow
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.marketing import service as marketing
from haina.members import service as members

log = logging.getLogger("haina.campaigns")

#: the consent a channel's campaign needs (members.service.campaign_audience reads the flag)
BASIS = {"sms": "consent:sms_marketing", "email": "consent:email_marketing"}
#: a running job without a batch for this long lost its worker: it is queued again (resumes)
STALE_AFTER = dt.timedelta(minutes=5)
#: failed batches before a job is given up (each failure is undone; the job is queued again)
MAX_ATTEMPTS = 5
#: a worker pass's time for campaign jobs, so the other jobs (order expiry) keep running
WORKER_SECONDS = 20.0

OnBatch = Callable[[int, int], None]


def job_out(job: CampaignJob) -> EnrolmentOut:
    done = min(job.audience, job.enrolled_before + job.walked)
    progress = 100 if job.status == "succeeded" else (
        min(99, done * 100 // job.audience) if job.audience else 0)
    return EnrolmentOut(id=job.id, kind=job.kind, status=job.status, progress=progress,
                        audience=job.audience, done=done, treated=job.treated,
                        holdout=job.holdout, batch_size=job.batch_size, attempts=job.attempts,
                        message=job.message, created_at=job.created_at,
                        started_at=job.started_at, finished_at=job.finished_at)


def latest_job(session: Session, tenant_id: str, campaign_id: str) -> CampaignJob | None:
    return session.scalar(select(CampaignJob).where(
        CampaignJob.tenant_id == tenant_id, CampaignJob.campaign_id == campaign_id)
        .order_by(CampaignJob.id.desc()).limit(1))


def active_job(session: Session, tenant_id: str, campaign_id: str) -> CampaignJob | None:
    return session.scalar(select(CampaignJob).where(
        CampaignJob.tenant_id == tenant_id, CampaignJob.campaign_id == campaign_id,
        CampaignJob.status.in_(ACTIVE_JOB_STATES)))


def queue_job(session: Session, c: Campaign, kind: str, now: dt.datetime,
              batch_size: int | None = None) -> CampaignJob:
    """Queue an enrolment of ``c`` (the caller holds its row), or give back the one queued or
    running already: it will enrol whoever is pending when it gets to them."""
    job = active_job(session, c.tenant_id, c.id)
    if job is not None:
        return job
    job = CampaignJob(id=new_id("campaign_job"), tenant_id=c.tenant_id, campaign_id=c.id,
                      kind=kind, status="queued",
                      batch_size=batch_size or get_settings().campaign_batch_size, audience=0,
                      enrolled_before=0, walked=0, treated=0, holdout=0, attempts=0,
                      message="queued", created_at=now, updated_at=now)
    session.add(job)
    session.flush()
    return job


def cancel_jobs(session: Session, c: Campaign, now: dt.datetime) -> None:
    """The campaign ended: its queued or running enrolment stops (what it enrolled stays)."""
    session.execute(update(CampaignJob).where(
        CampaignJob.tenant_id == c.tenant_id, CampaignJob.campaign_id == c.id,
        CampaignJob.status.in_(ACTIVE_JOB_STATES))
        .values(status="canceled", finished_at=now, updated_at=now,
                message="the campaign ended before the enrolment finished")
        .execution_options(synchronize_session=False))


# ---------------------------------------------------------------- the walk

def audience_of(session: Session, tenant: Tenant, c: Campaign) -> tuple[int, list[str]]:
    """(candidates, audience): the segment's members in the latest analytics run, or the
    list; and those of them who granted the channel's marketing consent now (PIPL art. 24)."""
    candidates = (analytics.segment_member_ids(session, tenant, c.segment_id)
                  if c.segment_id is not None else list(c.member_ids or ()))
    return len(set(candidates)), members.campaign_audience(session, tenant, c.channel,
                                                           candidates)


def pending_of(session: Session, c: Campaign, audience: Sequence[str]) -> list[str]:
    """The audience not enrolled yet, in the campaign's seeded order."""
    enrolled = set(session.scalars(select(CampaignMember.member_id).where(
        CampaignMember.tenant_id == c.tenant_id, CampaignMember.campaign_id == c.id)))
    return [m for m in lift.enrolment_order(c.seed, audience) if m not in enrolled]


def budget_closed(c: Campaign) -> bool:
    """Whether the budget cannot pay one more coupon: the enrolment is closed."""
    return (c.budget_minor is not None
            and (c.unit_cost_minor or 0) > c.budget_minor - c.committed_minor)


def enrol_batch(session: Session, tenant: Tenant, c: Campaign, job: CampaignJob,
                batch: Sequence[str], now: dt.datetime) -> tuple[int, bool]:
    """Enrol ``batch`` (in the seeded order) in the caller's transaction, which holds the
    campaign's row: returns (members walked, whether the budget stopped the walk)."""
    enrolled = set(session.scalars(select(CampaignMember.member_id).where(
        CampaignMember.tenant_id == c.tenant_id, CampaignMember.campaign_id == c.id,
        CampaignMember.member_id.in_(list(batch)))))
    treated: list[str] = []
    holdout: list[str] = []
    unit = c.unit_cost_minor or 0
    left = None if c.budget_minor is None else c.budget_minor - c.committed_minor
    walked, stopped = 0, False
    for member_id in batch:
        if member_id in enrolled:
            pass
        elif lift.in_holdout(c.seed, member_id, c.holdout_bps):
            holdout.append(member_id)
        elif left is not None and unit > left:
            stopped = True  # this member and the rest: the budget is spent
            break
        else:
            treated.append(member_id)
            if left is not None:
                left -= unit
        walked += 1
    basis = BASIS[c.channel]
    rows = [{"id": new_id("campaign_member"), "tenant_id": c.tenant_id, "campaign_id": c.id,
             "member_id": m, "arm": arm, "basis": basis, "created_at": now}
            for arm, group in (("treated", treated), ("holdout", holdout)) for m in group]
    if rows:
        session.execute(insert(CampaignMember.__table__), rows)
    if treated:
        marketing.issue_to_members(session, tenant, c.coupon_id, treated, source=c.id, now=now)
    for member_id in treated:
        record_event(session, c.tenant_id, "campaign.member_targeted", c.id,
                     {"campaign_id": c.id, "member_id": member_id, "channel": c.channel,
                      "basis": basis, "coupon_id": c.coupon_id, "coupon_code": c.coupon_code,
                      "ends_at": c.ends_at.isoformat(), "job_id": job.id})
    c.treated += len(treated)
    c.holdout += len(holdout)
    c.committed_minor += unit * len(treated)
    c.updated_at = now
    job.walked += walked
    job.treated += len(treated)
    job.holdout += len(holdout)
    job.updated_at = now
    session.flush()
    return walked, stopped


def finish(session: Session, c: Campaign, job: CampaignJob, left_out: int | None,
           now: dt.datetime) -> None:
    """The job is done: ``left_out`` (consenting members the budget kept out; None: as it
    was) on the campaign, and ``campaign.enrolled`` with what this job enrolled."""
    if left_out is not None:
        c.left_out = left_out
    job.status, job.finished_at, job.updated_at = "succeeded", now, now
    job.message = (f"enrolled {job.treated} treated and {job.holdout} held out"
                   + (f"; {c.left_out} left out by the budget" if c.left_out else ""))
    record_event(session, c.tenant_id, "campaign.enrolled", c.id,
                 {"campaign_id": c.id, "job_id": job.id, "kind": job.kind,
                  "treated": job.treated, "holdout": job.holdout,
                  "campaign_treated": c.treated, "campaign_holdout": c.holdout,
                  "left_out": c.left_out, "audience": c.audience, "status": c.status})
    session.flush()


def enrol_in_request(session: Session, tenant: Tenant, c: Campaign, job: CampaignJob,
                     now: dt.datetime) -> None:
    """The launch's first look, in the launching transaction: the counts, and the whole
    enrolment when it fits one batch (else the job waits for the worker)."""
    candidates, audience = audience_of(session, tenant, c)
    c.candidates, c.audience = candidates, len(audience)
    pending = pending_of(session, c, audience)
    job.audience, job.enrolled_before = len(audience), len(audience) - len(pending)
    if len(pending) > job.batch_size:
        job.message = (f"{len(pending)} members to enrol in batches of {job.batch_size}: "
                       "waiting for the worker")
        return
    job.status, job.started_at = "running", now
    if budget_closed(c):
        finish(session, c, job, len(pending), now)
        return
    walked, stopped = enrol_batch(session, tenant, c, job, pending, now)
    finish(session, c, job, len(pending) - walked if stopped else None, now)


# ---------------------------------------------------------------- running a job

def _lock(session: Session, tenant_id: str, campaign_id: str,
          job_id: str) -> tuple[Campaign, CampaignJob]:
    c = session.scalar(select(Campaign).where(Campaign.tenant_id == tenant_id,
                                              Campaign.id == campaign_id).with_for_update())
    job = session.scalar(select(CampaignJob).where(CampaignJob.tenant_id == tenant_id,
                                                   CampaignJob.id == job_id).with_for_update())
    assert c is not None and job is not None  # a campaign and its jobs are never deleted
    return c, job


def _set_aside(job: CampaignJob, c: Campaign, now: dt.datetime) -> str:
    """The campaign is not running (paused, or ended): the job waits, or is canceled."""
    if c.status == "ended":
        job.status, job.finished_at = "canceled", now
        job.message = "the campaign ended before the enrolment finished"
    else:
        job.status, job.message = "queued", f"waiting: the campaign is {c.status}"
    job.updated_at = now
    return job.status


def _failed_batch(sessions: sessionmaker[Session], tenant_id: str, job_id: str,
                  exc: BaseException) -> str:
    """A batch failed (and was undone): queue the job again, or give it up after
    :data:`MAX_ATTEMPTS`."""
    log.warning("campaign job %s: a batch failed", job_id, exc_info=exc)
    with transaction(sessions) as s:
        job = s.scalar(select(CampaignJob).where(CampaignJob.tenant_id == tenant_id,
                                                 CampaignJob.id == job_id).with_for_update())
        assert job is not None
        job.attempts += 1
        job.status = "failed" if job.attempts >= MAX_ATTEMPTS else "queued"
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        job.message = (f"a batch failed ({detail}); "
                       + ("given up" if job.status == "failed" else "it will be run again"))[:500]
        job.updated_at = utcnow()
        if job.status == "failed":
            job.finished_at = job.updated_at
        return job.status


def run_job(sessions: sessionmaker[Session], tenant_id: str, job_id: str, *,
            until: float | None = None, max_batches: int | None = None,
            on_batch: OnBatch | None = None) -> str | None:
    """Claim the queued job and enrol its campaign's pending members, one transaction per
    batch, until they are all enrolled (``succeeded``), the campaign is not running (the job
    waits, or is canceled when it ended), a batch fails (queued again, or ``failed`` after
    :data:`MAX_ATTEMPTS`), or ``until`` (``time.monotonic()``) / ``max_batches`` is reached
    (queued again: the next claim resumes). Returns the job's status, or None when it was not
    queued (another worker has it). ``on_batch(done, audience)`` is called inside each batch's
    transaction, after its writes (the CLI's progress bar): raising there undoes the batch."""
    now = utcnow()
    with transaction(sessions) as s:
        if not rowcount(s.execute(
                update(CampaignJob).where(CampaignJob.tenant_id == tenant_id,
                                          CampaignJob.id == job_id,
                                          CampaignJob.status == "queued")
                .values(status="running", updated_at=now,
                        started_at=func.coalesce(CampaignJob.started_at, now))
                .execution_options(synchronize_session=False))):
            return None
        job = s.scalar(select(CampaignJob).where(CampaignJob.tenant_id == tenant_id,
                                                 CampaignJob.id == job_id))
        assert job is not None
        c, job = _lock(s, tenant_id, job.campaign_id, job_id)
        campaign_id = c.id
        if c.status != "running":
            return _set_aside(job, c, now)
        tenant = Tenant(id=tenant_id, slug="", currency=c.currency)
        candidates, audience = audience_of(s, tenant, c)
        c.candidates, c.audience = candidates, len(audience)
        pending = pending_of(s, c, audience)
        job.audience, job.enrolled_before, job.walked = (len(audience),
                                                         len(audience) - len(pending), 0)
        job.message = f"enrolling {len(pending)} members in batches of {job.batch_size}"
        size, closed = job.batch_size, budget_closed(c)
    position, batches, stopped = 0, 0, closed
    while position < len(pending) and not stopped:
        try:
            with transaction(sessions) as s:
                c, job = _lock(s, tenant_id, campaign_id, job_id)
                if job.status != "running":  # taken for stale and queued again meanwhile
                    return job.status
                if c.status != "running":
                    return _set_aside(job, c, utcnow())
                walked, stopped = enrol_batch(s, tenant, c, job,
                                              pending[position:position + size], utcnow())
                if on_batch is not None:
                    on_batch(min(job.audience, job.enrolled_before + job.walked), job.audience)
        except Exception as exc:
            return _failed_batch(sessions, tenant_id, job_id, exc)
        position += walked
        batches += 1
        out_of_time = ((max_batches is not None and batches >= max_batches)
                       or (until is not None and time.monotonic() > until))
        if out_of_time and position < len(pending) and not stopped:
            with transaction(sessions) as s:
                c, job = _lock(s, tenant_id, campaign_id, job_id)
                if job.status == "running":
                    job.status, job.updated_at = "queued", utcnow()
                    job.message = (f"{job.enrolled_before + job.walked} of {job.audience} "
                                   "enrolled; continues at the worker's next pass")
                return job.status
    with transaction(sessions) as s:
        c, job = _lock(s, tenant_id, campaign_id, job_id)
        if job.status != "running":
            return job.status
        finish(s, c, job, len(pending) - position if stopped else None, utcnow())
    return "succeeded"


def requeue_stale(session: Session, now: dt.datetime | None = None) -> int:
    """Running jobs whose worker went away (no batch for :data:`STALE_AFTER`) are queued
    again: the next claim resumes them."""
    now = now or utcnow()
    return rowcount(session.execute(
        update(CampaignJob).where(CampaignJob.status == "running",
                                  CampaignJob.updated_at < now - STALE_AFTER)
        .values(status="queued", updated_at=now,
                message="resumed: the worker running it stopped")
        .execution_options(synchronize_session=False))) or 0


def run_queued_jobs(session: Session, now: dt.datetime | None = None,
                    seconds: float = WORKER_SECONDS) -> int:
    """The worker's campaign job: queue stale jobs again, then run the queued enrolments of
    running campaigns, longest-waiting first, for about ``seconds`` (a large launch goes on
    at the next pass). Each batch commits on its own (the worker's session only lends its
    connection settings). Returns the jobs worked on."""
    sessions = sessionmaker(session.get_bind(), expire_on_commit=False, autoflush=False)
    with transaction(sessions) as s:
        requeue_stale(s, now)
        picked = s.execute(
            select(CampaignJob.tenant_id, CampaignJob.id)
            .join(Campaign, and_(Campaign.tenant_id == CampaignJob.tenant_id,
                                 Campaign.id == CampaignJob.campaign_id))
            .where(CampaignJob.status == "queued", Campaign.status == "running")
            .order_by(CampaignJob.updated_at).limit(5)).all()
    until = time.monotonic() + seconds
    worked = 0
    for tenant_id, job_id in picked:
        if time.monotonic() > until:
            break
        worked += run_job(sessions, tenant_id, job_id, until=until) is not None
    return worked
