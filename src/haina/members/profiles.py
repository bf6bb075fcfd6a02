"""Members: enrolling one (with its identities), listing, changing the profile and consents,
and merging two records of the same person into one.

Private to the members module; other modules call ``members.service``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.db import rowcount, utcnow
from haina.core.errors import Invalid, not_found
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.pagination import Page, paginate
from haina.members.identities import (
    _claiming_identities,
    _move_contact_identity,
    _new_identity,
    parse_identity,
)
from haina.members.models import Member, MemberIdentity, MemberSpend, PointsEntry, Tier
from haina.members.personal import _log_consents
from haina.members.points import _take_from_lots
from haina.members.records import (
    _identities,
    _lock_live,
    _member_out,
    _merged_problem,
    _refuse_erased,
    get_member,
)
from haina.members.schemas import CONSENTS, ConsentsIn, MemberCreate, MemberOut, MemberUpdate
from haina.members.tiers import _reevaluate_member_tier


def create_member(session: Session, tenant: Tenant, data: MemberCreate) -> MemberOut:
    """A new member with its identities (its email and phone are identities too). 409
    ``identity-taken`` if another member holds one; then nothing of the member is written,
    and the caller's earlier work in the transaction stands.
    Four statements: the entry tier, then, in a savepoint, one INSERT each for member,
    identities, event."""
    now = utcnow()
    entry_tier = session.scalars(select(Tier).where(Tier.tenant_id == tenant.id,
                                                    Tier.min_spend_minor <= 0)
                                 .order_by(Tier.rank.desc()).limit(1)).first()
    member = Member(id=new_id("member"), tenant_id=tenant.id, name=data.name, email=data.email,
                    phone=data.phone, birthday=data.birthday,
                    tier_id=entry_tier.id if entry_tier else None, points_balance=0,
                    created_at=now, updated_at=now)
    decided: dict[str, bool] = {}
    for c in CONSENTS:
        granted = getattr(data.consents, c) if data.consents else None
        setattr(member, c, bool(granted))
        setattr(member, f"{c}_at", now if granted is not None else None)
        if granted is not None:
            decided[c] = granted
    wanted: dict[tuple[str, str], str | None] = {}
    if data.email:
        wanted[("email", data.email)] = "profile"
    if data.phone:
        wanted[("phone", data.phone)] = "profile"
    for i in data.identities:
        wanted[(i.kind, i.value)] = i.channel or wanted.get((i.kind, i.value))
        # the profile's contact fields mirror the phone and email identities
        if i.kind in ("phone", "email") and getattr(member, i.kind) is None:
            setattr(member, i.kind, i.value)
    idents = [_new_identity(tenant.id, member.id, k, v, ch, now) for (k, v), ch in wanted.items()]
    with _claiming_identities(session, tenant.id, list(wanted)):
        session.add(member)
        session.add_all(idents)
        if decided and data.consents is not None:
            session.flush()  # the log rows point at the member
            _log_consents(session, member, decided, now, channel=data.consents.channel,
                          text_version=data.consents.text_version, text=data.consents.text)
        record_event(session, tenant.id, "member.created", member.id,
                     {"name": data.name, "tier_id": member.tier_id,
                      "identities": [{"kind": k, "value": v} for k, v in wanted]})
    return _member_out(member, entry_tier, idents)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_members(session: Session, tenant: Tenant, *, q: str | None = None,
                 identity: str | None = None, tier_id: str | None = None,
                 include_merged: bool = False, limit: int = 50,
                 cursor: str | None = None) -> Page[MemberOut]:
    """Members newest first; ``q`` is a prefix of name (any case), email or phone;
    ``identity`` is ``kind:value``."""
    stmt = select(Member).where(Member.tenant_id == tenant.id)
    if not include_merged:
        stmt = stmt.where(Member.merged_into.is_(None))
    if identity:
        kind, value = parse_identity(identity)
        stmt = stmt.join(MemberIdentity, and_(MemberIdentity.tenant_id == Member.tenant_id,
                                              MemberIdentity.member_id == Member.id)).where(
            MemberIdentity.kind == kind, MemberIdentity.value == value)
    if tier_id:
        stmt = stmt.where(Member.tier_id == tier_id)
    if q and q.strip():
        prefix = _escape_like(q.strip().lower()) + "%"
        stmt = stmt.where(or_(func.lower(Member.name).like(prefix, escape="\\"),
                              Member.email.like(prefix, escape="\\"),
                              Member.phone.like(prefix, escape="\\")))
    page = paginate(session, stmt, Member.id, limit=limit, cursor=cursor, convert=lambda m: m)
    rows: list[Member] = list(page.data)
    idents = _identities(session, tenant.id, [m.id for m in rows])
    tier_ids = {m.tier_id for m in rows if m.tier_id}
    tiers = {t.id: t for t in session.scalars(select(Tier).where(
        Tier.tenant_id == tenant.id, Tier.id.in_(tier_ids)))} if tier_ids else {}
    return Page[MemberOut](data=[_member_out(m, tiers.get(m.tier_id or ""), idents[m.id])
                                 for m in rows],
                           has_more=page.has_more, next_cursor=page.next_cursor)


def update_member(session: Session, tenant: Tenant, member_id: str, data: MemberUpdate) -> MemberOut:
    """Change profile fields; a changed phone or email moves its identity along. 409
    ``identity-taken`` if another member holds the new one; then none of the change is kept."""
    member = _lock_live(session, tenant, member_id)
    now = utcnow()
    wanted: dict[str, Any] = {
        name: getattr(data, name) for name in ("name", "email", "phone", "birthday")
        if name in data.model_fields_set and getattr(data, name) != getattr(member, name)}
    if not wanted:
        return get_member(session, tenant, member.id)
    contacts = [(k, wanted[k]) for k in ("email", "phone") if wanted.get(k)]
    with _claiming_identities(session, tenant.id, contacts):
        for name, value in wanted.items():
            if name in ("email", "phone"):
                _move_contact_identity(session, member, name, value, now)
            setattr(member, name, value)
        member.updated_at = now
        changes = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in wanted.items()}
        record_event(session, tenant.id, "member.updated", member.id, {"changes": changes})
    return get_member(session, tenant, member.id)


def update_consents(session: Session, tenant: Tenant, member_id: str, data: ConsentsIn) -> MemberOut:
    """Set consent flags; a flag's time changes only when its value does."""
    member = _lock_live(session, tenant, member_id)
    now = utcnow()
    changes: dict[str, bool] = {}
    for c in CONSENTS:
        value = getattr(data, c)
        if value is None:
            continue
        if value != getattr(member, c) or getattr(member, f"{c}_at") is None:
            setattr(member, c, value)
            setattr(member, f"{c}_at", now)
            changes[c] = value
    if changes:
        member.updated_at = now
        _log_consents(session, member, changes, now, channel=data.channel,
                      text_version=data.text_version, text=data.text)
        record_event(session, tenant.id, "member.updated", member.id, {"consents": changes})
        session.flush()
    return get_member(session, tenant, member.id)


