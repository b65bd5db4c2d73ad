"""The fake Graph expands every recurrencePattern and recurrenceRange type as Outlook places them."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import pytest

from fakes.graph.recurrence import occurrence_dates

START = date(2026, 1, 13)  # a Tuesday


def _dates(pattern: dict[str, Any], bounds: dict[str, Any] | None = None, count: int = 4) -> list[str]:
    recurrence = {"pattern": pattern, "range": bounds or {"type": "noEnd", "startDate": START.isoformat()}}
    return [d.isoformat() for d in itertools.islice(occurrence_dates(recurrence, START), count)]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"type": "daily", "interval": 3}, ["2026-01-13", "2026-01-16", "2026-01-19", "2026-01-22"]),
        (
            {"type": "weekly", "interval": 2, "daysOfWeek": ["monday", "thursday"], "firstDayOfWeek": "sunday"},
            ["2026-01-15", "2026-01-26", "2026-01-29", "2026-02-09"],
        ),
        (
            {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
            ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"],
        ),
        (
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"], "index": "second"},
            ["2026-01-13", "2026-02-10", "2026-03-10", "2026-04-14"],
        ),
        (
            {"type": "relativeMonthly", "interval": 2, "daysOfWeek": ["friday"], "index": "last"},
            ["2026-01-30", "2026-03-27", "2026-05-29", "2026-07-31"],
        ),
        (
            {
                "type": "relativeMonthly",
                "interval": 1,
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "index": "first",
            },
            ["2026-02-02", "2026-03-02", "2026-04-01", "2026-05-01"],
        ),
        (
            {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 29, "month": 2},
            ["2026-02-28", "2027-02-28", "2028-02-29", "2029-02-28"],
        ),
        (
            {"type": "relativeYearly", "interval": 1, "daysOfWeek": ["thursday"], "index": "fourth", "month": 11},
            ["2026-11-26", "2027-11-25", "2028-11-23", "2029-11-22"],
        ),
    ],
    ids=[
        "daily",
        "weekly",
        "absoluteMonthly",
        "relativeMonthly",
        "relativeMonthly-last",
        "relativeMonthly-weekdays",
        "absoluteYearly",
        "relativeYearly",
    ],
)
def test_every_pattern_type_expands_as_outlook_places_it(pattern: dict[str, Any], expected: list[str]) -> None:
    assert _dates(pattern) == expected


def test_weekly_weeks_begin_on_first_day_of_week() -> None:
    pattern = {"type": "weekly", "interval": 2, "daysOfWeek": ["sunday", "tuesday"]}
    sunday_weeks = _dates({**pattern, "firstDayOfWeek": "sunday"})
    monday_weeks = _dates({**pattern, "firstDayOfWeek": "monday"})

    assert sunday_weeks == ["2026-01-13", "2026-01-25", "2026-01-27", "2026-02-08"]
    assert monday_weeks == ["2026-01-13", "2026-01-18", "2026-01-27", "2026-02-01"]


def test_range_types_end_where_they_say() -> None:
    weekly = {"type": "weekly", "interval": 1, "daysOfWeek": ["tuesday"]}
    numbered = _dates(weekly, {"type": "numbered", "startDate": "2026-01-13", "numberOfOccurrences": 2}, count=10)
    until = _dates(weekly, {"type": "endDate", "startDate": "2026-01-13", "endDate": "2026-01-27"}, count=10)
    later_start = _dates(weekly, {"type": "noEnd", "startDate": "2026-02-01"}, count=1)

    assert numbered == ["2026-01-13", "2026-01-20"]
    assert until == ["2026-01-13", "2026-01-20", "2026-01-27"]
    assert later_start == ["2026-02-03"]
