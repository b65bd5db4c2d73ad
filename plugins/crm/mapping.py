"""Canonical records <-> Zoho CRM v2 records, one :class:`ModuleMapping` per entity.

Fields the canonical model has and Zoho has not are kept in custom fields, which a real
org must create once (Setup > Modules and Fields) with these API names:

- ``Exsync_Link`` (single line, every module): the Exchange id of the counterpart
  (:attr:`framework.contracts.Item.link`), so a sync that lost its state re-pairs records.
- ``Exsync_Company`` (Contacts, single line): the company as Exchange knows it. Zoho's
  ``Account_Name`` is a lookup to an Account, which exsync never creates from a free-text
  company name. Reading prefers the linked Account's name, so a contact a CRM user put in
  an Account shows that Account's name in Exchange; without an Account the text field is used.
- ``Exsync_UID`` (Events, single line): the iCalendar UID of the event.

Zoho insists on ``Last_Name``: a contact without one gets its first name moved there (or,
without either, the local part of its e-mail address). :func:`to_native` followed by
:func:`from_native` is exactly what reading a written record back gives, which is how the
sides' ``echo`` predicts their own writes. Times go to Zoho to the second, with their offset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from framework.model import Attachment, Contact, Event, Mail, Task

LINK_FIELD = "Exsync_Link"
COMPANY_FIELD = "Exsync_Company"
UID_FIELD = "Exsync_UID"
SINGLE_LINE_MAX = 255
MULTI_LINE_MAX = 32000

Native = dict[str, Any]

TASK_STATUS_TO_ZOHO = {
    "not_started": "Not Started",
    "in_progress": "In Progress",
    "completed": "Completed",
    "waiting": "Waiting for input",
    "deferred": "Deferred",
}
TASK_STATUS_FROM_ZOHO = {v.lower(): k for k, v in TASK_STATUS_TO_ZOHO.items()}
PRIORITY_TO_ZOHO = {"low": "Low", "normal": "Normal", "high": "High"}
PRIORITY_FROM_ZOHO = {"lowest": "low", "low": "low", "normal": "normal", "high": "high", "highest": "high"}

CONTACT_FIELDS = {
    "first_name": "First_Name",
    "email": "Email",
    "phone": "Phone",
    "mobile": "Mobile",
    "title": "Title",
    "department": "Department",
    "street": "Mailing_Street",
    "city": "Mailing_City",
    "state": "Mailing_State",
    "postal_code": "Mailing_Zip",
    "country": "Mailing_Country",
    "notes": "Description",
}


@dataclass(frozen=True)
class ModuleMapping:
    """How one entity is stored in one Zoho module.

    ``dated`` gives the moment the six-month window applies to (None: not windowed).
    """

    entity: str
    module: str
    to_native: Callable[[Any], Native]
    from_native: Callable[[Native], Any]
    dated: Callable[[Any], datetime | date | None] | None = None


# -- helpers ----------------------------------------------------------------------------------
def _out(value: str) -> str | None:
    """Empty text is sent as null, which clears the field on update."""
    return value or None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def format_time(moment: datetime | None) -> str | None:
    """Zoho's date-time format: ISO 8601 to the second with an offset (naive means UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.replace(microsecond=0).isoformat()


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_date(value: Any) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


def _lookup_name(value: Any) -> str:
    return _text(value.get("name")) if isinstance(value, dict) else ""


# -- contacts ---------------------------------------------------------------------------------
def contact_to_native(contact: Contact) -> Native:
    """The Contacts record of ``contact``; Last_Name is never left empty if anything can fill it."""
    native: Native = {api: _out(getattr(contact, name)) for name, api in CONTACT_FIELDS.items()}
    last = contact.last_name
    if not last:
        if contact.first_name:
            last, native["First_Name"] = contact.first_name, None
        else:
            last = contact.email.partition("@")[0]
    native["Last_Name"] = _out(last)
    native[COMPANY_FIELD] = _out(contact.company)
    return native


def contact_from_native(native: Native) -> Contact:
    values: dict[str, Any] = {name: _text(native.get(api)) for name, api in CONTACT_FIELDS.items()}
    company = _lookup_name(native.get("Account_Name")) or _text(native.get(COMPANY_FIELD))
    return Contact(last_name=_text(native.get("Last_Name")), company=company, **values)


# -- tasks ------------------------------------------------------------------------------------
def task_to_native(task: Task) -> Native:
    return {
        "Subject": _out(task.subject),
        "Due_Date": task.due.isoformat() if task.due else None,
        "Status": TASK_STATUS_TO_ZOHO.get(task.status, "Not Started"),
        "Priority": PRIORITY_TO_ZOHO.get(task.priority, "Normal"),
        "Description": _out(task.body),
    }


