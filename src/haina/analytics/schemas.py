"""The analytics API's requests and responses (the module's public data shapes).

Plain Pydantic: no NumPy here, so the shapes are importable without the ``analytics`` extra.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from haina.core.money import AmountStr, Money
from haina.core.schema_types import LaxDate, RequestModel

# the names of haina.analytics.clv.rfm.SEGMENTS and STAGES (a test keeps them equal)
Segment = Literal[
    "new", "champions", "loyal", "potential", "cant_lose", "at_risk", "hibernating", "lost"
]
Stage = Literal["new", "active", "at_risk", "lapsed", "reactivated"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]
PlotName = Literal["cohort_heatmap", "p_alive_vs_recency", "clv_distribution", "holdout_fit"]

#: the horizon of ``expected_purchases_90d``
HORIZON_DAYS = 90


class RefreshIn(RequestModel):
    """What to fit. Every field has a default: ``{}`` refreshes with BG/NBD on daily units."""

    model: Literal["bgnbd", "pnbd"] = Field(
        "bgnbd", description="purchase model: BG/NBD (bgnbd) or Pareto/NBD (pnbd)"
    )
    freq: Literal["D", "W"] = Field("D", description="time unit: days (D) or weeks (W)")
    source: Literal["orders", "import"] = Field(
        "orders",
        description="the platform's paid orders, or the log imported with "
        "`haina analytics import --tenant`",
    )
    engine: Literal["duckdb", "spark"] = Field(
        "duckdb", description="Ibis backend for the summaries (spark needs the [spark] extra)"
    )
    holdout_days: int = Field(
        90,
        ge=0,
        le=3650,
        description="days at the end held out to check the model's predictions (0: no check)",
    )
    clv_months: int = Field(12, ge=1, le=120, description="CLV horizon in months")
    discount_rate: float = Field(
        0.01, ge=0, le=1, allow_inf_nan=False, description="monthly discount rate of the CLV"
    )
    observation_end: LaxDate | None = Field(
        None, description="last day observed (default: today in `timezone`)"
    )
    timezone: str = Field(
        "UTC", max_length=64, description="IANA zone whose calendar days and months are used"
    )
    consented_only: bool = Field(
        False,
        description="score only members who granted the `data_analysis` consent (their whole "
        "history; the others are left out of the fit and get no scores). Platform orders only",
    )

    @model_validator(mode="after")
    def _consent_needs_members(self) -> RefreshIn:
        if self.consented_only and self.source != "orders":
            raise ValueError("consented_only applies to the platform's orders (source "
                             "'orders'): an imported log's customers are not members")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (expected e.g. Asia/Shanghai)") from None
        return v


class JobOut(BaseModel):
    id: str
    object: Literal["analytics_job"] = "analytics_job"
    kind: Literal["refresh"] = "refresh"
    status: JobStatus
    progress: int = Field(description="0 to 100")
    message: str | None = Field(None, description="what the job is doing, or why it failed")
    params: RefreshIn
    run_id: str | None = Field(None, description="the run a succeeded job produced")
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


class FittedModelOut(BaseModel):
    model: str
    params: dict[str, float]
    standard_errors: dict[str, float | None] = Field(
        description="from the inverse Hessian; null where the likelihood is flat")
    log_likelihood: float
    customers: int


ClvBasis = Literal["gamma_gamma", "shrunk_mean_spend"]
CLV_BASIS_DESCRIPTION = (
    "what the CLV rests on: `gamma_gamma` (the Gamma-Gamma model's expected spend) or "
    "`shrunk_mean_spend` (the run's Gamma-Gamma fit was degenerate, so each customer's mean "
    "spend shrunk to the population's median, see the run's `spend.degenerate`)")


class SpendFallbackOut(BaseModel):
    population_spend: float = Field(
        description="the median of the repeat buyers' mean spends, in major units")
    purchases: float = Field(
        description="the population's spend counts as this many more purchases of the customer")


class SpendModelOut(FittedModelOut):
    degenerate: list[str] = Field(
        default_factory=list,
        description="why the fit's predictions are not served (empty for a sound fit): "
                    "q <= 1, a Hessian that is not positive definite, a boundary optimum")
    fallback: SpendFallbackOut | None = Field(
        None, description="the shrunk estimate served instead, when the fit is degenerate")


class HoldoutBucketOut(BaseModel):
    bucket: float = Field(description="repeat purchases in the calibration period")
    customers: int
    actual: float = Field(description="mean purchases in the holdout period")
    predicted: float


class HoldoutOut(BaseModel):
    calibration_end: dt.date
    observation_end: dt.date
    duration: float = Field(description="length of the holdout period in the run's unit")
    customers: int
    actual_purchases: float
    predicted_purchases: float
    buckets: list[HoldoutBucketOut]
    model: FittedModelOut = Field(description="the model fitted on the calibration period")


class RunOut(BaseModel):
    id: str
    object: Literal["analytics_run"] = "analytics_run"
    job_id: str | None
    source: str
    engine: str
    unit: Literal["day", "week"]
    currency: str
    observation_end: dt.date
    customers: int
    transactions: int
    purchases: FittedModelOut
    spend: SpendModelOut
    clv_basis: ClvBasis = Field(description=CLV_BASIS_DESCRIPTION)
    holdout: HoldoutOut | None
    clv_months: int
    discount_rate: float
    horizon_days: int = HORIZON_DAYS
    timezone: str
    notes: list[str]
    created_at: dt.datetime


class RfmOut(BaseModel):
    r: int
    f: int
    m: int
    code: str = Field(description='the three scores, e.g. "545"')


class MemberScoresOut(BaseModel):
    member_id: str
    object: Literal["analytics_member_scores"] = "analytics_member_scores"
    run_id: str
    unit: Literal["day", "week"]
    frequency: int = Field(description="repeat purchases (purchase days or weeks minus one)")
    recency: float = Field(description="first to last purchase, in the run's unit")
    T: float = Field(description="age: first purchase to the end of observation")
    monetary_value: Money = Field(description="mean spend of the repeat purchases")
    p_alive: float = Field(description="probability the member is still a customer")
    expected_purchases_90d: float
    clv: Money = Field(description="discounted expected spend over clv_months")
    clv_months: int
    clv_basis: ClvBasis = Field(description=CLV_BASIS_DESCRIPTION)
    rfm: RfmOut
    segment: Segment
    stage: Stage
    computed_at: dt.datetime


class SegmentRule(RequestModel):
    """Conditions on the latest scores, all of which a member must meet. ``clv_*`` are decimal
    strings in the merchant's currency; ``segment_in`` and ``stage_in`` list RFM segments and
    lifecycle stages."""

    model_config = ConfigDict(
        json_schema_extra={"example": {"p_alive_lt": 0.3, "clv_gt": "500.00",
                                       "segment_in": ["at_risk", "cant_lose"]}},
    )

    p_alive_lt: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    p_alive_lte: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    p_alive_gt: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    p_alive_gte: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    clv_lt: AmountStr | None = None
    clv_lte: AmountStr | None = None
    clv_gt: AmountStr | None = None
    clv_gte: AmountStr | None = None
    expected_purchases_90d_lt: float | None = Field(None, ge=0, allow_inf_nan=False)
    expected_purchases_90d_lte: float | None = Field(None, ge=0, allow_inf_nan=False)
    expected_purchases_90d_gt: float | None = Field(None, ge=0, allow_inf_nan=False)
    expected_purchases_90d_gte: float | None = Field(None, ge=0, allow_inf_nan=False)
    segment_in: list[Segment] | None = Field(None, min_length=1, max_length=8)
    stage_in: list[Stage] | None = Field(None, min_length=1, max_length=5)

    @field_validator("clv_lt", "clv_lte", "clv_gt", "clv_gte")
    @classmethod
    def _finite(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and not v.is_finite():
            raise ValueError("must be a finite decimal amount such as \"500.00\"")
        return v

    @model_validator(mode="after")
    def _selects_someone(self) -> SegmentRule:
        if not any(v is not None for v in self.__dict__.values()):
            raise ValueError(
                "a rule needs at least one condition, e.g. {\"p_alive_lt\": 0.3}"
            )
        for metric in ("p_alive", "clv", "expected_purchases_90d"):
            lows = [(getattr(self, f"{metric}_{op}"), op) for op in ("gt", "gte")]
            highs = [(getattr(self, f"{metric}_{op}"), op) for op in ("lt", "lte")]
            for low, low_op in lows:
                for high, high_op in highs:
                    if low is None or high is None:
                        continue
                    if low > high or (low == high and (low_op == "gt" or high_op == "lt")):
                        raise ValueError(
                            f"{metric}_{low_op} {low} and {metric}_{high_op} {high} "
                            "leave no value in between: the rule would select no one"
                        )
        return self

    def conditions(self) -> dict[str, Any]:
        """The conditions given, as JSON (what is stored and shown)."""
        return self.model_dump(mode="json", exclude_none=True)


class SegmentCreate(RequestModel):
    """A saved segment, e.g. ``{"name": "slipping high-value", "rule": {"p_alive_lt": 0.3,
    "clv_gt": "500.00"}}``."""

    name: str = Field(min_length=1, max_length=100)
    rule: SegmentRule

    @field_validator("name")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("the name must not be blank")
        return v


class SavedSegmentOut(BaseModel):
    id: str
    object: Literal["analytics_segment"] = "analytics_segment"
    name: str
    rule: dict[str, Any]
    members: int = Field(description="members matching the rule in the latest run")
    created_at: dt.datetime


class CountOut(BaseModel):
    name: str
    members: int


class SegmentsOut(BaseModel):
    object: Literal["analytics_segments"] = "analytics_segments"
    run_id: str | None = Field(None, description="null until the first refresh succeeds")
    computed_at: dt.datetime | None = None
    members: int = Field(description="members with scores")
    rfm_segments: list[CountOut] = Field(description="every RFM segment, in rule order")
    lifecycle_stages: list[CountOut]
    saved: list[SavedSegmentOut]


class SegmentMemberOut(BaseModel):
    member_id: str
    p_alive: float
    expected_purchases_90d: float
    clv: Money
    clv_basis: ClvBasis = Field(description=CLV_BASIS_DESCRIPTION)
    segment: Segment
    stage: Stage


class CohortMonthOut(BaseModel):
    months_since_first: int
    active: int = Field(description="cohort members with a purchase in that month")
    retention: float = Field(description="active / cohort size")
    revenue: Money


class CohortOut(BaseModel):
    cohort: str = Field(description='month of the first purchase, e.g. "2024-03"')
    size: int
    months: list[CohortMonthOut] = Field(
        description="every month from 0 to the last observed, months without buyers included"
    )


class CohortsOut(BaseModel):
    object: Literal["analytics_cohorts"] = "analytics_cohorts"
    run_id: str | None = None
    computed_at: dt.datetime | None = None
    currency: str
    cohorts: list[CohortOut]
