"""Members' personal data: the consent log, who may be targeted, and a person's export and
erasure (composed across modules by ``haina.privacy``).

Private to the members module; other modules call ``members.service``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.db import rowcount
from haina.core.ids import new_id
from haina.core.pagination import Page, paginate
from haina.core.personal import export_rows
from haina.members.models import (
    ConsentRecord,
    Member,
    MemberErasure,
    MemberIdentity,
    MemberSpend,
    PointsEntry,
)
from haina.members.points import _entry, _take_from_lots
from haina.members.records import _lock, _member_row
from haina.members.schemas import CONSENTS, ConsentRecordOut

#: the consents a marketing campaign needs, by channel (PIPL Art. 24: a person may refuse
#: marketing; a campaign reaches only those who granted its channel's consent)
MARKETING_CONSENTS = {"email": "email_marketing", "sms": "sms_marketing"}


def _record_out(r: ConsentRecord) -> ConsentRecordOut:
    return ConsentRecordOut(id=r.id, member_id=r.member_id, purpose=r.purpose, granted=r.granted,
                            channel=r.channel, text_version=r.text_version, text=r.text,
                            source=r.source, created_at=r.created_at)


def _log_consents(session: Session, member: Member, changes: dict[str, bool], now: dt.datetime,
                  *, channel: str | None = None, text_version: str | None = None,
                  text: str | None = None, source: str = "api") -> None:
    """Append one consent-log row per changed purpose (the caller's transaction)."""
    session.add_all(ConsentRecord(id=new_id("consent_record"), tenant_id=member.tenant_id,
                                  member_id=member.id, purpose=purpose, granted=granted,
                                  channel=channel, text_version=text_version, text=text,
                                  source=source, created_at=now)
                    for purpose, granted in changes.items())


def list_consent_log(session: Session, tenant: Tenant, member_id: str, *, limit: int = 50,
                     cursor: str | None = None) -> Page[ConsentRecordOut]:
    """The member's grants and withdrawals, newest first (404 if not the merchant's)."""
    _member_row(session, tenant, member_id)
    stmt = select(ConsentRecord).where(ConsentRecord.tenant_id == tenant.id,
                                       ConsentRecord.member_id == member_id)
    return paginate(session, stmt, ConsentRecord.id, limit=limit, cursor=cursor,
                    convert=_record_out, kind="consent_record")


def withdrawn_member_ids(session: Session, tenant: Tenant, consent: str) -> set[str]:
    """Members who said no to ``consent`` (it was set false; an erasure withdraws every
    consent): analytics drops their scores at its next refresh whatever its options."""
    if consent not in CONSENTS:
        raise ValueError(f"unknown consent {consent!r}")
    flag, at = getattr(Member, consent), getattr(Member, f"{consent}_at")
    return set(session.scalars(select(Member.id).where(
        Member.tenant_id == tenant.id, flag.is_(False), at.is_not(None))))


def campaign_audience(session: Session, tenant: Tenant, channel: str,
                      candidates: Sequence[str] | None = None) -> list[str]:
    """The members a marketing campaign on ``channel`` (email or sms) may reach now: granted
    that channel's consent and not merged away (an erasure withdraws every consent); among
    ``candidates`` when given (a segment). Read at send time, so a withdrawal takes the
    member out at once."""
    if channel not in MARKETING_CONSENTS:
        raise ValueError(f"unknown marketing channel {channel!r}; one of "
                         + ", ".join(MARKETING_CONSENTS))
    flag = getattr(Member, MARKETING_CONSENTS[channel])
    stmt = select(Member.id).where(Member.tenant_id == tenant.id, flag.is_(True),
                                   Member.merged_into.is_(None))
    if candidates is not None:
        wanted = set(candidates)
        return sorted(m for m in session.scalars(stmt) if m in wanted)
    return sorted(session.scalars(stmt))


# ---------------------------------------------------------------- export and erasure

def export_member_data(session: Session, tenant: Tenant, member_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Everything the members module holds about the person known by ``member_ids`` (the
    survivor and the members merged into it): profile, identities, consent log, points
    ledger, spend."""
    ids = list(member_ids)
    return {
        "members": export_rows(session, Member.__table__, tenant.id, "id", ids),
        "member_identities": export_rows(session, MemberIdentity.__table__, tenant.id,
                                         "member_id", ids),
        "member_consent_log": export_rows(session, ConsentRecord.__table__, tenant.id,
                                          "member_id", ids),
        "points_entries": export_rows(session, PointsEntry.__table__, tenant.id,
                                      "origin_member_id", ids),
        "member_spend": export_rows(session, MemberSpend.__table__, tenant.id,
                                    "origin_member_id", ids),
    }


def personal_values(session: Session, tenant: Tenant, member_ids: Sequence[str]) -> list[str]:
    """The values that identify the person: names, emails, phones, birthdays and every
    identity value (external ids included)."""
    values: list[str] = []
    for m in session.scalars(select(Member).where(Member.tenant_id == tenant.id,
                                                  Member.id.in_(list(member_ids)))):
        values += [v for v in (m.name, m.email, m.phone) if v]
        if m.birthday:
            values.append(m.birthday.isoformat())
    values += session.scalars(select(MemberIdentity.value).where(
        MemberIdentity.tenant_id == tenant.id, MemberIdentity.member_id.in_(list(member_ids))))
    return values


def erase_members(session: Session, tenant: Tenant, member_ids: Sequence[str],
                  now: dt.datetime) -> dict[str, int]:
    """Erase the person: profile fields emptied, identities deleted, consents withdrawn
    (logged), tier cleared, the points balance closed by a final ``expire`` entry (the
    ledger keeps its lines, so it still sums to the balance: 0). Spend rows stay (amounts
    and order ids: the books). Each member is marked erased (``member_erasures``): writes to
    it are refused from then on (409 ``member-erased``). Locks the members in id order.
    Idempotent."""
    out = {"members": 0, "identities": 0, "points_closed": 0}
    already = set(session.scalars(select(MemberErasure.id).where(
        MemberErasure.tenant_id == tenant.id, MemberErasure.id.in_(list(member_ids)))))
    for mid in sorted(member_ids):
        member = _lock(session, tenant, mid)
        if mid not in already:
            session.add(MemberErasure(id=mid, tenant_id=tenant.id, erased_at=now))
        if member.points_balance > 0:
            closing = member.points_balance
            taken = _take_from_lots(session, member, closing)
            session.add(_entry(member, "expire", -closing, now, reason="erased",
                               data={"lots": taken}))
            member.points_balance = 0
            out["points_closed"] += closing
        withdrawn = {c: False for c in CONSENTS if getattr(member, c)}
        for c in withdrawn:
            setattr(member, c, False)
            setattr(member, f"{c}_at", now)
        _log_consents(session, member, withdrawn, now, source="erasure")
        out["members"] += 1
        member.name = member.email = member.phone = None
        member.birthday = None
        member.tier_id = None
        member.updated_at = now
    session.flush()
    out["identities"] = rowcount(session.execute(delete(MemberIdentity).where(
        MemberIdentity.tenant_id == tenant.id,
        MemberIdentity.member_id.in_(list(member_ids)))))
    # a hand adjustment's reason is free text that may name the person
    for e in session.scalars(select(PointsEntry).where(
            PointsEntry.tenant_id == tenant.id, PointsEntry.origin_member_id.in_(list(member_ids)),
            PointsEntry.kind == "adjust")):
        e.reason = None
    session.flush()
    return out
