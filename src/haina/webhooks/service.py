"""Webhook endpoints, deliveries and attempts: the module's public face.

Every function takes a ``Session`` and the caller's ``Tenant``; nothing here commits. An
endpoint made with an app's credential (``tenant.app_id``) belongs to that app for that
merchant: the app sees and changes only its own endpoints, the merchant's staff see them all.
The worker side (fan-out from the outbox, sending, retries) is ``haina.webhooks.delivery``.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from haina.core.config import get_settings
from haina.core.context import Tenant
from haina.core.db import insert_rows, rowcount, utcnow
from haina.core.errors import Invalid, not_found
from haina.core.events import Event, record_event, redact_concealed
from haina.core.ids import new_id
from haina.core.pagination import Page, paginate
from haina.core.personal import export_rows, needles, scrub
from haina.webhooks import egress
from haina.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from haina.webhooks.schemas import (
    EVENT_TYPES,
    MANDATORY_EVENT_TYPES,
    AttemptOut,
    DeliveryOut,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointUpdate,
    ReplayOut,
    SecretOut,
)

SECRET_PREFIX = "whsec_"
KNOWN = frozenset(EVENT_TYPES)
PREFIXES = frozenset(t.split(".", 1)[0] for t in EVENT_TYPES)
# a replay of "everything since" queues at most this many deliveries per call
MAX_REPLAY = 100_000


class UnknownEventType(Invalid):
    slug, title = "unknown-event-type", "Unknown event type"


class InvalidURL(Invalid):
    slug, title = "invalid-webhook-url", "Invalid webhook URL"


# --- validation -------------------------------------------------------------------------------

def check_event_types(types: Iterable[str]) -> list[str]:
    """The subscription as given (duplicates dropped, order kept), each a known event type,
    ``prefix.*`` for a known prefix, or ``*``; else a 422 ``unknown-event-type`` problem."""
    out: list[str] = []
    for t in types:
        prefix = t[:-2] if t.endswith(".*") else None
        if not (t == "*" or t in KNOWN or (prefix is not None and prefix in PREFIXES)):
            raise UnknownEventType(
                f"{t!r} is not an event type: use one of the types listed in known_event_types, "
                "a pattern such as \"order.*\", or \"*\"", event_type=t,
                known_event_types=list(EVENT_TYPES))
        if t not in out:
            out.append(t)
    return out


def check_url(url: str) -> str:
    """An endpoint's URL: http(s) with a host, and (unless the deployment allows private
    addresses) not an address inside the platform's network (see :mod:`.egress`)."""
    parts = urlsplit(url.strip())
    try:
        host = parts.hostname
        parts.port  # noqa: B018  (raises on a port out of range)
    except ValueError:
        host = None
    if parts.scheme not in ("http", "https") or not host or any(
            c.isspace() for c in url.strip()):
        raise InvalidURL(f"{url[:200]!r} is not an http(s) URL with a host", url=url[:200])
    if not get_settings().webhook_allow_private_addresses:
        reason = egress.refusal_for_host(host)
        if reason:
            raise InvalidURL(f"webhooks go to public hosts only: {reason} "
                             f"({egress.ALLOW_HINT})", url=url[:200])
    return url.strip()


