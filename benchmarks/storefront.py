"""A buyer's session mix on the storefront API over HTTP, on PostgreSQL, against pgbench
(TPC-B) on the same cluster.

Starts a throwaway PostgreSQL 15 cluster (durable), serves Haina with 2 uvicorn workers, seeds
a tire merchant through its API (200 listed tires, 5 fitting shops, a fitment rule, a
publishable key) and signs in 16 buyers by phone (codes from the sandbox inbox). Then 16
concurrent buyers, each on its own keep-alive connection from a separate process, repeat a
session: browse (``GET /store/v1/products?q=轮胎``), search with the nearby shops and slots
(``GET /store/v1/search``), look at a product, make a cart, add a line, read the priced cart,
check out (``POST /store/v1/carts/{id}/checkout`` with an Idempotency-Key). The load and a
``pgbench -c 16`` run on another database of the cluster take turns in slices of 8 s (5 s
with ``--quick``), S P P S S P P S, each after a checkpoint, 32 s of each in all (10 s
with ``--quick``): the machine's speed drifts (by as much as half, minutes apart, on the
2-core VM it was made on), and slices this short and balanced let each part meet the same
drift. Each slice of the load follows a second of untimed load (``WARM_SECONDS``).

Writes benchmarks/results/storefront.json: ``ratio`` (checkouts/s ÷ pgbench tps; the target
is ≥ 0.1), ``checkouts_per_s``, ``pgbench_tps``, ``p99_ms_by_call`` (the target: catalogue
and search calls ≤ 50 ms), ``p50_ms_by_call``, ``p99_ms_by_call_after_first_second`` (the
calls begun in each slice's first timed second left out), ``checkouts_per_s_slices``,
``pgbench_tps_slices``, ``calls``, ``errors``. ``--statements`` prints the statements run
per session.

    .venv/bin/python benchmarks/storefront.py [--quick]

``--cpu`` measures instead the server's CPU per catalogue, search and cart call (make a cart,
add a line, read it, check out) in one process
(no HTTP, no load generator: what a call costs, whatever the machine is busy with), and
``--profile search`` prints where it goes:

    .venv/bin/python benchmarks/storefront.py --cpu [--cpu-db URL] [--profile search]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from orders import checkpoint, init_pgbench, percentile, run_pgbench, sh  # noqa: E402

from haina.core.http import replaying  # noqa: E402
from haina.core.pgtemp import PgCluster, free_port  # noqa: E402

CLIENTS = 16
TIRES = 200
SHOPS = 5
THREADS = 4
HERE = (31.2304, 121.4737)
CALLS = ("browse", "search", "product", "cart", "add_line", "get_cart", "checkout")
SETTLE_SECONDS = 1.0  # p99_ms_by_call_after_first_second leaves out calls begun before
#: each slice of the load begins after this much untimed load: the kept public answers and
#: the limiter's leases lapsed during the pgbench slice before it (a server does not pause
#: for another program in use; pgbench's own tps leaves out its connecting too)
WARM_SECONDS = 1.0
console = Console()


def haina_env(url: str, port: int) -> dict[str, str]:
    # the limiter runs (its cost is measured) with plans high enough never to refuse
    big = [1_000_000, 1_000_000]
    return {**os.environ, "HAINA_DATABASE_URL": url, "HAINA_PORT": str(port),
            "HAINA_THREADS": str(THREADS), "PYTHONPATH": str(ROOT / "src"),
            "HAINA_RATE_LIMIT_BACKEND": "database",
            "HAINA_RATE_LIMIT_PLANS": json.dumps({"staff": big, "storefront": big,
                                                  "buyer": big})}


def start_haina(cluster: PgCluster, shared_port: bool = False
                ) -> tuple[list[subprocess.Popen], list[int], str]:
    """Migrate, make the merchant and its token, and serve Haina in 2 processes: by default
    two single-process servers on two ports, the buyers split evenly between them (what a
    round-robin balancer in front of 2 processes does); with ``shared_port``, uvicorn's own
    ``--workers 2`` on one port, where each worker accepts what it wakes for first: with 16
    keep-alive connections opened at once one worker was seen holding 3/4 of them."""
    sh(["createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "haina"])
    url = cluster.url("haina")
    haina = [sys.executable, "-m", "haina.cli"]
    sh([*haina, "migrate"], haina_env(url, 0))
    sh([*haina, "tenants", "create", "bench-tires"], haina_env(url, 0))
    token = sh([*haina, "token", "create", "--tenant", "bench-tires", "--scopes", "*"],
               haina_env(url, 0)).strip()
    procs, ports = [], []
    for _ in range(1 if shared_port else 2):
        port = free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "haina.api:app_from_env", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
             *(["--workers", "2",
                # on a busy machine a worker answers the supervisor's 5 s health check late
                # and is killed mid-request (seen: "Server disconnected"): allow a minute
                "--timeout-worker-healthcheck", "60"] if shared_port else []),
             "--timeout-keep-alive", "60", "--log-level", "warning"],
            env=haina_env(url, port)))
        ports.append(port)
    for port in ports:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            for proc in procs:
                proc.kill()
            raise RuntimeError("the server did not start")
    return procs, ports, token


def analyze(cluster: PgCluster) -> None:
    """ANALYZE the database, seeded and warmed up. A shop that has been selling has its
    tables' statistics (autovacuum analyzes a table within a minute or so of enough
    changes), as pgbench's tables have theirs (``pgbench -i`` vacuums and analyzes them).
    Without them the planner took the shop's 200 stock rows for one, and a checkout's stock
    claim read all of them. After the warm-up, not before: analyzed empty, the carts and
    orders tables were planned for as empty while they grew (an order's inserts then read
    280 buffers, a cart read 25)."""
    sh(["psql", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-d", "haina",
        "-q", "-c", "ANALYZE"])


def seed(port: int, token: str) -> tuple[str, list[dict]]:
    """The merchant's tires, shops, rule and key; 16 buyers signed in, over HTTP. Returns
    the key and the buyers' sessions."""
    def client(path: str, headers: dict[str, str]) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{port}{path}", headers=headers,
                            timeout=60)
    return seed_with(client, token)


