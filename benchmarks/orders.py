"""Place-order throughput over HTTP on PostgreSQL, against pgbench (TPC-B) on the same cluster.

Starts a throwaway PostgreSQL 15 cluster (durable settings: fsync and synchronous commit on),
serves Haina with 2 uvicorn workers on one database of it, and drives ``POST /v1/orders`` with
16 concurrent keep-alive clients from a separate process for 15 s, then runs
``pgbench -c 16 -T 30`` on another database (Haina idle), then places orders for 15 s more.
Each of the three timed parts starts from a fresh CHECKPOINT.
The two order halves bracket the pgbench run, so a drift of this machine's speed during the
run (this VM's throughput wanders by ±15 % over minutes) weighs on both sides alike.
Statements per order are counted by pg_stat_statements over a sequential run after a warm-up (as the
timed load runs: connection pools, prepared statements and the API's caches warm), listed by
statement under the table, and counted again over the timed halves
(``timed_statements_per_order``: a cache that stopped answering shows there); the server's
CPU per order is read from /proc over the timed halves, in all and by worker process.

Writes benchmarks/results/orders.json: ratio (= orders/s ÷ pgbench tps, higher is better),
orders_per_s, pgbench_tps, p50_ms, p99_ms, statements_per_order.

With ``--partitioned`` the same load also runs against a second database whose tenant tables
are hash-partitioned by tenant_id (``HAINA_PARTITION_BY_TENANT=1``, docs/scaling.md), served
by a second server: its halves alternate with the plain schema's around the one pgbench run,
and the JSON gains ``partitioned_ratio`` (its orders/s ÷ the same pgbench tps) and
``partitioned_vs_plain`` (the target: at least 0.90).

With ``--full`` a third database holds what a real shop's order meets (issue 12): 10,000 live
promotions (9,998 on other goods, stored through ``marketing.service`` so their target index is
the real one), 500 members and 200 coupons, and every order carries a member, a coupon (one
of the 200, picked at random) and meets two live promotions (5 % off all goods, and 满 100 减 10
in another stacking group), so each order claims a coupon use and records two promotion
redemptions. Its halves alternate with the others' around the same pgbench run; the JSON
gains ``full_ratio`` (its orders/s ÷ pgbench tps; target at least 0.2) and
``full_statements_per_order``.

    .venv/bin/python benchmarks/orders.py [--quick] [--partitioned] [--full]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from haina.core.pgtemp import PgCluster, free_port  # noqa: E402

CLIENTS = 16
SKUS = 200
# --full: what every order carries and the promotions table holds
FULL_MEMBERS, FULL_COUPONS, FULL_PROMOTIONS = 500, 200, 10_000
THREADS = 4  # HAINA_THREADS per server worker (docs/operations.md)
console = Console()


def sh(cmd: list[str], env: dict | None = None) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout


def _dsn(cluster: PgCluster) -> list[str]:
    return ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]


def init_pgbench(cluster: PgCluster) -> None:
    sh(["createdb", *_dsn(cluster), "pgbench"])
    sh(["pgbench", "-i", "-q", "-s", str(CLIENTS), *_dsn(cluster), "pgbench"])


def checkpoint(cluster: PgCluster) -> None:
    """Start each timed part from a fresh checkpoint: otherwise one part may pay for the
    other's WAL (a checkpoint's writes and the full-page images that follow it)."""
    sh(["psql", *_dsn(cluster), "-qAt", "-c", "CHECKPOINT", "postgres"])


def run_pgbench(cluster: PgCluster, seconds: int) -> float:
    out = sh(["pgbench", "-c", str(CLIENTS), "-j", "2", "-T", str(seconds), *_dsn(cluster),
              "pgbench"])
    m = re.search(r"tps = ([\d.]+) \((?:without|excluding)", out)
    return float(m.group(1))


def haina_env(url: str, port: int, partitioned: bool = False) -> dict[str, str]:
    env = {**os.environ, "HAINA_DATABASE_URL": url, "HAINA_PORT": str(port),
           "HAINA_THREADS": str(THREADS), "PYTHONPATH": str(ROOT / "src"),
           # the rate limiter runs on every order (the token's bucket, shared by both server
           # processes: one UPSERT per lease of 32 tokens) with a plan high enough never to
           # refuse: its cost is measured, not its limit
           "HAINA_RATE_LIMIT_BACKEND": "database",
           "HAINA_RATE_LIMIT_PLANS": '{"staff": [1000000, 1000000]}'}
    env.pop("HAINA_PARTITION_BY_TENANT", None)
    if partitioned:
        env["HAINA_PARTITION_BY_TENANT"] = "1"
    return env


def setup_haina(cluster: PgCluster, database: str = "haina",
                partitioned: bool = False) -> tuple[str, str]:
    sh(["createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", database])
    url = cluster.url(database)
    env = haina_env(url, 0, partitioned)
    haina = [sys.executable, "-m", "haina.cli"]
    sh([*haina, "migrate"], env)
    sh([*haina, "tenants", "create", "bench-shop"], env)
    token = sh([*haina, "token", "create", "--tenant", "bench-shop", "--scopes", "*"], env).strip()
    return url, token


def start_server(url: str, port: int, partitioned: bool = False) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "haina.api:app_from_env", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--no-access-log",
         "--log-level", "warning"], env=haina_env(url, port, partitioned))
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


def seed_products(port: int, token: str) -> None:
    h = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=h) as c:
        for i in range(SKUS):
            r = c.post("/v1/products", json={
                "sku": f"SKU-{i:04d}", "title": f"Tire {i} 轮胎",
                "price": {"amount": f"{100 + i}.00", "currency": "CNY"}, "stock": 10_000_000})
            r.raise_for_status()


def seed_full(url: str, port: int, token: str) -> tuple[list[str], list[str]]:
    """--full: members and coupons over the API, two live promotions that every order meets
    over the API, and 9,998 more on goods the orders never hold (1,000 other products in 50
    categories) through the services, in one transaction (10,000 API calls would take
    minutes)."""
    import haina.models_registry  # noqa: F401
    from haina.catalog import service as catalog
    from haina.catalog.schemas import CategoryCreate, ProductCreate
    from haina.core.context import Tenant
    from haina.core.db import make_engine, make_sessionmaker, transaction
    from haina.marketing import service as marketing
    from haina.marketing.schemas import PromotionCreate

    h = {"Authorization": f"Bearer {token}"}
    members, codes = [], []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=h, timeout=60) as c:
        for i in range(FULL_MEMBERS):
            r = c.post("/v1/members", json={"name": f"Buyer {i}", "phone": f"139{i:08d}"})
            r.raise_for_status()
            members.append(r.json()["id"])
        for i in range(FULL_COUPONS):
            code = f"BENCH{i:03d}"
            r = c.post("/v1/coupons", json={"code": code, "discount": {
                "type": "fixed", "amount": {"amount": "3.00", "currency": "CNY"}}})
            r.raise_for_status()
            codes.append(code)
        for body in ({"name": "5% off everything", "kind": "percent", "percent": "5",
                      "stacking_group": "storewide"},
                     {"name": "满100减10", "kind": "threshold",
                      "tiers": [{"min_subtotal": "100.00", "off": "10.00"}]}):
            c.post("/v1/promotions", json=body).raise_for_status()
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with engine.connect() as conn:
        tenant_id = conn.execute(text("SELECT id FROM tenants WHERE slug = 'bench-shop'")).scalar()
    tenant = Tenant(id=tenant_id, slug="bench-shop", currency="CNY")
    rnd = random.Random(12)
    kinds = [("percent", {"percent": "10"}),
             ("fixed", {"off": {"amount": "5.00", "currency": "CNY"}}),
             ("threshold", {"tiers": [{"min_subtotal": "200.00", "off": "20.00"}]})]
    with transaction(sessions) as session:
        # goods the orders never hold: 1,000 other products in 50 categories
        cats = [catalog.create_category(session, tenant, CategoryCreate(
            name=f"Other {i}", slug=f"other-{i}")).id for i in range(50)]
        others = [catalog.create_product(session, tenant, ProductCreate.model_validate({
            "sku": f"OTHER-{i:04d}", "title": f"Other goods {i}", "category_id": rnd.choice(cats),
            "price": {"amount": "50.00", "currency": "CNY"}})).id for i in range(1000)]
        for i in range(FULL_PROMOTIONS - 2):
            kind, params = rnd.choice(kinds)
            target = ({"category_ids": [rnd.choice(cats)]} if i % 10 == 0 else
                      {"product_ids": rnd.sample(others, rnd.randint(1, 3))})
            marketing.create_promotion(session, tenant, PromotionCreate.model_validate({
                "name": f"other goods {i}", "kind": kind, **params, **target}))
    engine.dispose()
    return members, codes


# ------------------------------------------------------------ load generator (own process)

Mix = tuple[list[str], list[str]] | None  # --full: (member ids, coupon codes)


def order_body(rnd: random.Random, mix: Mix) -> dict:
    body: dict = {"lines": [{"sku": f"SKU-{rnd.randrange(SKUS):04d}", "quantity": 1}]}
    if mix is not None:
        members, codes = mix
        body["member_id"], body["coupon"] = rnd.choice(members), rnd.choice(codes)
    return body


async def _client(port: int, token: str, deadline: float, latencies: list, errors: list,
                  seed: int, mix: Mix = None) -> None:
    rnd = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < deadline:
        body = json.dumps(order_body(rnd, mix)).encode()
        req = (f"POST /v1/orders HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        t0 = time.perf_counter()
        writer.write(req)
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - t0)
        if b" 201 " not in status_line:
            errors.append(status_line.decode().strip())
    writer.close()


def _load(port: int, token: str, seconds: float, queue: mp.Queue, mix: Mix = None) -> None:
    async def main() -> tuple[list, list, float]:
        latencies: list[float] = []
        errors: list[str] = []
        start = time.perf_counter()
        await asyncio.gather(*(_client(port, token, start + seconds, latencies, errors, i, mix)
                               for i in range(CLIENTS)))
        return latencies, errors, time.perf_counter() - start
    queue.put(asyncio.run(main()))


def server_cpu_seconds(server: subprocess.Popen) -> dict[int, float]:
    """User + system CPU of each of the uvicorn supervisor's children (the workers), by pid,
    from /proc."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    found: dict[int, float] = {}
    for pid in children:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        found[int(pid)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def drive(port: int, token: str, seconds: float,
          mix: Mix = None) -> tuple[list[float], list[str], float]:
    queue: mp.Queue = mp.Queue()
    proc = mp.Process(target=_load, args=(port, token, seconds, queue, mix))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def statements_per_order(url: str, port: int, token: str, n: int,
                         mix: Mix = None) -> tuple[float, dict[str, float]]:
    """Sequential orders between two pg_stat_statements snapshots (all statements, BEGIN and
    COMMIT included, of every session of the haina database): statements per order, and per
    order by statement (its first 100 characters) for those run at least once per 50 orders,
    so that a run whose caches did not answer shows which reads came back."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    by_query = text("SELECT s.query, s.calls FROM pg_stat_statements s "
                    "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database() "
                    "AND s.query NOT ILIKE '%pg_stat_statements%'")
    with engine.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        h = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=h) as c:
            # this one connection reaches one server process, maybe not the one the warm-up's
            # load reached (uvicorn's workers share the listening socket, and one may take
            # every connection): the same orders once before counting, so that each SKU is
            # read before, as in a warm process (without this pass a cold process read each
            # SKU's variant and promotion targets: 6.02 statements an order, not 4.04)
            for counted in (False, True):
                if counted:
                    before = dict(conn.execute(by_query).all())
                rnd = random.Random(7)
                for i in range(n):
                    body = order_body(rnd, mix)
                    body["lines"][0]["sku"] = f"SKU-{i % SKUS:04d}"
                    r = c.post("/v1/orders", json=body)
                    assert r.status_code == 201, r.text
            after = dict(conn.execute(by_query).all())
    engine.dispose()
    calls = {q: c - before.get(q, 0) for q, c in after.items()}
    shown: dict[str, float] = {}
    for query, count in sorted(calls.items(), key=lambda kv: -kv[1]):
        if count * 50 >= n:
            key = " ".join(query.split())[:100]
            shown[key] = round(shown.get(key, 0) + count / n, 2)
    return float(sum(calls.values())) / n, shown


def by_worker(schema: Schema) -> list[float]:
    """CPU seconds of each worker over the timed halves, busiest first (the supervisor's
    other children, such as multiprocessing's resource tracker, spend next to none)."""
    return sorted((round(v, 2) for v in schema.cpu_by_worker.values() if v >= 0.05),
                  reverse=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Schema:
    """One database of the cluster with its own Haina server, and what its load measured."""

    def __init__(self, name: str, partitioned: bool, full: bool = False) -> None:
        self.name, self.partitioned, self.full = name, partitioned, full
        self.mix: Mix = None
        self.server: subprocess.Popen | None = None
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.elapsed = self.cpu = 0.0
        # uvicorn's workers share one listening socket, and one may take most connections
        self.cpu_by_worker: dict[int, float] = {}
        self.halves: list[float] = []
        self.spo = 0.0
        self.spo_by_query: dict[str, float] = {}
        self.timed_statements = 0

    def start(self, cluster: PgCluster) -> None:
        url, self.token = setup_haina(cluster, self.name, self.partitioned)
        self.url = url
        self.port = free_port()
        self.server = start_server(url, self.port, self.partitioned)
        seed_products(self.port, self.token)
        if self.full:
            self.mix = seed_full(url, self.port, self.token)
        # warm (connection pools, prepared statements, the catalogue and promotion caches)
        # before statements are counted, as the timed load runs warm
        drive(self.port, self.token, 3, self.mix)
        self.spo, self.spo_by_query = statements_per_order(url, self.port, self.token, 200,
                                                           self.mix)

    def statements(self) -> int:
        """Statements run in this database so far (pg_stat_statements)."""
        engine = create_engine(self.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            count = conn.execute(text(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d "
                "ON d.oid = s.dbid WHERE d.datname = current_database() "
                "AND s.query NOT ILIKE '%pg_stat_statements%'")).scalar()
        engine.dispose()
        return int(count)

    def half(self, seconds: float) -> None:
        statements0 = self.statements()
        cpu0 = server_cpu_seconds(self.server)
        lat, err, took = drive(self.port, self.token, seconds, self.mix)
        cpu1 = server_cpu_seconds(self.server)
        for pid, seconds in cpu1.items():
            spent = seconds - cpu0.get(pid, 0.0)
            self.cpu += spent
            self.cpu_by_worker[pid] = self.cpu_by_worker.get(pid, 0.0) + spent
        self.timed_statements += self.statements() - statements0
        self.latencies += lat
        self.errors += err
        self.elapsed += took
        self.halves.append(round((len(lat) - len(err)) / took, 1))

    @property
    def orders_per_s(self) -> float:
        return (len(self.latencies) - len(self.errors)) / self.elapsed

    def stop(self) -> None:
        if self.server:
            self.server.terminate()
            self.server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s runs instead of 30 s "
                        "(under a minute in all)")
    parser.add_argument("--partitioned", action="store_true", help="also run the load on "
                        "tenant tables hash-partitioned by tenant_id (partitioned_ratio)")
    parser.add_argument("--full", action="store_true", help="also run orders that carry a "
                        "member and a coupon and meet two live promotions among 10,000 "
                        "(full_ratio)")
    args = parser.parse_args()
    seconds = 10 if args.quick else 30
    cluster = PgCluster(durable=True, extra={"shared_preload_libraries": "pg_stat_statements",
                                             "shared_buffers": "256MB"})
    schemas = [Schema("haina", False)] + ([Schema("haina_part", True)] if args.partitioned
                                          else [])
    if args.full:
        schemas.append(Schema("haina_full", False, full=True))
    try:
        for schema in schemas:
            with console.status(f"migrating, seeding and starting Haina on {schema.name} "
                                "(2 workers)" + (": 10,000 promotions, members, coupons"
                                                 if schema.full else "") + " …"):
                schema.start(cluster)
        with console.status("pgbench -i …"):
            init_pgbench(cluster)
        # plain, partitioned, pgbench, partitioned, plain: drift weighs alike on each
        order = [(1, schemas), (2, list(reversed(schemas)))]
        for half, turn in order:
            for schema in turn:
                with console.status(f"{CLIENTS} clients placing orders on {schema.name} for "
                                    f"{seconds / 2:g} s ({half}/2) …"):
                    checkpoint(cluster)
                    schema.half(seconds / 2)
            if half == 1:
                with console.status(f"a {seconds} s TPC-B run (pgbench) …"):
                    checkpoint(cluster)
                    tps = run_pgbench(cluster, seconds)
    finally:
        for schema in schemas:
            schema.stop()
        cluster.stop()
    plain = schemas[0]
    result = {
        "ratio": round(plain.orders_per_s / tps, 4),
        "orders_per_s": round(plain.orders_per_s, 1),
        "pgbench_tps": round(tps, 1),
        "p50_ms": round(percentile(plain.latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(plain.latencies, 0.99) * 1000, 2),
        "statements_per_order": round(plain.spo, 2),
        # over the timed halves (the count above is a sequential run after the warm-up)
        "timed_statements_per_order": round(plain.timed_statements
                                            / max(len(plain.latencies), 1), 2),
        "errors": len(plain.errors),
        "orders_per_s_halves": plain.halves,
        "server_cpu_ms_per_order": round(plain.cpu / max(len(plain.latencies), 1) * 1000, 3),
        "server_cpu_s_by_worker": by_worker(plain),
        "clients": CLIENTS, "server_workers": 2, "threads_per_worker": THREADS,
        "seconds": seconds, "skus": SKUS,
        "quick": args.quick, "cpu_count": os.cpu_count(),
        # how busy the machine was (1-minute load average at the end): other work on it
        # shares the cores with the server, PostgreSQL and the load generator
        "load_average": round(os.getloadavg()[0], 2),
    }
    keys = ["orders_per_s", "orders_per_s_halves", "pgbench_tps", "ratio", "p50_ms", "p99_ms",
            "statements_per_order", "timed_statements_per_order", "server_cpu_ms_per_order",
            "server_cpu_s_by_worker", "errors"]
    if args.partitioned:
        part = schemas[1]
        result.update({
            "partitioned_ratio": round(part.orders_per_s / tps, 4),
            "partitioned_vs_plain": round(part.orders_per_s / plain.orders_per_s, 3),
            "partitioned_orders_per_s": round(part.orders_per_s, 1),
            "partitioned_orders_per_s_halves": part.halves,
            "partitioned_p99_ms": round(percentile(part.latencies, 0.99) * 1000, 2),
            "partitioned_statements_per_order": round(part.spo, 2),
            "partitioned_errors": len(part.errors),
        })
        keys += ["partitioned_orders_per_s", "partitioned_orders_per_s_halves",
                 "partitioned_ratio", "partitioned_vs_plain", "partitioned_p99_ms",
                 "partitioned_statements_per_order", "partitioned_errors"]
    if args.full:
        full = schemas[-1]
        result.update({
            "full_ratio": round(full.orders_per_s / tps, 4),
            "full_orders_per_s": round(full.orders_per_s, 1),
            "full_orders_per_s_halves": full.halves,
            "full_p99_ms": round(percentile(full.latencies, 0.99) * 1000, 2),
            "full_statements_per_order": round(full.spo, 2),
            "full_timed_statements_per_order": round(full.timed_statements
                                                     / max(len(full.latencies), 1), 2),
            "full_server_cpu_ms_per_order": round(full.cpu / max(len(full.latencies), 1) * 1000, 3),
            "full_server_cpu_s_by_worker": by_worker(full),
            "full_errors": len(full.errors),
            "full_promotions": FULL_PROMOTIONS,
        })
        keys += ["full_orders_per_s", "full_orders_per_s_halves", "full_ratio", "full_p99_ms",
                 "full_statements_per_order", "full_timed_statements_per_order",
                 "full_server_cpu_ms_per_order", "full_server_cpu_s_by_worker", "full_errors"]
    table = Table(title="Place order over HTTP vs pgbench TPC-B (same PostgreSQL cluster)")
    for key in keys:
        table.add_row(key, str(result[key]))
    console.print(table)
    for schema in schemas:
        console.print(f"statements per order on {schema.name}: " + "; ".join(
            f"{calls} × {query}" for query, calls in schema.spo_by_query.items()), soft_wrap=True)
        result.setdefault("statements_by_query", {})[schema.name] = schema.spo_by_query
    for schema in schemas:
        if schema.errors:
            console.print(f"first errors on {schema.name}: {schema.errors[:3]}")
    out = ROOT / "benchmarks" / "results" / "orders.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
