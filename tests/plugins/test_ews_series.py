"""Recurring series over EWS at the side: a series is one Event with its time zone, its
cancelled occurrences and its exceptions, read from and written to Exchange's occurrences."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from exchangelib import CalendarItem, EWSDate, EWSDateTime, EWSTimeZone
from exchangelib.fields import MONDAY
from exchangelib.recurrence import Recurrence, WeeklyPattern
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plugins.conflicts
import plugins.entities
import plugins.ews
from fakes.ews import EwsApi
from fakes.server import FakeCA, FakeServer
from fakes.tenant import Tenant
from framework.context import Context
from framework.contracts import CRM_LOGIN_PREFIX, Create, CrmUser, Item, Update, Window
from framework.engine import Engine
from framework.errors import RecordRejected
from framework.host import Host
from framework.model import Event, Occurrence
from framework.recurrence import occurrence_starts
from framework.state import User
from framework.testing import MemoryWorld
from plugins.ews import auth, mapping
from plugins.ews.auth import EwsLogin, EwsServer
from plugins.ews.store import EwsStore, FolderSide

DOMAIN = "contoso.example"
ADMIN = User("u1", f"admin@{DOMAIN}", "Ada Admin", "CEO", "Administrator", is_admin=True, enabled=True)
SVC_PASSWORD = "Svc-Secret-42"
WINDOW = Window.months_back(6)
BERLIN = EWSTimeZone("Europe/Berlin")


@dataclasses.dataclass
class Exchange:
    """Ada's mailbox on the fake EWS, her open store, and a memory CRM to run the engine with."""

    tenant: Tenant
    api: EwsApi
    store: EwsStore
    ctx: Context
    world: MemoryWorld

    @property
    def side(self) -> FolderSide:
        side = self.store.side("events")
        assert isinstance(side, FolderSide)
        return side

    def calls(self) -> dict[str, int]:
        return dict(self.api.calls)


@pytest.fixture
def exchange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Exchange]:
    monkeypatch.setenv("EXSYNC_KEY", Fernet.generate_key().decode())
    ca = FakeCA(tmp_path / "ca")
    tenant = Tenant(domain=DOMAIN)
    tenant.add_user(ADMIN.email, ADMIN.name, "Adm1n-Secret!")
    tenant.add_user(f"svc@{DOMAIN}", "Sync service", SVC_PASSWORD, can_impersonate=True)
    api = EwsApi(tenant, version="Exchange2016")
    server = FakeServer(api, ca=ca).start()
    world = MemoryWorld(users=[CrmUser("u1", ADMIN.email, ADMIN.name, "CEO", "Administrator", True)])
    host = Host()
    for plugin in (plugins.ews, plugins.entities, plugins.conflicts, world.plugin()):
        host.pm.register(plugin)
    ctx = Context(f"sqlite:///{tmp_path / 'state.db'}", host=host, acting_as="u1", ca_bundle=str(ca.bundle_path))
    ctx.state.upsert_users([ADMIN])
    ctx.vault.put(f"{CRM_LOGIN_PREFIX}{ADMIN.crm_id}", "crm-refresh-token")  # the admin has logged in to the CRM
    ctx.state.set_settings({"installed": True, "scope": "all", "crm_connector": "memory"})
    endpoint = f"{server.base_url}/EWS/Exchange.asmx"
    auth.setup_impersonation(
        ctx, EwsServer(endpoint, *auth.declared_version("auto")), EwsLogin(f"svc@{DOMAIN}", SVC_PASSWORD)
    )
    store = ctx.exchange(ADMIN)
    assert isinstance(store, EwsStore)
    try:
        yield Exchange(tenant, api, store, ctx, world)
    finally:
        store.close()
        server.stop()


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def _read(side: FolderSide) -> list[Item]:
    return side.read(None, WINDOW).items


def _only_event(side: FolderSide) -> Event:
    (item,) = _read(side)
    assert isinstance(item.record, Event)
    return item.record


