"""The privacy API's requests and responses."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from haina.core.schema_types import Id, RequestModel

DataRequestKind = Literal["export", "erase"]


class DataRequestIn(RequestModel):
    kind: DataRequestKind = Field(description="export (an archive of the member's data) or "
                                              "erase (personal fields replaced everywhere)")


class AcknowledgementIn(RequestModel):
    data_request_id: Id = Field(description="the request the app has carried out")


class AcknowledgementOut(BaseModel):
    app_id: str
    status: Literal["pending", "acknowledged", "overdue"]
    due_at: dt.datetime
    acknowledged_at: dt.datetime | None
    reminders: int = Field(description="reminders sent so far")
    last_reminded_at: dt.datetime | None


class ArchiveOut(BaseModel):
    url: str = Field(description="GET it with the merchant's credential (a zip)")
    size_bytes: int
    sha256: str
    expires_at: dt.datetime
    available: bool = Field(description="false once expired or deleted")
    downloads: int
    last_downloaded_at: dt.datetime | None


class DataRequestOut(BaseModel):
    id: str
    object: str = "data_request"
    kind: Literal["export", "erase", "merchant_redact"]
    status: str
    member_id: str | None
    member_ids: list[str] = Field(description="the member and every member merged into it")
    app_id: str | None = Field(None, description="merchant_redact: the uninstalled app")
    result: dict[str, int] = Field(description="rows exported (export) or changed (erase), "
                                               "per table or step")
    created_at: dt.datetime
    completed_at: dt.datetime | None
    due_at: dt.datetime = Field(description="the apps must acknowledge by then")
    archive: ArchiveOut | None = None
    acknowledgements: list[AcknowledgementOut]
    apps_pending: list[str] = Field(description="apps that have not acknowledged yet")
    apps_overdue: list[str] = Field(description="apps past the deadline without acknowledging")


class RetentionKindOut(BaseModel):
    kind: str
    days: int
    default_days: int
    minimum_days: int
    maximum_days: int
    action: str


class RetentionPatch(RequestModel):
    """Periods to change, in days (omitted kinds are kept); each within its legal bounds."""

    abandoned_carts: int | None = Field(None, ge=1, le=3650)
    webhook_attempts: int | None = Field(None, ge=7, le=3650)
    delivered_messages: int | None = Field(None, ge=7, le=3650)
    audit_events: int | None = Field(None, ge=180, le=3650)
    export_archives: int | None = Field(None, ge=1, le=30)
    not_null = ("abandoned_carts", "webhook_attempts", "delivered_messages", "audit_events",
                "export_archives")
