"""The console's service points (``haina.o2o``): a map of the merchant's points on their h3
cells drawn without tiles, a point's page (hours, services, a week of bookings) and booking a
slot for an order. Routes register on the console's router (``haina.console.web``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import h3
from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from haina.console import charts
from haina.console.web import PAGE_SIZE, Visit, _act, _back, _page, _t, _view, router
from haina.core.errors import Invalid
from haina.core.http import SessionDep
from haina.o2o import service as o2o
from haina.o2o.schemas import BookingCreate, BookingOut, ServicePointOut
from haina.orders import service as orders

MAP_RESOLUTION = 5  # cells about 8 km across: a city's points fall in a handful of them
MAP_POINTS = 500    # the most points drawn on the map
RATINGS_SHOWN = 20  # a point's latest ratings per page (older ones: ?ratings=<cursor>)
# an order in one of these states gets no new appointment
NOT_BOOKABLE = ("cancelled", "refunded")


def _all_points(session: Session, v: Visit) -> list[ServicePointOut]:
    found: list[ServicePointOut] = []
    cursor = None
    while len(found) < MAP_POINTS:
        page = o2o.list_points(session, v.tenant, limit=100, cursor=cursor)
        found += page.data
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    return found[:MAP_POINTS]


def point_map(v: Visit, points: list[ServicePointOut]) -> str:
    cells: dict[str, list[str]] = {}
    for p in points:
        cell = h3.latlng_to_cell(p.location.lat, p.location.lng, MAP_RESOLUTION)
        cells.setdefault(cell, []).append(p.name)
    hexes = [(h3.cell_to_boundary(cell), len(names),
              _t(v, "%(n)s points: %(names)s") % {"n": len(names), "names": ", ".join(names)})
             for cell, names in sorted(cells.items())]
    pins = [(p.location.lat, p.location.lng, p.name) for p in points]
    return charts.hex_map(_t(v, "Service points on their h3 cells (about 8 km across)"),
                          hexes, pins)


@router.get("/console/service-points")
@_view
def point_list(request: Request, session: SessionDep, v: Visit,
               order: str | None = None) -> Response:
    points = _all_points(session, v)
    booking_for = orders.get_order(session, v.tenant, order.strip()[:40]) if order else None
    partnerships = o2o.list_partnerships(session, v.tenant, limit=100).data
    return _page(request, v, "console/points.html", title=_t(v, "Service points"),
                 points=points[:PAGE_SIZE * 8], figure=point_map(v, points) if points else "",
                 order=booking_for, partnerships=partnerships)


def _day(text: str | None, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(text or "")
    except ValueError:
        return default


def _local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)


@dataclass(frozen=True)
class Day:
    date: dt.date
    bookings: list[BookingOut]


def _week(session: Session, v: Visit, point: ServicePointOut, monday: dt.date) -> list[Day]:
    """The point's bookings of the week from ``monday``, by the local day they start on."""
    zone = ZoneInfo(point.timezone)
    found = o2o.bookings_between(session, v.tenant, point.id, _local_midnight(monday, zone),
                                 _local_midnight(monday + dt.timedelta(days=7), zone))
    days = [Day(monday + dt.timedelta(days=i), []) for i in range(7)]
    for b in found:
        days[(b.start.astimezone(zone).date() - monday).days].bookings.append(b)
    return days


@router.get("/console/service-points/{point_id}")
@_view
def point_page(request: Request, session: SessionDep, v: Visit, point_id: str,
               week: str | None = None, service: str | None = None, date: str | None = None,
               order: str | None = None, ratings: str | None = None) -> Response:
    point = o2o.get_point(session, v.tenant, point_id)  # the merchant's own (a partner's: 404)
    today = dt.datetime.now(ZoneInfo(point.timezone)).date()
    shown = _day(week, today)
    monday = shown - dt.timedelta(days=shown.weekday())
    codes = [s.code for s in point.services]
    service = service if service in codes else (codes[0] if codes else None)
    day = _day(date, today)
    booking_for = orders.get_order(session, v.tenant, order.strip()[:40]) if order else None
    slots = None
    if service and (date or booking_for):
        slots = o2o.slots(session, v.tenant, point.id, service, day)

    def link(**params: str) -> str:
        base = {"order": booking_for.id if booking_for else None, "service": service}
        return request.url.path + "?" + urlencode(
            {k: val for k, val in {**base, **params}.items() if val})

    # the latest ratings, newest first; a bad cursor is the console's invalid-cursor page
    rated = o2o.list_ratings(session, v.tenant, point.id, limit=RATINGS_SHOWN, cursor=ratings)
    older = link(week=week or "", ratings=rated.next_cursor or "") + "#ratings" \
        if rated.next_cursor else None
    hours: dict[int, list[str]] = {}
    for h in point.opening_hours:
        hours.setdefault(int(h["weekday"]), []).append(f"{h['open']}–{h['close']}")
    return _page(request, v, "console/point.html", title=point.name, point=point,
                 hours=hours, days=_week(session, v, point, monday),
                 today=today, zone=ZoneInfo(point.timezone),
                 prev_week=link(week=(monday - dt.timedelta(days=7)).isoformat()),
                 next_week=link(week=(monday + dt.timedelta(days=7)).isoformat()),
                 service=service, day=day, slots=slots, order=booking_for,
                 ratings=rated.data, older_ratings=older, ratings_paged=bool(ratings))


@router.post("/console/service-points/{point_id}/bookings")
async def book_for_order(request: Request, point_id: str) -> Response:
    """Book a slot for an order: held and confirmed for the order in one unit of work (the
    slot's counter claimed as the API's bookings are; 409 when it is full)."""
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        order = orders.get_order(session, v.tenant, form.get("order_id", "").strip()[:40])
        if order.status in NOT_BOOKABLE:
            raise Invalid(f"order {order.id} is {order.status}: it gets no appointment",
                          slug="order-not-bookable")
        try:
            data = BookingCreate.model_validate({
                "service_point_id": point_id, "service": form.get("service", ""),
                "start": form.get("start", ""), "hold": True, "member_id": order.member_id,
                "note": form.get("note", "").strip() or None})
        except ValidationError as exc:
            raise Invalid("choose a slot: " + "; ".join(e["msg"] for e in exc.errors()),
                          slug="bad-booking") from None
        held = o2o.book(session, v.tenant, data)
        booked = o2o.confirm(session, v.tenant, held.id, order_id=order.id)
        return _back(f"/console/service-points/{point_id}", booked=booked.id,
                     week=booked.start.date().isoformat())

    return await _act(request, "book_slot", work)
