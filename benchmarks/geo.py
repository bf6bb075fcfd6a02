"""Nearby service points: the 10 nearest that fit a given tire within 10 km, with their next
free slot, among 1,000,000 points spread over China's cities — ours (h3 rings + haversine,
``haina.o2o``) on SQLite and on PostgreSQL, beside PostGIS KNN on the same points in the same
run.

Points are drawn around 40 cities (more around the larger ones), each with a rim-diameter range
(fitment), 5 % of them closed, all offering tire fitting with hours and bays. A query stands
near a random city (within 20 km of its centre) with a random rim size from 15 to 19 inches.

* **ours**: ``o2o.nearest`` (the disk grows ring by ring until the ten found are closer than
  what it surely covers; positions and fitment read from the (tenant_id, h3 cell) index) and
  the next free slot of each of the ten (``o2o.next_free_slots``: read from the slots each
  point service keeps, ``point_services.next_free``, loaded with the points' rows);
* **PostGIS**: ``ORDER BY geom <-> q LIMIT 10`` on a ``geography`` column with a GiST index,
  with ``ST_DWithin(geom, q, 10 km)``, the same fitment filter (rim range) and active status,
  then the same next-free-slot step.

Every query is timed in-process, one at a time, after a warm-up (on PostgreSQL ours and
PostGIS take turns query by query, so load from elsewhere weighs on both alike); the
answers of ours and PostGIS are compared (the same ids in the same order, ties aside). ``ratio`` = PostGIS p99 ÷
ours p99 on the slower of the two databases (target ≥ 1; p99 ≤ 10 ms).

Writes benchmarks/results/geo.json: ratio, p50_ms, p99_ms, postgis_p99_ms, points (and the
details).

    .venv/bin/python benchmarks/geo.py [--quick] [--queries N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import haina.models_registry  # noqa: E402,F401
from haina.core.context import Tenant  # noqa: E402
from haina.core.db import Base, make_engine, make_sessionmaker  # noqa: E402
from haina.core.pgtemp import PgCluster  # noqa: E402
from haina.o2o import geo  # noqa: E402
from haina.o2o import service as o2o  # noqa: E402
from haina.o2o.models import PointService, ServicePoint  # noqa: E402

console = Console()
RADIUS_KM = 10.0
K = 10
TENANT = Tenant(id="ten_BENCH", slug="bench")
NOW = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)  # a Monday, 09:00 in Shanghai
HOURS = [{"weekday": d, "open": "09:00", "close": "18:00"} for d in range(1, 8)]
# (lat, lng, weight): China's larger cities, WGS-84 centres
CITIES = [
    (31.23, 121.47, 10), (39.90, 116.41, 10), (23.13, 113.26, 7), (22.54, 114.06, 7),
    (30.57, 104.07, 6), (29.56, 106.55, 6), (30.27, 120.16, 5), (30.59, 114.31, 5),
    (34.34, 108.94, 4), (32.06, 118.80, 4), (39.34, 117.36, 4), (28.23, 112.94, 3),
    (34.75, 113.63, 3), (36.07, 120.38, 3), (41.80, 123.43, 3), (24.48, 118.09, 2),
    (26.08, 119.30, 2), (25.04, 102.71, 2), (22.82, 108.37, 2), (38.04, 114.51, 2),
    (45.80, 126.53, 2), (43.82, 125.32, 2), (36.65, 117.12, 2), (31.82, 117.23, 2),
    (28.68, 115.86, 2), (37.87, 112.55, 2), (26.65, 106.63, 1), (36.06, 103.83, 1),
    (43.83, 87.62, 1), (40.84, 111.75, 1), (38.49, 106.23, 1), (36.62, 101.78, 1),
    (29.65, 91.13, 1), (20.04, 110.35, 1), (31.30, 120.58, 2), (31.49, 120.31, 2),
    (29.87, 121.55, 2), (23.02, 113.75, 2), (22.27, 113.58, 1), (24.80, 113.60, 1),
]


def draw_points(n: int, rnd: random.Random):
    """(id, lat, lng, rim_lo, rim_hi, status) for n points around the cities."""
    weights = [w for _, _, w in CITIES]
    out = []
    for i in range(n):
        lat, lng, _ = rnd.choices(CITIES, weights)[0]
        # within the city: a normal spread of ~15 km (0.135° of latitude)
        plat = lat + rnd.gauss(0, 0.135)
        plng = lng + rnd.gauss(0, 0.135 / math.cos(math.radians(lat)))
        lo = rnd.choice([13, 14, 15, 16, 17])
        out.append((f"sp_{i:026d}", plat, plng, lo, lo + rnd.choice([2, 3, 4, 5]),
                    "closed" if rnd.random() < 0.05 else "active"))
    return out


POINT_COLUMNS = ("id", "tenant_id", "name", "lat", "lng", "h3_r5", "h3_r7", "h3_r9", "lat_band",
                 "timezone", "opening_hours", "exceptions", "fitment", "status",
                 "service_codes", "created_at", "updated_at")
SERVICE_COLUMNS = ("id", "tenant_id", "point_id", "code", "name", "duration_minutes", "capacity",
                   "buffer_before_minutes", "buffer_after_minutes", "price_minor", "currency",
                   "created_at", "next_free", "next_free_until")


def load_ours(engine, points, chunk: int = 50_000) -> None:
    """The points as the API would store them, written in bulk through the driver (the ORM
    would take most of the run to insert a million rows)."""
    Base.metadata.create_all(engine, tables=[ServicePoint.__table__, PointService.__table__,
                                             *[Base.metadata.tables[t] for t in
                                               ("booking_slots", "bookings",
                                                "o2o_point_density")]])
    pg = engine.dialect.name == "postgresql"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + ("+00" if pg else "")
    hours = json.dumps(HOURS)
    # every point has the same hours, bays and no booking: their kept next free slots (what
    # the worker would store) are the same, computed once
    with Session(engine) as session:
        kept, until = o2o.kept_next_free(
            session, TENANT.id, ServicePoint(id="sp_x", timezone="Asia/Shanghai",
                                             opening_hours=HOURS, exceptions=[]),
            PointService(id="svc_x", capacity=2, duration_minutes=60, buffer_before_minutes=0,
                         buffer_after_minutes=0), NOW)
    next_free = json.dumps(kept)
    until_text = until.strftime("%Y-%m-%d %H:%M:%S.%f") + ("+00" if pg else "")
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for start in range(0, len(points), chunk):
            rows, services = [], []
            for pid, lat, lng, lo, hi, status in points[start:start + chunk]:
                cells = geo.cells_of(lat, lng)
                rows.append((pid, TENANT.id, pid, lat, lng, cells[5], cells[7], cells[9],
                             geo.lat_band(lat), "Asia/Shanghai",
                             hours, "[]", json.dumps({"rim_diameter": [lo, hi]}), status,
                             " tire-fitting ", stamp, stamp))
                services.append(("svc" + pid[2:], TENANT.id, pid, "tire-fitting",
                                 "Tire fitting", 60, 2, 0, 0, 8000, "CNY", stamp, next_free,
                                 until_text))
            for table, columns, values in (("service_points", POINT_COLUMNS, rows),
                                           ("point_services", SERVICE_COLUMNS, services)):
                if pg:
                    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in values:
                            copy.write_row(row)
                else:
                    cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                    f"({', '.join('?' * len(columns))})", values)
        # the density a search starts from (create_point keeps it one point at a time)
        cur.execute("INSERT INTO o2o_point_density (tenant_id, id, points) SELECT tenant_id, "
                    "h3_r7, count(*) FROM service_points WHERE status = 'active' "
                    "GROUP BY tenant_id, h3_r7")
        raw.commit()
    finally:
        raw.close()
    if pg:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # the loading commits' WAL flushed first: the throwaway cluster commits
            # asynchronously, and VACUUM neither sets hint bits nor marks a page all-visible
            # for a commit not yet flushed, so index-only scans would visit every table row
            # (and every read check the commit log) until autovacuum came by
            conn.execute(text("CHECKPOINT"))
            conn.execute(text("VACUUM ANALYZE service_points"))
            conn.execute(text("VACUUM ANALYZE point_services"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def load_postgis(engine, points, chunk: int = 20_000) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        conn.execute(text("CREATE TABLE gis_points (id text PRIMARY KEY, "
                          "geom geography(Point, 4326) NOT NULL, rim_lo int NOT NULL, "
                          "rim_hi int NOT NULL, status text NOT NULL)"))
        for start in range(0, len(points), chunk):
            conn.execute(text(
                "INSERT INTO gis_points SELECT id, ST_SetSRID(ST_MakePoint(lng, lat), 4326)"
                "::geography, lo, hi, st FROM unnest(CAST(:ids AS text[]), "
                "CAST(:lats AS float8[]), CAST(:lngs AS float8[]), CAST(:los AS int[]), "
                "CAST(:his AS int[]), CAST(:sts AS text[])) AS t(id, lat, lng, lo, hi, st)"),
                {"ids": [p[0] for p in points[start:start + chunk]],
                 "lats": [p[1] for p in points[start:start + chunk]],
                 "lngs": [p[2] for p in points[start:start + chunk]],
                 "los": [p[3] for p in points[start:start + chunk]],
                 "his": [p[4] for p in points[start:start + chunk]],
                 "sts": [p[5] for p in points[start:start + chunk]]})
        conn.execute(text("CREATE INDEX gis_points_geom ON gis_points USING gist (geom)"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("CHECKPOINT"))  # as for ours (load_ours)
        conn.execute(text("VACUUM ANALYZE gis_points"))


POSTGIS_KNN = text(
    "SELECT id FROM gis_points, "
    "(SELECT ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography AS g) q "
    "WHERE status = 'active' AND rim_lo <= :rim AND rim_hi >= :rim "
    "AND ST_DWithin(geom, q.g, :metres, false) ORDER BY geom <-> q.g LIMIT :k")


def next_slots(session: Session, ids: list[str]) -> dict:
    """The step after either nearest query: the next free slot of each point found (read
    from the kept slots with the columns a listed point shows, one statement)."""
    return o2o.next_free_of(session, TENANT, ids, "tire-fitting", NOW, n=1)


def ours(session: Session, lat: float, lng: float, rim: int) -> list[str]:
    found = o2o.nearest(session, TENANT, lat, lng, RADIUS_KM, K, "tire-fitting",
                        {"rim_diameter": rim})
    ids = [i for _, i in found]
    next_slots(session, ids)
    return ids


def postgis(session: Session, lat: float, lng: float, rim: int) -> list[str]:
    ids = [r[0] for r in session.execute(POSTGIS_KNN, {"lat": lat, "lng": lng, "rim": rim,
                                                       "metres": RADIUS_KM * 1000, "k": K})]
    next_slots(session, ids)
    return ids


def queries(n: int, rnd: random.Random):
    out = []
    for _ in range(n):
        lat, lng, _ = rnd.choice(CITIES)
        d, b = rnd.uniform(0, 20) / 111.2, rnd.uniform(0, 2 * math.pi)
        out.append((lat + d * math.sin(b), lng + d * math.cos(b) / math.cos(math.radians(lat)),
                    rnd.randint(15, 19)))
    return out


def _backend_ns(pid: int | None) -> int:
    """CPU time the PostgreSQL backend serving us has used (ns; Linux schedstat), 0 if not
    readable: with the client's own CPU time, what a query costs on a loaded machine."""
    if pid is None:
        return 0
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def timed(sessions, fns, qs) -> dict[str, tuple[list[float], list[float], list[list[str]]]]:
    """For each of ``fns`` (name → query function): wall time, CPU time (this thread's and,
    on PostgreSQL, its backend's) per query in ms, and the answers. The functions take turns
    query by query, so a change of load on a shared machine weighs on each alike, and which
    goes first alternates from query to query: the second runs the same next-slot step on
    the same ten points just after the first, on warm CPU caches (measured: ~0.2-0.4 ms of
    CPU less at p50 for whichever goes second)."""
    out: dict[str, tuple[list[float], list[float], list[list[str]]]] = {
        name: ([], [], []) for name in fns}
    with sessions() as session:
        pid = (session.execute(text("SELECT pg_backend_pid()")).scalar()
               if session.get_bind().dialect.name == "postgresql" else None)
        for lat, lng, rim in qs[:20]:  # warm-up
            for fn in fns.values():
                fn(session, lat, lng, rim)
        for n, (lat, lng, rim) in enumerate(qs):
            for name, fn in (list(fns.items()) if n % 2 == 0 else list(fns.items())[::-1]):
                times, cpu, answers = out[name]
                c0, b0, t0 = time.thread_time_ns(), _backend_ns(pid), time.perf_counter()
                answers.append(fn(session, lat, lng, rim))
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.thread_time_ns() - c0 + _backend_ns(pid) - b0) / 1e6)
        session.rollback()
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100,000 points")
    ap.add_argument("--points", type=int, default=None)
    ap.add_argument("--queries", type=int, default=500)
    args = ap.parse_args()
    n = args.points or (100_000 if args.quick else 1_000_000)
    rnd = random.Random(42)
    console.print(f"drawing {n:,} points …")
    points = draw_points(n, rnd)
    qs = queries(args.queries, random.Random(7))
    results: dict = {"points": n, "queries": len(qs), "radius_km": RADIUS_KM, "k": K}
    with tempfile.TemporaryDirectory(prefix="haina-geo-") as tmp:
        sqlite = make_engine(f"sqlite:///{tmp}/geo.db")
        t0 = time.perf_counter()
        load_ours(sqlite, points)
        console.print(f"SQLite loaded in {time.perf_counter() - t0:.0f} s")
        s_times, s_cpu, s_answers = timed(make_sessionmaker(sqlite), {"ours": ours}, qs)["ours"]
        sqlite.dispose()
        cluster = PgCluster()
        try:
            admin = create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text("CREATE DATABASE geo"))
            admin.dispose()
            pg = make_engine(cluster.url("geo"))
            t0 = time.perf_counter()
            load_ours(pg, points)
            load_postgis(pg, points)
            console.print(f"PostgreSQL (+ PostGIS) loaded in {time.perf_counter() - t0:.0f} s")
            pg_sessions = make_sessionmaker(pg)
            both = timed(pg_sessions, {"ours": ours, "postgis": postgis}, qs)
            (p_times, p_cpu, p_answers), (g_times, g_cpu, g_answers) = (both["ours"],
                                                                        both["postgis"])
            pg.dispose()
        finally:
            cluster.stop()
    same = sum(1 for a, b, c in zip(s_answers, p_answers, g_answers) if a == b == c)
    # ties at equal distance may order differently in PostGIS: compare as sets then
    same_sets = sum(1 for a, b, c in zip(s_answers, p_answers, g_answers)
                    if set(a) == set(b) == set(c))
    found = statistics.mean(len(a) for a in s_answers)
    rows = {"sqlite": (s_times, s_cpu), "postgresql": (p_times, p_cpu),
            "postgis": (g_times, g_cpu)}
    table = Table(title=f"10 nearest fitting within {RADIUS_KM:g} km + next slot, {n:,} points")
    columns = ("p50_ms", "p99_ms", "mean_ms", "cpu_p50_ms", "cpu_p99_ms")
    for col in ("", *columns):
        table.add_column(col)
    for name, (xs, cs) in rows.items():
        results[name] = {"p50_ms": round(pct(xs, 50), 3), "p99_ms": round(pct(xs, 99), 3),
                         "mean_ms": round(statistics.mean(xs), 3),
                         # CPU per query (client thread + PostgreSQL backend): the figure a
                         # loaded machine does not inflate by waiting
                         "cpu_p50_ms": round(pct(cs, 50), 3), "cpu_p99_ms": round(pct(cs, 99), 3)}
        table.add_row(name, *(str(results[name][k]) for k in columns))
    console.print(table)
    slower = max(("sqlite", "postgresql"), key=lambda k: results[k]["p99_ms"])
    results.update({
        "p50_ms": results[slower]["p50_ms"], "p99_ms": results[slower]["p99_ms"],
        "postgis_p99_ms": results["postgis"]["p99_ms"],
        "ratio": round(results["postgis"]["p99_ms"] / results[slower]["p99_ms"], 3),
        "cpu_ratio": round(results["postgis"]["cpu_p99_ms"]
                           / max(results["sqlite"]["cpu_p99_ms"],
                                 results["postgresql"]["cpu_p99_ms"]), 3),
        "slower_database": slower, "answers_identical": same, "answers_same_sets": same_sets,
        "mean_found": round(found, 2),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    })
    console.print(f"ratio (PostGIS p99 ÷ ours p99 on {slower}) = {results['ratio']}; "
                  f"answers identical {same}/{len(qs)}, same sets {same_sets}/{len(qs)}")
    out = ROOT / "benchmarks" / "results" / "geo.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
