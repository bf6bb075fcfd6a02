from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from haina.core.schema_types import MAX_QUANTITY, Id, RequestModel
from haina.orders.schemas import Channel, LineIn, OrderLineOut, Totals

MAX_LINE_QUANTITY = MAX_QUANTITY


class CartCreate(RequestModel):
    member_id: Id | None = None
    channel: Channel = "web"
    lines: list[LineIn] = Field(default_factory=list, max_length=200)


class QuantityIn(RequestModel):
    quantity: int = Field(ge=0, le=MAX_LINE_QUANTITY, description="0 removes the line")


class CartOut(BaseModel):
    id: str
    object: str = "cart"
    status: str
    member_id: str | None
    channel: str
    order_id: str | None
    lines: list[OrderLineOut]
    totals: Totals | None
    created_at: dt.datetime
    updated_at: dt.datetime


class CartSummaryOut(BaseModel):
    """A cart in a list: its lines counted, not priced (pricing each cart of a page would
    cost a quote per cart; :class:`CartOut` prices one)."""

    id: str
    object: str = "cart"
    status: str
    member_id: str | None
    channel: str
    order_id: str | None
    lines: int = Field(description="how many lines (SKUs)")
    units: int = Field(description="how many units in all")
    created_at: dt.datetime
    updated_at: dt.datetime


class CartContents(BaseModel):
    """An open cart's lines, handed to checkout to become an order."""

    id: str
    member_id: str | None
    channel: Channel
    lines: list[LineIn]
