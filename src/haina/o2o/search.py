"""Nearby points and the search that shows, beside goods that need a service, the points that
fit them, nearest first, with their next free slots.

The nearest points are found by one statement (``_nearest_statement``): a box around the
query, sized by the merchant's density there, read band by band through the (tenant_id,
lat_band, lng, lat) index, ordered by the haversine in SQL; the radius search of
``points_within`` uses the h3 grid disk covering the radius (``geo.covering_cells``).
Distances are exact on the sphere, so the radius and the order are exact too. No PostGIS
needed.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import h3
import orjson
from sqlalchemy import and_, bindparam, column, select, text, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from haina.catalog import service as catalog
from haina.core import caches
from haina.core.context import Tenant
from haina.core.db import Precompiled, utcnow
from haina.o2o import geo, partners
from haina.o2o.bookings import kept_slots, next_free_slots
from haina.o2o.models import (
    BAND_SHORT,
    PG_BAND,
    PG_BANDS_PER_DEGREE,
    FitmentRule,
    Partnership,
    PointService,
    ServicePoint,
)
from haina.o2o.points import (
    as_number,
    fits,
    list_rules,
    location_out,
    product_attributes,
    rating_summary,
    service_needed,
)
from haina.o2o.schemas import (
    FitmentRuleOut,
    NearbyOut,
    NearbyPoint,
    SearchOut,
    SearchProduct,
    SlotOut,
)

#: points listed per product in a search
POINTS_PER_PRODUCT = 5
NEXT_SLOTS = 3


def points_within(session: Session, tenant: Tenant, lat: float, lng: float, radius_km: float,
                  service: str | None = None) -> list[tuple[float, ServicePoint]]:
    """The merchant's active points within ``radius_km`` of (lat, lng) (WGS-84) that offer
    ``service`` (if given), as (distance in km, point), nearest first (ties by id)."""
    res, cells = geo.covering_cells(lat, lng, radius_km)
    column = ServicePoint.h3_r7 if res == 7 else ServicePoint.h3_r5
    stmt = select(ServicePoint).where(ServicePoint.tenant_id == tenant.id,
                                      ServicePoint.status == "active", column.in_(cells))
    if service is not None:
        stmt = stmt.where(select(PointService.id).where(
            PointService.tenant_id == ServicePoint.tenant_id,
            PointService.point_id == ServicePoint.id, PointService.code == service).exists())
    found = []
    for p in session.scalars(stmt):
        d = geo.haversine_km(lat, lng, p.lat, p.lng)
        if d <= radius_km:
            found.append((d, p))
    found.sort(key=lambda dp: (dp[0], dp[1].id))
    return found


#: attribute codes the numeric fitment prefilter names in a JSON path (others: Python only)
_PLAIN_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# a point's numeric range for attribute :p<j>_<i> holds :v<j>_<i>, or it is no numeric range
# (a list of values, or no rule for it): the rows ``fits`` would refuse for a number, left
# out in SQL. PostgreSQL compares the jsonb numbers with the goods' number as jsonb (made
# once per statement: a sub-select), not each bound as text read back as float8: ~30 µs
# less per statement at 1,000,000 points. The same order as Python's floats: the stored
# numbers and the goods' are the shortest text of a float, and those sort as the floats do
_RANGE_HOLDS = {
    "sqlite": ("CASE WHEN json_array_length(sp.fitment, :p{n}) = 2 "
               "AND json_type(sp.fitment, :p{n} || '[0]') IN ('integer', 'real') "
               "AND json_type(sp.fitment, :p{n} || '[1]') IN ('integer', 'real') "
               "THEN json_extract(sp.fitment, :p{n} || '[0]') <= :v{n} "
               "AND json_extract(sp.fitment, :p{n} || '[1]') >= :v{n} ELSE 1 END"),
    "postgresql": (
        "CASE WHEN jsonb_array_length(sp.fitment -> CAST(:p{n} AS TEXT)) = 2 "
        "AND jsonb_typeof(sp.fitment -> CAST(:p{n} AS TEXT) -> 0) = 'number' "
        "AND jsonb_typeof(sp.fitment -> CAST(:p{n} AS TEXT) -> 1) = 'number' "
        "THEN sp.fitment -> CAST(:p{n} AS TEXT) -> 0 <= (SELECT to_jsonb(CAST(:v{n} AS FLOAT8))) "
        "AND sp.fitment -> CAST(:p{n} AS TEXT) -> 1 >= (SELECT to_jsonb(CAST(:v{n} AS FLOAT8))) "
        "ELSE true END"),
}
#: per dialect: the band of a latitude (an integer: PostgreSQL's CAST rounds, SQLite's
#: truncates, so SQLite's is shifted to positive first), how the points of the bands are
#: read, min/max of two values, and whether a text holds another. PostgreSQL joins each band
#: to its own longitude range (an index scan per band); SQLite reads the bands with the
#: box's longitudes (joined, its planner builds a Bloom filter over the whole table first)
_DIALECT = {
    "sqlite": {"band": "CAST(({x}) * {per} + 100000 AS INTEGER) - 100000",
               "points": "service_points AS sp",
               "in_points": ("sp.lat_band IN (SELECT b FROM bands) AND sp.lng BETWEEN "
                             ":lng - (SELECT dlng FROM box) AND :lng + (SELECT dlng FROM box)"),
               "least": "min", "greatest": "max",
               "holds": "instr(sp.service_codes, :code) > 0", "fitment": "sp.fitment",
               "ranges": ""},
    "postgresql": {"band": "CAST(floor(({x}) * {per}) AS INTEGER)",
                   "points": (f"ranges JOIN service_points AS sp ON {PG_BAND.format(p='sp.')} "
                              "= ranges.b AND sp.lng BETWEEN ranges.lo AND ranges.hi"),
                   "in_points": "true",
                   "least": "least",
                   "greatest": "greatest",
                   "holds": "strpos(sp.service_codes, CAST(:code AS TEXT)) > 0",
                   "fitment": "sp.fitment",
                   # each band's longitudes computed once, then bound in the band's index
                   # range (inlined, the planner may check them per row instead)
                   "ranges": "MATERIALIZED "},
}
#: the query's res-7 cell and its ring: the density around it
_DENSITY_CELLS = 7
#: how many more points than asked for the first box is expected to hold: status, service
#: and fitment leave some out, and a second statement costs more than a few more rows
DENSITY_MARGIN = 4.0


@functools.cache
def _nearest_statement(dialect: str, with_service: bool,
                       numeric: tuple[int, ...], exact: bool = False) -> Precompiled:
    """The nearest-first statement, one per shape (the service named or not; per goods, how
    many numeric attributes are tested in SQL; none when some goods test none). In one
    statement: the box's half-size in km (``:km``, or from the merchant's density around the
    query: the distance within which ``:want`` / π · cells' area points are expected), the
    latitude bands it spans, each with the longitudes a point of it within the half-size can
    have (the circle's width at the band's nearest latitude), and the ``:limit`` nearest
    active points in them (offering the service, in a numeric range of one of the goods)
    ordered by the haversine's ``a`` (ties by id). Every row carries the box's km (one row
    with no point when none is in it)."""
    d = _DIALECT["postgresql" if dialect == "postgresql" else "sqlite"]
    ranges = _RANGE_HOLDS["postgresql" if dialect == "postgresql" else "sqlite"]
    per = PG_BANDS_PER_DEGREE if dialect == "postgresql" else geo.BANDS_PER_DEGREE
    a = ("power(sin((radians(sp.lat) - CAST(:phi AS FLOAT8)) / 2), 2) + CAST(:cosphi AS FLOAT8)"
         " * cos(radians(sp.lat)) * power(sin(radians(sp.lng - CAST(:lng AS FLOAT8)) / 2), 2)")
    where = ["sp.tenant_id = :tenant_id", d["in_points"],
             "sp.lat BETWEEN :lat - (SELECT dlat FROM box) AND :lat + (SELECT dlat FROM box)",
             "sp.status = 'active'"]
    if with_service:
        where.append(d["holds"])
    if numeric:
        where.append("(" + " OR ".join(
            "(" + " AND ".join(ranges.format(n=f"{j}_{i}") for i in range(count)) + ")"
            for j, count in enumerate(numeric)) + ")")
    cells = ", ".join(f":d{i}" for i in range(_DENSITY_CELLS))
    fitment_out = "near.fitment"
    if dialect == "postgresql":
        fitment_out = "CAST(near.fitment AS TEXT)"  # of the rows answered only
        if exact:
            # one goods whose attributes SQL all tests: its range test is exact for a point
            # whose rules for them are numeric ranges (or absent), so only the others' fitment
            # is answered (NULL: fits)
            listed = " OR ".join(
                f"(near.fitment ? CAST(:p0_{i} AS TEXT) AND NOT coalesce("
                f"jsonb_typeof(near.fitment -> CAST(:p0_{i} AS TEXT)) = 'array' "
                f"AND jsonb_array_length(near.fitment -> CAST(:p0_{i} AS TEXT)) = 2 "
                f"AND jsonb_typeof(near.fitment -> CAST(:p0_{i} AS TEXT) -> 0) = 'number' "
                f"AND jsonb_typeof(near.fitment -> CAST(:p0_{i} AS TEXT) -> 1) = 'number', "
                "false))" for i in range(numeric[0]))
            fitment_out = f"CASE WHEN {listed} THEN CAST(near.fitment AS TEXT) END"
    one = (f"SELECT sp.id, sp.lat, sp.lng, {d['fitment']} AS fitment, {a} AS a "
           f"FROM {d['points']} WHERE {' AND '.join(where)}")
    if dialect == "postgresql":
        # the short rows from the index that holds every column read (no table row
        # visited), the long ones from the plain one: the partial indexes' predicates
        # (few or none: one range scan over all the box's bands and longitudes)
        short = BAND_SHORT.format(p="sp.")
        long = (f"SELECT sp.id, sp.lat, sp.lng, {d['fitment']} AS fitment, {a} AS a "
                "FROM service_points AS sp WHERE " + " AND ".join([
                    where[0], f"{PG_BAND.format(p='sp.')} BETWEEN (SELECT min(b) FROM bands) "
                    "AND (SELECT max(b) FROM bands) AND sp.lng BETWEEN "
                    ":lng - (SELECT dlng FROM box) AND :lng + (SELECT dlng FROM box)",
                    *where[2:]]))
        scan = (f"SELECT * FROM ({one} AND {short} UNION ALL {long} AND NOT ({short}))"
                " AS kinds ORDER BY a, id")
    else:
        scan = f"{one} ORDER BY a, sp.id"
    sql = f"""WITH RECURSIVE box AS (
  SELECT km, km * CAST(:lat_per_km AS FLOAT8) AS dlat, km * CAST(:lng_per_km AS FLOAT8) AS dlng
  FROM (SELECT coalesce(CAST(:km AS FLOAT8), {d['least']}(CAST(:radius AS FLOAT8),
          sqrt(CAST(:want AS FLOAT8) / {d['greatest']}(coalesce(sum(points), 0), 0.5)))) AS km
        FROM o2o_point_density WHERE tenant_id = :tenant_id AND id IN ({cells})) AS density),
