"""A buyer's way through /store/v1: search with the fitting shops and their slots, a cart
priced by the pricing engine, a held slot, checkout into an order on the key's channel with
the booking confirmed (idempotent), a sandbox card payment, and the buyer's own lists."""

from __future__ import annotations

from storefront_support import HERE, buyer_headers, make_key, ok, sign_in, slot_start, tire_shop


def test_search_to_a_paid_order_with_its_booking(client):
    shop = tire_shop(client)
    ok(client.post("/v1/promotions", json={
        "name": "满1000减100", "kind": "threshold",
        "tiers": [{"min_subtotal": "1000.00", "off": "100.00"}]}))
    coupon = ok(client.post("/v1/coupons", json={
        "code": "TIRE50", "audience": "issued",
        "discount": {"type": "fixed", "amount": {"amount": "50.00", "currency": "CNY"}}}))
    key = make_key(client, channel="mini_program")
    public = {"X-Publishable-Key": key}
    found = ok(client.get("/store/v1/search", headers=public,
                          params={"q": "轮胎", **HERE, "radius_km": 10}))
    [tire] = found["products"]  # the draft is not listed
    assert tire["sku"] == "TIRE-16" and tire["service"] == "tire-fitting"
    [point] = tire["service_points"]
    assert point["id"] == shop["point"]["id"] and point["next_slots"]
    listed = ok(client.get("/store/v1/products", headers=public))["data"]
    assert [p["id"] for p in listed] == [shop["tire"]["id"]]
    assert client.get(f"/store/v1/products/{shop['draft']['id']}", headers=public).status_code == 404
    start = slot_start()
    slots = ok(client.get(f"/store/v1/service-points/{point['id']}/slots", headers=public,
                          params={"service": "tire-fitting", "date": start[:10]}))
    assert {s["start"]: s["available"] for s in slots["data"]}[start] == 2

    session = sign_in(client, key, "13800138000")
    buyer = buyer_headers(key, session)
    ok(client.post(f"/v1/coupons/{coupon['id']}/issue",
                   json={"member_ids": [session["member_id"]]}))  # into the buyer's wallet
    [wallet] = ok(client.get("/store/v1/me/coupons", headers=buyer))["data"]
    assert wallet["code"] == "TIRE50" and wallet["status"] == "issued"
    cart = ok(client.post("/store/v1/carts", headers=buyer,
                          json={"lines": [{"sku": "TIRE-16", "quantity": 2}]}))
    assert cart["channel"] == "mini_program"
    cart = ok(client.put(f"/store/v1/carts/{cart['id']}/lines/TIRE-16", headers=buyer,
                         json={"quantity": 4}))
    assert cart["totals"]["discount"]["amount"] == "100.00"  # the promotion, priced
    draft_line = client.post(f"/store/v1/carts/{cart['id']}/lines", headers=buyer,
                             json={"sku": "TIRE-16-DRAFT", "quantity": 1})
    assert draft_line.status_code == 404
    priced = ok(client.get(f"/store/v1/carts/{cart['id']}/price", headers=buyer,
                           params={"coupon": "TIRE50"}))
    assert priced["discount"]["amount"] == "150.00"
    hold = ok(client.post("/store/v1/bookings", headers=buyer, json={
        "service_point_id": point["id"], "service": "tire-fitting", "start": start}))
    assert hold["status"] == "held" and hold["member_id"] is not None
    body = {"coupon": "TIRE50", "bookings": [{"sku": "TIRE-16", "booking_id": hold["id"]}]}
    order = ok(client.post(f"/store/v1/carts/{cart['id']}/checkout",
                           headers={**buyer, "Idempotency-Key": "co-1"}, json=body))
    assert order["channel"] == "mini_program" and order["status"] == "pending_payment"
    assert order["totals"]["total"]["amount"] == "1850.00"
    assert [(b["id"], b["status"]) for b in order["bookings"]] == [(hold["id"], "confirmed")]
    replay = client.post(f"/store/v1/carts/{cart['id']}/checkout",
                         headers={**buyer, "Idempotency-Key": "co-1"}, json=body)
    assert replay.json()["id"] == order["id"] and replay.headers["idempotent-replayed"] == "true"
    declined = client.post(f"/store/v1/orders/{order['id']}/payments", headers=buyer, json={
        "payment_method": {"type": "card", "number": "4000000000000002"}})
    assert declined.status_code == 402
    paid = ok(client.post(f"/store/v1/orders/{order['id']}/payments", headers=buyer, json={
        "payment_method": {"type": "card", "number": "4242424242424242", "exp_month": 12,
                           "exp_year": 2030, "cvc": "123"}}))
    assert paid["status"] == "succeeded"
    mine = ok(client.get("/store/v1/orders", headers=buyer))["data"]
    assert [(o["id"], o["status"]) for o in mine] == [(order["id"], "paid")]
    assert ok(client.get(f"/store/v1/orders/{order['id']}", headers=buyer))["status"] == "paid"
    bookings = ok(client.get("/store/v1/bookings", headers=buyer))["data"]
    assert [(b["id"], b["order_id"], b["status"], b["rating"]) for b in bookings] == [
        (hold["id"], order["id"], "confirmed", None)]
    assert [w["status"] for w in ok(client.get("/store/v1/me/coupons", headers=buyer))[
        "data"]] == ["used"]
    me = ok(client.get("/store/v1/me", headers=buyer))
    assert me["points_balance"] > 0  # earned by the paid order
    assert ok(client.get("/store/v1/me/points", headers=buyer))["data"]
    # the merchant sees the order on the channel, with the buyer as member
    merchant_view = ok(client.get(f"/v1/orders/{order['id']}"))
    assert merchant_view["member_id"] == me["member_id"]


