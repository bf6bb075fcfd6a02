"""Per-process caches of what a merchant rarely changes and every order (or search) reads: the
catalogue's variants by SKU and search's product briefs (``catalog``), the live promotions by
what they target (``promotions``), search's fitment rules and installers (``o2o_setup``).

A cache is kept only while this process hears about changes, so that what it serves is never
older than the last commit by more than the time a notice takes to arrive (a few
milliseconds): on PostgreSQL, while the process's :class:`~haina.core.credentials.Listener`
listens (``LISTEN haina_caches``). On SQLite, or when the listener's connection is down, every
read goes to the database, as before.

* A module keeps its entries with :func:`lookup` / :func:`store` under a cache name and a
  tenant, per database (the session's engine): copies of one database (tests) or two databases
  in one process never share entries.
* A write that changes what a cache holds calls :func:`changed` in its transaction (the
  modules' ORM writes are caught by :func:`watch`, which calls it from the session's flush):
  this process forgets the tenant's entries at once and again at commit (a request of this
  process may have read the old rows in between), and on PostgreSQL the transaction sends
  ``NOTIFY haina_caches, '<name>:<tenant>'``, which PostgreSQL delivers to every process at
  commit, never for a rolled-back transaction.
* An entry read from the database is stored only if no notice for its tenant arrived since
  the read began (:func:`generation`): a notice that overtakes a slow read does not leave the
  old rows behind.

Writes that bypass Haina's services (SQL typed into psql) reach no cache: send
``NOTIFY haina_caches, '<name>:<tenant>'`` (or ``'*'``) after them, or restart the API.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

CHANNEL = "haina_caches"
# entries per tenant and cache before the tenant's entries are dropped and read again
MAX_ENTRIES = 50_000
_PENDING = "haina.caches.changed"  # session.info: (cache, tenant) changed in this transaction
_HOOKED = "haina.caches.hooked"  # session.info: the session's commit hooks are in place


class Space:
    """One database's caches in this process."""

    def __init__(self) -> None:
        self.listeners = 0  # listeners of this database that are listening now
        self.lock = threading.Lock()
        self.entries: dict[tuple[str, str], dict[Any, Any]] = {}
        self.generations: dict[tuple[str, str], int] = {}
        self.epoch = 0  # moves when everything is forgotten

    def generation(self, key: tuple[str, str]) -> tuple[int, int]:
        return self.epoch, self.generations.get(key, 0)

    def forget(self, name: str | None = None, tenant_id: str | None = None) -> None:
        with self.lock:
            if name is None:
                self.entries.clear()
                self.epoch += 1
                return
            keys = [(name, tenant_id)] if tenant_id is not None else \
                [k for k in self.entries if k[0] == name]
            for key in keys:
                self.entries.pop(key, None)
                self.generations[key] = self.generations.get(key, 0) + 1


_spaces: weakref.WeakKeyDictionary[Engine, Space] = weakref.WeakKeyDictionary()
_spaces_lock = threading.Lock()


def space(engine: Engine) -> Space:
    with _spaces_lock:
        found = _spaces.get(engine)
        if found is None:
            found = _spaces[engine] = Space()
        return found


def share_space(other: Engine, engine: Engine) -> None:
    """Sessions on ``other`` (another engine over ``engine``'s database: core.loop's) keep
    and forget their entries with ``engine``'s: one cache per database and process."""
    with _spaces_lock:
        found = _spaces.get(engine)
        if found is None:
            found = _spaces[engine] = Space()
        _spaces[other] = found


def _engine(session: Session) -> Engine:
    """The session's engine (its bind, or the engine of the connection it is bound to: a
    unit of work on the event loop, core.db.lean_transaction)."""
    return session.get_bind().engine


def _live_space(session: Session) -> Space | None:
    found = _spaces.get(_engine(session))
    return found if found is not None and found.listeners > 0 else None


def generation(session: Session, name: str, tenant_id: str) -> tuple[int, int] | None:
    """Where the tenant's entries stand now (take it before reading the database), or None
    when this process keeps no cache for the session's database."""
    found = _live_space(session)
    return None if found is None else found.generation((name, tenant_id))


def lookup(session: Session, name: str, tenant_id: str) -> dict[Any, Any] | None:
    """The tenant's kept entries of cache ``name`` (read-only: never mutate them), or None
    when there is no cache for the session's database."""
    found = _live_space(session)
    if found is None:
        return None
    return found.entries.get((name, tenant_id), _EMPTY)


_EMPTY: dict[Any, Any] = {}


