"""Channel identities (phone, email, WeChat openid, …): parsing, who holds one, adding and
removing them. An identity belongs to one member of a tenant; the database's unique constraint
settles a race between two members claiming the same one.

Private to the members module; other modules call ``members.service``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.db import utcnow
from haina.core.errors import Conflict, Invalid, NotFound, not_found
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.members.models import Member, MemberIdentity
from haina.members.records import _identity_out, _lock_live, get_member
from haina.members.schemas import (
    IDENTITY_KINDS,
    IdentityIn,
    IdentityOut,
    MemberOut,
    normalize_identity,
)


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


@contextmanager
def _claiming_identities(session: Session, tenant_id: str,
                         pairs: Sequence[tuple[str, str]]) -> Iterator[None]:
    """Write the block's changes in a savepoint and flush them; if an identity in ``pairs``
    was taken meanwhile, only the block's writes are undone (the caller's transaction goes
    on) and the answer is 409 ``identity-taken`` naming who holds it."""
    try:
        with session.begin_nested():  # flushes the caller's earlier work first, outside it
            yield
            session.flush()
    except IntegrityError:
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
    with _claiming_identities(session, tenant.id, [(data.kind, data.value)]):
        session.add(ident)
        # the profile's contact fields mirror the phone and email identities
        if data.kind in ("phone", "email") and getattr(member, data.kind) is None:
            setattr(member, data.kind, data.value)
        member.updated_at = now
        record_event(session, tenant.id, "member.identity_added", member.id,
                     {"identity_id": ident.id, "kind": data.kind, "value": data.value,
                      "channel": data.channel})
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
