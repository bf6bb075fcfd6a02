"""Shared by the cross-border tests: a buyer, a product's facts, placing orders, and the
``scanned`` client whose responses and log lines may not hold an unmasked ID number."""

from __future__ import annotations

import logging

import pytest

from haina.crossborder.identity import ID_NUMBER_PATTERN

BUYER = {"name": "王芳", "id_number": "360403198001010075", "phone": "13800138000"}
OTHER = {"name": "李雷", "id_number": "11010519491231002X", "phone": "13900139000"}
FACTS = {"hs_code": "3304990099", "origin_country": "FR", "vat_rate": "0.13",
         "consumption_rate": "0.15", "net_weight_kg": "0.050", "gross_weight_kg": "0.120",
         "mode": "bonded"}


@pytest.fixture
def scanned(client, caplog):
    """The client, every response of which (and every log line of the test) is checked for
    an unmasked ID number at the end: all but the two routes of the crossborder:identity
    scope, whose purpose it is."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    original = client.request

    def request(*args, **kwargs):
        r = original(*args, **kwargs)
        if not r.request.url.path.endswith(("/identity", "/messages")):
            seen.append(r.text)
        return r

    client.request = request
    yield client
    leaks = [t for t in seen + [rec.getMessage() for rec in caplog.records]
             if ID_NUMBER_PATTERN.search(t)]
    assert leaks == []


BRAND = {"name": "Maison Lumière", "origin_country": "FR", "owner": "Lumière SAS",
         "agency_name": "Hangzhou Cross-border Services",
         "authorisation": {"grantor": "Lumière SAS", "grantee": "Acme", "reference": "AUT-2026-1",
                           "valid_from": "2026-01-01", "valid_until": "2099-12-31"},
         "documents": [{"kind": "trademark_registration", "title": "TM 12345",
                        "reference": "TM12345"}]}


def approve(client, brand_id: str, reason: str = "documents verified") -> dict:
    """Platform staff approve a file (what ``haina crossborder brands review`` does)."""
    from haina.core.db import transaction
    from haina.crossborder import service
    from haina.platform import service as platform
    with transaction(client.app.state.sessionmaker) as s:
        tenant = platform.tenant_for_slug(s, client.get("/v1/tenant").json()["slug"])
        return service.review_brand(s, tenant, brand_id, "approve", reason,
                                    "reviewer@haina").model_dump(mode="json")


def qualified_brand(client, **changes) -> str:
    """An approved brand of the client's merchant (made once per client unless changed)."""
    if not changes and getattr(client, "_qualified_brand", None):
        return client._qualified_brand
    r = client.post("/v1/crossborder/brands", json={**BRAND, **changes})
    assert r.status_code == 201, r.text
    approve(client, r.json()["id"])
    if not changes:
        client._qualified_brand = r.json()["id"]
    return r.json()["id"]


def product(client, sku="SERUM-1", amount="1000.00", stock=100, facts=FACTS):
    r = client.post("/v1/products", json={"sku": sku, "title": "Serum",
                                          "price": {"amount": amount, "currency": "CNY"},
                                          "stock": stock})
    assert r.status_code == 201, r.text
    p = r.json()
    if facts is not None:
        if facts.get("enabled", True) and "brand_id" not in facts:
            facts = {**facts, "brand_id": qualified_brand(client)}
        r = client.put(f"/v1/crossborder/products/{p['id']}", json=facts)
        assert r.status_code == 200, r.text
    return p


def order(client, sku="SERUM-1", quantity=1, buyer=BUYER, **crossborder):
    return client.post("/v1/orders", json={"lines": [{"sku": sku, "quantity": quantity}],
                                           "crossborder": {"buyer": buyer, **crossborder}})


def refused(r, status, slug):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/" + slug), r.text
    return r.json()
