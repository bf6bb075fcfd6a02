"""Tenants (merchants) and the staff tokens that act for them."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import threading
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from haina.core import credentials
from haina.core.context import Tenant, parse_scopes
from haina.core.db import add_unique, utcnow
from haina.core.errors import Conflict, Invalid, Unauthorized, not_found
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.money import exponent, to_minor
from haina.core.schema_types import merge_patch
from haina.platform import apps, oauth, staff
from haina.platform.models import ApiToken, App, TenantRow
from haina.platform.oauth import ACCESS_PREFIX
from haina.platform.schemas import (
    AppOut,
    StaffOut,
    TenantOut,
    TenantSettings,
    TenantSettingsIn,
    TokenCreated,
    TokenOut,
)

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
TOKEN_PREFIX = "hn_"


def _tenant_out(row: TenantRow) -> TenantOut:
    return TenantOut(id=row.id, slug=row.slug, name=row.name, currency=row.currency,
                     settings=TenantSettings(**(row.settings or {})), created_at=row.created_at)


def create_tenant(session: Session, slug: str, name: str | None = None,
                  currency: str = "CNY", settings: TenantSettings | None = None) -> TenantOut:
    if not SLUG.match(slug):
        raise Invalid(f"tenant slug {slug!r} must be 2-63 lowercase letters, digits or dashes")
    try:
        exponent(currency)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    row = TenantRow(id=new_id("tenant"), slug=slug, name=name or slug, currency=currency,
                    settings=(settings or TenantSettings()).model_dump(), created_at=utcnow())
    add_unique(session, row, lambda: Conflict(f"a tenant with slug {slug!r} already exists",
                                              slug="tenant-exists"))
    record_event(session, row.id, "tenant.created", row.id, {"slug": slug})
    return _tenant_out(row)


def get_tenant_by_slug(session: Session, slug: str) -> TenantOut:
    row = session.scalar(select(TenantRow).where(TenantRow.slug == slug))
    if row is None:
        raise not_found("tenant", slug)
    return _tenant_out(row)


def get_tenant(session: Session, tenant_id: str) -> TenantOut:
    row = session.get(TenantRow, tenant_id)
    if row is None:
        raise not_found("tenant", tenant_id)
    return _tenant_out(row)


def lock_tenant(session: Session, tenant_id: str) -> None:
    """Lock the merchant's row: one balance-spending change (refund, payout) at a time per
    merchant (SQLite serialises writers anyway)."""
    session.execute(select(TenantRow.id).where(TenantRow.id == tenant_id).with_for_update())


def tenant_settings(session: Session, tenant: Tenant) -> TenantSettings:
    """The merchant's settings; those loaded with the credential when present (no query)."""
    if tenant.settings is not None:
        return tenant.settings
    return get_tenant(session, tenant.id).settings


def patch_tenant_settings(session: Session, tenant: Tenant, patch: dict[str, Any]) -> TenantOut:
    """Apply a JSON merge patch (RFC 7396) to the merchant's settings and store the result,
    checked whole as :func:`update_tenant_settings` stores a replacement (pydantic's
    ``ValidationError`` if it is not valid; nothing is stored). The row is locked while it
    merges: two patches at once both land."""
    row = session.get(TenantRow, tenant.id, with_for_update=True, populate_existing=True)
    if row is None:
        raise not_found("tenant", tenant.id)
    merged = merge_patch(dict(row.settings or {}), patch)
    return update_tenant_settings(session, tenant, TenantSettingsIn.model_validate(merged))


def update_tenant_settings(session: Session, tenant: Tenant, settings: TenantSettings) -> TenantOut:
    row = session.get(TenantRow, tenant.id)
    if row is None:
        raise not_found("tenant", tenant.id)
    for name in ("shipping_fee", "free_shipping_over"):
        value = getattr(settings, name)
        if value is not None:
            try:
                to_minor(value, row.currency)
            except ValueError as exc:
                raise Invalid(f"{name}: {exc}", slug="invalid-amount") from None
    row.settings = settings.model_dump()
    record_event(session, tenant.id, "tenant.updated", tenant.id, {"settings": row.settings})
    credentials.changed(session)  # cached credentials carry the old settings
    session.flush()
    return _tenant_out(row)


def list_tenants(session: Session) -> list[TenantOut]:
    return [_tenant_out(r) for r in session.scalars(select(TenantRow).order_by(TenantRow.slug))]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, tenant_slug: str, scopes: str, label: str | None = None) -> TokenCreated:
    """A new bearer token for ``tenant_slug``; the clear token is returned here once only."""
    tenant = get_tenant_by_slug(session, tenant_slug)
    try:
        scope_set = parse_scopes(scopes)
    except ValueError as exc:
        raise Invalid(str(exc), slug="invalid-scope") from None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(id=new_id("token"), tenant_id=tenant.id, token_hash=_hash(token),
                   prefix=token[:10], scopes=" ".join(sorted(scope_set)), label=label,
                   created_at=utcnow())
    session.add(row)
    record_event(session, tenant.id, "token.created", row.id,
                 {"scopes": sorted(scope_set), "label": label})
    session.flush()
    return TokenCreated(id=row.id, token=token, tenant_id=tenant.id, scopes=sorted(scope_set))


