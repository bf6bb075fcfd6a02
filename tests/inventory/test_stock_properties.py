"""Stock levels: never negative, never more reserved than on hand, refusals change nothing —
under any sequence of holds, order reservations, releases, adjustments and shipments, and
under 20 threads at once. Plus adjustments with reasons, hold expiry and locations. Service
layer and API, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from support import make_tenant

from haina.catalog import service as catalog
from haina.catalog.schemas import ProductCreate
from haina.core.db import transaction, utcnow
from haina.core.errors import Problem
from haina.core.money import Money
from haina.inventory import service as inventory
from haina.inventory.models import Adjustment, Reservation, StockLevel
from haina.inventory.schemas import Claim, LocationCreate

_slugs = itertools.count()
_orders = itertools.count()


def new_variant(sessions, tenant, sku="TIRE-1", stock=None) -> str:
    with transaction(sessions) as s:
        p = catalog.create_product(s, tenant, ProductCreate(
            sku=sku, title="Tire 轮胎", price=Money(amount="99.00"), stock=stock))
        inventory.default_location(s, tenant)
    return p.variants[0].id


def levels(sessions, tenant, variant_id) -> dict[str, tuple[int, int]]:
    """(on_hand, reserved) per location, from the table itself."""
    with sessions() as s:
        return {r.location_id: (r.on_hand, r.reserved) for r in s.scalars(
            select(StockLevel).where(StockLevel.tenant_id == tenant.id,
                                     StockLevel.variant_id == variant_id))}


def active_reserved(sessions, tenant, variant_id) -> dict[str, int]:
    with sessions() as s:
        rows = s.execute(select(Reservation.location_id, func.sum(Reservation.quantity))
                         .where(Reservation.tenant_id == tenant.id,
                                Reservation.variant_id == variant_id,
                                Reservation.status == "active")
                         .group_by(Reservation.location_id)).all()
    return {loc: int(q) for loc, q in rows}


def assert_invariants(sessions, tenant, variant_id) -> None:
    got = levels(sessions, tenant, variant_id)
    held = active_reserved(sessions, tenant, variant_id)
    for loc, (on_hand, reserved) in got.items():
        assert on_hand >= 0 and reserved >= 0, got
        assert reserved <= on_hand, got
        # what is reserved is exactly what the active reservations hold
        assert reserved == held.get(loc, 0), (got, held)
    assert set(held) <= set(got)
    # on hand is the sum of the adjustments (initial, received, fulfilled …) at the location
    with sessions() as s:
        sums = dict(s.execute(select(Adjustment.location_id, func.sum(Adjustment.delta))
                              .where(Adjustment.tenant_id == tenant.id,
                                     Adjustment.variant_id == variant_id)
                              .group_by(Adjustment.location_id)).all())
    assert {loc: on_hand for loc, (on_hand, _) in got.items()} == \
        {loc: int(sums.get(loc, 0)) for loc in got}


# ---------------------------------------------------------------- hypothesis: any interleaving

op = st.one_of(
    st.tuples(st.just("hold"), st.integers(1, 6), st.integers(0, 1)),
    st.tuples(st.just("reserve"), st.integers(1, 6), st.integers(0, 1)),
    st.tuples(st.just("release"), st.integers(0, 30)),
    st.tuples(st.just("adjust"), st.integers(-8, 8).filter(bool), st.integers(0, 1)),
    st.tuples(st.just("ship"), st.integers(0, 30), st.one_of(st.none(), st.integers(1, 6))),
)


class Model:
    """The expected on hand and reserved per location, and the live reservations."""

    def __init__(self, locations):
        self.on_hand = {loc: 0 for loc in locations}
        self.reserved = {loc: 0 for loc in locations}
        self.holds: list[tuple[str, str, int]] = []   # (reservation id, location, units)
        self.orders: list[list] = []                   # [order id, location, units left]

    def available(self, loc):
        return self.on_hand[loc] - self.reserved[loc]


def run_interleaving(sessions, ops) -> None:
    tenant, _ = make_tenant(sessions, f"stock-{next(_slugs)}")
    variant = new_variant(sessions, tenant)
    with transaction(sessions) as s:
        default = inventory.default_location(s, tenant).id
        store = inventory.create_location(s, tenant, LocationCreate(
            code="store-1", name="Store 1", kind="store")).id
        # both locations start with a level row of 0 units
        for loc in (default, store):
            inventory.adjust_stock(s, tenant, variant, 1, "received", location_id=loc)
            inventory.adjust_stock(s, tenant, variant, -1, "correction", location_id=loc)
    locations = [default, store]
    m = Model(locations)

    def attempt(fn):
        try:
            with transaction(sessions) as s:
                return fn(s), None
        except Problem as exc:
            return None, exc

    for o in ops:
        before = levels(sessions, tenant, variant)
        kind = o[0]
        refused = None
        if kind in ("hold", "reserve"):
            _, qty, li = o
            loc = locations[li]
            # the default location is also reached by giving no location at all
            loc_arg = None if loc == default and qty % 2 else loc
            if kind == "hold":
                out, err = attempt(lambda s: inventory.hold_stock(s, tenant, variant, qty, 900,
                                                                  loc_arg))
            else:
                order_id = f"ord_test{next(_orders)}"
                out, err = attempt(lambda s: inventory.reserve_stock(
                    s, tenant, [Claim(variant_id=variant, quantity=qty, sku="TIRE-1")],
                    order_id=order_id, expires_at=None, location_id=loc_arg))
            if m.available(loc) >= qty:
                assert err is None, err
                m.reserved[loc] += qty
                if kind == "hold":
                    assert out.location_id == loc and out.status == "active"
                    m.holds.append((out.id, loc, qty))
                else:
                    m.orders.append([order_id, loc, qty])
            else:
                assert err is not None and err.slug == "out-of-stock", err
                refused = err
        elif kind == "release":
            live = m.holds + [tuple(x) for x in m.orders]
            if not live:
                continue
            rid, loc, qty = live[o[1] % len(live)]
            if rid.startswith("res_"):
                out, err = attempt(lambda s: inventory.release_hold(s, tenant, rid))
                assert err is None and out.status == "released", err
                m.holds.remove((rid, loc, qty))
                # releasing again is harmless
                again, err = attempt(lambda s: inventory.release_hold(s, tenant, rid))
                assert err is None and again.status == "released"
            else:
                out, err = attempt(lambda s: inventory.release_order_stock(s, tenant, rid))
                assert err is None and out == qty, (err, out, qty)
                m.orders = [x for x in m.orders if x[0] != rid]
            m.reserved[loc] -= qty
        elif kind == "adjust":
            _, delta, li = o
            loc = locations[li]
            reason = "received" if delta > 0 else "damaged"
            out, err = attempt(lambda s: inventory.adjust_stock(s, tenant, variant, delta, reason,
                                                                location_id=loc))
            if delta > 0 or m.available(loc) >= -delta:
                assert err is None, err
                m.on_hand[loc] += delta
                assert (out.level.on_hand, out.level.reserved) == (m.on_hand[loc], m.reserved[loc])
            else:
                assert err is not None and err.slug == "insufficient-stock", err
                assert err.extra["available"] == m.available(loc)
                refused = err
        elif kind == "ship":
            if not m.orders:
                continue
            entry = m.orders[o[1] % len(m.orders)]
            order_id, loc, left = entry
            want = o[2]
            if want is None:
                out, err = attempt(lambda s: inventory.ship_order_stock(s, tenant, order_id))
                take = left
            else:
                out, err = attempt(lambda s: inventory.ship_order_stock(
                    s, tenant, order_id, {variant: want}))
                take = min(want, left)
            assert err is None and out == take, (err, out, take)
            m.on_hand[loc] -= take
            m.reserved[loc] -= take
            entry[2] -= take
            if entry[2] == 0:
                m.orders.remove(entry)
        after = levels(sessions, tenant, variant)
        if refused is not None:
            assert after == before, (o, before, after)
        assert after == {loc: (m.on_hand[loc], m.reserved[loc]) for loc in locations}, (o, after)
        assert_invariants(sessions, tenant, variant)


@settings(max_examples=20, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=20))
def test_stock_stays_consistent_under_any_sequence_of_changes(sessions, ops):
    run_interleaving(sessions, ops)


def _refused_claim(sessions, tenant, claims: list[Claim], order_id: str) -> Problem:
    """The problem a claim of ``claims`` is refused with (its transaction rolled back)."""
    with pytest.raises(Problem) as exc, transaction(sessions) as s:
        inventory.reserve_stock(s, tenant, claims, order_id=order_id, expires_at=None)
    return exc.value


def test_a_refused_claim_of_several_lines_holds_none_of_them(sessions, tenant):
    a = new_variant(sessions, tenant, "A-1", stock=5)
    b = new_variant(sessions, tenant, "B-1", stock=1)
    refused = _refused_claim(sessions, tenant, [Claim(variant_id=a, quantity=2, sku="A-1"),
                                                Claim(variant_id=b, quantity=2, sku="B-1")],
                             "ord_x")
    assert refused.slug == "out-of-stock" and refused.extra["sku"] == "B-1"
    assert list(levels(sessions, tenant, a).values()) == [(5, 0)]
    assert list(levels(sessions, tenant, b).values()) == [(1, 0)]
    assert active_reserved(sessions, tenant, a) == {}


def test_a_claim_of_several_lines_holds_each_once_where_asked(sessions, tenant):
    """Several variants claimed at once: a variant named on two lines is claimed once for
    both, at the default location or at the one named; a line short there holds nothing;
    an unknown location is a 404."""
    a = new_variant(sessions, tenant, "A-1", stock=5)
    b = new_variant(sessions, tenant, "B-1", stock=2)
    with transaction(sessions) as s:
        default = inventory.default_location(s, tenant).id
        store = inventory.create_location(s, tenant, LocationCreate(code="store", name="Store")).id
        inventory.adjust_stock(s, tenant, b, 4, "received", location_id=store)
    claims = [Claim(variant_id=a, quantity=2, sku="A-1"), Claim(variant_id=b, quantity=1,
              sku="B-1"), Claim(variant_id=a, quantity=1, sku="A-1")]
    with transaction(sessions) as s:
        held = inventory.reserve_stock(s, tenant, claims, order_id="ord_multi", expires_at=None)
    assert len(held) == 2
    assert levels(sessions, tenant, a) == {default: (5, 3)}
    assert levels(sessions, tenant, b) == {default: (2, 1), store: (4, 0)}
    assert active_reserved(sessions, tenant, a) == {default: 3}
    with pytest.raises(Problem) as short, transaction(sessions) as s:  # A: none at the store
        inventory.reserve_stock(s, tenant, [Claim(variant_id=b, quantity=3, sku="B-1"),
                                            Claim(variant_id=a, quantity=1, sku="A-1")],
                                order_id="ord_store", expires_at=None, location_id=store)
    assert short.value.slug == "out-of-stock" and short.value.extra["sku"] == "A-1"
    assert levels(sessions, tenant, b)[store] == (4, 0)
    with transaction(sessions) as s:
        inventory.reserve_stock(s, tenant, [Claim(variant_id=b, quantity=3, sku="B-1"),
                                            Claim(variant_id=b, quantity=1, sku="B-1")],
                                order_id="ord_store", expires_at=None, location_id=store)
    assert levels(sessions, tenant, b)[store] == (4, 4)
    with pytest.raises(Problem) as unknown, transaction(sessions) as s:
        inventory.reserve_stock(s, tenant, claims, order_id="ord_nowhere", expires_at=None,
                                location_id="loc_nowhere")
    assert unknown.value.status == 404
    assert levels(sessions, tenant, a) == {default: (5, 3)}


def test_a_variant_with_no_stock_row_is_out_of_stock_and_cannot_be_written_down(sessions, tenant):
    v = new_variant(sessions, tenant)
    with pytest.raises(Problem) as exc, transaction(sessions) as s:
        inventory.hold_stock(s, tenant, v, 1, 60)
    assert exc.value.slug == "out-of-stock"
    with pytest.raises(Problem) as exc, transaction(sessions) as s:
        inventory.adjust_stock(s, tenant, v, -1, "damaged")
    assert exc.value.slug == "insufficient-stock"
    assert levels(sessions, tenant, v) == {}


# ---------------------------------------------------------------- threads

def test_twenty_threads_changing_one_variant_keep_the_books_straight(sessions, tenant):
    initial = 30
    variant = new_variant(sessions, tenant, stock=initial)
    lock = threading.Lock()
    holds: list[str] = []          # hold ids any thread may release
    orders: list[str] = []         # order ids whose units any thread may ship
    applied: list[int] = []        # adjustments that went through
    shipped: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(20)

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            start.wait()
            for _ in range(12):
                action = rnd.choice(["hold", "hold", "order", "release", "release", "adjust",
                                     "adjust", "ship"])
                done = None  # what to record once the transaction has committed
                try:
                    with transaction(sessions) as s:
                        if action == "hold":
                            r = inventory.hold_stock(s, tenant, variant, rnd.randint(1, 3), 900)
                            done = (holds, r.id)
                        elif action == "order":
                            oid = f"ord_t{seed}_{rnd.randrange(10**9)}"
                            inventory.reserve_stock(s, tenant, [Claim(variant_id=variant,
                                                                      quantity=rnd.randint(1, 2))],
                                                    order_id=oid, expires_at=None)
                            done = (orders, oid)
                        elif action == "release":
                            with lock:
                                rid = rnd.choice(holds) if holds else None
                            if rid:  # perhaps another thread is releasing the same hold
                                inventory.release_hold(s, tenant, rid)
                        elif action == "adjust":
                            delta = rnd.choice([-3, -2, -1, 1, 2, 3])
                            inventory.adjust_stock(s, tenant, variant, delta,
                                                   "received" if delta > 0 else "lost")
                            done = (applied, delta)
                        elif action == "ship":
                            with lock:
                                oid = orders.pop(rnd.randrange(len(orders))) if orders else None
                            if oid:
                                done = (shipped, inventory.ship_order_stock(s, tenant, oid))
                    if done:
                        with lock:
                            done[0].append(done[1])
                except Problem as exc:
                    assert exc.slug in ("out-of-stock", "insufficient-stock"), exc
        except BaseException as exc:  # noqa: BLE001 — reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert errors == [], errors
    assert_invariants(sessions, tenant, variant)
    [(on_hand, _)] = levels(sessions, tenant, variant).values()
    assert on_hand == initial + sum(applied) - sum(shipped)
    assert len(applied) > 0
    with sessions() as s:
        statuses = dict(s.execute(select(Reservation.status, func.count())
                                  .where(Reservation.tenant_id == tenant.id)
                                  .group_by(Reservation.status)).all())
        adjustments = s.scalar(select(func.count()).select_from(Adjustment).where(
            Adjustment.tenant_id == tenant.id, Adjustment.reason.in_(["received", "lost"])))
    assert adjustments == len(applied)
    assert statuses.get("active", 0) + statuses.get("released", 0) + statuses.get("committed", 0) \
        == sum(statuses.values())


def test_the_same_hold_released_twice_at_once_gives_its_units_back_once(sessions, tenant):
    """A client retrying ``DELETE /v1/reservations/{id}`` while the first call is still in
    flight: the second must see the hold released, not give the units back again."""
    variant = new_variant(sessions, tenant, stock=5)
    with transaction(sessions) as s:
        first = inventory.hold_stock(s, tenant, variant, 2, 900).id
        other = inventory.hold_stock(s, tenant, variant, 1, 900).id
    done = threading.Event()
    failure: list[BaseException] = []

    def second_release() -> None:
        try:
            with transaction(sessions) as s2:
                inventory.release_hold(s2, tenant, first)
        except BaseException as exc:  # noqa: BLE001
            failure.append(exc)
        finally:
            done.set()

    with transaction(sessions) as s1:
        inventory.release_hold(s1, tenant, first)
        t = threading.Thread(target=second_release)
        t.start()
        # the second release runs into the first's locks (or SQLite's write lock) and waits
        assert not done.wait(0.5)
    t.join(30)
    assert failure == [], failure
    assert list(levels(sessions, tenant, variant).values()) == [(5, 1)]
    with sessions() as s:
        assert inventory.get_reservation(s, tenant, other).status == "active"
    assert_invariants(sessions, tenant, variant)


def test_a_hold_released_while_the_expiry_job_runs_is_given_back_once(sessions, tenant):
    variant = new_variant(sessions, tenant, stock=5)
    with transaction(sessions) as s:
        first = inventory.hold_stock(s, tenant, variant, 2, 60).id
        inventory.hold_stock(s, tenant, variant, 1, 3600)
    done = threading.Event()
    failure: list[BaseException] = []
    expired: list[int] = []

    def expiry_job() -> None:
        try:
            with transaction(sessions) as s2:
                expired.append(inventory.expire_holds(s2, utcnow() + dt.timedelta(minutes=5)))
        except BaseException as exc:  # noqa: BLE001
            failure.append(exc)
        finally:
            done.set()

    with transaction(sessions) as s1:
        inventory.release_hold(s1, tenant, first)
        t = threading.Thread(target=expiry_job)
        t.start()
        assert not done.wait(0.5)
    t.join(30)
    assert failure == [], failure
    assert expired == [0]
    assert list(levels(sessions, tenant, variant).values()) == [(5, 1)]
    assert_invariants(sessions, tenant, variant)


# ---------------------------------------------------------------- plain behaviour (API)

def new_product(client, sku="TIRE-1", stock=5):
    r = client.post("/v1/products", json={"sku": sku, "title": "Tire 轮胎",
                                          "price": {"amount": "99.00", "currency": "CNY"},
                                          "stock": stock})
    assert r.status_code == 201, r.text
    return r.json()


def test_adjustments_are_listed_with_their_reasons_newest_first(client):
    p = new_product(client, stock=10)
    vid = p["variants"][0]["id"]
    for delta, reason, note in [(5, "received", "PO-1"), (-2, "damaged", "crushed"),
                                (-1, "lost", None), (3, "cycle_count", None)]:
        r = client.post("/v1/inventory/adjustments",
                        json={"sku": "TIRE-1", "delta": delta, "reason": reason, "note": note})
        assert r.status_code == 201, r.text
        assert r.json()["reason"] == reason and r.json()["note"] == note
    assert r.json()["level"] == {"on_hand": 15, "reserved": 0, "available": 15}
    r = client.post("/v1/inventory/adjustments", json={"variant_id": vid, "delta": -16,
                                                       "reason": "lost"})
    assert r.status_code == 409 and r.json()["type"].endswith("insufficient-stock")
    assert r.json()["available"] == 15
    r = client.post("/v1/inventory/adjustments", json={"sku": "TIRE-1", "delta": 1,
                                                       "reason": "fulfilled"})
    assert r.status_code == 422  # only the system records fulfilment
    r = client.post("/v1/inventory/adjustments", json={"sku": "TIRE-1", "delta": 0,
                                                       "reason": "received"})
    assert r.status_code == 422
    listed = client.get("/v1/inventory/adjustments", params={"variant_id": vid}).json()["data"]
    assert [(a["delta"], a["reason"]) for a in listed] == [
        (3, "cycle_count"), (-1, "lost"), (-2, "damaged"), (5, "received"), (10, "initial")]
    assert listed[3]["note"] == "PO-1"
    # shipping an order records a "fulfilled" adjustment tied to the order
    o = client.post("/v1/orders", json={"lines": [{"sku": "TIRE-1", "quantity": 2}]}).json()
    assert client.post("/v1/payment_intents", json={
        "order_id": o["id"], "payment_method": {"type": "cash"}}).status_code == 201
    assert client.post(f"/v1/orders/{o['id']}/shipments", json={"carrier": "SF"}).status_code == 201
    newest = client.get("/v1/inventory/adjustments", params={"variant_id": vid}).json()["data"][0]
    assert (newest["delta"], newest["reason"], newest["order_id"]) == (-2, "fulfilled", o["id"])
    levels_ = client.get("/v1/inventory/levels", params={"sku": "TIRE-1"}).json()["data"]
    assert [(lv["on_hand"], lv["reserved"], lv["available"]) for lv in levels_] == [(13, 0, 13)]


def test_standalone_holds_expire(client, sessions):
    p = new_product(client, stock=5)
    r = client.post("/v1/reservations", json={"sku": "TIRE-1", "quantity": 3, "ttl_seconds": 60})
    assert r.status_code == 201, r.text
    hold = r.json()
    assert hold["status"] == "active" and hold["order_id"] is None
    long = client.post("/v1/reservations", json={"sku": "TIRE-1", "quantity": 1,
                                                 "ttl_seconds": 3600}).json()
    assert client.get(f"/v1/products/{p['id']}").json()["stock"]["available"] == 1
    r = client.post("/v1/reservations", json={"sku": "TIRE-1", "quantity": 2})
    assert r.status_code == 409 and r.json()["type"].endswith("out-of-stock")
    with transaction(sessions) as s:
        assert inventory.expire_holds(s) == 0  # not yet
    with transaction(sessions) as s:
        assert inventory.expire_holds(s, utcnow() + dt.timedelta(seconds=61)) == 1
    assert client.get(f"/v1/reservations/{hold['id']}").json()["status"] == "released"
    assert client.get(f"/v1/reservations/{long['id']}").json()["status"] == "active"
    assert client.get(f"/v1/products/{p['id']}").json()["stock"] == {
        "on_hand": 5, "reserved": 1, "available": 4}
    with transaction(sessions) as s:
        assert inventory.expire_holds(s, utcnow() + dt.timedelta(seconds=61)) == 0
    # a released hold stays released
    r = client.delete(f"/v1/reservations/{hold['id']}")
    assert r.status_code == 200 and r.json()["status"] == "released"
    assert client.get(f"/v1/products/{p['id']}").json()["stock"]["reserved"] == 1


def test_an_orders_reservation_is_not_released_as_a_hold_nor_expired_as_one(client, sessions):
    new_product(client, stock=5)
    o = client.post("/v1/orders", json={"lines": [{"sku": "TIRE-1", "quantity": 2}]}).json()
    with sessions() as s:
        rid = s.scalar(select(Reservation.id).where(Reservation.order_id == o["id"]))
    r = client.delete(f"/v1/reservations/{rid}")
    assert r.status_code == 409 and r.json()["type"].endswith("reservation-owned-by-order")
    with transaction(sessions) as s:
        assert inventory.expire_holds(s, utcnow() + dt.timedelta(days=30)) == 0
    assert client.get(f"/v1/reservations/{rid}").json()["status"] == "active"


def test_a_second_location_keeps_its_own_stock(client):
    p = new_product(client, stock=4)
    vid = p["variants"][0]["id"]
    r = client.post("/v1/locations", json={"code": "store-sh", "name": "上海门店", "kind": "store",
                                           "address": "上海市黄浦区南京东路1号"})
    assert r.status_code == 201, r.text
    store = r.json()
    assert store["kind"] == "store" and not store["is_default"]
    assert client.post("/v1/locations", json={"code": "store-sh", "name": "Again"}).status_code == 409
    codes = {loc["code"]: loc for loc in client.get("/v1/locations").json()["data"]}
    assert set(codes) == {"default", "store-sh"} and codes["default"]["is_default"]
    r = client.post("/v1/inventory/adjustments", json={"variant_id": vid, "delta": 3,
                                                       "reason": "received",
                                                       "location_id": store["id"]})
    assert r.status_code == 201 and r.json()["location_id"] == store["id"]
    by_loc = {lv["location_id"]: lv for lv in
              client.get("/v1/inventory/levels", params={"variant_id": vid}).json()["data"]}
    assert by_loc[store["id"]]["on_hand"] == 3
    assert by_loc[codes["default"]["id"]]["on_hand"] == 4
    assert client.get(f"/v1/products/{p['id']}").json()["stock"]["available"] == 7

    # reserve from the store only: a hold, then a POS order
    r = client.post("/v1/reservations", json={"sku": "TIRE-1", "quantity": 2,
                                              "location_id": store["id"]})
    assert r.status_code == 201 and r.json()["location_id"] == store["id"]
    r = client.post("/v1/orders", json={"lines": [{"sku": "TIRE-1", "quantity": 2}],
                                        "channel": "pos", "location_id": store["id"]})
    assert r.status_code == 409 and r.json()["type"].endswith("out-of-stock")  # 1 left there
    r = client.post("/v1/orders", json={"lines": [{"sku": "TIRE-1", "quantity": 1}],
                                        "channel": "pos", "location_id": store["id"]})
    assert r.status_code == 201 and r.json()["location_id"] == store["id"]
    by_loc = {lv["location_id"]: (lv["on_hand"], lv["reserved"]) for lv in
              client.get("/v1/inventory/levels", params={"variant_id": vid}).json()["data"]}
    assert by_loc == {store["id"]: (3, 3), codes["default"]["id"]: (4, 0)}
    # the warehouse still sells its own four
    r = client.post("/v1/orders", json={"lines": [{"sku": "TIRE-1", "quantity": 4}]})
    assert r.status_code == 201, r.text
    r = client.post("/v1/reservations", json={"sku": "TIRE-1", "quantity": 1,
                                              "location_id": "loc_nope"})
    assert r.status_code == 404


def test_another_merchants_stock_is_invisible(client, sessions):
    p = new_product(client)
    hold = client.post("/v1/reservations", json={"sku": "TIRE-1", "quantity": 1}).json()
    _, token = make_tenant(sessions, "other-shop")
    other = {"Authorization": f"Bearer {token}"}
    vid = p["variants"][0]["id"]
    assert client.get("/v1/inventory/levels", params={"variant_id": vid},
                      headers=other).status_code == 404
    assert client.get(f"/v1/reservations/{hold['id']}", headers=other).status_code == 404
    assert client.delete(f"/v1/reservations/{hold['id']}", headers=other).status_code == 404
    r = client.post("/v1/inventory/adjustments", json={"variant_id": vid, "delta": -1,
                                                       "reason": "lost"}, headers=other)
    assert r.status_code == 404
    assert client.get(f"/v1/products/{p['id']}").json()["stock"] == {
        "on_hand": 5, "reserved": 1, "available": 4}


def _rows_read(plan: dict, table: str) -> int:
    """The rows of ``table`` an EXPLAIN ANALYZE plan's scans read (kept or filtered out)."""
    read = 0
    if plan.get("Relation Name") == table:
        read += (plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)
                 + plan.get("Rows Removed by Index Recheck", 0)) * plan["Actual Loops"]
    return read + sum(_rows_read(child, table) for child in plan.get("Plans", ()))


