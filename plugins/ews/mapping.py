"""Canonical records <-> exchangelib items, and the cross-link extended property.

Each ``*_to_native`` builds an exchangelib item from a canonical record (raising ``ValueError``
for a record Exchange cannot hold), each ``*_from_native`` reads one back. The two are exact
inverses on everything Exchange stores, so ``from_native(to_native(record))`` is what reading a
written record back gives: the store's ``echo``. A series' exceptions and cancellations live on
its occurrences, written after it: :func:`event_echo` adds those Exchange will hold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from exchangelib import (
    UTC,
    Attendee,
    Body,
    CalendarItem,
    EWSDate,
    EWSDateTime,
    EWSTimeZone,
    ExtendedProperty,
    Mailbox,
)
from exchangelib import Contact as NativeContact
from exchangelib import Message as NativeMessage
from exchangelib import Task as NativeTask
from exchangelib.errors import UnknownTimeZone
from exchangelib.fields import MONTHS, WEEK_NUMBERS, InvalidField
from exchangelib.fields import WEEKDAYS as WEEKDAYS_NAMES
from exchangelib.indexed_properties import EmailAddress, PhoneNumber, PhysicalAddress
from exchangelib.recurrence import (
    AbsoluteMonthlyPattern,
    AbsoluteYearlyPattern,
    DailyPattern,
    EndDatePattern,
    NoEndPattern,
    NumberedPattern,
    Recurrence,
    RelativeMonthlyPattern,
    RelativeYearlyPattern,
    WeeklyPattern,
)
from exchangelib.util import safe_xml_value

from framework.model import Attachment, Contact, Event, Mail, Occurrence, Record, Task
from framework.recurrence import duration, is_occurrence

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


def series_zone(record: Event) -> EWSTimeZone:
    """The EWSTimeZone a series keeps its wall-clock time in (UTC for a single or all-day event),
    named as reading it back names it; ValueError for a zone Exchange does not know."""
    name = record.timezone if record.recurrence and not record.all_day else ""
    if not name:
        return UTC
    try:
        # Exchange keeps a Windows zone: reading it back gives the IANA zone that stands for it
        return EWSTimeZone.from_ms_id(EWSTimeZone(name).ms_id)
    except (UnknownTimeZone, ValueError) as exc:
        raise ValueError(f"Exchange has no time zone {name!r}") from exc


def _times(start: dt.datetime, end: dt.datetime, all_day: bool, zone: EWSTimeZone) -> tuple[Any, Any]:
    """Start and end as exchangelib takes them: dates for an all-day event (the end inclusive),
    else date-times in ``zone``."""
    if all_day:
        start_day = _day(start)
        end_day = max(_day(end - dt.timedelta(days=1)), start_day)
        return EWSDate.from_date(start_day), EWSDate.from_date(end_day)
    return _utc(start).astimezone(zone), _utc(end).astimezone(zone)


def event_to_native(record: Event) -> CalendarItem:
    """An exchangelib CalendarItem carrying ``record`` (all-day events as dates, the end inclusive).

    A series is written in its own time zone (StartTimeZone), so that Exchange keeps its
    wall-clock time across daylight saving changes; its exceptions and cancellations are
    written to its occurrences once it exists (see the store)."""
    if record.start is None or record.end is None:
        raise ValueError("an event needs a start and an end")
    zone = series_zone(record)
    start, end = _times(record.start, record.end, record.all_day, zone)
    first_day = _day(record.start) if record.all_day else start.date()
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
        recurrence=rrule_to_native(record.recurrence, first_day) if record.recurrence else None,
        **_native_privacy(record),
    )
    if record.recurrence and not record.all_day:
        item._start_timezone = item._end_timezone = zone
    if record.ical_uid:
        item.uid = record.ical_uid
    return item


def occurrence_to_native(record: Event, occurrence: Occurrence) -> CalendarItem:
    """An exchangelib CalendarItem with ``occurrence``'s own values, to save onto one occurrence
    of series ``record`` (its id is set by the caller)."""
    if occurrence.start is None or occurrence.end is None:
        raise ValueError("an occurrence needs a start and an end")
    zone = series_zone(record)
    start, end = _times(occurrence.start, occurrence.end, record.all_day, zone)
    item = CalendarItem(
        subject=_clean(occurrence.subject),
        start=start,
        end=end,
        is_all_day=record.all_day,
        location=_or_none(occurrence.location),
        body=_body(occurrence.body),
    )
    if not record.all_day:
        item._start_timezone = item._end_timezone = zone
    return item


OCCURRENCE_FIELDS = ["start", "end", "subject", "location", "body"]
"""What the store saves on an occurrence to make it an exception."""


def _event_moment(value: Any, end: bool) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return _plain_utc(value)
    return _midnight(value + dt.timedelta(days=1) if end else value)


def _zone_name(item: CalendarItem) -> str:
    zone = getattr(item, "_start_timezone", None)
    key = str(getattr(zone, "key", "") or "")
    return "" if key.upper() in ("UTC", "ETC/UTC") else key


def event_from_native(item: CalendarItem, changed: Mapping[str, CalendarItem] | None = None) -> Event:
    """The canonical event of an exchangelib CalendarItem; for a series master, ``changed`` holds
    the items of its ModifiedOccurrences by id (GetItem), which give its exceptions' values."""
    everyone = (*(item.required_attendees or ()), *(item.optional_attendees or ()), *(item.resources or ()))
    attendees = tuple(a.mailbox.email_address for a in everyone if a.mailbox and a.mailbox.email_address)
    event = Event(
        subject=_text(item.subject),
        start=_event_moment(item.start, end=False),
        end=_event_moment(item.end, end=True),
        all_day=bool(item.is_all_day),
        location=_text(item.location),
        body=_event_body(item),
        attendees=attendees,
        recurrence=rrule_from_native(item.recurrence) if item.recurrence else "",
        ical_uid=_text(item.uid),
        **_privacy(item),
    )
    if not event.recurrence:
        return event
    moment = _occurrence_moment(item)
    return replace(
        event,
        timezone=_zone_name(item),
        cancelled=tuple(moment(d.start) for d in item.deleted_occurrences or () if d.start),
        exceptions=tuple(
            _exception(event, o, (changed or {}).get(o.id), moment) for o in item.modified_occurrences or ()
        ),
    )


