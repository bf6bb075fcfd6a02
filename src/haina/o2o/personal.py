"""A person's bookings in a data request (``haina.privacy``): exported whole; erasure clears
the free-text note and keeps the booking (the slot, the price, the order it serves)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.db import rowcount
from haina.core.personal import export_rows
from haina.o2o.models import Booking


def export_bookings(session: Session, tenant: Tenant, member_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    return {"bookings": export_rows(session, Booking.__table__, tenant.id, "member_id",
                                    member_ids)}


def erase_bookings(session: Session, tenant: Tenant, member_ids: Sequence[str]) -> int:
    return rowcount(session.execute(update(Booking).where(
        Booking.tenant_id == tenant.id, Booking.member_id.in_(list(member_ids)),
        Booking.note.is_not(None)).values(note=None)))