bands(b) AS (
  SELECT {d['band'].format(x=':lat - dlat', per=per)} FROM box
  UNION ALL
  SELECT b + 1 FROM bands, box WHERE b < {d['band'].format(x=':lat + dlat', per=per)}),
ranges AS {d['ranges']}(
  SELECT b, :lng - w AS lo, :lng + w AS hi FROM (
    SELECT b, sqrt({d['greatest']}(0, km * km - y * y)) * CAST(:lng_per_km AS FLOAT8) AS w
    FROM (SELECT b, km, {d['greatest']}(0, CAST(b AS FLOAT8) / {per} - :lat,
                                     :lat - CAST(b + 1 AS FLOAT8) / {per})
                        / CAST(:lat_per_km AS FLOAT8) AS y FROM bands, box) AS offsets
  ) AS widths)
SELECT box.km, near.id, near.lat, near.lng, {fitment_out} AS fitment FROM box LEFT JOIN (
  {scan} LIMIT :limit) AS near ON 1 = 1
ORDER BY near.a, near.id"""
    return Precompiled(text(sql).columns(column("km"), column("id"), column("lat"),
                                         column("lng"), column("fitment")))


def _numbers(attrs: Mapping[str, Any] | None) -> list[tuple[str, float]]:
    """The goods' numeric attributes the SQL prefilter tests ranges against (as ``fits``
    reads them: a number, or text that reads as one; not a boolean)."""
    out = []
    for code, value in (attrs or {}).items():
        number = as_number(value)
        if number is not None and _PLAIN_CODE.match(code) and math.isfinite(number):
            out.append((code, number))
    return out


def nearest(session: Session, tenant: Tenant, lat: float, lng: float, radius_km: float,
            limit: int, service: str | None = None,
            attrs: Mapping[str, Any] | None = None) -> list[tuple[float, str]]:
    """The ``limit`` nearest of the merchant's own points (see ``_nearest_each``)."""
    return _nearest_each(session, tenant.id, lat, lng, radius_km, limit, service, [attrs])[0]


