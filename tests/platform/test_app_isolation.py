"""Tenant isolation for apps, generated from the OpenAPI document (issue 10).

Merchant A installs an app that asked for every scope; merchant B (the quick demo's tire shop,
refreshed by the analytics worker, plus one object of every other kind made through its API)
holds the ids. For every route that takes an id, A's app token with all scopes sends B's ids
and must get 404; for every route, an app token lacking the route's component gets 403 naming
the scope; and every /v1 route declares how it is authorised (a scope, or app-only), so a
route added without one fails here."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from oauth_flow import install, make_app, make_staff
from sqlalchemy import text

from haina.api import create_app
from haina.core.config import Settings
from haina.core.context import COMPONENTS
from haina.core.db import make_engine, make_sessionmaker, transaction
from haina.core.http import api_routes
from haina.platform import service as platform
from haina.worker import run_once

PNG = bytes.fromhex(  # the smallest valid PNG: a 1×1 transparent pixel
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d00000000"
    "49454e44ae426082")
ALL_SCOPES = " ".join(f"{c}:write" for c in COMPONENTS) + " crossborder:identity"
# path parameter → where merchant B's ids of that kind are (table, column); a route with a
# parameter missing here fails the test until it is added
ID_SOURCES = {
    "order_id": ("orders", "id"), "intent_id": ("payment_intents", "id"),
    "cart_id": ("carts", "id"), "sku": ("variants", "sku"), "product_id": ("products", "id"),
    "variant_id": ("variants", "id"), "media_id": ("media", "id"),
    "reservation_id": ("reservations", "id"), "member_id": ("members", "id"),
    "identity_id": ("member_identities", "id"), "tier_id": ("member_tiers", "id"),
    "app_id": ("apps", "id"), "grant_id": ("app_grants", "id"),
    "job_id": ("analytics_jobs", "id"), "run_id": ("analytics_runs", "id"),
    "segment_id": ("analytics_segments", "id"),
    "endpoint_id": ("webhook_endpoints", "id"), "delivery_id": ("webhook_deliveries", "id"),
    "event_id": ("events", "id"), "coupon_id": ("coupons", "id"),
    "promotion_id": ("promotions", "id"),
    "point_id": ("service_points", "id"), "code": ("point_services", "code"),
    "rule_id": ("fitment_rules", "id"), "booking_id": ("bookings", "id"),
    "partnership_id": ("o2o_partnerships", "id"),
    "resource_code": ("o2o_resources", "code"),
    "declaration_id": ("crossborder_declarations", "id"),
    "brand_id": ("crossborder_brands", "id"),
    "data_request_id": ("data_requests", "id"),
    "key_id": ("storefront_keys", "id"), "campaign_id": ("campaigns", "id"),
}
# parameters that name no merchant's object (a plot of the caller's own latest run)
NOT_IDS = {"name", "fmt"}
_PARAM = re.compile(r"{(\w+)}")


def declared(route) -> tuple[str | None, bool]:
    """(the scope a route requires, whether it is an app's own route)."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if getattr(dep.call, "required_scope", None):
            return dep.call.required_scope, False
        if getattr(dep.call, "app_only", False):
            return None, True
        stack += dep.dependencies
    return None, False


@dataclass
class World:
    client: TestClient
    engine: object
    a_token: str  # A's app token, every scope
    b_id: str
    mint: object  # scope → A's app token with only those scopes


@pytest.fixture(scope="module")
def world(module_demo_url):
    module_db_url = module_demo_url  # a copy of the quick demo's database (tests/conftest.py)
    engine = make_engine(module_db_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as s:
        platform.create_tenant(s, "acme", "Acme")
        b = platform.tenant_for_slug(s, "demo-tires")
        b_token = platform.create_token(s, "demo-tires", "*").token
    make_staff(sessions, "acme", "owner@acme.example")
    # the walk sends a hundred requests a second with one token: limits are not its subject
    app = create_app(Settings(database_url=module_db_url, token_cache_seconds=0,
                              rate_limit_backend="off"), engine=engine)
    with TestClient(app, base_url="http://localhost") as client:
        _objects_of_every_kind(client, sessions, {"Authorization": f"Bearer {b_token}"})
        client_id, secret = make_app(sessions, scopes=ALL_SCOPES, name="Everything")
        a_token = install(client, sessions, client_id, secret, "owner@acme.example",
                          scope=ALL_SCOPES)["access_token"]

        def mint(scope: str) -> str:
            r = client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                  "refresh_token": fresh["refresh_token"],
                                                  "scope": scope}, auth=(client_id, secret))
            assert r.status_code == 200, r.text
            fresh["refresh_token"] = r.json()["refresh_token"]
            return r.json()["access_token"]

        fresh = install(client, sessions, client_id, secret, "owner@acme.example",
                        scope=ALL_SCOPES)
        yield World(client, engine, a_token, b.id, mint)
    engine.dispose()


