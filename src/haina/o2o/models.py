from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Double,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, JSONType, Minor, UTCDateTime, tenant_fk

#: a point whose row goes in the search's index-only band index on PostgreSQL (``{p}``: the
#: table's alias or nothing). Bounded so that the index tuple stays well under a B-tree's
#: 2,704-byte limit: fitment as jsonb takes at most ~4 × its text (lists of one-digit
#: numbers), so ≤ ~1.2 kB, the codes ≤ 400 bytes, the rest ~150
BAND_SHORT = ("octet_length({p}service_codes) <= 400 "
              "AND octet_length(CAST({p}fitment AS TEXT)) <= 300")
#: PostgreSQL's band of a point for the search's indexes: 0.04° of latitude (~4.4 km), wider
#: than ``lat_band`` (0.01°, SQLite's): a box of a few km is one or two index ranges, and
#: the points of a band outside the box's latitudes are passed over inside the index
PG_BANDS_PER_DEGREE = 25
PG_BAND = "floor({p}lat * 25)"


class ServicePoint(Base):
    """A shop or bay where services are done: located in WGS-84 (GCJ-02 is converted on the
    way in and out), indexed by its h3 cells, open by its hours in its own time zone."""

    __tablename__ = "service_points"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      Index("ix_service_points_tenant_h3_r7", "tenant_id", "h3_r7"),
                      Index("ix_service_points_tenant_h3_r5", "tenant_id", "h3_r5"),
                      Index("ix_service_points_tenant_h3_r9", "tenant_id", "h3_r9"),
                      # the nearest-first search's box: a band, a longitude range, latitudes.
                      # On SQLite one index on lat_band. On PostgreSQL two partial ones on
                      # wider bands (PG_BAND): the points whose service codes and fitment
                      # are short (nearly all) in one that also holds what the search
                      # filters and answers, so it reads no table row (index-only); the
                      # others in a plain one (o2o/search.py)
                      Index("ix_service_points_tenant_band", "tenant_id", "lat_band", "lng",
                            "lat").ddl_if(dialect="sqlite"),
                      Index("ix_service_points_band_short", "tenant_id",
                            text(PG_BAND.format(p="")), "lng", "lat",
                            postgresql_include=["id", "status", "service_codes", "fitment"],
                            postgresql_where=text(BAND_SHORT.format(p=""))
                            ).ddl_if(dialect="postgresql"),
                      Index("ix_service_points_band_long", "tenant_id",
                            text(PG_BAND.format(p="")), "lng", "lat",
                            postgresql_where=text(f"NOT ({BAND_SHORT.format(p='')})")
                            ).ddl_if(dialect="postgresql"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))  # the street: an order's line1
    phone: Mapped[str | None] = mapped_column(String(32))
    # the rest of its postal address, where goods booked with a job there are shipped
    province: Mapped[str | None] = mapped_column(String(64))
    city: Mapped[str | None] = mapped_column(String(64))
    district: Mapped[str | None] = mapped_column(String(64))
    postal_code: Mapped[str | None] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2), server_default="CN")
    lat: Mapped[float] = mapped_column(Double)  # WGS-84
    lng: Mapped[float] = mapped_column(Double)
    h3_r5: Mapped[str] = mapped_column(String(16))
    h3_r7: Mapped[str] = mapped_column(String(16))
    h3_r9: Mapped[str] = mapped_column(String(16))
    lat_band: Mapped[int] = mapped_column(Integer)  # geo.lat_band(lat)
    timezone: Mapped[str] = mapped_column(String(64))
    # [{"weekday": 1, "open": "09:00", "close": "18:00"}, …] (1 = Monday)
    opening_hours: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    # [{"date": "2026-12-25", "open": null, "close": null, "note": …}, …]: closed, or other hours
    exceptions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    # attribute code → [min, max] (numbers) or [allowed values] (text): which goods it fits
    fitment: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))  # active | closed
    # the codes of the services it offers, each followed by a space, after a leading one
    # (" car-wash tire-fitting "): a search tests them in its index, without a join; kept by
    # create_point and add_service (services are never removed)
    service_codes: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # its buyers' ratings (``o2o_ratings``): how many and the sum of their scores, each
    # rating adding to both in one conditional-free UPDATE (``x = x + 1``) in its transaction
    rating_count: Mapped[int] = mapped_column(Integer, server_default="0")
    rating_sum: Mapped[int] = mapped_column(Integer, server_default="0")


