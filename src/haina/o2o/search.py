"""Nearby points and the search that shows, beside goods that need a service, the points that
fit them, nearest first, with their next free slots.

The prefilter is the h3 grid disk covering the radius (``geo.covering_cells``), served by the
(tenant_id, h3 cell) index; distances are then exact on the sphere (haversine), so the radius
and the order are exact too. No PostGIS needed.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import h3
import orjson
from sqlalchemy import String, Text, bindparam, cast, func, literal_column, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnClause

from haina.catalog import service as catalog
from haina.core.context import Tenant
from haina.core.db import Precompiled, utcnow
from haina.o2o import geo, partners
from haina.o2o.bookings import next_free_slots
from haina.o2o.models import FitmentRule, PointDensity, PointService, ServicePoint
from haina.o2o.points import (
    as_number,
    fits,
    location_out,
    product_attributes,
    service_needed,
)
from haina.o2o.schemas import NearbyOut, NearbyPoint, SearchOut, SearchProduct, SlotOut

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


H3_COLUMNS = {5: ServicePoint.h3_r5, 7: ServicePoint.h3_r7, 9: ServicePoint.h3_r9}
#: attribute codes the numeric fitment prefilter names in a JSON path (others: Python only)
_PLAIN_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ACTIVE: ColumnClause[str] = literal_column("'active'", String)
# a point's numeric range for attribute :p<i> holds :v<i>, or it is no numeric range (a list
# of values, or no rule for it): the rows ``fits`` would refuse for a number, left out in SQL
_RANGE_HOLDS = {
    "sqlite": ("CASE WHEN json_array_length(service_points.fitment, :p{i}) = 2 "
               "AND json_type(service_points.fitment, :p{i} || '[0]') IN ('integer', 'real') "
               "AND json_type(service_points.fitment, :p{i} || '[1]') IN ('integer', 'real') "
               "THEN json_extract(service_points.fitment, :p{i} || '[0]') <= :v{i} "
               "AND json_extract(service_points.fitment, :p{i} || '[1]') >= :v{i} ELSE 1 END"),
    "postgresql": (
        "CASE WHEN jsonb_array_length(service_points.fitment -> CAST(:p{i} AS TEXT)) = 2 "
        "AND jsonb_typeof(service_points.fitment -> CAST(:p{i} AS TEXT) -> 0) = 'number' "
        "AND jsonb_typeof(service_points.fitment -> CAST(:p{i} AS TEXT) -> 1) = 'number' "
        "THEN CAST(service_points.fitment -> CAST(:p{i} AS TEXT) ->> 0 AS FLOAT8) "
        "<= CAST(:v{i} AS FLOAT8) AND CAST(service_points.fitment -> CAST(:p{i} AS TEXT) "
        "->> 1 AS FLOAT8) >= CAST(:v{i} AS FLOAT8) ELSE true END"),
}


@functools.cache
def _near_statement(dialect: str, res: int, with_service: bool, numeric: int,
                    cells: int) -> Precompiled:
    """Positions and fitment of the active points in some cells, compiled once per shape:
    on PostgreSQL one statement for any number of cells (``= ANY(:cells)``), elsewhere one
    per number of cells; ``numeric`` range tests of the goods' numbers in SQL."""
    column = H3_COLUMNS[res]
    if dialect == "postgresql":
        in_cells: Any = text(f"service_points.{column.key} = ANY(CAST(:cells AS TEXT[]))")
    else:
        in_cells = column.in_([bindparam(f"c{i}") for i in range(cells)])
    where = [ServicePoint.tenant_id == bindparam("tenant_id"), ServicePoint.status == _ACTIVE,
             in_cells]
    if with_service:
        where.append(select(PointService.id).where(
            PointService.tenant_id == ServicePoint.tenant_id,
            PointService.point_id == ServicePoint.id,
            PointService.code == bindparam("code")).exists())
    template = _RANGE_HOLDS["postgresql" if dialect == "postgresql" else "sqlite"]
    where += [text(template.format(i=i)) for i in range(numeric)]
    # fitment as text: parsed only for the points near enough to be among the nearest
    return Precompiled(select(ServicePoint.id, ServicePoint.lat, ServicePoint.lng,
                              cast(ServicePoint.fitment, Text)).where(*where))


