"""A change of a cart's lines is a compare-and-set on the version read, and checkout claims the
cart in the statement that locks it: no change is lost to a concurrent one, and a cart becomes
at most one order. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, update

from haina.carts import service as carts
from haina.carts.models import Cart
from haina.carts.schemas import CartCreate
from haina.checkout import service as checkout
from haina.checkout.schemas import CheckoutIn
from haina.core.db import statements_alone, transaction, utcnow
from haina.core.errors import Conflict, InvalidState, NotFound
from haina.orders.models import Order
from haina.orders.schemas import LineIn
from tests.carts.test_carts_api import product


@pytest.fixture
def cart_id(client, sessions, tenant_of_client) -> str:
    for sku in ("A", "B", "C"):
        product(client, sku, "10.00", stock=1000)
    return client.post("/v1/carts", json={"lines": [{"sku": "A", "quantity": 1}]}).json()["id"]


@pytest.fixture
def tenant_of_client(client, sessions):
    from haina.core.context import Tenant
    from haina.platform.models import TenantRow
    with sessions() as s:
        row = s.scalars(select(TenantRow).where(TenantRow.slug == "acme")).one()
        return Tenant(id=row.id, slug=row.slug, currency=row.currency)


# another unit of work changes the cart while this one holds its read: on PostgreSQL (SQLite
# runs one writer at a time, from BEGIN IMMEDIATE, so nothing can get in between there)
PG_ONLY = (pytest.mark.pg, pytest.mark.parametrize("db_url", ["pg"], indirect=True))


def pg_only(test):
    for mark in reversed(PG_ONLY):
        test = mark(test)
    return test


def _lines(sessions, tenant, cart_id) -> dict[str, int]:
    with transaction(sessions) as s:
        return {ln.sku: ln.quantity for ln in carts.get_cart(s, tenant, cart_id).lines}


@pg_only
def test_a_change_made_between_the_read_and_the_write_is_kept(sessions, tenant_of_client,
                                                              cart_id):
    tenant = tenant_of_client
    attempts = []

    def interfering(cart) -> None:
        attempts.append(dict((x["sku"], x["quantity"]) for x in cart.lines))
        if len(attempts) == 1:  # another request adds B after this one read the cart
            with transaction(sessions) as other:
                carts.add_cart_line(other, tenant, cart_id, LineIn(sku="B", quantity=2))
        cart.lines = [*cart.lines, {"sku": "C", "quantity": 3}]

    with transaction(sessions) as s:
        statements_alone(s)
        out = carts._change_lines(s, tenant, cart_id, None, interfering)
    # the first write found the cart changed: read again (B there now), changed, written
    assert attempts == [{"A": 1}, {"A": 1, "B": 2}]
    assert {ln.sku: ln.quantity for ln in out.lines} == {"A": 1, "B": 2, "C": 3}
    assert _lines(sessions, tenant, cart_id) == {"A": 1, "B": 2, "C": 3}


@pg_only
def test_a_cart_that_keeps_changing_is_a_409_and_keeps_the_other_changes(
        sessions, tenant_of_client, cart_id):
    tenant = tenant_of_client
    calls = []

    def always_beaten(cart) -> None:
        calls.append(1)
        with transaction(sessions) as other:
            carts.add_cart_line(other, tenant, cart_id, LineIn(sku="B", quantity=1))
        cart.lines = [{"sku": "C", "quantity": 1}]

    with transaction(sessions) as s, pytest.raises(Conflict) as refused:
        statements_alone(s)
        carts._change_lines(s, tenant, cart_id, None, always_beaten)
    assert refused.value.slug == "cart-busy" and len(calls) == carts.CHANGE_ATTEMPTS
    assert _lines(sessions, tenant, cart_id) == {"A": 1, "B": carts.CHANGE_ATTEMPTS}


@pg_only
def test_a_change_of_a_cart_closed_since_it_was_read_is_refused(sessions, tenant_of_client,
                                                                cart_id):
    tenant = tenant_of_client

    def closed_meanwhile(cart) -> None:
        with transaction(sessions) as other:
            other.execute(update(Cart).where(Cart.id == cart_id).values(
                status="ordered", updated_at=utcnow()))
        cart.lines = []

    with transaction(sessions) as s, pytest.raises(InvalidState) as refused:
        carts._change_lines(s, tenant, cart_id, None, closed_meanwhile)
    assert refused.value.slug == "cart-closed"


def test_concurrent_additions_to_one_cart_are_all_kept(sessions, tenant_of_client, cart_id):
    tenant = tenant_of_client
    added: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def add(sku: str) -> None:
        start.wait()
        for _ in range(5):
            try:
                with transaction(sessions) as s:
                    statements_alone(s)
                    carts.add_cart_line(s, tenant, cart_id, LineIn(sku=sku, quantity=1))
                added.append(sku)
            except BaseException as exc:  # noqa: BLE001 — reported below
                errors.append(exc)

    threads = [threading.Thread(target=add, args=(sku,)) for sku in "ABCABC"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # a change that kept losing is a 409 the buyer retries; none may be lost silently
    assert all(isinstance(e, Conflict) and e.slug == "cart-busy" for e in errors), errors
    assert len(added) + len(errors) == 30 and len(added) >= 20
    assert _lines(sessions, tenant, cart_id) == {
        "A": 1 + added.count("A"), "B": added.count("B"), "C": added.count("C")}


def test_checkout_claims_the_cart_for_one_order(sessions, tenant_of_client, cart_id):
    tenant = tenant_of_client
    with transaction(sessions) as s:
        order = checkout.checkout_cart(s, tenant, cart_id, CheckoutIn())
    with sessions() as s:
        row = s.get(Cart, (tenant.id, cart_id))
        assert (row.status, row.order_id) == ("ordered", order.id)
        assert s.get(Order, (tenant.id, order.id)).status == "pending_payment"
    with transaction(sessions) as s, pytest.raises(InvalidState) as again:
        checkout.checkout_cart(s, tenant, cart_id, CheckoutIn())
    assert again.value.slug == "cart-closed" and again.value.extra["order_id"] == order.id


def test_the_storefronts_claim_of_another_members_cart_is_a_404_and_changes_nothing(
        sessions, tenant_of_client, cart_id):
    tenant = tenant_of_client
    before = _lines(sessions, tenant, cart_id)
    with transaction(sessions) as s, pytest.raises(NotFound):
        carts.claim_for_checkout(s, tenant, cart_id, "order_x", owner_check=True,
                                 owner="mem_someone_else")
    with sessions() as s:
        assert s.get(Cart, (tenant.id, cart_id)).status == "open"
    assert _lines(sessions, tenant, cart_id) == before
    with transaction(sessions) as s, pytest.raises(NotFound):
        carts.claim_for_checkout(s, tenant, "cart_missing", "order_x")


@pg_only
def test_concurrent_checkouts_of_one_cart_make_one_order(sessions, tenant_of_client, cart_id):
    tenant = tenant_of_client
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def place() -> None:
        start.wait()
        try:
            with transaction(sessions) as s:
                checkout.checkout_cart(s, tenant, cart_id, CheckoutIn())
            outcomes.append("placed")
        except InvalidState as exc:
            outcomes.append(exc.slug)

    threads = [threading.Thread(target=place) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["cart-closed"] * 3 + ["placed"]
    with sessions() as s:
        assert len(s.scalars(select(Order.id).where(Order.tenant_id == tenant.id)).all()) == 1


def test_a_cart_made_under_statements_alone_is_stored_with_its_answer(sessions,
                                                                      tenant_of_client, client):
    tenant = tenant_of_client
    product(client, "A", "10.00")
    with transaction(sessions) as s:
        statements_alone(s)
        out = carts.create_cart(s, tenant, CartCreate(lines=[LineIn(sku="A", quantity=2)]))
    assert out.totals.subtotal.amount == 20
    assert _lines(sessions, tenant, out.id) == {"A": 2}


# --- the version remembered here (carts._SEEN): a change without a read, safe by its CAS ---

def _write_behind(sessions, tenant, cart_id, **values) -> None:
    """Change the cart's row as no Haina writer would: ``updated_at`` left as it was."""
    with transaction(sessions) as s:
        s.execute(update(Cart).where(Cart.tenant_id == tenant.id, Cart.id == cart_id)
                  .values(**values))


