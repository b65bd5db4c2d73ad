"""Edge cases over the fakes: large bodies, unusual characters, malformed addresses. A record
that cannot be written is reported in the summary and retried next run; the rest goes on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from entity_support import NOW, counts, wrote_nothing

HOUR = timedelta(hours=1)
ODD = "Réunion 🎉👩‍💻 مرحبا بالعالم עברית\tstop\u200f\u202eRTL\u202c «ü» \u0007bell \u001funit"
ODD_BODY = "line 1\nline 2\r\n\tindented 🧪\nשלום\u00a0world\u2028next"  # noqa: RUF001


def test_a_task_body_over_the_crm_limit_is_reported_and_retried_while_the_rest_goes_on(org):
    """Tasks and events flow both ways, so their bodies are never cut: a body longer than the
    CRM's 32,000 characters is refused by the CRM, reported with the field and the limit, and
    tried again on every run until it is shortened in Exchange."""
    org.only("tasks")
    due = NOW.date() + timedelta(days=3)
    big = org.put_task("Big", due, body={"contentType": "text", "content": "a" * 100_000})
    org.put_task("Small", due, body={"contentType": "text", "content": "ok"})
    report = org.sync()
    tasks = report["entities"]["tasks"]
    assert report["outcome"] == "partial" and tasks["crm"]["created"] == 1 and tasks["crm"]["errors"] == 1
    assert any("Description" in e and "32000" in e for e in tasks["errors"]), tasks["errors"]
    assert [r["Subject"] for r in org.records("Tasks")] == ["Small"]
    again = org.sync()
    assert again["entities"]["tasks"]["crm"]["errors"] == 1  # retried, still refused, still reported
    org.patch("tasks", big, {"body": {"contentType": "text", "content": "a" * 31_000}})
    fixed = org.sync()
    assert fixed["outcome"] == "ok" and fixed["entities"]["tasks"]["crm"]["created"] == 1
    assert len(org.record("Tasks", "Subject", "Big")["Description"]) == 31_000
    assert wrote_nothing(org.sync())


def test_a_large_event_body_within_the_limit_travels_both_ways_intact(org):
    org.only("events")
    start = (NOW + timedelta(days=5)).replace(minute=0, second=0)
    body = ("Zeile ✓ " * 4000)[:31_999]
    org.insert(
        "Events",
        {
            "Event_Title": "Long agenda",
            "Start_DateTime": start.isoformat(),
            "End_DateTime": (start + HOUR).isoformat(),
            "Description": body,
        },
    )
    org.sync()
    assert org.item("calendar", "subject", "Long agenda")["body"]["content"] == body
    assert wrote_nothing(org.sync())


@pytest.mark.parametrize("origin", ["crm", "exchange"])
def test_unusual_characters_survive_a_round_trip_and_settle(org, origin):
    org.only("tasks")
    due = NOW.date() + timedelta(days=4)
    if origin == "crm":
        org.insert("Tasks", {"Subject": ODD, "Due_Date": due.isoformat(), "Description": ODD_BODY})
    else:
        org.put_task(ODD, due, body={"contentType": "text", "content": ODD_BODY})
    report = org.sync()
    assert report["outcome"] == "ok", report
    # what the other side cannot hold (EWS: XML-illegal controls, CR line ends) is cleaned
    # there, and the cleaned copy never comes back to overwrite the source
    source = "crm" if origin == "crm" else "exchange"
    assert counts(report, "tasks", source)["updated"] == 0
    assert wrote_nothing(org.sync())
    (record,) = org.records("Tasks")
    if origin == "crm":
        assert (record["Subject"], record["Description"]) == (ODD, ODD_BODY)
    (task,) = org.items("tasks")
    for text in ("🎉👩‍💻", "مرحبا بالعالم", "עברית", "«ü»", "\u202eRTL\u202c"):
        assert text in record["Subject"] and text in task["title"]
    for text in ("🧪", "שלום", "line 2"):
        assert text in record["Description"] and text in task["body"]["content"]


def test_unusual_characters_in_event_fields_settle(org):
    org.only("events")
    start = (NOW + timedelta(days=8)).replace(minute=0, second=0)
    org.put_event(
        ODD,
        start,
        start + HOUR,
        location={"displayName": "会議室 🅰"},
        body={"contentType": "text", "content": ODD_BODY},
    )
    report = org.sync()
    assert report["outcome"] == "ok", report
    record = org.record("Events", "Venue", "会議室 🅰")
    assert "👩‍💻" in record["Event_Title"] and "שלום" in record["Description"]
    assert wrote_nothing(org.sync())


def test_a_contact_with_a_malformed_address_is_reported_and_retried_while_the_rest_goes_on(org):
    org.only("contacts")
    bad = org.put(
        "contacts",
        {"givenName": "Bad", "surname": "Address", "emailAddresses": [{"address": "bad@@example", "name": "Bad"}]},
    )
    org.put(
        "contacts", {"givenName": "Good", "surname": "Address", "emailAddresses": [{"address": "good@example.com"}]}
    )
    report = org.sync()
    contacts = report["entities"]["contacts"]
    assert contacts["crm"]["created"] == 1 and contacts["crm"]["errors"] == 1
    assert any("Email" in e for e in contacts["errors"]), contacts["errors"]
    assert [r["Email"] for r in org.records("Contacts")] == ["good@example.com"]
    assert org.sync()["entities"]["contacts"]["crm"]["errors"] == 1
    org.patch("contacts", bad, {"emailAddresses": [{"address": "bad@example.com", "name": "Bad"}]})
    assert org.sync()["outcome"] == "ok"
    assert sorted(r["Email"] for r in org.records("Contacts")) == ["bad@example.com", "good@example.com"]


def test_an_event_with_a_malformed_attendee_does_not_stop_the_others(org):
    """Graph keeps any attendee text; EWS refuses an address that is not one. Either way the
    other events are written, and a refused one is reported and tried again next run."""
    org.only("events")
    start = (NOW + timedelta(days=9)).replace(minute=0, second=0)
    bad = org.insert(
        "Events",
        {
            "Event_Title": "Odd guest",
            "Start_DateTime": start.isoformat(),
            "End_DateTime": (start + HOUR).isoformat(),
            "Participants": [{"type": "email", "participant": "not an address"}],
        },
    )
    org.insert(
        "Events",
        {"Event_Title": "Fine", "Start_DateTime": start.isoformat(), "End_DateTime": (start + HOUR).isoformat()},
    )
    report = org.sync()
    events = report["entities"]["events"]
    assert "Fine" in {i["subject"] for i in org.items("calendar")}
    if events["exchange"]["errors"]:
        assert org.exchange == "ews" and events["exchange"]["created"] == 1
        assert org.sync()["entities"]["events"]["exchange"]["errors"] == 1
        org.update("Events", bad, {"Participants": [{"type": "email", "participant": "guest@example.com"}]})
        assert org.sync()["outcome"] == "ok"
    assert {i["subject"] for i in org.items("calendar")} == {"Fine", "Odd guest"}
    assert wrote_nothing(org.sync())
