"""Slots and bookings: availability, holds that expire, claims that never overbook.

A slot's counter row (``booking_slots``) holds how many holds and bookings it has. Taking a
place is one conditional UPDATE (``taken < capacity``): on PostgreSQL the row lock makes a
concurrent claim wait and re-check, on SQLite transactions take the write lock first; either
way no slot ever holds more than its capacity. The row is made on the first claim (INSERT …
ON CONFLICT DO NOTHING on (tenant_id, service_id, start_at), which Citus and the partitioned
mode allow: the key leads with tenant_id).

Holds expire lazily (a claim of the slot first turns its overdue holds into ``expired`` and
gives their places back) and by the worker (``expire_holds``), whichever comes first: the
UPDATE of a hold's status is conditional, so a place is given back once.

A service that shares a resource with others (``resources``: fitting and alignment on one
lift) also takes a place in the resource's counters for its job's whole span; its next free
slots, and those of every service on the resource, are recomputed by a claim of any of them.

Lock order: the booking's own row, then overdue holds of the slot it claims, then the slot
rows in start order (a reschedule touches two), then the resource's stretches in start order,
then the service rows in id order (their precomputed next free slots, ``next_free``,
recomputed by every claim or release that can change them: the service's, and on a shared
resource its siblings').
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.db import is_postgres, rowcount, tenant_row, utcnow
from haina.core.errors import Conflict, Invalid
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.money import Money
from haina.core.pagination import Page, paginate
from haina.members import service as members
from haina.o2o import hours, partners, resources
from haina.o2o.lifecycle import BOOKING_LIFECYCLE
from haina.o2o.models import (
    Booking,
    BookingSlot,
    PointService,
    Rating,
    ServicePoint,
    ServiceResource,
)
from haina.o2o.points import point_row, service_row
from haina.o2o.schemas import (
    HOLD_MINUTES,
    BookingCreate,
    BookingOut,
    BookingRating,
    GoodsComing,
    SlotOut,
    SlotsOut,
)

#: how far ahead slots are listed and booked
HORIZON = dt.timedelta(days=366)

#: free slots kept per service (``point_services.next_free``), how many a read may take of
#: them (search and nearby show 3), and the days looked at (a week, as the computed path)
NEXT_FREE_KEPT = 16
NEXT_FREE_READ = 3
NEXT_FREE_DAYS = 7

#: the states that hold a place in their slot
HOLDING = ("held", "confirmed", "checked_in", "completed")


class SlotFull(Conflict):
    slug, title = "slot-full", "This slot is fully booked"


class NotASlot(Invalid):
    slug, title = "not-a-slot", "No slot of this service starts at this time"


class HoldExpired(Conflict):
    slug, title = "hold-expired", "The hold on this slot has expired"


def shape(service: PointService) -> hours.Shape:
    return hours.Shape(service.duration_minutes, service.buffer_before_minutes,
                       service.buffer_after_minutes)


def _zone(point: ServicePoint) -> ZoneInfo:
    return ZoneInfo(point.timezone)


def _out(b: Booking, zone: ZoneInfo | None = None) -> BookingOut:
    local = (lambda t: t.astimezone(zone)) if zone else (lambda t: t)
    return BookingOut(id=b.id, status=b.status, service_point_id=b.point_id,
                      service=b.service_code, start=local(b.start_at), end=local(b.end_at),
                      expires_at=b.expires_at, member_id=b.member_id, order_id=b.order_id,
                      sku=b.sku, price=Money.of(b.price_minor, b.currency), note=b.note,
                      created_at=b.created_at, updated_at=b.updated_at,
                      partnership_id=b.partnership_id,
                      goods=[GoodsComing(**g) for g in b.goods] if b.goods else None)


def _record(session: Session, b: Booking, type_: str, data: dict[str, object]) -> None:
    """A booking's event, in the outbox of the tenant that keeps it (the installer's, for a
    partner's booking: its webhooks) and, for a partner's booking, the merchant's too."""
    record_event(session, b.tenant_id, type_, b.id, data)
    if b.merchant_tenant_id is not None:
        record_event(session, b.merchant_tenant_id, type_, b.id,
                     {**data, "partnership_id": b.partnership_id})


def _booking_out(session: Session, tenant: Tenant, b: Booking) -> BookingOut:
    return _out(b, _zone(point_row(session, tenant, b.point_id)))


def with_ratings(session: Session, tenant_id: str, outs: Sequence[BookingOut]) -> None:
    """Fill in the rating of each completed booking of ``outs`` (kept by ``tenant_id``, the
    bookings' own tenant: the installer's for a partner's booking): one read of the page's
    ratings by the unique (tenant_id, booking_id), none when no booking is completed (only
    a completed booking is rated)."""
    done = {b.id: b for b in outs if b.status == "completed"}
    if not done:
        return
    for booking_id, score, comment, created_at in session.execute(
            select(Rating.booking_id, Rating.score, Rating.comment, Rating.created_at)
            .where(Rating.tenant_id == tenant_id, Rating.booking_id.in_(list(done)))):
        done[booking_id].rating = BookingRating(score=score, comment=comment,
                                                created_at=created_at)


