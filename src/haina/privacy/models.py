"""The privacy module's tables: data requests, their export archives, the apps'
acknowledgements. Private to the module (others go through ``privacy.service``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, JSONType, UTCDateTime, tenant_fk

PENDING = "status = 'pending'"
ERASE = "kind = 'erase'"


class DataRequest(Base):
    """A person's (or, after an uninstall, a merchant's) data request: ``export`` (an
    archive), ``erase`` (personal fields replaced everywhere), ``merchant_redact`` (an app
    asked to erase a merchant's data). Fulfilled when made; what it did is in ``result``."""

    __tablename__ = "data_requests"
    __table_args__ = (
        Index("ix_data_requests_tenant_member", "tenant_id", "member_id", "id"),
        # one erasure per person (the survivor of its merges): a second one racing the first
        # waits for it, then answers with its result
        Index("ux_data_requests_one_erasure", "tenant_id", "member_id", unique=True,
              postgresql_where=text(ERASE), sqlite_where=text(ERASE)),
        PrimaryKeyConstraint("tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # export | erase | merchant_redact
    status: Mapped[str] = mapped_column(String(16))  # completed
    # the person: the member asked about (the survivor of its merges) and every id merged in
    member_id: Mapped[str | None] = mapped_column(String(40))
    member_ids: Mapped[list[str]] = mapped_column(JSONType)
    app_id: Mapped[str | None] = mapped_column(String(40))  # merchant_redact: the app
    # rows exported or changed, per section
    result: Mapped[dict[str, Any]] = mapped_column(JSONType)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the apps' deadline
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    last_downloaded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DataArchive(Base):
    """An export's zip (JSON and CSV), downloadable until ``expires_at``; the worker deletes
    it then (retention ``export_archives``). ``id`` is the request's."""

    __tablename__ = "data_request_archives"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("id", "data_requests"),
        Index("ix_data_request_archives_tenant_expires", "tenant_id", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class DataRequestAck(Base):
    """One app's obligation for one request: ``pending`` until the app acknowledges it;
    ``overdue_at`` is set by the worker when the deadline passed first."""

    __tablename__ = "data_request_acks"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "request_id", "app_id"),
        tenant_fk("request_id", "data_requests"),
        # an app's open requests across merchants (its own calls)
        Index("ix_data_request_acks_app", "app_id", "status"),
        # the worker's scan for reminders and deadlines, across merchants
        Index("ix_data_request_acks_pending", "due_at",
              postgresql_where=text(PENDING), sqlite_where=text(PENDING)),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[str] = mapped_column(String(40))
    app_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))  # pending | acknowledged
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    last_reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    overdue_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
