from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Index, Integer, PrimaryKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, JSONType, Minor, UTCDateTime, tenant_fk


class Coupon(Base):
    """A code worth a percentage or a fixed amount off an order's goods. ``redeemed`` counts
    the claims that hold (a cancelled order gives its claim back); a claim is one conditional
    UPDATE, so ``max_redemptions`` is never exceeded, whatever runs at once."""

    __tablename__ = "coupons"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      # codes compare case-insensitively: stored upper-cased
                      UniqueConstraint("tenant_id", "code", name="uq_coupons_tenant_code"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # percent | fixed
    percent_bps: Mapped[int | None] = mapped_column(Integer)  # percent: basis points off
    amount_minor: Mapped[int | None] = mapped_column(Minor)   # fixed: minor units off
    currency: Mapped[str] = mapped_column(String(3))
    min_spend_minor: Mapped[int] = mapped_column(Minor, default=0)
    max_discount_minor: Mapped[int | None] = mapped_column(Minor)
    max_redemptions: Mapped[int | None] = mapped_column(Integer)  # in all; None: no limit
    per_member_limit: Mapped[int | None] = mapped_column(Integer)
    redeemed: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))  # active | disabled
    # targets: the discount is on these products' or categories' goods only (None: all goods),
    # for members of these tiers only (None: anyone)
    product_ids: Mapped[list | None] = mapped_column(JSONType)
    category_ids: Mapped[list | None] = mapped_column(JSONType)
    tier_ids: Mapped[list | None] = mapped_column(JSONType)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # public: anyone with the code; issued: only members holding it in their wallet
    audience: Mapped[str] = mapped_column(String(16), default="public")
    issued: Mapped[int] = mapped_column(Integer, default=0)  # wallet entries made (0: no wallet)


class WalletCoupon(Base):
    """A coupon issued to a member (their wallet): ``issued`` until an order's claim marks it
    ``used`` (naming the order); the order's cancellation gives it back. One entry per
    coupon and member; ``expired`` is read from the coupon's end, never stored."""

    __tablename__ = "coupon_wallet"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      tenant_fk("coupon_id", "coupons"),
                      UniqueConstraint("tenant_id", "coupon_id", "member_id",
                                       name="uq_coupon_wallet_coupon_member"),
                      Index("ix_coupon_wallet_member", "tenant_id", "member_id", "id"),
                      Index("ix_coupon_wallet_order", "tenant_id", "order_id"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    coupon_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))  # issued | used
    source: Mapped[str] = mapped_column(String(48))  # "api" or the campaign's id
    order_id: Mapped[str | None] = mapped_column(String(40))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CouponRedemption(Base):
    """One coupon's claim by one order: ``claimed`` while the order holds it, ``released``
    when the order is cancelled."""

    __tablename__ = "coupon_redemptions"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      tenant_fk("coupon_id", "coupons"),
                      Index("ix_coupon_redemptions_coupon_member", "tenant_id", "coupon_id",
                            "member_id"),
                      Index("ix_coupon_redemptions_order", "tenant_id", "order_id"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    coupon_id: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str | None] = mapped_column(String(40))
    discount_minor: Mapped[int] = mapped_column(Minor)
    status: Mapped[str] = mapped_column(String(16))  # claimed | released
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Promotion(Base):
    """An automatic discount: its kind, its parameters (``params``: what the kind needs, in
    minor units and basis points), its targets, its window, how it combines, and a budget.
    ``spent`` counts the discount held by orders; a claim is one conditional UPDATE
    (``spent + :amount <= budget``), so the budget is never exceeded."""

    __tablename__ = "promotions"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      Index("ix_promotions_tenant_status", "tenant_id", "status"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # active | paused
    currency: Mapped[str] = mapped_column(String(3))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    stacking_group: Mapped[str | None] = mapped_column(String(64))
    exclusive: Mapped[bool] = mapped_column(Boolean, default=False)
    product_ids: Mapped[list | None] = mapped_column(JSONType)
    category_ids: Mapped[list | None] = mapped_column(JSONType)
    tier_ids: Mapped[list | None] = mapped_column(JSONType)
    min_subtotal_minor: Mapped[int] = mapped_column(Minor, default=0)
    params: Mapped[dict] = mapped_column(JSONType)
    budget_minor: Mapped[int | None] = mapped_column(Minor)
    spent_minor: Mapped[int] = mapped_column(Minor, default=0)
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PromotionTarget(Base):
    """The index of promotions by what they target: ``*`` (all goods), ``p:<product id>``,
    ``c:<category id>``. A cart's rules are one indexed query on ``(tenant_id, target)``."""

    __tablename__ = "promotion_targets"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      tenant_fk("promotion_id", "promotions"),
                      Index("ix_promotion_targets_target", "tenant_id", "target",
                            "promotion_id"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    promotion_id: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(48))


class PromotionRedemption(Base):
    """One promotion's part in one order: ``claimed`` while the order holds it (its amount
    counts towards the budget), ``released`` when the order is cancelled."""

    __tablename__ = "promotion_redemptions"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      tenant_fk("promotion_id", "promotions"),
                      Index("ix_promotion_redemptions_order", "tenant_id", "order_id"),
                      Index("ix_promotion_redemptions_promotion", "tenant_id", "promotion_id"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    promotion_id: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str | None] = mapped_column(String(40))
    discount_minor: Mapped[int] = mapped_column(Minor)
    status: Mapped[str] = mapped_column(String(16))  # claimed | released
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class FirstOrderClaim(Base):
    """A member's first order holding a first-order promotion: one row per (promotion,
    member), inserted in the order's transaction, so two concurrent first orders cannot both
    get it (the second waits for the first, then prices without it). A cancellation deletes
    the row: the member's next order is their first again."""

    __tablename__ = "first_order_claims"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      tenant_fk("promotion_id", "promotions"),
                      UniqueConstraint("tenant_id", "promotion_id", "member_id",
                                       name="uq_first_order_claims_member"),
                      Index("ix_first_order_claims_order", "tenant_id", "order_id"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    promotion_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