class PointService(Base):
    """A service a point offers (``tire-fitting``): how long, how many at once (bays or
    staff), the buffers around each job, and its price."""

    __tablename__ = "point_services"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      UniqueConstraint("tenant_id", "point_id", "code",
                                       name="uq_point_services_tenant_point_code"),
                      Index("ix_point_services_tenant_code", "tenant_id", "code"),
                      Index("ix_point_services_next_free_until", "next_free_until"),
                      tenant_fk("point_id", "service_points"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    point_id: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)
    buffer_before_minutes: Mapped[int] = mapped_column(Integer)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer)
    price_minor: Mapped[int] = mapped_column(Minor)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # the next free slots, precomputed at ``since``: {"since": …, "slots": [[start (UTC ISO
    # 8601), places left], …]}, the first ``bookings.NEXT_FREE_KEPT`` within a week; exact
    # from ``since`` while now < ``next_free_until`` (None: stale, computed on read)
    next_free: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    next_free_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # the point's resource (a lift, a stylist) this service shares with others: a booking
    # takes a place of the service's slot and of the resource for its whole span
    resource_id: Mapped[str | None] = mapped_column(String(40))


class ServiceResource(Base):
    """What several services of a point use one at a time (a lift for fitting and alignment):
    ``capacity`` of them at once. Counted in ``resource_slots`` per ``bookings.GRAIN_MINUTES``
    stretch of time, as services of different lengths overlap there."""

    __tablename__ = "o2o_resources"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      UniqueConstraint("tenant_id", "point_id", "code",
                                       name="uq_o2o_resources_tenant_point_code"),
                      tenant_fk("point_id", "service_points"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    point_id: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ResourceSlot(Base):
    """The counter of one stretch (``bookings.GRAIN_MINUTES`` from ``start_at``) of a shared
    resource: the holds and bookings, of any of its services, whose span covers it. Made on
    first claim, as the service's slot counters."""

    __tablename__ = "o2o_resource_slots"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      UniqueConstraint("tenant_id", "resource_id", "start_at",
                                       name="uq_o2o_resource_slots_tenant_resource_start"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str] = mapped_column(String(40))
    start_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    taken: Mapped[int] = mapped_column(Integer)


class PointDensity(Base):
    """How many of a merchant's active points lie in one resolution-7 h3 cell (``id``): where
    a nearest-first search starts (fine cells where points are dense, coarse where sparse).
    Kept by point create, move, close and reopen."""

    __tablename__ = "o2o_point_density"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),)

    id: Mapped[str] = mapped_column(String(16))  # the res-7 cell
    tenant_id: Mapped[str] = mapped_column(String(40))
    points: Mapped[int] = mapped_column(Integer)


