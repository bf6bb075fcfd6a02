"""A taken identity is refused without undoing the caller's transaction: services never roll
back the unit of work they run in, a savepoint confines the failed write."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from haina.core.db import transaction
from haina.core.errors import Conflict
from haina.members import service as members
from haina.members.models import Member, MemberIdentity
from haina.members.schemas import IdentityIn, MemberCreate, MemberUpdate

PHONE = "13800000000"


def test_a_taken_identity_does_not_undo_the_callers_earlier_work(sessions, tenant):
    with transaction(sessions) as session:
        ann = members.create_member(session, tenant, MemberCreate(name="Ann", phone=PHONE))
        # the insert itself hits the unique constraint: no look-up before it catches this one
        with pytest.raises(Conflict) as exc:
            members.create_member(session, tenant, MemberCreate(name="Ann again", phone=PHONE))
        assert exc.value.slug == "identity-taken" and exc.value.status == 409
        assert exc.value.extra["member_id"] == ann.id
        bob = members.create_member(session, tenant, MemberCreate(name="Bob"))
        with pytest.raises(Conflict) as exc:
            members.add_identity(session, tenant, bob.id, IdentityIn(kind="phone", value=PHONE))
        assert exc.value.slug == "identity-taken"

    with sessions() as session:
        assert members.get_member(session, tenant, ann.id).phone == ann.phone == PHONE
        assert members.get_member(session, tenant, bob.id).phone is None
        assert session.scalar(select(func.count()).select_from(Member).where(
            Member.tenant_id == tenant.id)) == 2
        assert session.scalar(select(func.count()).select_from(MemberIdentity).where(
            MemberIdentity.tenant_id == tenant.id)) == 1


def test_a_refused_profile_change_keeps_none_of_its_fields(sessions, tenant):
    with transaction(sessions) as session:
        members.create_member(session, tenant, MemberCreate(name="Ann", phone=PHONE))
        bob = members.create_member(session, tenant, MemberCreate(name="Bob"))
        with pytest.raises(Conflict) as exc:
            members.update_member(session, tenant, bob.id,
                                  MemberUpdate(name="Robert", phone=PHONE))
        assert exc.value.slug == "identity-taken"

    with sessions() as session:
        after = members.get_member(session, tenant, bob.id)
        assert (after.name, after.phone, after.identities) == ("Bob", None, [])
