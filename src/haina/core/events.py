"""Domain events and the transactional outbox.

A service that changes state calls :func:`record_event` with the same session, so the event row
commits or rolls back with the change itself. The worker delivers from this table (webhooks)
and ``GET /v1/events`` reads it. ``subject_id`` is the id of the object the event is about, which
makes the outbox double as each object's timeline.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Boolean, Index, PrimaryKeyConstraint, String, delete, select, text, true
from sqlalchemy.orm import Mapped, Session, mapped_column

from haina.core.context import Tenant, current_actor
from haina.core.db import Base, JSONType, UTCDateTime, insert_rows, rowcount, utcnow
from haina.core.ids import new_id
from haina.core.pagination import Page, paginate
from haina.core.personal import scrub


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_tenant_type", "tenant_id", "type", "id"),
        Index("ix_events_tenant_subject", "tenant_id", "subject_id"),
        PrimaryKeyConstraint("tenant_id", "id"),
        # the webhook dispatcher's queue: events not yet fanned out (haina.webhooks.delivery)
        Index("ix_events_pending", "id", postgresql_where=text("pending"),
              sqlite_where=text("pending = 1")),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # true from the insert (the database's default: no writer names it) until the webhook
    # dispatcher has fanned the event out, then NULL; so a dispatcher never needs a cursor
    pending: Mapped[bool | None] = mapped_column(Boolean, server_default=true())
    # who made the change (the audit trail): app, staff or staff_token, and its id; none for
    # the platform's own work (worker, command line)
    actor_type: Mapped[str | None] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(40))


class ActorOut(BaseModel):
    type: str = Field(description="app, staff, staff_token, buyer or storefront_key")
    id: str


class EventOut(BaseModel):
    id: str
    object: str = "event"
    type: str
    subject_id: str | None
    data: dict[str, Any]
    created_at: dt.datetime
    actor: ActorOut | None = Field(None, description="who made the change (none: the platform)")


def record_event(session: Session, tenant_id: str, type: str, subject_id: str | None,
                 data: dict[str, Any], at: dt.datetime | None = None) -> str:
    """Write a domain event to the outbox in the caller's transaction (no commit here);
    returns its id."""
    # ids for "now" are monotonic; a back-dated event (demo history) takes its time's id
    event_id = new_id("event") if at is None else new_id("event", int(at.timestamp() * 1000))
    row = {"id": event_id, "tenant_id": tenant_id, "type": type, "subject_id": subject_id,
           "data": data, "created_at": at or utcnow()}
    actor = current_actor.get()
    if actor is not None:  # the platform's own work names no actor (the columns stay NULL)
        row["actor_type"], row["actor_id"] = actor
    insert_rows(session, Event.__table__, row)
    return event_id


#: event type → fields of its payload meant only for the webhook receiver (a sign-in code for
#: the SMS app): ``GET /v1/events`` shows :data:`REDACTED` in their place, and they are
#: redacted in the stored event once delivered (``webhooks.delivery``) or of no more use
#: (the owning module's own pass); see :func:`conceal`
CONCEALED: dict[str, tuple[str, ...]] = {}
#: what a concealed field reads as
REDACTED = "[redacted]"


def conceal(event_type: str, *fields: str) -> None:
    """Declare ``fields`` of ``event_type``'s payload secret to its webhook receivers (called
    once, where the module that records the event is defined)."""
    CONCEALED[event_type] = tuple(dict.fromkeys((*CONCEALED.get(event_type, ()), *fields)))


def masked(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as anyone but the webhook receiver may read it."""
    fields = CONCEALED.get(event_type)
    if not fields or not isinstance(data, dict) or not any(f in data for f in fields):
        return data
    return {k: (REDACTED if k in fields and v is not None else v) for k, v in data.items()}