# ---------------------------------------------------------------- availability

def _counts(session: Session, tenant: Tenant, service_id: str, since: dt.datetime,
            until: dt.datetime, now: dt.datetime) -> dict[dt.datetime, int]:
    """Places taken per slot start in [since, until], overdue holds not counted."""
    taken: dict[dt.datetime, int] = {start: n for start, n in session.execute(
        select(BookingSlot.start_at, BookingSlot.taken).where(
            BookingSlot.tenant_id == tenant.id, BookingSlot.service_id == service_id,
            BookingSlot.start_at >= since, BookingSlot.start_at <= until))}
    if taken:
        for start, overdue in session.execute(
                select(Booking.start_at, func.count()).where(
                    Booking.tenant_id == tenant.id, Booking.service_id == service_id,
                    Booking.start_at >= since, Booking.start_at <= until,
                    Booking.status == "held", Booking.expires_at <= now)
                .group_by(Booking.start_at)):
            taken[start] = taken.get(start, 0) - overdue
    return taken


def _shared(session: Session, tenant_id: str, services: Sequence[PointService],
            first: dt.datetime, last: dt.datetime, now: dt.datetime,
            ) -> dict[str, tuple[int, dict[dt.datetime, int]]]:
    """The resources of ``services`` (those that share one) with their places taken per
    stretch around jobs starting in [first, last]: resource id → (capacity, counts)."""
    on = [s for s in services if s.resource_id is not None]
    if not on:
        return {}
    since = min(resources.window(s, first, last)[0] for s in on)
    until = max(resources.window(s, first, last)[1] for s in on)
    ids = {str(s.resource_id) for s in on}
    counts = resources.used(session, tenant_id, ids, since, until, now)
    return {r.id: (r.capacity, counts[r.id]) for r in session.scalars(
        select(ServiceResource).where(ServiceResource.tenant_id == tenant_id,
                                      ServiceResource.id.in_(sorted(ids))))}


def _left(service: PointService, start: dt.datetime, taken: int,
          shared: dict[str, tuple[int, dict[dt.datetime, int]]]) -> int:
    """Places left for a job at ``start``: the slot's, and its resource's if it shares one."""
    left = service.capacity - taken
    if service.resource_id is not None and service.resource_id in shared:
        capacity, counts = shared[service.resource_id]
        left = min(left, resources.places_left(capacity, counts, service, start))
    return max(0, left)


def _slot(start: dt.datetime, service: PointService, zone: ZoneInfo, available: int) -> SlotOut:
    return SlotOut(start=start.astimezone(zone),
                   end=(start + dt.timedelta(minutes=service.duration_minutes)).astimezone(zone),
                   capacity=service.capacity, available=available)


def slots(session: Session, tenant: Tenant, point_id: str, code: str, day: dt.date,
          now: dt.datetime | None = None) -> SlotsOut:
    """The slots of ``code`` that start on the point's local ``day``, each with the places
    left (0 for a slot that has begun)."""
    now = now or utcnow()
    tenant, _ = partners.point_owner(session, tenant, point_id)  # a partner's point too
    point = point_row(session, tenant, point_id)
    service = service_row(session, tenant, point.id, code)
    if abs(day - now.date()) > HORIZON:
        raise Invalid(f"slots are listed up to {HORIZON.days} days from today",
                      slug="date-out-of-range")
    zone = _zone(point)
    starts = hours.slot_starts(day, point.opening_hours, point.exceptions, zone, shape(service))
    taken = _counts(session, tenant, service.id, starts[0], starts[-1], now) if starts else {}
    shared = _shared(session, tenant.id, [service], starts[0], starts[-1],
                     now) if starts else {}
    open_ = point.status == "active"
    data = [_slot(s, service, zone, _left(service, s, taken.get(s, 0), shared)
                  if open_ and s > now else 0) for s in starts]
    return SlotsOut(service_point_id=point.id, service=code, date=day, timezone=point.timezone,
                    data=data)


def computed_next_free_slots(session: Session, tenant: Tenant,
                             points: Sequence[tuple[ServicePoint, PointService]],
                             now: dt.datetime, n: int = 3,
                             days: int = 7) -> dict[str, list[SlotOut]]:
    """Each point's next ``n`` slots of its service with a place left, within ``days`` days
    (point id → slots), computed: the counters of all the points in one query, the slots of
    each point cut day by day until ``n`` are found. The slow path ``next_free_slots`` falls
    back on, and what the precomputed slots are proved equal to."""
    return _computed(session, tenant.id, points, now, n, days)


