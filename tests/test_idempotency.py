"""``core.idempotency.run_idempotent`` on both databases: the key recorded last with the
answer when the unit of work is fresh (the usual creating POST), claimed first in a savepoint
when the request did work before; failures recorded and replayed, work undone; two requests
with one key at once on PostgreSQL: one does the work, the other replays it."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select, update

from haina.core.db import transaction
from haina.core.errors import IdempotencyMismatch, InvalidState
from haina.core.events import Event, record_event
from haina.core.idempotency import IdempotencyKey, run_idempotent


def _events(sessions, tenant, subject: str) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(Event).where(
            Event.tenant_id == tenant.id, Event.subject_id == subject))


READ_FIRST = [True]  # the way every test here runs (the fixture below runs both)


@pytest.fixture(autouse=True, params=[True, False], ids=["read-first", "record-only"])
def read_first(request):
    """Each test with the key read first (a replay does no work) and with the key only
    recorded (``read_first=False``: a replay's work is done and rolled back)."""
    READ_FIRST[0] = request.param
    yield request.param
    READ_FIRST[0] = True


def _run(sessions, tenant, key, subject: str, payload: str = "{}", fail: bool = False,
         before: bool = False):
    """One request's unit of work: an event written as the work (and, with ``before``, one
    written before the guarded part, which must stay whatever the guarded part does)."""
    def produce():
        record_event(sessions_session[0], tenant.id, "test.made", subject, {})
        if fail:
            raise InvalidState("no", slug="test-refused")
        return 201, {"subject": subject}

    sessions_session: list = []
    with transaction(sessions) as s:
        sessions_session.append(s)
        if before:
            record_event(s, tenant.id, "test.before", subject + "-before", {})
        return run_idempotent(s, tenant, key, "POST /test", payload, produce,
                              instance="/test", read_first=READ_FIRST[0])


def test_a_fresh_unit_of_work_records_the_key_with_its_answer_and_replays_it(sessions, tenant):
    first = _run(sessions, tenant, "k1", "a")
    assert (first.status, first.body, first.replayed) == (201, {"subject": "a"}, False)
    again = _run(sessions, tenant, "k1", "a")
    assert (again.status, again.body, again.replayed) == (201, {"subject": "a"}, True)
    assert _events(sessions, tenant, "a") == 1  # the work ran once
    with pytest.raises(IdempotencyMismatch):
        _run(sessions, tenant, "k1", "a", payload='{"other": 1}')
    with sessions() as s:
        row = s.get(IdempotencyKey, (tenant.id, "k1"))
        assert (row.status_code, row.body) == (201, {"subject": "a"})


def test_a_failure_is_undone_recorded_and_replayed(sessions, tenant):
    failed = _run(sessions, tenant, "k2", "b", fail=True)
    assert failed.status == 409 and failed.problem and failed.body["type"].endswith("test-refused")
    assert _events(sessions, tenant, "b") == 0  # the work was rolled back
    replay = _run(sessions, tenant, "k2", "b")  # the same key: the failure, not new work
    assert replay.replayed and replay.status == 409 and replay.body == failed.body
    assert _events(sessions, tenant, "b") == 0


def test_work_done_before_the_guarded_part_stays_when_it_fails(sessions, tenant):
    failed = _run(sessions, tenant, "k3", "c", fail=True, before=True)
    assert failed.status == 409
    assert _events(sessions, tenant, "c") == 0  # the guarded work undone (savepoint) …
    assert _events(sessions, tenant, "c-before") == 1  # … what came before kept
    ok = _run(sessions, tenant, "k4", "d", before=True)
    assert ok.status == 201 and _run(sessions, tenant, "k4", "d", before=True).replayed


def test_an_expired_key_is_used_again(sessions, tenant):
    _run(sessions, tenant, "k5", "e")
    with transaction(sessions) as s:
        s.execute(update(IdempotencyKey).where(IdempotencyKey.key == "k5").values(
            created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3)))
    again = _run(sessions, tenant, "k5", "e")
    assert not again.replayed and _events(sessions, tenant, "e") == 2


def test_an_expired_key_whose_new_request_fails_records_the_failure(sessions, tenant):
    _run(sessions, tenant, "k6", "g")
    with transaction(sessions) as s:
        s.execute(update(IdempotencyKey).where(IdempotencyKey.key == "k6").values(
            created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3)))
    failed = _run(sessions, tenant, "k6", "g", fail=True)  # the stale row's delete undone
    assert failed.status == 409 and failed.problem and not failed.replayed
    replay = _run(sessions, tenant, "k6", "g")
    assert replay.replayed and replay.status == 409
    assert _events(sessions, tenant, "g") == 1


@pytest.mark.parametrize("db_url", [pytest.param("pg", marks=pytest.mark.pg)], indirect=True)
def test_two_requests_with_one_key_at_once_do_the_work_once(sessions, tenant):
    """The first request holds its transaction open after its work; the second does its own
    work, and its insert of the key waits for the first's commit, finds the key taken, undoes
    its work and replays the first one's answer."""
    holding, release = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def request(who: str, hold: bool) -> None:
        def produce():
            record_event(s, tenant.id, "test.made", "f", {})
            return 201, {"who": who}
        with transaction(sessions) as s:
            outcomes[who] = run_idempotent(s, tenant, "same", "POST /t", "{}", produce,
                                           read_first=READ_FIRST[0])
            if hold:  # the key row is inserted, not yet committed
                holding.set()
                release.wait(10)

    def first() -> None:
        request("first", hold=True)

    def second() -> None:
        request("second", hold=False)

    a = threading.Thread(target=first)
    a.start()
    assert holding.wait(10)
    b = threading.Thread(target=second)
    b.start()
    b.join(1.0)
    assert b.is_alive(), "the second request's key insert should wait for the first's commit"
    release.set()
    a.join(10)
    b.join(10)
    assert outcomes["first"].body == {"who": "first"} and not outcomes["first"].replayed
    assert outcomes["second"].body == {"who": "first"} and outcomes["second"].replayed
    assert _events(sessions, tenant, "f") == 1  # the second one's work was rolled back


def test_record_only_does_not_read_a_fresh_key_first(sessions, tenant, read_first, monkeypatch):
    import haina.core.idempotency as idem
    reads: list[str] = []
    kept = idem._kept

    def counted(session, tenant_, key, ttl_hours):
        reads.append(key)
        return kept(session, tenant_, key, ttl_hours)

    monkeypatch.setattr(idem, "_kept", counted)
    first = _run(sessions, tenant, "k9", "h")
    assert first.status == 201 and reads == (["k9"] if read_first else [])
    replay = _run(sessions, tenant, "k9", "h")  # either way a replay ends in one read
    assert replay.replayed and _events(sessions, tenant, "h") == 1
