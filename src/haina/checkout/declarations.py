"""Declaring a cross-border order to customs: a flow across orders (the order's lines, totals,
address, payment) and crossborder (its buyer, products, messages), which sits below orders
and so cannot read orders itself."""

from __future__ import annotations

from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.crossborder import service as crossborder
from haina.crossborder.schemas import DeclarationIn, DeclarationOut, DeclaredLine, DeclaredOrder
from haina.orders import service as orders


def declare_order(session: Session, tenant: Tenant, data: DeclarationIn) -> DeclarationOut:
    order = orders.get_order(session, tenant, data.order_id)
    a = order.address
    address = " ".join(p for p in (a.province, a.city, a.district, a.line1, a.line2) if p) \
        if a else None

    def minor(m) -> int:
        return int(m.amount * 100)  # CNY: a cross-border order is priced in CNY

    facts = DeclaredOrder(
        order_id=order.id, status=order.status, member_id=order.member_id,
        currency=order.currency, subtotal_minor=minor(order.totals.subtotal),
        discount_minor=minor(order.totals.discount), shipping_minor=minor(order.totals.shipping),
        tax_minor=minor(order.totals.tax), total_minor=minor(order.totals.total),
        paid_minor=minor(order.paid), paid_at=order.paid_at,
        consignee_name=a.name if a else None, consignee_phone=a.phone if a else None,
        consignee_address=address,
        lines=[DeclaredLine(product_id=ln.product_id, sku=ln.sku, title=ln.title,
                            quantity=ln.quantity, unit_price_minor=minor(ln.unit_price),
                            total_minor=minor(ln.total)) for ln in order.lines])
    return crossborder.declare(session, tenant, facts, data)
