"""The console's payments and carts pages over HTTP: the balances, payouts and payment
intents with their filters; a payment's attempts, refunds and ledger entries; the carts with
their states (open, ordered, abandoned) and a cart's page priced now; read only for every
role; another merchant's payment and cart not found. On SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from haina.core.db import transaction

DECLINED = {"type": "card", "number": "4000000000000002"}


def test_payments_their_filters_and_a_payments_attempts_refunds_and_ledger(browser_as, shop,
                                                                           client, sessions,
                                                                           app):
    order, intent = shop["order"], shop["intent"]
    refund = client.post("/v1/refunds", json={"payment_intent_id": intent["id"],
                                              "amount": {"amount": "100.00", "currency": "CNY"},
                                              "reason": "one tire returned"})
    assert refund.status_code == 201, refund.text
    payout = client.post("/v1/payouts", json={"amount": {"amount": "50.00", "currency": "CNY"}})
    assert payout.status_code == 201, payout.text
    other = client.post("/v1/orders", json={"lines": [{"sku": "TIRE-1", "quantity": 1}]}).json()
    failed = client.post("/v1/payment_intents", json={"order_id": other["id"],
                                                      "payment_method": DECLINED})
    assert failed.status_code == 402, failed.text
    failed_id = failed.json()["payment_intent"]["id"]
    viewer = browser_as("read-only")
    page = viewer.get("/console/payments").text
    for shown in (intent["id"], failed_id, order["id"], "owed to the shop", "CN¥745.20",
                  payout.json()["id"], "···· 4242", "CN¥900.00", "CN¥100.00"):
        assert shown in page, shown
    assert '<form method="post"' not in page.split("</header>")[1]
    succeeded = viewer.get("/console/payments", params={"status": "succeeded"}).text
    assert intent["id"] in succeeded and failed_id not in succeeded
    by_order = viewer.get("/console/payments", params={"order": other["id"]}).text
    assert failed_id in by_order and intent["id"] not in by_order
    assert "No payment matches." in viewer.get("/console/payments", params={
        "since": "2001-01-01", "until": "2001-01-02"}).text
    page = viewer.get(f"/console/payments/{intent['id']}").text
    for shown in ("payment_intent.authorized", "payment_intent.succeeded", refund.json()["id"],
                  "one tire returned", "capture", "refund", "merchant_payable",
                  "CN¥894.60", "CN¥99.40", f"/console/orders/{order['id']}"):
        assert shown in page, shown
    page = viewer.get(f"/console/payments/{failed_id}").text
    assert "card_declined" in page and "payment_intent.failed" in page
    assert f"/console/payments/{intent['id']}" in viewer.get(
        f"/console/orders/{order['id']}").text
    assert "支付单" in viewer.get("/console/payments", params={"lang": "zh"}).text
    viewer.get("/console/payments", params={"lang": "en"})
    from support import make_tenant
    _, token = make_tenant(sessions, "globex")
    with TestClient(app) as them:
        them.headers["Authorization"] = f"Bearer {token}"
        them.post("/v1/products", json={"sku": "G-1", "title": "G", "stock": 3,
                                        "price": {"amount": "10.00", "currency": "CNY"}})
        theirs = them.post("/v1/orders", json={"lines": [{"sku": "G-1", "quantity": 1}]}).json()
        pi = them.post("/v1/payment_intents", json={"order_id": theirs["id"], "payment_method":
                                                    {"type": "cash"}}).json()["id"]
        cart = them.post("/v1/carts", json={"lines": [{"sku": "G-1", "quantity": 1}]}).json()
    for path in (f"/console/payments/{pi}", f"/console/carts/{cart['id']}"):
        r = viewer.get(path)
        assert r.status_code == 404 and "G-1" not in r.text, path
    assert pi not in viewer.get("/console/payments").text
    assert cart["id"] not in viewer.get("/console/carts").text


def test_carts_open_ordered_and_abandoned_and_a_carts_page(browser_as, shop, client,
                                                          sessions):
    member = shop["member"]["id"]
    fresh = client.post("/v1/carts", json={"member_id": member, "channel": "mini_program",
                                           "lines": [{"sku": "TIRE-1", "quantity": 3}]}).json()
    old = client.post("/v1/carts", json={"lines": [{"sku": "TIRE-1", "quantity": 1}]}).json()
    ordered = client.post("/v1/carts", json={"lines": [{"sku": "TIRE-1", "quantity": 2}]}).json()
    placed = client.post(f"/v1/carts/{ordered['id']}/checkout", json={})
    assert placed.status_code == 201, placed.text
    with transaction(sessions) as s:  # untouched for two days
        s.execute(text("UPDATE carts SET updated_at = created_at - INTERVAL '2 days' "
                       "WHERE id = :c") if s.bind.dialect.name == "postgresql" else
                  text("UPDATE carts SET updated_at = datetime(created_at, '-2 days') "
                       "WHERE id = :c"), {"c": old["id"]})
    staff = browser_as("staff")
    page = staff.get("/console/carts").text
    for shown in (fresh["id"], old["id"], ordered["id"], placed.json()["id"], "abandoned",
                  "mini program", f"/console/members/{member}"):
        assert shown in page, shown
    abandoned = staff.get("/console/carts", params={"state": "abandoned"}).text
    assert old["id"] in abandoned and fresh["id"] not in abandoned
    open_ = staff.get("/console/carts", params={"state": "open"}).text
    assert fresh["id"] in open_ and old["id"] in open_ and ordered["id"] not in open_
    mine = staff.get("/console/carts", params={"member": member}).text
    assert fresh["id"] in mine and old["id"] not in mine
    page = staff.get(f"/console/carts/{fresh['id']}").text
    for shown in ("Tire 轮胎", "TIRE-1", "CN¥450.00", "CN¥1,350.00", "mini program",
                  "not ordered"):
        assert shown in page, shown
    assert placed.json()["id"] in staff.get(f"/console/carts/{ordered['id']}").text
    assert "购物车" in staff.get("/console/carts", params={"lang": "zh"}).text


def test_the_carts_pages_follow_the_shops_abandoned_cart_hours(browser_as, shop, client,
                                                               sessions):
    idle = {h: client.post("/v1/carts", json={"lines": [{"sku": "TIRE-1", "quantity": 1}]})
            .json()["id"] for h in (1, 3)}
    with transaction(sessions) as s:  # untouched for 1 and 3 hours
        for hours, cart in idle.items():
            s.execute(text(f"UPDATE carts SET updated_at = created_at - INTERVAL '{hours} hours' "
                           "WHERE id = :c") if s.bind.dialect.name == "postgresql" else
                      text(f"UPDATE carts SET updated_at = datetime(created_at, '-{hours} hours') "
                           "WHERE id = :c"), {"c": cart})
    staff = browser_as("staff")
    # the default, a day: neither is abandoned
    assert "untouched for 24 hours or more" in staff.get("/console/carts").text
    abandoned = staff.get("/console/carts", params={"state": "abandoned"}).text
    assert idle[1] not in abandoned and idle[3] not in abandoned
    assert "24 hours" in staff.get("/console/settings").text
    settings = client.get("/v1/tenant").json()["settings"]
    r = client.put("/v1/tenant/settings", json=dict(settings, abandoned_cart_hours=2))
    assert r.status_code == 200, r.text
    page = staff.get("/console/carts").text
    assert "untouched for 2 hours or more" in page
    abandoned = staff.get("/console/carts", params={"state": "abandoned"}).text
    assert idle[3] in abandoned and idle[1] not in abandoned
    assert ">abandoned<" in staff.get(f"/console/carts/{idle[3]}").text
    assert ">abandoned<" not in staff.get(f"/console/carts/{idle[1]}").text
    page = staff.get("/console/settings").text
    assert "Open carts abandoned after" in page and "2 hours" in page
    zh = staff.get("/console/settings", params={"lang": "zh"}).text
    assert "未结购物车标为已放弃的时间" in zh and "2 小时" in zh
    staff.get("/console/settings", params={"lang": "en"})
