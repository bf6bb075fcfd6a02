"""The buyer's cart calls are direct routes (core.http.DirectRoute, issue 16): each answers
as the FastAPI route does (an app without direct routes, on the same database), the buyer's
refusals, idempotent checkouts and CORS included, on both databases."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from storefront_support import buyer_headers, make_key, ok, sign_in, tire_shop

from tests.support import make_tenant, same_answers, without

ORIGIN = "https://shop.example.com"
VOLATILE = {"id", "number", "created_at", "updated_at", "expires_at", "hold_expires_at",
            "order_id", "instance", "cart_id"}
CART_ROUTES = {("POST", "/store/v1/carts"), ("GET", "/store/v1/carts/{cart_id}"),
               ("POST", "/store/v1/carts/{cart_id}/lines"),
               ("POST", "/store/v1/carts/{cart_id}/checkout")}


def _stable(value):
    return without(value, VOLATILE)


@pytest.fixture
def shops(engine, sessions):
    """Two apps on one database, with and without direct routes; a key listing ORIGIN, a
    signed-in buyer's headers."""
    from haina.api import create_app
    from haina.core.config import Settings
    _, token = make_tenant(sessions)
    apps = {flag: create_app(Settings(database_url=str(engine.url), token_cache_seconds=0,
                                      direct_routes=flag), engine=engine)
            for flag in (True, False)}
    with TestClient(apps[True]) as fast, TestClient(apps[False]) as slow:
        fast.headers["Authorization"] = f"Bearer {token}"
        tire_shop(fast, stock=1000)
        key = make_key(fast, origins=[ORIGIN])
        del fast.headers["Authorization"]
        h = buyer_headers(key, sign_in(fast, key, "13800000001"))
        yield apps, fast, slow, h


def _cart(client, h) -> str:
    return ok(client.post("/store/v1/carts", headers=h,
                          json={"lines": [{"sku": "TIRE-16", "quantity": 1}]}))["id"]


def _same(fast, slow, method, path, **kwargs):
    a, b = fast.request(method, path, **kwargs), slow.request(method, path, **kwargs)
    same_answers(a, b, VOLATILE)
    for name in ("access-control-allow-origin", "vary", "www-authenticate"):
        assert a.headers.get(name) == b.headers.get(name)
    return a


def test_the_cart_routes_are_compiled(shops):
    apps, fast, slow, _ = shops
    fast.get("/healthz"), slow.get("/healthz")  # builds the middleware stacks
    edge = apps[True].middleware_stack
    compiled = set(edge.direct) | {(m, r.path) for (m, _), rs in edge.templated.items()
                                   for r in rs}
    assert CART_ROUTES <= compiled
    assert not apps[False].middleware_stack.direct


@pytest.mark.parametrize("origin", [None, ORIGIN, "https://elsewhere.example.com"])
def test_a_buyers_cart_to_an_order_answers_alike(shops, origin):
    _, fast, slow, h = shops
    if origin is not None:
        h = {**h, "Origin": origin}
    a = _same(fast, slow, "POST", "/store/v1/carts", headers=h,
              json={"lines": [{"sku": "TIRE-16", "quantity": 2}]})
    assert a.status_code == 201
    assert (a.headers.get("access-control-allow-origin") == ORIGIN) == (origin == ORIGIN)
    one, other = _cart(fast, h), _cart(slow, h)
    for cart_id in (one, other):  # each cart read, added to and checked out by either app
        for client in (fast, slow):
            assert client.get(f"/store/v1/carts/{cart_id}", headers=h).status_code == 200
    a, b = fast.get(f"/store/v1/carts/{one}", headers=h), slow.get(f"/store/v1/carts/{other}",
                                                                    headers=h)
    assert _stable(a.json()) == _stable(b.json())
    assert a.headers.get("access-control-allow-origin") == \
        b.headers.get("access-control-allow-origin")
    a = fast.post(f"/store/v1/carts/{one}/lines", headers=h, json={"sku": "TIRE-16",
                                                                   "quantity": 3})
    b = slow.post(f"/store/v1/carts/{other}/lines", headers=h, json={"sku": "TIRE-16",
                                                                     "quantity": 3})
    assert a.status_code == b.status_code == 200 and _stable(a.json()) == _stable(b.json())
    a = fast.post(f"/store/v1/carts/{one}/checkout", headers=h, json={})
    b = slow.post(f"/store/v1/carts/{other}/checkout", headers=h, json={})
    assert a.status_code == b.status_code == 201 and _stable(a.json()) == _stable(b.json())
    assert a.headers.get("access-control-allow-origin") == \
        b.headers.get("access-control-allow-origin")


