"""Members: one customer across channels, tiers by rolling spend, and a points ledger.

The public face of the module (with ``schemas``). Functions take a ``Session`` and the caller's
``Tenant``, never commit, and raise ``haina.core.errors`` problems.

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
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.db import tenant_row, utcnow
from haina.core.errors import Conflict, Invalid, InvalidState, NotFound, not_found
from haina.core.events import record_event
from haina.core.ids import new_id, ulid
from haina.core.money import Money, MoneyError, exponent, share
from haina.core.pagination import Page, paginate
from haina.members.models import Member, MemberIdentity, MemberSpend, PointsEntry, Tier
from haina.members.schemas import (
    CONSENTS,
    IDENTITY_KINDS,
    ConsentOut,
    ConsentsIn,
    ConsentsOut,
    IdentityIn,
    IdentityOut,
    MemberCreate,
    MemberOut,
    MemberUpdate,
    PointsAdjustmentIn,
    PointsEntryOut,
    TierCreate,
    TierOut,
    TierRef,
    TierUpdate,
    normalize_identity,
)
from haina.platform.service import tenant_settings

# A merge chain longer than this means corrupted data, not a real history.
MAX_MERGE_CHAIN = 100
# Rows per IN (…) list and per lock batch in the workers.
CHUNK = 500


# ---------------------------------------------------------------- conversions

def _consents_out(m: Member) -> ConsentsOut:
    return ConsentsOut(**{c: ConsentOut(granted=getattr(m, c), changed_at=getattr(m, f"{c}_at"))
                          for c in CONSENTS})


def _identity_out(i: MemberIdentity) -> IdentityOut:
    return IdentityOut(id=i.id, kind=i.kind, value=i.value, channel=i.channel,
                       created_at=i.created_at)


def _member_out(m: Member, tier: Tier | None, identities: Iterable[MemberIdentity]) -> MemberOut:
    return MemberOut(
        id=m.id, name=m.name, email=m.email, phone=m.phone, birthday=m.birthday,
        tier=TierRef(id=tier.id, name=tier.name, rank=tier.rank) if tier else None,
        points_balance=m.points_balance, consents=_consents_out(m),
        identities=[_identity_out(i) for i in identities], merged_into=m.merged_into,
        created_at=m.created_at, updated_at=m.updated_at)


def _tier_out(t: Tier) -> TierOut:
    return TierOut(id=t.id, name=t.name, rank=t.rank,
                   min_spend=Money.of(t.min_spend_minor, t.currency),
                   window_days=t.window_days, created_at=t.created_at, updated_at=t.updated_at)


def _entry_out(e: PointsEntry) -> PointsEntryOut:
    return PointsEntryOut(id=e.id, member_id=e.member_id, kind=e.kind,  # type: ignore[arg-type]
                          points=e.points, remaining=e.remaining, expires_at=e.expires_at,
                          order_id=e.order_id, reason=e.reason, created_at=e.created_at)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _aware(at: dt.datetime, name: str = "at") -> dt.datetime:
    if at.tzinfo is None:
        raise Invalid(f"{name} must be a timezone-aware datetime")
    return at


# ---------------------------------------------------------------- loading and locking

def _member_row(session: Session, tenant: Tenant, member_id: str) -> Member:
    return tenant_row(session, tenant.id, Member, member_id, "member")


def _lock(session: Session, tenant: Tenant, member_id: str) -> Member:
    """The member's row, locked until the transaction ends, with its current values."""
    session.flush()  # populate_existing would drop unflushed changes
    row = session.scalar(select(Member)
                         .where(Member.tenant_id == tenant.id, Member.id == member_id)
                         .with_for_update().execution_options(populate_existing=True))
    if row is None:
        raise not_found("member", member_id)
    return row


def _lock_survivor(session: Session, tenant: Tenant, member_id: str) -> Member:
    """Lock the member, following merges to the one that survives (for other modules, which
    may hold an id from before a merge)."""
    for _ in range(MAX_MERGE_CHAIN):
        row = _lock(session, tenant, member_id)
        if row.merged_into is None:
            return row
        member_id = row.merged_into
    raise RuntimeError(f"merge chain from {member_id} is longer than {MAX_MERGE_CHAIN}")