def _add_b_twice(sessions, tenant, cart_id) -> tuple[dict[str, int], dict[str, int]]:
    """Add 2 B under statements_alone: the lines answered, and the lines stored."""
    with transaction(sessions) as s:
        statements_alone(s)
        out = carts.add_cart_line(s, tenant, cart_id, LineIn(sku="B", quantity=2))
    return {ln.sku: ln.quantity for ln in out.lines}, _lines(sessions, tenant, cart_id)


def test_a_change_starts_from_the_version_seen_here_without_reading_the_cart(
        sessions, tenant_of_client, cart_id):
    """The row's lines changed behind Haina's back, its version kept: the change is made on
    the version this process remembers, proof that the cart was not read (one statement)."""
    _write_behind(sessions, tenant_of_client, cart_id, lines=[{"sku": "C", "quantity": 9}])
    # the answer and the row: the version remembered here, B added
    assert _add_b_twice(sessions, tenant_of_client, cart_id) == ({"A": 1, "B": 2},) * 2


def test_a_cart_changed_elsewhere_since_it_was_seen_here_is_read_again(
        sessions, tenant_of_client, cart_id):
    """Another process's change moved the version: the compare-and-set from the version
    remembered matches nothing, and the change is made on the cart read."""
    _write_behind(sessions, tenant_of_client, cart_id, lines=[{"sku": "C", "quantity": 9}],
                  updated_at=utcnow())
    # the answer and the row: the cart read, B added
    assert _add_b_twice(sessions, tenant_of_client, cart_id) == ({"C": 9, "B": 2},) * 2


