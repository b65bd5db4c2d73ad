"""One mailbox over two protocols: a series' moved and cancelled occurrences made over EWS are
what Graph shows, and those made over Graph are what EWS shows, as on a real Exchange mailbox
reachable both ways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from exchangelib.errors import ErrorCalendarOccurrenceIsDeletedFromRecurrence
from series_support import EwsCalendar, GraphCalendar, Seen, Series, calendar

from fakes.harness import ADMIN, World

BERLIN = ZoneInfo("Europe/Berlin")


def _first_monday() -> datetime:
    """09:00 in Berlin on the Monday two weeks before next year's change to summer time, so that
    the series crosses it."""
    year = datetime.now(UTC).year + 1
    change = datetime(year, 3, 31, 9, tzinfo=BERLIN)
    change -= timedelta(days=(change.weekday() + 1) % 7)  # the last Sunday of March
    return change - timedelta(days=13)


def _series() -> Series:
    return Series(
        "Jour fixe",
        _first_monday(),
        timedelta(hours=1),
        "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6",
        zone="Europe/Berlin",
        location="Room 1",
    )


def _starts(series: Series) -> list[datetime]:
    """The original starts of the series' six occurrences (09:00 Berlin, across the change)."""
    return [(series.first + timedelta(weeks=k)).astimezone(UTC) for k in range(6)]


def _expected(series: Series, moved: datetime, cancelled: datetime) -> list[Seen]:
    seen = []
    for start in _starts(series):
        if start == cancelled:
            continue
        if start == moved:
            seen.append(Seen(start, start + timedelta(hours=2), start + timedelta(hours=4), "Moved", "Room 2"))
        else:
            seen.append(Seen(start, start, start + series.length, series.subject, series.location))
    return seen


def _edit(side: GraphCalendar | EwsCalendar, series_id: str, moved: datetime, cancelled: datetime) -> None:
    side.change(
        series_id,
        moved,
        start=moved + timedelta(hours=2),
        end=moved + timedelta(hours=4),
        subject="Moved",
        location="Room 2",
    )
    side.cancel(series_id, cancelled)


def test_occurrences_moved_and_cancelled_over_ews_are_exceptions_and_cancellations_over_graph(world: World) -> None:
    series = _series()
    starts = _starts(series)
    moved, cancelled = starts[1], starts[3]  # before and after the change to summer time
    with calendar(world, ADMIN, "graph") as graph, calendar(world, ADMIN, "ews") as ews:
        assert isinstance(graph, GraphCalendar) and isinstance(ews, EwsCalendar)
        series_id = graph.create(series)
        link = _delta(graph, "/me/calendarView/delta", _window(series))[1]
        _edit(ews, series_id, moved, cancelled)
        ews.change(series_id, moved, body="The agenda moves too")

        assert graph.occurrences(series_id) == _expected(series, moved, cancelled)
        instances = {i["originalStart"]: i for i in graph._instances(series_id)}
        exception = instances[moved.strftime("%Y-%m-%dT%H:%M:%SZ")]
        assert exception["type"] == "exception"
        assert exception["id"] == f"{series_id}_{moved.astimezone(BERLIN):%Y%m%d}"
        assert "The agenda moves too" in exception["body"]["content"]
        assert cancelled.strftime("%Y-%m-%dT%H:%M:%SZ") not in instances
        cancelled_id = f"{series_id}_{cancelled.astimezone(BERLIN):%Y%m%d}"
        assert graph.http.get(f"/me/events/{cancelled_id}").status_code == 404
        changes = {c["id"]: c for c in _delta(graph, link, None)[0]}
        assert changes[cancelled_id] == {"id": cancelled_id, "@removed": {"reason": "deleted"}}
        assert (changes[exception["id"]]["type"], changes[exception["id"]]["subject"]) == ("exception", "Moved")


