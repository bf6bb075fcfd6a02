"""Units of work on the event loop (core.loop): a route marked ``loop_unit`` runs its sync
code in a greenlet of the loop on PostgreSQL, its statements awaited; elsewhere, and when
``loop_units`` is off, in the thread pool. Waits that another request must end yield."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from support import database_from_template, make_tenant

from haina.core import caches, loop
from haina.core.config import Settings
from haina.core.db import (
    Precompiled,
    make_engine,
    make_sessionmaker,
    statements_alone,
    transaction,
    utcnow,
)
from haina.core.events import Event
from haina.core.http import LOOP_SESSIONS, Router, SessionDep, loop_unit
from haina.platform.models import TenantRow
from haina.storefront.cache import PublicAnswers


@pytest.fixture
def pg_engine(request, tmp_path):
    for url in database_from_template(request, "pg", tmp_path, "lu_"):
        engine = make_engine(url)
        yield engine
        engine.dispose()


def _served(engine, router: Router, **settings) -> TestClient:
    from haina.api import create_app
    app = create_app(Settings(database_url=engine.url.render_as_string(hide_password=False),
                              token_cache_seconds=0, **settings), engine=engine)
    app.include_router(router)
    return TestClient(app)


def _where_router() -> Router:
    router = Router()

    def where(session) -> dict:
        return {"thread": threading.get_ident(), "on_loop": loop.in_loop_unit(),
                "async_driver": session.get_bind().dialect.is_async,
                "one": session.scalar(select(1))}

    @router.get("/marked")
    @loop_unit
    def marked(session: SessionDep) -> dict:
        return where(session)

    @router.get("/unmarked")
    def unmarked(session: SessionDep) -> dict:
        return where(session)

    @router.get("/loop-thread")
    async def loop_thread() -> dict:
        return {"thread": threading.get_ident()}

    return router


def test_a_marked_route_runs_on_the_loop_on_postgresql_and_in_the_pool_elsewhere(engine):
    pg = engine.dialect.name == "postgresql"
    with _served(engine, _where_router()) as client:
        loop_thread = client.get("/loop-thread").json()["thread"]
        marked = client.get("/marked").json()
        unmarked = client.get("/unmarked").json()
        assert client.app.state.loop_sessionmaker is not None if pg else \
            getattr(client.app.state, LOOP_SESSIONS, None) is None
    assert marked["one"] == unmarked["one"] == 1
    assert (marked["thread"] == loop_thread) is pg
    assert marked["on_loop"] is pg and marked["async_driver"] is pg
    assert unmarked["thread"] != loop_thread and not unmarked["on_loop"]
    assert not unmarked["async_driver"]
    # the loop's engine is disposed with the app's lifespan
    assert getattr(client.app.state, LOOP_SESSIONS, None) is None


@pytest.mark.pg
def test_units_kept_ready_go_back_to_the_pool_with_the_apps_lifespan(pg_engine):
    tenant, _ = make_tenant(make_sessionmaker(pg_engine))
    by_id = Precompiled(select(TenantRow.slug).where(TenantRow.id == bindparam("t")))
    router = Router()

    @router.get("/slug")
    @loop_unit
    def slug(session: SessionDep) -> dict:  # no ORM: the unit is kept for the next one
        return {"slug": by_id.rows(session, {"t": tenant.id})[0][0]}

    from haina.core.db import _READY

    with _served(pg_engine, router) as client:
        sessions = client.app.state.loop_sessionmaker  # (held here: not collected at the end)
        pool = sessions.kw["bind"].pool
        assert [client.get("/slug").json()["slug"] for _ in range(3)] == [tenant.slug] * 3
        assert pool.checkedout() == 1  # one unit at a time: one kept, checked out
        [(pooled, _, _)] = _READY[sessions][1]
    assert pooled.dbapi_connection is None and sessions not in _READY  # checked in


@pytest.mark.pg
def test_loop_units_off_runs_every_unit_in_the_pool(pg_engine):
    with _served(pg_engine, _where_router(), loop_units=False) as client:
        loop_thread = client.get("/loop-thread").json()["thread"]
        marked = client.get("/marked").json()
    assert marked["thread"] != loop_thread and not marked["on_loop"]


@pytest.mark.pg
def test_a_unit_waiting_on_another_request_lets_the_loop_serve_it(pg_engine):
    """The first request waits (loop.wait) for an event that only the second sets: on the
    loop, a blocking wait would hold the thread the second needs, and time out."""
    router = Router()
    ready = threading.Event()
    entered = threading.Event()

    @router.get("/wait")
    @loop_unit
    def wait_for_it(session: SessionDep) -> dict:
        session.scalar(select(1))
        entered.set()
        return {"seen": loop.wait(ready, 10), "on_loop": loop.in_loop_unit()}

    @router.get("/set")
    @loop_unit
    def set_it(session: SessionDep) -> dict:
        loop.pause(0.01)  # yields too
        ready.set()
        return {"set": session.scalar(select(1)) == 1}

    with _served(pg_engine, router) as client, ThreadPoolExecutor(2) as pool:
        waiting = pool.submit(client.get, "/wait")
        assert entered.wait(10)
        assert client.get("/set").json() == {"set": True}
        assert waiting.result(20).json() == {"seen": True, "on_loop": True}


@pytest.mark.pg
def test_precompiled_statements_run_on_the_async_driver(pg_engine):
    tenant, _ = make_tenant(make_sessionmaker(pg_engine))
    loop_engine = loop.make_loop_engine(pg_engine)
    assert loop_engine is not None
    factory = make_sessionmaker(loop_engine.sync_engine)
    by_id = Precompiled(select(TenantRow.id, TenantRow.slug).where(
        TenantRow.id == bindparam("t")))
    add = Precompiled(insert(Event.__table__).values(
        id=bindparam("id"), tenant_id=bindparam("t"), type=bindparam("type"),
        subject_id=bindparam("subject"), data=bindparam("data", type_=Event.data.type),
        created_at=bindparam("at", type_=Event.created_at.type)))
    row = {"t": tenant.id, "type": "test.loop", "subject": "x", "data": {"n": 1},
           "at": utcnow()}
    found: list = []

    def work() -> None:
        with transaction(factory) as session:
            found.extend(by_id.rows(session, {"t": tenant.id}))
            add.rows(session, {"id": "evt_loop_1", **row})
        with transaction(factory) as session:
            statements_alone(session)  # autocommit on the async connection too
            add.rows(session, {"id": "evt_loop_1", **row})  # the same id again: refused

    async def main() -> None:
        try:
            await loop.run(work)
        finally:
            await loop_engine.dispose()

    with pytest.raises(IntegrityError):
        asyncio.run(main())
    assert found == [(tenant.id, tenant.slug)]
    with make_sessionmaker(pg_engine)() as s:  # the first unit's insert, read back as JSON
        assert s.scalar(select(Event.data).where(Event.id == "evt_loop_1")) == {"n": 1}


def test_an_autocommit_unit_gives_its_connection_back_transactional(pg_engine):
    tenant, _ = make_tenant(make_sessionmaker(pg_engine))
    loop_engine = loop.make_loop_engine(pg_engine)
    assert loop_engine is not None
    factory = make_sessionmaker(loop_engine.sync_engine)
    add = Precompiled(insert(Event.__table__).values(
        id=bindparam("id"), tenant_id=bindparam("t"), type=bindparam("type"),
        subject_id=bindparam("subject"), data=bindparam("data", type_=Event.data.type),
        created_at=bindparam("at", type_=Event.created_at.type)))

    def row(event_id: str) -> dict:
        return {"id": event_id, "t": tenant.id, "type": "test.loop", "subject": "x",
                "data": {}, "at": utcnow()}

    def work() -> None:  # one unit after the other: the same pooled connection
        with transaction(factory) as session:
            statements_alone(session)
            add.rows(session, row("evt_alone"))
        with contextlib.suppress(ValueError), transaction(factory) as session:
            add.rows(session, row("evt_undone"))
            raise ValueError("rolled back: the connection is transactional again")

    async def main() -> None:
        try:
            await loop.run(work)
        finally:
            await loop_engine.dispose()

    asyncio.run(main())
    with make_sessionmaker(pg_engine)() as s:
        assert list(s.scalars(select(Event.id).where(Event.tenant_id == tenant.id,
                                                     Event.type == "test.loop"))) == ["evt_alone"]


@pytest.mark.pg
def test_the_loop_engine_shares_the_process_caches(pg_engine):
    loop_engine = loop.make_loop_engine(pg_engine)
    assert caches.space(loop_engine.sync_engine) is caches.space(pg_engine)
    asyncio.run(loop_engine.dispose())


def test_loop_engine_is_postgresql_only(engine):
    assert (loop.make_loop_engine(engine) is None) is (engine.dialect.name != "postgresql")


def test_a_public_answer_waited_for_on_the_loop_is_made_once():
    """Two requests of one loop want the same answer: the second waits for the first's
    making, which pauses (a statement awaited) in between; a blocking wait would hold the
    loop for the whole WAIT_SECONDS and then make it a second time."""
    answers = PublicAnswers()
    makings = []

    def make() -> str:
        makings.append(1)
        loop.pause(0.05)
        return "made"

    def want() -> str:
        return answers.answer("k", 10.0, make)

    async def main() -> list[str]:
        return await asyncio.gather(loop.run(want), loop.run(want))

    assert asyncio.run(main()) == ["made", "made"]
    assert len(makings) == answers.made == 1


def test_pause_and_wait_outside_the_loop_are_the_plain_ones():
    event = threading.Event()
    assert not loop.in_loop_unit()
    assert loop.wait(event, 0.01) is False
    event.set()
    assert loop.wait(event, 0.01) is True
    loop.pause(0)
