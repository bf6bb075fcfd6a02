"""The FastAPI application: mounts each module's router under /v1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.routing import Match
from starlette.types import ASGIApp, Scope

from haina import __version__
from haina.core import credentials
from haina.core.asgi import HttpEdge, RouteLimit
from haina.core.config import Settings, get_settings
from haina.core.db import make_engine, make_sessionmaker, release_units
from haina.core.http import (
    LOOP_SESSIONS,
    PROBLEM_RESPONSES,
    FastJSON,
    ProblemOut,
    Router,
    check_units_of_work,
    configure_threads,
    direct_routes,
    install_problem_handlers,
)
from haina.core.loop import make_loop_engine
from haina.core.loop import run as run_on_loop
from haina.core.ratelimit import DatabaseBuckets, make_buckets
from haina.core.schema import ensure_current

DESCRIPTION = """
Haina's base components — members, catalog, inventory, orders, payments and the ledger — as
one REST API that a merchant's staff and the apps of their service providers call on the
merchant's behalf.

* Authenticate with `Authorization: Bearer <token>` (`haina token create`).
* Errors are RFC 9457 `application/problem+json`; match on the `type` URI.
* Lists are newest first, paginated with `?limit=` and `?cursor=` (`next_cursor`).
* Creating POSTs accept `Idempotency-Key`: the same key and body replays the first response.
"""

# Swagger UI, vendored from the npm package swagger-ui-dist (see its README there): the docs
# work without internet access, and nothing is fetched from a CDN at run time.
DOCS_ASSETS = Path(__file__).parent / "web" / "static" / "docs"
DOCS_ASSETS_URL = "/static/docs"
# the stylesheet of the server pages (sign-in, consent)
PAGES_ASSETS = Path(__file__).parent / "web" / "static" / "pages"
PAGES_ASSETS_URL = "/static/pages"
# the reference shop's script and stylesheet (haina.storefront.web)
SHOP_ASSETS = Path(__file__).parent / "web" / "static" / "shop"
SHOP_ASSETS_URL = "/static/shop"


class HainaAPI(FastAPI):
    """FastAPI whose whole middleware stack (Starlette's error middleware included, so 500s
    too) is wrapped by the HTTP edge: ``nosniff`` on every response, bounded request bodies,
    and the busiest routes answered by compiled handlers (``core.http.direct``)."""

    route_limits: tuple[RouteLimit, ...] = ()

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        direct = direct_routes(self, stack, self._direct_fallback_headers) \
            if self.state.settings.direct_routes else None
        return HttpEdge(stack, self.state.settings.max_body_bytes, self.route_limits, direct)

    def _direct_fallback_headers(self, path: str) -> set[bytes]:
        """The headers whose presence sends a request of a direct route of ``path`` through
        the middleware after all: each middleware says which of them it acts on
        (``direct_fallback``; a direct route skips the middleware otherwise)."""
        found: set[bytes] = set()
        for middleware in self.user_middleware:
            says = getattr(middleware.cls, "direct_fallback", None)
            if says is None:
                raise TypeError(f"middleware {middleware.cls!r}: say which requests of a direct "
                                "route it must see (direct_fallback(path) -> header names)")
            found.update(says(path))
        return found


def _docs(app: FastAPI) -> None:
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    app.mount(PAGES_ASSETS_URL, StaticFiles(directory=PAGES_ASSETS), name="pages-assets")
    app.mount(SHOP_ASSETS_URL, StaticFiles(directory=SHOP_ASSETS), name="shop-assets")
    oauth2_redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon-32x32.png",
            oauth2_redirect_url=oauth2_redirect)

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


def _libpq_dsn(engine: Engine) -> str:
    """The engine's database as a libpq URL (for a plain psycopg connection)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def create_app(settings: Settings | None = None, engine: Engine | None = None,
               check_schema: bool = True) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or make_engine(settings.database_url, echo=settings.echo_sql)
    if check_schema:
        ensure_current(engine)
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Sync endpoints run in this many threads per process. Few threads contend less for
        # the GIL and switch less: on 2 cores, 4 placed ~15 % more orders/s than anyio's 40.
        configure_threads(settings.threads)
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        # PostgreSQL: a revoked credential ends in every process when it commits, and the
        # catalogue and promotion caches are kept while this process hears of their changes
        listener = credentials.Listener(_libpq_dsn(engine), engine=engine).start() \
            if engine.dialect.name == "postgresql" else None
        app.state.credentials_listener = listener
        # PostgreSQL: the routes marked loop_unit run their units of work on this loop,
        # on an async engine over the same database (core.loop)
        loop_engine = make_loop_engine(engine) if settings.loop_units else None
        if loop_engine is not None:
            setattr(app.state, LOOP_SESSIONS, make_sessionmaker(loop_engine.sync_engine))
        yield
        if loop_engine is not None:
            # the units kept ready are checked out: given back first (while their
            # sessionmaker, which keeps them, is still referenced)
            await run_on_loop(release_units, loop_engine.sync_engine)
            setattr(app.state, LOOP_SESSIONS, None)
            await loop_engine.dispose()
        if listener is not None:
            listener.stop()
        buckets = getattr(app.state, "buckets", None)
        if isinstance(buckets, DatabaseBuckets):
            buckets.dispose()  # the rate limiter's own connections

    # the docs are served from the package (_docs below); ReDoc is not offered
    app = HainaAPI(title="Haina", version=__version__, description=DESCRIPTION,
                   default_response_class=FastJSON, lifespan=lifespan, docs_url=None,
                   redoc_url=None,
                   telemetry=None if settings.telemetry else {
                       "tracing": False, "metrics": False, "logs": False})
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.buckets = make_buckets(settings.rate_limit_backend,
                                     engine.url.render_as_string(hide_password=False),
                                     settings.workers)
    install_problem_handlers(app)

    from haina.campaigns.api import router as campaigns
    from haina.carts.api import router as carts
    from haina.catalog.api import router as catalog
    from haina.catalog.stock_api import router as stock
    from haina.checkout.api import router as checkout
    from haina.checkout.crossborder_api import router as declarations
    from haina.console.campaigns import router as console_campaigns
    from haina.console.web import router as console
    from haina.crossborder.api import router as crossborder
    from haina.installations.api import router as installations
    from haina.inventory.api import router as inventory
    from haina.marketing.api import router as marketing
    from haina.members.api import router as members
    from haina.o2o.api import router as o2o
    from haina.orders.api import router as orders
    from haina.payments.api import router as payments
    from haina.platform.api import router as platform
    from haina.platform.apps_api import router as apps
    from haina.platform.web import router as platform_pages
    from haina.privacy.api import router as privacy
    from haina.storefront.api import router as storefront_keys
    from haina.storefront.api import store, store_openapi
    from haina.storefront.cors import StoreCors
    from haina.storefront.web import router as shop_pages
    from haina.webhooks.api import router as webhooks
    try:
        from haina.analytics.api import router as analytics
        optional: tuple[Router, ...] = (analytics,)
    except ImportError:  # the [analytics] extra (numpy, ibis …) is not installed: no such routes
        optional = ()

    # routes are matched in turn: the busiest first
    for router in (orders, payments, checkout, carts, catalog, stock, inventory, members, platform,
                   apps, installations, marketing, o2o, crossborder, declarations,
                   privacy, storefront_keys, campaigns, *optional):
        app.include_router(router, responses=PROBLEM_RESPONSES)
    # the buyer-facing API: documented apart (/store/v1/openapi.json), CORS per key
    app.include_router(store, include_in_schema=False)
    _first_under_prefix(app, store)
    app.add_middleware(StoreCors)
    app.include_router(platform_pages)  # sign-in, consent, OAuth 2 (not in the API document)
    app.include_router(console)  # the merchant console's pages (not in the API document)
    app.include_router(console_campaigns)
    app.include_router(shop_pages)  # the reference shop, /shop/{slug} (not in the API document)
    app.include_router(webhooks, responses=PROBLEM_RESPONSES)
    check_units_of_work(app)
    # media uploads may be as large as the largest media file the catalog takes (+ multipart)
    from haina.catalog.service import MAX_MEDIA_BYTES
    app.route_limits = (RouteLimit("POST", r"/v1/products/[^/]+/media", MAX_MEDIA_BYTES + (64 << 10)),)
    _docs(app)

    # the problem shape every error response refers to
    _openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = _openapi()
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {})["ProblemOut"] = \
                ProblemOut.model_json_schema(ref_template="#/components/schemas/{model}")
            components["securitySchemes"] = {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "a token from `haina token create` (or an app's grant)"}}
            schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:  # the merchant console
        return RedirectResponse("/console")

    @app.get("/store/v1/openapi.json", include_in_schema=False)
    async def storefront_openapi() -> dict:
        if getattr(app.state, "store_openapi", None) is None:
            app.state.store_openapi = store_openapi(__version__)
        return app.state.store_openapi

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app


def _first_under_prefix(app: FastAPI, router: APIRouter) -> None:
    """Match ``router``'s routes (included just before) first, and only for paths under its
    prefix. FastAPI tries an app's routes in turn, an included router's one by one (a few µs
    each), and an included router matches twice (to choose it, then to handle): a
    ``/store/v1`` call walked the ~250 merchant routes before its own, 0.4-0.65 ms of CPU per
    call, a fifth of a storefront worker's CPU under the session mix (py-spy). Behind the
    prefix check, every other path pays one ``startswith``."""
    routes = app.router.routes
    index = next(i for i, r in enumerate(routes)
                 if getattr(r, "original_router", None) is router)
    included = routes.pop(index)
    prefix = router.prefix.rstrip("/") + "/"
    matches = included.matches

    def under_prefix(scope: Scope) -> tuple[Match, Scope]:
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        return matches(scope) if path.startswith(prefix) else (Match.NONE, {})

    included.matches = under_prefix  # type: ignore[method-assign]
    routes.insert(0, included)


def app_from_env() -> FastAPI:
    """Uvicorn factory (``uvicorn --factory haina.api:app_from_env``)."""
    return create_app()
