"""``/v1/webhook-endpoints`` and ``/v1/webhook-deliveries``: endpoints, their attempts, replay."""

from __future__ import annotations

import datetime as dt

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from haina.core.context import Tenant
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create
from haina.core.pagination import Page
from haina.platform.auth import require
from haina.webhooks import service
from haina.webhooks.schemas import (
    EVENT_TYPES,
    AttemptOut,
    DeliveryOut,
    DeliveryStatus,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointUpdate,
    ReplayIn,
    ReplayOut,
    RotateIn,
    SecretOut,
)

router = Router(prefix="/v1", tags=["webhooks"])
READ, WRITE = require("webhooks:read"), require("webhooks:write")


@router.post("/webhook-endpoints", status_code=201, response_model=EndpointCreated,
             summary="Add an endpoint: its signing secret is in this answer only")
def create_endpoint(session: SessionDep, body: EndpointIn, request: Request,
                    tenant: Tenant = Depends(WRITE),
                    idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_endpoint(session, tenant, body))


@router.get("/webhook-endpoints", response_model=Page[EndpointOut],
            summary="List endpoints (newest first; an app's credential sees its own)")
def list_endpoints(session: SessionDep, limit: int = Query(50, ge=1, le=200),
                   cursor: str | None = None,
                   tenant: Tenant = Depends(READ)) -> Page[EndpointOut]:
    return service.list_endpoints(session, tenant, limit=limit, cursor=cursor)


@router.get("/webhook-event-types", response_model=list[str],
            summary="The event types an endpoint may subscribe to")
def event_types(tenant: Tenant = Depends(READ)) -> list[str]:
    return list(EVENT_TYPES)


@router.get("/webhook-endpoints/{endpoint_id}", response_model=EndpointOut)
def get_endpoint(session: SessionDep, endpoint_id: str,
                 tenant: Tenant = Depends(READ)) -> EndpointOut:
    return service.get_endpoint(session, tenant, endpoint_id)


@router.patch("/webhook-endpoints/{endpoint_id}", response_model=EndpointOut,
              summary="Change the URL, the event types, or disable / re-enable")
def update_endpoint(session: SessionDep, endpoint_id: str, body: EndpointUpdate,
                    tenant: Tenant = Depends(WRITE)) -> EndpointOut:
    return service.update_endpoint(session, tenant, endpoint_id, body)


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204,
               summary="Delete an endpoint with its deliveries and attempts")
def delete_endpoint(session: SessionDep, endpoint_id: str,
                    tenant: Tenant = Depends(WRITE)) -> Response:
    service.delete_endpoint(session, tenant, endpoint_id)
    return Response(status_code=204)


@router.post("/webhook-endpoints/{endpoint_id}/rotate-secret", response_model=SecretOut,
             summary="A new signing secret (shown once); the old one signs beside it for "
                     "grace_hours (24 by default)")
def rotate_secret(session: SessionDep, endpoint_id: str, body: RotateIn | None = None,
                  tenant: Tenant = Depends(WRITE)) -> SecretOut:
    grace = dt.timedelta(hours=(body or RotateIn()).grace_hours)
    return service.rotate_secret(session, tenant, endpoint_id, grace)


@router.get("/webhook-endpoints/{endpoint_id}/attempts", response_model=Page[AttemptOut],
            summary="Every request made to the endpoint (newest first)")
def endpoint_attempts(session: SessionDep, endpoint_id: str,
                      limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                      tenant: Tenant = Depends(READ)) -> Page[AttemptOut]:
    return service.list_attempts(session, tenant, endpoint_id=endpoint_id, limit=limit,
                                 cursor=cursor)


@router.post("/webhook-endpoints/{endpoint_id}/replay", response_model=ReplayOut,
             summary="Send again every event since a time (or only the failed messages)")
def replay_endpoint(session: SessionDep, endpoint_id: str, body: ReplayIn,
                    tenant: Tenant = Depends(WRITE)) -> ReplayOut:
    return service.replay_endpoint(session, tenant, endpoint_id, body.since, body.only_failed)


@router.get("/webhook-deliveries", response_model=Page[DeliveryOut],
            summary="Messages: one per endpoint and event (newest first)")
def list_deliveries(session: SessionDep, status: DeliveryStatus | None = None,
                    endpoint_id: str | None = Query(None, max_length=64),
                    event_id: str | None = Query(None, max_length=64),
                    limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                    tenant: Tenant = Depends(READ)) -> Page[DeliveryOut]:
    return service.list_deliveries(session, tenant, status=status, endpoint_id=endpoint_id,
                                   event_id=event_id, limit=limit, cursor=cursor)


@router.get("/webhook-deliveries/{delivery_id}", response_model=DeliveryOut)
def get_delivery(session: SessionDep, delivery_id: str,
                 tenant: Tenant = Depends(READ)) -> DeliveryOut:
    return service.get_delivery(session, tenant, delivery_id)


@router.get("/webhook-deliveries/{delivery_id}/attempts", response_model=Page[AttemptOut])
def delivery_attempts(session: SessionDep, delivery_id: str,
                      limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                      tenant: Tenant = Depends(READ)) -> Page[AttemptOut]:
    return service.list_attempts(session, tenant, delivery_id=delivery_id, limit=limit,
                                 cursor=cursor)


@router.post("/webhook-deliveries/{delivery_id}/replay", response_model=DeliveryOut,
             summary="Send one message again now, with a fresh retry schedule")
def replay_delivery(session: SessionDep, delivery_id: str,
                    tenant: Tenant = Depends(WRITE)) -> DeliveryOut:
    return service.replay_delivery(session, tenant, delivery_id)
