"""The console's campaign pages: the list with a create form (from a saved segment), and a
campaign's results with the lift, its interval and the chart, and its enrolment's progress
(the latest launch or re-evaluation: status, done of the audience, attempts, the job's
message) with a "re-evaluate now" button for staff and owners while it runs. Same rules as
every console page (``haina.console.web``): a session, the CSRF token, the role (read-only accounts do
not create), refusals shown as pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from haina.campaigns import service as campaigns
from haina.campaigns.schemas import CampaignCreate
from haina.console.web import (
    PAGE_SIZE,
    Visit,
    _act,
    _back,
    _first_moment,
    _last_moment,
    _page,
    _t,
    _view,
    _visit,
)
from haina.core.context import Tenant
from haina.core.errors import NotFound, Problem
from haina.core.http import Router, SessionDep

try:
    from haina.analytics import service as analytics
except ImportError:  # pragma: no cover - the extra is installed wherever tests run
    analytics = None  # type: ignore[assignment]

router = Router(include_in_schema=False)


def _segments(session: Session, v: Visit) -> list[Any]:
    return analytics.segments_overview(session, v.tenant).saved if analytics else []


def _list(request: Request, session: Session, v: Visit, code: int = 200, *,
          cursor: str | None = None, form: dict[str, str] | None = None,
          errors: list[str] | None = None) -> Response:
    page = campaigns.list_campaigns(session, v.tenant, limit=PAGE_SIZE, cursor=cursor)
    return _page(request, v, "console/campaigns.html", code, title=_t(v, "Campaigns"),
                 campaigns=page.data, segments=_segments(session, v), form=form or {},
                 errors=errors or [],
                 more=f"{request.url.path}?cursor={page.next_cursor}" if page.next_cursor
                 else None)


@router.get("/console/campaigns")
@_view
def campaign_list(request: Request, session: SessionDep, v: Visit,
                  cursor: str | None = None) -> Response:
    return _list(request, session, v, cursor=cursor)


def _day(form: dict[str, str], name: str, end: bool,
         zone: dt.tzinfo) -> str | dt.datetime | None:
    """A date field as a time in the shop's zone (the start of the day, or the end of the last
    day)."""
    value = form.get(name, "").strip()
    if not value:
        return None
    return _last_moment(value, zone) if end else _first_moment(value, zone)


def _campaign_body(form: dict[str, str], currency: str, zone: dt.tzinfo) -> dict[str, Any]:
    """The form's fields as ``POST /v1/campaigns`` takes them (the model checks them)."""
    def money(name: str) -> dict[str, str] | None:
        value = form.get(name, "").strip()
        return {"amount": value, "currency": currency} if value else None

    kind = form.get("kind", "")
    discount: dict[str, Any] = {"type": kind}
    if kind == "percent":
        discount["percent"] = form.get("percent", "").strip() or None
    else:
        discount["amount"] = money("amount")
    holdout = form.get("holdout_percent", "").strip()
    starts = _day(form, "starts_on", False, zone)
    if isinstance(starts, dt.datetime) and starts.date() <= dt.datetime.now(zone).date():
        starts = None  # today (or before): now
    return {"name": form.get("name", "").strip(), "segment_id": form.get("segment_id") or None,
            "channel": form.get("channel") or "sms",
            "coupon": {"discount": discount, "min_spend": money("min_spend"),
                       "max_discount": money("max_discount") if kind == "percent" else None},
            "holdout_percent": int(holdout) if holdout.isascii() and holdout.isdigit()
            else holdout or 10,
            "starts_at": starts, "ends_at": _day(form, "ends_on", True, zone),
            "budget": money("budget")}


@router.post("/console/campaigns")
async def create_campaign(request: Request) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        try:
            body = CampaignCreate.model_validate(_campaign_body(form, v.tenant.currency,
                                                                v.fmt.zone))
        except ValidationError as exc:
            errors = [f"{'.'.join(str(p) for p in e['loc']) or _t(v, 'form')}: {e['msg']}"
                      for e in exc.errors()]
            return _list(request, session, v, 422, form=form, errors=errors)
        created = campaigns.create_campaign(session, v.tenant, body)
        return _back(f"/console/campaigns/{created.id}", campaign_created=created.name)

    return await _act(request, "create_campaign", work)


@router.get("/console/campaigns/{campaign_id}")
@_view
def campaign_page(request: Request, session: SessionDep, v: Visit,
                  campaign_id: str) -> Response:
    c = campaigns.get_campaign(session, v.tenant, campaign_id)
    results = campaigns.campaign_results(session, v.tenant, c.id)
    return _page(request, v, "console/campaign.html", title=c.name, c=c, r=results)


@router.post("/console/campaigns/{campaign_id}/reevaluate")
async def reevaluate(request: Request, campaign_id: str) -> Response:
    """Look for new members of the audience now (``POST /v1/campaigns/{id}/reevaluate``):
    queued for the worker, or the enrolment already queued or running; 409 unless it runs."""
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        c = campaigns.get_campaign(session, v.tenant, campaign_id)
        campaigns.reevaluate_campaign(session, v.tenant, c.id)
        return _back(f"/console/campaigns/{c.id}", reevaluating=c.name)

    return await _act(request, "reevaluate_campaign", work)


@router.get("/console/campaigns/{campaign_id}/lift.svg")
def campaign_plot(request: Request, session: SessionDep, campaign_id: str) -> Response:
    """The campaign's lift chart (matplotlib SVG), for the signed-in merchant only."""
    return _chart(session, request, campaign_id, campaigns.lift_plot)


@router.get("/console/campaigns/{campaign_id}/daily.svg")
def campaign_daily_plot(request: Request, session: SessionDep, campaign_id: str) -> Response:
    """The lift day by day since the launch (matplotlib SVG), for the signed-in merchant."""
    return _chart(session, request, campaign_id, campaigns.daily_plot)


def _chart(session: Session, request: Request, campaign_id: str,
           draw: Callable[[Session, Tenant, str, str], bytes]) -> Response:
    v = _visit(session, request)
    if v is None:
        return Response(status_code=404)
    try:
        body = draw(session, v.tenant, campaign_id, "svg")
    except (NotFound, Problem):
        return Response(status_code=404)
    return Response(body, media_type="image/svg+xml",
                    headers={"Cache-Control": "private, max-age=60",
                             "Content-Security-Policy": "default-src 'none'; style-src "
                                                        "'unsafe-inline'"})
