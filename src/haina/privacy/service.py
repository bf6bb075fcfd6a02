"""Data requests: a person's data exported or erased across every module, the apps told
by mandatory events and tracked until each acknowledges, and retention.

The public face of the privacy module. Functions take a ``Session`` and never commit: a
request (export or erasure, its acknowledgements and its event) is one unit of work.
Rules and periods: docs/privacy.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from haina.carts import service as carts
from haina.core.context import Tenant
from haina.core.db import utcnow
from haina.core.errors import Forbidden, Invalid, Problem, not_found
from haina.core.events import Event, events_about, purge_events, record_event, redact_events
from haina.core.idempotency import redact_keys
from haina.core.ids import new_id
from haina.core.pagination import Page, paginate
from haina.core.personal import export_rows, needles
from haina.crossborder import service as crossborder
from haina.members import service as members
from haina.orders import service as orders
from haina.platform import service as platform
from haina.platform.schemas import RetentionDays, TenantSettings
from haina.privacy.models import DataArchive, DataRequest, DataRequestAck
from haina.privacy.registry import SECTIONS, Person
from haina.privacy.schemas import (
    AcknowledgementOut,
    ArchiveOut,
    DataRequestOut,
    RetentionKindOut,
)
from haina.storefront import service as storefront
from haina.webhooks import service as webhooks

#: the event that tells the apps of each kind of request (mandatory: docs/privacy.md)
EVENT_OF = {"export": "member.data_requested", "erase": "member.redact_requested",
            "merchant_redact": "merchant.redact_requested"}


class ArchiveGone(Problem):
    status = 410
    slug = "archive-expired"
    title = "Archive no longer available"


# ---------------------------------------------------------------- reading out

def _ack_status(a: DataRequestAck, now: dt.datetime) -> str:
    if a.status == "acknowledged":
        return "acknowledged"
    return "overdue" if a.overdue_at is not None or a.due_at <= now else "pending"


def _page_out(session: Session, page: Page[DataRequest]) -> Page[DataRequestOut]:
    """A page of requests read out with two more queries in all (acknowledgements, archives)."""
    rows = list(page.data)
    by_tenant: dict[str, list[str]] = {}
    for r in rows:
        by_tenant.setdefault(r.tenant_id, []).append(r.id)
    acks: dict[str, list[DataRequestAck]] = {r.id: [] for r in rows}
    archives: dict[str, Any] = {}
    for tenant_id, ids in by_tenant.items():
        for a in session.scalars(select(DataRequestAck).where(
                DataRequestAck.tenant_id == tenant_id, DataRequestAck.request_id.in_(ids))
                .order_by(DataRequestAck.app_id)):
            acks[a.request_id].append(a)
        for row in session.execute(select(DataArchive.id, DataArchive.size_bytes,
                                          DataArchive.sha256, DataArchive.expires_at).where(
                DataArchive.tenant_id == tenant_id, DataArchive.id.in_(ids))):
            archives[row.id] = row[1:]
    now = utcnow()
    return Page[DataRequestOut](
        data=[_out(session, r, acks[r.id], now, archives.get(r.id, False)) for r in rows],
        has_more=page.has_more, next_cursor=page.next_cursor)


def _out(session: Session, r: DataRequest, acks: list[DataRequestAck] | None = None,
         now: dt.datetime | None = None, stored: Any = None) -> DataRequestOut:
    """``stored``: the archive's (size, sha256, expires_at) when known, False when known to
    be absent, None to look it up."""
    now = now or utcnow()
    if acks is None:
        acks = list(session.scalars(select(DataRequestAck).where(
            DataRequestAck.tenant_id == r.tenant_id, DataRequestAck.request_id == r.id)
            .order_by(DataRequestAck.app_id)))
    archive = None
    if r.kind == "export":
        a = stored if stored is not None else session.execute(
            select(DataArchive.size_bytes, DataArchive.sha256, DataArchive.expires_at).where(
                DataArchive.tenant_id == r.tenant_id, DataArchive.id == r.id)).first()
        size, digest, expires = a if a else (0, "", r.completed_at or r.created_at)
        archive = ArchiveOut(url=f"/v1/data-requests/{r.id}/archive", size_bytes=size,
                             sha256=digest, expires_at=expires,
                             available=a is not None and expires > now, downloads=r.downloads,
                             last_downloaded_at=r.last_downloaded_at)
    out = [AcknowledgementOut(app_id=a.app_id, status=_ack_status(a, now),
                              due_at=a.due_at, acknowledged_at=a.acknowledged_at,
                              reminders=a.reminders, last_reminded_at=a.last_reminded_at)
           for a in acks]
    return DataRequestOut(
        id=r.id, kind=r.kind, status=r.status, member_id=r.member_id,
        member_ids=list(r.member_ids), app_id=r.app_id,
        result={k: int(v) for k, v in r.result.items()}, created_at=r.created_at,
        completed_at=r.completed_at, due_at=r.due_at, archive=archive, acknowledgements=out,
        apps_pending=[a.app_id for a in out if a.status == "pending"],
        apps_overdue=[a.app_id for a in out if a.status == "overdue"])


def _request(session: Session, tenant_id: str, request_id: str) -> DataRequest:
    row = session.scalar(select(DataRequest).where(DataRequest.tenant_id == tenant_id,
                                                   DataRequest.id == request_id))
    if row is None:
        raise not_found("data request", request_id)
    return row


def get_request(session: Session, tenant: Tenant, request_id: str) -> DataRequestOut:
    """A request with its apps' acknowledgements; an app's credential sees only requests
    addressed to it."""
    row = _request(session, tenant.id, request_id)
    if tenant.app_id and not _addressed_to(session, row, tenant.app_id):
        raise not_found("data request", request_id)
    return _out(session, row)


def _addressed_to(session: Session, row: DataRequest, app_id: str) -> bool:
    return session.scalar(select(DataRequestAck.id).where(
        DataRequestAck.tenant_id == row.tenant_id, DataRequestAck.request_id == row.id,
        DataRequestAck.app_id == app_id)) is not None


def list_requests(session: Session, tenant: Tenant, *, member_id: str | None = None,
                  kind: str | None = None, overdue: bool = False, limit: int = 50,
                  cursor: str | None = None) -> Page[DataRequestOut]:
    """The merchant's requests, newest first (about one person: any of its member ids; of one
    kind; only those an app has let pass their date due without acknowledging, ``overdue``);
    an app's credential lists those addressed to it."""
    stmt = select(DataRequest).where(DataRequest.tenant_id == tenant.id)
    if kind is not None:
        stmt = stmt.where(DataRequest.kind == kind)
    if overdue:  # as _ack_status names an acknowledgement overdue
        stmt = stmt.where(DataRequest.id.in_(select(DataRequestAck.request_id).where(
            DataRequestAck.tenant_id == tenant.id, DataRequestAck.status == "pending",
            or_(DataRequestAck.overdue_at.is_not(None), DataRequestAck.due_at <= utcnow()))))
    if member_id is not None:
        ids = members.member_history_ids(session, tenant, member_id)
        stmt = stmt.where(DataRequest.member_id.in_(ids))
    if tenant.app_id:
        stmt = stmt.where(DataRequest.id.in_(select(DataRequestAck.request_id).where(
            DataRequestAck.tenant_id == tenant.id, DataRequestAck.app_id == tenant.app_id)))
    return _page_out(session, paginate(session, stmt, DataRequest.id, limit=limit,
                                       cursor=cursor, convert=lambda r: r,
                                       kind="data_request"))


