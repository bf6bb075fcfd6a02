"""Marketing's public face: coupons (create, read, change, the claim an order makes inside
its own transaction), promotions (``promotions.py``), and pricing a cart through the engine
(``pricing.py``: pure, no database) with the claims an order makes of what its price uses.

A claim is one conditional UPDATE of the coupon's row (``redeemed < max_redemptions``), which
also locks the row until the order's transaction ends: the per-member count read after it
cannot be raced by another claim of the same coupon. An order's cancellation releases its
claim (and the count). Lock order, after the order's stock and the member's points: coupons
come last, in placing and in cancelling alike (orders.service.lock_order's rule).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from haina.catalog import service as catalog
from haina.core import caches
from haina.core.context import Tenant
from haina.core.db import Precompiled, add_unique, insert_rows, rowcount, tenant_row, utcnow
from haina.core.errors import Conflict, Invalid, NotFound
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.money import Money
from haina.core.pagination import Page, paginate
from haina.core.personal import export_rows
from haina.marketing import pricing, promotions
from haina.marketing.models import Coupon, CouponRedemption, PromotionRedemption, WalletCoupon
from haina.marketing.pricing import Cart, PricedCart, Rule
from haina.marketing.pricing import with_points as with_points
from haina.marketing.promotions import create_promotion as create_promotion
from haina.marketing.promotions import get_promotion as get_promotion
from haina.marketing.promotions import list_promotions as list_promotions
from haina.marketing.promotions import update_promotion as update_promotion
from haina.marketing.schemas import (
    CouponBatchCreate,
    CouponBatchOut,
    CouponCreate,
    CouponDiscountOut,
    CouponIssueOut,
    CouponOut,
    CouponUpdate,
    WalletCouponOut,
    _CouponTerms,
    bps_percent,
    percent_bps,
)
from haina.members import service as members


class CouponNotUsable(Invalid):
    slug, title = "coupon-not-usable", "This coupon cannot be used on this order"


class CouponExhausted(Conflict):
    slug, title = "coupon-exhausted", "This coupon has been used up"


class CouponPaused(CouponNotUsable):
    slug, title = "coupon-paused", "This coupon is paused"


def _not_active(code: str, status: str) -> CouponNotUsable:
    """The refusal of a coupon that is not active: paused (for now: its campaign is paused)
    or disabled."""
    if status == "paused":
        return CouponPaused(f"coupon {code} is paused: it can be used again when it resumes",
                            reason="paused")
    return CouponNotUsable(f"coupon {code} is disabled", reason="disabled")


class CouponNotIssued(Invalid):
    slug, title = "coupon-not-issued", "This coupon was not issued to this member"


def _money(minor: int | None, currency: str) -> Money | None:
    return Money.of(minor, currency) if minor is not None else None


def _discount_out(c: Coupon) -> CouponDiscountOut:
    return CouponDiscountOut(
        type=c.kind, amount=_money(c.amount_minor, c.currency),
        percent=str(bps_percent(c.percent_bps)) if c.percent_bps is not None else None)


def _out(c: Coupon) -> CouponOut:
    discount = _discount_out(c)
    return CouponOut(id=c.id, code=c.code, discount=discount,
                     min_spend=_money(c.min_spend_minor or None, c.currency),
                     max_discount=_money(c.max_discount_minor, c.currency),
                     usage_limit=c.max_redemptions, per_member_limit=c.per_member_limit,
                     redeemed=c.redeemed, starts_at=c.starts_at, ends_at=c.ends_at,
                     product_ids=c.product_ids, category_ids=c.category_ids,
                     tier_ids=c.tier_ids, status=c.status, description=c.description,
                     created_at=c.created_at, audience=c.audience, issued=c.issued)


def _check_terms(session: Session, tenant: Tenant, data: _CouponTerms) -> None:
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


def _row_values(tenant: Tenant, data: _CouponTerms, code: str, now: dt.datetime) -> dict:
    d = data.discount
    return dict(id=new_id("coupon"), tenant_id=tenant.id, code=code, kind=d.type,
                percent_bps=percent_bps(d.percent) if d.percent is not None else None,
                amount_minor=d.amount.minor if d.amount else None, currency=tenant.currency,
                min_spend_minor=data.min_spend.minor if data.min_spend else 0,
                max_discount_minor=data.max_discount.minor if data.max_discount else None,
                max_redemptions=data.usage_limit, per_member_limit=data.per_member_limit,
                redeemed=0, starts_at=data.starts_at, ends_at=data.ends_at, status="active",
                product_ids=data.product_ids, category_ids=data.category_ids,
                tier_ids=data.tier_ids, description=data.description, created_at=now,
                audience=data.audience, issued=0)


def create_coupon(session: Session, tenant: Tenant, data: CouponCreate) -> CouponOut:
    _check_terms(session, tenant, data)
    code = data.code.upper()
    row = Coupon(**_row_values(tenant, data, code, utcnow()))
    add_unique(session, row, lambda: Conflict(f"a coupon with code {code!r} exists",
                                              slug="coupon-code-taken"))
    record_event(session, tenant.id, "coupon.created", row.id,
                 {"code": code, "kind": data.discount.type})
    return _out(row)


_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud, typed by hand


def create_coupon_batch(session: Session, tenant: Tenant,
                        data: CouponBatchCreate) -> CouponBatchOut:
    """``count`` coupons with generated codes (32^8 per prefix: a code already taken is drawn
    again; a concurrent batch drawing the same code fails this one with 409)."""
    _check_terms(session, tenant, data)
    prefix = data.prefix.upper()
    codes: set[str] = set()
    for _ in range(5):
        while len(codes) < data.count:
            codes.add(f"{prefix}-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8)))
        taken = set(session.scalars(select(Coupon.code).where(
            Coupon.tenant_id == tenant.id, Coupon.code.in_(sorted(codes)))))
        if not taken:
            break
        codes -= taken
    now = utcnow()
    ordered = sorted(codes)
    try:
        with session.begin_nested():
            session.execute(insert(Coupon.__table__),
                            [_row_values(tenant, data, code, now) for code in ordered])
    except IntegrityError:
        raise Conflict("a concurrent request took one of the generated codes; try again",
                       slug="coupon-code-taken") from None
    record_event(session, tenant.id, "coupon.batch_created", None,
                 {"prefix": prefix, "count": len(ordered), "kind": data.discount.type})
    return CouponBatchOut(count=len(ordered), codes=ordered)


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


_C = Coupon.__table__.c
# the order path's two coupon statements, compiled once
_COUPON_BY_CODE = Precompiled(
    select(*Coupon.__table__.c).where(_C.tenant_id == bindparam("tenant_id"),
                                      _C.code == bindparam("code")), typed=True)
_CLAIM_COUPON = Precompiled(
    update(Coupon.__table__).where(
        _C.tenant_id == bindparam("tenant_id"), _C.id == bindparam("id"),
        _C.status == bindparam("status"),
        _C.max_redemptions.is_(None) | (_C.redeemed < _C.max_redemptions))
    .values(redeemed=_C.redeemed + bindparam("one", type_=_C.redeemed.type))
    .returning(_C.id, _C.code, _C.max_redemptions, _C.per_member_limit, _C.issued,
               _C.audience))


# a coupon's change (status, window, terms; issuing moves ``issued``) alters what is kept of it
caches.watch("coupons", (Coupon,))


def _coupon_record(session: Session, tenant: Tenant, code: str, *, fresh: bool) -> Any:
    """The coupon whose stored code is ``code`` (the row's columns by name), or None.

    Unless ``fresh``, from this process's ``coupons`` cache (:mod:`haina.core.caches`:
    PostgreSQL with the API's listener) when it holds it: every field but ``redeemed`` is then
    current, and ``redeemed`` is None: the claim's conditional UPDATE checks the count (and
    the status again)."""
    if not fresh:
        kept = caches.lookup(session, "coupons", tenant.id)
        if kept:
            found = kept.get(code)
            if found is not None:
                return found
    since = caches.generation(session, "coupons", tenant.id)
    rows = _COUPON_BY_CODE.records(session, {"tenant_id": tenant.id, "code": code})
    if not rows:
        return None
    # kept without its count (None), which claims and cancellations move without a notice
    caches.store(session, "coupons", tenant.id, since, [(code, rows[0]._replace(redeemed=None))])
    return rows[0]


def coupon_rule(session: Session, tenant: Tenant, code: str, cart: Cart, *,
                now: dt.datetime, preview: bool = False) -> tuple[str, Rule]:
    """The coupon ``code`` as a pricing rule for ``cart`` (its stored code, the rule), or a
    refusal: 404 ``coupon-not-found``; 409 ``coupon-exhausted`` when its limit is reached;
    422 ``coupon-not-usable`` with the reason (not yet valid, expired, disabled, another
    currency, no goods it targets, below the minimum spend, not the member's tier, the member's
    limit reached). Targets narrow the goods its discount and minimum spend count (list
    prices). A ``preview`` also reads the member's count, which a claim checks under lock.

    An order's pricing (not a ``preview``) may take the coupon from this process's cache,
    whose ``redeemed`` count is not current: the claim refuses a used-up coupon, and
    :func:`price_and_claim` reads the count when the best price leaves the coupon out."""
    code = code.upper()
    # the row's columns by name (not an ORM object: nothing is written)
    coupon = _coupon_record(session, tenant, code, fresh=preview)
    if coupon is None:
        raise NotFound(f"no coupon {code!r}", slug="coupon-not-found")
    if coupon.status != "active":
        raise _not_active(code, coupon.status)
    if coupon.starts_at and now < coupon.starts_at:
        raise CouponNotUsable(f"coupon {code} is valid from {coupon.starts_at.isoformat()}",
                              reason="not-started")
    if coupon.ends_at and now >= coupon.ends_at:
        raise CouponNotUsable(f"coupon {code} expired at {coupon.ends_at.isoformat()}",
                              reason="expired")
    currency = cart.currency
    if coupon.currency != currency:
        raise CouponNotUsable(f"coupon {code} is in {coupon.currency}, the order in {currency}",
                              reason="currency")
    rule = Rule(id=coupon.id, kind="coupon", currency=coupon.currency, name=code,
                source="coupon", stacking_group="coupon",
                product_ids=frozenset(coupon.product_ids) if coupon.product_ids else None,
                category_ids=frozenset(coupon.category_ids) if coupon.category_ids else None,
                tier_ids=frozenset(coupon.tier_ids) if coupon.tier_ids else None,
                min_subtotal=coupon.min_spend_minor, percent_bps=coupon.percent_bps,
                off=coupon.amount_minor, max_discount=coupon.max_discount_minor)
    goods = eligible_goods(rule, cart)
    if goods == 0 and (coupon.product_ids or coupon.category_ids):
        raise CouponNotUsable(f"coupon {code} is for other goods than this order's",
                              reason="no-eligible-goods")
    if goods < coupon.min_spend_minor:
        spend = Money.of(coupon.min_spend_minor, currency)
        raise CouponNotUsable(f"coupon {code} needs goods worth {spend.amount} {currency}",
                              reason="min-spend")
    if coupon.tier_ids:
        if cart.member_id is None:
            raise CouponNotUsable(f"coupon {code} is for members of some tiers: the order "
                                  "needs a member", reason="member-required")
        if cart.tier_id not in coupon.tier_ids:
            raise CouponNotUsable(f"coupon {code} is for members of other tiers", reason="tier")
    if coupon.per_member_limit is not None and cart.member_id is None:
        raise CouponNotUsable(f"coupon {code} is limited per member: the order needs a member",
                              reason="member-required")
    if coupon.audience == "issued" and cart.member_id is None:
        raise CouponNotIssued(f"coupon {code} is for the members it was issued to: the order "
                              "needs a member", reason="member-required")
    _refuse_if_used_up(code, coupon)
    if preview and coupon.audience == "issued":
        _check_held(session, tenant, coupon, cart.member_id)
    if preview and coupon.per_member_limit is not None:
        _check_member_limit(session, tenant, coupon, cart.member_id)
    return code, rule


class _Claimed(NamedTuple):
    """What a coupon claim reads back from its UPDATE (RETURNING: no second read)."""

    id: str
    code: str
    max_redemptions: int | None
    per_member_limit: int | None
    issued: int  # wallet entries made (0: never issued)
    audience: str


def _check_member_limit(session: Session, tenant: Tenant, coupon: Coupon | _Claimed,
                        member_id: str | None) -> None:
    held = session.scalar(select(func.count()).select_from(CouponRedemption).where(
        CouponRedemption.tenant_id == tenant.id, CouponRedemption.coupon_id == coupon.id,
        CouponRedemption.member_id == member_id, CouponRedemption.status == "claimed"))
    if (held or 0) >= (coupon.per_member_limit or 0):
        raise CouponNotUsable(f"this member has used coupon {coupon.code} "
                              f"{coupon.per_member_limit} time(s) already",
                              reason="member-limit")


def _check_held(session: Session, tenant: Tenant, coupon: Coupon | _Claimed,
                member_id: str | None) -> None:
    status = session.scalar(select(WalletCoupon.status).where(
        WalletCoupon.tenant_id == tenant.id, WalletCoupon.coupon_id == coupon.id,
        WalletCoupon.member_id == member_id))
    if status is None:
        raise CouponNotIssued(f"coupon {coupon.code} was not issued to this member",
                              reason="not-held")
    if status != "issued":
        raise CouponNotIssued(f"this member has used coupon {coupon.code} already",
                              reason="used")


def claim_coupon(session: Session, tenant: Tenant, coupon_id: str, *, order_id: str,
                 member_id: str | None, discount_minor: int, now: dt.datetime) -> dict[str, Any]:
    """Claim the coupon for an order that uses it: one conditional UPDATE (which also locks
    the row, so the per-member count read after it cannot be raced, and reads back what the
    checks need), then its record. A coupon that was ever issued also marks the member's wallet
    entry used (another conditional UPDATE); an issued-only coupon without one is refused.

    Returns the claim's record (a ``coupon_redemptions`` row), for the caller to insert with
    the order's other rows once every claim of the order holds (:func:`price_and_claim`);
    :func:`_unclaim_coupon` undoes the claim before that."""
    taken = _CLAIM_COUPON.rows(session, {"tenant_id": tenant.id, "id": coupon_id,
                                         "status": "active", "one": 1})
    if not taken:  # used up, or paused/disabled since it was priced (the UPDATE's status)
        coupon = session.get_one(Coupon, (tenant.id, coupon_id))
        if coupon.status != "active":
            raise _not_active(coupon.code, coupon.status)
        raise _used_up(coupon.code, coupon.max_redemptions)
    claimed = _Claimed(*taken[0])
    if claimed.per_member_limit is not None:
        _check_member_limit(session, tenant, claimed, member_id)
    if claimed.issued and member_id is not None:  # coupons never issued skip the wallet
        used = rowcount(session.execute(
            update(WalletCoupon).where(WalletCoupon.tenant_id == tenant.id,
                                       WalletCoupon.coupon_id == coupon_id,
                                       WalletCoupon.member_id == member_id,
                                       WalletCoupon.status == "issued")
            .values(status="used", order_id=order_id, used_at=now)
            .execution_options(synchronize_session=False)))
        if not used and claimed.audience == "issued":
            _check_held(session, tenant, claimed, member_id)  # says which refusal
    elif claimed.audience == "issued":
        raise CouponNotIssued(f"coupon {claimed.code} was not issued to this member",
                              reason="not-held" if member_id else "member-required")
    return {"id": new_id("coupon_redemption"), "tenant_id": tenant.id, "coupon_id": coupon_id,
            "order_id": order_id, "member_id": member_id, "discount_minor": discount_minor,
            "status": "claimed", "created_at": now, "released_at": None}


def _check_not_used_up(session: Session, tenant: Tenant, code: str) -> None:
    """409 ``coupon-exhausted`` if the coupon's claims have reached its limit (a fresh read)."""
    coupon = _coupon_record(session, tenant, code, fresh=True)
    if coupon is not None:
        _refuse_if_used_up(code, coupon)


