"""The per-process caches of catalogue and promotions (core.caches): kept only while the API
process listens for their changes on PostgreSQL, forgotten by this process's writes at once and
at commit, and by another process's change when its notice arrives."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from haina.core import caches
from haina.core.db import transaction
from tests.support import make_tenant, until


def _kept(sessions, name: str, tenant_id: str) -> dict | None:
    with transaction(sessions) as s:
        found = caches.lookup(s, name, tenant_id)
        return None if found is None else dict(found)


def _product(client: TestClient, sku: str, amount: str) -> dict:
    r = client.post("/v1/products", json={"sku": sku, "title": f"Tire {sku}",
                                          "price": {"amount": amount, "currency": "CNY"},
                                          "stock": 100})
    assert r.status_code == 201, r.text
    return r.json()


def _order_total(client: TestClient, sku: str) -> str:
    r = client.post("/v1/orders", json={"lines": [{"sku": sku, "quantity": 1}]})
    assert r.status_code == 201, r.text
    return r.json()["totals"]["total"]["amount"]


def _ordered_until_kept(client: TestClient, sessions, tenant_id: str, sku: str,
                        total: str) -> bool:
    """Order ``sku`` (at ``total``) until its variant is kept: the notice of the product's
    creation, heard back by this process's own listener a moment after the commit, may
    forget what an order in between kept (seen under a parallel run)."""
    def ordered_and_kept() -> bool:
        assert _order_total(client, sku) == total
        return sku in (_kept(sessions, "catalog", tenant_id) or {})
    return until(ordered_and_kept)


def test_no_cache_without_a_listener(client, sessions):
    """SQLite (and PostgreSQL without the API's listener): every read goes to the database."""
    tenant, _ = make_tenant(sessions, "other")
    with transaction(sessions) as s:
        if s.get_bind().dialect.name == "postgresql":
            pytest.skip("the client's app listens on PostgreSQL")
        assert caches.lookup(s, "catalog", tenant.id) is None
        assert caches.generation(s, "catalog", tenant.id) is None
    _product(client, "SKU-1", "10.00")
    assert _order_total(client, "SKU-1") == "10.00"


@pytest.fixture
def listening(client, sessions):
    """The client's app once its listener listens (PostgreSQL only), and its merchant's id."""
    app = client.app
    listener = app.state.credentials_listener  # type: ignore[attr-defined]
    if listener is None:
        pytest.skip("caches are kept on PostgreSQL only")
    assert listener.listening.wait(10)
    with transaction(sessions) as s:
        return client, s.execute(text("SELECT id FROM tenants WHERE slug = 'acme'")).scalar_one()


# the caches are kept on PostgreSQL only
on_pg = pytest.mark.parametrize("db_url", [pytest.param("pg", marks=pytest.mark.pg)],
                                indirect=True)


@on_pg
def test_an_order_reads_the_price_kept_and_a_change_here_forgets_it(listening, sessions):
    client, tenant = listening
    product = _product(client, "SKU-1", "10.00")
    assert _ordered_until_kept(client, sessions, tenant, "SKU-1", "10.00")
    kept = _kept(sessions, "catalog", tenant)
    assert kept is not None and kept["SKU-1"].price_minor == 1000  # read, now kept
    variant_id = product["variants"][0]["id"]
    r = client.patch(f"/v1/variants/{variant_id}",
                     json={"price": {"amount": "12.50", "currency": "CNY"}})
    assert r.status_code == 200, r.text
    assert "SKU-1" not in (_kept(sessions, "catalog", tenant) or {})  # forgotten at commit
    assert _order_total(client, "SKU-1") == "12.50"
    # archived: refused at once, not after a cache time
    r = client.patch(f"/v1/products/{product['id']}", json={"status": "archived"})
    assert r.status_code == 200, r.text
    r = client.post("/v1/orders", json={"lines": [{"sku": "SKU-1", "quantity": 1}]})
    assert r.status_code in (409, 422), r.text


@on_pg
def test_another_process_change_reaches_this_one_by_its_notice(listening, sessions, engine):
    client, tenant = listening
    _product(client, "SKU-1", "10.00")
    assert _ordered_until_kept(client, sessions, tenant, "SKU-1", "10.00")
    with engine.begin() as conn:  # another process: its SQL and the notice its service sends
        conn.execute(text("UPDATE variants SET price_minor = 2000 WHERE sku = 'SKU-1'"))
        conn.execute(text("SELECT pg_notify(:c, :p)"),
                     {"c": caches.CHANNEL, "p": f"catalog:{tenant}"})
    assert until(lambda: "SKU-1" not in (_kept(sessions, "catalog", tenant) or {}))
    assert _order_total(client, "SKU-1") == "20.00"


@on_pg
def test_promotions_kept_follow_their_changes_and_windows(listening, sessions):
    client, tenant = listening
    _product(client, "SKU-1", "100.00")
    assert _order_total(client, "SKU-1") == "100.00"
    assert _kept(sessions, "promotions", tenant)  # the cart's targets, none live, kept
    r = client.post("/v1/promotions", json={"name": "10% off", "kind": "percent",
                                             "percent": "10"})
    assert r.status_code == 201, r.text
    promotion = r.json()["id"]
    assert _order_total(client, "SKU-1") == "90.00"  # the new one is met at once
    r = client.patch(f"/v1/promotions/{promotion}", json={"status": "paused"})
    assert r.status_code == 200, r.text
    assert _order_total(client, "SKU-1") == "100.00"
    r = client.patch(f"/v1/promotions/{promotion}", json={"status": "active"})
    assert r.status_code == 200, r.text
    assert _order_total(client, "SKU-1") == "90.00"
    # the window is applied to the kept rules at each order, not when they were read
    r = client.post("/v1/promotions", json={
        "name": "later", "kind": "percent", "percent": "50",
        "starts_at": "2999-01-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    assert _order_total(client, "SKU-1") == "90.00"


@on_pg
def test_a_budget_is_honoured_with_kept_rules(listening, sessions):
    client, _ = listening
    _product(client, "SKU-1", "100.00")
    r = client.post("/v1/promotions", json={
        "name": "5 off, 8 in all", "kind": "fixed", "off": {"amount": "5.00", "currency": "CNY"},
        "budget": {"amount": "8.00", "currency": "CNY"}})
    assert r.status_code == 201, r.text
    assert _order_total(client, "SKU-1") == "95.00"
    # 3.00 of the budget is left: the kept rule still says 8.00; the order must not take 5
    assert _order_total(client, "SKU-1") != "95.00"


def test_a_read_overtaken_by_a_notice_is_not_kept(engine, sessions):
    """The generation check: rows read before a change commits are not kept once the change's
    notice has arrived."""
    caches.listening(engine, True)
    try:
        with transaction(sessions) as s:
            since = caches.generation(s, "catalog", "ten_x")
            assert since is not None
            caches.notice(engine, "catalog:ten_x")  # arrives while the read is under way
            caches.store(s, "catalog", "ten_x", since, [("SKU-1", "old")])
            assert "SKU-1" not in caches.lookup(s, "catalog", "ten_x")
            since = caches.generation(s, "catalog", "ten_x")
            caches.store(s, "catalog", "ten_x", since, [("SKU-1", "new")])
            assert caches.lookup(s, "catalog", "ten_x")["SKU-1"] == "new"
            caches.notice(engine, "*")
            assert "SKU-1" not in caches.lookup(s, "catalog", "ten_x")
            # a forget-all overtakes a read of a tenant never forgotten before
            since = caches.generation(s, "catalog", "ten_y")
            caches.notice(engine, "*")
            caches.store(s, "catalog", "ten_y", since, [("SKU-1", "old")])
            assert "SKU-1" not in caches.lookup(s, "catalog", "ten_y")
    finally:
        caches.listening(engine, False)
    with transaction(sessions) as s:
        assert caches.lookup(s, "catalog", "ten_x") is None  # nobody listens: no cache


def test_a_rolled_back_change_still_forgets_here_and_the_committed_one_at_commit(engine, sessions):
    caches.listening(engine, True)
    try:
        with transaction(sessions) as s:
            caches.store(s, "catalog", "ten_x", caches.generation(s, "catalog", "ten_x"),
                         [("SKU-1", "v1")])
        with pytest.raises(RuntimeError), transaction(sessions) as s:
            caches.changed(s, "catalog", "ten_x")
            assert "SKU-1" not in caches.lookup(s, "catalog", "ten_x")
            raise RuntimeError("rolled back")
        with transaction(sessions) as s:
            caches.changed(s, "catalog", "ten_x")
            # a request of this process keeps the old row before the change commits
            caches.store(s, "catalog", "ten_x", caches.generation(s, "catalog", "ten_x"),
                         [("SKU-1", "v1")])
        with transaction(sessions) as s:
            assert "SKU-1" not in caches.lookup(s, "catalog", "ten_x")  # forgotten at commit
    finally:
        caches.listening(engine, False)


@pytest.mark.pg
@pytest.mark.parametrize("db_url", ["pg"], indirect=True)
def test_notices_of_a_change_flushed_at_commit_and_of_one_in_a_rolled_back_savepoint(
        db_url, engine, sessions):
    """Another process's changes reach this one by their notices only: one flushed by the
    commit itself, and one whose first notice went with a savepoint rolled back."""
    from haina.catalog.models import Category
    from haina.core import credentials
    from haina.core.db import make_engine, make_sessionmaker, utcnow
    from haina.core.ids import new_id
    tenant, _ = make_tenant(sessions)
    listener = credentials.Listener(engine.url.set(drivername="postgresql")
                                    .render_as_string(hide_password=False), engine=engine).start()
    other = make_engine(str(engine.url))  # another process: its own engine, nothing kept
    try:
        assert listener.listening.wait(10)

        def keep(tenant_id: str) -> None:
            with transaction(sessions) as s:
                caches.store(s, "catalog", tenant_id,
                             caches.generation(s, "catalog", tenant_id), [("SKU-1", "old")])
                assert "SKU-1" in caches.lookup(s, "catalog", tenant_id)

        def kept(tenant_id: str) -> bool:
            with transaction(sessions) as s:
                return "SKU-1" in (caches.lookup(s, "catalog", tenant_id) or {})

        keep(tenant.id)
        with transaction(make_sessionmaker(other)) as s:  # not flushed before the commit
            s.add(Category(id=new_id("category"), tenant_id=tenant.id, name="Tires",
                           slug="tires", created_at=utcnow()))
        assert until(lambda: not kept(tenant.id))

        keep(tenant.id)
        with transaction(make_sessionmaker(other)) as s:
            savepoint = s.begin_nested()
            caches.changed(s, "catalog", tenant.id)  # its notice is sent in the savepoint
            savepoint.rollback()
        assert until(lambda: not kept(tenant.id))  # sent again before the commit
    finally:
        listener.stop(timeout=5)
        other.dispose()


def _order(client: TestClient, sku: str, coupon: str):
    return client.post("/v1/orders", json={"lines": [{"sku": sku, "quantity": 1}],
                                           "coupon": coupon})


@on_pg
def test_a_coupon_is_kept_without_its_count_and_follows_its_changes(listening, sessions,
                                                                     engine):
    client, tenant = listening
    _product(client, "SKU-1", "100.00")
    r = client.post("/v1/coupons", json={"code": "SAVE5", "usage_limit": 1, "discount": {
        "type": "fixed", "amount": {"amount": "5.00", "currency": "CNY"}}})
    assert r.status_code == 201, r.text
    coupon = r.json()["id"]
    first = _order(client, "SKU-1", "SAVE5")
    assert first.status_code == 201, first.text
    kept = _kept(sessions, "coupons", tenant)
    assert kept is not None and kept["SAVE5"].redeemed is None  # the count is never kept
    # used up: the claim refuses it, though the coupon is kept
    r = _order(client, "SKU-1", "SAVE5")
    assert r.status_code == 409 and r.json()["type"].endswith("coupon-exhausted"), r.text
    # a cancellation gives the claim back: the next order takes it (no count kept to forget)
    r = client.post(f"/v1/orders/{first.json()['id']}/cancel", json={"reason": "changed_mind"})
    assert r.status_code == 200, r.text
    again = _order(client, "SKU-1", "SAVE5")
    assert again.status_code == 201, again.text
    # used up and left out by the best price (an exclusive promotion): still refused
    r = client.post("/v1/promotions", json={"name": "half", "kind": "percent", "percent": "50",
                                             "exclusive": True})
    assert r.status_code == 201, r.text
    promotion = r.json()["id"]
    r = _order(client, "SKU-1", "SAVE5")
    assert r.status_code == 409 and r.json()["type"].endswith("coupon-exhausted"), r.text
    r = client.patch(f"/v1/promotions/{promotion}", json={"status": "paused"})
    assert r.status_code == 200, r.text
    # paused by another process: its notice makes this one forget the coupon
    r = client.post(f"/v1/orders/{again.json()['id']}/cancel", json={"reason": "changed_mind"})
    assert r.status_code == 200, r.text
    assert "SAVE5" in (_kept(sessions, "coupons", tenant) or {})
    with engine.begin() as conn:
        conn.execute(text("UPDATE coupons SET status = 'paused' WHERE id = :id"), {"id": coupon})
        conn.execute(text("SELECT pg_notify(:c, :p)"),
                     {"c": caches.CHANNEL, "p": f"coupons:{tenant}"})
    assert until(lambda: "SAVE5" not in (_kept(sessions, "coupons", tenant) or {}))
    r = _order(client, "SKU-1", "SAVE5")
    assert r.status_code == 422 and r.json()["type"].endswith("coupon-paused"), r.text
    # changed here through the API: forgotten at commit
    r = client.patch(f"/v1/coupons/{coupon}", json={"status": "active"})
    assert r.status_code == 200, r.text
    assert _order(client, "SKU-1", "SAVE5").status_code == 201


@on_pg
def test_buyers_kept_follow_tiers_merges_and_erasures(listening, sessions):
    client, tenant = listening
    _product(client, "SKU-1", "100.00")

    def member(name: str) -> str:
        r = client.post("/v1/members", json={"name": name})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def order(member_id: str, **extra):
        return client.post("/v1/orders", json={"lines": [{"sku": "SKU-1", "quantity": 1}],
                                               "member_id": member_id, **extra})

    silver = client.post("/v1/tiers", json={"name": "Silver", "rank": 1, "min_spend": {
        "amount": "50.00", "currency": "CNY"}})
    assert silver.status_code == 201, silver.text
    r = client.post("/v1/coupons", json={"code": "SILVER5", "tier_ids": [silver.json()["id"]],
                                         "discount": {"type": "fixed", "amount": {
                                             "amount": "5.00", "currency": "CNY"}}})
    assert r.status_code == 201, r.text
    ann = member("Ann")
    first = order(ann)
    assert first.status_code == 201, first.text
    assert ann in (_kept(sessions, "buyers", tenant) or {})  # read once, kept
    r = order(ann, coupon="SILVER5")
    assert r.status_code == 422 and r.json()["reason"] == "tier", r.text
    # her spend moves her to Silver (a bulk update of tiers): the kept row is forgotten
    r = client.post("/v1/payment_intents", json={"order_id": first.json()["id"],
                                                  "payment_method": {"type": "cash"}})
    assert r.status_code == 201, r.text
    assert client.get(f"/v1/members/{ann}").json()["tier"]["id"] == silver.json()["id"]
    r = order(ann, coupon="SILVER5")
    assert r.status_code == 201, r.text
    # points and names change without forgetting her
    assert ann in (_kept(sessions, "buyers", tenant) or {})
    assert client.patch(f"/v1/members/{ann}", json={"name": "Ann L."}).status_code == 200
    assert ann in (_kept(sessions, "buyers", tenant) or {})
    # the tier asks more now: every member is placed again in bulk (a Core update)
    r = client.patch(f"/v1/tiers/{silver.json()['id']}", json={"min_spend": {
        "amount": "500.00", "currency": "CNY"}})
    assert r.status_code == 200, r.text
    r = order(ann, coupon="SILVER5")
    assert r.status_code == 422 and r.json()["reason"] == "tier", r.text
    # merged away: an order for the old id goes to the survivor
    bob = member("Bob")
    assert order(bob).status_code == 201
    r = client.post(f"/v1/members/{ann}/merge", json={"other_id": bob})
    assert r.status_code == 200, r.text
    r = order(bob)
    assert r.status_code == 201 and r.json()["member_id"] == ann, r.text
    # erased: refused at once
    r = client.post(f"/v1/members/{ann}/data-requests", json={"kind": "erase"})
    assert r.status_code in (200, 201), r.text
    r = order(ann)
    assert r.status_code == 409 and r.json()["type"].endswith("member-erased"), r.text


@on_pg
def test_search_briefs_are_kept_until_the_catalogue_changes(listening, sessions):
    from haina.catalog import service as catalog
    from haina.core.context import Tenant
    client, tenant_id = listening
    product = _product(client, "SKU-B", "10.00")
    tenant = Tenant(id=tenant_id, slug="acme")
    key = ("briefs", "sku-b", "active", 10)

    def briefs():
        with transaction(sessions) as s:
            return catalog.product_briefs(s, tenant, q="sku-b", status="active")

    # kept once no notice overtakes the read (the product's own may still be on its way)
    assert until(lambda: briefs() and key in (_kept(sessions, "catalog", tenant_id) or {}))
    first = briefs()
    assert [b.title for b in first] == ["Tire SKU-B"]
    with transaction(sessions) as s:  # from memory: the very list kept
        assert catalog.product_briefs(s, tenant, q="sku-b", status="active") is first
    r = client.patch(f"/v1/products/{product['id']}", json={"title": "Tire renamed"})
    assert r.status_code == 200, r.text
    assert key not in (_kept(sessions, "catalog", tenant_id) or {})  # forgotten at commit
    assert [b.title for b in briefs()] == ["Tire renamed"]


@on_pg
def test_searchs_fitment_rules_and_installers_are_kept_until_they_change(listening, sessions):
    from haina.core.context import Tenant
    from haina.o2o import search
    client, tenant_id = listening
    tenant = Tenant(id=tenant_id, slug="acme", scopes=frozenset({"*"}))
    def setup():
        with transaction(sessions) as s:
            return search._setup(s, tenant)

    assert until(lambda: "setup" in (_kept(sessions, "o2o_setup", tenant_id) or {})
                 if setup() == ((), {}) else False)
    empty = setup()
    assert setup() is empty  # from memory: the very tuple kept
    r = client.post("/v1/fitment-rules", json={"service": "tire-fitting", "attribute": "rim"})
    assert r.status_code == 201, r.text
    rules, installers = setup()  # the new rule forgot what was kept
    assert [x.id for x in rules] == [r.json()["id"]] and installers == {}
    assert client.delete(f"/v1/fitment-rules/{r.json()['id']}").status_code == 204
    assert setup() == ((), {})


def _cart_reads(sessions, tenant_id: str):
    """A cart of SKU-1 × 2 made for one Tenant object, and a read of it (carts.get_cart with
    ``within`` seconds of kept answers, for that object or another)."""
    from haina.carts import service as carts
    from haina.carts.schemas import CartCreate
    from haina.core.context import Tenant
    from haina.orders.schemas import LineIn

    tenant = Tenant(id=tenant_id, slug="acme")
    with transaction(sessions) as s:
        cart = carts.create_cart(s, tenant, CartCreate(lines=[LineIn(sku="SKU-1", quantity=2)]))

    def read(within: float = 60.0, who: Tenant = tenant):
        with transaction(sessions) as s:
            return carts.get_cart(s, who, cart.id, priced_within=within)

    def add() -> None:
        with transaction(sessions) as s:
            carts.add_cart_line(s, tenant, cart.id, LineIn(sku="SKU-1", quantity=1))
    return cart, read, add, tenant


def test_without_kept_caches_a_cart_is_priced_at_each_read(client, sessions):
    with transaction(sessions) as s:
        if s.get_bind().dialect.name == "postgresql":
            pytest.skip("the client's app listens on PostgreSQL")
    _product(client, "SKU-1", "10.00")
    with transaction(sessions) as s:  # the client's merchant
        tenant_id = s.execute(text("SELECT id FROM tenants WHERE slug = 'acme'")).scalar_one()
    _, read, _, _ = _cart_reads(sessions, tenant_id)
    first = read()
    assert read() is not first and read().model_dump() == first.model_dump()


@on_pg
def test_a_cart_read_unchanged_is_answered_as_priced_until_what_pricing_reads_changes(
        listening, sessions, engine, monkeypatch):
    """carts.get_cart(priced_within=…): the same row, for the same Tenant object, with the
    caches pricing reads where they stood, within the time, is the answer kept (the same
    object); a notice of the catalogue, another Tenant object, the time passed or a change of
    the cart's lines price it again; a cart of more than PRICED_LINES lines is not kept."""
    client, tenant_id = listening
    _product(client, "SKU-1", "10.00")
    cart, read, add, tenant = _cart_reads(sessions, tenant_id)
    assert cart.totals.subtotal.amount == Decimal("20.00")
    # (a notice of the product's creation may still arrive and move the stamp once)
    assert until(lambda: read() is read())
    kept = read()
    other = read(who=dataclasses.replace(tenant))  # another Tenant object: priced for it
    assert other is not kept
    again = read()
    assert again is not kept and read() is again
    assert read(within=1e-9) is not again  # older than asked for: priced again
    with engine.begin() as conn:  # another process's change and its notice
        conn.execute(text("UPDATE variants SET price_minor = 1500 WHERE sku = 'SKU-1'"))
        conn.execute(text("SELECT pg_notify(:c, :p)"),
                     {"c": caches.CHANNEL, "p": f"catalog:{tenant_id}"})
    assert until(lambda: read().totals.subtotal.amount == Decimal("30.00"))
    assert until(lambda: read() is read())
    kept = read()
    add()  # the row changed: priced anew (and that answer kept for the next read)
    after = read()
    assert after is not kept and after.totals.subtotal.amount == Decimal("45.00")
    assert read() is after
    from haina.carts import service as carts
    monkeypatch.setattr(carts, "PRICED_LINES", 0)  # a cart of more lines is not kept
    add()
    assert read() is not read()