def redact_concealed(session: Session, tenant_id: str, event_ids: list[str],
                     extra: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Replace the concealed fields (and ``extra`` ones) in the stored payloads of these
    events by :data:`REDACTED`, for good. Returns, per event changed, the values taken out
    (for the caller to scrub their copies: webhook attempts' logged answers)."""
    taken: dict[str, list[str]] = {}
    for start in range(0, len(event_ids), 500):
        for e in session.scalars(select(Event).where(
                Event.tenant_id == tenant_id, Event.id.in_(event_ids[start:start + 500]))):
            fields = (*CONCEALED.get(e.type, ()), *extra)
            if not isinstance(e.data, dict):
                continue
            values = [str(e.data[f]) for f in fields if e.data.get(f) not in (None, REDACTED)]
            if values:
                taken[e.id] = values
                e.data = {k: (REDACTED if k in fields and v is not None else v)
                          for k, v in e.data.items()}
    session.flush()
    return taken


def event_out(e: Event) -> EventOut:
    return EventOut(id=e.id, type=e.type, subject_id=e.subject_id, data=masked(e.type, e.data),
                    created_at=e.created_at,
                    actor=ActorOut(type=e.actor_type, id=e.actor_id or "") if e.actor_type else None)


def list_events(session: Session, tenant: Tenant, *, type: str | None = None,
                subject_id: str | None = None, created_gte: dt.datetime | None = None,
                created_lt: dt.datetime | None = None, limit: int = 50,
                cursor: str | None = None, audited: bool = False,
                actor_type: str | None = None, actor_id: str | None = None) -> Page[EventOut]:
    """The merchant's events, newest first; ``audited``: only changes made by a credential
    (the audit trail), optionally by one kind of actor or one actor."""
    stmt = select(Event).where(Event.tenant_id == tenant.id)
    if audited:
        stmt = stmt.where(Event.actor_type.is_not(None))
    if actor_type:
        stmt = stmt.where(Event.actor_type == actor_type)
    if actor_id:
        stmt = stmt.where(Event.actor_id == actor_id)
    if type:
        # "order.*" matches every order event
        stmt = stmt.where(Event.type.like(type[:-1] + "%") if type.endswith("*")
                          else Event.type == type)
    if subject_id:
        stmt = stmt.where(Event.subject_id == subject_id)
    if created_gte:
        stmt = stmt.where(Event.created_at >= created_gte)
    if created_lt:
        stmt = stmt.where(Event.created_at < created_lt)
    return paginate(session, stmt, Event.id, limit=limit, cursor=cursor, convert=event_out,
                    kind="event")


def redact_events(session: Session, tenant_id: str, subject_ids: list[str],
                  found: frozenset[str]) -> int:
    """Replace the personal values ``found`` in the payloads of the events about
    ``subject_ids`` (a member, its orders …) by ``core.personal.ERASED``; the event rows stay
    (the timeline, the audit trail). Returns how many events changed."""
    changed = 0
    for start in range(0, len(subject_ids), 500):
        for e in session.scalars(select(Event).where(
                Event.tenant_id == tenant_id, Event.subject_id.in_(subject_ids[start:start + 500]))):
            data, hit = scrub(e.data, found)
            if hit:
                e.data = data
                changed += 1
    session.flush()
    return changed


def purge_events(session: Session, tenant_id: str, before: dt.datetime) -> int:
    """Delete the merchant's events older than ``before`` that the webhook dispatcher has
    fanned out (retention of the audit trail)."""
    return rowcount(session.execute(delete(Event).where(
        Event.tenant_id == tenant_id, Event.created_at < before, Event.pending.is_(None))))


def events_about(session: Session, tenant_id: str, subject_ids: list[str]) -> list[str]:
    """The ids of the merchant's events about any of ``subject_ids``."""
    out: list[str] = []
    for start in range(0, len(subject_ids), 500):
        out += session.scalars(select(Event.id).where(
            Event.tenant_id == tenant_id, Event.subject_id.in_(subject_ids[start:start + 500])))
    return out
