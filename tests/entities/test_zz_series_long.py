"""The series property, over the real protocols: a random series (every pattern type, in a time
zone with daylight saving or not) made in Outlook, with random occurrences moved, renamed,
relocated or cancelled, some in Outlook and some in the CRM, converges after one run: Outlook's
occurrences and the CRM's series, exception dates and linked events all say the same, and a
second run writes nothing.

What each side shows is read through its own protocol (Graph's /instances or EWS's CalendarView,
the CRM's records); where occurrences fall is worked out from the rule with dateutil, never by
the product.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from entity_support import counts, make_org, wrote_nothing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from series_support import ORIGINAL_START, SERIES_ZONE, CrmCalendar, Seen, Series, calendar

from fakes.harness import ADMIN, World

DAY_NAMES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC")
LENGTH = timedelta(hours=1)
PATTERN_KINDS = ("daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly")


@st.composite
def rules(draw: st.DrawFn) -> str:
    """An RRULE of every pattern type Exchange has, with an end, spanning well under two years."""
    kind = draw(
        st.sampled_from(["daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"])
    )
    index = draw(st.sampled_from(["1", "2", "3", "4", "-1"]))
    day = draw(st.sampled_from(DAY_NAMES))
    count = draw(st.integers(3, 6))
    if kind == "daily":
        return f"FREQ=DAILY;INTERVAL={draw(st.integers(1, 3))};COUNT={count}"
    if kind == "weekly":
        days = draw(st.lists(st.sampled_from(DAY_NAMES), min_size=1, max_size=3, unique=True))
        ordered = ",".join(d for d in DAY_NAMES if d in days)
        return f"FREQ=WEEKLY;INTERVAL={draw(st.integers(1, 2))};BYDAY={ordered};COUNT={count}"
    if kind == "absoluteMonthly":
        return f"FREQ=MONTHLY;BYMONTHDAY={draw(st.integers(1, 28))};COUNT={count}"
    if kind == "relativeMonthly":
        return f"FREQ=MONTHLY;BYDAY={index}{day};COUNT={count}"
    month = draw(st.integers(1, 12))
    if kind == "absoluteYearly":
        return f"FREQ=YEARLY;BYMONTH={month};BYMONTHDAY={draw(st.integers(1, 28))};COUNT=2"
    return f"FREQ=YEARLY;BYMONTH={month};BYDAY={index}{day};COUNT=2"


@dataclass(frozen=True)
class Edit:
    """What a user does to occurrence ``number`` (0-based), and where."""

    number: int
    side: str  # "crm" or "exchange"
    action: str  # "move", "rename", "relocate" or "cancel"


edits = st.lists(
    st.builds(
        Edit,
        st.integers(0, 5),
        st.sampled_from(["crm", "exchange"]),
        st.sampled_from(["move", "rename", "relocate", "cancel"]),
    ),
    max_size=4,
    unique_by=lambda e: e.number,
)


def _starts(series: Series) -> list[datetime]:
    zone = ZoneInfo(series.zone)
    wall = series.first.astimezone(zone).replace(tzinfo=None)
    return [m.replace(tzinfo=zone).astimezone(UTC) for m in rrulestr(series.rule, dtstart=wall)]


def _series(rule: str, zone: str, hour: int, days_ahead: int) -> Series:
    """A series whose first occurrence is the rule's first date on or after ``days_ahead`` from now."""
    base = datetime.combine(datetime.now(UTC).date() + timedelta(days=days_ahead), time(hour), tzinfo=ZoneInfo(zone))
    draft = Series("Review", base, LENGTH, rule, zone, location="Room 1")
    first = _starts(draft)[0]
    return Series("Review", first.astimezone(ZoneInfo(zone)), LENGTH, rule, zone, location="Room 1")


def _changes(edit: Edit, original: datetime) -> dict[str, Any]:
    if edit.action == "move":
        return {"start": original + timedelta(hours=2), "end": original + timedelta(hours=2) + LENGTH}
    if edit.action == "rename":
        return {"subject": f"Review ({edit.number + 1})"}
    return {"location": f"Room {edit.number + 10}"}


def _expected(series: Series, plan: list[Edit]) -> list[Seen]:
    """Every occurrence as both sides should show it once the edits are carried."""
    by_number = {e.number: e for e in plan}
    seen = []
    for number, original in enumerate(_starts(series)):
        edit = by_number.get(number)
        if edit is not None and edit.action == "cancel":
            continue
        values = {"start": original, "end": original + LENGTH, "subject": series.subject, "location": series.location}
        values |= _changes(edit, original) if edit is not None else {}
        seen.append(Seen(original, values["start"], values["end"], values["subject"], values["location"]))
    return seen


def _crm_view(world: World, series: Series) -> list[Seen]:
    """The occurrences the CRM shows: the series' rule without its exception dates, and the
    events linked to it in their place."""
    crm = CrmCalendar(world)
    master = crm.series(series.subject)
    assert (master.get(SERIES_ZONE) or "UTC") == series.zone, master
    left_out = crm.left_out(master)
    zone = ZoneInfo(series.zone)
    start = datetime.fromisoformat(master["Start_DateTime"]).astimezone(UTC)
    assert start == _starts(series)[0], master
    seen = [
        Seen(original, original, original + LENGTH, master["Event_Title"], master.get("Venue") or "")
        for original in _starts(series)
        if original.astimezone(zone).date() not in left_out
    ]
    for override in crm.overrides(master):
        original = datetime.fromisoformat(override[ORIGINAL_START]).astimezone(UTC)
        assert original.astimezone(zone).date() in left_out, override
        seen.append(
            Seen(
                original,
                datetime.fromisoformat(override["Start_DateTime"]).astimezone(UTC),
                datetime.fromisoformat(override["End_DateTime"]).astimezone(UTC),
                override["Event_Title"],
                override.get("Venue") or "",
            )
        )
    return sorted(seen)


@pytest.mark.parametrize("exchange", ["ews", "graph"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rule=rules(),
    zone=st.sampled_from(ZONES),
    hour=st.integers(7, 17),
    days_ahead=st.integers(2, 40),
    plan=edits,
)
def test_random_series_with_exceptions_made_on_either_side_converge_after_one_run(
    world: World,
    tmp_path_factory: pytest.TempPathFactory,
    exchange: str,
    rule: str,
    zone: str,
    hour: int,
    days_ahead: int,
    plan: list[Edit],
) -> None:
    world = World(world.cloud, tmp_path_factory.mktemp("series"))  # a state of its own for each example
    org = make_org(world, exchange)
    org.only("events")
    series = _series(rule, zone, hour, days_ahead)
    starts = _starts(series)
    plan = [e for e in plan if e.number < len(starts)]
    with calendar(world, ADMIN, exchange) as outlook:
        series_id = outlook.create(series)
        assert counts(org.sync(), "events", "crm")["created"] == 1

        crm = CrmCalendar(world)
        for edit in plan:
            original = starts[edit.number]
            if edit.side == "exchange" and edit.action == "cancel":
                outlook.cancel(series_id, original)
            elif edit.side == "exchange":
                outlook.change(series_id, original, **_changes(edit, original))
            elif edit.action == "cancel":
                crm.leave_out(crm.series(series.subject), original.astimezone(ZoneInfo(zone)).date())
            else:
                crm.change(crm.series(series.subject), original, zone, **_changes(edit, original))

        org.sync()
        expected = _expected(series, plan)
        assert outlook.occurrences(series_id) == expected
        assert _crm_view(world, series) == expected
        assert wrote_nothing(org.sync())
