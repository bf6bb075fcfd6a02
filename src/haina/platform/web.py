"""The platform's server pages and OAuth 2 endpoints: staff sign-in and sign-out, the consent
screen where a merchant installs an app, and the token, revocation, introspection and
metadata endpoints (haina.platform.oauth does the OAuth work, on Authlib).

Pages are Jinja2 templates in ``haina/web/templates``, in Chinese and English (``?lang=zh``,
else the browser's Accept-Language). Every form carries a CSRF token: on the sign-in form a
double-submit cookie (no session exists yet), afterwards the session's own token. Pages may not
be framed (a consent button under someone else's page is clickjacking).
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.oauth2 import OAuth2Error
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from haina.core.context import current_actor
from haina.core.http import Router, in_unit_of_work
from haina.platform import apps as apps_service
from haina.platform import oauth, staff
from haina.platform.schemas import StaffOut

router = Router(include_in_schema=False)

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())

SESSION_COOKIE = staff.SESSION_COOKIE
LOGIN_CSRF_COOKIE = staff.LOGIN_CSRF_COOKIE
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self' "
                               "http: https:; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}

TEXT = {
    "en": {
        "other_lang": "中文", "sign_in": "Sign in", "email": "Email", "password": "Password",
        "sign_out": "Sign out", "signed_out": "You are signed out.",
        "consent_title": "Install {app}?", "certified": "Certified",
        "consent_intro": "{app} asks to act for your shop {tenant}. It will be able to:",
        "pricing": "Pricing", "signed_in_as": "Signed in as {email}",
        "redirect_to": "you will return to", "allow": "Allow and install", "deny": "Deny",
        "owner_only": "Only an owner of the shop can install apps. Ask an owner to do it.",
        "csrf": "This form has expired or did not come from this site. Reload the page and "
                "try again.",
        "failed": "Wrong email or password.", "locked": "Too many failed sign-ins. Try again "
                                                         "in a quarter of an hour.",
        "bad_request": "This authorization request cannot be served",
        "forbidden": "Not allowed",
        "read": "see {what}", "write": "see and change {what}", "all": "fully manage {what}",
        "identity": "see buyers' ID numbers unmasked in {what}",
    },
    "zh": {
        "other_lang": "English", "sign_in": "登录", "email": "邮箱", "password": "密码",
        "sign_out": "退出登录", "signed_out": "您已退出登录。",
        "consent_title": "安装 {app}？", "certified": "平台认证",
        "consent_intro": "{app} 请求代表您的店铺 {tenant} 操作，它将可以：",
        "pricing": "收费", "signed_in_as": "当前登录：{email}",
        "redirect_to": "完成后返回", "allow": "同意并安装", "deny": "拒绝",
        "owner_only": "只有店铺所有者可以安装应用，请联系所有者操作。",
        "csrf": "表单已过期或并非来自本站，请刷新页面后重试。",
        "failed": "邮箱或密码错误。", "locked": "登录失败次数过多，请十五分钟后再试。",
        "bad_request": "无法处理此授权请求", "forbidden": "不允许此操作",
        "read": "查看{what}", "write": "查看和修改{what}", "all": "全面管理{what}",
        "identity": "查看{what}中买家的完整身份证号",
    },
}
# what each component's data is, in plain words
WHAT = {
    "members": ("your members (buyers' accounts, tiers, points)", "会员（买家账户、等级、积分）"),
    "catalog": ("your products and categories", "商品和类目"),
    "inventory": ("your stock and warehouses", "库存和仓库"),
    "orders": ("your orders and shipments", "订单和发货"),
    "payments": ("your payments and refunds", "支付和退款"),
    "ledger": ("your ledger and payouts", "账本和结算"),
    "events": ("your shop's event log", "店铺事件记录"),
    "analytics": ("your customer analytics (segments, lifetime value)", "客户分析（分群、生命周期价值）"),
    "marketing": ("your coupons, promotions and campaigns", "优惠券、促销和营销活动"),
    "geo": ("your service points and bookings", "服务网点和预约"),
    "crossborder": ("your cross-border products, buyers and declarations",
                    "跨境商品、买家和申报"),
    "apps": ("the apps installed in your shop", "店铺已安装的应用"),
    "webhooks": ("your webhook endpoints", "Webhook 接收地址"),
    "settings": ("your shop's settings", "店铺设置"),
}


def language(request: Request, explicit: str | None = None) -> str:
    lang = explicit or request.query_params.get("lang")
    if lang in TEXT:
        return lang
    accept = (request.headers.get("accept-language") or "").lower()
    return "zh" if accept.startswith("zh") else "en"


def scope_lines(scopes: list[str], lang: str) -> list[str]:
    t = TEXT[lang]
    lines = []
    for scope in scopes:
        component, _, action = scope.partition(":")
        what = WHAT.get(component, (component, component))[0 if lang == "en" else 1]
        lines.append(t.get({"*": "all"}.get(action, action), t["read"]).format(what=what))
    return lines


def _other_lang_url(request: Request, lang: str) -> str:
    params = dict(request.query_params)
    params["lang"] = "en" if lang == "zh" else "zh"
    return request.url.path + "?" + urlencode(params)


def page(request: Request, template: str, lang: str, status: int = 200,
         **context: Any) -> HTMLResponse:
    t = TEXT[lang]
    html = _env.get_template(template).render(t=t, lang=lang,
                                              other_lang_url=_other_lang_url(request, lang),
                                              **context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def message(request: Request, lang: str, title: str, text: str, status: int,
            error: bool = True) -> HTMLResponse:
    return page(request, "message.html", lang, status, title=title, message=text, error=error,
                link=None, link_text="")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_next(value: str | None) -> str:
    """A place to go after sign-in: a path on this site only (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


# ---------------------------------------------------------------- sign-in

def _login_page(request: Request, lang: str, next_url: str, error: str | None = None,
                status: int = 200, email: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = page(request, "login.html", lang, status, title=TEXT[lang]["sign_in"],
                    csrf_token=token, next=next_url, error=error, email=email)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=_secure(request), path="/login")
    return response


@router.get("/login")
async def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return _login_page(request, language(request), _safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    lang = language(request, str(form.get("lang") or ""))
    next_url = _safe_next(str(form.get("next") or "/"))
    if not _same(request.cookies.get(LOGIN_CSRF_COOKIE), str(form.get("csrf_token") or "")):
        return message(request, lang, TEXT[lang]["forbidden"], TEXT[lang]["csrf"], 403)
    email, password = str(form.get("email") or ""), str(form.get("password") or "")

    def work(session: Session) -> tuple[str, str] | tuple[None, str]:
        try:
            who = staff.authenticate_staff(session, email, password)
        except staff.AccountLocked:
            return None, "locked"
        except staff.LoginRefused:
            return None, "failed"
        token, _ = staff.open_session(session, who.id)
        return token, ""

    token, failure = await in_unit_of_work(request, work)
    if token is None:
        return _login_page(request, lang, next_url, TEXT[lang][failure],
                           429 if failure == "locked" else 401, email=email[:254])
    response = RedirectResponse(next_url, status_code=303, headers={"Cache-Control": "no-store"})
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax",
                        secure=_secure(request), path="/", max_age=int(staff.SESSION_FOR.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


async def signed_in(request: Request) -> tuple[StaffOut, str] | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await in_unit_of_work(request, lambda s: staff.session_staff(s, token))


@router.get("/logout")
async def logout_form(request: Request) -> HTMLResponse:
    lang = language(request)
    who = await signed_in(request)
    if who is None:
        return message(request, lang, TEXT[lang]["sign_out"], TEXT[lang]["signed_out"], 200,
                       error=False)
    return page(request, "message.html", lang, title=TEXT[lang]["sign_out"],
                message=TEXT[lang]["signed_in_as"].format(email=who[0].email), error=False,
                link=None, link_text="", logout_csrf=who[1])


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    lang = language(request)
    who = await signed_in(request)
    if who is not None:
        if not _same(who[1], str(form.get("csrf_token") or "")):
            return message(request, lang, TEXT[lang]["forbidden"], TEXT[lang]["csrf"], 403)
        token = request.cookies.get(SESSION_COOKIE)
        await in_unit_of_work(request, lambda s: staff.close_session(s, token))
    response = message(request, lang, TEXT[lang]["sign_out"], TEXT[lang]["signed_out"], 200,
                       error=False)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ---------------------------------------------------------------- OAuth 2

AUTHORIZE_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state",
                    "code_challenge", "code_challenge_method")


def _headers(request: Request) -> Any:
    return request.headers  # case-insensitive, as Authlib's lookups need


def _send(result: tuple[int, Any, list]) -> Response:
    status, body, headers = result
    header_map = dict(headers)
    if status in (301, 302, 303) and "Location" in header_map:
        return RedirectResponse(header_map["Location"], status_code=302,
                                headers={"Cache-Control": "no-store"})
    if isinstance(body, dict):
        from fastapi.responses import JSONResponse
        header_map.setdefault("Cache-Control", "no-store")
        header_map.pop("Content-Type", None)
        return JSONResponse(body, status_code=status, headers=header_map)
    return Response(body or b"", status_code=status, headers=header_map)


def _authorize_page(request: Request, session: Session, lang: str, params: dict[str, str],
                    who: StaffOut, csrf_token: str) -> Response:
    server = oauth.Server(session)
    req = oauth.make_request("GET", str(request.url), _headers(request), params)
    try:
        grant = server.get_consent_grant(req, end_user=who)
    except OAuth2Error as error:
        return _authorize_error(request, server, req, error, lang)
    app = apps_service.get_app(session, grant.client.id)
    scopes = (req.payload.scope or grant.client.row.scopes).split()
    redirect = req.payload.redirect_uri or grant.client.get_default_redirect_uri() or ""
    return page(request, "consent.html", lang, title=TEXT[lang]["consent_title"].format(app=app.name),
                app=app, staff=who, scope_lines=scope_lines(scopes, lang),
                redirect_host=urlsplit(redirect).netloc, csrf_token=csrf_token,
                params=[(k, v) for k, v in params.items() if k in AUTHORIZE_PARAMS] + [("lang", lang)],
                can_install=who.role == "owner")


def _authorize_error(request: Request, server: oauth.Server, req: Any, error: OAuth2Error,
                     lang: str) -> Response:
    status, body, headers = server.handle_error_response(req, error)
    if status == 302:
        return _send((status, body, headers))
    detail = error.description or error.error or "invalid request"
    return message(request, lang, TEXT[lang]["bad_request"], f"{error.error}: {detail}", 400)


def _query(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items()}


@router.get("/oauth/authorize")
async def authorize_form(request: Request) -> Response:
    lang = language(request)
    who = await signed_in(request)
    if who is None:
        target = request.url.path + ("?" + request.url.query if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": target, "lang": lang}),
                                status_code=302, headers={"Cache-Control": "no-store"})
    params = _query(request)
    return await in_unit_of_work(
        request, lambda s: _authorize_page(request, s, lang, params, who[0], who[1]))


@router.post("/oauth/authorize")
async def authorize(request: Request) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    lang = language(request, form.get("lang"))
    who = await signed_in(request)
    if who is None:
        return message(request, lang, TEXT[lang]["forbidden"], TEXT[lang]["csrf"], 403)
    if not _same(who[1], form.get("csrf_token")):
        return message(request, lang, TEXT[lang]["forbidden"], TEXT[lang]["csrf"], 403)
    params = {k: v for k, v in form.items() if k in AUTHORIZE_PARAMS}
    decision = form.get("decision")
    account = who[0]

    def work(session: Session) -> Response:
        server = oauth.Server(session)
        req = oauth.make_request("GET", str(request.url), _headers(request), params)
        try:
            grant = server.get_consent_grant(req, end_user=account)
        except OAuth2Error as error:
            return _authorize_error(request, server, req, error, lang)
        if decision != "allow":
            return _send(server.create_authorization_response(req, grant_user=None, grant=grant))
        if account.role != "owner":
            return message(request, lang, TEXT[lang]["forbidden"], TEXT[lang]["owner_only"], 403)
        scopes = (req.payload.scope or grant.client.row.scopes).split()
        actor = current_actor.set(("staff", account.id))  # the audit trail's who
        try:
            installed = apps_service.install(session, account.tenant_id, grant.client.id,
                                             scopes, account.id)
        finally:
            current_actor.reset(actor)
        principal = oauth.Principal(tenant_id=account.tenant_id, grant_id=installed.id,
                                    family_id="", staff_id=account.id)
        return _send(server.create_authorization_response(req, grant_user=principal,
                                                          grant=grant))

    return await in_unit_of_work(request, work)


async def _form_endpoint(request: Request, run: Any) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}

    def work(session: Session) -> Response:
        server = oauth.Server(session)
        req = oauth.make_request("POST", str(request.url), _headers(request), form)
        return _send(run(server, req))

    return await in_unit_of_work(request, work)


@router.post("/oauth/token")
async def token(request: Request) -> Response:
    return await _form_endpoint(request, lambda server, req: server.create_token_response(req))


@router.post("/oauth/revoke")
async def revoke(request: Request) -> Response:
    return await _form_endpoint(
        request, lambda server, req: server.create_endpoint_response("revocation", req))


@router.post("/oauth/introspect")
async def introspect(request: Request) -> Response:
    return await _form_endpoint(
        request, lambda server, req: server.create_endpoint_response("introspection", req))


@router.get("/.well-known/oauth-authorization-server")
async def server_metadata(request: Request) -> dict[str, Any]:
    return oauth.metadata(str(request.base_url).rstrip("/"))
