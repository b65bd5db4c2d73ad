"""Series over Microsoft Graph: read through calendarView/delta (occurrences, exceptions,
cancelled occurrences), reassembled from their masters, they stay one CRM record each."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from entity_support import NOW, Org, counts, make_org, wrote_nothing

from fakes.cloud import GRAPH_CLIENT_ID
from fakes.harness import ADMIN, World, address

HOUR = timedelta(hours=1)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _graph(org: Org) -> httpx.Client:
    """The admin's own Graph client, as Outlook would edit the mailbox."""
    cloud = org.world.cloud
    token = cloud.authority.issue_token(GRAPH_CLIENT_ID, address(ADMIN), scopes=["Calendars.ReadWrite"])
    return httpx.Client(
        base_url=f"{cloud.graph_url}/v1.0",
        headers={"Authorization": f"Bearer {token}"},
        verify=ssl.create_default_context(cafile=str(cloud.ca.bundle_path)),
    )


def _second_tuesday_series(first: datetime) -> dict[str, Any]:
    return {
        "pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"], "index": "second"},
        "range": {"type": "noEnd", "startDate": first.date().isoformat(), "recurrenceTimeZone": "UTC"},
    }


def _weekly_series(first: datetime) -> dict[str, Any]:
    day = first.strftime("%A").lower()
    return {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [day], "firstDayOfWeek": "sunday"},
        "range": {"type": "numbered", "startDate": first.date().isoformat(), "numberOfOccurrences": 20},
    }


def _second_tuesday_after(day: datetime) -> datetime:
    month = datetime(day.year, day.month, 1, 10, tzinfo=UTC)
    while True:
        tuesdays = [month + timedelta(days=n) for n in range(31) if (month + timedelta(days=n)).weekday() == 1]
        if tuesdays[1] >= day:
            return tuesdays[1]
        month = (month + timedelta(days=32)).replace(day=1)


@pytest.mark.parametrize(
    ("kind", "rule"),
    [("weekly", "FREQ=WEEKLY;BYDAY={day};COUNT=20"), ("second Tuesday", "FREQ=MONTHLY;BYDAY=2TU")],
)
def test_a_graph_series_stays_one_crm_record_through_edits_on_both_sides(world: World, kind: str, rule: str) -> None:
    org = make_org(world, "graph")
    org.only("events")
    if kind == "weekly":
        start = (NOW - timedelta(days=20)).replace(hour=9, minute=0, second=0)
        recurrence = _weekly_series(start)
    else:
        start = _second_tuesday_after(NOW - timedelta(days=60))
        recurrence = _second_tuesday_series(start)
    master = org.put_event("Board review", start, start + HOUR, recurrence=recurrence)
    window = {
        "startDateTime": (NOW - timedelta(days=90)).isoformat(),
        "endDateTime": (NOW + timedelta(days=90)).isoformat(),
    }

    assert counts(org.sync(), "events", "crm")["created"] == 1
    (record,) = org.records("Events")
    assert record["Recurring_Activity"]["RRULE"] == rule.format(day=start.strftime("%a")[:2].upper())
    assert wrote_nothing(org.sync())

    with _graph(org) as graph:  # in Outlook: one occurrence moved, one cancelled, the series renamed
        occurrences = graph.get(f"/me/events/{master}/instances", params=window).json()["value"]
        assert len(occurrences) >= 3
        moved = occurrences[1]
        graph.patch(f"/me/events/{moved['id']}", json={"location": {"displayName": "Room 2"}}).raise_for_status()
        graph.delete(f"/me/events/{occurrences[2]['id']}").raise_for_status()
        graph.patch(f"/me/events/{master}", json={"subject": "Board review (Q3)"}).raise_for_status()
    org.sync()
    (record,) = [r for r in org.records("Events") if r.get("Recurring_Activity")]
    assert record["Event_Title"] == "Board review (Q3)"
    assert record["Recurring_Activity"]["RRULE"] == rule.format(day=start.strftime("%a")[:2].upper())
    (changed,) = [r for r in org.records("Events") if not r.get("Recurring_Activity")]  # the one in Room 2
    assert changed["Exsync_Series"] == record["id"] and changed["Venue"] == "Room 2", changed
    assert _instant(changed["Exsync_Original_Start"]) == _instant(moved["originalStart"])
    assert len(record["Recurring_Activity"]["EXDATE"].split(",")) == 2  # the moved and the cancelled

    org.update("Events", record["id"], {"Venue": "Hall B"})  # in the CRM
    org.sync()
    (item,) = org.items("calendar")
    assert item["location"]["displayName"] == "Hall B"
    assert item["recurrence"]["pattern"].items() >= recurrence["pattern"].items()
    assert wrote_nothing(org.sync())
    assert len(org.records("Events")) == 2 and len(org.items("calendar")) == 1  # the series and its exception

    with _graph(org) as graph:
        graph.delete(f"/me/events/{master}").raise_for_status()
    assert counts(org.sync(), "events", "crm")["deleted"] == 1
    assert org.records("Events") == []
