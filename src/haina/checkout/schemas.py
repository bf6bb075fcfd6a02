from __future__ import annotations

from pydantic import Field

from haina.core.schema_types import MAX_POINTS, Id, RequestModel
from haina.orders.schemas import Address


class CheckoutIn(RequestModel):
    location_id: Id | None = None
    address: Address | None = None
    coupon: str | None = Field(None, max_length=64)
    points: int = Field(0, ge=0, le=MAX_POINTS,
                        description="member points to redeem as a discount, 0 to 10^12")
    note: str | None = Field(None, max_length=1000)


class CancelIn(RequestModel):
    reason: str = Field("requested_by_customer", max_length=200)