#: a point found: (km, point id, the tenant that owns it)
Found = tuple[float, str, str]


def _nearest_with_partners(session: Session, tenant: Tenant, lat: float, lng: float,
                           radius_km: float, limit: int, service: str | None,
                           goods: Sequence[Mapping[str, Any] | None],
                           installers: Mapping[str, str] | None = None) -> list[list[Found]]:
    """For each of ``goods``, the ``limit`` nearest among the merchant's own points and its
    active installer partners' (``installers``: ``partners.installers``, if read already): one
    search per tenant (each in its own shard) for all the goods at once, merged nearest
    first."""
    found: list[list[Found]] = [[(d, i, tenant.id) for d, i in each] for each in _nearest_each(
        session, tenant.id, lat, lng, radius_km, limit, service, goods)]
    if installers is None:
        installers = partners.installers(session, tenant)
    for installer_id in installers:
        theirs = _nearest_each(session, installer_id, lat, lng, radius_km, limit, service, goods)
        for mine, each in zip(found, theirs, strict=True):
            mine += [(d, i, installer_id) for d, i in each]
    for mine in found:
        mine.sort()
        del mine[limit:]
    return found


def _nearest_each(session: Session, tenant_id: str, lat: float, lng: float, radius_km: float,
                  limit: int, service: str | None,
                  goods: Sequence[Mapping[str, Any] | None]) -> list[list[tuple[float, str]]]:
    """For each of ``goods`` (attributes, or None: any point), the ``limit`` nearest active
    points within ``radius_km`` of (lat, lng) (WGS-84) that offer ``service`` (when given)
    and fit the goods, as (km, id), nearest first (ties by id).

    One statement (``_nearest_statement``) reads a box around the query, as large as the
    density says holds ``DENSITY_MARGIN`` × ``limit`` points, and answers the nearest rows in
    it; the goods' answer is final when its last point is within the box's km (every point
    nearer lies in the box) or the box covers the radius. Otherwise the box grows to the
    last point's distance (or further when too few were found), or more rows are read when
    ``fits`` refused some of a full answer; usually one statement does."""
    dialect = session.get_bind().dialect.name
    numbers = [_numbers(attrs) for attrs in goods]
    shape = () if any(not n for n in numbers) else tuple(len(n) for n in numbers)
    # one goods, every attribute of it tested in SQL: on PostgreSQL the statement answers
    # the fitment only of points whose rule for one of them is not a numeric range (None:
    # the point fits; no JSON parsed, no ``fits``)
    exact = (dialect == "postgresql" and len(goods) == 1 and goods[0] is not None
             and len(shape) == 1 and shape[0] == len(goods[0]))
    statement = _nearest_statement(dialect, service is not None, shape, exact)
    centre = h3.latlng_to_cell(lat, lng, 7)
    cells = h3.grid_disk(centre, 1)
    if len(cells) != _DENSITY_CELLS:  # near one of h3's 12 pentagons: 6 cells
        cells = (cells * 2)[:_DENSITY_CELLS]
    lat_per_km, lng_per_km = geo.box_degrees_per_km(lat, lng, radius_km)
    phi = math.radians(lat)
    rows_wanted = limit * len(goods)
    params: dict[str, Any] = {
        "tenant_id": tenant_id, "radius": radius_km, "lat": lat, "lng": lng, "phi": phi,
        "cosphi": math.cos(phi), "lat_per_km": lat_per_km, "lng_per_km": lng_per_km,
        "code": f" {service} ", "km": None,
        "want": DENSITY_MARGIN * limit * h3.cell_area(centre, "km^2") * _DENSITY_CELLS / math.pi,
        **{f"d{i}": c for i, c in enumerate(cells)}}
    for j, each in enumerate(numbers if shape else []):
        for i, (code, number) in enumerate(each):
            params[f"p{j}_{i}"] = code if dialect == "postgresql" else f'$."{code}"'
            params[f"v{j}_{i}"] = number
    while True:
        params["limit"] = rows_wanted
        rows = statement.rows(session, params)
        km = float(rows[0][0])
        seen = [(geo.haversine_km(lat, lng, plat, plng), point_id, fitment)
                for _, point_id, plat, plng, fitment in rows if point_id is not None]
        full = len(seen) == rows_wanted  # more rows in the box than read
        parsed: dict[str, Any] = {}
        answers, grow_to, more_rows = [], km, False
        for attrs in goods:
            found = []
            for distance, point_id, fitment in seen:
                if distance > radius_km:
                    break
                if attrs is not None and not (exact and fitment is None):
                    if point_id not in parsed:
                        parsed[point_id] = orjson.loads(fitment)
                    if not fits(parsed[point_id], attrs):
                        continue
                found.append((distance, point_id))
                if len(found) == limit:
                    break
            answers.append(found)
            if len(found) == limit:
                grow_to = max(grow_to, found[-1][0])  # within its distance: all read
            elif full:
                more_rows = True
            elif km < radius_km:  # the box held too few: grow it as the count says
                grow_to = max(grow_to, km * min(4.0, math.sqrt(
                    DENSITY_MARGIN * limit / max(len(found), 0.5))))
        grow_to = min(grow_to, radius_km)
        if grow_to <= km and not more_rows:
            return [sorted(found) for found in answers]
        params["km"] = max(km, grow_to)
        if more_rows:
            rows_wanted *= 4


