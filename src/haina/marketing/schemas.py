from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from haina.core.money import Money, Price
from haina.core.schema_types import Id, RequestModel

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


class CouponCreate(RequestModel):
    """A coupon: a code and its ``discount``; every other field is optional. Codes are
    case-insensitive (stored upper-case)."""

    code: str = Field(pattern=CODE, description="3-64 letters, digits, - or _")
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

    @model_validator(mode="after")
    def _consistent(self) -> CouponCreate:
        if self.discount.type == "fixed" and self.max_discount is not None:
            raise ValueError("max_discount is for percent discounts")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. 2026-12-12T00:00:00+08:00)")
        return self


class CouponUpdate(RequestModel):
    status: Literal["active", "disabled"] | None = None
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
