"""Products, variants (SKUs), typed attributes, categories, media and search."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import String, and_, bindparam, cast, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from haina.catalog.models import AttributeDef, Category, Media, Product, Variant
from haina.catalog.schemas import (
    MAX_ATTRIBUTE_NUMBER,
    AttributeDefCreate,
    AttributeDefOut,
    AttrValue,
    CategoryCreate,
    CategoryOut,
    MediaOut,
    ProductBrief,
    ProductCreate,
    ProductOut,
    ProductUpdate,
    VariantCreate,
    VariantOut,
    VariantRef,
    VariantUpdate,
)
from haina.core import caches
from haina.core.context import Tenant
from haina.core.db import Precompiled, is_postgres, tenant_row, utcnow
from haina.core.errors import Conflict, Invalid, not_found
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.money import Money, Price
from haina.core.pagination import MAX_LIMIT, Page, paginate
from haina.core.trusted import construct
from haina.inventory import service as inventory
from haina.inventory.schemas import StockOut

MEDIA_TYPES = {
    "image/jpeg": ("image", 10 << 20), "image/png": ("image", 10 << 20),
    "image/webp": ("image", 10 << 20), "image/gif": ("image", 10 << 20),
    "video/mp4": ("video", 100 << 20), "video/webm": ("video", 100 << 20),
    "video/quicktime": ("video", 100 << 20),
}
# the largest upload any media type allows (the HTTP edge lets upload requests this big through)
MAX_MEDIA_BYTES = max(limit for _, limit in MEDIA_TYPES.values())


def _iso_brand(head: bytes, brands: tuple[bytes, ...]) -> bool:
    """An ISO base media file (MP4, QuickTime): an ``ftyp`` box whose major brand is known."""
    return head[4:8] == b"ftyp" and head[8:12] in brands


_MP4_BRANDS = (b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1",
               b"M4V ", b"M4VP", b"dash", b"3gp4", b"3gp5", b"3gp6", b"3g2a", b"MSNV", b"f4v ",
               b"mmp4", b"XAVC")
# What a file of each accepted type starts with (its "magic number"): the declared type is
# believed only when the bytes agree, so an HTML page cannot be stored and served as a PNG.
MEDIA_SIGNATURES = {
    "image/jpeg": lambda h: h[:3] == b"\xff\xd8\xff",
    "image/png": lambda h: h[:8] == b"\x89PNG\r\n\x1a\n",
    "image/gif": lambda h: h[:6] in (b"GIF87a", b"GIF89a"),
    "image/webp": lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP",
    "video/mp4": lambda h: _iso_brand(h, _MP4_BRANDS),
    "video/quicktime": lambda h: _iso_brand(h, (b"qt  ",)) or h[4:8] in (b"moov", b"mdat",
                                                                           b"wide", b"free"),
    "video/webm": lambda h: h[:4] == b"\x1a\x45\xdf\xa3",  # EBML (Matroska/WebM)
}


# ---------------------------------------------------------------- attributes and categories

def _attr_out(r: AttributeDef) -> AttributeDefOut:
    return AttributeDefOut(id=r.id, code=r.code, name=r.name, type=r.type, unit=r.unit,
                           options=r.options, created_at=r.created_at)


def create_attribute(session: Session, tenant: Tenant, data: AttributeDefCreate) -> AttributeDefOut:
    if session.scalar(select(AttributeDef.id).where(AttributeDef.tenant_id == tenant.id,
                                                    AttributeDef.code == data.code)):
        raise Conflict(f"attribute {data.code!r} exists", slug="attribute-exists")
    row = AttributeDef(id=new_id("attribute"), tenant_id=tenant.id, created_at=utcnow(),
                       **data.model_dump())
    session.add(row)
    session.flush()
    return _attr_out(row)


def list_attributes(session: Session, tenant: Tenant) -> Page[AttributeDefOut]:
    """All of the merchant's attribute definitions, by code (a short list: one page)."""
    rows = session.scalars(select(AttributeDef).where(AttributeDef.tenant_id == tenant.id)
                           .order_by(AttributeDef.code))
    return Page[AttributeDefOut](data=[_attr_out(r) for r in rows], has_more=False)


