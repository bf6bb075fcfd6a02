from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, PrimaryKeyConstraint, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, JSONType, Minor, UTCDateTime, tenant_fk

_DUE = text("due_at IS NOT NULL")
_ACTIVE_JOB = text("status IN ('queued', 'running')")
#: a job in one of these states holds its campaign's single enrolment slot
ACTIVE_JOB_STATES = ("queued", "running")


class Campaign(Base):
    """A coupon for a segment's (or a list's) consenting members, with a holdout drawn from
    ``seed``. ``committed_minor`` is the worst-case cost of the coupons issued (what the
    ``budget_minor`` caps). Status: scheduled → running ⇄ paused → ended (the table is
    ``campaigns.lifecycle``). ``due_at`` is when the worker must next look at it (its start,
    its next re-evaluation or its end; null once ended): the worker's scan reads that index
    alone."""

    __tablename__ = "campaigns"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      Index("ix_campaigns_tenant_status", "tenant_id", "status"),
                      Index("ix_campaigns_due", "due_at", postgresql_where=_DUE,
                            sqlite_where=_DUE))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    segment_id: Mapped[str | None] = mapped_column(String(40))
    member_ids: Mapped[list | None] = mapped_column(JSONType)  # the list, when no segment
    channel: Mapped[str] = mapped_column(String(16))  # sms | email: the consent it needs
    coupon_id: Mapped[str] = mapped_column(String(40))
    coupon_code: Mapped[str] = mapped_column(String(64))
    unit_cost_minor: Mapped[int | None] = mapped_column(Minor)  # one coupon's worst case (None: no cap)
    currency: Mapped[str] = mapped_column(String(3))
    holdout_bps: Mapped[int] = mapped_column(Integer)
    seed: Mapped[str] = mapped_column(String(64))
    budget_minor: Mapped[int | None] = mapped_column(Minor)
    committed_minor: Mapped[int] = mapped_column(Minor, default=0)
    audience: Mapped[int] = mapped_column(Integer, default=0)  # consenting candidates
    candidates: Mapped[int] = mapped_column(Integer, default=0)
    treated: Mapped[int] = mapped_column(Integer, default=0)
    holdout: Mapped[int] = mapped_column(Integer, default=0)
    left_out: Mapped[int] = mapped_column(Integer, default=0)  # stopped by the budget
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    launched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reevaluate_hours: Mapped[int] = mapped_column(Integer, default=0)  # 0: never
    reevaluated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CampaignMember(Base):
    """One enrolled member: ``treated`` (issued the coupon) or ``holdout`` (nothing), and
    the basis on which they were targeted (the consent they had granted at launch)."""

    __tablename__ = "campaign_members"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      tenant_fk("campaign_id", "campaigns"),
                      UniqueConstraint("tenant_id", "campaign_id", "member_id",
                                       name="uq_campaign_members_member"),
                      Index("ix_campaign_members_member", "tenant_id", "member_id"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    campaign_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str] = mapped_column(String(40))
    arm: Mapped[str] = mapped_column(String(16))  # treated | holdout
    basis: Mapped[str] = mapped_column(String(64))  # e.g. "consent:sms_marketing"
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CampaignJob(Base):
    """An enrolment of a campaign's audience, run in batches by the worker: the ``launch``,
    or a ``reevaluate`` that adds who joined the segment since. ``queued`` → ``running`` →
    ``succeeded`` | ``failed`` | ``canceled`` (the campaign ended first); a running job whose
    worker went away (no batch for a while) is queued again and resumes, since a batch skips
    the members enrolled already. At most one is queued or running per campaign."""

    __tablename__ = "campaign_jobs"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      tenant_fk("campaign_id", "campaigns"),
                      Index("ix_campaign_jobs_campaign", "tenant_id", "campaign_id", "id"),
                      Index("uq_campaign_jobs_active", "tenant_id", "campaign_id", unique=True,
                            postgresql_where=_ACTIVE_JOB, sqlite_where=_ACTIVE_JOB),
                      Index("ix_campaign_jobs_active", "updated_at",
                            postgresql_where=_ACTIVE_JOB, sqlite_where=_ACTIVE_JOB))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    campaign_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # launch | reevaluate
    status: Mapped[str] = mapped_column(String(16))
    batch_size: Mapped[int] = mapped_column(Integer)
    audience: Mapped[int] = mapped_column(Integer, default=0)  # consenting, at the last start
    enrolled_before: Mapped[int] = mapped_column(Integer, default=0)  # of them, enrolled at it
    walked: Mapped[int] = mapped_column(Integer, default=0)  # members this job has looked at
    treated: Mapped[int] = mapped_column(Integer, default=0)  # enrolled by this job
    holdout: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the last batch: liveness
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
