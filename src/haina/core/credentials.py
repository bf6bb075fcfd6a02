"""Verified credentials are kept in memory for a few seconds (``token_cache_seconds``): staff
and app tokens (``platform``), publishable keys and buyers' sessions (``storefront``). This
module ends them everywhere when one is revoked.

* A module registers its cache's ``clear`` with :func:`register`.
* A service that revokes a credential (or changes what a cached one stands for) calls
  :func:`changed` in its transaction: this process forgets its cached credentials at once and
  again when the transaction commits (a request of this process may have cached the old row
  in between), and on PostgreSQL the transaction sends ``NOTIFY haina_credentials``, which
  PostgreSQL delivers at commit, never for a rolled-back one.
* Each API process on PostgreSQL runs a :class:`Listener` (started by the app's lifespan): a
  thread with one connection of its own that LISTENs on the channel and forgets the cached
  credentials on each notice, so a revoked token stops working in every process when the
  revocation commits, not up to ``token_cache_seconds`` later. When its connection drops it
  forgets everything (notices may have been missed), then listens again.

On SQLite (one machine, the embedded default) there is no notice: other processes notice a
revocation within ``token_cache_seconds``, as before.

The same listener hears ``haina_caches`` (:mod:`haina.core.caches`) for the engine it is given:
the per-process caches of catalogue and promotions are kept only while it listens.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from haina.core import caches

log = logging.getLogger("haina")
CHANNEL = "haina_credentials"
_forgetters: list[Callable[[], None]] = []
_PENDING = "haina_credentials_changed"


def register(forget: Callable[[], None]) -> None:
    """Have ``forget`` (a cache's clear) called whenever credentials change, in any process."""
    if forget not in _forgetters:
        _forgetters.append(forget)


def forget_all() -> None:
    """Forget every cached credential of this process."""
    for forget in _forgetters:
        forget()


def changed(session: Session) -> None:
    """Credentials changed in ``session``'s transaction: forget them here now and at commit,
    and (PostgreSQL) tell the other processes when it commits."""
    forget_all()
    if session.info.get(_PENDING):
        return  # one notice per transaction is enough
    session.info[_PENDING] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))

    def after(s: Session) -> None:
        s.info.pop(_PENDING, None)
        forget_all()

    def after_rollback(s: Session, _previous: object) -> None:
        s.info.pop(_PENDING, None)

    event.listen(session, "after_commit", after, once=True)
    event.listen(session, "after_soft_rollback", after_rollback, once=True)


class Listener:
    """A daemon thread that LISTENs on :data:`CHANNEL` and forgets cached credentials on
    each notice (PostgreSQL only; ``dsn`` is a libpq connection string). Given the
    ``engine`` of that database, it also LISTENs on :data:`haina.core.caches.CHANNEL` and
    keeps that engine's caches (:mod:`haina.core.caches`) while it listens."""

    def __init__(self, dsn: str, retry_seconds: float = 1.0, engine: Engine | None = None) -> None:
        self.dsn = dsn
        self.engine = engine
        self.retry_seconds = retry_seconds
        self.listening = threading.Event()  # set while a connection listens
        self.notices = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="haina-credentials",
                                        daemon=True)

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 0.0) -> None:
        """Stop listening: the thread ends within half a second (its wait for a notice);
        ``timeout`` > 0 waits for it that long."""
        self._stop.set()
        if timeout > 0:
            self._thread.join(timeout)

    def _run(self) -> None:
        import psycopg

        keeping = False  # this listener counts as one of the engine's caches' listeners
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True,
                                     application_name="haina credentials") as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if self.engine is not None:
                        conn.execute(f"LISTEN {caches.CHANNEL}")
                        caches.listening(self.engine, True)
                        keeping = True
                    forget_all()  # whatever was missed while not listening
                    self.listening.set()
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=0.5):
                            self.notices += 1
                            if notice.channel == CHANNEL:
                                forget_all()
                            elif self.engine is not None:
                                caches.notice(self.engine, notice.payload)
            except Exception as exc:  # noqa: BLE001 — a dropped connection: listen again
                if self._stop.is_set():
                    break
                log.warning("credential notices: %s; listening again in %g s", exc,
                            self.retry_seconds)
            finally:
                self.listening.clear()
                if keeping and self.engine is not None:
                    caches.listening(self.engine, False)
                    keeping = False
                forget_all()
            self._stop.wait(self.retry_seconds)
