"""The console's promotions (``haina.marketing``): the list, a create form for the common
kinds (percent off, amount off each unit, 满减 thresholds with repeat, free shipping from an
amount) and pause/resume. The other kinds (buy X get Y, bundles, tier prices, first orders)
take product lists the form does not ask for: they are made through the API. A promotion's
edit form changes what may change once it runs: its name, last day, budget (never below what
orders already hold), priority and description. Days are whole days in the shop's time zone.
Routes register on the console's router (``haina.console.web``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

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
    _w,
    router,
)
from haina.core.errors import Problem
from haina.core.http import SessionDep
from haina.marketing import service as marketing
from haina.marketing.schemas import PromotionCreate, PromotionUpdate

FORM_KINDS = ("percent", "fixed", "threshold", "free_shipping")
API_KINDS = ("buy_x_get_y", "bundle", "tier_price", "first_order")
TIERS = 3  # threshold steps the form offers (the API takes up to 20)


def _list(request: Request, session: Session, v: Visit, code: int = 200,
          cursor: str | None = None, form: dict[str, str] | None = None,
          errors: list[str] | None = None) -> Response:
    page = marketing.list_promotions(session, v.tenant, limit=PAGE_SIZE, cursor=cursor)
    return _page(request, v, "console/promotions.html", code, title=_t(v, "Promotions"),
                 promotions=page.data,
                 more=f"{request.url.path}?cursor={page.next_cursor}" if page.next_cursor else None,
                 form=form or {}, errors=errors or [], form_kinds=FORM_KINDS,
                 api_kinds=", ".join(_w(v, k) for k in API_KINDS), tiers=range(1, TIERS + 1))


@router.get("/console/promotions")
@_view
def promotion_list(request: Request, session: SessionDep, v: Visit,
                   cursor: str | None = None) -> Response:
    return _list(request, session, v, cursor=cursor)


def promotion_body(form: dict[str, str], currency: str,
                   zone: dt.tzinfo = dt.timezone(dt.timedelta(hours=8))) -> dict[str, Any]:
    """The form's fields as ``POST /v1/promotions`` takes them, only those of the kind chosen
    (the model checks them and names what is missing)."""
    def text(name: str) -> str | None:
        return form.get(name, "").strip() or None

    def money(name: str) -> dict[str, str] | None:
        value = text(name)
        return {"amount": value, "currency": currency} if value else None

    kind = form.get("kind", "")
    body: dict[str, Any] = {"name": form.get("name", "").strip(), "kind": kind,
                            "min_subtotal": money("min_subtotal"), "budget": money("budget"),
                            "exclusive": form.get("exclusive") == "on",
                            "description": form.get("description", "").strip()}
    if kind == "percent":
        body.update(percent=text("percent"), max_discount=money("max_discount"))
    elif kind == "fixed":
        body["off"] = money("off")
    elif kind == "threshold":
        body["tiers"] = [{"min_subtotal": text(f"tier{i}_min"), "off": text(f"tier{i}_off")}
                         for i in range(1, TIERS + 1)
                         if text(f"tier{i}_min") or text(f"tier{i}_off")] or None
        body.update(repeat=form.get("repeat") == "on", max_discount=money("max_discount"))
    priority = text("priority")
    if priority is not None:
        body["priority"] = int(priority) if priority.lstrip("-").isdigit() else priority
    # whole days in the shop's time zone
    if starts := text("starts_on"):
        body["starts_at"] = _first_moment(starts, zone)
    if ends := text("ends_on"):
        body["ends_at"] = _last_moment(ends, zone)
    return body


@router.post("/console/promotions")
async def create_promotion(request: Request) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        try:
            body = PromotionCreate.model_validate(promotion_body(form, v.tenant.currency,
                                                                 v.fmt.zone))
        except ValidationError as exc:
            errors = [(".".join(str(p) for p in e["loc"]) + ": " if e["loc"] else "")
                      + e["msg"] for e in exc.errors()]
            return _list(request, session, v, 422, form=form, errors=errors)
        created = marketing.create_promotion(session, v.tenant, body)
        return _back("/console/promotions", promoted=created.name)

    return await _act(request, "create_promotion", work)


@router.post("/console/promotions/{promotion_id}/status")
async def pause_or_resume(request: Request, promotion_id: str) -> Response:
    """Pause a promotion (carts and orders stop getting it at once) or let it run again."""
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        status = form.get("status")
        if status not in ("paused", "active"):
            return _back("/console/promotions")
        done = marketing.update_promotion(session, v.tenant, promotion_id,
                                          PromotionUpdate(status=status))  # type: ignore[arg-type]
        return _back("/console/promotions",
                     **{"paused" if status == "paused" else "resumed": done.name})

    return await _act(request, "pause_promotion", work)


def _edit_form(request: Request, session: Session, v: Visit, promotion_id: str,
               code: int = 200, form: dict[str, str] | None = None,
               errors: list[str] | None = None) -> Response:
    p = marketing.get_promotion(session, v.tenant, promotion_id)
    if form is None:
        ends = p.ends_at.astimezone(v.fmt.zone).date().isoformat() if p.ends_at else ""
        form = {"name": p.name, "ends_on": ends, "budget": str(p.budget.amount) if p.budget else "",
                "priority": str(p.priority), "description": p.description}
    return _page(request, v, "console/promotion_edit.html", code,
                 title=_t(v, "Edit %(name)s") % {"name": p.name}, p=p, form=form,
                 errors=errors or [])


@router.get("/console/promotions/{promotion_id}/edit")
@_view
def edit_promotion_form(request: Request, session: SessionDep, v: Visit,
                        promotion_id: str) -> Response:
    return _edit_form(request, session, v, promotion_id)


def promotion_changes(form: dict[str, str], currency: str, zone: dt.tzinfo) -> dict[str, Any]:
    """The edit form's fields as ``PATCH /v1/promotions/{id}`` takes them: an empty last day
    ends nothing (the promotion runs on), an empty budget leaves it as it is."""
    ends = form.get("ends_on", "").strip()
    budget = form.get("budget", "").strip()
    priority = form.get("priority", "").strip()
    body: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "ends_at": _last_moment(ends, zone) if ends else None,
        "priority": int(priority) if priority.lstrip("-").isdigit() else priority or None,
        "description": form.get("description", "").strip()}
    if budget:
        body["budget"] = {"amount": budget, "currency": currency}
    return body


@router.post("/console/promotions/{promotion_id}")
async def edit_promotion(request: Request, promotion_id: str) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        try:
            changes = PromotionUpdate.model_validate(
                promotion_changes(form, v.tenant.currency, v.fmt.zone))
        except ValidationError as exc:
            errors = [(".".join(str(p) for p in e["loc"]) + ": " if e["loc"] else "")
                      + e["msg"] for e in exc.errors()]
            return _edit_form(request, session, v, promotion_id, 422, form, errors)
        try:  # the service checks before it changes anything (ends after it starts, budget)
            done = marketing.update_promotion(session, v.tenant, promotion_id, changes)
        except Problem as exc:
            if exc.status != 422:
                raise
            return _edit_form(request, session, v, promotion_id, 422, form, [exc.detail])
        return _back("/console/promotions", edited=done.name)

    return await _act(request, "edit_promotion", work)
