"""Cross-border tables. Keyed by the other modules' ids (a product's, an order's) without
foreign keys into their tables: modules meet through ids and services, never tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Index, Integer, PrimaryKeyConstraint, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, JSONType, Minor, UTCDateTime


class CrossborderProduct(Base):
    """A catalogue product's cross-border facts; ``id`` is the product's id."""

    __tablename__ = "crossborder_products"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),)

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    enabled: Mapped[bool] = mapped_column(Boolean)
    hs_code: Mapped[str] = mapped_column(String(10))
    origin_country: Mapped[str] = mapped_column(String(2))
    vat_rate: Mapped[str] = mapped_column(String(8))  # exact decimal text, e.g. "0.13"
    consumption_rate: Mapped[str] = mapped_column(String(8))
    net_weight_g: Mapped[int] = mapped_column(Integer)
    gross_weight_g: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))  # bonded | direct_mail
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CrossborderOrder(Base):
    """An order's cross-border part; ``id`` is the order's id. The buyer's ID number is kept
    sealed (``id_cipher`` under key ``id_key``), found by ``id_index`` (keyed HMAC) and shown
    as ``id_masked``."""

    __tablename__ = "crossborder_orders"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      Index("ix_crossborder_orders_identity", "tenant_id", "id_index"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    buyer_name: Mapped[str] = mapped_column(String(60))
    buyer_phone: Mapped[str] = mapped_column(String(24))
    id_key: Mapped[str] = mapped_column(String(16))
    id_cipher: Mapped[str] = mapped_column(Text)
    id_index: Mapped[str] = mapped_column(String(64))
    id_masked: Mapped[str] = mapped_column(String(18))
    dutiable_minor: Mapped[int] = mapped_column(Minor)
    tax_minor: Mapped[int] = mapped_column(Minor)
    tax_lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    quota_year: Mapped[int] = mapped_column(Integer)
    quota_status: Mapped[str] = mapped_column(String(16))  # claimed | released
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CrossborderQuota(Base):
    """What one identity (by blind index) has used of its yearly quota at one merchant; taken
    by a conditional UPDATE (``used_minor + :n <= :limit``), so it is never exceeded."""

    __tablename__ = "crossborder_quotas"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      UniqueConstraint("tenant_id", "id_index", "year",
                                       name="uq_crossborder_quotas_identity_year"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    id_index: Mapped[str] = mapped_column(String(64))
    year: Mapped[int] = mapped_column(Integer)
    used_minor: Mapped[int] = mapped_column(Minor)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Declaration(Base):
    """An order's customs declaration: the messages generated from it (kind → XML), the
    three-document check, the receipts and tax bill ingested; its states are
    ``crossborder/lifecycle.py``'s table."""

    __tablename__ = "crossborder_declarations"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      UniqueConstraint("tenant_id", "order_id",
                                       name="uq_crossborder_declarations_order"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    messages: Mapped[dict[str, Any]] = mapped_column(JSONType)
    receipts: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    tax_bill: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
