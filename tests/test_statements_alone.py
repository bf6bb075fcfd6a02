"""``core.db.statements_alone``: a unit of work that reads and writes once runs each statement on
its own on PostgreSQL (no BEGIN/COMMIT round trips), stays one transaction on SQLite, and
refuses a second write before it runs. On SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import bindparam, create_engine, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from haina.core.db import (
    Precompiled,
    WriteNotAlone,
    deferred_inserts,
    insert_rows,
    make_engine,
    make_sessionmaker,
    statements_alone,
    transaction,
    utcnow,
)
from haina.core.events import Event, record_event
from haina.core.idempotency import IdempotencyKey

_K = IdempotencyKey.__table__
_ADD_KEY = Precompiled(insert(_K).values({c.key: bindparam(c.key, type_=c.type) for c in _K.c}))
_ADD_KEY_RETURNING = Precompiled(insert(_K).values(
    {c.key: bindparam(c.key, type_=c.type) for c in _K.c}).returning(_K.c.key))


def _key(name: str, tenant_id: str = "ten_x") -> dict:
    return {"tenant_id": tenant_id, "key": name, "request_hash": "h", "status_code": 201,
            "body": {"ok": name}, "created_at": utcnow()}


def _keys(sessions) -> list[str]:
    with sessions() as s:
        return sorted(s.scalars(select(IdempotencyKey.key)))


def test_a_write_is_committed_at_once_on_postgresql_and_with_the_unit_on_sqlite(db_url, sessions):
    with transaction(sessions) as s:
        statements_alone(s)
        _ADD_KEY.rows(s, _key("first"))
        driver = s.connection().connection.dbapi_connection
        if db_url.startswith("postgresql"):  # seen from another connection: committed
            assert driver.autocommit and _keys(sessions) == ["first"]
        else:  # one transaction, as ever (its write lock keeps other connections out)
            assert driver.in_transaction
    assert _keys(sessions) == ["first"]


def test_a_first_write_of_any_kind_passes(sessions):
    with transaction(sessions) as s:
        statements_alone(s)
        with deferred_inserts(s):  # one write: one statement on PostgreSQL
            record_event(s, "ten_x", "test.first", "x", {})
            insert_rows(s, _K, _key("deferred"))
    assert _keys(sessions) == ["deferred"]


def test_a_second_write_is_refused_before_it_runs(sessions):
    with pytest.raises(WriteNotAlone), transaction(sessions) as s:
        statements_alone(s)
        _ADD_KEY.rows(s, _key("one"))
        _ADD_KEY.rows(s, _key("two"))
    assert "two" not in _keys(sessions)


@pytest.mark.parametrize("second", ["flush", "execute", "insert_rows", "deferred"])
def test_orm_and_insert_rows_writes_count_too(sessions, second):
    with pytest.raises(WriteNotAlone), transaction(sessions) as s:
        statements_alone(s)
        _ADD_KEY.rows(s, _key("one"))
        if second == "flush":
            s.add(IdempotencyKey(**_key("two")))
            s.flush()
        elif second == "execute":
            s.execute(insert(_K).values(**_key("two")))
        elif second == "insert_rows":
            record_event(s, "ten_x", "test.second", "x", {})
        else:
            with deferred_inserts(s):
                record_event(s, "ten_x", "test.second", "x", {})
                insert_rows(s, _K, _key("two"))
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Event)
                        .where(Event.type == "test.second")) == 0
    assert "two" not in _keys(sessions)


def test_a_compare_and_set_that_matched_nothing_may_be_tried_again(sessions):
    with transaction(sessions) as s:
        statements_alone(s)
        _ADD_KEY.rows(s, _key("taken"))
    with transaction(sessions) as s:
        statements_alone(s)
        # a write with RETURNING that returned nothing changed nothing: not counted
        make = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        nothing = Precompiled(make(_K).values(
            {c.key: bindparam(c.key, type_=c.type) for c in _K.c})
            .on_conflict_do_nothing().returning(_K.c.key))
        assert nothing.rows(s, _key("taken")) == []
        assert _ADD_KEY_RETURNING.rows(s, _key("fresh")) == [("fresh",)]
        with pytest.raises(WriteNotAlone):
            _ADD_KEY_RETURNING.rows(s, _key("third"))
    assert _keys(sessions) == ["fresh", "taken"]


def test_it_must_come_before_the_units_first_statement(sessions):
    with pytest.raises(RuntimeError, match="before"), transaction(sessions) as s:
        s.execute(select(1))
        statements_alone(s)


@pytest.mark.parametrize("made_by", ["make_engine", "create_engine"])
@pytest.mark.parametrize("alone_ends", ["committed", "raised"])
def test_the_connection_goes_back_to_the_pool_transactional(db_url, made_by, alone_ends):
    # make_engine's pools switch the driver's autocommit off at checkin; another engine's
    # unit takes SQLAlchemy's isolation-level option, reset by SQLAlchemy
    engine = make_engine(db_url, pool_size=1) if made_by == "make_engine" else \
        create_engine(db_url, pool_size=1)  # either way the next unit gets the same connection
    try:
        sessions = make_sessionmaker(engine)
        with contextlib.suppress(ValueError), transaction(sessions) as s:
            statements_alone(s)
            _ADD_KEY.rows(s, _key("alone"))
            if alone_ends == "raised":
                raise ValueError("after the write: committed on PostgreSQL, not on SQLite")
        with pytest.raises(ValueError), transaction(sessions) as s:
            _ADD_KEY.rows(s, _key("undone"))
            raise ValueError("rolled back")
        kept = ["alone"] if alone_ends == "committed" or engine.dialect.name == "postgresql" \
            else []
        assert _keys(sessions) == kept
    finally:
        engine.dispose()