def _ids_in(dialect: str) -> Any:
    """``service_points.id`` among ``:ids`` (one statement for any number of them)."""
    if dialect == "postgresql":
        return text("service_points.id = ANY(CAST(:ids AS TEXT[]))")
    return text("service_points.id IN (SELECT value FROM json_each(:ids))")


@functools.cache
def _listing_statement(dialect: str) -> Precompiled:
    """What a listed point shows, with its service's kept next free slots (no full rows)."""
    # the driver's floats as they come (Double's result processor on psycopg wants the
    # cursor's column type, which a Precompiled statement does not ask for)
    lat, lng = (type_coerce(c, NullType()).label(c.key) for c in (ServicePoint.lat,
                                                                  ServicePoint.lng))
    return Precompiled(select(
        ServicePoint.id, ServicePoint.name, ServicePoint.address, lat, lng,
        ServicePoint.timezone, ServicePoint.service_codes,
        PointService.duration_minutes, PointService.capacity, PointService.next_free,
        PointService.next_free_until, ServicePoint.rating_count, ServicePoint.rating_sum,
    ).select_from(ServicePoint).outerjoin(PointService, and_(
        PointService.tenant_id == ServicePoint.tenant_id,
        PointService.point_id == ServicePoint.id, PointService.code == bindparam("code"))
    ).where(ServicePoint.tenant_id == bindparam("tenant_id"), _ids_in(dialect)), typed=True)


