from __future__ import annotations

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from haina.core.context import Tenant
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create, json_out
from haina.core.pagination import Page
from haina.inventory import service
from haina.inventory.schemas import (
    AdjustmentOut,
    LocationCreate,
    LocationOut,
    ReservationOut,
)
from haina.platform.auth import require

router = Router(prefix="/v1", tags=["inventory"])
READ, WRITE = require("inventory:read"), require("inventory:write")


@router.post("/locations", status_code=201, response_model=LocationOut)
def create_location(session: SessionDep, body: LocationCreate, request: Request,
                    tenant: Tenant = Depends(WRITE),
                    idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_location(session, tenant, body))


@router.get("/locations", response_model=Page[LocationOut])
def list_locations(session: SessionDep, limit: int = Query(50, ge=1, le=200),
                   cursor: str | None = None, tenant: Tenant = Depends(READ)) -> Page[LocationOut]:
    return service.list_locations(session, tenant, limit, cursor)


@router.get("/inventory/adjustments", response_model=Page[AdjustmentOut])
def list_adjustments(session: SessionDep, variant_id: str | None = None,
                     limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                     tenant: Tenant = Depends(READ)) -> Page[AdjustmentOut]:
    return service.list_adjustments(session, tenant, variant_id, limit, cursor)


@router.get("/reservations/{reservation_id}", response_model=ReservationOut)
def get_reservation(session: SessionDep, reservation_id: str,
                    tenant: Tenant = Depends(READ)) -> ReservationOut:
    return service.get_reservation(session, tenant, reservation_id)


@router.delete("/reservations/{reservation_id}", response_model=ReservationOut)
def release(session: SessionDep, reservation_id: str, tenant: Tenant = Depends(WRITE)) -> Response:
    out = service.release_hold(session, tenant, reservation_id)
    return json_out(out)
