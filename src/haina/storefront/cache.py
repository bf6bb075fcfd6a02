"""A second's memory of the public answers (listed products, a product, search) per
merchant and arguments, in the process, kept as the answer's JSON bytes.

Why it is safe: these answers are the same for every buyer of a merchant (no buyer, price
list or stock of a buyer's own in them), and what a buyer then does re-reads everything it
relies on in its own unit of work — a cart prices its lines now, a hold claims the slot's
capacity, checkout claims stock — so an answer up to ``storefront_cache_seconds`` old shows,
at worst, a slot taken a moment ago (the hold is refused, 409) or a price changed a moment
ago (the cart shows the new one). Why it is worth it: a mobile shop's first screens are the
same few queries from every buyer (docs/storefront.md, "Speed"). Errors are not kept.

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

T = TypeVar("T")
MAX_ENTRIES = 4096
#: an answer older than this share of its life is made anew by the first request to see it
#: (late, as each making costs CPU: a busy answer is made ~1.1 times a second, not 1.33)
REFRESH_AT = 0.9
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
            if flight.done.wait(WAIT_SECONDS) and flight.made:
                return flight.value  # type: ignore[return-value]
            return make()  # the maker failed (its error is ours to meet too) or is stuck
        try:
            value = make()
        except BaseException:
            with self._lock:
                self._making.pop(key, None)
            flight.done.set()
            raise
        with self._lock:
            if len(self._answers) >= MAX_ENTRIES:
                self._answers.clear()
            self._answers[key] = (now, value)  # as old as the moment it began to be made
            self._making.pop(key, None)
            self.made += 1
        flight.value, flight.made = value, True
        flight.done.set()
        return value

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
