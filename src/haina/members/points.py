"""The points ledger: earning on purchases, redeeming on orders and restoring on cancel,
clawing back on refunds, manual adjustments and expiry.

Private to the members module; other modules call ``members.service``.

Points rules (see docs/members.md):

* The ledger is the truth: a member's balance is the sum of ``points_entries.points``. The
  ``members.points_balance`` column caches that sum and changes only in the transaction that
  writes the entry, while the member's row is locked (``SELECT … FOR UPDATE``; SQLite
  serialises writers with ``BEGIN IMMEDIATE``). Every points change takes that lock first, so
  two redemptions of the same points run one after the other and the second sees the first.
* Earned points and positive adjustments are *lots* with ``expires_at`` and ``remaining``;
  redemptions, negative adjustments, clawbacks and expiries consume lots earliest expiry first.
* Invariant: the lots' remaining points add up to ``max(balance, 0)``. The balance goes below
  zero only when a refund claws back points already spent; the shortfall is written as a
  negative adjustment, and points credited later pay that debt first.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.db import utcnow
from haina.core.errors import Conflict, Invalid, InvalidState
from haina.core.events import record_event
from haina.core.ids import new_id, ulid
from haina.core.money import MoneyError, exponent, share
from haina.core.pagination import Page, paginate
from haina.members.models import Member, MemberSpend, PointsEntry
from haina.members.records import _aware, _chunks, _lock_live, _lock_survivor, _member_row
from haina.members.schemas import PointsAdjustmentIn, PointsEntryOut
from haina.members.tiers import _reevaluate_member_tier
from haina.platform.service import tenant_settings


def _entry_out(e: PointsEntry) -> PointsEntryOut:
    return PointsEntryOut(id=e.id, member_id=e.member_id, kind=e.kind,
                          points=e.points, remaining=e.remaining, expires_at=e.expires_at,
                          order_id=e.order_id, reason=e.reason, created_at=e.created_at)


def _entry(member: Member, kind: str, points: int, now: dt.datetime, *,
           remaining: int | None = None, expires_at: dt.datetime | None = None,
           order_id: str | None = None, reason: str | None = None,
           reverses_id: str | None = None, data: dict[str, Any] | None = None) -> PointsEntry:
    return PointsEntry(id=new_id("points"), tenant_id=member.tenant_id, member_id=member.id,
                       origin_member_id=member.id, kind=kind, points=points,
                       remaining=remaining, expires_at=expires_at, order_id=order_id,
                       reason=reason, reverses_id=reverses_id, data=data, created_at=now)


def _debt_paid_by(member: Member, points: int) -> int:
    """How much of ``points`` credited now goes to paying a negative balance."""
    return min(max(0, -member.points_balance), points)


def _add_lot(session: Session, member: Member, kind: str, points: int, now: dt.datetime,
             expires_at: dt.datetime, **fields: Any) -> PointsEntry:
    settled = _debt_paid_by(member, points)
    entry = _entry(member, kind, points, now, remaining=points - settled, expires_at=expires_at,
                   data={"debt_settled": settled} if settled else None, **fields)
    session.add(entry)
    member.points_balance += points
    return entry


def _take_from_lots(session: Session, member: Member, points: int,
                    first_lot_id: str | None = None) -> list[list[Any]]:
    """Consume up to ``points`` from the member's lots, earliest expiry first (then oldest),
    ``first_lot_id`` before all. Returns ``[[lot_id, taken], …]``. Caller holds the lock."""
    lots = list(session.scalars(
        select(PointsEntry).where(PointsEntry.tenant_id == member.tenant_id,
                                  PointsEntry.member_id == member.id, PointsEntry.remaining > 0)
        .order_by(PointsEntry.expires_at, PointsEntry.id)
        .execution_options(populate_existing=True)))
    if first_lot_id:
        lots.sort(key=lambda lot: lot.id != first_lot_id)  # stable: FIFO otherwise
    taken: list[list[Any]] = []
    need = points
    for lot in lots:
        if need == 0:
            break
        n = min(need, lot.remaining or 0)
        lot.remaining = (lot.remaining or 0) - n
        taken.append([lot.id, n])
        need -= n
    return taken


def _spend_points(session: Session, member: Member, kind: str, points: int, now: dt.datetime,
                  **fields: Any) -> PointsEntry:
    """Take ``points`` (≤ balance) from lots and write the consuming entry."""
    taken = _take_from_lots(session, member, points)
    if sum(n for _, n in taken) != points:
        raise RuntimeError(f"points lots of {member.id} do not cover its balance")
    entry = _entry(member, kind, -points, now, data={"lots": taken}, **fields)
    session.add(entry)
    member.points_balance -= points
    return entry


def _insufficient(member: Member, points: int) -> Invalid:
    return Invalid(f"member {member.id} has {member.points_balance} points, fewer than the "
                   f"{points} asked", slug="insufficient-points", title="Insufficient points",
                   balance=member.points_balance, requested=points)


def _outstanding_redemptions(session: Session, member: Member, order_id: str) -> list[PointsEntry]:
    """The order's redeem entries that no restore has reversed yet."""
    restored = select(PointsEntry.reverses_id).where(
        PointsEntry.tenant_id == member.tenant_id, PointsEntry.order_id == order_id,
        PointsEntry.kind == "restore")
    return list(session.scalars(select(PointsEntry).where(
        PointsEntry.tenant_id == member.tenant_id, PointsEntry.member_id == member.id,
        PointsEntry.order_id == order_id, PointsEntry.kind == "redeem",
        PointsEntry.id.not_in(restored)).order_by(PointsEntry.id)))


