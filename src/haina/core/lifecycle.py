"""A lifecycle as data: which event may move an object from which state to which.

Each module with a lifecycle (orders, payment intents; later bookings and declarations)
declares one :class:`Lifecycle`. Its service asks the table before changing a state
(:meth:`Lifecycle.check`), and the test suite walks every event stream it produced through
the same table (:meth:`Lifecycle.walk`), so the events that apps receive as webhooks can only
tell of transitions the documentation promises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from haina.core.errors import InvalidState

START = None  # the "state" before an object's first event


@dataclass(frozen=True)
class Lifecycle:
    """``transitions`` maps an event type to the (state before, state after) pairs it may
    record; ``START`` as the state before marks the event that creates the object."""

    name: str
    event_prefix: str
    transitions: Mapping[str, frozenset[tuple[str | None, str]]]
    states: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        states = {s for pairs in self.transitions.values() for pair in pairs for s in pair
                  if s is not None}
        object.__setattr__(self, "states", frozenset(states))

    def allows(self, event: str, before: str | None, after: str) -> bool:
        return (before, after) in self.transitions.get(event, ())

    def may(self, event: str, before: str | None) -> bool:
        """Whether ``event`` may happen to an object that is ``before`` (to any state)."""
        return any(b == before for b, _ in self.transitions.get(event, ()))

    def check(self, event: str, before: str | None, after: str) -> None:
        """Refuse (409 ``invalid-state``) a change the table does not allow."""
        if not self.allows(event, before, after):
            raise InvalidState(f"a {self.name} that is {before} cannot become {after} "
                               f"({event})", status_now=before)

    def walk(self, stream: Iterable[tuple[str, str | None]]) -> list[str]:
        """Problems in one object's events, oldest first, given as (type, state after)
        pairs; an event that names no state leaves the state as it was."""
        problems: list[str] = []
        state: str | None = START
        for event, after in stream:
            if event not in self.transitions:
                problems.append(f"{event}: not an event of the {self.name} lifecycle")
                continue
            after = state if after is None else after
            if after is None or not self.allows(event, state, after):
                problems.append(f"{event}: {state} → {after} is not in the {self.name} table")
            state = after
        return problems


def pairs(*items: tuple[str | None, str]) -> frozenset[tuple[str | None, str]]:
    return frozenset(items)
