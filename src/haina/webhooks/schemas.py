"""The webhooks API's shapes, and the event types an endpoint may subscribe to."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from haina.core.schema_types import RequestModel

# Every event type the platform records (``record_event`` in src/haina, and the order and
# payment lifecycles); tests/webhooks/test_event_types.py fails when code records one that is
# not listed here. An endpoint subscribes to some of them, or to ``prefix.*`` patterns.
EVENT_TYPES: tuple[str, ...] = (
    "order.created", "order.paid", "order.shipped", "order.fulfilled", "order.completed",
    "order.refunded", "order.cancelled",
    "payment_intent.authorized", "payment_intent.failed", "payment_intent.succeeded",
    "payment_intent.canceled", "refund.succeeded", "payout.paid",
    "product.created", "product.updated", "product.media_added", "product.media_removed",
    "variant.created", "variant.updated", "variant.price_changed",
    "location.created", "inventory.adjusted", "inventory.reserved", "inventory.released",
    "member.created", "member.updated", "member.merged", "member.identity_added",
    "member.identity_removed", "member.tier_changed", "member.points_earned",
    "member.points_redeemed", "member.points_restored", "member.points_clawed_back",
    "member.points_adjusted", "member.points_expired", "tier.created", "tier.updated",
    "tenant.created", "tenant.updated", "token.created", "token.revoked",
    "staff.created", "staff.locked", "staff.role_changed", "staff.disabled", "staff.enabled",
    "staff.password_changed", "staff.password_reset",
    "app.installed", "app.scopes_changed", "app.uninstalled",
    "endpoint.attempts_exhausted", "endpoint.disabled", "coupon.created", "coupon.updated",
    "promotion.created", "promotion.updated", "coupon.batch_created",
    "service_point.created", "service_point.updated", "fitment_rule.created",
    "fitment_rule.deleted", "booking.held", "booking.confirmed", "booking.rescheduled",
    "booking.checked_in", "booking.completed", "booking.cancelled", "booking.expired",
    "booking.rated",
    "partnership.invited", "partnership.accepted", "partnership.ended",
    "service_resource.created", "service_resource.updated",
    "crossborder.declaration.ready", "crossborder.declaration.accepted",
    "crossborder.declaration.released", "crossborder.declaration.rejected",
    "crossborder.declaration.receipt", "tracking.updated",
    "brand.submitted", "brand.approved", "brand.rejected", "brand.revoked",
    "brand.expiring", "brand.expired",
    "member.data_requested", "member.redact_requested", "merchant.redact_requested",
    "data_request.acknowledged", "data_request.overdue", "data_request.archive_downloaded",
    "publishable_key.created", "publishable_key.revoked", "storefront.sign_in_code_requested",
    "coupon.issued", "campaign.created", "campaign.updated", "campaign.launched",
    "campaign.member_targeted", "campaign.enrolled", "campaign.ended",
)
#: privacy events every app holding a members scope at the merchant must receive, subscribed
#: or not (the apps are named in the event's ``app_ids``; docs/privacy.md)
MANDATORY_EVENT_TYPES: tuple[str, ...] = (
    "member.data_requested", "member.redact_requested", "merchant.redact_requested",
)
MAX_URL_LENGTH = 2048
MAX_EVENT_TYPES = 100

DeliveryStatus = Literal["pending", "succeeded", "failed"]
EventTypeText = Annotated[str, Field(min_length=1, max_length=64)]


class EndpointIn(RequestModel):
    url: str = Field(max_length=MAX_URL_LENGTH,
                     description="an http(s) URL that answers 2xx within 15 s")
    event_types: list[EventTypeText] = Field(
        min_length=1, max_length=MAX_EVENT_TYPES,
        description='event types ("order.paid"), patterns ("order.*") or "*" for all')
    description: str | None = Field(None, max_length=500)


class EndpointUpdate(RequestModel):
    not_null = ("url", "event_types", "disabled")
    url: str | None = Field(None, max_length=MAX_URL_LENGTH)
    event_types: list[EventTypeText] | None = Field(None, min_length=1,
                                                    max_length=MAX_EVENT_TYPES)
    description: str | None = Field(None, max_length=500)
    disabled: bool | None = Field(None, description="false re-enables a disabled endpoint")


class EndpointOut(BaseModel):
    id: str
    object: str = "webhook_endpoint"
    url: str
    event_types: list[str]
    description: str | None
    app_id: str | None = Field(description="the app whose grant made it (null: the merchant's)")
    disabled: bool
    disabled_reason: str | None
    failing_since: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="the signing secret (whsec_…): shown only now")


class RotateIn(RequestModel):
    grace_hours: int = Field(
        24, ge=0, le=168,
        description="hours during which the old secret still signs beside the new one (every "
                    "request carries both signatures), so a receiver can move to the new "
                    "secret without refusing a request; 0 stops the old secret at once")


class SecretOut(BaseModel):
    id: str
    object: str = "webhook_endpoint_secret"
    secret: str = Field(description="the new signing secret (whsec_…): shown only now")
    previous_secret_expires_at: dt.datetime | None = Field(
        None, description="until when the old secret signs too (none: it stopped at once)")


class DeliveryOut(BaseModel):
    id: str
    object: str = "webhook_delivery"
    endpoint_id: str
    event_id: str = Field(description="the event's id, sent as the webhook-id header")
    event_type: str
    status: DeliveryStatus
    attempts: int = Field(description="attempts since it was queued or last replayed")
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None


class AttemptOut(BaseModel):
    id: str
    object: str = "webhook_attempt"
    delivery_id: str
    endpoint_id: str
    event_id: str
    attempt: int
    succeeded: bool
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None
    created_at: dt.datetime


class ReplayIn(RequestModel):
    since: dt.datetime = Field(strict=False, description="replay this endpoint's events from "
                                                         "this time on (ISO 8601)")
    only_failed: bool = Field(False, description="only deliveries that failed (dead-lettered "
                                                 "or cut off by a disabled endpoint)")


class ReplayOut(BaseModel):
    object: str = "webhook_replay"
    queued: int = Field(description="deliveries queued to be sent again (or for the first time)")
