"""Recurring series over Microsoft Graph at the store: time zones, exceptions and cancelled
occurrences, read from and written to a series' instances, against the fake Graph."""

from __future__ import annotations

import ssl
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import test_graph_plugin
from test_graph_plugin import ADMIN_USER, ALICE, WINDOW, Fakes, engine_context, requests_of

from fakes.graph import CLIENT_ID
from framework.contracts import Create, Item, Update
from framework.engine import Engine
from framework.errors import TransientError
from framework.model import Event, Occurrence
from framework.recurrence import occurrence_starts
from framework.testing import MemoryWorld
from plugins.graph import mapping
from plugins.graph.client import BatchRequest, BatchResponse
from plugins.graph.store import EventsSide

ca, servers, fakes = test_graph_plugin.ca, test_graph_plugin.servers, test_graph_plugin.fakes  # the same fakes

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = timedelta(hours=1)
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def outlook(fakes: Fakes) -> httpx.Client:
    """Alice's own Graph client, editing her calendar as Outlook would."""
    token = fakes.authority.issue_token(CLIENT_ID, ALICE, scopes=("Calendars.ReadWrite",))
    return httpx.Client(
        base_url=f"{fakes.graph_url}/v1.0",
        headers={"Authorization": f"Bearer {token}"},
        verify=ssl.create_default_context(cafile=str(fakes.ca.bundle_path)),
    )


def events_side(fakes: Fakes) -> EventsSide:
    side = fakes.store(user=ALICE).side("events")
    assert isinstance(side, EventsSide)
    return side


def read_all(fakes: Fakes) -> list[Item]:
    return events_side(fakes).read(None, WINDOW).items


