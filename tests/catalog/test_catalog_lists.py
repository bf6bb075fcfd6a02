"""Catalog lists (issue 9): the list envelope everywhere, a 422 for a cursor the list did not
issue and for a status filter outside the known statuses — on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from catalog_helpers import is_problem, search
from support import make_tenant


def new_product(client, sku="TIRE-1"):
    r = client.post("/v1/products", json={"sku": sku, "title": "Tire", "stock": 5,
                                          "price": {"amount": "99.00", "currency": "CNY"}})
    assert r.status_code == 201, r.text
    return r.json()


# ---------------------------------------------------------------- cursors and filters (defect 7)

@pytest.mark.parametrize("cursor", ["zzz", "garbage", "prod_", "prod_zzzzzzzzzzzzzzzzzzzzzzzzzz",
                                    "prod_01J0000000000000000000000", "' OR 1=1 --",
                                    "evt_01HZZZZZZZZZZZZZZZZZZZZZZZ"])
def test_a_cursor_we_did_not_issue_is_a_422_invalid_cursor(client, cursor):
    new_product(client, sku="C-1")
    is_problem(client.get("/v1/products", params={"cursor": cursor}), 422, "invalid-cursor")


def test_a_cursor_we_issued_still_pages(client):
    for i in range(3):
        new_product(client, sku=f"C-{i}")
    first = client.get("/v1/products", params={"limit": 2}).json()
    assert first["has_more"] and first["next_cursor"].startswith("prod_")
    rest = client.get("/v1/products", params={"limit": 2, "cursor": first["next_cursor"]})
    assert rest.status_code == 200 and [p["sku"] for p in rest.json()["data"]] == ["C-0"]


def test_an_unknown_product_status_filter_is_a_422(client):
    new_product(client, sku="S-1")
    is_problem(client.get("/v1/products", params={"status": "bogus"}), 422, "validation-error")
    assert search(client, status="active") == ["S-1"]
    assert search(client, status="draft") == []


# ---------------------------------------------------------------- list envelopes

def test_categories_and_attributes_answer_the_list_envelope(client):
    assert client.post("/v1/categories", json={"name": "Tires", "slug": "tires"}).status_code == 201
    assert client.post("/v1/attributes", json={"code": "width", "name": "Width",
                                               "type": "number"}).status_code == 201
    for path, key in (("/v1/categories", "slug"), ("/v1/attributes", "code")):
        page = client.get(path).json()
        assert page["object"] == "list" and page["has_more"] is False
        assert page["next_cursor"] is None
        assert [x[key] for x in page["data"]] == (["tires"] if key == "slug" else ["width"])


def test_an_empty_category_list_is_an_empty_envelope(client, sessions):
    _, token = make_tenant(sessions, "empty-shop")
    r = client.get("/v1/categories", headers={"Authorization": f"Bearer {token}"})
    assert r.json() == {"object": "list", "data": [], "has_more": False, "next_cursor": None}
