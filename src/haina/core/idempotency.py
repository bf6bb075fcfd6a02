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

from sqlalchemy import Integer, String, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from haina.core.context import Tenant
from haina.core.db import (
    Base,
    JSONType,
    Precompiled,
    UTCDateTime,
    deferred_inserts,
    is_postgres,
    rowcount,
    utcnow,
)
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


def _replay(row: Any, fingerprint: str) -> Outcome:
    if row.request_hash != fingerprint:
        raise IdempotencyMismatch(
            "this Idempotency-Key was used with a different request; use a new key")
    body = row.body
    return Outcome(row.status_code, body, replayed=True,
                   problem=isinstance(body, dict) and "type" in body and "status" in body)


IN_PROGRESS = 0  # status of a key whose request has not finished (never seen committed)


def run_idempotent(session: Session, tenant: Tenant, key: str | None, route: str, payload: str,
                   produce: Callable[[], tuple[int, Any]], *, ttl_hours: int = 24,
                   instance: str | None = None, read_first: bool = True,
                   last: bool = False) -> Outcome:
    """Run ``produce`` (which does the work in ``session`` and returns status and JSON body)
    once per key. Nothing is committed here: the caller's unit of work commits the work and
    the key row together.

    When the unit of work has done nothing yet (the usual case: a creating POST), the key is
    read, the work done, and the key row inserted last with the answer: three statements
    fewer than claiming it first (insert, savepoint, release, update). A request whose work
    fails with a problem rolls it back and records the key with the problem. Otherwise the
    key is claimed first and the work runs in a savepoint (:func:`_run_claimed`).

    ``read_first=False`` skips the first read of the key (one statement fewer for every new
    request): a replay then does the work, finds the key taken when it records it, rolls the
    work back and replays the kept answer. Only for work whose every effect is in this
    database (rolled back with it): nothing sent to a payment provider, no mail.

    ``last``: nothing of the unit of work follows (the route answers with the outcome), so
    that, with ``read_first=False`` on PostgreSQL, the key row goes with the unit's
    ``COMMIT`` where the unit can send both at once (``core.db``'s ``Deferred.send_with``);
    the key row is then inserted without ``ON CONFLICT``: a key taken by another request
    fails the statement, which aborts the commit and rolls the work back, as when it is
    found taken."""
    if key is None:
        status, body = produce()
        return Outcome(status, body)
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Invalid(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                      slug="invalid-idempotency-key")
    fingerprint = request_fingerprint(route, payload)
    if session.in_transaction():  # work of the request's before this: not to be rolled back
        return _run_claimed(session, tenant, key, fingerprint, produce, ttl_hours, instance)
    if read_first:
        winner = _kept(session, tenant, key, ttl_hours)
        if winner is not None:
            return _replay(winner, fingerprint)
    recorded: bool | None = None
    try:
        if read_first or not is_postgres(session):
            status, body = produce()
        else:
            # the work's inserts held back (sent before any other statement needs them) and
            # sent with the key row, in one statement: one round trip fewer
            with deferred_inserts(session, until_used=True) as held:
                status, body = produce()
                row = _key_row(tenant, key, fingerprint, status, body)
                if not last:
                    recorded = bool(held.send_with(_RECORD["postgresql"], row))
                else:
                    try:
                        recorded = bool(held.send_with(_RECORD_OR_FAIL, row, commit=True))
                    except IntegrityError as exc:
                        if not _key_taken(exc):
                            raise
                        recorded = False  # taken: the statement failed, the work is undone
        problem = False
    except Problem as exc:
        if exc.status >= 500:
            raise
        # Stripe saves the outcome of a request that ran, failures included: the work is
        # undone (it was all this unit of work did), the key and its problem stay
        session.rollback()
        # read again: an expired row deleted above came back with the rollback (and a
        # concurrent request may have recorded the key since)
        winner = _kept(session, tenant, key, ttl_hours)
        if winner is not None:
            return _replay(winner, fingerprint)
        status, body, problem = exc.status, exc.to_dict(instance), True
    if recorded is None:
        recorded = _record(session, tenant, key, fingerprint, status, body)
    if recorded:
        return Outcome(status, body, problem=problem)
    # a concurrent request with this key committed first (on PostgreSQL the insert waited for
    # its transaction): this one's work is undone and the first one's answer replayed
    session.rollback()
    winner = _kept(session, tenant, key, ttl_hours)
    if winner is None:
        if not read_first:  # an expired key (deleted just now): do the work again
            return _run_claimed(session, tenant, key, fingerprint, produce, ttl_hours,
                                instance)
        raise IdempotencyInProgress("retry this request in a moment")  # pragma: no cover
    return _replay(winner, fingerprint)


