"""Expanding a Graph ``patternedRecurrence`` into the dates of its occurrences.

Every pattern type of Graph's ``recurrencePattern`` (``daily``, ``weekly``, ``absoluteMonthly``,
``relativeMonthly``, ``absoluteYearly``, ``relativeYearly``) with its ``interval``,
``daysOfWeek``, ``firstDayOfWeek``, ``dayOfMonth``, ``month`` and ``index``, and every
``recurrenceRange`` type (``endDate`` inclusive, ``noEnd``, ``numbered``). The series starts on
``range.startDate``; dates the pattern yields before it are skipped. A ``dayOfMonth`` past the
end of a short month falls on its last day, as Outlook places it. At most
:data:`MAX_OCCURRENCES` dates per series.
"""

from __future__ import annotations

import calendar
import itertools
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

MAX_OCCURRENCES = 1000
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
WEEK_INDEXES = ("first", "second", "third", "fourth", "last")
PATTERN_TYPES = ("daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly")
RANGE_TYPES = ("endDate", "noEnd", "numbered")


def occurrence_dates(recurrence: dict[str, Any], first: date) -> Iterator[date]:
    """The dates of a series whose master starts on ``first`` (when the range has no startDate)."""
    bounds = recurrence.get("range") or {}
    start = _as_date(bounds.get("startDate")) or first
    kind = bounds.get("type")
    until = _as_date(bounds.get("endDate")) if kind == "endDate" else None
    count = _as_int(bounds.get("numberOfOccurrences"), 0) if kind == "numbered" else MAX_OCCURRENCES
    dates = (day for day in _pattern_dates(recurrence.get("pattern") or {}, start) if day >= start)
    for day in itertools.islice(dates, max(0, min(count, MAX_OCCURRENCES))):
        if until is not None and day > until:
            return
        yield day


def _pattern_dates(pattern: dict[str, Any], start: date) -> Iterator[date]:
    interval = min(max(_as_int(pattern.get("interval"), 1), 1), 99)
    kind = pattern.get("type")
    days = _weekday_numbers(pattern.get("daysOfWeek"))
    if kind == "daily":
        return (start + timedelta(days=n * interval) for n in itertools.count())
    if kind == "weekly":
        return _weekly(start, interval, days or [_sunday_based(start)], pattern.get("firstDayOfWeek"))
    if kind in ("absoluteMonthly", "relativeMonthly"):
        months = ((start.year, start.month, n * interval) for n in itertools.count())
    elif kind in ("absoluteYearly", "relativeYearly"):
        month = _as_int(pattern.get("month"), start.month)
        months = ((start.year, month, n * interval * 12) for n in itertools.count())
    else:
        return iter(())
    if kind.startswith("absolute"):
        day_of_month = _as_int(pattern.get("dayOfMonth"), start.day)
        return (_day_of_month(*_add_months(y, m, step), day_of_month) for y, m, step in months)
    index = str(pattern.get("index") or "first")
    return (_relative_day(*_add_months(y, m, step), days, index) for y, m, step in months)


def _weekly(start: date, interval: int, days: list[int], first_day: Any) -> Iterator[date]:
    """Each week counted from the one holding ``start`` (weeks begin on ``firstDayOfWeek``)."""
    week_start = WEEKDAYS.index(first_day) if first_day in WEEKDAYS else 0
    origin = start - timedelta(days=(_sunday_based(start) - week_start) % 7)
    offsets = sorted((day - week_start) % 7 for day in set(days))
    for week in itertools.count(step=interval):
        for offset in offsets:
            yield origin + timedelta(weeks=week, days=offset)


def _add_months(year: int, month: int, step: int) -> tuple[int, int]:
    years, month_index = divmod(month - 1 + step, 12)
    return year + years, month_index + 1


def _day_of_month(year: int, month: int, day: int) -> date:
    return date(year, month, min(max(day, 1), calendar.monthrange(year, month)[1]))


def _relative_day(year: int, month: int, days: list[int], index: str) -> date:
    """The ``index`` (first..fourth, last) day of ``month`` that is one of ``days``."""
    length = calendar.monthrange(year, month)[1]
    wanted = set(days or [0])
    matching = [date(year, month, d) for d in range(1, length + 1) if _sunday_based(date(year, month, d)) in wanted]
    position = WEEK_INDEXES.index(index) if index in WEEK_INDEXES else 0
    return matching[-1] if index == "last" else matching[min(position, len(matching) - 1)]


def _weekday_numbers(names: Any) -> list[int]:
    return [WEEKDAYS.index(str(n)) for n in names or [] if str(n) in WEEKDAYS]


def _sunday_based(day: date) -> int:
    return (day.weekday() + 1) % 7


def _as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _as_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None
