"""The merchant console under ``/console``: server-rendered pages (Jinja2, inline SVG charts,
no script) over the modules' public faces, for a signed-in staff account of one merchant.

Sign-in is the platform's (``/login``, ``/logout``, the session cookie); ``GET /console``
without a session shows the sign-in form itself. Every page reads through ``service``
functions with the account's merchant as the tenant. Every form posts the session's CSRF token
and is checked against the account's role (:data:`NEEDS`): read-only accounts change nothing,
staff do the day's work, owners also remove apps. A refused or failed action renders a page
with the reason and changes nothing (the unit of work rolls back).
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import inspect
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from sqlalchemy.orm import Session

from haina.console import charts
from haina.console.i18n import NAMES, Formats, pick, translations
from haina.console.names import N_, label
from haina.core.context import COMPONENTS, Tenant, current_actor
from haina.core.errors import NotFound, Problem
from haina.core.http import Router, SessionDep, in_unit_of_work
from haina.crossborder import service as crossborder
from haina.installations import service as installations
from haina.marketing import service as marketing
from haina.marketing.schemas import CouponCreate
from haina.members import service as members
from haina.o2o import service as o2o
from haina.orders import service as orders
from haina.payments import service as payments
from haina.platform import service as platform
from haina.platform.schemas import StaffOut, time_zone_of
from haina.privacy import service as privacy
from haina.webhooks import service as webhooks

try:  # lifecycle analytics are an optional extra (numpy, ibis …): without them, no such pages
    from haina.analytics import service as analytics
    from haina.analytics.schemas import SegmentRule
except ImportError:  # pragma: no cover - the extra is installed wherever tests run
    analytics = None  # type: ignore[assignment]

router = Router(include_in_schema=False)

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"

LANG_COOKIE = "haina_lang"
ROLE_RANK = {"read-only": 0, "staff": 1, "owner": 2}
# the least role each action needs
NEEDS = {"create_coupon": "staff", "replay_delivery": "staff", "uninstall_app": "owner",
         "book_slot": "staff", "create_promotion": "staff", "pause_promotion": "staff",
         "request_data": "owner", "download_archive": "owner", "manage_endpoints": "owner",
         "change_member": "staff",
         "create_campaign": "staff", "manage_keys": "owner", "read_sandbox_inbox": "staff",
         "edit_promotion": "staff", "change_settings": "owner", "manage_staff": "owner",
         "change_own_password": "read-only", "reevaluate_campaign": "staff"}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'none'; frame-ancestors 'none'; form-action 'self'; "
                               "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}
PAGE_SIZE = 25
WEEKS = 12
NAV = (("dashboard", "/console"), ("members", "/console/members"),
       ("lifecycle", "/console/lifecycle"), ("orders", "/console/orders"),
       ("payments_page", "/console/payments"), ("carts", "/console/carts"),
       ("products", "/console/products"),
       ("coupons", "/console/coupons"), ("promotions", "/console/promotions"),
       ("points", "/console/service-points"), ("declarations", "/console/crossborder"),
       ("privacy", "/console/data-requests"),
       ("campaigns", "/console/campaigns"),
       ("apps", "/console/apps"),
       ("webhooks", "/console/webhooks"), ("shop_keys", "/console/storefront"),
       ("staff_page", "/console/staff"), ("audit", "/console/audit"),
       ("settings_page", "/console/settings"))
PLOTS = ("clv_distribution", "p_alive_vs_recency", "holdout_fit")
ORDER_STATUSES = ("pending_payment", "paid", "fulfilled", "completed", "cancelled", "refunded")
CHANNELS = ("web", "mini_program", "pos", "app", "marketplace")


@functools.cache
def _env(lang: str) -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


@dataclass(frozen=True)
class Visit:
    """Who is looking (a signed-in staff account), for which merchant, in which language."""

    staff: StaffOut
    csrf: str
    tenant: Tenant
    lang: str
    fmt: Formats

    def can(self, action: str) -> bool:
        return ROLE_RANK[self.staff.role] >= ROLE_RANK[NEEDS[action]]


def _scopes(role: str) -> frozenset[str]:
    """The console acts with the scopes of the account's role (read-only: read scopes)."""
    if role == "read-only":
        return frozenset(f"{c}:read" for c in COMPONENTS)
    return frozenset({"*"})


