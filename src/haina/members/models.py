"""Members' tables: members, their channel identities, tiers, the points ledger and spend.

Private to the members module: other modules go through ``members.service``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, JSONType, Minor, UTCDateTime, tenant_fk


class Tier(Base):
    """A loyalty tier: reached by net spend of at least ``min_spend_minor`` within the last
    ``window_days``; the highest ``rank`` reached wins."""

    __tablename__ = "member_tiers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "rank"),
        UniqueConstraint("tenant_id", "name"),
        PrimaryKeyConstraint("tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    rank: Mapped[int] = mapped_column(Integer)
    min_spend_minor: Mapped[int] = mapped_column(Minor)
    currency: Mapped[str] = mapped_column(String(3))
    window_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Member(Base):
    """A merchant's customer. ``points_balance`` is a cache of the sum of the member's ledger
    entries, changed only together with the entry that changes it, under the member's row lock."""

    __tablename__ = "members"
    __table_args__ = (
        Index("ix_members_tenant_email", "tenant_id", "email"),
        Index("ix_members_tenant_phone", "tenant_id", "phone"),
        Index("ix_members_tenant_merged_into", "tenant_id", "merged_into"),
        Index("ix_members_tenant_tier", "tenant_id", "tier_id"),
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("tier_id", "member_tiers"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    birthday: Mapped[dt.date | None] = mapped_column(Date)
    tier_id: Mapped[str | None] = mapped_column(String(40))
    points_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    email_marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    email_marketing_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sms_marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_marketing_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    data_analysis: Mapped[bool] = mapped_column(Boolean, default=False)
    data_analysis_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    merged_into: Mapped[str | None] = mapped_column(String(40))
    merged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# name search is a case-insensitive prefix match
Index("ix_members_tenant_lower_name", Member.tenant_id, func.lower(Member.name))


class MemberIdentity(Base):
    """One way a channel knows the member: a phone, an email, a WeChat openid … Unique per
    tenant, so one value always leads to one person."""

    __tablename__ = "member_identities"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "value"),
        Index("ix_member_identities_tenant_member", "tenant_id", "member_id"),
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("member_id", "members"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PointsEntry(Base):
    """One line of the points ledger. Earn and positive adjustments are *lots*: they carry
    ``expires_at`` and ``remaining``; redemptions, clawbacks and expiries consume lots.
    ``member_id`` is the current owner (it moves at a merge); ``origin_member_id`` the member
    it was written for."""

    __tablename__ = "points_entries"
    __table_args__ = (
        Index("ix_points_entries_tenant_member", "tenant_id", "member_id", "id"),
        Index("ix_points_entries_tenant_origin", "tenant_id", "origin_member_id"),
        Index("ix_points_entries_tenant_order", "tenant_id", "order_id"),
        Index("ix_points_entries_expiring", "expires_at",
              postgresql_where=text("remaining > 0"), sqlite_where=text("remaining > 0")),
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("member_id", "members"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str] = mapped_column(String(40))
    origin_member_id: Mapped[str] = mapped_column(String(40))
    # earn | redeem | restore | expire | adjust | clawback
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    order_id: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(500))
    # the entry this one reverses (a restore reverses a redeem)
    reverses_id: Mapped[str | None] = mapped_column(String(40))
    # which lots a consuming entry took points from: {"lots": [[lot_id, points], …]}
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class MemberSpend(Base):
    """Money a member spent (purchase) or got back (refund, negative), for tiers. A refund is
    dated at its purchase (``spend_at``) so it nets out that purchase inside the same window."""

    __tablename__ = "member_spend"
    __table_args__ = (
        # one purchase row per order
        UniqueConstraint("tenant_id", "dedupe_key"),
        Index("ix_member_spend_tenant_member_at", "tenant_id", "member_id", "spend_at"),
        Index("ix_member_spend_tenant_order", "tenant_id", "order_id"),
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("member_id", "members"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str] = mapped_column(String(40))
    origin_member_id: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # purchase | refund
    amount_minor: Mapped[int] = mapped_column(Minor)
    currency: Mapped[str] = mapped_column(String(3))
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    dedupe_key: Mapped[str | None] = mapped_column(String(60))
    spend_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ConsentRecord(Base):
    """One grant or withdrawal of a consent (PIPL Art. 14-15: the record that consent was
    given, to what text, and when it was withdrawn). Rows are only ever added."""

    __tablename__ = "member_consent_log"
    __table_args__ = (
        Index("ix_member_consent_log_tenant_member", "tenant_id", "member_id", "id"),
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("member_id", "members"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str] = mapped_column(String(40))
    purpose: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    channel: Mapped[str | None] = mapped_column(String(64))
    text_version: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(String(4000))
    source: Mapped[str] = mapped_column(String(16))  # api | merge | erasure
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class MemberErasure(Base):
    """A member erased at the person's request (PIPL Art. 47): its writes are refused from
    then on. Its own table rather than a column on ``members``, so the members table keeps
    the shape older migrations and the demo-into-0002 test know; ``id`` is the member's id."""

    __tablename__ = "member_erasures"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"), tenant_fk("id", "members"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    erased_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
