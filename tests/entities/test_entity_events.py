"""Events, CRM <-> calendar, over the fakes: time zones across DST, all-day, attendees, series,
first-sync matching and the six-month window (B12, B24)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from entity_support import NOW, OLD, counts, graph_time, make_org, wrote_nothing

from plugins.crm.mapping import parse_time

HOUR = timedelta(hours=1)


def _next_dst_change(zone: str) -> date:
    """The first day after today on which ``zone``'s UTC offset at noon differs from the day before."""
    tz = ZoneInfo(zone)
    day = NOW.date()
    while True:
        after = day + timedelta(days=1)
        if (
            datetime(after.year, after.month, after.day, 12, tzinfo=tz).utcoffset()
            != datetime(day.year, day.month, day.day, 12, tzinfo=tz).utcoffset()
        ):
            return after
        day = after


def _crm_start(record: dict) -> datetime:
    start = parse_time(record["Start_DateTime"])
    assert start is not None
    return start


def _exchange_start(item: dict) -> datetime:
    when = item["start"]
    zone = ZoneInfo({"UTC": "UTC"}.get(when["timeZone"], when["timeZone"]))
    return datetime.fromisoformat(when["dateTime"][:19]).replace(tzinfo=zone).astimezone(UTC)


# -- time zones ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("windows", "iana"),
    [("Eastern Standard Time", "America/New_York"), ("Pacific Standard Time", "America/Los_Angeles")],
)
def test_mailbox_events_in_a_zone_across_dst_arrive_at_the_same_instant(org, windows, iana):
    org.only("events")
    change = _next_dst_change(iana)
    tz = ZoneInfo(iana)
    expected = {}
    for label, day in (("before", change - timedelta(days=3)), ("after", change + timedelta(days=3))):
        wall = datetime(day.year, day.month, day.day, 9, 0)
        org.put_event(f"Standup {label}", wall, wall + HOUR, zone=windows, originalStartTimeZone=windows)
        expected[f"Standup {label}"] = wall.replace(tzinfo=tz).astimezone(UTC)
    assert expected["Standup before"].hour != expected["Standup after"].hour  # the offsets differ
    org.sync()
    for subject, moment in expected.items():
        record = org.record("Events", "Event_Title", subject)
        assert _crm_start(record) == moment
        assert parse_time(record["End_DateTime"]) == moment + HOUR
    assert wrote_nothing(org.sync())


def test_crm_events_with_an_offset_arrive_in_the_mailbox_at_the_same_instant(org):
    org.only("events")
    change = _next_dst_change("America/New_York")
    tz = ZoneInfo("America/New_York")
    expected = {}
    for label, day in (("before", change - timedelta(days=2)), ("after", change + timedelta(days=2))):
        local = datetime(day.year, day.month, day.day, 16, 30, tzinfo=tz)
        org.insert(
            "Events",
            {
                "Event_Title": f"Call {label}",
                "Start_DateTime": local.isoformat(),
                "End_DateTime": (local + HOUR).isoformat(),
            },
        )
        expected[f"Call {label}"] = local.astimezone(UTC)
    org.sync()
    for subject, moment in expected.items():
        assert _exchange_start(org.item("calendar", "subject", subject)) == moment
    assert wrote_nothing(org.sync())


# -- all-day ------------------------------------------------------------------------------------
@pytest.mark.parametrize("zone", ["UTC", "Tokyo Standard Time", "Pacific Standard Time"])
def test_an_all_day_mailbox_event_stays_all_day_on_the_same_date(org, zone):
    org.only("events")
    day = NOW.date() + timedelta(days=20)
    midnight = datetime(day.year, day.month, day.day)
    org.put_event(
        "Holiday", midnight, midnight + timedelta(days=1), zone=zone, isAllDay=True, originalStartTimeZone=zone
    )
    org.sync()
    record = org.record("Events", "Event_Title", "Holiday")
    assert record["All_day"] is True
    assert record["Start_DateTime"][:10] == day.isoformat()
    assert wrote_nothing(org.sync())


@pytest.mark.parametrize("offset", ["+00:00", "+09:00", "-08:00"])
def test_an_all_day_crm_event_stays_all_day_on_the_same_date(org, offset):
    org.only("events")
    day = NOW.date() + timedelta(days=15)
    org.insert(
        "Events",
        {
            "Event_Title": "Offsite",
            "Start_DateTime": f"{day.isoformat()}T00:00:00{offset}",
            "End_DateTime": f"{(day + timedelta(days=1)).isoformat()}T00:00:00{offset}",
            "All_day": True,
        },
    )
    org.sync()
    item = org.item("calendar", "subject", "Offsite")
    assert item["isAllDay"] is True
    assert item["start"]["dateTime"][:10] == day.isoformat()
    assert item["end"]["dateTime"][:10] == (day + timedelta(days=1)).isoformat()
    assert wrote_nothing(org.sync())
    assert org.record("Events", "Event_Title", "Offsite")["Start_DateTime"][:10] == day.isoformat()