def test_the_buyers_order_ships_to_the_booked_shop_and_the_buyer_rates_the_job(client):
    shop = tire_shop(client)
    point = ok(client.patch(f"/v1/service-points/{shop['point']['id']}", json={
        "address": "漕溪北路 88 号", "phone": "021-64001234", "city": "上海市",
        "postal_code": "200030"}))
    key = make_key(client, channel="app")
    x = buyer_headers(key, sign_in(client, key, "13800138000"))
    y = buyer_headers(key, sign_in(client, key, "13900139000"))
    cart = ok(client.post("/store/v1/carts", headers=x,
                          json={"lines": [{"sku": "TIRE-16", "quantity": 4}]}))
    hold = ok(client.post("/store/v1/bookings", headers=x, json={
        "service_point_id": point["id"], "service": "tire-fitting", "start": slot_start()}))
    order = ok(client.post(f"/store/v1/carts/{cart['id']}/checkout", headers=x, json={
        "bookings": [{"sku": "TIRE-16", "booking_id": hold["id"]}]}))
    assert order["ship_to_point_id"] == point["id"]
    assert (order["address"]["name"], order["address"]["line1"], order["address"]["city"]) == (
        "途虎工场店", "漕溪北路 88 号", "上海市")
    assert ok(client.get(f"/store/v1/orders/{order['id']}", headers=x))["ship_to_point_id"] \
        == point["id"]
    # not yet done: 409; the shop checks the buyer in and completes the job
    rating = f"/store/v1/bookings/{hold['id']}/rating"
    r = client.post(rating, headers=x, json={"score": 5})
    assert r.status_code == 409 and r.json()["type"].endswith("/booking-not-completed")
    ok(client.post(f"/v1/bookings/{hold['id']}/check-in"))
    ok(client.post(f"/v1/bookings/{hold['id']}/complete"))
    r = client.post(rating, headers=y, json={"score": 1})  # another buyer: not found
    assert r.status_code == 404 and r.json()["type"].endswith("/booking-not-found")
    got = ok(client.post(rating, headers={**x, "Idempotency-Key": "r-1"},
                         json={"score": 5, "comment": " 很快 "}))
    assert (got["score"], got["comment"]) == (5, "很快")
    replay = client.post(rating, headers={**x, "Idempotency-Key": "r-1"},
                         json={"score": 5, "comment": " 很快 "})
    assert replay.json()["id"] == got["id"]
    r = client.post(rating, headers=x, json={"score": 4})
    assert r.status_code == 409 and r.json()["type"].endswith("/already-rated")
    # the buyer's booking reads say it was rated (the shop shows no form again)
    mine_rated = {"score": 5, "comment": "很快", "created_at": got["created_at"]}
    assert ok(client.get(f"/store/v1/bookings/{hold['id']}", headers=x))["rating"] == mine_rated
    assert [(b["id"], b["rating"]) for b in ok(client.get("/store/v1/bookings", headers=x))[
        "data"]] == [(hold["id"], mine_rated)]
    found = ok(client.get("/store/v1/search", headers={"X-Publishable-Key": key},
                          params={"q": "轮胎", **HERE, "radius_km": 10}))
    listed = found["products"][0]["service_points"][0]
    assert listed["id"] == point["id"] and listed["rating"] == {"average": "5.0", "count": 1}
    assert ok(client.get(f"/v1/service-points/{point['id']}"))["rating"] == {
        "average": "5.0", "count": 1}
    [mine] = ok(client.get(f"/v1/service-points/{point['id']}/ratings"))["data"]
    assert mine["member_id"] == order["member_id"]


