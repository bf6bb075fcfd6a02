"""What a buyer does on ``/store/v1``, composed from the modules' services: the catalogue's
listed products, search with the nearby service points and their free slots, the buyer's
carts, bookings, checkout into an order (on the key's channel, bookings confirmed with it),
payment through the sandbox provider, and the buyer's own orders, bookings and points.

Ownership: an object of the buyer's (cart, order, booking) that belongs to someone else, or
to no one, is answered 404, as another merchant's is on the merchant API."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import orjson
from pydantic import BaseModel
from sqlalchemy.orm import Session

from haina.carts import service as carts
from haina.carts.schemas import CartCreate, CartOut
from haina.catalog import service as catalog
from haina.catalog.schemas import ProductOut
from haina.checkout import service as checkout
from haina.checkout.schemas import AppointmentOrderIn, AppointmentOrderOut
from haina.core.errors import Invalid, not_found
from haina.core.pagination import Page
from haina.marketing import service as marketing
from haina.marketing.schemas import PriceOut, PriceRequest, WalletCouponOut
from haina.members import service as members
from haina.members.schemas import PointsEntryOut
from haina.o2o import service as o2o
from haina.o2o.schemas import BookingOut, RatingIn, RatingOut, SearchOut, SlotsOut
from haina.orders import service as orders
from haina.orders.schemas import LineIn, OrderOut
from haina.payments import service as payments
from haina.payments.schemas import PaymentIntentCreate, PaymentIntentOut
from haina.storefront.cache import public_answers
from haina.storefront.keys import Shop
from haina.storefront.schemas import (
    BuyerOut,
    StoreBookingIn,
    StoreCartIn,
    StoreCheckoutIn,
    StorePaymentIn,
)

LISTED = "active"


def _buyer(shop: Shop) -> str:
    assert shop.buyer_id is not None, "a buyer's route without a signed-in buyer"
    return shop.buyer_id


# ------------------------------------------------------------------ public: the catalogue

# the API answers these from storefront.cache as JSON bytes (the ``*_json`` functions, kept
# ``cache_seconds``; 0: made now): a kept answer costs no dump, no validation

def list_products(session: Session, shop: Shop, *, q: str | None = None,
                  category_id: str | None = None, limit: int = 20,
                  cursor: str | None = None) -> Page[ProductOut]:
    """Listed products only (drafts and archived ones are not the public's)."""
    return catalog.list_products(session, shop, q=q, category_id=category_id, status=LISTED,
                                 limit=limit, cursor=cursor)


def get_product(session: Session, shop: Shop, product_id: str) -> ProductOut:
    product = catalog.get_product(session, shop, product_id)
    if product.status != LISTED:
        raise not_found("product", product_id)
    return product


def search(session: Session, shop: Shop, q: str, lat: float, lng: float, radius_km: float,
           datum: str = "wgs84", limit: int = 10) -> SearchOut:
    """Listed products matching ``q``, each needing a service with the nearest points that
    fit it and their next free slots (o2o's search)."""
    return o2o.search(session, shop, q, lat, lng, radius_km, datum=datum,  # type: ignore[arg-type]
                      limit=limit)


def _kept_json(key: tuple, cache_seconds: float, make: Callable[[], BaseModel]) -> bytes:
    return public_answers.answer(key, cache_seconds,
                                 lambda: orjson.dumps(make().model_dump(mode="json")))


def _products_key(shop: Shop, q: str | None, category_id: str | None, limit: int,
                  cursor: str | None) -> tuple:
    return (shop.id, "products", q, category_id, limit, cursor)


def _product_key(shop: Shop, product_id: str) -> tuple:
    return (shop.id, "product", product_id)


def _search_key(shop: Shop, q: str, lat: float, lng: float, radius_km: float, datum: str,
                limit: int) -> tuple:
    return (shop.id, "search", q, lat, lng, radius_km, datum, limit)


# what is kept now, without waiting or making (the API looks on the event loop first):
# the kept JSON or None, in how many seconds the next one should be made (None: no need),
# and what says, after that making, when the one after is due

Kept = tuple[bytes | None, float | None, Callable[[], float | None]]


def _kept(key: tuple, cache_seconds: float, warm: bool = True) -> Kept:
    body, due = public_answers.peek(key, cache_seconds, warm)
    return body, due, lambda: public_answers.next_making(key, cache_seconds)  # type: ignore[return-value]


def kept_products_json(shop: Shop, *, q: str | None = None, category_id: str | None = None,
                       limit: int = 20, cursor: str | None = None,
                       cache_seconds: float = 0) -> Kept:
    return _kept(_products_key(shop, q, category_id, limit, cursor), cache_seconds)


def kept_product_json(shop: Shop, product_id: str, cache_seconds: float = 0) -> Kept:
    # kept fresh by the pages that list it (a product's own making is not scheduled)
    return _kept(_product_key(shop, product_id), cache_seconds, warm=False)


def kept_search_json(shop: Shop, q: str, lat: float, lng: float, radius_km: float,
                     datum: str = "wgs84", limit: int = 10, cache_seconds: float = 0) -> Kept:
    return _kept(_search_key(shop, q, lat, lng, radius_km, datum, limit), cache_seconds)


def list_products_json(session: Session, shop: Shop, *, q: str | None = None,
                       category_id: str | None = None, limit: int = 20,
                       cursor: str | None = None, cache_seconds: float = 0) -> bytes:
    def make() -> bytes:
        made = time.monotonic()  # before the reads: the products are at least this fresh
        page = list_products(session, shop, q=q, category_id=category_id, limit=limit,
                             cursor=cursor)
        body = page.model_dump(mode="json")
        # a listed page's products are the product answers (catalog builds both alike): a
        # buyer who opens one from the page finds it kept
        for item in body["data"]:
            public_answers.put(_product_key(shop, item["id"]), made, orjson.dumps(item))
        return orjson.dumps(body)

    if cache_seconds <= 0:
        return orjson.dumps(list_products(session, shop, q=q, category_id=category_id,
                                          limit=limit, cursor=cursor).model_dump(mode="json"))
    return public_answers.answer(_products_key(shop, q, category_id, limit, cursor),
                                 cache_seconds, make)


def get_product_json(session: Session, shop: Shop, product_id: str,
                     cache_seconds: float = 0) -> bytes:
    return _kept_json(_product_key(shop, product_id), cache_seconds,
                      lambda: get_product(session, shop, product_id))


def search_json(session: Session, shop: Shop, q: str, lat: float, lng: float,
                radius_km: float, datum: str = "wgs84", limit: int = 10,
                cache_seconds: float = 0) -> bytes:
    return _kept_json(_search_key(shop, q, lat, lng, radius_km, datum, limit), cache_seconds,
                      lambda: search(session, shop, q, lat, lng, radius_km, datum, limit))


def slots(session: Session, shop: Shop, point_id: str, service: str, day: dt.date) -> SlotsOut:
    return o2o.slots(session, shop, point_id, service, day)


# ------------------------------------------------------------------ the buyer's own

def me(session: Session, shop: Shop) -> BuyerOut:
    m = members.get_member(session, shop, _buyer(shop))
    return BuyerOut(member_id=m.id, name=m.name, phone=m.phone,
                    tier=m.tier.name if m.tier else None, points_balance=m.points_balance)


def points(session: Session, shop: Shop, limit: int = 50,
           cursor: str | None = None) -> Page[PointsEntryOut]:
    return members.list_points(session, shop, _buyer(shop), limit=limit, cursor=cursor)


def coupons(session: Session, shop: Shop, status: str | None = None, limit: int = 50,
            cursor: str | None = None) -> Page[WalletCouponOut]:
    """The coupons issued to the buyer (the wallet), to use at checkout by their code."""
    return marketing.member_wallet(session, shop, _buyer(shop), status=status, limit=limit,
                                   cursor=cursor)


def create_cart(session: Session, shop: Shop, data: StoreCartIn) -> CartOut:
    # listed SKUs only: a draft's SKU is not found, as an unknown one is (in carts' own read)
    return carts.create_cart(session, shop, CartCreate(
        member_id=_buyer(shop), channel=shop.channel, lines=data.lines),  # type: ignore[arg-type]
        listed_only=True)


# the buyer's own cart: carts checks the owner in its own read of the cart (another's: 404)

def get_cart(session: Session, shop: Shop, cart_id: str, cache_seconds: float = 0.0) -> CartOut:
    """The buyer's cart; unchanged since this process priced it at most ``cache_seconds``
    ago (the public answers' age: storefront_cache_seconds), as priced then."""
    return carts.get_cart(session, shop, cart_id, owner=_buyer(shop),
                          priced_within=cache_seconds)


def add_cart_line(session: Session, shop: Shop, cart_id: str, line: LineIn) -> CartOut:
    return carts.add_cart_line(session, shop, cart_id, line, owner=_buyer(shop),
                               listed_only=True)


def set_cart_line(session: Session, shop: Shop, cart_id: str, sku: str,
                  quantity: int) -> CartOut:
    return carts.set_cart_line(session, shop, cart_id, sku, quantity, owner=_buyer(shop))


def price_cart(session: Session, shop: Shop, cart_id: str, coupon: str | None) -> PriceOut:
    """The cart priced now with ``coupon`` (promotions, the coupon, each line explained)."""
    cart = carts.get_cart(session, shop, cart_id, owner=_buyer(shop))
    if not cart.lines:
        raise Invalid("the cart is empty", slug="cart-empty")
    return carts.price(session, shop, PriceRequest.model_validate({
        "lines": [{"sku": ln.sku, "quantity": ln.quantity} for ln in cart.lines],
        "member_id": _buyer(shop), "coupon": coupon, "channel": shop.channel}))


def hold_booking(session: Session, shop: Shop, data: StoreBookingIn) -> BookingOut:
    """Hold a slot for the buyer (10 minutes); checkout confirms it with the order."""
    return o2o.book(session, shop, data.booking(_buyer(shop)))


def get_booking(session: Session, shop: Shop, booking_id: str) -> BookingOut:
    booking = o2o.get_booking(session, shop, booking_id)
    if booking.member_id != _buyer(shop):
        raise not_found("booking", booking_id)
    return booking


def rate_booking(session: Session, shop: Shop, booking_id: str, data: RatingIn) -> RatingOut:
    """The buyer rates their own completed booking, once (another's is not found)."""
    get_booking(session, shop, booking_id)
    return o2o.rate(session, shop, booking_id, data, _buyer(shop))


def list_bookings(session: Session, shop: Shop, limit: int = 50,
                  cursor: str | None = None) -> Page[BookingOut]:
    return o2o.list_bookings(session, shop, member_id=_buyer(shop), limit=limit, cursor=cursor)


def checkout_cart(session: Session, shop: Shop, cart_id: str,
                  data: StoreCheckoutIn) -> AppointmentOrderOut:
    """The buyer's cart becomes an order on the key's channel, the buyer's held bookings
    confirmed with it (all or nothing); the cart is closed."""
    # the buyer's own cart (another's is not found), closed for the order in the statement
    # that locks it: the rollback reopens it if placing fails
    order_id = orders.new_order_id()
    contents = carts.claim_for_checkout(session, shop, cart_id, order_id, owner_check=True,
                                        owner=_buyer(shop))
    for b in data.bookings:
        get_booking(session, shop, b.booking_id)  # the buyer's own, or 404
    return checkout.place_with_bookings(session, shop, AppointmentOrderIn(
        lines=contents.lines, member_id=_buyer(shop), channel=shop.channel,  # type: ignore[arg-type]
        coupon=data.coupon, points=data.points, address=data.address, note=data.note,
        bookings=data.bookings), order_id)


def get_order(session: Session, shop: Shop, order_id: str) -> OrderOut:
    """The buyer's order: placed by the buyer's member or by one merged with it (either
    way: a session may name a member merged away since), as the list reads them."""
    order = orders.get_order(session, shop, order_id)
    buyer = _buyer(shop)
    if order.member_id != buyer and (
            order.member_id is None
            or order.member_id not in members.member_history_ids(session, shop, buyer)):
        raise not_found("order", order_id)
    return order


def list_orders(session: Session, shop: Shop, limit: int = 50,
                cursor: str | None = None) -> Page[OrderOut]:
    return orders.list_orders(session, shop, member_id=_buyer(shop), limit=limit, cursor=cursor)


def pay_order(session: Session, shop: Shop, order_id: str,
              data: StorePaymentIn) -> PaymentIntentOut:
    """Pay the buyer's order through the sandbox provider (captured at once)."""
    get_order(session, shop, order_id)
    return payments.create_intent(session, shop, PaymentIntentCreate(
        order_id=order_id, payment_method=data.payment_method))
