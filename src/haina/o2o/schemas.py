from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator

from haina.core.money import Money, Price
from haina.core.schema_types import Id, LaxDate, NotBlank, RequestModel
from haina.o2o.geo import MAX_RADIUS_KM, Datum

SERVICE_CODE = r"^[a-z0-9][a-z0-9_-]{0,63}$"
HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
HHMM_OR_24 = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
MAX_DURATION_MINUTES = 24 * 60
MAX_CAPACITY = 1000
MAX_BUFFER_MINUTES = 240
HOLD_MINUTES = 10
COUNTRY = r"^[A-Z]{2}$"
MAX_COMMENT = 500
ServiceCode = Annotated[str, Field(pattern=SERVICE_CODE, examples=["tire-fitting"],
                                   description="lower-case letters, digits, - and _")]


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _known_zone(name: str) -> str:
    if name not in _zones():
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Asia/Shanghai)")
    return name


TimeZoneName = Annotated[str, Field(min_length=1, max_length=64, examples=["Asia/Shanghai"]),
                         AfterValidator(_known_zone)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class LocationIn(RequestModel):
    """A position as a map shows it: WGS-84 (GPS) or GCJ-02 (maps in China: AMap, Tencent)."""

    lat: Latitude
    lng: Longitude
    datum: Datum = Field("wgs84", description="wgs84 (GPS) or gcj02 (maps in China)")


class Location(BaseModel):
    lat: float
    lng: float
    datum: Datum


class HoursIn(RequestModel):
    weekday: int = Field(ge=1, le=7, description="ISO weekday: 1 = Monday … 7 = Sunday")
    open: str = Field(pattern=HHMM, examples=["09:00"], description="local HH:MM")
    close: str = Field(pattern=HHMM_OR_24, examples=["18:00"],
                       description="local HH:MM; at or before open: past midnight; 24:00")


class ExceptionIn(RequestModel):
    """A date with other hours (``open`` and ``close``) or closed (neither)."""

    date: LaxDate
    open: str | None = Field(None, pattern=HHMM)
    close: str | None = Field(None, pattern=HHMM_OR_24)
    note: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _both_or_neither(self) -> ExceptionIn:
        if (self.open is None) != (self.close is None):
            raise ValueError("give open and close (other hours), or neither (closed)")
        return self


class ServiceIn(RequestModel):
    code: ServiceCode
    name: str | None = Field(None, min_length=1, max_length=200)
    duration_minutes: int = Field(ge=5, le=MAX_DURATION_MINUTES)
    capacity: int = Field(1, ge=1, le=MAX_CAPACITY, description="jobs at once (bays, staff)")
    buffer_before_minutes: int = Field(0, ge=0, le=MAX_BUFFER_MINUTES)
    buffer_after_minutes: int = Field(0, ge=0, le=MAX_BUFFER_MINUTES)
    price: Price
    resource: ServiceCode | None = Field(
        None, description="the point's resource this service shares with others (a lift)")


class ServiceUpdate(RequestModel):
    not_null = ("name", "capacity", "price")

    name: str | None = Field(None, min_length=1, max_length=200)
    capacity: int | None = Field(None, ge=1, le=MAX_CAPACITY)
    price: Price | None = None
    resource: ServiceCode | None = Field(
        None, description="put the service on this resource of the point; null: take it off")


class ResourceIn(RequestModel):
    """What several services of a point use one at a time: a lift (fitting and alignment),
    a stylist; ``capacity`` of them."""

    code: ServiceCode
    name: str | None = Field(None, min_length=1, max_length=200)
    capacity: int = Field(ge=1, le=MAX_CAPACITY, description="how many at once (lifts, staff)")


class ResourceUpdate(RequestModel):
    not_null = ("name", "capacity")

    name: str | None = Field(None, min_length=1, max_length=200)
    capacity: int | None = Field(None, ge=1, le=MAX_CAPACITY)


class ResourceOut(BaseModel):
    id: str
    code: str
    name: str
    capacity: int
    services: list[str] = Field(description="the codes of the services that share it")


FitValue = (Annotated[list[Annotated[float, Field(allow_inf_nan=False, ge=-1e15, le=1e15)]],
                      Field(min_length=2, max_length=2)]
            | Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]],
                        Field(min_length=1, max_length=50)])
