from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from haina.core.money import Money, Price, PriceAmount
from haina.core.schema_types import Id, NotBlank, Quantity, RequestModel

CODE = r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$"
_PERCENT_PATTERN = r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$"


def _percent_str(v: object) -> object:
    """A percentage is a decimal string (``"10"``, ``"12.5"``), as amounts are: at most two
    decimals (basis points), more than 0 and at most 100."""
    if isinstance(v, (int, float)):
        raise ValueError("a percentage is a decimal string such as \"10\", not a JSON number")
    if isinstance(v, str):
        if not re.fullmatch(_PERCENT_PATTERN, v):
            raise ValueError("a percentage is a decimal string from \"0.01\" to \"100\" with at "
                             "most two decimals")
        value = Decimal(v)
        if value <= 0:
            raise ValueError("a percentage is more than 0")
        return value
    return v


Percent = Annotated[
    Decimal,
    BeforeValidator(_percent_str),
    PlainSerializer(lambda d: str(d), return_type=str),
    WithJsonSchema({"type": "string", "pattern": _PERCENT_PATTERN, "examples": ["10"]}),
    Field(description="a percentage as a decimal string, \"0.01\" to \"100\" (two decimals)"),
]


def percent_bps(p: Decimal) -> int:
    """A percentage in basis points (``"12.5"`` → 1250): exact, at most two decimals."""
    return int(p * 100)


def bps_percent(value: int) -> Decimal:
    return (Decimal(value) / 100).normalize() if value % 100 else Decimal(value // 100)


class CouponDiscount(RequestModel):
    """What a coupon takes off the goods it targets: ``{"type": "fixed", "amount": {"amount":
    "5.00", "currency": "CNY"}}`` or ``{"type": "percent", "percent": "10"}``."""

    type: Literal["percent", "fixed"]
    percent: Percent | None = None
    amount: Price | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CouponDiscount:
        if self.type == "percent" and (self.percent is None or self.amount is not None):
            raise ValueError("a percent discount has percent and no amount")
        if self.type == "fixed" and (self.amount is None or self.percent is not None):
            raise ValueError("a fixed discount has amount and no percent")
        if self.type == "fixed" and self.amount is not None and self.amount.amount <= 0:
            raise ValueError("a fixed discount's amount is more than 0")
        return self


class _CouponTerms(RequestModel):
    """What a coupon gives and to whom: ``discount``; every other field is optional."""

    discount: CouponDiscount
    usage_limit: int | None = Field(None, ge=1, le=10_000_000,
                                    description="claims in all (none: no limit)")
    per_member_limit: int | None = Field(None, ge=1, le=1000,
                                         description="claims per member (none: no limit)")
    min_spend: Price | None = Field(None, description="the goods must be worth at least this")
    max_discount: Price | None = Field(None, description="percent: at most this much off")
    starts_at: dt.datetime | None = Field(None, strict=False)
    ends_at: dt.datetime | None = Field(None, strict=False)
    product_ids: list[Id] | None = Field(None, min_length=1, max_length=100,
                                         description="only these products' goods count")
    category_ids: list[Id] | None = Field(None, min_length=1, max_length=100,
                                          description="only these categories' goods count")
    tier_ids: list[Id] | None = Field(None, min_length=1, max_length=20,
                                      description="only members of these tiers")
    description: str = Field("", max_length=500)
    audience: Literal["public", "issued"] = Field(
        "public", description="public: anyone with the code; issued: only members it was "
                              "issued to (POST /v1/coupons/{id}/issue), once each")

    @model_validator(mode="after")
    def _consistent(self) -> _CouponTerms:
        if self.discount.type == "fixed" and self.max_discount is not None:
            raise ValueError("max_discount is for percent discounts")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. 2026-12-12T00:00:00+08:00)")
        return self


class CouponCreate(_CouponTerms):
    """A coupon: a code and its ``discount``; every other field is optional. Codes are
    case-insensitive (stored upper-case)."""

    code: str = Field(pattern=CODE, description="3-64 letters, digits, - or _")


