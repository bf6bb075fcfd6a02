from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, PrimaryKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, JSONType, Minor, UTCDateTime, tenant_fk


class Campaign(Base):
    """A coupon for a segment's (or a list's) consenting members, with a holdout drawn from
    ``seed``. ``committed_minor`` is the worst-case cost of the coupons issued (what the
    ``budget_minor`` caps). Status: scheduled → running ⇄ paused → ended."""

    __tablename__ = "campaigns"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      Index("ix_campaigns_tenant_status", "tenant_id", "status"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    segment_id: Mapped[str | None] = mapped_column(String(40))
    member_ids: Mapped[list | None] = mapped_column(JSONType)  # the list, when no segment
    channel: Mapped[str] = mapped_column(String(16))  # sms | email: the consent it needs
    coupon_id: Mapped[str] = mapped_column(String(40))
    coupon_code: Mapped[str] = mapped_column(String(64))
    unit_cost_minor: Mapped[int | None] = mapped_column(Minor)  # one coupon's worst case (None: no cap)
    currency: Mapped[str] = mapped_column(String(3))
    holdout_bps: Mapped[int] = mapped_column(Integer)
    seed: Mapped[str] = mapped_column(String(64))
    budget_minor: Mapped[int | None] = mapped_column(Minor)
    committed_minor: Mapped[int] = mapped_column(Minor, default=0)
    audience: Mapped[int] = mapped_column(Integer, default=0)  # consenting candidates
    candidates: Mapped[int] = mapped_column(Integer, default=0)
    treated: Mapped[int] = mapped_column(Integer, default=0)
    holdout: Mapped[int] = mapped_column(Integer, default=0)
    left_out: Mapped[int] = mapped_column(Integer, default=0)  # stopped by the budget
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    launched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CampaignMember(Base):
    """One enrolled member: ``treated`` (issued the coupon) or ``holdout`` (nothing), and
    the basis on which they were targeted (the consent they had granted at launch)."""

    __tablename__ = "campaign_members"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      tenant_fk("campaign_id", "campaigns"),
                      UniqueConstraint("tenant_id", "campaign_id", "member_id",
                                       name="uq_campaign_members_member"),
                      Index("ix_campaign_members_member", "tenant_id", "member_id"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    campaign_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str] = mapped_column(String(40))
    arm: Mapped[str] = mapped_column(String(16))  # treated | holdout
    basis: Mapped[str] = mapped_column(String(64))  # e.g. "consent:sms_marketing"
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
