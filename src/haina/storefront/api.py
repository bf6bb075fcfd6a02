"""Two routers: the merchant's publishable keys under ``/v1`` (scope ``storefront``), and
the buyer-facing ``/store/v1`` (its own OpenAPI document, ``/store/v1/openapi.json``)."""

from __future__ import annotations

import datetime as dt
import hashlib

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from haina.carts.schemas import CartOut, QuantityIn
from haina.catalog.schemas import ProductOut
from haina.checkout.schemas import AppointmentOrderOut
from haina.core.context import Tenant
from haina.core.db import statements_alone
from haina.core.http import (
    PROBLEM_RESPONSES,
    IdempotencyKeyHeader,
    LoopAnswer,
    Router,
    SessionDep,
    create,
    direct,
    json_out,
    loop_unit,
    on_loop,
    problem_response,
)
from haina.core.idempotency import MAX_KEY_LENGTH
from haina.core.pagination import Page
from haina.marketing.schemas import PriceOut, WalletCouponOut
from haina.members.schemas import PointsEntryOut
from haina.o2o.geo import MAX_RADIUS_KM, Datum
from haina.o2o.schemas import SERVICE_CODE, BookingOut, RatingIn, RatingOut, SearchOut, SlotsOut
from haina.orders.schemas import LineIn, OrderOut
from haina.payments import service as payments
from haina.payments.schemas import PaymentIntentOut
from haina.platform.auth import require
from haina.storefront import service
from haina.storefront.auth import signed_in, store_key
from haina.storefront.keys import Shop
from haina.storefront.schemas import (
    BuyerOut,
    BuyerSessionOut,
    CodeRequested,
    InboxOut,
    PhoneIn,
    PublishableKeyIn,
    PublishableKeyOut,
    RefreshIn,
    StoreBookingIn,
    StoreCartIn,
    StoreCheckoutIn,
    StorePaymentIn,
    VerifyIn,
)
from haina.storefront.shop import Kept

# ------------------------------------------------------------------ the merchant's keys

router = Router(prefix="/v1", tags=["storefront"])
READ, WRITE = require("storefront:read"), require("storefront:write")


@router.post("/storefront/keys", status_code=201, response_model=PublishableKeyOut,
             summary="Create a publishable key for a sales channel (pk_…, public, revocable)")
def post_key(session: SessionDep, body: PublishableKeyIn, request: Request,
             tenant: Tenant = Depends(WRITE),
             idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_key(session, tenant, body))


@router.get("/storefront/keys", response_model=Page[PublishableKeyOut])
def get_keys(session: SessionDep, limit: int = Query(50, ge=1, le=200),
             cursor: str | None = Query(None, max_length=64),
             tenant: Tenant = Depends(READ)) -> Page[PublishableKeyOut]:
    return service.list_keys(session, tenant, limit=limit, cursor=cursor)


@router.get("/storefront/keys/{key_id}", response_model=PublishableKeyOut)
def get_key(session: SessionDep, key_id: str,
            tenant: Tenant = Depends(READ)) -> PublishableKeyOut:
    return service.get_key(session, tenant, key_id)


@router.post("/storefront/keys/{key_id}/revoke", response_model=PublishableKeyOut,
             summary="Revoke a key: its calls are refused, its buyers signed out")
def revoke_key(session: SessionDep, key_id: str,
               tenant: Tenant = Depends(WRITE)) -> PublishableKeyOut:
    return service.revoke_key(session, tenant, key_id)


# ------------------------------------------------------------------ /store/v1

store = Router(prefix="/store/v1", tags=["storefront"], responses={
    **PROBLEM_RESPONSES, 429: {"description": "rate-limited (problem+json)"}})
KEY, BUYER = Depends(store_key()), Depends(signed_in())
LAT = Query(ge=-90, le=90, description="latitude of the buyer")
LNG = Query(ge=-180, le=180, description="longitude")
RADIUS = Query(10.0, gt=0, le=MAX_RADIUS_KM, description=f"km, at most {MAX_RADIUS_KM:g}")
CURSOR = Query(None, max_length=64, description="next_cursor of the previous page")


def _buyer_key(shop: Shop, key: str | None) -> str | None:
    """The buyer's Idempotency-Key in a space of their own (keys are the merchant's: two
    buyers may pick the same one)."""
    if not key or len(key) > MAX_KEY_LENGTH:
        return key  # refused as it is (422)
    return f"buyer:{shop.buyer_id}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


# A kept public answer (storefront.cache) is answered on the event loop, never queued
# behind the pool's carts and checkouts (core.http.on_loop); a missing one in the pool.

