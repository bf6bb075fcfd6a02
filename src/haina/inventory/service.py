"""Stock per location, reservations with expiry, and adjustments with reasons.

Every change of a level is one conditional UPDATE (``… WHERE on_hand - reserved >= :n``), so
concurrent buyers can never take stock below zero nor sell the same unit twice; the
``stock_levels`` CHECK constraints back this up. Multi-line claims lock rows in variant-id
order, so two orders for the same items cannot deadlock.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import Integer, String, and_, bindparam, column, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.db import Precompiled, insert_rows, is_postgres, rowcount, utcnow
from haina.core.errors import Conflict, Invalid, OutOfStock, not_found
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.pagination import Page, paginate
from haina.inventory.models import Adjustment, Location, Reservation, StockLevel
from haina.inventory.schemas import (
    AdjustmentOut,
    Claim,
    LevelOut,
    LocationCreate,
    LocationOut,
    ReservationOut,
    StockOut,
)

DEFAULT_CODE = "default"


def _location_out(row: Location) -> LocationOut:
    return LocationOut(id=row.id, code=row.code, name=row.name, kind=row.kind,
                       address=row.address, is_default=row.is_default, created_at=row.created_at)


def create_location(session: Session, tenant: Tenant, data: LocationCreate) -> LocationOut:
    if session.scalar(select(Location.id).where(Location.tenant_id == tenant.id,
                                                Location.code == data.code)):
        raise Conflict(f"a location with code {data.code!r} exists", slug="location-exists")
    if data.is_default:
        session.execute(update(Location).where(Location.tenant_id == tenant.id)
                        .values(is_default=False))
    row = Location(id=new_id("location"), tenant_id=tenant.id, code=data.code, name=data.name,
                   kind=data.kind, address=data.address, is_default=data.is_default,
                   created_at=utcnow())
    session.add(row)
    session.flush()
    record_event(session, tenant.id, "location.created", row.id, {"code": row.code})
    return _location_out(row)


def default_location(session: Session, tenant: Tenant) -> LocationOut:
    """The tenant's default location, created on first use."""
    row = session.scalar(select(Location).where(Location.tenant_id == tenant.id,
                                                Location.is_default.is_(True)))
    if row is None:
        return create_location(session, tenant, LocationCreate(
            code=DEFAULT_CODE, name="Default warehouse", kind="warehouse", is_default=True))
    return _location_out(row)


def list_locations(session: Session, tenant: Tenant, limit: int = 50,
                   cursor: str | None = None) -> Page[LocationOut]:
    return paginate(session, select(Location).where(Location.tenant_id == tenant.id),
                    Location.id, limit=limit, cursor=cursor, convert=_location_out)


def _location_id(session: Session, tenant: Tenant, location_id: str | None) -> str:
    if location_id is None:
        return default_location(session, tenant).id
    found = session.scalar(select(Location.id).where(Location.tenant_id == tenant.id,
                                                     Location.id == location_id))
    if found is None:
        raise not_found("location", location_id)
    return found


def stock_for_variants(session: Session, tenant: Tenant,
                       variant_ids: Sequence[str]) -> dict[str, StockOut]:
    """Totals over all locations for each variant (absent variants have none)."""
    if not variant_ids:
        return {}
    rows = session.execute(
        select(StockLevel.variant_id, func.sum(StockLevel.on_hand), func.sum(StockLevel.reserved))
        .where(StockLevel.tenant_id == tenant.id, StockLevel.variant_id.in_(variant_ids))
        .group_by(StockLevel.variant_id)).all()
    out = {v: StockOut() for v in variant_ids}
    for variant_id, on_hand, reserved in rows:
        on_hand, reserved = int(on_hand or 0), int(reserved or 0)
        out[variant_id] = StockOut(on_hand=on_hand, reserved=reserved, available=on_hand - reserved)
    return out


def levels(session: Session, tenant: Tenant, variant_id: str) -> Page[LevelOut]:
    """A variant's stock at each of its locations, by location id (one page: one row per
    location)."""
    rows = session.scalars(select(StockLevel).where(StockLevel.tenant_id == tenant.id,
                                                    StockLevel.variant_id == variant_id)
                           .order_by(StockLevel.location_id)).all()
    return Page[LevelOut](data=[LevelOut(variant_id=r.variant_id, location_id=r.location_id,
                                         on_hand=r.on_hand, reserved=r.reserved,
                                         available=r.on_hand - r.reserved) for r in rows],
                          has_more=False)


