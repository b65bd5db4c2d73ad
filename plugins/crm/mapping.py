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
- ``Exsync_Time_Zone`` (Events): the IANA time zone whose wall clock a series keeps (a Zoho
  date-time carries only an offset).
- ``Exsync_Series`` and ``Exsync_Original_Start`` (Events): on the record of a changed
  occurrence, the id of its series' record and the occurrence's original start (UTC ISO).

A recurring series is one Events record whose ``Recurring_Activity`` holds the ``RRULE`` and,
in ``EXDATE``, the local dates (in the series' time zone; comma-separated ``yyyy-mm-dd``) of
every occurrence taken out of the series' plain run: the cancelled ones and the originals of
the changed ones, so that the CRM calendar shows no occurrence twice. Each changed occurrence
is an Events record of its own (an *override*: its own time, title, venue and description,
the series' participants) linked to the series by ``Exsync_Series``. Zoho documents nothing
for a changed occurrence, hence the override records. Reading a series
(:func:`series_from_native`), an EXDATE date is a cancelled occurrence unless an override
record of that date exists; an override record whose date is not in EXDATE is none.

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
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from framework.errors import RecordRejected
from framework.model import Contact, Event, Mail, Occurrence, Task
from framework.recurrence import is_occurrence, occurrence_starts, zone

LINK_FIELD = "Exsync_Link"
COMPANY_FIELD = "Exsync_Company"
UID_FIELD = "Exsync_UID"
ZONE_FIELD = "Exsync_Time_Zone"
SERIES_FIELD = "Exsync_Series"
ORIGINAL_FIELD = "Exsync_Original_Start"
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
    """The Events record of ``event``; a series' with its EXDATE and time zone (its changed
    occurrences are records of their own: :func:`override_to_native`)."""
    recurring: dict[str, str] | None = None
    if event.recurrence:
        recurring = {"RRULE": event.recurrence}
        removed = exdates(event)
        if removed:
            recurring["EXDATE"] = ",".join(day.isoformat() for day in removed)
    return {
        "Event_Title": _out(event.subject),
        "Start_DateTime": format_time(event.start),
        "End_DateTime": format_time(event.end),
        "All_day": event.all_day,
        "Venue": _out(event.location),
        "Description": _out(event.body),
        "Participants": _participants(event),
        "Recurring_Activity": recurring,
        UID_FIELD: _out(event.ical_uid),
        ZONE_FIELD: _out(event.timezone) if event.recurrence else None,
    }


def _participants(event: Event) -> list[dict[str, str]]:
    return [{"type": "email", "participant": address} for address in event.attendees]


def event_from_native(native: Native) -> Event:
    """The event of an Events record (a series without its override records)."""
    return series_from_native(native, [])


def as_written(event: Event) -> Event:
    """``event`` with only the cancellations and exceptions whose original start is an
    occurrence of its pattern: the others are not written."""
    if not event.cancelled and not event.exceptions:
        return event
    try:
        cancelled = tuple(m for m in event.cancelled if is_occurrence(event, m))
        exceptions = tuple(o for o in event.exceptions if is_occurrence(event, o.original_start))
    except RecordRejected:  # a pattern that does not expand holds no occurrence
        cancelled, exceptions = (), ()
    if (cancelled, exceptions) == (event.cancelled, event.exceptions):
        return event
    return replace(event, cancelled=cancelled, exceptions=exceptions)


def exdates(event: Event) -> list[date]:
    """The local dates of the occurrences taken out of ``event``'s plain run: the cancelled
    ones and the originals of the changed ones (only those of the pattern)."""
    written = as_written(event)
    local = zone(written.timezone if not written.all_day else "")
    moments = {*written.cancelled, *(o.original_start for o in written.exceptions)}
    return sorted({moment.astimezone(local).date() for moment in moments})


def override_to_native(event: Event, occurrence: Occurrence, series_id: str) -> Native:
    """The Events record of one changed occurrence of the series ``event`` (record ``series_id``)."""
    return {
        "Event_Title": _out(occurrence.subject),
        "Start_DateTime": format_time(occurrence.start),
        "End_DateTime": format_time(occurrence.end),
        "All_day": event.all_day,
        "Venue": _out(occurrence.location),
        "Description": _out(occurrence.body),
        "Participants": _participants(event),
        "Recurring_Activity": None,
        UID_FIELD: None,
        ZONE_FIELD: None,
        SERIES_FIELD: series_id,
        ORIGINAL_FIELD: format_time(occurrence.original_start.astimezone(UTC)),
    }


def overrides_to_native(event: Event, series_id: str) -> list[Native]:
    """The override records of ``event``'s changed occurrences (those of its pattern)."""
    return [override_to_native(event, o, series_id) for o in as_written(event).exceptions]


def override_key(native: Native) -> tuple[str, datetime | None]:
    """Which occurrence of which series an override record changes."""
    return series_of(native), original_start(native)


def override_content(native: Native) -> tuple[Any, ...]:
    """What an override record holds, as read: equal for a payload and the record it made."""
    all_day = bool(native.get("All_day"))
    participants = sorted(a for a in map(_participant, native.get("Participants") or []) if a)
    texts = (_text(native.get(name)) for name in ("Event_Title", "Venue", "Description"))
    return (*override_key(native), *_times(native, all_day), all_day, *texts, participants)


def series_of(native: Native) -> str:
    """The series record an override record belongs to ('' for any other record)."""
    return _text(native.get(SERIES_FIELD)).strip()


def original_start(native: Native) -> datetime | None:
    """The original start an override record replaces (None when unreadable)."""
    try:
        moment = parse_time(native.get(ORIGINAL_FIELD))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment else None


def has_exdates(native: Native) -> bool:
    """Whether an Events record is a series with occurrences taken out (and so may have overrides)."""
    recurring = native.get("Recurring_Activity")
    return isinstance(recurring, dict) and bool(_exdate_values(recurring.get("EXDATE")))


def series_from_native(native: Native, overrides: list[Native]) -> Event:
    """The event of an Events record, a series with its cancellations (EXDATE dates) and
    exceptions (``overrides``, its override records).

    An EXDATE date stands for the occurrences on that local date; an override record counts
    when its date is in EXDATE, for the occurrence at its original start (or, the pattern's
    time of day changed since, the one on its date). What is left of EXDATE is cancelled."""
    recurring = native.get("Recurring_Activity")
    all_day = bool(native.get("All_day"))
    start, end = _times(native, all_day)
    event = Event(
        subject=_text(native.get("Event_Title")),
        start=start,
        end=end,
        all_day=all_day,
        location=_text(native.get("Venue")),
        body=_text(native.get("Description")),
        attendees=tuple(a for a in map(_participant, native.get("Participants") or []) if a),
        recurrence=_text(recurring.get("RRULE")) if isinstance(recurring, dict) else "",
        ical_uid=_text(native.get(UID_FIELD)),
        timezone=_zone_name(native.get(ZONE_FIELD)),
    )
    removed = set(_exdate_values(recurring.get("EXDATE"))) if isinstance(recurring, dict) else set()
    if not event.recurrence or not removed:
        return event
    try:
        return _with_exceptions(event, removed, overrides)
    except RecordRejected:  # a pattern that does not expand: the series without them
        return event


def _with_exceptions(event: Event, removed: set[date], overrides: list[Native]) -> Event:
    local = zone(event.timezone if not event.all_day else "")
    until = datetime.combine(max(removed) + timedelta(days=2), time(), UTC)
    on_day: dict[date, list[datetime]] = {}
    for moment in occurrence_starts(event, until):
        day = moment.astimezone(local).date()
        if day in removed:
            on_day.setdefault(day, []).append(moment)
    changed: dict[datetime, Occurrence] = {}
    for override in overrides:
        original = original_start(override)
        candidates = on_day.get(original.astimezone(local).date(), []) if original else []
        free = [m for m in candidates if m not in changed]
        chosen = original if original in free else next(iter(free), None)
        if chosen is not None:
            changed[chosen] = _occurrence(override, chosen, event.all_day)
    cancelled = tuple(m for moments in on_day.values() for m in moments if m not in changed)
    return replace(event, cancelled=cancelled, exceptions=tuple(changed.values()))


def _occurrence(native: Native, original: datetime, all_day: bool) -> Occurrence:
    start, end = _times(native, all_day or bool(native.get("All_day")))
    return Occurrence(
        original_start=original,
        start=start,
        end=end,
        subject=_text(native.get("Event_Title")),
        location=_text(native.get("Venue")),
        body=_text(native.get("Description")),
    )


def _times(native: Native, all_day: bool) -> tuple[datetime | None, datetime | None]:
    start, end = parse_time(native.get("Start_DateTime")), parse_time(native.get("End_DateTime"))
    return _all_day(start, end) if all_day else (start, end)


def _exdate_values(value: Any) -> list[date]:
    """The dates of an EXDATE: ``yyyy-mm-dd`` (or ``yyyymmdd``, with or without a time) separated
    by commas; what is no date is left out."""
    days = []
    for part in _text(value).split(","):
        digits = part.strip().replace("-", "")[:8]
        try:
            days.append(date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])))
        except ValueError:
            continue
    return days


def _zone_name(value: Any) -> str:
    """The series' time zone: an IANA name, or '' (UTC) for anything else."""
    name = _text(value).strip()
    try:
        zone(name)
    except RecordRejected:
        return ""
    return name


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
    ZONE_FIELD,
    SERIES_FIELD,
    ORIGINAL_FIELD,
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
    "Events": (
        (LINK_FIELD, "Exsync Link"),
        (UID_FIELD, "Exsync UID"),
        (ZONE_FIELD, "Exsync Time Zone"),
        (SERIES_FIELD, "Exsync Series"),
        (ORIGINAL_FIELD, "Exsync Original Start"),
    ),
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
        ZONE_FIELD: "text",
        SERIES_FIELD: "text",
        ORIGINAL_FIELD: "text",
    },
}


def read_fields(module: str) -> tuple[str, ...]:
    """The fields a listing of ``module`` asks for (``id`` and ``Email`` for the people mails
    are associated with)."""
    return next((m.read_fields for m in MAPPINGS.values() if m.module == module), ("Email", "Owner"))