def _listing(session: Session, tenant: Tenant, owner_id: str, ids: Sequence[str],
             service: str | None, now: dt.datetime, n: int) -> tuple[dict[str, Any],
                                                                      dict[str, list[SlotOut]]]:
    """The rows of ``owner_id``'s points ``ids`` as listed, and (for ``service``) their next
    ``n`` free slots: kept ones read with the rows in one statement, stale ones computed."""
    if not ids:
        return {}, {}
    dialect = session.get_bind().dialect.name
    rows = {r.id: r for r in _listing_statement(dialect).records(session, {
        "tenant_id": owner_id, "code": service,
        "ids": list(ids) if dialect == "postgresql" else orjson.dumps(list(ids)).decode()})}
    slots: dict[str, list[SlotOut]] = {}
    stale = []
    if service is not None:
        for r in rows.values():
            if r.capacity is None:
                continue  # not offered here
            kept = kept_slots(r.next_free, r.next_free_until, r.duration_minutes, r.capacity,
                              r.timezone, now, n)
            if kept is None:
                stale.append(r.id)
            else:
                slots[r.id] = kept
    if stale:  # computed from the hours and the counters (rare: the worker keeps them)
        points = {p.id: p for p in session.scalars(select(ServicePoint).where(
            ServicePoint.tenant_id == owner_id, ServicePoint.id.in_(stale)))}
        slots.update(next_free_slots(session, tenant, [
            (points[s.point_id], s) for s in session.scalars(select(PointService).where(
                PointService.tenant_id == owner_id, PointService.point_id.in_(stale),
                PointService.code == service))], now, n))
    return rows, slots