def local(day: datetime, hour: int, zone: ZoneInfo = BERLIN) -> datetime:
    """``hour`` o'clock on ``day``'s date in ``zone``, in UTC."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=zone).astimezone(UTC)


def wall(moment: datetime) -> str:
    return moment.astimezone(BERLIN).strftime("%H:%M")


# -- reading a series made in Outlook -------------------------------------------------------------
def test_a_series_made_in_outlook_reads_with_its_moved_and_cancelled_occurrences(fakes: Fakes) -> None:
    first = local(TODAY + timedelta(days=2), 9)
    day = first.astimezone(BERLIN).strftime("%A").lower()
    local_first = first.astimezone(BERLIN)
    series = {
        "subject": "Stand-up",
        "start": {"dateTime": local_first.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": (local_first + HOUR).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "W. Europe Standard Time"},
        "location": {"displayName": "Room 1"},
        "recurrence": {
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [day], "firstDayOfWeek": "sunday"},
            "range": {"type": "numbered", "startDate": local_first.date().isoformat(), "numberOfOccurrences": 6},
        },
    }
    window = {"startDateTime": first.isoformat(), "endDateTime": (first + timedelta(days=60)).isoformat()}
    with outlook(fakes) as graph:
        master = graph.post("/me/events", json=series).json()
        instances = graph.get(f"/me/events/{master['id']}/instances", params=window).json()["value"]
        moved_to = first + timedelta(days=8, hours=2)  # the second one: a day later, at 11:00
        moved = {
            "subject": "Stand-up (moved)",
            "start": {"dateTime": moved_to.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {"dateTime": (moved_to + HOUR).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        }
        graph.patch(f"/me/events/{instances[1]['id']}", json=moved).raise_for_status()
        graph.delete(f"/me/events/{instances[3]['id']}").raise_for_status()

    (item,) = read_all(fakes)
    second, fourth = first + timedelta(weeks=1), first + timedelta(weeks=3)
    assert item.id == master["id"]
    assert item.record.recurrence == f"FREQ=WEEKLY;BYDAY={day[:2].upper()};COUNT=6"
    assert item.record.timezone == "Europe/Berlin"
    assert item.record.start == first
    assert item.record.exceptions == (Occurrence(second, moved_to, moved_to + HOUR, "Stand-up (moved)", "Room 1", ""),)
    assert item.record.cancelled == (fourth,)


# -- writing a series and reading it back ---------------------------------------------------------
RULES = [
    "FREQ=DAILY;INTERVAL=2;COUNT=8",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;UNTIL={until}",
    "FREQ=WEEKLY;BYDAY=TU",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU;COUNT=9;WKST=SU",
    "FREQ=MONTHLY;BYMONTHDAY=12;COUNT=6",
    "FREQ=MONTHLY;BYDAY=-1FR",
    "FREQ=MONTHLY;INTERVAL=2;BYDAY=2WE;UNTIL={until}",
    "FREQ=YEARLY;BYMONTH={month};BYMONTHDAY=20",
    "FREQ=YEARLY;BYDAY=1SU;BYMONTH={month};COUNT=3",
]


def changed_series(rule: str, start: datetime, **fields: Any) -> Event:
    """A Berlin series with its second occurrence moved and changed, its third cancelled, and
    an exception and a cancellation on starts that are no occurrence of it."""
    series = Event(
        subject="Review", start=start, end=start + HOUR, location="Room 1", body="Agenda",
        recurrence=rule, timezone="Europe/Berlin", **fields,
    )  # fmt: skip
    starts = list(occurrence_starts(series))
    moved = Occurrence(starts[1], starts[1] + 2 * HOUR, starts[1] + 3 * HOUR, "Review (moved)", "Room 2", "Moved")
    stray = Occurrence(start + timedelta(minutes=7), start, start + HOUR, "Not an occurrence", "", "")
    return replace(series, exceptions=(moved, stray), cancelled=(starts[2], start + timedelta(minutes=9)))


@pytest.mark.parametrize("rule", RULES)
def test_a_series_written_with_exceptions_reads_back_equal(fakes: Fakes, rule: str) -> None:
    # a yearly series begins in the window's first month, so that three occurrences are read
    first = (TODAY - timedelta(days=200 if "YEARLY" in rule else 20)).replace(day=1 if "YEARLY" in rule else 13)
    start = local(first, 9)
    rule = rule.format(until=(TODAY + timedelta(days=300)).strftime("%Y%m%d"), month=first.month)
    record = changed_series(rule, start)
    side = events_side(fakes)

    (result,) = side.write([Create(record, "")])
    echo = side.echo(record)
    (item,) = read_all(fakes)

    assert result.ok, result.error
    assert item.record == echo
    starts = list(occurrence_starts(record))
    assert item.record.cancelled == (starts[2],)  # the one on no occurrence is dropped
    assert [o.subject for o in item.record.exceptions] == ["Review (moved)"]
    assert item.record.exceptions[0].start == starts[1] + 2 * HOUR
    assert item.record.timezone == "Europe/Berlin"
    assert mapping.rrule_from_graph(mapping.rrule_to_graph(rule, start, "Europe/Berlin")) == rule


def test_a_weekly_berlin_series_keeps_nine_oclock_across_both_dst_changes(fakes: Fakes) -> None:
    year = TODAY.year + 1
    start = datetime(year, 3, 1, 9, tzinfo=BERLIN).astimezone(UTC)
    record = Event(subject="Jour fixe", start=start, end=start + HOUR, recurrence="FREQ=WEEKLY;COUNT=40")
    record = replace(record, timezone="Europe/Berlin")
    side = events_side(fakes)
    (result,) = side.write([Create(record, "")])
    window = {"startDateTime": f"{year}-02-01T00:00:00Z", "endDateTime": f"{year}-12-31T00:00:00Z"}
    with outlook(fakes) as graph:
        listed = graph.get(
            f"/me/events/{result.id}/instances",
            params={**window, "$top": "100"},
            headers={"Prefer": 'outlook.timezone="UTC"'},
        ).json()["value"]

    starts = [mapping.parse_graph_datetime(i["start"]) for i in listed]
    assert len(starts) == 40
    assert {wall(s) for s in starts if s is not None} == {"09:00"}
    assert {s.strftime("%H:%M") for s in starts if s is not None} == {"08:00", "07:00"}  # winter, summer
    assert starts == list(occurrence_starts(record))
    (item,) = read_all(fakes)
    assert item.record == side.echo(record) and item.record.cancelled == ()


def test_an_all_day_series_stays_all_day_with_its_exceptions(fakes: Fakes) -> None:
    start = TODAY + timedelta(days=3)
    series = Event(subject="Holiday", start=start, end=start + timedelta(days=1), all_day=True,
                   recurrence="FREQ=WEEKLY;COUNT=5", timezone="Europe/Berlin")  # fmt: skip
    starts = list(occurrence_starts(series))
    moved = Occurrence(starts[1], starts[1] + timedelta(days=1), starts[1] + timedelta(days=2), "Holiday", "", "")
    record = replace(series, exceptions=(moved,), cancelled=(starts[3],))
    side = events_side(fakes)

    side.write([Create(record, "")])
    (item,) = read_all(fakes)

    assert item.record == side.echo(record)
    assert item.record.all_day and item.record.timezone == ""
    assert item.record.exceptions == (moved,) and item.record.cancelled == (starts[3],)


def test_an_all_day_series_made_in_outlook_in_berlin_reads_its_cancelled_dates(fakes: Fakes) -> None:
    day = (TODAY + timedelta(days=3)).date()
    series = {
        "subject": "Holiday",
        "isAllDay": True,
        "start": {"dateTime": f"{day}T00:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": f"{day + timedelta(days=1)}T00:00:00", "timeZone": "W. Europe Standard Time"},
        "recurrence": {
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": day.isoformat(), "numberOfOccurrences": 4},
        },
    }
    window = {"startDateTime": f"{day}T00:00:00Z", "endDateTime": f"{day + timedelta(days=9)}T00:00:00Z"}
    with outlook(fakes) as graph:
        master = graph.post("/me/events", json=series).json()
        instances = graph.get(f"/me/events/{master['id']}/instances", params=window).json()["value"]
        graph.delete(f"/me/events/{instances[2]['id']}").raise_for_status()

    (item,) = read_all(fakes)
    third = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=2)
    assert item.record.all_day and item.record.cancelled == (third,) and item.record.exceptions == ()


def test_a_pattern_starts_on_the_local_date_of_its_zone() -> None:
    start = datetime(2030, 1, 1, 23, 30, tzinfo=UTC)  # already Wednesday 2 January in Berlin
    recurrence = mapping.rrule_to_graph("FREQ=WEEKLY;COUNT=3", start, "Europe/Berlin")
    assert recurrence["pattern"]["daysOfWeek"] == ["wednesday"]
    assert recurrence["range"] == {
        "startDate": "2030-01-02",
        "recurrenceTimeZone": "Europe/Berlin",
        "type": "numbered",
        "numberOfOccurrences": 3,
    }
    payload = mapping.event_to_graph(
        Event(start=start, end=start + HOUR, recurrence="FREQ=WEEKLY;COUNT=3", timezone="Europe/Berlin"), create=True
    )
    assert payload["start"] == {"dateTime": "2030-01-02T00:30:00.0000000", "timeZone": "Europe/Berlin"}


def test_an_exception_made_in_outlook_later_is_read_in_the_next_round(fakes: Fakes) -> None:
    start = local(TODAY + timedelta(days=1), 9)
    side = events_side(fakes)
    (created,) = side.write([Create(Event(subject="1:1", start=start, end=start + HOUR,
                                          recurrence="FREQ=DAILY;COUNT=5", timezone="Europe/Berlin"), "")])  # fmt: skip
    cursor = side.read(None, WINDOW).cursor
    window = {"startDateTime": start.isoformat(), "endDateTime": (start + timedelta(days=9)).isoformat()}
    with outlook(fakes) as graph:
        instances = graph.get(f"/me/events/{created.id}/instances", params=window).json()["value"]
        graph.patch(f"/me/events/{instances[1]['id']}", json={"subject": "1:1 (remote)"}).raise_for_status()
        graph.delete(f"/me/events/{instances[2]['id']}").raise_for_status()

    (item,) = side.read(cursor, WINDOW).items
    second, third = start + timedelta(days=1), start + timedelta(days=2)
    assert item.id == created.id
    assert item.record.exceptions == (Occurrence(second, second, second + HOUR, "1:1 (remote)", "", ""),)
    assert item.record.cancelled == (third,)


# -- updating a series ----------------------------------------------------------------------------
def test_a_pattern_change_drops_the_exceptions_and_cancellations(fakes: Fakes) -> None:
    start = local(TODAY + timedelta(days=1), 9)
    record = changed_series("FREQ=WEEKLY;COUNT=10", start)
    side = events_side(fakes)
    (created,) = side.write([Create(record, "")])
    (item,) = side.read(None, WINDOW).items
    assert item.record.exceptions and item.record.cancelled

    changed = replace(record, recurrence="FREQ=WEEKLY;COUNT=8", subject="Review (new)")
    (updated,) = side.write([Update(created.id or "", changed, "")])
    echo = side.echo(changed)
    (item,) = read_all(fakes)

    assert updated.ok, updated.error
    assert item.record.recurrence == "FREQ=WEEKLY;BYDAY={};COUNT=8".format(start.strftime("%a")[:2].upper())
    assert item.record.exceptions == () and item.record.cancelled == ()
    assert item.record == echo


def test_an_unchanged_pattern_reconciles_the_occurrences(fakes: Fakes) -> None:
    start = local(TODAY + timedelta(days=1), 9)
    record = changed_series("FREQ=WEEKLY;COUNT=10", start)
    side = events_side(fakes)
    (created,) = side.write([Create(record, "")])
    side.read(None, WINDOW)
    starts = list(occurrence_starts(record))
    other = Occurrence(starts[5], starts[5], starts[5] + 2 * HOUR, "Long review", "Room 1", "Agenda")
    # the moved occurrence is back in the series, another one changed; one more cancelled, and
    # the one cancelled before is not in the record any more: it cannot be restored
    changed = replace(record, subject="Review (renamed)", exceptions=(other,), cancelled=(starts[7],))
    (updated,) = side.write([Update(created.id or "", changed, "")])
    echo = side.echo(changed)
    (item,) = read_all(fakes)

    assert updated.ok, updated.error
    assert item.record == echo
    assert item.record.subject == "Review (renamed)"
    assert item.record.exceptions == (other,)
    assert item.record.cancelled == (starts[2], starts[7])


def test_a_longer_series_keeps_its_exceptions(fakes: Fakes) -> None:
    """Duration is not the pattern: when Graph drops the exceptions with the master's new end,
    they are written again (and the cancellation the record no longer has is gone with them)."""
    start = local(TODAY + timedelta(days=1), 9)
    record = changed_series("FREQ=WEEKLY;COUNT=10", start)
    side = events_side(fakes)
    (created,) = side.write([Create(record, "")])
    side.read(None, WINDOW)
    starts = list(occurrence_starts(record))
    longer = replace(record, end=start + 2 * HOUR, cancelled=(starts[7],))
    (updated,) = side.write([Update(created.id or "", longer, "")])
    echo = side.echo(longer)
    (item,) = read_all(fakes)

    assert updated.ok, updated.error
    assert item.record == echo
    assert [o.subject for o in item.record.exceptions] == ["Review (moved)"]
    assert item.record.cancelled == (starts[7],)


def test_occurrences_not_written_fail_an_update_but_never_a_new_series(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new series that was created stays created (writing it again would make a twin);
    an update whose occurrences failed is written again by the next run."""
    start = local(TODAY + timedelta(days=1), 9)
    record = changed_series("FREQ=WEEKLY;COUNT=10", start)
    side = events_side(fakes)
    batch = side.client.batch

    def throttled(requests: list[BatchRequest]) -> list[BatchResponse]:
        if any(r.method in ("PATCH", "DELETE") and "_" in r.url.rsplit("/", 1)[-1] for r in requests):
            raise TransientError("Microsoft Graph is throttling.")
        return batch(requests)

    monkeypatch.setattr(side.client, "batch", throttled)
    (created,) = side.write([Create(record, "")])
    echo = side.echo(record)
    changed = replace(record, subject="Review (renamed)")
    (updated,) = side.write([Update(created.id or "", changed, "")])
    monkeypatch.setattr(side.client, "batch", batch)
    (item,) = read_all(fakes)

    assert created.ok and echo.exceptions == () and echo.cancelled == ()
    assert isinstance(updated.error, TransientError)
    assert item.record.subject == "Review (renamed)" and item.record.exceptions == ()
    (again,) = side.write([Update(created.id or "", changed, "")])
    assert again.ok and read_all(fakes)[0].record == side.echo(changed)


