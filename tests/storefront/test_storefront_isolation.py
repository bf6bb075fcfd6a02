"""Isolation on /store/v1, generated over every route: merchant A's key reaches nothing of
merchant B's, buyer X's token none of buyer Y's carts, orders or bookings (404, as across
merchants on the merchant API); a route without a key is refused (401), a buyer's route
without the buyer's token too; and every /store/v1 route declares which of the two it takes,
so a route added without one fails here."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from storefront_support import buyer_headers, make_key, ok, sign_in, slot_start, tire_shop
from support import make_tenant

from haina.core.http import api_routes

_PARAM = re.compile(r"{(\w+)}")
BODIES = {
    "/store/v1/carts/{cart_id}/lines": {"sku": "TIRE-16", "quantity": 1},
    "/store/v1/carts/{cart_id}/lines/{sku}": {"quantity": 1},
    "/store/v1/carts/{cart_id}/checkout": {},
    "/store/v1/bookings/{booking_id}/rating": {"score": 5},
    "/store/v1/orders/{order_id}/payments": {"payment_method": {
        "type": "card", "number": "4242424242424242"}},
}
QUERIES = {"/store/v1/service-points/{point_id}/slots": {"service": "tire-fitting",
                                                         "date": slot_start()[:10]}}


def _objects(client, headers: dict, point_id: str, hour: int) -> dict:
    """A buyer's cart, a paid order with its booking, an open cart, a held booking."""
    cart = ok(client.post("/store/v1/carts", headers=headers,
                          json={"lines": [{"sku": "TIRE-16", "quantity": 1}]}))
    hold = ok(client.post("/store/v1/bookings", headers=headers, json={
        "service_point_id": point_id, "service": "tire-fitting", "start": slot_start(hour=hour)}))
    order = ok(client.post(f"/store/v1/carts/{cart['id']}/checkout", headers=headers, json={
        "bookings": [{"sku": "TIRE-16", "booking_id": hold["id"]}]}))
    ok(client.post(f"/store/v1/orders/{order['id']}/payments", headers=headers, json=BODIES[
        "/store/v1/orders/{order_id}/payments"]))
    open_cart = ok(client.post("/store/v1/carts", headers=headers,
                               json={"lines": [{"sku": "TIRE-16", "quantity": 1}]}))
    return {"cart_id": open_cart["id"], "order_id": order["id"], "booking_id": hold["id"],
            "sku": "TIRE-16"}


@pytest.fixture(scope="module")
def world(module_db_url):
    from haina.api import create_app
    from haina.core.config import Settings
    from haina.core.db import make_engine, make_sessionmaker
    engine = make_engine(module_db_url)
    sessions = make_sessionmaker(engine)
    _, a_token = make_tenant(sessions, "shop-a")
    _, b_token = make_tenant(sessions, "shop-b")
    app = create_app(Settings(database_url=module_db_url, token_cache_seconds=0,
                              rate_limit_backend="off"), engine=engine)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {a_token}"
        a_shop = tire_shop(client)
        a_key = make_key(client, channel="app")
        client.headers["Authorization"] = f"Bearer {b_token}"
        b_shop = tire_shop(client)
        b_key = make_key(client, channel="app")
        del client.headers["Authorization"]
        buyers = {"x": sign_in(client, a_key, "13800138000"),
                  "y": sign_in(client, a_key, "13900139000"),
                  "z": sign_in(client, b_key, "13800138000")}  # B's buyer, same phone
        x, y = buyer_headers(a_key, buyers["x"]), buyer_headers(a_key, buyers["y"])
        z = buyer_headers(b_key, buyers["z"])
        ids = {"y": _objects(client, y, a_shop["point"]["id"], 10),
               "z": _objects(client, z, b_shop["point"]["id"], 11)}
        _objects(client, x, a_shop["point"]["id"], 12)
        # a coupon in each buyer's wallet (one each: X's own, Y's of A, Z's of B)
        for token, whose in ((a_token, "x"), (a_token, "y"), (b_token, "z")):
            client.headers["Authorization"] = f"Bearer {token}"
            coupon = ok(client.post("/v1/coupons", json={
                "code": f"ONLY-{whose.upper()}", "audience": "issued", "discount": {
                    "type": "fixed", "amount": {"amount": "5.00", "currency": "CNY"}}}))
            ok(client.post(f"/v1/coupons/{coupon['id']}/issue",
                           json={"member_ids": [buyers[whose]["member_id"]]}))
            if whose != "x":
                ids[whose]["coupon_id"] = coupon["id"]
        del client.headers["Authorization"]
        ids["z"] |= {"product_id": b_shop["tire"]["id"], "point_id": b_shop["point"]["id"]}
        yield {"client": client, "x": x, "a_key": a_key, "ids": ids,
               "a_public": {"product_id": a_shop["draft"]["id"]}}
    engine.dispose()


