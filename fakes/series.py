"""A recurring series' exceptions and cancellations, kept once in the tenant's item data.

A series is one calendar item, its master. Exchange keeps what differs for one occurrence with the
master, whichever protocol changed it, so the fake EWS and the fake Graph keep it here, in one form:

- ``_exceptions``: {original start: the Graph-shaped properties the occurrence has of its own}
  (``start``, ``end``, ``subject``, ``location``, ``body``...; a property set to None is one the
  occurrence does not have although the series does);
- ``_cancelled``: the sorted original starts of the occurrences deleted from the series.

An original start is the UTC instant the pattern gives the occurrence, as ``yyyymmddThhmmssZ``:
the same whether the occurrence is addressed over EWS (its OriginalStart, its InstanceIndex) or
over Graph (``originalStart``; the id ``<master>_<yyyymmdd>`` names its date in the series'
zone). The keys start with ``_``, so Graph does not return them and EWS has no element for them.

The series keeps its wall-clock time in its own zone: the master's ``originalStartTimeZone``
(EWS's StartTimeZone), else the zone of its ``start``; UTC when neither names a known zone.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exchangelib.winzone import MS_TIMEZONE_TO_IANA_MAP  # data table only: Windows zone -> IANA

EXCEPTIONS = "_exceptions"
CANCELLED = "_cancelled"
STAMP = "%Y%m%dT%H%M%SZ"
Data = Mapping[str, Any]


def zone(name: str) -> tzinfo:
    """The zone a Graph or EWS time zone name stands for (IANA or Windows; unknown: UTC)."""
    if name.upper() in ("", "UTC", "Z", "GMT", "ETC/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        iana = MS_TIMEZONE_TO_IANA_MAP.get(name)
        return ZoneInfo(iana) if iana else UTC


def series_zone(master: Data) -> tzinfo:
    """The zone whose wall clock the series keeps."""
    start = master.get("start") or {}
    return zone(str(master.get("originalStartTimeZone") or start.get("timeZone") or "UTC"))


def local_start(master: Data) -> datetime:
    """The master's start in the series' zone."""
    when = master["start"]
    moment = datetime.fromisoformat(str(when["dateTime"]))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(str(when.get("timeZone") or "UTC")))
    return moment.astimezone(series_zone(master))


def original_start(master: Data, day: date, first: datetime | None = None) -> datetime:
    """The UTC instant the pattern gives the occurrence on ``day`` (a date in the series' zone);
    ``first``: the master's :func:`local_start`, when already known."""
    begin = first or local_start(master)
    return datetime.combine(day, begin.timetz()).astimezone(UTC)


def stamp(original: datetime) -> str:
    """The key of an occurrence: its original start as ``yyyymmddThhmmssZ``."""
    return original.astimezone(UTC).strftime(STAMP)


def changes_of(master: Data, original: datetime) -> dict[str, Any] | None:
    """The occurrence's own properties, None when it is not an exception."""
    found = (master.get(EXCEPTIONS) or {}).get(stamp(original))
    return copy.deepcopy(found) if found else None


def is_cancelled(master: Data, original: datetime) -> bool:
    """Whether the occurrence originally at ``original`` was deleted from the series."""
    return stamp(original) in (master.get(CANCELLED) or ())


def stored_starts(master: Data) -> list[datetime]:
    """The original starts of every exception and cancellation of the series."""
    keys = [*(master.get(EXCEPTIONS) or {}), *(master.get(CANCELLED) or ())]
    return [datetime.strptime(key, STAMP).replace(tzinfo=UTC) for key in keys]


def changed(master: Data, original: datetime, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The tenant patch of the master making the occurrence's own properties ``changes``
    (none: it is an occurrence like the others again)."""
    exceptions = copy.deepcopy(dict(master.get(EXCEPTIONS) or {}))
    exceptions.pop(stamp(original), None)
    if changes:
        exceptions[stamp(original)] = copy.deepcopy(dict(changes))
    return {EXCEPTIONS: exceptions or None}


def cancelled(master: Data, original: datetime) -> dict[str, Any]:
    """The tenant patch of the master deleting the occurrence (and its changes) from the series."""
    keys = sorted({*(master.get(CANCELLED) or ()), stamp(original)})
    return {**changed(master, original, {}), CANCELLED: keys}


def cleared(keys: Iterable[str] = (EXCEPTIONS, CANCELLED)) -> dict[str, None]:
    """The tenant patch dropping every exception and cancellation (a new pattern)."""
    return dict.fromkeys(keys)


def apply(base: Mapping[str, Any], changes: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` (an occurrence as the series makes it) with the occurrence's own ``changes``."""
    out = copy.deepcopy(dict(base))
    for key, value in (changes or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = copy.deepcopy(value)
    return out
