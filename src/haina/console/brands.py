"""The console's qualification files of cross-border brands (``haina.crossborder``): the
merchant's files with their status (submitted, approved, rejected, revoked) and the latest
decision, and a file's page with the owner, the agency, the authorisation, the documents (as
references: where each is kept, its number and digest) and every submission and review
decision with who made it, when and why. Reviews are platform staff's or a delegated
reviewer app's (docs/crossborder.md): the console shows them and decides nothing. Filing and
refiling are done through the API (``POST /v1/crossborder/brands``, ``…/submissions``).
Routes register on the console's router (``haina.console.web``)."""

from __future__ import annotations

import typing
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from haina.console.web import PAGE_SIZE, Visit, _page, _t, _view, router
from haina.core.http import SessionDep
from haina.crossborder import service as crossborder
from haina.crossborder.schemas import BrandStatus

STATUSES: tuple[str, ...] = typing.get_args(BrandStatus)


@router.get("/console/crossborder/brands")
@_view
def brand_list(request: Request, session: SessionDep, v: Visit, status: str | None = None,
               cursor: str | None = None) -> Response:
    status = status if status in STATUSES else None
    page = crossborder.list_brands(session, v.tenant, status=status, limit=PAGE_SIZE,
                                   cursor=cursor)
    more = None
    if page.next_cursor:
        more = request.url.path + "?" + urlencode(
            {k: val for k, val in (("status", status), ("cursor", page.next_cursor)) if val})
    return _page(request, v, "console/brands.html", title=_t(v, "Qualification files"),
                 brands=page.data, status=status, statuses=STATUSES, more=more)


@router.get("/console/crossborder/brands/{brand_id}")
@_view
def brand_page(request: Request, session: SessionDep, v: Visit, brand_id: str) -> Response:
    brand = crossborder.get_brand(session, v.tenant, brand_id)
    return _page(request, v, "console/brand.html", title=brand.name, brand=brand)