def _kept_response(kept: Kept) -> LoopAnswer | None:
    body, refresh_in, again = kept
    return None if body is None else LoopAnswer(_json(body), refresh_in, again)


def _kept_products(kw: dict) -> LoopAnswer | None:
    return _kept_response(service.kept_products_json(
        kw["shop"], q=kw["q"], category_id=kw["category_id"], limit=kw["limit"],
        cursor=kw["cursor"], cache_seconds=_kept(kw["request"])))


def _kept_product(kw: dict) -> LoopAnswer | None:
    return _kept_response(service.kept_product_json(kw["shop"], kw["product_id"],
                                                    cache_seconds=_kept(kw["request"])))


def _kept_search(kw: dict) -> LoopAnswer | None:
    return _kept_response(service.kept_search_json(
        kw["shop"], kw["q"], kw["lat"], kw["lng"], kw["radius_km"], datum=kw["datum"],
        limit=kw["limit"], cache_seconds=_kept(kw["request"])))


@store.get("/products", response_model=Page[ProductOut], summary="Listed products")
@on_loop(_kept_products)
@direct  # answered by core.http.DirectRoute (issue 16)
def products(session: SessionDep, request: Request,
             q: str | None = Query(None, max_length=200),
             category_id: str | None = Query(None, max_length=64),
             limit: int = Query(20, ge=1, le=100), cursor: str | None = CURSOR,
             shop: Shop = KEY) -> Response:
    # answered as kept bytes (storefront.cache): FastAPI would dump, re-validate and dump
    return _json(service.list_products_json(session, shop, q=q, category_id=category_id,
                                            limit=limit, cursor=cursor,
                                            cache_seconds=_kept(request)))


def _kept(request: Request) -> float:
    return float(request.app.state.settings.storefront_cache_seconds)


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@store.get("/products/{product_id}", response_model=ProductOut)
@on_loop(_kept_product)
@direct  # answered by core.http.DirectRoute (issue 16)
def product(session: SessionDep, request: Request, product_id: str,
            shop: Shop = KEY) -> Response:
    return _json(service.get_product_json(session, shop, product_id,
                                          cache_seconds=_kept(request)))


@store.get("/search", response_model=SearchOut,
           summary="Products, and for goods that need a service the nearby points and slots")
@on_loop(_kept_search)
@direct  # answered by core.http.DirectRoute (issue 16)
def search(session: SessionDep, request: Request, q: str = Query(min_length=1, max_length=200),
           lat: float = LAT, lng: float = LNG, radius_km: float = RADIUS,
           datum: Datum = Query("wgs84", description="wgs84 (GPS) or gcj02 (maps in China)"),
           limit: int = Query(10, ge=1, le=50), shop: Shop = KEY) -> Response:
    return _json(service.search_json(session, shop, q, lat, lng, radius_km, datum=datum,
                                     limit=limit, cache_seconds=_kept(request)))


@store.get("/service-points/{point_id}/slots", response_model=SlotsOut,
           summary="A day's slots of a service at a point, with the places left")
def slots(session: SessionDep, point_id: str,
          service_code: str = Query(alias="service", pattern=SERVICE_CODE),
          date: dt.date = Query(description="the point's local date, YYYY-MM-DD"),
          shop: Shop = KEY) -> SlotsOut:
    return service.slots(session, shop, point_id, service_code, date)


@store.post("/sign-in/codes", status_code=202, response_model=CodeRequested,
            summary="Send a sign-in code to a phone (6 digits, 5 minutes)",
            responses={429: {"description": "code-throttled (problem+json)"}})
def sign_in_code(session: SessionDep, body: PhoneIn, shop: Shop = KEY) -> CodeRequested:
    return service.request_code(session, shop, body.phone)


@store.post("/sign-in/verify", response_model=BuyerSessionOut,
            summary="Verify the code: a buyer session (the member found or made by phone)")
def sign_in_verify(session: SessionDep, body: VerifyIn, request: Request,
                   shop: Shop = KEY) -> Response | BuyerSessionOut:
    outcome = service.verify_code(session, shop, body.phone, body.code)
    if outcome.problem is not None:  # answered, not raised: the spent try is committed
        return problem_response(outcome.problem.status,
                                outcome.problem.to_dict(request.url.path))
    assert outcome.session is not None
    return outcome.session


@store.post("/sign-in/refresh", response_model=BuyerSessionOut,
            summary="New tokens for a refresh token (which is spent; a spent one presented "
                    "again ends the session)")
def sign_in_refresh(session: SessionDep, body: RefreshIn, request: Request,
                    shop: Shop = KEY) -> Response | BuyerSessionOut:
    outcome = service.refresh_session(session, shop, body.refresh_token)
    if outcome.problem is not None:  # answered, not raised: a reuse's revocation is committed
        return problem_response(outcome.problem.status,
                                outcome.problem.to_dict(request.url.path))
    assert outcome.session is not None
    return outcome.session


