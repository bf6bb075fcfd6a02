"""O2O's public face: service points, services, fitment, slots, bookings and search.

The work is split along its aggregates in private files (``points``, ``bookings``,
``search``; ``geo`` and ``hours`` are pure libraries) and re-exported here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.o2o import bookings as _bookings
from haina.o2o import partners
from haina.o2o import points as _points
from haina.o2o.bookings import (
    HoldExpired,
    NotASlot,
    SlotFull,
    book,
    cancel,
    check_in,
    complete,
    computed_next_free_slots,
    confirm,
    expire_holds,
    get_booking,
    kept_next_free,
    list_bookings,
    list_partner_bookings,
    next_free_slots,
    refresh_next_free,
    release_for_order,
    reschedule,
    slots,
)
from haina.o2o.calendar import bookings_between
from haina.o2o.lifecycle import BOOKING_LIFECYCLE
from haina.o2o.partners import (
    accept as accept_partnership,
)
from haina.o2o.partners import (
    end as end_partnership,
)
from haina.o2o.partners import (
    get_partnership,
    list_partnerships,
)
from haina.o2o.partners import (
    invite as invite_partner,
)
from haina.o2o.personal import erase_bookings, export_bookings
from haina.o2o.points import (
    add_resource,
    create_rule,
    delete_rule,
    fits,
    get_point,
    list_points,
    list_rules,
    update_point,
    update_resource,
    update_service,
)
from haina.o2o.ratings import (
    AlreadyRated,
    NotCompleted,
    erase_ratings,
    export_ratings,
    list_ratings,
    rate,
)
from haina.o2o.schemas import GoodsComing, ServiceIn, ServicePointCreate, ServicePointOut
from haina.o2o.search import nearby, nearest, next_free_of, points_within, search


def ship_to_address(session: Session, tenant: Tenant, point_id: str) -> dict[str, Any]:
    """The booked point as an order's shipping address (``orders`` ``AddressOut``): its name
    as the recipient, its phone (None if it has none), its street (``address``, cut into
    line1/line2 at 300 characters), district, city, province, postal code, country, and
    ``service_point_id``. A partner installer's point too."""
    owner, _ = partners.point_owner(session, tenant, point_id)
    p = _points.point_row(session, owner, point_id)
    street = p.address or None
    return {"name": p.name[:100], "phone": p.phone or None, "country": p.country,
            "province": p.province, "city": p.city, "district": p.district,
            "line1": street[:300] if street else None,
            "line2": street[300:] or None if street else None,
            "postal_code": p.postal_code, "service_point_id": p.id}


def create_point(session: Session, tenant: Tenant, data: ServicePointCreate) -> ServicePointOut:
    """A new point (``points.create_point``) with its services' next free slots kept at once."""
    out = _points.create_point(session, tenant, data)
    _bookings.keep_new_next_free(session, tenant.id, out.id)
    return out


def add_service(session: Session, tenant: Tenant, point_id: str,
                data: ServiceIn) -> ServicePointOut:
    """A service added to a point (``points.add_service``), its next free slots kept at once."""
    out = _points.add_service(session, tenant, point_id, data)
    _bookings.keep_new_next_free(session, tenant.id, out.id)
    return out

__all__ = [
    "BOOKING_LIFECYCLE", "accept_partnership", "end_partnership", "get_partnership",
    "invite_partner", "list_partner_bookings", "list_partnerships", "HoldExpired", "NotASlot",
    "SlotFull", "add_resource", "add_service", "update_resource", "book", "bookings_between", "cancel",
    "check_in", "complete", "computed_next_free_slots", "confirm", "create_point", "create_rule", "delete_rule",
    "erase_bookings", "export_bookings", "AlreadyRated", "NotCompleted", "GoodsComing",
    "erase_ratings", "export_ratings", "list_ratings", "rate", "ship_to_address",
    "expire_holds", "fits", "get_booking", "kept_next_free", "get_point", "list_bookings", "list_points",
    "list_rules", "nearby", "nearest", "next_free_of", "next_free_slots", "points_within", "refresh_next_free", "release_for_order", "reschedule", "search",
    "slots", "update_point", "update_service",
]
