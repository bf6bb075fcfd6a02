"""CORS on ``/store/v1``, per publishable key.

A browser asks before a cross-origin call with a custom header (the preflight, ``OPTIONS``),
but the preflight carries no header values, so not the key: it is answered yes when some live
key lists the origin. The actual request carries the key, and its answer names the origin
(``Access-Control-Allow-Origin``) only when *that* key lists it; without the header the
browser keeps the answer from the page. So a page can use only keys that list its origin."""

from __future__ import annotations

import time

from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from haina.storefront import keys
from haina.storefront.auth import KEY_HEADER

PREFIX = "/store/v1/"
ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
ALLOW_HEADERS = f"Authorization, Content-Type, Idempotency-Key, {KEY_HEADER}"
EXPOSE_HEADERS = ("Idempotent-Replayed, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, "
                  "Retry-After")
MAX_AGE = "600"


class StoreCors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._preflights: dict[str, tuple[float, bool]] = {}

    @staticmethod
    def direct_fallback(path: str) -> tuple[bytes, ...]:
        """A direct route (core.http.DirectRoute) skips this middleware: under ``/store/v1/``
        a request with an ``Origin`` goes through it (and FastAPI) instead, for its CORS
        headers; without one this middleware passes the request on untouched."""
        return (b"origin",) if path.startswith(PREFIX) else ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(state, origin, send)
            return
        allowed = await self._key_allows(state, headers.get(KEY_HEADER) or "", origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = list(message.get("headers", []))
                out.append((b"vary", b"Origin"))
                if allowed:
                    out += [(b"access-control-allow-origin", origin.encode("latin-1")),
                            (b"access-control-expose-headers", EXPOSE_HEADERS.encode())]
                message = {**message, "headers": out}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _key_allows(self, state: object, key: str, origin: str) -> bool:
        ttl = state.settings.token_cache_seconds  # type: ignore[attr-defined]
        shop = keys.cached_shop(key, ttl)
        if shop is False:
            shop = await run_in_threadpool(_lookup, state, key, ttl)
        return isinstance(shop, keys.Shop) and shop.allows_origin(origin)

    async def _preflight(self, state: object, origin: str, send: Send) -> None:
        ttl = max(1.0, state.settings.token_cache_seconds)  # type: ignore[attr-defined]
        hit = self._preflights.get(origin)
        if hit is None or time.monotonic() - hit[0] > ttl:
            hit = (time.monotonic(), await run_in_threadpool(_anywhere, state, origin))
            if len(self._preflights) > 10_000:
                self._preflights.clear()
            self._preflights[origin] = hit
        out = [(b"vary", b"Origin"), (b"content-length", b"0")]
        if hit[1]:
            out += [(b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                    (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                    (b"access-control-max-age", MAX_AGE.encode())]
        await send({"type": "http.response.start", "status": 204 if hit[1] else 403,
                    "headers": out})
        await send({"type": "http.response.body", "body": b""})


def _lookup(state: object, key: str, ttl: float) -> keys.Shop | None:
    with state.sessionmaker() as session:  # type: ignore[attr-defined]
        return keys.lookup_shop(session, key, ttl)


def _anywhere(state: object, origin: str) -> bool:
    with state.sessionmaker() as session:  # type: ignore[attr-defined]
        return keys.origins_allowed_anywhere(session, origin)
