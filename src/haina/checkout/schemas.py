from __future__ import annotations

from pydantic import BaseModel, Field

from haina.orders.schemas import Address


class CheckoutIn(BaseModel):
    location_id: str | None = None
    address: Address | None = None
    coupon: str | None = Field(None, max_length=64)
    points: int = Field(0, ge=0)
    note: str | None = Field(None, max_length=1000)


class CancelIn(BaseModel):
    reason: str = Field("requested_by_customer", max_length=200)
