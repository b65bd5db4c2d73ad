"""Canonical records <-> Microsoft Graph JSON (contact, todoTask, event, message).

Pure functions only: ``*_to_graph`` builds the payload a create or update sends, the
``*_from_graph`` functions read a resource back, and :func:`echo` gives what reading a record
back after writing it would return (the same two functions composed, so the two can never
drift apart). Datetimes travel in UTC, to the second, as Graph stores them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exchangelib.winzone import MS_TIMEZONE_TO_IANA_MAP

from framework.errors import RecordRejected
from framework.model import SENSITIVITIES, Attachment, Contact, Event, Mail, Occurrence, Record, Task
from framework.recurrence import is_occurrence

LINK_PROPERTY_ID = "String {c1a0e2b4-5f3d-4e8a-9b7c-2d6f8a1e4b90} Name exsyncLink"
LINK_EXPAND = f"singleValueExtendedProperties($filter=id eq '{LINK_PROPERTY_ID}')"
LINK_APPLICATION = "exsync"
TASK_LINK_EXPAND = "linkedResources"

Json = dict[str, Any]

# -- helpers ------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _or_none(value: str) -> str | None:
    """Graph clears a property set to null; an empty canonical field is sent that way."""
    return value or None


def _graph_datetime(moment: datetime) -> Json:
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return {"dateTime": utc.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def parse_graph_datetime(value: Any) -> datetime | None:
    """A ``dateTimeTimeZone`` object or an ISO string (``...Z``) as an aware UTC datetime, to the second.

    exsync asks Graph for UTC; a zone Graph sends anyway is applied when it is an IANA name
    and otherwise taken as UTC.
    """
    zone: tzinfo = UTC
    if isinstance(value, dict):
        zone = _zone(_text(value.get("timeZone")))
        value = value.get("dateTime")
    text = _text(value).rstrip("Z")
    if not text:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # Graph sends seven fractional digits
    moment = datetime.fromisoformat(text)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=zone)
    return moment.astimezone(UTC).replace(microsecond=0)


def _zone(name: str) -> tzinfo:
    iana = iana_zone(name)
    return ZoneInfo(iana) if iana else UTC


def iana_zone(name: str) -> str:
    """The IANA name of a Graph time zone (a Windows name is mapped with exchangelib's tables);
    empty for UTC and for a name that is neither."""
    key = MS_TIMEZONE_TO_IANA_MAP.get(name.strip(), name.strip())
    if not key or key.upper() in ("UTC", "Z", "ETC/UTC", "ETC/GMT"):
        return ""
    try:
        ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        return ""
    return key


def _graph_date(value: Any) -> date | None:
    """The calendar date of a ``dateTimeTimeZone`` (a To Do due date is a date, in any zone)."""
    text = _text((value or {}).get("dateTime")) if isinstance(value, dict) else ""
    return date.fromisoformat(text[:10]) if text else None


def _utc_seconds(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.replace(microsecond=0)


def link_of(resource: Json) -> str:
    """The exsync cross-link stored on a resource, if it was expanded and set: a single-value
    extended property, or (To Do tasks, which have none) a linked resource of exsync's."""
    for prop in resource.get("singleValueExtendedProperties") or []:
        if isinstance(prop, dict) and str(prop.get("id", "")).lower() == LINK_PROPERTY_ID.lower():
            return _text(prop.get("value"))
    for linked in resource.get("linkedResources") or []:
        if isinstance(linked, dict) and linked.get("applicationName") == LINK_APPLICATION:
            return _text(linked.get("externalId"))
    return ""


def carries_link(resource: Json) -> bool:
    """Whether ``resource`` (a payload written) sets the cross-link."""
    return "singleValueExtendedProperties" in resource or "linkedResources" in resource


def with_link(entity: str, payload: Json, link: str, *, create: bool) -> Json:
    """``payload`` carrying the cross-link: a single-value extended property, or for a To Do task
    (whose type has no extended properties) a linked resource, which Graph takes on create only."""
    if entity != "tasks":
        payload["singleValueExtendedProperties"] = [{"id": LINK_PROPERTY_ID, "value": link}]
    elif create and link:
        payload["linkedResources"] = [{"applicationName": LINK_APPLICATION, "externalId": link, "displayName": "CRM"}]
    return payload


def _create_body(payload: Json) -> Json:
    """A create sends no nulls: an absent property is already empty."""
    return {k: v for k, v in payload.items() if v is not None and v != []}


def _categories(resource: Json) -> tuple[str, ...]:
    """The Outlook categories of a contact, event, message or To Do task."""
    return tuple(c for c in resource.get("categories") or () if isinstance(c, str) and c)


def _with_privacy(payload: Json, record: Record, *, create: bool, sensitivity: bool = False) -> Json:
    """A new item carries the record's categories (and, on events, its sensitivity); an
    update leaves both as the mailbox has them."""
    if create:
        payload["categories"] = list(record.categories)
        if sensitivity and record.sensitivity != "normal":
            payload["sensitivity"] = record.sensitivity
    return payload


# -- contacts -----------------------------------------------------------------------------------


def contact_to_graph(contact: Contact, *, create: bool) -> Json:
    """The Graph contact for ``contact``; an update sends every field (null clears)."""
    display = " ".join(p for p in (contact.first_name, contact.last_name) if p)
    address = {
        "street": contact.street,
        "city": contact.city,
        "state": contact.state,
        "postalCode": contact.postal_code,
        "countryOrRegion": contact.country,
    }
    payload: Json = {
        "givenName": _or_none(contact.first_name),
        "surname": _or_none(contact.last_name),
        "displayName": _or_none(display or contact.email or contact.company),
        "emailAddresses": [{"address": contact.email, "name": display or contact.email}] if contact.email else [],
        "businessPhones": [contact.phone] if contact.phone else [],
        "mobilePhone": _or_none(contact.mobile),
        "companyName": _or_none(contact.company),
        "jobTitle": _or_none(contact.title),
        "department": _or_none(contact.department),
        "businessAddress": address if any(address.values()) else ({} if not create else None),
        "personalNotes": _or_none(contact.notes),
    }
    _with_privacy(payload, contact, create=create)
    return _create_body(payload) if create else payload


def contact_from_graph(resource: Json) -> Contact:
    emails = resource.get("emailAddresses") or []
    phones = resource.get("businessPhones") or []
    address = resource.get("businessAddress") or {}
    return Contact(
        first_name=_text(resource.get("givenName")),
        last_name=_text(resource.get("surname")),
        email=_text(emails[0].get("address")) if emails else "",
        phone=_text(phones[0]) if phones else "",
        mobile=_text(resource.get("mobilePhone")),
        company=_text(resource.get("companyName")),
        title=_text(resource.get("jobTitle")),
        department=_text(resource.get("department")),
        street=_text(address.get("street")),
        city=_text(address.get("city")),
        state=_text(address.get("state")),
        postal_code=_text(address.get("postalCode")),
        country=_text(address.get("countryOrRegion")),
        notes=_text(resource.get("personalNotes")),
        categories=_categories(resource),
    )


# -- tasks (Microsoft To Do) --------------------------------------------------------------------

_TASK_STATUS = {
    "not_started": "notStarted",
    "in_progress": "inProgress",
    "completed": "completed",
    "waiting": "waitingOnOthers",
    "deferred": "deferred",
}
_TASK_STATUS_BACK = {v: k for k, v in _TASK_STATUS.items()}


def task_to_graph(task: Task, *, create: bool) -> Json:
    payload: Json = {
        "title": task.subject,
        "dueDateTime": _graph_datetime(datetime(task.due.year, task.due.month, task.due.day)) if task.due else None,
        "status": _TASK_STATUS.get(task.status, "notStarted"),
        "importance": task.priority if task.priority in ("low", "normal", "high") else "normal",
        "body": {"content": task.body, "contentType": "text"},
    }
    _with_privacy(payload, task, create=create)
    return _create_body(payload) if create else payload


def task_from_graph(resource: Json) -> Task:
    importance = _text(resource.get("importance"))
    return Task(
        subject=_text(resource.get("title")),
        due=_graph_date(resource.get("dueDateTime")),
        status=_TASK_STATUS_BACK.get(_text(resource.get("status")), "not_started"),
        priority=importance if importance in ("low", "normal", "high") else "normal",
        body=_text((resource.get("body") or {}).get("content")),
        categories=_categories(resource),
    )


# -- events -------------------------------------------------------------------------------------

_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_FREQ_TO_PATTERN = {"DAILY": "daily", "WEEKLY": "weekly", "MONTHLY": "absoluteMonthly", "YEARLY": "absoluteYearly"}
_PATTERN_TO_FREQ = {v: k for k, v in _FREQ_TO_PATTERN.items()}


def _rrule_parts(rrule: str) -> dict[str, str]:
    text = rrule.strip()
    text = text[len("RRULE:") :] if text.upper().startswith("RRULE:") else text
    parts: dict[str, str] = {}
    for chunk in filter(None, text.split(";")):
        key, sep, value = chunk.partition("=")
        if not sep:
            raise RecordRejected(f"The recurrence {rrule!r} is not an RRULE.")
        parts[key.strip().upper()] = value.strip().upper()
    return parts


def _until_date(value: str) -> date:
    try:
        return datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError:
        raise RecordRejected(f"The recurrence end {value!r} is not a date.") from None


_INDEXES = {"1": "first", "2": "second", "3": "third", "4": "fourth", "-1": "last"}
_RULE_PARTS = frozenset({"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "COUNT", "UNTIL", "WKST"})


def _relative_days(rrule: str, parts: dict[str, str]) -> tuple[list[str], str]:
    """Graph's daysOfWeek and index for ``BYDAY=2TU`` or ``BYDAY=MO,TU;BYSETPOS=-1``."""
    days, positions = [], {parts["BYSETPOS"]} if "BYSETPOS" in parts else set()
    for chunk in parts["BYDAY"].split(","):
        number, day = chunk[:-2].lstrip("+"), chunk[-2:]
        if day not in _DAYS:
            raise RecordRejected(f"The recurrence {rrule!r} has days Graph cannot hold.")
        days.append(_DAY_NAMES[_DAYS.index(day)])
        positions |= {number} if number else set()
    if len(positions) != 1 or next(iter(positions)) not in _INDEXES:
        raise RecordRejected(f"The recurrence {rrule!r} cannot be expressed in Microsoft Graph.")
    return days, _INDEXES[positions.pop()]


def rrule_to_graph(rrule: str, start: datetime, zone_name: str = "") -> Json:
    """A Graph ``patternedRecurrence`` for an RFC 5545 RRULE whose series starts at ``start``,
    in the time zone ``zone_name`` (IANA; empty: UTC): the range starts on the local date."""
    parts = _rrule_parts(rrule)
    kind = _FREQ_TO_PATTERN.get(parts.get("FREQ", ""))
    if kind is None or set(parts) - _RULE_PARTS:
        raise RecordRejected(f"The recurrence {rrule!r} cannot be expressed in Microsoft Graph.")
    first = start.astimezone(_zone(zone_name)).date()
    # Outlook's weeks begin on Sunday; an RRULE's on Monday, which decides which weeks count
    # when the interval is more than one
    week_start = parts.get("WKST") or ("MO" if kind == "weekly" and int(parts.get("INTERVAL", "1") or 1) > 1 else "SU")
    if week_start not in _DAYS:
        raise RecordRejected(f"The recurrence {rrule!r} has days Graph cannot hold.")
    pattern: Json = {
        "type": kind,
        "interval": int(parts.get("INTERVAL", "1") or 1),
        "firstDayOfWeek": _DAY_NAMES[_DAYS.index(week_start)],
    }
    if kind == "weekly":
        days = parts.get("BYDAY", "").split(",") if parts.get("BYDAY") else [_DAYS[first.weekday()]]
        if any(day not in _DAYS for day in days):
            raise RecordRejected(f"The recurrence {rrule!r} has days Graph cannot hold.")
        pattern["daysOfWeek"] = [_DAY_NAMES[_DAYS.index(day)] for day in sorted(set(days), key=_DAYS.index)]
    elif "BYDAY" in parts and kind != "daily":
        kind = kind.replace("absolute", "relative")
        pattern["type"] = kind
        pattern["daysOfWeek"], pattern["index"] = _relative_days(rrule, parts)
    elif "BYDAY" in parts:
        raise RecordRejected(f"The recurrence {rrule!r} cannot be expressed in Microsoft Graph.")
    if kind in ("absoluteMonthly", "absoluteYearly"):
        pattern["dayOfMonth"] = int(parts.get("BYMONTHDAY") or first.day)
    if kind in ("absoluteYearly", "relativeYearly"):
        pattern["month"] = int(parts.get("BYMONTH") or first.month)
    recurrence_range: Json = {"startDate": first.isoformat(), "recurrenceTimeZone": iana_zone(zone_name) or "UTC"}
    if "COUNT" in parts:
        recurrence_range.update(type="numbered", numberOfOccurrences=int(parts["COUNT"]))
    elif "UNTIL" in parts:
        recurrence_range.update(type="endDate", endDate=_until_date(parts["UNTIL"]).isoformat())
    else:
        recurrence_range["type"] = "noEnd"
    return {"pattern": pattern, "range": recurrence_range}


def rrule_from_graph(recurrence: Json | None) -> str:
    """The RRULE for a Graph ``patternedRecurrence`` (empty when there is none)."""
    if not recurrence:
        return ""
    pattern, recurrence_range = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    kind = _text(pattern.get("type"))
    freq = _PATTERN_TO_FREQ.get(kind.replace("relative", "absolute"))
    if freq is None:
        return ""
    parts = [f"FREQ={freq}"]
    interval = int(pattern.get("interval") or 1)
    if interval > 1:
        parts.append(f"INTERVAL={interval}")
    days = [_DAYS[_DAY_NAMES.index(d)] for d in pattern.get("daysOfWeek") or [] if d in _DAY_NAMES]
    days.sort(key=_DAYS.index)
    if freq == "WEEKLY":
        parts.append("BYDAY=" + ",".join(days))
    if kind.startswith("relative"):
        position = {v: k for k, v in _INDEXES.items()}.get(_text(pattern.get("index")) or "first", "1")
        parts.append(f"BYDAY={position}{days[0]}" if len(days) == 1 else f"BYDAY={','.join(days)};BYSETPOS={position}")
    if freq == "YEARLY":
        parts.append(f"BYMONTH={int(pattern.get('month') or 1)}")
    if kind in ("absoluteMonthly", "absoluteYearly"):
        parts.append(f"BYMONTHDAY={int(pattern.get('dayOfMonth') or 1)}")
    ends = recurrence_range.get("type")
    if ends == "numbered":
        parts.append(f"COUNT={int(recurrence_range.get('numberOfOccurrences') or 1)}")
    elif ends == "endDate" and recurrence_range.get("endDate"):
        parts.append("UNTIL=" + date.fromisoformat(recurrence_range["endDate"]).strftime("%Y%m%d"))
    week_start = _text(pattern.get("firstDayOfWeek")).lower()
    if freq == "WEEKLY" and interval > 1 and week_start in _DAY_NAMES and week_start != "monday":
        parts.append(f"WKST={_DAYS[_DAY_NAMES.index(week_start)]}")  # which weeks count matters only then
    return ";".join(parts)


def series_zone(resource: Json) -> str:
    """The IANA zone whose wall clock a series keeps: its ``recurrenceTimeZone``, else the zone
    its start was given in (empty: UTC)."""
    recurrence_range = (resource.get("recurrence") or {}).get("range") or {}
    for name in (recurrence_range.get("recurrenceTimeZone"), resource.get("originalStartTimeZone")):
        if _text(name).strip():
            return iana_zone(_text(name))
    return ""


def _event_times(event: Event) -> tuple[datetime, datetime]:
    """Start and end as Graph will hold them: UTC seconds; all-day events midnight to midnight."""
    start, end = _utc_seconds(event.start), _utc_seconds(event.end)
    if start is None:
        raise RecordRejected("An event needs a start time.")
    end = end if end is not None and end >= start else start
    if event.all_day:
        start = datetime(start.year, start.month, start.day, tzinfo=UTC)
        end = datetime(end.year, end.month, end.day, tzinfo=UTC)
        end = end if end > start else start + timedelta(days=1)
    return start, end


def _zoned_datetime(moment: datetime, zone_name: str) -> Json:
    """A ``dateTimeTimeZone`` holding the wall-clock time of ``zone_name`` (IANA; empty: UTC)."""
    if not zone_name:
        return _graph_datetime(moment)
    local = moment.astimezone(ZoneInfo(zone_name))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": zone_name}


def event_to_graph(event: Event, *, create: bool) -> Json:
    """The Graph event for ``event``; a series is given in its own zone, which it keeps across
    daylight saving changes (its exceptions and cancellations are written to its occurrences)."""
    start, end = _event_times(event)
    zone_name = iana_zone(event.timezone) if event.recurrence and not event.all_day else ""
    payload: Json = {
        "subject": event.subject,
        "start": _zoned_datetime(start, zone_name),
        "end": _zoned_datetime(end, zone_name),
        "isAllDay": event.all_day,
        "location": {"displayName": event.location},
        "body": {"contentType": "text", "content": event.body},
        "attendees": [{"emailAddress": {"address": a}, "type": "required"} for a in event.attendees],
        "recurrence": rrule_to_graph(event.recurrence, start, zone_name) if event.recurrence else None,
    }
    _with_privacy(payload, event, create=create, sensitivity=True)
    return _create_body(payload) if create else payload


def event_from_graph(resource: Json) -> Event:
    attendees = tuple(_text((a.get("emailAddress") or {}).get("address")) for a in resource.get("attendees") or [] if a)
    return Event(
        subject=_text(resource.get("subject")),
        start=parse_graph_datetime(resource.get("start")),
        end=parse_graph_datetime(resource.get("end")),
        all_day=bool(resource.get("isAllDay")),
        location=_text((resource.get("location") or {}).get("displayName")),
        body=_text((resource.get("body") or {}).get("content")),
        attendees=tuple(a for a in attendees if a),
        recurrence=rrule_from_graph(resource.get("recurrence")),
        ical_uid=_text(resource.get("iCalUId")),
        sensitivity=_sensitivity(resource),
        categories=_categories(resource),
        timezone=series_zone(resource),
    )


def held_occurrence(series: Event, occurrence: Occurrence) -> Occurrence:
    """``occurrence`` of ``series`` as Graph holds it once written: UTC seconds, an end not
    before the start (missing times as the series places them), all-day ones midnight to midnight."""
    original = _utc_seconds(occurrence.original_start) or occurrence.original_start
    length = series.end - series.start if series.start is not None and series.end is not None else timedelta(0)
    start = _utc_seconds(occurrence.start) or original
    end = _utc_seconds(occurrence.end) or start + length
    start, end = _event_times(Event(start=start, end=end, all_day=series.all_day))
    return Occurrence(original, start, end, occurrence.subject, occurrence.location, occurrence.body)


def occurrence_to_graph(series: Event, occurrence: Occurrence) -> Json:
    """The PATCH that makes an occurrence of ``series`` hold ``occurrence``'s values."""
    held = held_occurrence(series, occurrence)
    assert held.start is not None and held.end is not None
    return {
        "subject": held.subject,
        "start": _graph_datetime(held.start),
        "end": _graph_datetime(held.end),
        "location": {"displayName": held.location},
        "body": {"contentType": "text", "content": held.body},
    }


def series_as_written(record: Event, back: Event) -> Event:
    """``back`` (a series read from the payload written for ``record``) with the exceptions and
    cancellations of ``record`` that fall on its occurrences, as Graph holds them."""
    if not back.recurrence:
        return back
    cancelled = tuple(moment for moment in record.cancelled if is_occurrence(back, moment))
    exceptions = tuple(held_occurrence(back, o) for o in record.exceptions if is_occurrence(back, o.original_start))
    return replace(back, cancelled=cancelled, exceptions=exceptions)


def _sensitivity(resource: Json) -> str:
    value = _text(resource.get("sensitivity")).lower()
    return value if value in SENSITIVITIES else "normal"


# -- mails (read only) --------------------------------------------------------------------------


def _address(recipient: Any) -> str:
    return _text(((recipient or {}).get("emailAddress") or {}).get("address"))


def mail_from_graph(resource: Json, folder: str, attachments: list[Json] | None = None) -> Mail:
    return Mail(
        message_id=_text(resource.get("internetMessageId")),
        subject=_text(resource.get("subject")),
        sender=_address(resource.get("from")),
        to=tuple(a for a in map(_address, resource.get("toRecipients") or []) if a),
        cc=tuple(a for a in map(_address, resource.get("ccRecipients") or []) if a),
        sent_at=parse_graph_datetime(resource.get("sentDateTime")),
        body=_text((resource.get("body") or {}).get("content")),
        folder=folder,
        attachments=tuple(Attachment(_text(a.get("name")), int(a.get("size") or 0)) for a in attachments or [] if a),
        categories=_categories(resource),
    )


# -- dispatch by entity -------------------------------------------------------------------------

TO_GRAPH: dict[str, Callable[..., Json]] = {
    "contacts": contact_to_graph,
    "tasks": task_to_graph,
    "events": event_to_graph,
}
FROM_GRAPH: dict[str, Callable[[Json], Record]] = {
    "contacts": contact_from_graph,
    "tasks": task_from_graph,
    "events": event_from_graph,
}


def to_graph(entity: str, record: Record, *, create: bool) -> Json:
    """The create (``create=True``) or update payload of ``record`` for ``entity``."""
    return TO_GRAPH[entity](record, create=create)


def echo(entity: str, record: Record) -> Record:
    """What reading ``record`` back from Graph gives after writing it.

    The payload is built, then read the way a resource is read; the event's ``iCalUId`` is
    assigned by Graph, so the record's own is kept. Mails are never written: they are only
    normalised the way reading them normalises.
    """
    if isinstance(record, Mail):
        return _mail_echo(record)
    try:
        payload = to_graph(entity, record, create=True)
    except RecordRejected:
        return record
    return read_back(entity, record, payload)


def read_back(entity: str, record: Record, payload: Json) -> Record:
    """What reading ``record`` back gives once written with ``payload`` (the iCalUId Graph
    assigns to a new event aside: the record's own is kept)."""
    back = FROM_GRAPH[entity](payload)
    if isinstance(back, Event) and isinstance(record, Event):
        back = series_as_written(record, replace(back, ical_uid=record.ical_uid))
    return back


def _mail_echo(mail: Mail) -> Mail:
    return replace(mail, sent_at=_utc_seconds(mail.sent_at))