def _lang(request: Request) -> str:
    return pick(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE),
                request.headers.get("accept-language"))


def _visit(session: Session, request: Request) -> Visit | None:
    found = platform.signed_in_staff(session, request.cookies.get(platform.SESSION_COOKIE))
    if found is None:
        return None
    account, csrf = found
    t = platform.get_tenant(session, account.tenant_id)
    tenant = Tenant(id=t.id, slug=t.slug, scopes=_scopes(account.role), currency=t.currency,
                    settings=t.settings, staff_id=account.id)
    lang = _lang(request)
    return Visit(account, csrf, tenant, lang, Formats(lang, time_zone_of(t.settings, t.currency)))


def _switch_url(request: Request, lang: str) -> str:
    params = {k: v for k, v in request.query_params.items() if k != "lang"}
    params["lang"] = "en" if lang == "zh" else "zh"
    return request.url.path + "?" + urlencode(params)


NOTICES = {"created": N_("Coupon %(value)s created."),
           "replayed": N_("Delivery %(value)s is queued to be sent again."),
           "campaign_created": N_("Campaign %(value)s created."),
           "uninstalled": N_("%(value)s was uninstalled: its tokens and webhooks no longer work."),
           "booked": N_("Booking %(value)s is confirmed."),
           "promoted": N_("Promotion %(value)s created."),
           "paused": N_("%(value)s is paused: carts and orders no longer get it."),
           "resumed": N_("%(value)s runs again."),
           "requested": N_("Request %(value)s is done; the apps holding members' data are told."),
           "disabled": N_("%(value)s is disabled: nothing is sent to it."),
           "enabled": N_("%(value)s is enabled again."),
           "changed": N_("The profile of %(value)s is saved."),
           "adjusted": N_("Points adjusted: %(value)s."),
           "revoked": N_("%(value)s is revoked: its calls are refused and its buyers signed out."),
           "edited": N_("%(value)s is saved."),
           "settings_saved": N_("Settings saved: %(value)s."),
           "role_changed": N_("Role changed: %(value)s."),
           "staff_disabled": N_("%(value)s is disabled: they can no longer sign in."),
           "staff_enabled": N_("%(value)s can sign in again."),
           "reevaluating": N_("A look for new members of %(value)s is queued: the "
                              "enrolment below shows its progress."),
           "password_changed": N_("Your password is changed (%(value)s): your other "
                                  "sessions are signed out.")}


def _notice(request: Request, lang: str) -> str | None:
    """The outcome of the form just posted (the page it redirected to names it)."""
    for key, text in NOTICES.items():
        value = request.query_params.get(key)
        if value:
            return _t(lang, text) % {"value": value[:100]}
    return None


def _render(request: Request, lang: str, template: str, code: int = 200,
            **context: Any) -> HTMLResponse:
    html = _env(lang).get_template(template).render(
        notice=_notice(request, lang), w=functools.partial(_w, lang),
        lang=lang, html_lang="zh-CN" if lang == "zh" else "en", path=request.url.path,
        switch_url=_switch_url(request, lang), switch_name=NAMES["en" if lang == "zh" else "zh"],
        nav=NAV, **context)
    response = HTMLResponse(html, status_code=code, headers=PAGE_HEADERS)
    if request.query_params.get("lang") in NAMES:
        response.set_cookie(LANG_COOKIE, lang, samesite="lax", path="/",
                            max_age=400 * 24 * 3600)
    return response


def _page(request: Request, v: Visit, template: str, code: int = 200,
          **context: Any) -> HTMLResponse:
    return _render(request, v.lang, template, code, v=v, fmt=v.fmt, **context)


