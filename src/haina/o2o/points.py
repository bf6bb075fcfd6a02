"""Service points, the services they offer, fitment rules, and which goods a point fits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from haina.catalog import service as catalog
from haina.catalog.schemas import ProductOut
from haina.core.context import Tenant
from haina.core.db import add_unique, is_postgres, tenant_row, utcnow
from haina.core.errors import Conflict, Invalid, NotFound
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.money import Money
from haina.core.pagination import Page, paginate
from haina.o2o import geo, resources
from haina.o2o.models import (
    Booking,
    FitmentRule,
    PointDensity,
    PointService,
    ServicePoint,
    ServiceResource,
)
from haina.o2o.schemas import (
    FitmentRuleIn,
    FitmentRuleOut,
    Location,
    LocationIn,
    RatingSummary,
    ResourceIn,
    ResourceOut,
    ResourceUpdate,
    ServiceIn,
    ServiceOut,
    ServicePointCreate,
    ServicePointOut,
    ServiceUpdate,
)


def _service_out(s: PointService, codes: Mapping[str, str]) -> ServiceOut:
    return ServiceOut(id=s.id, code=s.code, name=s.name, duration_minutes=s.duration_minutes,
                      capacity=s.capacity, buffer_before_minutes=s.buffer_before_minutes,
                      buffer_after_minutes=s.buffer_after_minutes,
                      price=Money.of(s.price_minor, s.currency),
                      resource=codes.get(s.resource_id) if s.resource_id else None)


def rating_summary(count: int, total: int) -> RatingSummary:
    """A point's ratings as answered: the mean to one decimal, rounded half-even."""
    average = (Decimal(total) / Decimal(count)).quantize(Decimal("0.1"), ROUND_HALF_EVEN) \
        if count else None
    return RatingSummary(average=average, count=count)


def location_out(lat: float, lng: float) -> Location:
    return Location(lat=round(lat, 7), lng=round(lng, 7), datum="wgs84")


def point_out(p: ServicePoint, services: Sequence[PointService],
              shared: Sequence[ServiceResource] = ()) -> ServicePointOut:
    glat, glng = geo.wgs84_to_gcj02(p.lat, p.lng)
    codes = {r.id: r.code for r in shared}
    return ServicePointOut(
        id=p.id, name=p.name, address=p.address, phone=p.phone, province=p.province,
        city=p.city, district=p.district, postal_code=p.postal_code, country=p.country,
        rating=rating_summary(p.rating_count, p.rating_sum),
        location=location_out(p.lat, p.lng),
        location_gcj02=Location(lat=round(glat, 7), lng=round(glng, 7), datum="gcj02"),
        h3_cells={"5": p.h3_r5, "7": p.h3_r7, "9": p.h3_r9}, timezone=p.timezone,
        opening_hours=p.opening_hours, exceptions=p.exceptions,
        services=[_service_out(s, codes) for s in services],
        resources=[ResourceOut(id=r.id, code=r.code, name=r.name, capacity=r.capacity,
                               services=sorted(s.code for s in services if s.resource_id == r.id))
                   for r in shared],
        fitment=p.fitment, status=p.status, created_at=p.created_at, updated_at=p.updated_at)


def _services_of(session: Session, tenant: Tenant,
                 point_ids: Sequence[str]) -> dict[str, list[PointService]]:
    out: dict[str, list[PointService]] = {i: [] for i in point_ids}
    for s in session.scalars(select(PointService).where(
            PointService.tenant_id == tenant.id, PointService.point_id.in_(list(point_ids)))
            .order_by(PointService.code)):
        out[s.point_id].append(s)
    return out


def _resources_of(session: Session, tenant: Tenant,
                  point_ids: Sequence[str]) -> dict[str, list[ServiceResource]]:
    out: dict[str, list[ServiceResource]] = {i: [] for i in point_ids}
    for r in session.scalars(select(ServiceResource).where(
            ServiceResource.tenant_id == tenant.id,
            ServiceResource.point_id.in_(list(point_ids))).order_by(ServiceResource.code)):
        out[r.point_id].append(r)
    return out


