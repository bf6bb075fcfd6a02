"""Cross-border import: the public face (tax quotes, products, an order's cross-border part).

Orders calls :func:`claim_order` inside the order's transaction when an order carries
``crossborder``; it checks the products and the payer, computes the composite tax (one place:
``tax.composite_tax``), seals the buyer's ID number and claims the quotas. The yearly claim is
one conditional UPDATE of the (tenant, identity index, year) counter row, which also locks it
until the order's transaction ends: concurrent orders of one buyer can never exceed the
quota. Lock order, after the order's stock, the member's points and the coupon: the quota row
comes last, in placing (here) and in cancelling (:func:`release_order`) alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from haina.catalog import service as catalog
from haina.core.config import get_settings
from haina.core.context import Tenant
from haina.core.db import insert_rows, is_postgres, rowcount, tenant_row, utcnow
from haina.core.errors import Conflict, Invalid, NotFound
from haina.core.ids import new_id
from haina.core.money import Money, from_minor, to_minor
from haina.crossborder.identity import keys_from_settings, mask
from haina.crossborder.models import CrossborderOrder, CrossborderProduct, CrossborderQuota

# foreign brands' qualification files: an aggregate of their own, in its own file
from haina.crossborder.qualification import BrandNotQualified as BrandNotQualified
from haina.crossborder.qualification import decide_brand as decide_brand
from haina.crossborder.qualification import delegate_review as delegate_review
from haina.crossborder.qualification import follow_up_brands as follow_up_brands
from haina.crossborder.qualification import get_brand as get_brand
from haina.crossborder.qualification import list_brands as list_brands
from haina.crossborder.qualification import list_reviewers as list_reviewers
from haina.crossborder.qualification import qualified_brand as qualified_brand
from haina.crossborder.qualification import resubmit_brand as resubmit_brand
from haina.crossborder.qualification import review_brand as review_brand
from haina.crossborder.qualification import review_queue as review_queue
from haina.crossborder.qualification import submit_brand as submit_brand
from haina.crossborder.qualification import withdraw_delegation as withdraw_delegation
from haina.crossborder.schemas import (
    BuyerOut,
    CrossborderClaim,
    CrossborderIn,
    CrossborderOrderOut,
    CrossborderProductIn,
    CrossborderProductOut,
    TaxLineOut,
    TaxQuoteIn,
    TaxQuoteOut,
)
from haina.crossborder.tax import LineTax, composite_tax, tax_summary

CNY = "CNY"
# the calendar year of the yearly quota is China's (a buyer's 1 January starts at 16:00 UTC)
CHINA = ZoneInfo("Asia/Shanghai")


class QuotaExceeded(Conflict):
    slug, title = "quota-exceeded", "Over the cross-border quota"


# ---------------------------------------------------------------- tax

def _line_out(tax: LineTax, product_id: str | None = None) -> TaxLineOut:
    return TaxLineOut(product_id=product_id, amount=tax.price, vat_rate=tax.vat_rate,
                      consumption_rate=tax.consumption_rate,
                      consumption_tax=tax.consumption_tax, vat=tax.vat, tariff=tax.tariff,
                      total=tax.total)


def _quote_out(lines: list[TaxLineOut], taxes: list[LineTax]) -> TaxQuoteOut:
    s = tax_summary(taxes)
    return TaxQuoteOut(lines=lines, consumption_tax=Decimal(s["consumption_tax"]),
                       vat=Decimal(s["vat"]), tariff=Decimal(s["tariff"]),
                       total=Decimal(s["total"]))


def quote_tax(session: Session, tenant: Tenant, data: TaxQuoteIn) -> TaxQuoteOut:
    """The composite tax of each line and of all (rates given, a product's, or the defaults)."""
    products = _products(session, tenant, [ln.product_id for ln in data.lines if ln.product_id])
    taxes, outs = [], []
    for ln in data.lines:
        if ln.product_id:
            p = products.get(ln.product_id)
            if p is None:
                raise NotFound(f"product {ln.product_id!r} has no cross-border facts",
                               slug="crossborder-product-not-found", product_id=ln.product_id)
            tax = composite_tax(ln.amount, Decimal(p.vat_rate), Decimal(p.consumption_rate))
        else:
            tax = composite_tax(ln.amount,
                                ln.vat_rate if ln.vat_rate is not None else Decimal("0.13"),
                                ln.consumption_rate or Decimal(0))
        taxes.append(tax)
        outs.append(_line_out(tax, ln.product_id))
    return _quote_out(outs, taxes)


# ---------------------------------------------------------------- products

def _products(session: Session, tenant: Tenant, ids: Sequence[str]) -> dict[str, CrossborderProduct]:
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(select(CrossborderProduct).where(
        CrossborderProduct.tenant_id == tenant.id, CrossborderProduct.id.in_(set(ids))))}