def test_a_version_remembered_for_one_member_does_not_let_them_change_anothers_cart(
        client, sessions, tenant_of_client, cart_id):
    """A remembered version whose member is not the cart's (say the cart changed hands
    with its version kept): the owner is part of the compare-and-set, so that version does
    not pass for the cart as it is; read, the cart is not the caller's (404)."""
    tenant = tenant_of_client
    member = client.post("/v1/members", json={"name": "Li"}).json()["id"]
    with transaction(sessions) as s:  # seen here: the cart is no member's
        assert carts.get_cart(s, tenant, cart_id).member_id is None
    carts._SEEN[(tenant.id, cart_id)].member_id = member  # a version naming another
    with transaction(sessions) as s, pytest.raises(NotFound):
        statements_alone(s)
        carts.add_cart_line(s, tenant, cart_id, LineIn(sku="B", quantity=1), owner=member)
    assert _lines(sessions, tenant, cart_id) == {"A": 1}


def test_an_error_said_of_the_version_remembered_is_said_of_the_cart_read(
        sessions, tenant_of_client, cart_id):
    """The line to set is on the cart but not on the version remembered (added behind the
    process's back, version kept): not a 404 from the old version; set on the cart read."""
    tenant = tenant_of_client
    _write_behind(sessions, tenant, cart_id,
                  lines=[{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}])
    with transaction(sessions) as s:
        statements_alone(s)
        out = carts.set_cart_line(s, tenant, cart_id, "B", 5)
    assert {ln.sku: ln.quantity for ln in out.lines} == {"A": 1, "B": 5}
    assert _lines(sessions, tenant, cart_id) == {"A": 1, "B": 5}
