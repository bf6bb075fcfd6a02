"""The storefront client: a buyer's calls to ``/store/v1`` with a merchant's publishable key,
as a provider's app makes them (docs/storefront.md).

::

    store = Storefront("https://haina.example", publishable_key="pk_…")
    store.search("轮胎", lat=31.23, lng=121.47)
    store.request_code("13800138000")
    store.verify("13800138000", code)     # keeps the buyer's tokens, refreshes them itself
    cart = store.create_cart([{"sku": "TIRE-16", "quantity": 4}])
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import TypeAdapter

from haina.carts.schemas import CartOut
from haina.catalog.schemas import ProductOut
from haina.checkout.schemas import AppointmentOrderOut
from haina.client.core import HainaError
from haina.core.pagination import Page
from haina.marketing.schemas import PriceOut
from haina.members.schemas import PointsEntryOut
from haina.o2o.schemas import BookingOut, RatingOut, SearchOut, SlotsOut
from haina.orders.schemas import OrderOut
from haina.payments.schemas import PaymentIntentOut
from haina.storefront.schemas import BuyerOut, BuyerSessionOut, CodeRequested, InboxOut


class Storefront:
    """One publishable key and, once signed in, one buyer. ``on_session`` is told of each new
    pair of buyer tokens (store them: the old refresh token stops working)."""

    def __init__(self, base_url: str, publishable_key: str, *,
                 session: BuyerSessionOut | None = None,
                 on_session: Callable[[BuyerSessionOut], None] | None = None,
                 max_retries: int = 3, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.key, self.session, self._on_session = publishable_key, session, on_session
        self.max_retries, self._sleep = max_retries, sleep
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/store/v1",
                                  timeout=timeout, transport=transport)

    def __enter__(self) -> Storefront:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------ transport

    def _call(self, model: Any, method: str, path: str, *, json: Any = None,
              params: dict[str, Any] | None = None, buyer: bool = False) -> Any:
        headers = {"X-Publishable-Key": self.key}
        if method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())  # the same for every retry
        params = {k: v for k, v in (params or {}).items() if v is not None}
        refreshed, attempt = False, 0
        while True:
            if buyer:
                if self.session is None:
                    raise HainaError(401, {"type": "buyer-token-required",
                                           "detail": "sign in first (request_code, verify)"})
                headers["Authorization"] = f"Bearer {self.session.access_token}"
            r = self._http.request(method, path, json=json, params=params, headers=headers)
            if r.status_code == 401 and buyer and not refreshed:
                self.refresh()
                refreshed = True
                continue
            if r.status_code == 429 and attempt < self.max_retries:
                self._sleep(float(r.headers.get("retry-after", "1")))
                attempt += 1
                continue
            if r.status_code >= 400:
                raise HainaError(r.status_code, r.json() if r.content else {})
            if model is None or not r.content:
                return None
            return TypeAdapter(model).validate_python(r.json())

    def _keep(self, session: BuyerSessionOut) -> BuyerSessionOut:
        self.session = session
        if self._on_session:
            self._on_session(session)
        return session

    # ------------------------------------------------------------ the public catalogue

    def products(self, q: str | None = None, **params: Any) -> Page[ProductOut]:
        return self._call(Page[ProductOut], "GET", "/products", params={"q": q, **params})

    def product(self, product_id: str) -> ProductOut:
        return self._call(ProductOut, "GET", f"/products/{product_id}")

    def search(self, q: str, lat: float, lng: float, radius_km: float = 10.0,
               datum: str = "wgs84") -> SearchOut:
        return self._call(SearchOut, "GET", "/search", params={
            "q": q, "lat": lat, "lng": lng, "radius_km": radius_km, "datum": datum})

    def slots(self, point_id: str, service: str, date: dt.date) -> SlotsOut:
        return self._call(SlotsOut, "GET", f"/service-points/{point_id}/slots",
                          params={"service": service, "date": date.isoformat()})

    # ------------------------------------------------------------ signing in

    def request_code(self, phone: str) -> CodeRequested:
        return self._call(CodeRequested, "POST", "/sign-in/codes", json={"phone": phone})

    def sandbox_inbox(self) -> list[dict[str, Any]]:
        inbox = self._call(InboxOut, "GET", "/sandbox/inbox")
        return [m.model_dump(mode="json") for m in inbox.data]

    def verify(self, phone: str, code: str) -> BuyerSessionOut:
        return self._keep(self._call(BuyerSessionOut, "POST", "/sign-in/verify",
                                     json={"phone": phone, "code": code}))

    def refresh(self) -> BuyerSessionOut:
        if self.session is None:
            raise HainaError(401, {"type": "buyer-token-required", "detail": "not signed in"})
        return self._keep(self._call(BuyerSessionOut, "POST", "/sign-in/refresh",
                                     json={"refresh_token": self.session.refresh_token}))

    def sign_out(self) -> None:
        self._call(None, "POST", "/sign-out", buyer=True)
        self.session = None

    # ------------------------------------------------------------ the buyer's own

    def me(self) -> BuyerOut:
        return self._call(BuyerOut, "GET", "/me", buyer=True)

    def points(self, **params: Any) -> Page[PointsEntryOut]:
        return self._call(Page[PointsEntryOut], "GET", "/me/points", params=params, buyer=True)

    def create_cart(self, lines: list[dict[str, Any]] | None = None) -> CartOut:
        return self._call(CartOut, "POST", "/carts", json={"lines": lines or []}, buyer=True)

    def cart(self, cart_id: str) -> CartOut:
        return self._call(CartOut, "GET", f"/carts/{cart_id}", buyer=True)

    def add_line(self, cart_id: str, sku: str, quantity: int = 1) -> CartOut:
        return self._call(CartOut, "POST", f"/carts/{cart_id}/lines",
                          json={"sku": sku, "quantity": quantity}, buyer=True)

    def set_line(self, cart_id: str, sku: str, quantity: int) -> CartOut:
        return self._call(CartOut, "PUT", f"/carts/{cart_id}/lines/{sku}",
                          json={"quantity": quantity}, buyer=True)

    def price(self, cart_id: str, coupon: str | None = None) -> PriceOut:
        return self._call(PriceOut, "GET", f"/carts/{cart_id}/price", params={"coupon": coupon},
                          buyer=True)

    def hold_booking(self, point_id: str, service: str, start: dt.datetime | str) -> BookingOut:
        start = start.isoformat() if isinstance(start, dt.datetime) else start
        return self._call(BookingOut, "POST", "/bookings", json={
            "service_point_id": point_id, "service": service, "start": start}, buyer=True)

    def bookings(self, **params: Any) -> Page[BookingOut]:
        return self._call(Page[BookingOut], "GET", "/bookings", params=params, buyer=True)

    def rate_booking(self, booking_id: str, score: int,
                     comment: str | None = None) -> RatingOut:
        """Rate the buyer's completed booking (1-5), once."""
        return self._call(RatingOut, "POST", f"/bookings/{booking_id}/rating",
                          json={"score": score, "comment": comment}, buyer=True)

    def checkout(self, cart_id: str, **fields: Any) -> AppointmentOrderOut:
        """``bookings=[{"sku", "booking_id"}]``, ``coupon``, ``points``, ``address``, ``note``."""
        return self._call(AppointmentOrderOut, "POST", f"/carts/{cart_id}/checkout",
                          json=fields, buyer=True)

    def pay(self, order_id: str, card: str, **card_fields: Any) -> PaymentIntentOut:
        return self._call(PaymentIntentOut, "POST", f"/orders/{order_id}/payments", json={
            "payment_method": {"type": "card", "number": card, **card_fields}}, buyer=True)

    def orders(self, **params: Any) -> Page[OrderOut]:
        return self._call(Page[OrderOut], "GET", "/orders", params=params, buyer=True)

    def order(self, order_id: str) -> OrderOut:
        return self._call(OrderOut, "GET", f"/orders/{order_id}", buyer=True)
