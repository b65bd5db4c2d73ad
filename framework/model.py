"""The canonical model: the records that travel between the CRM and Exchange.

Stores map their native shapes to and from these dataclasses; the engine compares them by
:func:`content_hash`, never by timestamps alone. Every field has a neutral default so that a
store that cannot carry a field simply leaves it empty.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

TASK_STATUSES = ("not_started", "in_progress", "completed", "waiting", "deferred")
PRIORITIES = ("low", "normal", "high")
SENSITIVITIES = ("normal", "personal", "private", "confidential")
PRIVACY_FIELDS = ("sensitivity", "categories")
"""Fields that say whether a record may leave the mailbox (Exchange's sensitivity and Outlook
categories), not what it holds: the CRM carries neither, and :func:`content_hash` leaves them
out, so marking an item private changes no hash (the privacy rules see it when it is listed)."""
SERIES_FIELDS = ("timezone", "cancelled", "exceptions")
"""What only a recurring series holds; left out of :func:`content_hash` while empty."""


@dataclass(frozen=True, slots=True)
class Contact:
    """A person: CRM Contacts <-> Exchange contacts."""

    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    mobile: str = ""
    company: str = ""
    title: str = ""
    department: str = ""
    street: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""
    notes: str = ""
    sensitivity: str = "normal"
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Task:
    """A to-do: CRM Tasks <-> Exchange tasks (EWS Tasks folder, Graph To Do)."""

    subject: str = ""
    due: date | None = None
    status: str = "not_started"
    priority: str = "normal"
    body: str = ""
    sensitivity: str = "normal"
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence of a series changed on its own (an exception): the start the series'
    pattern gave it (``original_start``, UTC) and what it is now. Every field holds the
    occurrence's own value, the same as the series' where it was not changed."""

    original_start: datetime
    start: datetime | None = None
    end: datetime | None = None
    subject: str = ""
    location: str = ""
    body: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    """A calendar entry: CRM Events <-> calendar items.

    ``start`` and ``end`` are timezone-aware and compared in UTC; an all-day event keeps
    midnight-to-midnight dates. A recurring series is one record whose ``recurrence`` holds
    an RFC 5545 RRULE (``FREQ=WEEKLY;BYDAY=MO;COUNT=10``), never its expanded occurrences.
    A series keeps the wall-clock time of ``timezone`` (an IANA name; empty: UTC) across
    daylight saving changes; ``cancelled`` holds the original starts of the occurrences
    removed from it and ``exceptions`` those changed on their own. A single event has none
    of the three, and an all-day series no time zone.
    """

    subject: str = ""
    start: datetime | None = None
    end: datetime | None = None
    all_day: bool = False
    location: str = ""
    body: str = ""
    attendees: tuple[str, ...] = ()
    recurrence: str = ""
    ical_uid: str = ""
    sensitivity: str = "normal"
    categories: tuple[str, ...] = ()
    timezone: str = ""
    cancelled: tuple[datetime, ...] = ()
    exceptions: tuple[Occurrence, ...] = ()

    def __post_init__(self) -> None:
        # One attendee once: the same person may be listed twice by a store (in two attendee
        # types, or in two spellings of the address), and the order differs between stores.
        object.__setattr__(self, "attendees", attendee_set(self.attendees))
        if not self.recurrence:
            object.__setattr__(self, "timezone", "")
            object.__setattr__(self, "cancelled", ())
            object.__setattr__(self, "exceptions", ())
            return
        if self.all_day or self.timezone.upper() == "UTC":
            object.__setattr__(self, "timezone", "")
        cancelled = {_utc(moment) for moment in self.cancelled}
        object.__setattr__(self, "cancelled", tuple(sorted(cancelled)))
        # An occurrence is cancelled or changed, never both; each is listed once, and one
        # changed back to what the series gives it is no exception any more.
        changed = {_utc(o.original_start): o for o in self.exceptions}
        kept = (
            replace_original(o, moment)
            for moment, o in sorted(changed.items())
            if moment not in cancelled and not self._as_the_series_has_it(o, moment)
        )
        object.__setattr__(self, "exceptions", tuple(kept))

    def _as_the_series_has_it(self, occurrence: Occurrence, original_start: datetime) -> bool:
        length = self.end - self.start if self.start is not None and self.end is not None else None
        return (
            length is not None
            and occurrence.start == original_start
            and occurrence.end == original_start + length
            and (occurrence.subject, occurrence.location, occurrence.body) == (self.subject, self.location, self.body)
        )


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a naive one, which the model never holds from a store, as it is)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment


def replace_original(occurrence: Occurrence, original_start: datetime) -> Occurrence:
    """``occurrence`` with its original start as given (the same instant, in UTC)."""
    if occurrence.original_start.tzinfo is UTC:
        return occurrence
    return dataclasses.replace(occurrence, original_start=original_start)


