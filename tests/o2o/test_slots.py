"""Slots from opening hours, in the point's time zone: weekdays, exceptions, buffers, hours
past midnight and the nights clocks change (pure functions)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from haina.o2o.hours import Shape, is_slot, slot_starts

BERLIN = ZoneInfo("Europe/Berlin")
SHANGHAI = ZoneInfo("Asia/Shanghai")
HOUR = Shape(60)


def local(starts, zone):
    return [s.astimezone(zone).strftime("%H:%M%z") for s in starts]


def every_day(open_, close):
    return [{"weekday": d, "open": open_, "close": close} for d in range(1, 8)]


def test_a_day_is_cut_into_slots_by_duration_and_buffers_on_its_weekday_only():
    hours = [{"weekday": 1, "open": "09:00", "close": "12:00"}]
    monday = dt.date(2026, 12, 7)
    assert local(slot_starts(monday, hours, [], SHANGHAI, HOUR), SHANGHAI) == [
        "09:00+0800", "10:00+0800", "11:00+0800"]
    # 10 minutes before and 20 after each 60-minute job: a slot every 90 minutes
    buffered = Shape(60, buffer_before=10, buffer_after=20)
    assert local(slot_starts(monday, hours, [], SHANGHAI, buffered), SHANGHAI) == [
        "09:10+0800", "10:40+0800"]
    assert slot_starts(monday + dt.timedelta(days=1), hours, [], SHANGHAI, HOUR) == []


def test_an_exception_closes_a_holiday_or_gives_it_other_hours():
    hours = every_day("09:00", "18:00")
    closed = [{"date": "2026-12-25", "open": None, "close": None, "note": "Christmas"}]
    assert slot_starts(dt.date(2026, 12, 25), hours, closed, SHANGHAI, HOUR) == []
    short = [{"date": "2026-12-31", "open": "10:00", "close": "12:00", "note": None}]
    assert local(slot_starts(dt.date(2026, 12, 31), hours, short, SHANGHAI, HOUR),
                 SHANGHAI) == ["10:00+0800", "11:00+0800"]


def test_hours_past_midnight_give_slots_to_the_next_date():
    hours = [{"weekday": 5, "open": "20:00", "close": "02:00"}]  # Friday night
    friday, saturday = dt.date(2026, 12, 11), dt.date(2026, 12, 12)
    assert local(slot_starts(friday, hours, [], SHANGHAI, HOUR), SHANGHAI) == [
        "20:00+0800", "21:00+0800", "22:00+0800", "23:00+0800"]
    assert local(slot_starts(saturday, hours, [], SHANGHAI, HOUR), SHANGHAI) == [
        "00:00+0800", "01:00+0800"]
    saturday_1am = dt.datetime(2026, 12, 12, 1, 0, tzinfo=SHANGHAI)
    assert is_slot(saturday_1am, hours, [], SHANGHAI, HOUR)
    assert not is_slot(saturday_1am + dt.timedelta(minutes=30), hours, [], SHANGHAI, HOUR)
    # 24:00 is the end of the day
    assert len(slot_starts(friday, [{"weekday": 5, "open": "22:00", "close": "24:00"}], [],
                           SHANGHAI, HOUR)) == 2


def test_the_night_clocks_go_back_a_night_window_holds_one_slot_more():
    # Europe/Berlin leaves summer time on Sunday 2027-10-31 at 03:00 CEST → 02:00 CET
    hours = [{"weekday": 6, "open": "20:00", "close": "04:00"}]  # Saturday night
    saturday, sunday = dt.date(2027, 10, 30), dt.date(2027, 10, 31)
    assert local(slot_starts(sunday, hours, [], BERLIN, HOUR), BERLIN) == [
        "00:00+0200", "01:00+0200", "02:00+0200", "02:00+0100", "03:00+0100"]
    night = slot_starts(saturday, hours, [], BERLIN, HOUR) + slot_starts(sunday, hours, [],
                                                                          BERLIN, HOUR)
    assert len(night) == 9  # 20:00 to 04:00 is nine real hours that night
    # each slot is one real hour after the one before: no overlap, no gap
    assert all(b - a == dt.timedelta(hours=1) for a, b in zip(night, night[1:]))


def test_the_night_clocks_go_forward_a_window_loses_an_hour_and_its_slot():
    # Europe/Berlin starts summer time on Sunday 2027-03-28 at 02:00 CET → 03:00 CEST
    hours = [{"weekday": 6, "open": "22:00", "close": "04:00"}]
    sunday = dt.date(2027, 3, 28)
    assert local(slot_starts(sunday, hours, [], BERLIN, HOUR), BERLIN) == [
        "00:00+0100", "01:00+0100", "03:00+0200"]
    # a day shop: 09:00-18:00 on both change days is nine slots, at the local hours
    day = every_day("09:00", "18:00")
    for d in (dt.date(2027, 3, 28), dt.date(2027, 10, 31)):
        starts = local(slot_starts(d, day, [], BERLIN, HOUR), BERLIN)
        assert [s[:5] for s in starts] == [f"{h:02d}:00" for h in range(9, 18)]
