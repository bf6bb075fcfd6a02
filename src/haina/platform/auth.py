"""Bearer-token authentication and scope checks for the API."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.errors import Unauthorized
from haina.core.http import get_session
from haina.platform import service

_bearer = HTTPBearer(auto_error=False, description="a token from `haina token create`")


async def current_tenant(request: Request,
                         creds: HTTPAuthorizationCredentials | None = Depends(_bearer),
                         session: Session = Depends(get_session)) -> Tenant:
    if creds is None or creds.scheme.lower() != "bearer":
        raise Unauthorized("send Authorization: Bearer <token>")
    ttl = request.app.state.settings.token_cache_seconds
    cached = service.cached_tenant(creds.credentials, ttl)
    if cached is not None:
        return cached
    return await run_in_threadpool(_authenticate, session, creds.credentials, ttl)


def _authenticate(session: Session, token: str, ttl: float) -> Tenant:
    """Verify a token and end the read transaction in the same thread: on SQLite an open
    transaction holds the write lock (BEGIN IMMEDIATE) while the request waits for another
    pool thread, which under load is a deadlock until the busy timeout."""
    try:
        return service.authenticate(session, token, ttl)
    finally:
        session.rollback()


def require(scope: str) -> Callable[..., Tenant]:
    """A dependency giving the caller's tenant, after checking it holds ``scope``."""

    async def dependency(tenant: Tenant = Depends(current_tenant)) -> Tenant:
        tenant.require(scope)
        return tenant

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency
