"""Segments: members per RFM segment and lifecycle stage, and saved segments — named rules
over the latest run's scores, whose members follow each refresh."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.db import add_unique, utcnow
from haina.core.errors import Conflict, Invalid, NotFound
from haina.core.ids import new_id
from haina.core.money import Money, MoneyError, to_minor
from haina.core.pagination import Page, paginate

from .models import MemberScore, SavedSegment
from .runs import clv_basis, latest_run
from .schemas import (
    CountOut,
    SavedSegmentOut,
    Segment,
    SegmentCreate,
    SegmentMemberOut,
    SegmentRule,
    SegmentsOut,
    Stage,
)

SEGMENT_NAMES: tuple[str, ...] = Segment.__args__  # type: ignore[attr-defined]
STAGE_NAMES: tuple[str, ...] = Stage.__args__  # type: ignore[attr-defined]

_OPS = {"lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge}


def _rule_conditions(rule: SegmentRule, tenant: Tenant, currency: str | None = None) -> list:
    """The SQL conditions of a rule over ``analytics_member_scores``."""
    currency = currency or tenant.currency
    conditions = [MemberScore.tenant_id == tenant.id]
    for metric, col in (("p_alive", MemberScore.p_alive), ("clv", MemberScore.clv_minor),
                        ("expected_purchases_90d", MemberScore.expected_purchases_90d)):
        for op, compare in _OPS.items():
            value = getattr(rule, f"{metric}_{op}")
            if value is None:
                continue
            if metric == "clv":
                value = _clv_minor(value, currency, f"{metric}_{op}")
            conditions.append(compare(col, value))
    if rule.segment_in:
        conditions.append(MemberScore.segment.in_(sorted(set(rule.segment_in))))
    if rule.stage_in:
        conditions.append(MemberScore.stage.in_(sorted(set(rule.stage_in))))
    return conditions


def _clv_minor(value: Decimal, currency: str, name: str) -> int:
    try:
        return to_minor(value, currency)
    except MoneyError as exc:
        raise Invalid(f"rule.{name}: {exc}", slug="validation-error") from None


def _count(session: Session, conditions: list) -> int:
    return session.execute(
        select(func.count()).select_from(MemberScore).where(*conditions)).scalar_one()


def _segment_out(session: Session, tenant: Tenant, row: SavedSegment) -> SavedSegmentOut:
    rule = SegmentRule.model_validate(row.rule)
    return SavedSegmentOut(id=row.id, name=row.name, rule=rule.conditions(),
                           members=_count(session, _rule_conditions(rule, tenant)),
                           created_at=row.created_at)


def _segment_row(session: Session, tenant: Tenant, segment_id: str) -> SavedSegment:
    row = session.scalar(select(SavedSegment).where(SavedSegment.tenant_id == tenant.id,
                                                    SavedSegment.id == segment_id))
    if row is None:
        raise NotFound(f"no saved segment {segment_id!r}", slug="analytics-segment-not-found")
    return row


def create_segment(session: Session, tenant: Tenant, data: SegmentCreate) -> SavedSegmentOut:
    """Save a named rule; 409 when the name is taken, 422 when an amount does not fit the
    merchant's currency."""
    _rule_conditions(data.rule, tenant)  # validates amounts against the currency
    taken = session.scalar(select(SavedSegment.id).where(SavedSegment.tenant_id == tenant.id,
                                                         SavedSegment.name == data.name))
    if taken is not None:
        raise Conflict(f"a segment named {data.name!r} exists ({taken})",
                       slug="analytics-segment-name-taken", segment_id=taken)
    row = SavedSegment(id=new_id("segment"), tenant_id=tenant.id, name=data.name,
                       rule=data.rule.conditions(), created_at=utcnow())
    add_unique(session, row, lambda: Conflict(f"a segment named {data.name!r} exists",
                                              slug="analytics-segment-name-taken"))
    return _segment_out(session, tenant, row)


def get_segment(session: Session, tenant: Tenant, segment_id: str) -> SavedSegmentOut:
    return _segment_out(session, tenant, _segment_row(session, tenant, segment_id))


def delete_segment(session: Session, tenant: Tenant, segment_id: str) -> None:
    session.delete(_segment_row(session, tenant, segment_id))
    session.flush()


def segment_members(session: Session, tenant: Tenant, segment_id: str, *, limit: int = 100,
                    cursor: str | None = None) -> Page[SegmentMemberOut]:
    """The members matching a saved segment in the latest run, by member id descending."""
    rule = SegmentRule.model_validate(_segment_row(session, tenant, segment_id).rule)
    return members_matching(session, tenant, rule, limit=limit, cursor=cursor)


def segment_member_ids(session: Session, tenant: Tenant, segment_id: str) -> list[str]:
    """Every member id matching a saved segment in the latest run, sorted (a campaign's
    candidates); 404 ``analytics-segment-not-found``."""
    rule = SegmentRule.model_validate(_segment_row(session, tenant, segment_id).rule)
    run = latest_run(session, tenant)
    currency = run.currency if run else tenant.currency
    return sorted(session.scalars(select(MemberScore.member_id).where(
        *_rule_conditions(rule, tenant, currency))))


def members_matching(session: Session, tenant: Tenant, rule: SegmentRule | None, *,
                     member_ids: Sequence[str] | None = None, limit: int = 100,
                     cursor: str | None = None) -> Page[SegmentMemberOut]:
    """The members meeting ``rule`` in the latest run (among ``member_ids`` when given), by
    member id descending: an unsaved segment (the console's filters and member lists). No
    rule: every scored member."""
    run = latest_run(session, tenant)
    currency = run.currency if run else tenant.currency
    basis = clv_basis(run)  # every score is the latest run's
    stmt = select(MemberScore).where(
        *(_rule_conditions(rule, tenant, currency) if rule else [MemberScore.tenant_id == tenant.id]))
    if member_ids is not None:
        stmt = stmt.where(MemberScore.member_id.in_(list(member_ids)))

    def convert(row: MemberScore) -> SegmentMemberOut:
        return SegmentMemberOut(member_id=row.member_id, p_alive=row.p_alive,
                                expected_purchases_90d=row.expected_purchases_90d,
                                clv=Money.of(row.clv_minor, currency), clv_basis=basis,
                                segment=row.segment, stage=row.stage)

    return paginate(session, stmt, MemberScore.member_id, limit=limit, cursor=cursor,
                    convert=convert)


def segments_overview(session: Session, tenant: Tenant) -> SegmentsOut:
    """How many members are in each RFM segment and lifecycle stage, and in each saved
    segment, in the latest run."""
    run = latest_run(session, tenant)
    by_segment = dict(session.execute(
        select(MemberScore.segment, func.count()).where(MemberScore.tenant_id == tenant.id)
        .group_by(MemberScore.segment)).all())
    by_stage = dict(session.execute(
        select(MemberScore.stage, func.count()).where(MemberScore.tenant_id == tenant.id)
        .group_by(MemberScore.stage)).all())
    saved = session.scalars(select(SavedSegment).where(SavedSegment.tenant_id == tenant.id)
                            .order_by(SavedSegment.id))
    return SegmentsOut(
        run_id=run.id if run else None, computed_at=run.created_at if run else None,
        members=sum(by_segment.values()),
        rfm_segments=[CountOut(name=s, members=by_segment.get(s, 0)) for s in SEGMENT_NAMES],
        lifecycle_stages=[CountOut(name=s, members=by_stage.get(s, 0)) for s in STAGE_NAMES],
        saved=[_segment_out(session, tenant, row) for row in saved])

