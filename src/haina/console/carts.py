"""The console's carts (``haina.carts``): the shop's carts, newest first, filtered by state
(open, ordered) or **abandoned** (open and untouched for the shop's ``abandoned_cart_hours``,
a day unless set), or by member, each with its lines and units counted; a cart's page with its
lines priced now (as the cart would be ordered: promotions and the member's prices applied),
its member and the order it became. Read only: buyers fill carts through the storefront or an
app. Routes register on the console's router."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from haina.carts import service as carts
from haina.console.web import PAGE_SIZE, Visit, _page, _t, _view, router
from haina.core.db import utcnow
from haina.core.http import SessionDep

STATES = ("open", "ordered", "abandoned")


@router.get("/console/carts")
@_view
def cart_list(request: Request, session: SessionDep, v: Visit, state: str | None = None,
              member: str | None = None, cursor: str | None = None) -> Response:
    state = state if state in STATES else None
    member = (member or "").strip()[:40] or None
    page = carts.list_carts(session, v.tenant, status=state, member_id=member,
                            limit=PAGE_SIZE, cursor=cursor)
    more = None
    if page.next_cursor:
        more = request.url.path + "?" + urlencode(
            {k: val for k, val in (("state", state), ("member", member),
                                   ("cursor", page.next_cursor)) if val})
    idle = carts.abandoned_after(session, v.tenant)
    return _page(request, v, "console/carts.html", title=_t(v, "Carts"), carts=page.data,
                 state=state, member=member or "", states=STATES, more=more,
                 idle_since=utcnow() - idle, idle_hours=int(idle.total_seconds() // 3600))


@router.get("/console/carts/{cart_id}")
@_view
def cart_page(request: Request, session: SessionDep, v: Visit, cart_id: str) -> Response:
    cart = carts.get_cart(session, v.tenant, cart_id)
    idle = carts.abandoned_after(session, v.tenant)
    abandoned = cart.status == "open" and cart.updated_at < utcnow() - idle
    return _page(request, v, "console/cart.html", title=_t(v, "Cart") + " " + cart.id,
                 cart=cart, abandoned=abandoned)