def _count_in_cell(session: Session, tenant_id: str, cell: str, change: int) -> None:
    """Keep the merchant's number of active points in a res-7 cell (``PointDensity``)."""
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    stmt = insert(PointDensity).values(tenant_id=tenant_id, id=cell, points=change)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["tenant_id", "id"],
        set_={"points": PointDensity.points + stmt.excluded.points}))


def _place(row: ServicePoint, location: LocationIn) -> None:
    row.lat, row.lng = geo.to_wgs84(location.lat, location.lng, location.datum)
    cells = geo.cells_of(row.lat, row.lng)
    row.h3_r5, row.h3_r7, row.h3_r9 = cells[5], cells[7], cells[9]
    row.lat_band = geo.lat_band(row.lat)


def service_codes_text(codes: Sequence[str]) -> str:
    """A point's ``service_codes``: each code followed by a space, after a leading one (a
    search looks for " code ")."""
    return " " + "".join(f"{code} " for code in sorted(codes))


def _new_service(tenant: Tenant, point_id: str, data: ServiceIn,
                 shared: Mapping[str, ServiceResource]) -> PointService:
    if data.resource is not None and data.resource not in shared:
        raise _no_resource(point_id, data.resource)
    if data.price.currency != tenant.currency:
        raise Invalid(f"prices of this merchant are in {tenant.currency}, not "
                      f"{data.price.currency}", slug="currency-mismatch", currency=tenant.currency)
    return PointService(id=new_id("point_service"), tenant_id=tenant.id, point_id=point_id,
                        code=data.code, name=data.name or data.code,
                        duration_minutes=data.duration_minutes, capacity=data.capacity,
                        buffer_before_minutes=data.buffer_before_minutes,
                        buffer_after_minutes=data.buffer_after_minutes,
                        price_minor=data.price.minor, currency=data.price.currency,
                        created_at=utcnow(),
                        resource_id=shared[data.resource].id if data.resource else None)


def _no_resource(point_id: str, code: str) -> NotFound:
    return NotFound(f"service point {point_id!r} has no resource {code!r}",
                    slug="resource-not-found")


def _new_resource(tenant: Tenant, point_id: str, data: ResourceIn) -> ServiceResource:
    now = utcnow()
    return ServiceResource(id=new_id("service_resource"), tenant_id=tenant.id,
                           point_id=point_id, code=data.code, name=data.name or data.code,
                           capacity=data.capacity, created_at=now, updated_at=now)


def _resource_event(session: Session, tenant: Tenant, r: ServiceResource, type_: str) -> None:
    services = session.scalars(select(PointService.code).where(
        PointService.tenant_id == tenant.id, PointService.resource_id == r.id)
        .order_by(PointService.code)).all()
    record_event(session, tenant.id, type_, r.id,
                 {"service_point_id": r.point_id, "code": r.code, "capacity": r.capacity,
                  "services": list(services)})


def _exceptions(data: Sequence[Any]) -> list[dict[str, str | None]]:
    return [{"date": e.date.isoformat(), "open": e.open, "close": e.close, "note": e.note}
            for e in sorted(data, key=lambda e: (e.date, e.open or ""))]


def _hours(data: Sequence[Any]) -> list[dict[str, Any]]:
    return [h.model_dump() for h in sorted(data, key=lambda h: (h.weekday, h.open))]


def create_point(session: Session, tenant: Tenant, data: ServicePointCreate) -> ServicePointOut:
    now = utcnow()
    row = ServicePoint(id=new_id("service_point"), tenant_id=tenant.id, name=data.name,
                       address=data.address, phone=data.phone, province=data.province,
                       city=data.city, district=data.district, postal_code=data.postal_code,
                       country=data.country, rating_count=0, rating_sum=0,
                       timezone=data.timezone,
                       opening_hours=_hours(data.opening_hours),
                       exceptions=_exceptions(data.exceptions), fitment=data.fitment,
                       status="active", created_at=now, updated_at=now,
                       service_codes=service_codes_text([s.code for s in data.services]))
    _place(row, data.location)
    shared = {r.code: _new_resource(tenant, row.id, r) for r in data.resources}
    services = [_new_service(tenant, row.id, s, shared) for s in data.services]
    session.add(row)
    session.flush()
    session.add_all(shared.values())
    session.flush()
    session.add_all(services)
    session.flush()
    _count_in_cell(session, tenant.id, row.h3_r7, 1)
    record_event(session, tenant.id, "service_point.created", row.id,
                 {"name": row.name, "services": [s.code for s in services]})
    for r in shared.values():
        _resource_event(session, tenant, r, "service_resource.created")
    return point_out(row, services, sorted(shared.values(), key=lambda r: r.code))


