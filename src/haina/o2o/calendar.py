"""A point's bookings between two instants (the console's week view, an installer's day):
read only, oldest first, each in the point's time zone."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.o2o.bookings import _out, _zone, with_ratings
from haina.o2o.models import Booking, PointService
from haina.o2o.points import point_row
from haina.o2o.schemas import BookingOut

#: a week of a busy point is a few hundred bookings; more than this is not a calendar
MAX_BOOKINGS = 2000


def bookings_between(session: Session, tenant: Tenant, point_id: str, since: dt.datetime,
                     until: dt.datetime) -> list[BookingOut]:
    """The point's bookings starting in ``[since, until)``, every state, by start (404 for
    another merchant's point)."""
    point = point_row(session, tenant, point_id)
    zone = _zone(point)
    services = select(PointService.id).where(PointService.tenant_id == tenant.id,
                                             PointService.point_id == point.id)
    # by service and start: ix_bookings_tenant_service_start
    rows = session.scalars(select(Booking).where(
        Booking.tenant_id == tenant.id, Booking.service_id.in_(services),
        Booking.start_at >= since, Booking.start_at < until)
        .order_by(Booking.start_at, Booking.id).limit(MAX_BOOKINGS))
    out = [_out(b, zone) for b in rows]
    with_ratings(session, tenant.id, out)  # the week's completed jobs' ratings, one read
    return out