# ---------------------------------------------------------------- a person's request

def _person(session: Session, tenant: Tenant, member_id: str) -> Person:
    ids = members.member_history_ids(session, tenant, member_id)  # 404 if not the merchant's
    order_ids = orders.member_order_ids(session, tenant, ids)
    values = needles([*members.personal_values(session, tenant, ids),
                      *orders.order_personal_values(session, tenant, order_ids),
                      *crossborder.order_personal_values(session, tenant, order_ids)])
    codes = storefront.sign_in_code_ids(session, tenant, values)
    event_ids = events_about(session, tenant.id, [*ids, *order_ids, *codes])
    return Person(tenant, ids, order_ids, values, event_ids, tuple(codes))


def export_person(session: Session, person: Person) -> dict[str, list[dict[str, Any]]]:
    """Every section's rows about the person, and the events about them."""
    data: dict[str, list[dict[str, Any]]] = {}
    for section in SECTIONS:
        data.update(section.export(session, person))
    data["events"] = export_rows(session, Event.__table__, person.tenant.id, "subject_id",
                                 person.subjects)
    return data


def build_archive(data: dict[str, list[dict[str, Any]]], meta: dict[str, Any]) -> bytes:
    """A zip: ``data.json`` (everything, nested), one CSV per table (nested values as JSON),
    and ``README.txt``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("README.txt", (
            "Personal data export (PIPL Art. 45).\n"
            f"Merchant: {meta['tenant']}\nMembers: {', '.join(meta['member_ids'])}\n"
            f"Made: {meta['created_at']}\n\n"
            "data.json holds every table below; each CSV holds one table.\n"))
        z.writestr("data.json", orjson.dumps({"meta": meta, "data": data},
                                             option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
        for table, rows in data.items():
            columns = list(dict.fromkeys(k for r in rows for k in r))
            text = io.StringIO()
            w = csv.writer(text)
            w.writerow(columns)
            for r in rows:
                w.writerow([json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list)
                            else ("" if v is None else v) for v in (r.get(c) for c in columns)])
            # a BOM, so that spreadsheet programs read the Chinese text as UTF-8
            z.writestr(f"{table}.csv", "\ufeff" + text.getvalue())
    return buf.getvalue()


def erase_person(session: Session, person: Person, now: dt.datetime) -> dict[str, int]:
    """Run every section's eraser, then replace the personal values in the copies the
    platform made of them: the events about the person and the stored answers of
    idempotent requests."""
    result: dict[str, int] = {}
    for section in SECTIONS:
        if section.erase is not None:
            result[section.name] = section.erase(session, person, now)
    result["events"] = redact_events(session, person.tenant.id, person.subjects, person.values)
    since = now - dt.timedelta(days=3650)
    result["idempotency_keys"] = redact_keys(session, person.tenant.id, since, person.values)
    return result


def _settings(session: Session, tenant: Tenant) -> TenantSettings:
    return platform.tenant_settings(session, tenant)


def _first_erasure(session: Session, tenant: Tenant, member_id: str) -> DataRequest | None:
    ids = members.member_history_ids(session, tenant, member_id)
    return session.scalar(select(DataRequest).where(
        DataRequest.tenant_id == tenant.id, DataRequest.kind == "erase",
        DataRequest.member_id.in_(ids)).order_by(DataRequest.id).limit(1))


def request_data(session: Session, tenant: Tenant, member_id: str, kind: str,
                 now: dt.datetime | None = None) -> tuple[DataRequestOut, bool]:
    """Carry out an export or an erasure of the member (with every member merged into it)
    and tell the apps holding members data. Returns the request and whether it is new: a
    second erasure of the same person answers the first (nothing is done twice)."""
    now = now or utcnow()
    if kind == "erase":
        first = _first_erasure(session, tenant, member_id)
        if first is not None:
            return _out(session, first, now=now), False
    person = _person(session, tenant, member_id)
    settings = _settings(session, tenant)
    request_id = new_id("data_request")
    due = now + dt.timedelta(days=settings.privacy_deadline_days)
    row = DataRequest(id=request_id, tenant_id=tenant.id, kind=kind, status="completed",
                      member_id=person.member_ids[0], member_ids=person.member_ids,
                      result={}, due_at=due, created_at=now, completed_at=now, downloads=0)
    if kind == "erase":
        # the unique index on (tenant_id, member_id) for erasures: a concurrent erasure of the
        # person holds it until it commits; then this insert fails and the first one answers
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            first = _first_erasure(session, tenant, member_id)
            if first is None:
                raise
            return _out(session, first, now=now), False
    else:
        session.add(row)
        session.flush()
    if kind == "export":
        data = export_person(session, person)
        content = build_archive(data, {"tenant": tenant.slug, "member_ids": person.member_ids,
                                       "data_request_id": request_id,
                                       "created_at": now.isoformat()})
        session.add(DataArchive(id=request_id, tenant_id=tenant.id, content=content,
                                size_bytes=len(content),
                                sha256=hashlib.sha256(content).hexdigest(), created_at=now,
                                expires_at=now + dt.timedelta(
                                    days=settings.retention.export_archives)))
        row.result = {table: len(rows) for table, rows in data.items()}
    else:
        done = erase_person(session, person, now)
        done["export_archives"] = _drop_archives_of(session, tenant.id, person.member_ids)
        row.result = done
    _tell_apps(session, tenant.id, row, platform.apps_holding(session, tenant.id, "members"),
               now)
    session.flush()
    return _out(session, row, now=now), True


def _tell_apps(session: Session, tenant_id: str, row: DataRequest, app_ids: list[str],
               now: dt.datetime) -> None:
    session.add_all(DataRequestAck(id=new_id("data_request_ack"), tenant_id=tenant_id,
                                   request_id=row.id, app_id=a, status="pending",
                                   due_at=row.due_at, created_at=now, reminders=0)
                    for a in app_ids)
    session.flush()
    record_event(session, tenant_id, EVENT_OF[row.kind], row.id, _event_data(row, app_ids))


def _event_data(row: DataRequest, app_ids: list[str], reminder: int = 0) -> dict[str, Any]:
    """What the apps are sent: ids only, never the person's values."""
    data: dict[str, Any] = {"data_request_id": row.id, "kind": row.kind,
                            "member_id": row.member_id, "member_ids": list(row.member_ids),
                            "app_ids": app_ids, "due_at": row.due_at.isoformat()}
    if row.kind == "merchant_redact":
        data["tenant_id"] = row.tenant_id
    if reminder:
        data["reminder"] = reminder
    return data


