"""Ratings of points after the job (issue 13): a completed booking rated once by its member
(on the merchant API on the member's behalf; on the storefront by the signed-in buyer), the
point's average and count in its answer, `nearby` and `search`, exact after concurrent
ratings; `booking.rated` events; a partner's point rated through the merchant. SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
from o2o_support import make_point
from support import check_event_streams

from haina.core.db import transaction
from haina.core.errors import Problem
from haina.o2o import service as o2o
from haina.o2o.schemas import RatingIn

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ok(r, status=(200, 201)):
    assert r.status_code in ((status,) if isinstance(status, int) else status), r.text
    return r.json()


def problem(r, status: int, slug: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/" + slug), r.text
    return r.json()


def start(hour=10, days=6) -> str:
    day = dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=SHANGHAI).isoformat()


def member(client, name="Zhou Min") -> str:
    return ok(client.post("/v1/members", json={"name": name}))["id"]


def booked(client, point, member_id, hour=10, done=True) -> dict:
    b = ok(client.post("/v1/bookings", json={
        "service_point_id": point["id"], "service": "tire-fitting", "start": start(hour),
        "member_id": member_id}))
    if done:
        ok(client.post(f"/v1/bookings/{b['id']}/check-in"))
        ok(client.post(f"/v1/bookings/{b['id']}/complete"))
    return b


def rate(client, booking, member_id, score=5, **extra):
    return client.post(f"/v1/bookings/{booking['id']}/rating",
                       json={"member_id": member_id, "score": score, **extra})


def test_a_completed_booking_is_rated_once_by_its_member(client, db_url):
    point = make_point(client, capacity=4)
    zhou, wu = member(client), member(client, "Wu Lei")
    b = booked(client, point, zhou, done=False)
    problem(rate(client, b, zhou), 409, "booking-not-completed")
    ok(client.post(f"/v1/bookings/{b['id']}/check-in"))
    problem(rate(client, b, zhou), 409, "booking-not-completed")
    ok(client.post(f"/v1/bookings/{b['id']}/complete"))
    problem(rate(client, b, wu), 403, "not-the-bookings-member")
    for bad in ({"score": 0}, {"score": 6}, {"score": "5"}, {"score": 4, "comment": "x" * 501},
                {"score": 4, "extra": 1}):
        r = client.post(f"/v1/bookings/{b['id']}/rating", json={"member_id": zhou, **bad})
        assert r.status_code == 422, (bad, r.text)
    got = ok(rate(client, b, zhou, 4, comment="  Quick and clean, 谢谢  "), 201)
    assert (got["score"], got["comment"], got["member_id"], got["booking_id"],
            got["service_point_id"], got["service"]) == (
        4, "Quick and clean, 谢谢", zhou, b["id"], point["id"], "tire-fitting")
    assert got["id"].startswith("rtg_")
    problem(rate(client, b, zhou, 1), 409, "already-rated")
    problem(client.post("/v1/bookings/bkg_00000000000000000000000000/rating",
                        json={"member_id": zhou, "score": 5}), 404, "booking-not-found")
    # a blank comment is no comment; a booking without a member is no one's to rate
    b2 = booked(client, point, zhou, hour=11)
    assert ok(rate(client, b2, zhou, 5, comment="   "), 201)["comment"] is None
    b3 = booked(client, point, None, hour=12)
    problem(rate(client, b3, zhou), 403, "not-the-bookings-member")
    # the point: average of 4 and 5 (4.5), two ratings; its list, newest first, in pages
    assert ok(client.get(f"/v1/service-points/{point['id']}"))["rating"] == {
        "average": "4.5", "count": 2}
    page = ok(client.get(f"/v1/service-points/{point['id']}/ratings", params={"limit": 1}))
    assert [r["booking_id"] for r in page["data"]] == [b2["id"]] and page["has_more"]
    rest = ok(client.get(f"/v1/service-points/{point['id']}/ratings",
                         params={"cursor": page["next_cursor"]}))
    assert [r["booking_id"] for r in rest["data"]] == [b["id"]] and not rest["has_more"]
    events = ok(client.get("/v1/events", params={"type": "booking.rated"}))["data"]
    assert sorted((e["subject_id"], e["data"]["score"], e["data"]["has_comment"])
                  for e in events) == sorted([(b["id"], 4, True), (b2["id"], 5, False)])
    assert all("comment" not in e["data"] for e in events)  # personal: not in webhooks
    check_event_streams(db_url)


def test_the_rating_shows_in_the_points_answer_nearby_and_search(client):
    ok(client.post("/v1/products", json={
        "sku": "TIRE-16", "title": "轮胎 R16", "stock": 5, "attributes": {"rim_diameter": 16},
        "price": {"amount": "500.00", "currency": "CNY"}}))
    ok(client.post("/v1/fitment-rules", json={"service": "tire-fitting",
                                              "attribute": "rim_diameter"}))
    rated, fresh = make_point(client, capacity=4), make_point(client, name="New", lng=121.48)
    zhou = member(client)
    for hour, score in ((10, 5), (11, 4), (12, 5)):
        ok(rate(client, booked(client, rated, zhou, hour), zhou, score), 201)
    want = {"average": "4.7", "count": 3}  # 14 / 3 = 4.67 → 4.7
    assert ok(client.get(f"/v1/service-points/{rated['id']}"))["rating"] == want
    listed = ok(client.get("/v1/service-points"))["data"]
    assert {p["id"]: p["rating"] for p in listed} == {
        rated["id"]: want, fresh["id"]: {"average": None, "count": 0}}
    near = ok(client.get("/v1/service-points/nearby", params={
        "lat": 31.2304, "lng": 121.4737, "radius_km": 10, "service": "tire-fitting"}))["data"]
    assert {p["id"]: p["rating"] for p in near} == {
        rated["id"]: want, fresh["id"]: {"average": None, "count": 0}}
    found = ok(client.get("/v1/search", params={"q": "轮胎", "lat": 31.2304, "lng": 121.4737,
                                                 "radius_km": 10}))["products"][0]
    assert {p["id"]: p["rating"] for p in found["service_points"]}[rated["id"]] == want


def test_a_bookings_answer_says_whether_it_was_rated(client, sessions):
    """``rating`` on a booking's answer: null until its buyer rates it, then the score,
    comment and time; the list reads a page's ratings in one statement (none when no
    booking of the page is completed)."""
    from sqlalchemy import event
    point = make_point(client, capacity=4)
    zhou = member(client)
    rated, done = booked(client, point, zhou, hour=10), booked(client, point, zhou, hour=11)
    later = booked(client, point, zhou, hour=12, done=False)
    assert ok(client.get(f"/v1/bookings/{rated['id']}"))["rating"] is None
    got = ok(rate(client, rated, zhou, 4, comment="Quick"), 201)
    want = {"score": 4, "comment": "Quick", "created_at": got["created_at"]}
    assert ok(client.get(f"/v1/bookings/{rated['id']}"))["rating"] == want
    assert ok(client.get(f"/v1/bookings/{done['id']}"))["rating"] is None
    assert ok(client.get(f"/v1/bookings/{later['id']}"))["rating"] is None
    listed = ok(client.get("/v1/bookings"))["data"]
    assert {b["id"]: b["rating"] for b in listed} == {
        rated["id"]: want, done["id"]: None, later["id"]: None}
    ok(rate(client, done, zhou, 2), 201)
    tenant = _acme(sessions)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)
    with transaction(sessions) as s:
        engine = s.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            page = o2o.list_bookings(s, tenant)
            reads = sum("o2o_ratings" in st for st in statements)
            statements.clear()
            held = o2o.list_bookings(s, tenant, status="confirmed")
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert {b.id: b.rating and b.rating.score for b in page.data} == {
        rated["id"]: 4, done["id"]: 2, later["id"]: None}
    assert reads == 1  # one read for the page's two rated bookings, not one per row
    assert [b.id for b in held.data] == [later["id"]]
    assert not any("o2o_ratings" in st for st in statements)


def _acme(sessions):
    from haina.platform import service as platform
    with transaction(sessions) as s:
        return platform.tenant_for_slug(s, "acme")


@pytest.mark.parametrize("n", [16])
def test_concurrent_ratings_of_one_point_lose_no_count(client, sessions, n):
    """n buyers rate n different bookings of one point at once (threads; on PostgreSQL each
    its own connection): the point's count and sum are exact."""
    tenant = _acme(sessions)
    point = make_point(client, capacity=n)
    members = [member(client, f"Buyer {i}") for i in range(n)]
    bookings = []
    for i, m in enumerate(members):  # one slot, n bays: n bookings at 10:00
        b = ok(client.post("/v1/bookings", json={
            "service_point_id": point["id"], "service": "tire-fitting", "start": start(10),
            "member_id": m}))
        ok(client.post(f"/v1/bookings/{b['id']}/check-in"))
        ok(client.post(f"/v1/bookings/{b['id']}/complete"))
        bookings.append((b["id"], m, 1 + i % 5))
    gate, errors, done = threading.Barrier(n), [], []

    def buyer(booking_id: str, member_id: str, score: int) -> None:
        try:
            gate.wait()
            with transaction(sessions) as s:
                o2o.rate(s, tenant, booking_id, RatingIn(score=score), member_id)
            done.append(booking_id)
        except BaseException as e:  # noqa: BLE001 — reported below
            errors.append(e)

    threads = [threading.Thread(target=buyer, args=args) for args in bookings]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and len(done) == n
    total = sum(score for _, _, score in bookings)
    got = ok(client.get(f"/v1/service-points/{point['id']}"))["rating"]
    assert got["count"] == n
    from decimal import ROUND_HALF_EVEN, Decimal
    assert got["average"] == str((Decimal(total) / n).quantize(Decimal("0.1"), ROUND_HALF_EVEN))
    from haina.o2o.models import ServicePoint
    with transaction(sessions) as s:
        row = s.get_one(ServicePoint, (tenant.id, point["id"]))
        assert (row.rating_count, row.rating_sum) == (n, total)
    # and the same booking rated twice at once: one rating, one already-rated
    outcomes: list[str] = []
    second = threading.Barrier(2)

    def again() -> None:
        second.wait()
        try:
            with transaction(sessions) as s:
                o2o.rate(s, tenant, bookings[0][0], RatingIn(score=5), bookings[0][1])
            outcomes.append("rated")
        except Problem as e:
            outcomes.append(e.slug)

    extra = booked(client, point, members[0], hour=11)
    bookings[0] = (extra["id"], members[0], 5)
    pair = [threading.Thread(target=again) for _ in range(2)]
    for t in pair:
        t.start()
    for t in pair:
        t.join(60)
    assert sorted(outcomes) == ["already-rated", "rated"]
    assert ok(client.get(f"/v1/service-points/{point['id']}"))["rating"]["count"] == n + 1


