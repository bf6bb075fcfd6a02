"""``Idempotency-Key`` on creating POSTs, with Stripe's semantics.

The same key with the same request replays the first response (status and body, errors
included); the same key with a different request is a 422 problem. The key row is written in
the same transaction as the work it guards, so a crash can never leave one without the other,
and two concurrent requests with one key cannot both do the work: the loser's transaction
fails on the key's primary key, rolls back, and replays the winner's response.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import Integer, String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from haina.core.context import Tenant
from haina.core.db import Base, JSONType, UTCDateTime, utcnow
from haina.core.errors import IdempotencyInProgress, IdempotencyMismatch, Invalid, Problem

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


def run_idempotent(session: Session, tenant: Tenant, key: str | None, route: str, payload: str,
                   produce: Callable[[], tuple[int, Any]], *, ttl_hours: int = 24) -> Outcome:
    """Run ``produce`` (which does the work in ``session`` and returns status and JSON body)
    once per key, committing the work and the key together."""
    if key is None:
        status, body = produce()
        session.commit()
        return Outcome(status, body)
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Invalid(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                      slug="invalid-idempotency-key")
    fingerprint = request_fingerprint(route, payload)
    existing = session.get(IdempotencyKey, (tenant.id, key))
    if existing is not None:
        if existing.created_at >= utcnow() - dt.timedelta(hours=ttl_hours):
            return _replay(existing, fingerprint)
        session.delete(existing)
        session.flush()
    try:
        status, body = produce()
        problem = False
    except Problem as exc:
        if exc.status >= 500:
            raise
        # Stripe saves the outcome of a request that ran, failures included.
        session.rollback()
        status, body, problem = exc.status, exc.to_dict(), True
    session.add(IdempotencyKey(tenant_id=tenant.id, key=key, request_hash=fingerprint,
                               status_code=status, body=body, created_at=utcnow()))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        winner = session.get(IdempotencyKey, (tenant.id, key))
        if winner is None:
            raise IdempotencyInProgress("retry this request in a moment") from None
        return _replay(winner, fingerprint)
    return Outcome(status, body, problem=problem)


def purge_expired_keys(session: Session, ttl_hours: int = 24) -> int:
    cutoff = utcnow() - dt.timedelta(hours=ttl_hours)
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    return result.rowcount or 0