def redeem_points(session: Session, tenant: Tenant, member_id: str, points: int,
                  order_id: str) -> int:
    """Spend ``points`` on order ``order_id``; returns the discount in minor units
    (points × ``points_value_minor``). 422 ``insufficient-points`` if the balance is short.
    Safe under concurrency: runs under the member's row lock. Calling it again for an order
    with the same points returns the same discount without spending twice."""
    if points < 0:
        raise Invalid("points to redeem must not be negative", slug="invalid-points")
    value_minor = tenant_settings(session, tenant).points_value_minor
    if points == 0:
        return 0
    member = _lock_survivor(session, tenant, member_id)
    outstanding = _outstanding_redemptions(session, member, order_id)
    if outstanding:
        already = -sum(e.points for e in outstanding)
        if already == points:
            return points * value_minor
        raise Conflict(f"order {order_id} already redeemed {already} points; restore them "
                       "before redeeming another amount", slug="points-already-redeemed")
    if member.points_balance < points:
        raise _insufficient(member, points)
    now = utcnow()
    _spend_points(session, member, "redeem", points, now, order_id=order_id)
    record_event(session, tenant.id, "member.points_redeemed", member.id,
                 {"points": points, "order_id": order_id, "balance": member.points_balance})
    session.flush()
    return points * value_minor


def restore_points(session: Session, tenant: Tenant, member_id: str, order_id: str) -> int:
    """Give back the points redeemed for ``order_id`` (the order was cancelled), into the
    lots they came from; returns the points given back, 0 if none are outstanding (so a second
    call does nothing). Points whose lot expired meanwhile expire at the next expiry run."""
    member = _lock_survivor(session, tenant, member_id)
    outstanding = _outstanding_redemptions(session, member, order_id)
    if not outstanding:
        return 0
    now = utcnow()
    total = 0
    for redemption in outstanding:
        points = -redemption.points
        settled = _debt_paid_by(member, points)
        give_back = points - settled
        taken = (redemption.data or {}).get("lots", [])
        lots = {lot.id: lot for lot in session.scalars(select(PointsEntry).where(
            PointsEntry.tenant_id == tenant.id, PointsEntry.id.in_([t[0] for t in taken])))}
        for lot_id, n in taken:
            back = min(n, give_back)
            if back <= 0:
                break
            lot = lots[lot_id]
            lot.remaining = (lot.remaining or 0) + back
            give_back -= back
        session.add(_entry(member, "restore", points, now, order_id=order_id,
                           reverses_id=redemption.id,
                           data={"debt_settled": settled} if settled else None))
        member.points_balance += points
        total += points
    record_event(session, tenant.id, "member.points_restored", member.id,
                 {"points": total, "order_id": order_id, "balance": member.points_balance})
    session.flush()
    return total


def points_for(paid_minor: int, currency: str, points_per_unit: int) -> int:
    """Points earned for a payment: ``floor(paid / one currency unit) × points_per_unit``."""
    return paid_minor // 10 ** exponent(currency) * points_per_unit