_DENSITY_CELLS = 7  # the query's res-7 cell and its ring
_DENSITY = Precompiled(select(func.sum(PointDensity.points)).where(
    PointDensity.tenant_id == bindparam("tenant_id"),
    PointDensity.id.in_([bindparam(f"d{i}") for i in range(_DENSITY_CELLS)])))


def _per_r7(session: Session, tenant_id: str, lat: float, lng: float) -> float:
    """The merchant's active points per res-7 cell around (lat, lng): its cell and ring."""
    cells = h3.grid_disk(h3.latlng_to_cell(lat, lng, 7), 1)
    if len(cells) != _DENSITY_CELLS:  # near one of h3's 12 pentagons: 6 cells
        cells = (cells * 2)[:_DENSITY_CELLS]
    rows = _DENSITY.rows(session, {"tenant_id": tenant_id,
                                   **{f"d{i}": c for i, c in enumerate(cells)}})
    return float(rows[0][0] or 0) / _DENSITY_CELLS


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
    """The ``limit`` nearest of the merchant's own points (see ``_nearest_in``)."""
    return _nearest_in(session, tenant.id, lat, lng, radius_km, limit, service, attrs)


#: a point found: (km, point id, the tenant that owns it)
Found = tuple[float, str, str]


def _nearest_with_partners(session: Session, tenant: Tenant, lat: float, lng: float,
                           radius_km: float, limit: int, service: str | None,
                           attrs: Mapping[str, Any] | None) -> list[Found]:
    """The ``limit`` nearest among the merchant's own points and its active installer
    partners': one search per tenant (each in its own shard), merged nearest first."""
    found = [(d, i, tenant.id) for d, i in
             _nearest_in(session, tenant.id, lat, lng, radius_km, limit, service, attrs)]
    for installer_id in partners.installers(session, tenant):
        found += [(d, i, installer_id) for d, i in
                  _nearest_in(session, installer_id, lat, lng, radius_km, limit, service,
                              attrs)]
    found.sort()
    return found[:limit]


def _nearest_in(session: Session, tenant_id: str, lat: float, lng: float, radius_km: float,
                limit: int, service: str | None = None,
                attrs: Mapping[str, Any] | None = None) -> list[tuple[float, str]]:
    """The ``limit`` nearest active points within ``radius_km`` of (lat, lng) (WGS-84) that
    offer ``service`` and fit goods with ``attrs`` (when given), as (km, id), nearest first
    (ties by id). The disk grows ring by ring (``geo.RingSearch``); only ids, positions and
    fitment are read."""
    search = geo.RingSearch(lat, lng, radius_km, _per_r7(session, tenant_id, lat, lng), limit)
    dialect = session.get_bind().dialect.name
    numbers = _numbers(attrs)
    base: dict[str, Any] = {"tenant_id": tenant_id, "code": service}
    for i, (code, number) in enumerate(numbers):
        base[f"p{i}"], base[f"v{i}"] = f'$."{code}"' if dialect != "postgresql" else code, number
    seen: set[str] = set()
    best: list[tuple[float, str]] = []  # the nearest so far, at most ``limit``, sorted
    while True:
        res, cells = search.next_cells()
        if not cells:
            break
        params = dict(base)
        if dialect == "postgresql":
            params["cells"] = cells
        else:
            params.update({f"c{i}": c for i, c in enumerate(cells)})
        statement = _near_statement(dialect, res, service is not None, len(numbers),
                                    0 if dialect == "postgresql" else len(cells))
        for point_id, plat, plng, fitment in statement.rows(session, params):
            if point_id in seen:  # a coarser disk reads the finer disk's points again
                continue
            seen.add(point_id)
            d = geo.haversine_km(lat, lng, plat, plng)
            if d > radius_km or (len(best) == limit and (d, point_id) >= best[-1]):
                continue
            if attrs is None or fits(orjson.loads(fitment), attrs):
                bisect.insort(best, (d, point_id))
                del best[limit:]
        if len(best) == limit and best[-1][0] <= search.covered_km():
            break
    return best