def _level(session: Session, tenant: Tenant, variant_id: str, location_id: str) -> StockOut:
    row = session.execute(select(StockLevel.on_hand, StockLevel.reserved).where(
        StockLevel.tenant_id == tenant.id, StockLevel.variant_id == variant_id,
        StockLevel.location_id == location_id)).first()
    if row is None:
        return StockOut()
    return StockOut(on_hand=row[0], reserved=row[1], available=row[0] - row[1])


def adjust_stock(session: Session, tenant: Tenant, variant_id: str, delta: int, reason: str,
                 *, location_id: str | None = None, note: str | None = None,
                 order_id: str | None = None) -> AdjustmentOut:
    """Add or remove on-hand units; removing more than is unreserved is a 409."""
    if delta == 0:
        raise Invalid("delta must not be 0")
    loc = _location_id(session, tenant, location_id)
    level = and_(StockLevel.tenant_id == tenant.id, StockLevel.variant_id == variant_id,
                 StockLevel.location_id == loc)
    if delta > 0:
        changed = rowcount(session.execute(update(StockLevel).where(level)
                                           .values(on_hand=StockLevel.on_hand + delta)))
        if not changed:
            session.execute(insert(StockLevel).values(tenant_id=tenant.id, variant_id=variant_id,
                                                      location_id=loc, on_hand=delta, reserved=0))
    else:
        changed = rowcount(session.execute(
            update(StockLevel).where(level, StockLevel.on_hand - StockLevel.reserved >= -delta)
            .values(on_hand=StockLevel.on_hand + delta)))
        if not changed:
            have = _level(session, tenant, variant_id, loc)
            raise Conflict(f"cannot remove {-delta} units: {have.available} available "
                           f"({have.reserved} reserved)", slug="insufficient-stock",
                           available=have.available)
    row = Adjustment(id=new_id("adjustment"), tenant_id=tenant.id, variant_id=variant_id,
                     location_id=loc, delta=delta, reason=reason, note=note, order_id=order_id,
                     created_at=utcnow())
    session.add(row)
    session.flush()
    record_event(session, tenant.id, "inventory.adjusted", variant_id,
                 {"location_id": loc, "delta": delta, "reason": reason})
    return AdjustmentOut(id=row.id, variant_id=variant_id, location_id=loc, delta=delta,
                         reason=reason, note=note, order_id=order_id, created_at=row.created_at,
                         level=_level(session, tenant, variant_id, loc))


def list_adjustments(session: Session, tenant: Tenant, variant_id: str | None = None,
                     limit: int = 50, cursor: str | None = None) -> Page[AdjustmentOut]:
    stmt = select(Adjustment).where(Adjustment.tenant_id == tenant.id)
    if variant_id:
        stmt = stmt.where(Adjustment.variant_id == variant_id)
    return paginate(session, stmt, Adjustment.id, limit=limit, cursor=cursor, convert=lambda r:
                    AdjustmentOut(id=r.id, variant_id=r.variant_id, location_id=r.location_id,
                                  delta=r.delta, reason=r.reason, note=r.note,
                                  order_id=r.order_id, created_at=r.created_at))


def _merge(claims: Iterable[Claim]) -> list[Claim]:
    total: dict[str, int] = defaultdict(int)
    skus: dict[str, str] = {}
    for c in claims:
        total[c.variant_id] += c.quantity
        skus[c.variant_id] = c.sku
    # a fixed lock order (by variant id) keeps concurrent multi-line claims deadlock-free
    return [Claim(variant_id=v, quantity=q, sku=skus[v]) for v, q in sorted(total.items())]


_S, _L = StockLevel.__table__.c, Location.__table__.c


def _where_location(at_default: bool):
    return (_S.location_id == select(_L.id).where(
        _L.tenant_id == bindparam("t_id"), _L.is_default.is_(True)).scalar_subquery()
        if at_default else _S.location_id == bindparam("loc_id"))


def _claim_statement(at_default: bool):
    """UPDATE … SET reserved = reserved + :n WHERE … AND on_hand - reserved >= :n RETURNING
    location_id: the one statement that claims stock (built once, Core only)."""
    return (update(StockLevel.__table__)
            .where(_S.tenant_id == bindparam("t_id"), _S.variant_id == bindparam("v_id"),
                   _where_location(at_default), _S.on_hand - _S.reserved >= bindparam("n"))
            .values(reserved=_S.reserved + bindparam("n"))
            .returning(_S.location_id))


_CLAIM_AT_DEFAULT = Precompiled(_claim_statement(True))
_CLAIM_AT_LOCATION = Precompiled(_claim_statement(False))


