"""Carts: lines a buyer collects before ordering, priced afresh (as an order would be) each
time the cart is read (the storefront's buyer: unless read again unchanged within a second,
see :func:`get_cart`). Turning a cart into an order is a flow of ``haina.checkout``."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from haina.carts.models import Cart
from haina.carts.schemas import (
    MAX_LINE_QUANTITY,
    CartContents,
    CartCreate,
    CartOut,
    CartSummaryOut,
)
from haina.catalog import service as catalog
from haina.catalog.schemas import VariantRef
from haina.core import loop
from haina.core.context import Tenant
from haina.core.db import Precompiled, rowcount, utcnow
from haina.core.errors import (
    Conflict,
    Invalid,
    InvalidState,
    NotFound,
    Problem,
    not_found,
)
from haina.core.ids import new_id
from haina.core.money import Money
from haina.core.pagination import Page, paginate
from haina.core.personal import export_rows
from haina.core.trusted import construct
from haina.marketing.schemas import (
    AppliedOut,
    ExplanationOut,
    PricedLineOut,
    PriceOut,
    PriceRequest,
)
from haina.orders import service as orders
from haina.orders.schemas import LineIn, OrderLineOut
from haina.platform import service as platform
from haina.platform.schemas import TenantSettings

# the lines an order takes (orders.schemas.OrderCreate): a cart must fit into one
MAX_CART_LINES = 200
# an open cart untouched this long is abandoned (the console's carts and GET /v1/carts),
# unless the merchant set another time (TenantSettings.abandoned_cart_hours, whose default
# this is): ask abandoned_after()
ABANDONED_AFTER = dt.timedelta(hours=TenantSettings().abandoned_cart_hours)


# a cart's busy statements (the storefront's buyer reads and changes a cart several times
# a session), compiled once and run on the driver's cursor: no ORM object, no flush
_C = Cart.__table__.c
_COLUMNS = (_C.id, _C.member_id, _C.channel, _C.status, _C.order_id, _C.lines, _C.created_at,
            _C.updated_at)
_WHERE = (_C.tenant_id == bindparam("tenant_id"), _C.id == bindparam("id"))
_READ = Precompiled(select(*_COLUMNS).where(*_WHERE), typed=True)
_INSERT = Precompiled(insert(Cart.__table__).values(
    {c.key: bindparam(c.key, type_=c.type) for c in (_C.tenant_id, *_COLUMNS)}))
# a change of lines is a compare-and-set on the version read (its updated_at), the cart
# still open: no lock held between the read and the write, and no transaction needed
def _set_lines_statement(owned: bool) -> Precompiled:
    where = [*_WHERE, _C.status == bindparam("open"),
             _C.updated_at == bindparam("seen", type_=_C.updated_at.type)]
    if owned:  # the buyer's own still (a version remembered here may name its old member)
        where.append(_C.member_id == bindparam("owner"))
    return Precompiled(update(Cart.__table__).where(*where).values(
        lines=bindparam("lines", type_=_C.lines.type),
        updated_at=bindparam("updated_at", type_=_C.updated_at.type)).returning(_C.id))


_SET_LINES, _SET_LINES_OWNED = _set_lines_statement(False), _set_lines_statement(True)


def _claim_statement(owned: bool) -> Precompiled:
    """Checkout claims the open cart (the buyer's own if ``owned``) for its order in the
    statement that locks it."""
    where = [*_WHERE, _C.status == bindparam("open")]
    if owned:
        where.append(_C.member_id == bindparam("owner"))
    return Precompiled(update(Cart.__table__).where(*where).values(
        status=bindparam("ordered"), order_id=bindparam("order_id", type_=_C.order_id.type),
        updated_at=bindparam("updated_at", type_=_C.updated_at.type)).returning(
        _C.member_id, _C.channel, _C.lines), typed=True)


_CLAIM, _CLAIM_OWNED = _claim_statement(False), _claim_statement(True)
# how often a change of lines reads the cart again when another change got in between
CHANGE_ATTEMPTS = 5


class CartRow:
    """A cart as its busy statements read it (the columns of :data:`_COLUMNS`)."""

    __slots__ = ("id", "member_id", "channel", "status", "order_id", "lines", "created_at",
                 "updated_at")

    def __init__(self, id: str, member_id: str | None, channel: str, status: str,
                 order_id: str | None, lines: list[dict[str, Any]], created_at: dt.datetime,
                 updated_at: dt.datetime) -> None:
        self.id, self.member_id, self.channel, self.status = id, member_id, channel, status
        self.order_id, self.lines = order_id, lines
        self.created_at, self.updated_at = created_at, updated_at

    def copy(self) -> CartRow:
        return CartRow(self.id, self.member_id, self.channel, self.status, self.order_id,
                       [dict(x) for x in self.lines], self.created_at, self.updated_at)

    def same_as(self, other: CartRow) -> bool:
        return all(getattr(self, k) == getattr(other, k) for k in CartRow.__slots__)


# The version of a cart this process last read or wrote, by (tenant, cart): a change of
# lines starts from it without reading the cart (one statement, the compare-and-set, instead
# of two). The compare-and-set is what makes that safe: when another request or process
# changed the cart since (every write of a cart moves its updated_at), it matches nothing and
# the change reads the cart as ever; so a version kept too long costs a statement, never a
# change. Forgotten when its cart is claimed for an order; all of it when it grows past
# SEEN_MAX.
_SEEN: dict[tuple[str, str], CartRow] = {}
SEEN_MAX = 50_000


# The answer last priced here for a cart: the row it priced, when (time.monotonic), the
# Tenant it was priced for and where the caches pricing reads stood (orders.quote_stamp,
# taken before pricing). A read of the same row within ``priced_within`` seconds (the
# storefront's buyer reading the cart just added to), for the same Tenant object (its
# settings) and with the caches where they stood, is answered with it instead of pricing
# the cart again. Only carts of at most PRICED_LINES lines, at most PRICED_MAX of them (then
# it starts again: an answer is of use for a second or so); forgotten with _SEEN's entry.
_PRICED: dict[tuple[str, str], tuple[CartRow, float, Tenant, tuple, CartOut]] = {}
PRICED_MAX = 4096
PRICED_LINES = 20


def _keep_priced(tenant: Tenant, cart: CartRow, stamp: tuple | None, out: CartOut) -> None:
    """Keep ``out`` as the answer for ``cart`` (a row no one changes after), priced for
    ``tenant`` with the caches at ``stamp`` (None: not kept)."""
    if stamp is None or len(cart.lines) > PRICED_LINES:
        return
    if len(_PRICED) >= PRICED_MAX:
        _PRICED.clear()
    _PRICED[(tenant.id, cart.id)] = (cart, time.monotonic(), tenant, stamp, out)


def _kept_priced(session: Session, tenant: Tenant, cart: CartRow, within: float
                 ) -> tuple[CartOut | None, tuple | None]:
    """The answer kept for ``cart`` if it still holds (else None), and the stamp now."""
    stamp = orders.quote_stamp(session, tenant)
    kept = _PRICED.get((tenant.id, cart.id))
    if kept is None or stamp is None or kept[2] is not tenant or kept[3] != stamp \
            or time.monotonic() - kept[1] >= within or not kept[0].same_as(cart):
        return None, stamp
    return kept[4], stamp


def _forget(tenant_id: str, cart_id: str) -> None:
    _SEEN.pop((tenant_id, cart_id), None)
    _PRICED.pop((tenant_id, cart_id), None)


def _remember(tenant_id: str, cart: CartRow) -> None:
    """Keep ``cart`` as the version seen here (an object no one changes after: a copy when
    the caller goes on with it)."""
    if len(_SEEN) >= SEEN_MAX:
        _SEEN.clear()
    _SEEN[(tenant_id, cart.id)] = cart


def _cart(session: Session, tenant: Tenant, cart_id: str) -> CartRow:
    """The tenant's cart ``cart_id`` (remembered as read), or 404 ``cart-not-found``."""
    rows = _READ.rows(session, {"tenant_id": tenant.id, "id": cart_id})
    if not rows:
        _forget(tenant.id, cart_id)
        raise not_found("cart", cart_id)
    cart = CartRow(*rows[0])
    _remember(tenant.id, cart.copy())  # the caller may change its lines
    return cart


def _change_lines(session: Session, tenant: Tenant, cart_id: str, owner: str | None,
                  change: Callable[[CartRow], None], listed_only: bool = False) -> CartOut:
    """Read the open cart, ``change`` its lines, price the answer, then write the lines if
    the cart is still as read (open, same ``updated_at``); else read it again (another
    change got in between), up to :data:`CHANGE_ATTEMPTS` times (then 409 ``cart-busy``).
    The write is the last statement, so nothing after it can fail: a unit of work whose
    statements commit alone (``core.db.statements_alone``) may run it."""
    remembered = _SEEN.get((tenant.id, cart_id))
    beaten = False
    for attempt in range(CHANGE_ATTEMPTS):
        if beaten:  # by another change: let it finish (jittered: two don't meet again)
            loop.pause(random.uniform(0, 0.002 * attempt))  # yields on the event loop
        if remembered is not None:  # the version last seen here, not read again (_SEEN)
            try:
                out = _changed(session, tenant, remembered.copy(), owner, change, listed_only)
            except Problem:  # said of a version that may be old: said of the cart read
                out = None
            remembered, beaten = None, False
        else:
            out = _changed(session, tenant, _cart(session, tenant, cart_id), owner, change,
                           listed_only)
            beaten = True
        if out is not None:
            return out
        _SEEN.pop((tenant.id, cart_id), None)
    raise Conflict("the cart kept changing while this change was made: try again",
                   slug="cart-busy")


def _changed(session: Session, tenant: Tenant, cart: CartRow, owner: str | None,
             change: Callable[[CartRow], None], listed_only: bool) -> CartOut | None:
    """One try of :func:`_change_lines` from the version ``cart``: the answer if its
    compare-and-set wrote the lines, else None."""
    _owned(cart, owner)
    if cart.status != "open":
        raise InvalidState("this cart has already been ordered", slug="cart-closed",
                           order_id=cart.order_id)
    seen = cart.updated_at
    stamp = orders.quote_stamp(session, tenant)
    change(cart)
    # strictly later than the version read, whatever the clock did since
    cart.updated_at = max(utcnow(), seen + dt.timedelta(microseconds=1))
    out = _cart_out(session, tenant, cart, listed_only=listed_only)
    if not (_SET_LINES_OWNED if owner is not None else _SET_LINES).rows(session, {
            "tenant_id": tenant.id, "id": cart.id, "open": "open", "seen": seen,
            "owner": owner, "lines": cart.lines, "updated_at": cart.updated_at}):
        return None
    _remember(tenant.id, cart)
    _keep_priced(tenant, cart, stamp, out)
    return out


def _resolve(session: Session, tenant: Tenant, lines: Sequence[LineIn], listed_only: bool
             ) -> tuple[dict[str, VariantRef], str]:
    """The lines' catalogue entries (``orders.resolve_lines``: 404 for an unknown SKU, 422
    ``sku-not-for-sale``); with ``listed_only`` a SKU not for sale is not found either (404
    ``sku-not-found``: a storefront's buyer knows only listed products)."""
    try:
        return orders.resolve_lines(session, tenant, lines)
    except Invalid as exc:
        if listed_only and exc.slug == "sku-not-for-sale":
            raise not_found("sku", str(exc.extra.get("sku"))) from None
        raise


def _cart_out(session: Session, tenant: Tenant, cart: CartRow, *, member_resolved: bool = False,
              listed_only: bool = False) -> CartOut:
    """The cart priced now. Its SKUs are read once here and given to ``orders.quote``;
    ``member_resolved``: the cart's member was resolved (merges followed) in this
    transaction, and is not again."""
    lines: list[OrderLineOut] = []
    totals = None
    if cart.lines:
        wanted = [LineIn.model_construct(**ln) for ln in cart.lines]
        refs, currency = _resolve(session, tenant, wanted, listed_only)
        priced, t = orders.quote(session, tenant, wanted, member_id=cart.member_id,
                                 channel=cart.channel, check_size=False,
                                 resolved=(refs, currency), member_resolved=member_resolved)
        for i, (ln, pl) in enumerate(zip(cart.lines, priced.lines, strict=True)):
            ref = refs[ln["sku"]]
            # built from the cart's row and the catalogue's: not validated again
            lines.append(construct(
                OrderLineOut, id=f"{cart.id}:{i}", variant_id=ref.id,
                product_id=ref.product_id, sku=ref.sku, title=ref.title,
                unit_price=Money.of(ref.price_minor, currency), quantity=ln["quantity"],
                total=Money.of(ref.price_minor * ln["quantity"], currency), shipped_quantity=0,
                discount=Money.of(pl.discount, currency), booking_id=None,
                service_status=None))
        totals = orders.totals_of(t, currency)
    return construct(CartOut, id=cart.id, object="cart", status=cart.status,
                     member_id=cart.member_id, channel=cart.channel, order_id=cart.order_id,
                     lines=lines, totals=totals, created_at=cart.created_at,
                     updated_at=cart.updated_at)


def price(session: Session, tenant: Tenant, data: PriceRequest) -> PriceOut:
    """``POST /v1/carts/price``: lines priced as an order placed now would be, explained."""
    lines = [LineIn.model_construct(sku=ln.sku, quantity=ln.quantity) for ln in data.lines]
    priced, t = orders.quote(session, tenant, lines, member_id=data.member_id,
                             coupon=data.coupon, channel=data.channel)
    c = priced.currency

    def m(minor: int) -> Money:
        return Money.of(minor, c)

    return PriceOut(
        currency=c, subtotal=m(t["subtotal"]), discount=m(t["discount"]),
        shipping=m(t["shipping"]), tax=m(t["tax"]), total=m(t["total"]),
        lines=[PricedLineOut(
            sku=pl.sku, quantity=pl.quantity, unit_price=m(pl.unit_price),
            subtotal=m(pl.subtotal), discount=m(pl.discount), total=m(pl.total),
            explanation=[ExplanationOut(rule_id=e.rule_id, source=e.source, kind=e.kind,
                                        name=e.name, amount=m(e.amount), text=e.text)
                         for e in pl.explanation])
            for pl in priced.lines],
        applied=[AppliedOut(id=a.rule_id, source=a.source, kind=a.kind, name=a.name,
                            amount=m(a.amount), shipping=m(a.shipping))
                 for a in priced.applied])


def create_cart(session: Session, tenant: Tenant, data: CartCreate,
                listed_only: bool = False) -> CartOut:
    """A new cart (``listed_only``: a SKU not for sale is answered as unknown, 404)."""
    stamp = orders.quote_stamp(session, tenant)  # before anything pricing uses is read
    member_id = None
    if data.member_id:
        from haina.members import service as members
        member_id = members.resolve_buyer_id(session, tenant, data.member_id)  # 409 erased
    now = utcnow()
    cart = CartRow(id=new_id("cart"), member_id=member_id, channel=data.channel, status="open",
                   order_id=None, lines=[], created_at=now, updated_at=now)
    if data.lines:
        _resolve(session, tenant, data.lines, listed_only)  # 404 for an unknown SKU
    for ln in data.lines:
        _add_units(cart, ln)
    # priced before it is written (the SKUs were read above and the catalogue's cache keeps
    # them; the member just resolved): the insert is the last statement, nothing after it
    # can fail (a unit of work whose statements commit alone may run this)
    out = _cart_out(session, tenant, cart, member_resolved=True, listed_only=listed_only)
    _INSERT.rows(session, {"tenant_id": tenant.id, **{k: getattr(cart, k)
                                                     for k in CartRow.__slots__}})
    _remember(tenant.id, cart)
    _keep_priced(tenant, cart, stamp, out)
    return out


def _add_units(cart: CartRow, line: LineIn) -> None:
    existing = next((x for x in cart.lines if x["sku"] == line.sku), None)
    if existing is None and len(cart.lines) >= MAX_CART_LINES:
        raise Invalid(f"a cart has at most {MAX_CART_LINES} lines (as an order has)",
                      slug="too-many-lines")
    quantity = line.quantity + (existing["quantity"] if existing else 0)
    if quantity > MAX_LINE_QUANTITY:
        raise Invalid(f"at most {MAX_LINE_QUANTITY} units of one SKU per cart",
                      slug="quantity-too-large", sku=line.sku)
    cart.lines = [dict(x) for x in cart.lines if x["sku"] != line.sku] + [
        {"sku": line.sku, "quantity": quantity}]


def cart_owner(session: Session, tenant: Tenant, cart_id: str) -> str | None:
    """The member a cart is for (404 ``cart-not-found`` for no cart of the tenant's)."""
    owner = session.execute(select(Cart.member_id).where(
        Cart.tenant_id == tenant.id, Cart.id == cart_id)).first()
    if owner is None:
        raise NotFound(f"no cart {cart_id!r}", slug="cart-not-found")
    return owner[0]


def _owned(cart: CartRow, owner: str | None) -> CartRow:
    if owner is not None and cart.member_id != owner:
        raise not_found("cart", cart.id)
    return cart


def get_cart(session: Session, tenant: Tenant, cart_id: str, *,
             owner: str | None = None, priced_within: float = 0.0) -> CartOut:
    """The cart priced now; given ``owner``, a cart of another member (or of none) is not
    found (404), checked in the same read (the storefront's buyer reads their own).

    With ``priced_within`` (seconds), a cart whose row is as it was when this process last
    priced it, at most that long ago (its creation, a change of its lines or a read), for
    the same ``tenant`` object and with nothing heard of since in the caches pricing reads
    (orders.quote_stamp), is answered as it was priced then: the storefront, whose public
    answers are kept as long. What no cache tells of (a promotion's window opening or
    closing) shows at most that late; checkout prices the order now."""
    cart = _owned(_cart(session, tenant, cart_id), owner)
    if priced_within <= 0:
        return _cart_out(session, tenant, cart)
    kept, stamp = _kept_priced(session, tenant, cart, priced_within)
    if kept is not None:
        return kept
    out = _cart_out(session, tenant, cart)
    _keep_priced(tenant, cart, stamp, out)
    return out


def _summary(cart: Cart) -> CartSummaryOut:
    return CartSummaryOut(id=cart.id, status=cart.status, member_id=cart.member_id,
                          channel=cart.channel, order_id=cart.order_id,
                          lines=len(cart.lines or []),
                          units=sum(int(x.get("quantity", 0)) for x in cart.lines or []),
                          created_at=cart.created_at, updated_at=cart.updated_at)


def abandoned_after(session: Session, tenant: Tenant) -> dt.timedelta:
    """How long an open cart stays untouched before it counts as abandoned: the merchant's
    ``abandoned_cart_hours`` (default :data:`ABANDONED_AFTER`, a day)."""
    return dt.timedelta(hours=platform.tenant_settings(session, tenant).abandoned_cart_hours)


def list_carts(session: Session, tenant: Tenant, *, status: str | None = None,
               member_id: str | None = None, idle_before: dt.datetime | None = None,
               updated_gte: dt.datetime | None = None, updated_lt: dt.datetime | None = None,
               limit: int = 50, cursor: str | None = None) -> Page[CartSummaryOut]:
    """The merchant's carts, newest first, counted not priced: open or ordered, of a member,
    or left open and untouched since ``idle_before``; ``status="abandoned"`` is the latter
    with :func:`abandoned_after` (open, untouched for the merchant's ``abandoned_cart_hours``,
    a day unless set)."""
    stmt = select(Cart).where(Cart.tenant_id == tenant.id)
    if status == "abandoned":
        status = None
        idle = utcnow() - abandoned_after(session, tenant)
        idle_before = idle if idle_before is None else min(idle, idle_before)
    if status:
        stmt = stmt.where(Cart.status == status)
    if member_id:
        stmt = stmt.where(Cart.member_id == member_id)
    if idle_before is not None:
        stmt = stmt.where(Cart.status == "open", Cart.updated_at < idle_before)
    if updated_gte is not None:
        stmt = stmt.where(Cart.updated_at >= updated_gte)
    if updated_lt is not None:
        stmt = stmt.where(Cart.updated_at < updated_lt)
    return paginate(session, stmt, Cart.id, limit=limit, cursor=cursor, convert=_summary,
                    kind="cart")


def add_cart_line(session: Session, tenant: Tenant, cart_id: str, line: LineIn, *,
                  owner: str | None = None, listed_only: bool = False) -> CartOut:
    """Add units of a SKU (to its line, if the cart has one). ``owner``: as for
    :func:`get_cart`; ``listed_only``: as for :func:`create_cart`."""
    def add(cart: CartRow) -> None:
        ref = catalog.variant_by_sku(session, tenant, line.sku)
        if listed_only and ref.status != "active":
            raise not_found("sku", line.sku)
        _add_units(cart, line)

    return _change_lines(session, tenant, cart_id, owner, add, listed_only)


def set_cart_line(session: Session, tenant: Tenant, cart_id: str, sku: str,
                  quantity: int, *, owner: str | None = None) -> CartOut:
    """Set the quantity of the cart's line for ``sku`` (0 removes it); other lines stay.
    ``owner``: as for :func:`get_cart`."""
    def set_quantity(cart: CartRow) -> None:
        if not any(x["sku"] == sku for x in cart.lines):
            raise NotFound(f"the cart has no line for {sku!r}", slug="cart-line-not-found",
                           sku=sku)
        if quantity > 0:
            cart.lines = [dict(x, quantity=quantity) if x["sku"] == sku else dict(x)
                          for x in cart.lines]
        else:
            cart.lines = [dict(x) for x in cart.lines if x["sku"] != sku]

    return _change_lines(session, tenant, cart_id, owner, set_quantity)


def claim_for_checkout(session: Session, tenant: Tenant, cart_id: str, order_id: str, *,
                       owner_check: bool = False, owner: str | None = None) -> CartContents:
    """Claim an open, non-empty cart for the order ``order_id`` (about to be placed in this
    transaction) and return its lines: one UPDATE closes it and locks it until the order is
    recorded (rolled back with the order if placing fails). With ``owner_check``, a cart
    whose member is not ``owner`` is not found (404, whatever its status): the storefront's
    buyer checks out their own cart."""
    _forget(tenant.id, cart_id)
    rows = (_CLAIM_OWNED if owner_check else _CLAIM).records(session, {
        "tenant_id": tenant.id, "id": cart_id, "open": "open", "owner": owner,
        "ordered": "ordered", "order_id": order_id, "updated_at": utcnow()})
    if not rows:
        cart = _cart(session, tenant, cart_id)  # why not: 404, or closed (read unlocked)
        if owner_check and cart.member_id != owner:
            raise not_found("cart", cart_id)
        raise InvalidState("this cart has already been ordered", slug="cart-closed",
                           order_id=cart.order_id)
    claimed = rows[0]
    if not claimed.lines:  # the caller's rollback reopens it
        raise Invalid("the cart is empty", slug="cart-empty")
    return CartContents(id=cart_id, member_id=claimed.member_id, channel=claimed.channel,
                        lines=[LineIn.model_construct(**ln) for ln in claimed.lines])


# --- a person's data (haina.privacy) and retention ------------------------------------------

def export_carts(session: Session, tenant: Tenant, member_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    return {"carts": export_rows(session, Cart.__table__, tenant.id, "member_id", member_ids)}


def erase_carts(session: Session, tenant: Tenant, member_ids: Sequence[str]) -> int:
    """Open carts of the person are deleted; carts that became orders lose their member
    (the order keeps the history). Returns how many carts changed."""
    ids = list(member_ids)
    deleted = rowcount(session.execute(delete(Cart).where(
        Cart.tenant_id == tenant.id, Cart.member_id.in_(ids), Cart.status == "open")))
    kept = list(session.scalars(select(Cart).where(Cart.tenant_id == tenant.id,
                                                   Cart.member_id.in_(ids))))
    for cart in kept:
        cart.member_id = None
    session.flush()
    return deleted + len(kept)


def purge_abandoned_carts(session: Session, tenant_id: str, before: dt.datetime) -> int:
    """Delete the merchant's open carts not touched since ``before`` (retention)."""
    return rowcount(session.execute(delete(Cart).where(
        Cart.tenant_id == tenant_id, Cart.status == "open", Cart.updated_at < before)))