def task_from_native(native: Native) -> Task:
    return Task(
        subject=_text(native.get("Subject")),
        due=_parse_date(native.get("Due_Date")),
        status=TASK_STATUS_FROM_ZOHO.get(_text(native.get("Status")).lower(), "not_started"),
        priority=PRIORITY_FROM_ZOHO.get(_text(native.get("Priority")).lower(), "normal"),
        body=_text(native.get("Description")),
    )


def task_date(task: Task) -> date | None:
    return task.due


# -- events -----------------------------------------------------------------------------------
def event_to_native(event: Event) -> Native:
    return {
        "Event_Title": _out(event.subject),
        "Start_DateTime": format_time(event.start),
        "End_DateTime": format_time(event.end),
        "All_day": event.all_day,
        "Venue": _out(event.location),
        "Description": _out(event.body),
        "Participants": [{"type": "email", "participant": address} for address in event.attendees],
        "Recurring_Activity": {"RRULE": event.recurrence} if event.recurrence else None,
        UID_FIELD: _out(event.ical_uid),
    }


def event_from_native(native: Native) -> Event:
    recurring = native.get("Recurring_Activity")
    all_day = bool(native.get("All_day"))
    start, end = parse_time(native.get("Start_DateTime")), parse_time(native.get("End_DateTime"))
    if all_day:
        start, end = _all_day(start, end)
    return Event(
        subject=_text(native.get("Event_Title")),
        start=start,
        end=end,
        all_day=all_day,
        location=_text(native.get("Venue")),
        body=_text(native.get("Description")),
        attendees=tuple(a for a in map(_participant, native.get("Participants") or []) if a),
        recurrence=_text(recurring.get("RRULE")) if isinstance(recurring, dict) else "",
        ical_uid=_text(native.get(UID_FIELD)),
    )


def _all_day(start: datetime | None, end: datetime | None) -> tuple[datetime | None, datetime | None]:
    """An all-day event's days as the canonical model holds them: UTC midnight to UTC midnight.

    Zoho gives an all-day event midnight in the user's time zone (``2025-05-01T00:00:00+09:00``);
    its date is the wall date in that offset, not the UTC one (which is the day before east of
    UTC). An end that is not a midnight (``23:59``) ends that day.
    """

    def midnight(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=UTC)

    first = midnight(start.date()) if start else None
    last = None
    if end is not None:
        last = midnight(end.date()) + (timedelta(days=1) if end.time() != time() else timedelta())
        if first is not None and last <= first:
            last = first + timedelta(days=1)
    return first, last


def _participant(value: Any) -> str:
    """A participant's address: ``participant`` for e-mail ones, ``Email`` for contacts and leads."""
    if not isinstance(value, dict):
        return ""
    if value.get("type", "email") == "email":
        return _text(value.get("participant"))
    return _text(value.get("Email"))


def event_date(event: Event) -> datetime | None:
    """A series stays in the window as long as it recurs; a single event by its end."""
    return None if event.recurrence else event.end or event.start


# -- mails ------------------------------------------------------------------------------------
def mail_to_native(mail: Mail) -> Native:
    """The Emails record of ``mail``; subject and body are cut to what Zoho holds (a mail
    is an archived copy, better shortened than refused)."""
    return {
        "Message_Id": _out(mail.message_id),
        "Subject": _out(mail.subject[:SINGLE_LINE_MAX]),
        "From": _out(mail.sender),
        "To": list(mail.to),
        "Cc": list(mail.cc),
        "Sent_Time": format_time(mail.sent_at),
        "Content": _out(mail.body[:MULTI_LINE_MAX]),
        "Attachments": [{"name": a.name, "size": a.size} for a in mail.attachments],
        "Folder": _out(mail.folder),
    }


def mail_from_native(native: Native) -> Mail:
    return Mail(
        message_id=_text(native.get("Message_Id")),
        subject=_text(native.get("Subject")),
        sender=_text(native.get("From")),
        to=tuple(_text(a) for a in native.get("To") or []),
        cc=tuple(_text(a) for a in native.get("Cc") or []),
        sent_at=parse_time(native.get("Sent_Time")),
        body=_text(native.get("Content")),
        folder=_text(native.get("Folder")),
        attachments=tuple(
            Attachment(_text(a.get("name")), int(a.get("size") or 0))
            for a in native.get("Attachments") or []
            if isinstance(a, dict)
        ),
    )


def mail_date(mail: Mail) -> datetime | None:
    return mail.sent_at


MAPPINGS: dict[str, ModuleMapping] = {
    "contacts": ModuleMapping("contacts", "Contacts", contact_to_native, contact_from_native),
    "tasks": ModuleMapping("tasks", "Tasks", task_to_native, task_from_native, task_date),
    "events": ModuleMapping("events", "Events", event_to_native, event_from_native, event_date),
    "mails": ModuleMapping("mails", "Emails", mail_to_native, mail_from_native, mail_date),
}