class CouponBatchCreate(_CouponTerms):
    """``count`` coupons of the same terms with generated codes ``PREFIX-XXXXXXXX`` (eight
    characters of an alphabet without 0, O, 1 or I), single-use unless ``usage_limit`` says
    otherwise: codes to hand out one each (a flyer, a partner's list)."""

    prefix: str = Field(pattern=r"^[A-Za-z0-9]{1,16}$", description="1-16 letters or digits")
    count: int = Field(ge=1, le=1000)
    usage_limit: int | None = Field(1, ge=1, le=10_000_000,
                                    description="claims of each code (default 1)")


class CouponBatchOut(BaseModel):
    object: str = "coupon_batch"
    count: int
    codes: list[str]


class CouponUpdate(RequestModel):
    status: Literal["active", "disabled", "paused"] | None = Field(
        None, description="paused: refused for now (problem type coupon-paused), wallet "
                          "entries read paused until it is active again")
    ends_at: dt.datetime | None = Field(None, strict=False)
    usage_limit: int | None = Field(None, ge=1, le=10_000_000)
    description: str | None = Field(None, max_length=500)


class CouponDiscountOut(BaseModel):
    type: str
    percent: str | None = None
    amount: Money | None = None


class CouponOut(BaseModel):
    id: str
    object: str = "coupon"
    code: str
    discount: CouponDiscountOut
    min_spend: Money | None
    max_discount: Money | None
    usage_limit: int | None
    per_member_limit: int | None
    redeemed: int = Field(description="claims held by orders (cancelled orders give theirs back)")
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    product_ids: list[str] | None
    category_ids: list[str] | None
    tier_ids: list[str] | None
    status: str
    description: str
    created_at: dt.datetime
    audience: str = Field("public", description="public or issued (members' wallets only)")
    issued: int = Field(0, description="wallet entries made (members it was issued to)")


class CouponIssue(RequestModel):
    """Issue the coupon to these members (their wallets): a member who holds it already is
    left as they are, so a repeated request issues nothing twice."""

    member_ids: list[Id] = Field(min_length=1, max_length=500)


class CouponIssueOut(BaseModel):
    object: Literal["coupon_issue"] = "coupon_issue"
    coupon_id: str
    issued: list[str] = Field(description="members who got the coupon now")
    already_held: list[str] = Field(description="members who held it already (any status)")


class WalletCouponOut(BaseModel):
    id: str
    object: Literal["wallet_coupon"] = "wallet_coupon"
    member_id: str
    coupon_id: str
    code: str
    discount: CouponDiscountOut
    status: Literal["issued", "used", "expired", "paused"] = Field(
        description="issued (usable), used (an order holds it), expired (the coupon ended "
                    "or was disabled before it was used), paused (the coupon is paused, "
                    "e.g. its campaign: usable again when it resumes)")
    source: str = Field(description='"api" or the campaign that issued it')
    order_id: str | None
    issued_at: dt.datetime
    used_at: dt.datetime | None
    ends_at: dt.datetime | None


# ---------------------------------------------------------------- promotions

PromotionKind = Literal["percent", "fixed", "threshold", "buy_x_get_y", "bundle", "tier_price",
                        "first_order", "free_shipping"]
GROUP = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class PromotionTier(RequestModel):
    """A step: ``threshold`` tiers are ``{"min_subtotal": "300.00", "off": "40.00"}`` (满300减40);
    ``tier_price`` tiers are ``{"min_quantity": 3, "unit_price": "80.00"}``. Amounts are decimal
    strings in the merchant's currency."""

    min_subtotal: PriceAmount | None = None
    off: PriceAmount | None = None
    min_quantity: int | None = Field(None, ge=1, le=10_000)
    unit_price: PriceAmount | None = None


class BundleItem(RequestModel):
    product_id: Id
    quantity: int = Field(1, ge=1, le=100)