def consenting_member_ids(session: Session, tenant: Tenant, consent: str) -> set[str]:
    """The ids of the tenant's members (not merged away) who granted ``consent``."""
    if consent not in CONSENTS:
        raise ValueError(f"unknown consent {consent!r}")
    flag = getattr(Member, consent)
    return set(session.scalars(select(Member.id).where(
        Member.tenant_id == tenant.id, Member.merged_into.is_(None), flag.is_(True))))


def merge_survivors(session: Session, tenant: Tenant) -> dict[str, str]:
    """Every merged-away member id of the tenant → the id of the member it is now part of
    (chains followed): for bulk readers, such as analytics, that meet old ids in history."""
    merged = dict(session.execute(
        select(Member.id, Member.merged_into).where(Member.tenant_id == tenant.id,
                                                    Member.merged_into.is_not(None))).all())
    out: dict[str, str] = {}
    for start in merged:
        current = start
        for _ in range(MAX_MERGE_CHAIN):
            if current not in merged:
                break
            current = merged[current]
        else:
            raise RuntimeError(f"merge chain from {start} is longer than {MAX_MERGE_CHAIN}")
        out[start] = current
    return out


def _merged_problem(row: Member) -> InvalidState:
    return InvalidState(f"member {row.id} was merged into {row.merged_into}; use that member",
                        slug="member-merged", merged_into=row.merged_into)


def _lock_live(session: Session, tenant: Tenant, member_id: str) -> Member:
    """Lock a member that has not been merged away (API writes act on survivors only)."""
    row = _lock(session, tenant, member_id)
    if row.merged_into is not None:
        raise _merged_problem(row)
    return row


def _identities(session: Session, tenant_id: str, member_ids: Sequence[str]) -> dict[str, list[MemberIdentity]]:
    out: dict[str, list[MemberIdentity]] = {m: [] for m in member_ids}
    if not member_ids:
        return out
    for i in session.scalars(select(MemberIdentity)
                             .where(MemberIdentity.tenant_id == tenant_id,
                                    MemberIdentity.member_id.in_(member_ids))
                             .order_by(MemberIdentity.id)):
        out[i.member_id].append(i)
    return out


def get_member(session: Session, tenant: Tenant, member_id: str) -> MemberOut:
    """The member as it is, merged or not (a merged member has ``merged_into`` set); 404 if
    absent or another tenant's."""
    found = session.execute(
        select(Member, Tier)
        .outerjoin(Tier, and_(Tier.id == Member.tier_id, Tier.tenant_id == Member.tenant_id))
        .where(Member.tenant_id == tenant.id, Member.id == member_id)).first()
    if found is None:
        raise not_found("member", member_id)
    member, tier = found
    return _member_out(member, tier, _identities(session, tenant.id, [member.id])[member.id])


def resolve_member_id(session: Session, tenant: Tenant, member_id: str) -> str:
    """The id of the member that ``member_id`` is now part of: itself, or the survivor of the
    merges it went through. 404 if absent or another tenant's."""
    current = member_id
    for _ in range(MAX_MERGE_CHAIN):
        merged_into = session.execute(select(Member.merged_into)
                                      .where(Member.tenant_id == tenant.id,
                                             Member.id == current)).first()
        if merged_into is None:
            raise not_found("member", member_id)
        if merged_into[0] is None:
            return current
        current = merged_into[0]
    raise RuntimeError(f"merge chain from {member_id} is longer than {MAX_MERGE_CHAIN}")


def member_history_ids(session: Session, tenant: Tenant, member_id: str) -> list[str]:
    """The survivor's id first, then every id merged into it, directly or transitively:
    the ids under which this person's orders may have been recorded. A merged id is resolved
    to its survivor first, so any id of the person gives the whole history."""
    root = resolve_member_id(session, tenant, member_id)
    tree = (select(Member.id).where(Member.tenant_id == tenant.id, Member.id == root)
            .cte("merged_tree", recursive=True))
    tree = tree.union_all(select(Member.id).where(Member.tenant_id == tenant.id,
                                                  Member.merged_into == tree.c.id))
    others = sorted(i for i in session.scalars(select(tree.c.id)) if i != root)
    return [root, *others]


# ---------------------------------------------------------------- identities

def parse_identity(text: str) -> tuple[str, str]:
    """``"phone:13800000000"`` → ``("phone", "13800000000")``, normalized; 422 if malformed."""
    kind, sep, value = text.partition(":")
    if not sep or kind not in IDENTITY_KINDS:
        raise Invalid(f"identity {text!r} must look like kind:value with kind one of "
                      f"{', '.join(IDENTITY_KINDS)}", slug="invalid-identity")
    try:
        return kind, normalize_identity(kind, value)
    except ValueError as exc:
        raise Invalid(str(exc), slug="invalid-identity") from None