def _check_attributes(defs: dict[str, AttributeDef], values: dict[str, AttrValue]) -> dict[str, AttrValue]:
    """Values of defined attributes must have the defined type; undefined codes pass as given."""
    out: dict[str, AttrValue] = {}
    for code, value in values.items():
        d = defs.get(code)
        if d is None:
            out[code] = value
        elif d.type == "number":
            if isinstance(value, bool):
                raise Invalid(f"attribute {code!r} is a number, got {value!r}", slug="invalid-attribute")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise Invalid(f"attribute {code!r} is a number, got {value!r}",
                              slug="invalid-attribute") from None
            if not math.isfinite(number) or abs(number) > MAX_ATTRIBUTE_NUMBER:
                raise Invalid(f"attribute {code!r} is a finite number from "
                              f"-{MAX_ATTRIBUTE_NUMBER} to {MAX_ATTRIBUTE_NUMBER}, got {value!r}",
                              slug="invalid-attribute")
            out[code] = int(number) if number.is_integer() else number
        elif d.type == "bool":
            if not isinstance(value, bool):
                raise Invalid(f"attribute {code!r} is true or false, got {value!r}",
                              slug="invalid-attribute")
            out[code] = value
        elif d.type == "enum":
            if str(value) not in (d.options or []):
                raise Invalid(f"attribute {code!r} must be one of {', '.join(d.options or [])}",
                              slug="invalid-attribute")
            out[code] = str(value)
        else:
            out[code] = str(value)
    return out


def _defs(session: Session, tenant: Tenant) -> dict[str, AttributeDef]:
    return {d.code: d for d in session.scalars(
        select(AttributeDef).where(AttributeDef.tenant_id == tenant.id))}


def _category_out(r: Category) -> CategoryOut:
    return CategoryOut(id=r.id, name=r.name, slug=r.slug, parent_id=r.parent_id,
                       created_at=r.created_at)


def create_category(session: Session, tenant: Tenant, data: CategoryCreate) -> CategoryOut:
    if data.parent_id is not None:
        _category(session, tenant, data.parent_id)
    if session.scalar(select(Category.id).where(Category.tenant_id == tenant.id,
                                                Category.slug == data.slug)):
        raise Conflict(f"category {data.slug!r} exists", slug="category-exists")
    row = Category(id=new_id("category"), tenant_id=tenant.id, name=data.name, slug=data.slug,
                   parent_id=data.parent_id, created_at=utcnow())
    session.add(row)
    session.flush()
    return _category_out(row)


def _category(session: Session, tenant: Tenant, category_id: str) -> Category:
    return tenant_row(session, tenant.id, Category, category_id, "category")


def check_category(session: Session, tenant: Tenant, category_id: str) -> None:
    """404 ``category-not-found`` unless the merchant has this category."""
    _category(session, tenant, category_id)


def product_categories(session: Session, tenant: Tenant,
                       product_ids: Sequence[str]) -> dict[str, str | None]:
    """Each product's category (one query)."""
    rows = session.execute(select(Product.id, Product.category_id).where(
        Product.tenant_id == tenant.id, Product.id.in_(sorted(set(product_ids))))).all()
    return {pid: cid for pid, cid in rows}


def list_categories(session: Session, tenant: Tenant) -> Page[CategoryOut]:
    """All of the merchant's categories, by slug (a short list: one page)."""
    return Page[CategoryOut](data=[_category_out(r) for r in session.scalars(
        select(Category).where(Category.tenant_id == tenant.id).order_by(Category.slug))],
        has_more=False)


# ---------------------------------------------------------------- products

def _search_text(product: Product, variants: Sequence[Variant], category: str | None) -> str:
    parts = [product.title, *(v.sku for v in variants), *(v.title for v in variants)]
    parts += [str(v) for v in product.attributes.values()]
    for v in variants:
        parts += [str(x) for x in v.attributes.values()]
    if category:
        parts.append(category)
    seen: dict[str, None] = dict.fromkeys(p.strip().lower() for p in parts if p)
    return " ".join(seen)


