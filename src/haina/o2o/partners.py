"""Partnerships between a merchant and an installer: the installer's service points show in
the merchant's search and nearby, and the merchant books them.

Every cross-tenant read goes through a link row in the reader's own tenant: a partnership is
two rows with one id (one per side, ``o2o_partnerships``), and a booking a merchant makes at
an installer's point lives in the installer's tenant (where the slot counter is) with a link
row in the merchant's (``o2o_partner_bookings``). So each side lists its partners and its
bookings in its own shard, and a read of the other side's rows names the other tenant
explicitly, found from that link (docs/scaling.md).

Lock order (both sides' rows are written together): the rows in tenant-id order.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.db import tenant_row, utcnow
from haina.core.errors import Conflict, Invalid, not_found
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.pagination import Page, paginate
from haina.o2o.models import Booking, PartnerBooking, Partnership, ServicePoint
from haina.o2o.schemas import PartnerOut, PartnershipInvite, PartnershipOut
from haina.platform import service as platform


def _out(session: Session, row: Partnership) -> PartnershipOut:
    partner = platform.get_tenant(session, row.partner_tenant_id)
    return PartnershipOut(id=row.id, role=row.role,
                          partner=PartnerOut(slug=partner.slug, name=partner.name),
                          status=row.status, invited_by=row.invited_by,
                          created_at=row.created_at, updated_at=row.updated_at)


def _both(session: Session, tenant: Tenant, partnership_id: str) -> tuple[Partnership, Partnership]:
    """This side's row and the partner's, locked in tenant-id order."""
    mine = tenant_row(session, tenant.id, Partnership, partnership_id, "partnership")
    first, second = sorted([tenant.id, mine.partner_tenant_id])
    rows = {}
    for tenant_id in (first, second):
        rows[tenant_id] = tenant_row(session, tenant_id, Partnership, partnership_id,
                                     "partnership", lock=True)
    return rows[tenant.id], rows[mine.partner_tenant_id]


def _event(session: Session, rows: Sequence[Partnership], type_: str) -> None:
    for row in rows:
        record_event(session, row.tenant_id, type_, row.id,
                     {"status": row.status, "role": row.role,
                      "partner_tenant_id": row.partner_tenant_id})


def invite(session: Session, tenant: Tenant, data: PartnershipInvite) -> PartnershipOut:
    """Invite an installer (or, as an installer, a merchant): both sides get the row,
    ``invited``; the other side accepts. Inviting an ended partner again reopens it."""
    slug = data.installer or data.merchant
    assert slug is not None
    partner = platform.get_tenant_by_slug(session, slug)  # 404 tenant-not-found
    if partner.id == tenant.id:
        raise Invalid("a merchant cannot partner with itself", slug="partnership-with-self")
    mine_role = "merchant" if data.installer else "installer"
    their_role = "installer" if data.installer else "merchant"
    now = utcnow()
    existing = session.scalar(select(Partnership).where(
        Partnership.tenant_id == tenant.id, Partnership.partner_tenant_id == partner.id))
    if existing is not None:
        if existing.status != "ended":
            raise Conflict(f"you have a partnership with {slug!r} already ({existing.status})",
                           slug="partnership-exists", partnership_id=existing.id)
        mine, theirs = _both(session, tenant, existing.id)
        for row, role in ((mine, mine_role), (theirs, their_role)):
            row.role, row.status, row.invited_by, row.updated_at = role, "invited", mine_role, now
    else:
        ident = new_id("partnership")
        mine = Partnership(id=ident, tenant_id=tenant.id, partner_tenant_id=partner.id,
                           role=mine_role, status="invited", invited_by=mine_role,
                           created_at=now, updated_at=now)
        theirs = Partnership(id=ident, tenant_id=partner.id, partner_tenant_id=tenant.id,
                             role=their_role, status="invited", invited_by=mine_role,
                             created_at=now, updated_at=now)
        session.add_all([mine, theirs])
    session.flush()
    _event(session, [mine, theirs], "partnership.invited")
    return _out(session, mine)


def accept(session: Session, tenant: Tenant, partnership_id: str) -> PartnershipOut:
    """The invited side accepts: the partnership is active on both sides."""
    mine, theirs = _both(session, tenant, partnership_id)
    if mine.status != "invited":
        raise Conflict(f"partnership {partnership_id} is {mine.status}, not invited",
                       slug="partnership-not-invited", status_now=mine.status)
    if mine.invited_by == mine.role:
        raise Conflict("the side invited accepts, not the side that invited",
                       slug="partnership-not-yours-to-accept")
    now = utcnow()
    for row in (mine, theirs):
        row.status, row.updated_at = "active", now
    session.flush()
    _event(session, [mine, theirs], "partnership.accepted")
    return _out(session, mine)


def end(session: Session, tenant: Tenant, partnership_id: str) -> PartnershipOut:
    """Either side ends it: the installer's points leave the merchant's search and take no
    new bookings from it; bookings already made stay, visible to both."""
    mine, theirs = _both(session, tenant, partnership_id)
    if mine.status == "ended":
        return _out(session, mine)
    now = utcnow()
    for row in (mine, theirs):
        row.status, row.updated_at = "ended", now
    session.flush()
    _event(session, [mine, theirs], "partnership.ended")
    return _out(session, mine)


def get_partnership(session: Session, tenant: Tenant, partnership_id: str) -> PartnershipOut:
    return _out(session, tenant_row(session, tenant.id, Partnership, partnership_id,
                                    "partnership"))


def list_partnerships(session: Session, tenant: Tenant, *, status: str | None = None,
                      limit: int = 50, cursor: str | None = None) -> Page[PartnershipOut]:
    stmt = select(Partnership).where(Partnership.tenant_id == tenant.id)
    if status:
        stmt = stmt.where(Partnership.status == status)
    return paginate(session, stmt, Partnership.id, limit=limit, cursor=cursor,
                    convert=lambda r: _out(session, r), kind="partnership")


def installers(session: Session, tenant: Tenant) -> dict[str, str]:
    """The merchant's active installers: tenant id → partnership id."""
    return {tenant_id: ident for tenant_id, ident in session.execute(
        select(Partnership.partner_tenant_id, Partnership.id).where(
            Partnership.tenant_id == tenant.id, Partnership.role == "merchant",
            Partnership.status == "active"))}


