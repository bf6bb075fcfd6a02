"""Stock routes that name a variant by SKU: they need the catalogue (which SKU is which
variant) as well as inventory, so they live with the catalogue, which sits above inventory
(inventory knows variants only by id)."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from haina.catalog import service as catalog
from haina.core.context import Tenant
from haina.core.errors import Invalid, not_found
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create
from haina.core.pagination import Page
from haina.inventory import service as inventory
from haina.inventory.schemas import (
    AdjustmentCreate,
    AdjustmentOut,
    LevelOut,
    ReservationCreate,
    ReservationOut,
)
from haina.platform.auth import require

router = Router(prefix="/v1", tags=["inventory"])
READ, WRITE = require("inventory:read"), require("inventory:write")


def _variant_id(session: Session, tenant: Tenant, variant_id: str | None,
                sku: str | None) -> tuple[str, str]:
    if bool(variant_id) == bool(sku):
        raise Invalid("give exactly one of variant_id or sku")
    if sku:
        ref = catalog.variant_by_sku(session, tenant, sku)
        return ref.id, ref.sku
    assert variant_id
    if not catalog.variant_exists(session, tenant, variant_id):
        raise not_found("variant", variant_id)
    return variant_id, ""


@router.get("/inventory/levels", response_model=Page[LevelOut],
            summary="Stock of a variant at each location (all locations, on one page)")
def get_levels(session: SessionDep, variant_id: str | None = None, sku: str | None = None,
               tenant: Tenant = Depends(READ)) -> Page[LevelOut]:
    vid, _ = _variant_id(session, tenant, variant_id, sku)
    return inventory.levels(session, tenant, vid)


@router.post("/inventory/adjustments", status_code=201, response_model=AdjustmentOut,
             summary="Receive, count or write off stock, with a reason")
def adjust(session: SessionDep, body: AdjustmentCreate, request: Request,
           tenant: Tenant = Depends(WRITE),
           idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    def run() -> AdjustmentOut:
        vid, _ = _variant_id(session, tenant, body.variant_id, body.sku)
        return inventory.adjust_stock(session, tenant, vid, body.delta, body.reason,
                                    location_id=body.location_id, note=body.note)
    return create(request, session, tenant, idempotency_key, body, run)


@router.post("/reservations", status_code=201, response_model=ReservationOut,
             summary="Hold units for a while (a cart, an app's checkout)")
def hold(session: SessionDep, body: ReservationCreate, request: Request,
         tenant: Tenant = Depends(WRITE),
         idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    def run() -> ReservationOut:
        vid, sku = _variant_id(session, tenant, body.variant_id, body.sku)
        return inventory.hold_stock(session, tenant, vid, body.quantity, body.ttl_seconds,
                                  body.location_id, sku)
    return create(request, session, tenant, idempotency_key, body, run)
