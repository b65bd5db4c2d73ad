"""Where a series' occurrences fall: an RFC 5545 RRULE expanded in the series' own time zone.

A series keeps its wall-clock time: a weekly 09:00 meeting in Europe/Berlin is at 08:00 UTC in
winter and 07:00 UTC in summer. Every store finds its occurrences here, so that the original
start of an exception read from one service is the one another service is given. ``UNTIL`` is
an inclusive date (``UNTIL=20260301`` keeps an occurrence on 1 March at any time of day).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr

from framework.errors import RecordRejected
from framework.model import Event, Occurrence

MAX_OCCURRENCES = 1000
"""No series is expanded further: Exchange itself lists at most 999 occurrences of one."""


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (empty: UTC); RecordRejected for a name that is not one."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise RecordRejected(f"The time zone {name!r} is not an IANA time zone name.") from None


def occurrence_starts(event: Event, until: datetime | None = None) -> Iterator[datetime]:
    """The original starts (UTC) of ``event``'s occurrences, in order, up to ``until``."""
    if not event.recurrence or event.start is None:
        return
    for moment in _expanded(event.recurrence, event.start, event.timezone if not event.all_day else ""):
        if until is not None and moment > until:
            return
        yield moment


def is_occurrence(event: Event, original_start: datetime) -> bool:
    """Whether ``original_start`` is where ``event``'s pattern places an occurrence."""
    return instance_index(event, original_start) is not None


def instance_index(event: Event, original_start: datetime) -> int | None:
    """The 1-based position of the occurrence starting at ``original_start`` (EWS's
    ``InstanceIndex``); None when the pattern places none there."""
    if event.start is None:
        return None
    wanted = original_start.astimezone(UTC)
    found = _expanded(event.recurrence, event.start, event.timezone if not event.all_day else "")
    try:
        return found.index(wanted) + 1
    except ValueError:
        return None


def duration(event: Event) -> timedelta:
    """How long each occurrence of the series lasts (the first one's length)."""
    if event.start is None or event.end is None:
        return timedelta(0)
    return event.end - event.start


@functools.lru_cache(maxsize=1024)
def _expanded(rule: str, start: datetime, zone_name: str) -> list[datetime]:
    local_zone = zone(zone_name)
    wall = start.astimezone(local_zone).replace(tzinfo=None)
    try:
        rrule = rrulestr(_inclusive_until(rule), dtstart=wall)
    except (ValueError, TypeError) as exc:
        raise RecordRejected(f"The recurrence {rule!r} is not an RRULE: {exc}.") from None
    return [moment.replace(tzinfo=local_zone).astimezone(UTC) for moment in islice(rrule, MAX_OCCURRENCES)]


def _inclusive_until(rule: str) -> str:
    """``rule`` without an ``RRULE:`` prefix, its date-only UNTIL made the end of that day."""
    parts = []
    for part in rule.strip().removeprefix("RRULE:").split(";"):
        name, _, value = part.partition("=")
        if name.upper() == "UNTIL":
            digits = value.replace("-", "")[:8]
            value = f"{digits}T235959"
        parts.append(f"{name}={value}" if value else name)
    return ";".join(p for p in parts if p)


def pattern(event: Event) -> tuple[str, datetime | None, str, bool]:
    """What places a series' occurrences: its rule, first start (to the second, as Exchange
    keeps it), time zone and whether it is all-day. Changing any of them, Exchange drops the
    series' exceptions and cancellations."""
    start = event.start.replace(microsecond=0) if event.start else None
    return event.recurrence, start, event.timezone, event.all_day


def plain_occurrence(series: Event, original_start: datetime) -> Occurrence:
    """The occurrence of ``series`` at ``original_start`` as the series places it, with its values."""
    moment = original_start.astimezone(UTC)
    return Occurrence(moment, moment, moment + duration(series), series.subject, series.location, series.body)


def merge_series(winner: Event, loser: Event) -> Event:
    """A series changed on both sides since the last sync: the winner's series with the
    occurrences only the loser changed or cancelled added, so that no exception made on either
    side is lost. Where both changed the same occurrence the winner's stands; a loser whose
    pattern differs adds nothing (its exceptions went with its old pattern)."""
    if not winner.recurrence or pattern(winner) != pattern(loser):
        return winner
    mine = {o.original_start for o in winner.exceptions} | set(winner.cancelled)
    added = [o for o in loser.exceptions if o.original_start not in mine]
    cancelled = [moment for moment in loser.cancelled if moment not in mine]
    if not added and not cancelled:
        return winner
    return dataclasses.replace(
        winner, exceptions=(*winner.exceptions, *added), cancelled=(*winner.cancelled, *cancelled)
    )