def next_free_of(session: Session, tenant: Tenant, point_ids: Sequence[str], service: str,
                 now: dt.datetime | None = None, n: int = NEXT_SLOTS,
                 ) -> dict[str, list[SlotOut]]:
    """The next ``n`` free slots of ``service`` at the merchant's points ``point_ids`` (point
    id → slots; a point that does not offer it is left out): the step after a nearest
    query, one statement where the kept slots are fresh."""
    return _listing(session, tenant, tenant.id, point_ids, service, now or utcnow(), n)[1]


def _listed(session: Session, tenant: Tenant, found: Sequence[Found],
            service: str | None, now: dt.datetime,
            installers: Mapping[str, str] | None = None) -> list[NearbyPoint]:
    """The points found, as listed: with their services and (for ``service``) their next
    free slots (kept per service: see ``bookings.next_free_slots``), in one statement per
    tenant whose points are listed."""
    owners: dict[str, list[str]] = {}
    for _, i, owner in found:
        owners.setdefault(owner, []).append(i)
    partnership = ({} if not set(owners) - {tenant.id} else installers
                   if installers is not None else partners.installers(session, tenant))
    rows: dict[str, Any] = {}
    slots: dict[str, list[SlotOut]] = {}
    for owner, ids in owners.items():
        theirs, their_slots = _listing(session, tenant, owner, ids, service, now, NEXT_SLOTS)
        rows.update(theirs)
        slots.update(their_slots)
    out = []
    for d, i, owner in found:
        p = rows[i]
        out.append(NearbyPoint(id=p.id, name=p.name, address=p.address,
                               location=location_out(p.lat, p.lng), distance_km=round(d, 3),
                               services=sorted(p.service_codes.split()),
                               next_slots=slots.get(i, []),
                               partnership_id=partnership.get(owner),
                               rating=rating_summary(p.rating_count, p.rating_sum)))
    return out


