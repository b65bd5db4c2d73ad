"""Events as the model sees them: time zones, event times, and a series' instances.

A series is one stored item (the ``seriesMaster``, with ``recurrence``); its occurrences are
computed (:mod:`fakes.graph.recurrence`). Occurrence ids are ``{masterId}_{yyyymmdd}`` (the date
of the original start, in the series' zone). Changing one occurrence makes it an ``exception``;
deleting one cancels it. Both are kept with the master, in the one form the fake EWS shares
(:mod:`fakes.series`, keyed by the UTC original start), and change the master (a new
changeKey), as Exchange keeps them there: an occurrence moved over EWS is an exception here.

Occurrences keep the wall-clock time of the master's start in the series' zone (its
``originalStartTimeZone`` when the series was made over EWS, else its ``start.timeZone``; an
IANA or Windows name) across daylight saving changes: a 09:00 series in
``W. Europe Standard Time`` is at 08:00 UTC in winter and 07:00 UTC in summer. Each occurrence
and exception carries ``originalStart`` (the UTC instant the pattern gave it), and the master's
``originalStartTimeZone``/``originalEndTimeZone``.

Not confirmed for real Graph, chosen here: a new zone in a PATCH of ``start``/``end`` of an
event made over EWS replaces its stored ``originalStartTimeZone``/``originalEndTimeZone``; a
PATCH of the master that changes its ``recurrence``, ``isAllDay`` or the instant or zone of its
``start`` or ``end`` drops every exception and cancellation (as Outlook does when a series'
pattern or time changes); a PATCH that sends them unchanged keeps them. ``recurrenceTimeZone``
is stored but only the series' zone (above) places the occurrences.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exchangelib.winzone import MS_TIMEZONE_TO_IANA_MAP  # data table only: Windows zone -> IANA

from fakes import series
from fakes.graph.recurrence import occurrence_dates
from fakes.graph.resources import iso_utc, raw_resource, removed_entry
from fakes.tenant import Item

Window = tuple[datetime, datetime]
Row = tuple[str, str | dict[str, Any]]  # (folder, item id) rendered live, or (folder, resource)

EXCEPTIONS, CANCELLED = series.EXCEPTIONS, series.CANCELLED
_WINDOWS_ZONES = {
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "Pacific Standard Time": "America/Los_Angeles",
    "India Standard Time": "Asia/Kolkata",
    "Tokyo Standard Time": "Asia/Tokyo",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "GTB Standard Time": "Europe/Bucharest",
    "Russian Standard Time": "Europe/Moscow",
    "Singapore Standard Time": "Asia/Singapore",
    "China Standard Time": "Asia/Shanghai",
    "Korea Standard Time": "Asia/Seoul",
    "Arabian Standard Time": "Asia/Dubai",
    "E. South America Standard Time": "America/Sao_Paulo",
    "Atlantic Standard Time": "America/Halifax",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "New Zealand Standard Time": "Pacific/Auckland",
    "South Africa Standard Time": "Africa/Johannesburg",
}


def known_zone(name: str) -> bool:
    """Whether Graph would take ``name`` as a time zone (a Windows or an IANA name)."""
    if name in _WINDOWS_ZONES or name in MS_TIMEZONE_TO_IANA_MAP:
        return True
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone_of(name: Any) -> ZoneInfo:
    text = str(name or "UTC")
    key = _WINDOWS_ZONES.get(text) or MS_TIMEZONE_TO_IANA_MAP.get(text) or text
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def as_instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return instant(value) if isinstance(value, str) else None
    except ValueError:
        return None


def event_time(when: Any) -> datetime | None:
    """A Graph dateTimeTimeZone as an aware datetime in its zone."""
    if not isinstance(when, dict):
        return None
    try:
        moment = datetime.fromisoformat(str(when.get("dateTime")))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone_of(when.get("timeZone")))


def fmt_local(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.0000000")


def as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def as_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def present_event(res: dict[str, Any], zone_name: str) -> None:
    """Event times in ``zone_name`` (all-day events keep their dates), as Graph returns them."""
    res.setdefault("type", "seriesMaster" if res.get("recurrence") else "singleInstance")
    res.setdefault("recurrence", None)
    zone = zone_of(zone_name)
    for key, original in (("start", "originalStartTimeZone"), ("end", "originalEndTimeZone")):
        when = res.get(key)
        moment = event_time(when)
        if moment is None or not isinstance(when, dict):
            continue
        res.setdefault(original, when.get("timeZone"))
        local = when["dateTime"] if res.get("isAllDay") else fmt_local(moment.astimezone(zone))
        res[key] = {"dateTime": local, "timeZone": zone_name}


@dataclass(frozen=True)
class Instance:
    """One instance of an event as calendarView lists it: the event itself, or one occurrence."""

    id: str
    kind: str  # singleInstance, occurrence or exception
    start: datetime
    end: datetime
    key: str = ""  # yyyymmdd of an occurrence's original start
    cancelled: bool = False
    original: datetime | None = None  # where the pattern placed an occurrence
    changes: dict[str, Any] | None = None  # an exception's own properties


def is_series(data: dict[str, Any]) -> bool:
    return isinstance(data.get("recurrence"), dict)


def occurrence_id(master_id: str, key: str) -> str:
    return f"{master_id}_{key}"


def split_occurrence_id(event_id: str) -> tuple[str, str] | None:
    """(master id, yyyymmdd) of an occurrence id, None for any other id."""
    master_id, sep, key = event_id.rpartition("_")
    return (master_id, key) if sep and master_id and len(key) == 8 and key.isdigit() else None


def instances(item: Item, window: Window) -> list[Instance]:
    """The instances of ``item`` overlapping ``window``, cancelled occurrences included (flagged)."""
    start, end = event_time(item.data.get("start")), event_time(item.data.get("end"))
    if start is None or end is None:
        return []
    if not is_series(item.data):
        return [Instance(item.id, "singleInstance", start, end)] if start < window[1] and end > window[0] else []
    found = []
    first = series.local_start(item.data)
    for day in occurrence_dates(item.data["recurrence"], first.date()):
        if series.original_start(item.data, day, first) >= window[1] + timedelta(days=1):  # an exception may
            break  # move a little earlier; one moved further is missed
        instance = _occurrence(item, day, first, end - start)
        if instance.start < window[1] and instance.end > window[0]:
            found.append(instance)
    return found


def _occurrence(item: Item, day: date, first: datetime, length: timedelta) -> Instance:
    """The occurrence of series ``item`` on ``day``: as the pattern places it, or as changed."""
    key = f"{day:%Y%m%d}"
    original = series.original_start(item.data, day, first)  # the series' wall clock, in its zone
    changes = series.changes_of(item.data, original)
    moment = event_time((changes or {}).get("start")) or original
    finish = event_time((changes or {}).get("end")) or moment + length
    kind = "exception" if changes else "occurrence"
    cancelled = series.is_cancelled(item.data, original)
    return Instance(occurrence_id(item.id, key), kind, moment, finish, key, cancelled, original, changes)


def overlaps(item: Item, window: Window) -> bool:
    """Whether the event, or an occurrence of it that is not cancelled, overlaps ``window``."""
    return any(not instance.cancelled for instance in instances(item, window))


def find_instance(item: Item, key: str) -> Instance | None:
    """The occurrence of series ``item`` originally on ``key`` (yyyymmdd); None if the series has
    none that day or it was cancelled."""
    start, end = event_time(item.data.get("start")), event_time(item.data.get("end"))
    if start is None or end is None or not is_series(item.data):
        return None
    first = series.local_start(item.data)
    for day in occurrence_dates(item.data["recurrence"], first.date()):
        if f"{day:%Y%m%d}" >= key:
            instance = _occurrence(item, day, first, end - start)
            return instance if instance.key == key and not instance.cancelled else None
    return None


def instance_resource(item: Item, instance: Instance, *, bare: bool = False) -> dict[str, Any]:
    """An occurrence or exception of series ``item``; ``bare``: only what delta gives for an occurrence."""
    zone = (item.data.get("start") or {}).get("timeZone") or "UTC"
    when = {
        "start": {"dateTime": fmt_local(instance.start.astimezone(zone_of(zone))), "timeZone": zone},
        "end": {"dateTime": fmt_local(instance.end.astimezone(zone_of(zone))), "timeZone": zone},
    }
    master = raw_resource(item)
    ids = {"id": instance.id, "type": instance.kind, "seriesMasterId": item.id}
    if bare and instance.kind == "occurrence":
        return {"@odata.type": "#microsoft.graph.event", "@odata.etag": master["@odata.etag"], **ids, **when}
    resource = copy.deepcopy(master)
    original = instance.original or instance.start
    resource.update(
        ids,
        recurrence=None,
        originalStart=iso_utc(original),
        originalStartTimeZone=item.data.get("originalStartTimeZone") or (item.data.get("start") or {}).get("timeZone"),
        originalEndTimeZone=item.data.get("originalEndTimeZone") or (item.data.get("end") or {}).get("timeZone"),
        **when,
    )
    own = {k: v for k, v in (instance.changes or {}).items() if not k.startswith("_") and k not in ("start", "end")}
    resource = series.apply(resource, own)
    resource.update(ids)
    return resource


def view_rows(item: Item, window: Window) -> list[tuple[datetime, Row]]:
    """calendarView rows of an event: itself, or its occurrences and exceptions in ``window``."""
    if not is_series(item.data):
        return [(i.start, ("calendar", item.id)) for i in instances(item, window)]
    return [(i.start, ("calendar", instance_resource(item, i))) for i in instances(item, window) if not i.cancelled]


def delta_rows(item: Item, window: Window) -> list[Row]:
    """calendarView/delta rows of a changed event: the event, or its instances in ``window``
    (occurrences bare, exceptions whole, cancelled occurrences as removed)."""
    if not is_series(item.data):
        return [("calendar", item.id)] if instances(item, window) else []
    return [
        ("calendar", removed_entry(i.id) if i.cancelled else instance_resource(item, i, bare=True))
        for i in instances(item, window)
    ]


def removed_rows(item_id: str, gone: Item | None, window: Window) -> list[Row]:
    """calendarView/delta rows of a deleted event: its id, or the ids of its instances in ``window``."""
    if gone is None or not is_series(gone.data):
        return [("calendar", removed_entry(item_id))]
    return [("calendar", removed_entry(i.id)) for i in instances(gone, window) if not i.cancelled]


def series_patch(data: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``patch`` of event ``data``, clearing the exceptions and cancellations of a series whose
    ``recurrence``, ``start`` or ``end`` it changes (see the module's docstring). An event made
    over EWS keeps its StartTimeZone/EndTimeZone as ``originalStartTimeZone``/``originalEndTimeZone``:
    a new zone of its ``start``/``end`` replaces them (not confirmed)."""
    patch = {**patch, **_zones_followed(data, patch)}
    if not is_series(data) or not (data.get(EXCEPTIONS) or data.get(CANCELLED)):
        return patch
    changed = any(key in patch and patch[key] != data.get(key) for key in ("recurrence", "isAllDay"))
    for key in ("start", "end"):
        if key in patch and _when_key(patch[key]) != _when_key(data.get(key)):
            changed = True
    return {**patch, **series.cleared()} if changed else patch


def _zones_followed(data: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    followed = {}
    for key, original in (("start", "originalStartTimeZone"), ("end", "originalEndTimeZone")):
        when = patch.get(key)
        if data.get(original) and isinstance(when, dict) and when.get("timeZone"):
            followed[original] = when["timeZone"]
    return followed


def _when_key(when: Any) -> tuple[datetime | None, str]:
    """A dateTimeTimeZone as the instant and the zone it names."""
    zone = zone_of(when.get("timeZone")).key if isinstance(when, dict) else ""
    return event_time(when), zone
