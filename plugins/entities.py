"""Bundled entities: contacts, tasks, events and mails, and the rules common to every store."""

from __future__ import annotations

from datetime import UTC, date, datetime

from framework import hookimpl
from framework.contracts import EntityDefinition
from framework.model import Contact, Event, Mail, Record, Task
from framework.recurrence import merge_series


def contact_keys(record: Record) -> tuple[str, ...]:
    """Contacts pair by e-mail address."""
    assert isinstance(record, Contact)
    email = record.email.strip().lower()
    return (email,) if email else ()


def task_keys(record: Record) -> tuple[str, ...]:
    """Tasks pair by subject and due date."""
    assert isinstance(record, Task)
    subject = record.subject.strip().lower()
    return (f"{subject}|{record.due.isoformat() if record.due else ''}",) if subject else ()


def event_keys(record: Record) -> tuple[str, ...]:
    """Events pair by iCalendar UID, else by start and subject."""
    assert isinstance(record, Event)
    keys: tuple[str, ...] = (f"uid:{record.ical_uid}",) if record.ical_uid else ()
    if record.start is not None and record.subject:
        keys += (f"{record.start.astimezone(UTC).isoformat()}|{record.subject.strip().lower()}",)
    return keys


def mail_keys(record: Record) -> tuple[str, ...]:
    """Mails pair by Internet Message-ID, so nothing is stored twice."""
    assert isinstance(record, Mail)
    message_id = record.message_id.strip().lower()
    return (message_id,) if message_id else ()


def task_date(record: Record) -> date | None:
    assert isinstance(record, Task)
    return record.due


def event_date(record: Record) -> datetime | None:
    """A series stays in the window as long as it recurs; a single event by its end."""
    assert isinstance(record, Event)
    if record.recurrence:
        return None
    return record.end or record.start


def mail_date(record: Record) -> datetime | None:
    assert isinstance(record, Mail)
    return record.sent_at


CONTACTS = EntityDefinition("contacts", Contact, contact_keys, description="CRM Contacts <-> Exchange contacts")
TASKS = EntityDefinition("tasks", Task, task_keys, task_date, description="CRM Tasks <-> Exchange tasks")


def merge_events(winner: Record, loser: Record) -> Record:
    """Both sides changed a series: every occurrence either side changed or cancelled is kept."""
    assert isinstance(winner, Event) and isinstance(loser, Event)
    return merge_series(winner, loser)


EVENTS = EntityDefinition(
    "events", Event, event_keys, event_date, description="CRM Events <-> calendar items", merge=merge_events
)
MAILS = EntityDefinition(
    "mails",
    Mail,
    mail_keys,
    mail_date,
    writable=frozenset({"crm"}),
    keep_deleted=True,
    description="Exchange mails -> CRM mail records; a mail deleted or moved in Exchange stays in the CRM",
)


@hookimpl
def exsync_entities() -> list[EntityDefinition]:
    return [CONTACTS, TASKS, EVENTS, MAILS]
