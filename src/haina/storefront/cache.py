"""A second's memory of the public answers (listed products, a product, search) per
merchant and arguments, in the process.

Why it is safe: these answers are the same for every buyer of a merchant (no buyer, price
list or stock of a buyer's own in them), and what a buyer then does re-reads everything it
relies on in its own unit of work — a cart prices its lines now, a hold claims the slot's
capacity, checkout claims stock — so an answer up to ``storefront_cache_seconds`` old shows,
at worst, a slot taken a moment ago (the hold is refused, 409) or a price changed a moment
ago (the cart shows the new one). Why it is worth it: a mobile shop's first screens are the
same few queries from every buyer (docs/storefront.md, "Speed"). Errors are not kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")
MAX_ENTRIES = 4096


class PublicAnswers:
    def __init__(self) -> None:
        self._answers: dict[Hashable, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def answer(self, key: Hashable, ttl: float, make: Callable[[], T]) -> T:
        """The answer kept for ``key`` if younger than ``ttl`` seconds, else ``make()``'s
        (kept). Two requests missing at once both make it: no lock is held while making."""
        if ttl <= 0:
            return make()
        now = time.monotonic()
        with self._lock:
            hit = self._answers.get(key)
        if hit is not None and now - hit[0] <= ttl:
            return hit[1]  # type: ignore[return-value]
        value = make()
        with self._lock:
            if len(self._answers) >= MAX_ENTRIES:
                self._answers.clear()
            self._answers[key] = (now, value)
        return value

    def forget(self) -> None:
        with self._lock:
            self._answers.clear()


public_answers = PublicAnswers()
