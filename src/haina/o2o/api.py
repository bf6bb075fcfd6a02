"""O2O API: service points, their services and slots, fitment rules, bookings, search."""

from __future__ import annotations

import datetime as dt

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from haina.core.context import Tenant
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create
from haina.core.pagination import Page
from haina.o2o import service
from haina.o2o.geo import MAX_RADIUS_KM, Datum
from haina.o2o.schemas import (
    SERVICE_CODE,
    BookingCreate,
    BookingOut,
    FitmentRuleIn,
    FitmentRuleOut,
    NearbyOut,
    PartnershipInvite,
    PartnershipOut,
    RatingOnBehalfIn,
    RatingOut,
    RescheduleIn,
    ResourceIn,
    ResourceUpdate,
    SearchOut,
    ServiceIn,
    ServicePointCreate,
    ServicePointOut,
    ServicePointUpdate,
    ServiceUpdate,
    SlotsOut,
)
from haina.platform.auth import require

router = Router(prefix="/v1", tags=["o2o"])

READ = Depends(require("geo:read"))
WRITE = Depends(require("geo:write"))
LAT = Query(ge=-90, le=90, description="latitude of the place searched from")
LNG = Query(ge=-180, le=180, description="longitude")
RADIUS = Query(5.0, gt=0, le=MAX_RADIUS_KM, description=f"km, at most {MAX_RADIUS_KM:g}")
DATUM = Query("wgs84", description="wgs84 (GPS) or gcj02 (maps in China)")


@router.post("/service-points", status_code=201, response_model=ServicePointOut,
             summary="Create a service point (location, hours, services, fitment)")
def post_point(session: SessionDep, request: Request, body: ServicePointCreate,
               idempotency_key: str | None = IdempotencyKeyHeader,
               tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_point(session, tenant, body))


@router.get("/service-points", response_model=Page[ServicePointOut],
            summary="Service points, newest first")
def get_points(session: SessionDep, status: str | None = Query(None, pattern="^(active|closed)$"),
               limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
               tenant: Tenant = READ) -> Page[ServicePointOut]:
    return service.list_points(session, tenant, status=status, limit=limit, cursor=cursor)


@router.get("/service-points/nearby", response_model=NearbyOut,
            summary="Active points near a place, nearest first (km on the sphere)")
def get_nearby(session: SessionDep, lat: float = LAT, lng: float = LNG,
               radius_km: float = RADIUS, datum: Datum = DATUM,
               service_code: str | None = Query(None, alias="service", pattern=SERVICE_CODE),
               product_id: str | None = Query(None, max_length=64,
                                              description="only points that fit this product"),
               limit: int = Query(20, ge=1, le=100), tenant: Tenant = READ) -> NearbyOut:
    return service.nearby(session, tenant, lat, lng, radius_km, datum=datum,
                          service=service_code, product_id=product_id, limit=limit)


@router.get("/service-points/{point_id}", response_model=ServicePointOut,
            summary="One service point")
def get_point(session: SessionDep, point_id: str, tenant: Tenant = READ) -> ServicePointOut:
    return service.get_point(session, tenant, point_id)


@router.patch("/service-points/{point_id}", response_model=ServicePointOut,
              summary="Change a point (hours, exceptions, fitment, location; close it)")
def patch_point(session: SessionDep, point_id: str, body: ServicePointUpdate,
                tenant: Tenant = WRITE) -> ServicePointOut:
    return service.update_point(session, tenant, point_id, body)


@router.post("/service-points/{point_id}/services", status_code=201,
             response_model=ServicePointOut, summary="Offer another service at a point")
def post_service(session: SessionDep, request: Request, point_id: str, body: ServiceIn,
                 idempotency_key: str | None = IdempotencyKeyHeader,
                 tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.add_service(session, tenant, point_id, body))


@router.patch("/service-points/{point_id}/services/{code}", response_model=ServicePointOut,
              summary="Change a service's name, capacity, price or shared resource")
def patch_service(session: SessionDep, point_id: str, code: str, body: ServiceUpdate,
                  tenant: Tenant = WRITE) -> ServicePointOut:
    return service.update_service(session, tenant, point_id, code, body)


