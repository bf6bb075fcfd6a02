"""Orders with appointments (checkout composes orders and o2o): held slots confirmed in the
order's transaction, nothing placed when a hold has expired, slots released when the order is
cancelled or expires unpaid."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from support import check_event_streams

from haina.core.db import transaction

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = [{"weekday": d, "open": "09:00", "close": "18:00"} for d in range(1, 8)]


def _shop(client, capacity=1):
    r = client.post("/v1/products", json={
        "sku": "TIRE-16", "title": "Tire R16", "price": {"amount": "500.00", "currency": "CNY"},
        "stock": 20, "attributes": {"rim_diameter": 16}})
    assert r.status_code == 201, r.text
    p = client.post("/v1/service-points", json={
        "name": "Bay", "location": {"lat": 31.23, "lng": 121.47}, "opening_hours": HOURS,
        "services": [{"code": "tire-fitting", "duration_minutes": 60, "capacity": capacity,
                      "price": {"amount": "80.00", "currency": "CNY"}}]})
    assert p.status_code == 201, p.text
    return p.json()


def _start(hour=10):
    day = dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=5)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=SHANGHAI).isoformat()


def _hold(client, point, start):
    r = client.post("/v1/bookings", json={"service_point_id": point["id"],
                                          "service": "tire-fitting", "start": start,
                                          "hold": True})
    assert r.status_code == 201, r.text
    return r.json()


def _free(client, point, start):
    slots = client.get(f"/v1/service-points/{point['id']}/slots", params={
        "service": "tire-fitting", "date": start[:10]}).json()["data"]
    return {s["start"]: s["available"] for s in slots}[start]


def test_an_order_confirms_its_lines_hold_and_cancelling_it_frees_the_slot(client, db_url):
    point = _shop(client)
    start = _start()
    hold = _hold(client, point, start)
    r = client.post("/v1/checkout/orders", headers={"Idempotency-Key": "o-1"}, json={
        "lines": [{"sku": "TIRE-16", "quantity": 4}],
        "bookings": [{"sku": "TIRE-16", "booking_id": hold["id"]}]})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "pending_payment" and order["totals"]["subtotal"]["amount"] == "2000.00"
    assert [(b["id"], b["status"], b["order_id"], b["sku"]) for b in order["bookings"]] == [
        (hold["id"], "confirmed", order["id"], "TIRE-16")]
    assert client.get("/v1/bookings", params={"order_id": order["id"]}).json()["data"][0][
        "expires_at"] is None
    assert _free(client, point, start) == 0
    cancelled = client.post(f"/v1/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert client.get(f"/v1/bookings/{hold['id']}").json()["status"] == "cancelled"
    assert _free(client, point, start) == 1
    check_event_streams(db_url)


def test_an_expired_hold_or_a_booking_of_another_order_places_nothing(client, sessions):
    point = _shop(client, capacity=2)
    start = _start(11)
    hold = _hold(client, point, start)
    from haina.o2o.models import Booking  # the clock moved on: the hold ran out
    with transaction(sessions) as s:
        s.get_one(Booking, _key(s, hold["id"])).expires_at = \
            dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    body = {"lines": [{"sku": "TIRE-16", "quantity": 4}],
            "bookings": [{"sku": "TIRE-16", "booking_id": hold["id"]}]}
    r = client.post("/v1/checkout/orders", json=body)
    assert r.status_code == 409 and r.json()["type"].endswith("hold-expired")
    assert client.get("/v1/orders").json()["data"] == []  # nothing placed
    other = _hold(client, point, start)
    first = client.post("/v1/checkout/orders", json={**body, "bookings": [
        {"sku": "TIRE-16", "booking_id": other["id"]}]})
    assert first.status_code == 201, first.text
    again = client.post("/v1/checkout/orders", json={**body, "bookings": [
        {"sku": "TIRE-16", "booking_id": other["id"]}]})
    assert again.status_code == 409 and again.json()["type"].endswith("booking-taken")
    wrong = client.post("/v1/checkout/orders", json={**body, "bookings": [
        {"sku": "OTHER", "booking_id": other["id"]}]})
    assert wrong.status_code == 422 and "no line has" in wrong.text


def _key(session, booking_id):
    from sqlalchemy import select

    from haina.o2o.models import Booking
    tenant_id = session.scalar(select(Booking.tenant_id).where(Booking.id == booking_id))
    return (tenant_id, booking_id)


def test_an_order_left_unpaid_gives_its_appointment_back_when_it_expires(client, sessions):
    from haina.checkout.service import cancel_expired_orders
    point = _shop(client)
    start = _start(12)
    hold = _hold(client, point, start)
    order = client.post("/v1/checkout/orders", json={
        "lines": [{"sku": "TIRE-16", "quantity": 4}],
        "bookings": [{"sku": "TIRE-16", "booking_id": hold["id"]}]}).json()
    with transaction(sessions) as s:
        assert cancel_expired_orders(s, dt.datetime.fromisoformat(order["hold_expires_at"])
                                     + dt.timedelta(seconds=1)) == 1
    assert client.get(f"/v1/bookings/{hold['id']}").json()["status"] == "cancelled"
    assert _free(client, point, start) == 1


def test_a_booking_alone_is_an_order_when_the_service_is_sold_as_a_product(client):
    # nails at home: the merchant sells the service as a product (its stock: jobs it takes)
    r = client.post("/v1/products", json={"sku": "NAILS", "title": "美甲上门 Nails at home",
                                          "price": {"amount": "120.00", "currency": "CNY"},
                                          "stock": 1000})
    assert r.status_code == 201, r.text
    point = client.post("/v1/service-points", json={
        "name": "Nail studio", "location": {"lat": 31.23, "lng": 121.47}, "opening_hours": HOURS,
        "services": [{"code": "nails", "duration_minutes": 90, "capacity": 3,
                      "price": {"amount": "120.00", "currency": "CNY"}}]}).json()
    start = _start(9)
    hold = client.post("/v1/bookings", json={"service_point_id": point["id"], "service": "nails",
                                             "start": start, "hold": True}).json()
    r = client.post("/v1/checkout/orders", json={
        "lines": [{"sku": "NAILS", "quantity": 1}],
        "bookings": [{"sku": "NAILS", "booking_id": hold["id"]}]})
    assert r.status_code == 201, r.text
    assert r.json()["totals"]["subtotal"]["amount"] == "120.00"
    assert r.json()["bookings"][0]["status"] == "confirmed"