def _login(request: Request) -> HTMLResponse:
    """The sign-in form (the platform's ``POST /login`` takes it), back to this page after."""
    lang = _lang(request)
    token = secrets.token_urlsafe(32)
    target = request.url.path + ("?" + request.url.query if request.url.query else "")
    response = _render(request, lang, "console/login.html", csrf_token=token, next=target)
    response.set_cookie(platform.LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/login")
    return response


def _refusal(request: Request, code: int, title: str, detail: str,
             v: Visit | None = None) -> HTMLResponse:
    return _render(request, v.lang if v else _lang(request), "console/refused.html", code,
                   v=v, fmt=v.fmt if v else Formats(_lang(request)), title=title, detail=detail)


def _view(build: Callable[..., Response]) -> Callable[..., Response]:
    """A page: the sign-in form without a session, else ``build(session, request, v, …)``;
    a refusal of the service (a 404, a bad cursor) becomes a page saying so."""

    @functools.wraps(build)
    def page(*args: Any, **kwargs: Any) -> Response:
        session, request = kwargs["session"], kwargs["request"]
        v = _visit(session, request)
        if v is None:
            return _login(request)
        try:
            return build(v=v, **kwargs)
        except NotFound as exc:
            return _refusal(request, 404, _t(v, "Not found"), exc.detail, v)
        except Problem as exc:  # a bad filter or cursor in the address
            return _refusal(request, exc.status, _t(v, "This could not be done"), exc.detail, v)

    signature = inspect.signature(build)
    page.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for name, p in signature.parameters.items() if name != "v"])
    return page


def _t(v: Visit | str, text: str) -> str:
    """``text`` in the visitor's language (or in the language ``v`` names)."""
    return str(translations(v if isinstance(v, str) else v.lang).gettext(text))


def _w(v: Visit | str, key: str) -> str:
    """A word from data (a stage, a status, a role) in the visitor's language."""
    return _t(v, label(key))


async def _act(request: Request, action: str,
               work: Callable[[Session, Visit, dict[str, str]], Response]) -> Response:
    """A form's action: signed in, the session's CSRF token, the role the action needs; then
    ``work`` in one unit of work with the account as the audit trail's actor."""
    form = {k: str(val) for k, val in (await request.form()).items()}

    def run(session: Session) -> Response:
        v = _visit(session, request)
        if v is None:
            return RedirectResponse("/console", status_code=303)
        if not _same(v.csrf, form.get("csrf_token")):
            return _refusal(request, 403, _t(v, "Not allowed"),
                            _t(v, "This form has expired or did not come from this site. "
                                  "Reload the page and try again."), v)
        if not v.can(action):
            return _refusal(request, 403, _t(v, "Not allowed"),
                            _t(v, "Your role (%(role)s) cannot do this. Ask an owner.")
                            % {"role": _w(v, v.staff.role)}, v)
        actor = current_actor.set(("staff", v.staff.id))
        try:
            return work(session, v, form)
        finally:
            current_actor.reset(actor)

    try:
        return await in_unit_of_work(request, run)
    except Problem as exc:  # the work was rolled back
        return _refusal(request, exc.status, _t(_lang(request), "This could not be done"),
                        exc.detail)


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def _back(path: str, **params: str) -> RedirectResponse:
    return RedirectResponse(path + ("?" + urlencode(params) if params else ""), status_code=303)


# ---------------------------------------------------------------- dashboard

