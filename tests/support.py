"""Helpers for tests (a module name of its own: several directories have a conftest.py)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.pool import NullPool

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


def app_token(sessions, slug: str, scopes: str) -> str:
    """An access token of an app installed by merchant ``slug`` with ``scopes``, as the
    token endpoint would issue it (the OAuth dance itself is tested in tests/platform)."""
    import datetime as dt
    import secrets

    from haina.core.db import utcnow
    from haina.core.ids import new_id
    from haina.platform import apps, service
    from haina.platform.models import OAuthToken
    from haina.platform.oauth import ACCESS_PREFIX, digest
    from haina.platform.schemas import AppIn
    token = ACCESS_PREFIX + secrets.token_urlsafe(32)
    with transaction(sessions) as s:
        app = apps.register_app(s, AppIn(name="An app", category="analytics",
                                         redirect_uris=["https://app.example/cb"],
                                         scopes=scopes.split()))
        tenant = service.tenant_for_slug(s, slug)
        grant = apps.install(s, tenant.id, app.client_id, scopes.split(), None)
        now = utcnow()
        s.add(OAuthToken(id=new_id("oauth_token"), token_hash=digest(token), kind="access",
                         family_id=new_id("oauth_token"), app_id=app.client_id,
                         tenant_id=tenant.id, grant_id=grant.id, scope=" ".join(scopes.split()),
                         expires_at=now + dt.timedelta(hours=1), created_at=now))
    return token


def database_from_template(request, backend: str, directory: Path, prefix: str,
                           demo: bool = False) -> Iterator[str]:
    """Yield the URL of a fresh copy of the migrated template database of ``backend`` (a file
    in ``directory`` for SQLite, a database named ``prefix…`` on the test cluster for
    PostgreSQL, dropped afterwards): the body of the ``db_url`` fixtures. With ``demo``, a copy
    of the quick demo's template (``DemoTemplate``) instead."""
    if backend == "sqlite":
        path = directory / "haina.db"
        if demo:
            shutil.copyfile(request.getfixturevalue("sqlite_demo_template").built(), path)
        else:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        check_event_streams(f"sqlite:///{path}")
        return
    cluster = request.getfixturevalue("pg_cluster")
    if demo:
        # a demo copy is dropped after its test: emptied, it would no longer be the demo
        template = request.getfixturevalue("pg_demo_template").built()
        with pg_database(cluster, prefix, template, reuse=False) as url:
            yield url
            check_event_streams(url)
        return
    template = request.getfixturevalue("pg_template")
    with pg_database(cluster, prefix, template) as url:
        yield url
        check_event_streams(url)


@dataclass
class DemoTemplate:
    """The quick demo loaded once by ``haina demo --quick`` (run in this process, its output
    captured: not a terminal) into a copy of a backend's template database; tests that need
    the demo get a copy of it (``demo_db_url``, ``module_demo_url``) instead of loading it,
    which took 15-40 s per load. ``code`` and ``stderr`` are the command's."""

    location: str  # the SQLite file, or the PostgreSQL template database's name
    code: int
    stderr: str

    def built(self) -> str:
        """The template, failing the test that needs it when the load failed."""
        if self.code != 0:
            import pytest
            pytest.fail(f"`haina demo --quick` exited {self.code}:\n{self.stderr}")
        return self.location


