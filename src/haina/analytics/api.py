"""Analytics API: refresh jobs, member scores, RFM segments and lifecycle stages, saved
segments as member lists, cohorts and charts. Mounted only when the ``analytics`` extra is
installed (``haina.api``)."""

from __future__ import annotations

import importlib.util
from typing import Literal

from fastapi import Body, Depends, Query, Request
from fastapi.responses import Response

from haina.analytics import service
from haina.analytics.schemas import (
    CohortsOut,
    JobOut,
    MemberScoresOut,
    PlotName,
    RefreshIn,
    RunOut,
    SavedSegmentOut,
    SegmentCreate,
    SegmentMemberOut,
    SegmentsOut,
)
from haina.core.context import Tenant
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create
from haina.core.pagination import Page
from haina.platform.auth import require

# The routes need the [analytics] extra; without it, haina.api leaves this router out.
for _module in ("numpy", "scipy", "pandas", "pyarrow", "duckdb", "ibis", "matplotlib"):
    if importlib.util.find_spec(_module) is None:
        raise ImportError(f"the analytics API needs the [analytics] extra ({_module} is missing)",
                          name=_module)

router = Router(prefix="/v1/analytics", tags=["analytics"])

READ = Depends(require("analytics:read"))
WRITE = Depends(require("analytics:write"))
OPTIONAL_BODY = Body(None, description="what to fit; every field has a default")


@router.post("/refresh", status_code=202, response_model=JobOut,
             summary="Queue a refresh of the scores (the worker runs it; 409 while one is queued "
                     "or running)")
def post_refresh(session: SessionDep, request: Request, body: RefreshIn | None = OPTIONAL_BODY,
                 idempotency_key: str | None = IdempotencyKeyHeader,
                 tenant: Tenant = WRITE) -> Response:
    params = body or RefreshIn()
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.start_refresh(session, tenant, params), status=202)


@router.get("/jobs/{job_id}", response_model=JobOut, summary="A refresh job and its progress")
def get_job(session: SessionDep, job_id: str, tenant: Tenant = READ) -> JobOut:
    return service.get_job(session, tenant, job_id)


@router.get("/jobs", response_model=Page[JobOut], summary="Refresh jobs, newest first")
def get_jobs(session: SessionDep, limit: int = Query(20, ge=1, le=200), cursor: str | None = None,
             tenant: Tenant = READ) -> Page[JobOut]:
    return service.list_jobs(session, tenant, limit=limit, cursor=cursor)


@router.get("/runs", response_model=Page[RunOut],
            summary="Runs (fitted models, holdout checks), newest first: the first is current")
def get_runs(session: SessionDep, limit: int = Query(20, ge=1, le=200), cursor: str | None = None,
             tenant: Tenant = READ) -> Page[RunOut]:
    return service.list_runs(session, tenant, limit=limit, cursor=cursor)


@router.get("/runs/{run_id}", response_model=RunOut, summary="One run")
def get_run(session: SessionDep, run_id: str, tenant: Tenant = READ) -> RunOut:
    return service.get_run(session, tenant, run_id)


@router.get("/members/{member_id}", response_model=MemberScoresOut,
            summary="A member's scores: P(alive), expected purchases, CLV, RFM, stage")
def get_member_scores(session: SessionDep, member_id: str,
                      tenant: Tenant = READ) -> MemberScoresOut:
    return service.member_scores(session, tenant, member_id)


@router.get("/segments", response_model=SegmentsOut,
            summary="Members per RFM segment and lifecycle stage, and the saved segments")
def get_segments(session: SessionDep, tenant: Tenant = READ) -> SegmentsOut:
    return service.segments_overview(session, tenant)


@router.post("/segments", status_code=201, response_model=SavedSegmentOut,
             summary="Save a segment: a named rule over the scores")
def post_segment(session: SessionDep, request: Request, body: SegmentCreate,
                 idempotency_key: str | None = IdempotencyKeyHeader,
                 tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_segment(session, tenant, body))


@router.get("/segments/{segment_id}", response_model=SavedSegmentOut,
            summary="A saved segment and how many members match it")
def get_segment(session: SessionDep, segment_id: str, tenant: Tenant = READ) -> SavedSegmentOut:
    return service.get_segment(session, tenant, segment_id)


@router.delete("/segments/{segment_id}", status_code=204, summary="Delete a saved segment")
def delete_segment(session: SessionDep, segment_id: str, tenant: Tenant = WRITE) -> Response:
    service.delete_segment(session, tenant, segment_id)
    return Response(status_code=204)


@router.get("/segments/{segment_id}/members", response_model=Page[SegmentMemberOut],
            summary="The members a saved segment selects, with their key scores")
def get_segment_members(session: SessionDep, segment_id: str, limit: int = Query(100, ge=1, le=200),
                        cursor: str | None = None, tenant: Tenant = READ) -> Page[SegmentMemberOut]:
    return service.segment_members(session, tenant, segment_id, limit=limit, cursor=cursor)


@router.get("/cohorts", response_model=CohortsOut,
            summary="Monthly acquisition cohorts: retention and revenue by month since")
def get_cohorts(session: SessionDep, tenant: Tenant = READ) -> CohortsOut:
    return service.cohorts(session, tenant)


@router.get("/plots/{name}.{fmt}", response_class=Response,
            summary="A chart of the latest run: cohort heatmap, P(alive), CLV, holdout fit",
            responses={200: {"description": "the chart",
                             "content": {"image/png": {}, "image/svg+xml": {}}}})
def get_plot(session: SessionDep, name: PlotName, fmt: Literal["png", "svg"],
             tenant: Tenant = READ) -> Response:
    content = service.plot(session, tenant, name, fmt)
    return Response(content, media_type=service.MEDIA_TYPES[fmt],
                    headers={"Cache-Control": "private, max-age=60"})
