"""Cross-border API: tax quotes, foreign brands' qualification files, products' cross-border
facts, orders' cross-border parts, declarations' receipts, tracking."""

from __future__ import annotations

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from haina.core.context import Tenant
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create
from haina.core.pagination import Page
from haina.crossborder import service
from haina.crossborder.schemas import (
    BrandDecisionIn,
    BrandIn,
    BrandOut,
    BrandStatus,
    CrossborderOrderOut,
    CrossborderProductIn,
    CrossborderProductOut,
    CustomsProfileOut,
    DeclarationMessages,
    DeclarationOut,
    EnterpriseIn,
    ReceiptIn,
    TaxQuoteIn,
    TaxQuoteOut,
    TrackingIn,
    TrackingOut,
    TrackingStatusOut,
)
from haina.platform.auth import require

router = Router(prefix="/v1/crossborder", tags=["crossborder"])

READ = Depends(require("crossborder:read"))
WRITE = Depends(require("crossborder:write"))
IDENTITY = Depends(require("crossborder:identity"))


@router.post("/tax-quotes", response_model=TaxQuoteOut,
             summary="The composite tax of goods before they are ordered, line by line")
def post_tax_quote(session: SessionDep, body: TaxQuoteIn, tenant: Tenant = READ) -> TaxQuoteOut:
    return service.quote_tax(session, tenant, body)


@router.post("/brands", status_code=201, response_model=BrandOut,
             summary="Submit a foreign brand's qualification file for review")
def post_brand(session: SessionDep, body: BrandIn, request: Request, tenant: Tenant = WRITE,
               idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.submit_brand(session, tenant, body))


@router.get("/brands", response_model=Page[BrandOut],
            summary="The merchant's qualification files, newest first")
def get_brands(session: SessionDep, status: BrandStatus | None = None,
               limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
               tenant: Tenant = READ) -> Page[BrandOut]:
    return service.list_brands(session, tenant, status=status, limit=limit, cursor=cursor)


@router.get("/brands/{brand_id}", response_model=BrandOut,
            summary="A qualification file with every submission and decision")
def get_brand(session: SessionDep, brand_id: str, tenant: Tenant = READ) -> BrandOut:
    return service.get_brand(session, tenant, brand_id)


@router.post("/brands/{brand_id}/submissions", response_model=BrandOut,
             summary="Submit a rejected or revoked file again, corrected")
def post_brand_submission(session: SessionDep, brand_id: str, body: BrandIn, request: Request,
                          tenant: Tenant = WRITE,
                          idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.resubmit_brand(session, tenant, brand_id, body), status=200)


@router.post("/brands/{brand_id}/decisions", response_model=BrandOut,
             summary="Approve, reject or revoke a file (a delegated reviewer app)")
def post_brand_decision(session: SessionDep, brand_id: str, body: BrandDecisionIn,
                        request: Request, tenant: Tenant = WRITE,
                        idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.decide_brand(session, tenant, brand_id, body), status=200)


@router.put("/products/{product_id}", response_model=CrossborderProductOut,
            summary="Set a product's cross-border facts (HS code, origin, rates, weights, mode)")
def put_product(session: SessionDep, product_id: str, body: CrossborderProductIn,
                tenant: Tenant = WRITE) -> CrossborderProductOut:
    return service.put_product(session, tenant, product_id, body)


@router.get("/products/{product_id}", response_model=CrossborderProductOut,
            summary="A product's cross-border facts")
def get_product(session: SessionDep, product_id: str,
                tenant: Tenant = READ) -> CrossborderProductOut:
    return service.get_product(session, tenant, product_id)


@router.get("/orders/{order_id}", response_model=CrossborderOrderOut,
            summary="An order's cross-border part: buyer (ID number masked), tax, quota")
def get_order(session: SessionDep, order_id: str, tenant: Tenant = READ) -> CrossborderOrderOut:
    return service.get_order_record(session, tenant, order_id)


@router.get("/orders/{order_id}/identity", response_model=CrossborderOrderOut,
            summary="The same with the buyer's ID number unmasked (scope crossborder:identity)")
def get_order_identity(session: SessionDep, order_id: str,
                       tenant: Tenant = IDENTITY) -> CrossborderOrderOut:
    return service.get_order_record(session, tenant, order_id, reveal=True)


@router.get("/declarations/{declaration_id}", response_model=DeclarationOut,
            summary="A customs declaration: status, messages (ID numbers masked), receipts")
def get_declaration(session: SessionDep, declaration_id: str,
                    tenant: Tenant = READ) -> DeclarationOut:
    return service.get_declaration(session, tenant, declaration_id)


@router.get("/declarations/{declaration_id}/messages", response_model=DeclarationMessages,
            summary="The messages as sent to customs (scope crossborder:identity)")
def get_declaration_messages(session: SessionDep, declaration_id: str,
                             tenant: Tenant = IDENTITY) -> DeclarationMessages:
    return service.declaration_messages(session, tenant, declaration_id)


@router.post("/declarations/{declaration_id}/receipts", response_model=DeclarationOut,
             summary="Post a customs receipt (CEB312/412/512/622) or tax bill (CEB816)")
def post_receipt(session: SessionDep, declaration_id: str, body: ReceiptIn, request: Request,
                 tenant: Tenant = WRITE,
                 idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.ingest_receipt(session, tenant, declaration_id, body),
                  status=200)


@router.post("/orders/{order_id}/tracking", status_code=201, response_model=TrackingOut,
             summary="A carrier's tracking event (logistics apps): joins the order's timeline")
def post_tracking(session: SessionDep, order_id: str, body: TrackingIn, request: Request,
                  tenant: Tenant = WRITE,
                  idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.record_tracking(session, tenant, order_id, body))


@router.get("/orders/{order_id}/tracking", response_model=TrackingStatusOut,
            summary="The order's parcel as the carrier last reported it")
def get_tracking(session: SessionDep, order_id: str,
                 tenant: Tenant = READ) -> TrackingStatusOut:
    return service.get_tracking(session, tenant, order_id)


@router.put("/customs-profile", response_model=CustomsProfileOut,
            summary="Set the merchant's customs profile (enterprise codes, customs and port)")
def put_customs_profile(session: SessionDep, body: EnterpriseIn,
                        tenant: Tenant = WRITE) -> CustomsProfileOut:
    return service.put_customs_profile(session, tenant, body)


@router.get("/customs-profile", response_model=CustomsProfileOut,
            summary="The merchant's customs profile, which declarations use by default")
def get_customs_profile(session: SessionDep, tenant: Tenant = READ) -> CustomsProfileOut:
    return service.get_customs_profile(session, tenant)
