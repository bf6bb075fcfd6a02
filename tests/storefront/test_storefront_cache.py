"""The public answers' memory (storefront.cache): kept a while, made once for all the
requests that want it at the same time, refreshed ahead by one request, errors never kept.
(Pure in-process behaviour: no database.)"""

from __future__ import annotations

import threading
import time

import pytest

from haina.storefront import cache as cache_module
from haina.storefront.cache import PublicAnswers


def _slow_maker():
    """A maker that says it started and waits for ``release`` before answering "new"."""
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return "new"

    return started, release, slow


def test_an_answer_is_kept_for_its_time_and_never_older():
    answers = PublicAnswers()
    made = []

    def make() -> int:
        made.append(1)
        return len(made)

    assert answers.answer("k", 2, make) == 1
    assert answers.answer("k", 2, make) == 1  # kept
    time.sleep(2.05)
    assert answers.answer("k", 2, make) == 2  # past its time: made anew
    assert answers.answer("k", 0, make) == 3  # 0: not kept at all
    assert answers.answer("other", 2, make) == 4  # per key


def test_requests_missing_at_once_wait_for_one_making():
    answers = PublicAnswers()
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow() -> str:
        calls.append(1)
        started.set()
        release.wait(5)
        return "page"

    results: list[str] = []
    maker = threading.Thread(target=lambda: results.append(answers.answer("k", 10, slow)))
    maker.start()
    assert started.wait(5)
    waiters = [threading.Thread(target=lambda: results.append(answers.answer("k", 10, slow)))
               for _ in range(5)]
    for t in waiters:
        t.start()
    time.sleep(0.1)  # the waiters are waiting, not making
    assert len(calls) == 1
    release.set()
    for t in [maker, *waiters]:
        t.join(5)
    assert results == ["page"] * 6 and len(calls) == 1 and answers.made == 1


def test_an_answer_near_its_end_is_made_anew_by_one_request_while_the_others_get_it(
        monkeypatch):
    monkeypatch.setattr(cache_module, "REFRESH_AT", 0.5)
    answers = PublicAnswers()
    answers.answer("k", 4, lambda: "old")
    time.sleep(2.1)  # past half of its life
    started, release, slow = _slow_maker()
    refresher = threading.Thread(target=lambda: answers.answer("k", 4, slow))
    refresher.start()
    assert started.wait(5)
    assert answers.answer("k", 4, lambda: "not made") == "old"  # not waiting for it
    release.set()
    refresher.join(5)
    assert answers.answer("k", 4, lambda: "not made") == "new"


def test_an_error_is_not_kept_and_reaches_the_waiters_too():
    answers = PublicAnswers()
    started, release = threading.Event(), threading.Event()

    def failing() -> str:
        started.set()
        release.wait(5)
        raise LookupError("not listed")

    errors: list[BaseException] = []

    def call() -> None:
        try:
            answers.answer("k", 10, failing)
        except LookupError as exc:
            errors.append(exc)

    maker = threading.Thread(target=call)
    maker.start()
    assert started.wait(5)
    waiter = threading.Thread(target=call)  # waits for the maker, then makes its own
    waiter.start()
    time.sleep(0.05)
    release.set()
    maker.join(5)
    waiter.join(5)
    assert len(errors) == 2
    assert answers.answer("k", 10, lambda: "listed now") == "listed now"
    with pytest.raises(LookupError):
        answers.answer("gone", 10, lambda: (_ for _ in ()).throw(LookupError("x")))


def test_a_peek_gives_what_is_kept_and_schedules_the_next_making_once(monkeypatch):
    """``peek`` (the event loop's look): the kept answer while it is younger than its time,
    None when there is none or it is past its time; never waits, never makes. The first
    peek of an answer says when to make the next one (at REFRESH_AT of its life, at once if
    past it), the others not, nor while one is being made; once the next one is kept, its
    first peek schedules again. Without ``warm``, nothing is scheduled."""
    monkeypatch.setattr(cache_module, "REFRESH_AT", 0.5)
    answers = PublicAnswers()
    assert answers.peek("k", 4) == (None, None)
    answers.answer("k", 4, lambda: "old")
    value, due = answers.peek("k", 4)
    assert value == "old" and due is not None and 1.9 < due < 2.1
    assert answers.peek("k", 4) == ("old", None)  # scheduled once
    assert answers.peek("k", 0) == (None, None)
    answers.answer("p", 4, lambda: "product")
    assert answers.peek("p", 4, warm=False) == ("product", None)
    time.sleep(2.1)  # past half of its life: the scheduled making makes the next one
    started, release, slow = _slow_maker()
    refresher = threading.Thread(target=lambda: answers.answer("k", 4, slow))
    refresher.start()
    assert started.wait(5)
    assert answers.peek("k", 4) == ("old", None)  # being made: the kept one meanwhile
    release.set()
    refresher.join(5)
    value, due = answers.peek("k", 4)
    assert value == "new" and due is not None and due > 1.5  # the next one's schedule
    answers.answer("q", 0.2, lambda: "short")
    time.sleep(0.15)  # past REFRESH_AT of its life: make the next one at once
    value, due = answers.peek("q", 0.2)
    assert value == "short" and due is not None and due < 0.05
    time.sleep(0.1)
    assert answers.peek("q", 0.2) == (None, None)  # past its time