@pytest.mark.pg
@pytest.mark.parametrize("db_url", ["pg"], indirect=True)
def test_a_claim_of_several_lines_reads_only_their_stock_rows(engine, sessions, tenant):
    """With the table's statistics (autovacuum's), the one-statement claim looks up the
    claimed variants' rows, not the shop's whole stock, in the generic plan a prepared
    statement settles on. Without them the planner took a fresh shop's stock for one row
    and read all of it, twice, for each checkout (the storefront benchmark now analyzes
    its database once seeded and warmed up, as ``pgbench -i`` does its tables)."""
    from sqlalchemy import insert, text

    with transaction(sessions) as s:
        location = inventory.default_location(s, tenant)
        s.execute(insert(StockLevel), [
            {"tenant_id": tenant.id, "variant_id": f"var_{i:05d}", "location_id": location.id,
             "on_hand": 10, "reserved": 0} for i in range(20_000)])
    sql, names, _ = inventory._CLAIM_MANY_AT_DEFAULT._compiled(engine.dialect)
    # EXECUTE's arguments as literals: a utility statement takes no bound parameters
    values = {"t_id": f"'{tenant.id}'::varchar",
              "v_ids": "ARRAY['var_00007', 'var_00300']::varchar[]", "ns": "ARRAY[2, 1]"}
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE stock_levels")
        conn.exec_driver_sql(f"PREPARE claim_many AS {sql}")
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        arguments = ", ".join(values[name] for name in names)
        plan = conn.exec_driver_sql(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim_many({arguments})").scalar()[0]["Plan"]
        claimed = conn.execute(text("SELECT variant_id, reserved FROM stock_levels "
                                    "WHERE tenant_id = :t AND reserved > 0 ORDER BY 1"),
                               {"t": tenant.id}).all()
        conn.rollback()
    assert claimed == [("var_00007", 2), ("var_00300", 1)]  # the EXPLAIN ANALYZE ran it
    assert _rows_read(plan, "stock_levels") <= 8  # each of its two scans: the claimed rows


def test_several_variants_are_claimed_in_one_statement_on_postgresql(sessions, tenant, monkeypatch):
    """PostgreSQL claims the variants of a multi-line order in one statement (one round
    trip), SQLite one by one; either way each is held once and a short one holds none."""
    from haina.inventory import service as inventory_service

    calls = {"one": 0, "many": 0}

    class Counting:
        def __init__(self, inner, kind):
            self.inner, self.kind = inner, kind

        def rows(self, session, params):
            calls[self.kind] += 1
            return self.inner.rows(session, params)

    for name, kind in (("_CLAIM_AT_DEFAULT", "one"), ("_CLAIM_MANY_AT_DEFAULT", "many")):
        monkeypatch.setattr(inventory_service, name,
                            Counting(getattr(inventory_service, name), kind))
    a = new_variant(sessions, tenant, "A-1", stock=5)
    b = new_variant(sessions, tenant, "B-1", stock=3)
    c = new_variant(sessions, tenant, "C-1", stock=0)
    with transaction(sessions) as s:
        held = inventory.reserve_stock(s, tenant, [Claim(variant_id=b, quantity=3, sku="B-1"),
                                                   Claim(variant_id=a, quantity=2, sku="A-1")],
                                       order_id="ord_two", expires_at=None)
        postgres = s.get_bind().dialect.name == "postgresql"
    assert len(held) == 2
    assert calls == ({"one": 0, "many": 1} if postgres else {"one": 2, "many": 0})
    assert list(levels(sessions, tenant, a).values()) == [(5, 2)]
    assert list(levels(sessions, tenant, b).values()) == [(3, 3)]
    short = _refused_claim(sessions, tenant, [Claim(variant_id=a, quantity=1, sku="A-1"),
                                              Claim(variant_id=c, quantity=1, sku="C-1")],
                           "ord_short")
    assert short.slug == "out-of-stock" and short.extra["sku"] == "C-1"
    assert list(levels(sessions, tenant, a).values()) == [(5, 2)]
    assert active_reserved(sessions, tenant, a) == {[*levels(sessions, tenant, a)][0]: 2}