def _check_currency(tenant: Tenant, price: Price) -> None:
    """Prices are in the merchant's currency: an order never mixes currencies."""
    if price.currency != tenant.currency:
        raise Invalid(f"prices of this merchant are in {tenant.currency}, not {price.currency}",
                      slug="currency-mismatch", currency=tenant.currency)


def create_product(session: Session, tenant: Tenant, data: ProductCreate) -> ProductOut:
    specs = data.variant_list()
    for spec in specs:
        _check_currency(tenant, spec.price)
    defs = _defs(session, tenant)
    category = _category(session, tenant, data.category_id) if data.category_id is not None else None
    now = utcnow()
    product = Product(id=new_id("product"), tenant_id=tenant.id, title=data.title,
                      description=data.description, category_id=data.category_id,
                      status=data.status, attributes=_check_attributes(defs, data.attributes),
                      created_at=now, updated_at=now)
    skus = [v.sku for v in specs]
    if len({sku.lower() for sku in skus}) != len(skus):
        raise Invalid("the same SKU appears twice (SKUs are compared without regard to case)",
                      slug="duplicate-sku")
    taken = _skus_taken(session, tenant, skus)
    if taken:
        raise Conflict(f"SKU {taken[0]!r} is already used", slug="sku-exists", sku=taken[0])
    variants = [_new_variant(tenant, product.id, spec, i, defs, data.title, now)
                for i, spec in enumerate(specs)]
    product.search_text = _search_text(product, variants, category.name if category else None)
    session.add(product)
    session.flush()
    session.add_all(variants)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict("SKU already used", slug="sku-exists") from None
    for variant, spec in zip(variants, specs):
        if spec.stock:
            inventory.adjust_stock(session, tenant, variant.id, spec.stock, "initial")
    record_event(session, tenant.id, "product.created", product.id,
                 {"title": product.title, "skus": skus})
    return get_product(session, tenant, product.id)


def _skus_taken(session: Session, tenant: Tenant, skus: Sequence[str]) -> list[str]:
    """The merchant's SKUs equal to one of ``skus`` without regard to case (``abc-1`` takes
    ``ABC-1``). The unique constraint on (tenant, sku) is exact, so this lookup is what keeps
    two cases of one SKU apart; a unique index on (tenant_id, lower(sku)) would also close the
    race between two concurrent creations."""
    return list(session.scalars(select(Variant.sku).where(
        Variant.tenant_id == tenant.id, func.lower(Variant.sku).in_([s.lower() for s in skus]))))


def _new_variant(tenant: Tenant, product_id: str, spec: VariantCreate, position: int,
                 defs: dict[str, AttributeDef], product_title: str, now: dt.datetime) -> Variant:
    return Variant(id=new_id("variant"), tenant_id=tenant.id, product_id=product_id,
                   sku=spec.sku, title=spec.title or product_title, price_minor=spec.price.minor,
                   currency=spec.price.currency,
                   attributes=_check_attributes(defs, spec.attributes), position=position,
                   created_at=now)


def _product(session: Session, tenant: Tenant, product_id: str) -> Product:
    return tenant_row(session, tenant.id, Product, product_id, "product")


def _media_out(m: Media) -> MediaOut:
    return MediaOut(id=m.id, product_id=m.product_id, kind=m.kind, content_type=m.content_type,
                    filename=m.filename, size=m.size, sha256=m.sha256, alt=m.alt,
                    url=f"/v1/media/{m.id}/content", uploaded_by=m.uploaded_by,
                    created_at=m.created_at)