def _series(rule: str, start: datetime, zone: str = "Europe/Berlin", **values: Any) -> Event:
    """A one-hour series with its 2nd occurrence moved two hours later and changed, its 3rd cancelled."""
    plain = Event(
        "Jour fixe", start, start + timedelta(hours=1), location="Room 1", body="Agenda", recurrence=rule, timezone=zone
    )
    second, third = list(islice(occurrence_starts(plain), 3))[1:]
    moved = Occurrence(
        second, second + timedelta(hours=2), second + timedelta(hours=3), "Moved", "Room 2", "Other agenda"
    )
    return dataclasses.replace(plain, cancelled=(third,), exceptions=(moved,), **values)


# reading what a user made in Outlook --------------------------------------------------------------
def test_a_series_with_a_moved_and_a_cancelled_occurrence_is_read_as_one_event(exchange: Exchange) -> None:
    account = exchange.store.account
    series = CalendarItem(
        folder=account.calendar,
        subject="Weekly review",
        start=EWSDateTime(2030, 3, 18, 9, tzinfo=BERLIN),
        end=EWSDateTime(2030, 3, 18, 10, tzinfo=BERLIN),
        location="Room 1",
        recurrence=Recurrence(
            pattern=WeeklyPattern(interval=1, weekdays=[MONDAY], first_day_of_week=MONDAY),
            start=EWSDate(2030, 3, 18),
            number=5,
        ),
    )
    series.save()
    moved = series.occurrence(index=2)
    moved.refresh()
    moved.subject, moved.start, moved.end = (
        "Review (moved)",
        moved.start + timedelta(hours=1),
        moved.end + timedelta(hours=1),
    )
    moved.save(update_fields=["subject", "start", "end"])
    series.occurrence(index=4).delete()  # 8 April: summer time, 07:00 UTC

    before = exchange.calls()
    (item,) = _read(exchange.side)
    assert item.id == series.id
    assert exchange.api.calls["GetItem"] - before.get("GetItem", 0) == 1  # the exception's own values
    assert item.record == Event(
        "Weekly review",
        _utc(2030, 3, 18, 8),
        _utc(2030, 3, 18, 9),
        location="Room 1",
        recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=5",
        ical_uid=item.record.ical_uid,
        timezone="Europe/Berlin",
        cancelled=(_utc(2030, 4, 8, 7),),
        exceptions=(
            Occurrence(_utc(2030, 3, 25, 8), _utc(2030, 3, 25, 9), _utc(2030, 3, 25, 10), "Review (moved)", "Room 1"),
        ),
    )


# writing a series and reading it back --------------------------------------------------------------
PATTERNS = [
    ("FREQ=DAILY;INTERVAL=2;COUNT=10", _utc(2027, 3, 25, 8)),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;UNTIL=20270630", _utc(2027, 3, 15, 8)),
    ("FREQ=WEEKLY;BYDAY=MO", _utc(2027, 3, 15, 8)),
    ("FREQ=MONTHLY;BYMONTHDAY=15;COUNT=6", _utc(2027, 1, 15, 8)),
    ("FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU;COUNT=4", _utc(2027, 1, 12, 8)),
    ("FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20271231", _utc(2027, 1, 29, 8)),
    ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1;COUNT=5", _utc(2027, 2, 1, 8)),
    ("FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=30;COUNT=4", _utc(2027, 3, 30, 7)),
    ("FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3;COUNT=4", _utc(2027, 3, 28, 7)),  # the day summer time begins
]


@pytest.mark.parametrize(("rule", "start"), PATTERNS, ids=[rule for rule, _ in PATTERNS])
def test_a_series_with_exceptions_reads_back_as_written(exchange: Exchange, rule: str, start: datetime) -> None:
    record = _series(rule, start)
    (result,) = exchange.side.write([Create(record, "crm-1")])
    assert result.ok, result.error
    back = _only_event(exchange.side)
    assert back == dataclasses.replace(record, ical_uid=back.ical_uid)
    assert back == dataclasses.replace(exchange.side.echo(record), ical_uid=back.ical_uid)
    assert len(back.exceptions) == len(back.cancelled) == 1


