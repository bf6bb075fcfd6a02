"""Engine, sessions and the declarative base, written once for SQLite and PostgreSQL.

SQLite is opened in WAL mode with a busy timeout, and every transaction starts with
``BEGIN IMMEDIATE`` so that concurrent writers wait their turn instead of failing with
"database is locked" halfway through.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Engine,
    ForeignKeyConstraint,
    MetaData,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, CursorResult, Dialect, Result, make_url
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL, JSON text on SQLite.
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")
Minor = BigInteger  # money in integer minor units


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both backends (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)

    if TYPE_CHECKING:
        # SQLAlchemy types it as a FromClause (a class may map a join); each model here maps a Table
        __table__: ClassVar[Table]


# Tables that belong to no one merchant (see docs/scaling.md): every other table is a tenant
# table, keyed (tenant_id, …), whose unique constraints and foreign keys include tenant_id,
# so that it can be distributed by tenant_id (tests/test_shard_keys.py holds them to it).
GLOBAL_TABLES = {
    "tenants": "the merchants themselves (a reference table under Citus)",
    "api_tokens": "credentials looked up by their hash before the merchant is known",
    "alembic_version": "the schema's revision",
    "staff_accounts": "people who sign in: found by email before the merchant is known",
    "staff_sessions": "signed-in browsers, found by the cookie's hash",
    "apps": "service providers' apps (OAuth clients): they serve many merchants",
    "app_certifications": "the platform's badges on apps",
    "oauth_codes": "authorization codes, looked up by their hash before the merchant is known",
    "oauth_tokens": "apps' tokens, looked up by their hash before the merchant is known",
    "storefront_keys": "publishable keys, looked up by the key before the merchant is known",
    "crossborder_reviewers": "apps the platform delegated qualification reviews to, for "
                             "every merchant",
}


def tenant_fk(column: str, table: str) -> ForeignKeyConstraint:
    """A foreign key between tenant tables: ``(tenant_id, column)`` → ``table (tenant_id, id)``,
    so that a row can only point at a row of its own merchant (and both live on one shard)."""
    return ForeignKeyConstraint(["tenant_id", column], [f"{table}.tenant_id", f"{table}.id"])


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Hand transaction control to SQLAlchemy's "begin" hook below (pysqlite would otherwise
    # issue a deferred BEGIN lazily).
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    try:  # SQLite's math functions (the geo search's haversine), built in since 3.35 …
        cur.execute("SELECT sin(0)")
    except dbapi_connection.OperationalError:  # … unless built without them
        for name, arity, fn in _MATH_FUNCTIONS:
            dbapi_connection.create_function(name, arity, fn, deterministic=True)
    cur.close()


def _math(fn: Callable[..., float]) -> Callable[..., float | None]:
    return lambda *args: None if None in args else fn(*args)


_MATH_FUNCTIONS = [(name, arity, _math(fn)) for name, arity, fn in (
    ("sin", 1, math.sin), ("cos", 1, math.cos), ("asin", 1, math.asin), ("sqrt", 1, math.sqrt),
    ("radians", 1, math.radians), ("power", 2, math.pow))]


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _json_dumps(value: Any) -> str:
    # orjson: several times faster than json.dumps for the JSON columns (events, orders)
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _json_loads(data: str | bytes) -> Any:
    """orjson for the JSON columns read back (psycopg's loader was 1/5 of a cart read's CPU);
    what orjson refuses and ``json`` takes (a number beyond a double, written by hand in SQL)
    is read by ``json``. Haina writes JSON with orjson, so it never holds an integer beyond
    64 bits (which orjson would read as a float)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        import json
        return json.loads(data)


def _pg_json(dbapi_connection: Any, _record: Any) -> None:
    import psycopg
    from psycopg.types.json import set_json_loads
    if not isinstance(dbapi_connection, psycopg.Connection):  # SQLAlchemy's async adaptor
        dbapi_connection = dbapi_connection.driver_connection
    set_json_loads(_json_loads, dbapi_connection)  # json and jsonb, on this connection


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30,
                                                             "check_same_thread": False},
                               pool_size=pool_size, max_overflow=40, json_serializer=_json_dumps,
                               json_deserializer=_json_loads)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, echo=echo, json_serializer=_json_dumps,
                           **_server_options(pool_size))
    if parsed.get_driver_name() == "psycopg":
        event.listen(engine, "connect", _pg_json)
        _switches_autocommit(engine)
        _ends_only_transactions(engine.dialect)
    return engine


