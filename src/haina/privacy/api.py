"""Privacy API: a member's data requests (export, erasure), their archives, the apps'
acknowledgements, and the merchant's retention periods."""

from __future__ import annotations

from typing import Literal

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from haina.core.context import Tenant
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create
from haina.core.pagination import Page
from haina.platform.auth import app_only, require
from haina.privacy import service
from haina.privacy.schemas import (
    AcknowledgementIn,
    DataRequestIn,
    DataRequestOut,
    RetentionKindOut,
    RetentionPatch,
)

router = Router(prefix="/v1", tags=["privacy"])

READ = Depends(require("members:read"))
WRITE = Depends(require("members:write"))
SETTINGS = Depends(require("settings:read"))
SETTINGS_WRITE = Depends(require("settings:write"))
APP = Depends(app_only())


@router.post("/members/{member_id}/data-requests", status_code=201,
             response_model=DataRequestOut,
             summary="Export or erase a member's personal data (200: the person was already "
                     "erased, the first request's answer)")
def post_data_request(session: SessionDep, request: Request, member_id: str,
                      body: DataRequestIn, idempotency_key: str | None = IdempotencyKeyHeader,
                      tenant: Tenant = WRITE) -> Response:
    made: dict[str, bool] = {}

    def produce() -> DataRequestOut:
        out, made["new"] = service.request_data(session, tenant, member_id, body.kind)
        return out

    return create(request, session, tenant, idempotency_key, body, produce,
                  answer=lambda out: None if made.get("new") else
                  (200, out.model_dump(mode="json")))


@router.get("/members/{member_id}/data-requests", response_model=Page[DataRequestOut],
            summary="The member's data requests (any of its merged ids), newest first")
def get_member_requests(session: SessionDep, member_id: str,
                        limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                        tenant: Tenant = READ) -> Page[DataRequestOut]:
    return service.list_requests(session, tenant, member_id=member_id, limit=limit,
                                 cursor=cursor)


@router.get("/data-requests", response_model=Page[DataRequestOut],
            summary="The merchant's data requests (an app: those addressed to it)")
def get_requests(session: SessionDep,
                 kind: Literal["export", "erase", "merchant_redact"] | None = Query(
                     None, description="only requests of this kind (merchant_redact: the "
                                       "shop's data, asked of an app after its removal)"),
                 overdue: bool = Query(False, description="only requests an app has let pass "
                                                          "their date due unacknowledged"),
                 limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                 tenant: Tenant = READ) -> Page[DataRequestOut]:
    return service.list_requests(session, tenant, kind=kind, overdue=overdue, limit=limit,
                                 cursor=cursor)


@router.get("/data-requests/{data_request_id}", response_model=DataRequestOut,
            summary="A data request, with which apps have and have not acknowledged it")
def get_request(session: SessionDep, data_request_id: str,
                tenant: Tenant = READ) -> DataRequestOut:
    return service.get_request(session, tenant, data_request_id)


@router.get("/data-requests/{data_request_id}/archive", response_class=Response,
            responses={200: {"content": {"application/zip": {}},
                             "description": "the export (data.json and one CSV per table)"}},
            summary="Download an export's archive (410 once expired); the download is recorded")
def get_archive(session: SessionDep, data_request_id: str,
                tenant: Tenant = WRITE) -> Response:
    content, name = service.download_archive(session, tenant, data_request_id)
    return Response(content, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})


@router.post("/data-requests/{data_request_id}/acknowledgements",
             response_model=DataRequestOut, status_code=200,
             summary="An app confirms it carried out the request (an app's token)")
def post_acknowledgement(session: SessionDep, data_request_id: str,
                         tenant: Tenant = READ) -> DataRequestOut:
    app_id = service.check_app_credential(tenant)
    return service.acknowledge(session, app_id, data_request_id, tenant_id=tenant.id)


@router.get("/apps/me/data-requests", response_model=Page[DataRequestOut],
            summary="Requests addressed to the calling app across merchants (its own token)")
def get_my_requests(session: SessionDep,
                    pending: bool = Query(True, description="only those not acknowledged"),
                    limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                    app: Tenant = APP) -> Page[DataRequestOut]:
    assert app.app_id is not None
    return service.requests_for_app(session, app.app_id, pending_only=pending, limit=limit,
                                    cursor=cursor)


@router.post("/apps/me/acknowledgements", response_model=DataRequestOut, status_code=200,
             summary="The calling app confirms a request of any merchant (its own token; "
                     "after an uninstall the only way)")
def post_my_acknowledgement(session: SessionDep, body: AcknowledgementIn,
                            app: Tenant = APP) -> DataRequestOut:
    assert app.app_id is not None
    return service.acknowledge(session, app.app_id, body.data_request_id)


@router.get("/retention", response_model=list[RetentionKindOut],
            summary="The merchant's retention periods (set them in PUT /v1/tenant/settings)")
def get_retention(session: SessionDep, tenant: Tenant = SETTINGS) -> list[RetentionKindOut]:
    return service.retention(session, tenant)


@router.patch("/retention", response_model=list[RetentionKindOut],
              summary="Change some retention periods (the others are kept)")
def patch_retention(session: SessionDep, body: RetentionPatch,
                    tenant: Tenant = SETTINGS_WRITE) -> list[RetentionKindOut]:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return service.set_retention(session, tenant, changes)