def cli_in_process(url: str, argv: list[str]) -> tuple[int, str, str]:
    """``haina.cli.main`` on ``argv`` in this process against ``url``, for session fixtures
    (``run_cli`` is the function-scoped twin): exit code, stdout, stderr. The outputs are
    string buffers, so Rich sees no terminal, as in a pipe or CI."""
    import io
    import sys
    from contextlib import redirect_stderr, redirect_stdout

    from haina import cli
    from haina.core.config import get_settings
    saved = os.environ.get("HAINA_DATABASE_URL"), sys.argv
    os.environ["HAINA_DATABASE_URL"] = url
    sys.argv = ["haina", *argv]
    get_settings.cache_clear()
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                cli.main()
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        if saved[0] is None:
            os.environ.pop("HAINA_DATABASE_URL", None)
        else:
            os.environ["HAINA_DATABASE_URL"] = saved[0]
        sys.argv = saved[1]
        get_settings.cache_clear()
    return code, out.getvalue(), err.getvalue()


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` across processes (the xdist workers of one run)."""
    import fcntl
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sqlite_demo(template: Path, shared: Path) -> DemoTemplate:
    """The quick demo on SQLite, loaded once per test run: the first xdist worker to ask loads
    it into a copy of its ``template`` under ``shared`` (the run's base temp directory), the
    other waits on the lock and reads the result."""
    import json
    import sqlite3
    path, record = shared / "demo-template.db", shared / "demo-template.json"
    with file_lock(shared / "demo-template.lock"):
        if not record.exists():
            loading = shared / "demo-loading.db"
            shutil.copyfile(template, loading)
            code, _, err = cli_in_process(f"sqlite:///{loading}", ["demo", "--quick"])
            # one self-contained file to copy (the WAL folded in), whatever connections the
            # command's engine still holds
            source, target = sqlite3.connect(loading), sqlite3.connect(path)
            with target:
                source.backup(target)
            source.close()
            target.close()
            record.write_text(json.dumps({"code": code, "stderr": err}))
    done = json.loads(record.read_text())
    return DemoTemplate(str(path), done["code"], done["stderr"])


def pg_demo(cluster, template: str, shared: Path) -> DemoTemplate:
    """The quick demo on this worker's PostgreSQL cluster, as a template database. The first
    xdist worker to ask loads it and leaves a dump (``pg_dump -Fc``) under ``shared``; the
    other restores the dump into its own cluster (seconds, where the load takes 15-40)."""
    import json
    import subprocess
    name = "haina_demo_template"
    dump, record = shared / "demo-template.pgdump", shared / "demo-template-pg.json"
    admin = create_engine(cluster.url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    plain = cluster.url(name).replace("postgresql+psycopg", "postgresql")
    try:
        with file_lock(shared / "demo-template-pg.lock"):
            if record.exists():
                done = json.loads(record.read_text())
                if done["code"] == 0:
                    with admin.connect() as conn:
                        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
                    subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "-d", plain,
                                    str(dump)], check=True, capture_output=True)
                    # a dump holds no planner statistics: gather them as the load did
                    loaded = create_engine(cluster.url(name), isolation_level="AUTOCOMMIT",
                                           poolclass=NullPool)
                    with loaded.connect() as conn:
                        conn.execute(text("ANALYZE"))
                    loaded.dispose()
                return DemoTemplate(name, done["code"], done["stderr"])
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE {template}'))
            code, _, err = cli_in_process(cluster.url(name), ["demo", "--quick"])
            with admin.connect() as conn:  # a template takes no copies while sessions are open
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = :name"), {"name": name})
            if code == 0:
                subprocess.run(["pg_dump", "-Fc", "-f", str(dump), plain], check=True,
                               capture_output=True)
            record.write_text(json.dumps({"code": code, "stderr": err}))
            return DemoTemplate(name, code, err)
    finally:
        admin.dispose()


@contextmanager
def pg_database(cluster, prefix: str, template: str | None = None,
                reuse: bool = True) -> Iterator[str]:
    """A new database on the test cluster (a copy of ``template``, or empty), dropped after.

    A copy of the template is not dropped but emptied and handed to the next test under a new
    name (a fresh name, so that nothing cached by URL outlives its test): ``CREATE DATABASE …
    TEMPLATE`` cost the server 0.4 s of CPU per test, 1.2 s on partitioned tables, where
    emptying costs a few milliseconds per table. A database whose schema, settings or planner
    statistics the test changed is dropped instead (``_reusable``); so is every copy with
    ``reuse=False``."""
    name = prefix + uuid.uuid4().hex[:12]
    admin = create_engine(cluster.url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    key = f"{cluster.url()} {template}"
    try:
        with admin.connect() as conn:
            if not (template and reuse and _take_spare(conn, key, name)):
                conn.execute(text(f'CREATE DATABASE "{name}"' + (f" TEMPLATE {template}"
                                                                 if template else "")))
        if template and reuse and key not in _TEMPLATE_SHAPE:
            _TEMPLATE_SHAPE[key] = _shape(cluster.url(name))
        yield cluster.url(name)
    finally:
        if template and reuse and REUSE and _reusable(cluster, admin, name, key):
            _SPARES.setdefault(key, []).append(name)
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# HAINA_TEST_DB_REUSE=0: a new copy for every test, as before session 7 (to rule reuse out)
REUSE = os.environ.get("HAINA_TEST_DB_REUSE", "1") != "0"
# emptied copies of a template, per cluster and template: this worker's tests take turns
_SPARES: dict[str, list[str]] = {}
_TEMPLATE_SHAPE: dict[str, str] = {}
# what a test could change besides rows: relations, columns, constraints, triggers, functions,
# extensions, the database's settings, planner statistics and page counts (VACUUM, ANALYZE),
# the migration stamp. Columns and constraints are read from the tables the tests address, not
# from each hash partition's copies of its parent's (a partition takes no columns of its own;
# a constraint added to one partition has no parent and is read): on partitioned tables the
# full read took 0.17-0.35 s per test, this one 0.02-0.08 s. Every relation is still listed.
_SHAPE = """
SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
  SELECT concat_ws(':', 'rel', n.nspname, c.relname, c.relkind, c.relnatts, c.relpages,
                   c.reltuples) AS x
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname !~ '^pg_(toast|temp)'
  UNION ALL
  SELECT concat_ws(':', 'att', a.attrelid::regclass, a.attname, a.atttypid, a.attnotnull,
                   a.atthasdef)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
   WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
     AND NOT c.relispartition
  UNION ALL
  SELECT concat_ws(':', 'con', conrelid::regclass, conname, pg_get_constraintdef(oid))
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conparentid = 0
  UNION ALL SELECT concat_ws(':', 'trg', tgname) FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL
  SELECT concat_ws(':', 'fn', proname) FROM pg_proc
   WHERE pronamespace = 'public'::regnamespace
  UNION ALL SELECT concat_ws(':', 'ext', extname, extversion) FROM pg_extension
  UNION ALL
  SELECT concat_ws(':', 'set', array_to_string(s.setconfig, ','))
    FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
   WHERE d.datname = current_database()
  UNION ALL
  SELECT concat_ws(':', 'stats', count(*)) FROM pg_statistic s
    JOIN pg_class c ON c.oid = s.starelid WHERE c.relnamespace = 'public'::regnamespace
  UNION ALL SELECT concat_ws(':', 'stamp', version_num) FROM alembic_version
) shape"""
# the tables to empty: partitioned parents (their partitions follow) and plain tables
_TABLES = """
SELECT c.oid::regclass::text FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
   AND NOT c.relispartition AND c.relname <> 'alembic_version'"""


def _shape(url: str) -> str:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return str(conn.exec_driver_sql(_SHAPE).scalar())
    finally:
        engine.dispose()


def _take_spare(conn, key: str, name: str) -> bool:
    """Rename an emptied copy to ``name``; False when there is none (or it is still in use)."""
    spares = _SPARES.get(key)
    while spares:
        spare = spares.pop()
        try:
            conn.execute(text(f'ALTER DATABASE "{spare}" RENAME TO "{name}"'))
            return True
        except Exception:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{spare}" WITH (FORCE)'))
    return False


def _reusable(cluster, admin: Engine, name: str, key: str) -> bool:
    """End the sessions a test left open, then empty every table if the database still has
    the template's shape: True when it can be handed on."""
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND pid <> pg_backend_pid()"),
                         {"name": name})
        engine = create_engine(cluster.url(name), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                if str(conn.exec_driver_sql(_SHAPE).scalar()) != _TEMPLATE_SHAPE.get(key):
                    return False
                tables = conn.exec_driver_sql(_TABLES).scalars().all()
                # the rows go in any order: foreign keys are not checked in replica mode
                conn.exec_driver_sql("SET session_replication_role = replica; " + "; ".join(
                    f"DELETE FROM {table}" for table in tables))
                conn.commit()
        finally:
            engine.dispose()
        return True
    except Exception:
        return False


def lifecycles() -> list:
    from haina.campaigns.lifecycle import CAMPAIGN_LIFECYCLE
    from haina.crossborder.lifecycle import BRAND_LIFECYCLE, DECLARATION_LIFECYCLE
    from haina.o2o.service import BOOKING_LIFECYCLE
    from haina.orders.service import ORDER_LIFECYCLE
    from haina.payments.service import PAYMENT_INTENT_LIFECYCLE
    return [ORDER_LIFECYCLE, PAYMENT_INTENT_LIFECYCLE, BOOKING_LIFECYCLE, DECLARATION_LIFECYCLE,
            BRAND_LIFECYCLE, CAMPAIGN_LIFECYCLE]


def event_stream_problems(url: str) -> list[str]:
    """Every object's events in the database, walked through its module's lifecycle table."""
    from haina.core.events import Event
    # one stream per tenant: a partner's booking tells its story in both outboxes
    streams: dict[tuple[str, str, str], list[tuple[str, str | None]]] = {}
    by_prefix = {lc.event_prefix: lc for lc in lifecycles()}
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            table = Event.__table__
            for tenant_id, subject, type_, data in conn.execute(
                    select(table.c.tenant_id, table.c.subject_id, table.c.type, table.c.data)
                    .order_by(table.c.id)):
                prefix = type_.split(".", 1)[0] + "."
                if prefix in by_prefix and subject:
                    status = data.get("status") if isinstance(data, dict) else None
                    streams.setdefault((prefix, tenant_id, subject), []).append((type_, status))
    finally:
        engine.dispose()
    problems = []
    for (prefix, _, subject), stream in streams.items():
        problems += [f"{subject}: {p}" for p in by_prefix[prefix].walk(stream)]
    return problems


def check_event_streams(url: str) -> None:
    """Fail the test whose events tell of a transition its lifecycle table does not have."""
    import pytest
    problems = event_stream_problems(url)
    if problems:
        pytest.fail("event streams outside their lifecycle tables:\n" + "\n".join(problems[:20]))


def build_schema(engine: Engine) -> None:
    """The whole schema from the models, stamped at the migration head (tests compare the
    migrations against the models separately, in test_migrations). In the partitioned test
    mode (``HAINA_PARTITION_BY_TENANT=1``, PostgreSQL) the migrations build it, since they are
    what hash-partitions the tenant tables (docs/scaling.md)."""
    import os
    if os.environ.get("HAINA_PARTITION_BY_TENANT") == "1" and engine.dialect.name == "postgresql":
        from haina.core.schema import upgrade
        upgrade(engine)
        return
    Base.metadata.create_all(engine)
    head = head_revision()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS alembic_version "
                          "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        conn.execute(text("DELETE FROM alembic_version"))
        if head:
            conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": head})


def run_cli(url: str | None, argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """``haina.cli.main`` on ``argv`` in this process, against the database at ``url`` (a new
    interpreter per case would take seconds; ``None``: HAINA_DATABASE_URL unset, the default
    URL): exit code, stdout, stderr."""
    import sys

    from haina import cli
    from haina.core.config import get_settings
    if url is None:
        monkeypatch.delenv("HAINA_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("HAINA_DATABASE_URL", url)
    monkeypatch.setattr(sys, "argv", ["haina", *argv])
    get_settings.cache_clear()
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr()
    return code, out.out, out.err


@contextmanager
def served_app(engine: Engine, **settings) -> Iterator[str]:
    """Haina on a real port of loopback (uvicorn in a thread), for SDK tests: its base URL.
    ``settings`` override the test defaults (no token cache, no rate limits)."""
    import threading
    import time

    import uvicorn

    from haina.api import create_app
    from haina.core.config import Settings
    from haina.core.pgtemp import free_port
    options = {"token_cache_seconds": 0, "rate_limit_backend": "off", **settings}
    app = create_app(Settings(database_url=str(engine.url), **options), engine=engine)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def until(check, seconds: float = 10.0) -> bool:
    """Whether ``check()`` holds before ``seconds`` pass (a wait for an event, not a timing)."""
    import time
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def without(value, volatile):
    """``value`` (JSON) with the keys in ``volatile`` left out at every depth: two answers made
    alike compare equal once their identities and times are gone."""
    if isinstance(value, dict):
        return {k: without(v, volatile) for k, v in value.items() if k not in volatile}
    if isinstance(value, list):
        return [without(v, volatile) for v in value]
    return value


def same_answers(a, b, volatile) -> None:
    """Two HTTP answers to the same request agree: status, content type, body (``volatile``
    keys aside) and the names of their headers (rate-limit figures and length aside)."""
    assert a.status_code == b.status_code, (a.text, b.text)
    assert a.headers["content-type"] == b.headers["content-type"]
    assert without(a.json(), volatile) == without(b.json(), volatile), (a.text, b.text)
    names = {k for k in a.headers if not k.startswith("ratelimit") and k != "content-length"}
    assert names == {k for k in b.headers if not k.startswith("ratelimit")
                     and k != "content-length"}
