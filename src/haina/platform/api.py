from __future__ import annotations

from fastapi import Depends, Query
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, ValidationError

from haina.core.context import Tenant
from haina.core.events import EventOut, list_events
from haina.core.http import Router, SessionDep
from haina.core.pagination import Page
from haina.platform import service
from haina.platform.auth import require
from haina.platform.schemas import TenantOut, TenantSettingsIn, TenantSettingsPatch

router = Router(prefix="/v1", tags=["platform"])


@router.get("/events", response_model=Page[EventOut], summary="List domain events (the outbox)")
def get_events(session: SessionDep,
               type: str | None = Query(None, description="exact type, or a prefix such as order.*"),
               subject_id: str | None = None, created_gte: AwareDatetime | None = None,
               created_lt: AwareDatetime | None = None, limit: int = Query(50, ge=1, le=200),
               cursor: str | None = None,
               tenant: Tenant = Depends(require("events:read"))) -> Page[EventOut]:
    return list_events(session, tenant, type=type, subject_id=subject_id,
                       created_gte=created_gte, created_lt=created_lt, limit=limit, cursor=cursor)


@router.get("/audit-events", response_model=Page[EventOut],
            summary="The audit trail: changes made by a credential, newest first, with who")
def get_audit_events(session: SessionDep,
                     actor_type: str | None = Query(None, pattern="^(app|staff|staff_token|buyer|storefront_key)$"),
                     actor_id: str | None = Query(None, max_length=40,
                                                  description="an app, staff or token id"),
                     type: str | None = Query(None, description="exact type, or a prefix.*"),
                     created_gte: AwareDatetime | None = None,
                     created_lt: AwareDatetime | None = None,
                     limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                     tenant: Tenant = Depends(require("events:read"))) -> Page[EventOut]:
    return list_events(session, tenant, type=type, created_gte=created_gte,
                       created_lt=created_lt, limit=limit, cursor=cursor, audited=True,
                       actor_type=actor_type, actor_id=actor_id)


@router.get("/tenant", response_model=TenantOut, summary="The merchant this credential acts for")
def get_tenant(session: SessionDep, tenant: Tenant = Depends(require("settings:read"))) -> TenantOut:
    return service.get_tenant(session, tenant.id)


@router.patch("/tenant/settings", response_model=TenantOut,
              summary="Change some of the merchant's settings (a JSON merge patch)")
def patch_settings(session: SessionDep,
                   body: TenantSettingsPatch,  # type: ignore[valid-type]
                   tenant: Tenant = Depends(require("settings:write"))) -> TenantOut:
    """RFC 7396: the fields given replace the stored ones, those left out keep their value,
    ``null`` puts a field back to its default; ``retention`` merges field by field. The result
    is checked as a whole, as PUT checks it (422 naming the field)."""
    patch = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
    try:
        return service.patch_tenant_settings(session, tenant, patch)
    except ValidationError as exc:  # the merged whole: said as a 422 on the body
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])}
                                      for e in exc.errors()]) from None


@router.put("/tenant/settings", response_model=TenantOut,
            summary="Replace the merchant's settings (fields left out go back to defaults)")
def put_settings(session: SessionDep, body: TenantSettingsIn,
                 tenant: Tenant = Depends(require("settings:write"))) -> TenantOut:
    out = service.update_tenant_settings(session, tenant, body)
    return out
