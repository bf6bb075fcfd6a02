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
from haina.core.errors import Forbidden, Unauthorized
from haina.platform import service


async def current_tenant(request: Request) -> Tenant:
    """The merchant and scopes of the request's bearer token (401 problem if none valid)."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send Authorization: Bearer <token>")
    tenant = await _credential(request, token)
    if not tenant.id:
        raise Forbidden("this token is an app's own (client credentials) and acts for no "
                        "merchant; use a token from a merchant's authorization",
                        slug="no-merchant")
    return tenant


async def _credential(request: Request, token: str) -> Tenant:
    ttl = request.app.state.settings.token_cache_seconds
    cached = service.cached_tenant(token, ttl)
    if cached is not None:
        return cached
    return await run_in_threadpool(_authenticate, request.app.state.sessionmaker, token, ttl)


async def current_app(request: Request) -> Tenant:
    """The app of an app's own token (client credentials; 401/403 otherwise). The returned
    context has ``app_id`` and no merchant."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send Authorization: Bearer <token>")
    tenant = await _credential(request, token)
    if tenant.app_id is None or tenant.id:
        raise Forbidden("this route takes an app's own token (grant_type=client_credentials)",
                        slug="app-token-required")
    return tenant


def app_only() -> Callable[..., object]:
    """The dependency of an app's own routes (marked ``app_only``: the route walk in the tests
    counts it as a declared access rule, as ``required_scope`` is)."""
    async def dependency(request: Request) -> Tenant:
        return await current_app(request)

    dependency.app_only = True  # type: ignore[attr-defined]
    return dependency


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