def _objects_of_every_kind(client, sessions, b: dict) -> None:
    """What the demo lacks, made for B through its own API; then an analytics refresh."""
    def ok(r, status=(200, 201, 202)):
        assert r.status_code in status, r.text
        return r.json()

    product = ok(client.post("/v1/products", headers=b, json={
        "sku": "ISO-1", "title": "Isolation tire", "price": {"amount": "100.00", "currency": "CNY"}}))
    ok(client.post(f"/v1/products/{product['id']}/media", headers=b,
                   files={"file": ("p.png", PNG, "image/png")}))
    ok(client.post("/v1/inventory/adjustments", headers=b,
                   json={"sku": "ISO-1", "delta": 10, "reason": "received"}))
    ok(client.post("/v1/reservations", headers=b, json={"sku": "ISO-1", "quantity": 1}))
    hook = client.post("/v1/webhook-endpoints", headers=b, json={
        "url": "https://hooks.tires.example/in", "event_types": ["order.*"]})
    if hook.status_code != 404:  # the webhooks module is mounted: B's endpoint, deliveries
        ok(hook)
    ok(client.post("/v1/coupons", headers=b, json={"code": "TIRES10", "discount": {
        "type": "percent", "percent": "10"}}))
    ok(client.post("/v1/promotions", headers=b, json={
        "name": "满300减40", "kind": "threshold",
        "tiers": [{"min_subtotal": "300.00", "off": "40.00"}], "repeat": True}))
    point = ok(client.post("/v1/service-points", headers=b, json={
        "name": "Iso bay", "location": {"lat": 31.2, "lng": 121.4},
        "opening_hours": [{"weekday": d, "open": "09:00", "close": "18:00"} for d in range(1, 8)],
        "resources": [{"code": "lift", "capacity": 1}],
        "services": [{"code": "tire-fitting", "duration_minutes": 60, "capacity": 2,
                      "price": {"amount": "80.00", "currency": "CNY"}, "resource": "lift"}]}))
    ok(client.post("/v1/fitment-rules", headers=b, json={"service": "tire-fitting",
                                                          "attribute": "rim_diameter"}))
    import datetime as dt  # a slot a month ahead (bookings are taken up to a year ahead)
    day = dt.date.today() + dt.timedelta(days=30)
    ok(client.post("/v1/bookings", headers=b, json={
        "service_point_id": point["id"], "service": "tire-fitting",
        "start": f"{day.isoformat()}T10:00:00+08:00"}))
    ok(client.post("/v1/storefront/keys", headers=b, json={"name": "B's app", "channel": "app"}))
    # B's installer partner, and a booking B made at its point (kept in the installer's tenant)
    with transaction(sessions) as s:
        platform.create_tenant(s, "iso-fitters", "Iso fitters")
        fitters = {"Authorization": "Bearer " + platform.create_token(s, "iso-fitters", "*").token}
    shop = ok(client.post("/v1/service-points", headers=fitters, json={
        "name": "Iso fitters", "location": {"lat": 31.2, "lng": 121.41},
        "opening_hours": [{"weekday": d, "open": "09:00", "close": "18:00"} for d in range(1, 8)],
        "services": [{"code": "tire-fitting", "duration_minutes": 60, "capacity": 2,
                      "price": {"amount": "80.00", "currency": "CNY"}}]}))
    partnership = ok(client.post("/v1/partnerships", headers=b, json={"installer": "iso-fitters"}))
    ok(client.post(f"/v1/partnerships/{partnership['id']}/accept", headers=fitters))
    ok(client.post("/v1/bookings", headers=b, json={
        "service_point_id": shop["id"], "service": "tire-fitting",
        "start": f"{day.isoformat()}T11:00:00+08:00"}))
    member = ok(client.get("/v1/members", headers=b, params={"limit": 1}))["data"][0]
    ok(client.post(f"/v1/members/{member['id']}/data-requests", headers=b,
                   json={"kind": "export"}))
    ok(client.post("/v1/campaigns", headers=b, json={
        "name": "iso", "member_ids": [member["id"]], "ends_at": f"{day.isoformat()}T00:00:00Z",
        "coupon": {"discount": {"type": "fixed", "amount": {"amount": "5.00",
                                                            "currency": "CNY"}}}}))
    cart = ok(client.post("/v1/carts", headers=b, json={"member_id": member["id"]}))
    ok(client.post(f"/v1/carts/{cart['id']}/lines", headers=b, json={"sku": "ISO-1", "quantity": 1}))
    order = ok(client.post("/v1/orders", headers=b, json={
        "member_id": member["id"], "lines": [{"sku": "ISO-1", "quantity": 1}]}))
    ok(client.post("/v1/payment_intents", headers=b, json={
        "order_id": order["id"], "payment_method": {"type": "cash"}, "capture_method": "manual"}))
    # a cross-border order of B's (its brand qualified by platform staff), paid and declared
    brand = ok(client.post("/v1/crossborder/brands", headers=b,
                           json=BODIES["/v1/crossborder/brands/{brand_id}/submissions"]))
    from haina.crossborder import service as crossborder
    with transaction(sessions) as s:
        crossborder.review_brand(s, platform.tenant_for_slug(s, "demo-tires"), brand["id"],
                                 "approve", "checked", "staff")
    ok(client.put(f"/v1/crossborder/products/{product['id']}", headers=b,
                  json={**BODIES["/v1/crossborder/products/{product_id}"],
                        "brand_id": brand["id"]}))
    xb = ok(client.post("/v1/orders", headers=b, json={
        "lines": [{"sku": "ISO-1", "quantity": 1}],
        "address": {"name": "Wang", "phone": "13800138000", "line1": "1 Road"},
        "crossborder": {"buyer": {"name": "Wang", "id_number": "11010519491231002X",
                                  "phone": "13800138000"}}}))
    ok(client.post("/v1/payment_intents", headers=b, json={
        "order_id": xb["id"], "payment_method": {"type": "cash"}}))
    code = {"ebp_code": "E1", "ebp_name": "E", "ebc_code": "C1", "ebc_name": "C",
            "agent_code": "A1", "agent_name": "A", "customs_code": "2991",
            "port_code": "2991", "dxp_id": "DXP1"}
    ok(client.post("/v1/crossborder/declarations", headers=b, json={
        "order_id": xb["id"], "enterprise": code,
        "payment": {"pay_code": "P1", "pay_name": "P", "transaction_id": "T1"},
        "waybill": {"logistics_code": "L1", "logistics_name": "L", "logistics_no": "N1"}}))
    if hook.status_code != 404:  # B's order events become deliveries to B's endpoint
        from haina.webhooks.delivery import Dispatcher
        dispatcher, made = Dispatcher(sessions), 0
        for _ in range(200):  # the demo's history is pending before B's new order events
            made += len(dispatcher.fan_out(1000))
            if made:
                break
        assert made
    job = ok(client.post("/v1/analytics/refresh", headers=b, json={}))
    assert run_once(sessions)["analytics_refreshes_run"] == 1
    deadline = time.monotonic() + 600  # a wait, not a speed check (a loaded machine is slow)
    while ok(client.get(f"/v1/analytics/jobs/{job['id']}", headers=b))["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ok(client.post("/v1/analytics/segments", headers=b, json={
        "name": "iso", "rule": {"stage_in": ["active"]}}))
    # B's own unlisted app (A must not see it), and B's grant to it
    b_client_id, _ = make_app(sessions, scopes="orders:read", name="B's own", listed=False)
    from haina.platform import apps
    with transaction(sessions) as s:
        b_id = platform.tenant_for_slug(s, "demo-tires").id
        apps.install(s, b_id, b_client_id, ["orders:read"], None)
        s.execute(text("UPDATE apps SET owner_tenant_id = :t WHERE id = :a"),
                  {"t": b_id, "a": b_client_id})