def _product_out(p: CrossborderProduct) -> CrossborderProductOut:
    return CrossborderProductOut(
        product_id=p.id, enabled=p.enabled, hs_code=p.hs_code, origin_country=p.origin_country,
        vat_rate=Decimal(p.vat_rate), consumption_rate=Decimal(p.consumption_rate),
        net_weight_kg=Decimal(p.net_weight_g).scaleb(-3),
        gross_weight_kg=Decimal(p.gross_weight_g).scaleb(-3), mode=p.mode,
        brand_id=p.brand_id, updated_at=p.updated_at)


def put_product(session: Session, tenant: Tenant, product_id: str,
                data: CrossborderProductIn) -> CrossborderProductOut:
    """Set a catalogue product's cross-border facts (404 for a product not in the catalogue).
    An enabled product is listed under an approved brand (409 ``brand-not-qualified``)."""
    catalog.get_product(session, tenant, product_id)
    if data.enabled:
        qualified_brand(session, tenant, data.brand_id)
    elif data.brand_id is not None:
        get_brand(session, tenant, data.brand_id)  # 404 for a brand not the merchant's
    now = utcnow()
    row = session.scalar(select(CrossborderProduct).where(
        CrossborderProduct.tenant_id == tenant.id, CrossborderProduct.id == product_id)
        .with_for_update())
    if row is None:
        row = CrossborderProduct(id=product_id, tenant_id=tenant.id, created_at=now)
        session.add(row)
    row.enabled, row.hs_code, row.origin_country = data.enabled, data.hs_code, data.origin_country
    row.vat_rate, row.consumption_rate = str(data.vat_rate), str(data.consumption_rate)
    row.net_weight_g = int(data.net_weight_kg * 1000)
    row.gross_weight_g = int(data.gross_weight_kg * 1000)
    row.mode, row.updated_at, row.brand_id = data.mode, now, data.brand_id
    session.flush()
    # the catalogue's copy, which the order path reads: an enabled product's orders name
    # their buyer; a disabled one is the merchant's general trade again
    catalog.set_trade_mode(session, tenant, [product_id], "crossborder" if data.enabled else None)
    return _product_out(row)


def get_product(session: Session, tenant: Tenant, product_id: str) -> CrossborderProductOut:
    return _product_out(tenant_row(session, tenant.id, CrossborderProduct, product_id,
                                   "crossborder product"))


# ---------------------------------------------------------------- an order's cross-border part

