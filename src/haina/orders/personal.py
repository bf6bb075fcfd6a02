"""A person's orders in a data request: what is exported, what erasure replaces.

Erasure keeps what the books and the tax office need — lines, totals, payments, refunds,
the region of the delivery address (tax jurisdiction) — and replaces the rest: the
recipient's name, phone and street, the note, the metadata, shipments' tracking numbers.
Private to the orders module; other modules call ``orders.service``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.personal import ERASED, export_rows
from haina.orders.models import Order, OrderLine, Shipment

#: address fields that name or locate the person (the rest is the region, kept for tax)
PERSONAL_ADDRESS_FIELDS = ("name", "phone", "line1", "line2", "postal_code")


def member_order_ids(session: Session, tenant: Tenant, member_ids: Sequence[str]) -> list[str]:
    """The ids of the orders placed under any of ``member_ids``, oldest first."""
    return list(session.scalars(select(Order.id).where(
        Order.tenant_id == tenant.id, Order.member_id.in_(list(member_ids))).order_by(Order.id)))


def export_orders(session: Session, tenant: Tenant, order_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    return {
        "orders": export_rows(session, Order.__table__, tenant.id, "id", order_ids),
        "order_lines": export_rows(session, OrderLine.__table__, tenant.id, "order_id", order_ids),
        "shipments": export_rows(session, Shipment.__table__, tenant.id, "order_id", order_ids),
    }


def order_personal_values(session: Session, tenant: Tenant, order_ids: Sequence[str]) -> list[str]:
    """The recipient's name, phone and street on the orders, and shipments' tracking numbers."""
    values: list[str] = []
    for address in session.scalars(select(Order.address).where(
            Order.tenant_id == tenant.id, Order.id.in_(list(order_ids)))):
        values += [str(address[f]) for f in PERSONAL_ADDRESS_FIELDS if (address or {}).get(f)]
    values += [t for t in session.scalars(select(Shipment.tracking_number).where(
        Shipment.tenant_id == tenant.id, Shipment.order_id.in_(list(order_ids)))) if t]
    return values


def erase_orders(session: Session, tenant: Tenant, order_ids: Sequence[str]) -> int:
    """Replace the personal fields of the orders (see the module's docstring); the totals and
    lines stay. Returns how many orders had something replaced. Idempotent."""
    changed = 0
    for start in range(0, len(order_ids), 500):
        chunk = list(order_ids[start:start + 500])
        for o in session.scalars(select(Order).where(Order.tenant_id == tenant.id,
                                                     Order.id.in_(chunk)).order_by(Order.id)):
            address = dict(o.address) if o.address else None
            if address:
                for f in PERSONAL_ADDRESS_FIELDS:
                    if address.get(f) and address[f] != ERASED:
                        # name, phone and street are required fields: a marker keeps the shape
                        address[f] = ERASED if f in ("name", "phone", "line1") else None
            if address != o.address or o.note or o.metadata_:
                o.address, o.note, o.metadata_ = address, None, None
                changed += 1
        for s in session.scalars(select(Shipment).where(Shipment.tenant_id == tenant.id,
                                                        Shipment.order_id.in_(chunk))):
            if s.tracking_number:
                s.tracking_number = None
    session.flush()
    return changed