Fitment = Annotated[dict[Annotated[str, Field(min_length=1, max_length=64)], FitValue],
                    Field(max_length=20, description=(
                        "attribute code → [min, max] (numbers, inclusive) or a list of the "
                        "values it takes (text): {\"rim_diameter\": [15, 19], "
                        "\"vehicle_type\": [\"car\", \"suv\"]}"))]


def _check_fitment(fitment: dict[str, list] | None) -> dict[str, list] | None:
    for code, value in (fitment or {}).items():
        if len(value) == 2 and all(isinstance(v, float) for v in value) and value[0] > value[1]:
            raise ValueError(f"fitment {code}: min {value[0]} is above max {value[1]}")
    return fitment


def _check_hours(hours: list[HoursIn] | None) -> list[HoursIn] | None:
    """Intervals of one weekday must not overlap (one opening a day, or a few apart)."""
    by_day: dict[int, list[tuple[int, int]]] = {}
    for h in hours or ():
        start = int(h.open[:2]) * 60 + int(h.open[3:])
        end = int(h.close[:2]) * 60 + int(h.close[3:])
        if end <= start:
            end += 24 * 60
        by_day.setdefault(h.weekday, []).append((start, end))
    for day, spans in by_day.items():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:]):
            if start < end:
                raise ValueError(f"opening hours of weekday {day} overlap")
    return hours


class ServicePointCreate(RequestModel):
    name: Annotated[str, NotBlank] = Field(min_length=1, max_length=200)
    address: str | None = Field(None, max_length=500, description=(
        "the street and number: goods booked with a job here are shipped to it"))
    phone: str | None = Field(None, max_length=32)
    province: str | None = Field(None, max_length=64)
    city: str | None = Field(None, max_length=64)
    district: str | None = Field(None, max_length=64)
    postal_code: str | None = Field(None, max_length=16)
    country: str = Field("CN", pattern=COUNTRY, description="ISO 3166 alpha-2")
    location: LocationIn
    timezone: TimeZoneName = "Asia/Shanghai"
    opening_hours: list[HoursIn] = Field(default_factory=list, max_length=50)
    exceptions: list[ExceptionIn] = Field(default_factory=list, max_length=400)
    services: list[ServiceIn] = Field(default_factory=list, max_length=20)
    resources: list[ResourceIn] = Field(default_factory=list, max_length=20)
    fitment: Fitment = Field(default_factory=dict)

    @field_validator("opening_hours")
    @classmethod
    def _hours(cls, value: list[HoursIn] | None) -> list[HoursIn] | None:
        return _check_hours(value)

    @field_validator("fitment")
    @classmethod
    def _fit(cls, value: dict[str, list] | None) -> dict[str, list] | None:
        return _check_fitment(value)

    @model_validator(mode="after")
    def _distinct_services(self) -> ServicePointCreate:
        codes = [s.code for s in self.services]
        if len(set(codes)) != len(codes):
            raise ValueError("a service code appears twice")
        shared = [r.code for r in self.resources]
        if len(set(shared)) != len(shared):
            raise ValueError("a resource code appears twice")
        for s in self.services:
            if s.resource is not None and s.resource not in shared:
                raise ValueError(f"service {s.code} names resource {s.resource!r}, which is "
                                 "not among resources")
        return self


