"""Service providers' apps, the marketplace, certifications, and merchants' grants.

An app is an OAuth 2 client that many merchants may install. Installing goes through the
consent screen (haina.platform.web) and leaves one grant per (merchant, app) with the scopes
the merchant consented to; uninstalling revokes every token issued under the grant at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from haina.core import credentials
from haina.core.context import Tenant, parse_scopes
from haina.core.db import utcnow
from haina.core.errors import Invalid, InvalidState, not_found
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.pagination import Page, paginate
from haina.platform.models import App, AppCertification, AppGrant, OAuthToken, TenantRow
from haina.platform.schemas import (
    APP_CATEGORIES,
    AppCreated,
    AppIn,
    AppOut,
    CertificationOut,
    GrantOut,
    InstallationOut,
)

SECRET_PREFIX = "hnsec_"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def check_scopes(scopes: list[str] | str) -> list[str]:
    """Validated scopes an app may ask for: named ones only, never "*" (all of a merchant)."""
    text = scopes if isinstance(scopes, str) else " ".join(scopes)
    try:
        parsed = parse_scopes(text)
    except ValueError as exc:
        raise Invalid(str(exc), slug="invalid-scope") from None
    if "*" in parsed:
        raise Invalid("an app asks for named scopes (\"orders:read members:read\"), not \"*\"",
                      slug="invalid-scope")
    return sorted(parsed)


def _check_redirect_uri(uri: str) -> str:
    parts = urlsplit(uri)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment \
            or (parts.scheme == "http" and not loopback) or len(uri) > 2000:
        raise Invalid(f"redirect URI {uri!r} must be an absolute https URI without a fragment "
                      "(http only on a loopback host, for native apps: RFC 8252)",
                      slug="invalid-redirect-uri")
    return uri


def _certifications(session: Session, app_ids: list[str]) -> dict[str, list[CertificationOut]]:
    found: dict[str, list[CertificationOut]] = {i: [] for i in app_ids}
    if app_ids:
        for c in session.scalars(select(AppCertification).where(
                AppCertification.app_id.in_(app_ids), AppCertification.revoked_at.is_(None))
                .order_by(AppCertification.granted_at)):
            found[c.app_id].append(CertificationOut(category=c.category, evidence=c.evidence,
                                                    granted_by=c.granted_by,
                                                    granted_at=c.granted_at))
    return found


def _out(row: App, certifications: list[CertificationOut]) -> AppOut:
    return AppOut(id=row.id, client_id=row.id, name=row.name, description=row.description,
                  category=row.category, redirect_uris=list(row.redirect_uris),
                  scopes=row.scopes.split(), webhook_url=row.webhook_url, pricing=row.pricing,
                  listed=row.listed, rate_plan=row.rate_plan or "standard",
                  certified=any(c.category == row.category for c in certifications),
                  certifications=certifications, created_at=row.created_at)


def register_app(session: Session, body: AppIn, owner_tenant_id: str | None = None) -> AppCreated:
    if body.category not in APP_CATEGORIES:
        raise Invalid(f"category must be one of {', '.join(APP_CATEGORIES)}",
                      slug="invalid-category")
    uris = [_check_redirect_uri(u) for u in body.redirect_uris]
    scopes = check_scopes(body.scopes)
    if body.webhook_url is not None:
        _check_redirect_uri(body.webhook_url)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = App(id=new_id("app"), secret_hash=_digest(secret), name=body.name.strip(),
              description=body.description, category=body.category, redirect_uris=uris,
              scopes=" ".join(scopes), webhook_url=body.webhook_url, pricing=body.pricing,
              listed=body.listed, owner_tenant_id=owner_tenant_id, rate_plan="standard",
              created_at=utcnow())
    session.add(row)
    session.flush()
    out = _out(row, [])
    return AppCreated(**out.model_dump(), client_secret=secret)


def app_row(session: Session, app_id: str) -> App:
    row = session.get(App, app_id) if len(app_id) <= 40 else None
    if row is None:
        raise not_found("app", app_id)
    return row


def get_app(session: Session, app_id: str) -> AppOut:
    row = app_row(session, app_id)
    return _out(row, _certifications(session, [row.id])[row.id])


def check_client_secret(row: App, secret: str) -> bool:
    return hmac.compare_digest(row.secret_hash, _digest(secret))


def marketplace(session: Session, *, q: str | None = None, category: str | None = None,
                certified: bool | None = None, limit: int = 50,
                cursor: str | None = None) -> Page[AppOut]:
    """Listed apps, newest first; ``q`` searches name and description."""
    if category is not None and category not in APP_CATEGORIES:
        raise Invalid(f"category must be one of {', '.join(APP_CATEGORIES)}",
                      slug="invalid-category")
    stmt = select(App).where(App.listed.is_(True))
    if q:
        like = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        from sqlalchemy import func
        stmt = stmt.where(or_(func.lower(App.name).like(like, escape="\\"),
                              func.lower(App.description).like(like, escape="\\")))
    if category:
        stmt = stmt.where(App.category == category)
    if certified is not None:
        badge = select(AppCertification.id).where(
            AppCertification.app_id == App.id, AppCertification.category == App.category,
            AppCertification.revoked_at.is_(None)).exists()
        stmt = stmt.where(badge if certified else ~badge)
    page = paginate(session, stmt, App.id, limit=limit, cursor=cursor, convert=lambda r: r,
                    kind="app")
    certs = _certifications(session, [r.id for r in page.data])
    return Page[AppOut](data=[_out(r, certs[r.id]) for r in page.data], has_more=page.has_more,
                        next_cursor=page.next_cursor)


def certify(session: Session, app_id: str, category: str, evidence: str,
            granted_by: str) -> AppOut:
    """Platform staff certify an app for a category, recording the evidence."""
    row = app_row(session, app_id)
    if category not in APP_CATEGORIES:
        raise Invalid(f"category must be one of {', '.join(APP_CATEGORIES)}",
                      slug="invalid-category")
    if not evidence.strip():
        raise Invalid("certifying needs the evidence it rests on", slug="evidence-required")
    session.add(AppCertification(id=new_id("certification"), app_id=row.id, category=category,
                                 evidence=evidence.strip()[:2000], granted_by=granted_by[:200],
                                 granted_at=utcnow()))
    session.flush()
    return get_app(session, app_id)


# ---------------------------------------------------------------- grants (installations)

def _grant_out(row: AppGrant, app_name: str) -> GrantOut:
    return GrantOut(id=row.id, app_id=row.app_id, app_name=app_name, scopes=row.scopes.split(),
                    status=row.status, installed_at=row.installed_at,
                    uninstalled_at=row.uninstalled_at)


def install(session: Session, tenant_id: str, app_id: str, scopes: list[str],
            staff_id: str | None) -> GrantOut:
    """Record a merchant's consent: a new grant, or the existing one widened to ``scopes``
    (an app asking again for more keeps what it had) and re-activated."""
    app = app_row(session, app_id)
    allowed = set(app.scopes.split())
    if not set(scopes) <= allowed:
        raise Invalid("the app did not register the scopes "
                      f"{' '.join(sorted(set(scopes) - allowed))}", slug="invalid-scope")
    now = utcnow()
    row = session.scalar(select(AppGrant).where(AppGrant.tenant_id == tenant_id,
                                                AppGrant.app_id == app_id).with_for_update())
    if row is None:
        row = AppGrant(id=new_id("app_grant"), tenant_id=tenant_id, app_id=app_id,
                       scopes=" ".join(sorted(scopes)), status="installed",
                       installed_by=staff_id, installed_at=now)
        session.add(row)
        record_event(session, tenant_id, "app.installed", row.id,
                     {"app_id": app_id, "scopes": sorted(scopes)})
    else:
        kept = set(row.scopes.split()) if row.status == "installed" else set()
        row.scopes = " ".join(sorted(kept | set(scopes)))
        if row.status != "installed":
            row.status, row.installed_at, row.uninstalled_at = "installed", now, None
            row.installed_by = staff_id
            record_event(session, tenant_id, "app.installed", row.id,
                         {"app_id": app_id, "scopes": row.scopes.split()})
        else:
            record_event(session, tenant_id, "app.scopes_changed", row.id,
                         {"app_id": app_id, "scopes": row.scopes.split()})
    session.flush()
    return _grant_out(row, app.name)


def list_grants(session: Session, tenant: Tenant, *, status: str | None = None,
                limit: int = 50, cursor: str | None = None) -> Page[GrantOut]:
    stmt = select(AppGrant).where(AppGrant.tenant_id == tenant.id)
    if status:
        stmt = stmt.where(AppGrant.status == status)
    page = paginate(session, stmt, AppGrant.id, limit=limit, cursor=cursor, convert=lambda r: r,
                    kind="app_grant")
    names = dict(session.execute(select(App.id, App.name).where(
        App.id.in_([g.app_id for g in page.data]))).all())
    return Page[GrantOut](data=[_grant_out(g, names.get(g.app_id, "")) for g in page.data],
                          has_more=page.has_more, next_cursor=page.next_cursor)


def get_grant(session: Session, tenant: Tenant, grant_id: str) -> GrantOut:
    row = session.scalar(select(AppGrant).where(AppGrant.tenant_id == tenant.id,
                                                AppGrant.id == grant_id))
    if row is None:
        raise not_found("app grant", grant_id)
    return _grant_out(row, app_row(session, row.app_id).name)


def uninstall(session: Session, tenant: Tenant, grant_id: str) -> GrantOut:
    """Uninstall: the grant ends and every token issued under it is revoked at once."""
    row = session.scalar(select(AppGrant).where(AppGrant.tenant_id == tenant.id,
                                                AppGrant.id == grant_id).with_for_update())
    if row is None:
        raise not_found("app grant", grant_id)
    if row.status != "installed":
        raise InvalidState(f"app grant {grant_id!r} is already uninstalled")
    now = utcnow()
    row.status, row.uninstalled_at = "uninstalled", now
    session.execute(update(OAuthToken).where(OAuthToken.grant_id == row.id,
                                             OAuthToken.revoked_at.is_(None))
                    .values(revoked_at=now))
    record_event(session, tenant.id, "app.uninstalled", row.id, {"app_id": row.app_id})
    credentials.changed(session)
    session.flush()
    return _grant_out(row, app_row(session, row.app_id).name)


def installations(session: Session, app_id: str) -> list[InstallationOut]:
    """The merchants that have ``app_id`` installed (for the app's own calls)."""
    rows = session.execute(
        select(AppGrant, TenantRow.slug, TenantRow.name)
        .join(TenantRow, TenantRow.id == AppGrant.tenant_id)
        .where(AppGrant.app_id == app_id, AppGrant.status == "installed")
        .order_by(AppGrant.installed_at)).all()
    return [InstallationOut(tenant_id=g.tenant_id, tenant_slug=slug, tenant_name=name,
                            scopes=g.scopes.split(), installed_at=g.installed_at)
            for g, slug, name in rows]


def apps_holding(session: Session, tenant_id: str, component: str) -> list[str]:
    """The apps installed at the merchant whose grant covers ``component`` (any action):
    those a privacy request about that component must reach."""
    out = []
    for app_id, scopes in session.execute(
            select(AppGrant.app_id, AppGrant.scopes).where(AppGrant.tenant_id == tenant_id,
                                                           AppGrant.status == "installed")
            .order_by(AppGrant.app_id)):
        granted = set(scopes.split())
        if "*" in granted or any(s.split(":", 1)[0] == component for s in granted):
            out.append(app_id)
    return out


def uninstalled_since(session: Session, before: dt.datetime) -> list[tuple[str, str, dt.datetime]]:
    """(merchant, app, when) of every grant uninstalled before ``before`` and not
    reinstalled since, across merchants, oldest first."""
    return [(g.tenant_id, g.app_id, g.uninstalled_at or before) for g in session.scalars(
        select(AppGrant).where(AppGrant.status == "uninstalled",
                               AppGrant.uninstalled_at < before)
        .order_by(AppGrant.uninstalled_at))]
