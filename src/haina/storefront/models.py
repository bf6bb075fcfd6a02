"""Storefront tables: publishable keys (global: found by the key before the merchant is
known, like ``api_tokens``), sign-in codes and buyer sessions (the merchant's: every lookup
comes with a publishable key, so the merchant is known first)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, PrimaryKeyConstraint, String, text
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, JSONType, UTCDateTime

UNREDACTED = "redacted_at IS NULL"


class PublishableKey(Base):
    """A key a merchant ships inside a mobile app or a web page (``pk_…``). Public by design,
    so kept as it is (shown again in the console), and revocable. It reaches only public data
    and the signed-in buyer's own objects."""

    __tablename__ = "storefront_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))  # orders.schemas.Channel
    allowed_origins: Mapped[list] = mapped_column(JSONType)
    # sandbox: sign-in codes are also shown in the sandbox inbox (demo, tests, development)
    sandbox: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SignInCode(Base):
    """A one-time code sent to a phone. Only a salted SHA-256 of the code is kept (and, for a
    sandbox key, the code itself, which the sandbox inbox shows)."""

    __tablename__ = "storefront_sign_in_codes"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      Index("ix_storefront_sign_in_codes_phone", "tenant_id", "phone",
                            "created_at"),
                      # the worker's passes across merchants (buyers.retire_sign_ins)
                      Index("ix_storefront_sign_in_codes_unredacted", "expires_at",
                            postgresql_where=text(UNREDACTED), sqlite_where=text(UNREDACTED)),
                      Index("ix_storefront_sign_in_codes_created", "created_at"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    salt: Mapped[str] = mapped_column(String(32))
    sandbox_code: Mapped[str | None] = mapped_column(String(6))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # when the code left its event's stored payload (at use, or once expired)
    redacted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class BuyerSession(Base):
    """A signed-in buyer: a short-lived access token and a rotating refresh token, both kept
    as SHA-256 (256 random bits each, so a fast hash is safe)."""

    __tablename__ = "storefront_sessions"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      Index("uq_storefront_sessions_access", "tenant_id", "access_hash",
                            unique=True),
                      Index("uq_storefront_sessions_refresh", "tenant_id", "refresh_hash",
                            unique=True),
                      Index("ix_storefront_sessions_member", "tenant_id", "member_id"),
                      # the worker's purge across merchants (buyers.retire_sign_ins)
                      Index("ix_storefront_sessions_refresh_expiry", "refresh_expires_at"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str] = mapped_column(String(40))
    access_hash: Mapped[str] = mapped_column(String(64))
    refresh_hash: Mapped[str] = mapped_column(String(64))
    access_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    refresh_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SpentRefreshToken(Base):
    """A refresh token already exchanged (its SHA-256 as the id). Presenting it again is
    taken as theft (RFC 9700 §4.14.2): its session, the whole family, ends."""

    __tablename__ = "storefront_spent_refresh_tokens"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      Index("ix_storefront_spent_refresh_tokens_session", "tenant_id",
                            "session_id"),
                      # the worker's purge across merchants
                      Index("ix_storefront_spent_refresh_tokens_spent_at", "spent_at"))

    id: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(String(40))
    session_id: Mapped[str] = mapped_column(String(40))
    spent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
