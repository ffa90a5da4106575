"""Unit tests of working-hours arithmetic.

Holiday dates asserted here were read from ``holidays.TW(years=2026)`` and
``holidays.US(years=2026)`` of holidays 0.108.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from lib.domain.business_time import (
    WorkingCalendar,
    calendar_from_config,
    taiwan_holidays,
    taiwan_make_up_working_days,
)
from lib.errors import ConfigError, InvalidInputError

TAIPEI = ZoneInfo("Asia/Taipei")
NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.timezone.utc
WEEKDAYS = frozenset(range(5))


def taipei(year, month, day, hour=0, minute=0):
    return dt.datetime(year, month, day, hour, minute, tzinfo=TAIPEI)


def new_york(year, month, day, hour=0, minute=0):
    return dt.datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


@pytest.fixture(scope="module")
def taipei_calendar():
    return calendar_from_config("Asia/Taipei", range(5), "09:00", "18:00", "TW", [], [], [2025, 2026])


@pytest.fixture(scope="module")
def new_york_calendar():
    return WorkingCalendar("America/New_York", WEEKDAYS, dt.time(9), dt.time(17), frozenset())


# ---------------------------------------------------------------------------
# Taiwan holiday data


@pytest.mark.parametrize(
    "day",
    [
        dt.date(2026, 2, 15),
        dt.date(2026, 2, 16),
        dt.date(2026, 2, 17),
        dt.date(2026, 2, 18),
        dt.date(2026, 2, 19),
        dt.date(2026, 2, 20),
        dt.date(2026, 2, 27),
        dt.date(2026, 4, 3),
        dt.date(2026, 4, 6),
        dt.date(2026, 10, 9),
    ],
)
def test_taiwan_holidays_2026_include(day):
    assert day in taiwan_holidays([2026])


def test_taiwan_holidays_only_requested_years():
    assert {day.year for day in taiwan_holidays([2026])} == {2026}


def test_taiwan_make_up_days_2025():
    assert taiwan_make_up_working_days([2025]) == frozenset({dt.date(2025, 2, 8)})


def test_taiwan_make_up_days_only_requested_years():
    assert taiwan_make_up_working_days([2026]) == frozenset()


# ---------------------------------------------------------------------------
# Working days in Asia/Taipei


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (dt.date(2026, 2, 13), True),
        (dt.date(2026, 2, 14), False),
        (dt.date(2026, 2, 16), False),
        (dt.date(2026, 2, 20), False),
        (dt.date(2026, 2, 23), True),
        (dt.date(2025, 2, 8), True),
        (dt.date(2025, 2, 9), False),
    ],
)
def test_taipei_is_working_day(taipei_calendar, day, expected):
    assert taipei_calendar.is_working_day(day) is expected


def test_extra_working_day_overrides_holiday():
    calendar = WorkingCalendar(
        "Asia/Taipei", WEEKDAYS, dt.time(9), dt.time(18), frozenset({dt.date(2026, 3, 2)}), frozenset({dt.date(2026, 3, 2)})
    )

    assert calendar.is_working_day(dt.date(2026, 3, 2))


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (taipei(2026, 1, 9, 9, 0), True),
        (taipei(2026, 1, 9, 17, 59), True),
        (taipei(2026, 1, 9, 18, 0), False),
        (taipei(2026, 1, 9, 8, 59), False),
        (taipei(2026, 1, 10, 10, 0), False),
        (taipei(2026, 2, 17, 10, 0), False),
        (dt.datetime(2026, 1, 9, 1, 0, tzinfo=UTC), True),
        (dt.datetime(2026, 1, 9, 10, 0, tzinfo=UTC), False),
    ],
)
def test_taipei_is_working_time(taipei_calendar, moment, expected):
    assert taipei_calendar.is_working_time(moment) is expected


def test_working_day_window_in_utc(taipei_calendar):
    start, end = taipei_calendar.working_day_window(dt.date(2026, 1, 9))

    assert start == dt.datetime(2026, 1, 9, 1, 0, tzinfo=UTC)
    assert end == dt.datetime(2026, 1, 9, 10, 0, tzinfo=UTC)
    assert start.tzinfo is UTC


# ---------------------------------------------------------------------------
# next_working_moment


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (taipei(2026, 1, 9, 10, 30), taipei(2026, 1, 9, 10, 30)),
        (taipei(2026, 1, 9, 7, 0), taipei(2026, 1, 9, 9, 0)),
        (taipei(2026, 1, 9, 18, 0), taipei(2026, 1, 12, 9, 0)),
        (taipei(2026, 1, 10, 12, 0), taipei(2026, 1, 12, 9, 0)),
        (taipei(2026, 2, 13, 20, 0), taipei(2026, 2, 23, 9, 0)),
        (taipei(2026, 2, 17, 11, 0), taipei(2026, 2, 23, 9, 0)),
    ],
)
def test_next_working_moment_taipei(taipei_calendar, moment, expected):
    assert taipei_calendar.next_working_moment(moment) == expected


def test_next_working_moment_returns_utc(taipei_calendar):
    result = taipei_calendar.next_working_moment(taipei(2026, 1, 10, 12, 0))

    assert result.tzinfo is UTC


# ---------------------------------------------------------------------------
# add_business_days


@pytest.mark.parametrize(
    ("moment", "days", "expected"),
    [
        (taipei(2026, 1, 8, 10, 0), 1, taipei(2026, 1, 9, 10, 0)),
        (taipei(2026, 1, 9, 10, 0), 1, taipei(2026, 1, 12, 10, 0)),
        (taipei(2026, 1, 9, 10, 0), 5, taipei(2026, 1, 16, 10, 0)),
        (taipei(2026, 1, 8, 20, 0), 1, taipei(2026, 1, 12, 9, 0)),
        (taipei(2026, 1, 10, 14, 0), 1, taipei(2026, 1, 13, 9, 0)),
        (taipei(2026, 1, 9, 7, 30), 1, taipei(2026, 1, 12, 9, 0)),
        (taipei(2026, 2, 13, 10, 0), 1, taipei(2026, 2, 23, 10, 0)),
        (taipei(2026, 2, 12, 15, 0), 2, taipei(2026, 2, 23, 15, 0)),
        (taipei(2026, 2, 17, 11, 0), 1, taipei(2026, 2, 24, 9, 0)),
        (taipei(2026, 2, 26, 10, 0), 1, taipei(2026, 3, 2, 10, 0)),
        (taipei(2025, 2, 7, 10, 0), 1, taipei(2025, 2, 8, 10, 0)),
    ],
)
def test_add_business_days_taipei(taipei_calendar, moment, days, expected):
    assert taipei_calendar.add_business_days(moment, days) == expected


def test_add_business_days_zero_is_anchor(taipei_calendar):
    assert taipei_calendar.add_business_days(taipei(2026, 2, 17, 11, 0), 0) == taipei(2026, 2, 23, 9, 0)


def test_add_business_days_rejects_negative(taipei_calendar):
    with pytest.raises(InvalidInputError):
        taipei_calendar.add_business_days(taipei(2026, 1, 9, 10, 0), -1)


def test_business_days_across_dst(new_york_calendar):
    result = new_york_calendar.add_business_days(new_york(2026, 3, 6, 16, 0), 1)

    assert result == dt.datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
    assert result.astimezone(NEW_YORK).hour == 16


def test_add_business_days_new_york_observed_holiday():
    calendar = calendar_from_config("America/New_York", range(5), "09:00", "17:00", "US", [], [], [2026])

    assert calendar.add_business_days(new_york(2026, 7, 2, 10, 0), 1) == new_york(2026, 7, 6, 10, 0)


# ---------------------------------------------------------------------------
# add_working_hours


@pytest.mark.parametrize(
    ("moment", "hours", "expected"),
    [
        (taipei(2026, 1, 9, 10, 0), 2, taipei(2026, 1, 9, 12, 0)),
        (taipei(2026, 1, 9, 10, 0), 1.5, taipei(2026, 1, 9, 11, 30)),
        (taipei(2026, 1, 9, 16, 0), 2, taipei(2026, 1, 9, 18, 0)),
        (taipei(2026, 1, 9, 17, 0), 2, taipei(2026, 1, 12, 10, 0)),
        (taipei(2026, 1, 9, 10, 0), 18, taipei(2026, 1, 13, 10, 0)),
        (taipei(2026, 1, 8, 20, 0), 2, taipei(2026, 1, 9, 11, 0)),
        (taipei(2026, 1, 10, 20, 0), 0, taipei(2026, 1, 12, 9, 0)),
        (taipei(2026, 2, 13, 17, 0), 2, taipei(2026, 2, 23, 10, 0)),
        (taipei(2026, 2, 18, 9, 0), 4, taipei(2026, 2, 23, 13, 0)),
    ],
)
def test_add_working_hours_taipei(taipei_calendar, moment, hours, expected):
    assert taipei_calendar.add_working_hours(moment, hours) == expected


def test_add_working_hours_new_york_across_dst(new_york_calendar):
    result = new_york_calendar.add_working_hours(new_york(2026, 3, 6, 16, 0), 2)

    assert result == dt.datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
    assert result.astimezone(NEW_YORK).hour == 10


def test_working_hours_on_dst_switch_day():
    # On 2026-03-08 New York clocks jump from 02:00 to 03:00, so 01:00-05:00 contains three hours.
    calendar = WorkingCalendar("America/New_York", frozenset({6}), dt.time(1), dt.time(5), frozenset())

    result = calendar.add_working_hours(new_york(2026, 3, 8, 1, 0), 3)

    assert result == new_york(2026, 3, 8, 5, 0)


@pytest.mark.parametrize("hours", [-1, float("nan"), float("inf")])
def test_add_working_hours_rejects_bad_hours(taipei_calendar, hours):
    with pytest.raises(InvalidInputError):
        taipei_calendar.add_working_hours(taipei(2026, 1, 9, 10, 0), hours)


# ---------------------------------------------------------------------------
# DST windows and validation


def test_window_shifts_with_dst(new_york_calendar):
    before = new_york_calendar.working_day_window(dt.date(2026, 3, 6))
    after = new_york_calendar.working_day_window(dt.date(2026, 3, 9))

    assert before == (dt.datetime(2026, 3, 6, 14, 0, tzinfo=UTC), dt.datetime(2026, 3, 6, 22, 0, tzinfo=UTC))
    assert after == (dt.datetime(2026, 3, 9, 13, 0, tzinfo=UTC), dt.datetime(2026, 3, 9, 21, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    "method",
    ["is_working_time", "next_working_moment"],
)
def test_naive_moment_rejected(taipei_calendar, method):
    with pytest.raises(InvalidInputError):
        getattr(taipei_calendar, method)(dt.datetime(2026, 1, 9, 10, 0))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"time_zone": "Asia/Taipie"}, "time_zone"),
        ({"working_days": frozenset({7})}, "working_days"),
        ({"end": dt.time(9)}, "end"),
        ({"end": dt.time(8)}, "end"),
        ({"start": dt.time(9, tzinfo=UTC)}, "start"),
    ],
)
def test_calendar_rejects_invalid_config(kwargs, field):
    values = {
        "time_zone": "Asia/Taipei",
        "working_days": WEEKDAYS,
        "start": dt.time(9),
        "end": dt.time(18),
        "holidays": frozenset(),
    }
    values.update(kwargs)

    with pytest.raises(InvalidInputError) as caught:
        WorkingCalendar(**values)

    assert caught.value.field == field


def test_calendar_without_working_days_raises_config_error():
    calendar = WorkingCalendar("Asia/Taipei", frozenset(), dt.time(9), dt.time(18), frozenset())

    with pytest.raises(ConfigError):
        calendar.next_working_moment(taipei(2026, 1, 9, 10, 0))


def test_config_rejects_bad_time():
    with pytest.raises(InvalidInputError):
        calendar_from_config("Asia/Taipei", range(5), "9am", "18:00", None, [], [], [2026])


def test_config_rejects_unknown_country():
    with pytest.raises(InvalidInputError):
        calendar_from_config("Asia/Taipei", range(5), "09:00", "18:00", "XX", [], [], [2026])


def test_config_merges_extra_days():
    calendar = calendar_from_config(
        "Asia/Taipei", range(5), dt.time(9), dt.time(18), None, [dt.date(2026, 1, 9)], [dt.date(2026, 1, 10)], [2026]
    )

    assert not calendar.is_working_day(dt.date(2026, 1, 9))
    assert calendar.is_working_day(dt.date(2026, 1, 10))
