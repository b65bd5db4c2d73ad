"""Occurrences and exceptions of a recurring series, as Exchange keeps and serves them.

A series is one item in the calendar folder, its *recurring master*. Its occurrences are not
items of their own: they are computed from the recurrence (:func:`occurrence_dates`), and only
what differs is stored with the master, in the one form the fake Graph shares (:mod:`fakes.series`):
its exceptions (original start -> the changed Graph-shaped fields) and its cancelled original
starts. So changing or deleting an occurrence is a change of the master, which is how
SyncFolderItems reports it, and Graph sees it as the same exception or cancellation.

An occurrence's id is the master's id and its original start (``<master id>_<yyyymmddThhmmssZ>``);
``OccurrenceItemId`` addresses one by its 1-based index in the series, deleted occurrences counted
(an index never shifts). The series is expanded in its own time zone, the master's StartTimeZone
(a Windows name, mapped to IANA with exchangelib's table; else its start's zone; none: UTC;
:func:`fakes.series.series_zone`): an
occurrence starts on its date at the master's wall-clock time there, so a 09:00 Europe/Berlin meeting is at 08:00 UTC in
winter and 07:00 UTC in summer. An all-day series keeps local midnights the same way. A wall-clock
time that does not exist on a day (skipped by a daylight saving change) is taken at the offset
before the change (not confirmed: what Exchange does then).

Changing the master's Recurrence, Start, End or StartTimeZone drops all its exceptions and
cancellations (not confirmed: Outlook asks before it drops them; what EWS does with an End-only
change is assumed to be the same). SyncFolderItems lists a master with its ModifiedOccurrences and
DeletedOccurrences, as GetItem does (not confirmed: FindItem does not return them on Exchange).
An occurrence may be moved anywhere, even past its neighbours (not modelled; Exchange is said to
refuse that with ErrorOccurrenceCrossingBoundary: not confirmed).
"""

from __future__ import annotations

import calendar
import copy
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from fakes import series
from fakes.ews.soap import EwsError
from fakes.ews.values import PRIVATE, Data, graph_when, parse_graph_when, peek_private
from fakes.tenant import Item

EXCEPTIONS, CANCELLED = series.EXCEPTIONS, series.CANCELLED
MAX_OCCURRENCES = 10_000  # how far a series without an end is followed
_OCCURRENCE_ID = re.compile(r"^(AAMk[0-9a-f]{32})_(\d{8}T\d{6}Z)$")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_INDEX = ("first", "second", "third", "fourth")


# the recurrence pattern ------------------------------------------------------------------------------
def occurrence_dates(recurrence: dict[str, Any]) -> Iterator[date]:
    """The dates of a Graph ``patternedRecurrence``, in order, within its range."""
    pattern, window = recurrence["pattern"], recurrence["range"]
    first = date.fromisoformat(window["startDate"])
    last = date.fromisoformat(window["endDate"]) if window.get("type") == "endDate" else None
    count = int(window.get("numberOfOccurrences") or 0) if window.get("type") == "numbered" else 0
    found, day = 0, first
    for _ in range(MAX_OCCURRENCES * 31):
        if (last is not None and day > last) or (count and found >= count) or found >= MAX_OCCURRENCES:
            return
        if _matches(pattern, first, day):
            found += 1
            yield day
        day += timedelta(days=1)


def _matches(pattern: dict[str, Any], first: date, day: date) -> bool:
    kind, interval = pattern["type"], max(int(pattern.get("interval") or 1), 1)
    months = (day.year - first.year) * 12 + day.month - first.month
    if kind == "daily":
        return (day - first).days % interval == 0
    if kind == "weekly":
        week_start = _WEEKDAYS.index(str(pattern.get("firstDayOfWeek") or "sunday").lower())
        weeks = (_week_of(day, week_start) - _week_of(first, week_start)).days // 7
        return _weekday(day) in _days(pattern) and weeks % interval == 0
    if kind == "absoluteMonthly":
        return months % interval == 0 and day.day == _day_in_month(day, int(pattern["dayOfMonth"]))
    if kind == "relativeMonthly":
        return months % interval == 0 and _relative(pattern, day)
    if kind == "absoluteYearly":
        wanted = int(pattern["month"])
        return day.month == wanted and day.day == _day_in_month(day, int(pattern["dayOfMonth"]))
    if kind == "relativeYearly":
        return day.month == int(pattern["month"]) and _relative(pattern, day)
    return False


