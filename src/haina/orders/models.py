from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, JSONType, Minor, UTCDateTime, tenant_fk


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_tenant_member", "tenant_id", "member_id"),
        Index("ix_orders_status_hold", "status", "hold_expires_at"),
        Index("ix_orders_tenant_status", "tenant_id", "status"),
        PrimaryKeyConstraint("tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str | None] = mapped_column(String(40))
    # web | mini_program | pos | app | marketplace: one member's history is whole across them
    channel: Mapped[str] = mapped_column(String(16))
    app_id: Mapped[str | None] = mapped_column(String(40))
    location_id: Mapped[str | None] = mapped_column(String(40))
    # pending_payment → paid → fulfilled → completed; cancelled; refunded (fully)
    status: Mapped[str] = mapped_column(String(20))
    refund_status: Mapped[str] = mapped_column(String(10), default="none")  # none|partial|full
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_minor: Mapped[int] = mapped_column(Minor)
    discount_minor: Mapped[int] = mapped_column(Minor)
    shipping_minor: Mapped[int] = mapped_column(Minor)
    tax_minor: Mapped[int] = mapped_column(Minor)
    total_minor: Mapped[int] = mapped_column(Minor)
    paid_minor: Mapped[int] = mapped_column(Minor, default=0)
    refunded_minor: Mapped[int] = mapped_column(Minor, default=0)
    points_redeemed: Mapped[int] = mapped_column(Integer, default=0)
    coupon_code: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    note: Mapped[str | None] = mapped_column(String(1000))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    hold_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    fulfilled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(String(200))


class OrderLine(Base):
    """A line with the price as it was when the order was placed (a snapshot)."""

    __tablename__ = "order_lines"
    __table_args__ = (
        Index("ix_order_lines_tenant_order", "tenant_id", "order_id"),
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("order_id", "orders"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str] = mapped_column(String(40))
    variant_id: Mapped[str] = mapped_column(String(40))
    product_id: Mapped[str] = mapped_column(String(40))
    sku: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    unit_price_minor: Mapped[int] = mapped_column(Minor)
    quantity: Mapped[int] = mapped_column(Integer)
    total_minor: Mapped[int] = mapped_column(Minor)
    shipped_quantity: Mapped[int] = mapped_column(Integer, default=0)
    # the line's part of the order's discounts (promotions, coupon, points), allocated by the
    # pricing engine (marketing.pricing): a refund of this line returns total - discount
    discount_minor: Mapped[int] = mapped_column(Minor, server_default="0")
    # a service fee's line (the fitting of the goods): the booking it pays for; no stock, not
    # shipped, done when the booking is (``service_status`` on reads)
    booking_id: Mapped[str | None] = mapped_column(String(40))


class Shipment(Base):
    __tablename__ = "shipments"
    __table_args__ = (
        Index("ix_shipments_tenant_order", "tenant_id", "order_id"),
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("order_id", "orders"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str] = mapped_column(String(40))
    carrier: Mapped[str] = mapped_column(String(64))
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