def _occurrence_moment(master: CalendarItem) -> Callable[[Any], dt.datetime]:
    """How an occurrence's date-time on ``master`` reads: in UTC, or for an all-day series the
    midnight (UTC, as the canonical all-day event has it) of its date in the series' zone."""
    if not master.is_all_day:
        return _plain_utc
    zone = getattr(master, "_start_timezone", None) or UTC
    return lambda value: _midnight(value.astimezone(zone).date())


def _event_body(item: CalendarItem) -> str:
    return _lines(_text(item.text_body)) or _body_text(item.body)  # as Graph gives it (Exchange 2013+)


def _exception(series: Event, info: Any, item: CalendarItem | None, moment: Callable[[Any], dt.datetime]) -> Occurrence:
    """An exception of ``series``: its ModifiedOccurrences entry, with the values of its own item
    (the series' texts when the item could not be read)."""
    original = moment(info.original_start)
    start = moment(info.start) if info.start else original
    end = moment(info.end) if info.end else start + duration(series)
    if item is None:
        return Occurrence(original, start, end, series.subject, series.location, series.body)
    start = _event_moment(item.start, end=False) or start
    end = _event_moment(item.end, end=True) or end
    return Occurrence(original, start, end, _text(item.subject), _text(item.location), _event_body(item))


def event_echo(record: Event) -> Event:
    """What reading ``record`` back gives once written: :func:`event_from_native` of
    :func:`event_to_native`, with the cancellations and exceptions written to its occurrences
    (those whose original start is an occurrence of its pattern, none for :func:`clipped_days`),
    as Exchange holds them."""
    back = event_from_native(event_to_native(record))
    if not back.recurrence:
        return back
    if clipped_days(back.recurrence):
        return back
    cancelled = tuple(moment for moment in record.cancelled if is_occurrence(back, moment))
    exceptions = tuple(
        _held_occurrence(o, back.all_day) for o in record.exceptions if is_occurrence(back, o.original_start)
    )
    return replace(back, cancelled=cancelled, exceptions=exceptions)


