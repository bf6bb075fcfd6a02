"""The console's cross-border pages (``haina.crossborder``): the customs declarations with
their state, and a declaration's page with the three-document check rule by rule (each
disagreeing field named), the receipts, the tax bill and the messages as sent, with the
buyer's ID number masked everywhere (the console never asks for ``crossborder:identity``).
Routes register on the console's router (``haina.console.web``)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from haina.console.web import PAGE_SIZE, Visit, _page, _t, _view, router
from haina.core.errors import NotFound
from haina.core.http import SessionDep
from haina.crossborder import service as crossborder


@router.get("/console/crossborder")
@_view
def declaration_list(request: Request, session: SessionDep, v: Visit, status: str | None = None,
                     cursor: str | None = None) -> Response:
    status = status if status in crossborder.DECLARATION_STATUSES else None
    page = crossborder.list_declarations(session, v.tenant, status=status, limit=PAGE_SIZE,
                                         cursor=cursor)
    buyers = crossborder.order_records(session, v.tenant, [d.order_id for d in page.data])
    more = None
    if page.next_cursor:
        more = request.url.path + "?" + urlencode(
            {k: val for k, val in (("status", status), ("cursor", page.next_cursor)) if val})
    return _page(request, v, "console/declarations.html", title=_t(v, "Cross-border"),
                 declarations=page.data, buyers=buyers, status=status, more=more,
                 statuses=crossborder.DECLARATION_STATUSES)


@router.get("/console/crossborder/declarations/{declaration_id}")
@_view
def declaration_page(request: Request, session: SessionDep, v: Visit,
                     declaration_id: str) -> Response:
    declaration = crossborder.get_declaration(session, v.tenant, declaration_id)
    try:
        record = crossborder.get_order_record(session, v.tenant, declaration.order_id)
    except NotFound:  # erased, or kept longer than the order's record
        record = None
    return _page(request, v, "console/declaration.html",
                 title=_t(v, "Declaration") + " " + declaration.id, declaration=declaration,
                 record=record, check=crossborder.document_check(declaration))
