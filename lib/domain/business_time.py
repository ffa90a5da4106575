"""Working-hours arithmetic: due dates and follow-up times that skip nights, weekends and holidays.

All moments going in must be timezone-aware and every moment coming out is aware
UTC. Wall-clock times are read in the calendar's IANA time zone with ``zoneinfo``,
so daylight-saving switches move the UTC result and not the local working hours.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_package

from lib.errors import ConfigError, InvalidInputError

# A calendar whose working days are all further apart than this is treated as
# having none, so searches for the next working day always end.
MAX_DAYS_WITHOUT_WORK = 366

_UTC = dt.timezone.utc


@dataclasses.dataclass(frozen=True)
class WorkingCalendar:
    """Working days and hours of a team in one time zone.

    Attributes:
        time_zone: IANA zone name, e.g. "Asia/Taipei".
        working_days: Weekdays that are working days, 0 for Monday to 6 for Sunday.
        start: Local wall time when work starts each working day (naive).
        end: Local wall time when work ends, later than start on the same day (naive).
        holidays: Dates that are not working days, even on a working weekday.
        extra_working_days: Dates that are working days even on a weekend or a
            holiday, such as Taiwan's make-up working Saturdays.

    Raises:
        InvalidInputError: the time zone is unknown, a weekday is outside 0 to 6,
            start or end carries a tzinfo, or end is not later than start.
    """

    time_zone: str
    working_days: frozenset[int]
    start: dt.time
    end: dt.time
    holidays: frozenset[dt.date]
    extra_working_days: frozenset[dt.date] = frozenset()
    _zone: ZoneInfo = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInputError("time_zone", "an IANA time zone such as 'Asia/Taipei'", self.time_zone) from exc
        object.__setattr__(self, "_zone", zone)

        if not all(isinstance(day, int) and 0 <= day <= 6 for day in self.working_days):
            raise InvalidInputError("working_days", "weekday numbers from 0 (Monday) to 6 (Sunday)", sorted(self.working_days))
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise InvalidInputError("start", "naive local wall times for start and end", f"{self.start}-{self.end}")
        # NOTE: Working hours that cross midnight (night shifts) are not supported.
        if self.end <= self.start:
            raise InvalidInputError("end", f"a time later than start {self.start}", self.end)

    def is_working_day(self, day: dt.date) -> bool:
        """Tell whether day is a working day: an extra working day, or a working weekday that is no holiday."""
        if day in self.extra_working_days:
            return True
        return day.weekday() in self.working_days and day not in self.holidays

    def working_day_window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """Return the working hours of day as (start, end) in aware UTC.

        The window is computed whether or not day is a working day. A start or end
        that falls in a daylight-saving gap is read with the offset before the switch.
        """
        start = dt.datetime.combine(day, self.start, tzinfo=self._zone)
        end = dt.datetime.combine(day, self.end, tzinfo=self._zone)
        return start.astimezone(_UTC), end.astimezone(_UTC)

    def is_working_time(self, moment: dt.datetime) -> bool:
        """Tell whether moment falls inside working hours, start included and end excluded.

        Raises:
            InvalidInputError: moment is naive.
        """
        utc_moment = _require_aware(moment)
        day = utc_moment.astimezone(self._zone).date()
        if not self.is_working_day(day):
            return False
        start, end = self.working_day_window(day)
        return start <= utc_moment < end

    def next_working_moment(self, moment: dt.datetime) -> dt.datetime:
        """Return moment itself when it is working time, else the next start of working hours.

        Returns:
            An aware UTC datetime.

        Raises:
            InvalidInputError: moment is naive.
            ConfigError: the calendar has no working day within MAX_DAYS_WITHOUT_WORK days.
        """
        utc_moment = _require_aware(moment)
        day = utc_moment.astimezone(self._zone).date()
        for _ in range(MAX_DAYS_WITHOUT_WORK + 1):
            if self.is_working_day(day):
                start, end = self.working_day_window(day)
                if utc_moment < start:
                    return start
                if utc_moment < end:
                    return utc_moment
            day += dt.timedelta(days=1)
        raise ConfigError(f"working calendar {self.time_zone}: no working day within {MAX_DAYS_WITHOUT_WORK} days after {moment.isoformat()}")

    def add_business_days(self, moment: dt.datetime, n: int) -> dt.datetime:
        """Move n working days forward, keeping the local wall time.

        Counting starts from ``next_working_moment(moment)``, so an anchor after
        hours or on a holiday first moves to the next start of working hours. The
        result is on the n-th working day after the anchor's day, at the anchor's
        local wall time, clamped into that day's working hours.

        Args:
            moment: Aware anchor.
            n: Number of working days, 0 or more. Zero returns the anchor.

        Returns:
            An aware UTC datetime.

        Raises:
            InvalidInputError: moment is naive or n is negative.
            ConfigError: the calendar has no working day within MAX_DAYS_WITHOUT_WORK days.
        """
        if n < 0:
            raise InvalidInputError("n", "a number of working days of 0 or more", n)
        anchor = self.next_working_moment(moment)
        local_anchor = anchor.astimezone(self._zone)

        day = local_anchor.date()
        for _ in range(n):
            day = self._next_working_day(day)

        start, end = self.working_day_window(day)
        target = dt.datetime.combine(day, local_anchor.time(), tzinfo=self._zone).astimezone(_UTC)
        return min(max(target, start), end)

    def add_working_hours(self, moment: dt.datetime, hours: float) -> dt.datetime:
        """Move forward by hours of working time, skipping time outside working hours.

        Elapsed time is counted in real (UTC) time, so a daylight-saving switch inside
        working hours changes the local end time. A result that uses up a day's hours
        exactly is that day's end, not the next day's start.

        Args:
            moment: Aware start. Counting starts at ``next_working_moment(moment)``.
            hours: Working hours to add, 0 or more and finite.

        Returns:
            An aware UTC datetime.

        Raises:
            InvalidInputError: moment is naive, or hours is negative or not finite.
            ConfigError: the calendar has no working day within MAX_DAYS_WITHOUT_WORK days.
        """
        if not math.isfinite(hours) or hours < 0:
            raise InvalidInputError("hours", "a finite number of working hours of 0 or more", hours)
        remaining = dt.timedelta(hours=hours)
        current = self.next_working_moment(moment)

        while True:
            _, end = self.working_day_window(current.astimezone(self._zone).date())
            available = end - current
            if remaining <= available:
                return current + remaining
            remaining -= available
            current = self.next_working_moment(end)

    def _next_working_day(self, day: dt.date) -> dt.date:
        for _ in range(MAX_DAYS_WITHOUT_WORK):
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                return day
        raise ConfigError(f"working calendar {self.time_zone}: no working day within {MAX_DAYS_WITHOUT_WORK} days after {day.isoformat()}")


def _require_aware(moment: dt.datetime) -> dt.datetime:
    """Return moment in UTC, raising InvalidInputError when it is naive."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInputError("moment", "a timezone-aware datetime", moment.isoformat())
    return moment.astimezone(_UTC)


