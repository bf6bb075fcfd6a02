"""The next free slots kept per point service (``point_services.next_free``) are the computed
ones: a random walk of holds, bookings, cancellations, reschedules, hold expiries, time
passing (over a daylight-saving night and a past-midnight window), capacity and hours
changes, compared after every step with the slow path — SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import random

from sqlalchemy import event, select

from haina.core.errors import Problem
from haina.o2o import service as o2o
from haina.o2o.models import PointService, ServicePoint
from haina.o2o.schemas import (
    BookingCreate,
    ServicePointCreate,
    ServicePointUpdate,
    ServiceUpdate,
)

# the Saturday before Europe/Berlin's clocks go forward (2027-03-28, 02:00 → 03:00)
START = dt.datetime(2027, 3, 26, 21, 0, tzinfo=dt.UTC)
SEEDS = int(os.environ.get("HAINA_NEXT_FREE_SEEDS", "2"))


def _point(session, tenant, rnd: random.Random, zone: str) -> str:
    hours = []
    for weekday in range(1, 8):
        if rnd.random() < 0.15:
            continue  # closed that weekday
        if rnd.random() < 0.25:
            hours.append({"weekday": weekday, "open": "20:00", "close": "02:00"})
        else:
            hours.append({"weekday": weekday, "open": rnd.choice(["08:00", "09:00"]),
                          "close": rnd.choice(["12:00", "18:00"])})
    service = {"code": "tire-fitting", "duration_minutes": rnd.choice([30, 60, 90]),
               "capacity": rnd.randint(1, 2), "buffer_after_minutes": rnd.choice([0, 15]),
               "price": {"amount": "80.00", "currency": "CNY"}}
    return o2o.create_point(session, tenant, ServicePointCreate.model_validate({
        "name": "bay", "location": {"lat": 31.2 + rnd.random() / 10, "lng": 121.4},
        "timezone": zone, "opening_hours": hours, "services": [service]})).id


def _rows(session, tenant, ids):
    out = []
    for point_id in ids:
        point = session.get_one(ServicePoint, (tenant.id, point_id), populate_existing=True)
        svc = session.scalars(select(PointService).where(
            PointService.tenant_id == tenant.id, PointService.point_id == point_id)
            .execution_options(populate_existing=True)).one()
        out.append((point, svc))
    return out


def _plain(slots):
    return {k: [(s.start.isoformat(), s.end.isoformat(), s.capacity, s.available) for s in v]
            for k, v in slots.items()}


def _check(session, tenant, ids, now) -> int:
    """The kept answer (where fresh) equals the computed one; returns how many were kept."""
    rows = _rows(session, tenant, ids)
    for n in (1, 3):
        got = o2o.next_free_slots(session, tenant, rows, now, n)
        want = o2o.computed_next_free_slots(session, tenant, rows, now, n)
        assert _plain(got) == _plain(want), (now, [(p.id, s.next_free) for p, s in rows])
    return sum(1 for _, s in rows if s.next_free_until is not None and now < s.next_free_until)


def _walk(session, tenant, seed: int, steps: int = 70) -> tuple[int, int]:
    rnd = random.Random(seed)
    ids = [_point(session, tenant, rnd, zone) for zone in
           ("Europe/Berlin", "Asia/Shanghai", "Europe/Berlin")]
    now = START
    o2o.refresh_next_free(session, now)
    live: list[str] = []
    kept = checks = 0
    for _ in range(steps):
        action = rnd.random()
        point_id = rnd.choice(ids)
        try:
            with session.begin_nested():  # a refusal undoes its step, as a request would
                if action < 0.45:  # hold or book one of the next free slots, sometimes a full one
                    rows = _rows(session, tenant, [point_id])
                    free = o2o.computed_next_free_slots(session, tenant, rows, now, 4)[point_id]
                    if free:
                        b = o2o.book(session, tenant, BookingCreate(
                            service_point_id=point_id, service="tire-fitting",
                            start=rnd.choice(free).start, hold=rnd.random() < 0.5), now=now)
                        live.append(b.id)
                elif action < 0.55 and live:
                    o2o.cancel(session, tenant, live.pop(rnd.randrange(len(live))), now=now)
                elif action < 0.62 and live:
                    b = o2o.get_booking(session, tenant, rnd.choice(live))
                    o2o.reschedule(session, tenant, b.id, b.start + dt.timedelta(hours=24), now=now)
                elif action < 0.67 and live:
                    o2o.confirm(session, tenant, rnd.choice(live), now=now)
                elif action < 0.85:
                    now += dt.timedelta(minutes=rnd.choice([5, 11, 45, 130, 400]))
                    if rnd.random() < 0.5:
                        o2o.expire_holds(session, now)
                    if rnd.random() < 0.5:
                        o2o.refresh_next_free(session, now)
                elif action < 0.92:
                    o2o.update_service(session, tenant, point_id, "tire-fitting",
                                       ServiceUpdate(capacity=rnd.randint(1, 3)))
                else:
                    day = (now + dt.timedelta(days=rnd.randint(0, 3))).date()
                    o2o.update_point(session, tenant, point_id, ServicePointUpdate.model_validate(
                        {"exceptions": [{"date": day.isoformat()}]}))
        except Problem:
            pass  # a full slot, a moved-to time that is no slot, a hold run out
        session.flush()
        kept += _check(session, tenant, ids, now)
        checks += len(ids)
    return kept, checks


def test_the_kept_next_free_slots_are_the_computed_ones_through_a_random_walk(session, tenant):
    kept = checks = 0
    for seed in range(SEEDS):
        k, c = _walk(session, tenant, seed)
        kept, checks = kept + k, checks + c
    # the comparison is not empty: most reads were answered from the kept slots
    assert kept > checks / 2, (kept, checks)


def test_fresh_next_free_slots_are_read_without_a_statement(session, tenant, engine):
    rnd = random.Random(7)
    ids = [_point(session, tenant, rnd, "Asia/Shanghai") for _ in range(4)]
    o2o.refresh_next_free(session, START)
    rows = _rows(session, tenant, ids)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)
    event.listen(engine, "before_cursor_execute", count)
    try:
        got = o2o.next_free_slots(session, tenant, rows, START, 3)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements == []
    assert got == o2o.computed_next_free_slots(session, tenant, rows, START, 3)
    assert all(len(v) == 3 for v in got.values())


def test_a_point_changed_or_a_slot_begun_is_computed_again(session, tenant):
    rnd = random.Random(3)
    point_id = _point(session, tenant, rnd, "Asia/Shanghai")
    assert o2o.refresh_next_free(session, START) >= 1
    assert o2o.refresh_next_free(session, START) == 0  # all fresh now
    o2o.update_point(session, tenant, point_id,
                     ServicePointUpdate.model_validate({"status": "closed"}))
    assert o2o.refresh_next_free(session, START) == 1
    [(_, svc)] = _rows(session, tenant, [point_id])
    later = svc.next_free_until
    assert later is not None and later > START
    assert o2o.refresh_next_free(session, later) == 1  # went stale when its time came