def _computed(session: Session, tenant_id: str,
              points: Sequence[tuple[ServicePoint, PointService]], now: dt.datetime, n: int,
              days: int) -> dict[str, list[SlotOut]]:
    until = now + dt.timedelta(days=days + 1)
    taken: dict[tuple[str, dt.datetime], int] = {}
    ids = [service.id for _, service in points]
    if ids:
        for service_id, start, n_taken in session.execute(
                select(BookingSlot.service_id, BookingSlot.start_at, BookingSlot.taken).where(
                    BookingSlot.tenant_id == tenant_id, BookingSlot.service_id.in_(ids),
                    BookingSlot.start_at > now, BookingSlot.start_at <= until)):
            taken[(service_id, start)] = n_taken
        if taken:  # holds past their time do not count
            for service_id, start, overdue in session.execute(
                    select(Booking.service_id, Booking.start_at, func.count()).where(
                        Booking.tenant_id == tenant_id, Booking.service_id.in_(ids),
                        Booking.start_at > now, Booking.start_at <= until,
                        Booking.status == "held", Booking.expires_at <= now)
                    .group_by(Booking.service_id, Booking.start_at)):
                taken[(service_id, start)] -= overdue
    shared = _shared(session, tenant_id, [service for _, service in points], now, until, now)
    out: dict[str, list[SlotOut]] = {}
    for point, service in points:
        zone, cut = _zone(point), shape(service)
        first = now.astimezone(zone).date()
        free = out[point.id] = []
        for d in range(days + 1):
            for s in hours.slot_starts(first + dt.timedelta(days=d), point.opening_hours,
                                       point.exceptions, zone, cut):
                left = _left(service, s, taken.get((service.id, s), 0), shared)
                if s > now and left > 0:
                    free.append(_slot(s, service, zone, left))
                    if len(free) == n:
                        break
            if len(free) == n:
                break
    return out


def _kept(service: PointService, now: dt.datetime) -> list[tuple[dt.datetime, int]] | None:
    """The precomputed free slots of ``service`` still ahead of ``now``, or None when they
    cannot be trusted at ``now`` (never computed, computed later than ``now``, or stale)."""
    return _kept_of(service.next_free, service.next_free_until, now)


def _kept_of(kept: dict[str, Any] | None, until: dt.datetime | None,
             now: dt.datetime) -> list[tuple[dt.datetime, int]] | None:
    if kept is None or until is None or not now < until:
        return None
    if dt.datetime.fromisoformat(kept["since"]) > now:
        return None
    return [(start, left) for start, left in
            ((dt.datetime.fromisoformat(text), left) for text, left in kept["slots"])
            if start > now]


def kept_slots(kept: dict[str, Any] | None, until: dt.datetime | None, duration_minutes: int,
               capacity: int, timezone: str, now: dt.datetime, n: int = NEXT_FREE_READ,
               ) -> list[SlotOut] | None:
    """A service's next ``n`` free slots from its kept columns (``next_free``,
    ``next_free_until``), read with the point's time zone and no row loaded; None when they
    are stale at ``now`` (then ``next_free_slots`` computes them)."""
    found = _kept_of(kept, until, now) if n <= NEXT_FREE_READ else None
    if found is None:
        return None
    zone = ZoneInfo(timezone)
    length = dt.timedelta(minutes=duration_minutes)
    return [SlotOut(start=start.astimezone(zone), end=(start + length).astimezone(zone),
                    capacity=capacity, available=left) for start, left in found[:n]]


def next_free_slots(session: Session, tenant: Tenant,
                    points: Sequence[tuple[ServicePoint, PointService]], now: dt.datetime,
                    n: int = 3, days: int = 7) -> dict[str, list[SlotOut]]:
    """Each point's next ``n`` slots of its service with a place left, within ``days`` days
    (point id → slots): read from the precomputed ``next_free`` of each service where it is
    fresh (no query, no hours cut), computed for the others (in each service's own tenant:
    ``points`` may hold partner installers' points)."""
    out: dict[str, list[SlotOut]] = {}
    stale = []
    for point, service in points:
        kept = _kept(service, now) if days == NEXT_FREE_DAYS and n <= NEXT_FREE_READ else None
        if kept is None:
            stale.append((point, service))
        else:
            zone = _zone(point)
            out[point.id] = [_slot(start, service, zone, left) for start, left in kept[:n]]
    by_owner: dict[str, list[tuple[ServicePoint, PointService]]] = {}
    for point, service in stale:  # a partner installer's points are counted in its tenant
        by_owner.setdefault(service.tenant_id, []).append((point, service))
    for owner, items in by_owner.items():
        out.update(_computed(session, owner, items, now, n, days))
    return out