def _products_out(session: Session, tenant: Tenant, products: Sequence[Product]) -> list[ProductOut]:
    if not products:
        return []
    ids = [p.id for p in products]
    variants = session.scalars(select(Variant).where(Variant.tenant_id == tenant.id,
                                                     Variant.product_id.in_(ids))
                               .order_by(Variant.product_id, Variant.position)).all()
    media = session.scalars(select(Media).where(Media.tenant_id == tenant.id,
                                                Media.product_id.in_(ids))
                            .order_by(Media.position, Media.id)).all()
    stock = inventory.stock_for_variants(session, tenant, [v.id for v in variants])
    # rows read back from our own tables: built without validation (core.trusted; a list of
    # 20 products was ~120 validated models, most of the call's CPU)
    by_product: dict[str, list[VariantOut]] = {i: [] for i in ids}
    none = StockOut()
    for v in variants:
        by_product[v.product_id].append(construct(
            VariantOut, id=v.id, object="variant", product_id=v.product_id, sku=v.sku,
            title=v.title, price=Money.of(v.price_minor, v.currency), attributes=v.attributes,
            stock=stock.get(v.id, none)))
    media_by: dict[str, list[MediaOut]] = {i: [] for i in ids}
    for m in media:
        media_by[m.product_id].append(_media_out(m))
    out = []
    for p in products:
        vs = by_product[p.id]
        total = construct(StockOut, on_hand=sum(v.stock.on_hand for v in vs),
                          reserved=sum(v.stock.reserved for v in vs),
                          available=sum(v.stock.available for v in vs))
        out.append(construct(ProductOut, id=p.id, object="product", title=p.title,
                             description=p.description, category_id=p.category_id,
                             status=p.status, attributes=p.attributes, sku=vs[0].sku,
                             price=vs[0].price, stock=total, variants=vs,
                             media=media_by[p.id], created_at=p.created_at,
                             updated_at=p.updated_at))
    return out


def get_product(session: Session, tenant: Tenant, product_id: str) -> ProductOut:
    return _products_out(session, tenant, [_product(session, tenant, product_id)])[0]


def list_products(session: Session, tenant: Tenant, *, q: str | None = None,
                  category_id: str | None = None, status: str | None = None,
                  attributes: dict[str, str] | None = None, limit: int = 50,
                  cursor: str | None = None) -> Page[ProductOut]:
    """Newest first. ``q`` matches every word against title, SKUs, attribute values and
    category (Chinese or English, any part of a word); ``attributes`` filters by exact value."""
    stmt = _listed(session, tenant, select(Product), q=q, category_id=category_id,
                   status=status, attributes=attributes)
    page = paginate(session, stmt, Product.id, limit=limit, cursor=cursor, convert=lambda p: p,
                    kind="product")
    return Page[ProductOut](data=_products_out(session, tenant, page.data),
                            has_more=page.has_more, next_cursor=page.next_cursor)


def product_briefs(session: Session, tenant: Tenant, *, q: str | None = None,
                   status: str | None = None, limit: int = 10) -> list[ProductBrief]:
    """The products :func:`list_products` would list first (newest first, ``q`` and
    ``status`` alike), as briefs: two statements (the products, their variants' SKUs, prices
    and attributes), no stock or media. Kept in the process's ``catalog`` cache (as
    :func:`variants_by_sku`: any write to a product, variant or category forgets the
    merchant's entries everywhere), so search's answers made every second read them once."""
    key = ("briefs", q, status, limit)
    kept = caches.lookup(session, "catalog", tenant.id)
    if kept is not None and key in kept:
        return kept[key]
    since = caches.generation(session, "catalog", tenant.id)
    out = _briefs(session, tenant, q, status, limit)
    caches.store(session, "catalog", tenant.id, since, [(key, out)])
    return out