def _claim_many_statement(at_default: bool):
    """PostgreSQL: the claims of several variants in one statement (one round trip): the
    rows that can meet their claim locked in variant order (the order the one-by-one claims
    take, so concurrent orders still cannot deadlock; a row changed meanwhile is checked
    again as it stands once locked), then each one's ``reserved`` raised. RETURNING the
    variant and location of each claim met: a variant missing from it could not be met."""
    wanted = func.unnest(bindparam("v_ids", type_=ARRAY(String)),
                         bindparam("ns", type_=ARRAY(Integer))).table_valued(
        column("v_id", String), column("n", Integer)).render_derived(name="w")
    locked = (select(_S.variant_id, _S.location_id, wanted.c.n)
              .join_from(StockLevel.__table__, wanted, _S.variant_id == wanted.c.v_id)
              .where(_S.tenant_id == bindparam("t_id"), _where_location(at_default),
                     _S.on_hand - _S.reserved >= wanted.c.n)
              .order_by(_S.variant_id).with_for_update(of=StockLevel.__table__)
              .cte("locked"))
    return (update(StockLevel.__table__)
            .where(_S.tenant_id == bindparam("t_id"), _S.variant_id == locked.c.variant_id,
                   _S.location_id == locked.c.location_id)
            .values(reserved=_S.reserved + locked.c.n)
            .returning(_S.variant_id, _S.location_id))


_CLAIM_MANY_AT_DEFAULT = Precompiled(_claim_many_statement(True))
_CLAIM_MANY_AT_LOCATION = Precompiled(_claim_many_statement(False))


def reserve_stock(session: Session, tenant: Tenant, claims: Iterable[Claim], *,
                  order_id: str | None, expires_at: dt.datetime | None,
                  location_id: str | None = None) -> list[str]:
    """Hold units for an order in the caller's transaction; a 409 ``out-of-stock`` if any line
    cannot be met (the caller's rollback then undoes the lines already held)."""
    now = utcnow()
    merged = _merge(claims)
    met: dict[str, str] | None = None  # variant -> location, when claimed in one statement
    if len(merged) > 1 and is_postgres(session):
        met = dict((_CLAIM_MANY_AT_LOCATION if location_id else _CLAIM_MANY_AT_DEFAULT).rows(
            session, {"t_id": tenant.id, "loc_id": location_id,
                      "v_ids": [c.variant_id for c in merged],
                      "ns": [c.quantity for c in merged]}))
    statement = _CLAIM_AT_LOCATION if location_id else _CLAIM_AT_DEFAULT
    rows: list[dict[str, object]] = []
    for claim in merged:
        got: Sequence[str] | None
        if met is not None:
            got = (met[claim.variant_id],) if claim.variant_id in met else None
        else:
            claimed = statement.rows(session, {"t_id": tenant.id, "v_id": claim.variant_id,
                                               "loc_id": location_id, "n": claim.quantity})
            got = claimed[0] if claimed else None
        if got is None:
            if location_id:  # same input, same answer as everywhere: an unknown place is a 404
                _location_id(session, tenant, location_id)
            raise OutOfStock(f"not enough stock for {claim.sku or claim.variant_id}: "
                             f"{claim.quantity} requested", sku=claim.sku,
                             variant_id=claim.variant_id, requested=claim.quantity)
        rows.append({"id": new_id("reservation"), "tenant_id": tenant.id,
                     "variant_id": claim.variant_id, "location_id": got[0],
                     "quantity": claim.quantity, "order_id": order_id, "status": "active",
                     "expires_at": expires_at, "created_at": now})
    insert_rows(session, Reservation.__table__, rows)
    return [str(r["id"]) for r in rows]


def _finish(session: Session, tenant: Tenant, reservations: Sequence[Reservation], status: str,
            consume: bool) -> int:
    units = 0
    for r in sorted(reservations, key=lambda r: (r.variant_id, r.location_id)):
        values = {"reserved": StockLevel.reserved - r.quantity}
        if consume:
            values["on_hand"] = StockLevel.on_hand - r.quantity
        session.execute(update(StockLevel).where(
            StockLevel.tenant_id == tenant.id, StockLevel.variant_id == r.variant_id,
            StockLevel.location_id == r.location_id).values(**values))
        r.status = status
        units += r.quantity
        if consume:
            session.add(Adjustment(id=new_id("adjustment"), tenant_id=tenant.id,
                                   variant_id=r.variant_id, location_id=r.location_id,
                                   delta=-r.quantity, reason="fulfilled", note=None,
                                   order_id=r.order_id, created_at=utcnow()))
    session.flush()
    return units


def _active_for_order(session: Session, tenant: Tenant, order_id: str) -> Sequence[Reservation]:
    return session.scalars(select(Reservation).where(
        Reservation.tenant_id == tenant.id, Reservation.order_id == order_id,
        Reservation.status == "active")).all()


