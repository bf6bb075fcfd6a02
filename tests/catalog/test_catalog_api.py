"""The catalog through the API — products, variants, typed attributes, search, media — on
SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from catalog_helpers import is_problem, money, search

# the smallest valid PNG: a 1×1 transparent pixel
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d00000000"
    "49454e44ae426082")


def new_product(client, sku="TIRE-205-55R16", title="Michelin 205/55R16 轮胎", amount="99.00",
                stock=5, **extra):
    r = client.post("/v1/products", json={"sku": sku, "title": title, "price": money(amount),
                                          "stock": stock, **extra})
    assert r.status_code == 201, r.text
    return r.json()


# ---------------------------------------------------------------- products and variants

def test_creating_a_product_with_stock_answers_201_and_the_stock_is_available(client):
    r = client.post("/v1/products", json={"sku": "TIRE-1", "title": "Tire",
                                          "price": {"amount": "99.00", "currency": "CNY"},
                                          "stock": 5})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"].startswith("prod_")
    assert created["sku"] == "TIRE-1" and created["price"] == money("99.00")
    got = client.get(f"/v1/products/{created['id']}").json()
    assert got["stock"] == {"on_hand": 5, "reserved": 0, "available": 5}
    assert got["variants"][0]["stock"]["available"] == 5


def test_a_product_without_stock_has_none_available(client):
    p = new_product(client, stock=None)
    assert client.get(f"/v1/products/{p['id']}").json()["stock"]["available"] == 0


def test_a_product_with_several_variants_sums_their_stock(client):
    r = client.post("/v1/products", json={
        "title": "Polo shirt 短袖", "variants": [
            {"sku": "POLO-S", "title": "S", "price": money("59.00"), "stock": 3,
             "attributes": {"size": "S"}},
            {"sku": "POLO-M", "title": "M", "price": money("59.00"), "stock": 4,
             "attributes": {"size": "M"}},
            {"sku": "POLO-XL", "title": "XL", "price": money("69.00"),
             "attributes": {"size": "XL"}}]})
    assert r.status_code == 201, r.text
    p = r.json()
    assert [v["sku"] for v in p["variants"]] == ["POLO-S", "POLO-M", "POLO-XL"]
    assert [v["stock"]["available"] for v in p["variants"]] == [3, 4, 0]
    assert p["stock"] == {"on_hand": 7, "reserved": 0, "available": 7}
    assert p["sku"] == "POLO-S" and p["variants"][2]["price"] == money("69.00")
    # a variant added later
    r = client.post(f"/v1/products/{p['id']}/variants",
                    json={"sku": "POLO-L", "title": "L", "price": money("59.00"), "stock": 2})
    assert r.status_code == 201, r.text
    assert r.json()["stock"]["available"] == 9
    assert [v["sku"] for v in r.json()["variants"]] == ["POLO-S", "POLO-M", "POLO-XL", "POLO-L"]


def test_a_product_needs_either_a_sku_and_price_or_variants(client):
    r = client.post("/v1/products", json={"title": "No SKU"})
    is_problem(r, 422, "validation-error")
    r = client.post("/v1/products", json={"title": "Both", "sku": "A-1", "price": money(),
                                          "variants": [{"sku": "A-2", "price": money()}]})
    is_problem(r, 422, "validation-error")


def test_a_duplicate_sku_is_a_409_sku_exists_problem(client):
    new_product(client, sku="DUP-1")
    r = client.post("/v1/products", json={"sku": "DUP-1", "title": "Again", "price": money()})
    body = is_problem(r, 409, "sku-exists")
    assert body["sku"] == "DUP-1"
    p = new_product(client, sku="OTHER-1")
    r = client.post(f"/v1/products/{p['id']}/variants", json={"sku": "DUP-1", "price": money()})
    is_problem(r, 409, "sku-exists")
    r = client.post("/v1/products", json={"title": "Twice", "variants": [
        {"sku": "TWICE", "price": money()}, {"sku": "TWICE", "price": money()}]})
    is_problem(r, 422, "duplicate-sku")
    assert search(client) == ["DUP-1", "OTHER-1"]


def test_the_database_refuses_a_second_case_of_a_sku(client, engine):
    """Two creations of ``abc-1`` and ``ABC-1`` racing both pass the service's check; the
    unique index on (tenant_id, lower(sku)) lets one of them in."""
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session, make_transient

    from haina.catalog.models import Variant
    p = new_product(client, sku="abc-1")
    with Session(engine) as s:
        v = s.scalars(select(Variant).where(Variant.sku == "abc-1")).one()
        s.expunge(v)
        make_transient(v)
        v.id, v.sku = v.id + "x", "ABC-1"
        s.add(v)
        with pytest.raises(IntegrityError):
            s.flush()
        s.rollback()
    assert search(client) == ["abc-1"] and p["variants"][0]["sku"] == "abc-1"


def test_the_same_sku_may_be_used_by_another_merchant(client, sessions):
    from support import make_tenant
    new_product(client, sku="SHARED-1")
    _, token = make_tenant(sessions, "other-shop")
    r = client.post("/v1/products", json={"sku": "SHARED-1", "title": "Theirs", "price": money()},
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text


def test_another_merchants_product_is_a_404(client, sessions):
    from support import make_tenant
    p = new_product(client)
    _, token = make_tenant(sessions, "other-shop")
    other = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/v1/products/{p['id']}", headers=other).status_code == 404
    assert client.get("/v1/products", headers=other).json()["data"] == []


def test_updating_a_variant_price_and_a_product_title(client):
    p = new_product(client)
    r = client.patch(f"/v1/variants/{p['variants'][0]['id']}", json={"price": money("120.00")})
    assert r.status_code == 200 and r.json()["price"] == money("120.00")
    r = client.patch(f"/v1/products/{p['id']}", json={"title": "Bridgestone 普利司通"})
    assert r.status_code == 200 and r.json()["title"] == "Bridgestone 普利司通"
    assert search(client, q="普利司通") == ["TIRE-205-55R16"]
    assert search(client, q="bridgestone") == ["TIRE-205-55R16"]


# ---------------------------------------------------------------- typed attributes

@pytest.fixture
def tire_attributes(client):
    r = client.post("/v1/attributes", json={"code": "width", "name": "Width", "type": "number",
                                            "unit": "mm"})
    assert r.status_code == 201, r.text
    r = client.post("/v1/attributes", json={"code": "season", "name": "Season", "type": "enum",
                                            "options": ["summer", "winter", "all-season"]})
    assert r.status_code == 201, r.text
    return r.json()


def test_attributes_are_defined_with_types(client, tire_attributes):
    defs = {d["code"]: d for d in client.get("/v1/attributes").json()["data"]}
    assert defs["width"]["type"] == "number" and defs["width"]["unit"] == "mm"
    assert defs["season"]["options"] == ["summer", "winter", "all-season"]
    r = client.post("/v1/attributes", json={"code": "width", "name": "Again", "type": "text"})
    is_problem(r, 409, "attribute-exists")
    r = client.post("/v1/attributes", json={"code": "colour", "name": "Colour", "type": "enum"})
    is_problem(r, 422, "validation-error")


def test_attribute_values_are_checked_against_their_type(client, tire_attributes):
    p = new_product(client, attributes={"width": 205, "season": "summer"})
    assert p["attributes"] == {"width": 205, "season": "summer"}
    # a number given as a numeric string is stored as a number
    p2 = new_product(client, sku="T-2", attributes={"width": "225"})
    assert p2["attributes"] == {"width": 225}
    for bad in ({"width": "wide"}, {"width": True}, {"season": "spring"}):
        r = client.post("/v1/products", json={"sku": "BAD-1", "title": "Bad", "price": money(),
                                              "attributes": bad})
        body = is_problem(r, 422, "invalid-attribute")
        assert next(iter(bad)) in body["detail"]
    r = client.patch(f"/v1/products/{p['id']}", json={"attributes": {"season": "monsoon"}})
    is_problem(r, 422, "invalid-attribute")
    r = client.patch(f"/v1/variants/{p['variants'][0]['id']}", json={"attributes": {"width": "x"}})
    is_problem(r, 422, "invalid-attribute")
    # nothing bad was stored
    assert search(client) == ["T-2", "TIRE-205-55R16"]
    assert client.get(f"/v1/products/{p['id']}").json()["attributes"] == {"width": 205,
                                                                         "season": "summer"}


def test_filtering_by_attribute_values(client, tire_attributes):
    new_product(client, sku="W205", title="Tire A", attributes={"width": 205, "season": "summer"})
    new_product(client, sku="W225", title="Tire B", attributes={"width": 225, "season": "winter"})
    new_product(client, sku="W2055", title="Tire C", attributes={"width": 205.5})
    new_product(client, sku="PLAIN", title="Valve cap")
    assert search(client, **{"attr.width": "205"}) == ["W205"]
    assert search(client, **{"attr.width": "205.0"}) == ["W205"]
    assert search(client, **{"attr.width": "205.5"}) == ["W2055"]
    assert search(client, **{"attr.width": "999"}) == []
    assert search(client, **{"attr.season": "winter"}) == ["W225"]
    assert search(client, **{"attr.width": "205", "attr.season": "summer"}) == ["W205"]
    assert search(client, **{"attr.width": "205", "attr.season": "winter"}) == []


def test_filtering_by_a_variant_attribute_finds_only_that_product(client, tire_attributes):
    r = client.post("/v1/products", json={"title": "Tire family", "variants": [
        {"sku": "FAM-205", "price": money(), "attributes": {"width": 205}},
        {"sku": "FAM-225", "price": money(), "attributes": {"width": 225}}]})
    assert r.status_code == 201, r.text
    new_product(client, sku="LONE-195", title="Other tire", attributes={"width": 195})
    assert search(client, **{"attr.width": "225"}) == ["FAM-205"]  # the product, by first SKU
    assert search(client, **{"attr.width": "195"}) == ["LONE-195"]


def test_a_numeric_filter_on_a_text_attribute_neither_errs_nor_matches_loosely(client):
    # an undeclared attribute holds text that merely starts with digits ("91V" is a tire's
    # load index and speed rating); filtering by the number 91 must not match it, nor fail
    new_product(client, sku="LI-91V", title="Tire", attributes={"load_index": "91V"})
    new_product(client, sku="LI-91", title="Tire 2", attributes={"load_index": 91})
    r = client.get("/v1/products", params={"attr.load_index": "91"})
    assert r.status_code == 200, r.text
    assert sorted(p["sku"] for p in r.json()["data"]) == ["LI-91"]
    assert search(client, **{"attr.load_index": "91V"}) == ["LI-91V"]
    assert search(client, **{"attr.load_index": "0"}) == []


# ---------------------------------------------------------------- search

@pytest.fixture
def shop(client):
    new_product(client, sku="TIRE-205-55R16", title="Michelin Primacy 4 米其林轮胎 205/55R16")
    new_product(client, sku="VALVE-CAP", title="Valve cap 气门帽")
    new_product(client, sku="WIPER-24", title="Bosch wiper blade 雨刮器")
    new_product(client, sku="OIL-5W30", title="Mobil 1 engine oil 机油 5W-30")


def test_search_finds_chinese_two_character_words(client, shop):
    assert search(client, q="轮胎") == ["TIRE-205-55R16"]
    assert search(client, q="机油") == ["OIL-5W30"]
    assert search(client, q="气门") == ["VALVE-CAP"]


def test_search_finds_chinese_words_of_three_or_more_characters(client, shop):
    assert search(client, q="米其林") == ["TIRE-205-55R16"]
    assert search(client, q="米其林轮胎") == ["TIRE-205-55R16"]
    assert search(client, q="雨刮器") == ["WIPER-24"]


def test_search_finds_english_words_whatever_their_case(client, shop):
    assert search(client, q="michelin") == ["TIRE-205-55R16"]
    assert search(client, q="MICHELIN") == ["TIRE-205-55R16"]
    assert search(client, q="Bosch Wiper") == ["WIPER-24"]
    assert search(client, q="cap") == ["VALVE-CAP"]  # a short English word too


def test_search_finds_skus_and_parts_of_them(client, shop):
    assert search(client, q="TIRE-205-55R16") == ["TIRE-205-55R16"]
    assert search(client, q="oil-5w30") == ["OIL-5W30"]
    assert search(client, q="205/55") == ["TIRE-205-55R16"]


def test_search_has_no_false_positives(client, shop):
    assert search(client, q="轮胎 机油") == []  # every word must match the same product
    assert search(client, q="电池") == []
    assert search(client, q="普利司通") == []
    assert search(client, q="battery") == []
    assert search(client, q="100%") == []  # LIKE wildcards are escaped
    assert search(client, q="_") == []
    assert search(client, q="TIRE_205") == []


def test_search_sees_only_the_callers_products(client, sessions, shop):
    from support import make_tenant
    _, token = make_tenant(sessions, "other-shop")
    r = client.get("/v1/products", params={"q": "轮胎"}, headers={"Authorization": f"Bearer {token}"})
    assert r.json()["data"] == []
    r = client.get("/v1/products", params={"q": "michelin"},
                   headers={"Authorization": f"Bearer {token}"})
    assert r.json()["data"] == []


# ---------------------------------------------------------------- categories

def test_categories_group_products_and_are_searchable(client):
    r = client.post("/v1/categories", json={"name": "汽车配件", "slug": "auto-parts"})
    assert r.status_code == 201, r.text
    parent = r.json()
    r = client.post("/v1/categories", json={"name": "轮胎 Tires", "slug": "tires",
                                            "parent_id": parent["id"]})
    assert r.status_code == 201, r.text
    tires = r.json()
    assert tires["parent_id"] == parent["id"]
    is_problem(client.post("/v1/categories", json={"name": "Again", "slug": "tires"}),
               409, "category-exists")
    is_problem(client.post("/v1/categories", json={"name": "X", "slug": "x",
                                                   "parent_id": "cat_nope"}),
               404, "category-not-found")
    listed = client.get("/v1/categories").json()["data"]
    assert [c["slug"] for c in listed] == ["auto-parts", "tires"]
    new_product(client, sku="T-1", title="Michelin", category_id=tires["id"])
    new_product(client, sku="V-1", title="Valve cap", category_id=parent["id"])
    new_product(client, sku="N-1", title="Uncategorised")
    assert search(client, category_id=tires["id"]) == ["T-1"]
    assert search(client, category_id=parent["id"]) == ["V-1"]
    assert search(client, q="tires") == ["T-1"]  # the category name is searchable
    r = client.post("/v1/products", json={"sku": "C-1", "title": "Bad category",
                                          "price": money(), "category_id": "cat_nope"})
    is_problem(r, 404, "category-not-found")


# ---------------------------------------------------------------- media

def upload(client, product_id, content=PNG, content_type="image/png", filename="front.png",
           **kwargs):
    return client.post(f"/v1/products/{product_id}/media",
                       files={"file": (filename, content, content_type)}, **kwargs)


def test_an_uploaded_image_is_served_back_byte_for_byte(client):
    p = new_product(client)
    r = upload(client, p["id"], data={"alt": "正面"})
    assert r.status_code == 201, r.text
    media = r.json()
    assert media["kind"] == "image" and media["content_type"] == "image/png"
    assert media["size"] == len(PNG) and media["alt"] == "正面"
    import hashlib
    assert media["sha256"] == hashlib.sha256(PNG).hexdigest()
    got = client.get(media["url"])
    assert got.status_code == 200
    assert got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert [m["id"] for m in client.get(f"/v1/products/{p['id']}").json()["media"]] == [media["id"]]


def test_an_unsupported_media_type_is_a_415_problem(client):
    p = new_product(client)
    r = upload(client, p["id"], content=b"#!/bin/sh\necho hi\n", content_type="text/x-shellscript",
               filename="x.sh")
    is_problem(r, 415, "unsupported-media-type")
    r = upload(client, p["id"], content=b"", content_type="image/png")
    assert r.status_code == 422
    assert client.get(f"/v1/products/{p['id']}").json()["media"] == []


def test_another_merchant_cannot_read_or_attach_media(client, sessions):
    from support import make_tenant
    p = new_product(client)
    media = upload(client, p["id"]).json()
    _, token = make_tenant(sessions, "other-shop")
    other = {"Authorization": f"Bearer {token}"}
    r = client.get(media["url"], headers=other)
    is_problem(r, 404, "media-not-found")
    is_problem(upload(client, p["id"], headers=other), 404, "product-not-found")
    assert client.delete(f"/v1/media/{media['id']}", headers=other).status_code == 404
    assert client.get(media["url"]).content == PNG


def test_deleting_media(client):
    p = new_product(client)
    media = upload(client, p["id"]).json()
    assert client.delete(f"/v1/media/{media['id']}").status_code == 204
    assert client.get(f"/v1/products/{p['id']}").json()["media"] == []
    assert client.get(media["url"]).status_code == 404


# ---------------------------------------------------------------- lists, idempotency, money

def test_products_paginate_newest_first(client):
    skus = [new_product(client, sku=f"P-{i}", title=f"Product {i}")["sku"] for i in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/products", params=params).json()
        assert len(page["data"]) <= 3
        seen += [p["sku"] for p in page["data"]]
        pages += 1
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert seen == list(reversed(skus)) and pages == 3
    assert client.get("/v1/products", params={"limit": 0}).status_code == 422


def test_idempotency_key_replays_product_creation(client):
    body = {"sku": "IDEM-1", "title": "Once", "price": money(), "stock": 3}
    h = {"Idempotency-Key": "create-idem-1"}
    first = client.post("/v1/products", json=body, headers=h)
    again = client.post("/v1/products", json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert search(client) == ["IDEM-1"]
    assert client.get(f"/v1/products/{first.json()['id']}").json()["stock"]["on_hand"] == 3
    other = client.post("/v1/products", json={**body, "title": "Changed"}, headers=h)
    is_problem(other, 422, "idempotency-key-reused")
    # without the key the same body is a new request: the SKU is taken now
    is_problem(client.post("/v1/products", json=body), 409, "sku-exists")


@pytest.mark.parametrize("price,where", [
    ({"amount": 99.0, "currency": "CNY"}, "float"),
    ({"amount": 99.5, "currency": "CNY"}, "float"),
    ({"amount": "99.001", "currency": "CNY"}, "decimals"),
    ({"amount": "1.5", "currency": "JPY"}, "decimals"),
    ({"amount": "99.00", "currency": "XYZ"}, "currency"),
    ({"amount": "99.00", "currency": "RMB"}, "currency"),
    ({"amount": "abc", "currency": "CNY"}, "amount"),
    ({"amount": "NaN", "currency": "CNY"}, "amount"),
])
def test_bad_money_is_refused_with_a_422(client, price, where):
    r = client.post("/v1/products", json={"sku": "M-1", "title": "Money", "price": price})
    body = is_problem(r, 422, "validation-error")
    assert where in r.text.lower() or "price" in body["detail"]
    assert search(client) == []


def test_good_money_is_kept_exactly(client):
    p = new_product(client, sku="M-1", amount="0.10")
    assert p["price"] == money("0.10")
    r = client.post("/v1/products", json={"sku": "M-3", "title": "Int",
                                          "price": {"amount": "19.9", "currency": "CNY"}})
    assert r.status_code == 201 and r.json()["price"]["amount"] == "19.90"
