"""Events as the model sees them: time zones, event times, recurrence expansion, occurrences."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fakes.graph.resources import raw_resource
from fakes.tenant import Item

Window = tuple[datetime, datetime]
Row = tuple[str, str | dict[str, Any]]  # (folder, item id) rendered live, or (folder, resource)

MAX_OCCURRENCES = 1000
_WEEKDAYS = {
    day: n for n, day in enumerate(("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"))
}
_WINDOWS_ZONES = {
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "Pacific Standard Time": "America/Los_Angeles",
    "India Standard Time": "Asia/Kolkata",
    "Tokyo Standard Time": "Asia/Tokyo",
    "AUS Eastern Standard Time": "Australia/Sydney",
}


def zone_of(name: Any) -> ZoneInfo:
    key = _WINDOWS_ZONES.get(str(name or "UTC"), str(name or "UTC"))
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def as_instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return instant(value) if isinstance(value, str) else None
    except ValueError:
        return None


def event_time(when: Any) -> datetime | None:
    """A Graph dateTimeTimeZone as an aware datetime in its zone."""
    if not isinstance(when, dict):
        return None
    try:
        moment = datetime.fromisoformat(str(when.get("dateTime")))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone_of(when.get("timeZone")))


def fmt_local(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.0000000")


def as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def as_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def present_event(res: dict[str, Any], zone_name: str) -> None:
    """Event times in ``zone_name`` (all-day events keep their dates), as Graph returns them."""
    res.setdefault("type", "seriesMaster" if res.get("recurrence") else "singleInstance")
    res.setdefault("recurrence", None)
    zone = zone_of(zone_name)
    for key, original in (("start", "originalStartTimeZone"), ("end", "originalEndTimeZone")):
        when = res.get(key)
        moment = event_time(when)
        if moment is None or not isinstance(when, dict):
            continue
        res.setdefault(original, when.get("timeZone"))
        local = when["dateTime"] if res.get("isAllDay") else fmt_local(moment.astimezone(zone))
        res[key] = {"dateTime": local, "timeZone": zone_name}


def event_spans(data: dict[str, Any], window: Window) -> Iterator[tuple[datetime, datetime]]:
    """(start, end) of the event, or of each occurrence of a series, overlapping ``window``."""
    start, end = event_time(data.get("start")), event_time(data.get("end"))
    if start is None or end is None:
        return
    recurrence = data.get("recurrence")
    if not isinstance(recurrence, dict):
        if start < window[1] and end > window[0]:
            yield start, end
        return
    duration = end - start
    for day in _recurrence_dates(recurrence, start.date()):
        occurrence = datetime.combine(day, start.timetz())
        if occurrence >= window[1]:
            return
        if occurrence + duration > window[0]:
            yield occurrence, occurrence + duration


def _recurrence_dates(recurrence: dict[str, Any], first: date) -> Iterator[date]:
    bounds = recurrence.get("range") or {}
    kind = bounds.get("type")
    until = as_date(bounds.get("endDate")) if kind == "endDate" else None
    count = as_int(bounds.get("numberOfOccurrences"), 0) if kind == "numbered" else MAX_OCCURRENCES
    dates = _pattern_dates(recurrence.get("pattern") or {}, as_date(bounds.get("startDate")) or first)
    for day in itertools.islice(dates, min(count, MAX_OCCURRENCES)):
        if until is not None and day > until:
            return
        yield day


def _pattern_dates(pattern: dict[str, Any], start: date) -> Iterator[date]:
    interval = min(max(as_int(pattern.get("interval"), 1), 1), 99)
    steps = range(0, MAX_OCCURRENCES * interval, interval)
    kind = pattern.get("type")
    if kind == "daily":
        return (start + timedelta(days=n) for n in steps)
    if kind == "weekly":
        return _weekly(start, steps, pattern.get("daysOfWeek") or [])
    if kind == "absoluteMonthly":
        return _monthly(start, steps, as_int(pattern.get("dayOfMonth"), start.day))
    return iter([start])


def _weekly(start: date, weeks: range, names: list[Any]) -> Iterator[date]:
    offsets = sorted({_WEEKDAYS[str(n).lower()] for n in names if str(n).lower() in _WEEKDAYS})
    sunday = start - timedelta(days=(start.weekday() + 1) % 7)
    for week in weeks:
        for offset in offsets or [(start.weekday() + 1) % 7]:
            day = sunday + timedelta(weeks=week, days=offset)
            if day >= start:
                yield day


def _monthly(start: date, months: range, day_of_month: int) -> Iterator[date]:
    for step in months:
        year, month = divmod(start.month - 1 + step, 12)
        try:
            day = date(start.year + year, month + 1, day_of_month)
        except ValueError:  # no such day in that month
            continue
        if day >= start:
            yield day


def occurrence_of(master: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
    occurrence = copy.deepcopy(master)
    zone = master["start"].get("timeZone")
    occurrence.update(
        id=f"{master['id']}_{start:%Y%m%d}",
        type="occurrence",
        seriesMasterId=master["id"],
        recurrence=None,
        start={"dateTime": fmt_local(start), "timeZone": zone},
        end={"dateTime": fmt_local(end), "timeZone": zone},
    )
    return occurrence


def view_rows(item: Item, window: Window) -> list[tuple[datetime, Row]]:
    """calendarView rows of an event: itself, or its occurrences in ``window``."""
    spans = list(event_spans(item.data, window))
    if not isinstance(item.data.get("recurrence"), dict):
        return [(start, ("calendar", item.id)) for start, _ in spans]
    master = raw_resource(item)
    return [(start, ("calendar", occurrence_of(master, start, end))) for start, end in spans]