# ---------------------------------------------------------------- archives

def download_archive(session: Session, tenant: Tenant, request_id: str,
                     now: dt.datetime | None = None) -> tuple[bytes, str]:
    """The export's zip and a file name; the download is counted and recorded (an event
    naming who downloaded it). 410 ``archive-expired`` once past its period."""
    now = now or utcnow()
    row = _request(session, tenant.id, request_id)
    if row.kind != "export" or tenant.app_id:
        raise not_found("data request archive", request_id)
    archive = session.get(DataArchive, (tenant.id, request_id))
    if archive is None or archive.expires_at <= now:
        raise ArchiveGone(f"the archive of {request_id} expired; make a new export request",
                          data_request_id=request_id)
    row.downloads += 1
    row.last_downloaded_at = now
    record_event(session, tenant.id, "data_request.archive_downloaded", row.id,
                 {"data_request_id": row.id, "downloads": row.downloads})
    session.flush()
    return archive.content, f"{row.member_id}-{row.id}.zip"


# ---------------------------------------------------------------- the apps' acknowledgements

def acknowledge(session: Session, app_id: str, request_id: str, tenant_id: str | None = None,
                now: dt.datetime | None = None) -> DataRequestOut:
    """The app says it carried out the request (idempotent). With ``tenant_id`` (an app's
    token for a merchant) the request must be that merchant's; without it (the app's own
    token, e.g. after an uninstall) any merchant's request addressed to the app."""
    now = now or utcnow()
    stmt = select(DataRequestAck).where(DataRequestAck.app_id == app_id,
                                        DataRequestAck.request_id == request_id)
    if tenant_id is not None:
        stmt = stmt.where(DataRequestAck.tenant_id == tenant_id)
    ack = session.scalar(stmt.with_for_update())
    if ack is None:
        raise not_found("data request", request_id)
    if ack.status != "acknowledged":
        ack.status, ack.acknowledged_at = "acknowledged", now
        record_event(session, ack.tenant_id, "data_request.acknowledged", request_id,
                     {"data_request_id": request_id, "app_id": app_id,
                      "late": ack.overdue_at is not None or ack.due_at <= now})
        session.flush()
    return _out(session, _request(session, ack.tenant_id, request_id), now=now)