def test_a_buyer_cannot_check_out_with_another_buyers_booking(client):
    shop = tire_shop(client)
    key = make_key(client, channel="app")
    x = buyer_headers(key, sign_in(client, key, "13800138000"))
    y = buyer_headers(key, sign_in(client, key, "13900139000"))
    start = slot_start(hour=11)
    held_by_y = ok(client.post("/store/v1/bookings", headers=y, json={
        "service_point_id": shop["point"]["id"], "service": "tire-fitting", "start": start}))
    cart = ok(client.post("/store/v1/carts", headers=x,
                          json={"lines": [{"sku": "TIRE-16", "quantity": 1}]}))
    r = client.post(f"/store/v1/carts/{cart['id']}/checkout", headers=x, json={
        "bookings": [{"sku": "TIRE-16", "booking_id": held_by_y["id"]}]})
    assert r.status_code == 404 and r.json()["type"].endswith("/booking-not-found")
    assert ok(client.get(f"/store/v1/carts/{cart['id']}", headers=x))["status"] == "open"
    # the same Idempotency-Key from two buyers: two carts, not a replay of the other's
    a = ok(client.post("/store/v1/carts", headers={**x, "Idempotency-Key": "same"}, json={}))
    b = ok(client.post("/store/v1/carts", headers={**y, "Idempotency-Key": "same"}, json={}))
    assert a["id"] != b["id"] and a["member_id"] != b["member_id"]


def test_rate_limits_per_buyer(client, app):
    tire_shop(client)
    key = make_key(client)
    buyer = buyer_headers(key, sign_in(client, key, "13800138000"))
    app.state.settings.rate_limit_plans["buyer"] = (0.001, 3)
    try:
        codes = [client.get("/store/v1/me", headers=buyer).status_code for _ in range(5)]
    finally:
        app.state.settings.rate_limit_plans["buyer"] = (20.0, 60)
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    # the key's public routes are not the buyer's bucket
    assert client.get("/store/v1/products", headers={"X-Publishable-Key": key}).status_code == 200


