from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from haina.core.money import Money, Price
from haina.core.schema_types import Id, RequestModel
from haina.marketing.schemas import CouponDiscount

CampaignStatus = Literal["scheduled", "running", "paused", "ended"]


class CampaignCoupon(RequestModel):
    """The coupon each treated member is issued (an issued-only coupon the campaign creates,
    valid from its start to its end, one use per member)."""

    discount: CouponDiscount
    min_spend: Price | None = None
    max_discount: Price | None = Field(None, description="percent: at most this much off "
                                                         "(needed with a budget)")

    @model_validator(mode="after")
    def _consistent(self) -> CampaignCoupon:
        if self.discount.type == "fixed" and self.max_discount is not None:
            raise ValueError("max_discount is for percent discounts")
        return self


class CampaignCreate(RequestModel):
    """A campaign on a saved analytics segment (``segment_id``) or a list (``member_ids``).
    Only members who granted the ``channel``'s marketing consent are targeted; a share
    ``holdout_percent`` of them, drawn from the campaign's seed, gets nothing."""

    model_config = {"json_schema_extra": {"example": {
        "name": "Win back slipping high-value", "segment_id": "seg_…", "channel": "sms",
        "coupon": {"discount": {"type": "fixed", "amount": {"amount": "20.00",
                                                            "currency": "CNY"}}},
        "holdout_percent": 10, "ends_at": "2026-12-31T00:00:00+08:00",
        "budget": {"amount": "5000.00", "currency": "CNY"}}}}

    name: str = Field(min_length=1, max_length=200)
    segment_id: Id | None = None
    member_ids: list[Id] | None = Field(None, min_length=1, max_length=10_000)
    channel: Literal["sms", "email"] = "sms"
    coupon: CampaignCoupon
    holdout_percent: int = Field(10, ge=0, le=90, description="members held out (0-90 %)")
    starts_at: dt.datetime | None = Field(None, strict=False,
                                          description="none: now (the campaign launches at once)")
    ends_at: dt.datetime = Field(strict=False)
    budget: Price | None = Field(None, description="issuing stops before the coupons' "
                                                   "worst-case cost would exceed it")
    seed: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                             description="the holdout's draw (default: random); the same seed "
                                         "and members give the same holdout")
    description: str = Field("", max_length=500)
    reevaluate_hours: int = Field(
        24, ge=0, le=24 * 31,
        description="while it runs, every this many hours the worker adds members who have "
                    "joined the segment (or granted consent) since, drawn by the same seed; "
                    "0: never")

    @model_validator(mode="after")
    def _consistent(self) -> CampaignCreate:
        if (self.segment_id is None) == (self.member_ids is None):
            raise ValueError("give either segment_id or member_ids")
        if not self.name.strip():
            raise ValueError("the name must not be blank")
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. 2026-12-12T00:00:00+08:00)")
        if self.starts_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if (self.budget is not None and self.coupon.discount.type == "percent"
                and self.coupon.max_discount is None):
            raise ValueError("a budget with a percent coupon needs coupon.max_discount (the "
                             "worst case of one coupon)")
        return self


class CampaignUpdate(RequestModel):
    status: Literal["running", "paused"] | None = Field(
        None, description="paused: the coupon is disabled and a scheduled launch waits")
    name: str | None = Field(None, min_length=1, max_length=200)
    ends_at: dt.datetime | None = Field(None, strict=False)
    description: str | None = Field(None, max_length=500)