def merge_members(session: Session, tenant: Tenant, survivor_id: str, other_id: str) -> MemberOut:
    """Merge ``other_id`` into ``survivor_id``: identities, points (lots and ledger), spend
    and the newer consents move to the survivor; the survivor's blank profile fields are filled
    from the other; the other keeps its row with ``merged_into`` set."""
    if survivor_id == other_id:
        raise Invalid("a member cannot be merged into itself", slug="merge-same-member")
    session.flush()
    rows = {m.id: m for m in session.scalars(
        select(Member).where(Member.tenant_id == tenant.id,
                             Member.id.in_([survivor_id, other_id]))
        .order_by(Member.id)  # lock in id order: no deadlock with another merge of the pair
        .with_for_update().execution_options(populate_existing=True))}
    for mid in (survivor_id, other_id):
        if mid not in rows:
            raise not_found("member", mid)
        if rows[mid].merged_into is not None:
            raise _merged_problem(rows[mid])
    _refuse_erased(session, tenant, [survivor_id, other_id])
    survivor, other = rows[survivor_id], rows[other_id]
    now = utcnow()
    moved_identities = rowcount(session.execute(
        update(MemberIdentity).where(MemberIdentity.tenant_id == tenant.id,
                                     MemberIdentity.member_id == other.id)
        .values(member_id=survivor.id)))
    session.execute(update(PointsEntry).where(PointsEntry.tenant_id == tenant.id,
                                              PointsEntry.member_id == other.id)
                    .values(member_id=survivor.id))
    session.execute(update(MemberSpend).where(MemberSpend.tenant_id == tenant.id,
                                              MemberSpend.member_id == other.id)
                    .values(member_id=survivor.id))
    moved_points = other.points_balance
    survivor.points_balance += moved_points
    other.points_balance = 0
    # One side's debt (negative balance) is paid from the other side's lots: the balance is
    # already the true sum, only the lots' remaining must come down to it.
    session.flush()
    lots_total = session.execute(select(func.coalesce(func.sum(PointsEntry.remaining), 0)).where(
        PointsEntry.tenant_id == tenant.id, PointsEntry.member_id == survivor.id,
        PointsEntry.remaining > 0)).scalar_one()
    settled = int(lots_total or 0) - max(survivor.points_balance, 0)  # coalesce: never None
    if settled > 0:
        _take_from_lots(session, survivor, settled)
    taken_over: dict[str, bool] = {}
    for c in CONSENTS:
        theirs, ours = getattr(other, f"{c}_at"), getattr(survivor, f"{c}_at")
        if theirs is not None and (ours is None or theirs > ours):
            if getattr(survivor, c) != getattr(other, c):
                taken_over[c] = getattr(other, c)
            setattr(survivor, c, getattr(other, c))
            setattr(survivor, f"{c}_at", theirs)
    _log_consents(session, survivor, taken_over, now, source="merge")
    for name in ("name", "email", "phone", "birthday"):
        if getattr(survivor, name) is None and getattr(other, name) is not None:
            setattr(survivor, name, getattr(other, name))
    other.merged_into, other.merged_at, other.updated_at = survivor.id, now, now
    survivor.updated_at = now
    record_event(session, tenant.id, "member.merged", survivor.id,
                 {"survivor_id": survivor.id, "merged_id": other.id,
                  "identities_moved": moved_identities, "points_moved": moved_points,
                  "debt_settled": max(settled, 0)})
    _reevaluate_member_tier(session, survivor, now, reason="merge")
    session.flush()
    return get_member(session, tenant, survivor.id)

