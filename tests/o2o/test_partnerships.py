"""Installer partnerships: a merchant invites an installer (a tenant owning service points),
the installer accepts; the merchant's nearby and search show the installer's points, the
merchant books them, both sides see the booking, the installer's outbox (its webhooks) gets
the ``booking.*`` events; a merchant outside the partnership sees nothing, and ending it takes
the points out — SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from o2o_support import make_point
from sqlalchemy import select
from support import make_tenant

from haina.core.db import transaction
from haina.core.events import Event
from haina.webhooks.delivery import Dispatcher

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _start(days: int = 5, hour: int = 10) -> str:
    day = dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=SHANGHAI).isoformat()


def _client(app, token: str) -> TestClient:
    c = TestClient(app)
    c.headers["Authorization"] = f"Bearer {token}"
    return c


def _ok(r, status=200):
    assert r.status_code == status, r.text
    return r.json()


def _problem(r, status: int, slug: str):
    assert r.status_code == status, r.text
    assert r.json()["type"].endswith(slug), r.json()


def _events(sessions, tenant_id: str, subject: str) -> list[str]:
    with transaction(sessions) as s:
        return list(s.scalars(select(Event.type).where(Event.tenant_id == tenant_id,
                                                       Event.subject_id == subject)
                              .order_by(Event.id)))


def test_an_installer_partner_s_points_are_searched_and_booked_by_the_merchant(
        app, client, sessions):
    installer_t, installer_token = make_tenant(sessions, "fitters")
    other_t, other_token = make_tenant(sessions, "bystander")
    with _client(app, installer_token) as installer, _client(app, other_token) as other:
        shop = make_point(installer, name="Fitters Xuhui", lat=31.2310, lng=121.4740)
        own = make_point(client, name="Acme own bay", lat=31.2400, lng=121.4740)
        near = {"lat": 31.2304, "lng": 121.4737, "radius_km": 5, "service": "tire-fitting"}
        assert [p["id"] for p in _ok(client.get("/v1/service-points/nearby",
                                                params=near))["data"]] == [own["id"]]
        # acme invites; the inviter cannot accept its own invitation; the installer does
        inv = _ok(client.post("/v1/partnerships", json={"installer": "fitters"}), 201)
        assert inv["status"] == "invited" and inv["role"] == "merchant"
        assert inv["partner"]["slug"] == "fitters" and inv["invited_by"] == "merchant"
        _problem(client.post(f"/v1/partnerships/{inv['id']}/accept"), 409,
                 "partnership-not-yours-to-accept")
        _problem(client.post("/v1/partnerships", json={"installer": "fitters"}), 409,
                 "partnership-exists")
        _problem(client.post("/v1/partnerships", json={"installer": "acme"}), 422,
                 "partnership-with-self")
        _problem(client.post("/v1/partnerships", json={"installer": "nobody-here"}), 404,
                 "tenant-not-found")
        seen = _ok(installer.get("/v1/partnerships"))["data"]
        assert [(p["id"], p["role"], p["partner"]["slug"]) for p in seen] == [
            (inv["id"], "installer", "acme")]
        # an invitation shows nothing yet
        assert len(_ok(client.get("/v1/service-points/nearby", params=near))["data"]) == 1
        acc = _ok(installer.post(f"/v1/partnerships/{inv['id']}/accept"))
        assert acc["status"] == "active"
        assert _ok(client.get(f"/v1/partnerships/{inv['id']}"))["status"] == "active"

        # nearby: the installer's point, nearest first, marked with the partnership
        listed = _ok(client.get("/v1/service-points/nearby", params=near))["data"]
        assert [(p["id"], p["partnership_id"]) for p in listed] == [
            (shop["id"], inv["id"]), (own["id"], None)]
        assert listed[0]["next_slots"] and listed[0]["distance_km"] < listed[1]["distance_km"]
        # the bystander sees neither
        assert _ok(other.get("/v1/service-points/nearby", params=near))["data"] == []

        # the merchant reads the partner point's slots and books one
        day = _start()[:10]
        slots = _ok(client.get(f"/v1/service-points/{shop['id']}/slots",
                               params={"service": "tire-fitting", "date": day}))
        assert slots["service_point_id"] == shop["id"]
        booked = _ok(client.post("/v1/bookings", json={
            "service_point_id": shop["id"], "service": "tire-fitting", "start": _start()}), 201)
        assert booked["partnership_id"] == inv["id"] and booked["status"] == "confirmed"
        # the place is taken in the installer's slot counter: its own slots say so
        left = {s["start"]: s["available"] for s in _ok(installer.get(
            f"/v1/service-points/{shop['id']}/slots",
            params={"service": "tire-fitting", "date": day}))["data"]}
        assert left[_start()] == 1
        # both sides see the booking; the bystander does not
        assert _ok(client.get(f"/v1/bookings/{booked['id']}"))["id"] == booked["id"]
        assert [b["id"] for b in _ok(client.get("/v1/partner-bookings"))["data"]] == [
            booked["id"]]
        # a buyer's bookings at partners' points: the link row keeps the merchant's member
        buyer = _ok(client.post("/v1/members", json={"name": "Li Lei"}), 201)
        theirs = _ok(client.post("/v1/bookings", json={
            "service_point_id": shop["id"], "service": "tire-fitting", "member_id": buyer["id"],
            "start": _start(hour=15)}), 201)
        assert [b["id"] for b in _ok(client.get(
            "/v1/partner-bookings", params={"member_id": buyer["id"]}))["data"]] == [
            theirs["id"]]
        _ok(client.post(f"/v1/bookings/{theirs['id']}/cancel"))
        assert [b["id"] for b in _ok(installer.get(
            "/v1/bookings", params={"service_point_id": shop["id"], "status": "confirmed"})
        )["data"]] == [booked["id"]]
        for path in (f"/v1/bookings/{booked['id']}", f"/v1/service-points/{shop['id']}",
                     f"/v1/partnerships/{inv['id']}"):
            assert other.get(path).status_code == 404
        _problem(other.post("/v1/bookings", json={
            "service_point_id": shop["id"], "service": "tire-fitting", "start": _start()}),
            404, "service-point-not-found")
        # the merchant reschedules; the installer checks the customer in and completes the
        # job (the merchant cannot: not its point)
        moved = _ok(client.post(f"/v1/bookings/{booked['id']}/reschedule",
                                json={"start": _start(hour=11)}))
        assert moved["start"] == _start(hour=11)
        assert client.post(f"/v1/bookings/{booked['id']}/check-in").status_code == 404
        _ok(installer.post(f"/v1/bookings/{booked['id']}/check-in"))
        assert _ok(installer.post(f"/v1/bookings/{booked['id']}/complete"))["status"] == \
            "completed"
        assert _ok(client.get(f"/v1/bookings/{booked['id']}"))["status"] == "completed"
        # the events are in both outboxes: the installer's webhooks get booking.*
        expected = ["booking.confirmed", "booking.rescheduled", "booking.checked_in",
                    "booking.completed"]
        assert _events(sessions, installer_t.id, booked["id"]) == expected
        assert _events(sessions, client_tenant(sessions), booked["id"]) == expected
        assert _events(sessions, other_t.id, booked["id"]) == []
        hook = _ok(installer.post("/v1/webhook-endpoints", json={
            "url": "https://hooks.fitters.example/in", "event_types": ["booking.*"]}), 201)
        jobs = Dispatcher(sessions).fan_out(1000)
        assert {j.event_id for j in jobs if j.endpoint_id == hook["id"]}  # none before: made now
        assert all(j.tenant_id == installer_t.id for j in jobs if j.endpoint_id == hook["id"])

        # ending it: the points leave the search, no new booking, the old one stays visible
        assert _ok(installer.post(f"/v1/partnerships/{inv['id']}/end"))["status"] == "ended"
        assert [p["id"] for p in _ok(client.get("/v1/service-points/nearby",
                                                params=near))["data"]] == [own["id"]]
        _problem(client.post("/v1/bookings", json={
            "service_point_id": shop["id"], "service": "tire-fitting",
            "start": _start(hour=14)}), 404, "service-point-not-found")
        assert _ok(client.get(f"/v1/bookings/{booked['id']}"))["status"] == "completed"
        # invited again (by the installer this time), the merchant accepts
        again = _ok(installer.post("/v1/partnerships", json={"merchant": "acme"}), 201)
        assert again["id"] == inv["id"] and again["invited_by"] == "installer"
        assert _ok(client.post(f"/v1/partnerships/{inv['id']}/accept"))["status"] == "active"


def client_tenant(sessions) -> str:
    from haina.platform import service as platform
    with transaction(sessions) as s:
        return platform.tenant_for_slug(s, "acme").id


def test_a_partner_s_booking_on_an_order_is_released_with_the_order(app, client, sessions):
    _, installer_token = make_tenant(sessions, "fitters")
    with _client(app, installer_token) as installer:
        shop = make_point(installer, name="Fitters")
        inv = _ok(client.post("/v1/partnerships", json={"installer": "fitters"}), 201)
        _ok(installer.post(f"/v1/partnerships/{inv['id']}/accept"))
        _ok(client.post("/v1/products", json={
            "sku": "TIRE-1", "title": "Tire", "price": {"amount": "500.00", "currency": "CNY"}}),
            201)
        _ok(client.post("/v1/inventory/adjustments",
                        json={"sku": "TIRE-1", "delta": 8, "reason": "received"}), 201)
        hold = _ok(client.post("/v1/bookings", json={
            "service_point_id": shop["id"], "service": "tire-fitting", "start": _start(),
            "hold": True}), 201)
        order = _ok(client.post("/v1/checkout/orders", json={
            "lines": [{"sku": "TIRE-1", "quantity": 4}],
            "bookings": [{"sku": "TIRE-1", "booking_id": hold["id"]}]}), 201)
        assert [b["status"] for b in order["bookings"]] == ["confirmed"]
        mine = _ok(installer.get(f"/v1/bookings/{hold['id']}"))
        assert mine["order_id"] == order["id"] and mine["status"] == "confirmed"
        _ok(client.post(f"/v1/orders/{order['id']}/cancel"))
        assert _ok(installer.get(f"/v1/bookings/{hold['id']}"))["status"] == "cancelled"