def _briefs(session: Session, tenant: Tenant, q: str | None, status: str | None,
            limit: int) -> list[ProductBrief]:
    stmt = _listed(session, tenant, select(Product.id, Product.title, Product.category_id,
                                           Product.attributes), q=q, status=status)
    products = session.execute(stmt.order_by(Product.id.desc())
                               .limit(max(1, min(limit, MAX_LIMIT)))).all()
    if not products:
        return []
    first: dict[str, Any] = {}
    for row in session.execute(
            select(Variant.product_id, Variant.sku, Variant.price_minor, Variant.currency,
                   Variant.attributes)
            .where(Variant.tenant_id == tenant.id,
                   Variant.product_id.in_([p[0] for p in products]))
            .order_by(Variant.product_id, Variant.position, Variant.id)):
        first.setdefault(row[0], row)
    out = []
    for pid, title, category_id, attrs in products:
        _, sku, minor, currency, variant_attrs = first[pid]
        out.append(construct(ProductBrief, id=pid, sku=sku, title=title,
                             price=Money.of(minor, currency), category_id=category_id,
                             attributes={**(attrs or {}), **(variant_attrs or {})}))
    return out


def _listed(session: Session, tenant: Tenant, stmt, *, q: str | None = None,
            category_id: str | None = None, status: str | None = None,
            attributes: dict[str, str] | None = None):
    """``stmt`` (a select from products) narrowed to the tenant's products that a list or a
    search shows: by category, status, exact attributes and the words of ``q``."""
    stmt = stmt.where(Product.tenant_id == tenant.id)
    if category_id:
        stmt = stmt.where(Product.category_id == category_id)
    if status:
        stmt = stmt.where(Product.status == status)
    for code, value in (attributes or {}).items():
        stmt = stmt.where(_attribute_matches(code, value))
    return _search(session, tenant, stmt, q) if q else stmt


def _attribute_matches(code: str, value: str):
    """Exact match on a product's or any of its variants' attribute (numbers compare as numbers)."""
    try:
        number = float(value)
    except ValueError:
        number = None
    # A number is matched by its text forms (205 → "205", "205.0"), not by casting every stored
    # value to float: that cast fails on PostgreSQL for text such as "91V" and, on SQLite, turns
    # it into 91.0, a false match.
    forms = {value}
    if number is not None and abs(number) < float("inf"):  # not inf, not nan
        forms |= {repr(number), f"{number:.15g}"}
        if number.is_integer():
            forms.add(str(int(number)))

    def cond(column):
        element = column[code]
        if number is not None:
            return cast(element.as_string(), String).in_(sorted(forms))
        return element.as_string() == value

    in_variant = select(Variant.id).where(Variant.product_id == Product.id,
                                          Variant.tenant_id == Product.tenant_id,
                                          cond(Variant.attributes)).exists()
    return or_(cond(Product.attributes), in_variant)


def _search(session: Session, tenant: Tenant, stmt, q: str):
    words = [w.lower() for w in q.split() if w.strip()][:8]
    if not words:
        return stmt
    escaped = [w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for w in words]
    if is_postgres(session):
        # ILIKE is served by the pg_trgm GIN index for words of three characters or more
        return stmt.where(and_(*(Product.search_text.ilike(f"%{w}%", escape="\\") for w in escaped)))
    if all(len(w) >= 3 for w in words):
        # FTS5 trigram answers LIKE from its index; shorter words (two Chinese characters, say)
        # fall back to scanning products.search_text below
        cond = " AND ".join(f"body LIKE :w{i} ESCAPE '\\'" for i in range(len(words)))
        ids = text(f"SELECT product_id FROM product_search WHERE tenant_id = :t AND {cond}") \
            .bindparams(t=tenant.id, **{f"w{i}": f"%{w}%" for i, w in enumerate(escaped)}) \
            .columns(product_id=String).subquery()
        return stmt.where(Product.id.in_(select(ids.c.product_id)))
    return stmt.where(and_(*(Product.search_text.like(f"%{w}%", escape="\\") for w in escaped)))


def update_product(session: Session, tenant: Tenant, product_id: str, data: ProductUpdate) -> ProductOut:
    product = _product(session, tenant, product_id)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("category_id") is not None:
        _category(session, tenant, changes["category_id"])
    if "attributes" in changes:
        changes["attributes"] = _check_attributes(_defs(session, tenant), changes["attributes"] or {})
    for key, value in changes.items():
        setattr(product, key, value)
    _refresh_search(session, tenant, product)
    product.updated_at = utcnow()
    record_event(session, tenant.id, "product.updated", product.id,
                 {"changed": sorted(changes)})
    session.flush()
    return get_product(session, tenant, product.id)