def seed_with(client, token: str, buyers: int = CLIENTS) -> tuple[str, list[dict]]:
    """Seed through ``client(path, headers)`` (an HTTP client, or a TestClient in process)."""
    hours = [{"weekday": d, "open": "00:00", "close": "24:00"} for d in range(1, 8)]
    with client("", {"Authorization": f"Bearer {token}"}) as c:
        for i in range(TIRES):
            c.post("/v1/products", json={
                "sku": f"TIRE-{i:04d}", "title": f"轮胎 Tire {i} R{15 + i % 4}",
                "price": {"amount": f"{400 + i}.00", "currency": "CNY"}, "stock": 10_000_000,
                "attributes": {"rim_diameter": 15 + i % 4}}).raise_for_status()
        for i in range(SHOPS):
            c.post("/v1/service-points", json={
                "name": f"Fitting shop {i}", "opening_hours": hours,
                "location": {"lat": HERE[0] + 0.01 * i, "lng": HERE[1] - 0.01 * i},
                "services": [{"code": "tire-fitting", "duration_minutes": 60, "capacity": 1000,
                              "price": {"amount": "80.00", "currency": "CNY"}}],
                "fitment": {"rim_diameter": [14, 20]}}).raise_for_status()
        c.post("/v1/fitment-rules", json={"service": "tire-fitting",
                                          "attribute": "rim_diameter"}).raise_for_status()
        key = c.post("/v1/storefront/keys", json={"name": "bench", "channel": "app",
                                                  "sandbox": True}).json()["key"]
    sessions = []
    with client("/store/v1", {"X-Publishable-Key": key}) as c:
        for i in range(buyers):
            phone = f"1380000{i:04d}"
            c.post("/sign-in/codes", json={"phone": phone}).raise_for_status()
            code = next(m["code"] for m in c.get("/sandbox/inbox").json()["data"]
                        if m["phone"] == phone)
            r = c.post("/sign-in/verify", json={"phone": phone, "code": code})
            r.raise_for_status()
            sessions.append(r.json())
    return key, sessions


# ------------------------------------------------------------ CPU per call, in process

