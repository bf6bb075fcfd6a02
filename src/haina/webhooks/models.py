"""Webhook tables: endpoints, one delivery (message) per endpoint and event, every attempt.

All three are tenant tables keyed ``(tenant_id, id)``. The outbox itself is ``events``
(``core.events``): its ``pending`` marker, set by the database on insert and cleared by the
dispatcher, is how no committed event is ever skipped (see ``delivery``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, JSONType, UTCDateTime, tenant_fk

DUE = "status = 'pending'"


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        Index("ix_webhook_endpoints_tenant_app", "tenant_id", "app_id"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    # the app whose grant created it (None: the merchant's own); an uninstall disables these
    app_id: Mapped[str | None] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(500))
    event_types: Mapped[list[str]] = mapped_column(JSONType)
    secret: Mapped[str] = mapped_column(String(100))
    # after a rotation, the old secret signs beside the new one until then (receivers move over)
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    disabled: Mapped[bool] = mapped_column(Boolean, server_default=false())
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    # when the current run of failed attempts began (None: the last attempt succeeded)
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One event for one endpoint (a "message"): pending until delivered or dead-lettered."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("endpoint_id", "webhook_endpoints"),
        UniqueConstraint("tenant_id", "endpoint_id", "event_id"),
        Index("ix_webhook_deliveries_tenant_status", "tenant_id", "status", "id"),
        Index("ix_webhook_deliveries_tenant_event", "tenant_id", "event_id"),
        # the worker's scan for due deliveries, across merchants
        Index("ix_webhook_deliveries_due", "next_attempt_at",
              postgresql_where=text(DUE), sqlite_where=text(DUE)),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    endpoint_id: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(64))
    # pending (queued or retrying), succeeded, failed (dead-lettered or endpoint disabled)
    status: Mapped[str] = mapped_column(String(16))
    # attempts in the current schedule (a replay starts a new one; the log keeps them all)
    attempts: Mapped[int] = mapped_column(Integer)
    # when it is due (or, while a worker holds it, when that worker's lease ends)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """One HTTP request to an endpoint, whatever its outcome."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("delivery_id", "webhook_deliveries"),
        Index("ix_webhook_attempts_tenant_endpoint", "tenant_id", "endpoint_id", "id"),
        Index("ix_webhook_attempts_tenant_delivery", "tenant_id", "delivery_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    delivery_id: Mapped[str] = mapped_column(String(40))
    endpoint_id: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(40))
    attempt: Mapped[int] = mapped_column(Integer)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(String(1000))
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