_KIND_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    # kind: (required, allowed besides the common ones)
    "percent": ({"percent"}, {"percent", "max_discount"}),
    "fixed": ({"off"}, {"off"}),
    "threshold": ({"tiers"}, {"tiers", "repeat", "max_discount"}),
    "buy_x_get_y": ({"buy", "get"}, {"buy", "get", "percent"}),
    "bundle": ({"bundle", "bundle_price"}, {"bundle", "bundle_price"}),
    "tier_price": ({"tiers"}, {"tiers"}),
    "first_order": (set(), {"percent", "off", "max_discount"}),
    "free_shipping": (set(), set()),
}
_PARAMS = {"percent", "off", "max_discount", "tiers", "repeat", "buy", "get", "bundle",
           "bundle_price"}


class PromotionCreate(RequestModel):
    """An automatic promotion. ``kind`` decides which parameters it takes:

    * ``percent``: ``percent`` off the targeted goods (``max_discount`` caps it);
    * ``fixed``: ``off`` each targeted unit (直降);
    * ``threshold``: ``tiers`` of ``min_subtotal`` → ``off`` (满减); with ``repeat`` the best
      tier repeats for every multiple of its minimum (每满减), ``max_discount`` caps it;
    * ``buy_x_get_y``: for every ``buy`` + ``get`` targeted units the cheapest ``get`` are free
      (or ``percent`` off);
    * ``bundle``: the ``bundle``'s products together for ``bundle_price``;
    * ``tier_price``: ``tiers`` of ``min_quantity`` → ``unit_price`` per line (阶梯价);
    * ``first_order``: ``off`` or ``percent`` off a member's first order;
    * ``free_shipping``: no shipping fee.

    Common: targets (``product_ids``, ``category_ids``; none: all goods; ``tier_ids``: members
    of those tiers only), ``min_subtotal`` (the targeted goods must be worth this), the window,
    ``priority``, ``stacking_group``, ``exclusive`` and a ``budget``."""

    name: Annotated[str, NotBlank] = Field(min_length=1, max_length=200)
    kind: PromotionKind
    percent: Percent | None = None
    off: Price | None = None
    max_discount: Price | None = None
    tiers: list[PromotionTier] | None = Field(None, min_length=1, max_length=20)
    repeat: bool = False
    buy: int | None = Field(None, ge=1, le=100)
    get: int | None = Field(None, ge=1, le=100)
    bundle: list[BundleItem] | None = Field(None, min_length=2, max_length=20)
    bundle_price: Price | None = None
    min_subtotal: Price | None = None
    product_ids: list[Id] | None = Field(None, min_length=1, max_length=100)
    category_ids: list[Id] | None = Field(None, min_length=1, max_length=100)
    tier_ids: list[Id] | None = Field(None, min_length=1, max_length=20)
    starts_at: dt.datetime | None = Field(None, strict=False)
    ends_at: dt.datetime | None = Field(None, strict=False)
    priority: int = Field(0, ge=-1000, le=1000, description="higher applies first; breaks ties")
    stacking_group: str | None = Field(
        None, pattern=GROUP, description="two promotions of one group never discount the same "
        "line (default: the stage's group, item / order / shipping)")
    exclusive: bool = Field(False, description="applies alone: no other promotion, no coupon")
    budget: Price | None = Field(None, description="the most this promotion may give in all")
    description: str = Field("", max_length=500)

    @model_validator(mode="after")
    def _consistent(self) -> PromotionCreate:
        required, allowed = _KIND_FIELDS[self.kind]
        given = {f for f in _PARAMS if getattr(self, f) not in (None, False)}
        if missing := sorted(required - given):
            raise ValueError(f"a {self.kind} promotion needs {', '.join(missing)}")
        if extra := sorted(given - allowed):
            raise ValueError(f"a {self.kind} promotion takes no {', '.join(extra)}")
        if self.kind == "first_order" and (self.percent is None) == (self.off is None):
            raise ValueError("a first_order promotion takes percent or off (one of them)")
        if self.kind == "bundle" and (self.product_ids or self.category_ids):
            raise ValueError("a bundle targets its bundle's products (no product_ids or "
                             "category_ids)")
        for t in self.tiers or ():
            if self.kind == "threshold" and (t.min_subtotal is None or t.off is None
                                             or t.min_quantity is not None
                                             or t.unit_price is not None):
                raise ValueError("threshold tiers are {\"min_subtotal\", \"off\"}")
            if self.kind == "threshold" and (t.min_subtotal is not None and t.off is not None
                                             and not 0 < t.off <= t.min_subtotal):
                raise ValueError("a threshold tier's off is more than 0 and at most its "
                                 "min_subtotal (so its min_subtotal is more than 0)")
            if self.kind == "tier_price" and (t.min_quantity is None or t.unit_price is None
                                              or t.min_subtotal is not None
                                              or t.off is not None):
                raise ValueError("tier_price tiers are {\"min_quantity\", \"unit_price\"}")
        if self.bundle and len({b.product_id for b in self.bundle}) != len(self.bundle):
            raise ValueError("a bundle names each product once")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. 2026-12-12T00:00:00+08:00)")
        return self


