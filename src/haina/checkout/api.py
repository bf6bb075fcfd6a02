from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response

from haina.checkout import service
from haina.checkout.schemas import AppointmentOrderIn, AppointmentOrderOut, CancelIn, CheckoutIn
from haina.core.context import Tenant
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create
from haina.orders.schemas import OrderOut
from haina.platform.auth import require

router = Router(prefix="/v1", tags=["checkout"])
WRITE = require("orders:write")


@router.post("/carts/{cart_id}/checkout", status_code=201, response_model=OrderOut,
             summary="Turn the cart into an order")
def checkout(session: SessionDep, cart_id: str, body: CheckoutIn, request: Request,
             tenant: Tenant = Depends(WRITE),
             idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.checkout_cart(session, tenant, cart_id, body))


@router.post("/orders/{order_id}/cancel", response_model=OrderOut,
             summary="Cancel (releases stock; refunds a paid order in full)")
def cancel_order(session: SessionDep, order_id: str, request: Request,
                 body: CancelIn | None = None, tenant: Tenant = Depends(WRITE),
                 idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    reason = (body or CancelIn()).reason
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.cancel_order(session, tenant, order_id, reason), status=200)


@router.post("/checkout/orders", status_code=201, response_model=AppointmentOrderOut,
             summary="Place an order whose lines carry bookings (holds confirmed with it)")
def place_with_bookings(session: SessionDep, body: AppointmentOrderIn, request: Request,
                        tenant: Tenant = Depends(WRITE),
                        idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.place_with_bookings(session, tenant, body))
