"""Bearer-token authentication and scope checks for the API.

One dependency per route (``require(scope)``) reads the ``Authorization`` header itself: every
extra dependency costs FastAPI work on each request, and this is on every request's path. The
bearer scheme is declared in the OpenAPI document by the app factory.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from haina.core.context import Tenant, parse_scopes
from haina.core.errors import Unauthorized
from haina.platform import service


async def current_tenant(request: Request) -> Tenant:
    """The merchant and scopes of the request's bearer token (401 problem if none valid)."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send Authorization: Bearer <token>")
    ttl = request.app.state.settings.token_cache_seconds
    cached = service.cached_tenant(token, ttl)
    if cached is not None:
        return cached
    return await run_in_threadpool(_authenticate, request.app.state.sessionmaker, token, ttl)


def _authenticate(sessions: sessionmaker[Session], token: str, ttl: float) -> Tenant:
    """Verify a token in a session of its own, closed in this same thread: on SQLite an open
    transaction holds the write lock (BEGIN IMMEDIATE), which must not be carried across the
    hop to another pool thread (under load, a deadlock until the busy timeout)."""
    with sessions() as session:
        return service.authenticate(session, token, ttl)


def require(scope: str) -> Callable[..., object]:
    """A dependency giving the caller's tenant, after checking it holds ``scope``. The scope
    must be one a merchant can grant (``parse_scopes``): a 403 never names a scope nobody can
    have. The dependency keeps it as ``required_scope`` (tests walk the routes by it)."""
    if parse_scopes(scope) != {scope} or scope == "*":
        raise ValueError(f"a route must require one grantable scope, not {scope!r}")

    async def dependency(request: Request) -> Tenant:
        tenant = await current_tenant(request)
        tenant.require(scope)
        return tenant

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    dependency.required_scope = scope  # type: ignore[attr-defined]
    return dependency