def kept_next_free(session: Session, tenant_id: str, point: ServicePoint,
                   service: PointService, now: dt.datetime,
                   ) -> tuple[dict[str, Any], dt.datetime]:
    """The service's next free slots as kept (``point_services.next_free``) and until when
    they hold: while no claim or release touches them (those recompute), no hold among them
    runs out, fewer than ``NEXT_FREE_READ`` of them have begun (when all ``NEXT_FREE_KEPT``
    were found), and the week looked at has not moved on (when fewer were: a new day may add
    some)."""
    free = _computed(session, tenant_id, [(point, service)], now, NEXT_FREE_KEPT,
                     NEXT_FREE_DAYS)[point.id]
    if len(free) == NEXT_FREE_KEPT:
        until = free[NEXT_FREE_KEPT - NEXT_FREE_READ].start.astimezone(dt.UTC)
    else:
        zone = _zone(point)
        tomorrow = now.astimezone(zone).date() + dt.timedelta(days=1)
        until = dt.datetime.combine(tomorrow, dt.time(0), tzinfo=zone).astimezone(dt.UTC)
    # a hold running out frees a place: of this service's, or of one sharing its resource
    siblings = ([service.id] if service.resource_id is None else
                select(PointService.id).where(PointService.tenant_id == tenant_id,
                                              PointService.resource_id == service.resource_id)
                .scalar_subquery())
    hold_ends = session.scalar(select(func.min(Booking.expires_at)).where(
        Booking.tenant_id == tenant_id, Booking.service_id.in_(siblings),
        Booking.status == "held", Booking.expires_at > now, Booking.start_at > now))
    if hold_ends is not None:
        until = min(until, hold_ends)
    kept = {"since": now.isoformat(),
            "slots": [[s.start.astimezone(dt.UTC).isoformat(), s.available] for s in free]}
    return kept, until


def _store_next_free(session: Session, tenant_id: str, point: ServicePoint,
                     service: PointService, now: dt.datetime) -> None:
    service.next_free, service.next_free_until = kept_next_free(session, tenant_id, point,
                                                                service, now)


def keep_new_next_free(session: Session, tenant_id: str, point_id: str,
                       now: dt.datetime | None = None) -> None:
    """Compute the kept next free slots of the point's services that have none yet (a new
    point, a service just added): searches read them at once, not after the worker's
    next pass."""
    now = now or utcnow()
    session.flush()
    fresh = session.scalars(select(PointService).where(
        PointService.tenant_id == tenant_id, PointService.point_id == point_id,
        PointService.next_free_until.is_(None)).order_by(PointService.id)).all()
    if fresh:
        point = session.get_one(ServicePoint, (tenant_id, point_id))
        for service in fresh:
            _store_next_free(session, tenant_id, point, service, now)
        session.flush()


def _keep_next_free(session: Session, tenant_id: str, service_id: str, start: dt.datetime,
                    now: dt.datetime) -> None:
    """After a place at ``start`` was taken or given back: recompute the service's next free
    slots unless the change lies beyond all of them; on a shared resource, those of every
    service on it the change can reach. The service rows are locked (after the slot
    counters, in id order: the lock order), so concurrent claims recompute one after the
    other, each seeing the counters the others committed."""
    session.flush()  # a hold just marked expired must not count (the session does not autoflush)
    shared = session.scalar(select(PointService.resource_id).where(
        PointService.tenant_id == tenant_id, PointService.id == service_id))
    if shared is None:
        service = session.execute(select(PointService).where(
            PointService.tenant_id == tenant_id, PointService.id == service_id)
            .with_for_update(key_share=True).execution_options(populate_existing=True)
        ).scalar_one()
        if not _beyond_kept(service, now, lambda last: start > last):
            _store_next_free(session, tenant_id, _point_of(session, service), service, now)
        return
    begin = resources.span(_service(session, tenant_id, service_id), start)[0]
    for sibling in resources.services_on(session, tenant_id, shared, lock=True):
        # the change reaches a slot of the sibling's only if that slot's span overlaps it
        reach = dt.timedelta(minutes=sibling.duration_minutes + sibling.buffer_after_minutes)
        if not _beyond_kept(sibling, now, functools.partial(_at_or_after, begin - reach)):
            _store_next_free(session, tenant_id, _point_of(session, sibling), sibling, now)


def _at_or_after(moment: dt.datetime, last: dt.datetime) -> bool:
    return moment >= last


def _point_of(session: Session, service: PointService) -> ServicePoint:
    return session.get_one(ServicePoint, (service.tenant_id, service.point_id))


def _beyond_kept(service: PointService, now: dt.datetime,
                 beyond: Callable[[dt.datetime], bool]) -> bool:
    """Whether a change ``beyond`` the last of the service's kept free slots leaves them as
    they are: they are fresh and all ``NEXT_FREE_KEPT`` were found (else a freed place may
    join them)."""
    return (_kept(service, now) is not None and service.next_free is not None
            and len(service.next_free["slots"]) == NEXT_FREE_KEPT
            and beyond(dt.datetime.fromisoformat(service.next_free["slots"][-1][0])))


