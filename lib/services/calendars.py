"""Working calendars of members, built from configuration and cached per process."""

from __future__ import annotations

import functools

from lib.config.schema import CrmConfig, Member
from lib.domain.business_time import WorkingCalendar, calendar_from_config


@functools.lru_cache(maxsize=256)
def _calendar(config_id: int, member: Member, holiday_country: str | None, extra_holidays: tuple,
              extra_working_days: tuple, years: tuple[int, ...]) -> WorkingCalendar:
    return calendar_from_config(
        time_zone=member.time_zone,
        working_days=member.working_hours.days,
        start=member.working_hours.start,
        end=member.working_hours.end,
        holiday_country=holiday_country,
        extra_holidays=extra_holidays,
        extra_working_days=extra_working_days,
        years=years,
    )


def member_calendar(config: CrmConfig, member: Member, year: int) -> WorkingCalendar:
    """Return the member's working calendar covering ``year`` and the next one."""
    org = config.organization
    return _calendar(id(config), member, org.holiday_country, org.extra_holidays,
                     org.extra_working_days, (year, year + 1))
