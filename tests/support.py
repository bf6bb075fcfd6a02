"""Helpers for tests (a module name of its own: several directories have a conftest.py)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

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


def database_from_template(request, backend: str, directory: Path, prefix: str) -> Iterator[str]:
    """Yield the URL of a fresh copy of the migrated template database of ``backend`` (a file
    in ``directory`` for SQLite, a database named ``prefix…`` on the test cluster for
    PostgreSQL, dropped afterwards): the body of the ``db_url`` fixtures."""
    if backend == "sqlite":
        path = directory / "haina.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    cluster = request.getfixturevalue("pg_cluster")
    template = request.getfixturevalue("pg_template")
    name = prefix + uuid.uuid4().hex[:12]
    admin = create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE {template}'))
    try:
        yield cluster.url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