def point_row(session: Session, tenant: Tenant, point_id: str, lock: bool = False) -> ServicePoint:
    return tenant_row(session, tenant.id, ServicePoint, point_id, "service point", lock=lock)


def get_point(session: Session, tenant: Tenant, point_id: str) -> ServicePointOut:
    row = point_row(session, tenant, point_id)
    return point_out(row, _services_of(session, tenant, [row.id])[row.id],
                     _resources_of(session, tenant, [row.id])[row.id])


def list_points(session: Session, tenant: Tenant, *, status: str | None = None,
                limit: int = 50, cursor: str | None = None) -> Page[ServicePointOut]:
    stmt = select(ServicePoint).where(ServicePoint.tenant_id == tenant.id)
    if status:
        stmt = stmt.where(ServicePoint.status == status)
    page = paginate(session, stmt, ServicePoint.id, limit=limit, cursor=cursor,
                    convert=lambda p: p, kind="service_point")
    ids = [p.id for p in page.data]
    services, shared = _services_of(session, tenant, ids), _resources_of(session, tenant, ids)
    return Page[ServicePointOut](data=[point_out(p, services[p.id], shared[p.id])
                                       for p in page.data],
                                 has_more=page.has_more, next_cursor=page.next_cursor)


def update_point(session: Session, tenant: Tenant, point_id: str, data: Any) -> ServicePointOut:
    """Change a point. Bookings already made keep their slots (new hours apply to new ones)."""
    row = point_row(session, tenant, point_id, lock=True)
    changes = data.model_dump(exclude_unset=True)
    counted = (row.h3_r7, row.status)
    if data.location is not None:
        _place(row, data.location)
    if data.opening_hours is not None:
        row.opening_hours = _hours(data.opening_hours)
    if data.exceptions is not None:
        row.exceptions = _exceptions(data.exceptions)
    for name in ("name", "address", "phone", "province", "city", "district", "postal_code",
                 "country", "timezone", "fitment", "status"):
        if name in changes:
            setattr(row, name, changes[name])
    row.updated_at = utcnow()
    if counted != (row.h3_r7, row.status):  # moved, closed or reopened: the density follows
        if counted[1] == "active":
            _count_in_cell(session, tenant.id, counted[0], -1)
        if row.status == "active":
            _count_in_cell(session, tenant.id, row.h3_r7, 1)
    # hours, exceptions, time zone or status may move the next free slots: stale until
    # recomputed (by the next claim or the worker; reads compute them meanwhile)
    session.execute(update(PointService).where(
        PointService.tenant_id == tenant.id, PointService.point_id == row.id)
        .values(next_free_until=None).execution_options(synchronize_session="fetch"))
    session.flush()
    record_event(session, tenant.id, "service_point.updated", row.id,
                 {"changed": sorted(changes)})
    return get_point(session, tenant, row.id)


def add_service(session: Session, tenant: Tenant, point_id: str, data: ServiceIn) -> ServicePointOut:
    point = point_row(session, tenant, point_id)
    shared = {r.code: r for r in _resources_of(session, tenant, [point.id])[point.id]}
    add_unique(session, _new_service(tenant, point.id, data, shared),
               lambda: Conflict(f"this point offers {data.code!r} already",
                                slug="service-exists"))
    # appended in SQL: two services added at once both stay (the row lock orders them)
    session.execute(update(ServicePoint).where(
        ServicePoint.tenant_id == tenant.id, ServicePoint.id == point.id)
        .values(service_codes=ServicePoint.service_codes + f"{data.code} ")
        .execution_options(synchronize_session="fetch"))
    session.flush()
    return get_point(session, tenant, point.id)


