"""Members API: members and their identities, merges, points, consents and tiers."""

from __future__ import annotations

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from haina.core.context import Tenant
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create
from haina.core.pagination import Page
from haina.members import service
from haina.members.schemas import (
    ConsentRecordOut,
    ConsentsIn,
    IdentityIn,
    IdentityOut,
    MemberCreate,
    MemberOut,
    MemberUpdate,
    MergeIn,
    PointsAdjustmentIn,
    PointsEntryOut,
    PointsKind,
    TierCreate,
    TierOut,
    TierUpdate,
)
from haina.platform.auth import require

router = Router(prefix="/v1", tags=["members"])

READ = Depends(require("members:read"))
WRITE = Depends(require("members:write"))


@router.post("/members", status_code=201, response_model=MemberOut,
             summary="Create a member (its email and phone become identities)")
def post_member(session: SessionDep, request: Request, body: MemberCreate,
                idempotency_key: str | None = IdempotencyKeyHeader,
                tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_member(session, tenant, body))


@router.get("/members", response_model=Page[MemberOut],
            summary="List or search members, or find one by identity")
def get_members(session: SessionDep,
                q: str | None = Query(None, max_length=200, description="prefix of name (any case), email or phone"),
                identity: str | None = Query(None, max_length=240, description="kind:value, e.g. phone:13800000000"),
                tier_id: str | None = None,
                include_merged: bool = Query(False, description="also members merged away"),
                limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                tenant: Tenant = READ) -> Page[MemberOut]:
    return service.list_members(session, tenant, q=q, identity=identity, tier_id=tier_id,
                                include_merged=include_merged, limit=limit, cursor=cursor)


@router.get("/members/{member_id}", response_model=MemberOut, summary="Get a member")
def get_member(session: SessionDep, member_id: str, tenant: Tenant = READ) -> MemberOut:
    return service.get_member(session, tenant, member_id)


@router.patch("/members/{member_id}", response_model=MemberOut,
              summary="Change a member's profile (null clears a field)")
def patch_member(session: SessionDep, member_id: str, body: MemberUpdate,
                 tenant: Tenant = WRITE) -> MemberOut:
    out = service.update_member(session, tenant, member_id, body)
    return out


@router.post("/members/{member_id}/identities", status_code=201, response_model=IdentityOut,
             summary="Attach a channel identity (409 identity-taken names its holder)")
def post_identity(session: SessionDep, request: Request, member_id: str, body: IdentityIn,
                  idempotency_key: str | None = IdempotencyKeyHeader,
                  tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.add_identity(session, tenant, member_id, body))


@router.delete("/members/{member_id}/identities/{identity_id}", status_code=204,
               summary="Detach a channel identity")
def delete_identity(session: SessionDep, member_id: str, identity_id: str,
                    tenant: Tenant = WRITE) -> Response:
    service.remove_identity(session, tenant, member_id, identity_id)
    return Response(status_code=204)


@router.post("/members/{member_id}/merge", response_model=MemberOut,
             summary="Merge another member into this one")
def post_merge(session: SessionDep, request: Request, member_id: str, body: MergeIn,
               idempotency_key: str | None = IdempotencyKeyHeader,
               tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.merge_members(session, tenant, member_id, body.other_id),
                  status=200)


@router.get("/members/{member_id}/points", response_model=Page[PointsEntryOut],
            summary="The member's points ledger, newest first")
def get_points(session: SessionDep, member_id: str, kind: PointsKind | None = None,
               limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
               tenant: Tenant = READ) -> Page[PointsEntryOut]:
    return service.list_points(session, tenant, member_id, kind=kind, limit=limit, cursor=cursor)


@router.post("/members/{member_id}/points/adjustments", status_code=201,
             response_model=PointsEntryOut, summary="Add or take away points by hand")
def post_adjustment(session: SessionDep, request: Request, member_id: str, body: PointsAdjustmentIn,
                    idempotency_key: str | None = IdempotencyKeyHeader,
                    tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.adjust_points(session, tenant, member_id, body))


@router.put("/members/{member_id}/consents", response_model=MemberOut,
            summary="Set consent flags (omitted flags are kept)")
def put_consents(session: SessionDep, member_id: str, body: ConsentsIn,
                 tenant: Tenant = WRITE) -> MemberOut:
    out = service.update_consents(session, tenant, member_id, body)
    return out


@router.get("/members/{member_id}/consent-log", response_model=Page[ConsentRecordOut],
            summary="Every grant and withdrawal of the member's consents, newest first")
def get_consent_log(session: SessionDep, member_id: str,
                    limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                    tenant: Tenant = READ) -> Page[ConsentRecordOut]:
    return service.list_consent_log(session, tenant, member_id, limit=limit, cursor=cursor)


@router.post("/tiers", status_code=201, response_model=TierOut, summary="Create a tier")
def post_tier(session: SessionDep, request: Request, body: TierCreate,
              idempotency_key: str | None = IdempotencyKeyHeader,
              tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_tier(session, tenant, body))


@router.get("/tiers", response_model=Page[TierOut], summary="List tiers")
def get_tiers(session: SessionDep, limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
              tenant: Tenant = READ) -> Page[TierOut]:
    return service.list_tiers(session, tenant, limit=limit, cursor=cursor)


@router.get("/tiers/{tier_id}", response_model=TierOut, summary="Get a tier")
def get_tier(session: SessionDep, tier_id: str, tenant: Tenant = READ) -> TierOut:
    return service.get_tier(session, tenant, tier_id)


@router.patch("/tiers/{tier_id}", response_model=TierOut,
              summary="Change a tier (members are re-placed)")
def patch_tier(session: SessionDep, tier_id: str, body: TierUpdate,
               tenant: Tenant = WRITE) -> TierOut:
    out = service.update_tier(session, tenant, tier_id, body)
    return out
