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
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Select, Text, bindparam, cast, select
from sqlalchemy.orm import Session

from haina.catalog import service as catalog
from haina.core.context import Tenant
from haina.core.db import utcnow
from haina.o2o import geo, partners
from haina.o2o.bookings import next_free_slots
from haina.o2o.models import FitmentRule, PointService, ServicePoint
from haina.o2o.points import fits, location_out, product_attributes, service_needed
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


@functools.cache
def _near_statement(res: int, with_service: bool) -> Select[str, float, float, str]:
    """Positions and fitment of the active points in some cells (built once: a search runs
    it a few times)."""
    where = [ServicePoint.tenant_id == bindparam("tenant_id"), ServicePoint.status == "active",
             H3_COLUMNS[res].in_(bindparam("cells", expanding=True))]
    if with_service:
        where.append(select(PointService.id).where(
            PointService.tenant_id == ServicePoint.tenant_id,
            PointService.point_id == ServicePoint.id,
            PointService.code == bindparam("code")).exists())
    # fitment as text: parsed only for the points near enough to be among the nearest
    return select(ServicePoint.id, ServicePoint.lat, ServicePoint.lng,
                  cast(ServicePoint.fitment, Text)).where(*where)


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
    search = geo.RingSearch(lat, lng, radius_km)
    seen: set[str] = set()
    best: list[tuple[float, str]] = []  # the nearest so far, at most ``limit``, sorted
    while True:
        res, cells = search.next_cells()
        if not cells:
            break
        params: dict[str, Any] = {"tenant_id": tenant_id, "cells": cells}
        if service is not None:
            params["code"] = service
        for point_id, plat, plng, fitment in session.execute(
                _near_statement(res, service is not None), params):
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
