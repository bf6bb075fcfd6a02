"""Two staff actions on one order at the same moment — a refund or a capture while the order is
being cancelled — end with one clean outcome each (done, or a 409 problem): never a deadlock,
and the books balance. The interleaving is forced: the first action is paused right after it
has locked the payment, and the cancellation starts then. SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event, func, select

from haina.catalog import service as catalog
from haina.catalog.schemas import ProductCreate
from haina.checkout import service as checkout
from haina.core.db import transaction
from haina.core.errors import Problem
from haina.core.money import Money
from haina.orders import service as orders
from haina.orders.schemas import LineIn, OrderCreate
from haina.payments import ledger
from haina.payments import service as payments
from haina.payments.models import JournalLine
from haina.payments.schemas import PaymentIntentCreate, PaymentMethodIn, RefundCreate

CARD = PaymentMethodIn(type="card", number="4242424242424242")


def setup_order(sessions, tenant, capture_method: str):
    with transaction(sessions) as s:
        catalog.create_product(s, tenant, ProductCreate(sku="R-1", title="Race",
                                                        price=Money(amount="100.00"), stock=5))
    with transaction(sessions) as s:
        order = orders.place_order(s, tenant, OrderCreate(lines=[LineIn(sku="R-1", quantity=1)]))
    with transaction(sessions) as s:
        pi = payments.create_intent(s, tenant, PaymentIntentCreate(
            order_id=order.id, payment_method=CARD, capture_method=capture_method))
    return order.id, pi.id


def race(engine, sessions, tenant, first, order_id):
    """Run ``first`` in this thread; once it has locked the payment intent, cancel the order
    from another thread, wait until that one is blocked, then let ``first`` go on."""
    main = threading.current_thread()
    outcome: dict[str, object] = {}
    state = {"fired": False, "thread": None}
    pg = engine.dialect.name == "postgresql"

    def cancel() -> None:
        try:
            with transaction(sessions) as s:
                outcome["cancel"] = checkout.cancel_order(s, tenant, order_id).status
        except Problem as exc:
            outcome["cancel"] = exc
        except Exception as exc:  # noqa: BLE001 — a deadlock, a lock timeout …
            outcome["cancel_error"] = exc

    def after(conn, cursor, statement, params, context, executemany):
        if state["fired"] or threading.current_thread() is not main:
            return
        if "payment_intents" in statement and (not pg or "FOR UPDATE" in statement):
            state["fired"] = True
            t = threading.Thread(target=cancel)
            state["thread"] = t
            t.start()
            time.sleep(0.5)  # the cancellation now waits for a lock this transaction holds

    event.listen(engine, "after_cursor_execute", after)
    try:
        try:
            with transaction(sessions) as s:
                outcome["first"] = first(s)
        except Problem as exc:
            outcome["first"] = exc
        except Exception as exc:  # noqa: BLE001
            outcome["first_error"] = exc
    finally:
        event.remove(engine, "after_cursor_execute", after)
    assert state["fired"]
    state["thread"].join(60)
    assert not state["thread"].is_alive()
    return outcome


def check_books(sessions, tenant, order_id):
    with sessions() as s:
        o = orders.get_order(s, tenant, order_id)
        per_entry = s.execute(select(JournalLine.entry_id, func.sum(JournalLine.debit_minor),
                                     func.sum(JournalLine.credit_minor))
                              .where(JournalLine.tenant_id == tenant.id)
                              .group_by(JournalLine.entry_id)).all()
        assert all(int(d) == int(c) for _, d, c in per_entry)
        cash = ledger.balance_minor(s, tenant, ledger.CASH, "CNY")
        payable = ledger.balance_minor(s, tenant, ledger.PAYABLE, "CNY")
    assert cash == o.paid.minor - o.refunded.minor and payable >= 0
    return o


def test_a_refund_while_the_order_is_being_cancelled(engine, sessions, tenant):
    order_id, _ = setup_order(sessions, tenant, "automatic")
    out = race(engine, sessions, tenant, lambda s: payments.refund(s, tenant, RefundCreate(
        order_id=order_id, amount=Money(amount="30.00"))).status, order_id)
    assert "first_error" not in out and "cancel_error" not in out, out
    o = check_books(sessions, tenant, order_id)
    assert o.status == "cancelled" and o.refund_status == "full"
    assert o.refunded.minor == o.paid.minor == 10000
    if out["first"] != "succeeded":  # the cancellation went first and refunded everything
        assert isinstance(out["first"], Problem) and out["first"].status == 409, out
    assert out["cancel"] == "cancelled"


def test_a_capture_while_the_order_is_being_cancelled(engine, sessions, tenant):
    order_id, pi_id = setup_order(sessions, tenant, "manual")
    out = race(engine, sessions, tenant,
               lambda s: payments.capture(s, tenant, pi_id).status, order_id)
    assert "first_error" not in out and "cancel_error" not in out, out
    assert out["cancel"] == "cancelled"
    o = check_books(sessions, tenant, order_id)
    assert o.status == "cancelled"
    if out["first"] == "succeeded":  # captured first: the cancellation refunded it in full
        assert o.paid.minor == o.refunded.minor == 10000
    else:  # cancelled first: the authorisation was voided, nothing was captured
        assert isinstance(out["first"], Problem) and out["first"].slug == "not-capturable", out
        assert o.paid.minor == 0
    with sessions() as s:
        assert payments.get_intent(s, tenant, pi_id).status in ("succeeded", "canceled")


@pytest.fixture
def tenant(sessions):
    from support import make_tenant
    return make_tenant(sessions, "race-shop")[0]