def store(session: Session, name: str, tenant_id: str, since: tuple[int, int] | None,
          items: Iterable[tuple[Any, Any]]) -> None:
    """Keep ``items`` (key, value; values treated as immutable) for the tenant, unless a
    change was heard since :func:`generation` gave ``since``."""
    if since is None:
        return
    found = _live_space(session)
    if found is None:
        return
    key = (name, tenant_id)
    with found.lock:
        if found.generation(key) != since:
            return
        entries = found.entries.get(key)
        if entries is None or len(entries) >= MAX_ENTRIES:
            entries = found.entries[key] = {}
        entries.update(items)


def notice(engine: Engine, payload: str) -> None:
    """A ``haina_caches`` notice for ``engine``'s database: ``<name>:<tenant>``, ``<name>``
    or ``*``."""
    found = _spaces.get(engine)
    if found is None:
        return
    name, _, tenant_id = payload.partition(":")
    if name in ("", "*"):
        found.forget()
    else:
        found.forget(name, tenant_id or None)


def listening(engine: Engine, on: bool) -> None:
    """A listener of ``engine``'s database started (``on``) or stopped listening; what was
    kept is forgotten either way (notices may have been missed)."""
    found = space(engine)
    with found.lock:
        found.listeners += 1 if on else -1
    found.forget()


def changed(session: Session, name: str, tenant_id: str) -> None:
    """What cache ``name`` keeps for the tenant changed in ``session``'s transaction: forget
    it here now and at commit, and (PostgreSQL) tell every process when it commits.

    The notice is sent at once (a change flushed by the commit itself is seen after the
    commit's first hook) and again just before the outermost commit (a savepoint rolled back
    since may have taken the first with it)."""
    bind = _engine(session)
    found = _spaces.get(bind)
    if found is not None:
        found.forget(name, tenant_id)
    pending: set[tuple[str, str]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = set()
    if not session.info.get(_HOOKED):  # once per session: they serve all its transactions
        session.info[_HOOKED] = True
        event.listen(session, "before_commit", _send_notices)
        event.listen(session, "after_commit", _forget_at_commit)
        event.listen(session, "after_soft_rollback", _drop_pending)
    if (name, tenant_id) in pending:
        return
    pending.add((name, tenant_id))
    if bind.dialect.name == "postgresql":  # now: a change flushed by the commit itself
        _notify(session, name, tenant_id)  # comes after the commit's before_commit hook


def _notify(s: Session, name: str, tenant_id: str) -> None:
    s.connection().execute(text("SELECT pg_notify(:c, :p)"),
                           {"c": CHANNEL, "p": f"{name}:{tenant_id}"})


def _send_notices(s: Session) -> None:
    """Before the outermost commit, the transaction's notices again: one sent inside a
    savepoint that was rolled back went with it (PostgreSQL delivers a repeated notice of a
    transaction once)."""
    if s.get_nested_transaction() is not None:
        return  # a savepoint's commit: the transaction goes on
    pending = s.info.get(_PENDING)
    if pending and s.get_bind().dialect.name == "postgresql":
        for n, t in sorted(pending):
            _notify(s, n, t)


def _forget_at_commit(s: Session) -> None:
    done = s.info.pop(_PENDING, None)
    here = _spaces.get(_engine(s)) if done else None
    if here is not None:
        for n, t in done:
            here.forget(n, t)


def _drop_pending(s: Session, previous: Any) -> None:
    if not previous.nested:  # the whole transaction: nothing changed after all
        s.info.pop(_PENDING, None)


def watch(name: str, models: Iterable[type], tenant_of: Callable[[Any], str | None] | None = None,
          *, columns: Iterable[str] | None = None, new: bool = True) -> None:
    """Call :func:`changed` for cache ``name`` whenever a session flushes a new, changed or
    deleted row of ``models`` (by the row's ``tenant_id``, or ``tenant_of(row)``).

    With ``columns``, a changed row counts only if one of these attributes changed (a cache of
    a few columns of a busy table); with ``new=False`` new rows do not count (a cache that
    holds only rows read before, never the absence of one)."""
    watched = tuple(models)
    tenant = tenant_of or (lambda row: getattr(row, "tenant_id", None))
    keys = tuple(columns) if columns is not None else None

    def changed_here(row: Any) -> bool:
        if keys is None:
            return True
        attrs = inspect(row).attrs
        return any(attrs[k].history.has_changes() for k in keys)

    def after_flush(session: Session, _context: Any) -> None:
        rows = [r for r in session.new if new and isinstance(r, watched)]
        rows += [r for r in session.dirty if isinstance(r, watched) and changed_here(r)]
        rows += [r for r in session.deleted if isinstance(r, watched)]
        tenants = {t for row in rows if (t := tenant(row)) is not None}
        for t in sorted(tenants):
            changed(session, name, t)

    event.listen(Session, "after_flush", after_flush)
