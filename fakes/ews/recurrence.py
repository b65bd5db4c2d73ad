"""Calendar recurrence: EWS ``t:Recurrence`` <-> Graph ``patternedRecurrence``.

Range dates are written with a zone suffix (``2025-03-03Z``) as Exchange does, which exchangelib
reads back as dates.

All six EWS patterns (daily, weekly, absolute/relative monthly and yearly) and the three ranges
(NoEndRecurrence, EndDateRecurrence, NumberedRecurrence) are converted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element

from fakes.ews.soap import EwsError, el, local, sub, t, text_of

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# Graph pattern type -> (EWS element, its children in schema order)
PATTERNS = {
    "daily": ("DailyRecurrence", ("Interval",)),
    "weekly": ("WeeklyRecurrence", ("Interval", "DaysOfWeek", "FirstDayOfWeek")),
    "absoluteMonthly": ("AbsoluteMonthlyRecurrence", ("Interval", "DayOfMonth")),
    "relativeMonthly": ("RelativeMonthlyRecurrence", ("Interval", "DaysOfWeek", "DayOfWeekIndex")),
    "absoluteYearly": ("AbsoluteYearlyRecurrence", ("DayOfMonth", "Month")),
    "relativeYearly": ("RelativeYearlyRecurrence", ("DaysOfWeek", "DayOfWeekIndex", "Month")),
}
RANGES = {
    "noEnd": ("NoEndRecurrence", ("StartDate",)),
    "endDate": ("EndDateRecurrence", ("StartDate", "EndDate")),
    "numbered": ("NumberedRecurrence", ("StartDate", "NumberOfOccurrences")),
}
_PATTERN_BY_TAG = {tag: name for name, (tag, _) in PATTERNS.items()}
_RANGE_BY_TAG = {tag: name for name, (tag, _) in RANGES.items()}


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


# EWS child element -> (Graph key, EWS text -> Graph value, Graph value -> EWS text)
_PARTS: dict[str, tuple[str, Callable[[str], Any], Callable[[Any], str]]] = {
    "Interval": ("interval", int, str),
    "DaysOfWeek": (
        "daysOfWeek",
        lambda text: [_lower_first(day) for day in text.split()],
        lambda days: " ".join(_upper_first(day) for day in days),
    ),
    "FirstDayOfWeek": ("firstDayOfWeek", _lower_first, _upper_first),
    "DayOfMonth": ("dayOfMonth", int, str),
    "DayOfWeekIndex": ("index", _lower_first, _upper_first),
    "Month": ("month", lambda text: MONTHS.index(text) + 1, lambda month: MONTHS[int(month) - 1]),
    "StartDate": ("startDate", lambda text: text[:10], lambda date: f"{date}Z"),
    "EndDate": ("endDate", lambda text: text[:10], lambda date: f"{date}Z"),
    "NumberOfOccurrences": ("numberOfOccurrences", int, str),
}


def _read_parts(node: Element, into: dict[str, Any]) -> dict[str, Any]:
    for child in node:
        if local(child.tag) in _PARTS:
            key, parse, _ = _PARTS[local(child.tag)]
            into[key] = parse(text_of(child))
    return into


def _write_parts(parent: Element, tag: str, names: tuple[str, ...], values: dict[str, Any]) -> None:
    node = sub(parent, t(tag))
    for name in names:
        key, _, render = _PARTS[name]
        sub(node, t(name), render(values[key]))


def read_recurrence(elem: Element) -> dict[str, Any]:
    """An EWS ``t:Recurrence`` as a Graph patternedRecurrence."""
    pattern_elem = next((c for c in elem if local(c.tag) in _PATTERN_BY_TAG), None)
    range_elem = next((c for c in elem if local(c.tag) in _RANGE_BY_TAG), None)
    if pattern_elem is None or range_elem is None:
        raise EwsError("ErrorCalendarInvalidRecurrence", "The recurrence pattern or range is not supported.")
    pattern = {
        "type": _PATTERN_BY_TAG[local(pattern_elem.tag)],
        "interval": 1,
        "month": 0,
        "dayOfMonth": 0,
        "daysOfWeek": [],
        "firstDayOfWeek": "sunday",
        "index": "first",
    }
    window = {
        "type": _RANGE_BY_TAG[local(range_elem.tag)],
        "startDate": "0001-01-01",
        "endDate": "0001-01-01",
        "recurrenceTimeZone": "UTC",
        "numberOfOccurrences": 0,
    }
    return {"pattern": _read_parts(pattern_elem, pattern), "range": _read_parts(range_elem, window)}


def write_recurrence(tag: str, value: Any) -> Element:
    """A Graph patternedRecurrence as an EWS ``t:Recurrence``."""
    node = el(t(tag))
    pattern, window = value["pattern"], value["range"]
    _write_parts(node, *PATTERNS[pattern["type"]], pattern)
    _write_parts(node, *RANGES[window["type"]], window)
    return node
