"""Coupons: create, read, change, and the claim an order makes inside its own transaction.

A claim is one conditional UPDATE of the coupon's row (``redeemed < max_redemptions``), which
also locks the row until the order's transaction ends: the per-member count read after it
cannot be raced by another claim of the same coupon. An order's cancellation releases its
claim (and the count). Lock order, after the order's stock and the member's points: coupons
come last, in placing and in cancelling alike (orders.service.lock_order's rule).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from haina.catalog import service as catalog
from haina.core.context import Tenant
from haina.core.db import add_unique, rowcount, tenant_row, utcnow
from haina.core.errors import Conflict, Invalid, NotFound
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.money import Money, bps
from haina.core.pagination import Page, paginate
from haina.marketing.models import Coupon, CouponRedemption
from haina.marketing.schemas import (
    CouponCreate,
    CouponDiscountOut,
    CouponOut,
    CouponUpdate,
    bps_percent,
    percent_bps,
)
from haina.members import service as members


class CouponNotUsable(Invalid):
    slug, title = "coupon-not-usable", "This coupon cannot be used on this order"


class CouponExhausted(Conflict):
    slug, title = "coupon-exhausted", "This coupon has been used up"


def _money(minor: int | None, currency: str) -> Money | None:
    return Money.of(minor, currency) if minor is not None else None


def _out(c: Coupon) -> CouponOut:
    discount = CouponDiscountOut(
        type=c.kind, amount=_money(c.amount_minor, c.currency),
        percent=str(bps_percent(c.percent_bps)) if c.percent_bps is not None else None)
    return CouponOut(id=c.id, code=c.code, discount=discount,
                     min_spend=_money(c.min_spend_minor or None, c.currency),
                     max_discount=_money(c.max_discount_minor, c.currency),
                     usage_limit=c.max_redemptions, per_member_limit=c.per_member_limit,
                     redeemed=c.redeemed, starts_at=c.starts_at, ends_at=c.ends_at,
                     product_ids=c.product_ids, category_ids=c.category_ids,
                     tier_ids=c.tier_ids, status=c.status, description=c.description, created_at=c.created_at)


def create_coupon(session: Session, tenant: Tenant, data: CouponCreate) -> CouponOut:
    currency = tenant.currency
    for name, value in (("discount.amount", data.discount.amount), ("min_spend", data.min_spend),
                        ("max_discount", data.max_discount)):
        if value is not None and value.currency != currency:
            raise Invalid(f"{name} must be in the merchant's currency {currency}",
                          slug="wrong-currency")
    for product_id in data.product_ids or ():
        catalog.get_product(session, tenant, product_id)  # 404 product-not-found
    for category_id in data.category_ids or ():
        catalog.check_category(session, tenant, category_id)
    for tier_id in data.tier_ids or ():
        members.get_tier(session, tenant, tier_id)
    code = data.code.upper()
    d = data.discount
    row = Coupon(id=new_id("coupon"), tenant_id=tenant.id, code=code, kind=d.type,
                 percent_bps=percent_bps(d.percent) if d.percent is not None else None,
                 amount_minor=d.amount.minor if d.amount else None,
                 currency=currency,
                 min_spend_minor=data.min_spend.minor if data.min_spend else 0,
                 max_discount_minor=data.max_discount.minor if data.max_discount else None,
                 max_redemptions=data.usage_limit, per_member_limit=data.per_member_limit,
                 redeemed=0, starts_at=data.starts_at, ends_at=data.ends_at, status="active",
                 product_ids=data.product_ids, category_ids=data.category_ids,
                 tier_ids=data.tier_ids,
                 description=data.description, created_at=utcnow())
    add_unique(session, row, lambda: Conflict(f"a coupon with code {code!r} exists",
                                              slug="coupon-code-taken"))
    record_event(session, tenant.id, "coupon.created", row.id, {"code": code, "kind": d.type})
    return _out(row)


def get_coupon(session: Session, tenant: Tenant, coupon_id: str) -> CouponOut:
    return _out(tenant_row(session, tenant.id, Coupon, coupon_id, "coupon"))


def list_coupons(session: Session, tenant: Tenant, *, status: str | None = None,
                 code: str | None = None, limit: int = 50,
                 cursor: str | None = None) -> Page[CouponOut]:
    stmt = select(Coupon).where(Coupon.tenant_id == tenant.id)
    if status:
        stmt = stmt.where(Coupon.status == status)
    if code:
        stmt = stmt.where(Coupon.code == code.upper())
    return paginate(session, stmt, Coupon.id, limit=limit, cursor=cursor, convert=_out,
                    kind="coupon")


def update_coupon(session: Session, tenant: Tenant, coupon_id: str,
                  data: CouponUpdate) -> CouponOut:
    row = tenant_row(session, tenant.id, Coupon, coupon_id, "coupon", lock=True)
    changes = data.model_dump(exclude_unset=True)
    if "ends_at" in changes and changes["ends_at"] is not None:
        if changes["ends_at"].tzinfo is None:
            raise Invalid("ends_at needs a time zone", slug="validation-error")
        if row.starts_at and changes["ends_at"] <= row.starts_at:
            raise Invalid("ends_at must be after starts_at", slug="validation-error")
    if changes.get("usage_limit") is not None and changes["usage_limit"] < row.redeemed:
        raise Invalid(f"{row.redeemed} claims are held already; usage_limit cannot be "
                      "lower", slug="below-redeemed")
    for name, value in changes.items():
        if value is not None or name == "ends_at":
            setattr(row, "max_redemptions" if name == "usage_limit" else name, value)
    record_event(session, tenant.id, "coupon.updated", row.id,
                 {k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                  for k, v in changes.items()})
    session.flush()
    return _out(row)


def claim(session: Session, tenant: Tenant, code: str, *, order_id: str, member_id: str | None,
          lines: list[tuple[str, int]], currency: str,
          now: dt.datetime | None = None) -> tuple[str, int]:
    """Claim coupon ``code`` for an order whose goods are ``lines`` ((product id, minor
    units), one per line): (the stored code, the discount in minor units). Targets narrow the
    goods the discount and the minimum spend count. 404 ``coupon-not-found``; 422
    ``coupon-not-usable`` with the reason (not yet valid, expired, disabled, another currency,
    no goods it targets, below the minimum spend, not the member's tier, used up, the member's
    limit reached)."""
    now = now or utcnow()
    code = code.upper()
    coupon = session.scalar(select(Coupon).where(Coupon.tenant_id == tenant.id,
                                                 Coupon.code == code))
    if coupon is None:
        raise NotFound(f"no coupon {code!r}", slug="coupon-not-found")
    if coupon.status != "active":
        raise CouponNotUsable(f"coupon {code} is disabled", reason="disabled")
    if coupon.starts_at and now < coupon.starts_at:
        raise CouponNotUsable(f"coupon {code} is valid from {coupon.starts_at.isoformat()}",
                              reason="not-started")
    if coupon.ends_at and now >= coupon.ends_at:
        raise CouponNotUsable(f"coupon {code} expired at {coupon.ends_at.isoformat()}",
                              reason="expired")
    if coupon.currency != currency:
        raise CouponNotUsable(f"coupon {code} is in {coupon.currency}, the order in {currency}",
                              reason="currency")
    goods_minor = _eligible_goods(session, tenant, coupon, lines)
    if goods_minor == 0 and (coupon.product_ids or coupon.category_ids):
        raise CouponNotUsable(f"coupon {code} is for other goods than this order's",
                              reason="no-eligible-goods")
    if goods_minor < coupon.min_spend_minor:
        spend = Money.of(coupon.min_spend_minor, currency)
        raise CouponNotUsable(f"coupon {code} needs goods worth {spend.amount} {currency}",
                              reason="min-spend")
    if coupon.tier_ids:
        tier = members.get_member(session, tenant, member_id).tier if member_id else None
        if member_id is None:
            raise CouponNotUsable(f"coupon {code} is for members of some tiers: the order "
                                  "needs a member", reason="member-required")
        if tier is None or tier.id not in coupon.tier_ids:
            raise CouponNotUsable(f"coupon {code} is for members of other tiers", reason="tier")
    if coupon.per_member_limit is not None and member_id is None:
        raise CouponNotUsable(f"coupon {code} is limited per member: the order needs a member",
                              reason="member-required")
    # the claim: one conditional UPDATE (it also locks the row for the checks below)
    taken = rowcount(session.execute(
        update(Coupon).where(Coupon.tenant_id == tenant.id, Coupon.id == coupon.id,
                             Coupon.status == "active",
                             (Coupon.max_redemptions.is_(None))
                             | (Coupon.redeemed < Coupon.max_redemptions))
        .values(redeemed=Coupon.redeemed + 1)
        .execution_options(synchronize_session=False)))
    if not taken:
        raise CouponExhausted(f"coupon {code} has been used up ({coupon.max_redemptions} "
                              "claims held)", reason="used-up")
    if coupon.per_member_limit is not None:
        held = session.scalar(select(func.count()).select_from(CouponRedemption).where(
            CouponRedemption.tenant_id == tenant.id, CouponRedemption.coupon_id == coupon.id,
            CouponRedemption.member_id == member_id, CouponRedemption.status == "claimed"))
        if (held or 0) >= coupon.per_member_limit:
            raise CouponNotUsable(f"this member has used coupon {code} "
                                  f"{coupon.per_member_limit} time(s) already",
                                  reason="member-limit")
    if coupon.kind == "percent":
        discount = bps(goods_minor, coupon.percent_bps or 0)
        if coupon.max_discount_minor is not None:
            discount = min(discount, coupon.max_discount_minor)
    else:
        discount = coupon.amount_minor or 0
    discount = min(discount, goods_minor)
    session.add(CouponRedemption(id=new_id("coupon_redemption"), tenant_id=tenant.id,
                                 coupon_id=coupon.id, order_id=order_id, member_id=member_id,
                                 discount_minor=discount, status="claimed", created_at=now))
    return code, discount


def _eligible_goods(session: Session, tenant: Tenant, coupon: Coupon,
                    lines: list[tuple[str, int]]) -> int:
    """The worth of the lines the coupon targets (all lines when it targets none)."""
    if not coupon.product_ids and not coupon.category_ids:
        return sum(minor for _, minor in lines)
    products = set(coupon.product_ids or ())
    categories = set(coupon.category_ids or ())
    category_of = catalog.product_categories(session, tenant, [p for p, _ in lines]) \
        if categories else {}
    return sum(minor for product_id, minor in lines
               if product_id in products or category_of.get(product_id) in categories)


def release(session: Session, tenant: Tenant, order_id: str) -> None:
    """Give back the claim of a cancelled order (if it held one)."""
    now = utcnow()
    for r in session.scalars(select(CouponRedemption).where(
            CouponRedemption.tenant_id == tenant.id, CouponRedemption.order_id == order_id,
            CouponRedemption.status == "claimed").with_for_update()):
        r.status, r.released_at = "released", now
        session.execute(update(Coupon).where(Coupon.tenant_id == tenant.id,
                                             Coupon.id == r.coupon_id)
                        .values(redeemed=Coupon.redeemed - 1)
                        .execution_options(synchronize_session=False))
    session.flush()