# -- attendees, location, body ------------------------------------------------------------------
def test_attendees_location_and_body_travel_both_ways(org):
    org.only("events")
    start = (NOW + timedelta(days=4)).replace(minute=0, second=0)
    org.put_event(
        "Review",
        start,
        start + HOUR,
        location={"displayName": "Room 1"},
        body={"contentType": "text", "content": "Agenda: Q3"},
        attendees=[
            {"emailAddress": {"address": "ann@example.com", "name": "Ann"}, "type": "required"},
            {"emailAddress": {"address": "bob@example.com", "name": "Bob"}, "type": "required"},
        ],
    )
    org.insert(
        "Events",
        {
            "Event_Title": "Lunch",
            "Start_DateTime": (start + timedelta(days=1)).isoformat(),
            "End_DateTime": (start + timedelta(days=1) + HOUR).isoformat(),
            "Venue": "Cafe",
            "Description": "Bring the samples",
            "Participants": [{"type": "email", "participant": "cy@example.com"}],
        },
    )
    org.sync()
    review = org.record("Events", "Event_Title", "Review")
    assert (review["Venue"], review["Description"]) == ("Room 1", "Agenda: Q3")
    assert sorted(p["participant"] for p in review["Participants"]) == ["ann@example.com", "bob@example.com"]
    lunch = org.item("calendar", "subject", "Lunch")
    assert (lunch["location"]["displayName"], lunch["body"]["content"]) == ("Cafe", "Bring the samples")
    assert [a["emailAddress"]["address"] for a in lunch["attendees"]] == ["cy@example.com"]
    org.update(
        "Events",
        review["id"],
        {"Venue": "Room 2", "Participants": [{"type": "email", "participant": "ann@example.com"}]},
    )
    org.sync()
    review_item = org.item("calendar", "subject", "Review")
    assert review_item["location"]["displayName"] == "Room 2"
    assert [a["emailAddress"]["address"] for a in review_item["attendees"]] == ["ann@example.com"]
    assert wrote_nothing(org.sync())


# -- recurring series -----------------------------------------------------------------------------
def _weekly_series(first: date, count: int) -> dict:
    return {
        "pattern": {
            "type": "weekly",
            "interval": 1,
            "daysOfWeek": [first.strftime("%A").lower()],
            "firstDayOfWeek": "sunday",
        },
        "range": {
            "type": "numbered",
            "startDate": first.isoformat(),
            "numberOfOccurrences": count,
            "recurrenceTimeZone": "UTC",
        },
    }


def test_a_weekly_mailbox_series_is_one_crm_record_with_its_rrule_and_stays_so(org):
    org.only("events")
    first = NOW.date() - timedelta(days=14)
    start = datetime(first.year, first.month, first.day, 9, tzinfo=UTC)
    org.put_event("Weekly sync", start, start + HOUR, recurrence=_weekly_series(first, 30))
    report = org.sync()
    assert counts(report, "events", "crm")["created"] == 1
    (record,) = org.records("Events")
    day = first.strftime("%a")[:2].upper()
    assert record["Recurring_Activity"]["RRULE"] == f"FREQ=WEEKLY;BYDAY={day};COUNT=30"
    assert _crm_start(record) == start
    assert wrote_nothing(org.sync())
    assert len(org.records("Events")) == 1 and len(org.items("calendar")) == 1


def test_a_weekly_crm_series_is_one_mailbox_series_and_comes_back_unchanged(org):
    org.only("events")
    first = NOW.date() + timedelta(days=3)
    start = datetime(first.year, first.month, first.day, 15, tzinfo=UTC)
    rule = "FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=" + (first + timedelta(days=120)).strftime("%Y%m%d")
    crm_id = org.insert(
        "Events",
        {
            "Event_Title": "Training",
            "Start_DateTime": start.isoformat(),
            "End_DateTime": (start + HOUR).isoformat(),
            "Recurring_Activity": {"RRULE": rule},
        },
    )
    org.sync()
    (item,) = org.items("calendar")
    assert item["recurrence"]["pattern"]["type"] == "weekly"
    assert sorted(item["recurrence"]["pattern"]["daysOfWeek"]) == ["monday", "wednesday"]
    assert item["recurrence"]["range"]["type"] == "endDate"
    assert wrote_nothing(org.sync())
    assert org.crm.get("Events", crm_id)["Recurring_Activity"] == {"RRULE": rule}
    org.update("Events", crm_id, {"Venue": "Hall B"})
    org.sync()
    (item,) = org.items("calendar")
    assert item["location"]["displayName"] == "Hall B" and item["recurrence"]["range"]["type"] == "endDate"
    assert len(org.records("Events")) == 1


