"""Steps of features/recurring_series.feature: series made and edited in Outlook (over the org's
own protocol, Graph or EWS) and in the CRM, and what each side shows afterwards."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from pytest_bdd import given, parsers, then, when
from series_support import ORIGINAL_START, SERIES_ZONE, CrmCalendar, Series, calendar

from fakes.harness import ADMIN, World

WEEKLY_COUNT = 10


@dataclass
class Made:
    """The series a scenario made in Outlook, by subject, and their ids there."""

    series: dict[str, Series] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def original(self, subject: str, number: int) -> datetime:
        """The start the rule gives occurrence ``number`` (1-based), in UTC."""
        return _starts(self.series[subject])[number - 1]

    def local_day(self, subject: str, number: int) -> date:
        series = self.series[subject]
        return self.original(subject, number).astimezone(ZoneInfo(series.zone)).date()


# -- where occurrences fall, worked out here from the rule (never by the product) --------------


def _starts(series: Series) -> list[datetime]:
    zone = ZoneInfo(series.zone)
    wall = series.first.astimezone(zone).replace(tzinfo=None)
    return [moment.replace(tzinfo=zone).astimezone(UTC) for moment in rrulestr(series.rule, dtstart=wall)]


def _next_monday(after: date) -> date:
    return after + timedelta(days=7 - after.weekday())


def _next_dst_change(zone: ZoneInfo, after: date) -> date:
    day = after
    while zone.utcoffset(datetime.combine(day, time(12))) == zone.utcoffset(datetime.combine(after, time(12))):
        day += timedelta(days=1)
    return day


def _at(day: date, clock: str, zone: str) -> datetime:
    hours, minutes = map(int, clock.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=ZoneInfo(zone))


# -- Outlook -------------------------------------------------------------------------------------
def _make(world: World, made: Made, user: str, series: Series) -> None:
    with calendar(world, user, world.exchange) as cal:
        made.ids[series.subject] = cal.create(series)
    made.series[series.subject] = series


WEEKLY_AT = (
    r'the calendar of "(?P<user>[\w.]+)" has a weekly series "(?P<subject>[^"]+)"'
    r' at (?P<clock>\d\d:\d\d) "(?P<zone>[\w/]+)"'
)


@given(parsers.re(WEEKLY_AT + r"(?P<dst> across a daylight saving change)?$"))
def weekly_series(world: World, made: Made, user: str, subject: str, clock: str, zone: str, dst: str | None) -> None:
    today = datetime.now(UTC).date()
    first = _next_monday(today)
    if dst:  # four weeks before the clocks change, so that the ten weeks cross it
        first = _next_monday(_next_dst_change(ZoneInfo(zone), today) - timedelta(days=35))
        first = max(first, _next_monday(today))
    rule = f"FREQ=WEEKLY;BYDAY=MO;COUNT={WEEKLY_COUNT}"
    _make(world, made, user, Series(subject, _at(first, clock, zone), timedelta(hours=1), rule, zone))


@given(parsers.parse('the calendar of "{user}" has an all-day daily series "{subject}" of {days:d} days'))
def all_day_series(world: World, made: Made, user: str, subject: str, days: int) -> None:
    first = datetime.combine(datetime.now(UTC).date() + timedelta(days=10), time(0), tzinfo=UTC)
    series = Series(subject, first, timedelta(days=1), f"FREQ=DAILY;COUNT={days}", all_day=True)
    _make(world, made, user, series)


@given(parsers.parse('"{user}" moves occurrence {number:d} of "{subject}" to {clock} in Outlook'))
@when(parsers.parse('"{user}" moves occurrence {number:d} of "{subject}" to {clock} in Outlook'))
def outlook_moves(world: World, made: Made, user: str, number: int, subject: str, clock: str) -> None:
    series = made.series[subject]
    original = made.original(subject, number)
    start = _at(original.astimezone(ZoneInfo(series.zone)).date(), clock, series.zone)
    with calendar(world, user, world.exchange) as cal:
        cal.change(made.ids[subject], original, start=start, end=start + series.length)


@when(parsers.parse('"{user}" cancels occurrence {number:d} of "{subject}" in Outlook'))
def outlook_cancels(world: World, made: Made, user: str, number: int, subject: str) -> None:
    with calendar(world, user, world.exchange) as cal:
        cal.cancel(made.ids[subject], made.original(subject, number))


@when(parsers.parse('"{user}" deletes the series "{subject}" in Outlook'))
def outlook_deletes(world: World, made: Made, user: str, subject: str) -> None:
    with calendar(world, user, world.exchange) as cal:
        cal.delete(made.ids[subject])


@when(parsers.parse('"{user}" makes "{subject}" repeat on Tuesdays in Outlook'))
def outlook_new_pattern(world: World, made: Made, user: str, subject: str) -> None:
    old = made.series[subject]
    first = old.first + timedelta(days=1)
    series = Series(subject, first, old.length, f"FREQ=WEEKLY;BYDAY=TU;COUNT={WEEKLY_COUNT}", old.zone)
    with calendar(world, user, world.exchange) as cal:
        cal.change_pattern(made.ids[subject], series)
    made.series[subject] = series


@then(parsers.parse('in Outlook occurrence {number:d} of "{subject}" is at {clock} "{zone}" in "{room}"'))
def outlook_occurrence_at(
    world: World, made: Made, number: int, subject: str, clock: str, zone: str, room: str
) -> None:
    original = made.original(subject, number)
    seen = _outlook_occurrence(world, made, subject, original)
    assert seen is not None, f"occurrence {number} of {subject!r} is missing in Outlook"
    assert seen.start.astimezone(ZoneInfo(zone)).strftime("%H:%M") == clock, seen
    assert seen.location == room, seen


@then(parsers.parse('in Outlook "{subject}" has no occurrence {number:d}'))
def outlook_no_occurrence(world: World, made: Made, subject: str, number: int) -> None:
    assert _outlook_occurrence(world, made, subject, made.original(subject, number)) is None


def _outlook_occurrences(world: World, made: Made, subject: str) -> list[Any]:
    with calendar(world, ADMIN, world.exchange) as cal:
        return cal.occurrences(made.ids[subject])


def _outlook_occurrence(world: World, made: Made, subject: str, original: datetime) -> Any:
    return next((s for s in _outlook_occurrences(world, made, subject) if s.original_start == original), None)


@then(parsers.parse('every occurrence of "{subject}" in Outlook is at {clock} "{zone}"'))
def outlook_wall_clock(world: World, made: Made, subject: str, clock: str, zone: str) -> None:
    key = next(k for k in made.ids if subject.startswith(k))  # the series may have been renamed since
    with calendar(world, ADMIN, world.exchange) as cal:
        seen = cal.occurrences(made.ids[key])
    offsets = {s.start.astimezone(ZoneInfo(zone)).utcoffset() for s in seen}
    assert len(seen) == WEEKLY_COUNT and len(offsets) == 2, seen  # ten weeks across the change
    assert {s.start.astimezone(ZoneInfo(zone)).strftime("%H:%M") for s in seen} == {clock}, seen
    assert {s.subject for s in seen} == {subject}, seen


@then(parsers.parse('the calendar of "{user}" has one series "{subject}"'))
def outlook_one_series(world: World, made: Made, user: str, subject: str) -> None:
    seen = _outlook_occurrences(world, made, subject)
    assert len(seen) == WEEKLY_COUNT - 1, seen  # one cancelled
    assert len({s.original_start for s in seen}) == len(seen)


# -- the CRM -------------------------------------------------------------------------------------
@then(parsers.parse('the CRM has one series "{subject}" repeating "{rule}" in "{zone}"'))
def crm_one_series(world: World, subject: str, rule: str, zone: str) -> None:
    master = CrmCalendar(world).series(subject)
    assert master["Recurring_Activity"]["RRULE"] == rule, master
    assert master.get(SERIES_ZONE) == zone, master


@then(parsers.parse('the CRM has one all-day series "{subject}" repeating "{rule}"'))
def crm_one_all_day_series(world: World, subject: str, rule: str) -> None:
    master = CrmCalendar(world).series(subject)
    assert master["All_day"] is True and master["Recurring_Activity"]["RRULE"] == rule, master


@then(parsers.re(r'the CRM series "(?P<subject>[^"]+)" leaves out occurrences? (?P<numbers>\d+(?: and \d+)*)'))
def crm_leaves_out(world: World, made: Made, subject: str, numbers: str) -> None:
    wanted = {made.local_day(subject, int(n)) for n in numbers.split(" and ")}
    assert CrmCalendar(world).left_out(CrmCalendar(world).series(subject)) == wanted


@then(parsers.parse('the CRM has occurrence {number:d} of "{subject}" at {clock} "{zone}", linked to its series'))
def crm_has_override(world: World, made: Made, number: int, subject: str, clock: str, zone: str) -> None:
    crm = CrmCalendar(world)
    (override,) = crm.overrides(crm.series(subject))
    assert datetime.fromisoformat(override[ORIGINAL_START]) == made.original(subject, number), override
    start = datetime.fromisoformat(override["Start_DateTime"]).astimezone(ZoneInfo(zone))
    assert start.strftime("%H:%M") == clock and not override.get("Recurring_Activity"), override


@then(parsers.parse('the CRM calendar shows "{subject}" {count:d} times, each once'))
def crm_calendar_shows(world: World, subject: str, count: int) -> None:
    """What a calendar drawing the CRM's records shows: the series' rule without its exception
    dates, and every other event of that title where it is."""
    crm = CrmCalendar(world)
    master = crm.series(subject)
    zone = ZoneInfo(master.get(SERIES_ZONE) or "UTC")
    first = datetime.fromisoformat(master["Start_DateTime"]).astimezone(zone)
    rule = rrulestr(master["Recurring_Activity"]["RRULE"], dtstart=first.replace(tzinfo=None))
    shown = [m.replace(tzinfo=zone) for m in rule if m.date() not in crm.left_out(master)]
    others = [r for r in crm.events(subject) if not r.get("Recurring_Activity")]
    shown += [datetime.fromisoformat(r["Start_DateTime"]) for r in others]
    assert len(shown) == count and len({s.astimezone(UTC) for s in shown}) == count, shown


@then(parsers.parse('the CRM series "{subject}" has no exceptions'))
def crm_no_exceptions(world: World, subject: str) -> None:
    crm = CrmCalendar(world)
    master = crm.series(subject)
    assert not crm.left_out(master) and not crm.overrides(master), master
    assert len(crm.events(subject)) == 1


@when(parsers.parse('a CRM user moves occurrence {number:d} of "{subject}" to {clock} in "{room}"'))
def crm_moves(world: World, made: Made, number: int, subject: str, clock: str, room: str) -> None:
    crm = CrmCalendar(world)
    series = made.series[subject]
    start = _at(made.local_day(subject, number), clock, series.zone)
    crm.change(crm.series(subject), made.original(subject, number), series.zone, start=start, location=room)


@when(parsers.parse('a CRM user cancels occurrence {number:d} of "{subject}"'))
def crm_cancels(world: World, made: Made, number: int, subject: str) -> None:
    crm = CrmCalendar(world)
    crm.leave_out(crm.series(subject), made.local_day(subject, number))


@when(parsers.parse('the CRM series "{subject}" is renamed "{new}"'))
def crm_series_renamed(world: World, subject: str, new: str) -> None:
    world.cloud.crm.update("Events", CrmCalendar(world).series(subject)["id"], {"Event_Title": new})


@then(parsers.parse('a second "exsync sync" writes nothing'))
def second_sync_writes_nothing(world: World) -> None:
    assert world.run(ADMIN, "exsync sync").exit_code == 0, world.last.output
    (run,) = world.state.runs(limit=1)
    for entity in run.summary["entities"].values():
        for side in ("crm", "exchange"):
            assert entity[side]["created"] == entity[side]["updated"] == entity[side]["deleted"] == 0, entity