def test_the_wall_clock_time_is_kept_across_daylight_saving(exchange: Exchange) -> None:
    record = Event(
        "Standup",
        _utc(2027, 3, 22, 8),
        _utc(2027, 3, 22, 8, 15),
        recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=3",
        timezone="Europe/Berlin",
    )
    exchange.side.write([Create(record, "crm-1")])
    view = exchange.store.account.calendar.view(
        start=EWSDateTime(2027, 3, 1, tzinfo=BERLIN), end=EWSDateTime(2027, 5, 1, tzinfo=BERLIN)
    )
    assert [i.start.astimezone(BERLIN).hour for i in view] == [9, 9, 9]
    assert [i.start.astimezone(EWSTimeZone("UTC")).hour for i in view] == [8, 7, 7]


def test_a_zone_is_read_back_as_the_iana_name_of_its_windows_zone(exchange: Exchange) -> None:
    record = _series("FREQ=DAILY;COUNT=4", _utc(2027, 3, 1, 4), zone="Asia/Kolkata")
    echo = exchange.side.echo(record)
    assert isinstance(echo, Event) and echo.timezone == "Asia/Calcutta"  # Exchange keeps "India Standard Time"
    exchange.side.write([Create(record, "crm-1")])
    back = _only_event(exchange.side)
    assert back == dataclasses.replace(echo, ical_uid=back.ical_uid)


def test_an_all_day_series_stays_all_day(exchange: Exchange) -> None:
    first = _utc(2027, 3, 22)
    plain = Event(
        "Inventory", first, first + timedelta(days=1), all_day=True, recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=4"
    )
    later = first + timedelta(days=7)
    moved = Occurrence(later, later + timedelta(days=1), later + timedelta(days=2), "Inventory (Tuesday)")
    record = dataclasses.replace(plain, cancelled=(first + timedelta(days=14),), exceptions=(moved,))
    exchange.side.write([Create(record, "crm-1")])
    back = _only_event(exchange.side)
    assert back == dataclasses.replace(record, ical_uid=back.ical_uid)
    assert back.all_day and back.timezone == ""


def test_an_all_day_series_made_in_another_zone_is_read_by_its_dates(exchange: Exchange) -> None:
    account = exchange.store.account
    weekly = WeeklyPattern(interval=1, weekdays=[MONDAY], first_day_of_week=MONDAY)
    series = CalendarItem(
        folder=account.calendar,
        subject="Inventory",
        start=EWSDate(2030, 3, 25),
        end=EWSDate(2030, 3, 25),
        is_all_day=True,
        recurrence=Recurrence(pattern=weekly, start=EWSDate(2030, 3, 25), number=4),
    )
    series._start_timezone = series._end_timezone = BERLIN  # Outlook in Berlin: local midnights
    series.save()
    moved = series.occurrence(index=2)
    moved.refresh()
    moved.subject = "Inventory (stock)"
    moved.save(update_fields=["subject"])
    series.occurrence(index=3).delete()
    record = _only_event(exchange.side)
    assert (record.all_day, record.start, record.timezone) == (True, _utc(2030, 3, 25), "")
    assert record.cancelled == (_utc(2030, 4, 8),)
    assert record.exceptions == (Occurrence(_utc(2030, 4, 1), _utc(2030, 4, 1), _utc(2030, 4, 2), "Inventory (stock)"),)

    (moved_back,) = record.exceptions
    renamed = dataclasses.replace(
        record,
        subject="Stocktaking",
        cancelled=(*record.cancelled, _utc(2030, 4, 15)),
        exceptions=(dataclasses.replace(moved_back, start=_utc(2030, 4, 2), end=_utc(2030, 4, 3)),),
    )
    (result,) = exchange.side.write([Update(series.id, renamed, "crm-1")])
    assert result.ok, result.error
    assert _only_event(exchange.side) == renamed  # the series kept in its zone keeps its exceptions
    assert account.calendar.get(id=series.id)._start_timezone == BERLIN


