"""Cross-border tables. Keyed by the other modules' ids (a product's, an order's) without
foreign keys into their tables: modules meet through ids and services, never tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, JSONType, Minor, UTCDateTime, tenant_fk


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
    # the qualified foreign brand it is sold under (a product is enabled only with one)
    brand_id: Mapped[str | None] = mapped_column(String(40))


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
    # given back of the yearly quota by partial refunds (all of it once released), and the
    # tax's share of the amounts refunded (docs/crossborder.md: partial refunds)
    quota_returned_minor: Mapped[int] = mapped_column(Minor, server_default="0")
    tax_refunded_minor: Mapped[int] = mapped_column(Minor, server_default="0")
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


class Brand(Base):
    """A foreign brand's qualification file: the brand's authorisation, its origin, the
    operating agency acting for it in China, the documents; reviewed by platform staff or a
    delegated agency before its products may be sold (``BRAND_LIFECYCLE``)."""

    __tablename__ = "crossborder_brands"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      UniqueConstraint("tenant_id", "name", name="uq_crossborder_brands_name"),
                      # a merchant's files by status
                      Index("ix_crossborder_brands_status", "tenant_id", "status"),
                      # the worker's scan, across merchants, for files running out
                      Index("ix_crossborder_brands_expiry", "status", "valid_until"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    origin_country: Mapped[str] = mapped_column(String(2))
    owner: Mapped[str] = mapped_column(String(200))  # the foreign company owning the brand
    agency_app_id: Mapped[str | None] = mapped_column(String(40))
    agency_name: Mapped[str] = mapped_column(String(200))
    authorisation: Mapped[dict[str, Any]] = mapped_column(JSONType)
    documents: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))
    submitted_by: Mapped[str] = mapped_column(String(200))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # the last day the file holds (the earliest valid_until of the authorisation and the
    # documents); when the worker sent brand.expiring for it
    valid_until: Mapped[dt.date | None] = mapped_column(Date)
    expiry_reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class BrandDecision(Base):
    """One step of a qualification file's history: a submission or a reviewer's decision,
    who took it (``actor``: ``merchant:…``, ``app:…``, ``platform:…``), when and why. Rows are
    only ever added."""

    __tablename__ = "crossborder_brand_decisions"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      Index("ix_crossborder_brand_decisions_brand", "tenant_id", "brand_id", "id"),
                      tenant_fk("brand_id", "crossborder_brands"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    brand_id: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(16))  # submitted | approved | rejected | revoked
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(2000))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Reviewer(Base):
    """An agency or customs-broker app to which platform staff delegated the review of
    qualification files (a global table: it reviews for every merchant that installs it)."""

    __tablename__ = "crossborder_reviewers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the app's id
    delegated_by: Mapped[str] = mapped_column(String(200))
    evidence: Mapped[str] = mapped_column(String(2000))
    delegated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Tracking(Base):
    """The latest carrier status of a cross-border order's parcel (``id`` is the order's id):
    the tracking event with the latest time wins, whatever order the events arrive in; every
    event is also the ``tracking.updated`` event on the order's timeline."""

    __tablename__ = "crossborder_tracking"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),)

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    carrier: Mapped[str] = mapped_column(String(64))
    tracking_number: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    location: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(500))
    events: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CustomsProfile(Base):
    """A merchant's customs profile (``id`` is the merchant's id): the enterprise codes and
    the customs and port its declarations use when the request names none."""

    __tablename__ = "crossborder_customs_profiles"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),)

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    enterprise: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