def refresh_next_free(session: Session, now: dt.datetime | None = None,
                      batch: int = 1000) -> int:
    """Worker: recompute the next free slots of services whose precomputed ones went stale
    (a slot began, a hold ran out, a day passed, the point changed), across merchants."""
    now = now or utcnow()
    rows = session.scalars(select(PointService).where(
        or_(PointService.next_free_until.is_(None), PointService.next_free_until <= now))
        .order_by(PointService.tenant_id, PointService.id).limit(batch)
        .with_for_update(skip_locked=True)).all()
    points = {(p.tenant_id, p.id): p for p in session.scalars(select(ServicePoint).where(
        tuple_(ServicePoint.tenant_id, ServicePoint.id).in_(
            {(s.tenant_id, s.point_id) for s in rows})))} if rows else {}
    for service in rows:
        _store_next_free(session, service.tenant_id, points[(service.tenant_id,
                                                             service.point_id)], service, now)
    session.flush()
    return len(rows)


# ---------------------------------------------------------------- claims

def _insert_ignore(session: Session):
    return postgresql.insert if is_postgres(session) else sqlite.insert


def _expire_rows(session: Session, tenant_id: str, rows: Sequence[Booking],
                 now: dt.datetime, keep: bool = True) -> None:
    """Turn locked overdue holds into ``expired`` and give their places back: the slot
    counters, then the resources' stretches, then the kept next free slots (the lock
    order)."""
    for service_id in sorted({b.service_id for b in rows}):
        _service_shared(session, tenant_id, service_id)
    for b in sorted(rows, key=lambda b: (b.service_id, b.start_at)):
        b.status, b.updated_at = "expired", now
        _release_place(session, tenant_id, b.service_id, b.start_at, now, keep=False,
                       resource=False)
        _record(session, b, "booking.expired", {"status": "expired"})
    for b in sorted(rows, key=lambda b: b.start_at):
        resources.change(session, tenant_id, _service(session, tenant_id, b.service_id), now,
                         give=b.start_at)
    if keep:
        for b in sorted(rows, key=lambda b: b.service_id):
            _keep_next_free(session, tenant_id, b.service_id, b.start_at, now)
    session.flush()


def _service(session: Session, tenant_id: str, service_id: str) -> PointService:
    return session.get_one(PointService, (tenant_id, service_id))


def _service_shared(session: Session, tenant_id: str, service_id: str) -> PointService:
    """The service's row read afresh under a key-share lock, before a claim or release reads
    which resource the service is on. Putting a service on or off a resource locks its row
    for update (``points._put_on_resource``), which waits for this lock and this waits for
    it: either the move sees the claim or release committed, or the claim or release sees
    the service on its new resource (else a booking made meanwhile kept no place on the
    resource, or a cancelled one kept its place there). A key-share lock conflicts with no
    other lock a booking takes (the booking row's foreign key takes the same; the kept next
    free slots take no-key-update), so it adds no wait between bookings."""
    return session.execute(select(PointService).where(
        PointService.tenant_id == tenant_id, PointService.id == service_id)
        .with_for_update(read=True, key_share=True)
        .execution_options(populate_existing=True)).scalar_one()


def _expire_overdue_in_slot(session: Session, tenant: Tenant, service_id: str,
                            start: dt.datetime, now: dt.datetime) -> None:
    rows = session.scalars(select(Booking).where(
        Booking.tenant_id == tenant.id, Booking.service_id == service_id,
        Booking.start_at == start, Booking.status == "held", Booking.expires_at <= now)
        .order_by(Booking.id).with_for_update()).all()
    # a hold expired by someone else meanwhile is read again after its lock: skip it; the
    # claim that follows recomputes the kept slots
    _expire_rows(session, tenant.id, [b for b in rows if b.status == "held"], now, keep=False)


def _take_place(session: Session, tenant: Tenant, service: PointService,
                start: dt.datetime, now: dt.datetime, keep: bool = True,
                resource: bool = True) -> None:
    """Take a place (and, with ``resource``, one of the service's shared resource); with
    ``keep``, recompute the next free slots at once (a caller that writes the booking row
    after passes False and calls ``_keep_next_free`` itself)."""
    insert = _insert_ignore(session)
    session.execute(insert(BookingSlot).values(
        id=new_id("booking_slot"), tenant_id=tenant.id, service_id=service.id, start_at=start,
        taken=0).on_conflict_do_nothing(index_elements=["tenant_id", "service_id", "start_at"]))
    got = rowcount(session.execute(
        update(BookingSlot).where(BookingSlot.tenant_id == tenant.id,
                                  BookingSlot.service_id == service.id,
                                  BookingSlot.start_at == start,
                                  BookingSlot.taken < service.capacity)
        .values(taken=BookingSlot.taken + 1).execution_options(synchronize_session=False)))
    if not got:
        raise SlotFull(f"the {start.isoformat()} slot of {service.code} is fully booked "
                       f"({service.capacity} of {service.capacity})", start=start.isoformat())
    if resource and not resources.change(session, tenant.id, service, now, take=start):
        raise _resource_full(service, start)
    if keep:
        _keep_next_free(session, tenant.id, service.id, start, now)