def requests_for_app(session: Session, app_id: str, *, pending_only: bool = True,
                     limit: int = 50, cursor: str | None = None) -> Page[DataRequestOut]:
    """The requests addressed to the app across merchants (its own token): how an app with
    no webhook endpoint, or uninstalled, learns what it must do."""
    acks = select(DataRequestAck.request_id).where(DataRequestAck.app_id == app_id)
    if pending_only:
        acks = acks.where(DataRequestAck.status == "pending")
    stmt = select(DataRequest).where(DataRequest.id.in_(acks))
    return _page_out(session, paginate(session, stmt, DataRequest.id, limit=limit,
                                       cursor=cursor, convert=lambda r: r,
                                       kind="data_request"))


# ---------------------------------------------------------------- the worker

def follow_up(session: Session, now: dt.datetime) -> int:
    """Reminders and deadlines: each pending acknowledgement past its deadline is marked
    overdue (``data_request.overdue``, once per request); the others are reminded (the
    request's event again, with ``reminder``) every ``privacy_reminder_days``. Returns how
    many acknowledgements changed."""
    pending = list(session.scalars(select(DataRequestAck).where(
        DataRequestAck.status == "pending", DataRequestAck.overdue_at.is_(None))
        .order_by(DataRequestAck.tenant_id, DataRequestAck.request_id, DataRequestAck.app_id)
        .with_for_update(skip_locked=True)))
    settings: dict[str, TenantSettings] = {}
    overdue: dict[tuple[str, str], list[str]] = {}
    remind: dict[tuple[str, str], list[DataRequestAck]] = {}
    for a in pending:
        if a.due_at <= now:
            a.overdue_at = now
            overdue.setdefault((a.tenant_id, a.request_id), []).append(a.app_id)
            continue
        if a.tenant_id not in settings:
            settings[a.tenant_id] = platform.get_tenant(session, a.tenant_id).settings
        every = dt.timedelta(days=settings[a.tenant_id].privacy_reminder_days)
        if (a.last_reminded_at or a.created_at) + every <= now:
            remind.setdefault((a.tenant_id, a.request_id), []).append(a)
    for (tenant_id, request_id), apps in overdue.items():
        record_event(session, tenant_id, "data_request.overdue", request_id,
                     {"data_request_id": request_id, "app_ids": apps})
    for (tenant_id, request_id), acks in remind.items():
        row = _request(session, tenant_id, request_id)
        n = max(a.reminders for a in acks) + 1
        for a in acks:
            a.reminders, a.last_reminded_at = a.reminders + 1, now
        record_event(session, tenant_id, EVENT_OF[row.kind], row.id,
                     _event_data(row, [a.app_id for a in acks], reminder=n))
    session.flush()
    return sum(len(v) for v in overdue.values()) + sum(len(v) for v in remind.values())