def _routes(client):
    for route in api_routes(client.app.routes):
        if route.path.startswith("/store/v1/") and route.path != "/store/v1/openapi.json":
            for method in sorted(route.methods - {"HEAD"}):
                yield method, route


def _declared(route) -> str | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if getattr(dep.call, "storefront", None):
            return dep.call.storefront
        stack += dep.dependencies
    return None


def _send(client, method, route, values: dict, headers: dict):
    path = route.path
    for p in _PARAM.findall(path):
        path = path.replace("{" + p + "}", values.get(p, "x"))
    kwargs: dict = {"params": QUERIES.get(route.path, {})}
    if method in ("POST", "PUT") and route.path in BODIES:
        kwargs["json"] = BODIES[route.path]
    return client.request(method, path, headers=headers, **kwargs)


def test_every_store_route_declares_its_credential(world):
    routes = list(_routes(world["client"]))
    assert [f"{m} {r.path}" for m, r in routes if _declared(r) is None] == []
    assert len(routes) >= 20


@pytest.mark.parametrize("whose", ["y", "z"])
def test_buyer_x_gets_404_for_every_id_of_buyer_y_and_of_merchant_b(world, whose):
    client, checked, leaks = world["client"], 0, []
    for method, route in _routes(client):
        params = _PARAM.findall(route.path)
        if not params:
            continue
        values = world["ids"][whose]
        if whose == "y" and not set(params) & {"cart_id", "order_id", "booking_id"}:
            values = world["a_public"]  # Y's are the buyer's objects; A's public ones are X's
        missing = [p for p in params if p not in values]
        if missing:
            assert whose == "y", f"{method} {route.path}: no ids of {missing}"
            continue
        r = _send(client, method, route, values, world["x"])
        checked += 1
        if r.status_code != 404:
            leaks.append(f"{method} {route.path} → {r.status_code} {r.text[:200]}")
    assert leaks == []
    assert checked >= 8


def test_without_a_key_every_route_is_refused_and_without_a_buyer_every_buyers_route(world):
    client, wrong = world["client"], []
    for method, route in _routes(client):
        r = _send(client, method, route, {}, {})
        if r.status_code != 401:
            wrong.append(f"{method} {route.path} without a key → {r.status_code}")
        if _declared(route) == "buyer":
            r = _send(client, method, route, {}, {"X-Publishable-Key": world["a_key"]})
            if r.status_code != 401:
                wrong.append(f"{method} {route.path} without a buyer → {r.status_code}")
    assert wrong == []


def test_the_buyers_lists_hold_only_their_own(world):
    client, x = world["client"], world["x"]
    others = {v for whose in ("y", "z") for v in world["ids"][whose].values()}
    for path in ("/store/v1/orders", "/store/v1/bookings"):
        data = ok(client.get(path, headers=x))["data"]
        assert data and not {d["id"] for d in data} & others
    wallet = ok(client.get("/store/v1/me/coupons", headers=x))["data"]
    assert [c["code"] for c in wallet] == ["ONLY-X"]
    assert not {c["coupon_id"] for c in wallet} & others
