"""Apps API: a provider registers apps, merchants browse the marketplace and manage the apps
they installed, and an app (with its own client-credentials token) sees its installations."""

from __future__ import annotations

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from haina.core.context import Tenant
from haina.core.errors import not_found
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create
from haina.core.pagination import Page
from haina.platform import service
from haina.platform.auth import app_only, require
from haina.platform.schemas import AppCreated, AppIn, AppOut, GrantOut, InstallationOut

router = Router(prefix="/v1", tags=["apps"])

READ = Depends(require("apps:read"))
WRITE = Depends(require("apps:write"))
APP = Depends(app_only())


@router.post("/apps", status_code=201, response_model=AppCreated,
             summary="Register an app (the client secret is in this answer only)")
def post_app(session: SessionDep, request: Request, body: AppIn,
             idempotency_key: str | None = IdempotencyKeyHeader,
             tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.register_app(session, body, owner_tenant_id=tenant.id))


@router.get("/apps/me", response_model=AppOut,
            summary="The calling app (an app's own client-credentials token)")
def get_my_app(session: SessionDep, app: Tenant = APP) -> AppOut:
    assert app.app_id is not None
    return service.get_app(session, app.app_id)


@router.get("/apps/me/installations", response_model=list[InstallationOut],
            summary="The merchants that installed the calling app")
def get_my_installations(session: SessionDep, app: Tenant = APP) -> list[InstallationOut]:
    assert app.app_id is not None
    return service.installations(session, app.app_id)


@router.get("/apps/{app_id}", response_model=AppOut,
            summary="An app: listed in the marketplace, or registered by this merchant")
def get_app(session: SessionDep, app_id: str, tenant: Tenant = READ) -> AppOut:
    app = service.get_app(session, app_id)
    if not app.listed and service.app_owner(session, app_id) != tenant.id:
        raise not_found("app", app_id)
    return app


@router.get("/marketplace/apps", response_model=Page[AppOut],
            summary="Listed apps: search by name or description, filter by category")
def get_marketplace(session: SessionDep,
                    q: str | None = Query(None, max_length=100, description="words to look for"),
                    category: str | None = Query(None, description="one of the app categories"),
                    certified: bool | None = Query(None, description="certified apps only"),
                    limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                    tenant: Tenant = READ) -> Page[AppOut]:
    return service.marketplace(session, q=q, category=category, certified=certified,
                               limit=limit, cursor=cursor)


@router.get("/app-grants", response_model=Page[GrantOut],
            summary="The apps this merchant installed (and uninstalled)")
def get_grants(session: SessionDep,
               status: str | None = Query(None, pattern="^(installed|uninstalled)$"),
               limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
               tenant: Tenant = READ) -> Page[GrantOut]:
    return service.list_grants(session, tenant, status=status, limit=limit, cursor=cursor)


@router.get("/app-grants/{grant_id}", response_model=GrantOut, summary="One installed app")
def get_grant(session: SessionDep, grant_id: str, tenant: Tenant = READ) -> GrantOut:
    return service.get_grant(session, tenant, grant_id)