def record_purchase(session: Session, tenant: Tenant, member_id: str, order_id: str,
                    paid_minor: int, currency: str, at: dt.datetime) -> None:
    """A paid order: earn points (a lot expiring ``points_expire_days`` after ``at``), count
    the spend towards tiers and re-evaluate the tier. Once per ``order_id``: a repeat is a
    no-op."""
    _aware(at)
    if paid_minor < 0:
        raise Invalid("paid_minor must not be negative", slug="invalid-amount")
    try:
        currency = currency.upper()
        exponent(currency)
    except MoneyError as exc:
        raise Invalid(str(exc), slug="invalid-currency") from None
    member = _lock_survivor(session, tenant, member_id)
    if session.scalar(select(MemberSpend.id).where(MemberSpend.tenant_id == tenant.id,
                                                   MemberSpend.dedupe_key == order_id)):
        return
    settings = tenant_settings(session, tenant)
    now = utcnow()
    points = points_for(paid_minor, currency, settings.points_per_unit)
    session.add(MemberSpend(id=f"msp_{ulid()}", tenant_id=tenant.id, member_id=member.id,
                            origin_member_id=member.id, order_id=order_id, kind="purchase",
                            amount_minor=paid_minor, currency=currency, points_earned=points,
                            dedupe_key=order_id, spend_at=at, created_at=now))
    if points > 0:
        expires_at = at + dt.timedelta(days=settings.points_expire_days)
        lot = _add_lot(session, member, "earn", points, now, expires_at, order_id=order_id)
        record_event(session, tenant.id, "member.points_earned", member.id,
                     {"points": points, "order_id": order_id, "lot_id": lot.id,
                      "expires_at": expires_at.isoformat(), "balance": member.points_balance})
    _reevaluate_member_tier(session, member, now, reason="purchase")
    session.flush()


def record_refund(session: Session, tenant: Tenant, member_id: str, order_id: str,
                  refunded_minor: int, at: dt.datetime) -> None:
    """A refund of (part of) a recorded purchase; each call is one more refund, and refunds
    past the amount paid are ignored. The spend goes down (dated at the purchase, so it nets
    out that purchase in the tier window); the points earned on the order are clawed back in
    proportion to the refunded share of the amount paid (cumulative, rounded half-even). The
    clawback takes from the order's own lot first, then others, earliest expiry first; points
    already spent are written as a negative ``adjust`` entry, so the balance can go below zero
    and stays the true sum of the ledger. 409 ``purchase-not-recorded`` if no purchase."""
    _aware(at)
    if refunded_minor < 0:
        raise Invalid("refunded_minor must not be negative", slug="invalid-amount")
    member = _lock_survivor(session, tenant, member_id)
    purchase = session.scalar(select(MemberSpend).where(MemberSpend.tenant_id == tenant.id,
                                                        MemberSpend.dedupe_key == order_id))
    if purchase is None or purchase.member_id != member.id:
        raise InvalidState(f"no purchase of member {member_id} is recorded for order {order_id}",
                           slug="purchase-not-recorded")
    refunded_before = -int(session.execute(
        select(func.coalesce(func.sum(MemberSpend.amount_minor), 0)).where(
            MemberSpend.tenant_id == tenant.id, MemberSpend.order_id == order_id,
            MemberSpend.kind == "refund")).scalar_one())
    amount = min(refunded_minor, purchase.amount_minor - refunded_before)
    if amount <= 0:
        return
    now = utcnow()
    session.add(MemberSpend(id=f"msp_{ulid()}", tenant_id=tenant.id, member_id=member.id,
                            origin_member_id=member.id, order_id=order_id, kind="refund",
                            amount_minor=-amount, currency=purchase.currency, points_earned=0,
                            dedupe_key=None, spend_at=purchase.spend_at, created_at=now))
    earned, paid = purchase.points_earned, purchase.amount_minor
    claw = share(earned, refunded_before + amount, paid) - share(earned, refunded_before, paid)
    if claw > 0:
        own_lot = session.scalar(select(PointsEntry.id).where(
            PointsEntry.tenant_id == tenant.id, PointsEntry.order_id == order_id,
            PointsEntry.kind == "earn"))
        taken = _take_from_lots(session, member, claw, first_lot_id=own_lot)
        from_lots = sum(n for _, n in taken)
        if from_lots:
            session.add(_entry(member, "clawback", -from_lots, now, order_id=order_id,
                               data={"lots": taken}))
        shortfall = claw - from_lots
        if shortfall:
            session.add(_entry(member, "adjust", -shortfall, now, order_id=order_id,
                               reason=f"refund of order {order_id}: points already spent"))
        member.points_balance -= claw
        record_event(session, tenant.id, "member.points_clawed_back", member.id,
                     {"points": claw, "from_lots": from_lots, "shortfall": shortfall,
                      "order_id": order_id, "balance": member.points_balance})
    _reevaluate_member_tier(session, member, now, reason="refund")
    session.flush()


