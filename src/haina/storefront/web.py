"""The reference mobile shop, ``/shop/{merchant-slug}``: one server-rendered page that names
the merchant and its publishable key, and a small script (``/static/shop/shop.js``) that does
everything else through ``/store/v1``, as a provider's app would (docs/storefront.md)."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from haina.core.errors import NotFound
from haina.core.http import Router, SessionDep
from haina.platform import service as platform
from haina.storefront import keys

router = Router(include_in_schema=False)
TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())
SHOP_HEADERS = {
    # the script and styles are the package's own files: nothing from elsewhere runs here
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors "
                               "'none'; base-uri 'none'; form-action 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


@router.get("/shop/{slug}", response_class=HTMLResponse)
def shop_page(session: SessionDep, request: Request, slug: str) -> HTMLResponse:
    try:
        tenant = platform.get_tenant_by_slug(session, slug)
    except NotFound:
        return HTMLResponse("<!doctype html><title>Not found</title><p>No such shop.</p>",
                            status_code=404, headers=SHOP_HEADERS)
    key = keys.shop_key(session, slug)
    if key is None:
        return HTMLResponse("<!doctype html><title>Closed</title><p>This merchant has no web "
                            "shop key (POST /v1/storefront/keys with channel web).</p>",
                            status_code=404, headers=SHOP_HEADERS)
    html = _env.get_template("shop.html").render(name=tenant.name, slug=slug, key=key.key,
                                                 sandbox=key.sandbox)
    return HTMLResponse(html, headers=SHOP_HEADERS)
