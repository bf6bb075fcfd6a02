"""Ratings of points after the job: a buyer rates a completed booking once (1-5, an optional
comment); the point keeps how many ratings it has and their sum, so its answer, ``nearby``
and ``search`` show the average without reading the ratings.

A rating locks its booking's row first (two ratings of one booking wait for each other and
the second finds the first: 409 ``already-rated``; the unique (tenant_id, booking_id) backs
it), writes the rating, then adds to the point's counters in one UPDATE (``rating_count =
rating_count + 1``): concurrent ratings of different bookings of one point queue on the
point's row and none is lost. The booking's own lock comes first, as in every booking flow.

A rating is kept where its booking is: the installer's tenant for a booking at a partner's
point (``merchant_tenant_id`` names the merchant whose buyer rated), so the installer's point
carries it for every merchant. Its comment is the member's personal information: exported
with the member's data and cleared by erasure (the score stays, in the point's average).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.db import rowcount, tenant_row, utcnow
from haina.core.errors import Conflict, Forbidden
from haina.core.ids import new_id
from haina.core.pagination import Page, paginate
from haina.core.personal import export_rows
from haina.members import service as members
from haina.o2o import partners
from haina.o2o.bookings import _record
from haina.o2o.models import Booking, PartnerBooking, Rating, ServicePoint
from haina.o2o.points import point_row
from haina.o2o.schemas import RatingIn, RatingOut


class AlreadyRated(Conflict):
    slug, title = "already-rated", "This booking has been rated"


class NotCompleted(Conflict):
    slug, title = "booking-not-completed", "Only a completed booking can be rated"


class NotTheMember(Forbidden):
    slug, title = "not-the-bookings-member", "Only the booking's member can rate it"


def _out(r: Rating, service: str | None = None) -> RatingOut:
    return RatingOut(id=r.id, booking_id=r.booking_id, service_point_id=r.point_id,
                     service=service, member_id=r.member_id, score=r.score, comment=r.comment,
                     created_at=r.created_at)


def rate(session: Session, tenant: Tenant, booking_id: str, data: RatingIn,
         member_id: str | None, now: dt.datetime | None = None) -> RatingOut:
    """The booking's member rates it, once it is completed (the merchant on the member's
    behalf, or the storefront's signed-in buyer): 409 ``booking-not-completed``, 409
    ``already-rated``, 403 ``not-the-bookings-member``; 404 for a booking the caller
    cannot see. The point's count and sum follow in the same transaction."""
    now = now or utcnow()
    merchant = tenant
    owner = partners.booking_owner(session, merchant, booking_id)  # 404 first
    if member_id is not None:
        # 404 member-not-found; 409 member-erased for a person erased at their request
        members.resolve_buyer_id(session, merchant, member_id)
    b: Booking = tenant_row(session, owner.id, Booking, booking_id, "booking", lock=True)
    if b.member_id is None or b.member_id != member_id:
        raise NotTheMember(f"booking {b.id} is not member {member_id}'s: only its member "
                           "rates it", booking_id=b.id)
    if b.status != "completed":
        raise NotCompleted(f"booking {b.id} is {b.status}: a booking is rated once the job "
                           "is done (completed)", status_now=b.status)
    if session.scalar(select(Rating.id).where(Rating.tenant_id == owner.id,
                                              Rating.booking_id == b.id)) is not None:
        raise AlreadyRated(f"booking {b.id} has been rated already (once per booking)")
    row = Rating(id=new_id("rating"), tenant_id=owner.id, booking_id=b.id, point_id=b.point_id,
                 member_id=b.member_id, score=data.score, comment=data.comment,
                 created_at=now, merchant_tenant_id=b.merchant_tenant_id)
    session.add(row)
    session.flush()
    session.execute(update(ServicePoint).where(
        ServicePoint.tenant_id == owner.id, ServicePoint.id == b.point_id)
        .values(rating_count=ServicePoint.rating_count + 1,
                rating_sum=ServicePoint.rating_sum + data.score)
        .execution_options(synchronize_session=False))
    # the comment is the member's to erase: the event tells that there is one, not what
    _record(session, b, "booking.rated",
            {"status": b.status, "rating_id": row.id, "service_point_id": b.point_id,
             "score": data.score, "member_id": b.member_id,
             "has_comment": row.comment is not None})
    return _out(row, b.service_code)


def list_ratings(session: Session, tenant: Tenant, point_id: str, *, limit: int = 50,
                 cursor: str | None = None) -> Page[RatingOut]:
    """The ratings of one of the caller's own points, newest first (a partner installer's
    point is the installer's to read: its ratings come from every merchant's buyers)."""
    point = point_row(session, tenant, point_id)
    stmt = select(Rating).where(Rating.tenant_id == tenant.id, Rating.point_id == point.id)
    page = paginate(session, stmt, Rating.id, limit=limit, cursor=cursor,
                    convert=lambda r: r, kind="rating")
    codes = {i: code for i, code in session.execute(select(Booking.id, Booking.service_code)
                                                    .where(Booking.tenant_id == tenant.id,
                                                           Booking.id.in_([r.booking_id for r in page.data])))}
    return Page[RatingOut](data=[_out(r, codes.get(r.booking_id)) for r in page.data],
                           has_more=page.has_more, next_cursor=page.next_cursor)


def _partner_rating_ids(session: Session, tenant: Tenant,
                        member_ids: Sequence[str]) -> dict[str, list[str]]:
    """The member's bookings at partners' points (through the merchant's link rows):
    installer tenant id → booking ids."""
    out: dict[str, list[str]] = {}
    for installer_id, booking_id in session.execute(select(
            PartnerBooking.installer_tenant_id, PartnerBooking.id).where(
            PartnerBooking.tenant_id == tenant.id,
            PartnerBooking.member_id.in_(list(member_ids)))):
        out.setdefault(installer_id, []).append(booking_id)
    return out


def export_ratings(session: Session, tenant: Tenant,
                   member_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The member's ratings: of the merchant's own points, and of partners' points made
    through the merchant (kept by the installers, found through the link rows)."""
    rows = export_rows(session, Rating.__table__, tenant.id, "member_id", member_ids)
    for installer_id, booking_ids in _partner_rating_ids(session, tenant, member_ids).items():
        rows += [r for r in export_rows(session, Rating.__table__, installer_id, "booking_id",
                                        booking_ids) if r["merchant_tenant_id"] == tenant.id]
    return {"o2o_ratings": rows}


def erase_ratings(session: Session, tenant: Tenant, member_ids: Sequence[str]) -> int:
    """Clear the comments of the member's ratings (the score stays: it is in the point's
    average, and says nothing of the person); partners' too."""
    changed = rowcount(session.execute(update(Rating).where(
        Rating.tenant_id == tenant.id, Rating.member_id.in_(list(member_ids)),
        Rating.comment.is_not(None)).values(comment=None)))
    for installer_id, booking_ids in _partner_rating_ids(session, tenant, member_ids).items():
        changed += rowcount(session.execute(update(Rating).where(
            Rating.tenant_id == installer_id, Rating.booking_id.in_(booking_ids),
            Rating.merchant_tenant_id == tenant.id,
            Rating.comment.is_not(None)).values(comment=None)))
    return changed