def _resource_full(service: PointService, start: dt.datetime) -> SlotFull:
    return SlotFull(f"the {start.isoformat()} slot of {service.code} is free, but the "
                    "resource it shares with other services is taken then",
                    start=start.isoformat(), reason="resource-full")


def _release_place(session: Session, tenant_id: str, service_id: str,
                   start: dt.datetime, now: dt.datetime, keep: bool = True,
                   resource: bool = True) -> None:
    session.execute(update(BookingSlot).where(
        BookingSlot.tenant_id == tenant_id, BookingSlot.service_id == service_id,
        BookingSlot.start_at == start, BookingSlot.taken > 0)
        .values(taken=BookingSlot.taken - 1).execution_options(synchronize_session=False))
    if resource:
        resources.change(session, tenant_id, _service(session, tenant_id, service_id), now,
                         give=start)
    if keep:
        _keep_next_free(session, tenant_id, service_id, start, now)


def _check_start(point: ServicePoint, service: PointService, start: dt.datetime,
                 now: dt.datetime) -> dt.datetime:
    start = start.astimezone(dt.UTC)
    if point.status != "active":
        raise Conflict(f"service point {point.id} is closed", slug="service-point-closed")
    if start <= now:
        raise Invalid("this slot has begun or is past", slug="slot-in-past")
    if start > now + HORIZON:
        raise Invalid(f"slots are booked up to {HORIZON.days} days ahead",
                      slug="date-out-of-range")
    if not hours.is_slot(start, point.opening_hours, point.exceptions, _zone(point),
                         shape(service)):
        raise NotASlot(f"no {service.code} slot starts at {start.isoformat()} here: "
                       "see GET /v1/service-points/{id}/slots")
    return start


def book(session: Session, tenant: Tenant, data: BookingCreate, *,
         now: dt.datetime | None = None) -> BookingOut:
    """Hold (``data.hold``) or confirm a place in a slot; 409 ``slot-full`` when none is
    left, 422 ``not-a-slot`` for a time no slot starts at."""
    now = now or utcnow()
    if data.member_id is not None:
        # 404 member-not-found; 409 member-erased for a person erased at their request
        members.resolve_buyer_id(session, tenant, data.member_id)
    merchant = tenant
    tenant, partnership_id = partners.point_owner(session, merchant, data.service_point_id)
    point = point_row(session, tenant, data.service_point_id)
    service = _service_shared(session, tenant.id,
                              service_row(session, tenant, point.id, data.service).id)
    start = _check_start(point, service, data.start, now)
    _expire_overdue_in_slot(session, tenant, service.id, start, now)
    _take_place(session, tenant, service, start, now, keep=False)
    status = "held" if data.hold else "confirmed"
    row = Booking(id=new_id("booking"), tenant_id=tenant.id, point_id=point.id,
                  service_id=service.id, service_code=service.code, start_at=start,
                  end_at=start + dt.timedelta(minutes=service.duration_minutes), status=status,
                  expires_at=now + dt.timedelta(minutes=HOLD_MINUTES) if data.hold else None,
                  member_id=data.member_id, price_minor=service.price_minor,
                  currency=service.currency, note=data.note, created_at=now, updated_at=now,
                  merchant_tenant_id=merchant.id if partnership_id else None,
                  partnership_id=partnership_id)
    session.add(row)
    session.flush()
    if partnership_id is not None:
        partners.link_booking(session, merchant, tenant.id, row.id, partnership_id,
                              member_id=data.member_id)
    _keep_next_free(session, tenant.id, service.id, start, now)  # after the row: its hold's end
    _record(session, row, f"booking.{status}",
            {"status": status, "service_point_id": point.id, "service": service.code,
             "start": start.isoformat()})
    return _out(row, _zone(point))


def _lock(session: Session, tenant: Tenant, booking_id: str) -> Booking:
    return tenant_row(session, tenant.id, Booking, booking_id, "booking", lock=True)


def _move(session: Session, tenant: Tenant, b: Booking, event: str, to: str,
          now: dt.datetime, **data: object) -> None:
    BOOKING_LIFECYCLE.check(event, b.status, to)
    b.status, b.updated_at = to, now
    session.flush()
    _record(session, b, event, {"status": to, **data})


def get_booking(session: Session, tenant: Tenant, booking_id: str) -> BookingOut:
    """A booking of the caller's, or one it made at a partner installer's point."""
    tenant = partners.booking_owner(session, tenant, booking_id)
    b = tenant_row(session, tenant.id, Booking, booking_id, "booking")
    out = _booking_out(session, tenant, b)
    with_ratings(session, tenant.id, [out])
    return out