def matches(patterns: Sequence[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to ``patterns`` wants events of ``event_type``."""
    for p in patterns:
        if p == "*" or p == event_type or (p.endswith(".*") and event_type.startswith(p[:-1])):
            return True
    return False


def wants(endpoint_id: str, patterns: Sequence[str], event_type: str,
          subject_id: str | None) -> bool:
    """``matches``, except that an endpoint is never sent the news about itself
    (``endpoint.attempts_exhausted`` of its own messages would feed a loop)."""
    if subject_id == endpoint_id and event_type.startswith("endpoint."):
        return False
    return matches(patterns, event_type)


def mandatory_for(app_id: str | None, event_type: str, data: Any) -> bool:
    """Whether an app's endpoint must receive this event whatever it subscribed to: the
    privacy events (``MANDATORY_EVENT_TYPES``) go to every app named in their ``app_ids``."""
    if app_id is None or event_type not in MANDATORY_EVENT_TYPES:
        return False
    return isinstance(data, dict) and app_id in (data.get("app_ids") or ())


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(24)).decode()


# --- endpoints --------------------------------------------------------------------------------

def _endpoint_out(e: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(id=e.id, url=e.url, event_types=list(e.event_types),
                       description=e.description, app_id=e.app_id, disabled=e.disabled,
                       disabled_reason=e.disabled_reason, failing_since=e.failing_since,
                       created_at=e.created_at, updated_at=e.updated_at)


def _visible(stmt: Select[Any], tenant: Tenant) -> Select[Any]:
    """The merchant's endpoints; an app's credential sees only its app's."""
    stmt = stmt.where(WebhookEndpoint.tenant_id == tenant.id)
    if tenant.app_id is not None:
        stmt = stmt.where(WebhookEndpoint.app_id == tenant.app_id)
    return stmt


def _endpoint(session: Session, tenant: Tenant, endpoint_id: str,
              lock: bool = False) -> WebhookEndpoint:
    stmt = _visible(select(WebhookEndpoint), tenant).where(WebhookEndpoint.id == endpoint_id)
    row = session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None:
        raise not_found("webhook endpoint", endpoint_id)
    return row


def create_endpoint(session: Session, tenant: Tenant, data: EndpointIn) -> EndpointCreated:
    now = utcnow()
    row = WebhookEndpoint(id=new_id("webhook_endpoint"), tenant_id=tenant.id,
                          app_id=tenant.app_id, url=check_url(data.url),
                          description=data.description,
                          event_types=check_event_types(data.event_types), secret=new_secret(),
                          disabled=False, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return EndpointCreated(**_endpoint_out(row).model_dump(), secret=row.secret)


def list_endpoints(session: Session, tenant: Tenant, *, limit: int = 50,
                   cursor: str | None = None) -> Page[EndpointOut]:
    return paginate(session, _visible(select(WebhookEndpoint), tenant), WebhookEndpoint.id,
                    limit=limit, cursor=cursor, convert=_endpoint_out, kind="webhook_endpoint")


def get_endpoint(session: Session, tenant: Tenant, endpoint_id: str) -> EndpointOut:
    return _endpoint_out(_endpoint(session, tenant, endpoint_id))


def update_endpoint(session: Session, tenant: Tenant, endpoint_id: str,
                    data: EndpointUpdate) -> EndpointOut:
    row = _endpoint(session, tenant, endpoint_id, lock=True)
    changes = data.model_dump(exclude_unset=True)
    if "url" in changes:
        row.url = check_url(changes["url"])
    if "event_types" in changes:
        row.event_types = check_event_types(changes["event_types"])
    if "description" in changes:
        row.description = changes["description"]
    if changes.get("disabled") is True and not row.disabled:
        _disable(session, row, "disabled by the merchant")
    elif changes.get("disabled") is False and row.disabled:
        row.disabled, row.disabled_reason, row.failing_since = False, None, None
    row.updated_at = utcnow()
    session.flush()
    return _endpoint_out(row)


def rotate_secret(session: Session, tenant: Tenant, endpoint_id: str,
                  grace: dt.timedelta = dt.timedelta(hours=24)) -> SecretOut:
    """A new signing secret, used from the next attempt on. For ``grace`` the old one signs
    too (Standard Webhooks' several signatures in one header), so that the receiver can switch
    without refusing a request; a zero grace stops it at once. Rotating again within a grace
    period drops the secret before the current one."""
    row = _endpoint(session, tenant, endpoint_id, lock=True)
    now = utcnow()
    if grace > dt.timedelta(0):
        row.previous_secret, row.previous_secret_until = row.secret, now + grace
    else:
        row.previous_secret, row.previous_secret_until = None, None
    row.secret, row.updated_at = new_secret(), now
    session.flush()
    return SecretOut(id=row.id, secret=row.secret,
                     previous_secret_expires_at=row.previous_secret_until)


def delete_endpoint(session: Session, tenant: Tenant, endpoint_id: str) -> None:
    """The endpoint, its deliveries and their attempts."""
    row = _endpoint(session, tenant, endpoint_id, lock=True)
    _delete(session, row.tenant_id, [row.id])


def _delete(session: Session, tenant_id: str, endpoint_ids: list[str]) -> None:
    for model in (WebhookAttempt, WebhookDelivery):
        session.execute(model.__table__.delete().where(
            model.tenant_id == tenant_id, model.endpoint_id.in_(endpoint_ids)))
    session.execute(WebhookEndpoint.__table__.delete().where(
        WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id.in_(endpoint_ids)))


def _disable(session: Session, row: WebhookEndpoint, reason: str) -> None:
    """Stop an endpoint: its pending deliveries fail (a replay sends them again)."""
    row.disabled, row.disabled_reason, row.updated_at = True, reason, utcnow()
    session.execute(update(WebhookDelivery).where(
        WebhookDelivery.tenant_id == row.tenant_id, WebhookDelivery.endpoint_id == row.id,
        WebhookDelivery.status == "pending").values(
        status="failed", next_attempt_at=None, last_error=f"endpoint disabled: {reason}"[:500]))


def disable_app_endpoints(session: Session, tenant_id: str, app_id: str, *,
                          delete: bool = False) -> int:
    """When a merchant uninstalls an app: disable (or, with ``delete``, remove) every
    endpoint of that app for that merchant. Returns how many."""
    rows = session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.app_id == app_id)
        .with_for_update()).all()
    if delete:
        if rows:
            _delete(session, tenant_id, [r.id for r in rows])
        return len(rows)
    for row in rows:
        if not row.disabled:
            _disable(session, row, "the app was uninstalled")
    session.flush()
    return len(rows)


def disable_failing_endpoint(session: Session, tenant_id: str, endpoint_id: str,
                             failing_since: dt.datetime) -> bool:
    """The worker's call when an endpoint has failed without a success since
    ``failing_since`` (5 days): disable it and tell its owner (``endpoint.disabled``)."""
    row = session.scalar(select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id)
        .with_for_update())
    if row is None or row.disabled or row.failing_since is None:
        return False
    reason = "every attempt failed for 5 days"
    _disable(session, row, reason)
    record_event(session, tenant_id, "endpoint.disabled", row.id,
                 {"endpoint_id": row.id, "url": row.url, "app_id": row.app_id,
                  "reason": reason, "failing_since": row.failing_since.isoformat()})
    return True


