"""Bookings: the contract, no slot ever booked past its capacity (50 buyers at once for a
2-bay slot), holds that expire, reschedule, cancel, check-in, completion, and their events —
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

from o2o_support import make_point
from support import check_event_streams

from haina.core.db import transaction
from haina.core.errors import Problem
from haina.o2o import service as o2o
from haina.o2o.schemas import BookingCreate

SHANGHAI = ZoneInfo("Asia/Shanghai")


def slot_at(days: int = 7, hour: int = 10) -> str:
    day = dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=SHANGHAI).isoformat()


def book(client, point, start, **extra):
    return client.post("/v1/bookings", json={"service_point_id": point["id"],
                                             "service": "tire-fitting", "start": start, **extra})


def places_left(client, point, start):
    day = start[:10]
    slots = client.get(f"/v1/service-points/{point['id']}/slots",
                       params={"service": "tire-fitting", "date": day}).json()["data"]
    return {s["start"]: s["available"] for s in slots}[start]


def test_a_booking_is_201_with_its_status_until_the_slot_is_full_then_409(client, db_url):
    point = make_point(client, capacity=2)
    start = slot_at()
    first = book(client, point, start)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "confirmed" and first.json()["id"].startswith("bkg_")
    assert first.json()["start"] == start and first.json()["price"]["amount"] == "80.00"
    assert places_left(client, point, start) == 1
    assert book(client, point, start).status_code == 201
    full = book(client, point, start)
    assert full.status_code == 409 and full.json()["type"].endswith("slot-full")
    assert full.headers["content-type"].startswith("application/problem+json")
    assert places_left(client, point, start) == 0
    # the next slot is free, a time between slots is none, a past one is refused
    assert book(client, point, slot_at(hour=11)).status_code == 201
    odd = book(client, point, slot_at(hour=10).replace("10:00:00", "10:30:00"))
    assert odd.status_code == 422 and odd.json()["type"].endswith("not-a-slot")
    past = book(client, point, slot_at(days=-1))
    assert past.status_code == 422 and past.json()["type"].endswith("slot-in-past")
    assert book(client, point, "9999-12-31T23:00:00-12:00").status_code == 422
    for far in (book(client, point, "2999-12-31T10:00:00+08:00"),
                client.get(f"/v1/service-points/{point['id']}/slots",
                           params={"service": "tire-fitting", "date": "0001-01-01"})):
        assert far.status_code == 422 and far.json()["type"].endswith("date-out-of-range")
    check_event_streams(db_url)


def acme(sessions):
    from haina.platform import service as platform
    with transaction(sessions) as s:
        return platform.tenant_for_slug(s, "acme")


def test_fifty_buyers_at_once_for_a_two_bay_slot_get_exactly_two_bookings(client, sessions):
    tenant = acme(sessions)
    point = make_point(client, capacity=2)
    start = dt.datetime.fromisoformat(slot_at(days=3, hour=14))
    outcomes: list[str] = []
    errors: list[BaseException] = []
    gate, lock = threading.Barrier(50), threading.Lock()

    def buyer() -> None:
        try:
            gate.wait()
            with transaction(sessions) as s:
                o2o.book(s, tenant, BookingCreate(service_point_id=point["id"],
                                                  service="tire-fitting", start=start))
            with lock:
                outcomes.append("booked")
        except Problem as e:
            with lock:
                outcomes.append(e.slug)
        except BaseException as e:  # noqa: BLE001 — reported below
            errors.append(e)

    threads = [threading.Thread(target=buyer) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(set(outcomes)) == ["booked", "slot-full"]
    assert outcomes.count("booked") == 2
    confirmed = client.get("/v1/bookings", params={"service_point_id": point["id"],
                                                   "status": "confirmed"}).json()["data"]
    assert len(confirmed) == 2
    assert places_left(client, point, start.isoformat()) == 0


def test_a_hold_that_expires_frees_the_slot_lazily_and_by_the_worker(client, sessions, db_url):
    tenant = acme(sessions)
    point = make_point(client, capacity=1)
    start = slot_at(days=2)
    hold = book(client, point, start, hold=True).json()
    assert hold["status"] == "held" and hold["expires_at"]
    assert book(client, point, start).json()["type"].endswith("slot-full")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11)
    # ten minutes on, the slot is free again: the next claim expires the hold first
    with transaction(sessions) as s:
        taken = o2o.book(s, tenant, BookingCreate(service_point_id=point["id"],
                                                  service="tire-fitting",
                                                  start=dt.datetime.fromisoformat(start)),
                         now=later)
    assert taken.status == "confirmed"
    assert client.get(f"/v1/bookings/{hold['id']}").json()["status"] == "expired"
    # a second hold, expired by the worker's sweep, and refused when confirmed late
    other = slot_at(days=2, hour=11)
    second = book(client, point, other, hold=True).json()
    with transaction(sessions) as s:
        try:
            o2o.confirm(s, tenant, second["id"], now=later)
            raise AssertionError("a late confirmation went through")
        except Problem as e:
            assert e.slug == "hold-expired"
    with transaction(sessions) as s:
        assert o2o.expire_holds(s, later) == 1
    with transaction(sessions) as s:
        assert o2o.expire_holds(s, later) == 0  # given back once
    assert client.get(f"/v1/bookings/{second['id']}").json()["status"] == "expired"
    assert places_left(client, point, other) == 1
    # a hold confirmed in time becomes a booking
    third = book(client, point, other, hold=True).json()
    r = client.post(f"/v1/bookings/{third['id']}/confirm")
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    assert r.json()["expires_at"] is None
    check_event_streams(db_url)


def test_reschedule_moves_the_place_at_once_or_not_at_all(client, db_url):
    point = make_point(client, capacity=1)
    ten, eleven, noon = slot_at(hour=10), slot_at(hour=11), slot_at(hour=12)
    b = book(client, point, ten).json()
    book(client, point, noon)  # noon is full
    full = client.post(f"/v1/bookings/{b['id']}/reschedule", json={"start": noon})
    assert full.status_code == 409 and full.json()["type"].endswith("slot-full")
    assert client.get(f"/v1/bookings/{b['id']}").json()["start"] == ten
    assert places_left(client, point, ten) == 0
    moved = client.post(f"/v1/bookings/{b['id']}/reschedule", json={"start": eleven})
    assert moved.status_code == 200 and moved.json()["start"] == eleven
    assert places_left(client, point, ten) == 1 and places_left(client, point, eleven) == 0
    # and back, earlier than where it is (the other lock order)
    back = client.post(f"/v1/bookings/{b['id']}/reschedule", json={"start": ten})
    assert back.json()["start"] == ten and places_left(client, point, eleven) == 1
    check_event_streams(db_url)


def test_cancel_gives_the_place_back_and_a_job_runs_check_in_to_completed(client, db_url):
    point = make_point(client, capacity=1)
    start = slot_at(hour=15)
    b = book(client, point, start).json()
    r = client.post(f"/v1/bookings/{b['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert places_left(client, point, start) == 1
    again = client.post(f"/v1/bookings/{b['id']}/cancel")
    assert again.status_code == 409 and again.json()["type"].endswith("invalid-state")
    job = book(client, point, start).json()
    early = client.post(f"/v1/bookings/{job['id']}/complete")
    assert early.status_code == 409
    assert client.post(f"/v1/bookings/{job['id']}/check-in").json()["status"] == "checked_in"
    done = client.post(f"/v1/bookings/{job['id']}/complete").json()
    assert done["status"] == "completed"
    assert client.post(f"/v1/bookings/{job['id']}/cancel").status_code == 409
    types = [e["type"] for e in client.get("/v1/events", params={"limit": 50}).json()["data"]
             if e["type"].startswith("booking.")]
    assert sorted(set(types)) == ["booking.cancelled", "booking.checked_in",
                                  "booking.completed", "booking.confirmed"]
    check_event_streams(db_url)


def test_a_closed_point_takes_no_bookings(client):
    point = make_point(client)
    client.patch(f"/v1/service-points/{point['id']}", json={"status": "closed"})
    r = book(client, point, slot_at())
    assert r.status_code == 409 and r.json()["type"].endswith("service-point-closed")
    assert places_left(client, point, slot_at()) == 0
