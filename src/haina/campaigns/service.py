"""Campaigns' public face: create, read, change, launch (at its start: by the request that
creates it, or by the worker), the results against the holdout, and the lift's chart.

A launch reads the candidates (the saved segment's members in the latest analytics run, or
the list), keeps those who have granted the channel's marketing consent now
(``members.campaign_audience``: PIPL art. 24, a refusal of marketing based on profiling is
honoured), and walks them in an order drawn from the campaign's seed: each is put in the
holdout by a second draw (``lift.in_holdout``), or issued the campaign's coupon and told of
by a ``campaign.member_targeted`` event, until one more coupon's worst-case cost would pass
the budget. Then the walk stops for both groups, so the enrolled are a random part of the
audience and the holdout stays comparable. The campaign's row is locked first, so a launch
happens once.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from haina.analytics import service as analytics
from haina.campaigns import lift
from haina.campaigns.models import Campaign, CampaignMember
from haina.campaigns.schemas import (
    CampaignCreate,
    CampaignOut,
    CampaignResultsOut,
    CampaignUpdate,
    GroupOut,
    IntervalOut,
)
from haina.core.context import Tenant
from haina.core.db import rowcount, tenant_row, utcnow
from haina.core.errors import Invalid, InvalidState
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.money import Money
from haina.core.pagination import Page, paginate
from haina.core.personal import export_rows
from haina.marketing import service as marketing
from haina.marketing.schemas import CouponCreate, CouponUpdate
from haina.members import service as members
from haina.orders import service as orders

#: the consent a channel's campaign needs (members.service.campaign_audience reads the flag)
BASIS = {"sms": "consent:sms_marketing", "email": "consent:email_marketing"}
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def _money(minor: int | None, currency: str) -> Money | None:
    return Money.of(minor, currency) if minor is not None else None


def _out(c: Campaign) -> CampaignOut:
    cur = c.currency
    return CampaignOut(
        id=c.id, name=c.name, status=c.status, segment_id=c.segment_id,
        member_list=len(c.member_ids) if c.member_ids is not None else None,
        channel=c.channel, basis=BASIS[c.channel], coupon_id=c.coupon_id,
        coupon_code=c.coupon_code, coupon_cost=_money(c.unit_cost_minor, cur),
        holdout_percent=c.holdout_bps // 100, seed=c.seed,
        budget=_money(c.budget_minor, cur), committed=Money.of(c.committed_minor, cur),
        candidates=c.candidates, audience=c.audience, treated=c.treated, holdout=c.holdout,
        left_out=c.left_out, starts_at=c.starts_at, ends_at=c.ends_at,
        launched_at=c.launched_at, description=c.description, created_at=c.created_at,
        updated_at=c.updated_at)


def create_campaign(session: Session, tenant: Tenant, data: CampaignCreate,
                    now: dt.datetime | None = None) -> CampaignOut:
    """Create a campaign and its coupon; launch it now if its start has come."""
    now = now or utcnow()
    currency = tenant.currency
    terms = data.coupon
    for name, value in (("coupon.discount.amount", terms.discount.amount),
                        ("coupon.min_spend", terms.min_spend),
                        ("coupon.max_discount", terms.max_discount), ("budget", data.budget)):
        if value is not None and value.currency != currency:
            raise Invalid(f"{name} must be in the merchant's currency {currency}",
                          slug="wrong-currency")
    if data.ends_at <= now:
        raise Invalid("ends_at must be in the future", slug="validation-error")
    if data.segment_id:
        analytics.get_segment(session, tenant, data.segment_id)  # 404 analytics-segment-not-found
    starts_at = max(data.starts_at or now, now)
    campaign_id = new_id("campaign")
    code = "CMP-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
    coupon = marketing.create_coupon(session, tenant, CouponCreate(
        code=code, discount=terms.discount, min_spend=terms.min_spend,
        max_discount=terms.max_discount, starts_at=starts_at, ends_at=data.ends_at,
        audience="issued", description=f"campaign {campaign_id}"[:500]))
    unit: int | None
    if terms.discount.type == "fixed":
        assert terms.discount.amount is not None
        unit = terms.discount.amount.minor
    else:
        unit = terms.max_discount.minor if terms.max_discount else None
    row = Campaign(id=campaign_id, tenant_id=tenant.id, name=data.name.strip(),
                   status="scheduled", segment_id=data.segment_id,
                   member_ids=list(dict.fromkeys(data.member_ids)) if data.member_ids else None,
                   channel=data.channel, coupon_id=coupon.id, coupon_code=coupon.code,
                   unit_cost_minor=unit, currency=currency,
                   holdout_bps=data.holdout_percent * 100,
                   seed=data.seed or secrets.token_hex(16),
                   budget_minor=data.budget.minor if data.budget else None, committed_minor=0,
                   audience=0, candidates=0, treated=0, holdout=0, left_out=0,
                   starts_at=starts_at, ends_at=data.ends_at, launched_at=None,
                   description=data.description, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    record_event(session, tenant.id, "campaign.created", row.id,
                 {"campaign_id": row.id, "name": row.name, "coupon_id": coupon.id,
                  "starts_at": starts_at.isoformat(), "ends_at": data.ends_at.isoformat()})
    if starts_at <= now:
        _launch(session, tenant, row, now)
    return _out(row)


def get_campaign(session: Session, tenant: Tenant, campaign_id: str) -> CampaignOut:
    return _out(tenant_row(session, tenant.id, Campaign, campaign_id, "campaign"))


def list_campaigns(session: Session, tenant: Tenant, *, status: str | None = None,
                   limit: int = 50, cursor: str | None = None) -> Page[CampaignOut]:
    stmt = select(Campaign).where(Campaign.tenant_id == tenant.id)
    if status:
        stmt = stmt.where(Campaign.status == status)
    return paginate(session, stmt, Campaign.id, limit=limit, cursor=cursor, convert=_out,
                    kind="campaign")


def update_campaign(session: Session, tenant: Tenant, campaign_id: str,
                    data: CampaignUpdate) -> CampaignOut:
    """Pause (the coupon is disabled, a scheduled launch waits) or resume, rename, move the
    end (the coupon's too). An ended campaign is not changed (409)."""
    c = tenant_row(session, tenant.id, Campaign, campaign_id, "campaign", lock=True)
    changes = data.model_dump(exclude_unset=True)
    if c.status == "ended" and changes:
        raise InvalidState("an ended campaign cannot be changed", status_now=c.status)
    now = utcnow()
    coupon_changes: dict[str, Any] = {}
    if "ends_at" in changes:
        ends_at = changes["ends_at"]
        if ends_at is None or ends_at.tzinfo is None:
            raise Invalid("ends_at needs a time zone", slug="validation-error")
        if ends_at <= max(c.starts_at, now):
            raise Invalid("ends_at must be after the start and in the future",
                          slug="validation-error")
        c.ends_at = coupon_changes["ends_at"] = ends_at
    status = changes.get("status")
    if status == "paused" and c.status != "paused":
        c.status, coupon_changes["status"] = "paused", "disabled"
    elif status == "running" and c.status == "paused":
        c.status = "running" if c.launched_at else "scheduled"
        coupon_changes["status"] = "active"
    for name in ("name", "description"):
        if changes.get(name) is not None:
            setattr(c, name, changes[name].strip() if name == "name" else changes[name])
    if coupon_changes:
        marketing.update_coupon(session, tenant, c.coupon_id, CouponUpdate(**coupon_changes))
    c.updated_at = now
    record_event(session, tenant.id, "campaign.updated", c.id,
                 {"campaign_id": c.id, "status": c.status,
                  **{k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                     for k, v in changes.items()}})
    session.flush()
    if c.status == "scheduled" and c.starts_at <= now:
        _launch(session, tenant, c, now)
    return _out(c)


# ---------------------------------------------------------------- launching

def _candidates(session: Session, tenant: Tenant, c: Campaign) -> list[str]:
    if c.segment_id is not None:
        return analytics.segment_member_ids(session, tenant, c.segment_id)
    return list(c.member_ids or ())


def _launch(session: Session, tenant: Tenant, c: Campaign, now: dt.datetime) -> bool:
    """Enrol the audience and issue the coupons (see the module's docstring). The caller
    holds the campaign's row (locked, or just created); a launched campaign is left."""
    if c.status != "scheduled":
        return False
    candidates = _candidates(session, tenant, c)
    audience = members.campaign_audience(session, tenant, c.channel, candidates)
    treated: list[str] = []
    holdout: list[str] = []
    left = None if c.budget_minor is None else c.budget_minor - c.committed_minor
    order = lift.enrolment_order(c.seed, audience)
    for i, member_id in enumerate(order):
        if lift.in_holdout(c.seed, member_id, c.holdout_bps):
            holdout.append(member_id)
            continue
        if left is not None and (c.unit_cost_minor or 0) > left:
            c.left_out = len(order) - i  # this member and the rest: the budget is spent
            break
        treated.append(member_id)
        if left is not None:
            left -= c.unit_cost_minor or 0
    basis = BASIS[c.channel]
    rows = [{"id": new_id("campaign_member"), "tenant_id": tenant.id, "campaign_id": c.id,
             "member_id": m, "arm": arm, "basis": basis, "created_at": now}
            for arm, group in (("treated", treated), ("holdout", holdout)) for m in group]
    if rows:
        session.execute(insert(CampaignMember.__table__), rows)
    if treated:
        marketing.issue_to_members(session, tenant, c.coupon_id, treated, source=c.id, now=now)
    for member_id in treated:
        record_event(session, tenant.id, "campaign.member_targeted", c.id,
                     {"campaign_id": c.id, "member_id": member_id, "channel": c.channel,
                      "basis": basis, "coupon_id": c.coupon_id, "coupon_code": c.coupon_code,
                      "ends_at": c.ends_at.isoformat()})
    c.status, c.launched_at, c.updated_at = "running", now, now
    c.candidates, c.audience = len(set(candidates)), len(audience)
    c.treated, c.holdout = len(treated), len(holdout)
    c.committed_minor += (c.unit_cost_minor or 0) * len(treated)
    record_event(session, tenant.id, "campaign.launched", c.id,
                 {"campaign_id": c.id, "treated": c.treated, "holdout": c.holdout,
                  "left_out": c.left_out, "audience": c.audience})
    session.flush()
    return True


def run_due_campaigns(session: Session, now: dt.datetime, batch: int = 20) -> int:
    """Worker: launch the scheduled campaigns whose start has come and end those whose end
    has passed (every merchant). Returns the campaigns changed."""
    changed = 0
    due = session.execute(select(Campaign.tenant_id, Campaign.id).where(
        Campaign.status == "scheduled", Campaign.starts_at <= now)
        .order_by(Campaign.starts_at).limit(batch)).all()
    for tenant_id, campaign_id in due:
        c = session.scalar(select(Campaign).where(Campaign.tenant_id == tenant_id,
                                                  Campaign.id == campaign_id).with_for_update())
        if c is not None:
            tenant = Tenant(id=tenant_id, slug="", currency=c.currency)
            changed += _launch(session, tenant, c, now)
    over = session.scalars(select(Campaign).where(
        Campaign.status.in_(("running", "paused", "scheduled")), Campaign.ends_at <= now)
        .order_by(Campaign.ends_at).limit(batch).with_for_update()).all()
    for c in over:
        c.status, c.updated_at = "ended", now
        record_event(session, c.tenant_id, "campaign.ended", c.id,
                     {"campaign_id": c.id, "treated": c.treated, "holdout": c.holdout})
        changed += 1
    session.flush()
    return changed


# ---------------------------------------------------------------- results

def _per_member(values: dict[str, int], ids: Sequence[str]) -> list[float]:
    return [float(values.get(m, 0)) for m in ids]


def _round(value: float, currency: str) -> Money:
    """An estimate in minor units as Money, rounded half-even to the minor unit."""
    return Money.of(int(Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)),
                    currency)


