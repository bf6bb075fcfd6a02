"""``POST /v1/crossborder/declarations``: served by checkout, the flow that reads the order
for the crossborder module (which sits below orders)."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response

from haina.checkout.declarations import declare_order
from haina.core.context import Tenant
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create
from haina.crossborder.schemas import DeclarationIn, DeclarationOut
from haina.platform.auth import require

router = Router(prefix="/v1/crossborder", tags=["crossborder"])


@router.post("/declarations", status_code=201, response_model=DeclarationOut,
             summary="Declare a paid cross-border order: its four customs messages, checked",
             responses={409: {"description": "unpaid or declared already (problem+json)"}})
def post_declaration(session: SessionDep, body: DeclarationIn, request: Request,
                     tenant: Tenant = Depends(require("crossborder:write")),
                     idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: declare_order(session, tenant, body))
