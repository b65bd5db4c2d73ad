"""A recurring series with changed and cancelled occurrences in the CRM, against the fake CRM:
one Events record with EXDATE, one override record per changed occurrence, read as one item."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes.crm import CLIENT_ID, CLIENT_SECRET, CrmApi, CrmOrg, new_org
from fakes.server import FakeCA, FakeServer
from framework.contracts import Changes, Create, Delete, Update, Window
from framework.errors import ConfigurationError
from framework.model import Event, Occurrence
from framework.recurrence import occurrence_starts
from framework.state import User
from plugins.crm.client import CrmClient
from plugins.crm.mapping import WRITTEN_FIELDS, event_to_native, overrides_to_native
from plugins.crm.store import Cursor, EventSide, ZohoCrmStore

WINDOW = Window.months_back(6)
BERLIN = ZoneInfo("Europe/Berlin")
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> FakeCA:
    return FakeCA(tmp_path_factory.mktemp("crm-series-ca"))


@pytest.fixture(scope="module")
def shared_server(ca: FakeCA) -> Iterator[FakeServer]:
    server = FakeServer(CrmApi(CrmOrg()), ca=ca).start()
    yield server
    server.stop()


@pytest.fixture
def org() -> CrmOrg:
    return new_org()


@pytest.fixture
def server(shared_server: FakeServer, org: CrmOrg) -> FakeServer:
    shared_server.handler = CrmApi(org)
    return shared_server


@pytest.fixture
def store(org: CrmOrg, server: FakeServer, ca: FakeCA) -> Iterator[ZohoCrmStore]:
    sam = next(u for u in org.users() if u.email.startswith("sam."))
    client = CrmClient(server.base_url, CLIENT_ID, CLIENT_SECRET, org.issue_refresh_token(sam.id), str(ca.bundle_path))
    store = ZohoCrmStore(client, User(sam.id, sam.email))
    yield store
    store.close()


@pytest.fixture
def events(store: ZohoCrmStore) -> EventSide:
    side = store.side("events")
    assert isinstance(side, EventSide)
    return side


def weekly(weeks: int = 10, first: datetime | None = None, **changes: Any) -> Event:
    """A weekly 09:00 Berlin series over the spring DST change: the third occurrence moved an
    hour later into room B, the fifth (after the change) cancelled."""
    start = first or datetime(2030, 3, 4, 9, tzinfo=BERLIN)  # a Monday; DST begins on 31 March
    series = Event(
        "Weekly sync",
        start.astimezone(UTC),
        (start + HOUR).astimezone(UTC),
        location="Room A",
        body="Agenda",
        attendees=("ann@example.com", "bob@example.com"),
        recurrence=f"FREQ=WEEKLY;BYDAY=MO;COUNT={weeks}",
        ical_uid="uid-weekly",
        timezone="Europe/Berlin",
    )
    starts = list(occurrence_starts(series))
    moved = Occurrence(starts[2], starts[2] + HOUR, starts[2] + 2 * HOUR, "Weekly sync", "Room B", "Agenda")
    return replace(series, exceptions=(moved,), cancelled=(starts[4],), **changes)


def records(org: CrmOrg) -> list[dict[str, Any]]:
    return org.list_records("Events", per_page=200).records


def masters_and_overrides(org: CrmOrg) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    listed = records(org)
    return [r for r in listed if not r.get("Exsync_Series")], [r for r in listed if r.get("Exsync_Series")]


def create(events: EventSide, *series: Event) -> list[str]:
    results = events.write([Create(s, f"ex-{n}") for n, s in enumerate(series)])
    assert all(r.ok for r in results), results
    return [str(r.id) for r in results]


def read(events: EventSide, cursor: str | None) -> Changes:
    return events.read(cursor, WINDOW)


# writing ------------------------------------------------------------------------------------
def test_a_series_with_a_moved_and_a_cancelled_occurrence_is_a_master_with_exdate_and_one_override(
    events: EventSide, org: CrmOrg
) -> None:
    series = weekly()
    (series_id,) = create(events, series)

    (master,), (override,) = masters_and_overrides(org)
    starts = list(occurrence_starts(series))
    assert master["id"] == series_id
    assert master["Recurring_Activity"] == {"RRULE": "FREQ=WEEKLY;BYDAY=MO;COUNT=10", "EXDATE": "2030-03-18,2030-04-01"}
    assert master["Exsync_Time_Zone"] == "Europe/Berlin"
    assert override["Exsync_Series"] == series_id
    assert override["Exsync_Original_Start"] == starts[2].isoformat() == "2030-03-18T08:00:00+00:00"
    assert (override["Start_DateTime"], override["Venue"]) == ("2030-03-18T09:00:00+00:00", "Room B")
    assert override["Recurring_Activity"] is None
    assert sorted(p["participant"] for p in override["Participants"]) == ["ann@example.com", "bob@example.com"]
    assert override["Owner"]["id"] == master["Owner"]["id"] == events.owner_id


def test_the_series_reads_back_as_one_item_equal_to_what_was_written_and_to_its_echo(
    events: EventSide, org: CrmOrg
) -> None:
    series = weekly()
    (series_id,) = create(events, series)

    changes = read(events, None)

    assert [(i.id, i.link) for i in changes.items] == [(series_id, "ex-0")]
    assert changes.items[0].record == series == events.echo(series)
    after_dst = list(occurrence_starts(series))[4]
    assert after_dst.astimezone(BERLIN).hour == 9 and after_dst.hour == 7  # the wall clock is kept


def test_only_exceptions_and_cancellations_of_the_pattern_are_written_and_echoed(
    events: EventSide, org: CrmOrg
) -> None:
    series = weekly()
    stray = series.start + timedelta(days=1)  # a Tuesday: no occurrence of the pattern
    odd = replace(series, cancelled=(*series.cancelled, stray), exceptions=(*series.exceptions, Occurrence(stray)))
    create(events, odd)

    (master,), overrides = masters_and_overrides(org)
    assert master["Recurring_Activity"]["EXDATE"] == "2030-03-18,2030-04-01" and len(overrides) == 1
    assert read(events, None).items[0].record == series == events.echo(odd)


def test_an_all_day_series_with_a_cancelled_day_stays_all_day(events: EventSide, org: CrmOrg) -> None:
    first = datetime(2030, 6, 3, tzinfo=UTC)
    series = Event(
        "Holiday rota",
        first,
        first + timedelta(days=1),
        all_day=True,
        recurrence="FREQ=DAILY;COUNT=5",
        cancelled=(first + timedelta(days=2),),
        exceptions=(
            Occurrence(first + timedelta(days=3), first + timedelta(days=3), first + timedelta(days=4), "Off"),
        ),
    )
    create(events, series)

    (master,), (override,) = masters_and_overrides(org)
    assert master["Recurring_Activity"]["EXDATE"] == "2030-06-05,2030-06-06" and master["All_day"] is True
    assert override["All_day"] is True
    assert read(events, None).items[0].record == series == events.echo(series)


def test_an_update_reconciles_the_override_records(events: EventSide, org: CrmOrg, server: FakeServer) -> None:
    series = weekly()
    (series_id,) = create(events, series)
    starts = list(occurrence_starts(series))
    (_,), (old_override,) = masters_and_overrides(org)
    changed = replace(
        series,
        subject="Weekly sync (new name)",
        exceptions=(
            replace(series.exceptions[0], location="Room C"),
            Occurrence(starts[6], starts[6] - HOUR, starts[6], "Early", "Room A", "Agenda"),
        ),
        cancelled=(starts[4], starts[7]),
    )

    before = server.requests
    assert all(r.ok for r in events.write([Update(series_id, changed, "ex-0")]))
    calls = server.requests - before
    (master,), overrides = masters_and_overrides(org)
    read_back = read(events, None).items[0].record
    again = events.write([Update(series_id, replace(changed, exceptions=changed.exceptions[1:]), "ex-0")])

    # master, the override ids (COQL), their records, one insert and one update
    assert calls == 5
    assert master["Recurring_Activity"]["EXDATE"] == "2030-03-18,2030-04-01,2030-04-15,2030-04-22"
    assert {o["id"] for o in overrides} >= {old_override["id"]} and len(overrides) == 2
    assert read_back == changed == events.echo(changed)
    assert again[0].ok and len(masters_and_overrides(org)[1]) == 1
    assert [o["Event_Title"] for o in masters_and_overrides(org)[1]] == ["Early"]


def test_a_series_made_a_single_event_loses_its_override_records(events: EventSide, org: CrmOrg) -> None:
    (series_id,) = create(events, weekly())

    single = replace(weekly(), recurrence="")
    assert events.write([Update(series_id, single, "ex-0")])[0].ok

    (master,), overrides = masters_and_overrides(org)
    assert (master["Recurring_Activity"], overrides) == (None, [])


def test_deleting_a_series_deletes_its_override_records(events: EventSide, org: CrmOrg) -> None:
    series_id, other_id = create(events, weekly(), weekly(first=datetime(2030, 3, 5, 9, tzinfo=BERLIN)))

    assert events.write([Delete(series_id)])[0].ok

    masters, overrides = masters_and_overrides(org)
    assert [m["id"] for m in masters] == [other_id] and [o["Exsync_Series"] for o in overrides] == [other_id]


def test_a_series_whose_override_is_refused_is_not_left_half_made(events: EventSide, org: CrmOrg) -> None:
    series = weekly()
    too_long = replace(series, exceptions=(replace(series.exceptions[0], location="x" * 300),))

    (result,) = events.write([Create(too_long, "ex-0")])

    assert result.error is not None and "Venue" in result.error.message
    assert records(org) == []


# reading changes made in the CRM --------------------------------------------------------------
@pytest.fixture
def written(events: EventSide) -> tuple[Event, str, str]:
    """A series written and read once: the series, its id, the cursor after the read."""
    series = weekly()
    (series_id,) = create(events, series)
    cursor = read(events, None).cursor
    assert cursor is not None
    return series, series_id, cursor


def override_of(org: CrmOrg) -> dict[str, Any]:
    (override,) = masters_and_overrides(org)[1]
    return override


def test_a_crm_user_moving_the_override_record_changes_the_exception(
    events: EventSide, org: CrmOrg, written: tuple[Event, str, str]
) -> None:
    series, series_id, cursor = written
    moved = series.exceptions[0].original_start + timedelta(hours=4)
    org.update(
        "Events",
        override_of(org)["id"],
        {"Start_DateTime": moved.isoformat(), "End_DateTime": (moved + HOUR).isoformat(), "Venue": "Hall"},
    )

    changes = read(events, cursor)

    expected = replace(series.exceptions[0], start=moved, end=moved + HOUR, location="Hall")
    assert [i.id for i in changes.items] == [series_id]
    assert changes.items[0].record == replace(series, exceptions=(expected,))
    assert read(events, changes.cursor).items == []


def test_a_crm_user_deleting_the_override_record_cancels_the_occurrence(
    events: EventSide, org: CrmOrg, written: tuple[Event, str, str]
) -> None:
    series, series_id, cursor = written
    org.delete("Events", override_of(org)["id"])

    changes = read(events, cursor)

    original = series.exceptions[0].original_start
    assert [i.id for i in changes.items] == [series_id] and changes.deleted == []
    assert changes.items[0].record == replace(series, exceptions=(), cancelled=(*series.cancelled, original))


def test_a_crm_user_adding_a_date_to_exdate_cancels_that_occurrence(
    events: EventSide, org: CrmOrg, written: tuple[Event, str, str]
) -> None:
    series, series_id, cursor = written
    recurring = org.get("Events", series_id)["Recurring_Activity"]
    org.update(
        "Events", series_id, {"Recurring_Activity": {**recurring, "EXDATE": f"{recurring['EXDATE']},2030-04-29"}}
    )

    (item,) = read(events, cursor).items

    sixth = datetime(2030, 4, 29, 9, tzinfo=BERLIN).astimezone(UTC)
    assert item.record == replace(series, cancelled=(*series.cancelled, sixth))


def test_a_crm_user_removing_a_date_from_exdate_restores_that_occurrence(
    events: EventSide, org: CrmOrg, written: tuple[Event, str, str]
) -> None:
    series, series_id, cursor = written
    org.update("Events", series_id, {"Recurring_Activity": {"RRULE": series.recurrence, "EXDATE": "2030-04-01"}})

    (item,) = read(events, cursor).items

    assert item.record == replace(series, exceptions=())  # the override of 18 March no longer counts


def test_a_crm_series_with_exdate_and_no_time_zone_reads_in_utc(events: EventSide, org: CrmOrg) -> None:
    owner = {"id": events.owner_id}
    record = {
        "Owner": owner,
        "Event_Title": "Daily",
        "Start_DateTime": "2030-01-07T09:00:00+00:00",
        "End_DateTime": "2030-01-07T09:30:00+00:00",
        "Recurring_Activity": {"RRULE": "FREQ=DAILY;COUNT=5", "EXDATE": "2030-01-08,2030-01-20"},
    }
    series_id = org.insert("Events", record)["id"]

    (item,) = read(events, None).items

    assert item.id == series_id
    assert item.record.cancelled == (datetime(2030, 1, 8, 9, tzinfo=UTC),)  # 20 January is no occurrence


def test_override_records_are_never_items_even_without_their_series(events: EventSide, org: CrmOrg) -> None:
    create(events, weekly())
    (master,), _ = masters_and_overrides(org)
    org.delete("Events", master["id"])

    assert read(events, None).items == []


# cursors and request counts -------------------------------------------------------------------
def test_a_cursor_without_override_records_is_still_read() -> None:
    old = json.dumps({"modified": "2030-01-01T00:00:00+00:00", "deleted": None, "edge": {"1": "ab"}})

    cursor = Cursor.parse(old)

    assert (cursor.series, json.loads(cursor.dump())) == ({}, json.loads(old))
    cursor.series["2"] = "1"
    assert Cursor.parse(cursor.dump()).series == {"2": "1"}


def two_exceptions(series: Event) -> Event:
    """``series`` with its second occurrence moved to room B too."""
    second = list(occurrence_starts(series))[1]
    other = replace(series.exceptions[0], original_start=second, start=second, end=second + HOUR)
    return replace(series, exceptions=(*series.exceptions, other))


def test_n_series_with_exceptions_cost_few_requests(events: EventSide, org: CrmOrg, server: FakeServer) -> None:
    n = 60
    series = [
        two_exceptions(weekly(first=datetime(2030, 3, 4, 9, tzinfo=BERLIN) + timedelta(weeks=k))) for k in range(n)
    ]
    read(events, None)  # signs in

    before = server.requests
    ids = create(events, *series)
    created = server.requests - before
    before = server.requests
    full = read(events, None)
    full_read = server.requests - before
    before = server.requests
    quiet = read(events, full.cursor)
    quiet_read = server.requests - before
    for override in masters_and_overrides(org)[1][:3]:
        org.update("Events", override["id"], {"Venue": "Moved"})
    before = server.requests
    touched = read(events, quiet.cursor)
    touched_read = server.requests - before

    assert len(masters_and_overrides(org)[1]) == 2 * n
    assert created == 1 + 2  # the masters; 120 override records, a hundred a call
    assert full_read == 1 + 1  # one page of 180 records; one COQL query for the override ids
    assert quiet_read == 2  # the listing and the deleted listing
    # the listing, the override ids, the masters and other override records, the deleted listing
    assert touched_read == 4
    assert sorted(i.id for i in full.items) == sorted(ids) and len(touched.items) <= 3


# custom fields ----------------------------------------------------------------------------------
def test_the_series_fields_are_named_by_install_and_created(store: ZohoCrmStore, org: CrmOrg) -> None:
    for name in ("Exsync_Series", "Exsync_Original_Start", "Exsync_Time_Zone"):
        org.drop_field("Events", name)

    missing = store.missing_fields()
    with pytest.raises(ConfigurationError) as refused:
        store.side("events")
    for required in missing:
        store.create_field(required)

    assert [f.describe() for f in missing] == [
        "Events.Exsync_Time_Zone (text, 255)",
        "Events.Exsync_Series (text, 255)",
        "Events.Exsync_Original_Start (text, 255)",
    ]
    assert "Events.Exsync_Series (text, 255)" in refused.value.message
    assert store.missing_fields() == []
    assert isinstance(store.side("events"), EventSide)


def test_every_field_of_a_series_and_its_override_records_is_one_the_product_declares(org: CrmOrg) -> None:
    series = weekly()
    metadata = {f["api_name"]: f["data_type"] for f in org.field_resources("Events")}

    for native in (event_to_native(series), *overrides_to_native(series, "1")):
        assert {*native, "Owner"} <= set(WRITTEN_FIELDS["Events"])
        assert all(metadata[name] == WRITTEN_FIELDS["Events"][name] for name in native)


# any series -------------------------------------------------------------------------------------
ZONES = ("", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney")
RULES = ("FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO,TH", "FREQ=MONTHLY;BYMONTHDAY=31", "FREQ=MONTHLY;BYDAY=2TU", "FREQ=YEARLY")


@st.composite
def any_series(draw: st.DrawFn) -> Event:
    """A series of any pattern, zone and kind, with some occurrences changed and some cancelled."""
    all_day = draw(st.booleans())
    name = "" if all_day else draw(st.sampled_from(ZONES))
    day = draw(st.dates(date(2030, 1, 1), date(2031, 12, 31)))
    wall = datetime(day.year, day.month, day.day, 0 if all_day else draw(st.integers(0, 23)), 0 if all_day else 30)
    start = wall.replace(tzinfo=UTC) if all_day else wall.replace(tzinfo=ZoneInfo(name or "UTC")).astimezone(UTC)
    length = timedelta(days=1) if all_day else timedelta(minutes=draw(st.sampled_from((15, 60, 90))))
    rule = f"{draw(st.sampled_from(RULES))};COUNT={draw(st.integers(2, 12))}"
    series = Event("Series", start, start + length, all_day, "Room", "Body", ("a@example.com",), rule, timezone=name)
    starts = list(occurrence_starts(series))
    chosen = draw(st.lists(st.sampled_from(starts), unique=True, max_size=len(starts)))
    split = draw(st.integers(0, len(chosen)))
    step = timedelta(days=1) if all_day else timedelta(minutes=30)
    exceptions = []
    for original in chosen[split:]:
        moved = original + step * draw(st.integers(-3, 3))
        subject, where = draw(st.sampled_from(("Series", "Moved"))), draw(st.sampled_from(("Room", "Hall", "")))
        exceptions.append(Occurrence(original, moved, moved + length, subject, where))
    return replace(series, cancelled=tuple(chosen[:split]), exceptions=tuple(exceptions))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(series=any_series())
def test_any_series_written_reads_back_as_written_and_as_echoed(events: EventSide, org: CrmOrg, series: Event) -> None:
    (series_id,) = create(events, series)
    try:
        (item,) = read(events, None).items
        masters, overrides = masters_and_overrides(org)
        exdate = masters[0]["Recurring_Activity"].get("EXDATE", "")
        assert item.record == series == events.echo(series)
        assert len(overrides) == len(series.exceptions)
        assert len(exdate.split(",")) if exdate else len(series.cancelled) + len(series.exceptions) == 0
    finally:
        assert events.write([Delete(series_id)])[0].ok
    assert records(org) == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=any_series(), second=any_series())
def test_any_series_updated_to_any_other_reads_back_as_the_other(
    events: EventSide, org: CrmOrg, first: Event, second: Event
) -> None:
    (series_id,) = create(events, first)
    try:
        assert events.write([Update(series_id, second, "ex-0")])[0].ok
        (item,) = read(events, None).items
        assert item.record == second == events.echo(second)
        assert len(masters_and_overrides(org)[1]) == len(second.exceptions)
    finally:
        assert events.write([Delete(series_id)])[0].ok
    assert records(org) == []


def test_a_copied_override_record_is_read_once_and_removed_by_the_next_update(
    events: EventSide, org: CrmOrg, written: tuple[Event, str, str]
) -> None:
    series, series_id, cursor = written
    copy = {k: v for k, v in override_of(org).items() if k not in ("id", "Modified_Time", "Created_Time")}
    org.insert("Events", copy)

    (item,) = read(events, cursor).items
    assert events.write([Update(series_id, series, "ex-0")])[0].ok

    assert item.record == series
    assert len(masters_and_overrides(org)[1]) == 1