#: a product's trade mode: None is general trade; ``crossborder`` goods are sold under
#: cross-border retail import (an order of them names the buyer: orders refuse it otherwise);
#: ``suspended`` ones lost their brand's qualification and are not for sale until listed again
TRADE_MODES = ("crossborder", "suspended")


def set_trade_mode(session: Session, tenant: Tenant, product_ids: Sequence[str],
                   trade_mode: str | None) -> list[str]:
    """Set the trade mode of these products of the merchant (the crossborder module's call:
    it owns the facts, the catalogue keeps the copy the order path reads). Returns the ids
    whose mode changed, each told by ``product.updated`` (``changed: ["trade_mode"]``)."""
    if trade_mode is not None and trade_mode not in TRADE_MODES:
        raise ValueError(f"unknown trade mode {trade_mode!r}")
    if not product_ids:
        return []
    changed = sorted(session.scalars(select(_P.id).where(
        _P.tenant_id == tenant.id, _P.id.in_(set(product_ids)),
        or_(_P.trade_mode.is_(None), _P.trade_mode != trade_mode)
        if trade_mode is not None else _P.trade_mode.is_not(None))))
    if changed:
        session.execute(update(Product.__table__).where(_P.tenant_id == tenant.id,
                                                        _P.id.in_(changed))
                        .values(trade_mode=trade_mode, updated_at=utcnow()))
        caches.changed(session, "catalog", tenant.id)  # a Core update: no flush sees it
        for product_id in changed:
            record_event(session, tenant.id, "product.updated", product_id,
                         {"changed": ["trade_mode"], "trade_mode": trade_mode})
    return changed


def _refresh_search(session: Session, tenant: Tenant, product: Product) -> None:
    variants = session.scalars(select(Variant).where(Variant.tenant_id == tenant.id,
                                                     Variant.product_id == product.id)).all()
    category = session.get(Category, (tenant.id, product.category_id)) \
        if product.category_id else None
    product.search_text = _search_text(product, variants, category.name if category else None)


def add_variant(session: Session, tenant: Tenant, product_id: str, data: VariantCreate) -> ProductOut:
    product = _product(session, tenant, product_id)
    _check_currency(tenant, data.price)
    taken = _skus_taken(session, tenant, [data.sku])
    if taken:
        raise Conflict(f"SKU {taken[0]!r} is already used", slug="sku-exists", sku=taken[0])
    position = session.scalar(select(func.count()).select_from(Variant).where(
        Variant.tenant_id == tenant.id, Variant.product_id == product_id)) or 0
    variant = _new_variant(tenant, product_id, data, position, _defs(session, tenant),
                           product.title, utcnow())
    session.add(variant)
    try:
        session.flush()
    except IntegrityError:  # the same SKU made at the same moment (ux_variants_tenant_lower_sku)
        raise Conflict(f"SKU {data.sku!r} is already used", slug="sku-exists",
                       sku=data.sku) from None
    if data.stock:
        inventory.adjust_stock(session, tenant, variant.id, data.stock, "initial")
    _refresh_search(session, tenant, product)
    record_event(session, tenant.id, "variant.created", variant.id,
                 {"product_id": product_id, "sku": variant.sku})
    return get_product(session, tenant, product_id)


def update_variant(session: Session, tenant: Tenant, variant_id: str, data: VariantUpdate) -> ProductOut:
    variant = session.scalar(select(Variant).where(Variant.tenant_id == tenant.id,
                                                   Variant.id == variant_id))
    if variant is None:
        raise not_found("variant", variant_id)
    changes = data.model_dump(exclude_unset=True)
    if data.price is not None:
        _check_currency(tenant, data.price)
        old = Money.of(variant.price_minor, variant.currency)
        variant.price_minor, variant.currency = data.price.minor, data.price.currency
        record_event(session, tenant.id, "variant.price_changed", variant.id,
                     {"sku": variant.sku, "old": old.model_dump(mode="json"),
                      "new": data.price.model_dump(mode="json")})
    if data.title is not None:
        variant.title = data.title
    if data.attributes is not None:
        variant.attributes = _check_attributes(_defs(session, tenant), data.attributes)
    product = _product(session, tenant, variant.product_id)
    _refresh_search(session, tenant, product)
    product.updated_at = utcnow()
    record_event(session, tenant.id, "variant.updated", variant.id, {"changed": sorted(changes)})
    session.flush()
    return get_product(session, tenant, product.id)


