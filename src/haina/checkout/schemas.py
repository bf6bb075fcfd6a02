from __future__ import annotations

from pydantic import Field, model_validator

from haina.core.schema_types import MAX_POINTS, Id, RequestModel
from haina.core.trusted import construct
from haina.o2o.schemas import BookingOut
from haina.orders.schemas import Address, OrderCreate, OrderOut


class CheckoutIn(RequestModel):
    location_id: Id | None = None
    address: Address | None = None
    coupon: str | None = Field(None, max_length=64)
    points: int = Field(0, ge=0, le=MAX_POINTS,
                        description="member points to redeem as a discount, 0 to 10^12")
    note: str | None = Field(None, max_length=1000)


class CancelIn(RequestModel):
    reason: str = Field("requested_by_customer", max_length=200)


class LineBooking(RequestModel):
    """A held (or confirmed) booking for the order's line of ``sku``: tires fitted at a shop."""

    sku: str = Field(min_length=1, max_length=100)
    booking_id: Id
    fee_sku: str | None = Field(
        None, min_length=1, max_length=100,
        description="the catalogue's SKU of the service (a product without stock): the order "
                    "gets a line of it priced at the booking's price")


class AppointmentOrderIn(OrderCreate):
    """An order whose lines may carry bookings (POST /v1/bookings with ``hold: true`` first):
    each hold is confirmed in the order's transaction, or nothing is placed."""

    bookings: list[LineBooking] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _bookings_of_lines(self) -> AppointmentOrderIn:
        skus = {line.sku.lower() for line in self.lines}
        for b in self.bookings:
            if b.sku.lower() not in skus:
                raise ValueError(f"booking {b.booking_id} names sku {b.sku!r}, which no line has")
        if len({b.booking_id for b in self.bookings}) != len(self.bookings):
            raise ValueError("a booking appears twice")
        return self

    def order(self) -> OrderCreate:
        # this model is an OrderCreate validated (its validators ran): its fields as they are
        return construct(OrderCreate, **{name: getattr(self, name)
                                         for name in OrderCreate.model_fields})


class AppointmentOrderOut(OrderOut):
    bookings: list[BookingOut] = Field(description="the lines' bookings, confirmed")
