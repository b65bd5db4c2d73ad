"""Canonical records <-> exchangelib items, and the cross-link extended property.

Each ``*_to_native`` builds an exchangelib item from a canonical record (raising ``ValueError``
for a record Exchange cannot hold), each ``*_from_native`` reads one back. The two are exact
inverses on everything Exchange stores, so ``from_native(to_native(record))`` is what reading a
written record back gives: the store's ``echo``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from exchangelib import (
    UTC,
    Attendee,
    Body,
    CalendarItem,
    EWSDate,
    EWSDateTime,
    ExtendedProperty,
    Mailbox,
)
from exchangelib import Contact as NativeContact
from exchangelib import Message as NativeMessage
from exchangelib import Task as NativeTask
from exchangelib.fields import InvalidField
from exchangelib.indexed_properties import EmailAddress, PhoneNumber, PhysicalAddress
from exchangelib.recurrence import (
    AbsoluteMonthlyPattern,
    DailyPattern,
    EndDatePattern,
    NoEndPattern,
    NumberedPattern,
    Recurrence,
    WeeklyPattern,
)
from exchangelib.util import safe_xml_value

from framework.model import Attachment, Contact, Event, Mail, Record, Task

LINK_FIELD = "exsync_link"


class ExsyncLink(ExtendedProperty):
    """The id of an item's counterpart in the CRM, kept on the Exchange item (a named MAPI property)."""

    property_set_id = "c1a0e2b4-5f3d-4e8a-9b7c-2d6f8a1e4b90"
    property_name = "exsyncLink"
    property_type = "String"


LINKED_CLASSES = (NativeContact, CalendarItem, NativeTask, NativeMessage)


def register_link() -> None:
    """Register :class:`ExsyncLink` as field ``exsync_link`` on every synced item class (idempotent)."""
    for cls in LINKED_CLASSES:
        try:
            cls.get_field_by_fieldname(LINK_FIELD)
        except InvalidField:
            cls.register(LINK_FIELD, ExsyncLink)


def read_link(item: Any) -> str:
    """The cross-link stored on ``item``, or ''."""
    return str(getattr(item, LINK_FIELD, None) or "")


def _text(value: Any) -> str:
    return str(value) if value is not None else ""