def list_tokens(session: Session, tenant_slug: str) -> list[TokenOut]:
    """A merchant's tokens, oldest first."""
    tenant = get_tenant_by_slug(session, tenant_slug)
    return [TokenOut(id=r.id, label=r.label, scopes=r.scopes, created_at=r.created_at,
                     revoked_at=r.revoked_at)
            for r in session.scalars(select(ApiToken).where(ApiToken.tenant_id == tenant.id)
                                     .order_by(ApiToken.created_at, ApiToken.id))]


def revoke_token(session: Session, token_id: str) -> None:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise not_found("token", token_id)
    row.revoked_at = utcnow()
    record_event(session, row.tenant_id, "token.revoked", row.id, {})
    credentials.changed(session)


class _TokenCache:
    """A small in-process cache of verified tokens, so the hot path skips a query."""

    def __init__(self, max_items: int = 4096) -> None:
        self._items: dict[str, tuple[float, Tenant]] = {}
        self._lock = threading.Lock()
        self._max = max_items

    def get(self, token_hash: str, ttl: float) -> Tenant | None:
        hit = self._items.get(token_hash)
        if hit and time.monotonic() - hit[0] < ttl:
            return hit[1]
        return None

    def put(self, token_hash: str, tenant: Tenant) -> None:
        with self._lock:
            if len(self._items) >= self._max:
                self._items.clear()
            self._items[token_hash] = (time.monotonic(), tenant)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache = _TokenCache()
credentials.register(_cache.clear)


def forget_cached_tokens() -> None:
    """Empty this process's cache of verified tokens. A revocation calls
    ``core.credentials.changed`` instead, which reaches the other API processes too."""
    _cache.clear()


def cached_tenant(token: str, cache_seconds: float) -> Tenant | None:
    """The tenant of a recently verified token, from memory (no query), or None."""
    if cache_seconds <= 0 or not token.startswith((TOKEN_PREFIX, ACCESS_PREFIX)):
        return None
    return _cache.get(_hash(token), cache_seconds)


def authenticate(session: Session, token: str, cache_seconds: float = 5.0) -> Tenant:
    """The tenant and scopes a bearer token stands for (a staff token, or an app's access
    token under a merchant's grant), or 401."""
    if token.startswith(ACCESS_PREFIX):
        return _authenticate_app(session, token, cache_seconds)
    if not token.startswith(TOKEN_PREFIX):
        raise Unauthorized("malformed bearer token")
    digest = _hash(token)
    cached = _cache.get(digest, cache_seconds) if cache_seconds > 0 else None
    if cached is not None:
        return cached
    row = session.execute(
        select(ApiToken.id, ApiToken.scopes, ApiToken.revoked_at, TenantRow.id, TenantRow.slug,
               TenantRow.currency, TenantRow.settings)
        .join(TenantRow, TenantRow.id == ApiToken.tenant_id)
        .where(ApiToken.token_hash == digest)).first()
    if row is None or row[2] is not None:
        raise Unauthorized("unknown or revoked token")
    tenant = Tenant(id=row[3], slug=row[4], scopes=frozenset(row[1].split()), currency=row[5],
                    token_id=row[0], settings=TenantSettings(**(row[6] or {})),
                    rate_plan="staff")
    _cache.put(digest, tenant)
    return tenant


def _authenticate_app(session: Session, token: str, cache_seconds: float) -> Tenant:
    digest = _hash(token)
    cached = _cache.get(digest, cache_seconds) if cache_seconds > 0 else None
    if cached is not None:
        return cached
    row = oauth.authenticate_access_token(session, token)
    if row is None:
        raise Unauthorized("unknown, expired or revoked token")
    plan = session.scalar(select(App.rate_plan).where(App.id == row.app_id))
    if row.tenant_id is None:
        # a client-credentials token: the app's own calls (/v1/apps/me/…), no merchant's data
        tenant = Tenant(id="", slug="", scopes=frozenset(), app_id=row.app_id, token_id=row.id,
                        rate_plan=plan)
    else:
        t = session.get(TenantRow, row.tenant_id)
        if t is None:
            raise Unauthorized("unknown, expired or revoked token")
        tenant = Tenant(id=t.id, slug=t.slug, scopes=frozenset(row.scope.split()),
                        currency=t.currency, token_id=row.id, app_id=row.app_id,
                        settings=TenantSettings(**(t.settings or {})), rate_plan=plan)
    _cache.put(digest, tenant)
    return tenant


def tenant_for_slug(session: Session, slug: str, scopes: str = "*") -> Tenant:
    """A full-access context for a tenant, for the CLI and the worker (trusted callers)."""
    t = get_tenant_by_slug(session, slug)
    return Tenant(id=t.id, slug=t.slug, scopes=parse_scopes(scopes), currency=t.currency,
                  settings=t.settings)