class FitmentRule(Base):
    """Goods that need a service: every product of ``category_id``, or every product that has
    the attribute ``attribute``, needs ``service_code`` (tires → tire-fitting)."""

    __tablename__ = "fitment_rules"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      Index("ix_fitment_rules_tenant_service", "tenant_id", "service_code"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    service_code: Mapped[str] = mapped_column(String(64))
    category_id: Mapped[str | None] = mapped_column(String(40))
    attribute: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class BookingSlot(Base):
    """The counter of one slot of one service: ``taken`` holds and bookings. A claim is one
    conditional UPDATE (``taken < capacity``), exact at any concurrency; the row is made on
    first claim (INSERT … ON CONFLICT DO NOTHING on the unique key)."""

    __tablename__ = "booking_slots"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      UniqueConstraint("tenant_id", "service_id", "start_at",
                                       name="uq_booking_slots_tenant_service_start"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    service_id: Mapped[str] = mapped_column(String(40))
    start_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    taken: Mapped[int] = mapped_column(Integer)


class Booking(Base):
    """One customer's appointment: ``held`` (until ``expires_at``) → ``confirmed`` →
    ``checked_in`` → ``completed``; or ``cancelled`` / ``expired``, which give the slot back."""

    __tablename__ = "bookings"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      Index("ix_bookings_tenant_service_start", "tenant_id", "service_id",
                            "start_at"),
                      Index("ix_bookings_tenant_point_start", "tenant_id", "point_id",
                            "start_at"),
                      Index("ix_bookings_tenant_order", "tenant_id", "order_id"),
                      Index("ix_bookings_status_expiry", "status", "expires_at"),
                      tenant_fk("point_id", "service_points"),
                      tenant_fk("service_id", "point_services"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    point_id: Mapped[str] = mapped_column(String(40))
    service_id: Mapped[str] = mapped_column(String(40))
    service_code: Mapped[str] = mapped_column(String(64))
    start_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    member_id: Mapped[str | None] = mapped_column(String(40))
    order_id: Mapped[str | None] = mapped_column(String(40))
    sku: Mapped[str | None] = mapped_column(String(100))  # the order line it serves
    price_minor: Mapped[int] = mapped_column(Minor)
    currency: Mapped[str] = mapped_column(String(3))
    note: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # a booking a partner merchant made at this (the installer's) point: the merchant's tenant
    # (its events are copied there) and the partnership it went through
    merchant_tenant_id: Mapped[str | None] = mapped_column(String(40))
    partnership_id: Mapped[str | None] = mapped_column(String(40))
    # the goods of its order that ship to this point (an order carrying bookings ships to the
    # booked point): [{"order_line_id", "sku", "title", "quantity"}], set when the order
    # confirms it; what the installer sees coming
    goods: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)


class Rating(Base):
    """A buyer's rating of a completed booking (one per booking): a score of 1-5 and an
    optional comment (personal information of the member: erased on request). Kept where
    the booking is (the installer's tenant for a partner's booking); its point's
    ``rating_count`` / ``rating_sum`` follow in the same transaction."""

    __tablename__ = "o2o_ratings"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      UniqueConstraint("tenant_id", "booking_id",
                                       name="uq_o2o_ratings_tenant_booking"),
                      Index("ix_o2o_ratings_tenant_point", "tenant_id", "point_id", "id"),
                      Index("ix_o2o_ratings_tenant_member", "tenant_id", "member_id"),
                      tenant_fk("booking_id", "bookings"),
                      tenant_fk("point_id", "service_points"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    booking_id: Mapped[str] = mapped_column(String(40))
    point_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str | None] = mapped_column(String(40))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # a rating of a booking at a partner's point: the merchant whose buyer rated it
    merchant_tenant_id: Mapped[str | None] = mapped_column(String(40))


class Partnership(Base):
    """One side's copy of a partnership between a merchant and an installer (a tenant whose
    service points the merchant's search and checkout show and book): the same ``id`` in both
    tenants, one row each, so each side reads its partners in its own shard."""

    __tablename__ = "o2o_partnerships"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      UniqueConstraint("tenant_id", "partner_tenant_id",
                                       name="uq_o2o_partnerships_tenant_partner"))

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    partner_tenant_id: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(16))  # this side's: merchant | installer
    status: Mapped[str] = mapped_column(String(16))  # invited | active | ended
    invited_by: Mapped[str] = mapped_column(String(16))  # merchant | installer
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PartnerBooking(Base):
    """The merchant's link to a booking it made at a partner installer's point (the booking
    and its slot counter live in the installer's tenant): how the merchant finds it again."""

    __tablename__ = "o2o_partner_bookings"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      Index("ix_o2o_partner_bookings_tenant_order", "tenant_id", "order_id"),
                      Index("ix_o2o_partner_bookings_tenant_member", "tenant_id", "member_id"))

    id: Mapped[str] = mapped_column(String(40))  # the booking's id
    tenant_id: Mapped[str] = mapped_column(String(40))
    installer_tenant_id: Mapped[str] = mapped_column(String(40))
    partnership_id: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    member_id: Mapped[str | None] = mapped_column(String(40))  # the merchant's buyer