def test_a_partners_point_gets_the_goods_and_the_merchants_buyer_rates_it(
        app, client, sessions, db_url):
    from fastapi.testclient import TestClient
    from support import make_tenant
    installer_t, installer_token = make_tenant(sessions, "fitters")
    with TestClient(app) as installer:
        installer.headers["Authorization"] = f"Bearer {installer_token}"
        shop = make_point(installer, name="Fitters Xuhui", address="漕溪北路 88 号",
                          phone="021-64001234", city="上海市", postal_code="200030")
        inv = ok(client.post("/v1/partnerships", json={"installer": "fitters"}))
        ok(installer.post(f"/v1/partnerships/{inv['id']}/accept"))
        ok(client.post("/v1/products", json={
            "sku": "TIRE-1", "title": "Tire", "stock": 8,
            "price": {"amount": "500.00", "currency": "CNY"}}))
        li = member(client, "Li Lei")
        hold = ok(client.post("/v1/bookings", json={
            "service_point_id": shop["id"], "service": "tire-fitting", "start": start(10),
            "member_id": li, "hold": True}))
        order = ok(client.post("/v1/checkout/orders", json={
            "member_id": li, "lines": [{"sku": "TIRE-1", "quantity": 4}],
            "bookings": [{"sku": "TIRE-1", "booking_id": hold["id"]}]}))
        # the merchant's order ships to the installer's shop; the installer sees the tires
        assert order["ship_to_point_id"] == shop["id"]
        assert (order["address"]["name"], order["address"]["line1"],
                order["address"]["phone"]) == ("Fitters Xuhui", "漕溪北路 88 号", "021-64001234")
        assert ok(installer.get(f"/v1/bookings/{hold['id']}"))["goods"] == [
            {"order_line_id": order["lines"][0]["id"], "sku": "TIRE-1", "title": "Tire",
             "quantity": 4}]
        problem(rate(client, hold, li), 409, "booking-not-completed")
        ok(installer.post(f"/v1/bookings/{hold['id']}/check-in"))
        ok(installer.post(f"/v1/bookings/{hold['id']}/complete"))
        got = ok(rate(client, hold, li, 4, comment="Li Lei: fast"), 201)
        assert got["service_point_id"] == shop["id"]
        # kept by the installer, on its point; the merchant reads the average, not the list
        [theirs] = ok(installer.get(f"/v1/service-points/{shop['id']}/ratings"))["data"]
        assert (theirs["id"], theirs["member_id"], theirs["comment"]) == (
            got["id"], li, "Li Lei: fast")
        problem(client.get(f"/v1/service-points/{shop['id']}/ratings"), 404,
                "service-point-not-found")
        # the booking's answer says it was rated, for the merchant (its buyer) and installer
        mine = {"score": 4, "comment": "Li Lei: fast", "created_at": got["created_at"]}
        assert ok(client.get(f"/v1/bookings/{hold['id']}"))["rating"] == mine
        assert ok(installer.get(f"/v1/bookings/{hold['id']}"))["rating"] == mine
        assert [(b["id"], b["rating"]) for b in ok(client.get("/v1/partner-bookings"))[
            "data"]] == [(hold["id"], mine)]
        assert ok(installer.get(f"/v1/service-points/{shop['id']}"))["rating"] == {
            "average": "4.0", "count": 1}
        near = ok(client.get("/v1/service-points/nearby", params={
            "lat": 31.2304, "lng": 121.4737, "radius_km": 5, "service": "tire-fitting"}))
        assert [(p["id"], p["rating"]) for p in near["data"]] == [
            (shop["id"], {"average": "4.0", "count": 1})]
        # booking.rated in both outboxes (the installer's webhooks and the merchant's)
        for headers in (installer, client):
            events = ok(headers.get("/v1/events", params={"type": "booking.rated"}))["data"]
            assert [e["subject_id"] for e in events] == [hold["id"]]
        # the merchant's buyer asks for their data, then to be erased: the comment follows
        export = ok(client.post(f"/v1/members/{li}/data-requests", json={"kind": "export"}))
        archive = client.get(export["archive"]["url"])
        import io
        import json
        import zipfile
        data = json.loads(zipfile.ZipFile(io.BytesIO(archive.content)).read("data.json"))
        assert [(r["id"], r["comment"]) for r in data["data"]["o2o_ratings"]] == [
            (got["id"], "Li Lei: fast")]
        ok(client.post(f"/v1/members/{li}/data-requests", json={"kind": "erase"}))
        [after] = ok(installer.get(f"/v1/service-points/{shop['id']}/ratings"))["data"]
        assert after["comment"] is None and after["score"] == 4
        assert ok(client.get(f"/v1/bookings/{hold['id']}"))["rating"]["comment"] is None
        assert installer_t.id != _acme(sessions).id
    check_event_streams(db_url)
