"""core.pgwire: Precompiled statements of units on the event loop, sent on libpq directly —
the same rows as psycopg's cursor gives, a transaction's BEGIN with its first statement,
statements prepared once per connection (and again when the server lost them), errors as
psycopg's, and a cancelled wait leaving no half-used connection in the pool. PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    String,
    bindparam,
    inspect,
    literal_column,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from support import database_from_template

from haina.core import loop
from haina.core.db import (
    Precompiled,
    lean_transaction,
    make_engine,
    make_sessionmaker,
    release_units,
    statements_alone,
    transaction,
)
from haina.core.events import Event

pytestmark = pytest.mark.pg

_ECHO = Precompiled(select(
    bindparam("n", type_=Integer).label("n"), bindparam("s", type_=String).label("s"),
    bindparam("at", type_=DateTime(timezone=True)).label("at"),
    bindparam("doc", type_=JSON).label("doc")), typed=True)
_NOW = Precompiled(select(literal_column("now()").label("now"),
                          literal_column("current_setting('transaction_isolation')").label("i")))
_PREPARED = Precompiled(select(literal_column("count(*)")).select_from(
    text("pg_prepared_statements")))


@pytest.fixture
def engines(request, tmp_path):
    for url in database_from_template(request, "pg", tmp_path, "wire_"):
        engine = make_engine(url, pool_size=1)  # one connection: each unit gets the same
        loop_engine = loop.make_loop_engine(engine)
        yield engine, loop_engine
        engine.dispose()


def _on_loop(loop_engine, work, timeout: float | None = None):
    async def main():
        try:
            return await asyncio.wait_for(loop.run(work), timeout)
        finally:
            await loop.run(release_units, loop_engine.sync_engine)
            await loop_engine.dispose()
    return asyncio.run(main())


def test_rows_come_back_as_the_drivers_cursor_gives_them(engines):
    engine, loop_engine = engines
    params = {"n": 7, "s": "轮胎", "at": dt.datetime(2026, 12, 3, 8, 30, tzinfo=dt.UTC),
              "doc": {"a": [1, 2], "b": None}}
    with transaction(make_sessionmaker(engine)) as s:
        expected = _ECHO.rows(s, params)
    factory = make_sessionmaker(loop_engine.sync_engine)

    def work():
        found = []
        for _ in range(3):  # sent, then prepared on this connection: alike each time
            with transaction(factory) as s:
                found.append(_ECHO.rows(s, params))
            with transaction(factory) as s:
                statements_alone(s)
                found.append(_ECHO.rows(s, {**params, "s": None, "doc": None}))
        return found

    found = _on_loop(loop_engine, work)
    assert found[0] == expected and found[0] == found[2] == found[4]
    assert found[1][0][1] is None and found[1][0][3] is None and found[1] == found[3] == found[5]


def test_a_units_first_statement_opens_its_transaction_and_its_isolation_holds(engines):
    _, loop_engine = engines
    factory = make_sessionmaker(loop_engine.sync_engine)

    def work():
        with transaction(factory) as s:
            first, second = _NOW.rows(s, {})[0], _NOW.rows(s, {})[0]
        with factory() as s:
            s.connection(execution_options={"isolation_level": "SERIALIZABLE"})
            serializable = _NOW.rows(s, {})[0]
            s.commit()
        with transaction(factory) as s:
            statements_alone(s)  # autocommit: each statement its own transaction
            alone = [_NOW.rows(s, {})[0][0], _NOW.rows(s, {})[0][0]]
        return first, second, serializable, alone

    first, second, serializable, alone = _on_loop(loop_engine, work)
    assert first == second and first[1] == "read committed"  # one transaction, as BEGIN said
    assert serializable[1] == "serializable"
    assert alone[0] < alone[1]


def test_statements_are_prepared_once_and_again_when_the_server_forgot_them(engines):
    _, loop_engine = engines
    factory = make_sessionmaker(loop_engine.sync_engine)

    def work():
        counts = []
        for _ in range(3):
            with transaction(factory) as s:
                counts.append(_PREPARED.rows(s, {})[0][0])
        with pytest.raises(ValueError), transaction(factory) as s:
            _NOW.rows(s, {})
            raise ValueError("rolled back: the prepared statements stay")
        with transaction(factory) as s:
            counts.append(_PREPARED.rows(s, {})[0][0])
            s.connection().exec_driver_sql("DEALLOCATE ALL")
        with transaction(factory) as s:
            statements_alone(s)  # alone: sent again, prepared anew
            counts.append(_PREPARED.rows(s, {})[0][0])
            _NOW.rows(s, {})
        with transaction(factory) as s:
            s.connection().exec_driver_sql("DEALLOCATE _haina_3")  # _NOW's, the latest name
        with transaction(factory) as s:
            statements_alone(s)
            counts.append(len(_NOW.rows(s, {})))  # one forgotten: all are prepared anew
            counts.append(_PREPARED.rows(s, {})[0][0])  # under new names: no name clash
        with transaction(factory) as s:
            s.connection().exec_driver_sql("DEALLOCATE ALL")
        with pytest.raises(DBAPIError, match="does not exist"), transaction(factory) as s:
            _NOW.rows(s, {})  # in a transaction: the error stands (it aborted the transaction)
        with transaction(factory) as s:
            counts.append(len(_NOW.rows(s, {})))
        return counts

    # _PREPARED: 1, 1, 1; with _NOW: 2; anew after DEALLOCATE ALL: 1; _NOW's 1 row; after
    # one name was deallocated: _NOW's 1 row and 3 (the older _PREPARED, the two new ones);
    # after DEALLOCATE ALL in a transaction: the error, then _NOW's 1 row
    assert _on_loop(loop_engine, work) == [1, 1, 1, 2, 1, 1, 3, 1]


def test_errors_are_the_drivers_and_a_cancelled_wait_gives_the_connection_up(engines):
    _, loop_engine = engines
    factory = make_sessionmaker(loop_engine.sync_engine)
    sleep = Precompiled(select(literal_column("pg_sleep(5)")))
    unique = Precompiled(select(literal_column("1/0")))

    def failing():
        with transaction(factory) as s:
            unique.rows(s, {})

    def sleeping():
        with transaction(factory) as s:
            sleep.rows(s, {})

    def after():
        with transaction(factory) as s:
            return _NOW.rows(s, {})[0][1]

    async def main():
        try:
            with pytest.raises(DBAPIError, match="division by zero"):
                await loop.run(failing)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(loop.run(sleeping), 0.2)
            return await asyncio.wait_for(loop.run(after), 2)  # not queued behind the sleep
        finally:
            await loop_engine.dispose()

    assert asyncio.run(main()) == "read committed"


def test_an_integrity_error_is_sqlalchemys(engines):
    engine, loop_engine = engines
    add = Precompiled(Event.__table__.insert().values(
        id=bindparam("id"), tenant_id=bindparam("t"), type=bindparam("type"),
        subject_id=bindparam("subject"),
        data=bindparam("d", type_=Event.data.type),
        created_at=bindparam("at", type_=Event.created_at.type)))
    factory = make_sessionmaker(loop_engine.sync_engine)

    def work():
        with transaction(factory) as s:
            for _ in range(2):  # the same id twice: the primary key refuses
                add.rows(s, {"id": "evt_w", "t": "ten_x", "type": "x", "subject": "x", "d": {},
                             "at": dt.datetime.now(dt.UTC)})

    with pytest.raises(IntegrityError):
        _on_loop(loop_engine, work)
    with make_sessionmaker(engine)() as s:  # the unit's first insert was rolled back with it
        assert s.scalar(select(literal_column("count(*)")).select_from(text("events"))) == 0


def _events(engine) -> list[str]:
    with make_sessionmaker(engine)() as s:
        return sorted(s.scalars(select(Event.id)))


def test_a_lean_unit_is_one_transaction_whatever_ran_its_statements(engines):
    # core.db.lean_transaction: Precompiled statements run on the unit's connection without
    # the session's transaction; in_transaction, rollback, commit, savepoints and ORM work
    # must treat them as part of the unit all the same
    engine, loop_engine = engines
    factory = make_sessionmaker(loop_engine.sync_engine)
    add = Precompiled(Event.__table__.insert().values(
        id=bindparam("id"), tenant_id=bindparam("t"), type=bindparam("type"),
        subject_id=bindparam("subject"), data=bindparam("d", type_=Event.data.type),
        created_at=bindparam("at", type_=Event.created_at.type)))

    def row(event_id: str) -> dict:
        return {"id": event_id, "t": "ten_x", "type": "x", "subject": "x", "d": {},
                "at": dt.datetime.now(dt.UTC)}

    def orm(event_id: str) -> Event:
        return Event(id=event_id, tenant_id="ten_x", type="x", subject_id="x", data={},
                     created_at=dt.datetime.now(dt.UTC))

    def work():
        seen = []
        with lean_transaction(factory) as s:
            seen.append(s.in_transaction())  # nothing ran yet
            add.rows(s, row("evt_rolled_back"))
            seen.append(s.in_transaction())  # a statement ran: the unit's transaction is open
            s.rollback()  # undoes it, as a session's rollback undoes its work
            add.rows(s, row("evt_committed"))
            s.commit()
            add.rows(s, row("evt_kept"))
            with s.begin_nested() as savepoint:  # a savepoint after raw work: same connection
                add.rows(s, row("evt_savepoint_undone"))
                s.add(orm("evt_orm_undone"))
                s.flush()
                savepoint.rollback()
            kept = orm("evt_orm_kept")
            s.add(kept)
        seen.append(inspect(kept).detached)  # closed: its objects are let go
        with lean_transaction(factory) as s:  # no ORM: nothing to close, nothing left open
            add.rows(s, row("evt_raw_only"))
        seen.append((s.get_transaction(), len(s.identity_map),
                     s.info["haina.lean"].driver_connection.pgconn.transaction_status))
        with pytest.raises(ValueError), lean_transaction(factory) as s:
            add.rows(s, row("evt_raised_raw"))
            s.add(orm("evt_raised_orm"))
            s.flush()
            raise ValueError("the unit's raw and ORM work undone together")
        return seen

    assert _on_loop(loop_engine, work) == [False, True, True, (None, 0, 0)]  # 0: libpq's IDLE
    assert _events(engine) == ["evt_committed", "evt_kept", "evt_orm_kept", "evt_raw_only"]


def test_autocommit_is_switched_between_transactions_only_and_as_psycopg_reads_it(engines):
    """pgwire.set_autocommit sets psycopg's own switch (read by its ``autocommit`` and by the
    statements' BEGIN) when the connection is idle, and refuses (False, nothing changed) in
    a transaction: then statements_alone's caller goes through psycopg's setter."""
    from haina.core import pgwire

    _, loop_engine = engines
    factory = make_sessionmaker(loop_engine.sync_engine)

    def work():
        seen = []
        with lean_transaction(factory) as s:
            driver = s.info["haina.lean"].driver_connection
            seen.append(pgwire.set_autocommit(driver, True))
            seen.append(driver.autocommit)
            first, second = _NOW.rows(s, {})[0][0], _NOW.rows(s, {})[0][0]
            seen.append(first < second)  # each statement its own transaction
            seen.append(pgwire.set_autocommit(driver, False))
            _NOW.rows(s, {})  # BEGIN sent with it: in a transaction now
            seen.append(pgwire.set_autocommit(driver, True))  # refused
            seen.append(driver.autocommit)
        with lean_transaction(factory) as s:  # the same connection, as the pool gives it
            seen.append(s.info["haina.lean"].driver_connection.autocommit)
        return seen

    assert _on_loop(loop_engine, work) == [True, True, True, True, False, False, False]


def test_a_units_last_statement_may_carry_its_commit(engines):
    """Deferred.send_with(commit=True) in a lean unit on the loop: the held inserts, the last
    statement and COMMIT in one round trip (committed before the unit ends, which then sends
    nothing); a failing last statement commits nothing and the unit rolls back. Where the
    unit cannot (ORM work in it), the statement is sent alone and the unit commits."""
    from haina.core.db import deferred_inserts, insert_rows
    from haina.core.events import Event as E

    engine, loop_engine = engines
    factory = make_sessionmaker(loop_engine.sync_engine)
    key_row = Precompiled(E.__table__.insert().values(
        id=bindparam("id"), tenant_id=bindparam("t"), type=bindparam("type"),
        subject_id=bindparam("subject"), data=bindparam("d", type_=E.data.type),
        created_at=bindparam("at", type_=E.created_at.type)).returning(E.id))

    def row(event_id: str) -> dict:
        return {"id": event_id, "tenant_id": "ten_x", "type": "x", "subject_id": "x",
                "data": {}, "created_at": dt.datetime.now(dt.UTC)}

    def last(event_id: str) -> dict:
        r = row(event_id)
        return {"id": r["id"], "t": "ten_x", "type": "x", "subject": "x", "d": {},
                "at": r["created_at"]}

    def work():
        seen = []
        with lean_transaction(factory) as s:
            _NOW.rows(s, {})  # the unit's transaction is open
            with deferred_inserts(s, until_used=True) as held:
                insert_rows(s, E.__table__, [row("evt_held")])
                got = held.send_with(key_row, last("evt_last"), commit=True)
            seen.append((got, s.info["haina.lean"].driver_connection.pgconn.transaction_status))
            seen.append(_events(engine))  # committed already, seen from another connection
        with pytest.raises(IntegrityError), lean_transaction(factory) as s:
            _NOW.rows(s, {})
            with deferred_inserts(s, until_used=True) as held:
                insert_rows(s, E.__table__, [row("evt_undone")])
                held.send_with(key_row, last("evt_last"), commit=True)  # taken: fails
        with lean_transaction(factory) as s:  # ORM work: the statement alone, then commit
            s.add(E(**row("evt_orm")))
            s.flush()
            with deferred_inserts(s, until_used=True) as held:
                got = held.send_with(key_row, last("evt_after_orm"), commit=True)
            seen.append((got, _events(engine)))  # not committed yet: the unit commits it
        return seen

    seen = _on_loop(loop_engine, work)
    assert seen[0] == ([("evt_last",)], 0)  # libpq's IDLE: nothing left to commit
    assert seen[1] == ["evt_held", "evt_last"]
    assert seen[2] == ([("evt_after_orm",)], ["evt_held", "evt_last"])
    assert _events(engine) == ["evt_after_orm", "evt_held", "evt_last", "evt_orm"]


def test_a_unit_that_ends_clean_is_kept_for_the_next_and_no_other(engines):
    """core.db.lean_transaction keeps a unit that ended clean (committed, no session
    transaction begun, nothing hooked on its session, its connection idle) for the next one:
    the same session and connection, as fresh as a new unit's (statements_alone's autocommit
    switched back, its mark gone). A unit that used the ORM or raised is let go as before;
    release_units gives the kept ones back to the pool."""
    from haina.core.db import _READY

    _, loop_engine = engines
    factory = make_sessionmaker(loop_engine.sync_engine)
    pool = loop_engine.sync_engine.pool

    def work():
        seen = []
        with lean_transaction(factory) as first:
            _NOW.rows(first, {})
        with lean_transaction(factory) as s:
            seen.append(s is first)  # kept and given again
            driver = s.info["haina.lean"].driver_connection
            statements_alone(s)
            seen.append(driver.autocommit)
            _NOW.rows(s, {})
        with lean_transaction(factory) as s:
            seen.append((s is first, driver.autocommit, "haina.statements_alone" in s.info))
            s.execute(select(literal_column("1")))  # Session.execute: its transaction begun
        with lean_transaction(factory) as s:
            seen.append(s is first)  # that one was let go
            second = s
        with pytest.raises(ValueError), lean_transaction(factory) as s:
            seen.append(s is second)
            _NOW.rows(s, {})
            raise ValueError("not kept")
        with lean_transaction(factory) as s:
            seen.append(s is second)
        seen.append(pool.checkedout())  # the one kept is checked out
        release_units(loop_engine.sync_engine)
        seen.append((pool.checkedout(), factory in _READY))
        return seen

    assert _on_loop(loop_engine, work) == [True, True, (True, False, False), False, True, False,
                                           1, (0, False)]


class _Readers:
    """The running loop's add_reader/remove_reader calls, counted (asyncio's own loop)."""

    def __init__(self) -> None:
        running = asyncio.get_running_loop()
        self.added: list[int] = []
        self.removed: list[int] = []
        add, remove = running.add_reader, running.remove_reader

        def counted_add(fd, callback, *args):
            self.added.append(fd)
            return add(fd, callback, *args)

        def counted_remove(fd):
            self.removed.append(fd)
            return remove(fd)

        running.add_reader, running.remove_reader = counted_add, counted_remove


def test_a_units_statements_wait_on_one_reader_kept_until_the_connection_closes(engines):
    """The event loop's connections (pgwire.LoopConnection) keep the loop's reader of their
    socket between the waits of their statements (the units' own, sent here), and give it up
    when they close."""
    from haina.core import pgwire

    _, loop_engine = engines
    factory = make_sessionmaker(loop_engine.sync_engine)
    drivers = []

    def unit():
        with lean_transaction(factory) as s:
            drivers.append(s.info["haina.lean"].driver_connection)
            for n in range(4):
                _ECHO.rows(s, {"n": n, "s": "x", "at": None, "doc": None})

    def work():
        unit()  # connected (psycopg's own waits), its reader added
        readers = _Readers()
        for _ in range(3):
            unit()
        return readers, (list(readers.added), list(readers.removed))

    readers, during = _on_loop(loop_engine, work, timeout=10)
    assert isinstance(drivers[0], pgwire.LoopConnection) and len(set(map(id, drivers))) == 1
    assert during == ([], [])  # 12 statements and 3 commits on the reader already there
    assert readers.added == [] and len(readers.removed) == 1  # given up at the close


def test_psycopgs_own_waits_and_the_kept_reader_take_turns(engines):
    """A statement psycopg runs itself (the ORM's, a driver call) adds and removes a reader
    of its own, which would leave the kept one gone and the next statement sent here waiting
    for ever: the kept reader is released before each of psycopg's waits."""
    _, loop_engine = engines
    factory = make_sessionmaker(loop_engine.sync_engine)

    def work():
        found = []
        for _ in range(3):
            with transaction(factory) as s:
                found.append(_NOW.rows(s, {})[0][1])  # sent here: the reader kept
                found.append(s.execute(select(literal_column("2"))).scalar())  # psycopg's
                found.append(_NOW.rows(s, {})[0][1])  # here again
        return found

    # (a wait never woken would hang the test: it times out instead)
    assert _on_loop(loop_engine, work, timeout=10) == ["read committed", 2, "read committed"] * 3


def test_a_kept_reader_lets_go_of_a_connection_the_server_ended(engines):
    """The server ends an idle connection whose reader is kept: the reader, woken with no
    statement waiting, reads the server's goodbye and lets go of the socket (the loop does
    not spin on it), and the next unit runs on another connection instead of waiting."""
    from haina.core import pgwire

    engine, loop_engine = engines
    factory = make_sessionmaker(loop_engine.sync_engine)
    pid = Precompiled(select(literal_column("pg_backend_pid()")))
    seen = {}

    def first():
        with lean_transaction(factory) as s:
            seen["driver"] = s.info["haina.lean"].driver_connection
            return pid.rows(s, {})[0][0]

    def after():
        with lean_transaction(factory) as s:
            return pid.rows(s, {})[0][0]

    async def main():
        try:
            backend = await loop.run(first)
            wire = pgwire._WIRES[seen["driver"]]
            seen["kept"] = wire.loop is not None
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend})
            for _ in range(50):  # the server's goodbye reaches the kept reader
                await asyncio.sleep(0.05)
                if wire.loop is None:
                    break
            seen["released"] = wire.loop is None
            seen["again"] = await asyncio.wait_for(loop.run(after), 10)
            seen["backend"] = backend
        finally:
            await loop.run(release_units, loop_engine.sync_engine)
            await loop_engine.dispose()

    asyncio.run(main())
    assert seen["kept"] and seen["released"] and seen["driver"].closed
    assert seen["again"] != seen["backend"]