_SHORTEST_MONTHS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def clipped_days(rule: str) -> bool:
    """Whether Exchange places some occurrences of ``rule`` where the RRULE has none: a monthly
    or yearly day of the month that some months lack (31 April is 30 April to Exchange, skipped
    by the RRULE). Its occurrences are then numbered differently, and the exceptions and
    cancellations of such a series are not written, lest another occurrence be changed."""
    parts = _rrule_parts(rule)
    if "BYMONTHDAY" not in parts or "BYDAY" in parts:
        return False
    day = int(parts["BYMONTHDAY"])
    if parts.get("FREQ") == "MONTHLY":
        return day > min(_SHORTEST_MONTHS)
    return parts.get("FREQ") == "YEARLY" and day > _SHORTEST_MONTHS[int(parts.get("BYMONTH", "1")) - 1]


def _held_occurrence(occurrence: Occurrence, all_day: bool) -> Occurrence:
    """``occurrence`` as reading it back gives it."""
    start, end = occurrence.start, occurrence.end
    if start is not None and end is not None:
        native_start, native_end = _times(start, end, all_day, EWSTimeZone("UTC"))
        start = _event_moment(native_start, end=False)
        end = _event_moment(native_end, end=True)
    return Occurrence(
        occurrence.original_start,
        start,
        end,
        _clean(occurrence.subject),
        _clean(occurrence.location),
        _lines(_clean(occurrence.body)),
    )


