"""Storefront hardening: the sign-in code is the SMS app's alone (redacted in the event list,
and in the stored event once delivered, used or expired); a reused refresh token ends the
session; the worker retires old codes and ended sessions; privacy finds the code events by
subject; a buyer merged with another member reads the orders of both by id."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select
from storefront_support import buyer_headers, make_key, ok, sign_in, tire_shop

from haina.core.db import transaction, utcnow
from haina.core.events import Event
from haina.storefront import service
from haina.storefront.models import BuyerSession, SignInCode, SpentRefreshToken
from haina.webhooks.delivery import Dispatcher
from haina.webhooks.models import WebhookAttempt

PHONE, OTHER = "13800138000", "13700137000"
CODE_EVENT = "storefront.sign_in_code_requested"


@pytest.fixture
def key(client):
    return make_key(client, channel="app")


class EchoingSmsApp:
    """A receiver on loopback that answers with the body it got (as a careless SMS gateway
    might): the attempt log must not keep the code either."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                received.append(json.loads(body))
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _code_events(sessions) -> list[Event]:
    with transaction(sessions) as s:
        return list(s.scalars(select(Event).where(Event.type == CODE_EVENT)
                              .order_by(Event.id)))


def _retire(sessions, after: dt.timedelta) -> int:
    with transaction(sessions) as s:
        return service.retire_sign_ins(s, utcnow() + after)


def test_the_code_reaches_the_sms_app_and_then_leaves_the_event_and_the_attempt_log(
        client, key, sessions):
    sms = EchoingSmsApp()
    try:
        ok(client.post("/v1/webhook-endpoints", json={"url": sms.url,
                                                      "event_types": [CODE_EVENT]}))
        h = {"X-Publishable-Key": key}
        ok(client.post("/store/v1/sign-in/codes", headers=h, json={"phone": PHONE}))
        [stored] = _code_events(sessions)
        code = stored.data["code"]
        assert code.isdigit()  # kept for the delivery
        [listed] = ok(client.get("/v1/events", params={"subject_id": stored.subject_id}))["data"]
        assert listed["data"]["code"] == "[redacted]"  # but never shown to staff
        assert asyncio.run(Dispatcher(sessions).drain()) == 1
        assert [b["data"]["code"] for b in sms.bodies] == [code]
        [stored] = _code_events(sessions)
        assert stored.data["code"] == "[redacted]" and stored.data["phone"] == PHONE
        with transaction(sessions) as s:
            [attempt] = s.scalars(select(WebhookAttempt)).all()
            assert attempt.succeeded and code not in (attempt.response_excerpt or "")
        # the code itself still signs in (only its hash is checked)
        ok(client.post("/store/v1/sign-in/verify", headers=h, json={"phone": PHONE,
                                                                   "code": code}))
    finally:
        sms.stop()


def test_a_used_code_leaves_its_event_at_once_and_an_unused_one_when_it_expires(
        client, key, sessions):
    sign_in(client, key, PHONE)
    ok(client.post("/store/v1/sign-in/codes", headers={"X-Publishable-Key": key},
                   json={"phone": OTHER}))
    used, unused = _code_events(sessions)
    assert used.data["code"] == "[redacted]" and unused.data["code"].isdigit()
    _retire(sessions, dt.timedelta(minutes=1))  # still live: kept
    assert _code_events(sessions)[1].data["code"].isdigit()
    _retire(sessions, dt.timedelta(minutes=6))
    assert [e.data["code"] for e in _code_events(sessions)] == ["[redacted]"] * 2
    with transaction(sessions) as s:
        assert s.scalar(select(func.count()).where(SignInCode.redacted_at.is_(None))) == 0


def test_the_worker_deletes_codes_after_a_day_and_sessions_after_their_refresh_expiry(
        client, key, sessions):
    first = sign_in(client, key, PHONE)
    h = {"X-Publishable-Key": key}
    ok(client.post("/store/v1/sign-in/refresh", headers=h,
                   json={"refresh_token": first["refresh_token"]}))
    assert _retire(sessions, dt.timedelta(hours=23)) == 0

    def counts():
        with transaction(sessions) as s:
            return [s.scalar(select(func.count()).select_from(t))
                    for t in (SignInCode, BuyerSession, SpentRefreshToken)]

    assert counts() == [1, 1, 1]
    assert _retire(sessions, dt.timedelta(days=1, minutes=1)) == 1
    assert counts() == [0, 1, 1]
    [event] = _code_events(sessions)  # the audit trail stays, without the phone
    assert event.data["phone"] == "[redacted]" and event.data["code"] == "[redacted]"
    assert _retire(sessions, dt.timedelta(days=30, minutes=1)) == 2
    assert counts() == [0, 0, 0]
    from haina.worker import _jobs
    assert "buyer_sign_ins_retired" in dict(_jobs())


def test_a_reused_refresh_token_ends_the_whole_session(client, key):
    h = {"X-Publishable-Key": key}
    first = sign_in(client, key, PHONE)
    other = sign_in(client, key, OTHER)
    second = ok(client.post("/store/v1/sign-in/refresh", headers=h,
                            json={"refresh_token": first["refresh_token"]}))
    ok(client.get("/store/v1/me", headers=buyer_headers(key, second)))
    r = client.post("/store/v1/sign-in/refresh", headers=h,
                    json={"refresh_token": first["refresh_token"]})  # a thief's replay
    assert r.status_code == 401 and r.json()["type"].endswith("/refresh-token-reused")
    assert client.get("/store/v1/me", headers=buyer_headers(key, second)).status_code == 401
    r = client.post("/store/v1/sign-in/refresh", headers=h,
                    json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 401 and r.json()["type"].endswith("/invalid-refresh-token")
    ok(client.get("/store/v1/me", headers=buyer_headers(key, other)))  # another session lives
    r = client.post("/store/v1/sign-in/refresh", headers=h, json={"refresh_token": "bsr_nope"})
    assert r.status_code == 401 and r.json()["type"].endswith("/invalid-refresh-token")


def test_privacy_finds_the_code_events_by_their_subject(client, key, sessions):
    member = sign_in(client, key, PHONE)["member_id"]
    [event] = _code_events(sessions)
    export = ok(client.post(f"/v1/members/{member}/data-requests", json={"kind": "export"}))
    archive = client.get(f"/v1/data-requests/{export['id']}/archive")
    assert archive.status_code == 200, archive.text
    data = json.loads(zipfile.ZipFile(io.BytesIO(archive.content)).read("data.json"))["data"]
    assert event.id in {e["id"] for e in data["events"]}
    ok(client.post(f"/v1/members/{member}/data-requests", json={"kind": "erase"}))
    [event] = _code_events(sessions)
    assert event.data["phone"] == "[erased]"


def test_a_buyer_reads_by_id_the_orders_of_a_member_merged_into_them(client, key):
    tire_shop(client)
    buyer = sign_in(client, key, PHONE)
    old = ok(client.post("/v1/members", json={"name": "王女士 (门店)"}))
    order = ok(client.post("/v1/orders", json={"member_id": old["id"],
                                               "lines": [{"sku": "TIRE-16", "quantity": 1}]}))
    h = buyer_headers(key, buyer)
    assert client.get(f"/store/v1/orders/{order['id']}", headers=h).status_code == 404
    ok(client.post(f"/v1/members/{buyer['member_id']}/merge", json={"other_id": old["id"]}))
    listed = ok(client.get("/store/v1/orders", headers=h))["data"]
    assert [o["id"] for o in listed] == [order["id"]]
    assert ok(client.get(f"/store/v1/orders/{order['id']}", headers=h))["id"] == order["id"]
