"""Publishable keys: made, listed and revoked by the merchant (scope storefront); a key
reaches /store/v1, a revoked or unknown one is refused; CORS answers per key's origins."""

from __future__ import annotations

from storefront_support import make_key, ok

from haina.core.db import transaction
from haina.platform import service as platform


def test_a_key_is_made_listed_used_and_revoked(client):
    made = ok(client.post("/v1/storefront/keys", headers={"Idempotency-Key": "k1"}, json={
        "name": "iOS", "channel": "app", "allowed_origins": ["https://Shop.example.com/"]}))
    assert made["key"].startswith("pk_") and made["channel"] == "app"
    assert made["allowed_origins"] == ["https://shop.example.com"] and not made["sandbox"]
    listed = ok(client.get("/v1/storefront/keys"))["data"]
    assert [k["id"] for k in listed] == [made["id"]]
    h = {"X-Publishable-Key": made["key"]}
    assert client.get("/store/v1/products", headers=h).status_code == 200
    revoked = ok(client.post(f"/v1/storefront/keys/{made['id']}/revoke"))
    assert revoked["revoked_at"] is not None
    r = client.get("/store/v1/products", headers=h)
    assert r.status_code == 401 and r.json()["type"].endswith("/invalid-publishable-key")
    events = [e["type"] for e in ok(client.get("/v1/events"))["data"]]
    assert "publishable_key.created" in events and "publishable_key.revoked" in events


def test_store_routes_refuse_calls_without_a_live_key(client):
    for headers in ({}, {"X-Publishable-Key": "pk_unknown"}, {"X-Publishable-Key": "hn_x"}):
        r = client.get("/store/v1/products", headers=headers)
        assert r.status_code == 401, r.text
        assert r.headers["content-type"] == "application/problem+json"


def test_keys_need_the_storefront_scope(client, sessions):
    with transaction(sessions) as s:
        token = platform.create_token(s, "acme", "catalog:write").token
    r = client.post("/v1/storefront/keys", headers={"Authorization": f"Bearer {token}"},
                    json={"name": "x", "channel": "web"})
    assert r.status_code == 403 and r.json()["required_scope"] == "storefront:write"


def test_bad_origins_are_refused(client):
    for origin in ("shop.example.com", "ftp://x", "https://x/path", "https:// x"):
        r = client.post("/v1/storefront/keys", json={
            "name": "w", "channel": "web", "allowed_origins": [origin]})
        assert r.status_code == 422, origin


def test_cors_names_the_origin_only_for_a_key_that_lists_it(client):
    listed = make_key(client, origins=["https://shop.example.com"])
    other = make_key(client, origins=["https://other.example.com"])
    preflight = client.options("/store/v1/products", headers={
        "Origin": "https://shop.example.com", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-publishable-key"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert "X-Publishable-Key" in preflight.headers["access-control-allow-headers"]
    refused = client.options("/store/v1/products", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    mine = client.get("/store/v1/products", headers={
        "Origin": "https://shop.example.com", "X-Publishable-Key": listed})
    assert mine.headers["access-control-allow-origin"] == "https://shop.example.com"
    theirs = client.get("/store/v1/products", headers={
        "Origin": "https://shop.example.com", "X-Publishable-Key": other})
    assert theirs.status_code == 200 and "access-control-allow-origin" not in theirs.headers
    # errors carry it too, so the page can read the problem
    bad = client.get("/store/v1/carts/cart_x", headers={
        "Origin": "https://shop.example.com", "X-Publishable-Key": listed})
    assert bad.status_code == 401
    assert bad.headers["access-control-allow-origin"] == "https://shop.example.com"
