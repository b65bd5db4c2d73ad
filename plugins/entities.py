"""Bundled entities: contacts, tasks, events and mails, and the rules common to every store."""

from __future__ import annotations

from datetime import date, datetime

from framework import hookimpl
from framework.contracts import EntityDefinition
from framework.model import Contact, Event, Mail, Record, Task


def contact_key(record: Record) -> str | None:
    """Contacts pair by e-mail address."""
    assert isinstance(record, Contact)
    return record.email.strip().lower() or None


def task_key(record: Record) -> str | None:
    """Tasks pair by subject and due date."""
    assert isinstance(record, Task)
    subject = record.subject.strip().lower()
    return f"{subject}|{record.due.isoformat() if record.due else ''}" if subject else None


def event_key(record: Record) -> str | None:
    """Events pair by iCalendar UID, else by start and subject."""
    assert isinstance(record, Event)
    if record.ical_uid:
        return f"uid:{record.ical_uid}"
    if record.start is None or not record.subject:
        return None
    return f"{record.start.isoformat()}|{record.subject.strip().lower()}"


def mail_key(record: Record) -> str | None:
    """Mails pair by Internet Message-ID, so nothing is stored twice."""
    assert isinstance(record, Mail)
    return record.message_id.strip().lower() or None


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


CONTACTS = EntityDefinition("contacts", Contact, contact_key, description="CRM Contacts <-> Exchange contacts")
TASKS = EntityDefinition("tasks", Task, task_key, task_date, description="CRM Tasks <-> Exchange tasks")
EVENTS = EntityDefinition("events", Event, event_key, event_date, description="CRM Events <-> calendar items")
MAILS = EntityDefinition(
    "mails", Mail, mail_key, mail_date, writable=frozenset({"crm"}), description="Exchange mails -> CRM mail records"
)


@hookimpl
def exsync_entities() -> list[EntityDefinition]:
    return [CONTACTS, TASKS, EVENTS, MAILS]