def release_order_stock(session: Session, tenant: Tenant, order_id: str) -> int:
    """Give back an order's held units (cancelled or expired unpaid order)."""
    return _finish(session, tenant, _active_for_order(session, tenant, order_id), "released",
                   consume=False)


def keep_order_stock(session: Session, tenant: Tenant, order_id: str) -> None:
    """A paid order's reservation no longer expires."""
    session.execute(update(Reservation).where(
        Reservation.tenant_id == tenant.id, Reservation.order_id == order_id,
        Reservation.status == "active").values(expires_at=None))


def ship_order_stock(session: Session, tenant: Tenant, order_id: str,
                     variant_quantities: dict[str, int] | None = None) -> int:
    """Units leave the building: reserved and on-hand both go down (all, or the given units)."""
    active = _active_for_order(session, tenant, order_id)
    if variant_quantities is None:
        return _finish(session, tenant, active, "committed", consume=True)
    done = 0
    for r in active:
        want = variant_quantities.get(r.variant_id, 0)
        if want <= 0:
            continue
        take = min(want, r.quantity)
        if take < r.quantity:  # split: the shipped part is committed, the rest stays held
            rest = Reservation(id=new_id("reservation"), tenant_id=r.tenant_id,
                               variant_id=r.variant_id, location_id=r.location_id,
                               quantity=r.quantity - take, order_id=r.order_id, status="active",
                               expires_at=r.expires_at, created_at=r.created_at)
            session.add(rest)
            r.quantity = take
        variant_quantities[r.variant_id] = want - take
        done += _finish(session, tenant, [r], "committed", consume=True)
    return done


def _reservation_out(r: Reservation) -> ReservationOut:
    return ReservationOut(id=r.id, variant_id=r.variant_id, location_id=r.location_id,
                          quantity=r.quantity, order_id=r.order_id, status=r.status,
                          expires_at=r.expires_at, created_at=r.created_at)


def hold_stock(session: Session, tenant: Tenant, variant_id: str, quantity: int, ttl_seconds: int,
               location_id: str | None = None, sku: str = "") -> ReservationOut:
    """A standalone hold (a cart, an app's checkout) that lapses after ``ttl_seconds``."""
    if location_id is not None:
        _location_id(session, tenant, location_id)
    else:
        default_location(session, tenant)
    expires = utcnow() + dt.timedelta(seconds=ttl_seconds)
    [rid] = reserve_stock(session, tenant, [Claim(variant_id=variant_id, quantity=quantity, sku=sku)],
                          order_id=None, expires_at=expires, location_id=location_id)
    record_event(session, tenant.id, "inventory.reserved", variant_id,
                 {"reservation_id": rid, "quantity": quantity})
    return get_reservation(session, tenant, rid)


def get_reservation(session: Session, tenant: Tenant, reservation_id: str) -> ReservationOut:
    r = session.scalar(select(Reservation).where(Reservation.tenant_id == tenant.id,
                                                 Reservation.id == reservation_id))
    if r is None:
        raise not_found("reservation", reservation_id)
    return _reservation_out(r)


def release_hold(session: Session, tenant: Tenant, reservation_id: str) -> ReservationOut:
    # locked: a second release (a retried DELETE, the expiry job) waits, then sees it released
    r = session.scalar(select(Reservation).where(Reservation.tenant_id == tenant.id,
                                                 Reservation.id == reservation_id)
                       .with_for_update())
    if r is None:
        raise not_found("reservation", reservation_id)
    if r.order_id is not None:
        raise Conflict("this reservation belongs to an order; cancel the order instead",
                       slug="reservation-owned-by-order")
    if r.status == "active":
        _finish(session, tenant, [r], "released", consume=False)
        record_event(session, tenant.id, "inventory.released", r.variant_id,
                     {"reservation_id": r.id, "quantity": r.quantity})
    return _reservation_out(r)


def expire_holds(session: Session, now: dt.datetime | None = None) -> int:
    """Worker: release standalone holds past their expiry, across tenants."""
    now = now or utcnow()
    # locked, so a hold released meanwhile is skipped rather than given back twice
    expired = session.scalars(select(Reservation).where(
        Reservation.status == "active", Reservation.order_id.is_(None),
        Reservation.expires_at < now).order_by(Reservation.tenant_id, Reservation.id)
        .with_for_update()).all()
    by_tenant: dict[str, list[Reservation]] = defaultdict(list)
    for r in expired:
        by_tenant[r.tenant_id].append(r)
    for tenant_id, rows in by_tenant.items():
        _finish(session, Tenant(id=tenant_id, slug=""), rows, "released", consume=False)
    return len(expired)