def _allocate(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights``, largest remainders first: sums exactly."""
    whole = sum(weights)
    if whole == 0 or total == 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: -(total * weights[i] % whole))
    for i in order[:total - sum(shares)]:
        shares[i] += 1
    return shares


def _year(now: dt.datetime) -> int:
    return now.astimezone(CHINA).year


def _cny(minor: int) -> Money:
    return Money.of(minor, CNY)


def claim_order(session: Session, tenant: Tenant, data: CrossborderIn, *, order_id: str,
                lines: Sequence[tuple[str, int]], discount_minor: int, shipping_minor: int,
                currency: str, now: dt.datetime) -> CrossborderClaim:
    """Check, tax and claim the quotas of a cross-border order whose goods are ``lines``
    ((product id, minor units) per line), in the order's transaction. The dutiable price
    (goods − discount + shipping, shared over the lines in proportion to their goods) is what
    the tax is levied on and what the quotas count. 422 ``crossborder-currency``,
    ``payer-mismatch``, ``not-crossborder-product``; 409 ``quota-exceeded``."""
    if currency != CNY:
        raise Invalid(f"a cross-border order is priced in CNY, this one in {currency}",
                      slug="crossborder-currency")
    buyer = data.buyer
    if data.payer and (data.payer.name != buyer.name or data.payer.id_number != buyer.id_number):
        field = "name" if data.payer.name != buyer.name else "id_number"
        raise Invalid(f"the payer's {field.replace('_', ' ')} differs from the buyer's: the "
                      "payer must be the orderer", slug="payer-mismatch", field=field)
    products = _products(session, tenant, [p for p, _ in lines])
    for product_id, _ in lines:
        p = products.get(product_id)
        if p is None or not p.enabled:
            raise Invalid(f"product {product_id!r} is not sold cross-border",
                          slug="not-crossborder-product", product_id=product_id)
    goods = [minor for _, minor in lines]
    discounts = _allocate(discount_minor, goods)
    freight = _allocate(shipping_minor, goods)
    dutiable_lines = [g - d + f for g, d, f in zip(goods, discounts, freight, strict=True)]
    dutiable = sum(dutiable_lines)
    settings = get_settings()
    order_limit = to_minor(settings.crossborder_order_limit, CNY)
    if dutiable > order_limit:
        raise QuotaExceeded(
            f"a cross-border order is worth at most {settings.crossborder_order_limit} CNY; "
            f"this one {from_minor(dutiable, CNY)} CNY, {from_minor(dutiable - order_limit, CNY)} "
            "over", limit="order", limit_amount=_cny(order_limit).model_dump(mode="json"),
            remaining=_cny(order_limit).model_dump(mode="json"),
            over=_cny(dutiable - order_limit).model_dump(mode="json"))
    taxes = []
    for (product_id, _), price_minor in zip(lines, dutiable_lines, strict=True):
        p = products[product_id]
        taxes.append(_line_out(composite_tax(from_minor(price_minor, CNY), Decimal(p.vat_rate),
                                             Decimal(p.consumption_rate)), product_id))
    tax_minor = sum(to_minor(t.total, CNY) for t in taxes)
    keys = keys_from_settings()
    key_id, cipher = keys.seal(buyer.id_number)
    index = keys.blind_index(buyer.id_number)
    year = _year(now)
    _claim_year(session, tenant, index, year, dutiable, now)
    row = {"id": order_id, "tenant_id": tenant.id, "buyer_name": buyer.name,
           "buyer_phone": buyer.phone, "id_key": key_id, "id_cipher": cipher, "id_index": index,
           "id_masked": mask(buyer.id_number), "dutiable_minor": dutiable, "tax_minor": tax_minor,
           "tax_lines": [t.model_dump(mode="json") for t in taxes], "quota_year": year,
           "quota_status": "claimed", "quota_returned_minor": 0, "tax_refunded_minor": 0,
           "created_at": now, "released_at": None}
    insert_rows(session, CrossborderOrder.__table__, row)  # with the order's rows
    return CrossborderClaim(tax_minor=tax_minor, record=_record_out(row))


def _claim_year(session: Session, tenant: Tenant, index: str, year: int, amount: int,
                now: dt.datetime) -> None:
    limit = to_minor(get_settings().crossborder_year_limit, CNY)
    table = CrossborderQuota.__table__
    dialect_insert = postgresql.insert if is_postgres(session) else sqlite.insert
    # the counter row exists once per (identity, year): made if missing, never twice
    session.execute(dialect_insert(table).values(
        id=new_id("crossborder_quota"), tenant_id=tenant.id, id_index=index, year=year,
        used_minor=0, updated_at=now).on_conflict_do_nothing(
        index_elements=["tenant_id", "id_index", "year"]))
    taken = rowcount(session.execute(
        update(CrossborderQuota).where(CrossborderQuota.tenant_id == tenant.id,
                                       CrossborderQuota.id_index == index,
                                       CrossborderQuota.year == year,
                                       CrossborderQuota.used_minor + amount <= limit)
        .values(used_minor=CrossborderQuota.used_minor + amount, updated_at=now)
        .execution_options(synchronize_session=False)))
    if taken:
        return
    used = session.scalar(select(CrossborderQuota.used_minor).where(
        CrossborderQuota.tenant_id == tenant.id, CrossborderQuota.id_index == index,
        CrossborderQuota.year == year)) or 0
    remaining = max(limit - used, 0)
    raise QuotaExceeded(
        f"this buyer may import goods worth {from_minor(limit, CNY)} CNY in {year}; "
        f"{from_minor(remaining, CNY)} CNY remain, this order is worth {from_minor(amount, CNY)} "
        f"CNY ({from_minor(amount - remaining, CNY)} over)", limit="year", year=year,
        limit_amount=_cny(limit).model_dump(mode="json"),
        remaining=_cny(remaining).model_dump(mode="json"),
        over=_cny(amount - remaining).model_dump(mode="json"))


def _claimed(session: Session, tenant: Tenant, order_id: str) -> CrossborderOrder | None:
    return session.scalar(select(CrossborderOrder).where(
        CrossborderOrder.tenant_id == tenant.id, CrossborderOrder.id == order_id,
        CrossborderOrder.quota_status == "claimed").with_for_update())


def _give_back(session: Session, tenant: Tenant, row: CrossborderOrder, amount: int,
               now: dt.datetime) -> None:
    session.execute(update(CrossborderQuota).where(
        CrossborderQuota.tenant_id == tenant.id, CrossborderQuota.id_index == row.id_index,
        CrossborderQuota.year == row.quota_year)
        .values(used_minor=CrossborderQuota.used_minor - amount, updated_at=now)
        .execution_options(synchronize_session=False))


def release_order(session: Session, tenant: Tenant, order_id: str) -> None:
    """Give back the yearly quota a cancelled or fully refunded order claimed (if it is a
    cross-border order that still holds one): what partial refunds have not given back."""
    row = _claimed(session, tenant, order_id)
    if row is None:
        return
    now = utcnow()
    _give_back(session, tenant, row, row.dutiable_minor - row.quota_returned_minor, now)
    row.quota_status, row.released_at = "released", now
    row.quota_returned_minor = row.dutiable_minor
    session.flush()


def return_quota(session: Session, tenant: Tenant, order_id: str, *, refunded_minor: int,
                 paid_minor: int) -> None:
    """After a refund of a paid cross-border order (``refunded_minor``: all its refunds so
    far, of ``paid_minor``): the yearly quota comes back in proportion to the amount
    refunded, rounded down to the fen (the buyer never regains more than the goods returned;
    the last refund gives back the rest), and the tax's share of it is recorded. A full
    refund releases the claim. The rule: docs/crossborder.md, partial refunds."""
    row = _claimed(session, tenant, order_id)
    if row is None or paid_minor <= 0:
        return
    refunded = min(refunded_minor, paid_minor)
    row.tax_refunded_minor = int((Decimal(row.tax_minor) * refunded / paid_minor)
                                 .quantize(Decimal(1), ROUND_HALF_EVEN))  # to the fen
    if refunded >= paid_minor:
        release_order(session, tenant, order_id)
        return
    returned = row.dutiable_minor * refunded // paid_minor
    if returned > row.quota_returned_minor:
        _give_back(session, tenant, row, returned - row.quota_returned_minor, utcnow())
        row.quota_returned_minor = returned
    session.flush()


def _record_out(r: dict, id_number: str | None = None) -> CrossborderOrderOut:
    return CrossborderOrderOut(
        order_id=r["id"], buyer=BuyerOut(name=r["buyer_name"],
                                         id_number=id_number or r["id_masked"],
                                         phone=r["buyer_phone"]),
        dutiable=_cny(r["dutiable_minor"]), tax=_cny(r["tax_minor"]),
        tax_lines=[TaxLineOut.model_validate(t) for t in r["tax_lines"]],
        quota_year=r["quota_year"], quota_status=r["quota_status"],
        quota_returned=_cny(r.get("quota_returned_minor") or 0),
        tax_refunded=_cny(r.get("tax_refunded_minor") or 0), created_at=r["created_at"])


def _values(row: CrossborderOrder) -> dict:
    return {c.key: getattr(row, c.key) for c in CrossborderOrder.__mapper__.column_attrs}


def order_records(session: Session, tenant: Tenant,
                  order_ids: Sequence[str]) -> dict[str, CrossborderOrderOut]:
    """The cross-border parts of these orders (those that have one), ID numbers masked."""
    if not order_ids:
        return {}
    return {r.id: _record_out(_values(r)) for r in session.scalars(select(CrossborderOrder).where(
        CrossborderOrder.tenant_id == tenant.id, CrossborderOrder.id.in_(list(order_ids))))}


def get_order_record(session: Session, tenant: Tenant, order_id: str, *,
                     reveal: bool = False) -> CrossborderOrderOut:
    """An order's cross-border part; the ID number unmasked only if ``reveal`` (the caller
    has checked the ``crossborder:identity`` scope)."""
    row = tenant_row(session, tenant.id, CrossborderOrder, order_id, "crossborder order")
    # an erased buyer's number is gone: only its masked form is left to show
    number = keys_from_settings().open(row.id_key, row.id_cipher) \
        if reveal and row.id_cipher else None
    return _record_out(_values(row), number)


# the customs declarations (their own file: they are an aggregate of their own)
# read for the merchant's screens (the console)
from haina.crossborder.declaration_reads import (  # noqa: E402
    DECLARATION_STATUSES as DECLARATION_STATUSES,
)
from haina.crossborder.declaration_reads import (  # noqa: E402
    declaration_of_order as declaration_of_order,
)
from haina.crossborder.declaration_reads import document_check as document_check  # noqa: E402
from haina.crossborder.declaration_reads import list_declarations as list_declarations  # noqa: E402
from haina.crossborder.declarations import (  # noqa: E402
    declaration_messages as declaration_messages,
)
from haina.crossborder.declarations import declare as declare  # noqa: E402
from haina.crossborder.declarations import get_customs_profile as get_customs_profile  # noqa: E402
from haina.crossborder.declarations import get_declaration as get_declaration  # noqa: E402
from haina.crossborder.declarations import get_tracking as get_tracking  # noqa: E402
from haina.crossborder.declarations import ingest_receipt as ingest_receipt  # noqa: E402
from haina.crossborder.declarations import put_customs_profile as put_customs_profile  # noqa: E402
from haina.crossborder.declarations import record_tracking as record_tracking  # noqa: E402
from haina.crossborder.declarations import reseal as reseal  # noqa: E402

# a buyer's personal information, for the privacy module's data requests
from haina.crossborder.personal import erase_orders as erase_orders  # noqa: E402
from haina.crossborder.personal import export_orders as export_orders  # noqa: E402
from haina.crossborder.personal import (  # noqa: E402
    order_personal_values as order_personal_values,
)