def service_row(session: Session, tenant: Tenant, point_id: str, code: str) -> PointService:
    row = session.scalar(select(PointService).where(
        PointService.tenant_id == tenant.id, PointService.point_id == point_id,
        PointService.code == code))
    if row is None:
        raise NotFound(f"service point {point_id!r} offers no service {code!r}",
                       slug="service-not-found")
    return row


def update_service(session: Session, tenant: Tenant, point_id: str, code: str,
                   data: ServiceUpdate) -> ServicePointOut:
    """Change a service's name, capacity (slots already taken beyond a lower capacity keep
    their bookings; no new ones are taken there) or price (new bookings only)."""
    point_row(session, tenant, point_id)
    row = service_row(session, tenant, point_id, code)
    if data.name is not None:
        row.name = data.name
    if data.capacity is not None:
        row.capacity = data.capacity
        row.next_free_until = None  # places left change: stale until recomputed
    if data.price is not None:
        if data.price.currency != tenant.currency:
            raise Invalid(f"prices of this merchant are in {tenant.currency}",
                          slug="currency-mismatch", currency=tenant.currency)
        row.price_minor = data.price.minor
    if "resource" in data.model_fields_set:
        _put_on_resource(session, tenant, row, data.resource)
    session.flush()
    return get_point(session, tenant, point_id)


#: the states of a booking that hold a place (``bookings.HOLDING``)
_HOLDING = ("held", "confirmed", "checked_in", "completed")


def _put_on_resource(session: Session, tenant: Tenant, service: PointService,
                     code: str | None) -> None:
    """Put a service on one of its point's resources (or, ``None``, off): the places its
    bookings not yet over hold move with it, taken even past the resource's capacity (as
    a lower capacity keeps the bookings made), and the next free slots of every service
    concerned go stale."""
    shared = {r.code: r for r in _resources_of(session, tenant, [service.point_id])
              [service.point_id]}
    if code is not None and code not in shared:
        raise _no_resource(service.point_id, code)
    target = shared[code].id if code is not None else None
    if target == service.resource_id:
        return
    session.execute(select(PointService.id).where(
        PointService.tenant_id == tenant.id, PointService.id == service.id)
        .with_for_update()).all()
    now = utcnow()
    starts = session.scalars(select(Booking.start_at).where(
        Booking.tenant_id == tenant.id, Booking.service_id == service.id,
        Booking.status.in_(_HOLDING), Booking.end_at > now - dt.timedelta(hours=5))
        .order_by(Booking.start_at)).all()
    before = service.resource_id
    for start in starts:  # off the old resource
        resources.change(session, tenant.id, service, now, give=start)
    service.resource_id = target
    for start in starts:
        resources.change(session, tenant.id, service, now, take=start, check=False)
    changed = [r for r in shared.values() if r.id in (before, target)]
    _stale(session, tenant, [service.id], [r.id for r in changed])
    for r in changed:
        _resource_event(session, tenant, r, "service_resource.updated")


def _stale(session: Session, tenant: Tenant, service_ids: Sequence[str],
           resource_ids: Sequence[str]) -> None:
    """Mark the kept next free slots of these services, and of those on these resources,
    stale (recomputed by the next claim or the worker; reads compute them meanwhile)."""
    session.execute(update(PointService).where(
        PointService.tenant_id == tenant.id,
        PointService.id.in_(list(service_ids)) | PointService.resource_id.in_(
            list(resource_ids))).values(next_free_until=None)
        .execution_options(synchronize_session="fetch"))


def add_resource(session: Session, tenant: Tenant, point_id: str,
                 data: ResourceIn) -> ServicePointOut:
    """A resource services of the point can share (put them on it with ``resource``)."""
    point = point_row(session, tenant, point_id)
    row = _new_resource(tenant, point.id, data)
    add_unique(session, row, lambda: Conflict(f"this point has a resource {data.code!r} "
                                              "already", slug="resource-exists"))
    session.flush()
    _resource_event(session, tenant, row, "service_resource.created")
    return get_point(session, tenant, point.id)