def _interval(i: lift.Interval, scale: float, currency: str) -> IntervalOut:
    return IntervalOut(estimate=_round(i.estimate * scale, currency),
                       low=_round(i.low * scale, currency) if i.low is not None else None,
                       high=_round(i.high * scale, currency) if i.high is not None else None)


def _group(ids: Sequence[str], paid: dict[str, int], currency: str) -> GroupOut:
    total = sum(paid.get(m, 0) for m in ids)
    return GroupOut(members=len(ids), buyers=sum(1 for m in ids if paid.get(m)),
                    revenue=Money.of(total, currency),
                    revenue_per_member=_round(total / len(ids) if ids else 0.0, currency))


def campaign_results(session: Session, tenant: Tenant, campaign_id: str,
                     now: dt.datetime | None = None) -> CampaignResultsOut:
    """The campaign's results over its window (launch → end, or now): revenue per member of
    the treated and the holdout (paid orders, net of refunds), redemptions, the coupon's
    cost, and the lift with its 95 % interval (``lift.welch_interval``).

    The incremental revenue compares what the treated bought before the campaign's discount
    with the holdout; the net lift compares what they paid, so net lift = incremental
    revenue − discount cost, each with its own interval."""
    c = tenant_row(session, tenant.id, Campaign, campaign_id, "campaign")
    now = now or utcnow()
    cur = c.currency
    zero = Money.of(0, cur)
    empty = IntervalOut(estimate=zero, low=None, high=None)
    arms: dict[str, list[str]] = {"treated": [], "holdout": []}
    for member_id, arm in session.execute(select(CampaignMember.member_id, CampaignMember.arm)
                                          .where(CampaignMember.tenant_id == tenant.id,
                                                 CampaignMember.campaign_id == c.id)
                                          .order_by(CampaignMember.member_id)):
        arms[arm].append(member_id)
    treated, holdout = arms["treated"], arms["holdout"]
    start = c.launched_at
    end = min(c.ends_at, now)
    paid: dict[str, int] = {}
    order_ids: set[str] = set()
    if start is not None and end > start:
        for order_id, member_id, net in orders.paid_orders_of(session, tenant,
                                                              treated + holdout, start, end):
            paid[member_id] = paid.get(member_id, 0) + net
            order_ids.add(order_id)
    discount: dict[str, int] = {}
    for claim_order, claim_member, amount in marketing.coupon_claims(session, tenant,
                                                                     c.coupon_id):
        if claim_order in order_ids and claim_member is not None:
            discount[claim_member] = discount.get(claim_member, 0) + amount
    cost = sum(discount.values())
    gross = {m: paid.get(m, 0) + discount.get(m, 0) for m in treated}
    results = dict(
        campaign_id=c.id, window_start=start, window_end=end if start else None,
        treated=_group(treated, paid, cur), holdout=_group(holdout, paid, cur),
        redeemed=len(discount),
        redemption_rate=len(discount) / len(treated) if treated else None,
        discount_cost=Money.of(cost, cur), incremental_revenue=empty,
        incremental_per_member=empty, net_lift=empty, relative_lift=None)
    if treated and holdout:
        by_gross = lift.welch_interval(_per_member(gross, treated), _per_member(paid, holdout))
        by_paid = lift.welch_interval(_per_member(paid, treated), _per_member(paid, holdout))
        n = len(treated)
        mean_h = sum(paid.get(m, 0) for m in holdout) / len(holdout)
        mean_t = sum(paid.get(m, 0) for m in treated) / n
        results.update(
            incremental_revenue=_interval(by_gross, n, cur),
            incremental_per_member=_interval(by_gross, 1, cur),
            net_lift=_interval(by_paid, n, cur),
            relative_lift=(mean_t / mean_h - 1) if mean_h else None)
    return CampaignResultsOut(**results)


MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


def lift_plot(session: Session, tenant: Tenant, campaign_id: str, fmt: str) -> bytes:
    """The results as a chart (PNG or SVG): revenue per member of each group, and the
    incremental revenue per member with its 95 % interval."""
    from haina.campaigns import plots
    r = campaign_results(session, tenant, campaign_id)
    return plots.render(plots.lift_figure(r), fmt)


# ---------------------------------------------------------------- personal information

def export_campaign_members(session: Session, tenant: Tenant,
                            member_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The campaigns a person was enrolled in, their group and the basis (an export)."""
    return {"campaign_members": export_rows(session, CampaignMember.__table__, tenant.id,
                                            "member_id", member_ids)}


def erase_campaign_members(session: Session, tenant: Tenant, member_ids: Sequence[str]) -> int:
    """Erasure: the person leaves every campaign's groups (results count without them)."""
    if not member_ids:
        return 0
    return rowcount(session.execute(
        delete(CampaignMember).where(CampaignMember.tenant_id == tenant.id,
                                     CampaignMember.member_id.in_(list(member_ids)))
        .execution_options(synchronize_session=False)))