class PromotionUpdate(RequestModel):
    status: Literal["active", "paused"] | None = None
    name: Annotated[str, NotBlank] | None = Field(None, min_length=1, max_length=200)
    ends_at: dt.datetime | None = Field(None, strict=False)
    priority: int | None = Field(None, ge=-1000, le=1000)
    budget: Price | None = None
    description: str | None = Field(None, max_length=500)


class PromotionOut(BaseModel):
    id: str
    object: str = "promotion"
    name: str
    kind: str
    status: str
    percent: str | None = None
    off: Money | None = None
    max_discount: Money | None = None
    tiers: list[dict[str, Any]] | None = None
    repeat: bool = False
    buy: int | None = None
    get: int | None = None
    bundle: list[dict[str, Any]] | None = None
    bundle_price: Money | None = None
    min_subtotal: Money | None = None
    product_ids: list[str] | None
    category_ids: list[str] | None
    tier_ids: list[str] | None
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    priority: int
    stacking_group: str
    exclusive: bool
    budget: Money | None
    spent: Money = Field(description="with a budget: the discount held by orders (cancelled "
                                     "orders give theirs back); counted while a budget is set")
    description: str
    created_at: dt.datetime
    updated_at: dt.datetime


# ---------------------------------------------------------------- pricing a cart (the API)

class PriceLineIn(RequestModel):
    sku: str = Field(min_length=1, max_length=100)
    quantity: Quantity


class PriceRequest(RequestModel):
    """``POST /v1/carts/price``: price lines as an order would be priced now."""

    lines: list[PriceLineIn] = Field(min_length=1, max_length=200)
    coupon: str | None = Field(None, max_length=64)
    member_id: Id | None = None
    channel: Literal["web", "mini_program", "pos", "app", "marketplace"] = "web"


class ExplanationOut(BaseModel):
    rule_id: str
    source: str = Field(description="promotion | coupon | points")
    kind: str
    name: str
    amount: Money
    text: str


class PricedLineOut(BaseModel):
    sku: str
    quantity: int
    unit_price: Money
    subtotal: Money
    discount: Money
    total: Money
    explanation: list[ExplanationOut]


class AppliedOut(BaseModel):
    id: str
    source: str
    kind: str
    name: str
    amount: Money
    shipping: Money


class PriceOut(BaseModel):
    object: str = "price"
    currency: str
    subtotal: Money
    discount: Money
    shipping: Money
    tax: Money
    total: Money
    lines: list[PricedLineOut]
    applied: list[AppliedOut]


# the pricing engine's own types, for the modules that price (orders, carts)
from haina.marketing.pricing import Cart as Cart  # noqa: E402
from haina.marketing.pricing import CartLine as CartLine  # noqa: E402
from haina.marketing.pricing import PricedCart as PricedCart  # noqa: E402
