from __future__ import annotations

import datetime as dt

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from haina.core.context import Tenant
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create, json_out
from haina.core.pagination import Page
from haina.orders import service
from haina.orders.schemas import (
    CancelIn,
    CartCreate,
    CartOut,
    CheckoutIn,
    LineIn,
    OrderCreate,
    OrderOut,
    ShipmentIn,
    TimelineEntry,
)
from haina.platform.auth import require

router = Router(prefix="/v1", tags=["orders"])
READ, WRITE = require("orders:read"), require("orders:write")


@router.post("/orders", status_code=201, response_model=OrderOut,
             summary="Place an order: price it, hold its stock, await payment",
             responses={409: {"description": "out-of-stock (problem+json)"}})
def place_order(session: SessionDep, body: OrderCreate, request: Request,
                tenant: Tenant = Depends(WRITE),
                idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.place_order(session, tenant, body))


@router.get("/orders", response_model=Page[OrderOut], summary="List orders (newest first)")
def list_orders(session: SessionDep, status: str | None = None, member_id: str | None = None,
                channel: str | None = None, created_gte: dt.datetime | None = None,
                created_lt: dt.datetime | None = None, limit: int = Query(50, ge=1, le=200),
                cursor: str | None = None, tenant: Tenant = Depends(READ)) -> Page[OrderOut]:
    return service.list_orders(session, tenant, status=status, member_id=member_id,
                               channel=channel, created_gte=created_gte, created_lt=created_lt,
                               limit=limit, cursor=cursor)


@router.get("/orders/{order_id}", response_model=OrderOut)
def get_order(session: SessionDep, order_id: str, tenant: Tenant = Depends(READ)) -> OrderOut:
    return service.get_order(session, tenant, order_id)


@router.get("/orders/{order_id}/timeline", response_model=list[TimelineEntry],
            summary="What happened to the order, oldest first")
def order_timeline(session: SessionDep, order_id: str,
                   tenant: Tenant = Depends(READ)) -> list[TimelineEntry]:
    return service.timeline(session, tenant, order_id)


@router.post("/orders/{order_id}/cancel", response_model=OrderOut,
             summary="Cancel (releases stock; refunds a paid order in full)")
def cancel_order(session: SessionDep, order_id: str, request: Request, body: CancelIn | None = None,
                 tenant: Tenant = Depends(WRITE),
                 idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    reason = (body or CancelIn()).reason
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.cancel_order(session, tenant, order_id, reason), status=200)


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


@router.post("/carts", status_code=201, response_model=CartOut)
def create_cart(session: SessionDep, body: CartCreate, request: Request,
                tenant: Tenant = Depends(WRITE),
                idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_cart(session, tenant, body))


@router.get("/carts/{cart_id}", response_model=CartOut, summary="A cart, priced now")
def get_cart(session: SessionDep, cart_id: str, tenant: Tenant = Depends(READ)) -> CartOut:
    return service.get_cart(session, tenant, cart_id)


@router.post("/carts/{cart_id}/lines", response_model=CartOut, summary="Add units of a SKU")
def add_line(session: SessionDep, cart_id: str, body: LineIn,
             tenant: Tenant = Depends(WRITE)) -> Response:
    out = service.add_cart_line(session, tenant, cart_id, body)
    return json_out(out)


class QuantityIn(BaseModel):
    quantity: int = Field(ge=0, le=10_000, description="0 removes the line")


@router.put("/carts/{cart_id}/lines/{sku}", response_model=CartOut, summary="Set a line's quantity")
def set_line(session: SessionDep, cart_id: str, sku: str, body: QuantityIn,
             tenant: Tenant = Depends(WRITE)) -> Response:
    out = service.set_cart_line(session, tenant, cart_id, sku, body.quantity)
    return json_out(out)


@router.post("/carts/{cart_id}/checkout", status_code=201, response_model=OrderOut,
             summary="Turn the cart into an order")
def checkout(session: SessionDep, cart_id: str, body: CheckoutIn, request: Request,
             tenant: Tenant = Depends(WRITE),
             idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.checkout_cart(session, tenant, cart_id, body))
