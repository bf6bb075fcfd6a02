"""A second's memory of the public answers (listed products, a product, search) per
merchant and arguments, in the process, kept as the answer's JSON bytes.

Why it is safe: these answers are the same for every buyer of a merchant (no buyer, price
list or stock of a buyer's own in them), and what a buyer then does re-reads everything it
relies on in its own unit of work — a cart prices its lines when they change (read again
unchanged within ``storefront_cache_seconds``, with nothing heard of since in what pricing
reads, it shows that price: carts.get_cart), a hold claims the slot's capacity, checkout
claims stock and prices the order now — so an answer up to ``storefront_cache_seconds`` old
shows, at worst, a slot taken a moment ago (the hold is refused, 409) or a price changed a
moment ago (the cart shows the new one). Why it is worth it: a mobile shop's first screens
are the same few queries from every buyer (docs/storefront.md, "Speed"). Errors are not kept.

One answer is made by one request at a time (**single flight**): requests that find no
answer while another request of the process is making it wait for that one instead of
making it again (under the session mix, 16 buyers on 2 processes, an expiring catalogue
page was made ~6 times at once, each a few ms of CPU in the same GIL). And the busy answers
are **refreshed ahead**: the first request that finds an answer in the last tenth of its
life makes the next one while the others are still answered with the kept one, so a busy
answer is never missing. No answer served is older than ``storefront_cache_seconds``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from haina.core import loop

T = TypeVar("T")
MAX_ENTRIES = 4096
#: an answer older than this share of its life is made anew: by the first request of the
#: pool to see it, or (the API's event loop, :meth:`PublicAnswers.peek`) at that age by a
#: making the loop schedules in the pool; early enough that the making, queued behind
#: carts and checkouts, ends before the answer does
REFRESH_AT = 0.7
#: a scheduled making schedules the next one while the answer was asked for in the last
#: this many lives of it (an answer asked for once, or no longer, is let go)
WARM_FOR = 3.0
#: how long a request waits for another's making before making its own
WAIT_SECONDS = 5.0


@dataclass
class _Flight(Generic[T]):
    done: threading.Event = field(default_factory=threading.Event)
    value: T | None = None
    made: bool = False


class PublicAnswers:
    def __init__(self) -> None:
        self._answers: dict[Hashable, tuple[float, object]] = {}
        self._making: dict[Hashable, _Flight] = {}
        self._warming: dict[Hashable, float] = {}  # key → when its next making is due
        self._asked: dict[Hashable, float] = {}  # key → when a peek last asked for it
        self._lock = threading.Lock()
        self.made = 0  # answers made (read by tests and benchmarks)

    def answer(self, key: Hashable, ttl: float, make: Callable[[], T]) -> T:
        """The answer kept for ``key`` if younger than ``ttl`` seconds, else ``make()``'s
        (kept), made once for all the requests that want it meanwhile."""
        if ttl <= 0:
            return make()
        now = time.monotonic()
        with self._lock:
            hit = self._answers.get(key)
            flight = self._making.get(key)
            if hit is not None and now - hit[0] <= ttl:
                if flight is not None or now - hit[0] < ttl * REFRESH_AT:
                    return hit[1]  # type: ignore[return-value]
                mine = True  # near its end: this request makes the next one
            else:
                mine = flight is None
            if mine:
                flight = self._making[key] = _Flight()
        assert flight is not None
        if not mine:
            # (yielding when this runs on the event loop: the maker may be another request
            # of this loop, core.loop)
            if loop.wait(flight.done, WAIT_SECONDS) and flight.made:
                return flight.value  # type: ignore[return-value]
            return make()  # the maker failed (its error is ours to meet too) or is stuck
        try:
            value = make()
        except BaseException:
            with self._lock:
                self._making.pop(key, None)
                self._warming.pop(key, None)
            flight.done.set()
            raise
        with self._lock:
            if len(self._answers) >= MAX_ENTRIES:
                self._answers.clear()
                self._warming.clear()
                self._asked.clear()
            self._answers[key] = (now, value)  # as old as the moment it began to be made
            self._making.pop(key, None)
            self._warming.pop(key, None)
            self.made += 1
        flight.value, flight.made = value, True
        flight.done.set()
        return value

    def peek(self, key: Hashable, ttl: float, warm: bool = True
             ) -> tuple[object | None, float | None]:
        """The answer kept for ``key`` if younger than ``ttl`` (else None), and, with
        ``warm``, in how many seconds a making of the next one should run (through
        :meth:`answer`, in the pool) so that a busy answer never expires: once per answer,
        at ``REFRESH_AT`` of its life (at once if it is older), None if already scheduled
        or being made. Never waits and never makes one: the event loop calls it. Without
        ``warm`` (a product, whose answers the pages keep fresh) nothing is scheduled."""
        if ttl <= 0:
            return None, None
        now = time.monotonic()
        with self._lock:
            hit = self._answers.get(key)
            if hit is None or now - hit[0] > ttl:
                return None, None
            if warm:
                self._asked[key] = now
            due = self._warming.get(key)
            if not warm or key in self._making or (due is not None and now < due + ttl):
                return hit[1], None  # (a claim past its time + ttl was lost: claim anew)
            due = hit[0] + ttl * REFRESH_AT
            self._warming[key] = due
            return hit[1], max(0.0, due - now) + 0.005  # (a timer may fire a hair early)

    def next_making(self, key: Hashable, ttl: float) -> float | None:
        """After a scheduled making of ``key`` (see :meth:`peek`): in how many seconds the
        next one is due, if the answer was asked for in the last ``WARM_FOR`` lives of it;
        None (and nothing scheduled) otherwise. So a busy answer never expires between two
        requests, and costs a making each ``REFRESH_AT`` of its life while it is busy."""
        now = time.monotonic()
        with self._lock:
            hit = self._answers.get(key)
            asked = self._asked.get(key)
            if hit is None or asked is None or now - asked > ttl * WARM_FOR \
                    or now - hit[0] > ttl:
                self._warming.pop(key, None)
                self._asked.pop(key, None)
                return None
            due = self._warming[key] = hit[0] + ttl * REFRESH_AT
            return max(0.0, due - now) + 0.005

    def put(self, key: Hashable, made: float, value: object) -> None:
        """Keep ``value`` for ``key`` as made at ``made`` (``time.monotonic()``) unless a
        younger answer is kept: what one answer teaches about another (a catalogue page's
        products are the product answers)."""
        with self._lock:
            hit = self._answers.get(key)
            if hit is None or hit[0] < made:
                if len(self._answers) >= MAX_ENTRIES:
                    self._answers.clear()
                self._answers[key] = (made, value)

    def forget(self) -> None:
        with self._lock:
            self._answers.clear()


public_answers = PublicAnswers()