def ask_uninstalled_apps(session: Session, now: dt.datetime) -> int:
    """``merchant.redact_requested`` for each app uninstalled longer ago than the merchant's
    grace period (and not asked since that uninstall). Returns how many apps were asked."""
    asked = 0
    for tenant_id, app_id, uninstalled_at in platform.uninstalled_since(session, now):
        settings = platform.get_tenant(session, tenant_id).settings
        if uninstalled_at + dt.timedelta(hours=settings.merchant_redact_grace_hours) > now:
            continue
        done = session.scalar(select(DataRequest.id).where(
            DataRequest.tenant_id == tenant_id, DataRequest.kind == "merchant_redact",
            DataRequest.app_id == app_id, DataRequest.created_at >= uninstalled_at))
        if done is not None:
            continue
        row = DataRequest(id=new_id("data_request"), tenant_id=tenant_id,
                          kind="merchant_redact", status="completed", member_id=None,
                          member_ids=[], app_id=app_id, result={}, created_at=now,
                          completed_at=now, downloads=0,
                          due_at=now + dt.timedelta(days=settings.privacy_deadline_days))
        session.add(row)
        session.flush()
        _tell_apps(session, tenant_id, row, [app_id], now)
        asked += 1
    return asked


# ---------------------------------------------------------------- retention