def list_bookings(session: Session, tenant: Tenant, *, point_id: str | None = None,
                  status: str | None = None, order_id: str | None = None, limit: int = 50,
                  cursor: str | None = None, member_id: str | None = None,
                  day: dt.date | None = None) -> Page[BookingOut]:
    """Newest first; a point's bookings (with ``day``, those starting on that local date of
    the point's: the installer's day), by state, an order's, or a member's (the storefront's
    buyer)."""
    stmt = select(Booking).where(Booking.tenant_id == tenant.id)
    if day is not None:
        if point_id is None:
            raise Invalid("date lists one point's day: give service_point_id too",
                          slug="date-needs-service-point")
        zone = _zone(point_row(session, tenant, point_id))
        if abs(day - utcnow().date()) > HORIZON + HORIZON:  # past and future bookings
            raise Invalid(f"days are listed up to {2 * HORIZON.days} days either way",
                          slug="date-out-of-range")
        since = dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)
        until = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0),
                                    tzinfo=zone).astimezone(dt.UTC)
        stmt = stmt.where(Booking.start_at >= since, Booking.start_at < until)
    if member_id:
        stmt = stmt.where(Booking.member_id == member_id)
    if point_id:
        stmt = stmt.where(Booking.point_id == point_id)
    if status:
        stmt = stmt.where(Booking.status == status)
    if order_id:
        stmt = stmt.where(Booking.order_id == order_id)
    zones: dict[str, ZoneInfo] = {}

    def convert(b: Booking) -> BookingOut:
        if b.point_id not in zones:
            zones[b.point_id] = _zone(point_row(session, tenant, b.point_id))
        return _out(b, zones[b.point_id])
    page = paginate(session, stmt, Booking.id, limit=limit, cursor=cursor, convert=convert,
                    kind="booking")
    with_ratings(session, tenant.id, page.data)  # one read for the page's ratings
    return page


def confirm(session: Session, tenant: Tenant, booking_id: str, *, order_id: str | None = None,
            sku: str | None = None, now: dt.datetime | None = None,
            goods: Sequence[GoodsComing] | None = None) -> BookingOut:
    """Turn a hold into a booking (an order's, when ``order_id`` is given, with the
    ``goods`` of the order shipped to its point); 409 ``hold-expired`` once its time is
    up."""
    now = now or utcnow()
    merchant = tenant
    tenant = partners.booking_owner(session, merchant, booking_id)
    b = _lock(session, tenant, booking_id)
    if b.status == "held" and b.expires_at is not None and b.expires_at <= now:
        raise HoldExpired(f"the hold on booking {b.id} expired at {b.expires_at.isoformat()}",
                          status_now="expired")
    if order_id is not None and b.order_id is not None and b.order_id != order_id:
        raise Conflict(f"booking {b.id} belongs to order {b.order_id}", slug="booking-taken")
    b.expires_at = None
    if order_id is not None:
        b.order_id, b.sku = order_id, sku
        if goods is not None:
            b.goods = [g.model_dump() for g in goods]
        if tenant.id != merchant.id:
            partners.link_order(session, merchant.id, b.id, order_id)
    _move(session, tenant, b, "booking.confirmed", "confirmed", now, order_id=b.order_id)
    return _booking_out(session, tenant, b)


def cancel(session: Session, tenant: Tenant, booking_id: str,
           reason: str = "requested_by_customer", now: dt.datetime | None = None) -> BookingOut:
    """Cancel a held or confirmed booking: its place is given back."""
    now = now or utcnow()
    tenant = partners.booking_owner(session, tenant, booking_id)
    b = _lock(session, tenant, booking_id)
    BOOKING_LIFECYCLE.check("booking.cancelled", b.status, "cancelled")
    _service_shared(session, tenant.id, b.service_id)
    _release_place(session, tenant.id, b.service_id, b.start_at, now, keep=False)
    _move(session, tenant, b, "booking.cancelled", "cancelled", now, reason=reason)
    # after the status: a hold cancelled past its time must not be taken off twice
    _keep_next_free(session, tenant.id, b.service_id, b.start_at, now)
    return _booking_out(session, tenant, b)


def check_in(session: Session, tenant: Tenant, booking_id: str) -> BookingOut:
    b = _lock(session, tenant, booking_id)
    _move(session, tenant, b, "booking.checked_in", "checked_in", utcnow())
    return _booking_out(session, tenant, b)


def complete(session: Session, tenant: Tenant, booking_id: str) -> BookingOut:
    b = _lock(session, tenant, booking_id)
    _move(session, tenant, b, "booking.completed", "completed", utcnow(), order_id=b.order_id,
          sku=b.sku)
    return _booking_out(session, tenant, b)