# -- how many requests ----------------------------------------------------------------------------
def test_reading_many_series_costs_few_requests(fakes: Fakes) -> None:
    side = events_side(fakes)
    start = local(TODAY + timedelta(days=1), 9)
    records = [changed_series("FREQ=DAILY;COUNT=5", start + timedelta(minutes=n)) for n in range(25)]
    writes: dict[str, Any] = {}
    sent = requests_of(fakes, lambda: writes.setdefault("results", side.write([Create(r, "") for r in records[:20]])))
    read = requests_of(fakes, lambda: read_all(fakes))

    assert all(r.ok for r in writes["results"])
    # a $batch of the series, one of their instances, two of 40 occurrence writes
    assert sent == 1 + 1 + 2
    # one delta page, then per 20 series one $batch of masters and one of instances
    assert read == 1 + 1 + 1
    for record in records[20:]:
        side.write([Create(record, "")])
    assert requests_of(fakes, lambda: read_all(fakes)) == 1 + 2 + 2


# -- through the engine ---------------------------------------------------------------------------
def test_exceptions_travel_both_ways_and_settle(fakes: Fakes, tmp_path: Path) -> None:
    world = MemoryWorld([])
    context = engine_context(fakes, tmp_path, world)
    record = changed_series("FREQ=WEEKLY;COUNT=8", local(TODAY + timedelta(days=1), 9))
    crm = world.side("crm", "u1", "events")
    crm.put(record)
    engine = Engine(context, sleep=lambda _s: None)

    (first,) = engine.run([ADMIN_USER], ["events"])
    assert first.outcome == "ok", first.as_dict()
    (item,) = read_all(fakes)
    starts = list(occurrence_starts(record))
    assert [o.original_start for o in item.record.exceptions] == [starts[1]]
    assert item.record.cancelled == (starts[2],)

    window = {"startDateTime": starts[0].isoformat(), "endDateTime": (starts[-1] + HOUR).isoformat()}
    with outlook(fakes) as graph:  # in Outlook: one more occurrence renamed, one more cancelled
        instances = graph.get(f"/users/{ALICE}/events/{item.id}/instances", params=window).json()["value"]
        by_start = {mapping.parse_graph_datetime(i["originalStart"]): i["id"] for i in instances}
        graph.patch(f"/me/events/{by_start[starts[4]]}", json={"subject": "Review (short)"}).raise_for_status()
        graph.delete(f"/me/events/{by_start[starts[6]]}").raise_for_status()
    (second,) = engine.run([ADMIN_USER], ["events"])
    assert second.outcome == "ok", second.as_dict()
    (held,) = [i.record for i in crm.read(None, WINDOW).items]
    assert held.cancelled == (starts[2], starts[6])
    assert [(o.original_start, o.subject) for o in held.exceptions] == [
        (starts[1], "Review (moved)"),
        (starts[4], "Review (short)"),
    ]

    (third,) = engine.run([ADMIN_USER], ["events"])
    counts = [vars(s) for e in third.entities.values() for s in e.sides.values()]
    assert all(not any(c.values()) for c in counts), third.as_dict()
