"""Shared capacity: services of a point on one resource (fitting and alignment on one lift)
never take it past its capacity — through the API, with 40 buyers at once, through holds
that run out, reschedules, a service put on and off the resource — and the next free slots
kept for every service on it stay the computed ones. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
import threading
from zoneinfo import ZoneInfo

from o2o_support import EVERY_DAY, SHANGHAI
from sqlalchemy import select
from support import check_event_streams

from haina.core.db import transaction
from haina.core.errors import Problem
from haina.o2o import service as o2o
from haina.o2o.models import PointService, ResourceSlot, ServicePoint
from haina.o2o.schemas import BookingCreate, ServicePointCreate, ServiceUpdate

ZONE = ZoneInfo("Asia/Shanghai")
STEPS = 36  # of the random walk (the suite's time; more steps were run while building it)
PRICE = {"amount": "80.00", "currency": "CNY"}


def lift_point(lift: int = 1, fitting: int = 2, alignment: int = 2, **extra) -> dict:
    return {"name": "Lift shop", "location": {"lat": SHANGHAI[0], "lng": SHANGHAI[1]},
            "opening_hours": EVERY_DAY, "resources": [{"code": "lift", "capacity": lift}],
            "services": [
                {"code": "tire-fitting", "duration_minutes": 60, "capacity": fitting,
                 "price": PRICE, "resource": "lift"},
                {"code": "alignment", "duration_minutes": 30, "capacity": alignment,
                 "price": PRICE, "resource": "lift"},
                {"code": "car-wash", "duration_minutes": 30, "capacity": 1, "price": PRICE}],
            **extra}


def at(hour: int, minute: int = 0, days: int = 5) -> str:
    day = dt.datetime.now(ZONE).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ZONE).isoformat()


def book(client, point, service, start, **extra):
    return client.post("/v1/bookings", json={"service_point_id": point["id"],
                                             "service": service, "start": start, **extra})


def left(client, point, service, start) -> int:
    slots = client.get(f"/v1/service-points/{point['id']}/slots",
                       params={"service": service, "date": start[:10]}).json()["data"]
    return {s["start"]: s["available"] for s in slots}[start]


def test_fitting_and_alignment_share_one_lift(client, db_url):
    r = client.post("/v1/service-points", json=lift_point())
    assert r.status_code == 201, r.text
    point = r.json()
    assert point["resources"] == [{"id": point["resources"][0]["id"], "code": "lift",
                                   "name": "lift", "capacity": 1,
                                   "services": ["alignment", "tire-fitting"]}]
    assert {s["code"]: s["resource"] for s in point["services"]} == {
        "alignment": "lift", "tire-fitting": "lift", "car-wash": None}
    fitting = book(client, point, "tire-fitting", at(10))
    assert fitting.status_code == 201, fitting.text
    # the lift is taken 10:00-11:00: alignment at 10:00 and 10:30 is full, not at 9:30 or 11:00
    assert [left(client, point, "alignment", at(10, m)) for m in (0, 30)] == [0, 0]
    assert left(client, point, "alignment", at(9, 30)) == 1
    assert left(client, point, "alignment", at(11)) == 1
    assert left(client, point, "tire-fitting", at(10)) == 0  # the slot has 2, the lift 1
    assert left(client, point, "car-wash", at(10)) == 1  # not on the lift
    full = book(client, point, "alignment", at(10, 30))
    assert full.status_code == 409 and full.json()["type"].endswith("slot-full")
    assert full.json()["reason"] == "resource-full"
    assert book(client, point, "alignment", at(11)).status_code == 201
    assert book(client, point, "car-wash", at(10)).status_code == 201
    # cancelling the fitting frees the lift for alignment at 10:30
    assert client.post(f"/v1/bookings/{fitting.json()['id']}/cancel").status_code == 200
    assert left(client, point, "alignment", at(10, 30)) == 1
    second = book(client, point, "alignment", at(10, 30))
    assert second.status_code == 201
    # a second lift: fitting at 10:00 again beside the alignment
    r = client.patch(f"/v1/service-points/{point['id']}/resources/lift", json={"capacity": 2})
    assert r.status_code == 200 and r.json()["resources"][0]["capacity"] == 2
    assert book(client, point, "tire-fitting", at(10)).status_code == 201
    assert left(client, point, "alignment", at(10, 30)) == 0
    # reschedule the alignment 10:30 → 11:30: the move needs the lift at 11:30 only
    moved = client.post(f"/v1/bookings/{second.json()['id']}/reschedule",
                        json={"start": at(11, 30)})
    assert moved.status_code == 200, moved.text
    assert left(client, point, "alignment", at(10, 30)) == 1
    missing = client.patch(f"/v1/service-points/{point['id']}/services/alignment",
                           json={"resource": "bench"})
    assert missing.status_code == 404 and missing.json()["type"].endswith("resource-not-found")
    again = client.post(f"/v1/service-points/{point['id']}/resources",
                        json={"code": "lift", "capacity": 1})
    assert again.status_code == 409 and again.json()["type"].endswith("resource-exists")
    bad = client.post("/v1/service-points", json=lift_point(services=[
        {"code": "x", "duration_minutes": 30, "price": PRICE, "resource": "nope"}]))
    assert bad.status_code == 422
    types = [e["type"] for e in client.get("/v1/events", params={"limit": 200}).json()["data"]]
    assert "service_resource.created" in types and "service_resource.updated" in types
    check_event_streams(db_url)


def test_a_service_put_on_a_lift_brings_its_bookings_and_off_takes_them(client):
    point = client.post("/v1/service-points", json=lift_point()).json()
    wash = book(client, point, "car-wash", at(14)).json()
    assert left(client, point, "alignment", at(14)) == 1
    r = client.post(f"/v1/service-points/{point['id']}/resources",
                    json={"code": "bay", "capacity": 1})
    assert r.status_code == 201, r.text
    r = client.patch(f"/v1/service-points/{point['id']}/services/car-wash",
                     json={"resource": "lift"})
    assert r.status_code == 200, r.text
    assert left(client, point, "alignment", at(14)) == 0  # the wash's booking holds the lift
    assert book(client, point, "tire-fitting", at(14)).json()["type"].endswith("slot-full")
    client.patch(f"/v1/service-points/{point['id']}/services/car-wash", json={"resource": None})
    assert left(client, point, "alignment", at(14)) == 1
    assert client.post(f"/v1/bookings/{wash['id']}/cancel").status_code == 200
    assert left(client, point, "car-wash", at(14)) == 1


def acme(sessions):
    from haina.platform import service as platform
    with transaction(sessions) as s:
        return platform.tenant_for_slug(s, "acme")


def test_forty_buyers_of_two_services_at_once_get_exactly_the_lifts(client, sessions):
    """Fitting at 10:00 needs the one lift when alignment at 10:00 or 10:30 does; at 14:00
    fitting and at 15:00 alignment need it at other times (they must not wait on each other
    forever: no deadlock)."""
    tenant = acme(sessions)
    point = client.post("/v1/service-points", json=lift_point(fitting=3, alignment=3)).json()
    wanted = [("tire-fitting", at(10)), ("alignment", at(10)), ("alignment", at(10, 30)),
              ("tire-fitting", at(14)), ("alignment", at(15))] * 8
    outcomes: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    gate, lock = threading.Barrier(len(wanted)), threading.Lock()

    def buyer(code: str, start: str) -> None:
        try:
            gate.wait()
            with transaction(sessions) as s:
                o2o.book(s, tenant, BookingCreate(service_point_id=point["id"], service=code,
                                                  start=dt.datetime.fromisoformat(start)))
            with lock:
                outcomes.append((f"{code} {start}", "booked"))
        except Problem as e:
            with lock:
                outcomes.append((f"{code} {start}", e.slug))
        except BaseException as e:  # noqa: BLE001 — reported below
            errors.append(e)

    threads = [threading.Thread(target=buyer, args=w) for w in wanted]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    booked = [job for job, outcome in outcomes if outcome == "booked"]
    morning = [job for job in booked if job.endswith((at(10), at(10, 30)))]
    # the one lift at 10:00-11:00: a fitting, or the two alignments one after the other
    assert sorted(morning) in ([f"tire-fitting {at(10)}"],
                               [f"alignment {at(10)}", f"alignment {at(10, 30)}"])
    assert sorted(set(booked) - set(morning)) == [f"alignment {at(15)}",
                                                 f"tire-fitting {at(14)}"]
    assert len(booked) == 2 + len(morning)
    assert {o for _, o in outcomes} == {"booked", "slot-full"}
    with transaction(sessions) as s:
        counts = s.scalars(select(ResourceSlot.taken).where(
            ResourceSlot.tenant_id == tenant.id)).all()
    # 5-minute stretches: 60 minutes of fitting at 14:00, 30 of alignment at 15:00, the morning's
    assert max(counts) == 1
    assert sum(counts) == 12 + 6 + 12


def _while_put_on_the_lift(sessions, tenant, point, act) -> None:
    """``act()`` (a booking or a cancellation in its own transaction) run while another
    transaction has put the car wash on the lift and not yet committed."""
    moved, errors = threading.Event(), []

    def mover() -> None:
        try:
            with transaction(sessions) as s:
                o2o.update_service(s, tenant, point["id"], "car-wash",
                                   ServiceUpdate(resource="lift"))
                moved.set()
                threading.Event().wait(0.8)  # act() starts meanwhile and must wait
        except BaseException as e:  # noqa: BLE001 — reported below
            errors.append(e)
            moved.set()

    t = threading.Thread(target=mover)
    t.start()
    moved.wait(30)
    act()
    t.join(60)
    assert errors == []


def test_a_claim_or_release_while_its_service_is_put_on_a_resource_counts_there(
        client, sessions):
    """A booking made, or one cancelled, while its service is being put on the lift: the
    lift's places come out as if one had happened after the other (it holds the new
    booking's place; it does not keep the cancelled one's)."""
    tenant = acme(sessions)
    point = client.post("/v1/service-points", json=lift_point()).json()
    made: list[str] = []

    def make() -> None:
        with transaction(sessions) as s:
            made.append(o2o.book(s, tenant, BookingCreate(
                service_point_id=point["id"], service="car-wash",
                start=dt.datetime.fromisoformat(at(14)))).id)

    _while_put_on_the_lift(sessions, tenant, point, make)
    assert left(client, point, "alignment", at(14)) == 0  # the wash holds the lift then
    assert book(client, point, "tire-fitting", at(14)).json()["type"].endswith("slot-full")
    # off the lift again, a booking at 16:00, then the same race with its cancellation
    assert client.patch(f"/v1/service-points/{point['id']}/services/car-wash",
                        json={"resource": None}).status_code == 200
    wash = book(client, point, "car-wash", at(16)).json()
    assert left(client, point, "alignment", at(16)) == 1

    def cancel() -> None:
        with transaction(sessions) as s:
            o2o.cancel(s, tenant, wash["id"])

    _while_put_on_the_lift(sessions, tenant, point, cancel)
    assert left(client, point, "alignment", at(16)) == 1  # the cancelled wash holds nothing
    assert left(client, point, "alignment", at(14)) == 0


def test_a_hold_run_out_on_one_service_frees_the_lift_for_the_other(client, sessions):
    tenant = acme(sessions)
    point = client.post("/v1/service-points", json=lift_point()).json()
    hold = book(client, point, "tire-fitting", at(10), hold=True).json()
    assert hold["status"] == "held"
    assert book(client, point, "alignment", at(10, 30)).json()["type"].endswith("slot-full")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11)
    start = dt.datetime.fromisoformat(at(10, 30))
    with transaction(sessions) as s:  # the fitting's hold has run out: not counted
        assert o2o.slots(s, tenant, point["id"], "alignment", start.date(),
                         now=later).data[3].available == 1
        o2o.book(s, tenant, BookingCreate(service_point_id=point["id"], service="alignment",
                                          start=start), now=later)
        assert o2o.expire_holds(s, later) == 1
    with transaction(sessions) as s:
        counts = s.scalars(select(ResourceSlot.taken).where(
            ResourceSlot.tenant_id == tenant.id, ResourceSlot.taken > 0)).all()
    assert counts == [1] * 6  # only the alignment's 30 minutes


# ---------------------------------------------------------------- the kept slots

def _rows(session, tenant, point_id):
    point = session.get_one(ServicePoint, (tenant.id, point_id), populate_existing=True)
    return [(point, s) for s in session.scalars(select(PointService).where(
        PointService.tenant_id == tenant.id, PointService.point_id == point_id)
        .order_by(PointService.code).execution_options(populate_existing=True))]


def _plain(slots):
    return {k: [(s.start.isoformat(), s.available) for s in v] for k, v in slots.items()}


def test_the_kept_slots_of_every_service_on_a_lift_follow_claims_of_any(session, tenant):
    """A random walk of holds, bookings, cancellations, reschedules, expiries and time on a
    point whose fitting (60 min, 15 after) and alignment (30 min) share a lift: after every
    step each service's kept next free slots equal the computed ones."""
    rnd = random.Random(11)
    now = dt.datetime(2027, 3, 1, 0, 30, tzinfo=dt.UTC)  # Monday 08:30 in Shanghai
    body = lift_point(lift=1, fitting=2, alignment=1)
    body["services"][0]["buffer_after_minutes"] = 15
    body["services"] = body["services"][:2]
    point_id = o2o.create_point(session, tenant, ServicePointCreate.model_validate(body)).id
    o2o.refresh_next_free(session, now)
    live: list[str] = []
    kept = 0
    for _ in range(STEPS):
        code = rnd.choice(["tire-fitting", "alignment"])
        action = rnd.random()
        try:
            with session.begin_nested():
                if action < 0.5:
                    rows = [r for r in _rows(session, tenant, point_id) if r[1].code == code]
                    free = o2o.computed_next_free_slots(session, tenant, rows, now, 4)[point_id]
                    if free:
                        live.append(o2o.book(session, tenant, BookingCreate(
                            service_point_id=point_id, service=code,
                            start=rnd.choice(free).start, hold=rnd.random() < 0.5),
                            now=now).id)
                elif action < 0.62 and live:
                    o2o.cancel(session, tenant, live.pop(rnd.randrange(len(live))), now=now)
                elif action < 0.72 and live:
                    b = o2o.get_booking(session, tenant, rnd.choice(live))
                    step = 30 if b.service == "alignment" else 75
                    o2o.reschedule(session, tenant, b.id,
                                   b.start + dt.timedelta(minutes=rnd.choice([-step, step])),
                                   now=now)
                elif action < 0.9:
                    now += dt.timedelta(minutes=rnd.choice([5, 11, 45, 130]))
                    if rnd.random() < 0.5:
                        o2o.expire_holds(session, now)
                else:
                    o2o.update_service(session, tenant, point_id, code,
                                       ServiceUpdate(capacity=rnd.randint(1, 2)))
        except Problem:
            pass
        session.flush()
        rows = _rows(session, tenant, point_id)
        for point, service in rows:
            got = o2o.next_free_slots(session, tenant, [(point, service)], now, 3)
            want = o2o.computed_next_free_slots(session, tenant, [(point, service)], now, 3)
            assert _plain(got) == _plain(want), (now, service.code)
            kept += service.next_free_until is not None and now < service.next_free_until
    assert kept > STEPS  # most of the 2 × STEPS reads came from the kept slots


def test_the_installer_day_lists_a_point_bookings_of_one_local_date(client):
    point = client.post("/v1/service-points", json=lift_point()).json()
    ids = [book(client, point, "car-wash", start).json()["id"]
           for start in (at(9, days=4), at(17, days=4), at(9, days=5))]
    day = at(9, days=4)[:10]
    listed = client.get("/v1/bookings", params={"service_point_id": point["id"], "date": day})
    assert listed.status_code == 200, listed.text
    assert sorted(b["id"] for b in listed.json()["data"]) == sorted(ids[:2])
    alone = client.get("/v1/bookings", params={"date": day})
    assert alone.status_code == 422 and alone.json()["type"].endswith("date-needs-service-point")
    far = client.get("/v1/bookings", params={"service_point_id": point["id"],
                                              "date": "0001-01-01"})
    assert far.status_code == 422 and far.json()["type"].endswith("date-out-of-range")