def _identity_taken(kind: str, value: str, holder: str) -> Conflict:
    return Conflict(f"the {kind} identity {value!r} belongs to member {holder}; merge the two "
                    f"members (POST /v1/members/{{id}}/merge) to combine them",
                    slug="identity-taken", title="Identity taken", member_id=holder, kind=kind,
                    value=value)


def _identity_holder(session: Session, tenant_id: str,
                     pairs: Sequence[tuple[str, str]]) -> MemberIdentity | None:
    if not pairs:
        return None
    return session.scalars(select(MemberIdentity).where(
        MemberIdentity.tenant_id == tenant_id,
        or_(*(and_(MemberIdentity.kind == k, MemberIdentity.value == v) for k, v in pairs)))
        .order_by(MemberIdentity.id).limit(1)).first()


def _flush_identities(session: Session, tenant_id: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Flush; if an identity was taken meanwhile, roll back and answer who holds it."""
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        holder = _identity_holder(session, tenant_id, pairs)
        if holder is None:
            raise
        raise _identity_taken(holder.kind, holder.value, holder.member_id) from None


def _new_identity(tenant_id: str, member_id: str, kind: str, value: str, channel: str | None,
                  now: dt.datetime) -> MemberIdentity:
    return MemberIdentity(id=new_id("identity"), tenant_id=tenant_id, member_id=member_id,
                          kind=kind, value=value, channel=channel, created_at=now)


def find_member_by_identity(session: Session, tenant: Tenant, kind: str, value: str) -> MemberOut:
    """The member holding an identity (always a survivor: merges move identities)."""
    kind, value = parse_identity(f"{kind}:{value}")
    member_id = session.scalar(select(MemberIdentity.member_id).where(
        MemberIdentity.tenant_id == tenant.id, MemberIdentity.kind == kind,
        MemberIdentity.value == value))
    if member_id is None:
        raise NotFound(f"no member with the {kind} identity {value!r}", slug="member-not-found")
    return get_member(session, tenant, member_id)


def add_identity(session: Session, tenant: Tenant, member_id: str, data: IdentityIn) -> IdentityOut:
    """Attach a channel identity; 409 ``identity-taken`` naming the holder if another member
    has it. Adding one the member already has returns it unchanged."""
    member = _lock_live(session, tenant, member_id)
    held = _identity_holder(session, tenant.id, [(data.kind, data.value)])
    if held is not None:
        if held.member_id == member.id:
            return _identity_out(held)
        raise _identity_taken(data.kind, data.value, held.member_id)
    now = utcnow()
    ident = _new_identity(tenant.id, member.id, data.kind, data.value, data.channel, now)
    session.add(ident)
    # the profile's contact fields mirror the phone and email identities
    if data.kind in ("phone", "email") and getattr(member, data.kind) is None:
        setattr(member, data.kind, data.value)
    member.updated_at = now
    record_event(session, tenant.id, "member.identity_added", member.id,
                 {"identity_id": ident.id, "kind": data.kind, "value": data.value,
                  "channel": data.channel})
    _flush_identities(session, tenant.id, [(data.kind, data.value)])
    return _identity_out(ident)


def remove_identity(session: Session, tenant: Tenant, member_id: str, identity_id: str) -> None:
    member = _lock_live(session, tenant, member_id)
    ident = session.scalar(select(MemberIdentity).where(
        MemberIdentity.tenant_id == tenant.id, MemberIdentity.member_id == member.id,
        MemberIdentity.id == identity_id))
    if ident is None:
        raise not_found("identity", identity_id)
    if ident.kind in ("phone", "email") and getattr(member, ident.kind) == ident.value:
        setattr(member, ident.kind, None)
    member.updated_at = utcnow()
    session.delete(ident)
    record_event(session, tenant.id, "member.identity_removed", member.id,
                 {"identity_id": ident.id, "kind": ident.kind, "value": ident.value})
    session.flush()


# ---------------------------------------------------------------- members

def create_member(session: Session, tenant: Tenant, data: MemberCreate) -> MemberOut:
    """A new member with its identities (its email and phone are identities too). 409
    ``identity-taken`` if another member holds one; the session is then rolled back.
    Four statements: the entry tier, then one INSERT each for member, identities, event."""
    now = utcnow()
    entry_tier = session.scalars(select(Tier).where(Tier.tenant_id == tenant.id,
                                                    Tier.min_spend_minor <= 0)
                                 .order_by(Tier.rank.desc()).limit(1)).first()
    member = Member(id=new_id("member"), tenant_id=tenant.id, name=data.name, email=data.email,
                    phone=data.phone, birthday=data.birthday,
                    tier_id=entry_tier.id if entry_tier else None, points_balance=0,
                    created_at=now, updated_at=now)
    for c in CONSENTS:
        granted = getattr(data.consents, c) if data.consents else None
        setattr(member, c, bool(granted))
        setattr(member, f"{c}_at", now if granted is not None else None)
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
    session.add(member)
    session.add_all(idents)
    record_event(session, tenant.id, "member.created", member.id,
                 {"name": data.name, "tier_id": member.tier_id,
                  "identities": [{"kind": k, "value": v} for k, v in wanted]})
    _flush_identities(session, tenant.id, list(wanted))
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


def _move_contact_identity(session: Session, member: Member, kind: str, new: str | None,
                           now: dt.datetime) -> None:
    """Keep the phone/email identity in step with the profile field being changed."""
    old = getattr(member, kind)
    if new == old:
        return
    mine = session.scalar(select(MemberIdentity).where(
        MemberIdentity.tenant_id == member.tenant_id, MemberIdentity.member_id == member.id,
        MemberIdentity.kind == kind, MemberIdentity.value == old)) if old else None
    if new is None:
        if mine is not None:
            session.delete(mine)
        return
    held = _identity_holder(session, member.tenant_id, [(kind, new)])
    if held is not None:
        if held.member_id != member.id:
            raise _identity_taken(kind, new, held.member_id)
        if mine is not None:  # the new value is already one of its identities
            session.delete(mine)
        return
    if mine is not None:
        mine.value = new
    else:
        session.add(_new_identity(member.tenant_id, member.id, kind, new, "profile", now))


def update_member(session: Session, tenant: Tenant, member_id: str, data: MemberUpdate) -> MemberOut:
    member = _lock_live(session, tenant, member_id)
    now = utcnow()
    changes: dict[str, Any] = {}
    for name in ("name", "email", "phone", "birthday"):
        if name not in data.model_fields_set:
            continue
        value = getattr(data, name)
        if value == getattr(member, name):
            continue
        if name in ("email", "phone"):
            _move_contact_identity(session, member, name, value, now)
        setattr(member, name, value)
        changes[name] = value.isoformat() if isinstance(value, dt.date) else value
    if changes:
        member.updated_at = now
        record_event(session, tenant.id, "member.updated", member.id, {"changes": changes})
        pairs = [(k, changes[k]) for k in ("email", "phone") if changes.get(k)]
        _flush_identities(session, tenant.id, pairs)
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
    survivor, other = rows[survivor_id], rows[other_id]
    now = utcnow()
    moved_identities = session.execute(
        update(MemberIdentity).where(MemberIdentity.tenant_id == tenant.id,
                                     MemberIdentity.member_id == other.id)
        .values(member_id=survivor.id)).rowcount
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
    lots_total = session.scalar(select(func.coalesce(func.sum(PointsEntry.remaining), 0)).where(
        PointsEntry.tenant_id == tenant.id, PointsEntry.member_id == survivor.id,
        PointsEntry.remaining > 0))
    settled = int(lots_total) - max(survivor.points_balance, 0)
    if settled > 0:
        _take_from_lots(session, survivor, settled)
    for c in CONSENTS:
        theirs, ours = getattr(other, f"{c}_at"), getattr(survivor, f"{c}_at")
        if theirs is not None and (ours is None or theirs > ours):
            setattr(survivor, c, getattr(other, c))
            setattr(survivor, f"{c}_at", theirs)
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


# ---------------------------------------------------------------- points ledger

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
    refunded_before = -int(session.scalar(
        select(func.coalesce(func.sum(MemberSpend.amount_minor), 0)).where(
            MemberSpend.tenant_id == tenant.id, MemberSpend.order_id == order_id,
            MemberSpend.kind == "refund")))
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
    return int(session.scalar(select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
        PointsEntry.tenant_id == tenant.id, PointsEntry.member_id == member_id)))


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


# ---------------------------------------------------------------- tiers

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