@store.post("/sign-out", status_code=204, summary="End the buyer's session")
def sign_out(session: SessionDep, shop: Shop = BUYER) -> Response:
    service.sign_out(session, shop, shop.buyer_id or "", shop.access_token or "")
    return Response(status_code=204)


@store.get("/sandbox/inbox", response_model=InboxOut,
           summary="The latest sign-in codes of the merchant's sandbox keys (sandbox keys only)")
def sandbox_inbox(session: SessionDep, shop: Shop = KEY) -> InboxOut:
    if not shop.sandbox:
        from haina.core.errors import Forbidden
        raise Forbidden("the sandbox inbox is read with a sandbox key", slug="not-a-sandbox-key")
    return service.sandbox_inbox(session, shop)


# @loop_unit: the buyer's own short units of work (reads, carts, checkout, bookings) run on
# the event loop on PostgreSQL (core.loop); sign-in (hashing, a code's delivery) and payment
# (a provider's call) stay in the thread pool
@store.get("/me", response_model=BuyerOut, summary="The signed-in buyer")
@loop_unit
def me(session: SessionDep, shop: Shop = BUYER) -> BuyerOut:
    return service.me(session, shop)


@store.get("/me/points", response_model=Page[PointsEntryOut], summary="The buyer's points")
@loop_unit
def my_points(session: SessionDep, limit: int = Query(50, ge=1, le=200),
              cursor: str | None = CURSOR, shop: Shop = BUYER) -> Page[PointsEntryOut]:
    return service.points(session, shop, limit=limit, cursor=cursor)


@store.get("/me/coupons", response_model=Page[WalletCouponOut],
           summary="The coupons issued to the buyer (use one at checkout by its code)")
@loop_unit
def my_coupons(session: SessionDep,
               status: str | None = Query(None, pattern="^(issued|used|expired|paused)$"),
               limit: int = Query(50, ge=1, le=200), cursor: str | None = CURSOR,
               shop: Shop = BUYER) -> Page[WalletCouponOut]:
    return service.coupons(session, shop, status=status, limit=limit, cursor=cursor)


