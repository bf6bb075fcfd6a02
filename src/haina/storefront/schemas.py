"""The storefront's public types: publishable keys (merchant API) and the ``/store/v1`` API's
requests and answers."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from haina.checkout.schemas import LineBooking
from haina.core.schema_types import MAX_POINTS, Id, RequestModel
from haina.members.schemas import normalize_phone
from haina.o2o.schemas import BookingCreate, ServiceCode
from haina.orders.schemas import Address, LineIn
from haina.payments.schemas import PaymentMethodIn

#: the channels a publishable key sells on (orders record them: orders.schemas.Channel)
KeyChannel = Literal["app", "mini_program", "web"]
MAX_ORIGINS = 20


class PublishableKeyIn(RequestModel):
    name: str = Field(min_length=1, max_length=200, examples=["iOS app"])
    channel: KeyChannel = Field(description="the sales channel the key's orders are recorded on")
    allowed_origins: list[str] = Field(
        default_factory=list, max_length=MAX_ORIGINS,
        description="web origins allowed to call /store/v1 from a browser (CORS), e.g. "
                    '"https://shop.example.com"; "*" allows any; none: no browser origin '
                    "(native apps and mini-programs send none)")
    sandbox: bool = Field(False, description="sign-in codes also go to the sandbox inbox "
                                             "(GET /store/v1/sandbox/inbox); for testing")

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        out = []
        for origin in v:
            origin = origin.strip().rstrip("/")
            if origin != "*":
                scheme, sep, rest = origin.partition("://")
                if scheme not in ("http", "https") or not sep or not rest or "/" in rest \
                        or any(c.isspace() for c in rest):
                    raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
            if origin not in out:
                out.append(origin.lower())
        return out


class PublishableKeyOut(BaseModel):
    id: str
    object: str = "publishable_key"
    key: str = Field(description="pk_…: ship it in the app (public, revocable)")
    name: str
    channel: str
    allowed_origins: list[str]
    sandbox: bool
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class PhoneIn(RequestModel):
    phone: str = Field(min_length=6, max_length=32, examples=["13800138000"])

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str) -> str:
        return normalize_phone(v)


class CodeRequested(BaseModel):
    object: str = "sign_in_code"
    phone: str
    expires_in: int = Field(description="seconds the code is valid")
    resend_after: int = Field(description="seconds before another code may be asked for")


class VerifyIn(PhoneIn):
    code: str = Field(pattern=r"^\d{6}$", description="the 6-digit code sent to the phone")


class RefreshIn(RequestModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class BuyerSessionOut(BaseModel):
    object: str = "buyer_session"
    access_token: str = Field(description="bst_…: send as Authorization: Bearer")
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str = Field(description="bsr_…: POST /store/v1/sign-in/refresh (rotates)")
    refresh_expires_in: int
    member_id: str


class InboxMessage(BaseModel):
    phone: str
    code: str
    created_at: dt.datetime
    expires_at: dt.datetime
    used: bool


class InboxOut(BaseModel):
    object: str = "list"
    data: list[InboxMessage]


class BuyerOut(BaseModel):
    object: str = "buyer"
    member_id: str
    name: str | None
    phone: str | None
    tier: str | None
    points_balance: int


class StoreCartIn(RequestModel):
    lines: list[LineIn] = Field(default_factory=list, max_length=200)


class StoreBookingIn(RequestModel):
    """Hold a slot for the signed-in buyer (10 minutes; checkout confirms it)."""

    service_point_id: Id
    service: ServiceCode
    start: dt.datetime = Field(strict=False, description="a free slot's start, with its offset")

    @model_validator(mode="after")
    def _as_o2o_would(self) -> StoreBookingIn:
        """o2o's own rules for a booking's start (an offset, a date in range)."""
        try:
            BookingCreate(service_point_id=self.service_point_id, service=self.service,
                          start=self.start, hold=True)
        except ValidationError as exc:
            raise ValueError("; ".join(e["msg"] for e in exc.errors())) from None
        return self

    def booking(self, member_id: str) -> BookingCreate:
        return BookingCreate(service_point_id=self.service_point_id, service=self.service,
                             start=self.start, hold=True, member_id=member_id)


class StoreCheckoutIn(RequestModel):
    bookings: list[LineBooking] = Field(default_factory=list, max_length=50,
                                        description="the buyer's held bookings, per line's SKU")
    coupon: str | None = Field(None, max_length=64)
    points: int = Field(0, ge=0, le=MAX_POINTS, description="points to redeem")
    address: Address | None = None
    note: str | None = Field(None, max_length=1000)

    @model_validator(mode="after")
    def _unique(self) -> StoreCheckoutIn:
        if len({b.booking_id for b in self.bookings}) != len(self.bookings):
            raise ValueError("a booking appears twice")
        return self


class StorePaymentIn(RequestModel):
    payment_method: PaymentMethodIn