# --- deliveries and attempts ------------------------------------------------------------------

def _delivery_out(d: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(id=d.id, endpoint_id=d.endpoint_id, event_id=d.event_id,
                       event_type=d.event_type, status=d.status,
                       attempts=d.attempts, next_attempt_at=d.next_attempt_at,
                       last_attempt_at=d.last_attempt_at, last_status_code=d.last_status_code,
                       last_error=d.last_error, created_at=d.created_at,
                       delivered_at=d.delivered_at)


def _attempt_out(a: WebhookAttempt) -> AttemptOut:
    return AttemptOut(id=a.id, delivery_id=a.delivery_id, endpoint_id=a.endpoint_id,
                      event_id=a.event_id, attempt=a.attempt, succeeded=a.succeeded,
                      status_code=a.status_code, latency_ms=a.latency_ms,
                      response_excerpt=a.response_excerpt, error=a.error,
                      created_at=a.created_at)


def _app_filter(stmt: Select[Any], model: Any, tenant: Tenant) -> Select[Any]:
    """An app's credential sees the deliveries and attempts of its own endpoints only."""
    if tenant.app_id is None:
        return stmt
    mine = _visible(select(WebhookEndpoint.id), tenant)
    return stmt.where(model.endpoint_id.in_(mine))


def list_deliveries(session: Session, tenant: Tenant, *, status: str | None = None,
                    endpoint_id: str | None = None, event_id: str | None = None,
                    limit: int = 50, cursor: str | None = None) -> Page[DeliveryOut]:
    stmt = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant.id)
    if endpoint_id is not None:
        _endpoint(session, tenant, endpoint_id)  # 404 for another merchant's (or app's)
        stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    if event_id:
        stmt = stmt.where(WebhookDelivery.event_id == event_id)
    stmt = _app_filter(stmt, WebhookDelivery, tenant)
    return paginate(session, stmt, WebhookDelivery.id, limit=limit, cursor=cursor,
                    convert=_delivery_out, kind="webhook_delivery")


def _delivery(session: Session, tenant: Tenant, delivery_id: str,
              lock: bool = False) -> WebhookDelivery:
    stmt = _app_filter(select(WebhookDelivery).where(
        WebhookDelivery.tenant_id == tenant.id, WebhookDelivery.id == delivery_id),
        WebhookDelivery, tenant)
    row = session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None:
        raise not_found("webhook delivery", delivery_id)
    return row


def get_delivery(session: Session, tenant: Tenant, delivery_id: str) -> DeliveryOut:
    return _delivery_out(_delivery(session, tenant, delivery_id))