def _server_options(pool_size: int) -> dict[str, Any]:
    connect_args = {}
    if os.environ.get("HAINA_PARTITION_BY_TENANT") == "1":
        # On hash-partitioned tables a generic plan (prepared statements after 5 runs, and the
        # foreign-key checks) locks and plans every partition before pruning at run time;
        # custom plans prune while planning. Measured on the order path (alternating 10 s
        # loads): partitioned/plain 0.77 with generic plans allowed, 0.86 with custom only.
        connect_args["options"] = "-c plan_cache_mode=force_custom_plan"
    return {"pool_size": pool_size, "max_overflow": 20, "pool_pre_ping": False,
            "connect_args": connect_args}


def make_async_engine(engine: Engine) -> Any:
    """An ``AsyncEngine`` (psycopg's async connection) over the PostgreSQL database of
    ``engine``, made as :func:`make_engine` made it: the same pool and connect options,
    echo and JSON handling (core.loop's)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from haina.core import pgwire
    options = _server_options(cast(Any, engine.pool).size())
    # core.pgwire prepares the Precompiled statements on these connections; psycopg's own
    # preparing (after 5 runs) would, at a rollback, deallocate every prepared statement
    options["connect_args"] = {**options["connect_args"], "prepare_threshold": None,
                               # its units' statements wait on a reader kept between waits
                               "async_creator_fn": pgwire.LoopConnection.connect}
    async_engine = create_async_engine(
        engine.url.render_as_string(hide_password=False), echo=engine.echo,
        json_serializer=_json_dumps, **options)
    event.listen(async_engine.sync_engine, "connect", _pg_json)
    _switches_autocommit(async_engine.sync_engine)
    _ends_only_transactions(async_engine.sync_engine.dialect)
    return async_engine


_IDLE = 0  # libpq's PQTRANS_IDLE (psycopg.pq.TransactionStatus.IDLE)
_AUTOCOMMIT = "haina.autocommit"  # a pooled connection's info: switched on by statements_alone
_SWITCHING: weakref.WeakSet[Any] = weakref.WeakSet()  # pools that switch it off at checkin


def _ends_only_transactions(dialect: Dialect) -> None:
    """Commit and roll back (a unit's end, the pool's reset on return) only a connection in a
    transaction. psycopg does nothing for one that is idle either, but only after taking the
    connection's lock, and on the event loop's async driver after two greenlet switches and
    an await: a unit of work ends with a commit and a reset, most of them on an idle
    connection (an autocommit unit's, or one already committed). On the event loop's async
    driver the ``COMMIT`` and ``ROLLBACK`` are sent by core.pgwire, as the units' statements."""
    if dialect.is_async:  # the event loop's units: sent by core.pgwire, as their statements
        from haina.core import pgwire

        def sent(command: bytes) -> Callable[[Any], None]:
            def end(dbapi_connection: Any) -> None:
                driver = dbapi_connection.driver_connection
                if driver.pgconn.transaction_status == _IDLE or driver.closed:
                    return  # (closed by core.pgwire mid-statement: replaced at checkin)
                await_(pgwire.command(driver, command))
            return end

        dialect.do_commit = sent(b"COMMIT")  # type: ignore[method-assign,assignment]
        dialect.do_rollback = sent(b"ROLLBACK")  # type: ignore[method-assign,assignment]
        return

    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        if dbapi_connection.driver_connection.pgconn.transaction_status != _IDLE:
            commit(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        if dbapi_connection.driver_connection.pgconn.transaction_status != _IDLE:
            rollback(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]


def _switches_autocommit(engine: Engine) -> None:
    """Let :func:`statements_alone` switch the driver's autocommit on for a unit of work on
    ``engine``'s connections: the pool switches it off again as the connection comes back
    (and replaces a connection that came back closed: core.pgwire closes one it left
    mid-statement)."""
    event.listen(engine, "checkin", _checked_in)
    _SWITCHING.add(engine.pool)


def _checked_in(dbapi_connection: Any, record: Any) -> None:
    if dbapi_connection is None:
        return
    if dbapi_connection.closed:
        record.invalidate()
        return
    if not record.info.pop(_AUTOCOMMIT, False):
        return
    try:
        _switch_autocommit(dbapi_connection, False)
    except Exception as exc:  # noqa: BLE001 — a connection that cannot say is not pooled
        record.invalidate(exc)


_PGWIRE: Any = None


def _pgwire() -> Any:
    """core.pgwire, imported at first use (psycopg is the [pg] extra's) and kept: an import
    statement on every statement's path cost ~0.8 µs (its package's ``_handle_fromlist``)."""
    global _PGWIRE
    if _PGWIRE is None:
        from haina.core import pgwire
        _PGWIRE = pgwire
    return _PGWIRE


def _switch_autocommit(dbapi_connection: Any, on: bool) -> None:
    """The driver's autocommit switch: on the event loop's async driver without psycopg's
    lock and awaits (core.pgwire), else its setter."""
    driver = getattr(dbapi_connection, "driver_connection", None)  # (SQLAlchemy's adaption)
    if driver is not None:
        if _pgwire().set_autocommit(driver, on):
            return
    dbapi_connection.autocommit = on


_CONNECTION = "haina.connection"


def _remember_connection(session: Session, _transaction: Any, connection: Any) -> None:
    session.info[_CONNECTION] = connection
    session.info[_BEGUN] = True  # (a lean_transaction whose ORM was used is not kept)


def _forget_connection(session: Session, _transaction: Any) -> None:
    session.info.pop(_CONNECTION, None)


class UnitSession(Session):
    """The sessions of :func:`make_sessionmaker`. In a :func:`lean_transaction` the unit's
    ``Precompiled`` statements may have run on its connection before (or without) the
    session's own transaction: ``in_transaction``, ``commit`` and ``rollback`` take them in,
    as they would have been in the session's transaction. And a savepoint is sent when it is
    begun, so that the ``Precompiled`` statements after it are inside it."""

    def in_transaction(self) -> bool:
        pooled = self.info.get(_LEAN)
        return super().in_transaction() or (
            pooled is not None and pooled.driver_connection.pgconn.transaction_status != _IDLE)

    def begin_nested(self) -> SessionTransaction:
        nested = super().begin_nested()
        # the SAVEPOINT now (SQLAlchemy sends it with the session's next statement): a
        # Precompiled statement next, sent on the connection itself, must be inside it
        self.connection()
        return nested

    def commit(self) -> None:
        pooled = self.info.get(_LEAN)
        if pooled is None or super().in_transaction() or self.new or self.dirty or self.deleted:
            super().commit()
        if pooled is not None:
            _end(cast(Connection, self.bind).dialect, pooled, commit=True)

    def rollback(self) -> None:
        super().rollback()
        pooled = self.info.get(_LEAN)
        if pooled is not None:
            _end(cast(Connection, self.bind).dialect, pooled, commit=False)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = sessionmaker(engine, class_=UnitSession,
                                                  expire_on_commit=False, autoflush=False)
    # the transaction's connection, for Precompiled (Session.connection() costs as much as
    # binding a statement); forgotten when any transaction or savepoint ends
    event.listen(factory, "after_begin", _remember_connection)
    event.listen(factory, "after_transaction_end", _forget_connection)
    # statements_alone's guard (session events: an engine's would make every connection
    # dispatch its begin, execute and commit events)
    event.listen(factory, "before_flush", _check_flush)
    event.listen(factory, "do_orm_execute", _check_execute)
    return factory


def _connection(session: Session) -> Any:
    return session.info.get(_CONNECTION) or session.connection()


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commits if the block finishes, rolls back if it raises."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


_LEAN = "haina.lean"  # session.info: the pooled connection of a lean_transaction
_BEGUN = "haina.begun"  # session.info: a session transaction was begun (the ORM was used)
#: how many units ready for the next :func:`lean_transaction` each sessionmaker keeps (a
#: pooled connection, its ``Connection`` and a ``Session`` bound to it, from a unit that
#: ended clean); checked out of the pool meanwhile, so never more than the pool's size
KEEP_UNITS = 8
_READY: weakref.WeakKeyDictionary[sessionmaker, tuple[int, list[tuple[Any, Connection, Session]]]] \
    = weakref.WeakKeyDictionary()


@contextmanager
def lean_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """:func:`transaction` for the event loop's units (core.loop): the same unit of work,
    without the ``Session``'s transaction machinery until it is asked for.

    The unit's pooled connection is taken at once and the session bound to it (a
    ``Connection`` over it): ``Precompiled`` statements run on it directly, and SQLAlchemy's
    session transaction (begun, committed and closed with its pool checkout, events and state
    changes: about half of a unit's own CPU when it runs two statements) is made only when
    the unit uses the ORM or ``Session.execute`` — on the same connection, so the unit stays
    one transaction either way. The end is the same: committed if the block finishes, rolled
    back if it raises; the connection goes back to the pool.

    A unit that ends clean — committed, no session transaction ever begun, nothing hooked
    on its session, its connection idle — is kept for the next one as it stands (at most
    :data:`KEEP_UNITS`): the pool's checkout and checkin, a ``Connection`` and a ``Session``
    made and let go were a fifth of a cart read's CPU. :func:`release_units` closes them."""
    found = _READY.get(factory)
    if found is None:
        found = _READY[factory] = (min(KEEP_UNITS, factory.kw["bind"].pool.size()), [])
    keep, ready = found
    while ready:
        pooled, connection, session = ready.pop()
        if _idle(pooled):
            break
        # ended while kept (the server closed it: core.pgwire's reader of its socket reads
        # the goodbye): let go, not given to a unit that would fail on it
        connection.invalidate()
        connection.close()
    else:
        engine = factory.kw["bind"]
        pooled = engine.raw_connection()
        try:
            connection = Connection(engine, connection=pooled)
        except BaseException:
            pooled.close()
            raise
        try:
            session = factory(bind=connection)
        except BaseException:
            connection.close()
            raise
    info = session.info
    info[_CONNECTION] = connection
    info[_LEAN] = pooled  # (UnitSession: its commit and rollback take it in)
    kept = False
    try:
        try:
            yield session
            session.commit()
        except BaseException:
            try:
                session.rollback()
            except Exception:  # noqa: BLE001 — the unit's own error is the one to raise;
                pass  # a connection that cannot roll back is replaced at checkin
            raise
        finally:
            # a unit that used no ORM has nothing to close (no transaction, no objects):
            # Session.close would still build a new identity map and detach nothing
            if session.get_transaction() is not None or session.identity_map \
                    or session.new or session.deleted:
                session.close()
        kept = len(ready) < keep and info.keys() <= _CLEAN_INFO \
            and _idle(pooled) and not connection.invalidated
    finally:
        if kept and pooled.info.pop(_AUTOCOMMIT, False):
            try:  # (statements_alone's switch, which the checkin turns back)
                _switch_autocommit(pooled.dbapi_connection, False)
            except Exception:  # noqa: BLE001 — a connection that cannot say is not kept
                kept = False
        if kept:
            info.pop(_ALONE, None)
            ready.append((pooled, connection, session))
        else:
            connection.close()


def _idle(pooled: Any) -> bool:
    driver = getattr(pooled, "driver_connection", None)
    return driver is not None and not driver.closed \
        and driver.pgconn.transaction_status == _IDLE


def release_units(engine: Engine) -> None:
    """Give the units :func:`lean_transaction` keeps on ``engine`` back to its pool (before
    the engine is disposed: a kept one is checked out)."""
    for factory in [f for f in _READY if f.kw["bind"] is engine]:
        for _pooled, connection, _session in _READY.pop(factory)[1]:
            connection.close()


def _end(dialect: Dialect, pooled: Any, commit: bool) -> None:
    """Commit or roll back the pooled connection's transaction (none: nothing is sent),
    its driver's error raised as SQLAlchemy's."""
    try:
        (dialect.do_commit if commit else dialect.do_rollback)(pooled)
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance("COMMIT" if commit else "ROLLBACK", None, exc,
                                  dialect.loaded_dbapi.Error, dialect=dialect) from exc


_ALONE = "haina.statements_alone"  # session.info: [writes that changed something]
#: what a kept unit's session may hold in ``info`` at its end (lean_transaction): nothing
#: else was done to it
_CLEAN_INFO = frozenset((_CONNECTION, _LEAN, _ALONE))


class WriteNotAlone(RuntimeError):
    """A second write in a unit of work whose statements commit alone
    (:func:`statements_alone`): a programming error, raised before the write runs."""


def statements_alone(session: Session) -> None:
    """Let each statement of this unit of work commit on its own: for a unit that reads and
    then writes at most once (one statement, atomic by itself), nothing after it that can
    fail. On PostgreSQL the connection runs in autocommit: no ``BEGIN`` and ``COMMIT`` round
    trips (under READ COMMITTED every statement reads its own snapshot anyway, so reads
    answer alike). On SQLite the unit stays one transaction (nothing to save in process).

    Call it before the unit's first statement. A write after one that changed something
    raises :class:`WriteNotAlone` before it runs: an ORM flush with changes, an INSERT,
    UPDATE or DELETE through ``Session.execute``, :func:`insert_rows` and
    :func:`deferred_inserts`, a :class:`Precompiled` one (with RETURNING only if it
    returned rows: a compare-and-set that matched nothing may be tried again). Not seen: a
    statement sent on ``Session.connection()`` itself."""
    if session.in_transaction():
        raise RuntimeError("statements_alone() comes before the unit of work's first statement")
    session.info[_ALONE] = [0]  # writes that changed something
    # a lean_transaction's connection (PostgreSQL's loop engine, made by make_async_engine)
    pooled = session.info.get(_LEAN)
    if pooled is None:
        bind = session.get_bind()
        if bind.dialect.name != "postgresql":
            return
        if cast(Engine, bind).pool not in _SWITCHING:  # an engine not made by make_engine
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            return
        pooled = session.connection().connection
    # the driver's own switch, turned back by the pool at checkin (_checked_in):
    # SQLAlchemy's isolation-level option sets and resets the level through its connection
    # characteristics, ~0.15 ms more a unit on the event loop's async driver
    _switch_autocommit(pooled.dbapi_connection, True)
    pooled.info[_AUTOCOMMIT] = True


def _may_write(writes: list[int]) -> None:
    if writes[0]:
        raise WriteNotAlone("a second write in a unit of work whose statements commit alone "
                            "(statements_alone): run it in a transaction")


def _wrote(session: Session) -> None:
    """A write of the unit of work: refused if it is not the first under statements_alone."""
    writes = session.info.get(_ALONE)
    if writes is not None:
        _may_write(writes)
        writes[0] = 1


def _check_flush(session: Session, _context: Any, _instances: Any) -> None:
    _send_held(session)
    _wrote(session)  # SQLAlchemy calls before_flush only when there is something to flush


def _check_execute(state: Any) -> None:
    _send_held(state.session)
    if state.is_insert or state.is_update or state.is_delete:
        _wrote(state.session)


class Precompiled:
    """A Core statement compiled once per dialect and run on the driver's cursor.

    For the few statements on the order path: they skip SQLAlchemy's per-execution work
    (statement cache lookup, execution context, result objects) yet are still written once,
    in SQLAlchemy Core, for both backends. Bind processors (UTC datetimes, JSON) apply as
    usual; rows come back as the driver gives them, so select plain columns (text, numbers),
    not types that need a result processor. Driver errors are raised as SQLAlchemy's
    (``IntegrityError`` …). Not echoed by ``HAINA_ECHO_SQL``.

    With ``typed=True`` the columns' result processors apply too (datetimes and JSON on
    SQLite, …) and :meth:`records` gives rows with the columns' names as attributes.
    """

    __slots__ = ("statement", "_by_dialect", "_returns_rows", "_typed", "_out", "_record",
                 "_orders", "_writes")

    def __init__(self, statement: Any, *, typed: bool = False) -> None:
        self.statement = statement
        self._by_dialect: dict[str, tuple[str, tuple[str, ...], tuple]] = {}
        self._out: dict[str, tuple[tuple[int, Callable[[Any], Any]], ...]] = {}
        # known up front: asking the cursor (``description``) builds column objects each time
        columns = _columns(statement)
        self._returns_rows = bool(columns)
        self._writes = bool(getattr(statement, "is_dml", False))
        self._typed = typed
        self._record: Any = None
        self._orders: dict[tuple[str, ...], tuple[int, ...]] = {}  # rows_in: keys -> order
        if typed:
            from collections import namedtuple
            self._record = namedtuple("Record", [c.key for c in columns],  # type: ignore[misc]
                                      rename=True)

    def _result_processors(self, dialect: Dialect) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
        found = self._out.get(dialect.name)
        if found is None:
            found = self._out[dialect.name] = tuple(
                (i, processor) for i, column in enumerate(_columns(self.statement))
                if (processor := column.type.dialect_impl(dialect).result_processor(
                    dialect, None)) is not None)
        return found

    def _compiled(self, dialect: Dialect) -> tuple[str, tuple[str, ...], tuple]:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            # positional parameters: the driver binds a list, no name lookups per call; with
            # psycopg, PostgreSQL's own $n (a raw cursor, which skips converting the query)
            positional = dialect if dialect.positional else cast(type[DefaultDialect], type(dialect))(
                paramstyle="numeric_dollar" if dialect.driver == "psycopg" else "format")
            compiled = self.statement.compile(dialect=positional)
            names = tuple(compiled.positiontup or ())
            processors = []
            for i, name in enumerate(names):
                bind_type = compiled.binds[name].type
                processor = bind_type.dialect_impl(dialect).bind_processor(dialect)
                if processor is not None:
                    processors.append((i, processor))
            found = self._by_dialect[dialect.name] = (compiled.string, names, tuple(processors))
        return found

    def rows(self, session: Session, params: dict[str, Any]) -> list[tuple]:
        """Execute with ``params`` (by bind name) in the session's transaction."""
        conn = _connection(session)
        sql, names, processors = self._compiled(conn.dialect)
        return self._guarded(session, conn, sql, [params[name] for name in names], processors)

    def rows_in(self, session: Session, keys: tuple[str, ...], values: list[Any],
                commit: bool = False) -> list[tuple]:
        """:meth:`rows` with the parameters given as ``values`` in the order of ``keys`` (bind
        names; a tuple the caller keeps): the statement's own order is worked out once per
        ``keys``, and no dictionary is built per call."""
        conn = _connection(session)
        sql, names, processors = self._compiled(conn.dialect)
        order = self._orders.get(keys)
        if order is None:
            where = {key: i for i, key in enumerate(keys)}
            order = self._orders[keys] = tuple(where[name] for name in names)
        return self._guarded(session, conn, sql, [values[i] for i in order], processors,
                             commit and _commits_with_statement(session))

    def _guarded(self, session: Session, conn: Any, sql: str, args: list[Any],
                 processors: tuple, commit: bool = False) -> list[tuple]:
        """:meth:`_run`, counted by :func:`statements_alone`'s guard when it writes (with
        RETURNING, only a write that returned rows changed something)."""
        _send_held(session)
        alone = session.info.get(_ALONE) if self._writes else None
        if alone is None:
            return self._run(conn, sql, args, processors, commit)
        _may_write(alone)
        found = self._run(conn, sql, args, processors)
        if found or not self._returns_rows:
            alone[0] = 1
        return found

    def _run(self, conn: Any, sql: str, args: list[Any], processors: tuple,
             commit: bool = False) -> list[tuple]:
        dialect = conn.dialect
        for i, processor in processors:
            args[i] = processor(args[i])
        dbapi_conn = conn.connection
        try:
            if dialect.is_async:  # a unit of work on the event loop (core.loop): awaited
                found = await_(_pgwire().execute(dbapi_conn.driver_connection, sql, args,
                                                 self._returns_rows, commit=commit))
            else:
                cursor = dbapi_conn.info.get("haina.cursor")
                if cursor is None:
                    cursor = dbapi_conn.info["haina.cursor"] = _cursor(dialect, dbapi_conn)
                cursor.execute(sql, args)
                found = cursor.fetchall() if self._returns_rows else []
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(sql, args, exc, dialect.loaded_dbapi.Error,
                                      dialect=dialect) from exc
        if self._typed and found:
            out = self._result_processors(dialect)
            if out:
                processed = []
                for row in found:
                    values = list(row)
                    for i, processor in out:
                        values[i] = processor(values[i])
                    processed.append(tuple(values))
                found = processed
        return found

    def records(self, session: Session, params: dict[str, Any]) -> list[Any]:
        """:meth:`rows` as named tuples (``typed=True`` statements only)."""
        assert self._record is not None, "records() needs Precompiled(..., typed=True)"
        make = self._record._make
        return [make(row) for row in self.rows(session, params)]


def _commits_with_statement(session: Session) -> bool:
    """Whether the unit of work's ``COMMIT`` may go with its last statement: a lean unit on
    the event loop (core.pgwire sends both in one round trip) whose work is all in that
    connection's transaction (no ORM work, nothing pending, not statements alone). Its end
    then finds the connection idle and sends nothing (``_end``)."""
    pooled = session.info.get(_LEAN)
    return (pooled is not None and pooled.dbapi_connection is not None
            and getattr(pooled.dbapi_connection, "driver_connection", None) is not None
            and session.info.get(_ALONE) is None
            and session.get_transaction() is None
            and not (session.new or session.dirty or session.deleted))


def _columns(statement: Any) -> list[Any]:
    """The columns a statement returns: a SELECT's, or an INSERT/UPDATE's RETURNING."""
    return (list(getattr(statement, "selected_columns", None) or ())
            or list(getattr(statement, "_returning", None) or ()))


def _cursor(dialect: Dialect, dbapi_conn: Any) -> Any:
    if dialect.driver == "psycopg":
        import psycopg
        return psycopg.RawCursor(dbapi_conn.driver_connection)
    return dbapi_conn.cursor()


_DEFERRED = "haina.deferred_inserts"


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE, DELETE or INSERT matched. ``Session.execute`` is typed as returning a
    ``Result``; for these statements it is a ``CursorResult``, which has ``rowcount``."""
    return cast(CursorResult[Any], result).rowcount


def insert_rows(session: Session, table: Table, rows: dict[str, Any] | list[dict[str, Any]]) -> None:
    """INSERT rows now, or — inside :func:`deferred_inserts` — when that block ends."""
    pending = session.info.get(_DEFERRED)
    if pending is not None:
        pending.append((table, rows if isinstance(rows, list) else [rows]))
        return
    _wrote(session)
    session.connection().execute(insert(table), rows)


class Deferred:
    """The inserts a :func:`deferred_inserts` block holds back (see :meth:`send_with`)."""

    __slots__ = ("session", "pending")

    def __init__(self, session: Session, pending: list[tuple[Table, list[dict[str, Any]]]]) -> None:
        self.session, self.pending = session, pending

    def send_with(self, last: Precompiled, params: dict[str, Any], *,
                  commit: bool = False) -> list[tuple]:
        """Send the inserts held so far now, and ``last`` (an INSERT with RETURNING, e.g. a
        key row ``ON CONFLICT DO NOTHING``) with them: on PostgreSQL as one statement (one
        round trip), ``last`` its final part; elsewhere one after the other. ``last``'s
        rows.

        ``commit``: the caller's unit of work ends with this statement whatever it returns
        (nothing of the unit follows; a statement that fails rolls it back): where it can
        (a lean unit on the event loop, all its work in the connection's transaction), the
        ``COMMIT`` goes in the same round trip."""
        pending = [(t, rows) for t, rows in self.pending if rows]
        self.pending.clear()
        if not pending or not is_postgres(self.session):
            _send(self.session, pending)  # (nothing held: nothing sent)
            return last.rows_in(self.session, tuple(params), list(params.values()),
                                commit=commit and not pending)
        shape = (id(last), *((t.name, len(rows), tuple(rows[0])) for t, rows in pending))
        found = _COMBINED.get(shape)
        if found is None:
            combined, keys = _combined_insert(pending, last.statement)
            found = _COMBINED[shape] = (combined, (*keys, *params))
        combined, keys = found
        values = _pending_values(pending, shape[1:])
        values.extend(params[name] for name in keys[len(values):])
        return combined.rows_in(self.session, keys, values, commit=commit)


@contextmanager
def deferred_inserts(session: Session, *, until_used: bool = False) -> Iterator[Deferred]:
    """Send the block's inserts together when it ends without error: on PostgreSQL as one
    statement (data-modifying CTEs, one round trip), elsewhere one statement per table.

    For a hot path whose new rows are not read back inside the block (placing an order).
    With ``until_used``, the inserts held are sent before any other statement of the session
    runs (a ``Precompiled`` one, ``Session.execute``, a flush), so that the block may span
    work that reads or references them; :meth:`Deferred.send_with` sends them with a last
    statement of the caller's. A block inside another joins it."""
    outer = session.info.get(_DEFERRED)
    if outer is not None:  # already deferring: join the outer block
        yield Deferred(session, outer)
        return
    pending: list[tuple[Table, list[dict[str, Any]]]] = []
    session.info[_DEFERRED] = pending
    if until_used:
        session.info[_UNTIL_USED] = pending
    try:
        yield Deferred(session, pending)
    finally:
        del session.info[_DEFERRED]
        session.info.pop(_UNTIL_USED, None)
    _send(session, pending)


_UNTIL_USED = "haina.deferred_until_used"  # session.info: inserts to send before a statement


def _send_held(session: Session) -> None:
    """Send the inserts a ``deferred_inserts(until_used=True)`` block holds, before another
    statement of the session runs."""
    held = session.info.get(_UNTIL_USED)
    if held:
        pending = list(held)
        held.clear()
        _send(session, pending)


def _send(session: Session, pending: list[tuple[Table, list[dict[str, Any]]]]) -> None:
    pending = [(t, rows) for t, rows in pending if rows]
    if not pending:
        return
    conn = session.connection()
    if conn.dialect.name != "postgresql" or len(pending) == 1:
        _wrote(session)  # one write, as PostgreSQL's one statement below
        for table, rows in pending:
            conn.execute(insert(table), rows)
        return
    shape = tuple((t.name, len(rows), tuple(rows[0])) for t, rows in pending)
    found = _COMBINED.get(shape)
    if found is None:
        found = _COMBINED[shape] = _combined_insert(pending)
    combined, keys = found
    # the values in the order of ``keys``: each row's columns as the table's first row has them
    combined.rows_in(session, keys, _pending_values(pending, shape))


def _pending_values(pending: list[tuple[Table, list[dict[str, Any]]]], shape: tuple) -> list[Any]:
    return [row[col] for (_, rows), (_, _, cols) in zip(pending, shape, strict=True)
            for row in rows for col in cols]


# one prepared statement per shape (tables, row counts, columns) with its bind names in the
# order the values are listed: built once, then only bound
_COMBINED: dict[tuple, tuple[Precompiled, tuple[str, ...]]] = {}


def _combined_insert(pending: list[tuple[Table, list[dict[str, Any]]]], last: Any = None
                     ) -> tuple[Precompiled, tuple[str, ...]]:
    """One statement inserting ``pending`` (each table's rows a data-modifying CTE), its
    last part ``last`` if given, else the last table's insert; and the bind names of the
    pending rows' values, in order."""
    statements = []
    keys: list[str] = []
    for i, (table, rows) in enumerate(pending):
        values = [{col: bindparam(f"p{i}_{r}_{col}", type_=table.c[col].type) for col in row}
                  for r, row in enumerate(rows)]
        keys.extend(f"p{i}_{r}_{col}" for r, row in enumerate(rows) for col in row)
        statements.append(insert(table).values(values if len(values) > 1 else values[0]))
    if last is not None:
        statements.append(last)
    combined = statements[-1]
    for i, statement in enumerate(statements[:-1]):
        combined = combined.add_cte(statement.cte(f"ins_{i}"))
    return Precompiled(combined), tuple(keys)


def add_unique(session: Session, row: Any, taken: Callable[[], Exception]) -> None:
    """Insert ``row`` in a savepoint; if a unique constraint refuses it (a concurrent request
    took the name, the slug, the slot …), undo that insert only and raise ``taken()``."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise taken() from None


def tenant_row(session: Session, tenant_id: str, model: Any, ident: str, kind: str, *,
               lock: bool = False) -> Any:
    """The tenant's row of ``model`` whose ``id`` is ``ident`` (locked ``FOR UPDATE`` if
    asked), or a 404 problem ``{kind}-not-found``: another merchant's row is not found either."""
    from sqlalchemy import select

    from haina.core.errors import not_found
    stmt = select(model).where(model.tenant_id == tenant_id, model.id == ident)
    row = session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None:
        raise not_found(kind, ident)
    return row


def is_postgres(session_or_engine: Session | Engine) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "postgresql"
