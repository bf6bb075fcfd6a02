"""Token-bucket rate limits per credential: for an app, one bucket per (app, merchant); for a
staff token, one per token.

A bucket holds up to ``burst`` tokens and refills at ``rate`` per second; a request takes one
or is refused with 429 and ``Retry-After``. Every answer carries the draft IETF headers
``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds until full).

Two stores:

- ``database``: one row per bucket in ``rate_buckets``, updated by one UPSERT statement in
  autocommit on a small pool of its own. Every API process (and every machine) shares the
  bucket. The statement never runs inside the request's transaction, whose row lock would
  serialise a merchant's requests until each commits. A process does not run it for every
  request: it **leases** tokens, taking up to ``lease_max`` at once but never more than
  ``lease_share`` of what the bucket holds (so a small bucket is still taken from one token at a
  time, exactly), and spends them on the credential's next requests for at most
  ``lease_seconds``; what is left when a lease ends is dropped, never given back. The shared
  bucket is never overdrawn (a request always spends a token taken from it); a busy credential
  costs one statement per ``lease_max`` requests instead of one per request, and another process
  may be refused at most the tokens the others hold in their leases early.
  ``take_nowait`` spends from the process's live lease only, never waiting for the database
  (the event loop's answers, ``core.http.on_loop``), and may have a lease running low renewed
  ahead in another thread.
- ``memory``: a dict in the process, exact when one process serves the API (the SQLite
  default with one worker).

``auto`` picks ``database`` on PostgreSQL and on SQLite with several API processes, ``memory``
on SQLite with one.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Boolean, Engine, Float, Integer, PrimaryKeyConstraint, String, create_engine
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base
from haina.core.errors import Problem


class RateBucket(Base):
    """One token bucket (the ``database`` store): an app's at a merchant, or a staff token's.
    Unlogged on PostgreSQL: a bucket lost in a crash only refills early."""

    __tablename__ = "rate_buckets"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "key"),)

    tenant_id: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(80))  # app id or staff token id
    tokens: Mapped[float] = mapped_column(Float)
    stamp: Mapped[float] = mapped_column(Float)  # seconds since the epoch of the last request
    allowed: Mapped[bool] = mapped_column(Boolean)
    taken: Mapped[int] = mapped_column(Integer, server_default="0")  # the last lease's size


class RateLimited(Problem):
    status, slug, title = 429, "rate-limited", "Too many requests"


@dataclass(frozen=True)
class Plan:
    rate: float  # tokens per second
    burst: int   # bucket size


class Decision(NamedTuple):
    """A bucket's answer to one request (a named tuple: one is made per request and bucket,
    cheaper than a frozen dataclass)."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until one token is back (refusals)

    def headers(self) -> list[tuple[bytes, bytes]]:
        found = [(b"ratelimit-limit", str(self.limit).encode()),
                 (b"ratelimit-remaining", str(self.remaining).encode()),
                 (b"ratelimit-reset", str(self.reset).encode())]
        if not self.allowed:
            found.append((b"retry-after", str(self.retry_after).encode()))
        return found


def _decide(plan: Plan, tokens: float, allowed: bool) -> Decision:
    rate = plan.rate
    return Decision(allowed, plan.burst, max(0, int(tokens)),
                    max(0, math.ceil((plan.burst - tokens) / rate)) if rate > 0 else 0,
                    max(1, math.ceil((1 - tokens) / rate)) if rate > 0 else 60)


class MemoryBuckets:
    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, tenant_id: str, key: str, plan: Plan, now: float | None = None) -> Decision:
        now = time.time() if now is None else now
        with self._lock:
            tokens, stamp = self._buckets.get((tenant_id, key), (float(plan.burst), now))
            tokens = min(float(plan.burst), tokens + max(0.0, now - stamp) * plan.rate)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._buckets[(tenant_id, key)] = (tokens, now)
        return _decide(plan, tokens, allowed)

    def take_nowait(self, tenant_id: str, key: str, plan: Plan, now: float | None = None,
                    renew: Callable[[Callable[[], None]], None] | None = None
                    ) -> Decision | None:
        """:meth:`take`: it never waits for I/O here (``renew`` is never needed)."""
        return self.take(tenant_id, key, plan, now)


