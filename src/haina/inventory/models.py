from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, UTCDateTime


class Location(Base):
    """A place stock is kept: a warehouse or a physical store."""

    __tablename__ = "locations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        PrimaryKeyConstraint("tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # warehouse | store
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    address: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class StockLevel(Base):
    """On hand and reserved units of one variant at one location; available = on_hand − reserved.

    The CHECK constraints are the last line of defence: every change is a conditional UPDATE that
    cannot take stock below zero or sell what is already reserved."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
    )

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    variant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    location_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)


class Reservation(Base):
    """Units held for an order (or a cart or app) until paid, released or expired."""

    __tablename__ = "reservations"
    __table_args__ = (
        Index("ix_reservations_tenant_order", "tenant_id", "order_id"),
        Index("ix_reservations_status_expiry", "status", "expires_at"),
        PrimaryKeyConstraint("tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    variant_id: Mapped[str] = mapped_column(String(40))
    location_id: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))  # active | released | committed
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Adjustment(Base):
    """A change of on-hand stock with its reason; the history behind each level."""

    __tablename__ = "stock_adjustments"
    __table_args__ = (
        Index("ix_stock_adjustments_tenant_variant", "tenant_id", "variant_id"),
        PrimaryKeyConstraint("tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    variant_id: Mapped[str] = mapped_column(String(40))
    location_id: Mapped[str] = mapped_column(String(40))
    delta: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(500))
    order_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
