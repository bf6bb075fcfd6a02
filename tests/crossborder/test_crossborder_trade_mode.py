"""Issue 14: cross-border goods are sold only with the buyer's identity, quota and tax. An
order (or a cart's checkout, on /v1 and on the storefront) holding a cross-border product and
no ``crossborder`` block is refused, naming the lines; a brand whose authorisation or a
document runs out is reminded of, then expired by the worker and its products unlisted.
Migration 0019 fills the catalogue's trade mode and the files' validity from what was there.
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from crossborder_support import BRAND, FACTS, approve, order, product, refused
from sqlalchemy import JSON, Boolean, Date, DateTime, Integer, MetaData, text

from haina.core.db import make_engine, transaction, utcnow
from haina.core.errors import Invalid
from haina.core.schema import upgrade
from haina.crossborder import service
from haina.platform import service as platform


def _plain_order(client, *skus: str):
    return client.post("/v1/orders", json={"lines": [{"sku": s, "quantity": 1} for s in skus]})


def _sign_in(client, phone: str) -> dict:
    key = client.post("/v1/storefront/keys", json={
        "name": "web shop", "channel": "web", "sandbox": True, "allowed_origins": []}).json()["key"]
    h = {"X-Publishable-Key": key}
    phone = client.post("/store/v1/sign-in/codes", headers=h, json={"phone": phone}).json()["phone"]
    inbox = client.get("/store/v1/sandbox/inbox", headers=h).json()["data"]
    code = next(m["code"] for m in inbox if m["phone"] == phone)
    session = client.post("/store/v1/sign-in/verify", headers=h,
                          json={"phone": phone, "code": code}).json()
    return {**h, "Authorization": f"Bearer {session['access_token']}"}


def test_cross_border_goods_without_the_buyer_are_refused_on_every_way_to_an_order(scanned):
    serum = product(scanned)  # listed cross-border under a qualified brand
    cream = product(scanned, sku="CREAM-1", facts={**FACTS, "brand_id": None, "enabled": False})
    product(scanned, sku="MUG-1", facts=None)  # general trade
    assert _plain_order(scanned, "MUG-1").status_code == 201
    # a plain order of a cross-border product: 422, the lines named
    body = refused(_plain_order(scanned, "MUG-1", "SERUM-1"), 422, "crossborder-buyer-required")
    assert body["lines"] == [{"sku": "SERUM-1", "product_id": serum["id"],
                              "trade_mode": "crossborder"}]
    assert "crossborder.buyer" in body["detail"]
    # SKUs compare without regard to case: the lower-case lookup carries the mode too
    refused(_plain_order(scanned, "serum-1"), 422, "crossborder-buyer-required")
    assert order(scanned).status_code == 201  # with the buyer: identity, quota, tax
    # facts kept but not enabled: the merchant's general trade
    assert _plain_order(scanned, "CREAM-1").status_code == 201
    # a cart's checkout carries no buyer: refused the same way, the cart left open
    cart = scanned.post("/v1/carts", json={"lines": [{"sku": "SERUM-1", "quantity": 1}]}).json()
    r = scanned.post(f"/v1/carts/{cart['id']}/checkout", json={})
    assert refused(r, 422, "crossborder-buyer-required")["lines"][0]["sku"] == "SERUM-1"
    assert scanned.get(f"/v1/carts/{cart['id']}").json()["status"] == "open"
    # and the storefront's (a signed-in buyer's cart)
    buyer = _sign_in(scanned, "13800138000")
    cart = scanned.post("/store/v1/carts", headers=buyer,
                        json={"lines": [{"sku": "SERUM-1", "quantity": 1}]})
    assert cart.status_code == 201, cart.text
    r = scanned.post(f"/store/v1/carts/{cart.json()['id']}/checkout",
                     headers={**buyer, "Idempotency-Key": "xb-1"}, json={})
    assert "crossborder.buyer" in refused(r, 422, "crossborder-buyer-required")["detail"]
    # listed again as cross-border: the catalogue follows, and a product.updated tells apps
    listed = scanned.put(f"/v1/crossborder/products/{cream['id']}",
                         json={**FACTS, "brand_id": scanned._qualified_brand})
    assert listed.status_code == 200, listed.text
    refused(_plain_order(scanned, "CREAM-1"), 422, "crossborder-buyer-required")
    events = scanned.get("/v1/events", params={"limit": 200}).json()["data"]
    assert [e["data"]["trade_mode"] for e in events if e["type"] == "product.updated"
            and e["subject_id"] == cream["id"]] == ["crossborder"]
    # the brand revoked: its products are suspended, refused with or without a buyer
    with transaction(scanned.app.state.sessionmaker) as s:
        tenant = platform.tenant_for_slug(s, "acme")
        service.review_brand(s, tenant, scanned._qualified_brand, "revoke", "withdrawn", "x")
    body = refused(_plain_order(scanned, "SERUM-1", "CREAM-1"), 422,
                   "crossborder-product-suspended")
    assert sorted(line["sku"] for line in body["lines"]) == ["CREAM-1", "SERUM-1"]
    refused(order(scanned), 422, "not-crossborder-product")
    # the merchant declares it general trade: sold without a buyer again
    assert scanned.put(f"/v1/crossborder/products/{serum['id']}",
                       json={**FACTS, "enabled": False}).status_code == 200
    assert _plain_order(scanned, "SERUM-1").status_code == 201


def _brand(client, until: str, document_until: str | None = None) -> dict:
    documents = [{**BRAND["documents"][0], "valid_until": document_until}] if document_until \
        else BRAND["documents"]
    r = client.post("/v1/crossborder/brands", json={
        **BRAND, "name": f"Brand until {until}", "documents": documents,
        "authorisation": {**BRAND["authorisation"], "valid_until": until}})
    assert r.status_code == 201, r.text
    return approve(client, r.json()["id"])


def test_a_brand_is_reminded_before_its_authorisation_runs_out_then_expired_and_unlisted(
        scanned, sessions):
    today = (utcnow() + dt.timedelta(hours=8)).date()
    soon = _brand(scanned, "2099-12-31", document_until=(today + dt.timedelta(days=10)).isoformat())
    assert soon["valid_until"] == (today + dt.timedelta(days=10)).isoformat()  # the document's
    later = _brand(scanned, (today + dt.timedelta(days=200)).isoformat())
    p = product(scanned, facts={**FACTS, "brand_id": soon["id"]})
    refused(scanned.post("/v1/crossborder/brands", json={
        **BRAND, "name": "Stale", "documents": [{**BRAND["documents"][0],
                                                 "valid_until": "2020-01-01"}]}),
        422, "document-expired")
    now = utcnow()
    with transaction(sessions) as s:  # 30 days ahead by default: the first file only, once
        assert service.follow_up_brands(s, now) == 1
    with transaction(sessions) as s:
        assert service.follow_up_brands(s, now + dt.timedelta(hours=1)) == 0
    events = scanned.get("/v1/events", params={"limit": 200}).json()["data"]
    [reminder] = [e for e in events if e["type"] == "brand.expiring"]
    assert reminder["subject_id"] == soon["id"]
    assert (reminder["data"]["days_left"], reminder["data"]["status"]) == (10, "approved")
    assert order(scanned).status_code == 201  # still listed
    # eleven days on, the document ran out: expired by the worker, its products unlisted
    with transaction(sessions) as s:
        assert service.follow_up_brands(s, now + dt.timedelta(days=11)) == 1
    got = scanned.get(f"/v1/crossborder/brands/{soon['id']}").json()
    assert (got["status"], got["decided_by"]) == ("expired", "platform:expiry")
    assert [d["action"] for d in got["decisions"]] == ["submitted", "approved", "expired"]
    assert scanned.get(f"/v1/crossborder/products/{p['id']}").json()["enabled"] is False
    refused(_plain_order(scanned, "SERUM-1"), 422, "crossborder-product-suspended")
    refused(order(scanned), 422, "not-crossborder-product")
    events = scanned.get("/v1/events", params={"limit": 200}).json()["data"]
    [expired] = [e for e in events if e["type"] == "brand.expired"]
    assert (expired["subject_id"], expired["data"]["products_unlisted"]) == (soon["id"], 1)
    assert scanned.get(f"/v1/crossborder/brands/{later['id']}").json()["status"] == "approved"
    # filed again with a renewed document: submitted, then approved, listed again
    again = scanned.post(f"/v1/crossborder/brands/{soon['id']}/submissions", json=BRAND)
    assert again.status_code == 200 and again.json()["valid_until"] == "2099-12-31"
    approve(scanned, soon["id"])
    assert scanned.put(f"/v1/crossborder/products/{p['id']}",
                       json={**FACTS, "brand_id": soon["id"]}).status_code == 200
    assert order(scanned).status_code == 201


def test_a_file_that_ran_out_before_its_review_is_not_approved(scanned, sessions):
    today = (utcnow() + dt.timedelta(hours=8)).date()
    r = scanned.post("/v1/crossborder/brands", json={
        **BRAND, "authorisation": {**BRAND["authorisation"], "valid_until": today.isoformat()}})
    assert r.status_code == 201, r.text
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "acme")
        s.execute(text("UPDATE crossborder_brands SET valid_until = :d"),
                  {"d": today - dt.timedelta(days=1)})
        try:
            service.review_brand(s, tenant, r.json()["id"], "approve", "ok", "x")
            raise AssertionError("a file that ran out was approved")
        except Invalid as exc:
            assert exc.slug == "authorisation-expired"


# ------------------------------------------------------------------ migration 0019

def _fill(table, **values):
    """A row of ``table`` (as reflected) with a dummy value in every required column."""
    dummies = {Boolean: False, Integer: 0, Date: dt.date(2026, 1, 1),
               DateTime: dt.datetime(2026, 1, 1, tzinfo=dt.UTC), JSON: {}}
    row = {}
    for c in table.c:
        if c.name in values or c.nullable or c.server_default is not None:
            continue
        row[c.name] = next((v for t, v in dummies.items() if isinstance(c.type, t)), "x")
    return {**row, **values}


def test_migration_0019_fills_trade_modes_and_validity_from_what_was_there(empty_url):
    engine = make_engine(empty_url)
    upgrade(engine, "0018")
    meta = MetaData()
    meta.reflect(engine, only=["tenants", "products", "crossborder_products",
                               "crossborder_brands"])
    t = meta.tables
    brands = [("brand_ok", "approved", []), ("brand_gone", "revoked",
                                             [{"valid_until": "2030-06-30"}])]
    with engine.begin() as conn:
        conn.execute(t["tenants"].insert(), _fill(t["tenants"], id="ten_1", slug="acme"))
        for brand_id, status, documents in brands:
            conn.execute(t["crossborder_brands"].insert(), _fill(
                t["crossborder_brands"], tenant_id="ten_1", id=brand_id, name=brand_id,
                status=status, documents=documents,
                authorisation={"valid_until": "2031-01-01", "reference": "A"}))
        for product_id, enabled, brand_id in [("p_on", True, "brand_ok"),
                                              ("p_off", False, "brand_ok"),
                                              ("p_revoked", False, "brand_gone"),
                                              ("p_plain", None, None)]:
            conn.execute(t["products"].insert(), _fill(t["products"], tenant_id="ten_1",
                                                       id=product_id, attributes={}))
            if enabled is not None:
                conn.execute(t["crossborder_products"].insert(), _fill(
                    t["crossborder_products"], tenant_id="ten_1", id=product_id,
                    enabled=enabled, brand_id=brand_id))
    upgrade(engine)
    with engine.connect() as conn:
        modes = dict(conn.execute(text("SELECT id, trade_mode FROM products")).all())
        until = dict(conn.execute(text("SELECT id, valid_until FROM crossborder_brands")).all())
    assert modes == {"p_on": "crossborder", "p_off": None, "p_revoked": "suspended",
                     "p_plain": None}
    assert {k: str(v)[:10] for k, v in until.items()} == {"brand_ok": "2031-01-01",
                                                           "brand_gone": "2030-06-30"}
    engine.dispose()