@router.get("/console")
@_view
def dashboard(request: Request, session: SessionDep, v: Visit) -> Response:
    zone = v.fmt.zone  # the merchant's weeks start at its Monday midnight
    today = dt.datetime.now(zone).date()
    weeks = orders.sales_by_week(session, v.tenant, today - dt.timedelta(weeks=WEEKS - 1), today,
                                 zone=zone)
    labels = [v.fmt.week(w.start) for w in weeks]
    currency = v.tenant.currency
    sales = [float(Decimal(w.sales.amount)) for w in weeks]
    count = [w.orders for w in weeks]
    totals = {"sales": sum((Decimal(w.sales.amount) for w in weeks), Decimal(0)),
              "orders": sum(count), "new": sum(w.new_members for w in weeks),
              "returning": sum(w.returning_members for w in weeks)}
    figures = {
        "sales": charts.bar_chart(_t(v, "Sales per week"), labels, sales,
                                  lambda x: v.fmt.money_short(x, currency),
                                  lambda x: v.fmt.money_short(x, currency)),
        "orders": charts.line_chart(_t(v, "Orders per week"), labels, count,
                                    lambda x: v.fmt.number(x), lambda x: v.fmt.number(x)),
        "members": charts.stacked_bars(
            _t(v, "New and returning members per week"), labels,
            [(_t(v, "New members"), [w.new_members for w in weeks]),
             (_t(v, "Returning members"), [w.returning_members for w in weeks])],
            lambda x: v.fmt.number(x)),
    }
    return _page(request, v, "console/dashboard.html", title=_t(v, "Dashboard"), weeks=weeks,
                 figures=figures, totals=totals, currency=currency)


# ---------------------------------------------------------------- members

@router.get("/console/members")
@_view
def member_list(request: Request, session: SessionDep, v: Visit, q: str | None = None,
                stage: str | None = None, segment: str | None = None,
                cursor: str | None = None) -> Response:
    q = (q or "").strip()[:100] or None
    stage = stage if analytics and stage in analytics.STAGE_NAMES else None
    segment = segment if analytics and segment in analytics.SEGMENT_NAMES else None
    scores: dict[str, Any] = {}
    if (stage or segment) and not q:
        rule = SegmentRule.model_validate({"stage_in": [stage] if stage else None,
                                           "segment_in": [segment] if segment else None})
        page = analytics.members_matching(session, v.tenant, rule, limit=PAGE_SIZE, cursor=cursor)
        scores = {s.member_id: s for s in page.data}
        people = [members.get_member(session, v.tenant, s.member_id) for s in page.data]
        next_cursor = page.next_cursor
    else:
        found = members.list_members(session, v.tenant, q=q, limit=PAGE_SIZE, cursor=cursor)
        people, next_cursor = found.data, found.next_cursor
        if analytics and people:
            scores = {s.member_id: s for s in analytics.members_matching(
                session, v.tenant, None, member_ids=[m.id for m in people],
                limit=len(people)).data}
    more = None
    if next_cursor:
        more = request.url.path + "?" + urlencode(
            {k: val for k, val in (("q", q), ("stage", stage), ("segment", segment),
                                   ("cursor", next_cursor)) if val})
    return _page(request, v, "console/members.html", title=_t(v, "Members"), people=people,
                 scores=scores, q=q or "", stage=stage, segment=segment, more=more,
                 stages=analytics.STAGE_NAMES if analytics else (),
                 segments=analytics.SEGMENT_NAMES if analytics else ())


@router.get("/console/members/{member_id}")
@_view
def member_page(request: Request, session: SessionDep, v: Visit, member_id: str) -> Response:
    member = members.get_member(session, v.tenant, member_id)
    bought = orders.list_orders(session, v.tenant, member_id=member.id, limit=20).data
    points = members.list_points(session, v.tenant, member.id, limit=20).data
    scores = None
    if analytics:
        try:
            scores = analytics.member_scores(session, v.tenant, member.id)
        except NotFound:
            scores = None
    requests = privacy.list_requests(session, v.tenant, member_id=member.id, limit=10).data
    return _page(request, v, "console/member.html", title=member.name or member.id,
                 member=member, orders=bought, points=points, scores=scores,
                 requests=requests, form_nonce=secrets.token_urlsafe(18))


# ---------------------------------------------------------------- lifecycle