def _refuse_if_used_up(code: str, coupon: Any) -> None:
    """409 ``coupon-exhausted`` if the coupon row's count (None when kept: unknown) has
    reached its limit."""
    if coupon.max_redemptions is not None and coupon.redeemed is not None \
            and coupon.redeemed >= coupon.max_redemptions:
        raise _used_up(code, coupon.max_redemptions)


def _used_up(code: str, limit: int | None) -> CouponExhausted:
    return CouponExhausted(f"coupon {code} has been used up ({limit} claims held)",
                           reason="used-up")


def _unclaim_coupon(session: Session, tenant: Tenant, coupon_id: str, order_id: str) -> None:
    """Undo :func:`claim_coupon`: the count back, the wallet entry the member's again (a
    cancelled order's claim, or one made before the order was priced again)."""
    session.execute(update(Coupon).where(Coupon.tenant_id == tenant.id, Coupon.id == coupon_id)
                    .values(redeemed=Coupon.redeemed - 1)
                    .execution_options(synchronize_session=False))
    session.execute(update(WalletCoupon).where(WalletCoupon.tenant_id == tenant.id,
                                               WalletCoupon.order_id == order_id)
                    .values(status="issued", order_id=None, used_at=None)
                    .execution_options(synchronize_session=False))


def eligible_goods(rule: Rule, cart: Cart) -> int:
    """The list worth of the cart's lines a rule targets (all lines when it targets none)."""
    if rule.product_ids is None and rule.category_ids is None:
        return sum(ln.total for ln in cart.lines)
    products, categories = rule.product_ids or frozenset(), rule.category_ids or frozenset()
    return sum(ln.total for ln in cart.lines
               if ln.product_id in products or ln.category_id in categories)


