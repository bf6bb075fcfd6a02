"""Tiers: a member's tier is the highest-ranked one whose ``min_spend`` their net spend within
the tier's window reaches. Members are re-placed when they buy or are refunded, when tiers
change, and by the worker as spend leaves the window.

Private to the members module; other modules call ``members.service``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from haina.core import caches
from haina.core.context import Tenant
from haina.core.db import tenant_row, utcnow
from haina.core.errors import Conflict, Invalid
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.money import Money
from haina.core.pagination import Page, paginate
from haina.members.models import Member, MemberSpend, Tier
from haina.members.records import _aware, _chunks
from haina.members.schemas import TierCreate, TierOut, TierUpdate


def _tier_out(t: Tier) -> TierOut:
    return TierOut(id=t.id, name=t.name, rank=t.rank,
                   min_spend=Money.of(t.min_spend_minor, t.currency),
                   window_days=t.window_days, created_at=t.created_at, updated_at=t.updated_at)


def _tiers(session: Session, tenant_id: str) -> list[Tier]:
    return list(session.scalars(select(Tier).where(Tier.tenant_id == tenant_id)
                                .order_by(Tier.rank.desc())))


def _tier_for(tiers: Sequence[Tier], spend: Sequence[tuple[int, str, dt.datetime]],
              now: dt.datetime) -> Tier | None:
    """The highest-ranked tier whose ``min_spend`` ≤ net spend within its window."""
    for tier in tiers:
        since = now - dt.timedelta(days=tier.window_days)
        total = sum(a for a, cur, at in spend if cur == tier.currency and at >= since)
        if total >= tier.min_spend_minor:
            return tier
    return None


def _set_tier(session: Session, member: Member, tier_id: str | None, reason: str,
              now: dt.datetime) -> bool:
    if member.tier_id == tier_id:
        return False
    record_event(session, member.tenant_id, "member.tier_changed", member.id,
                 {"from": member.tier_id, "to": tier_id, "reason": reason})
    member.tier_id, member.updated_at = tier_id, now
    return True


def _reevaluate_member_tier(session: Session, member: Member, now: dt.datetime,
                            reason: str) -> None:
    tiers = _tiers(session, member.tenant_id)
    if not tiers:
        _set_tier(session, member, None, reason, now)
        return
    since = now - dt.timedelta(days=max(t.window_days for t in tiers))
    session.flush()
    spend = session.execute(select(MemberSpend.amount_minor, MemberSpend.currency,
                                   MemberSpend.spend_at).where(
        MemberSpend.tenant_id == member.tenant_id, MemberSpend.member_id == member.id,
        MemberSpend.spend_at >= since)).all()
    tier = _tier_for(tiers, spend, now)
    _set_tier(session, member, tier.id if tier else None, reason, now)


def _reevaluate_tenant(session: Session, tenant_id: str, now: dt.datetime, reason: str) -> int:
    """Put every live member of a tenant in the tier its spend earns now; returns how many
    changed. Spend is summed in SQL per tier, so members without spend cost nothing."""
    tiers = _tiers(session, tenant_id)
    target: dict[str, str] = {}
    entry_tier: str | None = None
    for tier in tiers:
        if tier.min_spend_minor <= 0:
            entry_tier = tier.id  # everyone qualifies: lower ranks can never win
            break
        since = now - dt.timedelta(days=tier.window_days)
        for mid in session.scalars(
                select(MemberSpend.member_id).where(
                    MemberSpend.tenant_id == tenant_id, MemberSpend.currency == tier.currency,
                    MemberSpend.spend_at >= since)
                .group_by(MemberSpend.member_id)
                .having(func.sum(MemberSpend.amount_minor) >= tier.min_spend_minor)):
            target.setdefault(mid, tier.id)
    live = and_(Member.tenant_id == tenant_id, Member.merged_into.is_(None))
    changes: dict[str, tuple[str | None, str | None]] = {}
    for mid, current in session.execute(select(Member.id, Member.tier_id).where(
            live, Member.tier_id.is_distinct_from(entry_tier))):
        if mid not in target:
            changes[mid] = (current, entry_tier)
    for chunk in _chunks(sorted(target)):
        for mid, current in session.execute(select(Member.id, Member.tier_id).where(
                live, Member.id.in_(chunk))):
            if current != target[mid]:
                changes[mid] = (current, target[mid])
    by_tier: dict[str | None, list[str]] = {}
    for mid, (_, new) in changes.items():
        by_tier.setdefault(new, []).append(mid)
    for new, mids in by_tier.items():
        for chunk in _chunks(sorted(mids)):
            # lock in id order before the bulk update (no deadlock with other batch lockers)
            session.execute(select(Member.id).where(Member.tenant_id == tenant_id,
                                                    Member.id.in_(chunk))
                            .order_by(Member.id).with_for_update())
            session.execute(update(Member).where(Member.tenant_id == tenant_id,
                                                 Member.id.in_(chunk))
                            .values(tier_id=new, updated_at=now)
                            .execution_options(synchronize_session=False))
    if changes:  # a Core update: no flush tells the buyers kept by the order path
        caches.changed(session, "buyers", tenant_id)
    for mid, (old, new) in sorted(changes.items()):
        record_event(session, tenant_id, "member.tier_changed", mid,
                     {"from": old, "to": new, "reason": reason})
    session.flush()
    return len(changes)


def reevaluate_tiers(session: Session, now: dt.datetime) -> int:
    """Worker: re-place members of every tenant with tiers (spend leaves the window as time
    passes). Returns the number of members whose tier changed."""
    _aware(now, "now")
    session.flush()
    tenant_ids = sorted(session.scalars(select(Tier.tenant_id).distinct()))
    return sum(_reevaluate_tenant(session, t, now, reason="window") for t in tenant_ids)


def _tier_row(session: Session, tenant: Tenant, tier_id: str) -> Tier:
    return tenant_row(session, tenant.id, Tier, tier_id, "tier")


def _check_tier_clash(session: Session, tenant: Tenant, name: str | None, rank: int | None,
                      exclude: str | None = None) -> None:
    conds = []
    if name is not None:
        conds.append(Tier.name == name)
    if rank is not None:
        conds.append(Tier.rank == rank)
    if not conds:
        return
    stmt = select(Tier).where(Tier.tenant_id == tenant.id, or_(*conds))
    if exclude:
        stmt = stmt.where(Tier.id != exclude)
    clash = session.scalars(stmt.limit(1)).first()
    if clash is not None:
        what = "name" if clash.name == name else "rank"
        raise Conflict(f"tier {clash.id} already has this {what}", slug="tier-exists",
                       tier_id=clash.id)


def _tier_currency(tenant: Tenant, money: Money) -> None:
    if money.currency != tenant.currency:
        raise Invalid(f"min_spend must be in the merchant's currency {tenant.currency}, "
                      f"not {money.currency}", slug="invalid-currency")


def create_tier(session: Session, tenant: Tenant, data: TierCreate) -> TierOut:
    """A new tier; members are re-placed at once."""
    _tier_currency(tenant, data.min_spend)
    _check_tier_clash(session, tenant, data.name, data.rank)
    now = utcnow()
    tier = Tier(id=new_id("tier"), tenant_id=tenant.id, name=data.name, rank=data.rank,
                min_spend_minor=data.min_spend.minor, currency=data.min_spend.currency,
                window_days=data.window_days, created_at=now, updated_at=now)
    session.add(tier)
    record_event(session, tenant.id, "tier.created", tier.id, _tier_out(tier).model_dump(mode="json"))
    session.flush()
    _reevaluate_tenant(session, tenant.id, now, reason="tier_created")
    return _tier_out(tier)


def update_tier(session: Session, tenant: Tenant, tier_id: str, data: TierUpdate) -> TierOut:
    """Change a tier; if its threshold, window or rank changed, members are re-placed."""
    tier = _tier_row(session, tenant, tier_id)
    fields = data.model_fields_set
    _check_tier_clash(session, tenant, data.name if "name" in fields else None,
                      data.rank if "rank" in fields else None, exclude=tier.id)
    changes: dict[str, Any] = {}
    if "name" in fields and data.name is not None and data.name != tier.name:
        tier.name = changes["name"] = data.name
    if "rank" in fields and data.rank is not None and data.rank != tier.rank:
        tier.rank = changes["rank"] = data.rank
    if "window_days" in fields and data.window_days is not None \
            and data.window_days != tier.window_days:
        tier.window_days = changes["window_days"] = data.window_days
    if "min_spend" in fields and data.min_spend is not None:
        _tier_currency(tenant, data.min_spend)
        if data.min_spend.minor != tier.min_spend_minor:
            tier.min_spend_minor = data.min_spend.minor
            changes["min_spend"] = data.min_spend.model_dump(mode="json")
    if changes:
        now = utcnow()
        tier.updated_at = now
        record_event(session, tenant.id, "tier.updated", tier.id, {"changes": changes})
        session.flush()
        if set(changes) - {"name"}:
            _reevaluate_tenant(session, tenant.id, now, reason="tier_updated")
    return _tier_out(tier)


def get_tier(session: Session, tenant: Tenant, tier_id: str) -> TierOut:
    return _tier_out(_tier_row(session, tenant, tier_id))


def list_tiers(session: Session, tenant: Tenant, *, limit: int = 50,
               cursor: str | None = None) -> Page[TierOut]:
    return paginate(session, select(Tier).where(Tier.tenant_id == tenant.id), Tier.id,
                    limit=limit, cursor=cursor, convert=_tier_out)
