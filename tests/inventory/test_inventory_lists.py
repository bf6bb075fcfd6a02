"""Inventory lists answer the list envelope and refuse cursors they did not issue (issue 9)."""

from __future__ import annotations

import pytest


def new_product(client, sku="TIRE-1", stock=5):
    r = client.post("/v1/products", json={"sku": sku, "title": "Tire",
                                          "price": {"amount": "99.00", "currency": "CNY"},
                                          "stock": stock})
    assert r.status_code == 201, r.text
    return r.json()


def test_inventory_levels_answer_the_list_envelope(client):
    p = new_product(client)
    for params in ({"sku": "TIRE-1"}, {"variant_id": p["variants"][0]["id"]}):
        page = client.get("/v1/inventory/levels", params=params).json()
        assert page["object"] == "list" and page["has_more"] is False
        assert page["next_cursor"] is None
        assert [(lv["on_hand"], lv["available"]) for lv in page["data"]] == [(5, 5)]


@pytest.mark.parametrize("path", ["/v1/locations", "/v1/inventory/adjustments"])
@pytest.mark.parametrize("cursor", ["garbage", "loc_", "adj_0000", "1; DROP TABLE x"])
def test_inventory_lists_refuse_a_cursor_they_did_not_issue(client, path, cursor):
    new_product(client)
    r = client.get(path, params={"cursor": cursor})
    assert r.status_code == 422, r.text
    assert r.json()["type"] == "https://haina.dev/problems/invalid-cursor"