def taiwan_holidays(years: Iterable[int]) -> frozenset[dt.date]:
    """List Taiwan's public holidays, observed (bridging) days included.

    Dates come from ``holidays.TW``. Make-up working Saturdays are not holidays:
    ``taiwan_make_up_working_days`` lists those for ``extra_working_days``.

    Args:
        years: Calendar years to include.

    Returns:
        The holiday dates of those years.
    """
    return frozenset(holidays_package.TW(years=sorted(set(years)), observed=True).keys())


def taiwan_make_up_working_days(years: Iterable[int]) -> frozenset[dt.date]:
    """List the Saturdays that Taiwan declares working days to bridge a long holiday.

    Read from ``holidays.TW(...).weekend_workdays`` (holidays 0.108 lists, for
    example, 2024-02-17 and 2025-02-08).

    Args:
        years: Calendar years to include.

    Returns:
        The make-up working dates of those years.
    """
    requested_years = set(years)
    # Filter by year because the package also returns make-up days of years not requested.
    make_up_days = holidays_package.TW(years=sorted(requested_years)).weekend_workdays
    return frozenset(day for day in make_up_days if day.year in requested_years)


def calendar_from_config(
    time_zone: str,
    working_days: Iterable[int],
    start: dt.time | str,
    end: dt.time | str,
    holiday_country: str | None,
    extra_holidays: Iterable[dt.date],
    extra_working_days: Iterable[dt.date],
    years: Iterable[int],
) -> WorkingCalendar:
    """Build a WorkingCalendar from configuration values.

    Args:
        time_zone: IANA zone name.
        working_days: Weekdays, 0 for Monday to 6 for Sunday.
        start: Start of working hours, a naive time or "HH:MM".
        end: End of working hours, a naive time or "HH:MM".
        holiday_country: ISO 3166-1 alpha-2 code whose public holidays apply
            (from the holidays package), or None for no public holidays. For "TW"
            the make-up working Saturdays are added to the working days too.
        extra_holidays: Company holidays on top of the public ones.
        extra_working_days: Dates worked even on a weekend or holiday.
        years: Years to load public holidays for. Dates outside them get no public holidays.

    Returns:
        The calendar.

    Raises:
        InvalidInputError: a time is not "HH:MM", the country code is not supported
            by the holidays package, or WorkingCalendar rejects a value.
    """
    year_list = sorted(set(years))
    public_holidays: frozenset[dt.date] = frozenset()
    make_up_days: frozenset[dt.date] = frozenset()
    if holiday_country is not None:
        public_holidays = _public_holidays(holiday_country, year_list)
        if holiday_country.upper() == "TW":
            make_up_days = taiwan_make_up_working_days(year_list)

    return WorkingCalendar(
        time_zone=time_zone,
        working_days=frozenset(working_days),
        start=_parse_wall_time("start", start),
        end=_parse_wall_time("end", end),
        holidays=public_holidays | frozenset(extra_holidays),
        extra_working_days=make_up_days | frozenset(extra_working_days),
    )


def _public_holidays(country: str, years: list[int]) -> frozenset[dt.date]:
    if country.upper() == "TW":
        return taiwan_holidays(years)
    try:
        return frozenset(holidays_package.country_holidays(country.upper(), years=years).keys())
    except NotImplementedError as exc:
        raise InvalidInputError("holiday_country", "an ISO 3166-1 alpha-2 code supported by the holidays package", country) from exc


def _parse_wall_time(field: str, value: dt.time | str) -> dt.time:
    if isinstance(value, dt.time):
        return value
    try:
        return dt.time.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(field, "a local time as 'HH:MM'", value) from exc
