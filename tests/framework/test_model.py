"""The canonical model: a stable content hash, and a lossless plain (JSON) form of every record."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framework.model import (
    PRIORITIES,
    PRIVACY_FIELDS,
    SENSITIVITIES,
    SERIES_FIELDS,
    TASK_STATUSES,
    Attachment,
    Contact,
    Event,
    Mail,
    Occurrence,
    Record,
    Task,
    content_hash,
    from_plain,
    to_plain,
)

# -- strategies -------------------------------------------------------------------------------
OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))])
# Fixed offsets only: zoneinfo's ambiguous wall times compare unequal across zones (PEP 495),
# which is Python's rule, not the model's.
MOMENTS = st.none() | st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.none() | OFFSETS
)
ADDRESSES = st.lists(st.emails(), max_size=3).map(tuple)

contacts = st.builds(
    Contact, **{f.name: st.text(max_size=20) for f in dataclasses.fields(Contact) if f.name != "categories"}
)
tasks = st.builds(
    Task,
    subject=st.text(),
    due=st.none() | st.dates(),
    status=st.sampled_from(TASK_STATUSES),
    priority=st.sampled_from(PRIORITIES),
    body=st.text(),
)
events = st.builds(
    Event,
    subject=st.text(),
    start=MOMENTS,
    end=MOMENTS,
    all_day=st.booleans(),
    location=st.text(),
    body=st.text(),
    attendees=ADDRESSES,
    recurrence=st.sampled_from(["", "FREQ=WEEKLY;BYDAY=MO;COUNT=10", "FREQ=DAILY"]),
    ical_uid=st.text(),
)
mails = st.builds(
    Mail,
    message_id=st.text(),
    subject=st.text(),
    sender=st.emails(),
    to=ADDRESSES,
    cc=ADDRESSES,
    sent_at=MOMENTS,
    body=st.text(),
    folder=st.sampled_from(["inbox", "sent"]),
    attachments=st.lists(st.builds(Attachment, name=st.text(), size=st.integers(0, 10**9)), max_size=3).map(tuple),
)
records = st.one_of(contacts, tasks, events, mails)

ANN = Contact(first_name="Ann", last_name="Lee", email="ann@example.com")


# -- content hash -----------------------------------------------------------------------------
def test_content_hash_is_a_fixed_digest_across_runs_and_machines():
    # Stored hashes outlive the process: this digest must never change between releases.
    assert content_hash(ANN) == "82778185ac63e8fefa02ff69f023e550d6f9e7f71c78c60070cd6841ad6254f9"


START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("record", "digest"),
    [
        (
            Task(subject="Call Ann", due=date(2026, 3, 1), status="in_progress", priority="high"),
            "d5ad6511d3ecacc6527219745495c2501152bbcc6b8cde1ad1ae60f6fbbbd507",
        ),
        (
            Event("Stand-up", START, START + timedelta(minutes=15), attendees=("a@x",), recurrence="FREQ=DAILY"),
            "1491fa2db18c66aa869db9dd4a9ca43252c6e7e88464e88d8f97fcce757bddcd",
        ),
        (
            Mail("<m1@x>", "Hi", "a@x", ("b@x",), sent_at=START, attachments=(Attachment("a.pdf", 10),)),
            "5c6b2608ab43d0eb7546166bcf2664058b12a2503f99eb413ca8a83fab84f188",
        ),
        (
            Contact(first_name="Zoë", last_name="Ørsted"),
            "6929b251c344598dcf61e406aec141f2629a64b5c1a5b4d073cc749e48f06562",
        ),
    ],
    ids=["Task", "Event", "Mail", "Contact-non-ascii"],
)
def test_content_hash_of_every_record_type_is_a_fixed_digest(record, digest):
    assert content_hash(record) == digest


@given(records)
def test_equal_content_gives_an_equal_hash(record):
    copy = from_plain(json.loads(json.dumps(to_plain(record))))
    assert content_hash(copy) == content_hash(record)
    assert content_hash(dataclasses.replace(record)) == content_hash(record)


@given(records, st.data())
def test_changing_any_field_changes_the_hash(record, data):
    hashed = [f for f in dataclasses.fields(record) if f.name not in (*PRIVACY_FIELDS, *SERIES_FIELDS)]
    field = data.draw(st.sampled_from(hashed))
    value = getattr(record, field.name)
    if isinstance(value, str):
        changed = value + "x"
    elif isinstance(value, bool):
        changed = not value
    elif isinstance(value, tuple):
        changed = (*value, Attachment("x", 1)) if field.name == "attachments" else (*value, "x@example.com")
    elif isinstance(value, datetime):
        changed = value + timedelta(seconds=1)
    elif isinstance(value, date):
        changed = value + timedelta(days=1) if value < date.max else value - timedelta(days=1)
    else:  # None: an empty date or moment gets one
        changed = date(2026, 1, 1) if field.name == "due" else datetime(2026, 1, 1, tzinfo=UTC)
    assert content_hash(dataclasses.replace(record, **{field.name: changed})) != content_hash(record)


SERIES_START = datetime(2027, 3, 1, 8, tzinfo=UTC)
SERIES = Event("Review", SERIES_START, SERIES_START + timedelta(hours=1), recurrence="FREQ=WEEKLY;COUNT=10")
MOVED = Occurrence(SERIES_START + timedelta(weeks=1), SERIES_START + timedelta(weeks=1, hours=2))


@pytest.mark.parametrize(
    "change",
    [
        {"timezone": "Europe/Berlin"},
        {"cancelled": (SERIES_START + timedelta(weeks=2),)},
        {"exceptions": (MOVED,)},
        {"exceptions": (dataclasses.replace(MOVED, subject="Review (moved)"),)},
    ],
)
def test_a_series_time_zone_cancellations_and_exceptions_change_its_hash(change):
    assert content_hash(dataclasses.replace(SERIES, **change)) != content_hash(SERIES)


def test_a_single_event_holds_no_series_fields_and_a_series_keeps_each_occurrence_once():
    single = dataclasses.replace(SERIES, recurrence="", timezone="Europe/Berlin", exceptions=(MOVED,))
    assert (single.timezone, single.cancelled, single.exceptions) == ("", (), ())
    both = dataclasses.replace(SERIES, cancelled=(MOVED.original_start,), exceptions=(MOVED, MOVED))
    assert both.exceptions == () and both.cancelled == (MOVED.original_start,)
    as_the_series = Occurrence(MOVED.original_start, MOVED.original_start, MOVED.original_start + timedelta(hours=1))
    assert dataclasses.replace(SERIES, exceptions=(dataclasses.replace(as_the_series, subject="Review"),)) == SERIES


def test_a_series_survives_its_plain_form():
    series = dataclasses.replace(SERIES, timezone="Europe/Berlin", cancelled=(SERIES_START,), exceptions=(MOVED,))
    assert from_plain(json.loads(json.dumps(to_plain(series)))) == series


@given(records, st.sampled_from(SENSITIVITIES), st.lists(st.text(max_size=10), max_size=3))
def test_sensitivity_and_categories_change_no_hash(record, sensitivity, categories):
    """They decide whether a record leaves the mailbox, not what it holds (the CRM carries neither)."""
    marked = dataclasses.replace(record, sensitivity=sensitivity, categories=tuple(categories))
    assert content_hash(marked) == content_hash(record)
    assert from_plain(json.loads(json.dumps(to_plain(marked)))) == marked


def test_the_same_content_in_another_record_type_hashes_differently():
    assert content_hash(Task(subject="x")) != content_hash(Event(subject="x"))


@pytest.mark.parametrize(
    "offset", [timezone(timedelta(hours=2)), timezone(timedelta(hours=-8)), timezone(timedelta(hours=5, minutes=45))]
)
def test_timezone_equivalent_moments_hash_the_same(offset):
    utc = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    local = utc.astimezone(offset)
    assert local.tzinfo != utc.tzinfo
    assert content_hash(Event(subject="s", start=local, end=local)) == content_hash(
        Event(subject="s", start=utc, end=utc)
    )
    assert content_hash(Mail(sent_at=local)) == content_hash(Mail(sent_at=utc))


def test_the_same_wall_time_in_another_zone_hashes_differently():
    moment = datetime(2026, 3, 2, 9, 30)
    assert content_hash(Event(start=moment.replace(tzinfo=UTC))) != content_hash(
        Event(start=moment.replace(tzinfo=timezone(timedelta(hours=2))))
    )


def test_a_lone_surrogate_hashes_instead_of_crashing():
    # What json.loads makes of a text cut in the middle of a UTF-16 surrogate pair.
    body = json.loads('"cut here \\ud83d"')
    assert content_hash(Mail(body=body)) != content_hash(Mail(body="cut here "))


# -- plain form -------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", [contacts, tasks, events, mails], ids=["Contact", "Task", "Event", "Mail"])
@given(data=st.data())
def test_to_plain_and_from_plain_round_trip_through_json(strategy, data):
    record: Record = data.draw(strategy)
    plain = to_plain(record)
    assert plain["_type"] == type(record).__name__
    back = from_plain(json.loads(json.dumps(plain)))
    assert type(back) is type(record)
    assert back == record
    assert content_hash(back) == content_hash(record)


def test_from_plain_restores_rich_types():
    start = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    mail = from_plain(to_plain(Mail(to=("a@x",), sent_at=start, attachments=(Attachment("a.pdf", 10),))))
    assert isinstance(mail, Mail)
    assert mail.to == ("a@x",) and mail.attachments == (Attachment("a.pdf", 10),)
    assert mail.sent_at == start and mail.sent_at is not None and mail.sent_at.tzinfo is not None
    task = from_plain(to_plain(Task(due=date(2026, 1, 31))))
    assert isinstance(task, Task) and task.due == date(2026, 1, 31)
    event = from_plain(to_plain(Event(attendees=("a@x", "b@x"))))
    assert isinstance(event, Event) and event.attendees == ("a@x", "b@x") and event.start is None