def adjust_points(session: Session, tenant: Tenant, member_id: str,
                  data: PointsAdjustmentIn) -> PointsEntryOut:
    """A manual change with a reason. Positive: a new lot expiring like earned points.
    Negative: consumes lots, and may not exceed the balance (422 ``insufficient-points``)."""
    member = _lock_live(session, tenant, member_id)
    now = utcnow()
    if data.points > 0:
        days = tenant_settings(session, tenant).points_expire_days
        entry = _add_lot(session, member, "adjust", data.points, now,
                         now + dt.timedelta(days=days), reason=data.reason)
    else:
        if member.points_balance < -data.points:
            raise _insufficient(member, -data.points)
        entry = _spend_points(session, member, "adjust", -data.points, now, reason=data.reason)
    record_event(session, tenant.id, "member.points_adjusted", member.id,
                 {"entry_id": entry.id, "points": data.points, "reason": data.reason,
                  "balance": member.points_balance})
    session.flush()
    return _entry_out(entry)


def list_points(session: Session, tenant: Tenant, member_id: str, *, kind: str | None = None,
                limit: int = 50, cursor: str | None = None) -> Page[PointsEntryOut]:
    """The member's ledger, newest first: for a survivor every entry it now owns (merged
    members' included), for a merged member the entries written for it."""
    member = _member_row(session, tenant, member_id)
    stmt = select(PointsEntry).where(PointsEntry.tenant_id == tenant.id,
                                     or_(PointsEntry.member_id == member.id,
                                         PointsEntry.origin_member_id == member.id))
    if kind:
        stmt = stmt.where(PointsEntry.kind == kind)
    return paginate(session, stmt, PointsEntry.id, limit=limit, cursor=cursor, convert=_entry_out)


def points_ledger_sum(session: Session, tenant: Tenant, member_id: str) -> int:
    """The balance recomputed from the ledger (the cached balance must equal it)."""
    return int(session.execute(select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
        PointsEntry.tenant_id == tenant.id, PointsEntry.member_id == member_id)).scalar_one())


def expire_points(session: Session, now: dt.datetime) -> int:
    """Worker: expire every lot (all tenants) whose ``expires_at`` ≤ ``now`` and which has
    points left: one ``expire`` entry per lot, its remaining set to zero. Returns the number
    of lots expired. Members are locked in id order, a batch at a time."""
    _aware(now, "now")
    member_ids = sorted(session.scalars(select(PointsEntry.member_id).where(
        PointsEntry.remaining > 0, PointsEntry.expires_at <= now).distinct()))
    expired = 0
    for chunk in _chunks(member_ids):
        session.flush()
        members = {m.id: m for m in session.scalars(
            select(Member).where(Member.id.in_(chunk)).order_by(Member.id)
            .with_for_update().execution_options(populate_existing=True))}
        # re-read under the locks: a redemption may have taken these points meanwhile
        lots = session.scalars(select(PointsEntry).where(
            PointsEntry.member_id.in_(chunk), PointsEntry.remaining > 0,
            PointsEntry.expires_at <= now).order_by(PointsEntry.expires_at, PointsEntry.id)
            .execution_options(populate_existing=True)).all()
        per_member: dict[str, list[list[Any]]] = {}
        for lot in lots:
            member = members[lot.member_id]
            points = lot.remaining or 0
            session.add(_entry(member, "expire", -points, now,
                               data={"lots": [[lot.id, points]]}))
            lot.remaining = 0
            member.points_balance -= points
            per_member.setdefault(member.id, []).append([lot.id, points])
            expired += 1
        for mid, taken in per_member.items():
            member = members[mid]
            record_event(session, member.tenant_id, "member.points_expired", mid,
                         {"points": sum(n for _, n in taken), "lots": taken,
                          "balance": member.points_balance})
        session.flush()
    return expired