class ServicePointUpdate(RequestModel):
    not_null = ("name", "location", "timezone", "opening_hours", "exceptions", "fitment",
                "status", "country")

    name: Annotated[str, NotBlank] | None = Field(None, min_length=1, max_length=200)
    address: str | None = Field(None, max_length=500)
    phone: str | None = Field(None, max_length=32)
    province: str | None = Field(None, max_length=64)
    city: str | None = Field(None, max_length=64)
    district: str | None = Field(None, max_length=64)
    postal_code: str | None = Field(None, max_length=16)
    country: str | None = Field(None, pattern=COUNTRY)
    location: LocationIn | None = None
    timezone: TimeZoneName | None = None
    opening_hours: list[HoursIn] | None = Field(None, max_length=50)
    exceptions: list[ExceptionIn] | None = Field(None, max_length=400)
    fitment: Fitment | None = None
    status: Literal["active", "closed"] | None = None

    @field_validator("opening_hours")
    @classmethod
    def _hours(cls, value: list[HoursIn] | None) -> list[HoursIn] | None:
        return _check_hours(value)

    @field_validator("fitment")
    @classmethod
    def _fit(cls, value: dict[str, list] | None) -> dict[str, list] | None:
        return _check_fitment(value)


class ServiceOut(BaseModel):
    id: str
    code: str
    name: str
    duration_minutes: int
    capacity: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    price: Money
    resource: str | None = Field(None, description="the resource it shares (its code)")


class RatingSummary(BaseModel):
    """A point's ratings: their mean score to one decimal (half-even; null before the first)
    and how many there are."""

    average: Decimal | None = Field(examples=["4.6"])
    count: int


class ServicePointOut(BaseModel):
    id: str
    object: str = "service_point"
    name: str
    address: str | None
    phone: str | None
    province: str | None = None
    city: str | None = None
    district: str | None = None
    postal_code: str | None = None
    country: str = "CN"
    rating: RatingSummary = Field(default_factory=lambda: RatingSummary(average=None, count=0))
    location: Location = Field(description="WGS-84, as stored")
    location_gcj02: Location = Field(description="the same place in GCJ-02, for maps in China")
    h3_cells: dict[str, str] = Field(description="resolution → the point's h3 cell")
    timezone: str
    opening_hours: list[dict[str, int | str]]
    exceptions: list[dict[str, str | None]]
    services: list[ServiceOut]
    resources: list[ResourceOut] = Field(default_factory=list)
    fitment: dict[str, list[float] | list[str]]
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime


class FitmentRuleIn(RequestModel):
    """Goods that need a service: the products of a category, or those with an attribute."""

    service: ServiceCode
    category_id: Id | None = None
    attribute: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_target(self) -> FitmentRuleIn:
        if (self.category_id is None) == (self.attribute is None):
            raise ValueError("give category_id or attribute (one of them)")
        return self


class FitmentRuleOut(BaseModel):
    id: str
    object: str = "fitment_rule"
    service: str
    category_id: str | None
    attribute: str | None
    created_at: dt.datetime


class SlotOut(BaseModel):
    start: dt.datetime = Field(description="ISO 8601 with the point's UTC offset")
    end: dt.datetime
    capacity: int
    available: int


class SlotsOut(BaseModel):
    object: str = "list"
    service_point_id: str
    service: str
    date: dt.date
    timezone: str
    data: list[SlotOut]
    has_more: bool = False


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("start needs its UTC offset (e.g. 2026-12-07T09:00:00+08:00)")
    if not 2000 <= value.year <= 2999:
        raise ValueError("start must be a date of this millennium")
    return value


class BookingCreate(RequestModel):
    service_point_id: Id
    service: ServiceCode
    start: dt.datetime = Field(strict=False, description="a slot's start, with its offset")
    hold: bool = Field(False, description=f"hold the slot for {HOLD_MINUTES} minutes "
                                          "(checkout) instead of confirming it")
    member_id: Id | None = None
    note: str | None = Field(None, max_length=1000)

    @field_validator("start")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        return _aware(value)


class RescheduleIn(RequestModel):
    start: dt.datetime = Field(strict=False, description="the new slot's start")

    @field_validator("start")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        return _aware(value)


