"""Shared fixtures: every storage test runs on SQLite and on a throwaway PostgreSQL cluster."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

# argon2's cheapest parameters for the staff accounts the tests make and sign in with
# (platform/staff.py); set before haina is imported, and inherited by the servers tests start
os.environ.setdefault("HAINA_PASSWORD_HASHING", "cheapest-for-tests")
# the tests' webhook receivers listen on loopback (tests/webhooks/test_egress.py turns the
# guard back on where it is the subject)
os.environ.setdefault("HAINA_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "1")

import pytest
from sqlalchemy import Engine, create_engine, text
from support import (  # noqa: F401  (tests import them from support)
    DemoTemplate,
    build_schema,
    database_from_template,
    make_tenant,
    pg_database,
    pg_demo,
    sqlite_demo,
)

import haina.models_registry  # noqa: F401
from haina.core.context import Tenant
from haina.core.db import make_engine, make_sessionmaker
from haina.core.pgtemp import PgCluster, unavailable_reason

REQUIRE_PG = os.environ.get("HAINA_REQUIRE_PG") == "1"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    reason = unavailable_reason()
    if reason:
        if REQUIRE_PG:
            pytest.fail(f"HAINA_REQUIRE_PG=1 but {reason}")
        pytest.skip(reason)
    cluster = PgCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    build_schema(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PgCluster) -> str:
    admin = create_engine(pg_cluster.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE haina_template"))
    admin.dispose()
    engine = make_engine(pg_cluster.url("haina_template"))
    build_schema(engine)
    engine.dispose()
    return "haina_template"


def _run_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory shared by the xdist workers of this run (the one above each worker's)."""
    shared = tmp_path_factory.getbasetemp()
    return shared.parent if os.environ.get("PYTEST_XDIST_WORKER") else shared


@pytest.fixture(scope="session")
def sqlite_demo_template(sqlite_template: Path,
                         tmp_path_factory: pytest.TempPathFactory) -> DemoTemplate:
    """The quick demo on SQLite, loaded once per run (the xdist workers share it)."""
    return sqlite_demo(sqlite_template, _run_directory(tmp_path_factory))


@pytest.fixture(scope="session")
def pg_demo_template(pg_cluster: PgCluster, pg_template: str,
                     tmp_path_factory: pytest.TempPathFactory) -> DemoTemplate:
    """The quick demo on this worker's PostgreSQL cluster: loaded once per run, restored from
    its dump by the other worker."""
    return pg_demo(pg_cluster, pg_template, _run_directory(tmp_path_factory))


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def demo_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh copy of the quick demo's database on each backend (the demo loaded once per
    run or worker, ``DemoTemplate``): for tests that read the demo or write to their copy."""
    yield from database_from_template(request, request.param, tmp_path, "d_", demo=True)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def module_demo_url(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One copy of the quick demo's database per test module and backend, for a module whose
    tests share one more expensive setup on top of it and only read it."""
    yield from database_from_template(request, request.param,
                                      tmp_path_factory.mktemp("demo-db"), "md_", demo=True)


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new database without a schema on each backend (for migrations)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with pg_database(request.getfixturevalue("pg_cluster"), "m_") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database on each backend: a copy of a template, so tests start fast."""
    yield from database_from_template(request, request.param, tmp_path, "t_")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine):
    return make_sessionmaker(engine)


@pytest.fixture
def session(sessions) -> Iterator:
    with sessions() as s:
        yield s


@pytest.fixture
def tenant(sessions) -> Tenant:
    return make_tenant(sessions)[0]


@pytest.fixture
def app(engine: Engine):
    from haina.api import create_app
    from haina.core.config import Settings
    return create_app(Settings(database_url=str(engine.url), token_cache_seconds=0), engine=engine)


@pytest.fixture
def client(app, sessions):
    """An API client for a fresh merchant ``acme`` with a ``*`` token."""
    from fastapi.testclient import TestClient
    _, token = make_tenant(sessions)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


# ---- issue 14: no response and no log line of the suite holds an unmasked ID number --------

_SEEN_TEXTS: list[str] = []
# the two routes of the crossborder:identity scope, whose purpose is the unmasked number
_UNMASKING_PATHS = ("/identity", "/messages")


class _LogTexts(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            _SEEN_TEXTS.append(record.getMessage())
        except Exception:  # noqa: BLE001 — a record that cannot format holds nothing to scan
            pass


def _scan_responses_and_logs() -> None:
    """Every TestClient response of every test (but the unmasking routes') and every log
    record emitted (at the levels configured) are kept for :func:`_no_unmasked_id_numbers`."""
    from starlette.testclient import TestClient

    original = TestClient.request

    def request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = original(self, *args, **kwargs)
        kind = response.headers.get("content-type", "")
        if (not response.request.url.path.endswith(_UNMASKING_PATHS)
                and ("json" in kind or kind.startswith("text/"))):
            _SEEN_TEXTS.append(response.text)
        return response

    TestClient.request = request  # type: ignore[method-assign]
    logging.getLogger().addHandler(_LogTexts())


_scan_responses_and_logs()


@pytest.fixture(autouse=True)
def _no_unmasked_id_numbers() -> Iterator[None]:
    """A test fails when one of its responses or log lines holds a valid resident ID number
    (GB 11643: shape, birth date, check character) unmasked. The cross-border tests' own
    ``scanned`` fixture also scans their log records at DEBUG level."""
    from haina.crossborder.identity import ID_NUMBER_PATTERN, id_number_problem
    _SEEN_TEXTS.clear()
    yield
    leaks = sorted({m for text in _SEEN_TEXTS for m in ID_NUMBER_PATTERN.findall(text)
                    if id_number_problem(m) is None})
    _SEEN_TEXTS.clear()
    assert leaks == [], f"unmasked ID numbers in a response or log line: {leaks}"
