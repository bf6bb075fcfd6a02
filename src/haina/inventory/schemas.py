from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from haina.core.schema_types import MAX_STOCK_DELTA, Id, NotBlank, Quantity, RequestModel

REASONS = ("received", "correction", "damaged", "lost", "returned", "cycle_count", "initial",
           "transfer", "fulfilled")


class StockOut(BaseModel):
    on_hand: int = 0
    reserved: int = 0
    available: int = 0


class LocationCreate(RequestModel):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: Annotated[str, NotBlank] = Field(min_length=1, max_length=200)
    kind: Literal["warehouse", "store"] = "warehouse"
    address: str | None = Field(None, max_length=500)
    is_default: bool = False


class LocationOut(BaseModel):
    id: str
    object: str = "location"
    code: str
    name: str
    kind: str
    address: str | None
    is_default: bool
    created_at: dt.datetime


class LevelOut(BaseModel):
    variant_id: str
    location_id: str
    on_hand: int
    reserved: int
    available: int


class AdjustmentCreate(RequestModel):
    variant_id: Id | None = None
    sku: str | None = Field(None, min_length=1, max_length=100, description="instead of variant_id")
    location_id: Id | None = Field(None, description="default: the default location")
    delta: int = Field(ge=-MAX_STOCK_DELTA, le=MAX_STOCK_DELTA,
                       description="units added (positive) or removed (negative), "
                                   "-10^9 to 10^9 (1000000000)")
    reason: Literal["received", "correction", "damaged", "lost", "returned", "cycle_count",
                    "transfer"]
    note: str | None = Field(None, max_length=500)


class AdjustmentOut(BaseModel):
    id: str
    object: str = "stock_adjustment"
    variant_id: str
    location_id: str
    delta: int
    reason: str
    note: str | None
    order_id: str | None
    created_at: dt.datetime
    level: StockOut | None = None


class ReservationCreate(RequestModel):
    variant_id: Id | None = None
    sku: str | None = Field(None, min_length=1, max_length=100)
    quantity: Quantity
    location_id: Id | None = None
    ttl_seconds: int = Field(900, ge=10, le=7 * 24 * 3600)


class ReservationOut(BaseModel):
    id: str
    object: str = "reservation"
    variant_id: str
    location_id: str
    quantity: int
    order_id: str | None
    status: str
    expires_at: dt.datetime | None
    created_at: dt.datetime


class Claim(BaseModel):
    """One line to reserve: a variant and a quantity (at a location, or the default one)."""

    variant_id: str
    quantity: int
    sku: str = ""