@router.post("/service-points/{point_id}/resources", status_code=201,
             response_model=ServicePointOut,
             summary="Add a resource services of the point share (a lift, a stylist)")
def post_resource(session: SessionDep, request: Request, point_id: str, body: ResourceIn,
                  idempotency_key: str | None = IdempotencyKeyHeader,
                  tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.add_resource(session, tenant, point_id, body))


@router.patch("/service-points/{point_id}/resources/{resource_code}",
              response_model=ServicePointOut, summary="Change a resource's name or capacity")
def patch_resource(session: SessionDep, point_id: str, resource_code: str,
                   body: ResourceUpdate, tenant: Tenant = WRITE) -> ServicePointOut:
    return service.update_resource(session, tenant, point_id, resource_code, body)


@router.get("/service-points/{point_id}/slots", response_model=SlotsOut,
            summary="A day's slots of a service, with the places left")
def get_slots(session: SessionDep, point_id: str,
              service_code: str = Query(alias="service", pattern=SERVICE_CODE),
              date: dt.date = Query(description="the point's local date, YYYY-MM-DD"),
              tenant: Tenant = READ) -> SlotsOut:
    return service.slots(session, tenant, point_id, service_code, date)


@router.post("/fitment-rules", status_code=201, response_model=FitmentRuleOut,
             summary="Say which goods need a service (a category, or an attribute)")
def post_rule(session: SessionDep, request: Request, body: FitmentRuleIn,
              idempotency_key: str | None = IdempotencyKeyHeader,
              tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_rule(session, tenant, body))


@router.get("/fitment-rules", response_model=Page[FitmentRuleOut],
            summary="Fitment rules, oldest first")
def get_rules(session: SessionDep, tenant: Tenant = READ) -> Page[FitmentRuleOut]:
    return service.list_rules(session, tenant)


@router.delete("/fitment-rules/{rule_id}", status_code=204, summary="Delete a fitment rule")
def delete_rule(session: SessionDep, rule_id: str, tenant: Tenant = WRITE) -> Response:
    service.delete_rule(session, tenant, rule_id)
    return Response(status_code=204)


@router.post("/bookings", status_code=201, response_model=BookingOut,
             summary="Book a slot (or hold it for checkout); 409 slot-full")
def post_booking(session: SessionDep, request: Request, body: BookingCreate,
                 idempotency_key: str | None = IdempotencyKeyHeader,
                 tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.book(session, tenant, body))


@router.get("/bookings", response_model=Page[BookingOut], summary="Bookings, newest first")
def get_bookings(session: SessionDep,
                 service_point_id: str | None = Query(None, max_length=64),
                 status: str | None = Query(
                     None, pattern="^(held|confirmed|checked_in|completed|cancelled|expired)$"),
                 order_id: str | None = Query(None, max_length=64),
                 date: dt.date | None = Query(
                     None, description="bookings starting on this local date of the point's "
                                       "(needs service_point_id): the installer's day"),
                 limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                 tenant: Tenant = READ) -> Page[BookingOut]:
    return service.list_bookings(session, tenant, point_id=service_point_id, status=status,
                                 order_id=order_id, limit=limit, cursor=cursor, day=date)


@router.get("/bookings/{booking_id}", response_model=BookingOut, summary="One booking")
def get_booking(session: SessionDep, booking_id: str, tenant: Tenant = READ) -> BookingOut:
    return service.get_booking(session, tenant, booking_id)


@router.post("/bookings/{booking_id}/confirm", response_model=BookingOut,
             summary="Confirm a hold; 409 hold-expired")
def post_confirm(session: SessionDep, booking_id: str, tenant: Tenant = WRITE) -> BookingOut:
    return service.confirm(session, tenant, booking_id)


@router.post("/bookings/{booking_id}/reschedule", response_model=BookingOut,
             summary="Move to another slot at once; 409 slot-full leaves it where it was")
def post_reschedule(session: SessionDep, booking_id: str, body: RescheduleIn,
                    tenant: Tenant = WRITE) -> BookingOut:
    return service.reschedule(session, tenant, booking_id, body.start)


@router.post("/bookings/{booking_id}/cancel", response_model=BookingOut,
             summary="Cancel; the place is given back")
def post_cancel(session: SessionDep, booking_id: str, tenant: Tenant = WRITE) -> BookingOut:
    return service.cancel(session, tenant, booking_id)


