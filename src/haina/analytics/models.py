"""Analytics' own tables: refresh jobs, the runs they produce, per-member scores of the latest
run, saved segments and imported transaction logs.

Private to the analytics module (other modules go through ``analytics.service``). Plain
SQLAlchemy: importable without the ``analytics`` extra, so the schema is complete everywhere.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Date,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, JSONType, Minor, UTCDateTime

#: a job in one of these states holds the tenant's single refresh slot
ACTIVE_JOB_STATES = ("queued", "running")
_ACTIVE = text("status IN ('queued', 'running')")


class AnalyticsJob(Base):
    """A background refresh: ``queued`` → ``running`` → ``succeeded`` | ``failed``, with
    ``progress`` 0–100 and a one-line ``message``. At most one is queued or running per tenant
    (a partial unique index, so two concurrent requests cannot both start one)."""

    __tablename__ = "analytics_jobs"
    __table_args__ = (
        Index("ix_analytics_jobs_status", "status"),
        Index("uq_analytics_jobs_active", "tenant_id", unique=True,
              postgresql_where=_ACTIVE, sqlite_where=_ACTIVE),
        PrimaryKeyConstraint("tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(String(500))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    run_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # the heartbeat: a running job not updated for a long time was orphaned by its process
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AnalyticsRun(Base):
    """What one successful refresh found: the fitted models, the holdout check, the cohorts and
    the data behind the charts. The member scores of the latest run are in
    ``analytics_member_scores``."""

    __tablename__ = "analytics_runs"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),)

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[str | None] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(16))  # orders | import
    engine: Mapped[str] = mapped_column(String(16))  # duckdb | spark
    model: Mapped[str] = mapped_column(String(16))   # bgnbd | pnbd
    freq: Mapped[str] = mapped_column(String(1))     # D | W
    currency: Mapped[str] = mapped_column(String(3))
    observation_end: Mapped[dt.date] = mapped_column(Date)
    customers: Mapped[int] = mapped_column(Integer)
    transactions: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    standard_errors: Mapped[dict[str, Any]] = mapped_column(JSONType)
    log_likelihood: Mapped[float] = mapped_column(Float)
    spend: Mapped[dict[str, Any]] = mapped_column(JSONType)
    holdout: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    cohorts: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    plot_data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType)
    notes: Mapped[list[str]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class MemberScore(Base):
    """A member's numbers from the tenant's latest run (replaced whole by each run).
    ``member_id`` is the survivor's id for platform orders, the file's customer id for an
    imported log. Amounts in minor units of the run's currency, rounded half-even."""

    __tablename__ = "analytics_member_scores"
    __table_args__ = (
        Index("ix_analytics_member_scores_tenant_segment", "tenant_id", "segment"),
        Index("ix_analytics_member_scores_tenant_stage", "tenant_id", "stage"),
        Index("ix_analytics_member_scores_tenant_p_alive", "tenant_id", "p_alive"),
        Index("ix_analytics_member_scores_tenant_clv", "tenant_id", "clv_minor"),
    )

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(40))
    frequency: Mapped[int] = mapped_column(Integer)
    recency: Mapped[float] = mapped_column(Float)
    age: Mapped[float] = mapped_column(Float)  # T
    monetary_minor: Mapped[int] = mapped_column(Minor)
    p_alive: Mapped[float] = mapped_column(Float)
    expected_purchases_90d: Mapped[float] = mapped_column(Float)
    clv_minor: Mapped[int] = mapped_column(Minor)
    r_score: Mapped[int] = mapped_column(SmallInteger)
    f_score: Mapped[int] = mapped_column(SmallInteger)
    m_score: Mapped[int] = mapped_column(SmallInteger)
    segment: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str] = mapped_column(String(16))
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SavedSegment(Base):
    """A named rule over the scores (``{"p_alive_lt": 0.3, "clv_gt": "500.00"}``): its members
    are whoever matches it in the latest run."""

    __tablename__ = "analytics_segments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        PrimaryKeyConstraint("tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    rule: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ImportedTransaction(Base):
    """One row of an outside order history (``haina analytics import --tenant``). Rows of one
    ``batch`` (by default the file's name) are replaced together when it is imported again."""

    __tablename__ = "analytics_transactions"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    batch: Mapped[str] = mapped_column(String(100), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(200))
    ordered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    amount_minor: Mapped[int] = mapped_column(Minor)
    currency: Mapped[str] = mapped_column(String(3))
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
