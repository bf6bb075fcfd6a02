from __future__ import annotations

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime

from haina.core.context import Tenant
from haina.core.http import (
    IdempotencyKeyHeader,
    Router,
    SessionDep,
    create,
    direct,
    json_out,
    loop_unit,
)
from haina.core.pagination import Page
from haina.orders import service
from haina.orders.schemas import (
    OrderCreate,
    OrderOut,
    OrderStatus,
    ShipmentIn,
    TimelineEntry,
)
from haina.platform.auth import require

router = Router(prefix="/v1", tags=["orders"])
READ, WRITE = require("orders:read"), require("orders:write")


@router.post("/orders", status_code=201, response_model=OrderOut,
             summary="Place an order: price it, hold its stock, await payment",
             responses={409: {"description": "out-of-stock (problem+json)"}})
@direct
@loop_unit  # on the event loop on PostgreSQL (core.loop)
def place_order(session: SessionDep, body: OrderCreate, request: Request,
                tenant: Tenant = Depends(WRITE),
                idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.place_order(session, tenant, body))


@router.get("/orders", response_model=Page[OrderOut], summary="List orders (newest first)")
def list_orders(session: SessionDep, status: OrderStatus | None = None,
                member_id: str | None = None, channel: str | None = None,
                created_gte: AwareDatetime | None = None, created_lt: AwareDatetime | None = None,
                limit: int = Query(50, ge=1, le=200),
                cursor: str | None = None, tenant: Tenant = Depends(READ)) -> Page[OrderOut]:
    return service.list_orders(session, tenant, status=status, member_id=member_id,
                               channel=channel, created_gte=created_gte, created_lt=created_lt,
                               limit=limit, cursor=cursor)


@router.get("/orders/{order_id}", response_model=OrderOut)
def get_order(session: SessionDep, order_id: str, tenant: Tenant = Depends(READ)) -> OrderOut:
    return service.get_order(session, tenant, order_id)


@router.get("/orders/{order_id}/timeline", response_model=Page[TimelineEntry],
            summary="What happened to the order, oldest first (all of it, on one page)")
def order_timeline(session: SessionDep, order_id: str,
                   tenant: Tenant = Depends(READ)) -> Page[TimelineEntry]:
    return Page[TimelineEntry](data=service.timeline(session, tenant, order_id), has_more=False)


@router.post("/orders/{order_id}/shipments", status_code=201, response_model=OrderOut,
             summary="Ship some or all of a paid order")
def ship(session: SessionDep, order_id: str, body: ShipmentIn, request: Request,
         tenant: Tenant = Depends(WRITE),
         idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.add_shipment(session, tenant, order_id, body))


@router.post("/orders/{order_id}/complete", response_model=OrderOut)
def complete(session: SessionDep, order_id: str, tenant: Tenant = Depends(WRITE)) -> Response:
    out = service.complete_order(session, tenant, order_id)
    return json_out(out)