def _window(series: Series) -> dict[str, str]:
    return {
        "startDateTime": (series.first - timedelta(days=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDateTime": (series.first + timedelta(weeks=7)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _delta(graph: GraphCalendar, url: str, params: dict[str, str] | None) -> tuple[list[dict[str, Any]], str]:
    """Every entry of one calendarView delta round from ``url``, and its deltaLink."""
    entries: list[dict[str, Any]] = []
    while True:
        page = graph.http.get(url, params=params)
        page.raise_for_status()
        entries += page.json()["value"]
        if "@odata.deltaLink" in page.json():
            return entries, str(page.json()["@odata.deltaLink"])
        url, params = page.json()["@odata.nextLink"], None


def test_occurrences_moved_and_cancelled_over_graph_are_modified_and_deleted_occurrences_over_ews(
    world: World,
) -> None:
    series = _series()
    starts = _starts(series)
    moved, cancelled = starts[4], starts[0]
    with calendar(world, ADMIN, "graph") as graph, calendar(world, ADMIN, "ews") as ews:
        assert isinstance(graph, GraphCalendar) and isinstance(ews, EwsCalendar)
        series_id = graph.create(series)
        folder = ews.account.calendar
        list(folder.sync_items())  # to where the calendar is now
        _edit(graph, series_id, moved, cancelled)
        synced = [
            (kind, getattr(item, "id", None)) for kind, item in folder.sync_items(sync_state=folder.item_sync_state)
        ]
        assert synced == [("update", series_id)]  # an occurrence's change is its master's

        assert ews.occurrences(series_id) == _expected(series, moved, cancelled)
        master = ews.account.calendar.get(id=series_id)
        ((changed),) = master.modified_occurrences
        assert (changed.start, changed.end, changed.original_start) == (
            moved + timedelta(hours=2),
            moved + timedelta(hours=4),
            moved,
        )
        assert [d.start for d in master.deleted_occurrences] == [cancelled]
        exception = master.occurrence(index=5)
        exception.refresh()
        assert (exception.type, exception.subject, exception.location) == ("Exception", "Moved", "Room 2")
        with pytest.raises(ErrorCalendarOccurrenceIsDeletedFromRecurrence):
            master.occurrence(index=1).refresh()


def test_a_series_made_over_ews_keeps_its_zone_over_graph(world: World) -> None:
    series = _series()
    starts = _starts(series)
    with calendar(world, ADMIN, "ews") as ews, calendar(world, ADMIN, "graph") as graph:
        series_id = ews.create(series)
        graph.change(series_id, starts[5], subject="Last one")
        assert [seen.original_start for seen in graph.occurrences(series_id)] == starts
        assert [seen.subject for seen in ews.occurrences(series_id)] == [series.subject] * 5 + ["Last one"]


@pytest.mark.parametrize(("edited_over", "pattern_over"), [("ews", "graph"), ("graph", "ews")])
def test_a_new_pattern_over_one_protocol_drops_what_the_other_changed(
    world: World, edited_over: str, pattern_over: str
) -> None:
    series = _series()
    starts = _starts(series)
    with calendar(world, ADMIN, edited_over) as edited, calendar(world, ADMIN, pattern_over) as patterned:
        series_id = patterned.create(series)
        _edit(edited, series_id, starts[1], starts[3])
        assert len(patterned.occurrences(series_id)) == 5
        later = Series(series.subject, series.first, series.length, "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4", series.zone)
        patterned.change_pattern(series_id, later)
        plain = [Seen(s, s, s + series.length, series.subject, series.location) for s in starts[:4]]
        assert edited.occurrences(series_id) == plain
        assert patterned.occurrences(series_id) == plain


def test_a_series_made_over_ews_takes_the_zone_graph_gives_it(world: World) -> None:
    series = _series()
    local = series.first.astimezone(BERLIN).replace(tzinfo=None)
    york = Series(
        series.subject,
        local.replace(tzinfo=ZoneInfo("America/New_York")),
        series.length,
        series.rule,
        zone="America/New_York",
        location=series.location,
    )
    starts = [(york.first + timedelta(weeks=k)).astimezone(UTC) for k in range(6)]
    with calendar(world, ADMIN, "ews") as ews, calendar(world, ADMIN, "graph") as graph:
        series_id = ews.create(series)
        graph.change_pattern(series_id, york)  # 09:00 in New York, whose clocks changed already
        assert [seen.start for seen in graph.occurrences(series_id)] == starts
        assert [seen.start for seen in ews.occurrences(series_id)] == starts