_V, _P = Variant.__table__.c, Product.__table__.c
# the trade mode as the order's variants query reads it (a module attribute: the migration
# test that loads the demo into an old schema selects a NULL in its place)
_TRADE_MODE: Any = _P.trade_mode
# the order hot path: one statement per number of distinct SKUs, compiled once, only bound
_VARIANTS_BY_SKU: dict[int, Precompiled] = {}


def _variants_by_sku_statement(n: int) -> Precompiled:
    found = _VARIANTS_BY_SKU.get(n)
    if found is None:
        found = _VARIANTS_BY_SKU[n] = Precompiled(
            select(_V.id, _V.product_id, _V.sku, _V.title, _P.title, _V.price_minor, _V.currency,
                   _P.status, _P.category_id, _TRADE_MODE)
            .join_from(Variant.__table__, Product.__table__,
                       and_(_P.tenant_id == _V.tenant_id, _P.id == _V.product_id))
            .where(_V.tenant_id == bindparam("tenant_id"),
                   _V.sku.in_([bindparam(f"sku_{i}") for i in range(n)])))
    return found


def _variants_by_lower_sku(n: int) -> Precompiled:
    found = _VARIANTS_BY_LOWER_SKU.get(n)
    if found is None:
        found = _VARIANTS_BY_LOWER_SKU[n] = Precompiled(
            select(_V.id, _V.product_id, _V.sku, _V.title, _P.title, _V.price_minor, _V.currency,
                   _P.status, _P.category_id, _TRADE_MODE, func.lower(_V.sku))
            .join_from(Variant.__table__, Product.__table__,
                       and_(_P.tenant_id == _V.tenant_id, _P.id == _V.product_id))
            .where(_V.tenant_id == bindparam("tenant_id"),
                   func.lower(_V.sku).in_([bindparam(f"sku_{i}") for i in range(n)]))
            .order_by(_V.sku))
    return found


_VARIANTS_BY_LOWER_SKU: dict[int, Precompiled] = {}

# a category's removal or a product's or variant's change alters what an order reads of it
caches.watch("catalog", (Product, Variant, Category))


def _ref(r: Sequence[Any]) -> VariantRef:
    return VariantRef(id=r[0], product_id=r[1], sku=r[2], title=r[3], product_title=r[4],
                      price_minor=r[5], currency=r[6], status=r[7], category_id=r[8],
                      trade_mode=r[9])


def variants_by_sku(session: Session, tenant: Tenant, skus: Sequence[str]) -> dict[str, VariantRef]:
    """What an order line needs of each SKU, keyed by the SKU as asked (absent SKUs are left
    out). SKUs compare without regard to case: the exact SKU is looked up first (one indexed
    query, the order path); only SKUs not found that way are looked up by ``lower(sku)``.

    Exact matches are kept in this process's ``catalog`` cache (:mod:`haina.core.caches`,
    PostgreSQL with the API's listener): an order of SKUs read before costs no query. Any
    write to a product, variant or category forgets the merchant's entries everywhere."""
    kept = caches.lookup(session, "catalog", tenant.id)
    if kept is not None and all(sku in kept for sku in skus):
        return {sku: kept[sku] for sku in skus}
    since = caches.generation(session, "catalog", tenant.id)
    distinct = sorted(set(skus))
    params = {f"sku_{i}": sku for i, sku in enumerate(distinct)}
    params["tenant_id"] = tenant.id
    rows = _variants_by_sku_statement(len(distinct)).rows(session, params)
    found = {r[2]: _ref(r) for r in rows}
    # exact SKUs only: a SKU found by its lower case would hide a variant created later
    # with exactly that SKU
    caches.store(session, "catalog", tenant.id, since, found.items())
    missing = [sku for sku in distinct if sku not in found]
    if missing:
        lowered = sorted({sku.lower() for sku in missing})
        params = {f"sku_{i}": sku for i, sku in enumerate(lowered)}
        params["tenant_id"] = tenant.id
        by_lower: dict[str, VariantRef] = {}
        for r in _variants_by_lower_sku(len(lowered)).rows(session, params):
            by_lower.setdefault(r[10], _ref(r))
        for sku in missing:
            if sku.lower() in by_lower:
                found[sku] = by_lower[sku.lower()]
    return found


