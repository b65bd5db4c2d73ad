"""A recurring series' exceptions and cancellations as Graph shows them: its instances.

Graph lists a series' occurrences and exceptions through ``/events/{id}/instances``, each with
its ``originalStart``; a cancelled occurrence is simply not listed. These pure functions read a
listing into the series' :class:`~framework.model.Event` and plan the occurrence writes that
make a series hold a record's exceptions and cancellations.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from framework.model import Event, Occurrence
from framework.recurrence import is_occurrence, occurrence_starts, plain_occurrence, zone
from plugins.graph import mapping

Json = mapping.Json

INSTANCE_SELECT = "id,type,originalStart,start,end,subject,location,body"
INSTANCE_TYPES = ("occurrence", "exception")
MARGIN = timedelta(days=1)
"""How far before the first and past the last occurrence a listing reaches (an exception may be
moved a little, and an occurrence without length at the window's start is not listed)."""


@dataclass
class Listing:
    """What a series holds now: its occurrences' ids by original start, its exceptions and its
    cancelled occurrences, up to ``end`` (where the listing stopped)."""

    ids: dict[datetime, str] = field(default_factory=dict)
    exceptions: dict[datetime, Occurrence] = field(default_factory=dict)
    cancelled: set[datetime] = field(default_factory=set)
    end: datetime | None = None


def listing_window(event: Event, horizon: datetime) -> tuple[datetime, datetime] | None:
    """The window that lists every instance of ``event`` up to ``horizon``: from its first
    start to its last occurrence (a day more either side), or to ``horizon`` for a series
    without an end."""
    if event.start is None:
        return None
    starts = list(occurrence_starts(event, horizon))
    if not starts:
        return None
    length = event.end - event.start if event.end is not None else timedelta(0)
    first = min(event.start, starts[0])
    return (first - MARGIN).astimezone(UTC), min(horizon, starts[-1] + length + MARGIN).astimezone(UTC)


def original_start(instance: Json, series: Event, master: Json) -> datetime | None:
    """An instance's ``originalStart`` as the series' pattern gives it: an all-day one's is
    the date in the zone the series was made in, at midnight UTC as exsync holds all-day times."""
    moment = mapping.parse_graph_datetime(instance.get("originalStart"))
    if moment is None or not series.all_day:
        return moment
    made_in = zone(mapping.iana_zone(str(master.get("originalStartTimeZone") or "")))
    local = moment.astimezone(made_in).date()
    return datetime(local.year, local.month, local.day, tzinfo=UTC)


def read_listing(series: Event, master: Json, instances: list[Json], end: datetime) -> Listing:
    """The :class:`Listing` of ``series`` (read from ``master``) from the instances listed up to ``end``."""
    listing = Listing(end=end)
    for instance in instances:
        if instance.get("type") not in INSTANCE_TYPES:
            continue
        moment = original_start(instance, series, master)
        if moment is None:
            continue
        listing.ids[moment] = str(instance["id"])
        if instance.get("type") == "exception":
            changed = mapping.event_from_graph(instance)
            occurrence = Occurrence(moment, changed.start, changed.end, changed.subject, changed.location, changed.body)
            held = mapping.held_occurrence(series, occurrence)
            if held != mapping.held_occurrence(series, plain_occurrence(series, moment)):
                listing.exceptions[moment] = held  # one changed back to the series' values is none
    listing.cancelled = {m for m in occurrence_starts(series, end - timedelta(seconds=1)) if m not in listing.ids}
    return listing


def with_listing(series: Event, listing: Listing) -> Event:
    """``series`` carrying the exceptions and cancellations of ``listing``."""
    return replace(series, exceptions=tuple(listing.exceptions.values()), cancelled=tuple(listing.cancelled))


@dataclass(frozen=True)
class OccurrenceWrite:
    """One write to an occurrence: DELETE (``values`` None) cancels it, PATCH makes it hold ``values``."""

    original_start: datetime
    instance_id: str
    values: Occurrence | None


def plan(record: Event, listing: Listing) -> list[OccurrenceWrite]:
    """The occurrence writes that make a series holding ``listing`` hold ``record``'s
    exceptions and cancellations. A cancelled occurrence cannot be restored: it stays."""
    writes: list[OccurrenceWrite] = []
    for moment in record.cancelled:
        if moment not in listing.cancelled and moment in listing.ids and is_occurrence(record, moment):
            writes.append(OccurrenceWrite(moment, listing.ids[moment], None))
    wanted = {o.original_start: mapping.held_occurrence(record, o) for o in record.exceptions}
    for moment, occurrence in wanted.items():
        if moment in listing.ids and listing.exceptions.get(moment) != occurrence and is_occurrence(record, moment):
            writes.append(OccurrenceWrite(moment, listing.ids[moment], occurrence))
    for moment in listing.exceptions.keys() - wanted.keys() - set(record.cancelled):
        if moment in listing.ids:
            writes.append(OccurrenceWrite(moment, listing.ids[moment], plain_occurrence(record, moment)))
    return writes


def applied(listing: Listing, writes: list[OccurrenceWrite], done: list[bool]) -> Listing:
    """``listing`` once the ``writes`` that succeeded (``done``) are applied."""
    after = Listing(dict(listing.ids), dict(listing.exceptions), set(listing.cancelled), listing.end)
    for write, ok in zip(writes, done, strict=True):
        if not ok:
            continue
        if write.values is None:
            after.cancelled.add(write.original_start)
            after.exceptions.pop(write.original_start, None)
        else:
            after.exceptions[write.original_start] = write.values
    return after
