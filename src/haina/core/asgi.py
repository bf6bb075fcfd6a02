"""The HTTP edge, as one pure ASGI middleware (no per-request objects beyond two closures):

* every response carries ``X-Content-Type-Options: nosniff``, so a browser never runs an
  uploaded file or an error body as something other than its declared type;
* request bodies are bounded: a ``Content-Length`` over the limit is answered 413 before the
  body is read, and a body without one (chunked) is counted while the application reads it;
* a busy route may be answered by a compiled handler of its own (``direct``, see
  ``core.http.DirectRoute``) instead of the framework's middleware and routing, its path
  static or templated (``/carts/{cart_id}``);
* a path or query string holding a NUL character (``%00``) is answered 422: PostgreSQL cannot
  compare text with one, and no id, SKU or filter has one (JSON bodies are checked by
  ``core.schema_types.RequestModel``).

It wraps the whole application, Starlette's error middleware included, so 500s get the header
too. A route may have a larger limit of its own (media uploads).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any

import orjson

from haina.core.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

NOSNIFF = (b"x-content-type-options", b"nosniff")


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a streamed body passes its limit; the response the
    application then makes (if any) is replaced by the 413."""


class RouteLimit:
    """A body limit of its own for the requests of ``method`` whose path matches ``pattern``."""

    __slots__ = ("method", "pattern", "limit")

    def __init__(self, method: str, pattern: str, limit: int) -> None:
        self.method = method
        self.pattern = re.compile(pattern)
        self.limit = limit


def nul_in_url(path: str) -> tuple[dict[str, Any], bytes]:
    body = orjson.dumps({
        "type": PROBLEM_BASE + "validation-error", "title": "Invalid request", "status": 422,
        "detail": "the path or query string holds a NUL character (%00), which no value may hold",
        "instance": path.replace("\x00", "%00"), "errors": []})
    start = {"type": "http.response.start", "status": 422, "headers": [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        NOSNIFF]}
    return start, body


def _has_nul(scope: Scope) -> bool:
    query = scope.get("query_string", b"")
    return "\x00" in scope["path"] or b"%00" in query or b"\x00" in query


def too_large(limit: int, path: str) -> tuple[dict[str, Any], bytes]:
    body = orjson.dumps({
        "type": PROBLEM_BASE + "payload-too-large", "title": "Payload too large", "status": 413,
        "detail": f"the request body is larger than {limit} bytes", "instance": path,
        "max_bytes": limit})
    start = {"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        # the rest of the body is not read: the connection cannot carry another request
        (b"connection", b"close"),
        NOSNIFF]}
    return start, body


class HttpEdge:
    def __init__(self, app: ASGIApp, max_body_bytes: int,
                 route_limits: Sequence[RouteLimit] = (),
                 direct: Mapping[tuple[str, str], ASGIApp] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.route_limits = tuple(route_limits)
        # busy routes answered without the framework's layers (core.http.DirectRoute), by
        # (method, path); whatever they do not take they hand to ``app``. A templated path
        # (``/carts/{cart_id}``) is matched by its segments: tried after the static ones, by
        # (method, number of segments), each route's ``match`` giving its path parameters
        self.direct = {key: route for key, route in (direct or {}).items()
                       if "{" not in key[1]}
        templated: dict[tuple[str, int], list[Any]] = {}
        for (method, path), route in (direct or {}).items():
            if "{" in path:
                templated.setdefault((method, path.count("/") + 1), []).append(route)
        self.templated = {key: tuple(routes) for key, routes in templated.items()}

    def _limit(self, scope: Scope) -> int:
        for r in self.route_limits:
            if scope["method"] == r.method and r.pattern.fullmatch(scope["path"]):
                return r.limit
        return self.max_body_bytes

    def _templated(self, scope: Scope) -> ASGIApp:
        """The direct route of a templated path that ``scope`` matches, its parameters set in
        ``scope["path_params"]`` (as Starlette's routing sets them), else the application.
        Under a ``root_path`` the application matches (it strips it first)."""
        if scope.get("root_path"):
            return self.app
        parts = scope["path"].split("/")
        for route in self.templated.get((scope["method"], len(parts)), ()):
            found = route.match(parts)
            if found is not None:
                scope["path_params"] = found
                return route
        return self.app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _has_nul(scope):
            start, body = nul_in_url(scope["path"])
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        limit = self._limit(scope) if self.route_limits else self.max_body_bytes
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    pass
                break
        if declared is not None and declared > limit:
            start, body = too_large(limit, scope["path"])
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return

        state = [0, False, False]  # bytes received, over the limit, response replaced

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                if state[1]:  # the body passed the limit: answer 413 whatever the app said
                    state[2] = True
                    start, body = too_large(limit, scope["path"])
                    await send(start)
                    await send({"type": "http.response.body", "body": body})
                    return
                extra = [NOSNIFF]
                decision = scope.get("state", {}).get("haina_ratelimit")
                if decision is not None:  # core.http.admit: the credential's bucket
                    extra += decision.headers()
                message["headers"] = [*message.get("headers", ()), *extra]
            elif state[2]:
                return
            await send(message)

        if declared is not None:  # the server keeps the body to its Content-Length
            app_receive = receive
        else:
            async def app_receive() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    state[0] += len(message.get("body", b""))
                    if state[0] > limit:
                        state[1] = True
                        raise BodyTooLarge(f"request body over {limit} bytes")
                return message

        app = self.direct.get((scope["method"], scope["path"])) if self.direct else None
        if app is None:
            app = self._templated(scope) if self.templated else self.app
        try:
            await app(scope, app_receive, send_with_header)
        except BodyTooLarge:
            if not state[2]:
                start, body = too_large(limit, scope["path"])
                await send(start)
                await send({"type": "http.response.body", "body": body})
