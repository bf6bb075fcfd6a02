"""Issue 18: an erased person is not a buyer again (an order, a cart or a booking naming the
member, or any id merged into it, is refused 409 ``member-erased``), and two erasures of one
person at the same moment record one request and tell the apps once. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from haina.core.db import transaction
from haina.core.events import Event
from haina.platform import service as platform
from haina.privacy import service as privacy
from haina.privacy.models import DataRequest

HOURS = [{"weekday": d, "open": "09:00", "close": "18:00"} for d in range(1, 8)]


def ok(r, status=(200, 201)):
    assert r.status_code in ((status,) if isinstance(status, int) else status), r.text
    return r.json()


def _erased(r, member_id: str) -> None:
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("/member-erased") and r.json()["member_id"] == member_id


def test_an_erased_member_is_refused_as_the_buyer_of_an_order_a_cart_or_a_booking(client):
    ok(client.post("/v1/products", json={"sku": "MUG-1", "title": "Mug", "stock": 10,
                                         "price": {"amount": "30.00", "currency": "CNY"}}))
    point = ok(client.post("/v1/service-points", json={
        "name": "Fitting", "location": {"lat": 31.23, "lng": 121.47, "datum": "wgs84"},
        "opening_hours": HOURS, "services": [{"code": "fit", "duration_minutes": 60,
                                              "capacity": 2,
                                              "price": {"amount": "80.00", "currency": "CNY"}}]}))
    day = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date() + dt.timedelta(days=3)
    start = dt.datetime.combine(day, dt.time(10), tzinfo=ZoneInfo("Asia/Shanghai")).isoformat()
    a = ok(client.post("/v1/members", json={"name": "Zhou Min"}))["id"]
    merged = ok(client.post("/v1/members", json={"name": "Zhou Min (POS)"}))["id"]
    live = ok(client.post("/v1/members", json={"name": "Wu Jie"}))["id"]
    ok(client.post(f"/v1/members/{a}/merge", json={"other_id": merged}))
    line = [{"sku": "MUG-1", "quantity": 1}]
    cart = ok(client.post("/v1/carts", json={"member_id": a, "lines": line}))
    ok(client.post(f"/v1/members/{a}/data-requests", json={"kind": "erase"}), 201)
    for member_id in (a, merged):  # the person, by any of its ids
        _erased(client.post("/v1/orders", json={"lines": line, "member_id": member_id}),
                member_id)
        _erased(client.post("/v1/carts", json={"lines": line, "member_id": member_id}),
                member_id)
        _erased(client.post("/v1/bookings", json={
            "service_point_id": point["id"], "service": "fit", "start": start,
            "member_id": member_id}), member_id)
    # the cart opened before the erasure went with it (an open cart is the person's only)
    assert client.post(f"/v1/carts/{cart['id']}/checkout", json={}).status_code == 404
    # another member buys as before; an unknown one is still 404
    assert ok(client.post("/v1/orders", json={"lines": line, "member_id": live}))["member_id"] \
        == live
    assert client.post("/v1/orders", json={"lines": line, "member_id": "mem_nobody"}) \
        .status_code == 404


def test_two_erasures_of_one_person_at_once_record_one_request_and_tell_the_apps_once(
        client, sessions):
    a = ok(client.post("/v1/members", json={"name": "Gao Yan", "phone": "13700001111"}))["id"]
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "acme")
    start, lock = threading.Barrier(2), threading.Lock()
    answers: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def erase() -> None:
        try:
            start.wait()
            with transaction(sessions) as s:
                out, new = privacy.request_data(s, tenant, a, "erase")
            with lock:
                answers.append((out.id, new))
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=erase) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(new for _, new in answers) == [False, True]
    assert len({request_id for request_id, _ in answers}) == 1  # the second answers the first
    with transaction(sessions) as s:
        assert s.scalar(select(func.count()).select_from(DataRequest).where(
            DataRequest.tenant_id == tenant.id, DataRequest.kind == "erase")) == 1
        assert s.scalar(select(func.count()).select_from(Event).where(
            Event.tenant_id == tenant.id, Event.type == "member.redact_requested")) == 1
