from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

from haina.core.money import Money
from haina.core.schema_types import (
    MAX_POINTS,
    Id,
    Metadata,
    NotBlank,
    Quantity,
    RequestModel,
)
from haina.crossborder.schemas import CrossborderIn, CrossborderOrderOut

Channel = Literal["web", "mini_program", "pos", "app", "marketplace"]
# the states of ORDER_LIFECYCLE (orders/lifecycle.py; a test keeps the two the same)
OrderStatus = Literal["pending_payment", "paid", "fulfilled", "completed", "cancelled",
                      "refunded"]


class LineIn(RequestModel):
    sku: str = Field(min_length=1, max_length=100)
    quantity: Quantity


class Address(RequestModel):
    name: Annotated[str, NotBlank] = Field(min_length=1, max_length=100)
    phone: str = Field(min_length=5, max_length=32)
    country: str = Field("CN", min_length=2, max_length=2)
    province: str | None = Field(None, max_length=64)
    city: str | None = Field(None, max_length=64)
    district: str | None = Field(None, max_length=64)
    line1: Annotated[str, NotBlank] = Field(min_length=1, max_length=300)
    line2: str | None = Field(None, max_length=300)
    postal_code: str | None = Field(None, max_length=16)


class AddressOut(BaseModel):
    """An order's shipping address as answered: the buyer's (``Address``), or the booked
    service point's when the order carries bookings (``service_point_id``; its phone and
    street may be missing where the point has none)."""

    name: str
    phone: str | None = None
    country: str = "CN"
    province: str | None = None
    city: str | None = None
    district: str | None = None
    line1: str | None = None
    line2: str | None = None
    postal_code: str | None = None
    service_point_id: str | None = Field(
        None, description="the service point the goods ship to (an order with bookings)")


class OrderCreate(RequestModel):
    lines: list[LineIn] = Field(min_length=1, max_length=200)
    member_id: Id | None = None
    channel: Channel = "web"
    location_id: Id | None = Field(None, description="take stock from this location (a store for POS)")
    address: Address | None = None
    coupon: str | None = Field(None, max_length=64)
    points: int = Field(0, ge=0, le=MAX_POINTS,
                        description="member points to redeem as a discount, 0 to 10^12")
    note: str | None = Field(None, max_length=1000)
    metadata: Metadata | None = None
    crossborder: CrossborderIn | None = Field(
        None, description="a cross-border import order: the buyer (orderer) whose identity "
                          "the quotas count; the composite tax replaces the merchant's tax")

    @model_validator(mode="after")
    def _points_need_member(self) -> OrderCreate:
        if self.points and not self.member_id:
            raise ValueError("redeeming points needs a member_id")
        return self


class OrderLineOut(BaseModel):
    id: str
    variant_id: str
    product_id: str
    sku: str
    title: str
    unit_price: Money
    quantity: int
    total: Money = Field(description="unit price × quantity, before discounts")
    shipped_quantity: int = 0
    discount: Money | None = Field(None, description="the line's part of the order's discounts "
                                   "(allocated by largest remainder): a refund of the line "
                                   "returns total − discount")
    booking_id: str | None = Field(None, description="a service fee's line: its booking")
    service_status: str | None = Field(
        None, description="a service fee's line: scheduled, done (its booking completed) or "
                          "cancelled")


class Totals(BaseModel):
    subtotal: Money
    discount: Money
    shipping: Money
    tax: Money
    total: Money


class ShipmentIn(RequestModel):
    carrier: Annotated[str, NotBlank] = Field(min_length=1, max_length=64,
                                              examples=["SF Express"])
    tracking_number: str | None = Field(None, max_length=100)
    lines: list[LineIn] | None = Field(None, description="default: everything not yet shipped")


class ShipmentOut(BaseModel):
    id: str
    object: str = "shipment"
    order_id: str
    carrier: str
    tracking_number: str | None
    lines: list[dict[str, Any]]
    created_at: dt.datetime


class OrderOut(BaseModel):
    id: str
    object: str = "order"
    status: str
    refund_status: str
    channel: str
    member_id: str | None
    location_id: str | None
    currency: str
    lines: list[OrderLineOut]
    totals: Totals
    paid: Money
    refunded: Money
    points_redeemed: int
    coupon: str | None
    address: AddressOut | None
    ship_to_point_id: str | None = Field(
        None, description="the booked service point the goods ship to (address is its)")
    note: str | None
    metadata: dict[str, Any] | None
    hold_expires_at: dt.datetime | None
    created_at: dt.datetime
    paid_at: dt.datetime | None = None
    fulfilled_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    cancel_reason: str | None = None
    shipments: list[ShipmentOut] = Field(default_factory=list)
    crossborder: CrossborderOrderOut | None = None










class TimelineEntry(BaseModel):
    at: dt.datetime
    type: str
    data: dict[str, Any]


class OrderState(BaseModel):
    """Where an order stands, for the modules that act on it (payments, checkout)."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: str
    currency: str
    total_minor: int
    paid_minor: int
    refunded_minor: int
    member_id: str | None


class _OrderMilestones(TypedDict, total=False):
    # set as the order moves on (a new order has none)
    paid_at: dt.datetime | None
    fulfilled_at: dt.datetime | None
    completed_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    cancel_reason: str | None


class OrderRecord(_OrderMilestones):
    """One ``orders`` row as placing, importing and the demo loader write it
    (``orders.service.order_record`` fills the defaults)."""

    id: str
    tenant_id: str
    member_id: str | None
    channel: str
    app_id: str | None
    location_id: str | None
    status: str
    refund_status: str
    currency: str
    subtotal_minor: int
    discount_minor: int
    shipping_minor: int
    tax_minor: int
    total_minor: int
    paid_minor: int
    refunded_minor: int
    points_redeemed: int
    coupon_code: str | None
    address: dict[str, Any] | None
    note: str | None
    metadata: dict[str, Any] | None
    hold_expires_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class _LineDiscount(TypedDict, total=False):
    discount_minor: int  # default 0 (an import of history)
    booking_id: str | None  # a service fee's line


class ServiceFee(BaseModel):
    """A service's fee priced into a goods order from its booking: the catalogue's service
    SKU (a product without stock), the booking, and the booking's price."""

    sku: str
    booking_id: str
    price_minor: int
    currency: str


class OrderLineRecord(_LineDiscount):
    """One ``order_lines`` row: the price as it was when the order was placed."""

    id: str
    tenant_id: str
    order_id: str
    variant_id: str
    product_id: str
    sku: str
    title: str
    unit_price_minor: int
    quantity: int
    total_minor: int
    shipped_quantity: int


class SalesPeriodOut(BaseModel):
    """What one period (a week from Monday, UTC) sold: orders paid in it, their net value, and
    the members who bought in it, new (first purchase in that period) or returning."""

    start: dt.date
    orders: int
    sales: Money = Field(description="paid minus refunded, of the orders paid in the period")
    new_members: int
    returning_members: int