# recurrence: RFC 5545 RRULE <-> exchangelib Recurrence ------------------------------------------
# exchangelib numbers weekdays 1..7 from Monday, then 8 "Day", 9 "Weekday", 10 "WeekendDay"; week
# numbers 1..4 and 5 for "Last"; months 1..12.
DAY_SETS = {8: WEEKDAYS, 9: WEEKDAYS[:5], 10: WEEKDAYS[5:]}
POSITIONS = {1: "1", 2: "2", 3: "3", 4: "4", 5: "-1"}
RULE_PARTS = frozenset({"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "COUNT", "UNTIL", "WKST"})


def _rrule_parts(rule: str) -> dict[str, str]:
    parts = {}
    for chunk in rule.strip().removeprefix("RRULE:").split(";"):
        if chunk:
            key, _, value = chunk.partition("=")
            parts[key.strip().upper()] = value.strip().upper()
    return parts


def _relative_day(parts: dict[str, str]) -> tuple[int, int]:
    """exchangelib's weekday and week number for ``BYDAY=2TU``, ``BYDAY=-1FR`` or ``BYDAY=MO,...;BYSETPOS=1``."""
    chunks = parts["BYDAY"].split(",")
    position = parts.get("BYSETPOS", "")
    days = []
    for chunk in chunks:
        number, day = chunk[:-2].lstrip("+"), chunk[-2:]
        if number and (position or len(chunks) > 1):
            raise ValueError("a position on one day only")
        position = position or number
        days.append(WEEKDAYS.index(day))
    week = {v: k for k, v in POSITIONS.items()}[position]
    if len(days) == 1:
        return days[0] + 1, week
    wanted = {WEEKDAYS[d] for d in days}
    weekday = next(number for number, names in DAY_SETS.items() if set(names) == wanted)
    return weekday, week


def _pattern(parts: dict[str, str], start: dt.date) -> Any:
    interval = int(parts.get("INTERVAL", "1"))
    freq = parts.get("FREQ")
    if freq == "DAILY" and "BYDAY" not in parts:
        return DailyPattern(interval=interval)
    if freq == "WEEKLY":
        days = sorted(set(parts.get("BYDAY", WEEKDAYS[start.weekday()]).split(",")), key=WEEKDAYS.index)
        first = WEEKDAYS.index(parts.get("WKST", "MO")) + 1
        return WeeklyPattern(interval=interval, weekdays=[WEEKDAYS.index(d) + 1 for d in days], first_day_of_week=first)
    if freq == "MONTHLY" and "BYDAY" not in parts:
        return AbsoluteMonthlyPattern(interval=interval, day_of_month=int(parts.get("BYMONTHDAY", str(start.day))))
    if freq == "MONTHLY":
        weekday, week = _relative_day(parts)
        return RelativeMonthlyPattern(interval=interval, weekday=weekday, week_number=week)
    if freq == "YEARLY" and interval == 1:  # EWS's yearly patterns have no interval
        month = int(parts.get("BYMONTH", str(start.month)))
        if "BYDAY" not in parts:
            return AbsoluteYearlyPattern(day_of_month=int(parts.get("BYMONTHDAY", str(start.day))), month=month)
        weekday, week = _relative_day(parts)
        return RelativeYearlyPattern(weekday=weekday, week_number=week, month=month)
    raise ValueError("Exchange has no such pattern")


def rrule_to_native(rule: str, start: dt.date) -> Recurrence:
    """An exchangelib Recurrence for an RRULE whose first occurrence is on ``start`` (a date in
    the series' own time zone): daily, weekly, absolute or relative monthly and yearly; COUNT,
    UNTIL or no end. ValueError for a rule Exchange cannot hold."""
    parts = _rrule_parts(rule)
    try:
        if set(parts) - RULE_PARTS:
            raise ValueError(f"{', '.join(sorted(set(parts) - RULE_PARTS))} cannot be held")
        pattern = _pattern(parts, start)
        if "COUNT" in parts:
            boundary: Any = NumberedPattern(start=start, number=int(parts["COUNT"]))
        elif "UNTIL" in parts:
            until = dt.datetime.strptime(parts["UNTIL"][:8], "%Y%m%d").date()
            boundary = EndDatePattern(start=start, end=until)
        else:
            boundary = NoEndPattern(start=start)
    except (KeyError, ValueError, IndexError, StopIteration) as exc:
        raise ValueError(f"unsupported recurrence {rule!r}: {exc}") from exc
    return Recurrence(pattern=pattern, boundary=boundary)


def _number(value: Any, names: tuple[str, ...]) -> int:
    """An exchangelib enumeration value as its 1-based number (it may hold the name instead)."""
    return value if isinstance(value, int) else names.index(value) + 1


def _relative_rule(pattern: Any) -> str:
    weekday = _number(pattern.weekday, WEEKDAYS_NAMES)
    position = POSITIONS[_number(pattern.week_number, WEEK_NUMBERS)]
    if weekday in DAY_SETS:
        return f"BYDAY={','.join(DAY_SETS[weekday])};BYSETPOS={position}"
    return f"BYDAY={position}{WEEKDAYS[weekday - 1]}"


def rrule_from_native(recurrence: Recurrence) -> str:
    """The RRULE of an exchangelib Recurrence ('' for a pattern the canonical model does not carry),
    its parts in the order FREQ, INTERVAL, BYDAY (BYSETPOS), BYMONTH, BYMONTHDAY, COUNT or UNTIL."""
    pattern, boundary = recurrence.pattern, recurrence.boundary
    freq = _FREQ.get(type(pattern))
    if freq is None:
        return ""
    parts = [f"FREQ={freq}"]
    interval = getattr(pattern, "interval", 1) or 1
    if interval != 1:
        parts.append(f"INTERVAL={interval}")
    if isinstance(pattern, WeeklyPattern):
        days = pattern.weekdays if isinstance(pattern.weekdays, list) else [pattern.weekdays]
        numbers = sorted({_number(d, WEEKDAYS_NAMES) for d in days})
        parts.append("BYDAY=" + ",".join(WEEKDAYS[n - 1] for n in numbers))
        first = _number(pattern.first_day_of_week or 1, WEEKDAYS_NAMES)
        if first != 1 and interval != 1:  # which weeks count only matters every other week or more
            parts.append(f"WKST={WEEKDAYS[first - 1]}")
    if isinstance(pattern, RelativeMonthlyPattern | RelativeYearlyPattern):
        parts.append(_relative_rule(pattern))
    if isinstance(pattern, AbsoluteYearlyPattern | RelativeYearlyPattern):
        parts.append(f"BYMONTH={_number(pattern.month, MONTHS)}")
    if isinstance(pattern, AbsoluteMonthlyPattern | AbsoluteYearlyPattern):
        parts.append(f"BYMONTHDAY={pattern.day_of_month}")
    if isinstance(boundary, NumberedPattern):
        parts.append(f"COUNT={boundary.number}")
    elif isinstance(boundary, EndDatePattern):
        parts.append(f"UNTIL={boundary.end.strftime('%Y%m%d')}")
    return ";".join(parts)


_FREQ: dict[type, str] = {
    DailyPattern: "DAILY",
    WeeklyPattern: "WEEKLY",
    AbsoluteMonthlyPattern: "MONTHLY",
    RelativeMonthlyPattern: "MONTHLY",
    AbsoluteYearlyPattern: "YEARLY",
    RelativeYearlyPattern: "YEARLY",
}


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