def _services(session: Session, tenant_id: str, points: Sequence[ServicePoint],
              ) -> dict[str, dict[str, PointService]]:
    out: dict[str, dict[str, PointService]] = {p.id: {} for p in points}
    if points:
        for s in session.scalars(select(PointService).where(
                PointService.tenant_id == tenant_id,
                PointService.point_id.in_([p.id for p in points]))):
            out[s.point_id][s.code] = s
    return out


def _listed(session: Session, tenant: Tenant, found: Sequence[Found],
            service: str | None, now: dt.datetime) -> list[NearbyPoint]:
    """The points found, as listed: with their services and (for ``service``) their next
    free slots (kept per service: see ``bookings.next_free_slots``), in two queries per
    tenant whose points are listed."""
    owners: dict[str, list[str]] = {}
    for _, i, owner in found:
        owners.setdefault(owner, []).append(i)
    partnership = partners.installers(session, tenant) if set(owners) - {tenant.id} else {}
    points: dict[str, ServicePoint] = {}
    services: dict[str, dict[str, PointService]] = {}
    slots: dict[str, list[SlotOut]] = {}
    for owner, ids in owners.items():
        mine = _points(session, owner, ids)
        points.update(mine)
        services.update(_services(session, owner, list(mine.values())))
        if service is not None:
            slots.update(next_free_slots(session, tenant, [
                (p, services[p.id][service]) for p in mine.values()
                if service in services[p.id]], now, NEXT_SLOTS))
    out = []
    for d, i, owner in found:
        p = points[i]
        out.append(NearbyPoint(id=p.id, name=p.name, address=p.address,
                               location=location_out(p.lat, p.lng), distance_km=round(d, 3),
                               services=sorted(services[i]), next_slots=slots.get(i, []),
                               partnership_id=partnership.get(owner)))
    return out


def _points(session: Session, tenant_id: str, ids: Sequence[str]) -> dict[str, ServicePoint]:
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(select(ServicePoint).where(
        ServicePoint.tenant_id == tenant_id, ServicePoint.id.in_(list(ids))))}


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
                                   attrs)
    has_more = len(found) > limit
    return NearbyOut(data=_listed(session, tenant, found[:limit], service, now),
                     has_more=has_more)


def search(session: Session, tenant: Tenant, q: str, lat: float, lng: float,
           radius_km: float, *, datum: geo.Datum = "wgs84", limit: int = 10,
           now: dt.datetime | None = None) -> SearchOut:
    """Active products matching ``q``; each that needs a service (a fitment rule) comes with
    the nearest points within ``radius_km`` that offer it and fit the product."""
    tenant.require("catalog:read")  # the products are the catalogue's
    now = now or utcnow()
    lat, lng = geo.to_wgs84(lat, lng, datum)
    products = catalog.list_products(session, tenant, q=q, status="active", limit=limit).data
    rules = session.scalars(select(FitmentRule).where(FitmentRule.tenant_id == tenant.id)
                            .order_by(FitmentRule.id)).all()
    listed: dict[tuple[str, str], NearbyPoint] = {}
    out = []
    for product in products:
        attrs = product_attributes(product)
        needed = service_needed(rules, product.category_id, attrs)
        found: list[Found] = []
        if needed is not None:
            found = _nearest_with_partners(session, tenant, lat, lng, radius_km,
                                           POINTS_PER_PRODUCT, needed, attrs)
            new = [f for f in found if (f[1], needed) not in listed]
            for item in _listed(session, tenant, new, needed, now):
                listed[(item.id, needed)] = item
        out.append(SearchProduct(id=product.id, sku=product.sku, title=product.title,
                                 price=product.price, service=needed,
                                 service_points=[listed[(i, str(needed))]
                                                 for _, i, _ in found]))
    return SearchOut(products=out)
