"""Campaigns' public face: create, read, change, launch (at its start: by the request that
creates it, or by the worker), re-evaluate, the results against the holdout, and the lift's
chart.

A launch reads the candidates (the saved segment's members in the latest analytics run, or
the list), keeps those who have granted the channel's marketing consent now
(``members.campaign_audience``: PIPL art. 24, a refusal of marketing based on profiling is
honoured), and walks them in an order drawn from the campaign's seed: each is put in the
holdout by a second draw (``lift.in_holdout``), or issued the campaign's coupon and told of
by a ``campaign.member_targeted`` event, until one more coupon's worst-case cost would pass
the budget. Then the walk stops for both groups, so the enrolled are a random part of the
audience and the holdout stays comparable. The walk runs as a job in batches, each its own
transaction (``enrolment``): in the launching request when the audience fits one batch, else
in the worker. While the campaign runs, the worker re-evaluates it every
``reevaluate_hours``: the same walk over who joined since. Status changes follow
``lifecycle.CAMPAIGN_LIFECYCLE``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from haina.analytics import service as analytics
from haina.campaigns import enrolment, lift
from haina.campaigns.enrolment import BASIS as BASIS
from haina.campaigns.enrolment import run_job as run_job
from haina.campaigns.enrolment import run_queued_jobs as run_queued_jobs
from haina.campaigns.lifecycle import CAMPAIGN_LIFECYCLE
from haina.campaigns.models import Campaign, CampaignJob, CampaignMember
from haina.campaigns.schemas import (
    CampaignCreate,
    CampaignDailyOut,
    CampaignDayOut,
    CampaignOut,
    CampaignResultsOut,
    CampaignUpdate,
    EnrolmentOut,
    GroupOut,
    IntervalOut,
)
from haina.core.context import Tenant
from haina.core.db import rowcount, tenant_row, utcnow
from haina.core.errors import Invalid, InvalidState, NotFound
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.money import Money
from haina.core.pagination import Page, paginate
from haina.core.personal import export_rows
from haina.marketing import service as marketing
from haina.marketing.schemas import CouponCreate, CouponUpdate
from haina.orders import service as orders
from haina.platform import service as platform
from haina.platform.schemas import time_zone_of

_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def _money(minor: int | None, currency: str) -> Money | None:
    return Money.of(minor, currency) if minor is not None else None


def _out(session: Session, c: Campaign) -> CampaignOut:
    cur = c.currency
    job = enrolment.latest_job(session, c.tenant_id, c.id)
    return CampaignOut(
        id=c.id, name=c.name, status=c.status, segment_id=c.segment_id,
        member_list=len(c.member_ids) if c.member_ids is not None else None,
        channel=c.channel, basis=BASIS[c.channel], coupon_id=c.coupon_id,
        coupon_code=c.coupon_code, coupon_cost=_money(c.unit_cost_minor, cur),
        holdout_percent=c.holdout_bps // 100, seed=c.seed,
        budget=_money(c.budget_minor, cur), committed=Money.of(c.committed_minor, cur),
        candidates=c.candidates, audience=c.audience, treated=c.treated, holdout=c.holdout,
        left_out=c.left_out, starts_at=c.starts_at, ends_at=c.ends_at,
        launched_at=c.launched_at, description=c.description,
        reevaluate_hours=c.reevaluate_hours, reevaluated_at=c.reevaluated_at,
        enrolment=enrolment.job_out(job) if job is not None else None,
        created_at=c.created_at, updated_at=c.updated_at)


def _set_due(c: Campaign) -> None:
    """When the worker must next look at the campaign (``ix_campaigns_due``): its start, its
    next re-evaluation or its end, whichever comes first; never once it has ended."""
    if c.status == "ended":
        c.due_at = None
    elif c.status == "scheduled":
        c.due_at = min(c.starts_at, c.ends_at)
    elif c.status == "running" and c.reevaluate_hours:
        last = c.reevaluated_at or c.launched_at or c.starts_at
        c.due_at = min(c.ends_at, last + dt.timedelta(hours=c.reevaluate_hours))
    else:
        c.due_at = c.ends_at


def _move(session: Session, c: Campaign, event: str, status: str, data: dict[str, Any],
          now: dt.datetime) -> None:
    """Change the campaign's status by ``event`` (checked against the lifecycle table),
    record the event (naming the new status) and set when it is next due."""
    CAMPAIGN_LIFECYCLE.check(event, c.status, status)
    c.status, c.updated_at = status, now
    _set_due(c)
    record_event(session, c.tenant_id, event, c.id,
                 {"campaign_id": c.id, **data, "status": status})


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
                   description=data.description, created_at=now, updated_at=now,
                   reevaluate_hours=data.reevaluate_hours, reevaluated_at=None)
    CAMPAIGN_LIFECYCLE.check("campaign.created", None, row.status)
    _set_due(row)
    session.add(row)
    session.flush()
    record_event(session, tenant.id, "campaign.created", row.id,
                 {"campaign_id": row.id, "name": row.name, "coupon_id": coupon.id,
                  "starts_at": starts_at.isoformat(), "ends_at": data.ends_at.isoformat(),
                  "status": row.status})
    if starts_at <= now:
        _launch(session, tenant, row, now)
    return _out(session, row)


def get_campaign(session: Session, tenant: Tenant, campaign_id: str) -> CampaignOut:
    return _out(session, tenant_row(session, tenant.id, Campaign, campaign_id, "campaign"))


def list_campaigns(session: Session, tenant: Tenant, *, status: str | None = None,
                   limit: int = 50, cursor: str | None = None) -> Page[CampaignOut]:
    stmt = select(Campaign).where(Campaign.tenant_id == tenant.id)
    if status:
        stmt = stmt.where(Campaign.status == status)
    return paginate(session, stmt, Campaign.id, limit=limit, cursor=cursor,
                    convert=lambda c: _out(session, c), kind="campaign")


def update_campaign(session: Session, tenant: Tenant, campaign_id: str,
                    data: CampaignUpdate) -> CampaignOut:
    """Pause (the coupon is paused: wallet entries read ``paused``, orders are refused with
    ``coupon-paused``; a scheduled launch and an enrolment in progress wait) or resume,
    rename, move the end (the coupon's too). An ended campaign is not changed (409)."""
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
    after = c.status
    if status == "paused" and c.status != "paused":
        after, coupon_changes["status"] = "paused", "paused"
    elif status == "running" and c.status == "paused":
        after = "running" if c.launched_at else "scheduled"
        coupon_changes["status"] = "active"
    for name in ("name", "description"):
        if changes.get(name) is not None:
            setattr(c, name, changes[name].strip() if name == "name" else changes[name])
    if coupon_changes:
        marketing.update_coupon(session, tenant, c.coupon_id, CouponUpdate(**coupon_changes))
    _move(session, c, "campaign.updated", after,
          {k: (v.isoformat() if isinstance(v, dt.datetime) else v)
           for k, v in changes.items() if k != "status"}, now)
    session.flush()
    if c.status == "scheduled" and c.starts_at <= now:
        _launch(session, tenant, c, now)
    return _out(session, c)


# ---------------------------------------------------------------- launching

def _launch(session: Session, tenant: Tenant, c: Campaign, now: dt.datetime) -> bool:
    """Launch the campaign (scheduled → running) and queue its enrolment, which this
    transaction runs at once when the audience fits one batch (``enrolment``). The caller
    holds the campaign's row (locked, or just created); a launched campaign is left."""
    if c.status != "scheduled":
        return False
    c.launched_at = c.reevaluated_at = now
    _move(session, c, "campaign.launched", "running", {}, now)
    job = enrolment.queue_job(session, c, "launch", now)
    enrolment.enrol_in_request(session, tenant, c, job, now)
    session.flush()
    return True


def reevaluate_campaign(session: Session, tenant: Tenant, campaign_id: str) -> EnrolmentOut:
    """Look for new members of a running campaign's audience now (``haina campaigns
    reevaluate``): queue a re-evaluation, or give back the enrolment queued or running
    already. 409 unless the campaign runs."""
    c = tenant_row(session, tenant.id, Campaign, campaign_id, "campaign", lock=True)
    if c.status != "running":
        raise InvalidState(f"a {c.status} campaign is not re-evaluated", status_now=c.status)
    now = utcnow()
    job = enrolment.queue_job(session, c, "reevaluate", now)
    c.reevaluated_at = now
    _set_due(c)
    session.flush()
    return enrolment.job_out(job)


def get_enrolment(session: Session, tenant: Tenant, campaign_id: str,
                  job_id: str) -> EnrolmentOut:
    job = tenant_row(session, tenant.id, CampaignJob, job_id, "campaign-job")
    if job.campaign_id != campaign_id:
        raise NotFound(f"no campaign job {job_id!r} of {campaign_id}",
                       slug="campaign-job-not-found")
    return enrolment.job_out(job)


def _end(session: Session, c: Campaign, now: dt.datetime) -> None:
    enrolment.cancel_jobs(session, c, now)
    _move(session, c, "campaign.ended", "ended", {"treated": c.treated, "holdout": c.holdout},
          now)


def run_due_campaigns(session: Session, now: dt.datetime, batch: int = 20) -> int:
    """Worker: the campaigns whose ``due_at`` has come (every merchant; ``ix_campaigns_due``
    leads with it, so a pass reads only those): launch the scheduled ones whose start has
    come, queue a re-evaluation of the running ones whose time for it has come, end those
    whose end has passed. Returns the campaigns acted on."""
    changed = 0
    due = session.execute(select(Campaign.tenant_id, Campaign.id).where(Campaign.due_at <= now)
                          .order_by(Campaign.due_at).limit(batch)).all()
    for tenant_id, campaign_id in due:
        c = session.scalar(select(Campaign).where(Campaign.tenant_id == tenant_id,
                                                  Campaign.id == campaign_id).with_for_update())
        if c is None or c.due_at is None or c.due_at > now:  # another worker was first
            continue
        if c.ends_at <= now:
            _end(session, c, now)
        elif c.status == "scheduled" and c.starts_at <= now:
            _launch(session, Tenant(id=tenant_id, slug="", currency=c.currency), c, now)
        elif c.status == "running" and c.reevaluate_hours:
            enrolment.queue_job(session, c, "reevaluate", now)
            c.reevaluated_at = now
            _set_due(c)
        else:  # nothing to do yet (a due time left by an older rule): look again when due
            _set_due(c)
            continue
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


def _arms(session: Session, tenant: Tenant, c: Campaign) -> tuple[list[str], list[str]]:
    arms: dict[str, list[str]] = {"treated": [], "holdout": []}
    for member_id, arm in session.execute(select(CampaignMember.member_id, CampaignMember.arm)
                                          .where(CampaignMember.tenant_id == tenant.id,
                                                 CampaignMember.campaign_id == c.id)
                                          .order_by(CampaignMember.member_id)):
        arms[arm].append(member_id)
    return arms["treated"], arms["holdout"]


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
    treated, holdout = _arms(session, tenant, c)
    start = c.launched_at
    end = min(c.ends_at, now)
    paid: dict[str, int] = {}
    order_ids: set[str] = set()
    if start is not None and end > start:
        for order_id, member_id, net, _ in orders.paid_orders_of(session, tenant,
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


def _triple(v: list[int]) -> tuple[int, int, int]:
    return v[0], v[1], v[2]


def campaign_daily(session: Session, tenant: Tenant, campaign_id: str,
                   now: dt.datetime | None = None) -> CampaignDailyOut:
    """The results day by day (the merchant's days), each cumulative from the launch: revenue
    per member of both groups and the incremental and net lift per member with their 95 %
    intervals — the same estimator as :func:`campaign_results` (the last day equals it), fed
    running integer sums (``lift.welch_from_sums``): one pass over the paid orders. The
    groups are the members enrolled now, counted from the launch (as the window's totals)."""
    c = tenant_row(session, tenant.id, Campaign, campaign_id, "campaign")
    now = now or utcnow()
    zone = time_zone_of(platform.get_tenant(session, tenant.id).settings, c.currency)
    treated, holdout = _arms(session, tenant, c)
    out = CampaignDailyOut(campaign_id=c.id, time_zone=str(zone), treated=len(treated),
                           holdout=len(holdout), days=[])
    start, end = c.launched_at, min(c.ends_at, now)
    if start is None or end <= start or not treated or not holdout:
        return out
    claims = {o: amount for o, m, amount in marketing.coupon_claims(session, tenant, c.coupon_id)
              if m is not None}
    in_treated = set(treated)
    by_day: dict[dt.date, list[tuple[str, int, int]]] = {}
    for order_id, member_id, net, paid_at in orders.paid_orders_of(
            session, tenant, treated + holdout, start, end):
        off = claims.get(order_id, 0) if member_id in in_treated else 0
        by_day.setdefault(paid_at.astimezone(zone).date(), []).append((member_id, net, off))
    # per member: what they paid and (treated) what before the coupon; per group: n, Σ, Σ²
    paid: dict[str, int] = {}
    gross: dict[str, int] = {}
    sums = {"paid_t": [len(treated), 0, 0], "gross_t": [len(treated), 0, 0],
            "paid_h": [len(holdout), 0, 0]}

    def move(key: str, before: int, after: int) -> None:
        sums[key][1] += after - before
        sums[key][2] += after * after - before * before

    cur = c.currency
    day, last = start.astimezone(zone).date(), (end - dt.timedelta(microseconds=1)).astimezone(
        zone).date()
    while day <= last:
        for member_id, net, off in by_day.get(day, ()):
            was = paid.get(member_id, 0)
            paid[member_id] = was + net
            if member_id in in_treated:
                move("paid_t", was, was + net)
                g = gross.get(member_id, 0)
                gross[member_id] = g + net + off
                move("gross_t", g, g + net + off)
            else:
                move("paid_h", was, was + net)
        pt, gt, ph = (_triple(sums[k]) for k in ("paid_t", "gross_t", "paid_h"))
        out.days.append(CampaignDayOut(
            day=day, treated_revenue_per_member=_round(pt[1] / pt[0], cur),
            holdout_revenue_per_member=_round(ph[1] / ph[0], cur),
            incremental_per_member=_interval(lift.welch_from_sums(gt, ph), 1, cur),
            net_per_member=_interval(lift.welch_from_sums(pt, ph), 1, cur)))
        day += dt.timedelta(days=1)
    return out


MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


def lift_plot(session: Session, tenant: Tenant, campaign_id: str, fmt: str) -> bytes:
    """The results as a chart (PNG or SVG): revenue per member of each group, and the
    incremental revenue per member with its 95 % interval."""
    from haina.campaigns import plots
    r = campaign_results(session, tenant, campaign_id)
    return plots.render(plots.lift_figure(r), fmt)


def daily_plot(session: Session, tenant: Tenant, campaign_id: str, fmt: str) -> bytes:
    """The lift day by day as a chart (PNG or SVG): the incremental and net lift per member
    with their 95 % bands."""
    from haina.campaigns import plots
    return plots.render(plots.daily_figure(campaign_daily(session, tenant, campaign_id)), fmt)


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
