"""Units of work run on the event loop (PostgreSQL): the same sync code, its I/O awaited.

A sync endpoint runs in a pool thread (``core.http``): the request hops from the event loop
to the thread and back, and on 2 cores the pool's threads and the loop contend for the GIL.
For short units of work that only wait on the database (a buyer's cart, a checkout), that
hop and contention weigh more than the work. An endpoint marked :func:`~haina.core.http.
loop_unit` runs instead in a greenlet on the event loop (SQLAlchemy's own asyncio bridge,
``greenlet_spawn``), on a second engine over the same database driven by psycopg's async
connection: every statement is awaited, so the loop serves other requests while one waits,
and the code is the sync code, unchanged (its ``Session`` is an ordinary one).

What code run this way must not do: wait on something that another request of the same
loop has to finish — a ``threading.Event`` or a lock held across a statement — because the
waiter blocks the one thread that would finish it. :func:`wait` and :func:`pause` are the
waits that yield instead; the in-process caches hold their locks for dictionary work only.
Nor should it run long CPU work or blocking network calls (those stay in the pool: the
mark is per route). SQLite has no async driver here: its units stay in the pool.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.util import await_
from sqlalchemy.util.concurrency import greenlet_spawn, in_greenlet

T = TypeVar("T")

#: how often :func:`wait` looks again at an event set by another thread (seconds)
POLL_SECONDS = 0.0005


def make_loop_engine(engine: Engine) -> Any | None:
    """An ``AsyncEngine`` over ``engine``'s database, configured alike (the same JSON
    handling and connect options), sharing its in-process caches (core.caches); None when
    the database has no async driver here (SQLite)."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return None
    from haina.core import caches
    from haina.core.db import make_async_engine
    loop_engine = make_async_engine(engine)
    caches.share_space(loop_engine.sync_engine, engine)
    return loop_engine


def run(fn: Callable[..., T], *args: Any) -> Any:
    """An awaitable: ``fn(*args)`` in a greenlet of this loop, its statements awaited."""
    return greenlet_spawn(fn, *args)


def in_loop_unit() -> bool:
    """Whether the code calling this runs in a unit of work on the event loop."""
    return in_greenlet()


def pause(seconds: float) -> None:
    """Sleep: on the event loop by awaiting (other requests go on), elsewhere ``time.sleep``."""
    if in_greenlet():
        await_(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)


def wait(event_: threading.Event, timeout: float) -> bool:
    """``event_.wait(timeout)``; on the event loop by looking every :data:`POLL_SECONDS`,
    awaiting in between, so that the request (or thread) that sets it can go on."""
    if not in_greenlet():
        return event_.wait(timeout)
    end = time.monotonic() + timeout
    while not event_.is_set():
        if time.monotonic() >= end:
            return False
        await_(asyncio.sleep(POLL_SECONDS))
    return True
