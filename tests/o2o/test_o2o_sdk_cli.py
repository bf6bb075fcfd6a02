"""O2O through the SDK (``haina.client``: service points, slots, bookings, search,
partnerships, over HTTP on loopback) and the ``haina o2o`` commands (in process), with their
one-line errors — SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from o2o_support import point_body
from support import make_tenant, run_cli, served_app

from haina.client import Haina, HainaError

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def served(engine):
    with served_app(engine) as url:
        yield url


def _start(days: int = 6, hour: int = 10) -> dt.datetime:
    day = dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=SHANGHAI)


def test_points_slots_bookings_search_and_partners_through_the_sdk(served, sessions):
    _, token = make_tenant(sessions, "acme")
    _, fitter_token = make_tenant(sessions, "fitters")
    with Haina(served, token, max_wait=2) as shop, Haina(served, fitter_token,
                                                         max_wait=2) as fitters:
        point = shop.service_points.create(**point_body(capacity=1))
        assert shop.service_points.get(point.id).services[0].code == "tire-fitting"
        assert [p.id for p in shop.service_points.iterate()] == [point.id]
        start = _start()
        day = shop.service_points.slots(point.id, "tire-fitting", start.date())
        assert start in [s.start for s in day.data]
        booked = shop.bookings.create(point.id, "tire-fitting", start)
        assert booked.status == "confirmed" and booked.start == start
        with pytest.raises(HainaError) as full:
            shop.bookings.create(point.id, "tire-fitting", start)
        assert full.value.status == 409 and full.value.type.endswith("slot-full")
        moved = shop.bookings.reschedule(booked.id, start + dt.timedelta(hours=1))
        assert moved.start == start + dt.timedelta(hours=1)
        assert shop.bookings.check_in(booked.id).status == "checked_in"
        assert shop.bookings.complete(booked.id).status == "completed"
        assert [b.id for b in shop.bookings.list(service_point_id=point.id).data] == [booked.id]
        # the job done for a member: rated on the member's behalf, once
        buyer = shop.members.create(name="Zhou Min")
        job = shop.bookings.create(point.id, "tire-fitting", start + dt.timedelta(hours=3),
                                   member_id=buyer.id)
        shop.bookings.check_in(job.id)
        shop.bookings.complete(job.id)
        rated = shop.bookings.rate(job.id, buyer.id, 5, comment="fast")
        assert (rated.score, rated.comment, rated.booking_id) == (5, "fast", job.id)
        with pytest.raises(HainaError) as again:
            shop.bookings.rate(job.id, buyer.id, 4)
        assert again.value.status == 409 and again.value.type.endswith("already-rated")
        assert [r.id for r in shop.service_points.ratings(point.id).data] == [rated.id]
        assert shop.service_points.get(point.id).rating.count == 1
        # shared capacity: a lift that fitting and alignment take turns on
        lifted = shop.service_points.add_resource(point.id, "lift", 1, name="Lift")
        assert [(r.code, r.capacity) for r in lifted.resources] == [("lift", 1)]
        shop.service_points.add_service(point.id, code="wheel-alignment", duration_minutes=30,
                                        price={"amount": "60.00", "currency": "CNY"},
                                        resource="lift")
        on = shop.service_points.update_service(point.id, "tire-fitting", resource="lift")
        assert on.resources[0].services == ["tire-fitting", "wheel-alignment"]
        wider = shop.service_points.update_resource(point.id, "lift", capacity=2)
        assert wider.resources[0].capacity == 2
        off = shop.service_points.update_service(point.id, "tire-fitting", resource=None)
        assert off.resources[0].services == ["wheel-alignment"]
        near = shop.service_points.nearby(31.2304, 121.4737, radius_km=3,
                                          service="tire-fitting")
        assert [p.id for p in near.data] == [point.id] and near.data[0].next_slots
        shop.products.create(sku="TIRE-1", title="轮胎 205/55R16",
                             price={"amount": "500.00", "currency": "CNY"},
                             attributes={"rim_diameter": 16})
        rule = shop.service_points.add_fitment_rule("tire-fitting", attribute="rim_diameter")
        assert [r.id for r in shop.service_points.fitment_rules().data] == [rule.id]
        found = shop.search("轮胎", 31.2304, 121.4737, radius_km=3)
        assert [(p.sku, [sp.id for sp in p.service_points]) for p in found.products] == [
            ("TIRE-1", [point.id])]
        # a partner installer's point, booked by the merchant, seen by both
        partnership = shop.partnerships.invite(installer="fitters")
        assert fitters.partnerships.accept(partnership.id).status == "active"
        shop_of_fitters = fitters.service_points.create(**point_body(name="Fitters", lat=31.231))
        at_partner = shop.bookings.create(shop_of_fitters.id, "tire-fitting", start, hold=True)
        assert at_partner.partnership_id == partnership.id and at_partner.status == "held"
        assert [b.id for b in shop.bookings.at_partners().data] == [at_partner.id]
        assert fitters.bookings.get(at_partner.id).status == "held"
        assert shop.bookings.cancel(at_partner.id).status == "cancelled"
        assert [p.status for p in shop.partnerships.list().data] == ["active"]
        assert shop.partnerships.end(partnership.id).status == "ended"


def test_the_o2o_commands_create_list_book_and_fail_in_one_line(db_url, sessions, tmp_path,
                                                                 monkeypatch, capsys):
    make_tenant(sessions, "acme")

    def cli(*argv: str) -> tuple[int, str, str]:
        return run_cli(db_url, ["o2o", *argv], monkeypatch, capsys)

    good = tmp_path / "points.json"
    good.write_text(json.dumps([point_body(name="Bay one"),
                                point_body(name="Bay two", lat=31.24)]), encoding="utf-8")
    code, out, _ = cli("points", "create", "--tenant", "acme", "--file", str(good))
    assert code == 0 and "2 service point(s) created" in out
    ids = [line.split()[0] for line in out.splitlines() if line.startswith("sp_")]
    assert len(ids) == 2
    code, out, _ = cli("points", "list", "--tenant", "acme")
    assert code == 0 and "Bay one" in out and "Bay two" in out
    start = _start()
    code, out, _ = cli("slots", "--tenant", "acme", "--point", ids[0], "--service",
                       "tire-fitting", "--date", start.date().isoformat())
    assert code == 0 and start.isoformat() in out and "2/2" in out
    code, out, _ = cli("bookings", "create", "--tenant", "acme", "--point", ids[0],
                       "--service", "tire-fitting", "--start", start.isoformat())
    assert code == 0 and "confirmed" in out
    code, out, _ = cli("bookings", "list", "--tenant", "acme", "--point", ids[0])
    assert code == 0 and "confirmed" in out
    code, out, _ = cli("resources", "add", "--tenant", "acme", "--point", ids[0], "--code",
                       "lift", "--capacity", "1", "--name", "Lift")
    assert code == 0 and "lift  Lift  capacity 1" in out
    code, out, _ = cli("resources", "assign", "--tenant", "acme", "--point", ids[0],
                       "--service", "tire-fitting", "--resource", "lift")
    assert code == 0 and "tire-fitting at" in out and "on lift" in out
    code, out, _ = cli("resources", "assign", "--tenant", "acme", "--point", ids[0],
                       "--service", "tire-fitting", "--off")
    assert code == 0 and "on no resource" in out

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([point_body(), {**point_body(), "timezone": "Mars/Olympus"}]),
                   encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    for argv, says in [
        (("points", "create", "--tenant", "acme", "--file", str(bad)), "bad.json[1]: timezone"),
        (("points", "create", "--tenant", "acme", "--file", str(broken)), "is not JSON"),
        (("points", "create", "--tenant", "acme", "--file", str(tmp_path / "none.json")),
         "cannot read"),
        (("points", "list", "--tenant", "nobody"), "nobody"),
        (("points", "list", "--tenant", "acme", "--status", "open"), "--status"),
        (("slots", "--tenant", "acme", "--point", ids[0], "--service", "tire-fitting",
          "--date", "tomorrow"), "--date"),
        (("slots", "--tenant", "acme", "--point", "sp_nope", "--service", "tire-fitting",
          "--date", "2026-12-07"), "sp_nope"),
        (("bookings", "create", "--tenant", "acme", "--point", ids[0], "--service",
          "tire-fitting", "--start", "soon"), "booking: start"),
        (("bookings", "list", "--tenant", "acme", "--status", "lost"), "--status"),
        (("resources", "add", "--tenant", "acme", "--point", ids[0], "--code", "Lift!",
          "--capacity", "1"), "resource: code"),
        (("resources", "add", "--tenant", "acme", "--point", "sp_nope", "--code", "lift",
          "--capacity", "1"), "sp_nope"),
        (("resources", "assign", "--tenant", "acme", "--point", ids[0], "--service",
          "tire-fitting"), "--resource CODE or --off"),
        (("resources", "assign", "--tenant", "acme", "--point", ids[0], "--service",
          "tire-fitting", "--resource", "crane"), "crane"),
    ]:
        code, _, err = cli(*argv)
        assert code == 1, (argv, err)
        assert err.startswith("error: ") and err.count("\n") == 1 and says in err, (argv, err)
    # the file with one bad point created none of them
    code, out, _ = cli("points", "list", "--tenant", "acme")
    assert out.count("sp_") == 2
