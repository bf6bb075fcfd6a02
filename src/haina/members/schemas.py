"""The members API's requests and responses (the module's public data shapes)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from haina.core.money import Money, MoneyIn
from haina.core.schema_types import MAX_POINTS, Id, LaxDate, NotBlank, RequestModel

IDENTITY_KINDS = ("phone", "email", "wechat_openid", "wechat_unionid", "taobao", "pos",
                  "external")
IdentityKind = Literal["phone", "email", "wechat_openid", "wechat_unionid", "taobao", "pos",
                       "external"]
CONSENTS = ("email_marketing", "sms_marketing", "data_analysis")
PointsKind = Literal["earn", "redeem", "restore", "expire", "adjust", "clawback"]

# Pragmatic address check (RFC 5321 sizes, one @, a dotted domain); deliverability is not ours.
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
                    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
# E.164 allows at most 15 digits; 6 covers short local numbers.
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")


def normalize_email(value: str) -> str:
    """``" Ann@Example.COM "`` → ``"ann@example.com"``, or ValueError with a clear message."""
    v = value.strip().lower()
    if not _EMAIL.match(v) or ".." in v:
        raise ValueError(f"{value!r} is not a valid email address (expected e.g. ann@example.com)")
    return v


def normalize_phone(value: str) -> str:
    """``"+86 138-0000-0000"`` → ``"+8613800000000"``: separators dropped, digits kept."""
    v = _PHONE_SEPARATORS.sub("", value.strip())
    if not _PHONE.match(v):
        raise ValueError(f"{value!r} is not a valid phone number: use 6 to 15 digits with an "
                         "optional leading + and country code, e.g. 13800000000 or +8613800000000")
    return v


def normalize_identity(kind: str, value: str) -> str:
    if kind == "email":
        return normalize_email(value)
    if kind == "phone":
        return normalize_phone(value)
    v = value.strip()
    if not v or len(v) > 200:
        raise ValueError(f"a {kind} identity value must be 1 to 200 characters")
    return v


class IdentityIn(RequestModel):
    """A channel identity to attach, e.g. ``{"kind": "wechat_openid", "value": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "channel": "mini-program"}``."""

    kind: IdentityKind
    value: str = Field(min_length=1, max_length=200)
    channel: str | None = Field(None, max_length=64,
                                description="free label of the source, e.g. a store or app")

    @model_validator(mode="after")
    def _normalize(self) -> IdentityIn:
        self.value = normalize_identity(self.kind, self.value)
        return self


class IdentityOut(BaseModel):
    id: str
    object: str = "member_identity"
    kind: str
    value: str
    channel: str | None
    created_at: dt.datetime


class ConsentsIn(RequestModel):
    """Consent flags to set (``true`` or ``false``, not ``"yes"``); an omitted flag keeps its
    value."""

    email_marketing: bool | None = None
    sms_marketing: bool | None = None
    data_analysis: bool | None = None
    channel: str | None = Field(None, min_length=1, max_length=64,
                                description="where the member decided (web, mini_program, pos …)")
    text_version: str | None = Field(None, min_length=1, max_length=64,
                                     description="the version of the consent text shown")
    text: str | None = Field(None, min_length=1, max_length=4000,
                             description="the consent text shown to the member")


class ConsentOut(BaseModel):
    granted: bool
    changed_at: dt.datetime | None = Field(None, description="when the flag last changed value")


class ConsentsOut(BaseModel):
    email_marketing: ConsentOut
    sms_marketing: ConsentOut
    data_analysis: ConsentOut


class _Profile(RequestModel):
    name: str | None = Field(None, max_length=200,
                             description="surrounding spaces are dropped; not blank (send null "
                                         "to clear it)")
    email: str | None = Field(None, max_length=320, examples=["ann@example.com"])
    phone: str | None = Field(None, max_length=32, examples=["13800000000"])
    birthday: LaxDate | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if not v.strip():
            raise ValueError("must not be blank (whitespace only); send null to clear it")
        return v.strip()

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return normalize_email(v) if v else None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return normalize_phone(v) if v else None

    @field_validator("birthday")
    @classmethod
    def _birthday(cls, v: dt.date | None) -> dt.date | None:
        if v is not None and not dt.date(1900, 1, 1) <= v <= dt.date.today():
            raise ValueError("birthday must be between 1900-01-01 and today")
        return v


class MemberCreate(_Profile):
    """A new member. ``email`` and ``phone`` are also registered as identities."""

    identities: list[IdentityIn] = Field(default_factory=list, max_length=50)
    consents: ConsentsIn | None = None


class MemberUpdate(_Profile):
    """Fields to change; omitted fields are kept, ``null`` clears one."""


class TierRef(BaseModel):
    id: str
    name: str
    rank: int


class MemberOut(BaseModel):
    id: str
    object: str = "member"
    name: str | None
    email: str | None
    phone: str | None
    birthday: dt.date | None
    tier: TierRef | None
    points_balance: int = Field(description="sum of the member's points ledger")
    consents: ConsentsOut
    identities: list[IdentityOut]
    merged_into: str | None = Field(None, description="the member this one was merged into")
    created_at: dt.datetime
    updated_at: dt.datetime


class MergeIn(RequestModel):
    other_id: Id = Field(description="the member to merge into this one; it stops being used")


class PointsAdjustmentIn(RequestModel):
    """A manual change of balance: positive points are a new lot that expires like earned
    points; negative points consume lots, earliest expiry first."""

    points: int = Field(ge=-MAX_POINTS, le=MAX_POINTS,
                        description="non-zero, -10^12 to 10^12; negative takes points away")
    reason: Annotated[str, NotBlank] = Field(min_length=1, max_length=500)

    @field_validator("points")
    @classmethod
    def _non_zero(cls, v: int) -> int:
        if v == 0:
            raise ValueError("points must not be zero")
        return v


class PointsEntryOut(BaseModel):
    id: str
    object: str = "points_entry"
    member_id: str
    kind: PointsKind
    points: int = Field(description="change of balance; negative for redeem/expire/clawback")
    remaining: int | None = Field(None, description="for lots (earn, positive adjust): unspent points")
    expires_at: dt.datetime | None = None
    order_id: str | None = None
    reason: str | None = None
    created_at: dt.datetime


class TierCreate(RequestModel):
    name: Annotated[str, NotBlank] = Field(min_length=1, max_length=100)
    rank: int = Field(ge=0, le=1000, description="higher is better")
    min_spend: MoneyIn = Field(description="net spend needed within the window")
    window_days: int = Field(365, ge=1, le=3650)

    @field_validator("min_spend")
    @classmethod
    def _not_negative(cls, v: Money) -> Money:
        if v.amount < 0:
            raise ValueError("min_spend must not be negative")
        return v


class TierUpdate(RequestModel):
    name: Annotated[str, NotBlank] | None = Field(None, min_length=1, max_length=100)
    rank: int | None = Field(None, ge=0, le=1000)
    min_spend: MoneyIn | None = None
    window_days: int | None = Field(None, ge=1, le=3650)

    @field_validator("min_spend")
    @classmethod
    def _not_negative(cls, v: Money | None) -> Money | None:
        if v is not None and v.amount < 0:
            raise ValueError("min_spend must not be negative")
        return v


class TierOut(BaseModel):
    id: str
    object: str = "tier"
    name: str
    rank: int
    min_spend: Money
    window_days: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ConsentRecordOut(BaseModel):
    """One grant or withdrawal of a consent, as it was decided (the consent log)."""

    id: str
    object: str = "consent_record"
    member_id: str
    purpose: str = Field(description="email_marketing, sms_marketing or data_analysis")
    granted: bool
    channel: str | None
    text_version: str | None
    text: str | None
    source: str = Field(description="api (the member's decision, as told), merge or erasure")
    created_at: dt.datetime