def list_attempts(session: Session, tenant: Tenant, *, endpoint_id: str | None = None,
                  delivery_id: str | None = None, limit: int = 50,
                  cursor: str | None = None) -> Page[AttemptOut]:
    stmt = select(WebhookAttempt).where(WebhookAttempt.tenant_id == tenant.id)
    if endpoint_id is not None:
        _endpoint(session, tenant, endpoint_id)
        stmt = stmt.where(WebhookAttempt.endpoint_id == endpoint_id)
    if delivery_id is not None:
        _delivery(session, tenant, delivery_id)
        stmt = stmt.where(WebhookAttempt.delivery_id == delivery_id)
    stmt = _app_filter(stmt, WebhookAttempt, tenant)
    return paginate(session, stmt, WebhookAttempt.id, limit=limit, cursor=cursor,
                    convert=_attempt_out, kind="webhook_attempt")


# --- replay -----------------------------------------------------------------------------------

def _requeue(session: Session, tenant_id: str, ids: list[str], now: dt.datetime) -> None:
    session.execute(update(WebhookDelivery).where(
        WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id.in_(ids)).values(
        status="pending", attempts=0, next_attempt_at=now, last_error=None))


def replay_delivery(session: Session, tenant: Tenant, delivery_id: str) -> DeliveryOut:
    """Send one message again, now, with a fresh retry schedule (whatever its status)."""
    row = _delivery(session, tenant, delivery_id, lock=True)
    endpoint = _endpoint(session, tenant, row.endpoint_id)
    if endpoint.disabled:
        raise Invalid("the endpoint is disabled: enable it first (PATCH disabled=false)",
                      slug="endpoint-disabled", endpoint_id=endpoint.id)
    _requeue(session, tenant.id, [row.id], utcnow())
    session.flush()
    session.refresh(row)
    return _delivery_out(row)


_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _event_id_floor(at: dt.datetime) -> str:
    """The least event id that could have been made at or after ``at`` (ids are ULIDs)."""
    value = max(0, int(at.timestamp() * 1000)) << 80
    return "evt_" + "".join(_B32[(value >> s) & 31] for s in range(125, -5, -5))