#: per kind: what the worker does once the period has passed (docs/privacy.md)
RETENTION_ACTIONS = {
    "abandoned_carts": "open carts not touched for the period are deleted",
    "webhook_attempts": "attempt logs older than the period are deleted",
    "delivered_messages": "delivered webhook messages and their attempts are deleted",
    "audit_events": "events older than the period (already fanned out) are deleted",
    "export_archives": "export archives are deleted (the request's record stays)",
}


def retention(session: Session, tenant: Tenant) -> list[RetentionKindOut]:
    """The merchant's retention periods, with the defaults and the bounds."""
    chosen = _settings(session, tenant).retention
    fields = RetentionDays.model_fields
    out = []
    for kind, action in RETENTION_ACTIONS.items():
        bounds = {type(m).__name__: m for m in fields[kind].metadata}
        out.append(RetentionKindOut(
            kind=kind, days=getattr(chosen, kind), default_days=fields[kind].default,
            minimum_days=bounds["Ge"].ge, maximum_days=bounds["Le"].le,
            action=action))
    return out


def set_retention(session: Session, tenant: Tenant, changes: dict[str, int]) -> list[RetentionKindOut]:
    """Change some of the merchant's retention periods (the others are kept); the bounds
    are ``RetentionDays``'s (422 ``invalid`` outside them)."""
    current = _settings(session, tenant).model_dump()
    current["retention"].update(changes)
    try:
        settings = TenantSettings(**current)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise Invalid(f"{'.'.join(str(p) for p in err['loc'][1:])}: {err['msg']}") from None
    platform.update_tenant_settings(session, tenant, settings)
    return retention(session, replace(tenant, settings=settings))


def _drop_archives_of(session: Session, tenant_id: str, member_ids: list[str]) -> int:
    """An erasure also deletes the person's earlier export archives (copies of the data)."""
    exports = select(DataRequest.id).where(DataRequest.tenant_id == tenant_id,
                                           DataRequest.kind == "export",
                                           DataRequest.member_id.in_(member_ids))
    rows = list(session.scalars(select(DataArchive).where(DataArchive.tenant_id == tenant_id,
                                                          DataArchive.id.in_(exports))))
    for r in rows:
        session.delete(r)
    session.flush()
    return len(rows)


def _purge_archives(session: Session, tenant_id: str, now: dt.datetime) -> int:
    rows = list(session.scalars(select(DataArchive).where(DataArchive.tenant_id == tenant_id,
                                                          DataArchive.expires_at <= now)))
    for r in rows:
        session.delete(r)
    session.flush()
    return len(rows)


def apply_retention(session: Session, now: dt.datetime,
                    on_tenant: Callable[[str, dict[str, int]], None] | None = None) -> int:
    """Delete what each merchant's retention periods have run out on (every kind, every
    merchant). Returns the rows deleted."""
    total = 0
    for t in platform.list_tenants(session):
        days = t.settings.retention

        def before(kind: str) -> dt.datetime:
            return now - dt.timedelta(days=getattr(days, kind))  # noqa: B023 (used at once)

        done = {
            "abandoned_carts": carts.purge_abandoned_carts(session, t.id, before("abandoned_carts")),
            "delivered_messages": webhooks.purge_delivered(session, t.id,
                                                           before("delivered_messages")),
            "webhook_attempts": webhooks.purge_attempts(session, t.id, before("webhook_attempts")),
            "audit_events": purge_events(session, t.id, before("audit_events")),
            "export_archives": _purge_archives(session, t.id, now),
        }
        if on_tenant is not None:
            on_tenant(t.slug, done)
        total += sum(done.values())
    return total


def check_app_credential(tenant: Tenant) -> str:
    """The app behind an app's credential (acknowledgements are the apps' to give)."""
    if not tenant.app_id:
        raise Forbidden("only an app acknowledges a data request; use the app's token",
                        slug="app-token-required")
    return tenant.app_id