class EnrolmentOut(BaseModel):
    """A launch or a re-evaluation, run in batches by the worker (or by the request, when the
    audience fits one batch)."""

    id: str
    object: Literal["campaign_job"] = "campaign_job"
    kind: Literal["launch", "reevaluate"]
    status: Literal["queued", "running", "succeeded", "failed", "canceled"]
    progress: int = Field(description="0-100: the audience's share walked so far")
    audience: int = Field(description="consenting members when it (last) started")
    done: int = Field(description="of them, enrolled before it or walked by it")
    treated: int = Field(description="members this job issued the coupon to")
    holdout: int = Field(description="members this job put in the holdout")
    batch_size: int
    attempts: int = Field(description="failed batches (each undone whole; the job resumes)")
    message: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class CampaignOut(BaseModel):
    id: str
    object: Literal["campaign"] = "campaign"
    name: str
    status: CampaignStatus
    segment_id: str | None
    member_list: int | None = Field(description="members in the list given (no segment)")
    channel: str
    basis: str = Field(description="the consent members were targeted on")
    coupon_id: str
    coupon_code: str
    coupon_cost: Money = Field(description="one coupon's worst-case cost")
    holdout_percent: int
    seed: str
    budget: Money | None
    committed: Money = Field(description="worst-case cost of the coupons issued")
    candidates: int = Field(description="members of the segment or list at launch")
    audience: int = Field(description="candidates who granted the channel's consent")
    treated: int
    holdout: int
    left_out: int = Field(description="consenting members not enrolled: the budget ran out")
    starts_at: dt.datetime
    ends_at: dt.datetime
    launched_at: dt.datetime | None
    description: str
    reevaluate_hours: int = Field(description="0: members are enrolled at the launch only")
    reevaluated_at: dt.datetime | None = Field(description="the last look for new members")
    enrolment: EnrolmentOut | None = Field(
        description="the latest launch or re-evaluation and its progress (null before the "
                    "launch)")
    created_at: dt.datetime
    updated_at: dt.datetime


class IntervalOut(BaseModel):
    estimate: Money
    low: Money | None = Field(description="null with fewer than two members in a group")
    high: Money | None


class GroupOut(BaseModel):
    members: int
    buyers: int = Field(description="members with a paid order in the window")
    revenue: Money = Field(description="their paid orders in the window, net of refunds")
    revenue_per_member: Money


class CampaignResultsOut(BaseModel):
    object: Literal["campaign_results"] = "campaign_results"
    campaign_id: str
    window_start: dt.datetime | None = Field(description="the launch (null before it)")
    window_end: dt.datetime | None = Field(description="the end, or now while it runs")
    treated: GroupOut
    holdout: GroupOut
    redeemed: int = Field(description="treated members whose paid order used the coupon")
    redemption_rate: float | None
    discount_cost: Money = Field(description="the coupon's discounts on those paid orders")
    incremental_revenue: IntervalOut = Field(
        description="what the treated bought (before the coupon's discount) beyond the "
                    "holdout's rate, for all treated members, with its 95 % interval")
    incremental_per_member: IntervalOut
    net_lift: IntervalOut = Field(
        description="incremental revenue − discount cost: the money the campaign made, 95 % "
                    "interval")
    relative_lift: float | None = Field(description="treated ÷ holdout revenue per member − 1")
    method: str = Field("welch", description="difference of means, Welch's standard error, "
                                              "Student t on Welch-Satterthwaite df")
    level: float = 0.95


class CampaignDayOut(BaseModel):
    """The results from the launch to the end of ``day`` (cumulative): how the lift built up."""

    day: dt.date = Field(description="a day in the merchant's time zone")
    treated_revenue_per_member: Money = Field(description="paid, net of refunds, since the "
                                                          "launch")
    holdout_revenue_per_member: Money
    incremental_per_member: IntervalOut = Field(
        description="treated (before the coupon's discount) − holdout, per treated member, "
                    "95 % interval")
    net_per_member: IntervalOut = Field(description="treated (paid) − holdout, per member: "
                                                    "incremental − discount cost")


class CampaignDailyOut(BaseModel):
    object: Literal["campaign_daily_results"] = "campaign_daily_results"
    campaign_id: str
    time_zone: str = Field(description="the merchant's: the days' boundaries")
    treated: int
    holdout: int
    days: list[CampaignDayOut] = Field(description="launch day to the end (or today), every "
                                                   "day present; empty before the launch")
