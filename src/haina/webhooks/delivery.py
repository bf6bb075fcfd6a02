"""Webhook delivery: from the outbox to signed HTTP requests, at least once.

**No committed event is skipped.** Event ids are made before commit, so with several API
processes events commit out of id order, and a dispatcher reading "ids after the last one
seen" would skip the late ones. So there is no cursor: every event is inserted with
``pending = true`` (the column's server default, so the writers, the order path included, do
not change), and a partial index holds just those rows. The dispatcher claims pending events
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL: several workers take disjoint batches; SQLite has
one writer anyway), writes one ``webhook_deliveries`` row per subscribed endpoint and clears
the marker, in one transaction. An event that commits late is simply still pending at the
next claim; a worker that dies before its commit leaves the marker set.

**At least once.** A delivery row is claimed with a lease (``next_attempt_at`` moved to now +
the lease) before its request is sent, and its outcome recorded after; a worker killed in
between leaves the row due again when the lease ends, and another worker (or this one,
restarted) sends it again. Receivers deduplicate by the ``webhook-id`` header, the event's id.

**Fast.** One asyncio loop per worker process: many requests in flight, a few kept-alive
connections per receiving origin, each used by one sender at a time (.http: h11 on asyncio
streams, no client or pool layer), the database work in a thread (claims and bookkeeping in
batches: one transaction records a batch of attempts), the claim re-run at once while there is work and every ``poll`` seconds
when idle. Deliveries it fans out are leased to itself and sent at once, without a second claim.

**Retries** follow the Standard Webhooks schedule (:data:`SCHEDULE`, with jitter); after the
last one the message is dead-lettered (``failed``) and ``endpoint.attempts_exhausted``
recorded. An endpoint whose attempts all fail for 5 days is disabled
(``endpoint.disabled``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import Text, and_, bindparam, cast, false, literal_column, select, true
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from haina import __version__
from haina.core.db import insert_rows, transaction, utcnow
from haina.core.events import CONCEALED, Event, record_event
from haina.core.ids import new_id
from haina.webhooks import http, service
from haina.webhooks.http import Exchange
from haina.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from haina.webhooks.schemas import MANDATORY_EVENT_TYPES

log = logging.getLogger("haina.webhooks")

#: seconds to wait before each attempt: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
SCHEDULE: tuple[int, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
#: a delivery succeeds on a 2xx answered within this many seconds
TIMEOUT = 15.0
#: an endpoint failing this long without a success is disabled
DISABLE_AFTER = dt.timedelta(days=5)
#: characters of the response body kept with an attempt
EXCERPT = 500
USER_AGENT = f"Haina-Webhooks/{__version__}"
_RAW_FIXED = [(b"user-agent", USER_AGENT.encode())]
# the partial indexes' predicates, as literals (SQLite matches a partial index only on the
# same literal term, never on a bound parameter)
_PENDING_EVENT = Event.pending == true()
_DUE = literal_column("webhook_deliveries.status") == literal_column("'pending'")


@dataclass(slots=True)
class Job:
    """One request to make: a delivery leased to this worker."""

    tenant_id: str
    delivery_id: str
    endpoint_id: str
    event_id: str
    attempts: int  # made before this one, in the current schedule
    url: str
    secret: str
    body: str
    previous_secret: str | None = None  # still signing after a rotation (its grace period)
    event_type: str = ""


@dataclass(slots=True)
class Outcome:
    job: Job
    at: dt.datetime
    ok: bool
    status_code: int | None
    latency_ms: int
    excerpt: str | None
    error: str | None


def payload(event_type: str, created_at: dt.datetime, data: Any) -> str:
    """The body: ``{"type", "timestamp", "data"}`` (Standard Webhooks' shape). ``data`` as the
    database gives it in JSON text (put in as it is: no parsing and serialising per event), or
    as a value."""
    stamp = created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(data, str):
        return f'{{"type":{orjson.dumps(event_type).decode()},"timestamp":"{stamp}","data":{data}}}'
    return orjson.dumps({"type": event_type, "timestamp": stamp, "data": data}).decode()


def retry_delay(attempts: int, rng: Callable[[], float] = random.random,
                jitter: float = 0.1) -> float | None:
    """Seconds until the next attempt after ``attempts`` failed ones (None: none left);
    a delay varies by ± ``jitter`` of itself so that failed messages do not return in step."""
    if attempts >= len(SCHEDULE):
        return None
    base = SCHEDULE[attempts]
    return base * (1 + jitter * (2 * rng() - 1)) if base else 0.0


@dataclass
class Dispatcher:
    """The delivery engine of one worker process. ``clock`` decides when retries are due
    (tests pass a fake one); signatures always carry the real time, which receivers check."""

    sessions: sessionmaker[Session]
    clock: Callable[[], dt.datetime] = utcnow
    rng: Callable[[], float] = random.random
    jitter: float = 0.1
    lease: float = 60.0
    concurrency: int = 512  # messages held at once (sending, or waiting for a connection)
    per_origin: int = 8  # connections (and requests in flight) per receiving origin
    batch: int = 500
    poll: float | None = None  # seconds between claims when idle (default by database)
    timeout: float = TIMEOUT
    transport: httpx.AsyncBaseTransport | None = None
    # None: the deployment's setting (HAINA_WEBHOOK_ALLOW_PRIVATE_ADDRESSES; see .egress)
    allow_private: bool | None = None
    _signers: dict[str, Webhook] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.poll is None:
            sqlite = self.sessions.kw["bind"].dialect.name == "sqlite"
            # a claim on SQLite takes the database's one write lock: poll it less often
            self.poll = 0.25 if sqlite else 0.05

    # --- database work (run in a thread) -------------------------------------------------------

    def fan_out(self, limit: int) -> list[Job]:
        """Claim up to ``limit`` pending events, make their deliveries (leased to this worker)
        and clear their marker, in one transaction; return the requests to make."""
        now = self.clock()
        with transaction(self.sessions) as session:
            events = session.execute(
                select(Event.tenant_id, Event.id, Event.type, Event.subject_id,
                       cast(Event.data, Text).label("data"), Event.created_at)
                .where(_PENDING_EVENT).order_by(Event.id).limit(limit)
                .with_for_update(skip_locked=True)).all()
            if not events:
                return []
            tenants = sorted({e.tenant_id for e in events})
            endpoints: dict[str, list[Any]] = {}
            for ep in session.execute(
                    select(WebhookEndpoint.tenant_id, WebhookEndpoint.id,
                           WebhookEndpoint.url, WebhookEndpoint.secret,
                           WebhookEndpoint.previous_secret,
                           WebhookEndpoint.previous_secret_until,
                           WebhookEndpoint.event_types, WebhookEndpoint.app_id)
                    .where(WebhookEndpoint.tenant_id.in_(tenants),
                           WebhookEndpoint.disabled == false())):
                endpoints.setdefault(ep.tenant_id, []).append(ep)
            rows: list[dict[str, Any]] = []
            jobs: list[Job] = []
            leased = now + dt.timedelta(seconds=self.lease)
            for e in events:
                body = None
                # privacy events reach the apps they name, subscribed or not (parsed only here)
                named = orjson.loads(e.data) if e.type in MANDATORY_EVENT_TYPES else None
                for ep in endpoints.get(e.tenant_id, ()):
                    if not (service.wants(ep.id, ep.event_types, e.type, e.subject_id)
                            or service.mandatory_for(ep.app_id, e.type, named)):
                        continue
                    body = body or payload(e.type, e.created_at, e.data)
                    delivery_id = new_id("webhook_delivery")
                    rows.append({"id": delivery_id, "tenant_id": e.tenant_id,
                                 "endpoint_id": ep.id, "event_id": e.id, "event_type": e.type,
                                 "status": "pending", "attempts": 0,
                                 "next_attempt_at": leased, "created_at": now})
                    jobs.append(Job(e.tenant_id, delivery_id, ep.id, e.id, 0, ep.url,
                                    ep.secret, body, _previous(ep, now), e.type))
            if rows:
                insert_rows(session, WebhookDelivery.__table__, rows)
            # one statement (ids are unique across merchants; naming the merchants keeps it to
            # their partitions, or shards)
            session.execute(Event.__table__.update()
                            .where(Event.tenant_id.in_(tenants),
                                   Event.id.in_([e.id for e in events]))
                            .values(pending=None))
        return jobs

    def claim_due(self, limit: int) -> list[Job]:
        """Lease up to ``limit`` deliveries that are due (retries, replays, and requests of a
        worker that died before recording them) and return the requests to make."""
        now = self.clock()
        d, e, ep = WebhookDelivery, Event, WebhookEndpoint
        with transaction(self.sessions) as session:
            rows = session.execute(
                select(d.tenant_id, d.id, d.endpoint_id, d.event_id, d.attempts, e.type,
                       e.created_at, cast(e.data, Text).label("data"), ep.url, ep.secret,
                       ep.previous_secret, ep.previous_secret_until, ep.disabled)
                .join(e, and_(e.tenant_id == d.tenant_id, e.id == d.event_id))
                .join(ep, and_(ep.tenant_id == d.tenant_id, ep.id == d.endpoint_id))
                .where(_DUE, d.next_attempt_at <= now)
                .order_by(d.next_attempt_at).limit(limit)
                .with_for_update(skip_locked=True, of=d)).all()
            if not rows:
                return []
            table = d.__table__
            keyed = table.update().where(table.c.tenant_id == bindparam("t_"),
                                         table.c.id == bindparam("i_"))
            live = [r for r in rows if not r.disabled]
            dead = [r for r in rows if r.disabled]
            if live:
                session.execute(keyed.values(next_attempt_at=now + dt.timedelta(seconds=self.lease)),
                                [{"t_": r.tenant_id, "i_": r.id} for r in live])
            if dead:  # disabled since it was queued
                session.execute(keyed.values(status="failed", next_attempt_at=None,
                                             last_error="endpoint disabled"),
                                [{"t_": r.tenant_id, "i_": r.id} for r in dead])
        return [Job(r.tenant_id, r.id, r.endpoint_id, r.event_id, r.attempts, r.url, r.secret,
                    payload(r.type, r.created_at, r.data), _previous(r, now), r.type)
                for r in live]

    def record(self, outcomes: list[Outcome]) -> None:
        """Log a batch of attempts and move their deliveries on, in one transaction."""
        if not outcomes:
            return
        now = self.clock()
        attempts, retry, exhausted = [], [], []
        done: dict[int, list[Job]] = {}
        ok_endpoints: set[tuple[str, str]] = set()
        failed_endpoints: set[tuple[str, str]] = set()
        for o in outcomes:
            j = o.job
            n = j.attempts + 1
            attempts.append({"id": new_id("webhook_attempt"), "tenant_id": j.tenant_id,
                             "delivery_id": j.delivery_id, "endpoint_id": j.endpoint_id,
                             "event_id": j.event_id, "attempt": n, "succeeded": o.ok,
                             "status_code": o.status_code, "latency_ms": o.latency_ms,
                             "response_excerpt": o.excerpt, "error": o.error,
                             "created_at": o.at})
            common = {"t_": j.tenant_id, "i_": j.delivery_id, "n_": n, "at_": o.at,
                      "code_": o.status_code, "err_": _error_text(o)}
            if o.ok:
                done.setdefault(o.status_code or 200, []).append(j)
                ok_endpoints.add((j.tenant_id, j.endpoint_id))
                continue
            failed_endpoints.add((j.tenant_id, j.endpoint_id))
            delay = retry_delay(n, self.rng, self.jitter)
            if delay is None:
                exhausted.append((o, common))
            else:
                retry.append({**common, "next_": o.at + dt.timedelta(seconds=delay)})
        failed_endpoints -= ok_endpoints
        d = WebhookDelivery.__table__
        keyed = d.update().where(d.c.tenant_id == bindparam("t_"), d.c.id == bindparam("i_"),
                                 d.c.status == "pending")
        moved: dict[str, Any] = {"attempts": bindparam("n_"), "last_attempt_at": bindparam("at_"),
                                 "last_status_code": bindparam("code_"),
                                 "last_error": bindparam("err_")}
        with transaction(self.sessions) as session:
            insert_rows(session, WebhookAttempt.__table__, attempts)
            for code, jobs in done.items():  # one statement per status code (all 200, often)
                session.execute(d.update().where(
                    d.c.tenant_id.in_({j.tenant_id for j in jobs}),
                    d.c.id.in_([j.delivery_id for j in jobs]), d.c.status == "pending")
                    .values(status="succeeded", attempts=d.c.attempts + 1, next_attempt_at=None,
                            last_attempt_at=now, delivered_at=now, last_status_code=code,
                            last_error=None))
            # a payload's secrets (a sign-in code) are the receiver's alone: kept until sent
            secret: dict[str, list[str]] = {}
            for jobs in done.values():
                for j in jobs:
                    if j.event_type in CONCEALED:
                        secret.setdefault(j.tenant_id, []).append(j.event_id)
            for tenant_id, event_ids in secret.items():
                service.redact_delivered(session, tenant_id, event_ids)
            if retry:
                session.execute(keyed.values(next_attempt_at=bindparam("next_"), **moved), retry)
            if exhausted:
                session.execute(keyed.values(status="failed", next_attempt_at=None, **moved),
                                [c for _, c in exhausted])
                for o, _ in exhausted:
                    j = o.job
                    record_event(session, j.tenant_id, "endpoint.attempts_exhausted",
                                 j.endpoint_id,
                                 {"endpoint_id": j.endpoint_id, "delivery_id": j.delivery_id,
                                  "event_id": j.event_id, "url": j.url, "attempts": j.attempts + 1,
                                  "last_status_code": o.status_code, "last_error": o.error})
            e = WebhookEndpoint.__table__
            by_key = e.update().where(e.c.tenant_id == bindparam("t_"), e.c.id == bindparam("i_"))
            if ok_endpoints:
                session.execute(by_key.where(e.c.failing_since.is_not(None))
                                .values(failing_since=None),
                                [{"t_": t, "i_": i} for t, i in sorted(ok_endpoints)])
            if failed_endpoints:
                keys = sorted(failed_endpoints)
                session.execute(by_key.where(e.c.failing_since.is_(None))
                                .values(failing_since=now), [{"t_": t, "i_": i} for t, i in keys])
                cutoff = now - DISABLE_AFTER
                for t, i in keys:
                    since = session.scalar(select(WebhookEndpoint.failing_since).where(
                        WebhookEndpoint.tenant_id == t, WebhookEndpoint.id == i,
                        WebhookEndpoint.disabled == false()))
                    if since is not None and since <= cutoff:
                        service.disable_failing_endpoint(session, t, i, since)

    # --- HTTP ----------------------------------------------------------------------------------

    def pools(self) -> Pools:
        allow = self.allow_private
        if allow is None:
            from haina.core.config import get_settings
            allow = get_settings().webhook_allow_private_addresses
        return Pools(self.per_origin, self.timeout, self.transport, allow_private=allow)

    def signer(self, secret: str) -> Webhook:
        signer = self._signers.get(secret)
        if signer is None:
            if len(self._signers) > 10_000:
                self._signers.clear()
            signer = self._signers[secret] = Webhook(secret)
        return signer

    def headers(self, job: Job) -> dict[str, str]:
        now = dt.datetime.now(dt.UTC)  # the real time: receivers refuse a stale timestamp
        secrets = [job.secret] if job.previous_secret is None else [job.secret, job.previous_secret]
        # Standard Webhooks: several signatures, space-delimited; a receiver accepts any one
        signature = " ".join(self.signer(s).sign(job.event_id, now, job.body) for s in secrets)
        return {"content-type": "application/json", "webhook-id": job.event_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signature}

    def raw_headers(self, job: Job) -> list[tuple[bytes, bytes]]:
        return [(k.encode(), v.encode()) for k, v in self.headers(job).items()] + _RAW_FIXED

    async def send(self, pools: Pools, job: Job) -> Outcome:
        """One request, waiting for a connection of the origin's pool (tests, ``drain``)."""
        exchange, slots = pools.for_url(job.url)
        async with slots:
            return await self.post(exchange, job)

    async def post(self, exchange: Exchange, job: Job) -> Outcome:
        """One request on one of the origin's kept-alive connections (.http: no client
        layer, no shared pool; no redirect is followed, no cookie kept)."""
        status: int | None = None
        excerpt: str | None = None
        error: str | None = None
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                status, head = await exchange.post(job.url, self.raw_headers(job),
                                                   job.body.encode(), EXCERPT * 4)
                excerpt = head.decode("utf-8", "replace")[:EXCERPT] or None
        except TimeoutError:
            error = f"no answer within {self.timeout:g} s"
        except Exception as exc:  # refused, reset, a bad URL, TLS …: logged with the attempt
            error = f"{type(exc).__name__}: {exc}"[:500]
        latency = int((time.perf_counter() - start) * 1000)
        ok = status is not None and 200 <= status < 300 and error is None
        return Outcome(job, self.clock(), ok, status, latency, excerpt, error)

    # --- loops ---------------------------------------------------------------------------------

    async def step(self, pools: Pools) -> int:
        """One round, for tests and ``haina webhooks deliver``: fan out, claim what is due,
        send it all, record. Returns the number of requests made."""
        jobs = await asyncio.to_thread(self.fan_out, self.batch)
        jobs += await asyncio.to_thread(self.claim_due, self.batch)
        outcomes = await asyncio.gather(*(self.send(pools, j) for j in jobs))
        await asyncio.to_thread(self.record, list(outcomes))
        return len(jobs)

    async def drain(self) -> int:
        """Rounds until nothing is pending or due now; returns the requests made."""
        total = 0
        async with self.pools() as pools:
            while n := await self.step(pools):
                total += n
        return total

    async def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set; then finish the requests in flight and record them.

        Messages queue per receiving origin (a lane); each lane has up to ``per_origin``
        sender coroutines, one per connection, that take the next message as they finish one.
        (A task per message waiting for a connection cost a third more CPU per request.)"""
        outcomes: list[Outcome] = []
        lanes: dict[tuple[str, str, int | None], Lane] = {}
        held = [0]  # messages taken and not yet sent
        wake = asyncio.Event()
        stopping = asyncio.Event()
        assert self.poll is not None

        async def sender(lane: Lane) -> None:
            try:
                while lane.queue:
                    job = lane.queue.popleft()
                    outcomes.append(await self.post(lane.exchange, job))
                    held[0] -= 1
                    wake.set()
            finally:
                lane.senders -= 1

        def dispatch(pools: Pools, job: Job) -> None:
            key = origin(job.url)
            lane = lanes.get(key)
            if lane is None:
                lane = lanes[key] = Lane(pools.for_url(job.url)[0])
            lane.queue.append(job)
            held[0] += 1
            if lane.senders < self.per_origin:
                lane.senders += 1
                lane.tasks.add(task := asyncio.create_task(sender(lane)))
                task.add_done_callback(lane.tasks.discard)

        async def bookkeeping(pools: Pools) -> None:
            # attempts are recorded in batches, at most every 0.1 s: the receiver already has
            # the message, so this adds nothing to its latency, and fewer transactions cost less
            swept = time.monotonic()
            while True:
                if time.monotonic() - swept > http.KEEPALIVE:
                    pools.sweep()
                    swept = time.monotonic()
                if outcomes:
                    batch = outcomes[:]
                    del outcomes[:len(batch)]
                    try:
                        await asyncio.to_thread(self.record, batch)
                    except Exception:  # the deliveries stay leased and are sent again
                        log.exception("could not record %d webhook attempts", len(batch))
                elif stopping.is_set() and not held[0]:
                    return
                await asyncio.sleep(0.1)

        async with self.pools() as pools:
            recorder = asyncio.create_task(bookkeeping(pools))
            due_at = 0.0
            while not stop.is_set():
                room = self.concurrency - held[0]
                # claim in chunks: a transaction per handful of events would cost more than
                # the requests themselves; when idle any room will do
                if room < (min(self.batch, self.concurrency // 4) if held[0] else 1) \
                        or len(outcomes) > self.batch * 4:
                    wake.clear()
                    try:
                        await asyncio.wait_for(wake.wait(), 0.05)
                    except TimeoutError:
                        pass
                    continue
                jobs: list[Job] = []
                try:
                    jobs = await asyncio.to_thread(self.fan_out, min(room, self.batch))
                    # retries are due on a scale of seconds: look for them at most 5 times a
                    # second, and only with room left after the fan-out
                    if len(jobs) < room and time.monotonic() >= due_at:
                        jobs += await asyncio.to_thread(self.claim_due,
                                                        min(room - len(jobs), self.batch))
                        due_at = time.monotonic() + 0.2
                except Exception:
                    log.exception("webhook claim failed")
                    await asyncio.sleep(1.0)
                for job in jobs:
                    dispatch(pools, job)
                if not jobs:
                    await asyncio.sleep(self.poll)
            for lane in lanes.values():  # finish what is in flight; the rest stays leased
                lane.queue.clear()
            senders = [t for lane in lanes.values() for t in lane.tasks]
            if senders:
                await asyncio.wait(senders, timeout=self.timeout + 1)
            held[0] = 0  # what was never sent stays leased: it is sent again after the lease
            stopping.set()
            await recorder


def _previous(endpoint: Any, now: dt.datetime) -> str | None:
    """The rotated-out secret while its grace period lasts."""
    until = endpoint.previous_secret_until
    if endpoint.previous_secret is None or until is None:
        return None
    return endpoint.previous_secret if until > now else None  # UTCDateTime: aware on both


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return (parts.scheme, parts.hostname or "", parts.port)


@dataclass(eq=False)
class Lane:
    """The messages waiting for one receiving origin, and its senders."""

    exchange: Exchange
    queue: deque[Job] = field(default_factory=deque)
    senders: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class Pools:
    """The connections of each receiving origin (scheme, host, port): a few, each with one
    request at a time (.http). Requests to one origin never wait for another's: a slow
    receiver only holds up its own messages."""

    def __init__(self, per_origin: int, timeout: float,
                 transport: httpx.AsyncBaseTransport | None = None, *,
                 allow_private: bool = False) -> None:
        self.per_origin = per_origin
        self.timeout = timeout
        self.shared = None if transport is None else http.ViaTransport(transport, timeout)
        self.allow_private = allow_private
        self._pools: dict[tuple[str, str, int | None], tuple[Exchange, asyncio.Semaphore]] = {}

    def for_url(self, url: str) -> tuple[Exchange, asyncio.Semaphore]:
        key = origin(url)
        found = self._pools.get(key)
        if found is None:
            exchange = self.shared or http.exchange_for(
                url, allow_private=self.allow_private, connections=self.per_origin,
                timeout=self.timeout)
            found = self._pools[key] = (exchange, asyncio.Semaphore(self.per_origin))
        return found

    def sweep(self) -> None:
        """Close idle connections that expired, every origin's."""
        now = time.monotonic()
        for exchange, _ in self._pools.values():
            exchange.sweep(now)

    async def __aenter__(self) -> Pools:
        return self

    async def __aexit__(self, *exc: object) -> None:
        closed: set[int] = set()  # a transport given by the caller serves every origin
        for exchange, _ in self._pools.values():
            if id(exchange) not in closed:
                closed.add(id(exchange))
                await exchange.aclose()
        self._pools.clear()


class DeliveryThread:
    """The dispatcher's asyncio loop in a thread of the worker process (``haina worker``)."""

    def __init__(self, sessions: sessionmaker[Session], **options: Any) -> None:
        from haina.core.config import get_settings
        settings = get_settings()
        options.setdefault("concurrency", settings.webhook_concurrency)
        options.setdefault("per_origin", settings.webhook_connections_per_origin)
        options.setdefault("lease", settings.webhook_lease_seconds)
        self.dispatcher = Dispatcher(sessions, **options)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._main, name="webhook-delivery", daemon=True)

    def _main(self) -> None:
        while not self.stop_event.is_set():
            try:
                asyncio.run(self.dispatcher.run(self.stop_event))
            except Exception:  # never let delivery die with the worker still running
                log.exception("webhook delivery loop failed; restarting in 1 s")
                self.stop_event.wait(1.0)

    def start(self) -> DeliveryThread:
        self.thread.start()
        return self

    def stop(self, timeout: float = TIMEOUT + 5) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


def _error_text(o: Outcome) -> str | None:
    if o.ok:
        return None
    if o.error:
        return o.error[:500]
    return f"answered {o.status_code}"