def test_refusals_answer_alike(shops):
    _, fast, slow, h = shops
    cart_id = _cart(fast, h)
    line = {"sku": "TIRE-16", "quantity": 1}
    no_buyer = {"X-Publishable-Key": h["X-Publishable-Key"]}
    calls = [("POST", "/store/v1/carts", {"lines": [line]}),
             ("GET", f"/store/v1/carts/{cart_id}", None),
             ("POST", f"/store/v1/carts/{cart_id}/lines", line),
             ("POST", f"/store/v1/carts/{cart_id}/checkout", {})]
    for method, path, body in calls:
        kw = {} if body is None else {"json": body}
        for headers, status in ((no_buyer, 401), ({}, 401),
                                ({**h, "Authorization": "Bearer bst_nope"}, 401),
                                ({**h, "X-Publishable-Key": "pk_nope"}, 401)):
            a = _same(fast, slow, method, path, headers=headers, **kw)
            assert a.status_code == status, a.text
    for method, path in (("GET", "/store/v1/carts/nope"), ("GET", "/store/v1/carts/n%20pe"),
                         ("POST", "/store/v1/carts/nope/lines"),
                         ("POST", "/store/v1/carts/nope/checkout")):
        kw = {"json": line if path.endswith("lines") else {}} if method == "POST" else {}
        assert _same(fast, slow, method, path, headers=h, **kw).status_code == 404
    # bodies FastAPI refuses: handed to it, its 422
    for method, path, _ in calls:
        if method == "POST":
            a = _same(fast, slow, method, path, headers={**h, "Content-Type": "application/json"},
                      content=b'{"lines": ')
            assert a.status_code == 422
            a = _same(fast, slow, method, path, headers=h, json={"quantity": "many"})
            assert a.status_code == 422
    a = _same(fast, slow, "POST", f"/store/v1/carts/{cart_id}/lines", headers=h,
              json={"sku": "NOPE", "quantity": 1})
    assert a.status_code == 404


def test_an_idempotent_checkout_replays_and_refuses_alike(shops):
    _, fast, slow, h = shops
    cart_id = _cart(fast, h)
    keyed = {**h, "Idempotency-Key": "checkout-1"}
    first = fast.post(f"/store/v1/carts/{cart_id}/checkout", headers=keyed, json={})
    assert first.status_code == 201, first.text
    for client in (fast, slow):  # the key is the buyer's, whichever path answers
        again = client.post(f"/store/v1/carts/{cart_id}/checkout", headers=keyed, json={})
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    a = _same(fast, slow, "POST", f"/store/v1/carts/{cart_id}/checkout", headers=keyed,
              json={"note": "another body"})
    assert a.status_code in (422, 409)
    a = _same(fast, slow, "POST", f"/store/v1/carts/{cart_id}/checkout",
              headers={**h, "Idempotency-Key": "k" * 300}, json={})
    assert a.status_code == 422


def test_the_direct_path_answers_unless_an_origin_asks_for_cors(shops):
    apps, fast, _, h = shops
    fast.get("/healthz")
    edge = apps[True].middleware_stack
    stack, seen = edge.app, []

    async def counted(scope, receive, send):
        seen.append((scope["method"], scope["path"]))
        await stack(scope, receive, send)

    edge.app = counted
    for routes in [*edge.templated.values(), edge.direct.values()]:
        for route in routes:
            route.fallback = counted
    cart_id = _cart(fast, h)
    ok(fast.get(f"/store/v1/carts/{cart_id}", headers=h))
    ok(fast.post(f"/store/v1/carts/{cart_id}/lines", headers=h,
                 json={"sku": "TIRE-16", "quantity": 1}))
    ok(fast.post(f"/store/v1/carts/{cart_id}/checkout", headers=h, json={}))
    page = ok(fast.get("/store/v1/products", params={"q": "轮胎", "limit": 5}, headers=h))
    ok(fast.get(f"/store/v1/products/{page['data'][0]['id']}", headers=h))
    ok(fast.get("/store/v1/search", params={"q": "R16", "lat": 31.23, "lng": 121.47},
                headers=h))
    assert seen == []  # FastAPI answered none of them
    r = fast.get(f"/store/v1/carts/{cart_id}", headers={**h, "Origin": ORIGIN})
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert seen == [("GET", f"/store/v1/carts/{cart_id}")]  # StoreCors (and FastAPI) did


