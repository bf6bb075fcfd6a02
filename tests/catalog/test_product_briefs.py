"""``catalog.product_briefs`` (what a search lists) agrees with ``list_products`` on both
databases: the same products in the same order for any ``q``, ``status`` and ``limit``, each
with its first variant's SKU and price and the attributes fitment reads."""

from __future__ import annotations

import pytest
from catalog_helpers import money

from haina.catalog import service as catalog
from haina.core.context import Tenant
from haina.core.db import transaction
from haina.platform import service as platform


@pytest.fixture
def acme(client, sessions):
    products = [
        {"title": "轮胎 R16 静音", "sku": "T-16", "price": money("500.00"),
         "attributes": {"brand": "A"}},
        {"title": "轮胎 R17 运动", "variants": [
            {"sku": "T-17-B", "price": money("610.00"), "attributes": {"tread": "sport"}},
            {"sku": "T-17-A", "price": money("600.00"), "attributes": {"tread": "quiet"}}]},
        {"title": "机油 5W-30", "sku": "OIL-1", "price": money("99.00"), "status": "draft"},
        {"title": "轮胎 R18", "sku": "T-18", "price": money("800.00")},
    ]
    made = []
    for body in products:
        r = client.post("/v1/products", json=body)
        assert r.status_code == 201, r.text
        made.append(r.json())
    # a variant added later comes after the first, whatever its SKU
    assert client.post(f"/v1/products/{made[0]['id']}/variants",
                       json={"sku": "A-FIRST-BY-NAME", "price": money("1.00")}).status_code == 201
    with transaction(sessions) as s:
        t = platform.get_tenant_by_slug(s, "acme")
    return Tenant(id=t.id, slug=t.slug, currency=t.currency)


def test_briefs_list_what_list_products_lists(sessions, acme):
    tenant = acme
    for q, status, limit in [(None, None, 10), ("轮胎", "active", 10), ("轮胎", "active", 2),
                             ("R17", "active", 5), ("机油", "active", 5), ("机油", None, 5),
                             ("nothing", None, 5), (None, "draft", 1)]:
        with transaction(sessions) as s:
            full = catalog.list_products(s, tenant, q=q, status=status, limit=limit).data
            briefs = catalog.product_briefs(s, tenant, q=q, status=status, limit=limit)
        assert [b.id for b in briefs] == [p.id for p in full], (q, status, limit)
        for b, p in zip(briefs, full, strict=True):
            assert (b.sku, b.title, b.price, b.category_id) == \
                (p.sku, p.title, p.price, p.category_id)
            assert b.attributes == {**p.attributes, **p.variants[0].attributes}
    with transaction(sessions) as s:
        by_sku = {b.sku: b for b in catalog.product_briefs(s, tenant, limit=10)}
    assert str(by_sku["T-17-B"].price.amount) == "610.00"
    assert by_sku["T-17-B"].attributes == {"tread": "sport"}
    assert "A-FIRST-BY-NAME" not in by_sku and "T-16" in by_sku