def _weekday(day: date) -> str:
    return _WEEKDAYS[day.weekday()]


def _days(pattern: dict[str, Any]) -> frozenset[str]:
    """The pattern's weekdays; EWS's ``Day``, ``Weekday`` and ``WeekendDay`` stand for their days."""
    days: set[str] = set()
    for name in pattern.get("daysOfWeek") or ():
        days.update(_DAY_SETS.get(str(name).lower(), (str(name).lower(),)))
    return frozenset(days)


_DAY_SETS = {"day": _WEEKDAYS, "weekday": _WEEKDAYS[:5], "weekendday": _WEEKDAYS[5:]}


def _week_of(day: date, week_start: int) -> date:
    return day - timedelta(days=(day.weekday() - week_start) % 7)


def _day_in_month(day: date, wanted: int) -> int:
    """``wanted`` (1-31) in ``day``'s month; the month's last day when it is shorter."""
    return min(wanted, calendar.monthrange(day.year, day.month)[1])


def _relative(pattern: dict[str, Any], day: date) -> bool:
    """Whether ``day`` is the pattern's first/second/third/fourth/last of its days in the month
    (``second Weekday``: the second Monday-to-Friday day of the month)."""
    days = _days(pattern)
    if _weekday(day) not in days:
        return False
    index = str(pattern.get("index") or "first").lower()
    return index in (*_INDEX, "last") and _nth_day(day.year, day.month, days, index) == day.day


@functools.lru_cache(maxsize=4096)
def _nth_day(year: int, month: int, days: frozenset[str], index: str) -> int:
    """The day of the month that is the ``index`` (first ... fourth, last) of its ``days``."""
    matching = [
        d
        for d in range(1, calendar.monthrange(year, month)[1] + 1)
        if _WEEKDAYS[date(year, month, d).weekday()] in days
    ]
    return matching[-1] if index == "last" else matching[_INDEX.index(index)]


# the occurrences of a master ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Occurrence:
    """One occurrence: its index (1-based), original start, and whether it was changed or cancelled."""

    index: int
    original: datetime
    changes: dict[str, Any] | None
    cancelled: bool

    @property
    def key(self) -> str:
        return series.stamp(self.original)


def is_master(data: Data) -> bool:
    """Whether ``data`` is a recurring master (a calendar item with a recurrence)."""
    return bool(data.get("recurrence")) and "start" in data


def occurrences(master: Data, until: datetime | None = None) -> Iterator[Occurrence]:
    """The occurrences of ``master`` in order (up to ``until``, exclusive, when given)."""
    first = series.local_start(master)
    for index, day in enumerate(occurrence_dates(master["recurrence"]), start=1):
        original = series.original_start(master, day, first)
        if until is not None and original >= until:
            return
        yield Occurrence(index, original, series.changes_of(master, original), series.is_cancelled(master, original))


def series_zone(master: Data) -> tzinfo:
    """The time zone the series keeps its wall-clock time in: its StartTimeZone (an item made over
    Graph may only have its start's zone; UTC when neither is there)."""
    return series.series_zone(master)


def duration(master: Data) -> timedelta:
    return parse_graph_when(master["end"]) - parse_graph_when(master["start"])


def occurrence_id(master_id: str, occurrence: Occurrence) -> str:
    return f"{master_id}_{occurrence.key}"


def split_id(item_id: str) -> tuple[str, str] | None:
    """The master id and original-start key of an occurrence id, or None for any other id."""
    found = _OCCURRENCE_ID.match(item_id)
    return (found.group(1), found.group(2)) if found else None


def find(master: Item, key: str | None = None, index: int | None = None) -> Occurrence:
    """The occurrence of ``master`` with original-start ``key`` or at ``index``; the EWS error if none."""
    if not is_master(master.data):
        raise EwsError("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange", "The item is not a recurring master.")
    for occurrence in occurrences(master.data):
        if occurrence.key == key or occurrence.index == index:
            if occurrence.cancelled:
                raise EwsError(
                    "ErrorCalendarOccurrenceIsDeletedFromRecurrence", "The occurrence was deleted from the recurrence."
                )
            return occurrence
        if key is not None and occurrence.key > key:
            break
    if index is not None:
        raise EwsError(
            "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
            "The occurrence index is out of the recurrence range.",
        )
    raise EwsError("ErrorItemNotFound", "The specified object was not found in the store.")


