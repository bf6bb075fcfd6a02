"""Statements of a unit of work on the event loop, sent on libpq's connection directly.

psycopg's async cursor takes the connection's lock for each statement, drives a generator
through ``wait_async`` (a reader, a future and a timer per wait), and sends a transaction's
``BEGIN`` as a round trip of its own before the first statement. A unit of work on the event
loop (core.loop) owns its connection while it runs, so none of the lock is needed, and the
``BEGIN`` can travel with the statement. :class:`~haina.core.db.Precompiled` statements on
the loop's async driver are sent here:

* adapted as psycopg adapts them (its ``Transformer`` over the connection: the same dumpers
  and loaders, the JSON ones included), rows given as tuples as a raw cursor gives them;
* prepared on each connection at their first run (a name per statement text and parameter
  types), so that PostgreSQL plans them once;
* a transaction's first statement sent with its ``BEGIN`` (and, the first time, its
  ``PREPARE``) in one round trip, in libpq's pipeline mode;
* errors raised as psycopg raises them (``psycopg.errors``: SQLAlchemy wraps them as for any
  driver call). A wait interrupted (the task cancelled) closes the connection: a statement
  may still be running on it, and the pool then replaces it.

:func:`command` sends ``COMMIT`` and ``ROLLBACK`` the same way (core.db's dialect hooks).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import psycopg
from psycopg import errors, pq
from psycopg.adapt import PyFormat, Transformer

_IDLE = pq.TransactionStatus.IDLE
_FAILED = pq.ExecStatus.FATAL_ERROR
_SYNC = pq.ExecStatus.PIPELINE_SYNC
_AUTO = PyFormat.AUTO


class _Wire:
    """What a connection keeps between statements: its transformer, its prepared names, and
    (a :class:`LoopConnection`'s) the event loop's reader on its socket, kept between waits."""

    __slots__ = ("tx", "prepared", "named", "keeps", "pg", "loop", "fd", "waiter")

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self.tx = Transformer(conn)
        self.prepared: dict[tuple[str, tuple[int, ...]], bytes] = {}
        self.named = 0  # names given (never given twice: one forgotten may still exist)
        self.keeps = isinstance(conn, LoopConnection)  # its reader may stay between waits
        self.pg = conn.pgconn
        self.loop: asyncio.AbstractEventLoop | None = None  # where its reader is (None: not)
        self.fd = -1
        self.waiter: asyncio.Future[None] | None = None  # the wait the reader wakes

    def readable(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(None)
            return
        # nobody waits: the readiness of data read since (the loop saw it before the wait
        # ended), or something the server sent unasked (a notice, its goodbye): read it into
        # libpq's buffer, so that the socket is quiet again and the loop does not spin on it
        try:
            self.pg.consume_input()
        except Exception:  # noqa: BLE001 — the connection is gone: stop watching it
            self.release()

    def release(self) -> None:
        """Stop watching the socket (before psycopg waits on it itself, or it closes)."""
        loop, self.loop = self.loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self.fd)


_WIRES: weakref.WeakKeyDictionary[Any, _Wire] = weakref.WeakKeyDictionary()


def _wire(conn: psycopg.AsyncConnection) -> _Wire:
    wire = _WIRES.get(conn)
    if wire is None:
        wire = _WIRES[conn] = _Wire(conn)
    return wire


def release_reader(conn: Any) -> None:
    """Stop watching ``conn``'s socket, if this module watches it."""
    wire = _WIRES.get(conn)
    if wire is not None:
        wire.release()


class LoopConnection(psycopg.AsyncConnection):
    """psycopg's async connection, for the event loop's units: the statements this module
    sends wait for their results on a reader of the socket that stays registered between
    waits (adding and removing one cost each wait ~8 µs on uvloop, which also looks the
    socket up among its transports and catches the ``KeyError``). psycopg's own waits (the
    ORM's statements, a rollback through the driver) add and remove a reader of their own,
    which would replace this one and leave it gone: so it is released before each of them,
    and before the connection closes (a reader left on a closed socket would watch the next
    one given its number). The reader holds the connection: one never closed stays alive
    until the server ends it, and is released then."""

    async def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
        release_reader(self)
        return await super().wait(gen, *args, **kwargs)

    async def close(self) -> None:
        release_reader(self)
        await super().close()


async def execute(conn: psycopg.AsyncConnection, sql: str, args: list[Any],
                  returns_rows: bool, retried: bool = False, commit: bool = False
                  ) -> list[tuple]:
    """Run ``sql`` (PostgreSQL's ``$n`` placeholders) with ``args``; its rows as tuples
    (``[]`` for a statement without rows or when ``returns_rows`` is false). ``commit``: the
    transaction's last statement, its ``COMMIT`` sent in the same round trip (skipped by
    PostgreSQL when the statement fails: the transaction is then to be rolled back)."""
    wire = _wire(conn)
    tx = wire.tx
    params = tx.dump_sequence(args, [_AUTO] * len(args))
    key = (sql, tuple(tx.types or ()))
    name = wire.prepared.get(key)
    pg = conn.pgconn
    begin = None if conn.autocommit or pg.transaction_status != _IDLE \
        else conn._get_tx_start_command()  # psycopg's own (isolation level and all)
    try:
        if begin is None and name is not None and not commit:
            pg.send_query_prepared(name, params, param_formats=tx.formats)
            result = await _results(pg, wire)
        else:
            result = await _first(pg, wire, key, begin, params, commit)
    except errors.Error:
        raise
    except BaseException:
        wire.release()
        pg.finish()  # mid-statement: not to be used again (the pool replaces it)
        raise
    if result is None or result.status == _FAILED:
        error = _error(conn, result)
        if isinstance(error, errors.InvalidSqlStatementName):
            # gone from the server (a DEALLOCATE this module did not send): all are forgotten;
            # a statement alone (no transaction to have aborted) is sent again, prepared anew
            wire.prepared.clear()
            if conn.autocommit and not retried:
                return await execute(conn, sql, args, returns_rows, retried=True,
                                     commit=commit)
        raise error
    if not returns_rows or not result.ntuples:
        return []
    tx.set_pgresult(result)
    return tx.load_rows(0, result.ntuples, tuple)


def set_autocommit(conn: psycopg.AsyncConnection, on: bool) -> bool:
    """Switch the connection's autocommit as psycopg's setter does (the same attribute, the
    same rule: only between transactions), without its lock and awaits: for a unit of work
    that owns its connection (two awaits, each a trip through the event loop's greenlet).
    False, nothing changed, when it cannot here (in a transaction or a pipeline, another
    psycopg): the caller uses the setter."""
    if not isinstance(conn, psycopg.AsyncConnection) or getattr(conn, "_pipeline", True) \
            or not hasattr(conn, "_autocommit") or conn.pgconn.transaction_status != _IDLE:
        return False
    conn._autocommit = on
    return True


async def command(conn: psycopg.AsyncConnection, sql: bytes) -> None:
    """A statement without parameters or rows (``COMMIT``, ``ROLLBACK``)."""
    pg = conn.pgconn
    wire = _wire(conn)
    try:
        pg.send_query(sql)
        result = await _results(pg, wire)
    except errors.Error:
        raise
    except BaseException:
        wire.release()
        pg.finish()
        raise
    if result is None or result.status == _FAILED:
        raise _error(conn, result)


async def _first(pg: pq.abc.PGconn, wire: _Wire, key: tuple[str, tuple[int, ...]],
                 begin: bytes | None, params: Any, commit: bool = False
                 ) -> pq.abc.PGresult | None:
    """``BEGIN`` (if given), ``PREPARE`` (if not prepared yet), the statement and ``COMMIT``
    (if ``commit``), in one round trip; the statement's result (or the first error)."""
    name = wire.prepared.get(key)
    prepare = name is None
    if name is None:
        name = b"_haina_%d" % wire.named
        wire.named += 1
    pg.enter_pipeline_mode()
    if begin is not None:
        pg.send_query_params(begin, None)
    if prepare:
        pg.send_prepare(name, key[0].encode(), param_types=key[1])  # (encoded once: here)
    pg.send_query_prepared(name, params, param_formats=wire.tx.formats)
    if commit:
        pg.send_query_params(b"COMMIT", None)
    pg.pipeline_sync()
    results = await _pipeline_results(pg, wire)
    pg.exit_pipeline_mode()
    at = 0 if begin is None else 1  # the PREPARE's result
    if prepare and len(results) > at and results[at].status == pq.ExecStatus.COMMAND_OK:
        wire.prepared[key] = name
    failed = next((r for r in results if r.status == _FAILED), None)
    return failed if failed is not None else results[-2 if commit else -1]


async def _flushed(pg: pq.abc.PGconn) -> None:
    while pg.flush():  # non-blocking: 1 while some of the message is not sent yet
        await _ready(pg, writing=True)


async def _next(pg: pq.abc.PGconn, wire: _Wire) -> pq.abc.PGresult | None:
    """The connection's next result, waited for (None: the end of a command's results)."""
    while pg.is_busy():
        if wire.keeps:
            await _readable(pg, wire)
        else:
            await _ready(pg)
        pg.consume_input()
    return pg.get_result()


async def _results(pg: pq.abc.PGconn, wire: _Wire) -> pq.abc.PGresult | None:
    """The results of the statement sent (outside pipeline mode): the first error, else the
    last result."""
    await _flushed(pg)
    found = None
    while (result := await _next(pg, wire)) is not None:
        if found is None or found.status != _FAILED:
            found = result
    return found


async def _pipeline_results(pg: pq.abc.PGconn, wire: _Wire) -> list[pq.abc.PGresult]:
    """Each command's result up to the pipeline's sync (not included)."""
    await _flushed(pg)
    results: list[pq.abc.PGresult] = []
    while True:
        result = await _next(pg, wire)
        if result is None:
            continue  # the end of one command's results
        if result.status == _SYNC:
            return results
        results.append(result)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _ready(pg: pq.abc.PGconn, writing: bool = False) -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    fd = pg.socket
    (loop.add_writer if writing else loop.add_reader)(fd, _wake, future)
    try:
        await future
    finally:
        (loop.remove_writer if writing else loop.remove_reader)(fd)


async def _readable(pg: pq.abc.PGconn, wire: _Wire) -> None:
    """Wait until the socket has something to read, on the wire's kept reader."""
    loop = asyncio.get_running_loop()
    if wire.loop is not loop:
        if wire.loop is not None:  # watched by another loop: not to be touched from this one
            await _ready(pg)
            return
        wire.fd = pg.socket
        loop.add_reader(wire.fd, wire.readable)
        wire.loop = loop
    waiter = wire.waiter = loop.create_future()  # (woken no sooner than this awaits it)
    try:
        await waiter
    finally:
        wire.waiter = None


def _error(conn: psycopg.AsyncConnection, result: pq.abc.PGresult | None) -> errors.Error:
    if result is None:
        return errors.OperationalError("the connection gave no result")
    return errors.error_from_result(result, encoding=conn.info.encoding)
