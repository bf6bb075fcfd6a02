from __future__ import annotations

from typing import Literal

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime

from haina.carts import service
from haina.carts.schemas import CartCreate, CartOut, CartSummaryOut, QuantityIn
from haina.core.context import Tenant
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create
from haina.core.pagination import Page
from haina.marketing.schemas import PriceOut, PriceRequest
from haina.orders.schemas import LineIn
from haina.platform.auth import require

router = Router(prefix="/v1", tags=["carts"])
READ, WRITE = require("orders:read"), require("orders:write")


@router.post("/carts", status_code=201, response_model=CartOut)
def create_cart(session: SessionDep, body: CartCreate, request: Request,
                tenant: Tenant = Depends(WRITE),
                idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_cart(session, tenant, body))


@router.post("/carts/price", response_model=PriceOut,
             summary="Price lines now: the best combination of promotions and the coupon, "
                     "each line's discount explained (nothing is claimed)")
def price_lines(session: SessionDep, body: PriceRequest,
                tenant: Tenant = Depends(READ)) -> PriceOut:
    return service.price(session, tenant, body)


@router.get("/carts", response_model=Page[CartSummaryOut],
            summary="List carts (newest first), lines counted, not priced")
def list_carts(session: SessionDep,
               status: Literal["open", "ordered", "abandoned"] | None = Query(
                   None, description="open, ordered (became an order: `order_id`), or "
                                     "abandoned (open and untouched for the merchant's "
                                     "`abandoned_cart_hours`, 24 unless set)"),
               member_id: str | None = Query(None, max_length=64),
               updated_gte: AwareDatetime | None = Query(
                   None, description="last changed at or after (with a UTC offset)"),
               updated_lt: AwareDatetime | None = Query(
                   None, description="last changed before (with a UTC offset)"),
               limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
               tenant: Tenant = Depends(READ)) -> Page[CartSummaryOut]:
    return service.list_carts(session, tenant, status=status, member_id=member_id,
                              updated_gte=updated_gte, updated_lt=updated_lt,
                              limit=limit, cursor=cursor)


@router.get("/carts/{cart_id}", response_model=CartOut, summary="A cart, priced now")
def get_cart(session: SessionDep, cart_id: str, tenant: Tenant = Depends(READ)) -> CartOut:
    return service.get_cart(session, tenant, cart_id)


@router.post("/carts/{cart_id}/lines", response_model=CartOut, summary="Add units of a SKU")
def add_line(session: SessionDep, cart_id: str, body: LineIn,
             tenant: Tenant = Depends(WRITE)) -> CartOut:
    return service.add_cart_line(session, tenant, cart_id, body)


@router.put("/carts/{cart_id}/lines/{sku}", response_model=CartOut,
            summary="Set a line's quantity (0 removes it)")
def set_line(session: SessionDep, cart_id: str, sku: str, body: QuantityIn,
             tenant: Tenant = Depends(WRITE)) -> CartOut:
    return service.set_cart_line(session, tenant, cart_id, sku, body.quantity)
