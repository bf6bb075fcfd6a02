"""The public answers' memory (storefront.cache): kept a while, made once for all the
requests that want it at the same time, refreshed ahead by one request, errors never kept.
(Pure in-process behaviour: no database.)"""

from __future__ import annotations

import threading
import time

import pytest

from haina.storefront import cache as cache_module
from haina.storefront.cache import PublicAnswers


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
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return "new"

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
