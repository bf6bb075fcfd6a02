"""Payments, payouts and the ledger through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

CARD_OK = {"type": "card", "number": "4242424242424242"}


def money(amount, currency="CNY"):
    return {"amount": amount, "currency": currency}


def new_product(client, sku="TIRE-1", stock=10, amount="100.00"):
    r = client.post("/v1/products", json={"sku": sku, "title": "Tire 轮胎", "price": money(amount),
                                          "stock": stock})
    assert r.status_code == 201, r.text
    return r.json()


def new_order(client, sku="TIRE-1", quantity=1):
    r = client.post("/v1/orders", json={"lines": [{"sku": sku, "quantity": quantity}]})
    assert r.status_code == 201, r.text
    return r.json()


def pay(client, order_id, **extra):
    return client.post("/v1/payment_intents",
                       json={"order_id": order_id, "payment_method": CARD_OK, **extra})


def paid_order(client, quantity=1):
    o = new_order(client, quantity=quantity)
    r = pay(client, o["id"])
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    return o, r.json()


def is_problem(r, status, slug):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == f"https://haina.dev/problems/{slug}", r.json()
    return r.json()


def balances(client):
    r = client.get("/v1/ledger/balances")
    assert r.status_code == 200, r.text
    return {b["account"]: b["balance"]["amount"] for b in r.json()["data"]}


def all_entries(client, limit=2, **params):
    out, cursor = [], None
    while True:
        page = client.get("/v1/ledger/entries",
                          params={"limit": limit, **params, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        page = page.json()
        assert len(page["data"]) <= limit
        out += page["data"]
        if not page["has_more"]:
            return out
        cursor = page["next_cursor"]


def minor(amount: str) -> int:
    return int(amount.replace(".", ""))


# ---------------------------------------------------------------- payouts

def test_a_payout_up_to_what_is_owed_is_paid_and_more_is_a_409(client):
    new_product(client)
    paid_order(client)  # 100.00 captured, fee 0.60: the merchant is owed 99.40
    assert balances(client)["merchant_payable"] == "99.40"
    r = client.post("/v1/payouts", json={"amount": money("99.41")})
    body = is_problem(r, 409, "payout-exceeds-balance")
    assert body["available"] == money("99.40")
    r = client.post("/v1/payouts", json={"amount": money("60.00")})
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == money("60.00") and r.json()["status"] == "paid"
    is_problem(client.post("/v1/payouts", json={"amount": money("39.41")}), 409,
               "payout-exceeds-balance")
    is_problem(client.post("/v1/payouts", json={"amount": money("0.00")}), 409,
               "payout-exceeds-balance")
    assert client.post("/v1/payouts", json={"amount": money("39.40")}).status_code == 201
    assert balances(client) == {"merchant_payable": "0.00", "platform_cash": "0.60",
                                "platform_fees": "0.60"}
    is_problem(client.post("/v1/payouts", json={"amount": money("0.01")}), 409,
               "payout-exceeds-balance")


def test_a_payout_with_nothing_owed_is_a_409(client):
    is_problem(client.post("/v1/payouts", json={"amount": money("1.00")}), 409,
               "payout-exceeds-balance")
    assert balances(client) == {}


def test_a_payout_in_another_currency_than_is_owed_is_a_409(client):
    new_product(client)
    paid_order(client)
    is_problem(client.post("/v1/payouts", json={"amount": money("1.00", "USD")}), 409,
               "payout-exceeds-balance")


def test_a_payout_replays_under_its_idempotency_key(client):
    new_product(client)
    paid_order(client)
    h = {"Idempotency-Key": "payout-1"}
    first = client.post("/v1/payouts", json={"amount": money("50.00")}, headers=h)
    again = client.post("/v1/payouts", json={"amount": money("50.00")}, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert balances(client)["merchant_payable"] == "49.40"


def test_a_refund_after_the_merchant_was_paid_out_cannot_make_what_is_owed_negative(client):
    new_product(client)
    o, _ = paid_order(client)
    assert client.post("/v1/payouts", json={"amount": money("99.40")}).status_code == 201
    r = client.post("/v1/refunds", json={"order_id": o["id"]})
    is_problem(r, 409, "refund-exceeds-merchant-balance")
    assert balances(client)["merchant_payable"] == "0.00"
    assert client.get(f"/v1/orders/{o['id']}").json()["status"] == "paid"
    # once the merchant sells more, the refund goes through
    paid_order(client)
    r = client.post("/v1/refunds", json={"order_id": o["id"]})
    assert r.status_code == 201, r.text
    assert balances(client) == {"merchant_payable": "0.00", "platform_cash": "0.60",
                                "platform_fees": "0.60"}


# ---------------------------------------------------------------- the journal

def test_ledger_entries_list_one_balanced_entry_per_capture_refund_and_payout(client):
    new_product(client)
    o1, pi1 = paid_order(client)
    _, pi2 = paid_order(client, quantity=2)
    r1 = client.post("/v1/refunds", json={"order_id": o1["id"], "amount": money("30.00")})
    assert r1.status_code == 201, r1.text
    r2 = client.post("/v1/refunds", json={"payment_intent_id": pi1["id"]})
    assert r2.status_code == 201 and r2.json()["amount"] == money("70.00")
    po = client.post("/v1/payouts", json={"amount": money("150.00")})
    assert po.status_code == 201, po.text

    entries = all_entries(client, limit=2)
    assert [(e["kind"], e["ref_id"]) for e in entries] == [
        ("payout", po.json()["id"]), ("refund", r2.json()["id"]), ("refund", r1.json()["id"]),
        ("capture", pi2["id"]), ("capture", pi1["id"])]
    assert len({e["id"] for e in entries}) == 5
    for e in entries:
        debits = sum(minor(ln["debit"]["amount"]) for ln in e["lines"])
        credits = sum(minor(ln["credit"]["amount"]) for ln in e["lines"])
        assert debits == credits > 0, e
        assert all(ln["debit"]["currency"] == ln["credit"]["currency"] == e["currency"] == "CNY"
                   for ln in e["lines"])
    by_ref = {e["ref_id"]: {ln["account"]: (ln["debit"]["amount"], ln["credit"]["amount"])
                            for ln in e["lines"]} for e in entries}
    assert by_ref[pi2["id"]] == {"platform_cash": ("200.00", "0.00"),
                                 "merchant_payable": ("0.00", "198.80"),
                                 "platform_fees": ("0.00", "1.20")}
    assert by_ref[r1.json()["id"]] == {"merchant_payable": ("29.82", "0.00"),
                                       "platform_fees": ("0.18", "0.00"),
                                       "platform_cash": ("0.00", "30.00")}
    assert by_ref[po.json()["id"]] == {"merchant_payable": ("150.00", "0.00"),
                                       "platform_cash": ("0.00", "150.00")}
    # filters
    assert [e["kind"] for e in all_entries(client, kind="refund")] == ["refund", "refund"]
    assert [e["ref_id"] for e in all_entries(client, ref_id=pi2["id"])] == [pi2["id"]]
    ids = lambda path, **q: [x["id"] for x in client.get(path, params=q).json()["data"]]  # noqa: E731
    assert ids("/v1/refunds", payment_intent_id=pi1["id"]) == [r2.json()["id"], r1.json()["id"]]
    assert ids("/v1/refunds", payment_intent_id=pi2["id"]) == []
    assert ids("/v1/payment_intents", status="succeeded") == [pi2["id"], pi1["id"]]
    assert ids("/v1/payment_intents", status="failed") == []
    assert ids("/v1/payment_intents", created_gte=pi2["created_at"]) == [pi2["id"]]
    assert ids("/v1/payment_intents", created_lt=pi2["created_at"]) == [pi1["id"]]
    assert client.get("/v1/payment_intents", params={"status": "nope"}).status_code == 422
    # the balances are the sums of the entries
    assert balances(client) == {"platform_cash": "50.00", "merchant_payable": "48.80",
                                "platform_fees": "1.20"}


def test_ledger_entries_of_another_merchant_are_not_listed(client, sessions):
    from support import make_tenant
    new_product(client)
    paid_order(client)
    _, token = make_tenant(sessions, "other-shop")
    other = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/ledger/entries", headers=other).json()["data"] == []
    assert client.get("/v1/ledger/balances", headers=other).json()["data"] == []


# ---------------------------------------------------------------- authorisations

def test_cancelling_a_manual_authorisation_voids_it_and_the_order_can_then_be_cancelled(client):
    p = new_product(client, stock=3)
    o = new_order(client, quantity=2)
    pi = pay(client, o["id"], capture_method="manual").json()
    assert pi["status"] == "requires_capture"
    # one authorisation at a time
    is_problem(pay(client, o["id"]), 409, "order-already-authorized")
    r = client.post(f"/v1/payment_intents/{pi['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "canceled", r.text
    is_problem(client.post(f"/v1/payment_intents/{pi['id']}/capture"), 409, "not-capturable")
    is_problem(client.post(f"/v1/payment_intents/{pi['id']}/cancel"), 409, "not-cancellable")
    assert client.get(f"/v1/orders/{o['id']}").json()["status"] == "pending_payment"
    r = client.post(f"/v1/orders/{o['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert client.get(f"/v1/products/{p['id']}").json()["stock"]["available"] == 3
    assert balances(client) == {}
    assert client.get(f"/v1/payment_intents/{pi['id']}").json()["status"] == "canceled"


def test_cancelling_an_order_voids_its_open_authorisation(client):
    new_product(client)
    o = new_order(client)
    pi = pay(client, o["id"], capture_method="manual").json()
    r = client.post(f"/v1/orders/{o['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert client.get(f"/v1/payment_intents/{pi['id']}").json()["status"] == "canceled"
    is_problem(client.post(f"/v1/payment_intents/{pi['id']}/capture"), 409, "not-capturable")
    assert client.get("/v1/ledger/entries").json()["data"] == []


def test_paying_an_already_paid_order_is_a_409_order_not_payable(client):
    new_product(client)
    o, _ = paid_order(client)
    body = is_problem(pay(client, o["id"]), 409, "order-not-payable")
    assert body["status_now"] == "paid"
    assert balances(client)["platform_cash"] == "100.00"  # charged once
    cancelled = new_order(client)
    client.post(f"/v1/orders/{cancelled['id']}/cancel")
    is_problem(pay(client, cancelled["id"]), 409, "order-not-payable")
    is_problem(pay(client, "ord_nope"), 404, "order-not-found")


def test_capturing_more_than_authorised_is_refused(client):
    new_product(client)
    o = new_order(client)
    pi = pay(client, o["id"], capture_method="manual").json()
    r = client.post(f"/v1/payment_intents/{pi['id']}/capture", json={"amount": money("100.01")})
    is_problem(r, 422, "capture-amount-invalid")
    r = client.post(f"/v1/payment_intents/{pi['id']}/capture", json={"amount": money("1.00", "USD")})
    is_problem(r, 422, "currency-mismatch")
    r = client.post(f"/v1/payment_intents/{pi['id']}/capture", json={"amount": money("100.00")})
    assert r.status_code == 200 and r.json()["status"] == "succeeded"


def test_refunding_an_unpaid_order_is_refused(client):
    new_product(client)
    o = new_order(client)
    is_problem(client.post("/v1/refunds", json={"order_id": o["id"]}), 409, "nothing-to-refund")
    is_problem(client.post("/v1/refunds", json={"order_id": "ord_nope"}), 404, "order-not-found")


# ---------------------------------------------------------------- scopes

@pytest.fixture
def read_only(client, sessions):
    """Headers of a token of the same merchant holding only ``orders:read``."""
    from haina.core.db import transaction
    from haina.platform import service
    with transaction(sessions) as s:
        token = service.create_token(s, "acme", "orders:read").token
    return {"Authorization": f"Bearer {token}"}


def test_a_token_with_only_orders_read_may_read_orders_but_not_place_them(client, read_only):
    new_product(client)
    o = new_order(client)
    assert client.get(f"/v1/orders/{o['id']}", headers=read_only).status_code == 200
    r = client.post("/v1/orders", json={"lines": [{"sku": "TIRE-1", "quantity": 1}]},
                    headers=read_only)
    body = is_problem(r, 403, "insufficient-scope")
    assert body["required_scope"] == "orders:write"
    assert len(client.get("/v1/orders").json()["data"]) == 1


@pytest.mark.parametrize("method,path,body,scope", [
    ("GET", "/v1/ledger/balances", None, "ledger:read"),
    ("GET", "/v1/ledger/entries", None, "ledger:read"),
    ("POST", "/v1/payment_intents", {"order_id": "ord_x", "payment_method": CARD_OK},
     "payments:write"),
    ("POST", "/v1/payouts", {"amount": {"amount": "1.00", "currency": "CNY"}}, "payments:write"),
    ("POST", "/v1/refunds", {"order_id": "ord_x"}, "payments:write"),
])
def test_a_token_with_only_orders_read_gets_403_on_money(client, read_only, method, path, body,
                                                        scope):
    r = client.request(method, path, json=body, headers=read_only)
    assert is_problem(r, 403, "insufficient-scope")["required_scope"] == scope


def test_no_token_is_a_401(client):
    r = client.get("/v1/ledger/balances", headers={"Authorization": ""})
    is_problem(r, 401, "unauthorized")


def test_a_payment_imported_from_history_is_refused_a_refund_409_not_a_500(client, sessions):
    """History loaded by ``haina import`` (provider ``import``) was paid outside Haina: a
    refund here is refused with a reason, and nothing is recorded."""
    from haina.core.db import transaction, utcnow
    from haina.core.ids import new_id
    from haina.orders import service as orders
    from haina.payments import service as payments
    from haina.platform import service as platform
    order_id, at = new_id("order"), utcnow()
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "acme")
        orders.import_orders(s, tenant, [orders.order_record(
            id=order_id, tenant_id=tenant.id, member_id=None, channel="web", status="completed",
            currency="CNY", subtotal_minor=5_000, total_minor=5_000, paid_minor=5_000,
            refunded_minor=0, created_at=at, paid_at=at)], [])
        payments.import_captures(s, tenant, [(order_id, 5_000, "CNY", at)])
    r = client.post("/v1/refunds", json={"order_id": order_id})
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("payment-imported")
    assert client.get("/v1/refunds").json()["data"] == []
    assert client.get(f"/v1/orders/{order_id}").json()["refunded"]["amount"] == "0.00"
