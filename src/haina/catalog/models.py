from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    DDL,
    BigInteger,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
)
from sqlalchemy.orm import Mapped, Unmapped, mapped_column, unmapped_column

from haina.core.db import Base, JSONType, Minor, UTCDateTime, tenant_fk


class Category(Base):
    __tablename__ = "categories"
    __table_args__ = (
        UniqueConstraint("tenant_id", "slug"),
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("parent_id", "categories"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AttributeDef(Base):
    """A typed product attribute of a merchant (a tire's ``width`` is a number in mm)."""

    __tablename__ = "attribute_defs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        PrimaryKeyConstraint("tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))  # number | text | enum | bool
    unit: Mapped[str | None] = mapped_column(String(32))
    options: Mapped[list[str] | None] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        Index("ix_products_tenant_category", "tenant_id", "category_id"),
        Index("ix_products_search_trgm", "search_text", postgresql_using="gin",
              postgresql_ops={"search_text": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("category_id", "categories"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    category_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | draft | archived
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # lower-cased title, SKUs, attribute values and category: what search matches
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # None (general trade), crossborder or suspended (catalog.service.TRADE_MODES): set by the
    # crossborder module, read by the order's variants query, both in Core. A column of the
    # table the ORM does not map, so loading or adding a product never names it (the
    # demo-into-0002 migration test loads today's demo into a schema without it)
    trade_mode: Unmapped[str | None] = unmapped_column(String(16), nullable=True)


class Variant(Base):
    """A sellable unit (SKU) of a product, with its own price and attributes."""

    __tablename__ = "variants"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sku"),
        Index("ix_variants_tenant_product", "tenant_id", "product_id"),
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("product_id", "products"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    product_id: Mapped[str] = mapped_column(String(40))
    sku: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    price_minor: Mapped[int] = mapped_column(Minor)
    currency: Mapped[str] = mapped_column(String(3))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# SKUs are one merchant's without regard to case (``abc-1`` takes ``ABC-1``): the service checks
# first for a clear answer, this index settles two creations racing (SKUs are ASCII, so SQLite's
# lower() and Python's agree)
Index("ux_variants_tenant_lower_sku", Variant.tenant_id, func.lower(Variant.sku), unique=True)


class Media(Base):
    """An image or short video of a product, stored under HAINA_MEDIA_DIR by content hash."""

    __tablename__ = "media"
    __table_args__ = (
        Index("ix_media_tenant_product", "tenant_id", "product_id"),
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("product_id", "products"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    product_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(8))  # image | video
    content_type: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    alt: Mapped[str | None] = mapped_column(String(300))
    position: Mapped[int] = mapped_column(Integer, default=0)
    uploaded_by: Mapped[str | None] = mapped_column(String(40))  # token or app id
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# Search index. SQLite: an FTS5 trigram table kept in step by triggers (FTS5's trigram tokenizer
# also serves LIKE '%…%', which matches Chinese as well as English). PostgreSQL: pg_trgm GIN
# index on products.search_text (declared above) for ILIKE.
SQLITE_SEARCH_DDL = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS product_search USING fts5("
    "product_id UNINDEXED, tenant_id UNINDEXED, body, tokenize='trigram')",
    "CREATE TRIGGER IF NOT EXISTS products_search_ai AFTER INSERT ON products BEGIN "
    "INSERT INTO product_search(product_id, tenant_id, body) "
    "VALUES (new.id, new.tenant_id, new.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS products_search_au AFTER UPDATE OF search_text ON products BEGIN "
    "UPDATE product_search SET body = new.search_text WHERE product_id = new.id; END",
    "CREATE TRIGGER IF NOT EXISTS products_search_ad AFTER DELETE ON products BEGIN "
    "DELETE FROM product_search WHERE product_id = old.id; END",
]
SQLITE_SEARCH_DROP = [
    "DROP TRIGGER IF EXISTS products_search_ad", "DROP TRIGGER IF EXISTS products_search_au",
    "DROP TRIGGER IF EXISTS products_search_ai", "DROP TABLE IF EXISTS product_search",
]
PG_TRGM = "CREATE EXTENSION IF NOT EXISTS pg_trgm"

event.listen(Product.__table__, "before_create", DDL(PG_TRGM).execute_if(dialect="postgresql"))
for _stmt in SQLITE_SEARCH_DDL:
    event.listen(Product.__table__, "after_create", DDL(_stmt).execute_if(dialect="sqlite"))