def test_a_cached_key_carries_the_merchant_settings_until_they_change(engine, sessions):
    """The key's shop carries the merchant's settings (a cart is priced without reading the
    tenant row), and a change of the settings forgets the cached keys: the next cart call
    prices with the new shipping fee, within the key cache's minute."""
    import time

    from fastapi.testclient import TestClient
    from support import make_tenant

    from haina.api import create_app
    from haina.core.config import Settings
    from haina.storefront import keys

    app = create_app(Settings(database_url=str(engine.url), token_cache_seconds=60),
                     engine=engine)
    _, token = make_tenant(sessions)
    with TestClient(app) as client:
        listener = app.state.credentials_listener  # PostgreSQL: it forgets all once it listens
        assert listener is None or listener.listening.wait(10)

        def put_settings(**changes) -> None:
            # PostgreSQL: wait for this process's own notice of the change, which forgets
            # the cached credentials once more when it arrives
            seen = listener.notices if listener else 0
            ok(client.put("/v1/tenant/settings", json={**settings, **changes}))
            deadline = time.monotonic() + 10
            while listener and listener.notices <= seen and time.monotonic() < deadline:
                time.sleep(0.01)

        client.headers["Authorization"] = f"Bearer {token}"
        tire_shop(client)
        key = make_key(client)
        buyer = buyer_headers(key, sign_in(client, key, "13800138000"))
        settings = ok(client.get("/v1/tenant"))["settings"]
        put_settings(shipping_fee="10.00", free_shipping_over=None)
        cart = ok(client.post("/store/v1/carts", headers=buyer,
                              json={"lines": [{"sku": "TIRE-16", "quantity": 1}]}))
        assert cart["totals"]["shipping"]["amount"] == "10.00"
        cached = keys.cached_shop(key, 60)
        assert cached and cached.settings is not None  # type: ignore[union-attr]
        put_settings(shipping_fee="25.00", free_shipping_over=None)
        cart = ok(client.get(f"/store/v1/carts/{cart['id']}", headers=buyer))
        assert cart["totals"]["shipping"]["amount"] == "25.00"


def test_a_listed_page_keeps_its_products_answers(engine, sessions):
    """Making a catalogue page keeps its products' answers too: a product opened from the
    page is answered without being made again, and reads as one made anew does."""
    import json

    from fastapi.testclient import TestClient
    from support import make_tenant

    from haina.api import create_app
    from haina.core.config import Settings
    from haina.core.db import transaction
    from haina.storefront import keys, shop
    from haina.storefront.cache import public_answers

    app = create_app(Settings(database_url=str(engine.url), token_cache_seconds=0,
                              storefront_cache_seconds=60), engine=engine)
    _, token = make_tenant(sessions)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        made = tire_shop(client)
        public = {"X-Publishable-Key": make_key(client)}
        [listed] = ok(client.get("/store/v1/products", headers=public))["data"]
        assert listed["id"] == made["tire"]["id"]
        answers_made = public_answers.made
        product = ok(client.get(f"/store/v1/products/{listed['id']}", headers=public))
        assert public_answers.made == answers_made  # kept from the page
        assert product == listed
        with transaction(sessions) as s:
            found = keys.lookup_shop(s, public["X-Publishable-Key"], 0)
            assert found is not None
            assert json.loads(shop.get_product_json(s, found, listed["id"])) == product
        # the draft is on no page: not found, as before
        assert client.get(f"/store/v1/products/{made['draft']['id']}",
                          headers=public).status_code == 404


def test_a_kept_answer_is_answered_while_every_pool_thread_is_busy(engine, sessions):
    """A kept public answer (a page, a product, a search) is answered on the event loop:
    with every thread of the endpoints' pool held by other work (carts and checkouts under
    load), it still comes back at once, admitted by the rate limiter like any request (its
    token taken, refused 429 when the bucket is empty). A missing answer waits for the
    pool, as before."""
    import threading
    import time

    from fastapi.testclient import TestClient
    from support import make_tenant

    from haina.api import create_app
    from haina.core import http
    from haina.core.config import Settings

    app = create_app(Settings(database_url=str(engine.url), token_cache_seconds=60,
                              storefront_cache_seconds=60, threads=2,
                              rate_limit_backend="memory",
                              rate_limit_plans={"staff": (1000.0, 2000),
                                                "storefront": (0.001, 6),
                                                "buyer": (20.0, 60)}), engine=engine)
    _, token = make_tenant(sessions)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        made = tire_shop(client)
        public = {"X-Publishable-Key": make_key(client)}
        search = {"q": "R16", **HERE, "radius_km": 10}
        # made in the pool, then kept (3 of the key's 6 tokens)
        page = ok(client.get("/store/v1/products", headers=public))
        found = ok(client.get("/store/v1/search", headers=public, params=search))
        product = ok(client.get(f"/store/v1/products/{made['tire']['id']}", headers=public))

        busy, release = threading.Semaphore(0), threading.Event()
        watchdog = threading.Timer(20, release.set)  # a failing test still ends
        watchdog.start()

        def hold() -> None:
            busy.release()
            release.wait()

        pool = http._executor()
        held = [pool.submit(hold) for _ in range(2)]
        try:
            for _ in held:
                assert busy.acquire(timeout=10)
            t0 = time.monotonic()
            assert ok(client.get("/store/v1/products", headers=public)) == page
            assert ok(client.get("/store/v1/search", headers=public, params=search)) == found
            r = client.get(f"/store/v1/products/{made['tire']['id']}", headers=public)
            assert ok(r) == product and r.headers["RateLimit-Remaining"] == "0"
            assert not release.is_set() and time.monotonic() - t0 < 10  # the pool never ran
            # the key's bucket is empty: refused on the loop as the pool would refuse it
            refused = client.get("/store/v1/products", headers=public)
            assert refused.status_code == 429, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["Retry-After"]) >= 1
        finally:
            release.set()
            watchdog.cancel()
            for f in held:
                f.result(10)


