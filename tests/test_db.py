"""core.db on both backends: statements compiled once and run on the driver's cursor, and the
combined insert of the order path."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from support import database_from_template, make_tenant

from haina.core.db import (
    Precompiled,
    deferred_inserts,
    insert_rows,
    make_engine,
    make_sessionmaker,
    transaction,
)
from haina.core.events import Event, list_events, record_event

_E = Event.__table__.c
_INSERT = Precompiled(insert(Event.__table__).values(
    id=bindparam("id"), tenant_id=bindparam("t"), type=bindparam("type"),
    subject_id=bindparam("s"), data=bindparam("data"), created_at=bindparam("at")))
_BY_TYPE = Precompiled(select(_E.id, _E.subject_id).where(_E.tenant_id == bindparam("t"),
                                                          _E.type == bindparam("type"))
                       .order_by(_E.id))


def test_precompiled_binds_through_the_column_types(session, tenant):
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    data = {"total": {"amount": "1.00", "currency": "CNY"}, "lines": [1, 2], "中": "文"}
    assert _INSERT.rows(session, {"id": "evt_a", "t": tenant.id, "type": "x.made", "s": "sub",
                                  "data": data, "at": at}) == []
    session.commit()
    assert _BY_TYPE.rows(session, {"t": tenant.id, "type": "x.made"}) == [("evt_a", "sub")]
    # JSON went through the JSON type and the datetime through UTCDateTime (stored as UTC)
    row = session.get(Event, (tenant.id, "evt_a"))
    assert row.data == data
    assert row.created_at == at and row.created_at.utcoffset() == dt.timedelta(0)


_TYPED = Precompiled(select(_E.id, _E.data, _E.created_at).where(_E.tenant_id == bindparam("t"),
                                                                  _E.type == bindparam("type")),
                     typed=True)


def test_a_typed_precompiled_statement_gives_json_and_aware_datetimes_by_name(session, tenant):
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    data = {"lines": [1, 2], "中": "文"}
    _INSERT.rows(session, {"id": "evt_t", "t": tenant.id, "type": "x.typed", "s": None,
                           "data": data, "at": at})
    session.commit()
    [row] = _TYPED.records(session, {"t": tenant.id, "type": "x.typed"})
    assert (row.id, row.data, row.created_at) == ("evt_t", data, at)
    assert row.created_at.utcoffset() == dt.timedelta(0)  # back as UTC, aware
    # untyped, the same statement's rows are the driver's (SQLite keeps JSON as text)
    raw = Precompiled(_TYPED.statement).rows(session, {"t": tenant.id, "type": "x.typed"})
    assert raw[0][0] == "evt_t"
    with pytest.raises(AssertionError):
        Precompiled(_TYPED.statement).records(session, {"t": tenant.id, "type": "x.typed"})


def test_precompiled_raises_sqlalchemy_errors_and_the_session_recovers(session, tenant):
    params = {"id": "evt_dup", "t": tenant.id, "type": "x.made", "s": None, "data": {},
              "at": dt.datetime.now(dt.UTC)}
    _INSERT.rows(session, params)
    with pytest.raises(IntegrityError):
        _INSERT.rows(session, params)
    session.rollback()
    assert _BY_TYPE.rows(session, {"t": tenant.id, "type": "x.made"}) == []
    _INSERT.rows(session, params)
    session.commit()
    assert _BY_TYPE.rows(session, {"t": tenant.id, "type": "x.made"}) == [("evt_dup", None)]


def test_a_precompiled_statement_after_a_savepoint_begins_is_inside_it(sessions, tenant):
    # SQLAlchemy sends a SAVEPOINT with the session's next statement; a Precompiled one is
    # sent on the connection itself, so UnitSession.begin_nested sends it at once
    at = dt.datetime.now(dt.UTC)
    with transaction(sessions) as s:
        _INSERT.rows(s, {"id": "evt_before", "t": tenant.id, "type": "x.sp", "s": None,
                         "data": {}, "at": at})
        savepoint = s.begin_nested()
        _INSERT.rows(s, {"id": "evt_in_savepoint", "t": tenant.id, "type": "x.sp", "s": None,
                         "data": {}, "at": at})
        savepoint.rollback()
    with sessions() as s:
        assert [r[0] for r in _BY_TYPE.rows(s, {"t": tenant.id, "type": "x.sp"})] == [
            "evt_before"]


def test_deferred_inserts_land_together_only_when_the_block_succeeds(session, tenant):
    with deferred_inserts(session):
        first = record_event(session, tenant.id, "y.one", "a", {"n": 1})
        insert_rows(session, Event.__table__, [
            {"id": f"evt_y{i}", "tenant_id": tenant.id, "type": "y.many", "subject_id": None,
             "data": {"i": i}, "created_at": dt.datetime.now(dt.UTC)} for i in range(3)])
        assert session.get(Event, (tenant.id, first)) is None  # not sent yet
    session.commit()
    assert [e.data for e in list_events(session, tenant, type="y.*").data] == \
        [{"i": 2}, {"i": 1}, {"i": 0}, {"n": 1}]
    with pytest.raises(RuntimeError), deferred_inserts(session):
        record_event(session, tenant.id, "z.lost", None, {})
        raise RuntimeError("the block failed")
    session.rollback()
    assert list_events(session, tenant, type="z.lost").data == []


_KEYED = {d: Precompiled(ins(Event.__table__).values(
    id=bindparam("id"), tenant_id=bindparam("t"), type=bindparam("type"),
    subject_id=bindparam("s"), data=bindparam("data"),
    created_at=bindparam("at")).on_conflict_do_nothing(
    index_elements=["tenant_id", "id"]).returning(_E.id)) for d, ins in (
    ("sqlite", sqlite_insert), ("postgresql", pg_insert))}


def _held(session, tenant, n: int) -> None:
    insert_rows(session, Event.__table__, [
        {"id": f"evt_h{i}", "tenant_id": tenant.id, "type": "h.held", "subject_id": None,
         "data": {"i": i}, "created_at": dt.datetime.now(dt.UTC)} for i in range(n)])


def test_inserts_held_until_used_are_sent_before_any_statement_that_might_read_them(
        session, tenant):
    """deferred_inserts(until_used=True): whatever statement runs next in the session (a
    Precompiled one, Session.execute, a flush) finds the held rows there."""
    for read in (lambda: _BY_TYPE.rows(session, {"t": tenant.id, "type": "h.held"}),
                 lambda: session.execute(select(_E.id, _E.subject_id).where(
                     _E.tenant_id == tenant.id, _E.type == "h.held")).all()):
        with deferred_inserts(session, until_used=True):
            _held(session, tenant, 2)
            assert [r[0] for r in read()] == ["evt_h0", "evt_h1"]
            assert session.info.get("haina.deferred_until_used") == []
        session.rollback()
    with deferred_inserts(session, until_used=True):  # an ORM object flushed after them
        _held(session, tenant, 1)
        session.add(Event(id="evt_orm", tenant_id=tenant.id, type="h.held", subject_id=None,
                          data={}, created_at=dt.datetime.now(dt.UTC)))
        session.flush()
        assert len(_BY_TYPE.rows(session, {"t": tenant.id, "type": "h.held"})) == 2
    session.rollback()
    with deferred_inserts(session):  # without until_used: held to the block's end
        _held(session, tenant, 1)
        assert _BY_TYPE.rows(session, {"t": tenant.id, "type": "h.held"}) == []
    assert len(_BY_TYPE.rows(session, {"t": tenant.id, "type": "h.held"})) == 1


def test_held_inserts_go_with_a_last_statement_and_its_rows_come_back(session, tenant):
    """Deferred.send_with: the held rows and a last INSERT … RETURNING together (one
    statement on PostgreSQL); a last insert that meets a conflict returns nothing, the held
    rows are in the transaction all the same (the caller decides to roll back)."""
    last = _KEYED[session.get_bind().dialect.name]
    row = {"t": tenant.id, "type": "h.key", "s": None, "data": {"k": 1},
           "at": dt.datetime.now(dt.UTC)}
    with deferred_inserts(session, until_used=True) as held:
        _held(session, tenant, 3)
        assert held.send_with(last, {"id": "evt_key", **row}) == [("evt_key",)]
    session.commit()
    assert len(_BY_TYPE.rows(session, {"t": tenant.id, "type": "h.held"})) == 3
    with deferred_inserts(session, until_used=True) as held:
        insert_rows(session, Event.__table__, {
            "id": "evt_more", "tenant_id": tenant.id, "type": "h.more", "subject_id": None,
            "data": {}, "created_at": dt.datetime.now(dt.UTC)})
        assert held.send_with(last, {"id": "evt_key", **row}) == []  # taken
    assert _BY_TYPE.rows(session, {"t": tenant.id, "type": "h.more"}) == [("evt_more", None)]
    session.rollback()
    assert _BY_TYPE.rows(session, {"t": tenant.id, "type": "h.more"}) == []
    with deferred_inserts(session, until_used=True) as held:  # nothing held: the last alone
        assert held.send_with(last, {"id": "evt_alone", **row}) == [("evt_alone",)]
    session.commit()
    assert session.get(Event, (tenant.id, "evt_alone")).data == {"k": 1}


def test_json_columns_read_back_alike_through_orjson_and_what_it_refuses_through_json(
        session, tenant):
    data = {"n": 9223372036854775807, "f": 0.1, "neg": -0.0, "s": "中文 \u00e9 \U0001f600",
            "nested": [{"a": None, "b": True}], "empty": {}}
    _INSERT.rows(session, {"id": "evt_j", "t": tenant.id, "type": "x.json", "s": "sub",
                           "data": data, "at": dt.datetime.now(dt.UTC)})
    session.commit()
    assert session.get(Event, (tenant.id, "evt_j")).data == data
    # a number beyond a double, put there by hand in SQL: orjson refuses it, json reads it
    from sqlalchemy import text, update
    huge = text("'{\"x\": 1e400}'") if session.get_bind().dialect.name == "sqlite" \
        else text("'{\"x\": 1e400}'::jsonb")
    session.execute(update(Event).where(Event.id == "evt_j").values(data=huge))
    session.commit()
    session.expire_all()
    # (PostgreSQL's jsonb keeps it as the integer 10^400; SQLite keeps the text)
    pg = session.get_bind().dialect.name == "postgresql"
    assert session.get(Event, (tenant.id, "evt_j")).data == {"x": 10**400 if pg else float("inf")}


@pytest.mark.pg
def test_a_connection_given_back_in_a_transaction_is_rolled_back_and_an_aborted_one_ends(
        request, tmp_path):
    # make_engine's PostgreSQL dialect commits and rolls back only a connection in a
    # transaction (psycopg would take its lock to find that an idle one has nothing to end):
    # the pool's reset must still roll back one given back mid-transaction, and a failed
    # statement's transaction must still end
    for url in database_from_template(request, "pg", tmp_path, "reset_"):
        engine = make_engine(url, pool_size=1)  # one connection: each checkout the same
        try:
            sessions = make_sessionmaker(engine)
            tenant, _ = make_tenant(sessions)
            row = {"t": tenant.id, "type": "test.reset", "s": "x", "data": {},
                   "at": dt.datetime.now(dt.UTC)}
            raw = engine.raw_connection()
            raw.cursor().execute(
                "INSERT INTO events (id, tenant_id, type, subject_id, data, created_at) "
                "VALUES ('evt_given_back', %s, 'test.reset', 'x', '{}', now())", (tenant.id,))
            raw.close()  # back to the pool with the insert uncommitted
            with pytest.raises(IntegrityError), transaction(sessions) as s:
                _INSERT.rows(s, {**row, "id": "evt_aborted"})
                _INSERT.rows(s, {**row, "id": "evt_aborted"})  # fails: the transaction aborts
            with transaction(sessions) as s:
                _INSERT.rows(s, {**row, "id": "evt_after"})
            with sessions() as s:
                assert [r[0] for r in _BY_TYPE.rows(
                    s, {"t": tenant.id, "type": "test.reset"})] == ["evt_after"]
        finally:
            engine.dispose()