def variant_by_sku(session: Session, tenant: Tenant, sku: str) -> VariantRef:
    found = variants_by_sku(session, tenant, [sku]).get(sku)
    if found is None:
        raise not_found("sku", sku)
    return found


def variant_exists(session: Session, tenant: Tenant, variant_id: str) -> bool:
    return session.scalar(select(Variant.id).where(Variant.tenant_id == tenant.id,
                                                   Variant.id == variant_id)) is not None


# ---------------------------------------------------------------- media

def add_media(session: Session, tenant: Tenant, product_id: str, *, filename: str,
              content_type: str, content: bytes, media_dir: Path, alt: str | None = None,
              uploaded_by: str | None = None) -> MediaOut:
    """Store an image or short video of a product (a photographer's app may upload for the
    merchant); files are kept by content hash, so a re-upload stores no second copy."""
    _product(session, tenant, product_id)
    kind_limit = MEDIA_TYPES.get(content_type)
    if kind_limit is None:
        raise Invalid(f"unsupported media type {content_type!r}; use one of "
                      f"{', '.join(MEDIA_TYPES)}", slug="unsupported-media-type", status=415)
    kind, limit = kind_limit
    if not content:
        raise Invalid("the uploaded file is empty", slug="empty-file")
    if len(content) > limit:
        raise Invalid(f"{kind}s are limited to {limit >> 20} MiB", slug="file-too-large", status=413)
    if not MEDIA_SIGNATURES[content_type](content[:16]):
        raise Invalid(f"the file's content is not {content_type} (its leading bytes do not "
                      f"match the declared type)", slug="media-type-mismatch")
    digest = hashlib.sha256(content).hexdigest()
    path = _media_path(media_dir, tenant.id, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(content)
        tmp.replace(path)
    position = session.scalar(select(func.count()).select_from(Media).where(
        Media.tenant_id == tenant.id, Media.product_id == product_id)) or 0
    row = Media(id=new_id("media"), tenant_id=tenant.id, product_id=product_id, kind=kind,
                content_type=content_type, filename=filename[:255] or "upload", size=len(content),
                sha256=digest, alt=alt, position=position, uploaded_by=uploaded_by,
                created_at=utcnow())
    session.add(row)
    session.flush()
    record_event(session, tenant.id, "product.media_added", product_id,
                 {"media_id": row.id, "kind": kind, "uploaded_by": uploaded_by})
    return _media_out(row)


def _media_path(media_dir: Path, tenant_id: str, digest: str) -> Path:
    return Path(media_dir) / tenant_id / digest[:2] / digest


def media_file(session: Session, tenant: Tenant, media_id: str, media_dir: Path) -> tuple[MediaOut, Path]:
    row = session.scalar(select(Media).where(Media.tenant_id == tenant.id, Media.id == media_id))
    if row is None:
        raise not_found("media", media_id)
    return _media_out(row), _media_path(media_dir, tenant.id, row.sha256)


def delete_media(session: Session, tenant: Tenant, media_id: str) -> None:
    row = session.scalar(select(Media).where(Media.tenant_id == tenant.id, Media.id == media_id))
    if row is None:
        raise not_found("media", media_id)
    session.delete(row)
    record_event(session, tenant.id, "product.media_removed", row.product_id, {"media_id": media_id})