def update_resource(session: Session, tenant: Tenant, point_id: str, code: str,
                    data: ResourceUpdate) -> ServicePointOut:
    """Rename a resource or change its capacity (places already taken beyond a lower one
    keep their bookings; no new ones are taken there)."""
    point_row(session, tenant, point_id)
    row = session.scalar(select(ServiceResource).where(
        ServiceResource.tenant_id == tenant.id, ServiceResource.point_id == point_id,
        ServiceResource.code == code).with_for_update())
    if row is None:
        raise _no_resource(point_id, code)
    if data.name is not None:
        row.name = data.name
    if data.capacity is not None and data.capacity != row.capacity:
        row.capacity = data.capacity
        _stale(session, tenant, [], [row.id])
    row.updated_at = utcnow()
    session.flush()
    _resource_event(session, tenant, row, "service_resource.updated")
    return get_point(session, tenant, point_id)


# ---------------------------------------------------------------- fitment

def _rule_out(r: FitmentRule) -> FitmentRuleOut:
    return FitmentRuleOut(id=r.id, service=r.service_code, category_id=r.category_id,
                          attribute=r.attribute, created_at=r.created_at)


def create_rule(session: Session, tenant: Tenant, data: FitmentRuleIn) -> FitmentRuleOut:
    if data.category_id is not None:
        catalog.check_category(session, tenant, data.category_id)
    row = FitmentRule(id=new_id("fitment_rule"), tenant_id=tenant.id, service_code=data.service,
                      category_id=data.category_id, attribute=data.attribute,
                      created_at=utcnow())
    session.add(row)
    session.flush()
    record_event(session, tenant.id, "fitment_rule.created", row.id,
                 {"service": row.service_code, "category_id": row.category_id,
                  "attribute": row.attribute})
    return _rule_out(row)


def list_rules(session: Session, tenant: Tenant) -> Page[FitmentRuleOut]:
    """All of the merchant's rules, oldest first (a short list: one page)."""
    rows = session.scalars(select(FitmentRule).where(FitmentRule.tenant_id == tenant.id)
                           .order_by(FitmentRule.id)).all()
    return Page[FitmentRuleOut](data=[_rule_out(r) for r in rows], has_more=False)


def delete_rule(session: Session, tenant: Tenant, rule_id: str) -> None:
    row = tenant_row(session, tenant.id, FitmentRule, rule_id, "fitment rule")
    session.delete(row)
    session.flush()
    record_event(session, tenant.id, "fitment_rule.deleted", rule_id, {})


def product_attributes(product: ProductOut) -> dict[str, Any]:
    """What fitment reads of a product: its attributes, its first variant's over them."""
    attrs = dict(product.attributes)
    if product.variants:
        attrs.update(product.variants[0].attributes)
    return attrs


def service_needed(rules: Sequence[FitmentRule | FitmentRuleOut], category_id: str | None,
                   attrs: Mapping[str, Any]) -> str | None:
    """The service the first matching rule (oldest first) says the goods need, or None."""
    for r in rules:
        if (r.category_id is not None and r.category_id == category_id) or (
                r.attribute is not None and r.attribute in attrs):
            return r.service if isinstance(r, FitmentRuleOut) else r.service_code
    return None


def as_number(value: Any) -> float | None:
    """A goods attribute as the number fitment ranges test (None: not a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def fits(fitment: Mapping[str, Sequence[Any]], attrs: Mapping[str, Any]) -> bool:
    """Whether a point whose fitment is ``fitment`` can serve goods with ``attrs``: every
    range holds the goods' number, every list holds the goods' value. An attribute the goods
    do not have restricts nothing."""
    for code, rule in fitment.items():
        if code not in attrs:
            continue
        value = attrs[code]
        if len(rule) == 2 and all(isinstance(v, int | float) and not isinstance(v, bool)
                                  for v in rule):
            number = as_number(value)
            if number is None or not rule[0] <= number <= rule[1]:
                return False
        elif str(value) not in {str(v) for v in rule}:
            return False
    return True