def _b_ids(world: World, param: str) -> list[str]:
    table, column = ID_SOURCES[param]
    with world.engine.connect() as conn:
        if table not in _tables(conn):
            return []
        tenant_col = "owner_tenant_id" if table == "apps" else "tenant_id"
        return list(conn.execute(text(f"SELECT {column} FROM {table} WHERE {tenant_col} = :t "
                                      f"ORDER BY {column} LIMIT 2"), {"t": world.b_id}).scalars())


def _tables(conn) -> set[str]:
    from sqlalchemy import inspect
    return set(inspect(conn).get_table_names())


def _routes(world: World):
    for route in api_routes(world.client.app.routes):
        if route.path.startswith("/v1/"):
            for method in sorted(route.methods - {"HEAD"}):
                yield method, route


def test_every_route_declares_how_it_is_authorised(world):
    undeclared = [f"{m} {r.path}" for m, r in _routes(world) if declared(r) == (None, False)]
    assert undeclared == []
    assert sum(1 for _ in _routes(world)) > 60


def test_merchant_as_app_token_with_every_scope_gets_404_for_every_id_of_merchant_b(world):
    checked, leaks = 0, []
    headers = {"Authorization": f"Bearer {world.a_token}"}
    for method, route in _routes(world):
        params = _PARAM.findall(route.path)
        if not params or set(params) <= NOT_IDS:
            continue
        missing = [p for p in params if p not in ID_SOURCES]
        assert not missing, f"{method} {route.path}: say where B's ids of {missing} are"
        values = {p: (_b_ids(world, p) or [None])[0] for p in params}
        assert all(values.values()), f"{method} {route.path}: B has no {values}"
        path = route.path
        for p, v in values.items():
            path = path.replace("{" + p + "}", str(v))
        r = world.client.request(method, path, headers=headers,
                                 **_body_for(method, route.path))
        checked += 1
        if r.status_code != 404:
            leaks.append(f"{method} {path} → {r.status_code} {r.text[:200]}")
    assert leaks == []
    assert checked >= 35


