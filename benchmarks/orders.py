"""Place-order throughput over HTTP on PostgreSQL, against pgbench (TPC-B) on the same cluster.

Starts a throwaway PostgreSQL 15 cluster (durable settings: fsync and synchronous commit on),
serves Haina with 2 uvicorn workers on one database of it, and drives ``POST /v1/orders`` with
16 concurrent keep-alive clients from a separate process for 15 s, then runs
``pgbench -c 16 -T 30`` on another database (Haina idle), then places orders for 15 s more.
Each of the three timed parts starts from a fresh CHECKPOINT.
The two order halves bracket the pgbench run, so a drift of this machine's speed during the
run (this VM's throughput wanders by ±15 % over minutes) weighs on both sides alike.
Statements per order are counted by pg_stat_statements over a sequential run; the server's
CPU per order is read from /proc over the timed halves.

Writes benchmarks/results/orders.json: ratio (= orders/s ÷ pgbench tps, higher is better),
orders_per_s, pgbench_tps, p50_ms, p99_ms, statements_per_order.

    .venv/bin/python benchmarks/orders.py [--quick]
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


def haina_env(url: str, port: int) -> dict[str, str]:
    return {**os.environ, "HAINA_DATABASE_URL": url, "HAINA_PORT": str(port),
            "HAINA_THREADS": str(THREADS), "PYTHONPATH": str(ROOT / "src")}


def setup_haina(cluster: PgCluster) -> tuple[str, str]:
    sh(["createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "haina"])
    url = cluster.url("haina")
    env = haina_env(url, 0)
    haina = [sys.executable, "-m", "haina.cli"]
    sh([*haina, "migrate"], env)
    sh([*haina, "tenants", "create", "bench-shop"], env)
    token = sh([*haina, "token", "create", "--tenant", "bench-shop", "--scopes", "*"], env).strip()
    return url, token


def start_server(url: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "haina.api:app_from_env", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--no-access-log",
         "--log-level", "warning"], env=haina_env(url, port))
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


# ------------------------------------------------------------ load generator (own process)

async def _client(port: int, token: str, deadline: float, latencies: list, errors: list,
                  seed: int) -> None:
    rnd = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < deadline:
        body = json.dumps({"lines": [{"sku": f"SKU-{rnd.randrange(SKUS):04d}", "quantity": 1}]}).encode()
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


def _load(port: int, token: str, seconds: float, queue: mp.Queue) -> None:
    async def main() -> tuple[list, list, float]:
        latencies: list[float] = []
        errors: list[str] = []
        start = time.perf_counter()
        await asyncio.gather(*(_client(port, token, start + seconds, latencies, errors, i)
                               for i in range(CLIENTS)))
        return latencies, errors, time.perf_counter() - start
    queue.put(asyncio.run(main()))


def server_cpu_seconds(server: subprocess.Popen) -> float:
    """User + system CPU of the uvicorn supervisor's children (the workers), from /proc."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    total = 0.0
    for pid in children:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def drive(port: int, token: str, seconds: float) -> tuple[list[float], list[str], float]:
    queue: mp.Queue = mp.Queue()
    proc = mp.Process(target=_load, args=(port, token, seconds, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def statements_per_order(url: str, port: int, token: str, n: int) -> float:
    """Sequential orders between two pg_stat_statements snapshots (all statements, BEGIN and
    COMMIT included, of every session of the haina database)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    count_sql = text("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s "
                     "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'haina' "
                     "AND s.query NOT ILIKE '%pg_stat_statements%'")
    with engine.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        h = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=h) as c:
            for _ in range(20):  # warm both workers' token caches and connection pools
                c.post("/v1/orders", json={"lines": [{"sku": "SKU-0000", "quantity": 1}]})
            before = conn.execute(count_sql).scalar()
            for i in range(n):
                r = c.post("/v1/orders", json={"lines": [{"sku": f"SKU-{i % SKUS:04d}", "quantity": 1}]})
                assert r.status_code == 201, r.text
            after = conn.execute(count_sql).scalar()
    engine.dispose()
    return float(after - before) / n


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s runs instead of 30 s "
                        "(under a minute in all)")
    args = parser.parse_args()
    seconds = 10 if args.quick else 30
    cluster = PgCluster(durable=True, extra={"shared_preload_libraries": "pg_stat_statements",
                                             "shared_buffers": "256MB"})
    server = None
    try:
        with console.status("migrating, seeding and starting Haina (2 workers) …"):
            url, token = setup_haina(cluster)
            port = free_port()
            server = start_server(url, port)
            seed_products(port, token)
            spo = statements_per_order(url, port, token, 200)
            drive(port, token, 3)  # warm-up
        with console.status("pgbench -i …"):
            init_pgbench(cluster)
        latencies, errors, elapsed, cpu = [], [], 0.0, 0.0
        halves = []
        for half in (1, 2):
            with console.status(f"{CLIENTS} clients placing orders for {seconds / 2:g} s "
                                f"({half}/2) …"):
                checkpoint(cluster)
                cpu0 = server_cpu_seconds(server)
                lat, err, took = drive(port, token, seconds / 2)
                cpu += server_cpu_seconds(server) - cpu0
                latencies += lat
                errors += err
                elapsed += took
                halves.append(round((len(lat) - len(err)) / took, 1))
            if half == 1:
                with console.status(f"a {seconds} s TPC-B run (pgbench) …"):
                    checkpoint(cluster)
                    tps = run_pgbench(cluster, seconds)
    finally:
        if server:
            server.terminate()
            server.wait(10)
        cluster.stop()
    ok = len(latencies) - len(errors)
    orders_per_s = ok / elapsed
    result = {
        "ratio": round(orders_per_s / tps, 4),
        "orders_per_s": round(orders_per_s, 1),
        "pgbench_tps": round(tps, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "statements_per_order": round(spo, 2),
        "errors": len(errors),
        "orders_per_s_halves": halves,
        "server_cpu_ms_per_order": round(cpu / max(len(latencies), 1) * 1000, 3),
        "clients": CLIENTS, "server_workers": 2, "threads_per_worker": THREADS,
        "seconds": seconds, "skus": SKUS,
        "quick": args.quick, "cpu_count": os.cpu_count(),
    }
    table = Table(title="Place order over HTTP vs pgbench TPC-B (same PostgreSQL cluster)")
    for key in ("orders_per_s", "orders_per_s_halves", "pgbench_tps", "ratio", "p50_ms",
                "p99_ms", "statements_per_order", "server_cpu_ms_per_order", "errors"):
        table.add_row(key, str(result[key]))
    console.print(table)
    if errors:
        console.print(f"first errors: {errors[:3]}")
    out = ROOT / "benchmarks" / "results" / "orders.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