# one statement: refill by the time since the last request, then take a lease of ``want``
# tokens (at least one, at most :lease, at most :share of what is there) if there is one
_AVAILABLE = "{least}(:burst, b.tokens + ({greatest}(0, :now - b.stamp)) * :rate)"
_WANT = "CASE WHEN {avail} >= 1 THEN {greatest}(1, {least}(:lease, {share})) ELSE 0 END"
_UPSERT = (
    "INSERT INTO rate_buckets AS b (tenant_id, key, tokens, stamp, allowed, taken) "
    "VALUES (:tenant_id, :key, :burst - :first, :now, TRUE, :first) "
    "ON CONFLICT (tenant_id, key) DO UPDATE SET "
    "tokens = {avail} - {want}, taken = {want}, allowed = {want} >= 1, "
    "stamp = {greatest}(b.stamp, :now) "
    "RETURNING tokens, taken")


@dataclass
class _Lease:
    tokens: int  # still to spend in this process
    shared: float  # what the shared bucket held when the lease was taken
    expires: float
    full: int = 1  # how many tokens the lease took
    renewing: bool = False  # a renewal (take_nowait's renew) is under way


class DatabaseBuckets:
    def __init__(self, url: str, lease_max: int = 32, lease_share: float = 1 / 16,
                 lease_seconds: float = 1.0, lease_cap: int = 1024) -> None:
        self.engine: Engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=4,
                                            max_overflow=8, pool_pre_ping=False)
        sqlite = self.engine.dialect.name == "sqlite"
        least, greatest = ("min", "max") if sqlite else ("LEAST", "GREATEST")
        # CAST truncates on SQLite (floor for these non-negative values); PostgreSQL's rounds
        floor = "CAST({} AS INTEGER)" if sqlite else "floor({})"
        avail = _AVAILABLE.format(least=least, greatest=greatest)
        want = _WANT.format(avail=avail, least=least, greatest=greatest,
                            share=floor.format(f"{avail} * :share"))
        self.sql = _UPSERT.format(avail=avail, want=want, greatest=greatest)
        if sqlite:
            self.sql = self.sql.replace("TRUE", "1")
        # a lease takes lease_max tokens, doubled (up to lease_cap) each time a credential
        # spends one within half its time, halved back when one lapses half unspent
        self.lease_max = max(1, lease_max)
        self.lease_cap = max(self.lease_max, lease_cap)
        self._sizes: dict[tuple[str, str], int] = {}
        self.lease_share = min(1.0, max(0.0, lease_share))
        self.lease_seconds = lease_seconds
        self._leases: dict[tuple[str, str], _Lease] = {}
        self._lock = threading.Lock()
        self.statements = 0  # UPSERTs run (what leasing saves; read by tests and benchmarks)

    def take_nowait(self, tenant_id: str, key: str, plan: Plan, now: float | None = None,
                    renew: Callable[[Callable[[], None]], None] | None = None
                    ) -> Decision | None:
        """A token from this process's live lease of the bucket, or None when there is none
        to spend (the lease ended or is spent): then only :meth:`take`, which runs the
        UPSERT, can decide. Never waits for the database, so the event loop may call it (the
        storefront answers its kept public answers there, core.http's ``on_loop``).

        Given ``renew``, a lease that runs low (a quarter of a full lease left, or a quarter
        of its time) is renewed ahead: ``renew(job)`` is called once with a job to run in
        another thread, which takes the next lease (the UPSERT) and adds it to this one, so
        that a busy credential's next requests still find tokens here."""
        now = time.time() if now is None else now
        with self._lock:
            lease = self._leases.get((tenant_id, key))
            if lease is None or lease.tokens < 1 or now >= lease.expires:
                return None
            lease.tokens -= 1
            decision = _decide(plan, lease.shared + lease.tokens, True)
            low = lease.tokens < max(1, self.lease_max // 4) \
                or now > lease.expires - self.lease_seconds / 4
            if renew is None or not low or lease.renewing or lease.full < 4:
                return decision  # (a lease of a few tokens: a small bucket, taken exactly)
            lease.renewing = True
        renew(lambda: self._renew(tenant_id, key, plan, lease))
        return decision

    def _renew(self, tenant_id: str, key: str, plan: Plan, lease: _Lease) -> None:
        now = time.time()
        with self._lock:
            size = self._lease_size((tenant_id, key), now)
        try:
            with self.engine.connect() as conn:
                tokens, taken = conn.exec_driver_sql(
                    self._paramstyle(), self._params(tenant_id, key, plan, now, size)).one()
        except Exception:  # noqa: BLE001 — the next request's take() tries again
            with self._lock:
                lease.renewing = False
            raise
        with self._lock:
            self.statements += 1
            lease.renewing = False
            if int(taken) < 1:
                return
            held = self._leases.get((tenant_id, key))
            if held is not None and now < held.expires:
                held.tokens += int(taken)
                held.shared = float(tokens)
                held.expires = now + self.lease_seconds
                held.full = max(held.full, int(taken))
            else:
                self._leases[(tenant_id, key)] = _Lease(int(taken), float(tokens),
                                                        now + self.lease_seconds, int(taken))

    def take(self, tenant_id: str, key: str, plan: Plan, now: float | None = None) -> Decision:
        now = time.time() if now is None else now
        leased = self.take_nowait(tenant_id, key, plan, now)
        if leased is not None:
            return leased
        with self._lock:
            size = self._lease_size((tenant_id, key), now)
        with self.engine.connect() as conn:
            tokens, taken = conn.exec_driver_sql(
                self._paramstyle(), self._params(tenant_id, key, plan, now, size)).one()
        tokens, taken = float(tokens), int(taken)
        with self._lock:
            self.statements += 1
            if taken < 1:
                return _decide(plan, tokens, False)
            if len(self._leases) > 10_000:
                self._leases = {k: v for k, v in self._leases.items() if v.expires > now}
            lease = self._leases.get((tenant_id, key))
            if lease is not None and now < lease.expires and lease.tokens >= 1:
                # another thread of this process took a lease meanwhile: keep both, for
                # the new one's time
                lease.tokens += taken - 1
                lease.shared = tokens
                lease.expires = now + self.lease_seconds
                lease.full = max(lease.full, taken)
            else:  # (a spent lease is replaced: its time was the old one's)
                lease = self._leases[(tenant_id, key)] = _Lease(
                    taken - 1, tokens, now + self.lease_seconds, taken)
            return _decide(plan, lease.shared + lease.tokens, True)

    def _paramstyle(self) -> str:
        # the driver's own placeholders (exec_driver_sql bypasses SQLAlchemy's compiler)
        if not hasattr(self, "_driver_sql"):
            style = self.engine.dialect.paramstyle
            sql = self.sql
            for name in ("tenant_id", "key", "burst", "now", "rate", "lease", "share",
                         "first"):
                sql = sql.replace(f":{name}", f"%({name})s" if style == "pyformat"
                                  else f":{name}")
            self._driver_sql = sql
        return self._driver_sql

    def _lease_size(self, key: tuple[str, str], now: float) -> int:
        """The size of the bucket's next lease here (under the lock): the last one's, doubled
        (up to ``lease_cap``) when the lease held now ran low within half its time (a busy
        credential: one statement per that many requests), halved (down to ``lease_max``)
        when it lapsed with more than half of it unspent (what is left of a lease is
        dropped: a lease sized to what is spent loses little). Never more than the bucket's
        share, which the statement itself enforces."""
        size = self._sizes.get(key, self.lease_max)
        lease = self._leases.get(key)
        if lease is not None:
            if lease.tokens <= lease.full // 4 and now < lease.expires - self.lease_seconds / 2:
                size = min(size * 2, self.lease_cap)
            elif now >= lease.expires and lease.tokens > lease.full // 2:
                size = max(self.lease_max, size // 2)
        if len(self._sizes) > 10_000:
            self._sizes.clear()
        self._sizes[key] = size
        return size

    def _params(self, tenant_id: str, key: str, plan: Plan, now: float,
                size: int) -> dict[str, object]:
        first = max(1, min(size, int(plan.burst * self.lease_share)))
        return {"tenant_id": tenant_id, "key": key, "burst": float(plan.burst), "now": now,
                "rate": float(plan.rate), "lease": size,
                "share": self.lease_share, "first": min(first, plan.burst)}

    def dispose(self) -> None:
        self.engine.dispose()


Buckets = MemoryBuckets | DatabaseBuckets


def make_buckets(backend: str, url: str, workers: int) -> Buckets | None:
    if backend == "off":
        return None
    if backend == "auto":
        backend = "memory" if url.startswith("sqlite") and workers <= 1 else "database"
    if backend == "memory":
        return MemoryBuckets()
    if backend == "database":
        return DatabaseBuckets(url)
    raise ValueError(f"HAINA_RATE_LIMIT_BACKEND must be auto, database, memory or off, "
                     f"not {backend!r}")