@store.post("/carts", status_code=201, response_model=CartOut, summary="A cart of the buyer's")
@direct  # answered by core.http.DirectRoute (issue 16)
@loop_unit
def post_cart(session: SessionDep, body: StoreCartIn, request: Request, shop: Shop = BUYER,
              idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    if idempotency_key is None:  # one INSERT, written last (under a key: the key's row too)
        statements_alone(session)
    return create(request, session, shop, _buyer_key(shop, idempotency_key), body,
                  lambda: service.create_cart(session, shop, body))


@store.get("/carts/{cart_id}", response_model=CartOut, summary="The buyer's cart, priced now",
           description="Priced now; a cart unchanged since its last answer of at most "
                       "`storefront_cache_seconds` ago (its creation, the line just added) "
                       "is answered as priced then, as the public answers are kept. "
                       "Checkout prices the order anew.")
@direct  # answered by core.http.DirectRoute (issue 16)
@loop_unit
def cart(session: SessionDep, request: Request, cart_id: str, shop: Shop = BUYER) -> Response:
    statements_alone(session)  # reads only: no BEGIN and COMMIT round trips
    # answered as built (json_out): FastAPI would re-validate the cart and dump it again
    return json_out(service.get_cart(session, shop, cart_id, cache_seconds=_kept(request)))


@store.post("/carts/{cart_id}/lines", response_model=CartOut, summary="Add units of a SKU")
@direct  # answered by core.http.DirectRoute (issue 16)
@loop_unit
def add_line(session: SessionDep, cart_id: str, body: LineIn, shop: Shop = BUYER) -> Response:
    statements_alone(session)  # a read, then one compare-and-set UPDATE (carts)
    return json_out(service.add_cart_line(session, shop, cart_id, body))


@store.put("/carts/{cart_id}/lines/{sku}", response_model=CartOut,
           summary="Set a line's quantity (0 removes it)")
@loop_unit
def set_line(session: SessionDep, cart_id: str, sku: str, body: QuantityIn,
             shop: Shop = BUYER) -> Response:
    statements_alone(session)  # as add_line
    return json_out(service.set_cart_line(session, shop, cart_id, sku, body.quantity))


@store.get("/carts/{cart_id}/price", response_model=PriceOut,
           summary="The cart priced with a coupon: promotions and the coupon, explained")
@loop_unit
def price(session: SessionDep, cart_id: str, coupon: str | None = Query(None, max_length=64),
          shop: Shop = BUYER) -> PriceOut:
    return service.price_cart(session, shop, cart_id, coupon)


@store.post("/bookings", status_code=201, response_model=BookingOut,
            summary="Hold a slot for the buyer (10 minutes; checkout confirms it)")
@loop_unit
def post_booking(session: SessionDep, body: StoreBookingIn, request: Request,
                 shop: Shop = BUYER,
                 idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, shop, _buyer_key(shop, idempotency_key), body,
                  lambda: service.hold_booking(session, shop, body))


@store.get("/bookings", response_model=Page[BookingOut], summary="The buyer's bookings")
@loop_unit
def bookings(session: SessionDep, limit: int = Query(50, ge=1, le=200),
             cursor: str | None = CURSOR, shop: Shop = BUYER) -> Page[BookingOut]:
    return service.list_bookings(session, shop, limit=limit, cursor=cursor)


@store.get("/bookings/{booking_id}", response_model=BookingOut)
@loop_unit
def booking(session: SessionDep, booking_id: str, shop: Shop = BUYER) -> BookingOut:
    return service.get_booking(session, shop, booking_id)


@store.post("/bookings/{booking_id}/rating", status_code=201, response_model=RatingOut,
            summary="Rate the buyer's completed booking (once); 409 already-rated, 409 "
                    "booking-not-completed")
def rate_booking(session: SessionDep, booking_id: str, body: RatingIn, request: Request,
                 shop: Shop = BUYER,
                 idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, shop, _buyer_key(shop, idempotency_key), body,
                  lambda: service.rate_booking(session, shop, booking_id, body))


@store.post("/carts/{cart_id}/checkout", status_code=201, response_model=AppointmentOrderOut,
            summary="The cart becomes an order on the key's channel, bookings confirmed")
@direct  # answered by core.http.DirectRoute (issue 16)
@loop_unit
def checkout(session: SessionDep, cart_id: str, body: StoreCheckoutIn, request: Request,
             shop: Shop = BUYER,
             idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    # every effect of a checkout is in the database (the order, stock, bookings, events):
    # the key is not read first, a replay's work is rolled back (read_first=False)
    return create(request, session, shop, _buyer_key(shop, idempotency_key), body,
                  lambda: service.checkout_cart(session, shop, cart_id, body),
                  read_first=False)


@store.get("/orders", response_model=Page[OrderOut], summary="The buyer's orders")
@loop_unit
def orders(session: SessionDep, limit: int = Query(50, ge=1, le=200),
           cursor: str | None = CURSOR, shop: Shop = BUYER) -> Page[OrderOut]:
    return service.list_orders(session, shop, limit=limit, cursor=cursor)


@store.get("/orders/{order_id}", response_model=OrderOut)
@loop_unit
def order(session: SessionDep, order_id: str, shop: Shop = BUYER) -> OrderOut:
    return service.get_order(session, shop, order_id)


def _declined(out: PaymentIntentOut):
    if out.status == "failed":
        problem = payments.payment_problem(out)
        return problem.status, problem.to_dict()
    return None


@store.post("/orders/{order_id}/payments", status_code=201, response_model=PaymentIntentOut,
            summary="Pay the buyer's order (sandbox test cards: docs/storefront.md)",
            responses={402: {"description": "payment-failed (problem+json)"}})
def pay(session: SessionDep, order_id: str, body: StorePaymentIn, request: Request,
        shop: Shop = BUYER, idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, shop, _buyer_key(shop, idempotency_key), body,
                  lambda: service.pay_order(session, shop, order_id, body), answer=_declined)


STORE_DESCRIPTION = """
The buyer's side of a Haina merchant, for the apps, mini-programs and web shops that
providers build (docs/storefront.md).

* Every call sends the merchant's publishable key: `X-Publishable-Key: pk_…`.
* The buyer's own objects (carts, bookings, orders, points) also need the buyer's access
  token, `Authorization: Bearer bst_…`, from `POST /store/v1/sign-in/verify`.
* Errors are RFC 9457 `application/problem+json`; lists are paginated with `next_cursor`;
  creating POSTs accept `Idempotency-Key`.
"""


def store_openapi(version: str) -> dict:
    """The storefront's own OpenAPI document (``/store/v1/openapi.json``)."""
    from fastapi.openapi.utils import get_openapi

    from haina.core.http import ProblemOut
    schema = get_openapi(title="Haina Storefront", version=version,
                         description=STORE_DESCRIPTION, routes=store.routes)
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["ProblemOut"] = \
        ProblemOut.model_json_schema(ref_template="#/components/schemas/{model}")
    return schema
