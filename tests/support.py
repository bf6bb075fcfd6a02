"""Helpers for tests (a module name of its own: several directories have a conftest.py)."""

from __future__ import annotations

from haina.core.context import Tenant
from haina.core.db import transaction


def make_tenant(sessions, slug: str = "acme") -> tuple[Tenant, str]:
    """A merchant and a full-access token for it."""
    from haina.platform import service
    with transaction(sessions) as s:
        t = service.create_tenant(s, slug, slug.title())
        token = service.create_token(s, slug, "*").token
    return Tenant(id=t.id, slug=t.slug, currency=t.currency), token