def cpu_per_call(url: str | None, rounds: int, profile: str | None) -> dict:
    """The server's own CPU per storefront call, in process (no HTTP server, no client
    library, no other load counted: each request handed to the ASGI app): the app on ``url`` (a SQLite file by default), seeded as the HTTP run is, each
    call made ``rounds`` times after a warm-up; ``time.process_time`` around each (every
    thread of the process: the router's pool included). ``profile``: a call whose cProfile
    is printed (its 25 costliest functions, cumulative)."""
    import cProfile
    import pstats
    import tempfile

    from fastapi.testclient import TestClient

    from haina.api import create_app
    from haina.core.config import Settings
    from haina.core.db import make_engine, make_sessionmaker, transaction
    from haina.core.schema import upgrade
    from haina.platform import service as platform

    url = url or f"sqlite:///{tempfile.mkdtemp()}/storefront-cpu.db"
    engine = make_engine(url)
    upgrade(engine)
    slug = f"bench-tires-{uuid.uuid4().hex[:8]}"  # a --cpu-db may hold earlier runs'
    with transaction(make_sessionmaker(engine)) as s:
        platform.create_tenant(s, slug, "Bench tires")
        token = platform.create_token(s, slug, "*").token
    def app_of(cache_seconds: float):
        return create_app(Settings(database_url=url, rate_limit_backend="off",
                                   storefront_cache_seconds=cache_seconds), engine=engine)

    app = app_of(0)
    out: dict[str, dict[str, float]] = {"made": {}, "kept": {}}
    with TestClient(app):  # seeding only: the timed calls go to the app itself
        def client(path: str, headers: dict[str, str]) -> TestClient:
            return TestClient(app, base_url=f"http://testserver{path}", headers=headers)
        key, sessions = seed_with(client, token, buyers=1)
    auth = [(b"x-publishable-key", key.encode()),
            (b"authorization", f"Bearer {sessions[0]['access_token']}".encode())]
    for kept, cache_seconds in (("made", 0.0), ("kept", 60.0)):
        asyncio.run(_time_calls(app_of(cache_seconds), auth, rounds, kept == "made",
                                out[kept]))
    if profile:  # the service function itself, in this thread (cProfile sees one thread)
        from haina.storefront import service as store
        sessions = make_sessionmaker(engine)
        with transaction(sessions) as s:
            shop = store.lookup_shop(s, key, 0)
            assert shop is not None
            product_id = store.list_products(s, shop, limit=1).data[0].id
        work = {
            "browse": lambda s: store.list_products(s, shop, q="轮胎", limit=20),
            "browse_all": lambda s: store.list_products(s, shop, limit=20),
            "search": lambda s: store.search(s, shop, "R16", HERE[0], HERE[1], 10, limit=5),
            "product": lambda s: store.get_product(s, shop, product_id),
        }[profile]
        prof = cProfile.Profile()
        for _ in range(rounds):
            with transaction(sessions) as s:
                prof.enable()
                work(s)
                prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
    engine.dispose()
    return {"cpu_ms_per_call": out["made"], "cpu_ms_per_call_kept": out["kept"],
            "rounds": rounds,
            "database": url.split(":", 1)[0], "tires": TIRES, "shops": SHOPS}


async def _asgi_call(app, method: str, path: str, headers: list[tuple[bytes, bytes]],
                     body: dict | None = None) -> tuple[int, bytes]:
    """One request handed to the ASGI app itself (no HTTP server, no client library: what
    the app spends, not what a test client adds)."""
    path, _, query = path.partition("?")
    raw = json.dumps(body).encode() if body is not None else b""
    if body is not None:
        headers = [*headers, (b"content-type", b"application/json"),
                   (b"content-length", str(len(raw)).encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"bench"), *headers], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80)}
    async def connected() -> dict:
        await asyncio.sleep(3600)  # the client stays connected
        return {"type": "http.disconnect"}

    receive = replaying(raw, connected)
    status, chunks = 0, []

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _time_calls(app, auth: list[tuple[bytes, bytes]], rounds: int, made: bool,
                      out: dict[str, float]) -> None:
    """CPU per call (``time.process_time``: every thread of the process), each call made
    ``rounds`` times after a warm-up; ``made``: answers made each time (and the cart calls,
    a new cart or line each time), else kept (the public calls only)."""
    async def call(method: str, path: str, body: dict | None = None,
                   extra: tuple = ()) -> bytes:
        status, payload = await _asgi_call(app, method, path, [*auth, *extra], body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {payload[:200]!r}")
        return payload

    async def timed(name: str, make: Callable) -> None:
        for i in range(3):  # warm-up: caches, compiled statements (not the timed ones' carts)
            await make(-1 - i)
        t0 = time.process_time()
        for i in range(rounds):
            await make(i)
        out[name] = round((time.process_time() - t0) / rounds * 1000, 3)

    async with app.router.lifespan_context(app):
        browse = "/store/v1/products?" + urlencode({"q": "轮胎", "limit": 20})
        product_id = json.loads(await call("GET", browse))["data"][0]["id"]
        search = "/store/v1/search?" + urlencode({"q": "R16", "lat": HERE[0], "lng": HERE[1],
                                                  "radius_km": 10, "limit": 5})
        await timed("browse", lambda i: call("GET", browse))
        await timed("browse_all", lambda i: call("GET", "/store/v1/products?limit=20"))
        await timed("search", lambda i: call("GET", search))
        await timed("product", lambda i: call("GET", f"/store/v1/products/{product_id}"))
        if not made:
            return
        carts: list[str] = []

        async def new_cart(i: int) -> None:
            carts.append(json.loads(await call("POST", "/store/v1/carts", {
                "lines": [{"sku": f"TIRE-{i % TIRES:04d}", "quantity": 4}]}))["id"])

        await timed("cart", new_cart)  # carts[0..2] from the warm-up, then one per round
        await timed("add_line", lambda i: call("POST", f"/store/v1/carts/{carts[i + 3]}/lines",
                                               {"sku": f"TIRE-{(i + 7) % TIRES:04d}",
                                                "quantity": 1}))
        await timed("get_cart", lambda i: call("GET", f"/store/v1/carts/{carts[i + 3]}"))
        await timed("checkout", lambda i: call(
            "POST", f"/store/v1/carts/{carts[i + 3]}/checkout", {},
            ((b"idempotency-key", str(uuid.uuid4()).encode()),)))


# ------------------------------------------------------------ load generator (own process)

class _Buyer:
    """One buyer repeating the session on one keep-alive HTTP/1.1 connection, written and
    parsed by hand and driven by the answers as they arrive: each whole answer is read
    where it lands and the next request written at once (no task, future or coroutine per
    call). What a buyer's app sends, at a fraction of an HTTP library's CPU: the load
    generator shares the 2 cores with the server and PostgreSQL (httpx's AsyncClient cost
    ~15 ms of CPU per session, a quarter of the server's own; asyncio's streams, a line at a
    time, ~1.4 ms; a coroutine per buyer awaiting a future per answer, ~1.0 ms)."""

    def __init__(self, run: _Run, port: int, session: dict, seed_: int) -> None:
        self.run, self.port, self.rnd = run, port, random.Random(seed_)
        self.head = (f"HTTP/1.1\r\nHost: bench\r\nX-Publishable-Key: {run.key}\r\n"
                     f"Authorization: Bearer {session['access_token']}\r\n")
        self.wire: _Wire | None = None  # the connection (None: to open before the next call)
        self.buffer = bytearray()
        self.steps: list[Callable[[], None]] = []  # the session's calls still to make
        self.call: tuple[str, int, bool] = ("", 200, False)  # the one awaiting its answer
        self.started = 0.0
        self.request = b""
        self.cart = ""

    # ------------------------------------------------------------------ the session
    def begin(self) -> None:
        """The next session, or this buyer's end once the run's time is up."""
        if time.perf_counter() >= self.run.deadline:
            self.run.finished(self)
            return
        self.steps = [self.browse]
        self.next()

    def next(self) -> None:
        if self.steps:
            self.steps.pop()()
        else:
            self.begin()

    def browse(self) -> None:
        self.steps = [self.add_cart, self.search]  # popped from the end
        self.send("browse", "GET", f"/products?{urlencode({'q': '轮胎', 'limit': 20})}",
                  read=True)

    def search(self) -> None:
        self.send("search", "GET", "/search?" + urlencode({
            "q": f"R{15 + self.rnd.randrange(4)}", "lat": HERE[0], "lng": HERE[1],
            "radius_km": 10, "limit": 5}))

    def product(self, page: dict) -> None:
        if page["data"]:
            self.steps.insert(1, lambda: self.send(
                "product", "GET", f"/products/{self.rnd.choice(page['data'])['id']}"))

    def add_cart(self) -> None:
        sku = f"TIRE-{self.rnd.randrange(TIRES):04d}"
        self.send("cart", "POST", "/carts", {"lines": [{"sku": sku, "quantity": 4}]},
                  ok=201, read=True)

    def lines(self) -> None:
        self.steps = [self.checkout, self.get_cart]
        self.send("add_line", "POST", f"/carts/{self.cart}/lines",
                  {"sku": f"TIRE-{self.rnd.randrange(TIRES):04d}", "quantity": 1})

    def get_cart(self) -> None:
        self.send("get_cart", "GET", f"/carts/{self.cart}")

    def checkout(self) -> None:
        self.send("checkout", "POST", f"/carts/{self.cart}/checkout", {}, ok=201,
                  extra=f"Idempotency-Key: {uuid.uuid4()}\r\n")

    def answered(self, name: str, status: int, payload: bytes, ok: int, read: bool) -> None:
        if status != ok:
            self.unanswered(name, f"{status} {payload[:120]!r}")
            return
        if name == "checkout":
            self.run.checkouts += 1
        elif read and name == "browse":
            self.product(orjson.loads(payload))
        elif read:  # the new cart
            self.cart = orjson.loads(payload)["id"]
            self.steps = [self.lines]

    # ------------------------------------------------------------------ the wire
    def send(self, name: str, method: str, path: str, body: dict | None = None,
             ok: int = 200, read: bool = False, extra: str = "") -> None:
        data = b""
        if body is not None:
            data = orjson.dumps(body)
            extra += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        self.call = (name, ok, read)
        self.request = f"{method} /store/v1{path} {self.head}{extra}\r\n".encode() + data
        if self.wire is None:
            self.connect()
        else:
            self.started = time.perf_counter()
            self.wire.transport.write(self.request)

    def connect(self) -> None:
        """A new connection, then the request waiting for it."""
        def made(task: asyncio.Future) -> None:
            if task.exception() is not None:
                self.failed(task.exception())  # type: ignore[arg-type]
            elif self.wire is not None:
                self.started = time.perf_counter()
                self.wire.transport.write(self.request)
        self.started = time.perf_counter()
        loop = asyncio.get_running_loop()
        asyncio.ensure_future(loop.create_connection(lambda: _Wire(self), "127.0.0.1",
                                                     self.port)).add_done_callback(made)

    def made(self, wire: _Wire) -> None:
        self.wire = wire
        self.buffer.clear()

    def lost(self, exc: BaseException | None) -> None:
        self.wire = None
        if self.call[0]:
            self.failed(exc or ConnectionError("the server closed the connection"))

    def drop(self) -> None:
        """Close the connection; what it still reports is not this buyer's any more."""
        if self.wire is not None:
            self.wire.transport.close()
            self.wire = None

    def failed(self, exc: BaseException) -> None:
        """A call without an answer: counted; the session goes on (on a new connection)."""
        name = self.call[0]
        self.call = ("", 200, False)
        self.unanswered(name, f"{type(exc).__name__}: {exc}")
        self.next()

    def unanswered(self, name: str, why: str) -> None:
        """A call that failed: counted; without a cart the session ends there."""
        self.run.errors.append(f"{name} {why}")
        if name == "cart":
            self.steps = []

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or not self.call[0]:
            return
        head = bytes(self.buffer[:end]).split(b"\r\n")
        length, close = 0, False
        for line in head[1:]:
            field, _, value = line.partition(b":")
            field = field.strip().lower()
            if field == b"content-length":
                length = int(value)
            elif field == b"connection" and value.strip().lower() == b"close":
                close = True
            elif field == b"transfer-encoding":
                self.drop()
                self.failed(ConnectionError("chunked answers are not read by this client"))
                return
        if len(self.buffer) < end + 4 + length:
            return
        payload = bytes(self.buffer[end + 4:end + 4 + length])
        del self.buffer[:end + 4 + length]
        name, ok, read = self.call
        self.call = ("", 200, False)
        self.run.timed(name, self.started)
        if close:
            self.drop()
        self.answered(name, int(head[0].split(b" ", 2)[1]), payload, ok, read)
        self.next()


class _Wire(asyncio.Protocol):
    """One connection of a buyer: what it reports goes to the buyer while it is the buyer's
    connection (one the buyer closed may still report its end after the next is open)."""

    def __init__(self, buyer: _Buyer) -> None:
        self.buyer = buyer
        self.transport: asyncio.Transport = None  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buyer.made(self)

    def data_received(self, data: bytes) -> None:
        if self.buyer.wire is self:
            self.buyer.data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.buyer.wire is self:
            self.buyer.lost(exc)


class _Run:
    """What the buyers of one load process record: latencies by call (and those of the
    calls begun after the first ``SETTLE_SECONDS``), errors, checkouts; done when every
    buyer has ended its last session."""

    def __init__(self, key: str, seconds: float) -> None:
        self.key = key
        self.start = time.perf_counter()
        self.deadline = self.start + seconds
        self.settled_from = self.start + SETTLE_SECONDS
        self.out: dict[str, list[float]] = {name: [] for name in CALLS}
        self.settled: dict[str, list[float]] = {name: [] for name in CALLS}
        self.errors: list[str] = []
        self.checkouts = 0
        self.buyers: set[_Buyer] = set()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def timed(self, name: str, started: float) -> None:
        took = time.perf_counter() - started
        self.out[name].append(took)
        if started >= self.settled_from:
            self.settled[name].append(took)

    def finished(self, buyer: _Buyer) -> None:
        self.buyers.discard(buyer)
        buyer.drop()
        if not self.buyers and not self.done.done():
            self.done.set_result(None)


def _load(ports: list[int], key: str, sessions: list[dict], seconds: float,
          queue: mp.Queue) -> None:
    async def main() -> tuple[dict, list, int, float, float, dict]:
        cpu = time.process_time()
        run = _Run(key, seconds)
        run.buyers = {_Buyer(run, ports[i % len(ports)], s, i) for i, s in enumerate(sessions)}
        for buyer in list(run.buyers):
            buyer.begin()
        await run.done
        return (run.out, run.errors, run.checkouts, time.perf_counter() - run.start,
                time.process_time() - cpu, run.settled)
    queue.put(_run(main()))


def _run(main: Any) -> Any:
    """``main`` on uvloop's event loop when it is installed (uvicorn's standard extra brings
    it, and the server runs on it too): the load generator's own CPU is what the server and
    PostgreSQL do not get on the shared cores."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover — a base install without it
        return asyncio.run(main)
    return uvloop.run(main)


def drive(ports: list[int], key: str, sessions: list[dict],
          seconds: float) -> tuple[dict, list, int, float, float, dict]:
    """The session mix for ``seconds``: latencies by call, errors, checkouts, the time taken,
    the load process's own CPU seconds, and the latencies of the calls begun after the
    first ``SETTLE_SECONDS``."""
    queue: mp.Queue = mp.Queue()
    proc = mp.Process(target=_load, args=(ports, key, sessions, seconds, queue))
    proc.start()
    try:  # a load process that dies must not leave the run waiting for ever
        result = queue.get(timeout=seconds + 300)
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
    return result


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process, from /proc (0 once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):  # gone before or while read
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return [pid]
    return [pid] + [p for child in children for p in _tree(int(child))]


class Meter:
    """Where the CPU of the timed slices goes: the server's workers, PostgreSQL's processes
    (its backends, checkpointer, WAL writer …; pgbench is not running then) and the load
    process; and the SQL statements the haina database ran (pg_stat_statements: BEGIN and
    COMMIT included). A backend that ends during a slice loses its CPU from the count (the
    server's pools keep theirs)."""

    def __init__(self, servers: list[subprocess.Popen], cluster: PgCluster) -> None:
        from sqlalchemy import create_engine, text
        self.servers = servers
        self.postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
        self.engine = create_engine(cluster.url("haina"), isolation_level="AUTOCOMMIT")
        self.count_sql = text(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d "
            "ON d.oid = s.dbid WHERE d.datname = 'haina' "
            "AND s.query NOT ILIKE '%pg_stat_statements%'")
        with self.engine.connect() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        self.by_query_sql = text(
            "SELECT s.query, sum(s.calls) FROM pg_stat_statements s JOIN pg_database d "
            "ON d.oid = s.dbid WHERE d.datname = 'haina' "
            "AND s.query NOT ILIKE '%pg_stat_statements%' GROUP BY s.query")
        self.workers: dict[int, float] = {}
        self.postgres = self.load = 0.0
        self.statements = 0
        self.by_query: dict[str, int] = {}

    def _snapshot(self) -> tuple[dict[int, float], dict[int, float], int]:
        workers = {p: _cpu_seconds(p) for server in self.servers for p in _tree(server.pid)}
        postgres = {p: _cpu_seconds(p) for p in _tree(self.postmaster)}
        with self.engine.connect() as conn:
            statements = int(conn.execute(self.count_sql).scalar())
        return workers, postgres, statements

    def part(self, run: Callable[[], tuple[dict, list, int, float, float, dict]]
             ) -> tuple[dict, list, int, float, float, dict]:
        w0, pg0, st0 = self._snapshot()
        q0 = self._queries()
        result = run()
        w1, pg1, st1 = self._snapshot()
        for query, calls in self._queries().items():
            if calls - q0.get(query, 0):
                self.by_query[query] = self.by_query.get(query, 0) + calls - q0.get(query, 0)
        for pid, spent in w1.items():
            self.workers[pid] = self.workers.get(pid, 0.0) + spent - w0.get(pid, 0.0)
        self.postgres += sum(spent - pg0.get(pid, 0.0) for pid, spent in pg1.items())
        self.load += result[4]
        self.statements += st1 - st0
        return result

    def _queries(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {q: int(n) for q, n in conn.execute(self.by_query_sql)}

    def top_statements(self, sessions: int, n: int = 30) -> list[tuple[float, str]]:
        """The statements most run per session (pg_stat_statements' normalised text)."""
        top = sorted(self.by_query.items(), key=lambda kv: -kv[1])[:n]
        return [(round(calls / max(sessions, 1), 2), " ".join(query.split())[:160])
                for query, calls in top]

    def report(self, sessions: int) -> dict:
        per = 1000 / max(sessions, 1)
        busy = sorted((round(v, 2) for v in self.workers.values() if v > 0.05), reverse=True)
        return {
            "server_cpu_ms_per_session": round(sum(self.workers.values()) * per, 1),
            "server_cpu_s_by_worker": busy,
            "postgres_cpu_ms_per_session": round(self.postgres * per, 1),
            "load_cpu_ms_per_session": round(self.load * per, 1),
            "statements_per_session": round(self.statements / max(sessions, 1), 1),
        }

    def close(self) -> None:
        self.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s runs instead of 30 s")
    parser.add_argument("--cpu", action="store_true",
                        help="instead: the CPU of each catalogue/search/cart call, in process "
                             "(SQLite unless --cpu-db), printed and not written")
    parser.add_argument("--cpu-db", default=None, help="a database URL for --cpu")
    parser.add_argument("--rounds", type=int, default=50, help="calls of each kind for --cpu")
    parser.add_argument("--profile", default=None, choices=("browse", "browse_all", "search",
                                                             "product"),
                        help="with --cpu: print this call's cProfile")
    parser.add_argument("--shared-port", action="store_true",
                        help="serve with uvicorn's --workers 2 on one port instead of two "
                             "processes on two ports with the buyers split evenly")
    parser.add_argument("--statements", action="store_true",
                        help="print the statements run per session, most frequent first")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "storefront.json"),
                        help="where to write the JSON")
    args = parser.parse_args()
    if args.cpu:
        console.print_json(data=cpu_per_call(args.cpu_db, args.rounds, args.profile))
        return
    slices, piece = (2, 5) if args.quick else (4, 8)  # per part: slices of `piece` seconds
    seconds = slices * piece
    load_at_start = list(os.getloadavg())
    cluster = PgCluster(durable=True, extra={"shared_buffers": "256MB",
                                             "shared_preload_libraries": "pg_stat_statements"})
    servers: list[subprocess.Popen] = []
    meter = None
    latencies: dict[str, list[float]] = {name: [] for name in CALLS}
    settled: dict[str, list[float]] = {name: [] for name in CALLS}
    errors: list[str] = []
    checkouts, elapsed = 0, 0.0
    store_slices: list[float] = []
    tps_slices: list[float] = []
    try:
        with console.status("migrating, seeding and starting Haina (2 workers) …"):
            servers, ports, token = start_haina(cluster, args.shared_port)
            key, sessions = seed(ports[0], token)
            drive(ports, key, sessions, 3)  # warm-up
            analyze(cluster)
            meter = Meter(servers, cluster)
        with console.status("pgbench -i …"):
            init_pgbench(cluster)
        # the two parts in slices, S P P S S P P S: the machine's speed drifts (by half,
        # minutes apart, on this 2-core VM), and each part meets the same drift
        for i in range(slices):
            for part in (("store", "pgbench") if i % 2 == 0 else ("pgbench", "store")):
                checkpoint(cluster)
                if part == "pgbench":
                    with console.status(f"a {piece} s TPC-B run (pgbench) ({i + 1}/{slices}) …"):
                        tps_slices.append(run_pgbench(cluster, piece))
                    continue
                with console.status(f"{CLIENTS} buyers for {piece} s ({i + 1}/{slices}) …"):
                    drive(ports, key, sessions, WARM_SECONDS)  # untimed: see WARM_SECONDS
                    out, err, done, took, _, calm = meter.part(
                        lambda: drive(ports, key, sessions, piece))
                for name in CALLS:
                    latencies[name] += out[name]
                    settled[name] += calm[name]
                errors += err
                checkouts += done
                elapsed += took
                store_slices.append(round(done / took, 1))
        tps = sum(tps_slices) / len(tps_slices)  # (slices of one length)
        spent = meter.report(len(latencies["browse"]))
        if args.statements:
            for per_session, query in meter.top_statements(len(latencies["browse"])):
                print(f"{per_session:6.2f}  {query}")
    finally:
        if meter is not None:
            meter.close()
        for server in servers:
            server.terminate()
            server.wait(10)
        cluster.stop()
    per_s = checkouts / elapsed
    result = {
        "ratio": round(per_s / tps, 4),
        "checkouts_per_s": round(per_s, 1),
        "checkouts_per_s_slices": store_slices,
        "pgbench_tps_slices": [round(t, 1) for t in tps_slices],
        "pgbench_tps": round(tps, 1),
        "p99_ms_by_call": {n: round(percentile(v, 0.99) * 1000, 1) for n, v in latencies.items() if v},
        "p50_ms_by_call": {n: round(percentile(v, 0.50) * 1000, 1) for n, v in latencies.items() if v},
        # the same without each slice's first second (calls begun then: the processes' kept
        # answers and leases are cold after the pause for pgbench): where the tail comes from
        "p99_ms_by_call_after_first_second": {
            n: round(percentile(v, 0.99) * 1000, 1) for n, v in settled.items() if v},
        "calls": {n: len(v) for n, v in latencies.items()},
        "errors": len(errors),
        **spent,
        "clients": CLIENTS, "server_workers": 2, "threads_per_worker": THREADS,
        "serving": "uvicorn --workers 2, one port" if args.shared_port
        else "2 processes, 8 buyers each",
        "seconds": seconds, "slice_seconds": piece, "tires": TIRES, "shops": SHOPS, "quick": args.quick,
        "cpu_count": os.cpu_count(), "load_average_at_start": load_at_start,
        "load_average_at_end": list(os.getloadavg()),
    }
    table = Table(title="Storefront sessions over HTTP vs pgbench TPC-B (same cluster)")
    for k in ("checkouts_per_s", "checkouts_per_s_slices", "pgbench_tps", "pgbench_tps_slices",
              "ratio",
              "p99_ms_by_call", "p50_ms_by_call", "p99_ms_by_call_after_first_second",
              "calls", "errors", *spent):
        table.add_row(k, str(result[k]))
    console.print(table)
    if errors:
        console.print(f"first errors: {errors[:3]}")
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