def plain_data(master: Data, occurrence: Occurrence) -> Data:
    """The occurrence as the series makes it, before any change of its own."""
    dropped = ("recurrence", PRIVATE, EXCEPTIONS, CANCELLED)
    data = {k: copy.deepcopy(v) for k, v in master.items() if k not in dropped}
    extra = peek_private(master, "extra")
    if extra:
        data[PRIVATE] = {"extra": copy.deepcopy(dict(extra))}
    data["start"] = graph_when(occurrence.original)
    data["end"] = graph_when(occurrence.original + duration(master))
    data["type"] = "occurrence"
    data["originalStart"] = graph_when(occurrence.original)
    return data


def occurrence_data(master: Data, occurrence: Occurrence) -> Data:
    """The occurrence as served: the series' fields with its own changes (an *exception*)."""
    data = series.apply(plain_data(master, occurrence), occurrence.changes)
    if occurrence.changes:
        data["type"] = "exception"
    return data


def as_item(master: Item, occurrence: Occurrence) -> Item:
    """An occurrence as an item to render (it shares the master's change key)."""
    return Item(
        occurrence_id(master.id, occurrence),
        master.folder,
        occurrence_data(master.data, occurrence),
        master.change_key,
        master.created,
        master.modified,
        master.seq,
    )


def in_view(master: Item, start: datetime, end: datetime) -> list[Item]:
    """The occurrences and exceptions of ``master`` that overlap ``[start, end)``, by start."""
    found = []
    for occurrence in occurrences(master.data, until=end + timedelta(days=366)):
        if occurrence.cancelled:
            continue
        item = as_item(master, occurrence)
        if occurrence.changes is None and occurrence.original >= end:
            break
        first, last = parse_graph_when(item.data["start"]), parse_graph_when(item.data["end"])
        if first < end and (last > start or first == last == start):
            found.append(item)
    return found


def with_exception(master: Data, occurrence: Occurrence, changed: Data | None) -> Data:
    """The tenant patch of the master after the occurrence is changed (``changed``: its new data)
    or cancelled (None)."""
    if changed is None:
        return series.cancelled(master, occurrence.original)
    plain = plain_data(master, occurrence)
    delta = {k: v for k, v in changed.items() if plain.get(k) != v and k not in ("type", "originalStart")}
    delta.update({k: None for k in plain if k not in changed and k != PRIVATE})
    return series.changed(master, occurrence.original, delta)


def master_info(master: Item) -> list[tuple[str, list[tuple[str, Occurrence]]]]:
    """FirstOccurrence, LastOccurrence (series with an end), ModifiedOccurrences and DeletedOccurrences."""
    first = last = None
    modified: list[tuple[str, Occurrence]] = []
    deleted: list[tuple[str, Occurrence]] = []
    bounded = (master.data["recurrence"].get("range") or {}).get("type") != "noEnd"
    until = None if bounded else _horizon(master.data)
    for occurrence in occurrences(master.data, until=until):
        if occurrence.cancelled:
            deleted.append(("DeletedOccurrence", occurrence))
            continue
        first = first or occurrence
        last = occurrence
        if occurrence.changes is not None:
            modified.append(("Occurrence", occurrence))
    info = [("FirstOccurrence", [("", first)])] if first else []
    if bounded and last:
        info.append(("LastOccurrence", [("", last)]))
    if modified:
        info.append(("ModifiedOccurrences", modified))
    if deleted:
        info.append(("DeletedOccurrences", deleted))
    return info


def _horizon(master: Data) -> datetime:
    """How far a series without an end is followed for its master's occurrence lists: five
    years, or past its last exception or cancellation."""
    last = max(series.stored_starts(master), default=None)
    horizon = datetime.now(UTC) + timedelta(days=5 * 366)
    return max(horizon, last + timedelta(seconds=1)) if last else horizon


def series_changed(old: Data, new: Data) -> bool:
    """Whether a master's pattern or time moved, which drops its exceptions (as Exchange does)."""
    return any(old.get(k) != new.get(k) for k in ("recurrence", "start", "end", "originalStartTimeZone"))
