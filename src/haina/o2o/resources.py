"""Shared capacity: a resource of a point (a lift, a stylist) that several of its services use,
``capacity`` at once. Fitting (60 minutes) and alignment (30 minutes) on one lift overlap
without sharing slot starts, so the resource is counted per stretch of ``GRAIN_MINUTES``
(``o2o_resource_slots``): a booking takes a place in every stretch its span (buffers
included) touches, besides the place in its service's slot.

A claim locks its stretches in start order (``SELECT … FOR UPDATE``), checks every one has a
place left (holds past their time not counted), then adds one to each: two claims of
overlapping spans wait for each other at the first stretch they share, so no stretch ever
holds more than the capacity. Callers take service slot counters first, then stretches, then
service rows (the lock order of ``bookings``).

Spans off the 5-minute grid (hours opening at 09:07) take the stretches they touch whole:
safe, but such back-to-back jobs may not share one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from haina.core.db import is_postgres
from haina.core.ids import new_id
from haina.o2o.models import Booking, PointService, ResourceSlot, ServiceResource

GRAIN_MINUTES = 5
GRAIN = dt.timedelta(minutes=GRAIN_MINUTES)
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
#: the longest span a service can have (duration and both buffers at their maxima), so that
#: holds starting this long before a stretch are looked at for it
_LONGEST = dt.timedelta(minutes=24 * 60 + 2 * 240)


def span(service: PointService, start: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """When a job of ``service`` at ``start`` takes the resource: buffers included."""
    return (start - dt.timedelta(minutes=service.buffer_before_minutes),
            start + dt.timedelta(minutes=service.duration_minutes
                                 + service.buffer_after_minutes))


def stretches(begin: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The starts of the stretches [begin, end) touches."""
    first = _EPOCH + (begin.astimezone(dt.UTC) - _EPOCH) // GRAIN * GRAIN
    out = []
    while first < end:
        out.append(first)
        first += GRAIN
    return out


def of_job(service: PointService, start: dt.datetime) -> list[dt.datetime]:
    return stretches(*span(service, start))


def used(session: Session, tenant_id: str, resource_ids: Iterable[str], since: dt.datetime,
         until: dt.datetime, now: dt.datetime) -> dict[str, dict[dt.datetime, int]]:
    """Places taken per stretch of each resource in [since, until), holds past their time
    not counted (resource id → stretch start → places)."""
    ids = sorted(set(resource_ids))
    out: dict[str, dict[dt.datetime, int]] = {i: {} for i in ids}
    if not ids:
        return out
    for resource_id, start, taken in session.execute(
            select(ResourceSlot.resource_id, ResourceSlot.start_at, ResourceSlot.taken).where(
                ResourceSlot.tenant_id == tenant_id, ResourceSlot.resource_id.in_(ids),
                ResourceSlot.start_at >= since, ResourceSlot.start_at < until)):
        if taken:
            out[resource_id][start] = taken
    if any(out.values()):
        for owner, start, before, duration, after in session.execute(
                select(PointService.resource_id, Booking.start_at,
                       PointService.buffer_before_minutes, PointService.duration_minutes,
                       PointService.buffer_after_minutes)
                .join(PointService, (PointService.tenant_id == Booking.tenant_id)
                      & (PointService.id == Booking.service_id))
                .where(Booking.tenant_id == tenant_id, PointService.resource_id.in_(ids),
                       Booking.status == "held", Booking.expires_at <= now,
                       Booking.start_at > since - _LONGEST, Booking.start_at < until + _LONGEST)):
            counts = out[str(owner)]
            for s in stretches(start - dt.timedelta(minutes=before),
                               start + dt.timedelta(minutes=duration + after)):
                if s in counts:
                    counts[s] -= 1
    return out


def places_left(capacity: int, counts: Mapping[dt.datetime, int],
                service: PointService, start: dt.datetime) -> int:
    """Places the resource has for a job of ``service`` at ``start``: its fullest stretch's."""
    return capacity - max((counts.get(s, 0) for s in of_job(service, start)), default=0)


def window(service: PointService, first: dt.datetime,
           last: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The stretches jobs starting in [first, last] can touch: what ``used`` should read."""
    return span(service, first)[0] - GRAIN, span(service, last)[1] + GRAIN


def _insert_ignore(session: Session):
    return postgresql.insert if is_postgres(session) else sqlite.insert


def change(session: Session, tenant_id: str, service: PointService, now: dt.datetime, *,
           take: dt.datetime | None = None, give: dt.datetime | None = None,
           check: bool = True) -> bool:
    """Take a place for a job at ``take`` and give back the one of a job at ``give`` (either,
    or both: a reschedule), on ``service``'s resource. False (nothing changed) when a stretch
    of ``take`` has no place left and ``check``; without ``check`` (bookings already made,
    counted on a service newly put on the resource) the places are taken regardless."""
    if service.resource_id is None:
        return True
    delta: dict[dt.datetime, int] = {}
    for start, sign in ((take, 1), (give, -1)):
        if start is not None:
            for s in of_job(service, start):
                delta[s] = delta.get(s, 0) + sign
    delta = {s: d for s, d in delta.items() if d}
    if not delta:
        return True
    adds = sorted(s for s, d in delta.items() if d > 0)
    if adds:
        session.execute(_insert_ignore(session)(ResourceSlot).values([
            {"id": new_id("resource_slot"), "tenant_id": tenant_id,
             "resource_id": service.resource_id, "start_at": s, "taken": 0} for s in adds])
            .on_conflict_do_nothing(index_elements=["tenant_id", "resource_id", "start_at"]))
    where = (ResourceSlot.tenant_id == tenant_id,
             ResourceSlot.resource_id == service.resource_id)
    session.execute(select(ResourceSlot.id).where(*where, ResourceSlot.start_at.in_(sorted(delta)))
                    .order_by(ResourceSlot.start_at).with_for_update()).all()
    if adds and check:
        resource = session.get_one(ServiceResource, (tenant_id, service.resource_id))
        counts = used(session, tenant_id, [resource.id], adds[0], adds[-1] + GRAIN,
                      now)[resource.id]
        # a place given back in the same move counts as free (a reschedule by 30 minutes)
        if any(counts.get(s, 0) + delta[s] > resource.capacity for s in adds):
            return False
    for d in sorted(set(delta.values())):
        session.execute(update(ResourceSlot).where(
            *where, ResourceSlot.start_at.in_([s for s in sorted(delta) if delta[s] == d]))
            .values(taken=ResourceSlot.taken + d).execution_options(synchronize_session=False))
    return True


def services_on(session: Session, tenant_id: str, resource_id: str,
                lock: bool = False) -> Sequence[PointService]:
    """The services that share ``resource_id``, in id order (the order their rows are
    locked in)."""
    stmt = select(PointService).where(PointService.tenant_id == tenant_id,
                                      PointService.resource_id == resource_id
                                      ).order_by(PointService.id)
    if lock:  # NO KEY UPDATE: a booking row being written holds KEY SHARE on its service's
        stmt = stmt.with_for_update(key_share=True).execution_options(populate_existing=True)
    return session.scalars(stmt).all()
