"""The member's record: loading and locking it, following its merges, and reading it out.

Private to the members module; other modules call ``members.service``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session

from haina.core import caches
from haina.core.context import Tenant
from haina.core.db import Precompiled, tenant_row
from haina.core.errors import Conflict, Invalid, InvalidState, not_found
from haina.members.models import Member, MemberErasure, MemberIdentity, Tier
from haina.members.schemas import (
    CONSENTS,
    ConsentOut,
    ConsentsOut,
    IdentityOut,
    MemberOut,
    TierRef,
)

# A merge chain longer than this means corrupted data, not a real history.
MAX_MERGE_CHAIN = 100
# Rows per IN (…) list and per lock batch in the workers.
CHUNK = 500


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


def _survivor_of(member_id: str, merged_into: Callable[[str], str | None]) -> str:
    """Follow ``merged_into`` links from ``member_id`` to the member that was not merged away
    (itself if never merged); ``merged_into(id)`` reads one link, ``None`` at a survivor."""
    current = member_id
    for _ in range(MAX_MERGE_CHAIN):
        following = merged_into(current)
        if following is None:
            return current
        current = following
    raise RuntimeError(f"merge chain from {member_id} is longer than {MAX_MERGE_CHAIN}")


def _lock_survivor(session: Session, tenant: Tenant, member_id: str) -> Member:
    """Lock the member, following merges to the one that survives (for other modules, which
    may hold an id from before a merge)."""
    locked: list[Member] = []

    def lock(current: str) -> str | None:
        locked.append(_lock(session, tenant, current))
        return locked[-1].merged_into

    _survivor_of(member_id, lock)
    return locked[-1]


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
    return {start: _survivor_of(start, merged.get) for start in merged}


def _merged_problem(row: Member) -> InvalidState:
    return InvalidState(f"member {row.id} was merged into {row.merged_into}; use that member",
                        slug="member-merged", merged_into=row.merged_into)


class MemberErased(Conflict):
    slug, title = "member-erased", "The member was erased"


def _refuse_erased(session: Session, tenant: Tenant, member_ids: Sequence[str]) -> None:
    """409 ``member-erased`` if any of these members was erased at the person's request:
    an erased member is kept for the books, never written to again (docs/privacy.md)."""
    erased = session.scalar(select(MemberErasure.id).where(
        MemberErasure.tenant_id == tenant.id, MemberErasure.id.in_(list(member_ids)))
        .order_by(MemberErasure.id).limit(1))
    if erased is not None:
        raise MemberErased(f"member {erased} was erased at the person's request; it cannot "
                           "be changed (create a new member if the person comes back)",
                           member_id=erased)


def _lock_live(session: Session, tenant: Tenant, member_id: str) -> Member:
    """Lock a member that has not been merged away nor erased (API writes act on live
    survivors only)."""
    row = _lock(session, tenant, member_id)
    if row.merged_into is not None:
        raise _merged_problem(row)
    _refuse_erased(session, tenant, [row.id])
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


def tier_id_of(session: Session, tenant: Tenant, member_id: str) -> str | None:
    """The member's tier id (None without one), one column read: what pricing needs of a
    member (a tier-targeted rule or coupon), without its identities. 404 if absent."""
    found = session.execute(select(Member.tier_id).where(Member.tenant_id == tenant.id,
                                                         Member.id == member_id)).first()
    if found is None:
        raise not_found("member", member_id)
    return found[0]


def resolve_member_id(session: Session, tenant: Tenant, member_id: str) -> str:
    """The id of the member that ``member_id`` is now part of: itself, or the survivor of the
    merges it went through. 404 if absent or another tenant's. (An erased member resolves
    too: :func:`resolve_buyer_id` is the one that refuses it.)"""
    return resolve_buyer(session, tenant, member_id, refuse_erased=False)[0]


def resolve_buyer_id(session: Session, tenant: Tenant, member_id: str) -> str:
    """``resolve_member_id`` for a member an order, cart or booking is placed for: 409
    ``member-erased`` if the person was erased (merged members are erased together, so the
    survivor tells). The erasure is read with the merge link, in the same statement."""
    return resolve_buyer(session, tenant, member_id)[0]


# the order path's read of its buyer (merge link, erasure, tier), compiled once
_BUYER = Precompiled(
    select(Member.__table__.c.merged_into, MemberErasure.__table__.c.id,
           Member.__table__.c.tier_id)
    .join_from(Member.__table__, MemberErasure.__table__,
               and_(MemberErasure.__table__.c.tenant_id == Member.__table__.c.tenant_id,
                    MemberErasure.__table__.c.id == Member.__table__.c.id), isouter=True)
    .where(Member.__table__.c.tenant_id == bindparam("tenant_id"),
           Member.__table__.c.id == bindparam("id")))


# what the order path reads of a buyer (merge link, erasure, tier), kept per API process
# (core.caches, PostgreSQL): forgotten when a member's tier or merge link changes or a
# member is erased; a new member is never kept before it is read, and its points, names and
# the rest change without a notice
caches.watch("buyers", (Member,), columns=("tier_id", "merged_into"), new=False)
caches.watch("buyers", (MemberErasure,))


def resolve_buyer(session: Session, tenant: Tenant, member_id: str, *,
                  refuse_erased: bool = True) -> tuple[str, str | None]:
    """:func:`resolve_buyer_id` and the survivor's tier id, read with its merge link (what
    pricing needs of a buyer: an order with a member reads the member once, or not at all
    when this process keeps it). A tier changed in bulk (``tiers``, a Core update) says so
    with ``caches.changed``; the erasure of a person reaches every process at its commit, as a
    read made just before it would (an order committed after an erasure is not in it either
    way)."""
    erased: list[str] = []
    tier: list[str | None] = [None]
    kept = caches.lookup(session, "buyers", tenant.id)

    def merged_into(current: str) -> str | None:
        found = kept.get(current) if kept else None
        if found is None:
            since = caches.generation(session, "buyers", tenant.id)
            rows = _BUYER.rows(session, {"tenant_id": tenant.id, "id": current})
            if not rows:
                raise not_found("member", member_id)
            found = rows[0]
            caches.store(session, "buyers", tenant.id, since, [(current, found)])
        if found[1] is not None:
            erased.append(found[1])
        tier[0] = found[2]  # the last row read is the survivor's
        return found[0]

    survivor = _survivor_of(member_id, merged_into)
    if erased and refuse_erased:
        raise MemberErased(f"member {erased[0]} was erased at the person's request: nothing "
                           "is placed for it (create a new member if the person comes back)",
                           member_id=erased[0])
    return survivor, tier[0]


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