def _run_claimed(session: Session, tenant: Tenant, key: str, fingerprint: str,
                 produce: Callable[[], tuple[int, Any]], ttl_hours: int,
                 instance: str | None) -> Outcome:
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
           ttl_hours: int) -> Any:
    """Insert the key row (in progress), or return the row of the request that holds it.

    On PostgreSQL a concurrent insert of the same key waits for the holder's transaction:
    when the holder commits, ``ON CONFLICT DO NOTHING`` inserts nothing and the holder's row
    is read and replayed; when it rolls back, this request takes the key and does the work.
    SQLite runs one writer at a time (``BEGIN IMMEDIATE``), so the first read already sees it."""
    existing = _kept(session, tenant, key, ttl_hours)
    if existing is not None:
        return existing
    if _record(session, tenant, key, fingerprint, IN_PROGRESS, {}):
        return None
    winner = _kept(session, tenant, key, ttl_hours)
    if winner is None or winner.status_code == IN_PROGRESS:
        raise IdempotencyInProgress("retry this request in a moment")
    return winner


_K = IdempotencyKey.__table__.c
_READ_KEY = Precompiled(select(_K.request_hash, _K.status_code, _K.body, _K.created_at).where(
    _K.tenant_id == bindparam("tenant_id"), _K.key == bindparam("key")), typed=True)
_DELETE_KEY = Precompiled(delete(IdempotencyKey.__table__).where(
    _K.tenant_id == bindparam("tenant_id"), _K.key == bindparam("key")))
def _key_insert(insert: Any) -> Any:
    """The key row's INSERT (the dialect's ``insert``), every column a parameter."""
    return insert(IdempotencyKey.__table__).values(
        {c.key: bindparam(c.key, type_=c.type) for c in IdempotencyKey.__table__.c})


_RECORD = {dialect: Precompiled(
    _key_insert(insert).on_conflict_do_nothing(index_elements=["tenant_id", "key"])
    .returning(_K.key))
    for dialect, insert in (("sqlite", sqlite_insert), ("postgresql", pg_insert))}


# the key row with the work's COMMIT (run_idempotent's ``last``): a key taken fails it
_RECORD_OR_FAIL = Precompiled(_key_insert(pg_insert).returning(_K.key))


def _key_taken(exc: IntegrityError) -> bool:
    """Whether ``exc`` is a key row's unique violation: on the table, or on one of its
    partitions (``idempotency_keys_p<N>``: docs/scaling.md's partition mode, whose index
    names the partition)."""
    diag = getattr(exc.orig, "diag", None)
    table = getattr(diag, "table_name", None) or ""
    name = IdempotencyKey.__tablename__
    return getattr(exc.orig, "sqlstate", None) == "23505" and (
        table == name or (table.startswith(name + "_p") and table[len(name) + 2:].isdigit()))


def _kept(session: Session, tenant: Tenant, key: str, ttl_hours: int) -> Any:
    """The committed answer kept under ``key`` (request_hash, status_code, body), or None;
    one past ``ttl_hours`` is deleted (its key may be used again)."""
    rows = _READ_KEY.records(session, {"tenant_id": tenant.id, "key": key})
    if not rows:
        return None
    if rows[0].created_at >= utcnow() - dt.timedelta(hours=ttl_hours):
        return rows[0]
    _DELETE_KEY.rows(session, {"tenant_id": tenant.id, "key": key})
    return None


def _record(session: Session, tenant: Tenant, key: str, fingerprint: str, status: int,
            body: Any) -> bool:
    """Insert the key row with its answer; False if the key is taken (committed by another
    request, which PostgreSQL waited for)."""
    dialect = session.get_bind().dialect.name
    return bool(_RECORD[dialect].rows(session, _key_row(tenant, key, fingerprint, status, body)))


def _key_row(tenant: Tenant, key: str, fingerprint: str, status: int, body: Any
             ) -> dict[str, Any]:
    return {"tenant_id": tenant.id, "key": key, "request_hash": fingerprint,
            "status_code": status, "body": body, "created_at": utcnow()}


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