# ---------------------------------------------------------------- pricing

def _facts(session: Session, tenant: Tenant, cart: Cart, rules: list[Rule],
           first_order: Callable[[], bool] | None, with_coupon: bool) -> Cart:
    """The buyer's facts the rules need, read only when a rule needs them: the member's tier
    (a tier-targeted rule or coupon), whether this is the member's first order."""
    if cart.member_id is None:
        return cart
    tier_id, first = cart.tier_id, cart.first_order
    if not cart.tier_known and (with_coupon or any(r.tier_ids is not None for r in rules)):
        tier_id = members.tier_id_of(session, tenant, cart.member_id)
    if first_order is not None and any(r.kind == "first_order" for r in rules):
        first = first_order()
    return replace(cart, tier_id=tier_id, first_order=first)


def price_cart(session: Session, tenant: Tenant, cart: Cart, coupon: str | None = None, *,
               first_order: Callable[[], bool] | None = None,
               now: dt.datetime | None = None) -> PricedCart:
    """Price ``cart`` now (nothing claimed): the live promotions that target its goods (one
    indexed query) and the coupon, through the pricing engine."""
    return _price(session, tenant, cart, coupon, first_order, now or utcnow(), preview=True)[0]


def _price(session: Session, tenant: Tenant, cart: Cart, coupon: str | None,
           first_order: Callable[[], bool] | None, now: dt.datetime, *, preview: bool,
           budgets: dict[str, int] | None = None) -> tuple[PricedCart, str | None]:
    rules = promotions.rules_for(session, tenant, [ln.product_id for ln in cart.lines],
                                 [ln.category_id for ln in cart.lines], now)
    if budgets:
        rules = [replace(r, budget_left=budgets.get(r.id, r.budget_left)) for r in rules]
    cart = _facts(session, tenant, cart, rules, first_order, coupon is not None)
    code, rule = (coupon_rule(session, tenant, coupon, cart, now=now, preview=preview)
                  if coupon else (None, None))
    return pricing.price_cart(pricing.RuleBook(rules), cart, rule, now), code