class GoodsComing(BaseModel):
    """An order line shipped to the booked point, for the job."""

    order_line_id: str
    sku: str
    title: str
    quantity: int


def _comment(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


class RatingIn(RequestModel):
    """A buyer's rating of a completed booking: once, 1-5, an optional comment."""

    score: int = Field(ge=1, le=5)
    comment: Annotated[str | None, AfterValidator(_comment)] = Field(
        None, max_length=MAX_COMMENT, description=f"stripped; at most {MAX_COMMENT} characters")


class RatingOnBehalfIn(RatingIn):
    """The merchant rates on its buyer's behalf: the booking's member."""

    member_id: Id


class RatingOut(BaseModel):
    id: str
    object: str = "rating"
    booking_id: str
    service_point_id: str
    service: str | None = None
    member_id: str | None
    score: int
    comment: str | None
    created_at: dt.datetime


class BookingRating(BaseModel):
    """A booking's one rating, as its answer shows it (the full rating, with its id and
    member, is in ``GET /v1/service-points/{id}/ratings``)."""

    score: int = Field(ge=1, le=5)
    comment: str | None
    created_at: dt.datetime


class BookingOut(BaseModel):
    id: str
    object: str = "booking"
    status: str = Field(description="held, confirmed, checked_in, completed, cancelled, expired")
    service_point_id: str
    service: str
    start: dt.datetime
    end: dt.datetime
    expires_at: dt.datetime | None = Field(description="a hold's end")
    member_id: str | None
    order_id: str | None
    sku: str | None
    price: Money
    note: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    partnership_id: str | None = Field(
        None, description="a booking at a partner installer's point: the partnership")
    goods: list[GoodsComing] | None = Field(
        None, description="the goods of its order shipped to the point for the job (set "
                          "when an order confirms it)")
    rating: BookingRating | None = Field(
        None, description="its buyer's rating once rated (a completed booking, rated once); "
                          "null before")


class NearbyPoint(BaseModel):
    id: str
    name: str
    address: str | None
    location: Location
    distance_km: float
    services: list[str]
    next_slots: list[SlotOut]
    partnership_id: str | None = Field(
        None, description="a partner installer's point: the partnership (null: your own)")
    rating: RatingSummary = Field(default_factory=lambda: RatingSummary(average=None, count=0))


class NearbyOut(BaseModel):
    object: str = "list"
    data: list[NearbyPoint]
    has_more: bool = False


class SearchProduct(BaseModel):
    id: str
    sku: str
    title: str
    price: Money
    service: str | None = Field(description="the service the product needs, if any")
    service_points: list[NearbyPoint]


class SearchOut(BaseModel):
    products: list[SearchProduct]


RadiusKm = Annotated[float, Field(gt=0, le=MAX_RADIUS_KM)]


SLUG = r"^[a-z0-9][a-z0-9-]{1,62}$"
TenantSlug = Annotated[str, Field(pattern=SLUG, examples=["tire-fitters-sh"])]


class PartnershipInvite(RequestModel):
    """Invite an installer (as a merchant) or a merchant (as an installer): exactly one."""

    installer: TenantSlug | None = Field(None, description="the installer's slug")
    merchant: TenantSlug | None = Field(None, description="the merchant's slug")

    @model_validator(mode="after")
    def _one(self) -> PartnershipInvite:
        if (self.installer is None) == (self.merchant is None):
            raise ValueError("give exactly one of installer or merchant")
        return self


class PartnerOut(BaseModel):
    slug: str
    name: str


class PartnershipOut(BaseModel):
    id: str
    object: str = "partnership"
    role: Literal["merchant", "installer"] = Field(description="your side")
    partner: PartnerOut
    status: Literal["invited", "active", "ended"]
    invited_by: Literal["merchant", "installer"]
    created_at: dt.datetime
    updated_at: dt.datetime
