"""Helpers for tests (a module name of its own: several directories have a conftest.py)."""

from __future__ import annotations

from sqlalchemy import Engine, text

import haina.models_registry  # noqa: F401
from haina.core.context import Tenant
from haina.core.db import Base, transaction
from haina.core.schema import head_revision


def make_tenant(sessions, slug: str = "acme") -> tuple[Tenant, str]:
    """A merchant and a full-access token for it."""
    from haina.platform import service
    with transaction(sessions) as s:
        t = service.create_tenant(s, slug, slug.title())
        token = service.create_token(s, slug, "*").token
    return Tenant(id=t.id, slug=t.slug, currency=t.currency), token


def build_schema(engine: Engine) -> None:
    """The whole schema from the models, stamped at the migration head (tests compare the
    migrations against the models separately, in test_migrations)."""
    Base.metadata.create_all(engine)
    head = head_revision()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS alembic_version "
                          "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        conn.execute(text("DELETE FROM alembic_version"))
        if head:
            conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": head})