@router.get("/console/lifecycle")
@_view
def lifecycle(request: Request, session: SessionDep, v: Visit) -> Response:
    if analytics is None:
        return _page(request, v, "console/lifecycle.html", title=_t(v, "Lifecycle"),
                     overview=None)
    overview = analytics.segments_overview(session, v.tenant)
    figures: dict[str, str] = {}
    plots: list[str] = []
    if overview.run_id:
        count = lambda n: v.fmt.number(n)  # noqa: E731
        figures["stages"] = charts.hbars(
            _t(v, "Members per lifecycle stage"),
            [(_w(v, c.name), c.members) for c in overview.lifecycle_stages], count)
        figures["segments"] = charts.hbars(
            _t(v, "Members per RFM segment"),
            [(_w(v, c.name), c.members) for c in overview.rfm_segments], count)
        cohorts = analytics.cohorts(session, v.tenant).cohorts[-12:]
        figures["cohorts"] = charts.heatmap(
            _t(v, "Share of each monthly cohort buying again, by months since the first purchase"),
            [(c.cohort, c.size, [m.retention for m in c.months[:13]]) for c in cohorts],
            v.fmt.percent, _t(v, "month"))
        run = analytics.get_run(session, v.tenant, overview.run_id)
        plots = [p for p in PLOTS if p != "holdout_fit" or run.holdout]
    return _page(request, v, "console/lifecycle.html", title=_t(v, "Lifecycle"),
                 overview=overview, figures=figures, plots=plots)


@router.get("/console/lifecycle/plots/{name}.svg")
def lifecycle_plot(request: Request, session: SessionDep, name: str) -> Response:
    """The analytics module's fit plots (matplotlib SVG), for the signed-in merchant only."""
    v = _visit(session, request)
    if v is None or analytics is None or name not in PLOTS:
        return Response(status_code=404)
    try:
        body = analytics.plot(session, v.tenant, name, "svg")  # type: ignore[arg-type]
    except NotFound:
        return Response(status_code=404)
    return Response(body, media_type="image/svg+xml",
                    headers={"Cache-Control": "private, max-age=60",
                             "Content-Security-Policy": "default-src 'none'; style-src "
                                                        "'unsafe-inline'"})


# ---------------------------------------------------------------- orders

def _day(text: str | None, zone: dt.tzinfo) -> dt.datetime | None:
    """Midnight of a day typed in a filter, in the merchant's time zone."""
    try:
        return dt.datetime.combine(dt.date.fromisoformat(text or ""), dt.time(), zone)
    except ValueError:
        return None


@router.get("/console/orders")
@_view
def order_list(request: Request, session: SessionDep, v: Visit, status: str | None = None,
               channel: str | None = None, since: str | None = None, until: str | None = None,
               member: str | None = None, cursor: str | None = None) -> Response:
    status = status if status in ORDER_STATUSES else None
    channel = channel if channel in CHANNELS else None
    since_at, until_at = _day(since, v.fmt.zone), _day(until, v.fmt.zone)
    member = (member or "").strip()[:40] or None
    page = orders.list_orders(session, v.tenant, status=status, channel=channel,
                              member_id=member, created_gte=since_at,
                              created_lt=until_at + dt.timedelta(days=1) if until_at else None,
                              limit=PAGE_SIZE, cursor=cursor)
    filters = {"status": status, "channel": channel, "since": since_at and since,
               "until": until_at and until, "member": member}
    more = None
    if page.next_cursor:
        more = request.url.path + "?" + urlencode(
            {**{k: val for k, val in filters.items() if val}, "cursor": page.next_cursor})
    return _page(request, v, "console/orders.html", title=_t(v, "Orders"), orders=page.data,
                 filters=filters, more=more, statuses=ORDER_STATUSES, channels=CHANNELS)