def _clean(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (exchangelib would send ``?``)."""
    return safe_xml_value(text, replacement="")


def _or_none(value: str) -> str | None:
    return _clean(value) or None


def _lines(text: str) -> str:
    """Line ends as a body read back over EWS has them: LF only (XML parsing drops the CR of a CR LF)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _body(text: str) -> Body | None:
    text = _lines(_clean(text))
    return Body(text) if text else None


def _body_text(value: Any) -> str:
    return _lines(_text(value))


# sensitivity and categories: on every item; written when an item is created, never updated --------
SENSITIVITY = {"normal": "Normal", "personal": "Personal", "private": "Private", "confidential": "Confidential"}


def _privacy(item: Any) -> dict[str, Any]:
    """The canonical ``sensitivity`` and ``categories`` of any exchangelib item."""
    return {
        "sensitivity": _reverse(SENSITIVITY).get(_text(getattr(item, "sensitivity", None)), "normal"),
        "categories": tuple(_text(c) for c in getattr(item, "categories", None) or () if c),
    }


def _native_privacy(record: Record) -> dict[str, Any]:
    """The exchangelib ``sensitivity`` and ``categories`` of a record, for a new item."""
    return {
        "sensitivity": SENSITIVITY.get(record.sensitivity, "Normal"),
        "categories": [_clean(c) for c in record.categories if _clean(c)] or None,
    }


# contacts --------------------------------------------------------------------------------------
CONTACT_FIELDS = [
    "given_name",
    "surname",
    "display_name",
    "email_addresses",
    "phone_numbers",
    "company_name",
    "job_title",
    "department",
    "physical_addresses",
    "body",
]


def contact_to_native(record: Contact) -> NativeContact:
    """An exchangelib Contact carrying ``record``."""
    name = " ".join(p for p in (record.first_name, record.last_name) if p)
    phones = [
        PhoneNumber(label=label, phone_number=number)
        for label, number in (("BusinessPhone", record.phone), ("MobilePhone", record.mobile))
        if number
    ]
    address_parts = (record.street, record.city, record.state, record.postal_code, record.country)
    address = PhysicalAddress(
        label="Business",
        street=_or_none(record.street),
        city=_or_none(record.city),
        state=_or_none(record.state),
        zipcode=_or_none(record.postal_code),
        country=_or_none(record.country),
    )
    return NativeContact(
        given_name=_or_none(record.first_name),
        surname=_or_none(record.last_name),
        display_name=_clean(name or record.email or record.company) or "(no name)",
        email_addresses=[EmailAddress(label="EmailAddress1", email=record.email)] if record.email else None,
        phone_numbers=phones or None,
        company_name=_or_none(record.company),
        job_title=_or_none(record.title),
        department=_or_none(record.department),
        physical_addresses=[address] if any(address_parts) else None,
        body=_body(record.notes),
        **_native_privacy(record),
    )


def _by_label(entries: Iterable[Any] | None, label: str) -> Any:
    return next((e for e in entries or () if e.label == label), None)


def contact_from_native(item: NativeContact) -> Contact:
    """The canonical contact of an exchangelib Contact."""
    email = _by_label(item.email_addresses, "EmailAddress1") or next(iter(item.email_addresses or ()), None)
    phone = _by_label(item.phone_numbers, "BusinessPhone")
    mobile = _by_label(item.phone_numbers, "MobilePhone")
    address = _by_label(item.physical_addresses, "Business")
    return Contact(
        first_name=_text(item.given_name),
        last_name=_text(item.surname),
        email=_text(email.email if email else None),
        phone=_text(phone.phone_number if phone else None),
        mobile=_text(mobile.phone_number if mobile else None),
        company=_text(item.company_name),
        title=_text(item.job_title),
        department=_text(item.department),
        street=_text(address.street if address else None),
        city=_text(address.city if address else None),
        state=_text(address.state if address else None),
        postal_code=_text(address.zipcode if address else None),
        country=_text(address.country if address else None),
        notes=_body_text(item.body),
        **_privacy(item),
    )


# tasks -----------------------------------------------------------------------------------------
TASK_FIELDS = ["subject", "due_date", "status", "percent_complete", "importance", "body"]
TASK_STATUS = {
    "not_started": "NotStarted",
    "in_progress": "InProgress",
    "completed": "Completed",
    "waiting": "WaitingOnOthers",
    "deferred": "Deferred",
}
IMPORTANCE = {"low": "Low", "normal": "Normal", "high": "High"}


def _reverse(mapping: dict[str, str]) -> dict[str, str]:
    return {v: k for k, v in mapping.items()}


def task_to_native(record: Task) -> NativeTask:
    """An exchangelib Task carrying ``record``."""
    status = TASK_STATUS.get(record.status)
    if status is None:
        raise ValueError(f"unknown task status {record.status!r}")
    return NativeTask(
        subject=_clean(record.subject),
        due_date=EWSDate.from_date(record.due) if record.due else None,
        status=status,
        percent_complete=Decimal(100 if status == "Completed" else 0),
        importance=IMPORTANCE.get(record.priority, "Normal"),
        body=_body(record.body),
        **_native_privacy(record),
    )


def task_from_native(item: NativeTask) -> Task:
    """The canonical task of an exchangelib Task."""
    due = item.due_date
    return Task(
        subject=_text(item.subject),
        due=dt.date(due.year, due.month, due.day) if due else None,
        status=_reverse(TASK_STATUS).get(item.status or "", "not_started"),
        priority=_reverse(IMPORTANCE).get(item.importance or "", "normal"),
        body=_body_text(item.body),
        **_privacy(item),
    )


# events ----------------------------------------------------------------------------------------
# Every attendee is written as required; optional ones and resources are cleared on an update, so
# an attendee Exchange held as optional is not listed twice afterwards.
EVENT_FIELDS = [
    "subject",
    "start",
    "end",
    "is_all_day",
    "location",
    "body",
    "required_attendees",
    "optional_attendees",
    "resources",
    "recurrence",
]
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # exchangelib numbers them 1..7 in this order


def _utc(moment: dt.datetime) -> EWSDateTime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return EWSDateTime.from_datetime(moment.astimezone(dt.UTC)).astimezone(UTC)


def _plain_utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` as a plain (not exchangelib) aware datetime in UTC."""
    utc = moment.astimezone(UTC) if isinstance(moment, EWSDateTime) else moment.astimezone(dt.UTC)
    return dt.datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=dt.UTC)


def _day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(dt.UTC).date() if moment.tzinfo else moment.date()


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def event_to_native(record: Event) -> CalendarItem:
    """An exchangelib CalendarItem carrying ``record`` (all-day events as dates, the end inclusive)."""
    if record.start is None or record.end is None:
        raise ValueError("an event needs a start and an end")
    if record.all_day:
        start_day = _day(record.start)
        end_day = max(_day(record.end - dt.timedelta(days=1)), start_day)
        start: Any = EWSDate.from_date(start_day)
        end: Any = EWSDate.from_date(end_day)
    else:
        start, end = _utc(record.start), _utc(record.end)
    item = CalendarItem(
        subject=_clean(record.subject),
        start=start,
        end=end,
        is_all_day=record.all_day,
        location=_or_none(record.location),
        body=_body(record.body),
        required_attendees=[
            Attendee(mailbox=Mailbox(email_address=a), response_type="Unknown") for a in record.attendees
        ]
        or None,
        recurrence=rrule_to_native(record.recurrence, _day(record.start)) if record.recurrence else None,
        **_native_privacy(record),
    )
    if record.ical_uid:
        item.uid = record.ical_uid
    return item


def _event_moment(value: Any, end: bool) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return _plain_utc(value)
    return _midnight(value + dt.timedelta(days=1) if end else value)


def event_from_native(item: CalendarItem) -> Event:
    """The canonical event of an exchangelib CalendarItem."""
    everyone = (*(item.required_attendees or ()), *(item.optional_attendees or ()), *(item.resources or ()))
    attendees = tuple(a.mailbox.email_address for a in everyone if a.mailbox and a.mailbox.email_address)
    start = _event_moment(item.start, end=False)
    return Event(
        subject=_text(item.subject),
        start=start,
        end=_event_moment(item.end, end=True),
        all_day=bool(item.is_all_day),
        location=_text(item.location),
        body=_lines(_text(item.text_body)) or _body_text(item.body),  # as Graph gives it (Exchange 2013+)
        attendees=attendees,
        recurrence=rrule_from_native(item.recurrence) if item.recurrence else "",
        ical_uid=_text(item.uid),
        **_privacy(item),
    )


# recurrence: RFC 5545 RRULE <-> exchangelib Recurrence ------------------------------------------
def _rrule_parts(rule: str) -> dict[str, str]:
    parts = {}
    for chunk in rule.removeprefix("RRULE:").split(";"):
        if chunk:
            key, _, value = chunk.partition("=")
            parts[key.strip().upper()] = value.strip().upper()
    return parts


def _pattern(parts: dict[str, str], start: dt.date) -> Any:
    interval = int(parts.get("INTERVAL", "1"))
    freq = parts.get("FREQ")
    if freq == "DAILY":
        return DailyPattern(interval=interval)
    if freq == "WEEKLY":
        days = parts.get("BYDAY", WEEKDAYS[start.weekday()]).split(",")
        return WeeklyPattern(interval=interval, weekdays=[WEEKDAYS.index(d) + 1 for d in days], first_day_of_week=1)
    if freq == "MONTHLY" and "BYDAY" not in parts:
        day = int(parts.get("BYMONTHDAY", str(start.day)))
        return AbsoluteMonthlyPattern(interval=interval, day_of_month=day)
    raise ValueError(f"the recurrence {';'.join(f'{k}={v}' for k, v in parts.items())} is not supported")


def rrule_to_native(rule: str, start: dt.date) -> Recurrence:
    """An exchangelib Recurrence for an RRULE (daily, weekly, absolute monthly; COUNT or UNTIL)."""
    parts = _rrule_parts(rule)
    try:
        pattern = _pattern(parts, start)
    except (KeyError, ValueError, IndexError) as exc:
        raise ValueError(f"unsupported recurrence {rule!r}: {exc}") from exc
    if "COUNT" in parts:
        boundary: Any = NumberedPattern(start=start, number=int(parts["COUNT"]))
    elif "UNTIL" in parts:
        until = dt.datetime.strptime(parts["UNTIL"][:8], "%Y%m%d").date()
        boundary = EndDatePattern(start=start, end=until)
    else:
        boundary = NoEndPattern(start=start)
    return Recurrence(pattern=pattern, boundary=boundary)


def rrule_from_native(recurrence: Recurrence) -> str:
    """The RRULE of an exchangelib Recurrence ('' for patterns the canonical model does not carry)."""
    pattern, boundary = recurrence.pattern, recurrence.boundary
    if isinstance(pattern, DailyPattern):
        parts = ["FREQ=DAILY"]
    elif isinstance(pattern, WeeklyPattern):
        days = pattern.weekdays if isinstance(pattern.weekdays, list) else [pattern.weekdays]
        parts = ["FREQ=WEEKLY"]
    elif isinstance(pattern, AbsoluteMonthlyPattern):
        parts = ["FREQ=MONTHLY"]
    else:
        return ""
    if pattern.interval and pattern.interval != 1:
        parts.append(f"INTERVAL={pattern.interval}")
    if isinstance(pattern, WeeklyPattern):
        parts.append("BYDAY=" + ",".join(WEEKDAYS[_weekday_number(d) - 1] for d in days))
    if isinstance(pattern, AbsoluteMonthlyPattern):
        parts.append(f"BYMONTHDAY={pattern.day_of_month}")
    if isinstance(boundary, NumberedPattern):
        parts.append(f"COUNT={boundary.number}")
    elif isinstance(boundary, EndDatePattern):
        parts.append(f"UNTIL={boundary.end.strftime('%Y%m%d')}")
    return ";".join(parts)


def _weekday_number(day: Any) -> int:
    if isinstance(day, int):
        return day
    names = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    return names.index(day) + 1


# mails (read only) -----------------------------------------------------------------------------
def _address(mailbox: Any) -> str:
    return _text(getattr(mailbox, "email_address", None))


def mail_from_native(item: NativeMessage, folder: str) -> Mail:
    """The canonical mail of an exchangelib Message in ``folder`` (inbox or sentitems)."""
    sent = item.datetime_sent
    attachments = tuple(Attachment(_text(a.name), int(a.size or 0)) for a in item.attachments or ())
    return Mail(
        message_id=_text(item.message_id),
        subject=_text(item.subject),
        sender=_address(item.sender) or _address(item.author),
        to=tuple(_address(r) for r in item.to_recipients or ()),
        cc=tuple(_address(r) for r in item.cc_recipients or ()),
        sent_at=_plain_utc(sent) if sent else None,
        body=_text(item.text_body) or _text(item.body),
        folder=folder,
        attachments=attachments,
        **_privacy(item),
    )


# the table the store uses ----------------------------------------------------------------------
Mapper = tuple[Callable[[Any], Any], Callable[[Any], Record], list[str]]
MAPPERS: dict[str, Mapper] = {
    "contacts": (contact_to_native, contact_from_native, CONTACT_FIELDS),
    "tasks": (task_to_native, task_from_native, TASK_FIELDS),
    "events": (event_to_native, event_from_native, EVENT_FIELDS),
}
