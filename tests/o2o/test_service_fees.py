"""Service fees in orders: the fitting fee (a service SKU without stock) priced into the goods
order from the booking, never shipped, and its line done when the booking is completed —
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from o2o_support import make_point

SHANGHAI = ZoneInfo("Asia/Shanghai")
CARD_OK = {"type": "card", "number": "4242424242424242"}


def _ok(r, status=200):
    assert r.status_code == status, r.text
    return r.json()


def _start(days: int = 4, hour: int = 10) -> str:
    day = dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=SHANGHAI).isoformat()


def _level(client, sku: str) -> dict:
    got = _ok(client.get("/v1/inventory/levels", params={"sku": sku}))["data"]
    return got[0] if got else {"on_hand": 0, "reserved": 0}


def test_the_fitting_fee_is_priced_from_the_booking_never_shipped_and_done_with_the_job(
        client):
    point = make_point(client, capacity=2)  # the point's price: 80.00
    _ok(client.post("/v1/products", json={"sku": "TIRE-1", "title": "Tire", "stock": 8,
                                          "price": {"amount": "500.00", "currency": "CNY"}}), 201)
    _ok(client.post("/v1/products", json={"sku": "SVC-FIT", "title": "Tire fitting",
                                          "price": {"amount": "99.00", "currency": "CNY"}}),
        201)  # the catalogue's price is not the point's
    hold = _ok(client.post("/v1/bookings", json={
        "service_point_id": point["id"], "service": "tire-fitting", "start": _start(),
        "hold": True}), 201)
    plain = _ok(client.post("/v1/orders", json={"lines": [{"sku": "TIRE-1", "quantity": 1}]}),
                201)
    assert [(ln["booking_id"], ln["service_status"]) for ln in plain["lines"]] == [(None, None)]
    order = _ok(client.post("/v1/checkout/orders", json={
        "lines": [{"sku": "TIRE-1", "quantity": 4}],
        "bookings": [{"sku": "TIRE-1", "booking_id": hold["id"], "fee_sku": "SVC-FIT"}]}), 201)
    lines = {ln["sku"]: ln for ln in order["lines"]}
    fee = lines["SVC-FIT"]
    assert fee["unit_price"]["amount"] == "80.00" and fee["quantity"] == 1
    assert fee["booking_id"] == hold["id"] and fee["service_status"] == "scheduled"
    assert lines["TIRE-1"]["booking_id"] is None
    assert order["totals"]["subtotal"]["amount"] == "2080.00"  # 4 × 500 + the fee
    assert order["bookings"][0]["status"] == "confirmed"
    # no stock of the service was claimed; the tires' was
    assert _level(client, "SVC-FIT")["reserved"] == 0
    assert _level(client, "TIRE-1")["reserved"] == 5
    # paid, shipped whole: the goods leave, the fee line is not shipped, the order fulfilled
    _ok(client.post("/v1/payment_intents", json={"order_id": order["id"],
                                                 "payment_method": CARD_OK}), 201)
    shipped = _ok(client.post(f"/v1/orders/{order['id']}/shipments",
                              json={"carrier": "SF", "tracking_number": "SF1"}), 201)
    assert shipped["status"] == "fulfilled"
    assert {ln["sku"]: ln["shipped_quantity"] for ln in shipped["lines"]} == {
        "TIRE-1": 4, "SVC-FIT": 0}
    assert shipped["shipments"][0]["lines"] == [{"sku": "TIRE-1", "quantity": 4}]
    # the installer does the job: the fee line is done
    _ok(client.post(f"/v1/bookings/{hold['id']}/check-in"))
    _ok(client.post(f"/v1/bookings/{hold['id']}/complete"))
    again = _ok(client.get(f"/v1/orders/{order['id']}"))
    assert {ln["sku"]: ln["service_status"] for ln in again["lines"]} == {
        "TIRE-1": None, "SVC-FIT": "done"}


def test_a_fee_sku_unknown_places_nothing_and_a_cancelled_order_cancels_the_service(client):
    point = make_point(client)
    _ok(client.post("/v1/products", json={"sku": "TIRE-1", "title": "Tire", "stock": 8,
                                          "price": {"amount": "500.00", "currency": "CNY"}}), 201)
    _ok(client.post("/v1/products", json={"sku": "SVC-FIT", "title": "Tire fitting",
                                          "price": {"amount": "99.00", "currency": "CNY"}}), 201)
    hold = _ok(client.post("/v1/bookings", json={
        "service_point_id": point["id"], "service": "tire-fitting", "start": _start(),
        "hold": True}), 201)
    r = client.post("/v1/checkout/orders", json={
        "lines": [{"sku": "TIRE-1", "quantity": 4}],
        "bookings": [{"sku": "TIRE-1", "booking_id": hold["id"], "fee_sku": "SVC-NONE"}]})
    assert r.status_code == 404 and r.json()["type"].endswith("sku-not-found")
    assert _ok(client.get(f"/v1/bookings/{hold['id']}"))["status"] == "held"
    assert _level(client, "TIRE-1")["reserved"] == 0
    order = _ok(client.post("/v1/checkout/orders", json={
        "lines": [{"sku": "TIRE-1", "quantity": 4}],
        "bookings": [{"sku": "TIRE-1", "booking_id": hold["id"], "fee_sku": "SVC-FIT"}]}), 201)
    _ok(client.post(f"/v1/orders/{order['id']}/cancel"))
    got = _ok(client.get(f"/v1/orders/{order['id']}"))
    assert {ln["sku"]: ln["service_status"] for ln in got["lines"]} == {
        "TIRE-1": None, "SVC-FIT": "cancelled"}
