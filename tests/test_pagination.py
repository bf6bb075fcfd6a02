"""Cursors and list envelopes (issue 9): a list answers ``{"object": "list", …}``; a cursor it did
not issue is a 422 ``invalid-cursor``, not a silently different page."""

from __future__ import annotations

import pytest

from haina.core.errors import Problem
from haina.core.ids import new_id
from haina.core.pagination import check_cursor


def problem(r, status, slug):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == f"https://haina.dev/problems/{slug}"
    return r.json()


@pytest.mark.parametrize("kind", ["event", "product", "order", "member", "journal_entry"])
def test_every_id_we_issue_is_a_valid_cursor_of_its_kind(kind):
    for _ in range(50):
        cursor = new_id(kind)
        assert check_cursor(cursor) == cursor
        assert check_cursor(cursor, kind) == cursor
    assert check_cursor(new_id(kind, 0)) and check_cursor(new_id(kind, (1 << 48) - 1))


@pytest.mark.parametrize("cursor,kind", [
    ("garbage", None), ("zzz", None), ("", None), ("evt_", None), ("evt", None),
    ("evt_01HZZZZZZZZZZZZZZZZZZZZZZ", None),      # 25 characters
    ("evt_01HZZZZZZZZZZZZZZZZZZZZZZZZ", None),    # 27
    ("evt_01hzzzzzzzzzzzzzzzzzzzzzzz", None),     # lowercase: ids are upper case
    ("evt_01HZZZZZZZZZZZZZZZZZZZZZZU", None),     # U is not Crockford base32
    ("EVT_01HZZZZZZZZZZZZZZZZZZZZZZZ", None),
    ("evt_01HZZZZZZZZZZZZZZZZZZZZZZZ\n", None),
    ("prod_01HZZZZZZZZZZZZZZZZZZZZZZZ", "event"),  # another kind's id
])
def test_a_cursor_we_could_not_have_issued_is_an_invalid_cursor_problem(cursor, kind):
    with pytest.raises(Problem) as e:
        check_cursor(cursor, kind)
    assert (e.value.status, e.value.slug) == (422, "invalid-cursor")


@pytest.mark.parametrize("cursor", ["garbage", "zzz", "evt_123", "ord_01HZZZZZZZZZZZZZZZZZZZZZZZ"])
def test_events_refuse_a_cursor_they_did_not_issue(client, cursor):
    assert client.post("/v1/locations", json={"code": "w1", "name": "W1"}).status_code == 201
    problem(client.get("/v1/events", params={"cursor": cursor}), 422, "invalid-cursor")


def test_events_page_with_the_cursors_they_issue(client):
    for i in range(3):
        assert client.post("/v1/locations", json={"code": f"w{i}", "name": "W"}).status_code == 201
    seen, cursor = [], None
    while True:
        r = client.get("/v1/events", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [e["id"] for e in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    everything = [e["id"] for e in client.get("/v1/events", params={"limit": 200}).json()["data"]]
    assert len(seen) >= 3 and seen == everything


def test_ledger_balances_answer_the_list_envelope(client):
    page = client.get("/v1/ledger/balances").json()
    assert page == {"object": "list", "data": [], "has_more": False, "next_cursor": None}
    r = client.post("/v1/products", json={"sku": "S-1", "title": "T", "stock": 1,
                                          "price": {"amount": "10.00", "currency": "CNY"}})
    assert r.status_code == 201, r.text
    order = client.post("/v1/orders", json={"lines": [{"sku": "S-1", "quantity": 1}]}).json()
    r = client.post("/v1/payment_intents", json={"order_id": order["id"],
                                                 "payment_method": {"type": "cash"}})
    assert r.status_code == 201, r.text
    page = client.get("/v1/ledger/balances").json()
    assert page["object"] == "list" and page["has_more"] is False
    assert page["next_cursor"] is None
    assert {b["account"] for b in page["data"]} >= {"platform_cash", "merchant_payable"}