def price_and_claim(session: Session, tenant: Tenant, cart: Cart, coupon: str | None, *,
                    order_id: str, first_order: Callable[[], bool] | None = None,
                    now: dt.datetime | None = None) -> tuple[PricedCart, str | None]:
    """Price an order's cart and claim what the price uses, in the order's transaction: the
    coupon (if the best combination uses it) and the promotions' budgets. A budget taken by a
    concurrent order since it was read makes the cart priced again with what is left (at most
    three times; then 409 ``promotion-budget-contended``). Returns the price and the stored
    code of the coupon used (None if none)."""
    now = now or utcnow()
    budgets: dict[str, int] = {}
    claimed_first = False
    for _ in range(3):
        priced, code = _price(session, tenant, cart, coupon, first_order, now, preview=False,
                              budgets=budgets)
        amounts = {a.rule_id: a.amount for a in priced.applied if a.source == "promotion"}
        firsts = [a.rule_id for a in priced.applied if a.kind == "first_order"]
        if claimed_first:  # a retry: the previous pricing's claims go
            promotions.release_first_orders(session, tenant, order_id)
            claimed_first = False
        if firsts and cart.member_id is not None:  # claimed first: nothing to undo if lost
            claimed_first = True
            if not promotions.claim_first_order(session, tenant, firsts, cart.member_id,
                                                order_id, now):
                # another order of the member's holds the first order: price as not first
                first_order, claimed_first = _not_first, False
                priced, code = _price(session, tenant, cart, coupon, first_order, now,
                                      preview=False, budgets=budgets)
                amounts = {a.rule_id: a.amount for a in priced.applied
                           if a.source == "promotion"}
        used = next((a for a in priced.applied if a.source == "coupon"), None)
        redemption = None
        if used is not None:  # claimed first (the lock order: the coupon, then promotions)
            redemption = claim_coupon(session, tenant, used.rule_id, order_id=order_id,
                                      member_id=cart.member_id, discount_minor=used.amount,
                                      now=now)
        elif coupon is not None:
            # left out by the best price: still refused if used up (its count may be kept)
            _check_not_used_up(session, tenant, coupon.upper())
        budgeted = {a.rule_id: a.amount for a in priced.applied if a.budgeted}
        lost = promotions.claim_budgets(session, tenant, budgeted)
        if lost is None:
            # the records last, with the order's rows when the caller defers its inserts
            # (core.db.deferred_inserts: one statement on PostgreSQL)
            if redemption is not None:
                insert_rows(session, CouponRedemption.__table__, redemption)
            promotions.record_redemptions(session, tenant, order_id, cart.member_id, amounts,
                                          now)
            return priced, code if used is not None else None
        if used is not None:
            _unclaim_coupon(session, tenant, used.rule_id, order_id)
        budgets = promotions.budgets_left(session, tenant, list(amounts))
    raise Conflict("promotions' budgets changed while this order was priced; try again",
                   slug="promotion-budget-contended")


