"""Marketing API: coupons and promotions (pricing a cart is ``POST /v1/carts/price``)."""

from __future__ import annotations

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from haina.core.context import Tenant
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create
from haina.core.pagination import Page
from haina.marketing import service
from haina.marketing.schemas import (
    CouponBatchCreate,
    CouponBatchOut,
    CouponCreate,
    CouponIssue,
    CouponIssueOut,
    CouponOut,
    CouponUpdate,
    PromotionCreate,
    PromotionOut,
    PromotionUpdate,
    WalletCouponOut,
)
from haina.platform.auth import require

router = Router(prefix="/v1", tags=["marketing"])

READ = Depends(require("marketing:read"))
WRITE = Depends(require("marketing:write"))


@router.post("/coupons", status_code=201, response_model=CouponOut,
             summary="Create a coupon (percent or fixed off the goods, with its limits)")
def post_coupon(session: SessionDep, request: Request, body: CouponCreate,
                idempotency_key: str | None = IdempotencyKeyHeader,
                tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_coupon(session, tenant, body))


@router.post("/coupons/batch", status_code=201, response_model=CouponBatchOut,
             summary="Create up to 1,000 coupons of the same terms with generated codes")
def post_coupon_batch(session: SessionDep, request: Request, body: CouponBatchCreate,
                      idempotency_key: str | None = IdempotencyKeyHeader,
                      tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_coupon_batch(session, tenant, body))


@router.get("/coupons", response_model=Page[CouponOut], summary="Coupons, newest first")
def get_coupons(session: SessionDep,
                status: str | None = Query(None, pattern="^(active|disabled)$"),
                code: str | None = Query(None, max_length=64),
                limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                tenant: Tenant = READ) -> Page[CouponOut]:
    return service.list_coupons(session, tenant, status=status, code=code, limit=limit,
                                cursor=cursor)


@router.get("/coupons/{coupon_id}", response_model=CouponOut, summary="One coupon")
def get_coupon(session: SessionDep, coupon_id: str, tenant: Tenant = READ) -> CouponOut:
    return service.get_coupon(session, tenant, coupon_id)


@router.patch("/coupons/{coupon_id}", response_model=CouponOut,
              summary="Disable or re-enable a coupon, move its end, change its limit")
def patch_coupon(session: SessionDep, coupon_id: str, body: CouponUpdate,
                 tenant: Tenant = WRITE) -> CouponOut:
    return service.update_coupon(session, tenant, coupon_id, body)


@router.post("/coupons/{coupon_id}/issue", status_code=200, response_model=CouponIssueOut,
             summary="Issue a coupon to members (their wallets); members holding it already "
                     "are left alone")
def post_coupon_issue(session: SessionDep, request: Request, coupon_id: str, body: CouponIssue,
                      idempotency_key: str | None = IdempotencyKeyHeader,
                      tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.issue_coupon(session, tenant, coupon_id, body.member_ids),
                  status=200)


@router.get("/members/{member_id}/coupons", response_model=Page[WalletCouponOut],
            summary="A member's coupon wallet, newest first")
def get_member_coupons(session: SessionDep, member_id: str,
                       status: str | None = Query(None, pattern="^(issued|used|expired|paused)$"),
                       limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                       tenant: Tenant = READ) -> Page[WalletCouponOut]:
    return service.member_wallet(session, tenant, member_id, status=status, limit=limit,
                                 cursor=cursor)


@router.post("/promotions", status_code=201, response_model=PromotionOut,
             summary="Create an automatic promotion (percent, fixed, threshold 满减, buy X get "
                     "Y, bundle, tier price, first order, free shipping)")
def post_promotion(session: SessionDep, request: Request, body: PromotionCreate,
                   idempotency_key: str | None = IdempotencyKeyHeader,
                   tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_promotion(session, tenant, body))


@router.get("/promotions", response_model=Page[PromotionOut], summary="Promotions, newest first")
def get_promotions(session: SessionDep,
                   status: str | None = Query(None, pattern="^(active|paused)$"),
                   kind: str | None = Query(None, pattern="^(percent|fixed|threshold|"
                                            "buy_x_get_y|bundle|tier_price|first_order|"
                                            "free_shipping)$"),
                   limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                   tenant: Tenant = READ) -> Page[PromotionOut]:
    return service.list_promotions(session, tenant, status=status, kind=kind, limit=limit,
                                   cursor=cursor)


@router.get("/promotions/{promotion_id}", response_model=PromotionOut, summary="One promotion")
def get_promotion(session: SessionDep, promotion_id: str,
                  tenant: Tenant = READ) -> PromotionOut:
    return service.get_promotion(session, tenant, promotion_id)


@router.patch("/promotions/{promotion_id}", response_model=PromotionOut,
              summary="Pause or resume a promotion, rename it, move its end, change its "
                      "priority or budget")
def patch_promotion(session: SessionDep, promotion_id: str, body: PromotionUpdate,
                    tenant: Tenant = WRITE) -> PromotionOut:
    return service.update_promotion(session, tenant, promotion_id, body)
