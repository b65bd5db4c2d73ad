"""Canonical records <-> Zoho CRM v8 records, one :class:`ModuleMapping` per entity.

Fields the canonical model has and Zoho has not are kept in custom fields
(:data:`CUSTOM_FIELDS`, single lines of 255), which ``exsync install --create-fields``
creates through Zoho's Create Custom Fields API, or an admin in Setup > Modules and Fields:

- ``Exsync_Link`` (Contacts, Tasks, Events): the Exchange id of the counterpart
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
:data:`WRITTEN_FIELDS` names every field written, with the Zoho data type of what is written.

Mails are no records in Zoho: :func:`mail_to_native` is the entry of an ``associate_email``
call, and :func:`mail_from_native` reads it, or a mail of an Emails related list, back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from framework.model import Contact, Event, Mail, Task

LINK_FIELD = "Exsync_Link"
COMPANY_FIELD = "Exsync_Company"
UID_FIELD = "Exsync_UID"
SINGLE_LINE_MAX = 255
MULTI_LINE_MAX = 32000

Native = dict[str, Any]
COMMON_FIELDS = ("Owner", "Modified_Time", LINK_FIELD)  # read from every synced module

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

    ``fields`` are the API names :attr:`from_native` reads (every read names them, as v8
    requires), besides :data:`COMMON_FIELDS`; ``dated`` gives the moment the six-month window
    applies to (None: not windowed).
    """

    entity: str
    module: str
    to_native: Callable[[Any], Native]
    from_native: Callable[[Native], Any]
    fields: tuple[str, ...] = ()
    dated: Callable[[Any], datetime | date | None] | None = None

    @property
    def read_fields(self) -> tuple[str, ...]:
        """Every field a listing of the module asks for."""
        return (*self.fields, *COMMON_FIELDS)


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
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
MAIL_SUBJECT_MAX = 250  # associate_email takes subjects of 1 to 250 characters
SENT_FOLDER = "sentitems"


def mail_to_native(mail: Mail) -> Native:
    """The associate_email entry of ``mail`` (Zoho's v8 ``associate_email`` schema): a mail from
    the Sent Items folder is ``sent``, any other received. The subject is cut to what Zoho
    holds (a mail is an archived copy, better shortened than refused); recipients that are no
    mail address (``undisclosed-recipients:;``) are left out; attachments are not carried
    (associate_email takes only files already uploaded to Zoho)."""
    return {
        "from": _mail_address(mail.sender),
        "to": [_mail_address(a) for a in mail.to if is_address(a)],
        "cc": [_mail_address(a) for a in mail.cc if is_address(a)],
        "subject": _out(mail.subject[:MAIL_SUBJECT_MAX]),
        "content": _out(mail.body[:MULTI_LINE_MAX]),
        "mail_format": "text",
        "original_message_id": mail.message_id,
        "sent": mail.folder == SENT_FOLDER,
        "date_time": format_time(mail.sent_at),
    }


def mail_from_native(native: Native) -> Mail:
    """A mail from an associate_email entry or from an entry of an Emails related list."""
    sent = bool(native.get("sent"))
    return Mail(
        message_id=_text(native.get("original_message_id")),
        subject=_text(native.get("subject")),
        sender=_address_of(native.get("from")),
        to=tuple(_address_of(a) for a in native.get("to") or []),
        cc=tuple(_address_of(a) for a in native.get("cc") or []),
        sent_at=parse_time(native.get("date_time") or native.get("sent_time")),
        body=_text(native.get("content")),
        folder=SENT_FOLDER if sent else "inbox",
    )


def mail_fingerprint(native: Native) -> tuple[str, str, str]:
    """What tells one associated mail from another in an Emails related list, which does not
    show the Internet Message-ID: the sender, the subject and the time, to the second, in UTC."""
    stamp = native.get("date_time") or native.get("sent_time")
    try:
        moment = parse_time(stamp)
    except ValueError:  # a time in another form is compared as it is written
        moment = None
    when = moment.astimezone(UTC).replace(microsecond=0).isoformat() if moment else _text(stamp)
    return _address_of(native.get("from")).strip().lower(), _text(native.get("subject")), when


def is_address(text: str) -> bool:
    """Whether ``text`` looks like a mail address (Zoho refuses anything else)."""
    return _ADDRESS.fullmatch(text) is not None


def _mail_address(address: str) -> dict[str, str]:
    return {"user_name": address.partition("@")[0], "email": address}


def _address_of(value: Any) -> str:
    return _text(value.get("email")) if isinstance(value, dict) else ""


def mail_date(mail: Mail) -> datetime | None:
    return mail.sent_at


TASK_FIELDS = ("Subject", "Due_Date", "Status", "Priority", "Description")
EVENT_FIELDS = (
    "Event_Title",
    "Start_DateTime",
    "End_DateTime",
    "All_day",
    "Venue",
    "Description",
    "Participants",
    "Recurring_Activity",
    UID_FIELD,
)

MAPPINGS: dict[str, ModuleMapping] = {
    "contacts": ModuleMapping(
        "contacts",
        "Contacts",
        contact_to_native,
        contact_from_native,
        (*CONTACT_FIELDS.values(), "Last_Name", "Account_Name", COMPANY_FIELD),
    ),
    "tasks": ModuleMapping("tasks", "Tasks", task_to_native, task_from_native, TASK_FIELDS, task_date),
    "events": ModuleMapping("events", "Events", event_to_native, event_from_native, EVENT_FIELDS, event_date),
    "mails": ModuleMapping("mails", "Emails", mail_to_native, mail_from_native, (), mail_date),
}


# the custom fields exsync writes, by module: (API name, label); each a single line of 255
CUSTOM_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "Contacts": ((LINK_FIELD, "Exsync Link"), (COMPANY_FIELD, "Exsync Company")),
    "Tasks": ((LINK_FIELD, "Exsync Link"),),
    "Events": ((LINK_FIELD, "Exsync Link"), (UID_FIELD, "Exsync UID")),
}
CUSTOM_TYPE, CUSTOM_LENGTH = "text", SINGLE_LINE_MAX

_OWNED = {"Owner": "ownerlookup", LINK_FIELD: "text"}
# every field exsync writes, by module, with the Zoho data type of the value it writes
WRITTEN_FIELDS: dict[str, dict[str, str]] = {
    "Contacts": {
        **_OWNED,
        "First_Name": "text",
        "Last_Name": "text",
        "Email": "email",
        "Phone": "phone",
        "Mobile": "phone",
        "Title": "text",
        "Department": "text",
        "Mailing_Street": "text",
        "Mailing_City": "text",
        "Mailing_State": "text",
        "Mailing_Zip": "text",
        "Mailing_Country": "text",
        "Description": "textarea",
        COMPANY_FIELD: "text",
    },
    "Tasks": {
        **_OWNED,
        "Subject": "text",
        "Due_Date": "date",
        "Status": "picklist",
        "Priority": "picklist",
        "Description": "textarea",
    },
    "Events": {
        **_OWNED,
        "Event_Title": "text",
        "Start_DateTime": "datetime",
        "End_DateTime": "datetime",
        "All_day": "boolean",
        "Venue": "text",
        "Description": "textarea",
        "Participants": "participants",
        "Recurring_Activity": "RRULE",
        UID_FIELD: "text",
    },
}


def read_fields(module: str) -> tuple[str, ...]:
    """The fields a listing of ``module`` asks for (``id`` and ``Email`` for the people mails
    are associated with)."""
    return next((m.read_fields for m in MAPPINGS.values() if m.module == module), ("Email", "Owner"))
