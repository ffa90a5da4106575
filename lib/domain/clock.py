"""Injected clocks: code asks a clock for the time, so tests control it."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Return the current time as a timezone-aware UTC datetime."""


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)


class FixedClock:
    """A clock that stays where a test puts it."""

    def __init__(self, start: dt.datetime):
        if start.tzinfo is None:
            raise ValueError(f"FixedClock needs an aware datetime, got naive {start!r}")
        self._now = start.astimezone(dt.timezone.utc)

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, delta: dt.timedelta) -> None:
        self._now += delta

    def set(self, moment: dt.datetime) -> None:
        self._now = moment.astimezone(dt.timezone.utc)