# ---------------------------------------------------------------- staff, apps, grants
# (the public face of haina.platform.staff and haina.platform.apps for other modules)

def create_staff(session: Session, tenant_slug: str, email: str, password: str,
                 role: str = "owner") -> StaffOut:
    return staff.create_staff(session, tenant_slug, email, password, role)


SESSION_COOKIE = staff.SESSION_COOKIE
LOGIN_CSRF_COOKIE = staff.LOGIN_CSRF_COOKIE
STAFF_ROLES = staff.ROLES


def signed_in_staff(session: Session, token: str | None) -> tuple[StaffOut, str] | None:
    """The staff account a browser's session cookie signs in, and the session's CSRF token
    (every form posted in the session carries it), or None."""
    return staff.session_staff(session, token)


def list_staff(session: Session, tenant: Tenant) -> list[StaffOut]:
    """The merchant's staff accounts (owners, staff, read-only; disabled ones too)."""
    return staff.list_staff(session, tenant.id, tenant.slug)


def invite_staff(session: Session, tenant: Tenant, email: str, role: str) -> tuple[StaffOut, str]:
    """A new account of the merchant with a first password made here (handed to the person
    by whoever invites them; they sign in with it). Returns the account and the password."""
    password = secrets.token_urlsafe(12)
    return staff.create_staff(session, tenant.slug, email, password, role), password


def change_staff_role(session: Session, tenant: Tenant, staff_id: str, role: str) -> StaffOut:
    """Another role for one of the merchant's accounts (never the acting account's own)."""
    return staff.change_role(session, tenant.id, tenant.slug, staff_id, role, tenant.staff_id)


def disable_staff(session: Session, tenant: Tenant, staff_id: str,
                  disabled: bool = True) -> StaffOut:
    """Disable (no sign-in, sessions ended) or enable one of the merchant's accounts."""
    return staff.set_disabled(session, tenant.id, tenant.slug, staff_id, disabled,
                              tenant.staff_id)


def reset_staff_password(session: Session, tenant: Tenant,
                         staff_id: str) -> tuple[StaffOut, str]:
    """A new password made for one of the merchant's accounts (never the acting account's
    own), returned once to be handed over; the account's sessions end and a lock is lifted."""
    return staff.reset_password(session, tenant.id, tenant.slug, staff_id, tenant.staff_id)


def change_own_password(session: Session, staff_id: str, session_token: str | None,
                        current: str, new: str) -> StaffOut:
    """A signed-in account's own password changed (the current one checked); the account's
    other sessions end, the session ``session_token`` stays signed in."""
    return staff.change_own_password(session, staff_id, session_token, current, new)


def set_staff_password(session: Session, tenant_slug: str, email: str,
                       password: str) -> StaffOut:
    """The operator's reset (``haina staff set-password``): the merchant's account by email
    gets ``password``, a lock is lifted, its sessions end; a ``staff.password_reset`` event."""
    return staff.set_password(session, email, password, tenant_slug=tenant_slug, event=True)


STAFF_MIN_PASSWORD, STAFF_MAX_PASSWORD = staff.MIN_PASSWORD, staff.MAX_PASSWORD


def purge_staff_sessions(session: Session, now: dt.datetime) -> int:
    """Delete expired sign-in sessions (the worker's housekeeping)."""
    return staff.purge_sessions(session, now)


def demo_staff(session: Session, tenant_slug: str, email: str, password: str) -> StaffOut:
    """The demo's owner account with ``password`` (made, or its password replaced)."""
    try:
        with session.begin_nested():
            return staff.create_staff(session, tenant_slug, email, password, "owner")
    except Conflict:
        return staff.set_password(session, email, password)


register_app = apps.register_app
get_app = apps.get_app
marketplace = apps.marketplace
certify_app = apps.certify
list_grants = apps.list_grants
get_grant = apps.get_grant
uninstall = apps.uninstall
install_app = apps.install
installations = apps.installations
apps_holding = apps.apps_holding
uninstalled_since = apps.uninstalled_since


def set_app_plan(session: Session, app_id: str, plan: str, plans: list[str]) -> AppOut:
    """Put an app on a rate-limit plan (one of the rate_limit_plans setting's keys)."""
    if plan not in plans or plan == "staff":
        raise Invalid(f"plan must be one of {', '.join(p for p in plans if p != 'staff')}",
                      slug="invalid-plan")
    apps.app_row(session, app_id).rate_plan = plan
    credentials.changed(session)
    session.flush()
    return apps.get_app(session, app_id)


def app_owner(session: Session, app_id: str) -> str | None:
    return apps.app_row(session, app_id).owner_tenant_id


def list_apps(session: Session) -> list[AppOut]:
    """Every app, listed or not (the platform operator's view)."""
    ids = session.scalars(select(App.id).order_by(App.created_at)).all()
    return [apps.get_app(session, i) for i in ids]