def test_a_busy_kept_answer_is_made_anew_ahead_without_the_pool(engine, sessions):
    """A kept answer asked for past REFRESH_AT of its life is still answered at once, and
    its next one is made then in the background thread, not the endpoints' pool: with the
    pool held throughout, the page is answered from memory past the first answer's time."""
    import threading
    import time

    from fastapi.testclient import TestClient
    from support import make_tenant

    from haina.api import create_app
    from haina.core import http
    from haina.core.config import Settings
    from haina.storefront import cache
    from haina.storefront.cache import public_answers

    app = create_app(Settings(database_url=str(engine.url), token_cache_seconds=60,
                              storefront_cache_seconds=2, threads=2,
                              rate_limit_backend="memory"), engine=engine)
    _, token = make_tenant(sessions)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        tire_shop(client)
        public = {"X-Publishable-Key": make_key(client)}
        page = ok(client.get("/store/v1/products", headers=public))  # made in the pool
        first = time.monotonic()
        made = public_answers.made
        busy, release = threading.Semaphore(0), threading.Event()
        watchdog = threading.Timer(30, release.set)
        watchdog.start()

        def hold() -> None:
            busy.release()
            release.wait()

        held = [http._executor().submit(hold) for _ in range(2)]
        try:
            for _ in held:
                assert busy.acquire(timeout=10)
            time.sleep(max(0.0, first + 2 * cache.REFRESH_AT + 0.1 - time.monotonic()))
            assert ok(client.get("/store/v1/products", headers=public)) == page  # old, at once
            deadline = time.monotonic() + 10
            while public_answers.made == made and time.monotonic() < deadline:
                time.sleep(0.02)
            assert public_answers.made > made  # made anew while the pool was held
            time.sleep(max(0.0, first + 2.1 - time.monotonic()))  # the first one is gone
            assert ok(client.get("/store/v1/products", headers=public)) == page
            assert not release.is_set()
        finally:
            release.set()
            watchdog.cancel()
            for f in held:
                f.result(10)


def test_a_busy_publishable_key_is_looked_up_again_ahead_of_its_end(engine, sessions):
    """The first request that sees a cached key past RENEW_AT of the cache time is answered
    with it and has it looked up again in the background: the cache holds the new lookup
    before the old one ends, so the key's requests never all wait for a lookup at once."""
    import time

    from fastapi.testclient import TestClient
    from support import make_tenant

    from haina.api import create_app
    from haina.core.config import Settings
    from haina.storefront import keys

    app = create_app(Settings(database_url=str(engine.url), token_cache_seconds=2,
                              storefront_cache_seconds=0), engine=engine)
    _, token = make_tenant(sessions)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        tire_shop(client)
        key = make_key(client)
        public = {"X-Publishable-Key": key}
        ok(client.get("/store/v1/products", headers=public))
        first = keys._cache[key][0]
        time.sleep(max(0.0, first + 2 * keys.RENEW_AT + 0.05 - time.monotonic()))
        ok(client.get("/store/v1/products", headers=public))  # the cached one, renewed
        deadline = time.monotonic() + 10
        while keys._cache.get(key, (first,))[0] == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert keys._cache[key][0] > first and key not in keys._renewing
        assert keys.cached_shop(key, 2) not in (False, None)
