"""Campaigns API: create, list, read, pause/resume, re-evaluate, results (in all and day by
day) and the lift charts."""

from __future__ import annotations

from typing import Literal

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from haina.campaigns import service
from haina.campaigns.schemas import (
    CampaignCreate,
    CampaignDailyOut,
    CampaignOut,
    CampaignResultsOut,
    CampaignUpdate,
    EnrolmentOut,
)
from haina.core.context import Tenant
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create
from haina.core.pagination import Page
from haina.platform.auth import require

router = Router(prefix="/v1", tags=["campaigns"])

READ = Depends(require("marketing:read"))
WRITE = Depends(require("marketing:write"))


@router.post("/campaigns", status_code=201, response_model=CampaignOut,
             summary="Create a campaign: a coupon for a segment's consenting members, with a "
                     "holdout (launched at once if its start has come)")
def post_campaign(session: SessionDep, request: Request, body: CampaignCreate,
                  idempotency_key: str | None = IdempotencyKeyHeader,
                  tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_campaign(session, tenant, body))


@router.get("/campaigns", response_model=Page[CampaignOut], summary="Campaigns, newest first")
def get_campaigns(session: SessionDep,
                  status: str | None = Query(None, pattern="^(scheduled|running|paused|ended)$"),
                  limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                  tenant: Tenant = READ) -> Page[CampaignOut]:
    return service.list_campaigns(session, tenant, status=status, limit=limit, cursor=cursor)


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, summary="One campaign")
def get_campaign(session: SessionDep, campaign_id: str, tenant: Tenant = READ) -> CampaignOut:
    return service.get_campaign(session, tenant, campaign_id)


@router.patch("/campaigns/{campaign_id}", response_model=CampaignOut,
              summary="Pause or resume a campaign, rename it, move its end")
def patch_campaign(session: SessionDep, campaign_id: str, body: CampaignUpdate,
                   tenant: Tenant = WRITE) -> CampaignOut:
    return service.update_campaign(session, tenant, campaign_id, body)


@router.post("/campaigns/{campaign_id}/reevaluations", status_code=202,
             response_model=EnrolmentOut,
             summary="Look for new members now: queue a re-evaluation for the worker (or answer "
                     "the enrolment queued or running already); 409 unless the campaign runs")
def post_reevaluation(session: SessionDep, request: Request, campaign_id: str,
                      idempotency_key: str | None = IdempotencyKeyHeader,
                      tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, None,
                  lambda: service.reevaluate_campaign(session, tenant, campaign_id), status=202)


@router.get("/campaigns/{campaign_id}/results", response_model=CampaignResultsOut,
            summary="Treated against holdout: revenue per member, redemptions, cost, and the "
                    "lift with its 95 % interval")
def get_campaign_results(session: SessionDep, campaign_id: str,
                         tenant: Tenant = READ) -> CampaignResultsOut:
    return service.campaign_results(session, tenant, campaign_id)


CHART: dict[int | str, dict] = {200: {"description": "the chart",
                                     "content": {"image/png": {}, "image/svg+xml": {}}}}


def _chart(content: bytes, format: str) -> Response:
    return Response(content, media_type=service.MEDIA_TYPES[format],
                    headers={"Cache-Control": "private, max-age=60"})


@router.get("/campaigns/{campaign_id}/results/plot", response_class=Response,
            summary="The lift as a chart (SVG or PNG)",
            responses=CHART)
def get_campaign_lift_plot(session: SessionDep, campaign_id: str,
                           format: Literal["svg", "png"] = "svg",
                           tenant: Tenant = READ) -> Response:
    return _chart(service.lift_plot(session, tenant, campaign_id, format), format)


@router.get("/campaigns/{campaign_id}/results/daily", response_model=CampaignDailyOut,
            summary="The lift day by day (the merchant's days), cumulative from the launch, "
                    "with its 95 % intervals")
def get_campaign_daily(session: SessionDep, campaign_id: str,
                       tenant: Tenant = READ) -> CampaignDailyOut:
    return service.campaign_daily(session, tenant, campaign_id)


@router.get("/campaigns/{campaign_id}/results/daily/plot", response_class=Response,
            summary="The lift day by day as a chart (SVG or PNG)",
            responses=CHART)
def get_campaign_daily_plot(session: SessionDep, campaign_id: str,
                            format: Literal["svg", "png"] = "svg",
                            tenant: Tenant = READ) -> Response:
    return _chart(service.daily_plot(session, tenant, campaign_id, format), format)
