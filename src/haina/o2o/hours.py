"""Opening hours → bookable slots, in the point's own time zone. A pure library.

Hours are given per ISO weekday (1 = Monday … 7 = Sunday) as local ``HH:MM`` pairs; a close at
or before the open runs past midnight (20:00–02:00 ends the next morning), ``24:00`` is the
end of the day. An exception for a date replaces that date's hours (none: closed all day).

A window (one interval of one date) is turned into absolute instants once, then cut into slots
in absolute time: on the night clocks go back a 20:00–02:00 window is seven hours long and
holds a slot more; when they go forward, one fewer. A slot's ``start`` is when the service
begins; the bay is taken from ``start − buffer_before`` to ``start + duration + buffer_after``,
so slots start every ``buffer_before + duration + buffer_after`` minutes from the open, and
bookings on the grid never overlap: each slot's capacity is counted alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

UTC = dt.UTC


@dataclass(frozen=True)
class Shape:
    """What a service's slots look like (minutes)."""

    duration: int
    buffer_before: int = 0
    buffer_after: int = 0

    @property
    def step(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.buffer_before + self.duration + self.buffer_after)


def parse_hhmm(text: str) -> dt.time | None:
    """``HH:MM`` (00:00–23:59) as a time; ``24:00`` as None (the end of the day)."""
    if text == "24:00":
        return None
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def _local(day: dt.date, at: dt.time | None, zone: ZoneInfo) -> dt.datetime:
    """The instant (UTC) of local ``day at``; a time in a spring-forward gap reads with the
    offset before the change (02:30 → 03:30 summer time), as zoneinfo's fold=0 does."""
    if at is None:
        day, at = day + dt.timedelta(days=1), dt.time(0)
    return dt.datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def intervals_on(day: dt.date, hours: Sequence[Mapping[str, str]],
                 exceptions: Sequence[Mapping[str, str | None]]) -> list[tuple[str, str]]:
    """The (open, close) pairs that open on local ``day``: its exception's, or its weekday's."""
    special = [e for e in exceptions if e.get("date") == day.isoformat()]
    if special:
        return [(str(e["open"]), str(e["close"])) for e in special
                if e.get("open") and e.get("close")]
    weekday = day.isoweekday()
    return [(h["open"], h["close"]) for h in hours if int(h["weekday"]) == weekday]


def windows_on(day: dt.date, hours: Sequence[Mapping[str, str]],
               exceptions: Sequence[Mapping[str, str | None]],
               zone: ZoneInfo) -> list[tuple[dt.datetime, dt.datetime]]:
    """The open windows (UTC instants) that begin on local ``day``."""
    out = []
    for open_text, close_text in intervals_on(day, hours, exceptions):
        opens, closes = parse_hhmm(open_text), parse_hhmm(close_text)
        start = _local(day, opens, zone)
        if closes is not None and opens is not None and closes <= opens:
            end = _local(day + dt.timedelta(days=1), closes, zone)  # past midnight
        else:
            end = _local(day, closes, zone)
        if end > start:
            out.append((start, end))
    return out


def slot_starts(day: dt.date, hours: Sequence[Mapping[str, str]],
                exceptions: Sequence[Mapping[str, str | None]], zone: ZoneInfo,
                shape: Shape) -> list[dt.datetime]:
    """Every slot (its start, UTC) that starts on local ``day``: from the windows opening that
    day and those of the day before that run past midnight."""
    starts: set[dt.datetime] = set()
    for opening in (day - dt.timedelta(days=1), day):
        for start, end in windows_on(opening, hours, exceptions, zone):
            starts.update(_cut(start, end, shape))
    return sorted(s for s in starts if s.astimezone(zone).date() == day)


def _cut(start: dt.datetime, end: dt.datetime, shape: Shape) -> Iterable[dt.datetime]:
    begin = start + dt.timedelta(minutes=shape.buffer_before)
    tail = dt.timedelta(minutes=shape.duration + shape.buffer_after)
    while begin + tail <= end:
        yield begin
        begin += shape.step


def is_slot(start: dt.datetime, hours: Sequence[Mapping[str, str]],
            exceptions: Sequence[Mapping[str, str | None]], zone: ZoneInfo,
            shape: Shape) -> bool:
    """Whether ``start`` (aware) is one of the point's slots for this service."""
    start = start.astimezone(UTC)
    return start in slot_starts(start.astimezone(zone).date(), hours, exceptions, zone, shape)
