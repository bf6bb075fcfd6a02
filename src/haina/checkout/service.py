"""Flows that span modules, each one unit of work of the caller's.

Lock order (every flow here, and payments' captures and refunds, take locks in this order, so
no two of them can deadlock): the cart, then the order row, then its payment intents, then the
merchant's row (refunds), then stock, then the member's rows (points), then the order's
bookings and their slot rows (o2o).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from haina.carts import service as carts
from haina.checkout.schemas import AppointmentOrderIn, AppointmentOrderOut, CheckoutIn
from haina.core.context import Tenant
from haina.core.db import utcnow
from haina.core.errors import Invalid, InvalidState
from haina.core.trusted import construct
from haina.o2o import service as o2o
from haina.orders import service as orders
from haina.orders.schemas import OrderCreate, OrderOut, ServiceFee
from haina.payments import service as payments


def checkout_cart(session: Session, tenant: Tenant, cart_id: str, data: CheckoutIn) -> OrderOut:
    """Turn an open cart into an order (priced and holding stock); the cart is closed for it
    first, in the statement that locks it (reopened by the rollback if placing fails)."""
    order_id = orders.new_order_id()
    cart = carts.claim_for_checkout(session, tenant, cart_id, order_id)
    return orders.place_order(session, tenant, OrderCreate(
        lines=cart.lines, member_id=cart.member_id, channel=cart.channel,
        location_id=data.location_id, address=data.address, coupon=data.coupon,
        points=data.points, note=data.note), order_id=order_id)


def cancel_order(session: Session, tenant: Tenant, order_id: str,
                 reason: str = "requested_by_customer") -> OrderOut:
    """Cancel an unpaid or paid (not yet shipped) order.

    An authorisation still held is voided; money captured is refunded in full first (events
    of the payment: ``refund.succeeded``), then the order is cancelled (``order.cancelled``):
    stock and points come back."""
    order = orders.lock_order(session, tenant, order_id)
    if not orders.ORDER_LIFECYCLE.may("order.cancelled", order.status):
        raise InvalidState(f"an order that is {order.status} cannot be cancelled",
                           status_now=order.status)
    payments.void_open_intents(session, tenant, order.id)
    refunds = payments.refund_order(session, tenant, order.id, reason="order_cancelled")
    cancelled = orders.cancel(session, tenant, order.id, reason,
                              [(r.id, r.amount.minor) for r in refunds])
    o2o.release_for_order(session, tenant, order.id)  # its appointments' slots come back
    return cancelled


def place_with_bookings(session: Session, tenant: Tenant, data: AppointmentOrderIn,
                        order_id: str | None = None) -> AppointmentOrderOut:
    """Place an order and confirm its lines' held bookings in the same transaction: a hold
    that has expired (409 ``hold-expired``) or belongs to another order places nothing.
    ``order_id``: as for ``orders.place_order``."""
    if data.bookings:
        tenant.require("geo:write")  # bookings are the service points' data
    fees = []
    points: set[str] = set()
    for b in data.bookings:  # the fitting fee, priced from the booking (the point's price)
        booking = o2o.get_booking(session, tenant, b.booking_id)
        points.add(booking.service_point_id)
        if b.fee_sku is not None:
            price = booking.price
            fees.append(ServiceFee(sku=b.fee_sku, booking_id=b.booking_id,
                                   price_minor=price.minor, currency=price.currency))
    ship_to = _ship_to_point(session, tenant, data, points)
    order = orders.place_order(session, tenant, data.order(), fees, ship_to, order_id)
    goods = [o2o.GoodsComing(order_line_id=ln.id, sku=ln.sku, title=ln.title,
                             quantity=ln.quantity)
             for ln in order.lines if ln.booking_id is None] if ship_to else None
    booked = [o2o.confirm(session, tenant, b.booking_id, order_id=order.id, sku=b.sku,
                          goods=goods)
              for b in sorted(data.bookings, key=lambda b: b.booking_id)]
    # the order as placed (built from its own values), with its bookings: not validated again
    return construct(AppointmentOrderOut, **order.__dict__, bookings=booked)


def _ship_to_point(session: Session, tenant: Tenant, data: AppointmentOrderIn,
                   points: set[str]) -> dict[str, Any] | None:
    """Where an order with bookings ships (docs/o2o.md "Goods shipped to the booked point"):
    with no address from the buyer, to its bookings' one point, the whole order (goods
    without a booking of their own go with it: the other tire size of a staggered set);
    bookings at two points are then refused (one order has one destination: an order per
    point). An address the buyer gives is kept: the service is done there (nails at home, a
    mobile fitter) or the buyer takes the goods along. A cross-border order ships to its buyer
    as before: customs clear the parcel to the person they name."""
    if not points or data.crossborder is not None or data.address is not None:
        return None
    if len(points) > 1:
        raise Invalid(f"the bookings are at {len(points)} service points ({', '.join(sorted(points))}): "
                      "an order ships to one place; place one order per point (or give the "
                      "address the goods go to)",
                      slug="bookings-at-two-points", service_point_ids=sorted(points))
    return o2o.ship_to_address(session, tenant, next(iter(points)))


def cancel_expired_orders(session: Session, now: dt.datetime | None = None,
                          batch: int = 500) -> int:
    """Worker: cancel orders left unpaid past their hold time; their stock comes back."""
    now = now or utcnow()
    cancelled = 0
    for order_id, tenant_id in orders.expired_unpaid_orders(session, now, batch):
        tenant = Tenant(id=tenant_id, slug="")
        if orders.lock_order(session, tenant, order_id).status != "pending_payment":
            continue  # paid (or cancelled) since it was listed
        payments.void_open_intents(session, tenant, order_id)
        orders.cancel(session, tenant, order_id, "payment_timeout")
        o2o.release_for_order(session, tenant, order_id)
        cancelled += 1
    return cancelled