def nearby(session: Session, tenant: Tenant, lat: float, lng: float, radius_km: float, *,
           datum: geo.Datum = "wgs84", service: str | None = None,
           product_id: str | None = None, limit: int = 20,
           now: dt.datetime | None = None) -> NearbyOut:
    """Points near a place (in ``datum``), nearest first; with ``product_id`` only those that
    fit the product; with ``service`` only those offering it, each with its next free slots."""
    now = now or utcnow()
    lat, lng = geo.to_wgs84(lat, lng, datum)
    attrs: dict[str, Any] | None = None
    if product_id is not None:
        attrs = product_attributes(catalog.get_product(session, tenant, product_id))
    found = _nearest_with_partners(session, tenant, lat, lng, radius_km, limit + 1, service,
                                   [attrs])[0]
    has_more = len(found) > limit
    return NearbyOut(data=_listed(session, tenant, found[:limit], service, now),
                     has_more=has_more)


# what every search reads of the merchant's own setup: its fitment rules and its active
# installers, kept in the process as the catalogue's briefs are (core.caches: PostgreSQL with
# the API's listener; any change of a rule or a partnership forgets them everywhere)
caches.watch("o2o_setup", (FitmentRule, Partnership))


def _setup(session: Session,
           tenant: Tenant) -> tuple[tuple[FitmentRuleOut, ...], Mapping[str, str]]:
    """The merchant's fitment rules (oldest first) and active installers (tenant id →
    partnership id; kept: never change it)."""
    kept = caches.lookup(session, "o2o_setup", tenant.id)
    if kept is not None and "setup" in kept:
        return kept["setup"]
    since = caches.generation(session, "o2o_setup", tenant.id)
    setup = (tuple(list_rules(session, tenant).data),
             partners.installers(session, tenant))
    caches.store(session, "o2o_setup", tenant.id, since, [("setup", setup)])
    return setup


def search(session: Session, tenant: Tenant, q: str, lat: float, lng: float,
           radius_km: float, *, datum: geo.Datum = "wgs84", limit: int = 10,
           now: dt.datetime | None = None) -> SearchOut:
    """Active products matching ``q``; each that needs a service (a fitment rule) comes with
    the nearest points within ``radius_km`` that offer it and fit the product. The products
    that need one service are searched for together (one nearest query, one listing)."""
    tenant.require("catalog:read")  # the products are the catalogue's
    now = now or utcnow()
    lat, lng = geo.to_wgs84(lat, lng, datum)
    products = catalog.product_briefs(session, tenant, q=q, status="active", limit=limit)
    rules, installers = _setup(session, tenant) if products else ((), {})
    needs: dict[str, list[tuple[str, dict[str, Any]]]] = {}  # service → (product id, attrs)
    needed: dict[str, str | None] = {}
    for product in products:
        attrs = product.attributes  # the first variant's over the product's, as fitment reads
        needed[product.id] = service_needed(rules, product.category_id, attrs)
        if needed[product.id] is not None:
            needs.setdefault(str(needed[product.id]), []).append((product.id, attrs))
    points: dict[str, list[NearbyPoint]] = {}
    for code, goods in needs.items():
        found = _nearest_with_partners(session, tenant, lat, lng, radius_km,
                                       POINTS_PER_PRODUCT, code, [a for _, a in goods],
                                       installers)
        union = list({f[1]: f for each in found for f in each}.values())
        listed = {item.id: item for item in _listed(session, tenant, union, code, now,
                                                    installers)}
        for (product_id, _), each in zip(goods, found, strict=True):
            points[product_id] = [listed[i] for _, i, _ in each]
    return SearchOut(products=[
        SearchProduct(id=p.id, sku=p.sku, title=p.title, price=p.price,
                      service=needed[p.id], service_points=points.get(p.id, []))
        for p in products])