def attendee_set(addresses: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Attendee addresses as the canonical model holds them: trimmed, lower-case, each once, sorted."""
    return tuple(sorted({a.strip().lower() for a in addresses if a and a.strip()}))


@dataclass(frozen=True, slots=True)
class Attachment:
    """An attachment's name and size (content is not carried)."""

    name: str
    size: int


@dataclass(frozen=True, slots=True)
class Mail:
    """A message: Exchange inbox and sent items -> CRM mail records."""

    message_id: str = ""
    subject: str = ""
    sender: str = ""
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    sent_at: datetime | None = None
    body: str = ""
    folder: str = "inbox"
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)
    sensitivity: str = "normal"
    categories: tuple[str, ...] = ()

    def addresses(self) -> set[str]:
        """Every address in from, to and cc, lower-cased."""
        return {a.lower() for a in (self.sender, *self.to, *self.cc) if a}


Record: TypeAlias = Contact | Task | Event | Mail


@functools.lru_cache(maxsize=4096)  # a chunk's records: hashed by the planner, again once written
def content_hash(record: Record) -> str:
    """A stable digest of a record's content: equal content, equal hash, across runs and machines.

    The :data:`PRIVACY_FIELDS` are not content: they are left out."""
    plain = _plain(record)
    for name in PRIVACY_FIELDS:
        del plain[name]
    for name in SERIES_FIELDS:  # absent from earlier versions' hashes: an event without them keeps its hash
        if name in plain and not plain[name]:
            del plain[name]
    payload = _JSON.encode(plain)
    # surrogatepass: a lone surrogate (a JSON "\ud83d" escape from a truncated text decodes to one)
    # must hash, not crash; every other string encodes exactly as plain UTF-8.
    return hashlib.sha256(f"{type(record).__name__}:{payload}".encode("utf-8", "surrogatepass")).hexdigest()


_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float):
        return value
    names = field_names(type(value))
    if names:
        plain = {}
        for name in names:
            field_value = getattr(value, name)
            plain[name] = field_value if type(field_value) is str else _plain(field_value)  # most fields are text
        return plain
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def field_names(cls: type) -> tuple[str, ...]:
    """The field names of a dataclass (empty for any other type), looked up once per type."""
    if cls not in _FIELD_NAMES:
        _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else ()
    return _FIELD_NAMES[cls]


def describe(record: Record) -> str:
    """A short label for people: a contact's name and e-mail, a task's subject and due date..."""
    if isinstance(record, Contact):
        name = " ".join(p for p in (record.first_name, record.last_name) if p)
        return f"{name} <{record.email}>" if record.email else name
    if isinstance(record, Task):
        return f"{record.subject} (due {record.due})" if record.due else record.subject
    if isinstance(record, Event):
        return f"{record.subject} @ {record.start.isoformat(timespec='minutes')}" if record.start else record.subject
    return f"{record.subject} from {record.sender}"


_DATETIME_FIELDS = {"start", "end", "sent_at"}
_TUPLE_FIELDS = {"attendees", "to", "cc", "categories"}
RECORD_TYPES: dict[str, type] = {cls.__name__: cls for cls in (Contact, Task, Event, Mail)}


def to_plain(record: Record) -> dict[str, Any]:
    """A JSON-ready dict of ``record``, tagged with its type; :func:`from_plain` reverses it."""
    plain: dict[str, Any] = _plain(record)
    plain["_type"] = type(record).__name__
    return plain


def _occurrence_from_plain(data: dict[str, Any]) -> Occurrence:
    times = {k: datetime.fromisoformat(v) for k, v in data.items() if k in _OCCURRENCE_TIMES and v is not None}
    return Occurrence(**{**data, **times})


_OCCURRENCE_TIMES = {"original_start", "start", "end"}


def from_plain(data: dict[str, Any]) -> Record:
    """The record :func:`to_plain` produced ``data`` from."""
    values = {k: v for k, v in data.items() if k != "_type"}
    for name, value in list(values.items()):
        if value is None:
            continue
        if name in _DATETIME_FIELDS:
            values[name] = datetime.fromisoformat(value)
        elif name == "due":
            values[name] = date.fromisoformat(value)
        elif name in _TUPLE_FIELDS:
            values[name] = tuple(value)
        elif name == "attachments":
            values[name] = tuple(Attachment(**a) for a in value)
        elif name == "cancelled":
            values[name] = tuple(datetime.fromisoformat(v) for v in value)
        elif name == "exceptions":
            values[name] = tuple(_occurrence_from_plain(o) for o in value)
    record: Record = RECORD_TYPES[data["_type"]](**values)
    return record
