"""``Idempotency-Key`` on creating POSTs, with Stripe's semantics.

The same key with the same request replays the first response (status and body, errors
included); the same key with a different request is a 422 problem. The key row is written in
the same transaction as the work it guards, so a crash can never leave one without the other,
and two concurrent requests with one key cannot both do the work: the second one's insert of
the key waits for the first's transaction, then finds the key taken and replays its response.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import Integer, String, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from haina.core.context import Tenant
from haina.core.db import Base, JSONType, UTCDateTime, rowcount, utcnow
from haina.core.errors import IdempotencyInProgress, IdempotencyMismatch, Invalid, Problem
from haina.core.personal import scrub

MAX_KEY_LENGTH = 255


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[Any] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class Outcome:
    """What a guarded operation answered: an HTTP status and a JSON-able body."""

    __slots__ = ("status", "body", "replayed", "problem")

    def __init__(self, status: int, body: Any, replayed: bool = False,
                 problem: bool = False) -> None:
        self.status, self.body, self.replayed, self.problem = status, body, replayed, problem


def request_fingerprint(route: str, payload: str) -> str:
    return hashlib.sha256(f"{route}\n{payload}".encode()).hexdigest()


def _replay(row: IdempotencyKey, fingerprint: str) -> Outcome:
    if row.request_hash != fingerprint:
        raise IdempotencyMismatch(
            "this Idempotency-Key was used with a different request; use a new key")
    body = row.body
    return Outcome(row.status_code, body, replayed=True,
                   problem=isinstance(body, dict) and "type" in body and "status" in body)


IN_PROGRESS = 0  # status of a key whose request has not finished (never seen committed)


def run_idempotent(session: Session, tenant: Tenant, key: str | None, route: str, payload: str,
                   produce: Callable[[], tuple[int, Any]], *, ttl_hours: int = 24,
                   instance: str | None = None) -> Outcome:
    """Run ``produce`` (which does the work in ``session`` and returns status and JSON body)
    once per key. Nothing is committed here: the caller's unit of work commits the work and
    the key row together."""
    if key is None:
        status, body = produce()
        return Outcome(status, body)
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Invalid(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                      slug="invalid-idempotency-key")
    fingerprint = request_fingerprint(route, payload)
    winner = _claim(session, tenant, key, fingerprint, ttl_hours)
    if winner is not None:
        return _replay(winner, fingerprint)
    # Stripe saves the outcome of a request that ran, failures included: the work is undone
    # (back to the savepoint), the key and its problem stay
    savepoint = session.begin_nested()
    try:
        status, body = produce()
        savepoint.commit()
        problem = False
    except Problem as exc:
        savepoint.rollback()
        if exc.status >= 500:
            raise
        status, body, problem = exc.status, exc.to_dict(instance), True
    except BaseException:
        savepoint.rollback()
        raise
    session.execute(update(IdempotencyKey)
                    .where(IdempotencyKey.tenant_id == tenant.id, IdempotencyKey.key == key)
                    .values(status_code=status, body=body))
    return Outcome(status, body, problem=problem)


def _claim(session: Session, tenant: Tenant, key: str, fingerprint: str,
           ttl_hours: int) -> IdempotencyKey | None:
    """Insert the key row (in progress), or return the row of the request that holds it.

    On PostgreSQL a concurrent insert of the same key waits for the holder's transaction:
    when the holder commits, ``ON CONFLICT DO NOTHING`` inserts nothing and the holder's row
    is read and replayed; when it rolls back, this request takes the key and does the work.
    SQLite runs one writer at a time (``BEGIN IMMEDIATE``), so the first read already sees it."""
    existing = session.get(IdempotencyKey, (tenant.id, key), populate_existing=True)
    if existing is not None:
        if existing.created_at >= utcnow() - dt.timedelta(hours=ttl_hours):
            return existing
        session.delete(existing)
        session.flush()
    dialect = session.get_bind().dialect.name
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    inserted = rowcount(session.execute(
        insert(IdempotencyKey).values(tenant_id=tenant.id, key=key, request_hash=fingerprint,
                                      status_code=IN_PROGRESS, body={}, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["tenant_id", "key"])))
    if inserted:
        return None
    winner = session.get(IdempotencyKey, (tenant.id, key), populate_existing=True)
    if winner is None or winner.status_code == IN_PROGRESS:
        raise IdempotencyInProgress("retry this request in a moment")
    return winner


def purge_expired_keys(session: Session, ttl_hours: int = 24) -> int:
    cutoff = utcnow() - dt.timedelta(hours=ttl_hours)
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    return rowcount(result) or 0


def redact_keys(session: Session, tenant_id: str, since: dt.datetime,
                found: frozenset[str]) -> int:
    """Replace the personal values ``found`` in the stored responses of the merchant's keys
    made since ``since`` (a replay then answers the redacted body). Returns how many changed."""
    changed = 0
    for row in session.scalars(select(IdempotencyKey).where(
            IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.created_at >= since)):
        body, hit = scrub(row.body, found)
        if hit:
            row.body = body
            changed += 1
    session.flush()
    return changed
