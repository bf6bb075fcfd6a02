from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, PrimaryKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, JSONType, UTCDateTime


class TenantRow(Base):
    """A merchant. Everything a merchant owns carries its ``tenant_id``."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    # Merchant settings: shipping fee, tax rate, points rules … (see platform.schemas.TenantSettings)
    settings: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A staff bearer token. Only the SHA-256 of the token is stored: tokens carry 256 random
    bits, so a fast hash is safe (a slow KDF is for guessable secrets such as passwords)."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(String(2000))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    use_count: Mapped[int] = mapped_column(Integer, default=0)


class StaffAccount(Base):
    """A person who works for a merchant and signs in to the web pages (login, OAuth consent,
    the console). The password is stored as an argon2id hash. A global table: the email is
    looked up at sign-in, before the merchant is known (like ``api_tokens``)."""

    __tablename__ = "staff_accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    # stored lower-cased: one account per address, whatever its spelling at sign-in
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # owner | staff | read-only
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class StaffSession(Base):
    """A signed-in browser: the cookie carries a random token, the table its SHA-256 and the
    CSRF token that every form of the session must send back."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff_accounts.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class App(Base):
    """A service provider's app (an OAuth 2 client), listed in the marketplace. Global: apps
    serve many merchants. Only the SHA-256 of the client secret is kept (it carries 256
    random bits)."""

    __tablename__ = "apps"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # also the client_id
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(2000), default="")
    category: Mapped[str] = mapped_column(String(32))
    redirect_uris: Mapped[list] = mapped_column(JSONType)
    scopes: Mapped[str] = mapped_column(String(2000))
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    pricing: Mapped[str] = mapped_column(String(500), default="")
    listed: Mapped[bool] = mapped_column(default=True)
    # the rate-limit plan of its tokens (a key of the rate_limit_plans setting)
    rate_plan: Mapped[str] = mapped_column(String(16), default="standard",
                                           server_default="standard")
    # the provider's own merchant account on Haina, when it registered the app through the API
    owner_tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AppCertification(Base):
    """A "certified" badge that platform staff grant an app for one category, with the
    evidence they relied on (the speech: stricter qualification, organised with providers)."""

    __tablename__ = "app_certifications"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id"), index=True)
    category: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[str] = mapped_column(String(2000))
    granted_by: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AppGrant(Base):
    """A merchant's installation of an app: the scopes it consented to. Uninstalling revokes
    every token issued under the grant at once."""

    __tablename__ = "app_grants"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      UniqueConstraint("tenant_id", "app_id", name="uq_app_grants_tenant_app"),
                      # an app's installations across merchants (its own calls)
                      Index("ix_app_grants_app_id", "app_id"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    app_id: Mapped[str] = mapped_column(String(40))
    scopes: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(16))  # installed | uninstalled
    installed_by: Mapped[str | None] = mapped_column(String(40))  # staff account
    installed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    uninstalled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class OAuthCode(Base):
    """An authorization code: single use, short-lived, bound to the app, the redirect URI and
    the PKCE challenge. Looked up by its hash before the merchant is known (global)."""

    __tablename__ = "oauth_codes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    grant_id: Mapped[str] = mapped_column(String(40))
    staff_id: Mapped[str] = mapped_column(String(40))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(2000))
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class OAuthToken(Base):
    """An app's access or refresh token (SHA-256 stored). A family is every token descending
    from one authorization (code → tokens → rotated tokens …): presenting a refresh token that
    was already rotated revokes the whole family (reuse detection). A client-credentials token
    has no merchant."""

    __tablename__ = "oauth_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # access | refresh
    family_id: Mapped[str] = mapped_column(String(40), index=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id"))
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"))
    grant_id: Mapped[str | None] = mapped_column(String(40), index=True)
    scope: Mapped[str] = mapped_column(String(2000))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
