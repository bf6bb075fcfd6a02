"""Payment intents (authorise, capture, refund) behind a provider, and payouts.

Each capture, refund and payout posts its balanced journal entry (see ``ledger``) in the same
transaction as the state change, and tells the orders component through its service. Payments
depends on orders, never the reverse; cancelling an order (void or refund, then cancel) is a
flow of ``haina.checkout``. Intents move as ``PAYMENT_INTENT_LIFECYCLE`` allows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from haina.core.config import get_settings
from haina.core.context import Tenant
from haina.core.db import tenant_row, utcnow
from haina.core.errors import Invalid, InvalidState, PaymentFailed
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.money import Money, bps, share
from haina.core.pagination import Page, paginate
from haina.core.personal import export_rows
from haina.orders import service as orders
from haina.payments import ledger
from haina.payments.lifecycle import PAYMENT_INTENT_LIFECYCLE as PAYMENT_INTENT_LIFECYCLE
from haina.payments.models import PaymentIntent, Payout, Refund
from haina.payments.providers import card_brand, get_provider
from haina.payments.schemas import (
    PaymentIntentCreate,
    PaymentIntentOut,
    PayoutOut,
    RefundCreate,
    RefundOut,
)
from haina.platform import service as platform


def _intent_out(pi: PaymentIntent) -> PaymentIntentOut:
    c = pi.currency
    return PaymentIntentOut(id=pi.id, order_id=pi.order_id, amount=Money.of(pi.amount_minor, c),
                            status=pi.status, capture_method=pi.capture_method,
                            captured=Money.of(pi.captured_minor, c),
                            refunded=Money.of(pi.refunded_minor, c), provider=pi.provider,
                            payment_method=pi.payment_method, failure_code=pi.failure_code,
                            failure_message=pi.failure_message, created_at=pi.created_at)


def payment_problem(out: PaymentIntentOut) -> PaymentFailed:
    return PaymentFailed(out.failure_message or "the payment failed", code=out.failure_code,
                         payment_intent=out.model_dump(mode="json"))


def _intent(session: Session, tenant: Tenant, intent_id: str, lock: bool = False) -> PaymentIntent:
    return tenant_row(session, tenant.id, PaymentIntent, intent_id, "payment intent", lock=lock)


def _locked_with_its_order(session: Session, tenant: Tenant, intent_id: str) -> PaymentIntent:
    """The intent, locked after its order: the order first, then its payments, as cancelling
    an order does, so a capture or refund racing a cancellation cannot deadlock."""
    pi = _intent(session, tenant, intent_id)
    orders.lock_order(session, tenant, pi.order_id)
    session.refresh(pi, with_for_update=True)
    return pi


def _event(session: Session, tenant: Tenant, pi: PaymentIntent, type_: str,
           before: str | None, **data) -> None:
    PAYMENT_INTENT_LIFECYCLE.check(type_, before, pi.status)
    record_event(session, tenant.id, type_, pi.id, {
        "order_id": pi.order_id, "status": pi.status,
        "amount": Money.of(pi.amount_minor, pi.currency).model_dump(mode="json"), **data})


def create_intent(session: Session, tenant: Tenant, data: PaymentIntentCreate) -> PaymentIntentOut:
    """Authorise the order's total; with ``capture_method=automatic`` capture it at once.
    A decline is recorded (status ``failed``) and the order keeps waiting for payment. An
    order whose total is 0 (a free sample, a 100 % discount) is paid at once: no provider
    call, no journal entry (there is no money to move)."""
    order = orders.lock_order(session, tenant, data.order_id)
    if order.status != "pending_payment":
        raise InvalidState(f"order {order.id} is {order.status}; only an order awaiting payment "
                           "can be paid", slug="order-not-payable", status_now=order.status)
    held = session.scalar(select(PaymentIntent.id).where(
        PaymentIntent.tenant_id == tenant.id, PaymentIntent.order_id == order.id,
        PaymentIntent.status == "requires_capture"))
    if held:
        raise InvalidState(f"order {order.id} already has an authorised payment {held}; "
                           "capture or cancel it", slug="order-already-authorized",
                           payment_intent_id=held)
    method = data.payment_method
    stored_method: dict[str, str] = {"type": method.type}
    if method.number:
        stored_method.update(brand=card_brand(method.number), last4=method.number[-4:])
    provider = get_provider(data.provider)
    now = utcnow()
    if order.total_minor == 0:
        return _pay_nothing(session, tenant, order.id, order.currency, data, provider.name,
                            stored_method, now)
    result = provider.authorize(order.total_minor, order.currency, method.model_dump())
    pi = PaymentIntent(id=new_id("payment_intent"), tenant_id=tenant.id, order_id=order.id,
                       amount_minor=order.total_minor, currency=order.currency,
                       status="requires_capture" if result.ok else "failed",
                       capture_method=data.capture_method, provider=provider.name,
                       provider_ref=result.ref, payment_method=stored_method,
                       failure_code=result.code, failure_message=result.message,
                       created_at=now, updated_at=now)
    session.add(pi)
    session.flush()
    _event(session, tenant, pi, "payment_intent.authorized" if result.ok else "payment_intent.failed",
           None, failure_code=result.code)
    if result.ok and data.capture_method == "automatic":
        return _capture(session, tenant, pi, pi.amount_minor)
    return _intent_out(pi)


def capture(session: Session, tenant: Tenant, intent_id: str,
            amount: Money | None = None) -> PaymentIntentOut:
    pi = _locked_with_its_order(session, tenant, intent_id)
    if pi.status != "requires_capture":
        raise InvalidState(f"payment intent {pi.id} is {pi.status}; only an authorised payment "
                           "can be captured", slug="not-capturable", status_now=pi.status)
    minor = pi.amount_minor
    if amount is not None:
        if amount.currency != pi.currency:
            raise Invalid(f"capture in {pi.currency}, not {amount.currency}", slug="currency-mismatch")
        minor = amount.minor
        if not 0 < minor <= pi.amount_minor:
            raise Invalid("capture between 0 and the authorised amount",
                          slug="capture-amount-invalid")
    return _capture(session, tenant, pi, minor)


def _pay_nothing(session: Session, tenant: Tenant, order_id: str, currency: str,
                 data: PaymentIntentCreate, provider: str, method: dict,
                 now: dt.datetime) -> PaymentIntentOut:
    pi = PaymentIntent(id=new_id("payment_intent"), tenant_id=tenant.id, order_id=order_id,
                       amount_minor=0, currency=currency, status="succeeded",
                       capture_method=data.capture_method, provider=provider,
                       provider_ref=None, payment_method=method, captured_minor=0,
                       refunded_minor=0, fee_minor=0, created_at=now, updated_at=now)
    session.add(pi)
    session.flush()
    orders.mark_paid(session, tenant, order_id, 0, pi.id)
    _event(session, tenant, pi, "payment_intent.succeeded", None,
           captured=Money.of(0, currency).model_dump(mode="json"))
    return _intent_out(pi)


def _capture(session: Session, tenant: Tenant, pi: PaymentIntent, minor: int) -> PaymentIntentOut:
    result = get_provider(pi.provider).capture(pi.provider_ref or "", minor)
    pi.updated_at = utcnow()
    if not result.ok:
        pi.status, pi.failure_code, pi.failure_message = "failed", result.code, result.message
        _event(session, tenant, pi, "payment_intent.failed", "requires_capture",
               failure_code=result.code)
        session.flush()
        return _intent_out(pi)
    fee = bps(minor, get_settings().platform_fee_bps)
    pi.status, pi.captured_minor, pi.fee_minor = "succeeded", minor, fee
    ledger.post(session, tenant, "capture", pi.id, pi.currency, [
        (ledger.CASH, minor, 0), (ledger.PAYABLE, 0, minor - fee), (ledger.FEES, 0, fee)],
        memo=f"order {pi.order_id}")
    orders.mark_paid(session, tenant, pi.order_id, minor, pi.id)
    _event(session, tenant, pi, "payment_intent.succeeded", "requires_capture",
           captured=Money.of(minor, pi.currency).model_dump(mode="json"))
    session.flush()
    return _intent_out(pi)


def cancel_intent(session: Session, tenant: Tenant, intent_id: str) -> PaymentIntentOut:
    pi = _intent(session, tenant, intent_id, lock=True)
    if pi.status != "requires_capture":
        raise InvalidState(f"payment intent {pi.id} is {pi.status}; only an authorised payment "
                           "can be cancelled", slug="not-cancellable", status_now=pi.status)
    _void(session, tenant, pi)
    return _intent_out(pi)


def _void(session: Session, tenant: Tenant, pi: PaymentIntent) -> None:
    get_provider(pi.provider).void(pi.provider_ref or "")
    pi.status, pi.updated_at = "canceled", utcnow()
    _event(session, tenant, pi, "payment_intent.canceled", "requires_capture")
    session.flush()


def void_open_intents(session: Session, tenant: Tenant, order_id: str) -> int:
    """Release every authorisation still held for an order (it is being cancelled)."""
    rows = session.scalars(select(PaymentIntent).where(
        PaymentIntent.tenant_id == tenant.id, PaymentIntent.order_id == order_id,
        PaymentIntent.status == "requires_capture").with_for_update()).all()
    for pi in rows:
        _void(session, tenant, pi)
    return len(rows)


def get_intent(session: Session, tenant: Tenant, intent_id: str) -> PaymentIntentOut:
    return _intent_out(_intent(session, tenant, intent_id))


def list_intents(session: Session, tenant: Tenant, order_id: str | None = None, limit: int = 50,
                 cursor: str | None = None, *, status: str | None = None,
                 created_gte: dt.datetime | None = None,
                 created_lt: dt.datetime | None = None) -> Page[PaymentIntentOut]:
    """The merchant's payment intents, newest first (of an order, in a state, made in a
    window)."""
    stmt = select(PaymentIntent).where(PaymentIntent.tenant_id == tenant.id)
    if order_id:
        stmt = stmt.where(PaymentIntent.order_id == order_id)
    if status:
        stmt = stmt.where(PaymentIntent.status == status)
    if created_gte:
        stmt = stmt.where(PaymentIntent.created_at >= created_gte)
    if created_lt:
        stmt = stmt.where(PaymentIntent.created_at < created_lt)
    return paginate(session, stmt, PaymentIntent.id, limit=limit, cursor=cursor,
                    convert=_intent_out)


def _refund_out(r: Refund) -> RefundOut:
    return RefundOut(id=r.id, payment_intent_id=r.payment_intent_id, order_id=r.order_id,
                     amount=Money.of(r.amount_minor, r.currency), reason=r.reason,
                     status=r.status, created_at=r.created_at)


def refund(session: Session, tenant: Tenant, data: RefundCreate) -> RefundOut:
    """Refund part or all of a captured payment; the fee comes back in proportion."""
    pi: PaymentIntent | None
    if data.payment_intent_id:
        pi = _locked_with_its_order(session, tenant, data.payment_intent_id)
    else:
        orders.lock_order(session, tenant, data.order_id or "")  # locked first; 404
        pi = session.scalar(select(PaymentIntent).where(
            PaymentIntent.tenant_id == tenant.id, PaymentIntent.order_id == data.order_id,
            PaymentIntent.status == "succeeded").with_for_update())
        if pi is None:
            raise InvalidState("this order has no captured payment to refund",
                               slug="nothing-to-refund")
    remaining = pi.captured_minor - pi.refunded_minor
    minor = remaining
    if data.amount is not None:
        if data.amount.currency != pi.currency:
            raise Invalid(f"refund in {pi.currency}, not {data.amount.currency}",
                          slug="currency-mismatch")
        minor = data.amount.minor
    if pi.status != "succeeded" or remaining <= 0:
        raise InvalidState("nothing left to refund on this payment", slug="nothing-to-refund")
    if not 0 < minor <= remaining:
        raise Invalid(f"a refund must be more than 0 and at most "
                      f"{Money.of(remaining, pi.currency).amount} {pi.currency}",
                      slug="refund-exceeds-captured",
                      refundable=Money.of(remaining, pi.currency).model_dump(mode="json"))
    return _refund(session, tenant, pi, minor, data.reason)


def _refund(session: Session, tenant: Tenant, pi: PaymentIntent, minor: int, reason: str,
            *, tell_order: bool = True) -> RefundOut:
    if pi.provider == "import":
        raise InvalidState("this payment was imported (taken outside Haina, e.g. history "
                           "loaded by haina import): refund it where it was taken",
                           slug="payment-imported")
    fee_before = share(pi.fee_minor, pi.refunded_minor, pi.captured_minor)
    fee_back = share(pi.fee_minor, pi.refunded_minor + minor, pi.captured_minor) - fee_before
    # The merchant bears the refund (less the fee share coming back): never more than the
    # platform still owes them, or merchant_payable would go negative after a payout. Lock the
    # merchant's row as create_payout does, so a refund and a payout cannot both spend it.
    platform.lock_tenant(session, tenant.id)
    owed = ledger.balance_minor(session, tenant, ledger.PAYABLE, pi.currency)
    if minor - fee_back > owed:
        raise InvalidState(f"this refund would take more than the merchant is owed "
                           f"({Money.of(owed, pi.currency).amount} {pi.currency}, after payouts)",
                           slug="refund-exceeds-merchant-balance",
                           available=Money.of(owed, pi.currency).model_dump(mode="json"))
    result = get_provider(pi.provider).refund(pi.provider_ref or "", minor)
    if not result.ok:
        raise PaymentFailed(result.message or "the provider refused the refund", code=result.code)
    pi.refunded_minor += minor
    now = utcnow()
    pi.updated_at = now
    row = Refund(id=new_id("refund"), tenant_id=tenant.id, payment_intent_id=pi.id,
                 order_id=pi.order_id, amount_minor=minor, currency=pi.currency, reason=reason,
                 status="succeeded", provider_ref=result.ref, created_at=now)
    session.add(row)
    session.flush()
    ledger.post(session, tenant, "refund", row.id, pi.currency, [
        (ledger.PAYABLE, minor - fee_back, 0), (ledger.FEES, fee_back, 0), (ledger.CASH, 0, minor)],
        memo=f"order {pi.order_id}")
    if tell_order:
        orders.record_refund(session, tenant, pi.order_id, minor, row.id)
    record_event(session, tenant.id, "refund.succeeded", row.id, {
        "order_id": pi.order_id, "payment_intent_id": pi.id, "reason": reason,
        "amount": Money.of(minor, pi.currency).model_dump(mode="json")})
    return _refund_out(row)


def refund_order(session: Session, tenant: Tenant, order_id: str,
                 reason: str) -> list[RefundOut]:
    """Refund whatever is left of every captured payment of an order that is being cancelled
    (the order is locked by the caller and told of the refunds by ``orders.cancel``)."""
    refunds = []
    for pi in session.scalars(select(PaymentIntent).where(
            PaymentIntent.tenant_id == tenant.id, PaymentIntent.order_id == order_id,
            PaymentIntent.status == "succeeded").order_by(PaymentIntent.id)
            .with_for_update()).all():
        left = pi.captured_minor - pi.refunded_minor
        if left > 0:
            refunds.append(_refund(session, tenant, pi, left, reason, tell_order=False))
    return refunds


def list_refunds(session: Session, tenant: Tenant, order_id: str | None = None, limit: int = 50,
                 cursor: str | None = None, *,
                 payment_intent_id: str | None = None) -> Page[RefundOut]:
    stmt = select(Refund).where(Refund.tenant_id == tenant.id)
    if order_id:
        stmt = stmt.where(Refund.order_id == order_id)
    if payment_intent_id:
        stmt = stmt.where(Refund.payment_intent_id == payment_intent_id)
    return paginate(session, stmt, Refund.id, limit=limit, cursor=cursor, convert=_refund_out)


def create_payout(session: Session, tenant: Tenant, amount: Money) -> PayoutOut:
    """Pay the merchant out of what the platform owes them; never more than that."""
    # one payout at a time per merchant: lock the merchant's row (SQLite serialises anyway)
    platform.lock_tenant(session, tenant.id)
    minor = amount.minor
    owed = ledger.balance_minor(session, tenant, ledger.PAYABLE, amount.currency)
    if minor <= 0 or minor > owed:
        raise InvalidState(f"a payout must be more than 0 and at most what is owed "
                           f"({Money.of(owed, amount.currency).amount} {amount.currency})",
                           slug="payout-exceeds-balance",
                           available=Money.of(owed, amount.currency).model_dump(mode="json"))
    row = Payout(id=new_id("payout"), tenant_id=tenant.id, amount_minor=minor,
                 currency=amount.currency, status="paid", created_at=utcnow())
    session.add(row)
    session.flush()
    ledger.post(session, tenant, "payout", row.id, amount.currency,
                [(ledger.PAYABLE, minor, 0), (ledger.CASH, 0, minor)])
    record_event(session, tenant.id, "payout.paid", row.id,
                 {"amount": amount.model_dump(mode="json")})
    return PayoutOut(id=row.id, amount=Money.of(minor, row.currency), status=row.status,
                     created_at=row.created_at)


def import_captures(session: Session, tenant: Tenant,
                    captures: list[tuple[str, int, str, dt.datetime]]) -> int:
    """Record payments captured elsewhere or in the past — (order id, amount, currency, when) —
    as succeeded intents with their ledger entries, in a few statements (an import of
    history, such as the demo's). The orders must already carry their paid state."""
    fee_bps = get_settings().platform_fee_bps
    intents, entries = [], []
    for order_id, minor, currency, at in captures:
        fee = bps(minor, fee_bps)
        pi_id = new_id("payment_intent", int(at.timestamp() * 1000))
        intents.append({"id": pi_id, "tenant_id": tenant.id, "order_id": order_id,
                        "amount_minor": minor, "currency": currency, "status": "succeeded",
                        "capture_method": "automatic", "captured_minor": minor,
                        "refunded_minor": 0, "fee_minor": fee, "provider": "import",
                        "provider_ref": None, "payment_method": {"type": "imported"},
                        "failure_code": None, "failure_message": None, "created_at": at,
                        "updated_at": at})
        entries.append(("capture", pi_id, currency, [
            (ledger.CASH, minor, 0), (ledger.PAYABLE, 0, minor - fee), (ledger.FEES, 0, fee)],
            f"order {order_id}", at))
    if intents:
        session.connection().execute(insert(PaymentIntent.__table__), intents)
        ledger.post_many(session, tenant, entries)
    return len(intents)


# the ledger's reads, for callers outside payments (the console's order and payments pages)
list_journal_entries = ledger.list_entries
balances = ledger.balances


# --- a person's data (haina.privacy) ------------------------------------------------------------

def export_payments(session: Session, tenant: Tenant, order_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The payment intents and refunds of the orders; the method as stored: its type, the
    card's brand and last four digits (the number is never stored)."""
    return {
        "payment_intents": export_rows(session, PaymentIntent.__table__, tenant.id, "order_id",
                                       order_ids),
        "refunds": export_rows(session, Refund.__table__, tenant.id, "order_id", order_ids),
    }


def erase_payments(session: Session, tenant: Tenant, order_ids: Sequence[str]) -> int:
    """Keep only the method's type (brand and last four digits go); amounts, provider
    references and the ledger stay (the books). Returns how many intents changed."""
    changed = 0
    for start in range(0, len(order_ids), 500):
        for pi in session.scalars(select(PaymentIntent).where(
                PaymentIntent.tenant_id == tenant.id,
                PaymentIntent.order_id.in_(list(order_ids[start:start + 500])))):
            kept = {"type": (pi.payment_method or {}).get("type", "card")}
            if pi.payment_method != kept:
                pi.payment_method = kept
                changed += 1
    session.flush()
    return changed
