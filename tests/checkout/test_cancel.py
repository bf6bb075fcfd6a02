"""Cancelling through the checkout flow: the payment is refunded (its own events), then the
order is cancelled (one event), and nothing else."""

from __future__ import annotations

CARD_OK = {"type": "card", "number": "4242424242424242"}


def _paid_order(client, amount="99.00", quantity=2):
    r = client.post("/v1/products", json={"sku": "TIRE-1", "title": "Tire",
                                          "price": {"amount": amount, "currency": "CNY"},
                                          "stock": 5})
    assert r.status_code == 201, r.text
    o = client.post("/v1/orders", json={"lines": [{"sku": "TIRE-1", "quantity": quantity}],
                                        "channel": "pos"}).json()
    pi = client.post("/v1/payment_intents", json={"order_id": o["id"],
                                                  "payment_method": CARD_OK})
    assert pi.status_code == 201, pi.text
    return r.json(), o, pi.json()


def _types(client, subject_id):
    return [e["type"] for e in reversed(
        client.get("/v1/events", params={"subject_id": subject_id}).json()["data"])]


def test_cancelling_a_paid_order_refunds_then_cancels_with_a_truthful_stream(client):
    p, o, pi = _paid_order(client)
    r = client.post(f"/v1/orders/{o['id']}/cancel", json={"reason": "changed_mind"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["status"] == "cancelled" and got["refund_status"] == "full"
    assert got["refunded"] == got["paid"] == {"amount": "198.00", "currency": "CNY"}
    assert _types(client, o["id"]) == ["order.created", "order.paid", "order.cancelled"]
    timeline = client.get(f"/v1/orders/{o['id']}/timeline").json()["data"]
    assert [e["type"] for e in timeline] == ["order.created", "order.paid", "order.cancelled"]
    # the refund is an event of the payment, naming the order
    refunds = client.get("/v1/events", params={"type": "refund.succeeded"}).json()["data"]
    assert len(refunds) == 1
    assert refunds[0]["data"]["payment_intent_id"] == pi["id"]
    assert refunds[0]["data"]["order_id"] == o["id"]
    cancelled = client.get("/v1/events", params={"type": "order.cancelled"}).json()["data"][0]
    assert cancelled["data"]["refund_ids"] == [refunds[0]["subject_id"]]
    assert client.get(f"/v1/products/{p['id']}").json()["stock"]["available"] == 5
    assert client.get(f"/v1/payment_intents/{pi['id']}").json()["refunded"]["amount"] == "198.00"


def test_a_refund_in_full_outside_cancellation_makes_the_order_refunded(client):
    _, o, pi = _paid_order(client)
    r = client.post("/v1/refunds", json={"payment_intent_id": pi["id"]})
    assert r.status_code == 201, r.text
    assert client.get(f"/v1/orders/{o['id']}").json()["status"] == "refunded"
    assert _types(client, o["id"]) == ["order.created", "order.paid", "order.refunded"]
    r = client.post(f"/v1/orders/{o['id']}/cancel")
    assert r.status_code == 409


def test_a_partly_refunded_order_cancelled_gets_the_rest_back(client):
    _, o, pi = _paid_order(client)
    r = client.post("/v1/refunds", json={"payment_intent_id": pi["id"],
                                         "amount": {"amount": "50.00", "currency": "CNY"}})
    assert r.status_code == 201, r.text
    got = client.post(f"/v1/orders/{o['id']}/cancel").json()
    assert got["status"] == "cancelled" and got["refunded"]["amount"] == "198.00"
    assert _types(client, o["id"]) == ["order.created", "order.paid", "order.refunded",
                                       "order.cancelled"]


def test_an_order_whose_total_is_zero_is_paid_without_a_journal_entry(client):
    _, o, pi = _paid_order(client, amount="0.00", quantity=1)
    assert o["totals"]["total"]["amount"] == "0.00"
    assert pi["status"] == "succeeded" and pi["captured"]["amount"] == "0.00"
    assert client.get(f"/v1/orders/{o['id']}").json()["status"] == "paid"
    assert client.get("/v1/ledger/entries").json()["data"] == []
    # and it can be cancelled like any paid order: nothing to refund
    got = client.post(f"/v1/orders/{o['id']}/cancel").json()
    assert got["status"] == "cancelled"
