from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from haina.core.money import Money, Price
from haina.core.schema_types import Id, RequestModel

CODE = r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$"


class CouponCreate(RequestModel):
    """A coupon: ``percent`` (``percent_off``, e.g. 15 for 15 % off the goods) or ``fixed``
    (``amount_off``). Codes are case-insensitive (stored upper-case)."""

    code: str = Field(pattern=CODE, description="3-64 letters, digits, - or _")
    kind: Literal["percent", "fixed"]
    percent_off: int | None = Field(None, ge=1, le=100, description="percent: whole percent")
    amount_off: Price | None = Field(None, description="fixed: the amount off the goods")
    min_spend: Price | None = Field(None, description="the goods must be worth at least this")
    max_discount: Price | None = Field(None, description="percent: at most this much off")
    max_redemptions: int | None = Field(None, ge=1, le=10_000_000,
                                        description="claims in all (none: no limit)")
    per_member_limit: int | None = Field(None, ge=1, le=1000,
                                         description="claims per member (none: no limit)")
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
        if self.kind == "percent" and (self.percent_off is None or self.amount_off is not None):
            raise ValueError("a percent coupon has percent_off and no amount_off")
        if self.kind == "fixed" and (self.amount_off is None or self.percent_off is not None
                                     or self.max_discount is not None):
            raise ValueError("a fixed coupon has amount_off (and no percent_off or max_discount)")
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
    max_redemptions: int | None = Field(None, ge=1, le=10_000_000)
    description: str | None = Field(None, max_length=500)


class CouponOut(BaseModel):
    id: str
    object: str = "coupon"
    code: str
    kind: str
    percent_off: int | None
    amount_off: Money | None
    min_spend: Money | None
    max_discount: Money | None
    max_redemptions: int | None
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