@router.post("/bookings/{booking_id}/check-in", response_model=BookingOut,
             summary="The customer has arrived")
def post_check_in(session: SessionDep, booking_id: str, tenant: Tenant = WRITE) -> BookingOut:
    return service.check_in(session, tenant, booking_id)


@router.post("/bookings/{booking_id}/complete", response_model=BookingOut,
             summary="The job is done")
def post_complete(session: SessionDep, booking_id: str, tenant: Tenant = WRITE) -> BookingOut:
    return service.complete(session, tenant, booking_id)


@router.post("/bookings/{booking_id}/rating", status_code=201, response_model=RatingOut,
             summary="Rate a completed booking on its member's behalf (once); 409 "
                     "already-rated, 409 booking-not-completed")
def post_rating(session: SessionDep, request: Request, booking_id: str, body: RatingOnBehalfIn,
                idempotency_key: str | None = IdempotencyKeyHeader,
                tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.rate(session, tenant, booking_id, body, body.member_id))


@router.get("/service-points/{point_id}/ratings", response_model=Page[RatingOut],
            summary="The ratings of one of your points, newest first")
def get_ratings(session: SessionDep, point_id: str, limit: int = Query(50, ge=1, le=200),
                cursor: str | None = None, tenant: Tenant = READ) -> Page[RatingOut]:
    return service.list_ratings(session, tenant, point_id, limit=limit, cursor=cursor)


@router.get("/search", response_model=SearchOut,
            summary="Products, and for those that need a service the nearby points that fit")
def get_search(session: SessionDep, q: str = Query(min_length=1, max_length=200),
               lat: float = LAT, lng: float = LNG, radius_km: float = RADIUS,
               datum: Datum = DATUM, limit: int = Query(10, ge=1, le=50),
               tenant: Tenant = READ) -> SearchOut:
    return service.search(session, tenant, q, lat, lng, radius_km, datum=datum, limit=limit)


@router.post("/partnerships", status_code=201, response_model=PartnershipOut,
             summary="Invite an installer (or, as an installer, a merchant) to partner")
def post_partnership(session: SessionDep, request: Request, body: PartnershipInvite,
                     idempotency_key: str | None = IdempotencyKeyHeader,
                     tenant: Tenant = WRITE) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.invite_partner(session, tenant, body))


@router.get("/partnerships", response_model=Page[PartnershipOut],
            summary="Your partnerships, newest first")
def get_partnerships(session: SessionDep,
                     status: str | None = Query(None, pattern="^(invited|active|ended)$"),
                     limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                     tenant: Tenant = READ) -> Page[PartnershipOut]:
    return service.list_partnerships(session, tenant, status=status, limit=limit,
                                     cursor=cursor)


@router.get("/partnerships/{partnership_id}", response_model=PartnershipOut,
            summary="One partnership")
def get_partnership(session: SessionDep, partnership_id: str,
                    tenant: Tenant = READ) -> PartnershipOut:
    return service.get_partnership(session, tenant, partnership_id)


@router.post("/partnerships/{partnership_id}/accept", response_model=PartnershipOut,
             summary="Accept an invitation (the invited side)")
def post_accept(session: SessionDep, partnership_id: str,
                tenant: Tenant = WRITE) -> PartnershipOut:
    return service.accept_partnership(session, tenant, partnership_id)


@router.post("/partnerships/{partnership_id}/end", response_model=PartnershipOut,
             summary="End a partnership (either side); bookings made stay")
def post_end(session: SessionDep, partnership_id: str, tenant: Tenant = WRITE) -> PartnershipOut:
    return service.end_partnership(session, tenant, partnership_id)


@router.get("/partner-bookings", response_model=Page[BookingOut],
            summary="Bookings you made at your partner installers' points, newest first")
def get_partner_bookings(session: SessionDep, limit: int = Query(50, ge=1, le=200),
                         cursor: str | None = None,
                         member_id: str | None = Query(None, max_length=64,
                                                       description="one buyer's bookings"),
                         tenant: Tenant = READ) -> Page[BookingOut]:
    return service.list_partner_bookings(session, tenant, limit=limit, cursor=cursor,
                                         member_id=member_id)