def test_exceptions_that_are_no_occurrence_are_not_written_and_not_echoed(exchange: Exchange) -> None:
    record = _series("FREQ=WEEKLY;BYDAY=MO;COUNT=5", _utc(2027, 3, 15, 8))
    stray = _utc(2027, 3, 16, 8)  # a Tuesday
    record = dataclasses.replace(
        record,
        cancelled=(*record.cancelled, stray),
        exceptions=(*record.exceptions, Occurrence(stray, stray, stray + timedelta(hours=1), "Stray")),
    )
    echo = exchange.side.echo(record)
    assert isinstance(echo, Event)
    assert stray not in echo.cancelled and stray not in [o.original_start for o in echo.exceptions]
    exchange.side.write([Create(record, "crm-1")])
    assert _only_event(exchange.side) == dataclasses.replace(echo, ical_uid=_only_event(exchange.side).ical_uid)


@pytest.mark.parametrize("rule", ["FREQ=MONTHLY;BYMONTHDAY=31;COUNT=6", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;COUNT=3"])
def test_no_exception_is_written_where_exchange_numbers_occurrences_otherwise(exchange: Exchange, rule: str) -> None:
    start = _utc(2028, 1, 31, 8) if "MONTHLY" in rule else _utc(2028, 2, 29, 8)
    record = _series(rule, start)  # its 2nd occurrence is the 2nd to the RRULE, the 3rd or 5th to Exchange
    echo = exchange.side.echo(record)
    assert isinstance(echo, Event) and (echo.exceptions, echo.cancelled) == ((), ())
    before = exchange.calls()
    exchange.side.write([Create(record, "crm-1")])
    after = exchange.calls()
    assert all(after.get(name, 0) == before.get(name, 0) for name in ("UpdateItem", "DeleteItem"))
    back = _only_event(exchange.side)
    assert back == dataclasses.replace(echo, ical_uid=back.ical_uid)


# updating a series ---------------------------------------------------------------------------------
def _created(exchange: Exchange, record: Event) -> str:
    (result,) = exchange.side.write([Create(record, "crm-1")])
    assert result.ok and result.id
    return str(result.id)


def test_a_new_pattern_drops_exceptions_and_cancellations_as_exchange_does(exchange: Exchange) -> None:
    record = _series("FREQ=WEEKLY;BYDAY=MO;COUNT=5", _utc(2027, 3, 15, 8))
    item_id = _created(exchange, record)
    longer = dataclasses.replace(record, recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=8")
    (result,) = exchange.side.write([Update(item_id, longer, "crm-1")])
    assert result.ok
    back = _only_event(exchange.side)
    assert back.recurrence == "FREQ=WEEKLY;BYDAY=MO;COUNT=8"
    assert back.exceptions == () and back.cancelled == ()
    assert exchange.side.echo(longer) != back  # so the engine sees the series as Exchange changed it


def test_with_the_same_pattern_exceptions_are_reconciled(exchange: Exchange) -> None:
    record = _series("FREQ=WEEKLY;BYDAY=MO;COUNT=6", _utc(2027, 3, 15, 8))
    item_id = _created(exchange, record)
    starts = list(occurrence_starts(record))
    (moved,) = record.exceptions
    changed = dataclasses.replace(
        moved, subject="Moved again", start=moved.start + timedelta(hours=1), end=moved.end + timedelta(hours=1)
    )
    fifth = Occurrence(starts[4], starts[4], starts[4] + timedelta(hours=1), "Jour fixe", "Elsewhere", "Agenda")
    new = dataclasses.replace(
        record, subject="Jour fixe (new name)", cancelled=(*record.cancelled, starts[5]), exceptions=(changed, fifth)
    )
    before = exchange.calls()
    (result,) = exchange.side.write([Update(item_id, new, "crm-1")])
    assert result.ok, result.error
    spent = {k: v - before.get(k, 0) for k, v in exchange.calls().items() if v != before.get(k, 0)}
    assert spent == {"GetItem": 2, "UpdateItem": 2, "DeleteItem": 1}  # the series and its exception read, then written
    back = _only_event(exchange.side)
    assert back == dataclasses.replace(new, ical_uid=back.ical_uid)

    without = dataclasses.replace(new, exceptions=(changed,))  # the exception on the 5th is given up
    exchange.side.write([Update(item_id, without, "crm-1")])
    back = _only_event(exchange.side)
    assert back == dataclasses.replace(without, ical_uid=back.ical_uid)


def test_a_new_duration_keeps_the_exceptions(exchange: Exchange) -> None:
    record = _series("FREQ=DAILY;COUNT=5", _utc(2027, 3, 26, 8))
    item_id = _created(exchange, record)
    assert record.end is not None
    longer = dataclasses.replace(record, end=record.end + timedelta(minutes=30))
    (result,) = exchange.side.write([Update(item_id, longer, "crm-1")])
    assert result.ok, result.error
    back = _only_event(exchange.side)
    assert back == dataclasses.replace(longer, ical_uid=back.ical_uid)


def test_a_cancelled_occurrence_is_not_restored(exchange: Exchange) -> None:
    record = _series("FREQ=DAILY;COUNT=5", _utc(2027, 3, 26, 8))
    item_id = _created(exchange, record)
    restored = dataclasses.replace(record, cancelled=())
    (result,) = exchange.side.write([Update(item_id, restored, "crm-1")])
    assert result.ok, result.error
    assert _only_event(exchange.side).cancelled == record.cancelled


def test_an_exception_exchange_cannot_hold_fails_its_update_and_not_the_others(
    exchange: Exchange, caplog: pytest.LogCaptureFixture
) -> None:
    good = _series("FREQ=DAILY;COUNT=5", _utc(2027, 3, 26, 8))
    ids = [_created(exchange, good), _created(exchange, dataclasses.replace(good, subject="Other"))]
    (moved,) = good.exceptions
    backwards = dataclasses.replace(moved, end=moved.start - timedelta(hours=1))  # ends before it starts
    bad = dataclasses.replace(good, exceptions=(backwards,))
    changed = dataclasses.replace(good, subject="Other", exceptions=(dataclasses.replace(moved, subject="Fine"),))
    results = exchange.side.write([Update(ids[0], bad, "crm-1"), Update(ids[1], changed, "crm-2")])
    assert isinstance(results[0].error, RecordRejected) and "occurrence" in results[0].error.message
    assert results[1].ok
    (created,) = exchange.side.write([Create(bad, "crm-3")])
    assert created.ok  # the series exists; its exception is written with its next update
    assert "not written" in caplog.text
    backs = {i.id: i.record for i in _read(exchange.side)}
    assert backs[ids[1]] == dataclasses.replace(changed, ical_uid=backs[ids[1]].ical_uid)


# request counts --------------------------------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 20])
def test_requests_do_not_grow_with_the_number_of_series(exchange: Exchange, count: int) -> None:
    records = [
        _series("FREQ=WEEKLY;BYDAY=MO;COUNT=5", _utc(2027, 3, 15, 8) + timedelta(hours=n % 8)) for n in range(count)
    ]
    before = exchange.calls()
    results = exchange.side.write([Create(r, f"crm-{n}") for n, r in enumerate(records)])
    assert all(r.ok for r in results)
    written = {k: v - before.get(k, 0) for k, v in exchange.calls().items() if v != before.get(k, 0)}
    assert written == {"CreateItem": 1, "DeleteItem": 1, "UpdateItem": 1}

    before = exchange.calls()
    items = _read(exchange.side)
    assert len(items) == count and all(len(i.record.exceptions) == 1 for i in items if isinstance(i.record, Event))
    read = {k: v - before.get(k, 0) for k, v in exchange.calls().items() if v != before.get(k, 0)}
    assert read == {"SyncFolderItems": 1, "GetItem": 1}


# the engine between a CRM and Exchange ----------------------------------------------------------------
def _run(exchange: Exchange) -> dict[str, Any]:
    (report,) = Engine(exchange.ctx, sleep=lambda _seconds: None).run([ADMIN], ["events"])
    assert report.outcome == "ok", report.as_dict()
    sides = report.entities["events"].sides
    return {name: (c.created, c.updated, c.deleted) for name, c in sides.items()}


def test_a_series_from_the_crm_shows_its_exceptions_in_exchange_and_a_second_run_writes_nothing(
    exchange: Exchange,
) -> None:
    crm = exchange.world.side("crm", "u1", "events")
    record = _series("FREQ=WEEKLY;BYDAY=MO;COUNT=5", _utc(2030, 3, 18, 8))
    crm.put(record)
    assert _run(exchange)["exchange"] == (1, 0, 0)
    (native,) = exchange.store.account.calendar.all()
    assert [o.original_start for o in native.modified_occurrences] == [_utc(2030, 3, 25, 8)]
    assert [d.start for d in native.deleted_occurrences] == [_utc(2030, 4, 1, 7)]
    for _ in range(2):
        assert _run(exchange) == {"crm": (0, 0, 0), "exchange": (0, 0, 0)}
    ((kept, _),) = crm.records.values()
    assert kept == record


def test_a_new_pattern_from_the_crm_drops_the_exceptions_on_both_sides(exchange: Exchange) -> None:
    crm = exchange.world.side("crm", "u1", "events")
    record = _series("FREQ=WEEKLY;BYDAY=MO;COUNT=5", _utc(2030, 3, 18, 8))
    crm_id = crm.put(record)
    _run(exchange)
    crm.put(dataclasses.replace(record, recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=8"), crm_id)
    first = _run(exchange)
    assert first["exchange"] == (0, 1, 0) and first["crm"] == (0, 1, 0)  # Exchange's answer carried back
    ((now, _),) = crm.records.values()
    assert now.recurrence.endswith("COUNT=8") and now.exceptions == () and now.cancelled == ()
    assert _run(exchange) == {"crm": (0, 0, 0), "exchange": (0, 0, 0)}


def test_an_occurrence_moved_in_outlook_reaches_the_crm_as_an_exception(exchange: Exchange) -> None:
    crm = exchange.world.side("crm", "u1", "events")
    plain = Event(
        "Review",
        _utc(2030, 3, 18, 8),
        _utc(2030, 3, 18, 9),
        recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=5",
        timezone="Europe/Berlin",
    )
    crm.put(plain)
    _run(exchange)
    (series,) = exchange.store.account.calendar.all()
    moved = series.occurrence(index=3)
    moved.refresh()
    moved.location, moved.start, moved.end = "Room 9", moved.start + timedelta(days=1), moved.end + timedelta(days=1)
    moved.save(update_fields=["location", "start", "end"])
    series.occurrence(index=5).delete()
    assert _run(exchange)["crm"] == (0, 1, 0)
    ((now, _),) = crm.records.values()
    assert now.cancelled == (_utc(2030, 4, 15, 7),)
    assert now.exceptions == (
        Occurrence(_utc(2030, 4, 1, 7), _utc(2030, 4, 2, 7), _utc(2030, 4, 2, 8), "Review", "Room 9"),
    )
    assert _run(exchange) == {"crm": (0, 0, 0), "exchange": (0, 0, 0)}


# every pattern type, at random ---------------------------------------------------------------------
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@st.composite
def rules(draw: st.DrawFn) -> str:
    """An RRULE of any pattern type Exchange holds, in the canonical order of its parts."""
    kind = draw(
        st.sampled_from(["daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"])
    )
    parts = [f"FREQ={kind.removeprefix('absolute').removeprefix('relative').upper()}"]
    if not kind.endswith("Yearly"):
        interval = draw(st.integers(1, 3))
        parts += [f"INTERVAL={interval}"] if interval > 1 else []
    if kind == "weekly":
        days = draw(st.sets(st.sampled_from(DAYS), min_size=1))
        parts.append("BYDAY=" + ",".join(d for d in DAYS if d in days))
    if kind.startswith("relative"):
        position = draw(st.sampled_from(["1", "2", "3", "4", "-1"]))
        parts.append(f"BYDAY={position}{draw(st.sampled_from(DAYS))}")
    if kind.endswith("Yearly"):
        parts.append(f"BYMONTH={draw(st.integers(1, 12))}")
    if kind.startswith("absolute"):
        parts.append(f"BYMONTHDAY={draw(st.integers(1, 28))}")
    parts += [draw(st.sampled_from(["COUNT=3", "COUNT=12", "UNTIL=20291231", ""]))]
    return ";".join(p for p in parts if p)


@given(rule=rules(), first=st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31)))
def test_every_rule_exchange_holds_maps_to_a_recurrence_and_back(rule: str, first: date) -> None:
    assert mapping.rrule_from_native(mapping.rrule_to_native(rule, first)) == rule


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rule=rules(),
    hour=st.integers(0, 23),
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Sydney", ""]),
    data=st.data(),
)
def test_a_random_series_with_random_exceptions_reads_back_as_its_echo(
    exchange: Exchange, rule: str, hour: int, zone: str, data: st.DataObject
) -> None:
    start = datetime(2027, 1, 4, hour, 30, tzinfo=UTC)
    plain = Event("Series", start, start + timedelta(minutes=45), location="Here", recurrence=rule, timezone=zone)
    starts = list(islice(occurrence_starts(plain), 6))
    chosen = data.draw(st.lists(st.sampled_from(starts), unique=True, max_size=4))
    half = len(chosen) // 2
    exceptions = tuple(
        Occurrence(s, s + timedelta(hours=1), s + timedelta(hours=2), f"Changed {n}", "There")
        for n, s in enumerate(chosen[half:])
    )
    record = dataclasses.replace(plain, cancelled=tuple(chosen[:half]), exceptions=exceptions)
    (result,) = exchange.side.write([Create(record, "crm-1")])
    assert result.ok and result.id, result.error
    back = next(i.record for i in _read(exchange.side) if i.id == result.id)
    assert isinstance(back, Event)
    assert back == dataclasses.replace(record, ical_uid=back.ical_uid)
    exchange.store.account.bulk_delete(ids=[(result.id, None)], delete_type="HardDelete")


def test_an_occurrence_cancelled_in_exchange_stays_cancelled_and_the_crm_follows(exchange: Exchange) -> None:
    crm = exchange.world.side("crm", "u1", "events")
    record = _series("FREQ=WEEKLY;BYDAY=MO;COUNT=5", _utc(2030, 3, 18, 8))
    crm_id = crm.put(record)
    _run(exchange)
    (cancelled,) = record.cancelled
    changed = Occurrence(cancelled, cancelled, cancelled + timedelta(hours=1), "Back again", "Room 1", "Agenda")
    crm.put(dataclasses.replace(record, cancelled=(), exceptions=(*record.exceptions, changed)), crm_id)
    _run(exchange)
    ((now, _),) = crm.records.values()
    assert now == dataclasses.replace(
        record, ical_uid=now.ical_uid
    )  # Exchange cannot restore an occurrence: the CRM has it cancelled again
    assert _run(exchange) == {"crm": (0, 0, 0), "exchange": (0, 0, 0)}