def replay_endpoint(session: Session, tenant: Tenant, endpoint_id: str, since: dt.datetime,
                    only_failed: bool = False) -> ReplayOut:
    """Queue again every event since ``since`` that the endpoint subscribes to: failed and
    delivered messages are sent again, events it never got a message for (it was disabled,
    or subscribed later) are sent for the first time. ``only_failed``: failed messages only."""
    if since.tzinfo is None:
        raise Invalid("give since with a time zone (e.g. 2026-01-01T00:00:00Z)",
                      slug="naive-datetime")
    endpoint = _endpoint(session, tenant, endpoint_id, lock=True)
    if endpoint.disabled:
        raise Invalid("the endpoint is disabled: enable it first (PATCH disabled=false)",
                      slug="endpoint-disabled", endpoint_id=endpoint.id)
    now = utcnow()
    if only_failed:
        ids = list(session.scalars(select(WebhookDelivery.id).where(
            WebhookDelivery.tenant_id == tenant.id, WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.status == "failed", WebhookDelivery.created_at >= since)
            .limit(MAX_REPLAY)))
        for i in range(0, len(ids), 500):
            _requeue(session, tenant.id, ids[i:i + 500], now)
        return ReplayOut(queued=len(ids))
    queued = 0
    after = _event_id_floor(since)
    while queued < MAX_REPLAY:
        events = session.execute(select(Event.id, Event.type, Event.subject_id).where(
            Event.tenant_id == tenant.id, Event.id >= after, Event.pending.is_(None))
            .order_by(Event.id).limit(1000)).all()
        if not events:
            break
        after = events[-1].id + "0"  # strictly after the last one
        wanted = [e for e in events if wants(endpoint.id, endpoint.event_types, e.type,
                                             e.subject_id)]
        if not wanted:
            continue
        existing = dict(session.execute(select(WebhookDelivery.event_id, WebhookDelivery.id).where(
            WebhookDelivery.tenant_id == tenant.id, WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.event_id.in_([e.id for e in wanted]))).all())
        again = [existing[e.id] for e in wanted if e.id in existing]
        if again:
            _requeue(session, tenant.id, again, now)
        new = [{"id": new_id("webhook_delivery"), "tenant_id": tenant.id,
                "endpoint_id": endpoint.id, "event_id": e.id, "event_type": e.type,
                "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
               for e in wanted if e.id not in existing]
        if new:
            insert_rows(session, WebhookDelivery.__table__, new)
        queued += len(wanted)
    return ReplayOut(queued=queued)


def count_undelivered(session: Session, tenant_id: str | None = None) -> dict[str, int]:
    """Pending events (not yet fanned out) and pending deliveries: what the worker owes."""
    ev = select(func.count()).select_from(Event).where(Event.pending.is_(True))
    dl = select(func.count()).select_from(WebhookDelivery).where(
        WebhookDelivery.status == "pending")
    if tenant_id is not None:
        ev = ev.where(Event.tenant_id == tenant_id)
        dl = dl.where(WebhookDelivery.tenant_id == tenant_id)
    return {"events_pending": session.scalar(ev) or 0,
            "deliveries_pending": session.scalar(dl) or 0}



# --- a person's data (haina.privacy) and retention --------------------------------------------

def export_deliveries(session: Session, tenant: Tenant, event_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Where the events about the person went: one row per delivery (endpoint, its app,
    status, when delivered): the recipients a person may ask about (PIPL Art. 45)."""
    rows = export_rows(session, WebhookDelivery.__table__, tenant.id, "event_id", event_ids)
    endpoint_ids = sorted({r["endpoint_id"] for r in rows})
    apps = dict(session.execute(select(WebhookEndpoint.id, WebhookEndpoint.app_id).where(
        WebhookEndpoint.tenant_id == tenant.id, WebhookEndpoint.id.in_(endpoint_ids))).all())
    for r in rows:
        r["app_id"] = apps.get(r["endpoint_id"])
    return {"webhook_deliveries": rows}


def redact_attempts(session: Session, tenant: Tenant, event_ids: Sequence[str],
                    found: frozenset[str]) -> int:
    """Replace the personal values in the logged responses and errors of the attempts to
    deliver these events (a receiver may have echoed the payload). What was sent cannot be
    recalled: the apps are told by ``member.redact_requested``."""
    return scrub_attempts(session, tenant.id, event_ids, found)


def redact_delivered(session: Session, tenant_id: str, event_ids: Sequence[str]) -> int:
    """Redact the concealed fields (``core.events.CONCEALED``: a sign-in code) of these
    events once none of their deliveries is still pending, and scrub the values from the
    attempts' logged answers (a receiver may echo them). Returns the events redacted. A
    replay afterwards sends the redacted payload: the secret was for one delivery."""
    ids = sorted(set(event_ids))
    if not ids:
        return 0
    waiting = set(session.scalars(select(WebhookDelivery.event_id).where(
        WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.event_id.in_(ids),
        WebhookDelivery.status == "pending")))
    done = [i for i in ids if i not in waiting]
    taken = redact_concealed(session, tenant_id, done)
    scrub_attempts(session, tenant_id, list(taken), needles(v for vs in taken.values() for v in vs))
    return len(taken)


def scrub_attempts(session: Session, tenant_id: str, event_ids: Sequence[str],
                   found: frozenset[str]) -> int:
    """Replace ``found`` in the logged answers and errors of the attempts to deliver these
    events."""
    changed = 0
    ids = list(event_ids)
    if not found:
        return 0
    for start in range(0, len(ids), 500):
        for a in session.scalars(select(WebhookAttempt).where(
                WebhookAttempt.tenant_id == tenant_id,
                WebhookAttempt.event_id.in_(ids[start:start + 500]))):
            excerpt, hit1 = scrub(a.response_excerpt, found)
            error, hit2 = scrub(a.error, found)
            if hit1 or hit2:
                a.response_excerpt, a.error = excerpt, error
                changed += 1
    session.flush()
    return changed


def purge_attempts(session: Session, tenant_id: str, before: dt.datetime) -> int:
    """Delete the merchant's attempt logs older than ``before`` (retention)."""
    return rowcount(session.execute(WebhookAttempt.__table__.delete().where(
        WebhookAttempt.tenant_id == tenant_id, WebhookAttempt.created_at < before)))


def purge_delivered(session: Session, tenant_id: str, before: dt.datetime) -> int:
    """Delete the merchant's delivered messages older than ``before``, with their attempts
    (retention); failed ones stay until the attempts' own period (they may be replayed)."""
    old = select(WebhookDelivery.id).where(
        WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.status == "succeeded",
        WebhookDelivery.created_at < before)
    ids = list(session.scalars(old))
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        session.execute(WebhookAttempt.__table__.delete().where(
            WebhookAttempt.tenant_id == tenant_id, WebhookAttempt.delivery_id.in_(chunk)))
        session.execute(WebhookDelivery.__table__.delete().where(
            WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id.in_(chunk)))
    return len(ids)