def test_the_catalogue_and_search_answer_alike_with_any_query(shops):
    """The public GETs take query parameters on the direct path (validated by one model made
    from the routes' Query declarations); whatever FastAPI would refuse is handed to it."""
    apps, fast, slow, h = shops
    key = {"X-Publishable-Key": h["X-Publishable-Key"]}
    fast.get("/healthz")
    assert {("GET", "/store/v1/products"), ("GET", "/store/v1/search")} <= \
        set(apps[True].middleware_stack.direct)
    product_id = ok(fast.get("/store/v1/products", headers=key))["data"][0]["id"]
    near = "lat=31.2304&lng=121.4737"
    answered = [
        "/store/v1/products", "/store/v1/products?q=%E8%BD%AE%E8%83%8E&limit=5",
        "/store/v1/products?q=&limit=1", "/store/v1/products?limit=2&limit=3",
        "/store/v1/products?unknown=1", f"/store/v1/products/{product_id}",
        f"/store/v1/search?q=R16&{near}", f"/store/v1/search?q=R16&{near}&radius_km=5&limit=2",
        f"/store/v1/search?q=R16&{near}&datum=gcj02",
    ]
    refused = [
        "/store/v1/products?limit=0", "/store/v1/products?limit=many",
        "/store/v1/products?limit=101", "/store/v1/products?q=" + "x" * 201,
        f"/store/v1/search?{near}", "/store/v1/search?q=R16&lat=91&lng=0",
        f"/store/v1/search?q=R16&{near}&datum=bd09", f"/store/v1/search?q=&{near}",
        f"/store/v1/search?q=R16&{near}&radius_km=-1", "/store/v1/products/nope",
        # hostile: huge and non-finite numbers, a cursor too long, a stray percent sign
        "/store/v1/products?limit=" + "9" * 40, "/store/v1/search?q=R16&lat=nan&lng=0",
        "/store/v1/search?q=R16&lat=1e309&lng=0", f"/store/v1/search?q=R16&{near}&radius_km=inf",
        "/store/v1/products?cursor=" + "p" * 65, "/store/v1/products?limit=%ZZ",
    ]
    for path in answered:
        a = _same(fast, slow, "GET", path, headers=key)
        assert a.status_code == 200, (path, a.text)
    for path in refused:
        a = _same(fast, slow, "GET", path, headers=key)
        assert a.status_code in (404, 422), (path, a.status_code)
    for headers in ({}, {"X-Publishable-Key": "pk_nope"}):
        assert _same(fast, slow, "GET", "/store/v1/products?limit=2",
                     headers=headers).status_code == 401


def test_a_key_reused_for_another_cart_leaves_that_cart_open_and_its_stock_free(shops,
                                                                                sessions):
    """A checkout's key row goes with its COMMIT (PostgreSQL's event-loop units: one round
    trip); the same key on another cart's checkout does that cart's work, finds the key
    taken when the row is written, and must undo all of it: the answer is 422, the cart is
    still open and checks out under a key of its own, the stock held once."""
    _, fast, slow, h = shops
    first, second = _cart(fast, h), _cart(fast, h)
    keyed = {**h, "Idempotency-Key": "checkout-reused"}
    ordered = fast.post(f"/store/v1/carts/{first}/checkout", headers=keyed, json={})
    assert ordered.status_code == 201, ordered.text
    for client in (fast, slow):
        again = client.post(f"/store/v1/carts/{second}/checkout", headers=keyed, json={})
        assert again.status_code == 422, again.text
        assert ok(client.get(f"/store/v1/carts/{second}", headers=h))["status"] == "open"
    placed = fast.post(f"/store/v1/carts/{second}/checkout",
                       headers={**h, "Idempotency-Key": "checkout-own"}, json={})
    assert placed.status_code == 201, placed.text
    assert placed.json()["id"] != ordered.json()["id"]
    orders = ok(fast.get("/store/v1/orders", headers=h))["data"]
    assert sorted(o["id"] for o in orders) == sorted([ordered.json()["id"], placed.json()["id"]])
    with sessions() as s:  # one unit held by each order, none by the undone ones
        assert s.execute(text("SELECT sum(reserved) FROM stock_levels")).scalar_one() == 2
        assert s.execute(text("SELECT count(*) FROM reservations")).scalar_one() == 2


def test_a_query_string_is_validated_once_then_its_parameters_are_kept(shops, monkeypatch):
    """A direct route keeps the parameters of each query string it validated (a mobile
    shop's catalogue and search calls repeat a few strings): the same string is answered as
    before, a string FastAPI refuses is refused each time and not kept, nor is a long one,
    and the kept ones start again past QUERIES_KEPT."""
    from haina.core import http

    apps, fast, slow, h = shops
    fast.get("/healthz")
    route = apps[True].middleware_stack.direct[("GET", "/store/v1/products")]
    route.queries.clear()
    first = _same(fast, slow, "GET", "/store/v1/products", params={"q": "轮胎", "limit": 5},
                  headers=h)
    again = _same(fast, slow, "GET", "/store/v1/products", params={"q": "轮胎", "limit": 5},
                  headers=h)
    assert first.status_code == 200 and again.json() == first.json()
    assert list(route.queries.values()) == [
        {"q": "轮胎", "category_id": None, "limit": 5, "cursor": None}]
    for _ in range(2):
        bad = _same(fast, slow, "GET", "/store/v1/products", params={"limit": 0}, headers=h)
        assert bad.status_code == 422 and len(route.queries) == 1
    monkeypatch.setattr(http, "QUERIES_KEPT", 2)
    for limit in (6, 7):
        assert _same(fast, slow, "GET", "/store/v1/products", params={"limit": limit},
                     headers=h).status_code == 200
    assert [v["limit"] for v in route.queries.values()] == [7]  # full at 2: started again
    long = _same(fast, slow, "GET", "/store/v1/products",
                 params={"limit": 8, "pad": "x" * 600}, headers=h)  # unknown: ignored
    assert long.status_code == 200 and [v["limit"] for v in route.queries.values()] == [7]