def reschedule(session: Session, tenant: Tenant, booking_id: str, start: dt.datetime,
               now: dt.datetime | None = None) -> BookingOut:
    """Move a held or confirmed booking to another slot of its service, at once: the new
    place is taken and the old one given back in one transaction (409 ``slot-full``: nothing
    moves)."""
    now = now or utcnow()
    tenant = partners.booking_owner(session, tenant, booking_id)
    b = _lock(session, tenant, booking_id)
    BOOKING_LIFECYCLE.check("booking.rescheduled", b.status, b.status)
    if b.status == "held" and b.expires_at is not None and b.expires_at <= now:
        raise HoldExpired(f"the hold on booking {b.id} expired", status_now="expired")
    point = point_row(session, tenant, b.point_id)
    service = _service_shared(session, tenant.id, b.service_id)
    new = _check_start(point, service, start, now)
    old = b.start_at
    if new == old:
        return _out(b, _zone(point))
    _expire_overdue_in_slot(session, tenant, service.id, new, now)
    if new < old:  # slot rows in start order, then the resource's stretches
        _take_place(session, tenant, service, new, now, keep=False, resource=False)
        _release_place(session, tenant.id, service.id, old, now, keep=False, resource=False)
    else:
        _release_place(session, tenant.id, service.id, old, now, keep=False, resource=False)
        _take_place(session, tenant, service, new, now, keep=False, resource=False)
    if not resources.change(session, tenant.id, service, now, take=new, give=old):
        raise _resource_full(service, new)
    b.start_at, b.end_at = new, new + dt.timedelta(minutes=service.duration_minutes)
    _move(session, tenant, b, "booking.rescheduled", b.status, now, start=new.isoformat(),
          previous_start=old.isoformat())
    _keep_next_free(session, tenant.id, service.id, min(new, old), now)
    return _out(b, _zone(point))


def expire_holds(session: Session, now: dt.datetime | None = None, batch: int = 500) -> int:
    """Worker: expire overdue holds across merchants, giving their places back."""
    now = now or utcnow()
    rows = session.scalars(select(Booking).where(
        Booking.status == "held", Booking.expires_at <= now)
        .order_by(Booking.tenant_id, Booking.id).limit(batch).with_for_update()).all()
    rows = [b for b in rows if b.status == "held"]
    by_tenant: dict[str, list[Booking]] = {}
    for b in rows:
        by_tenant.setdefault(b.tenant_id, []).append(b)
    for tenant_id, items in by_tenant.items():
        _expire_rows(session, tenant_id, items, now)
    return len(rows)


def release_for_order(session: Session, tenant: Tenant, order_id: str,
                      reason: str = "order_cancelled") -> list[str]:
    """Cancel an order's held or confirmed bookings (the order was cancelled): their places
    come back. Returns their ids."""
    ids = list(session.scalars(select(Booking.id).where(
        Booking.tenant_id == tenant.id, Booking.order_id == order_id,
        Booking.status.in_(("held", "confirmed"))).order_by(Booking.id)))
    ids += [i for i in partners.linked_for_order(session, tenant, order_id)
            if partners_status(session, tenant, i) in ("held", "confirmed")]
    for booking_id in ids:
        cancel(session, tenant, booking_id, reason)
    return ids


def partners_status(session: Session, tenant: Tenant, booking_id: str) -> str:
    """The status of a booking the merchant made at a partner's point."""
    owner = partners.booking_owner(session, tenant, booking_id)
    return tenant_row(session, owner.id, Booking, booking_id, "booking").status


def list_partner_bookings(session: Session, tenant: Tenant, *, limit: int = 50,
                          cursor: str | None = None,
                          member_id: str | None = None) -> Page[BookingOut]:
    """The bookings the merchant made at its partner installers' points (a buyer's, with
    ``member_id``), newest first: a page of its link rows, then the bookings read from each
    installer's tenant."""
    page = partners.linked_page(session, tenant, limit, cursor, member_id)
    by_installer: dict[str, list[str]] = {}
    for link in page.data:
        by_installer.setdefault(link.installer_tenant_id, []).append(link.id)
    rows: dict[str, Booking] = {}
    for installer_id, ids in by_installer.items():
        for b in session.scalars(select(Booking).where(Booking.tenant_id == installer_id,
                                                       Booking.id.in_(ids))):
            rows[b.id] = b
    zones: dict[tuple[str, str], ZoneInfo] = {}
    out = []
    for link in page.data:
        b = rows[link.id]
        key = (b.tenant_id, b.point_id)
        if key not in zones:
            zones[key] = _zone(session.get_one(ServicePoint, key))
        out.append(_out(b, zones[key]))
    for installer_id in by_installer:  # ratings are kept where the bookings are
        with_ratings(session, installer_id, [o for o in out if rows[o.id].tenant_id == installer_id])
    return Page[BookingOut](data=out, has_more=page.has_more, next_cursor=page.next_cursor)