def acting_as(session: Session, tenant_id: str, caller: Tenant) -> Tenant:
    """The installer's tenant, as the merchant's call acts there (the caller's scopes)."""
    owner = platform.get_tenant(session, tenant_id)
    return Tenant(id=owner.id, slug=owner.slug, scopes=caller.scopes, currency=owner.currency)


def point_owner(session: Session, tenant: Tenant,
                point_id: str) -> tuple[Tenant, str | None]:
    """Whose point this is, for the caller: (its own tenant, None), or (an active installer
    partner's tenant, the partnership id); 404 ``service-point-not-found`` otherwise."""
    if session.scalar(select(ServicePoint.id).where(ServicePoint.tenant_id == tenant.id,
                                                    ServicePoint.id == point_id)):
        return tenant, None
    for installer_id, partnership_id in installers(session, tenant).items():
        if session.scalar(select(ServicePoint.id).where(ServicePoint.tenant_id == installer_id,
                                                        ServicePoint.id == point_id)):
            return acting_as(session, installer_id, tenant), partnership_id
    raise not_found("service point", point_id)


def booking_owner(session: Session, tenant: Tenant, booking_id: str) -> Tenant:
    """Where a booking the caller may act on lives: its own tenant, or (through its link row)
    the installer's, whatever the partnership's state now; 404 ``booking-not-found``."""
    if session.scalar(select(Booking.id).where(Booking.tenant_id == tenant.id,
                                               Booking.id == booking_id)):
        return tenant
    link = session.get(PartnerBooking, (tenant.id, booking_id))
    if link is None:
        raise not_found("booking", booking_id)
    return acting_as(session, link.installer_tenant_id, tenant)


def link_booking(session: Session, merchant: Tenant, installer_id: str, booking_id: str,
                 partnership_id: str, member_id: str | None = None) -> None:
    session.add(PartnerBooking(id=booking_id, tenant_id=merchant.id,
                               installer_tenant_id=installer_id, partnership_id=partnership_id,
                               created_at=utcnow(), member_id=member_id))
    session.flush()


def link_order(session: Session, merchant_tenant_id: str, booking_id: str,
               order_id: str | None) -> None:
    link = session.get(PartnerBooking, (merchant_tenant_id, booking_id))
    if link is not None:
        link.order_id = order_id
        session.flush()


def linked_for_order(session: Session, tenant: Tenant, order_id: str) -> list[str]:
    """Ids of the bookings at partners' points an order of the merchant's carries."""
    return list(session.scalars(select(PartnerBooking.id).where(
        PartnerBooking.tenant_id == tenant.id, PartnerBooking.order_id == order_id)
        .order_by(PartnerBooking.id)))


def linked_page(session: Session, tenant: Tenant, limit: int, cursor: str | None,
                member_id: str | None = None) -> Page[PartnerBooking]:
    stmt = select(PartnerBooking).where(PartnerBooking.tenant_id == tenant.id)
    if member_id is not None:
        stmt = stmt.where(PartnerBooking.member_id == member_id)
    return paginate(session, stmt, PartnerBooking.id, limit=limit, cursor=cursor,
                    convert=lambda r: r, kind="booking")