def _not_first() -> bool:
    return False


def release(session: Session, tenant: Tenant, order_id: str) -> None:
    """Give back what a cancelled order held: its coupon claim (and wallet entry), its
    promotions' budget and its first-order claims."""
    release_coupon(session, tenant, order_id)
    promotions.release_budgets(session, tenant, order_id)


def release_coupon(session: Session, tenant: Tenant, order_id: str) -> None:
    """Give back the coupon claim of a cancelled order (if it held one)."""
    now = utcnow()
    for r in session.scalars(select(CouponRedemption).where(
            CouponRedemption.tenant_id == tenant.id, CouponRedemption.order_id == order_id,
            CouponRedemption.status == "claimed").with_for_update()):
        r.status, r.released_at = "released", now
        # the count back; the wallet entry the order used (if any) is the member's again
        _unclaim_coupon(session, tenant, r.coupon_id, order_id)
    session.flush()


def export_redemptions(session: Session, tenant: Tenant, member_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The person's coupon wallet and their coupon and promotion redemptions (a data
    request's export)."""
    return {"coupon_wallet": export_rows(session, WalletCoupon.__table__, tenant.id,
                                         "member_id", member_ids),
            "coupon_redemptions": export_rows(session, CouponRedemption.__table__, tenant.id,
                                              "member_id", member_ids),
            "promotion_redemptions": export_rows(session, PromotionRedemption.__table__,
                                                 tenant.id, "member_id", member_ids)}


def erase_wallet(session: Session, tenant: Tenant, member_ids: Sequence[str]) -> int:
    """Erasure: the person's unused wallet entries go (what coupons were aimed at them);
    used ones stay, as redemptions do: they hold ids only, and cancelling their order gives
    the use back. Returns the entries removed."""
    if not member_ids:
        return 0
    return rowcount(session.execute(
        delete(WalletCoupon).where(WalletCoupon.tenant_id == tenant.id,
                                   WalletCoupon.member_id.in_(list(member_ids)),
                                   WalletCoupon.status == "issued")
        .execution_options(synchronize_session=False)))


# ---------------------------------------------------------------- the wallet

def issue_coupon(session: Session, tenant: Tenant, coupon_id: str,
                 member_ids: Sequence[str]) -> CouponIssueOut:
    """Issue a coupon to members (``POST /v1/coupons/{id}/issue``): each id is resolved to the
    member it is now part of (404 for an unknown one); members holding it already are left
    alone, so a repeated request issues nothing twice."""
    tenant_row(session, tenant.id, Coupon, coupon_id, "coupon")  # 404 first
    wanted: list[str] = []
    for member_id in member_ids:
        survivor = members.resolve_member_id(session, tenant, member_id)
        if survivor not in wanted:
            wanted.append(survivor)
    issued, held = issue_to_members(session, tenant, coupon_id, wanted, source="api")
    return CouponIssueOut(coupon_id=coupon_id, issued=issued, already_held=held)


def issue_to_members(session: Session, tenant: Tenant, coupon_id: str,
                     member_ids: Sequence[str], *, source: str,
                     now: dt.datetime | None = None) -> tuple[list[str], list[str]]:
    """Put the coupon in these (resolved, live) members' wallets: (issued now, held
    already). The coupon's row is locked first, so two issues of one coupon queue and never
    fail on the wallet's unique (coupon, member). 422 ``coupon-not-usable`` for a disabled or
    ended coupon."""
    now = now or utcnow()
    coupon = tenant_row(session, tenant.id, Coupon, coupon_id, "coupon", lock=True)
    if coupon.status != "active":
        raise _not_active(coupon.code, coupon.status)
    if coupon.ends_at and now >= coupon.ends_at:
        raise CouponNotUsable(f"coupon {coupon.code} expired at {coupon.ends_at.isoformat()}",
                              reason="expired")
    held: set[str] = set()
    ids = list(dict.fromkeys(member_ids))
    for start in range(0, len(ids), 500):
        held |= set(session.scalars(select(WalletCoupon.member_id).where(
            WalletCoupon.tenant_id == tenant.id, WalletCoupon.coupon_id == coupon_id,
            WalletCoupon.member_id.in_(ids[start:start + 500]))))
    new = [m for m in ids if m not in held]
    if new:
        session.execute(insert(WalletCoupon.__table__), [
            {"id": new_id("wallet_coupon"), "tenant_id": tenant.id, "coupon_id": coupon_id,
             "member_id": m, "status": "issued", "source": source, "order_id": None,
             "issued_at": now, "used_at": None} for m in new])
        coupon.issued += len(new)
        record_event(session, tenant.id, "coupon.issued", coupon_id,
                     {"coupon_id": coupon_id, "code": coupon.code, "source": source,
                      "members": len(new)})
        session.flush()
    return new, [m for m in ids if m in held]


def coupon_claims(session: Session, tenant: Tenant,
                  coupon_id: str) -> list[tuple[str, str | None, int]]:
    """The claims orders hold of a coupon: ``(order_id, member_id, discount_minor)``."""
    return [(o, m, int(d)) for o, m, d in session.execute(
        select(CouponRedemption.order_id, CouponRedemption.member_id,
               CouponRedemption.discount_minor).where(
            CouponRedemption.tenant_id == tenant.id, CouponRedemption.coupon_id == coupon_id,
            CouponRedemption.status == "claimed"))]


def _wallet_out(session: Session, tenant: Tenant, w: WalletCoupon,
                now: dt.datetime) -> WalletCouponOut:
    c = session.get_one(Coupon, (tenant.id, w.coupon_id))  # one read per coupon (identity map)
    status = w.status
    if status == "issued" and (c.ends_at and now >= c.ends_at):
        status = "expired"
    elif status == "issued" and c.status != "active":
        status = "paused" if c.status == "paused" else "expired"
    return WalletCouponOut(id=w.id, member_id=w.member_id, coupon_id=c.id, code=c.code,
                           discount=_discount_out(c), status=status, source=w.source,
                           order_id=w.order_id, issued_at=w.issued_at, used_at=w.used_at,
                           ends_at=c.ends_at)


def member_wallet(session: Session, tenant: Tenant, member_id: str, *,
                  status: str | None = None, limit: int = 50,
                  cursor: str | None = None) -> Page[WalletCouponOut]:
    """The coupons issued to a member (and to members merged into them), newest first;
    ``status`` issued|used|expired|paused filters (expired: not used, and the coupon has
    ended or was disabled; paused: not used, and the coupon is paused and has not ended)."""
    ids = members.member_history_ids(session, tenant, member_id)  # 404 for an unknown member
    now = utcnow()
    stmt = select(WalletCoupon).where(WalletCoupon.tenant_id == tenant.id,
                                      WalletCoupon.member_id.in_(ids))
    if status == "used":
        stmt = stmt.where(WalletCoupon.status == "used")
    elif status in ("issued", "expired", "paused"):
        over = Coupon.ends_at <= now
        which = {"issued": (Coupon.status == "active") & ~over.is_(True),
                 "paused": (Coupon.status == "paused") & ~over.is_(True),
                 "expired": over | Coupon.status.not_in(("active", "paused"))}[status]
        stmt = stmt.where(WalletCoupon.status == "issued", WalletCoupon.coupon_id.in_(
            select(Coupon.id).where(Coupon.tenant_id == tenant.id, which)))
    return paginate(session, stmt, WalletCoupon.id, limit=limit, cursor=cursor,
                    convert=lambda w: _wallet_out(session, tenant, w, now),
                    kind="wallet_coupon")