def test_merchant_as_app_token_with_every_scope_lists_none_of_merchant_bs_objects(world):
    """Every list the API answers (a GET without a path parameter answering a page) read
    with A's token: no item is one of B's objects (any id of B's in the tables above)."""
    b_ids: set[str] = set()
    with world.engine.connect() as conn:
        tables = _tables(conn)
        for table, column in sorted(set(ID_SOURCES.values())):
            if table in tables and column == "id":
                tenant_col = "owner_tenant_id" if table == "apps" else "tenant_id"
                b_ids |= set(conn.execute(text(f"SELECT id FROM {table} WHERE {tenant_col} = :t"),
                                          {"t": world.b_id}).scalars())
    headers = {"Authorization": f"Bearer {world.a_token}"}
    listed, leaks = [], []
    for method, route in _routes(world):
        if method != "GET" or _PARAM.search(route.path):
            continue
        r = world.client.get(route.path, headers=headers)
        if r.status_code != 200 or not r.headers.get("content-type", "").startswith(
                "application/json"):
            continue
        body = r.json()
        if not isinstance(body, dict) or body.get("object") != "list":
            continue
        listed.append(route.path)
        seen = {item.get("id") for item in body["data"] if isinstance(item, dict)}
        leaks += [f"GET {route.path} → {i}" for i in sorted(seen & b_ids)]
    assert leaks == []
    assert "/v1/carts" in listed and "/v1/orders" in listed and len(listed) > 20, listed


