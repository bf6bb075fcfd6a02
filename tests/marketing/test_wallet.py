"""The coupon wallet (issue 12): coupons issued to members, issued-only codes refused to
anyone not holding them, the order's claim marking the entry used and a cancel giving it
back, the wallet in a person's export and erasure — SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from haina.core.db import transaction

FIVE = {"type": "fixed", "amount": {"amount": "5.00", "currency": "CNY"}}


def ok(r, status=(200, 201)):
    assert r.status_code in ((status,) if isinstance(status, int) else status), r.text
    return r.json()


def refused(r, status, slug, reason=None):
    assert r.status_code == status, r.text
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert body["type"].endswith("/" + slug), body
    if reason:
        assert body["reason"] == reason, body


def setup(client, **coupon):
    ok(client.post("/v1/products", json={"sku": "W-1", "title": "Wiper", "stock": 50,
                                         "price": {"amount": "40.00", "currency": "CNY"}}))
    members = [ok(client.post("/v1/members", json={"name": n}))["id"] for n in ("Li", "Wang")]
    c = ok(client.post("/v1/coupons", json={"code": "VIP5", "discount": FIVE, **coupon}))
    return c, members


def buy(client, member_id=None, code="VIP5"):
    body = {"lines": [{"sku": "W-1", "quantity": 1}], "coupon": code}
    if member_id:
        body["member_id"] = member_id
    return client.post("/v1/orders", json=body)


def wallet(client, member_id, **params):
    return ok(client.get(f"/v1/members/{member_id}/coupons", params=params))["data"]


def test_an_issued_only_coupon_serves_its_holders_once_and_comes_back_on_cancel(client):
    c, (li, wang) = setup(client, audience="issued")
    assert c["audience"] == "issued" and c["issued"] == 0
    out = ok(client.post(f"/v1/coupons/{c['id']}/issue", json={"member_ids": [li, li]},
                         headers={"Idempotency-Key": "issue-1"}))
    assert out["issued"] == [li] and out["already_held"] == []
    # a repeat issues nothing twice (with or without the key)
    again = client.post(f"/v1/coupons/{c['id']}/issue", json={"member_ids": [li, li]},
                        headers={"Idempotency-Key": "issue-1"})
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == out
    assert ok(client.post(f"/v1/coupons/{c['id']}/issue",
                          json={"member_ids": [li]}))["already_held"] == [li]
    assert ok(client.get(f"/v1/coupons/{c['id']}"))["issued"] == 1
    entry, = wallet(client, li)
    assert (entry["code"], entry["status"], entry["source"]) == ("VIP5", "issued", "api")
    assert wallet(client, wang) == []
    # who does not hold it is refused, by type, at pricing and at ordering
    refused(buy(client, wang), 422, "coupon-not-issued", "not-held")
    refused(buy(client), 422, "coupon-not-issued", "member-required")
    refused(client.post("/v1/carts/price", json={"lines": [{"sku": "W-1", "quantity": 1}],
                                                 "coupon": "VIP5", "member_id": wang}),
            422, "coupon-not-issued", "not-held")
    o = ok(buy(client, li))
    assert o["totals"]["discount"]["amount"] == "5.00" and o["coupon"] == "VIP5"
    entry, = wallet(client, li)
    assert entry["status"] == "used" and entry["order_id"] == o["id"] and entry["used_at"]
    assert wallet(client, li, status="issued") == [] and len(wallet(client, li, status="used")) == 1
    refused(buy(client, li), 422, "coupon-not-issued", "used")
    ok(client.post(f"/v1/orders/{o['id']}/cancel", json={"reason": "changed_mind"}))
    entry, = wallet(client, li)
    assert entry["status"] == "issued" and entry["order_id"] is None
    assert ok(buy(client, li))["totals"]["discount"]["amount"] == "5.00"


def test_a_public_coupon_issued_to_a_member_is_marked_used_and_stays_open_to_others(client):
    c, (li, wang) = setup(client)
    ok(client.post(f"/v1/coupons/{c['id']}/issue", json={"member_ids": [li]}))
    assert ok(buy(client, wang))["coupon"] == "VIP5"  # public: no wallet needed
    assert ok(buy(client))["coupon"] == "VIP5"
    o = ok(buy(client, li))
    assert wallet(client, li)[0]["status"] == "used"
    assert wallet(client, li)[0]["order_id"] == o["id"]


def test_issuing_refuses_unknown_members_ended_coupons_and_lists_expiry(client, sessions):
    c, (li, _) = setup(client, audience="issued")
    refused(client.post(f"/v1/coupons/{c['id']}/issue",
                        json={"member_ids": ["mem_00000000000000000000000000"]}),
            404, "member-not-found")
    refused(client.post("/v1/coupons/cpn_nope/issue", json={"member_ids": [li]}),
            404, "coupon-not-found")
    ok(client.post(f"/v1/coupons/{c['id']}/issue", json={"member_ids": [li]}))
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    ok(client.patch(f"/v1/coupons/{c['id']}", json={"status": "disabled"}))
    assert wallet(client, li)[0]["status"] == "expired"
    assert len(wallet(client, li, status="expired")) == 1
    assert wallet(client, li, status="issued") == []
    refused(client.post(f"/v1/coupons/{c['id']}/issue", json={"member_ids": [li]}),
            422, "coupon-not-usable", "disabled")
    ok(client.patch(f"/v1/coupons/{c['id']}", json={"status": "active", "ends_at": past}))
    assert wallet(client, li)[0]["status"] == "expired"
    refused(client.get("/v1/members/mem_00000000000000000000000000/coupons"), 404,
            "member-not-found")


def test_the_wallet_is_in_the_export_and_erasure_drops_unused_entries(client, sessions):
    from haina.marketing import service as marketing
    from haina.platform import service as platform
    c, (li, wang) = setup(client, audience="issued")
    other = ok(client.post("/v1/coupons", json={"code": "SPARE", "discount": FIVE,
                                                "audience": "issued"}))
    for coupon_id in (c["id"], other["id"]):
        ok(client.post(f"/v1/coupons/{coupon_id}/issue", json={"member_ids": [li, wang]}))
    ok(buy(client, li))
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "acme")
        exported = marketing.export_redemptions(s, tenant, [li])
        assert sorted(r["status"] for r in exported["coupon_wallet"]) == ["issued", "used"]
        assert marketing.erase_wallet(s, tenant, [li]) == 1  # the unused one
    assert [e["status"] for e in wallet(client, li)] == ["used"]
    assert len(wallet(client, wang)) == 2
