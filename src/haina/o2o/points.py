"""Service points, the services they offer, fitment rules, and which goods a point fits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from haina.catalog import service as catalog
from haina.catalog.schemas import ProductOut
from haina.core.context import Tenant
from haina.core.db import add_unique, tenant_row, utcnow
from haina.core.errors import Conflict, Invalid, NotFound
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.money import Money
from haina.core.pagination import Page, paginate
from haina.o2o import geo
from haina.o2o.models import FitmentRule, PointService, ServicePoint
from haina.o2o.schemas import (
    FitmentRuleIn,
    FitmentRuleOut,
    Location,
    LocationIn,
    ServiceIn,
    ServiceOut,
    ServicePointCreate,
    ServicePointOut,
    ServiceUpdate,
)


def _service_out(s: PointService) -> ServiceOut:
    return ServiceOut(id=s.id, code=s.code, name=s.name, duration_minutes=s.duration_minutes,
                      capacity=s.capacity, buffer_before_minutes=s.buffer_before_minutes,
                      buffer_after_minutes=s.buffer_after_minutes,
                      price=Money.of(s.price_minor, s.currency))


def location_out(lat: float, lng: float) -> Location:
    return Location(lat=round(lat, 7), lng=round(lng, 7), datum="wgs84")


def point_out(p: ServicePoint, services: Sequence[PointService]) -> ServicePointOut:
    glat, glng = geo.wgs84_to_gcj02(p.lat, p.lng)
    return ServicePointOut(
        id=p.id, name=p.name, address=p.address, phone=p.phone, location=location_out(p.lat, p.lng),
        location_gcj02=Location(lat=round(glat, 7), lng=round(glng, 7), datum="gcj02"),
        h3_cells={"5": p.h3_r5, "7": p.h3_r7, "9": p.h3_r9}, timezone=p.timezone,
        opening_hours=p.opening_hours, exceptions=p.exceptions,
        services=[_service_out(s) for s in services], fitment=p.fitment, status=p.status,
        created_at=p.created_at, updated_at=p.updated_at)


def _services_of(session: Session, tenant: Tenant,
                 point_ids: Sequence[str]) -> dict[str, list[PointService]]:
    out: dict[str, list[PointService]] = {i: [] for i in point_ids}
    for s in session.scalars(select(PointService).where(
            PointService.tenant_id == tenant.id, PointService.point_id.in_(list(point_ids)))
            .order_by(PointService.code)):
        out[s.point_id].append(s)
    return out


def _place(row: ServicePoint, location: LocationIn) -> None:
    row.lat, row.lng = geo.to_wgs84(location.lat, location.lng, location.datum)
    cells = geo.cells_of(row.lat, row.lng)
    row.h3_r5, row.h3_r7, row.h3_r9 = cells[5], cells[7], cells[9]


def _new_service(tenant: Tenant, point_id: str, data: ServiceIn) -> PointService:
    if data.price.currency != tenant.currency:
        raise Invalid(f"prices of this merchant are in {tenant.currency}, not "
                      f"{data.price.currency}", slug="currency-mismatch", currency=tenant.currency)
    return PointService(id=new_id("point_service"), tenant_id=tenant.id, point_id=point_id,
                        code=data.code, name=data.name or data.code,
                        duration_minutes=data.duration_minutes, capacity=data.capacity,
                        buffer_before_minutes=data.buffer_before_minutes,
                        buffer_after_minutes=data.buffer_after_minutes,
                        price_minor=data.price.minor, currency=data.price.currency,
                        created_at=utcnow())


def _exceptions(data: Sequence[Any]) -> list[dict[str, str | None]]:
    return [{"date": e.date.isoformat(), "open": e.open, "close": e.close, "note": e.note}
            for e in sorted(data, key=lambda e: (e.date, e.open or ""))]


def _hours(data: Sequence[Any]) -> list[dict[str, Any]]:
    return [h.model_dump() for h in sorted(data, key=lambda h: (h.weekday, h.open))]


def create_point(session: Session, tenant: Tenant, data: ServicePointCreate) -> ServicePointOut:
    now = utcnow()
    row = ServicePoint(id=new_id("service_point"), tenant_id=tenant.id, name=data.name,
                       address=data.address, phone=data.phone, timezone=data.timezone,
                       opening_hours=_hours(data.opening_hours),
                       exceptions=_exceptions(data.exceptions), fitment=data.fitment,
                       status="active", created_at=now, updated_at=now)
    _place(row, data.location)
    services = [_new_service(tenant, row.id, s) for s in data.services]
    session.add(row)
    session.flush()
    session.add_all(services)
    session.flush()
    record_event(session, tenant.id, "service_point.created", row.id,
                 {"name": row.name, "services": [s.code for s in services]})
    return point_out(row, services)


def point_row(session: Session, tenant: Tenant, point_id: str, lock: bool = False) -> ServicePoint:
    return tenant_row(session, tenant.id, ServicePoint, point_id, "service point", lock=lock)


def get_point(session: Session, tenant: Tenant, point_id: str) -> ServicePointOut:
    row = point_row(session, tenant, point_id)
    return point_out(row, _services_of(session, tenant, [row.id])[row.id])


def list_points(session: Session, tenant: Tenant, *, status: str | None = None,
                limit: int = 50, cursor: str | None = None) -> Page[ServicePointOut]:
    stmt = select(ServicePoint).where(ServicePoint.tenant_id == tenant.id)
    if status:
        stmt = stmt.where(ServicePoint.status == status)
    page = paginate(session, stmt, ServicePoint.id, limit=limit, cursor=cursor,
                    convert=lambda p: p, kind="service_point")
    services = _services_of(session, tenant, [p.id for p in page.data])
    return Page[ServicePointOut](data=[point_out(p, services[p.id]) for p in page.data],
                                 has_more=page.has_more, next_cursor=page.next_cursor)


def update_point(session: Session, tenant: Tenant, point_id: str, data: Any) -> ServicePointOut:
    """Change a point. Bookings already made keep their slots (new hours apply to new ones)."""
    row = point_row(session, tenant, point_id, lock=True)
    changes = data.model_dump(exclude_unset=True)
    if data.location is not None:
        _place(row, data.location)
    if data.opening_hours is not None:
        row.opening_hours = _hours(data.opening_hours)
    if data.exceptions is not None:
        row.exceptions = _exceptions(data.exceptions)
    for name in ("name", "address", "phone", "timezone", "fitment", "status"):
        if name in changes:
            setattr(row, name, changes[name])
    row.updated_at = utcnow()
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
    add_unique(session, _new_service(tenant, point.id, data),
               lambda: Conflict(f"this point offers {data.code!r} already",
                                slug="service-exists"))
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
    session.flush()
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


def _number(value: Any) -> float | None:
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
            number = _number(value)
            if number is None or not rule[0] <= number <= rule[1]:
                return False
        elif str(value) not in {str(v) for v in rule}:
            return False
    return True
