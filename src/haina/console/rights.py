"""The console's personal-information requests (``haina.privacy``, PIPL): the merchant's
export and erasure requests with their state and the apps' acknowledgements (overdue ones
marked), starting one from a member's page (owners only, after a confirmation page) and
downloading an export's archive (owners only; each download counted and audited).
Routes register on the console's router (``haina.console.web``)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from haina.console.web import PAGE_SIZE, Visit, _act, _back, _page, _t, _view, router
from haina.core.errors import Invalid
from haina.core.http import SessionDep
from haina.members import service as members
from haina.platform import service as platform
from haina.privacy import service as privacy

KINDS = ("export", "erase")


def _app_names(session: Session, v: Visit) -> dict[str, str]:
    """App id → name, of the apps the merchant installed (now or before)."""
    return {g.app_id: g.app_name for g in platform.list_grants(session, v.tenant, limit=100).data}


LISTED_KINDS = ("export", "erase", "merchant_redact")


@router.get("/console/data-requests")
@_view
def request_list(request: Request, session: SessionDep, v: Visit, kind: str | None = None,
                 overdue: str | None = None, cursor: str | None = None) -> Response:
    kind = kind if kind in LISTED_KINDS else None
    late = overdue == "1"
    page = privacy.list_requests(session, v.tenant, kind=kind, overdue=late, limit=PAGE_SIZE,
                                 cursor=cursor)
    more = None
    if page.next_cursor:
        more = request.url.path + "?" + urlencode(
            {k: val for k, val in (("kind", kind), ("overdue", "1" if late else None),
                                   ("cursor", page.next_cursor)) if val})
    return _page(request, v, "console/data_requests.html", title=_t(v, "Data requests"),
                 requests=page.data, apps=_app_names(session, v), kind=kind, overdue=late,
                 kinds=LISTED_KINDS, more=more)


@router.get("/console/data-requests/{request_id}")
@_view
def request_page(request: Request, session: SessionDep, v: Visit, request_id: str) -> Response:
    found = privacy.get_request(session, v.tenant, request_id)
    return _page(request, v, "console/data_request.html", title=_t(v, "Data request") + " "
                 + found.id, r=found, apps=_app_names(session, v))


@router.get("/console/members/{member_id}/data-requests/new")
@_view
def confirm_request(request: Request, session: SessionDep, v: Visit, member_id: str,
                    kind: str = "export") -> Response:
    """The confirmation step: what an export or an erasure of this person does."""
    member = members.get_member(session, v.tenant, member_id)
    kind = kind if kind in KINDS else "export"
    return _page(request, v, "console/data_request_new.html", title=_t(v, "Confirm"),
                 member=member, kind=kind)


@router.post("/console/members/{member_id}/data-requests")
async def start_request(request: Request, member_id: str) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        kind = form.get("kind", "")
        if kind not in KINDS:
            raise Invalid("an export or an erasure", slug="validation-error")
        if kind == "erase" and form.get("understood") != "on":
            raise Invalid("tick that an erasure cannot be undone", slug="not-confirmed")
        done, _new = privacy.request_data(session, v.tenant, member_id, kind)
        return _back(f"/console/data-requests/{done.id}", requested=done.id)

    return await _act(request, "request_data", work)


@router.post("/console/data-requests/{request_id}/archive")
async def download_archive(request: Request, request_id: str) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        content, name = privacy.download_archive(session, v.tenant, request_id)
        return Response(content, media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    return await _act(request, "download_archive", work)
