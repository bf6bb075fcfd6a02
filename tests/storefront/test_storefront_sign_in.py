"""Buyers sign in by phone: a code through the outbox (and the sandbox inbox), limited tries
and resends, a session of two tokens (the refresh token rotates), the member found or made
by the phone identity with the channel recorded."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import select
from storefront_support import buyer_headers, make_key, ok, sign_in

from haina.core.db import transaction
from haina.core.events import Event
from haina.storefront.models import SignInCode

PHONE = "13800138000"


@pytest.fixture
def key(client):
    return make_key(client, channel="mini_program")


def _age(sessions, created=0, expires=0):
    """Move the codes back in time by seconds (their sending, their end)."""
    with transaction(sessions) as s:
        for row in s.scalars(select(SignInCode)):
            row.created_at -= dt.timedelta(seconds=created)
            row.expires_at -= dt.timedelta(seconds=expires)


def _code(client, key, phone=PHONE):
    h = {"X-Publishable-Key": key}
    ok(client.post("/store/v1/sign-in/codes", headers=h, json={"phone": phone}))
    return next(m["code"] for m in ok(client.get("/store/v1/sandbox/inbox", headers=h))["data"]
                if m["phone"] == phone)


def test_a_code_signs_in_a_new_buyer_as_a_member_with_the_phone_identity(client, key, sessions,
                                                                      caplog):
    caplog.set_level(logging.DEBUG)
    h = {"X-Publishable-Key": key}
    sent = ok(client.post("/store/v1/sign-in/codes", headers=h, json={"phone": "138-0013-8000"}))
    assert sent["phone"] == PHONE and sent["expires_in"] == 300
    with transaction(sessions) as s:  # the SMS app's event carries the code
        event = s.scalars(select(Event).where(
            Event.type == "storefront.sign_in_code_requested")).one()
    code = event.data["code"]
    assert len(code) == 6 and event.data["phone"] == PHONE
    assert event.data["channel"] == "mini_program"
    assert code not in caplog.text  # never in a log line
    # the code is the SMS app's: the merchant's event list shows it redacted
    [listed] = ok(client.get("/v1/events", params={"type": event.type}))["data"]
    assert listed["data"]["code"] == "[redacted]" and listed["data"]["phone"] == PHONE
    session = ok(client.post("/store/v1/sign-in/verify", headers=h,
                             json={"phone": PHONE, "code": code}))
    assert session["access_token"].startswith("bst_")
    assert session["refresh_token"].startswith("bsr_") and session["expires_in"] == 900
    member = ok(client.get(f"/v1/members/{session['member_id']}"))
    assert [(i["kind"], i["value"], i["channel"]) for i in member["identities"]] == [
        ("phone", PHONE, "storefront:mini_program")]
    me = ok(client.get("/store/v1/me", headers=buyer_headers(key, session)))
    assert me["member_id"] == member["id"] and me["phone"] == PHONE
    # a used code does not work twice
    r = client.post("/store/v1/sign-in/verify", headers=h, json={"phone": PHONE, "code": code})
    assert r.status_code == 401 and r.json()["type"].endswith("/code-expired")


def test_an_existing_member_signs_in_as_themselves(client, key):
    member = ok(client.post("/v1/members", json={"name": "王女士", "phone": "13900139000"}))
    session = sign_in(client, key, "139 0013 9000")
    assert session["member_id"] == member["id"]


def test_five_wrong_codes_end_the_code_and_each_try_is_counted(client, key, sessions):
    code = _code(client, key)
    wrong = f"{(int(code) + 1) % 10 ** 6:06d}"
    h = {"X-Publishable-Key": key}
    for left in (4, 3, 2, 1, 0):
        r = client.post("/store/v1/sign-in/verify", headers=h, json={"phone": PHONE,
                                                                    "code": wrong})
        assert r.status_code == 401 and r.json()["attempts_left"] == left
    r = client.post("/store/v1/sign-in/verify", headers=h, json={"phone": PHONE, "code": code})
    assert r.status_code == 401 and r.json()["type"].endswith("/code-attempts-exhausted")


def test_resends_are_throttled_per_phone(client, key, sessions):
    h = {"X-Publishable-Key": key}
    ok(client.post("/store/v1/sign-in/codes", headers=h, json={"phone": PHONE}))
    r = client.post("/store/v1/sign-in/codes", headers=h, json={"phone": PHONE})
    assert r.status_code == 429 and r.json()["type"].endswith("/code-throttled")
    ok(client.post("/store/v1/sign-in/codes", headers=h, json={"phone": "13700137000"}))
    for _ in range(4):  # a minute apart (moved back in time), up to 5 an hour
        _age(sessions, created=61)
        ok(client.post("/store/v1/sign-in/codes", headers=h, json={"phone": PHONE}))
    _age(sessions, created=61)
    r = client.post("/store/v1/sign-in/codes", headers=h, json={"phone": PHONE})
    assert r.status_code == 429 and "last hour" in r.json()["detail"]


def test_an_expired_code_is_refused(client, key, sessions):
    code = _code(client, key)
    _age(sessions, expires=301)
    r = client.post("/store/v1/sign-in/verify", headers={"X-Publishable-Key": key},
                    json={"phone": PHONE, "code": code})
    assert r.status_code == 401 and r.json()["type"].endswith("/code-expired")


def test_refresh_rotates_and_sign_out_ends_the_session(client, key):
    first = sign_in(client, key, PHONE)
    h = {"X-Publishable-Key": key}
    second = ok(client.post("/store/v1/sign-in/refresh", headers=h,
                            json={"refresh_token": first["refresh_token"]}))
    assert second["member_id"] == first["member_id"]
    assert client.get("/store/v1/me", headers=buyer_headers(key, first)).status_code == 401
    ok(client.get("/store/v1/me", headers=buyer_headers(key, second)))
    assert client.post("/store/v1/sign-out", headers=buyer_headers(key, second)).status_code == 204
    assert client.get("/store/v1/me", headers=buyer_headers(key, second)).status_code == 401
    r = client.post("/store/v1/sign-in/refresh", headers=h,
                    json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 401 and r.json()["type"].endswith("/invalid-refresh-token")


def test_a_session_works_only_with_its_own_key_and_the_inbox_only_with_a_sandbox_key(client,
                                                                                     key):
    session = sign_in(client, key, PHONE)
    other = make_key(client, channel="app", sandbox=False)
    r = client.get("/store/v1/me", headers=buyer_headers(other, session))
    assert r.status_code == 401
    r = client.get("/store/v1/sandbox/inbox", headers={"X-Publishable-Key": other})
    assert r.status_code == 403 and r.json()["type"].endswith("/not-a-sandbox-key")
    # a production key's codes are not kept readable
    ok(client.post("/store/v1/sign-in/codes", headers={"X-Publishable-Key": other},
                   json={"phone": "13600136000"}))
    inbox = ok(client.get("/store/v1/sandbox/inbox", headers={"X-Publishable-Key": key}))
    assert {m["phone"] for m in inbox["data"]} == {PHONE}


def test_erasing_a_buyer_signs_them_out_and_drops_the_codes_sent_to_their_phone(client, key):
    session = sign_in(client, key, PHONE)
    member = session["member_id"]
    exported = ok(client.post(f"/v1/members/{member}/data-requests", json={"kind": "export"}))
    assert exported["status"] != "failed"
    r = client.post(f"/v1/members/{member}/data-requests", json={"kind": "erase"})
    erased = ok(r)
    assert erased["result"]["storefront"] == 2  # the session and the code
    assert client.get("/store/v1/me", headers=buyer_headers(key, session)).status_code == 401
    inbox = ok(client.get("/store/v1/sandbox/inbox", headers={"X-Publishable-Key": key}))
    assert inbox["data"] == []