@router.get("/console/orders/{order_id}")
@_view
def order_page(request: Request, session: SessionDep, v: Visit, order_id: str) -> Response:
    order = orders.get_order(session, v.tenant, order_id)
    intents = payments.list_intents(session, v.tenant, order_id=order.id, limit=50).data
    refunds = payments.list_refunds(session, v.tenant, order_id=order.id, limit=50).data
    entries = [e for ref in [i.id for i in intents] + [r.id for r in refunds]
               for e in payments.list_journal_entries(session, v.tenant, ref_id=ref).data]
    entries.sort(key=lambda e: e.created_at)
    events = orders.timeline(session, v.tenant, order.id)
    bookings = o2o.list_bookings(session, v.tenant, order_id=order.id, limit=20).data
    places = {b.service_point_id: o2o.get_point(session, v.tenant, b.service_point_id).name
              for b in bookings}
    customs = crossborder.order_records(session, v.tenant, [order.id]).get(order.id)
    declaration = crossborder.declaration_of_order(session, v.tenant, order.id) \
        if customs else None
    return _page(request, v, "console/order.html", title=_t(v, "Order") + " " + order.id,
                 order=order, intents=intents, refunds=refunds, entries=entries, events=events,
                 bookings=bookings, places=places, customs=customs, declaration=declaration)


# ---------------------------------------------------------------- coupons

@router.get("/console/coupons")
@_view
def coupon_list(request: Request, session: SessionDep, v: Visit,
                cursor: str | None = None) -> Response:
    page = marketing.list_coupons(session, v.tenant, limit=PAGE_SIZE, cursor=cursor)
    return _page(request, v, "console/coupons.html", title=_t(v, "Coupons"), coupons=page.data,
                 more=f"{request.url.path}?cursor={page.next_cursor}" if page.next_cursor else None,
                 form={}, errors=[])


def _first_moment(day: str, zone: dt.tzinfo) -> str | dt.datetime:
    """Midnight starting ``day`` in the shop's zone (the text itself if it is no date: the
    model names it)."""
    try:
        return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), zone)
    except ValueError:
        return day


def _last_moment(day: str, zone: dt.tzinfo) -> str | dt.datetime:
    """The last second of ``day`` in the shop's zone."""
    start = _first_moment(day, zone)
    return start.replace(hour=23, minute=59, second=59) if isinstance(start, dt.datetime) \
        else start


def _coupon_body(form: dict[str, str], currency: str, zone: dt.tzinfo) -> dict[str, Any]:
    """The form's fields as ``POST /v1/coupons`` takes them (the model checks them)."""
    def money(name: str) -> dict[str, str] | None:
        value = form.get(name, "").strip()
        return {"amount": value, "currency": currency} if value else None

    def whole(name: str) -> int | str | None:  # a number, or the text for the model to refuse
        value = form.get(name, "").strip()
        return int(value) if value.isascii() and value.isdigit() else value or None

    ends = form.get("ends_on", "").strip()
    kind = form.get("kind", "")
    discount: dict[str, Any] = {"type": kind}
    if kind == "percent":
        discount["percent"] = form.get("percent", "").strip() or None
    else:
        discount["amount"] = money("amount")
    return {
        "code": form.get("code", "").strip(), "discount": discount,
        "min_spend": money("min_spend"),
        "max_discount": money("max_discount") if kind == "percent" else None,
        "usage_limit": whole("usage_limit"),
        "per_member_limit": whole("per_member_limit"),
        "ends_at": _last_moment(ends, zone) if ends else None,  # the shop's day
        "description": form.get("description", "").strip(),
    }


@router.post("/console/coupons")
async def create_coupon(request: Request) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        try:
            body = CouponCreate.model_validate(_coupon_body(form, v.tenant.currency,
                                                            v.fmt.zone))
        except ValidationError as exc:
            errors = [f"{'.'.join(str(p) for p in e['loc']) or _t(v, 'form')}: {e['msg']}"
                      for e in exc.errors()]
            page = marketing.list_coupons(session, v.tenant, limit=PAGE_SIZE)
            return _page(request, v, "console/coupons.html", 422, title=_t(v, "Coupons"),
                         coupons=page.data, more=None, form=form, errors=errors)
        created = marketing.create_coupon(session, v.tenant, body)
        return _back("/console/coupons", created=created.code)

    return await _act(request, "create_coupon", work)