def test_graph_occurrences_and_exceptions_are_not_flattened_into_records(world):
    org = make_org(world, "graph")
    org.only("events")
    first = NOW.date() + timedelta(days=1)
    start = datetime(first.year, first.month, first.day, 9, tzinfo=UTC)
    master = org.put_event(
        "Daily",
        start,
        start + HOUR,
        recurrence={
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "noEnd", "startDate": first.isoformat(), "recurrenceTimeZone": "UTC"},
        },
    )
    moved = start + timedelta(days=2, hours=3)
    org.put_event("Daily (moved)", moved, moved + HOUR, type="exception", seriesMasterId=master)
    report = org.sync()
    assert counts(report, "events", "crm")["created"] == 1
    (record,) = org.records("Events")
    assert record["Event_Title"] == "Daily" and record["Recurring_Activity"]["RRULE"] == "FREQ=DAILY"
    assert wrote_nothing(org.sync())


# -- first-sync matching ----------------------------------------------------------------------------
def test_first_sync_pairs_events_with_the_same_ical_uid(org):
    org.only("events")
    start = (NOW + timedelta(days=6)).replace(minute=0, second=0)
    org.put_event("Kick-off", start, start + HOUR, iCalUId="uid-kickoff-1")
    org.insert(
        "Events",
        {
            "Event_Title": "Kick-off (CRM copy)",
            "Start_DateTime": start.isoformat(),
            "End_DateTime": (start + HOUR).isoformat(),
            "Exsync_UID": "uid-kickoff-1",
        },
    )
    org.sync()
    assert len(org.records("Events")) == len(org.items("calendar")) == 1
    assert org.records("Events")[0]["Event_Title"] == org.items("calendar")[0]["subject"]
    assert wrote_nothing(org.sync())


def test_first_sync_pairs_events_without_a_shared_uid_by_start_and_subject(org):
    org.only("events")
    start = (NOW + timedelta(days=7)).replace(minute=0, second=0)
    org.put_event("Board meeting", start, start + HOUR)
    org.insert(
        "Events",
        {
            "Event_Title": "Board meeting",
            "Start_DateTime": start.isoformat(),
            "End_DateTime": (start + HOUR).isoformat(),
        },
    )
    org.sync()
    assert len(org.records("Events")) == len(org.items("calendar")) == 1
    assert wrote_nothing(org.sync())


# -- the six-month window -----------------------------------------------------------------------------
def test_events_older_than_six_months_are_neither_read_nor_written_future_ones_are(org):
    org.only("events")
    old, future = NOW - OLD, NOW + timedelta(days=60)
    org.put_event("Old mailbox event", old, old + HOUR)
    org.put_event("Future mailbox event", future, future + HOUR)
    for subject, start in (("Old CRM event", old), ("Future CRM event", future)):
        org.insert(
            "Events",
            {"Event_Title": subject, "Start_DateTime": start.isoformat(), "End_DateTime": (start + HOUR).isoformat()},
        )
    org.sync()
    assert {r["Event_Title"] for r in org.records("Events")} == {
        "Old CRM event",
        "Future CRM event",
        "Future mailbox event",
    }
    assert {i["subject"] for i in org.items("calendar")} == {
        "Old mailbox event",
        "Future mailbox event",
        "Future CRM event",
    }


def test_an_event_that_ages_out_of_the_window_is_left_alone_on_both_sides(org):
    org.only("events")
    start = (NOW + timedelta(days=2)).replace(minute=0, second=0)
    mailbox_id = org.put_event("From mailbox", start, start + HOUR)
    crm_id = org.insert(
        "Events",
        {"Event_Title": "From CRM", "Start_DateTime": start.isoformat(), "End_DateTime": (start + HOUR).isoformat()},
    )
    org.sync()
    assert wrote_nothing(org.sync())
    old = NOW - OLD
    org.patch("calendar", mailbox_id, {"start": graph_time(old), "end": graph_time(old + HOUR)})
    org.update("Events", crm_id, {"Start_DateTime": old.isoformat(), "End_DateTime": (old + HOUR).isoformat()})
    assert wrote_nothing(org.sync())
    assert _crm_start(org.record("Events", "Event_Title", "From mailbox")) == start
    assert _exchange_start(org.item("calendar", "subject", "From CRM")) == start
    assert len(org.records("Events")) == len(org.items("calendar")) == 2
    assert wrote_nothing(org.sync())


def test_a_crm_made_event_is_not_rewritten_by_the_next_run(org):
    """A new calendar item gets an iCalendar UID: Graph's answer names the one Exchange gave it,
    over EWS exsync gives it one (CreateItem answers with the id alone). Either side remembers it
    for its echo, so the CRM record is not written back: the run writes what its dry run planned."""
    org.only("events")
    start = (NOW + timedelta(days=3)).replace(minute=0, second=0)
    crm_id = org.insert(
        "Events",
        {"Event_Title": "Made in CRM", "Start_DateTime": start.isoformat(), "End_DateTime": (start + HOUR).isoformat()},
    )
    org.sync()
    assert wrote_nothing(org.sync())
    (item,) = org.items("calendar")
    assert item["iCalUId"]
    assert not org.crm.get("Events", crm_id).get("Exsync_UID")
