"""The SDK's typed calls, one class per module of the API. Each returns the module's own
response models (``haina.<module>.schemas``); ``list`` returns one page, ``iterate`` every
item. Keyword arguments are the request's fields or query parameters, as the API documents
them (``/docs``)."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from haina.carts.schemas import CartOut, CartSummaryOut
from haina.catalog.schemas import CategoryOut, MediaOut, ProductOut
from haina.core.events import EventOut
from haina.core.pagination import Page
from haina.inventory.schemas import AdjustmentOut, LevelOut, LocationOut, ReservationOut
from haina.marketing.schemas import CouponBatchOut, CouponOut, PriceOut, PromotionOut
from haina.members.schemas import (
    ConsentRecordOut,
    IdentityOut,
    MemberOut,
    PointsEntryOut,
    TierOut,
)
from haina.o2o.schemas import (
    BookingOut,
    FitmentRuleOut,
    NearbyOut,
    PartnershipOut,
    RatingOut,
    SearchOut,
    ServicePointOut,
    SlotsOut,
)
from haina.orders.schemas import OrderOut
from haina.payments.schemas import (
    BalanceOut,
    JournalEntryOut,
    PaymentIntentOut,
    PayoutOut,
    RefundOut,
)
from haina.platform.schemas import AppCreated, AppOut, GrantOut, InstallationOut, TenantOut
from haina.privacy.schemas import DataRequestOut, RetentionKindOut
from haina.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    EndpointCreated,
    EndpointOut,
    ReplayOut,
    SecretOut,
)

if TYPE_CHECKING:
    from haina.client.core import Haina


def _json(fields: dict[str, Any]) -> dict[str, Any]:
    """Request fields with ``None`` left out (the API's defaults apply)."""
    return {k: (v.isoformat() if isinstance(v, dt.datetime | dt.date) else v)
            for k, v in fields.items() if v is not None}


class _Api:
    def __init__(self, client: Haina) -> None:
        self._c = client


class Members(_Api):
    def create(self, **fields: Any) -> MemberOut:
        return self._c.call(MemberOut, "POST", "/v1/members", json=_json(fields))

    def get(self, member_id: str) -> MemberOut:
        return self._c.call(MemberOut, "GET", f"/v1/members/{member_id}")

    def update(self, member_id: str, **fields: Any) -> MemberOut:
        return self._c.call(MemberOut, "PATCH", f"/v1/members/{member_id}", json=fields)

    def list(self, **params: Any) -> Page[MemberOut]:
        return self._c.call(Page[MemberOut], "GET", "/v1/members", params=params)

    def iterate(self, **params: Any) -> Iterator[MemberOut]:
        return self._c.iterate(MemberOut, "/v1/members", **params)

    def add_identity(self, member_id: str, kind: str, value: str,
                     channel: str | None = None) -> IdentityOut:
        return self._c.call(IdentityOut, "POST", f"/v1/members/{member_id}/identities",
                            json=_json({"kind": kind, "value": value, "channel": channel}))

    def merge(self, member_id: str, other_id: str) -> MemberOut:
        return self._c.call(MemberOut, "POST", f"/v1/members/{member_id}/merge",
                            json={"other_id": other_id})

    def points(self, member_id: str, **params: Any) -> Page[PointsEntryOut]:
        return self._c.call(Page[PointsEntryOut], "GET", f"/v1/members/{member_id}/points",
                            params=params)

    def adjust_points(self, member_id: str, points: int, reason: str) -> PointsEntryOut:
        return self._c.call(PointsEntryOut, "POST",
                            f"/v1/members/{member_id}/points/adjustments",
                            json={"points": points, "reason": reason})

    def set_consents(self, member_id: str, **consents: bool | str) -> MemberOut:
        return self._c.call(MemberOut, "PUT", f"/v1/members/{member_id}/consents",
                            json=consents)

    def consent_log(self, member_id: str, **params: Any) -> Page[ConsentRecordOut]:
        return self._c.call(Page[ConsentRecordOut], "GET",
                            f"/v1/members/{member_id}/consent-log", params=params)


class DataRequests(_Api):
    """A member's data exported or erased (PIPL), and the apps' acknowledgements."""

    def create(self, member_id: str, kind: str) -> DataRequestOut:
        """``kind``: ``export`` or ``erase`` (a second erasure answers the first)."""
        return self._c.call(DataRequestOut, "POST", f"/v1/members/{member_id}/data-requests",
                            json={"kind": kind})

    def get(self, data_request_id: str) -> DataRequestOut:
        return self._c.call(DataRequestOut, "GET", f"/v1/data-requests/{data_request_id}")

    def list(self, member_id: str | None = None, **params: Any) -> Page[DataRequestOut]:
        path = (f"/v1/members/{member_id}/data-requests" if member_id
                else "/v1/data-requests")
        return self._c.call(Page[DataRequestOut], "GET", path, params=params)

    def archive(self, data_request_id: str) -> bytes:
        """An export's zip (data.json and one CSV per table)."""
        return self._c.request("GET", f"/v1/data-requests/{data_request_id}/archive").content

    def acknowledge(self, data_request_id: str) -> DataRequestOut:
        """An app confirms it carried out the request (its token for the merchant)."""
        return self._c.call(DataRequestOut, "POST",
                            f"/v1/data-requests/{data_request_id}/acknowledgements")

    def addressed_to_me(self, **params: Any) -> Page[DataRequestOut]:
        """Requests addressed to the calling app across merchants (its own token)."""
        return self._c.call(Page[DataRequestOut], "GET", "/v1/apps/me/data-requests",
                            params=params)

    def acknowledge_as_app(self, data_request_id: str) -> DataRequestOut:
        """The same with the app's own token (after an uninstall, the only way)."""
        return self._c.call(DataRequestOut, "POST", "/v1/apps/me/acknowledgements",
                            json={"data_request_id": data_request_id})

    def retention(self) -> builtins.list[RetentionKindOut]:
        return self._c.call(builtins.list[RetentionKindOut], "GET", "/v1/retention")


class Tiers(_Api):
    def create(self, **fields: Any) -> TierOut:
        return self._c.call(TierOut, "POST", "/v1/tiers", json=_json(fields))

    def get(self, tier_id: str) -> TierOut:
        return self._c.call(TierOut, "GET", f"/v1/tiers/{tier_id}")

    def update(self, tier_id: str, **fields: Any) -> TierOut:
        return self._c.call(TierOut, "PATCH", f"/v1/tiers/{tier_id}", json=fields)

    def list(self, **params: Any) -> Page[TierOut]:
        return self._c.call(Page[TierOut], "GET", "/v1/tiers", params=params)


class Products(_Api):
    def create(self, **fields: Any) -> ProductOut:
        return self._c.call(ProductOut, "POST", "/v1/products", json=_json(fields))

    def get(self, product_id: str) -> ProductOut:
        return self._c.call(ProductOut, "GET", f"/v1/products/{product_id}")

    def update(self, product_id: str, **fields: Any) -> ProductOut:
        return self._c.call(ProductOut, "PATCH", f"/v1/products/{product_id}", json=fields)

    def list(self, **params: Any) -> Page[ProductOut]:
        return self._c.call(Page[ProductOut], "GET", "/v1/products", params=params)

    def iterate(self, **params: Any) -> Iterator[ProductOut]:
        return self._c.iterate(ProductOut, "/v1/products", **params)

    def add_variant(self, product_id: str, **fields: Any) -> ProductOut:
        return self._c.call(ProductOut, "POST", f"/v1/products/{product_id}/variants",
                            json=_json(fields))

    def update_variant(self, variant_id: str, **fields: Any) -> ProductOut:
        return self._c.call(ProductOut, "PATCH", f"/v1/variants/{variant_id}", json=fields)

    def upload_media(self, product_id: str, filename: str, content: bytes, content_type: str,
                     alt: str | None = None) -> MediaOut:
        return self._c.call(MediaOut, "POST", f"/v1/products/{product_id}/media",
                            files={"file": (filename, content, content_type)},
                            data=_json({"alt": alt}))

    def delete_media(self, media_id: str) -> None:
        self._c.request("DELETE", f"/v1/media/{media_id}")


class Categories(_Api):
    def create(self, **fields: Any) -> CategoryOut:
        return self._c.call(CategoryOut, "POST", "/v1/categories", json=_json(fields))

    def list(self, **params: Any) -> Page[CategoryOut]:
        return self._c.call(Page[CategoryOut], "GET", "/v1/categories", params=params)


class Inventory(_Api):
    def create_location(self, **fields: Any) -> LocationOut:
        return self._c.call(LocationOut, "POST", "/v1/locations", json=_json(fields))

    def locations(self, **params: Any) -> Page[LocationOut]:
        return self._c.call(Page[LocationOut], "GET", "/v1/locations", params=params)

    def levels(self, **params: Any) -> Page[LevelOut]:
        return self._c.call(Page[LevelOut], "GET", "/v1/inventory/levels", params=params)

    def adjust(self, **fields: Any) -> AdjustmentOut:
        return self._c.call(AdjustmentOut, "POST", "/v1/inventory/adjustments",
                            json=_json(fields))

    def adjustments(self, **params: Any) -> Page[AdjustmentOut]:
        return self._c.call(Page[AdjustmentOut], "GET", "/v1/inventory/adjustments",
                            params=params)

    def reserve(self, **fields: Any) -> ReservationOut:
        return self._c.call(ReservationOut, "POST", "/v1/reservations", json=_json(fields))

    def reservation(self, reservation_id: str) -> ReservationOut:
        return self._c.call(ReservationOut, "GET", f"/v1/reservations/{reservation_id}")

    def release(self, reservation_id: str) -> ReservationOut:
        return self._c.call(ReservationOut, "DELETE", f"/v1/reservations/{reservation_id}")


class Carts(_Api):
    def create(self, **fields: Any) -> CartOut:
        return self._c.call(CartOut, "POST", "/v1/carts", json=_json(fields))

    def get(self, cart_id: str) -> CartOut:
        return self._c.call(CartOut, "GET", f"/v1/carts/{cart_id}")

    def list(self, **params: Any) -> Page[CartSummaryOut]:
        """Carts newest first, lines counted (``status`` open, ordered or abandoned,
        ``member_id``, ``updated_gte``, ``updated_lt``, ``limit``, ``cursor``)."""
        return self._c.call(Page[CartSummaryOut], "GET", "/v1/carts", params=params)

    def iterate(self, **params: Any) -> Iterator[CartSummaryOut]:
        return self._c.iterate(CartSummaryOut, "/v1/carts", **params)

    def add(self, cart_id: str, sku: str, quantity: int = 1) -> CartOut:
        return self._c.call(CartOut, "POST", f"/v1/carts/{cart_id}/lines",
                            json={"sku": sku, "quantity": quantity})

    def set_quantity(self, cart_id: str, sku: str, quantity: int) -> CartOut:
        return self._c.call(CartOut, "PUT", f"/v1/carts/{cart_id}/lines/{sku}",
                            json={"quantity": quantity})

    def checkout(self, cart_id: str, **fields: Any) -> OrderOut:
        return self._c.call(OrderOut, "POST", f"/v1/carts/{cart_id}/checkout",
                            json=_json(fields))

    def price(self, lines: builtins.list[dict[str, Any]], **fields: Any) -> PriceOut:
        """Price lines now (promotions and a coupon, each line explained); nothing claimed."""
        return self._c.call(PriceOut, "POST", "/v1/carts/price",
                            json=_json({"lines": lines, **fields}))


class Orders(_Api):
    def create(self, **fields: Any) -> OrderOut:
        return self._c.call(OrderOut, "POST", "/v1/orders", json=_json(fields))

    def get(self, order_id: str) -> OrderOut:
        return self._c.call(OrderOut, "GET", f"/v1/orders/{order_id}")

    def list(self, **params: Any) -> Page[OrderOut]:
        return self._c.call(Page[OrderOut], "GET", "/v1/orders", params=params)

    def iterate(self, **params: Any) -> Iterator[OrderOut]:
        return self._c.iterate(OrderOut, "/v1/orders", **params)

    def timeline(self, order_id: str, **params: Any) -> dict[str, Any]:
        return self._c.request("GET", f"/v1/orders/{order_id}/timeline", params=params).json()

    def ship(self, order_id: str, carrier: str, tracking_number: str | None = None,
             lines: builtins.list[dict[str, Any]] | None = None) -> OrderOut:
        return self._c.call(OrderOut, "POST", f"/v1/orders/{order_id}/shipments",
                            json=_json({"carrier": carrier, "tracking_number": tracking_number,
                                        "lines": lines}))

    def complete(self, order_id: str) -> OrderOut:
        return self._c.call(OrderOut, "POST", f"/v1/orders/{order_id}/complete")

    def cancel(self, order_id: str, reason: str | None = None) -> OrderOut:
        return self._c.call(OrderOut, "POST", f"/v1/orders/{order_id}/cancel",
                            json=_json({"reason": reason}))


class Payments(_Api):
    def create_intent(self, order_id: str, payment_method: dict[str, Any],
                      capture_method: str = "automatic") -> PaymentIntentOut:
        return self._c.call(PaymentIntentOut, "POST", "/v1/payment_intents", json={
            "order_id": order_id, "payment_method": payment_method,
            "capture_method": capture_method})

    def intent(self, intent_id: str) -> PaymentIntentOut:
        return self._c.call(PaymentIntentOut, "GET", f"/v1/payment_intents/{intent_id}")

    def intents(self, **params: Any) -> Page[PaymentIntentOut]:
        return self._c.call(Page[PaymentIntentOut], "GET", "/v1/payment_intents",
                            params=params)

    def capture(self, intent_id: str, amount: dict[str, str] | None = None) -> PaymentIntentOut:
        return self._c.call(PaymentIntentOut, "POST",
                            f"/v1/payment_intents/{intent_id}/capture",
                            json=_json({"amount": amount}))

    def cancel_intent(self, intent_id: str) -> PaymentIntentOut:
        return self._c.call(PaymentIntentOut, "POST", f"/v1/payment_intents/{intent_id}/cancel")

    def refund(self, **fields: Any) -> RefundOut:
        return self._c.call(RefundOut, "POST", "/v1/refunds", json=_json(fields))

    def refunds(self, **params: Any) -> Page[RefundOut]:
        return self._c.call(Page[RefundOut], "GET", "/v1/refunds", params=params)

    def payout(self, **fields: Any) -> PayoutOut:
        return self._c.call(PayoutOut, "POST", "/v1/payouts", json=_json(fields))


class Ledger(_Api):
    def balances(self, **params: Any) -> Page[BalanceOut]:
        return self._c.call(Page[BalanceOut], "GET", "/v1/ledger/balances", params=params)

    def entries(self, **params: Any) -> Page[JournalEntryOut]:
        return self._c.call(Page[JournalEntryOut], "GET", "/v1/ledger/entries", params=params)


class Analytics(_Api):
    """Lifecycle analytics (answers as plain dicts: the shapes are documented at /docs)."""

    def refresh(self, **fields: Any) -> dict[str, Any]:
        return self._c.request("POST", "/v1/analytics/refresh", json=_json(fields)).json()

    def job(self, job_id: str) -> dict[str, Any]:
        return self._c.request("GET", f"/v1/analytics/jobs/{job_id}").json()

    def member(self, member_id: str) -> dict[str, Any]:
        return self._c.request("GET", f"/v1/analytics/members/{member_id}").json()

    def segments(self, **params: Any) -> dict[str, Any]:
        return self._c.request("GET", "/v1/analytics/segments", params=params).json()

    def save_segment(self, name: str, rule: dict[str, Any]) -> dict[str, Any]:
        return self._c.request("POST", "/v1/analytics/segments",
                               json={"name": name, "rule": rule}).json()

    def segment_members(self, segment_id: str) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self._c.request("GET", f"/v1/analytics/segments/{segment_id}/members",
                                   params={"cursor": cursor}).json()
            yield from page["data"]
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                return


class Webhooks(_Api):
    def create_endpoint(self, url: str, event_types: list[str],
                        description: str | None = None) -> EndpointCreated:
        return self._c.call(EndpointCreated, "POST", "/v1/webhook-endpoints",
                            json=_json({"url": url, "event_types": event_types,
                                        "description": description}))

    def endpoint(self, endpoint_id: str) -> EndpointOut:
        return self._c.call(EndpointOut, "GET", f"/v1/webhook-endpoints/{endpoint_id}")

    def endpoints(self, **params: Any) -> Page[EndpointOut]:
        return self._c.call(Page[EndpointOut], "GET", "/v1/webhook-endpoints", params=params)

    def update_endpoint(self, endpoint_id: str, **fields: Any) -> EndpointOut:
        return self._c.call(EndpointOut, "PATCH", f"/v1/webhook-endpoints/{endpoint_id}",
                            json=fields)

    def delete_endpoint(self, endpoint_id: str) -> None:
        self._c.request("DELETE", f"/v1/webhook-endpoints/{endpoint_id}")

    def rotate_secret(self, endpoint_id: str, grace_hours: int | None = None) -> SecretOut:
        """A new secret; the old one signs beside it for ``grace_hours`` (the server's
        default, 24, when not given; 0 stops it at once)."""
        body = None if grace_hours is None else {"grace_hours": grace_hours}
        return self._c.call(SecretOut, "POST",
                            f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret", json=body)

    def attempts(self, endpoint_id: str, **params: Any) -> Page[AttemptOut]:
        return self._c.call(Page[AttemptOut], "GET",
                            f"/v1/webhook-endpoints/{endpoint_id}/attempts", params=params)

    def replay(self, endpoint_id: str, since: dt.datetime,
               only_failed: bool = False) -> ReplayOut:
        return self._c.call(ReplayOut, "POST", f"/v1/webhook-endpoints/{endpoint_id}/replay",
                            json={"since": since.isoformat(), "only_failed": only_failed})

    def deliveries(self, **params: Any) -> Page[DeliveryOut]:
        return self._c.call(Page[DeliveryOut], "GET", "/v1/webhook-deliveries", params=params)

    def replay_delivery(self, delivery_id: str) -> DeliveryOut:
        return self._c.call(DeliveryOut, "POST",
                            f"/v1/webhook-deliveries/{delivery_id}/replay")


class Apps(_Api):
    def register(self, **fields: Any) -> AppCreated:
        return self._c.call(AppCreated, "POST", "/v1/apps", json=_json(fields))

    def get(self, app_id: str) -> AppOut:
        return self._c.call(AppOut, "GET", f"/v1/apps/{app_id}")

    def marketplace(self, **params: Any) -> Page[AppOut]:
        return self._c.call(Page[AppOut], "GET", "/v1/marketplace/apps", params=params)

    def grants(self, **params: Any) -> Page[GrantOut]:
        return self._c.call(Page[GrantOut], "GET", "/v1/app-grants", params=params)

    def uninstall(self, grant_id: str) -> GrantOut:
        return self._c.call(GrantOut, "POST", f"/v1/app-grants/{grant_id}/uninstall")

    def me(self) -> AppOut:
        """The calling app (a client-credentials token)."""
        return self._c.call(AppOut, "GET", "/v1/apps/me")

    def installations(self) -> list[InstallationOut]:
        """The merchants that installed the calling app (a client-credentials token)."""
        return self._c.call(list[InstallationOut], "GET", "/v1/apps/me/installations")


class Coupons(_Api):
    def create(self, **fields: Any) -> CouponOut:
        return self._c.call(CouponOut, "POST", "/v1/coupons", json=_json(fields))

    def batch(self, **fields: Any) -> CouponBatchOut:
        """Up to 1,000 coupons of the same terms with generated codes."""
        return self._c.call(CouponBatchOut, "POST", "/v1/coupons/batch", json=_json(fields))

    def get(self, coupon_id: str) -> CouponOut:
        return self._c.call(CouponOut, "GET", f"/v1/coupons/{coupon_id}")

    def update(self, coupon_id: str, **fields: Any) -> CouponOut:
        return self._c.call(CouponOut, "PATCH", f"/v1/coupons/{coupon_id}", json=fields)

    def list(self, **params: Any) -> Page[CouponOut]:
        return self._c.call(Page[CouponOut], "GET", "/v1/coupons", params=params)

    def iterate(self, **params: Any) -> Iterator[CouponOut]:
        return self._c.iterate(CouponOut, "/v1/coupons", **params)



class Promotions(_Api):
    def create(self, **fields: Any) -> PromotionOut:
        return self._c.call(PromotionOut, "POST", "/v1/promotions", json=_json(fields))

    def get(self, promotion_id: str) -> PromotionOut:
        return self._c.call(PromotionOut, "GET", f"/v1/promotions/{promotion_id}")

    def update(self, promotion_id: str, **fields: Any) -> PromotionOut:
        return self._c.call(PromotionOut, "PATCH", f"/v1/promotions/{promotion_id}",
                            json=_json(fields))

    def list(self, **params: Any) -> Page[PromotionOut]:
        return self._c.call(Page[PromotionOut], "GET", "/v1/promotions", params=params)

    def iterate(self, **params: Any) -> Iterator[PromotionOut]:
        return self._c.iterate(PromotionOut, "/v1/promotions", **params)

class Events(_Api):
    def list(self, **params: Any) -> Page[EventOut]:
        return self._c.call(Page[EventOut], "GET", "/v1/events", params=params)

    def iterate(self, **params: Any) -> Iterator[EventOut]:
        return self._c.iterate(EventOut, "/v1/events", **params)

    def audit(self, **params: Any) -> Page[EventOut]:
        return self._c.call(Page[EventOut], "GET", "/v1/audit-events", params=params)


class TenantApi(_Api):
    def get(self) -> TenantOut:
        return self._c.call(TenantOut, "GET", "/v1/tenant")

    def update_settings(self, **settings: Any) -> TenantOut:
        """Change the settings named, keep the others (PATCH: a merge patch; ``None`` puts a
        setting back to its default; ``retention={"audit_events": 400}`` changes one period)."""
        return self._c.call(TenantOut, "PATCH", "/v1/tenant/settings", json=settings)

    def replace_settings(self, **settings: Any) -> TenantOut:
        """Replace every setting: those not given go back to their defaults (PUT)."""
        return self._c.call(TenantOut, "PUT", "/v1/tenant/settings", json=settings)


class ServicePoints(_Api):
    """Service points (O2O, docs/o2o.md): where services are done, their slots, nearby."""

    def create(self, **fields: Any) -> ServicePointOut:
        """``name``, ``location`` ({lat, lng, datum}), ``timezone``, ``opening_hours``,
        ``exceptions``, ``services``, ``fitment``: the body of POST /v1/service-points."""
        return self._c.call(ServicePointOut, "POST", "/v1/service-points", json=_json(fields))

    def get(self, point_id: str) -> ServicePointOut:
        return self._c.call(ServicePointOut, "GET", f"/v1/service-points/{point_id}")

    def update(self, point_id: str, **fields: Any) -> ServicePointOut:
        return self._c.call(ServicePointOut, "PATCH", f"/v1/service-points/{point_id}",
                            json=_json(fields))

    def add_service(self, point_id: str, **fields: Any) -> ServicePointOut:
        return self._c.call(ServicePointOut, "POST", f"/v1/service-points/{point_id}/services",
                            json=_json(fields))

    def update_service(self, point_id: str, code: str, **fields: Any) -> ServicePointOut:
        """``name``, ``capacity``, ``price``, ``resource`` (a resource's code; ``None`` takes
        the service off its resource: given fields are sent as they are)."""
        body = {k: (v.isoformat() if isinstance(v, dt.datetime | dt.date) else v)
                for k, v in fields.items()}
        return self._c.call(ServicePointOut, "PATCH",
                            f"/v1/service-points/{point_id}/services/{code}", json=body)

    def add_resource(self, point_id: str, code: str, capacity: int,
                     name: str | None = None) -> ServicePointOut:
        """What services of the point share, ``capacity`` at once (a lift, a stylist)."""
        return self._c.call(ServicePointOut, "POST",
                            f"/v1/service-points/{point_id}/resources",
                            json=_json({"code": code, "capacity": capacity, "name": name}))

    def update_resource(self, point_id: str, code: str, **fields: Any) -> ServicePointOut:
        """``name``, ``capacity``."""
        return self._c.call(ServicePointOut, "PATCH",
                            f"/v1/service-points/{point_id}/resources/{code}",
                            json=_json(fields))

    def list(self, **params: Any) -> Page[ServicePointOut]:
        return self._c.call(Page[ServicePointOut], "GET", "/v1/service-points", params=params)

    def iterate(self, **params: Any) -> Iterator[ServicePointOut]:
        return self._c.iterate(ServicePointOut, "/v1/service-points", **params)

    def slots(self, point_id: str, service: str, date: dt.date | str) -> SlotsOut:
        """A day's slots of ``service`` at the point (its local date), with places left."""
        day = date.isoformat() if isinstance(date, dt.date) else date
        return self._c.call(SlotsOut, "GET", f"/v1/service-points/{point_id}/slots",
                            params={"service": service, "date": day})

    def ratings(self, point_id: str, **params: Any) -> Page[RatingOut]:
        """The buyers' ratings of one of your points, newest first."""
        return self._c.call(Page[RatingOut], "GET", f"/v1/service-points/{point_id}/ratings",
                            params=params)

    def add_fitment_rule(self, service: str, *, category_id: str | None = None,
                         attribute: str | None = None) -> FitmentRuleOut:
        """Goods of ``category_id``, or having ``attribute``, need ``service``."""
        return self._c.call(FitmentRuleOut, "POST", "/v1/fitment-rules", json=_json(
            {"service": service, "category_id": category_id, "attribute": attribute}))

    def fitment_rules(self) -> Page[FitmentRuleOut]:
        return self._c.call(Page[FitmentRuleOut], "GET", "/v1/fitment-rules")

    def nearby(self, lat: float, lng: float, **params: Any) -> NearbyOut:
        """Active points near a place, nearest first (``radius_km``, ``datum``, ``service``,
        ``product_id``, ``limit``); your partner installers' points too."""
        return self._c.call(NearbyOut, "GET", "/v1/service-points/nearby",
                            params={"lat": lat, "lng": lng, **params})


class Bookings(_Api):
    """Appointments in a point's slots: hold, confirm, reschedule, cancel, check in, complete."""

    def create(self, service_point_id: str, service: str, start: dt.datetime | str,
               **fields: Any) -> BookingOut:
        """Book (or ``hold=True`` for checkout) the slot starting at ``start``; a full slot
        raises HainaError with ``type`` ending in ``slot-full``."""
        return self._c.call(BookingOut, "POST", "/v1/bookings", json=_json({
            "service_point_id": service_point_id, "service": service, "start": start,
            **fields}))

    def get(self, booking_id: str) -> BookingOut:
        return self._c.call(BookingOut, "GET", f"/v1/bookings/{booking_id}")

    def list(self, **params: Any) -> Page[BookingOut]:
        return self._c.call(Page[BookingOut], "GET", "/v1/bookings", params=params)

    def iterate(self, **params: Any) -> Iterator[BookingOut]:
        return self._c.iterate(BookingOut, "/v1/bookings", **params)

    def at_partners(self, **params: Any) -> Page[BookingOut]:
        """The bookings you made at your partner installers' points."""
        return self._c.call(Page[BookingOut], "GET", "/v1/partner-bookings", params=params)

    def confirm(self, booking_id: str) -> BookingOut:
        return self._c.call(BookingOut, "POST", f"/v1/bookings/{booking_id}/confirm")

    def reschedule(self, booking_id: str, start: dt.datetime | str) -> BookingOut:
        return self._c.call(BookingOut, "POST", f"/v1/bookings/{booking_id}/reschedule",
                            json=_json({"start": start}))

    def cancel(self, booking_id: str) -> BookingOut:
        return self._c.call(BookingOut, "POST", f"/v1/bookings/{booking_id}/cancel")

    def check_in(self, booking_id: str) -> BookingOut:
        return self._c.call(BookingOut, "POST", f"/v1/bookings/{booking_id}/check-in")

    def complete(self, booking_id: str) -> BookingOut:
        return self._c.call(BookingOut, "POST", f"/v1/bookings/{booking_id}/complete")

    def rate(self, booking_id: str, member_id: str, score: int,
             comment: str | None = None) -> RatingOut:
        """Rate a completed booking on its member's behalf (1-5), once; HainaError 409
        ``already-rated`` / ``booking-not-completed``."""
        return self._c.call(RatingOut, "POST", f"/v1/bookings/{booking_id}/rating",
                            json=_json({"member_id": member_id, "score": score,
                                        "comment": comment}))


class Partnerships(_Api):
    """Merchant–installer partnerships: the installer's points in the merchant's search."""

    def invite(self, *, installer: str | None = None,
               merchant: str | None = None) -> PartnershipOut:
        """Invite an installer (as a merchant) or a merchant (as an installer), by slug."""
        return self._c.call(PartnershipOut, "POST", "/v1/partnerships",
                            json=_json({"installer": installer, "merchant": merchant}))

    def accept(self, partnership_id: str) -> PartnershipOut:
        return self._c.call(PartnershipOut, "POST", f"/v1/partnerships/{partnership_id}/accept")

    def end(self, partnership_id: str) -> PartnershipOut:
        return self._c.call(PartnershipOut, "POST", f"/v1/partnerships/{partnership_id}/end")

    def get(self, partnership_id: str) -> PartnershipOut:
        return self._c.call(PartnershipOut, "GET", f"/v1/partnerships/{partnership_id}")

    def list(self, **params: Any) -> Page[PartnershipOut]:
        return self._c.call(Page[PartnershipOut], "GET", "/v1/partnerships", params=params)


class Search(_Api):
    def __call__(self, q: str, lat: float, lng: float, **params: Any) -> SearchOut:
        """Products matching ``q`` and, for those that need a service, the nearby points that
        fit them with their next free slots (``radius_km``, ``datum``, ``limit``)."""
        return self._c.call(SearchOut, "GET", "/v1/search",
                            params={"q": q, "lat": lat, "lng": lng, **params})
