"""Where a series' occurrences fall, and how a series changed on both sides is merged."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from framework.errors import RecordRejected
from framework.model import Event, Occurrence
from framework.recurrence import instance_index, is_occurrence, merge_series, occurrence_starts

HOUR = timedelta(hours=1)
# Monday 1 March 2027, 09:00 in Berlin (08:00 UTC); the clocks go forward on 28 March
FIRST = datetime(2027, 3, 1, 8, tzinfo=UTC)
WEEKLY = Event("Team sync", FIRST, FIRST + HOUR, recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=6", timezone="Europe/Berlin")


def test_a_series_keeps_its_wall_clock_time_across_daylight_saving() -> None:
    starts = list(occurrence_starts(WEEKLY))
    assert [s.hour for s in starts] == [8, 8, 8, 8, 7, 7]  # 09:00 in Berlin throughout
    assert instance_index(WEEKLY, starts[4]) == 5
    assert not is_occurrence(WEEKLY, starts[4] + HOUR)


def test_until_is_an_inclusive_date_and_all_day_series_keep_midnights() -> None:
    until = dataclasses.replace(WEEKLY, recurrence="FREQ=WEEKLY;BYDAY=MO;UNTIL=20270315")
    assert len(list(occurrence_starts(until))) == 3
    midnight = datetime(2027, 3, 1, tzinfo=UTC)
    days = Event("Fair", midnight, midnight + timedelta(days=1), all_day=True, recurrence="FREQ=DAILY;COUNT=3")
    assert [s.hour for s in occurrence_starts(days)] == [0, 0, 0]


def test_a_rule_that_is_no_rrule_is_rejected() -> None:
    with pytest.raises(RecordRejected):
        list(occurrence_starts(dataclasses.replace(WEEKLY, recurrence="every monday")))


def _moved(series: Event, number: int, hours: int, subject: str = "") -> Occurrence:
    original = list(occurrence_starts(series))[number]
    start = original + hours * HOUR
    return Occurrence(original, start, start + HOUR, subject or series.subject)


def test_a_series_changed_on_both_sides_keeps_every_exception_and_the_winner_decides_a_shared_one() -> None:
    starts = list(occurrence_starts(WEEKLY))
    crm = dataclasses.replace(
        WEEKLY, exceptions=(_moved(WEEKLY, 1, 2), _moved(WEEKLY, 3, 1, "CRM")), cancelled=(starts[5],)
    )
    outlook = dataclasses.replace(WEEKLY, subject="Team sync (EMEA)", exceptions=(_moved(WEEKLY, 3, 3, "Outlook"),))
    outlook = dataclasses.replace(outlook, cancelled=(starts[2],))

    merged = merge_series(outlook, crm)

    assert merged.subject == "Team sync (EMEA)"
    assert [o.original_start for o in merged.exceptions] == [starts[1], starts[3]]
    assert merged.exceptions[1].subject == "Outlook"  # both changed it: the winner's stands
    assert merged.cancelled == (starts[2], starts[5])


def test_a_loser_with_another_pattern_adds_nothing() -> None:
    tuesdays = dataclasses.replace(WEEKLY, recurrence="FREQ=WEEKLY;BYDAY=TU;COUNT=6", exceptions=())
    crm = dataclasses.replace(WEEKLY, exceptions=(_moved(WEEKLY, 1, 2),))
    assert merge_series(tuesdays, crm) == tuesdays
