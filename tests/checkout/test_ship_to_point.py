"""Goods shipped to the booked point (issue 13): an order whose lines carry bookings ships to
their one point — the order's address is the point's, `ship_to_point_id` names it, in the
answer and in `order.created` — and the installer's booking shows the goods coming.
Bookings at two points are refused; an address the buyer gives is kept (a service at home);
orders without bookings are as before. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from support import check_event_streams

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = [{"weekday": d, "open": "09:00", "close": "18:00"} for d in range(1, 8)]
POST = {"address": "漕溪北路 88 号", "phone": "021-64001234", "province": "上海市",
        "city": "上海市", "district": "徐汇区", "postal_code": "200030"}
BUYER = {"name": "钱兰收", "phone": "13877778888", "province": "上海", "city": "上海",
         "line1": "和平路 12 号"}


def ok(r, status=201):
    assert r.status_code == status, r.text
    return r.json()


def _goods(client):
    for sku, rim in (("TIRE-16", 16), ("TIRE-17", 17)):
        ok(client.post("/v1/products", json={
            "sku": sku, "title": f"Tire R{rim}", "stock": 20, "attributes": {"rim_diameter": rim},
            "price": {"amount": "500.00", "currency": "CNY"}}))


def _point(client, name="Xuhui bay", **post):
    return ok(client.post("/v1/service-points", json={
        "name": name, "location": {"lat": 31.23, "lng": 121.47}, "opening_hours": HOURS,
        "services": [{"code": "tire-fitting", "duration_minutes": 60, "capacity": 4,
                      "price": {"amount": "80.00", "currency": "CNY"}}], **post}))


def _hold(client, point, hour=10):
    day = dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=5)
    start = dt.datetime.combine(day, dt.time(hour), tzinfo=SHANGHAI).isoformat()
    return ok(client.post("/v1/bookings", json={
        "service_point_id": point["id"], "service": "tire-fitting", "start": start,
        "hold": True}))


def test_an_order_with_a_booked_tire_ships_to_the_point_and_the_installer_sees_the_goods(
        client, db_url):
    _goods(client)
    point = _point(client, **POST)
    assert {k: point[k] for k in POST} == POST and point["country"] == "CN"
    hold = _hold(client, point)
    # the staggered set: the rear tires have no booking of their own and go along
    order = ok(client.post("/v1/checkout/orders", json={
        "lines": [{"sku": "TIRE-16", "quantity": 2}, {"sku": "TIRE-17", "quantity": 2}],
        "bookings": [{"sku": "TIRE-16", "booking_id": hold["id"]}]}))
    expected = {"name": "Xuhui bay", "phone": "021-64001234", "country": "CN",
                "province": "上海市", "city": "上海市", "district": "徐汇区",
                "line1": "漕溪北路 88 号", "line2": None, "postal_code": "200030",
                "service_point_id": point["id"]}
    assert order["address"] == expected and order["ship_to_point_id"] == point["id"]
    again = ok(client.get(f"/v1/orders/{order['id']}"), 200)
    assert again["address"] == expected and again["ship_to_point_id"] == point["id"]
    event = ok(client.get("/v1/events", params={"type": "order.created"}), 200)["data"][0]
    assert event["data"]["ship_to_point_id"] == point["id"]
    assert event["data"]["address"] == expected
    # the installer's view of the booking: what is coming for the job
    lines = {ln["sku"]: ln["id"] for ln in order["lines"]}
    goods = [{"order_line_id": lines["TIRE-16"], "sku": "TIRE-16", "title": "Tire R16",
              "quantity": 2},
             {"order_line_id": lines["TIRE-17"], "sku": "TIRE-17", "title": "Tire R17",
              "quantity": 2}]
    assert order["bookings"][0]["goods"] == goods
    assert ok(client.get(f"/v1/bookings/{hold['id']}"), 200)["goods"] == goods
    day = ok(client.get("/v1/bookings", params={"service_point_id": point["id"]}), 200)["data"]
    assert day[0]["goods"] == goods
    check_event_streams(db_url)


def test_a_point_without_a_phone_or_street_still_names_itself_and_a_fee_line_is_not_goods(
        client):
    _goods(client)
    ok(client.post("/v1/products", json={
        "sku": "SVC-FIT", "title": "Fitting", "stock": 0,
        "price": {"amount": "80.00", "currency": "CNY"}}))
    point = _point(client, name="Bare bay")
    hold = _hold(client, point)
    order = ok(client.post("/v1/checkout/orders", json={
        "lines": [{"sku": "TIRE-16", "quantity": 4}],
        "bookings": [{"sku": "TIRE-16", "booking_id": hold["id"], "fee_sku": "SVC-FIT"}]}))
    assert order["address"]["name"] == "Bare bay" and order["address"]["phone"] is None
    assert order["address"]["line1"] is None and order["ship_to_point_id"] == point["id"]
    assert [g["sku"] for g in order["bookings"][0]["goods"]] == ["TIRE-16"]


def test_two_points_are_refused_and_the_buyers_own_address_is_kept(client):
    _goods(client)
    one, two = _point(client, **POST), _point(client, name="Pudong bay", **POST)
    a, b = _hold(client, one), _hold(client, two)
    r = client.post("/v1/checkout/orders", json={
        "lines": [{"sku": "TIRE-16", "quantity": 2}, {"sku": "TIRE-17", "quantity": 2}],
        "bookings": [{"sku": "TIRE-16", "booking_id": a["id"]},
                     {"sku": "TIRE-17", "booking_id": b["id"]}]})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/bookings-at-two-points")
    assert r.json()["service_point_ids"] == sorted([one["id"], two["id"]])
    assert ok(client.get("/v1/orders"), 200)["data"] == []
    assert ok(client.get(f"/v1/bookings/{a['id']}"), 200)["status"] == "held"
    # the buyer's own address is kept (a service done at home, goods the buyer takes along):
    # no point's address, no goods announced to the point
    order = ok(client.post("/v1/checkout/orders", json={
        "lines": [{"sku": "TIRE-16", "quantity": 2}], "address": BUYER,
        "bookings": [{"sku": "TIRE-16", "booking_id": a["id"]}]}))
    assert order["ship_to_point_id"] is None and order["address"]["service_point_id"] is None
    assert {k: order["address"][k] for k in BUYER} == BUYER
    assert order["bookings"][0]["goods"] in (None, [])
    # the other hold, an order of its own: it ships to its point
    order = ok(client.post("/v1/checkout/orders", json={
        "lines": [{"sku": "TIRE-16", "quantity": 2}],
        "bookings": [{"sku": "TIRE-16", "booking_id": b["id"]}]}))
    assert order["ship_to_point_id"] == two["id"]


def test_goods_without_a_booking_keep_the_buyers_address(client):
    _goods(client)
    for path in ("/v1/checkout/orders", "/v1/orders"):
        order = ok(client.post(path, json={"lines": [{"sku": "TIRE-16", "quantity": 1}],
                                           "address": BUYER}))
        assert order["ship_to_point_id"] is None
        assert {k: order["address"][k] for k in BUYER} == BUYER
        assert order["address"]["service_point_id"] is None
    event = ok(client.get("/v1/events", params={"type": "order.created"}), 200)["data"][0]
    assert "ship_to_point_id" not in event["data"] and "address" not in event["data"]
    assert ok(client.post("/v1/orders", json={
        "lines": [{"sku": "TIRE-16", "quantity": 1}]}))["address"] is None
