"""Orders: cart → order with price snapshots and totals, the order state machine, shipments.

``place_order`` is the hot path and runs in one transaction: look up the SKUs (one query),
claim stock with one conditional UPDATE per distinct SKU, and insert the order, its lines, the
reservations and the ``order.created`` event (one statement each). An unpaid order holds its
stock until ``hold_expires_at``; the worker then cancels it (``haina.checkout``) and the stock
comes back.

The states and the events that move between them are one table, ``ORDER_LIFECYCLE``
(``orders/lifecycle.py``); every change here is checked against it. Orders know nothing of
payments: payments tells orders what it captured or refunded, and flows that need both (cancel
a paid order) live in ``haina.checkout``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from haina.catalog import service as catalog
from haina.catalog.schemas import VariantRef
from haina.core import caches
from haina.core.context import Tenant
from haina.core.db import deferred_inserts, insert_rows, tenant_row, utcnow
from haina.core.errors import Invalid, InvalidState, NotFound
from haina.core.events import list_events, record_event
from haina.core.ids import new_id
from haina.core.money import MAX_AMOUNT, Money, bps, to_minor
from haina.core.pagination import Page, paginate
from haina.core.trusted import construct
from haina.crossborder.schemas import CrossborderOrderOut
from haina.inventory import service as inventory
from haina.inventory.schemas import Claim
from haina.marketing.schemas import Cart, CartLine, PricedCart
from haina.orders.lifecycle import ORDER_LIFECYCLE as ORDER_LIFECYCLE
from haina.orders.models import Order, OrderLine, Shipment
from haina.orders.personal import erase_orders as erase_orders
from haina.orders.personal import export_orders as export_orders
from haina.orders.personal import member_order_ids as member_order_ids
from haina.orders.personal import order_personal_values as order_personal_values
from haina.orders.schemas import (
    AddressOut,
    LineIn,
    OrderCreate,
    OrderLineOut,
    OrderLineRecord,
    OrderOut,
    OrderRecord,
    OrderState,
    SalesPeriodOut,
    ServiceFee,
    ShipmentIn,
    ShipmentOut,
    TimelineEntry,
    Totals,
)
from haina.platform import service as platform
from haina.platform.schemas import TenantSettings

_INSERT_ORDER, _INSERT_LINES = insert(Order.__table__), insert(OrderLine.__table__)


# ---------------------------------------------------------------- pricing (one place)

def shipping_fee(settings: TenantSettings, currency: str, subtotal: int, channel: str) -> int:
    """The merchant's flat fee (none at a POS counter or above the free-shipping threshold),
    before any free-shipping promotion."""
    if channel == "pos":
        return 0
    if settings.free_shipping_over is not None and \
            subtotal >= to_minor(settings.free_shipping_over, currency):
        return 0
    return to_minor(settings.shipping_fee, currency)


def _totals(settings: TenantSettings, subtotal: int, discount: int,
            shipping: int) -> dict[str, int]:
    # tax is added on (subtotal − discount + shipping) at the merchant's rate, rounded
    # half-even once
    taxed = subtotal - discount + shipping
    tax = bps(taxed, settings.tax_rate_bps)
    return {"subtotal": subtotal, "discount": discount, "shipping": shipping, "tax": tax,
            "total": taxed + tax}


def totals(settings: TenantSettings, priced: PricedCart) -> dict[str, int]:
    """Totals in minor units of a cart the pricing engine priced."""
    return _totals(settings, priced.subtotal, priced.discount, priced.shipping)


def price_lines(settings: TenantSettings, currency: str, subtotal: int, discount: int,
                channel: str) -> dict[str, int]:
    """Totals of goods priced outside the engine (an import of history, the demo's): one
    discount amount, the merchant's shipping fee, tax."""
    discount = min(discount, subtotal)
    return _totals(settings, subtotal, discount,
                   shipping_fee(settings, currency, subtotal, channel))


def cart_of(refs, lines: Sequence[LineIn], currency: str, shipping: int,
            member_id: str | None, tier: tuple[str | None] | None = None) -> Cart:
    """The pricing engine's cart; ``tier`` (a 1-tuple) when the member's tier was read
    already (placing an order reads it with the member)."""
    return Cart(tuple(CartLine(ln.sku, refs[ln.sku].product_id, refs[ln.sku].category_id,
                               refs[ln.sku].price_minor, ln.quantity) for ln in lines),
                currency, shipping, member_id,
                tier_id=tier[0] if tier else None, tier_known=tier is not None)


def first_order(session: Session, tenant: Tenant, member_id: str) -> Callable[[], bool]:
    """Whether the member (and every member merged into it) has no order yet but cancelled
    ones: asked by the pricing engine only when a first-order promotion could apply."""
    def ask() -> bool:
        from haina.members import service as members
        ids = members.member_history_ids(session, tenant, member_id)
        return session.scalar(select(Order.id).where(
            Order.tenant_id == tenant.id, Order.member_id.in_(ids),
            Order.status != "cancelled").limit(1)) is None
    return ask


def quote(session: Session, tenant: Tenant, lines: Sequence[LineIn], *,
          member_id: str | None = None, coupon: str | None = None,
          channel: str = "web", check_size: bool = True,
          resolved: tuple[dict[str, VariantRef], str] | None = None,
          member_resolved: bool = False) -> tuple[PricedCart, dict[str, int]]:
    """Price lines as an order placed now would be (nothing claimed): the pricing engine's
    result and the totals. Carts and ``POST /v1/carts/price`` use it; a cart is priced
    whatever its size (its checkout refuses an order too large).

    A caller that has just resolved the lines (:func:`resolve_lines`' refs and currency, in
    this transaction) passes them as ``resolved``, and one that has just followed the
    member's merges (``members.resolve_buyer_id``) says ``member_resolved``: neither is read
    again (a cart's answer is priced right after carts read its SKUs)."""
    from haina.marketing import service as marketing
    settings = platform.tenant_settings(session, tenant)
    refs, currency = resolved if resolved is not None else resolve_lines(session, tenant, lines)
    subtotal = sum(refs[ln.sku].price_minor * ln.quantity for ln in lines)
    if check_size:
        _check_size(subtotal, currency)
    tier = None
    if member_id and not member_resolved:  # the survivor and its tier (kept per process)
        from haina.members import service as members
        member_id, tier_id = members.resolve_buyer(session, tenant, member_id,
                                                   refuse_erased=False)
        tier = (tier_id,)
    cart = cart_of(refs, lines, currency, shipping_fee(settings, currency, subtotal, channel),
                   member_id, tier)
    priced = marketing.price_cart(session, tenant, cart, coupon,
                                  first_order=first_order(session, tenant, member_id)
                                  if member_id else None)
    return priced, totals(settings, priced)


#: the per-process caches (core.caches) that :func:`quote` reads: the catalogue's variants,
#: the live promotions, the buyers' tiers and merges
QUOTE_CACHES = ("catalog", "promotions", "buyers")


def quote_stamp(session: Session, tenant: Tenant) -> tuple | None:
    """Where what :func:`quote` reads from this process's caches stands now (taken before
    quoting): two equal stamps mean none of it changed for the tenant in between, as far as
    this process heard. None when the caches are not kept (SQLite, a listener down): then
    nothing tells. The tenant's settings come with the ``Tenant`` (a credential's): compare
    that object too; the time (a promotion's window) is the caller's to bound."""
    stamps = tuple(caches.generation(session, name, tenant.id) for name in QUOTE_CACHES)
    return None if None in stamps else stamps


def totals_of(t: dict[str, int], currency: str) -> Totals:
    # built from our own rows: construct without re-validating (on every order's path)
    return construct(Totals, **{k: Money.of(v, currency) for k, v in t.items()})


def resolve_lines(session: Session, tenant: Tenant, lines: Sequence[LineIn]):
    """The catalogue entries of ``lines`` by SKU and their one currency (404 for an unknown
    SKU, 422 for one not for sale or for lines in several currencies)."""
    refs = catalog.variants_by_sku(session, tenant, [line.sku for line in lines])
    missing = [line.sku for line in lines if line.sku not in refs]
    if missing:
        raise NotFound(f"no SKU {missing[0]!r}", slug="sku-not-found", sku=missing[0])
    inactive = [line.sku for line in lines if refs[line.sku].status != "active"]
    if inactive:
        raise Invalid(f"SKU {inactive[0]!r} is not for sale", slug="sku-not-for-sale",
                      sku=inactive[0])
    currencies = {refs[line.sku].currency for line in lines}
    if len(currencies) > 1:
        raise Invalid("all lines of an order must be priced in one currency",
                      slug="mixed-currencies")
    return refs, currencies.pop()


# ---------------------------------------------------------------- placing orders

def _check_size(subtotal_minor: int, currency: str) -> None:
    """An order's goods are worth at most 10^12 major units (the largest amount a request may
    carry): lines within their own bounds (10^12 a unit, 10^4 units, 200 lines) could add up
    past a 64-bit integer."""
    if subtotal_minor > to_minor(MAX_AMOUNT, currency):
        raise Invalid(f"an order's goods are worth at most {MAX_AMOUNT:f} (10^12) {currency}",
                      slug="order-too-large")


def _refuse_crossborder_goods(refs, lines: Sequence[LineIn]) -> None:
    """An order without a ``crossborder`` block holds general-trade goods only: 422
    ``crossborder-buyer-required`` for cross-border products (sold only with the buyer's
    identity, quota and tax), ``crossborder-product-suspended`` for those whose brand lost its
    qualification; both name the lines. Read from the variants query's ``trade_mode``: no
    statement of its own."""
    marked = [ln.sku for ln in lines if refs[ln.sku].trade_mode is not None]
    if not marked:
        return
    named = [{"sku": sku, "product_id": refs[sku].product_id, "trade_mode": refs[sku].trade_mode}
             for sku in dict.fromkeys(marked)]
    suspended = [n for n in named if n["trade_mode"] == "suspended"]
    if suspended:
        raise Invalid(f"SKU {suspended[0]['sku']!r} is not for sale: its foreign brand's "
                      "qualification was revoked or ran out", slug="crossborder-product-suspended",
                      lines=suspended)
    raise Invalid(f"SKU {named[0]['sku']!r} is a cross-border product: its order names the "
                  "buyer (crossborder.buyer: name, ID number, phone), which POST /v1/orders "
                  "carries (a cart's checkout does not)", slug="crossborder-buyer-required",
                  lines=named)


def new_order_id() -> str:
    """An id for an order about to be placed (:func:`place_order`'s ``order_id``)."""
    return new_id("order")


def place_order(session: Session, tenant: Tenant, data: OrderCreate,
                fees: Sequence[ServiceFee] = (),
                ship_to: dict[str, Any] | None = None, order_id: str | None = None) -> OrderOut:
    """Price, claim stock and record an order awaiting payment, in the caller's transaction;
    with ``fees``, a line for each service fee (see ``_fee_lines``); with ``ship_to``, the
    booked service point's address (o2o) in place of the buyer's; ``order_id``: the id the
    caller chose (:func:`new_order_id`), e.g. to claim a cart for it first."""
    settings = platform.tenant_settings(session, tenant)
    refs, currency = resolve_lines(session, tenant, data.lines)
    if data.crossborder is None:
        _refuse_crossborder_goods(refs, data.lines)
    _check_size(sum(refs[ln.sku].price_minor * ln.quantity for ln in data.lines), currency)
    now = utcnow()
    order_id = order_id or new_order_id()
    member_id, tier = None, None
    if data.member_id:  # the buyer (404 absent, 409 erased) and its tier, in one read
        from haina.members import service as members
        member_id, tier_id = members.resolve_buyer(session, tenant, data.member_id)
        tier = (tier_id,)
    hold_minutes = settings.order_hold_minutes or _default_hold_minutes()
    hold_until = now + dt.timedelta(minutes=hold_minutes)
    with deferred_inserts(session):  # PostgreSQL: reservations, order, lines, event in one go
        return _claim_and_record(session, tenant, data, refs, currency, settings, order_id,
                                 member_id, now, hold_until, fees, tier, ship_to)


def _claim_and_record(session: Session, tenant: Tenant, data: OrderCreate, refs, currency: str,
                      settings: TenantSettings, order_id: str, member_id: str | None,
                      now: dt.datetime, hold_until: dt.datetime,
                      fees: Sequence[ServiceFee] = (),
                      tier: tuple[str | None] | None = None,
                      ship_to: dict[str, Any] | None = None) -> OrderOut:
    inventory.reserve_stock(
        session, tenant,
        [Claim(variant_id=refs[ln.sku].id, quantity=ln.quantity, sku=ln.sku) for ln in data.lines],
        order_id=order_id, expires_at=hold_until, location_id=data.location_id)
    line_rows: list[OrderLineRecord] = []
    for ln in data.lines:
        ref = refs[ln.sku]
        line_rows.append({
            "id": new_id("order_line"), "tenant_id": tenant.id, "order_id": order_id,
            "variant_id": ref.id, "product_id": ref.product_id, "sku": ref.sku,
            "title": ref.title if ref.title == ref.product_title else f"{ref.product_title} {ref.title}",
            "unit_price_minor": ref.price_minor, "quantity": ln.quantity,
            "total_minor": ref.price_minor * ln.quantity, "shipped_quantity": 0,
            "discount_minor": 0})
    subtotal = sum(r["total_minor"] for r in line_rows)
    points_discount = 0
    if data.points:
        from haina.members import service as members
        assert member_id is not None  # OrderCreate refuses points without a member_id
        points_discount = members.redeem_points(session, tenant, member_id, data.points, order_id)
    # the pricing engine (marketing): promotions and the coupon, claimed after stock and points
    from haina.marketing import service as marketing
    cart = cart_of(refs, data.lines, currency,
                   shipping_fee(settings, currency, subtotal, data.channel), member_id, tier)
    priced, coupon_code = marketing.price_and_claim(
        session, tenant, cart, data.coupon, order_id=order_id,
        first_order=first_order(session, tenant, member_id) if member_id else None, now=now)
    if points_discount > subtotal - priced.discount:
        raise Invalid("the points redeemed are worth more than the goods",
                      slug="too-many-points")
    priced = marketing.with_points(priced, points_discount)
    for r, pl in zip(line_rows, priced.lines, strict=True):
        r["discount_minor"] = pl.discount
    t = totals(settings, priced)
    if fees:  # service fees (an appointment's): only orders that carry bookings come here
        fee_total = _fee_lines(session, tenant, data, fees, currency, order_id, line_rows)
        t = _totals(settings, priced.subtotal + fee_total, priced.discount, priced.shipping)
    xb = None
    if data.crossborder:  # claimed last (its quota row after coupon and budgets: see crossborder)
        from haina.crossborder import service as crossborder
        net = [(r["product_id"], r["total_minor"] - r["discount_minor"]) for r in line_rows]
        xb = crossborder.claim_order(
            session, tenant, data.crossborder, order_id=order_id, lines=net,
            discount_minor=max(t["discount"] - sum(r["discount_minor"] for r in line_rows), 0),
            shipping_minor=t["shipping"], currency=currency, now=now)
        # the composite tax replaces the merchant's tax
        t["total"] += xb.tax_minor - t["tax"]
        t["tax"] = xb.tax_minor
    order: OrderRecord = {
        "id": order_id, "tenant_id": tenant.id, "member_id": member_id, "channel": data.channel,
        "app_id": tenant.app_id, "location_id": data.location_id, "status": "pending_payment",
        "refund_status": "none", "currency": currency, "subtotal_minor": t["subtotal"],
        "discount_minor": t["discount"], "shipping_minor": t["shipping"], "tax_minor": t["tax"],
        "total_minor": t["total"], "paid_minor": 0, "refunded_minor": 0,
        "points_redeemed": data.points, "coupon_code": coupon_code,
        "address": ship_to or (data.address.model_dump() if data.address else None),
        "note": data.note,
        "metadata": data.metadata, "hold_expires_at": hold_until, "created_at": now,
        "updated_at": now}
    insert_rows(session, Order.__table__, dict(order))
    insert_rows(session, OrderLine.__table__, list(line_rows))  # type: ignore[arg-type]
    record_event(session, tenant.id, "order.created", order_id,
                 {"order_id": order_id, "status": "pending_payment",
                  "total": Money.of(t["total"], currency).model_dump(mode="json"),
                  "channel": data.channel, "member_id": member_id,
                  "lines": [{"sku": r["sku"], "quantity": r["quantity"]} for r in line_rows],
                  # goods shipped to a booked service point: its id and address (not personal)
                  **({"ship_to_point_id": ship_to["service_point_id"], "address": ship_to}
                     if ship_to else {})})
    return _out_from_values(order, line_rows, [], xb.record if xb else None)


def _fee_lines(session: Session, tenant: Tenant, data: OrderCreate, fees: Sequence[ServiceFee],
               currency: str, order_id: str, line_rows: list[OrderLineRecord]) -> int:
    """Add a line per service fee to ``line_rows`` (its catalogue SKU, the booking's price,
    quantity 1: no stock claimed, no promotion or coupon discount, taxed with the goods);
    return their sum."""
    if data.crossborder:
        raise Invalid("a cross-border order carries goods only: book the service apart",
                      slug="crossborder-service-fee")
    refs, fee_currency = resolve_lines(session, tenant, [LineIn(sku=f.sku, quantity=1)
                                                         for f in fees])
    for f in fees:
        if f.currency != currency or fee_currency != currency:
            raise Invalid(f"the service fee of booking {f.booking_id} is in {f.currency}, the "
                          f"order in {currency}", slug="mixed-currencies")
    for r in line_rows:
        r["booking_id"] = None  # every row of one insert has the same keys
    for f in fees:
        ref = refs[f.sku]
        line_rows.append({
            "id": new_id("order_line"), "tenant_id": tenant.id, "order_id": order_id,
            "variant_id": ref.id, "product_id": ref.product_id, "sku": ref.sku,
            "title": ref.product_title if ref.title == ref.product_title
            else f"{ref.product_title} {ref.title}",
            "unit_price_minor": f.price_minor, "quantity": 1, "total_minor": f.price_minor,
            "shipped_quantity": 0, "discount_minor": 0, "booking_id": f.booking_id})
    total = sum(f.price_minor for f in fees)
    _check_size(sum(r["total_minor"] for r in line_rows), currency)
    return total


def _default_hold_minutes() -> int:
    from haina.core.config import get_settings
    return get_settings().order_hold_minutes


def _line_out(r: OrderLineRecord | dict, currency: str) -> OrderLineOut:
    return construct(OrderLineOut, id=r["id"], variant_id=r["variant_id"],
                     product_id=r["product_id"], sku=r["sku"], title=r["title"],
                     unit_price=Money.of(r["unit_price_minor"], currency),
                     quantity=r["quantity"], total=Money.of(r["total_minor"], currency),
                     shipped_quantity=r["shipped_quantity"],
                     discount=Money.of(r.get("discount_minor") or 0, currency),
                     booking_id=r.get("booking_id"),
                     service_status="scheduled" if r.get("booking_id") else None)


def _out_from_values(o: OrderRecord | dict, lines: Sequence[OrderLineRecord | dict],
                     shipments: list[ShipmentOut],
                     crossborder: CrossborderOrderOut | None = None) -> OrderOut:
    c = o["currency"]
    return construct(
        OrderOut, object="order", id=o["id"], status=o["status"],
        refund_status=o["refund_status"], channel=o["channel"], member_id=o["member_id"], location_id=o["location_id"], currency=c,
        lines=[_line_out(r, c) for r in lines],
        totals=totals_of({"subtotal": o["subtotal_minor"], "discount": o["discount_minor"],
                        "shipping": o["shipping_minor"], "tax": o["tax_minor"],
                        "total": o["total_minor"]}, c),
        paid=Money.of(o["paid_minor"], c), refunded=Money.of(o["refunded_minor"], c),
        points_redeemed=o["points_redeemed"], coupon=o["coupon_code"],
        address=AddressOut(**o["address"]) if o["address"] else None,
        ship_to_point_id=o["address"].get("service_point_id") if o["address"] else None,
        note=o["note"],
        metadata=o["metadata"], hold_expires_at=o["hold_expires_at"], created_at=o["created_at"],
        paid_at=o.get("paid_at"), fulfilled_at=o.get("fulfilled_at"),
        completed_at=o.get("completed_at"), cancelled_at=o.get("cancelled_at"),
        cancel_reason=o.get("cancel_reason"), shipments=shipments, crossborder=crossborder)


def _row_values(o: Order) -> dict:
    values = {c.key: getattr(o, c.key) for c in Order.__mapper__.column_attrs}
    values["metadata"] = values.pop("metadata_")
    return values


def _line_values(r: OrderLine) -> dict:
    return {c.key: getattr(r, c.key) for c in OrderLine.__mapper__.column_attrs}


def _shipment_out(s: Shipment) -> ShipmentOut:
    return ShipmentOut(id=s.id, order_id=s.order_id, carrier=s.carrier,
                       tracking_number=s.tracking_number, lines=s.lines, created_at=s.created_at)


def _orders_out(session: Session, tenant: Tenant, orders: Sequence[Order]) -> list[OrderOut]:
    if not orders:
        return []
    ids = [o.id for o in orders]
    lines: dict[str, list[dict]] = {i: [] for i in ids}
    for r in session.scalars(select(OrderLine).where(OrderLine.tenant_id == tenant.id,
                                                     OrderLine.order_id.in_(ids))
                             .order_by(OrderLine.id)):
        lines[r.order_id].append(_line_values(r))
    shipments: dict[str, list[ShipmentOut]] = {i: [] for i in ids}
    for s in session.scalars(select(Shipment).where(Shipment.tenant_id == tenant.id,
                                                    Shipment.order_id.in_(ids))
                             .order_by(Shipment.id)):
        shipments[s.order_id].append(_shipment_out(s))
    from haina.crossborder import service as crossborder
    xb = crossborder.order_records(session, tenant, ids)
    out = [_out_from_values(_row_values(o), lines[o.id], shipments[o.id], xb.get(o.id))
           for o in orders]
    _service_statuses(session, tenant, out)
    return out


#: a booking's status → its fee line's service status
SERVICE_STATUS = {"held": "scheduled", "confirmed": "scheduled", "checked_in": "scheduled",
                  "completed": "done", "cancelled": "cancelled", "expired": "cancelled"}


def _service_statuses(session: Session, tenant: Tenant, orders: Sequence[OrderOut]) -> None:
    """A service fee's line is done when its booking is completed: read from the booking
    (kept by the merchant, or by a partner installer), only for orders that have such lines."""
    fee_lines = [ln for o in orders for ln in o.lines if ln.booking_id is not None]
    if not fee_lines:
        return
    from haina.o2o import service as o2o
    for ln in fee_lines:
        assert ln.booking_id is not None
        ln.service_status = SERVICE_STATUS.get(
            o2o.get_booking(session, tenant, ln.booking_id).status)


def _order(session: Session, tenant: Tenant, order_id: str, lock: bool = False) -> Order:
    return tenant_row(session, tenant.id, Order, order_id, "order", lock=lock)


def get_order(session: Session, tenant: Tenant, order_id: str) -> OrderOut:
    return _orders_out(session, tenant, [_order(session, tenant, order_id)])[0]


def list_orders(session: Session, tenant: Tenant, *, status: str | None = None,
                member_id: str | None = None, channel: str | None = None,
                created_gte: dt.datetime | None = None, created_lt: dt.datetime | None = None,
                limit: int = 50, cursor: str | None = None) -> Page[OrderOut]:
    """Newest first. ``member_id`` includes the orders of members merged into that member, on
    every channel."""
    stmt = select(Order).where(Order.tenant_id == tenant.id)
    if status:
        stmt = stmt.where(Order.status == status)
    if channel:
        stmt = stmt.where(Order.channel == channel)
    if member_id:
        from haina.members import service as members
        stmt = stmt.where(Order.member_id.in_(members.member_history_ids(session, tenant, member_id)))
    if created_gte:
        stmt = stmt.where(Order.created_at >= created_gte)
    if created_lt:
        stmt = stmt.where(Order.created_at < created_lt)
    page = paginate(session, stmt, Order.id, limit=limit, cursor=cursor, convert=lambda o: o)
    return Page[OrderOut](data=_orders_out(session, tenant, page.data), has_more=page.has_more,
                          next_cursor=page.next_cursor)


def timeline(session: Session, tenant: Tenant, order_id: str) -> list[TimelineEntry]:
    """What happened to an order, oldest first (its events in the outbox)."""
    _order(session, tenant, order_id)
    entries: list[TimelineEntry] = []
    cursor = None
    while True:
        page = list_events(session, tenant, subject_id=order_id, limit=200, cursor=cursor)
        entries += [TimelineEntry(at=e.created_at, type=e.type, data=e.data) for e in page.data]
        if not page.has_more:
            break
        cursor = page.next_cursor
    return list(reversed(entries))


# ---------------------------------------------------------------- state changes

def _move(session: Session, tenant: Tenant, order: Order, event: str, to: str | None = None,
          **data) -> None:
    """Record ``event`` of ``order``, moving it to ``to`` (default: where it is) if the
    lifecycle table allows that."""
    to = to or order.status
    ORDER_LIFECYCLE.check(event, order.status, to)
    order.status = to
    # the order and its buyer travel with the event: a webhook receiver gets the data alone
    record_event(session, tenant.id, event, order.id,
                 {"order_id": order.id, "member_id": order.member_id, "status": to, **data})


def _state(order: Order) -> OrderState:
    return OrderState(id=order.id, status=order.status, currency=order.currency,
                      total_minor=order.total_minor, paid_minor=order.paid_minor,
                      refunded_minor=order.refunded_minor, member_id=order.member_id)


def lock_order(session: Session, tenant: Tenant, order_id: str) -> OrderState:
    """Lock the order's row for a change that spans modules and tell where it stands.

    Lock order, wherever an order and its payments change together: the order row first,
    then its payment intents, then the merchant's row (refunds, payouts), then stock, then
    the member's rows (points). Captures, refunds and cancellations all follow it, so none of
    them can deadlock another."""
    return _state(_order(session, tenant, order_id, lock=True))


def mark_paid(session: Session, tenant: Tenant, order_id: str, amount_minor: int,
              payment_intent_id: str) -> None:
    """Payments calls this when a capture succeeds: the stock hold stops expiring and the
    member earns points on what was paid."""
    order = _order(session, tenant, order_id, lock=True)
    if not ORDER_LIFECYCLE.may("order.paid", order.status):
        raise InvalidState(f"order {order.id} is {order.status}, not awaiting payment",
                           status_now=order.status)
    now = utcnow()
    order.paid_minor, order.paid_at, order.updated_at = amount_minor, now, now
    order.hold_expires_at = None
    inventory.keep_order_stock(session, tenant, order.id)
    if order.member_id:
        from haina.members import service as members
        members.record_purchase(session, tenant, order.member_id, order.id, amount_minor,
                                order.currency, now)
    _move(session, tenant, order, "order.paid", "paid",
          amount=Money.of(amount_minor, order.currency).model_dump(mode="json"),
          payment_intent_id=payment_intent_id)
    session.flush()


def record_refund(session: Session, tenant: Tenant, order_id: str, amount_minor: int,
                  refund_id: str) -> None:
    """Payments calls this after a refund (not one made by cancelling the order): partial or
    full, the member's spend and points follow; a full refund of goods not yet shipped puts
    them back in stock and makes the order ``refunded``."""
    order = _order(session, tenant, order_id, lock=True)
    if not ORDER_LIFECYCLE.may("order.refunded", order.status):
        raise InvalidState(f"an order that is {order.status} cannot be refunded",
                           status_now=order.status)
    now = utcnow()
    _add_refund(session, tenant, order, amount_minor, now)
    to = order.status
    from haina.crossborder import service as crossborder
    if order.refund_status == "full":
        if order.status == "paid":
            inventory.release_order_stock(session, tenant, order.id)
        to = "refunded"
    # the quota comes back in proportion to what was refunded (all of it when in full)
    crossborder.return_quota(session, tenant, order.id, refunded_minor=order.refunded_minor,
                             paid_minor=order.paid_minor)
    _move(session, tenant, order, "order.refunded", to, refund_id=refund_id,
          amount=Money.of(amount_minor, order.currency).model_dump(mode="json"),
          refund_status=order.refund_status)
    session.flush()


def _add_refund(session: Session, tenant: Tenant, order: Order, amount_minor: int,
                now: dt.datetime) -> None:
    order.refunded_minor += amount_minor
    order.refund_status = "full" if order.refunded_minor >= order.paid_minor else "partial"
    order.updated_at = now
    if order.member_id:
        from haina.members import service as members
        members.record_refund(session, tenant, order.member_id, order.id, amount_minor, now)


def cancel(session: Session, tenant: Tenant, order_id: str, reason: str,
           refunds: Sequence[tuple[str, int]] = ()) -> OrderOut:
    """Cancel an unpaid order, or a paid one whose money ``refunds`` (refund id, amount) gave
    back in full: stock and points come back and one ``order.cancelled`` event tells it all.
    ``haina.checkout`` runs this after voiding or refunding the order's payments."""
    order = _order(session, tenant, order_id, lock=True)
    if not ORDER_LIFECYCLE.may("order.cancelled", order.status):
        raise InvalidState(f"an order that is {order.status} cannot be cancelled",
                           status_now=order.status)
    now = utcnow()
    refunded = sum(amount for _, amount in refunds)
    if refunded:
        _add_refund(session, tenant, order, refunded, now)
    if order.paid_minor > order.refunded_minor:
        raise InvalidState(f"order {order.id} still holds money paid; refund it before "
                           "cancelling", slug="order-not-refunded", status_now=order.status)
    inventory.release_order_stock(session, tenant, order.id)
    if order.points_redeemed and order.member_id and order.paid_minor == 0:
        from haina.members import service as members
        members.restore_points(session, tenant, order.member_id, order.id)
    # a cancelled order (unpaid, or refunded in full) gives back its coupon and budgets
    from haina.marketing import service as marketing
    marketing.release(session, tenant, order.id)
    from haina.crossborder import service as crossborder
    crossborder.release_order(session, tenant, order.id)  # the quota, last (lock order)
    order.cancelled_at, order.cancel_reason = now, reason
    order.updated_at, order.hold_expires_at = now, None
    extra = {}
    if refunds:
        extra = {"refund_ids": [rid for rid, _ in refunds],
                 "refunded": Money.of(refunded, order.currency).model_dump(mode="json")}
    _move(session, tenant, order, "order.cancelled", "cancelled", reason=reason, **extra)
    session.flush()
    return get_order(session, tenant, order.id)


def add_shipment(session: Session, tenant: Tenant, order_id: str, data: ShipmentIn) -> OrderOut:
    """Ship some or all of a paid order; when every unit has left, it is ``fulfilled``."""
    order = _order(session, tenant, order_id, lock=True)
    if not ORDER_LIFECYCLE.may("order.shipped", order.status):
        raise InvalidState(f"an order that is {order.status} cannot be shipped",
                           status_now=order.status)
    lines = session.scalars(select(OrderLine).where(OrderLine.tenant_id == tenant.id,
                                                    OrderLine.order_id == order.id)
                            .order_by(OrderLine.id)).all()
    wanted: dict[str, int] = {}
    lines = [ln for ln in lines if ln.booking_id is None]  # a service fee is not shipped
    if data.lines is None:
        wanted = {ln.sku: ln.quantity - ln.shipped_quantity for ln in lines
                  if ln.quantity > ln.shipped_quantity}
    else:
        for ln in data.lines:
            wanted[ln.sku] = wanted.get(ln.sku, 0) + ln.quantity
    if not wanted:
        raise InvalidState("everything on this order has already shipped", slug="nothing-to-ship")
    shipped = []
    by_variant: dict[str, int] = {}
    for sku, qty in wanted.items():
        left = qty
        for line in lines:
            if line.sku != sku or left <= 0:
                continue
            take = min(left, line.quantity - line.shipped_quantity)
            if take > 0:
                line.shipped_quantity += take
                left -= take
                by_variant[line.variant_id] = by_variant.get(line.variant_id, 0) + take
        if left > 0:
            raise Invalid(f"cannot ship {qty} × {sku}: more than remains on the order",
                          slug="ship-quantity-too-large", sku=sku)
        shipped.append({"sku": sku, "quantity": qty})
    inventory.ship_order_stock(session, tenant, order.id, by_variant)
    now = utcnow()
    shipment = Shipment(id=new_id("shipment"), tenant_id=tenant.id, order_id=order.id,
                        carrier=data.carrier, tracking_number=data.tracking_number, lines=shipped,
                        created_at=now)
    session.add(shipment)
    order.updated_at = now
    _move(session, tenant, order, "order.shipped", shipment_id=shipment.id,
          carrier=data.carrier, tracking_number=data.tracking_number, lines=shipped)
    if all(ln.shipped_quantity >= ln.quantity for ln in lines):
        order.fulfilled_at = now
        _move(session, tenant, order, "order.fulfilled", "fulfilled")
    session.flush()
    return get_order(session, tenant, order.id)


def complete_order(session: Session, tenant: Tenant, order_id: str) -> OrderOut:
    order = _order(session, tenant, order_id, lock=True)
    if not ORDER_LIFECYCLE.may("order.completed", order.status):
        raise InvalidState(f"only a fulfilled order can be completed; this one is {order.status}",
                           status_now=order.status)
    now = utcnow()
    order.completed_at, order.updated_at = now, now
    _move(session, tenant, order, "order.completed", "completed")
    session.flush()
    return get_order(session, tenant, order.id)


def expired_unpaid_orders(session: Session, now: dt.datetime,
                          batch: int = 500) -> list[tuple[str, str]]:
    """(order id, tenant id) of orders left unpaid past their hold time, oldest first."""
    return [(o, t) for o, t in session.execute(
        select(Order.id, Order.tenant_id).where(Order.status == "pending_payment",
                                                Order.hold_expires_at < now)
        .order_by(Order.id).limit(batch)).all()]


# ---------------------------------------------------------------- importing history

_RECORD_DEFAULTS: dict[str, object] = {
    "member_id": None, "app_id": None, "location_id": None, "refund_status": "none",
    "discount_minor": 0, "shipping_minor": 0, "tax_minor": 0, "paid_minor": 0,
    "refunded_minor": 0, "points_redeemed": 0, "coupon_code": None, "address": None,
    "note": None, "metadata": None, "hold_expires_at": None, "paid_at": None,
    "fulfilled_at": None, "completed_at": None, "cancelled_at": None, "cancel_reason": None}


def order_record(**fields) -> OrderRecord:
    """An :class:`OrderRecord` from the given columns and the defaults of the rest (an unknown
    column is a TypeError: the record type is the one placing orders writes)."""
    unknown = set(fields) - OrderRecord.__required_keys__ - OrderRecord.__optional_keys__
    if unknown:
        raise TypeError(f"not a column of orders: {', '.join(sorted(unknown))}")
    record = {**_RECORD_DEFAULTS, **fields}
    record.setdefault("updated_at", record.get("created_at"))
    missing = set(OrderRecord.__required_keys__) - set(record)
    if missing:
        raise TypeError(f"an order record needs {', '.join(sorted(missing))}")
    return record  # type: ignore[return-value]


def import_orders(session: Session, tenant: Tenant, orders: Sequence[OrderRecord],
                  lines: Sequence[OrderLineRecord]) -> int:
    """Write orders that happened elsewhere or in the past (an import of history, such as the
    demo's), with their lines, as given. No stock moves and no events are written."""
    if any(row["tenant_id"] != tenant.id for row in orders) or \
            any(row["tenant_id"] != tenant.id for row in lines):
        raise Invalid("an imported order or line belongs to another tenant")
    if orders:
        conn = session.connection()
        conn.execute(_INSERT_ORDER, [dict(row) for row in orders])
    if lines:  # (an empty executemany would insert one row of defaults)
        session.connection().execute(_INSERT_LINES, [dict(row) for row in lines])
    return len(orders)


# ---------------------------------------------------------------- bulk reads (analytics)

_O = Order.__table__.c


def _purchases(tenant: Tenant):
    """Orders of members that were paid and not refunded in full."""
    return and_(_O.tenant_id == tenant.id, _O.member_id.is_not(None), _O.paid_at.is_not(None),
                _O.paid_minor - _O.refunded_minor > 0)


def count_purchases(session: Session, tenant: Tenant, currency: str) -> tuple[int, int]:
    """How many purchases (see :func:`purchase_page`) are in ``currency``, and in others."""
    inside, other = session.execute(
        select(func.count().filter(_O.currency == currency),
               func.count().filter(_O.currency != currency)).where(_purchases(tenant))).one()
    return int(inside or 0), int(other or 0)


def purchase_page(session: Session, tenant: Tenant, currency: str, *, after: tuple[str, str],
                  limit: int) -> list[tuple]:
    """A page of the tenant's purchases in ``currency``: orders of members, paid, not refunded
    in full, as ``(order_id, member_id, paid_at, net_minor)`` (net of refunds), in
    ``(member_id, order_id)`` order after ``after`` (``("", "")`` to start).

    Keyset along the ``(tenant_id, member_id)`` index, so a page costs its own rows.
    ``paid_at`` is the driver's value as is (ISO text on SQLite, an aware datetime on
    PostgreSQL): a bulk reader parses a page at once (pandas) instead of a Python object per
    row. ``member_id`` is the id the order was placed under (see
    ``members.service.merge_survivors``)."""
    last_member, last_id = after
    return list(session.execute(
        select(_O.id, _O.member_id, type_coerce(_O.paid_at, NullType()),
               _O.paid_minor - _O.refunded_minor)
        .where(_purchases(tenant), _O.currency == currency, _O.member_id >= last_member,
               or_(_O.member_id > last_member, _O.id > last_id))
        .order_by(_O.member_id, _O.id).limit(limit)).all())


def paid_orders_of(session: Session, tenant: Tenant, member_ids: Sequence[str],
                   start: dt.datetime, end: dt.datetime
                   ) -> list[tuple[str, str, int, dt.datetime]]:
    """The orders of these members paid in ``[start, end)`` in the merchant's currency and not
    refunded in full, as ``(order_id, member_id, net_minor, paid_at)`` (net of refunds): a
    campaign's revenue per member, and per day."""
    ids = sorted(set(member_ids))
    found: list[tuple[str, str, int, dt.datetime]] = []
    for at in range(0, len(ids), 500):
        found.extend((o, m, int(n), p) for o, m, n, p in session.execute(
            select(_O.id, _O.member_id, _O.paid_minor - _O.refunded_minor, _O.paid_at).where(
                _purchases(tenant), _O.currency == tenant.currency,
                _O.member_id.in_(ids[at:at + 500]), _O.paid_at >= start, _O.paid_at < end)))
    return found


def sales_by_week(session: Session, tenant: Tenant, since: dt.date, until: dt.date,
                  zone: dt.tzinfo = dt.UTC) -> list[SalesPeriodOut]:
    """Weekly sales in the merchant's currency for the weeks (Monday to Sunday in ``zone``, the
    merchant's time zone) from the one holding ``since`` to the one holding ``until``, every
    week present (zeros included).

    Orders count in the week they were paid, net of refunds, if not refunded in full. A member
    is new in the week of their first paid order ever (before ``since`` too), returning in any
    later week they buy in. Two grouped reads: the paid orders of the window, and each buyer's
    first paid order."""
    first_week = since - dt.timedelta(days=since.weekday())
    last_week = until - dt.timedelta(days=until.weekday())
    start = dt.datetime.combine(first_week, dt.time(), zone)
    end = dt.datetime.combine(last_week + dt.timedelta(days=7), dt.time(), zone)
    paid = and_(_O.tenant_id == tenant.id, _O.paid_at.is_not(None), _O.currency == tenant.currency,
                _O.paid_minor - _O.refunded_minor > 0)
    weeks: dict[dt.date, list] = {}
    day = first_week
    while day <= last_week:
        weeks[day] = [0, 0, set(), set()]  # orders, net minor, new members, returning members
        day += dt.timedelta(days=7)
    rows = session.execute(select(_O.paid_at, _O.member_id, _O.paid_minor - _O.refunded_minor)
                           .where(paid, _O.paid_at >= start, _O.paid_at < end)).all()
    window_buyers = select(_O.member_id).where(paid, _O.paid_at >= start, _O.paid_at < end,
                                               _O.member_id.is_not(None))
    first = {member_id: _week_of(at, zone) for member_id, at in session.execute(
        select(_O.member_id, func.min(_O.paid_at))
        .where(paid, _O.member_id.in_(window_buyers.scalar_subquery()))
        .group_by(_O.member_id))}
    for at, member_id, net in rows:
        week = weeks[_week_of(at, zone)]
        week[0] += 1
        week[1] += int(net)
        if member_id is not None:
            week[2 if first.get(member_id) == _week_of(at, zone) else 3].add(member_id)
    return [SalesPeriodOut(start=w, orders=v[0], sales=Money.of(v[1], tenant.currency),
                           new_members=len(v[2]), returning_members=len(v[3] - v[2]))
            for w, v in weeks.items()]


def _week_of(at: dt.datetime | str, zone: dt.tzinfo = dt.UTC) -> dt.date:
    if isinstance(at, str):  # min() over the column on SQLite: the stored text
        at = dt.datetime.fromisoformat(at)
    if at.tzinfo is None:  # stored in UTC
        at = at.replace(tzinfo=dt.UTC)
    day = at.astimezone(zone).date()
    return day - dt.timedelta(days=day.weekday())