BODIES = {
    "/v1/orders/{order_id}/shipments": {"carrier": "SF", "tracking_number": "SF1"},
    "/v1/payment_intents/{intent_id}/capture": {},
    "/v1/carts/{cart_id}/checkout": {},
    "/v1/orders/{order_id}/cancel": {},
    "/v1/carts/{cart_id}/lines": {"sku": "ISO-1", "quantity": 1},
    "/v1/carts/{cart_id}/lines/{sku}": {"quantity": 1},
    "/v1/products/{product_id}": {"title": "x"},
    "/v1/products/{product_id}/variants": {"sku": "ISO-NEW",
                                           "price": {"amount": "1.00", "currency": "CNY"}},
    "/v1/variants/{variant_id}": {"title": "x"},
    "/v1/members/{member_id}": {"name": "x"},
    "/v1/members/{member_id}/identities": {"kind": "email", "value": "x@x.example"},
    "/v1/members/{member_id}/merge": {"other_id": "mem_00000000000000000000000000"},
    "/v1/members/{member_id}/points/adjustments": {"points": 5, "reason": "x"},
    "/v1/members/{member_id}/consents": {"email_marketing": True},
    "/v1/members/{member_id}/data-requests": {"kind": "export"},
    "/v1/tiers/{tier_id}": {"name": "x"},
    "/v1/webhook-endpoints/{endpoint_id}": {"description": "x"},
    "/v1/coupons/{coupon_id}": {"description": "x"},
    "/v1/coupons/{coupon_id}/issue": {"member_ids": ["mem_00000000000000000000000000"]},
    "/v1/promotions/{promotion_id}": {"description": "x"},
    "/v1/campaigns/{campaign_id}": {"description": "x"},
    "/v1/crossborder/products/{product_id}": {
        "hs_code": "3304990099", "origin_country": "FR", "net_weight_kg": "0.050",
        "gross_weight_kg": "0.120"},
    "/v1/webhook-endpoints/{endpoint_id}/replay": {"since": "2024-01-01T00:00:00Z"},
    "/v1/service-points/{point_id}": {"name": "x"},
    "/v1/service-points/{point_id}/services": {
        "code": "iso", "duration_minutes": 30, "price": {"amount": "1.00", "currency": "CNY"}},
    "/v1/service-points/{point_id}/services/{code}": {"capacity": 1},
    "/v1/service-points/{point_id}/resources": {"code": "iso", "capacity": 1},
    "/v1/service-points/{point_id}/resources/{resource_code}": {"capacity": 2},
    "/v1/bookings/{booking_id}/reschedule": {"start": "2030-01-07T11:00:00+08:00"},
    "/v1/bookings/{booking_id}/rating": {"score": 5,
                                         "member_id": "mem_00000000000000000000000000"},
    "/v1/crossborder/declarations/{declaration_id}/receipts": {"message": "<x/>"},
    "/v1/crossborder/brands/{brand_id}/submissions": {
        "name": "Iso brand", "origin_country": "FR", "owner": "Iso SAS", "agency_name": "Iso",
        "authorisation": {"grantor": "Iso SAS", "grantee": "B", "reference": "A1",
                          "valid_from": "2026-01-01", "valid_until": "2099-01-01"}},
    "/v1/crossborder/brands/{brand_id}/decisions": {"decision": "reject", "reason": "x"},
    "/v1/crossborder/orders/{order_id}/tracking": {
        "carrier": "SF", "tracking_number": "SF1", "status": "in_transit",
        "at": "2026-12-01T08:00:00+08:00"},
}
# query parameters a route needs to reach its lookup
QUERIES = {"/v1/service-points/{point_id}/slots": {"service": "tire-fitting",
                                                   "date": "2030-01-07"}}


def _body_for(method: str, path: str) -> dict:
    """A body that validates, so the request reaches the lookup (a 422 would hide a leak);
    a route with a body not listed here is sent without one."""
    if path == "/v1/products/{product_id}/media":
        return {"files": {"file": ("p.png", PNG, "image/png")}}
    if method in ("POST", "PUT", "PATCH") and path in BODIES:
        return {"json": BODIES[path]}
    if path in QUERIES:
        return {"params": QUERIES[path]}
    return {}


def test_a_token_without_the_routes_component_gets_403_naming_the_scope(world):
    tokens: dict[str, str] = {}
    checked, wrong = 0, []
    for method, route in _routes(world):
        scope, app_only = declared(route)
        if app_only:
            r = world.client.request(method, route.path.replace("{", "").replace("}", ""),
                                     headers={"Authorization": f"Bearer {world.a_token}"})
            if r.status_code != 403:
                wrong.append(f"{method} {route.path} (app-only) → {r.status_code}")
            continue
        component = scope.split(":")[0]
        if component not in tokens:
            others = " ".join(f"{c}:write" for c in COMPONENTS if c != component)
            tokens[component] = world.mint(others)
        path = _PARAM.sub("x", route.path)
        r = world.client.request(method, path, headers={
            "Authorization": f"Bearer {tokens[component]}"})
        checked += 1
        if r.status_code != 403 or r.json().get("required_scope") != scope:
            wrong.append(f"{method} {route.path} → {r.status_code} {r.text[:120]}")
    assert wrong == []
    assert checked > 60
