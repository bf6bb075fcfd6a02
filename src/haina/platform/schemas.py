from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

from pydantic import BaseModel, Field, field_validator, model_validator

from haina.core.schema_types import RequestModel, partial_model

AMOUNT = r"^\d{1,12}(\.\d{1,4})?$"


class RetentionDays(BaseModel):
    """How long the platform keeps each kind of data before the worker deletes it (days);
    the lower bounds are the legal minimums (docs/privacy.md, "Retention")."""

    abandoned_carts: int = Field(90, ge=1, le=3650,
                                 description="open carts not touched for this long")
    webhook_attempts: int = Field(30, ge=7, le=3650,
                                  description="the log of each request to an endpoint")
    delivered_messages: int = Field(30, ge=7, le=3650,
                                    description="webhook messages delivered (and their attempts)")
    audit_events: int = Field(365, ge=180, le=3650,
                              description="events (the audit trail); at least 6 months, "
                                          "Cybersecurity Law Art. 21")
    export_archives: int = Field(7, ge=1, le=30,
                                 description="a data export's archive stays downloadable")


class RetentionDaysIn(RequestModel, RetentionDays):
    """The retention periods as a request gives them."""


class TenantSettings(BaseModel):
    """A merchant's commercial settings; defaults suit a Chinese shop pricing tax-inclusive."""

    shipping_fee: str = Field("0.00", pattern=AMOUNT, max_length=20,
                              description="flat shipping fee per order, e.g. \"10.00\"")
    free_shipping_over: str | None = Field(None, pattern=AMOUNT, max_length=20,
                                           description="no shipping fee from this subtotal")
    tax_rate_bps: int = Field(0, ge=0, le=10_000,
                              description="tax added on top of the taxable amount, basis points")
    points_per_unit: int = Field(1, ge=0, le=10_000,
                                 description="points earned per whole currency unit paid")
    points_value_minor: int = Field(1, ge=0, le=1_000_000,
                                    description="minor units one point is worth at checkout")
    points_expire_days: int = Field(365, ge=1, le=36_500,
                                    description="points expire this long after earning")
    order_hold_minutes: int | None = Field(None, ge=1, le=7 * 24 * 60,
                                           description="unpaid orders are cancelled after this")
    abandoned_cart_hours: int = Field(
        24, ge=1, le=720,
        description="an open cart untouched this many hours is abandoned (GET /v1/carts"
                    "?status=abandoned and the console's carts)")
    privacy_deadline_days: int = Field(
        15, ge=1, le=30, description="apps must acknowledge a data request within this")
    privacy_reminder_days: int = Field(
        3, ge=1, le=30, description="apps that have not acknowledged are reminded this often")
    merchant_redact_grace_hours: int = Field(
        48, ge=0, le=30 * 24,
        description="after an uninstall, the app is asked to erase the merchant's data")
    retention: RetentionDays = Field(default_factory=RetentionDays)
    time_zone: str | None = Field(
        None, max_length=64, examples=["Asia/Shanghai"],
        description="the merchant's IANA time zone: its days and weeks (the console's "
                    "dashboard) start at its midnight; none: Asia/Shanghai for a CNY "
                    "merchant, UTC otherwise")

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if v not in time_zones():
            raise ValueError(f"{v!r} is not an IANA time zone (e.g. Asia/Shanghai)")
        return v


@functools.cache
def time_zones() -> frozenset[str]:
    """The IANA zone names this machine knows (the system's tz database, or tzdata)."""
    return frozenset(zoneinfo.available_timezones())


def time_zone_of(settings: TenantSettings | None, currency: str) -> zoneinfo.ZoneInfo:
    """The zone a merchant's days start in: its setting, else China's for a CNY merchant,
    else UTC (one place for the rule: the console and any report ask here)."""
    name = settings.time_zone if settings is not None else None
    return zoneinfo.ZoneInfo(name or ("Asia/Shanghai" if currency == "CNY" else "UTC"))


class TenantSettingsIn(RequestModel, TenantSettings):
    """The settings as a request gives them: strict types, no unknown field."""

    retention: RetentionDaysIn = Field(default_factory=RetentionDaysIn)

    @model_validator(mode="after")
    def _carts_kept_until_abandoned(self) -> TenantSettingsIn:
        kept = self.retention.abandoned_carts * 24
        if self.abandoned_cart_hours > kept:
            raise ValueError(
                f"abandoned_cart_hours ({self.abandoned_cart_hours}) is longer than open carts "
                f"are kept, {kept} hours (retention.abandoned_carts): a cart would be deleted "
                f"before it counts as abandoned")
        return self


#: PATCH /v1/tenant/settings: a JSON merge patch of the settings (RFC 7396): fields left out
#: keep their value, ``null`` puts one back to its default, ``retention`` merges field by field
TenantSettingsPatch = partial_model(
    TenantSettingsIn, "TenantSettingsPatch",
    "Some of the merchant's settings: those left out keep their value, null restores the "
    "default.",
    nested={"retention": partial_model(RetentionDaysIn, "RetentionDaysPatch",
                                       "Some of the retention periods (days).")})


class TenantOut(BaseModel):
    id: str
    object: str = "tenant"
    slug: str
    name: str
    currency: str
    settings: TenantSettings
    created_at: dt.datetime


class TokenOut(BaseModel):
    """A token as listed: never the token itself (only its hash is stored)."""

    id: str
    label: str | None
    scopes: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class TokenCreated(BaseModel):
    id: str
    token: str
    tenant_id: str
    scopes: list[str]


class StaffOut(BaseModel):
    id: str
    object: str = "staff"
    tenant_id: str
    tenant_slug: str
    email: str
    role: str
    created_at: dt.datetime
    locked_until: dt.datetime | None = None
    disabled_at: dt.datetime | None = None


APP_CATEGORIES = ("operations-agency", "photography-content", "logistics", "customs-broker",
                  "installer", "analytics", "marketing")


class AppIn(RequestModel):
    """A service provider's app as it registers."""

    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=2000)
    category: str = Field(description="one of " + ", ".join(APP_CATEGORIES))
    redirect_uris: list[str] = Field(min_length=1, max_length=10,
                                     description="exact URIs the authorization may return to")
    scopes: list[str] = Field(min_length=1, max_length=40,
                              description="the scopes the app asks merchants for")
    webhook_url: str | None = Field(None, max_length=2000)
    pricing: str = Field("", max_length=500, description="pricing in plain words")
    listed: bool = Field(True, description="shown in the marketplace")


class CertificationOut(BaseModel):
    category: str
    evidence: str
    granted_by: str
    granted_at: dt.datetime


class AppOut(BaseModel):
    id: str
    object: str = "app"
    client_id: str
    name: str
    description: str
    category: str
    redirect_uris: list[str]
    scopes: list[str]
    webhook_url: str | None
    pricing: str
    listed: bool
    rate_plan: str = Field("standard", description="rate-limit plan of the app's tokens")
    certified: bool = Field(description="platform staff certified it for its category")
    certifications: list[CertificationOut]
    created_at: dt.datetime


class AppCreated(AppOut):
    client_secret: str = Field(description="shown once; only its hash is kept")


class GrantOut(BaseModel):
    id: str
    object: str = "app_grant"
    app_id: str
    app_name: str
    scopes: list[str]
    status: str
    installed_at: dt.datetime
    uninstalled_at: dt.datetime | None


class InstallationOut(BaseModel):
    """A merchant that installed the calling app (what a provider sees of its merchants)."""

    tenant_id: str
    tenant_slug: str
    tenant_name: str
    scopes: list[str]
    installed_at: dt.datetime