# ---------------------------------------------------------------- apps and webhooks

@router.get("/console/apps")
@_view
def app_list(request: Request, session: SessionDep, v: Visit, q: str | None = None) -> Response:
    q = (q or "").strip()[:100] or None
    listed = platform.marketplace(session, q=q, limit=50).data
    grants = platform.list_grants(session, v.tenant, status="installed", limit=50).data
    return _page(request, v, "console/apps.html", title=_t(v, "Apps"), listed=listed,
                 grants=grants, q=q or "", installed={g.app_id for g in grants},
                 scope_words=_scope_words(v))


def _scope_words(v: Visit) -> Callable[[str], str]:
    def words(scope: str) -> str:
        component, _, action = scope.partition(":")
        verb = {"read": _t(v, "read"), "write": _t(v, "read and change"),
                "*": _t(v, "manage")}.get(action, action)
        return f"{verb} · {_w(v, component)}" if scope != "*" else _t(v, "everything")
    return words


@router.post("/console/apps/grants/{grant_id}/uninstall")
async def uninstall_app(request: Request, grant_id: str) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        gone = installations.uninstall(session, v.tenant, grant_id)
        return _back("/console/apps", uninstalled=gone.app_name)

    return await _act(request, "uninstall_app", work)


@router.get("/console/webhooks")
@_view
def webhook_list(request: Request, session: SessionDep, v: Visit, status: str | None = None,
                 endpoint: str | None = None, cursor: str | None = None) -> Response:
    status = status if status in ("pending", "succeeded", "failed") else None
    endpoints = webhooks.list_endpoints(session, v.tenant, limit=50).data
    endpoint = endpoint if endpoint in {e.id for e in endpoints} else None
    page = webhooks.list_deliveries(session, v.tenant, status=status, endpoint_id=endpoint,
                                    limit=PAGE_SIZE, cursor=cursor)
    more = None
    if page.next_cursor:
        more = request.url.path + "?" + urlencode(
            {k: val for k, val in (("status", status), ("endpoint", endpoint),
                                   ("cursor", page.next_cursor)) if val})
    return _page(request, v, "console/webhooks.html", title=_t(v, "Webhooks"),
                 endpoints=endpoints, deliveries=page.data, status=status, endpoint=endpoint,
                 more=more, urls={e.id: e.url for e in endpoints})


@router.post("/console/webhooks/deliveries/{delivery_id}/replay")
async def replay_delivery(request: Request, delivery_id: str) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        webhooks.replay_delivery(session, v.tenant, delivery_id)
        params = {"replayed": delivery_id}
        if form.get("status") in ("pending", "succeeded", "failed"):
            params["status"] = form["status"]
        return _back("/console/webhooks", **params)

    return await _act(request, "replay_delivery", work)


# the pages of later modules, each in a file of its own, register on this router
from haina.console import points as _point_pages  # noqa: E402,F401,I001
from haina.console import promotions as _promotion_pages  # noqa: E402,F401,I001
from haina.console import customs as _customs_pages  # noqa: E402,F401,I001
from haina.console import rights as _rights_pages  # noqa: E402,F401,I001
from haina.console import endpoints as _endpoint_pages  # noqa: E402,F401,I001
from haina.console import member_actions as _member_actions  # noqa: E402,F401,I001
from haina.console import storefront as _storefront_pages  # noqa: E402,F401,I001
from haina.console import brands as _brand_pages  # noqa: E402,F401,I001
from haina.console import settings as _settings_page  # noqa: E402,F401,I001
from haina.console import products as _product_pages  # noqa: E402,F401,I001
from haina.console import payments as _payment_pages  # noqa: E402,F401,I001
from haina.console import carts as _cart_pages  # noqa: E402,F401,I001
from haina.console import staff as _staff_pages  # noqa: E402,F401,I001
from haina.console import audit as _audit_page  # noqa: E402,F401,I001
