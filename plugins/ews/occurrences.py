"""Writing a series' exceptions and cancellations to its occurrences, once the series is written.

Exchange keeps them on the series' occurrences, addressed by ``OccurrenceItemId`` (the master's
id and the occurrence's 1-based InstanceIndex): saving start, end, subject, location and body on
an occurrence makes it an exception, deleting one cancels it. All the occurrences of one write
are cancelled with one DeleteItem and saved with one UpdateItem, whatever the number of series.

A new series gets its exceptions and cancellations written. An updated one is compared with
what Exchange held before the update: when its pattern changed (recurrence, first start, time of
day, time zone, all-day), Exchange dropped every exception and cancellation, and none is written
again (the read after the write finds the series without them, and the CRM follows); otherwise
the occurrences whose values differ are saved, the newly cancelled ones deleted, and an exception
no longer wanted is saved back to the series' values. A cancelled occurrence cannot be restored,
nor changed: the series is then read again after the write, so the cancellation goes back to the CRM.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exchangelib import errors as ews_errors
from exchangelib.properties import OccurrenceItemId

from framework.contracts import Create, Update, WriteOp, WriteResult
from framework.errors import RecordRejected
from framework.model import Event, Occurrence
from framework.recurrence import duration, instance_index, pattern, plain_occurrence
from plugins.ews import mapping

if TYPE_CHECKING:
    from plugins.ews.store import FolderSide

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """What one written series needs on its occurrences."""

    op_index: int
    master_id: str
    series: Event
    saves: list[tuple[int, Occurrence]] = field(default_factory=list)
    cancels: list[int] = field(default_factory=list)
    kept_cancelled: bool = False  # an occurrence stays cancelled that the record has back


def plan(op_index: int, master_id: str, wanted: Event, held: Event | None) -> Plan:
    """The occurrence writes that turn series ``held`` (None: new, or its exceptions dropped)
    into ``wanted`` (as :func:`mapping.event_echo` gives it, so every original start in it is
    an occurrence of its pattern)."""
    exceptions = {o.original_start: o for o in held.exceptions} if held else {}
    cancelled = set(held.cancelled) if held else set()
    result = Plan(op_index, master_id, wanted)
    result.kept_cancelled = bool(cancelled - set(wanted.cancelled))  # Exchange cannot restore them
    wanted_exceptions = {o.original_start: o for o in wanted.exceptions}
    cancels = [moment for moment in wanted.cancelled if moment not in cancelled]
    saves = [o for moment, o in wanted_exceptions.items() if exceptions.get(moment) != o and moment not in cancelled]
    saves += [
        plain_occurrence(wanted, moment)
        for moment in exceptions
        if moment not in wanted_exceptions and moment not in wanted.cancelled
    ]
    result.cancels = [index for moment in cancels if (index := instance_index(wanted, moment)) is not None]
    result.saves = [(index, o) for o in saves if (index := instance_index(wanted, o.original_start)) is not None]
    return result


class OccurrenceWriter:
    """Writes the occurrences of the series one :meth:`FolderSide.write` call wrote."""

    def __init__(self, side: FolderSide, before: dict[int, Event]) -> None:
        self.side = side
        self.before = before

    def write(self, ops: Sequence[WriteOp], results: list[WriteResult]) -> None:
        """Cancel and save the occurrences the written series need. An update whose occurrences
        could not all be written fails (and is tried again); a created series stays created, and
        is listed as our own write unless an occurrence write changed it."""
        plans = [p for i, op in enumerate(ops) if (p := self._plan(i, op, results[i])) is not None]
        cancels = [(p, OccurrenceItemId(id=p.master_id, instance_index=n)) for p in plans for n in p.cancels]
        failures: dict[int, str] = {}
        saves = []
        for found in plans:
            for index, occurrence in found.saves:
                try:
                    saves.append((found, self._native(found, index, occurrence)))
                except (ValueError, TypeError) as exc:  # checked here: one bad item would fail the call
                    failures.setdefault(found.op_index, f"{type(exc).__name__}: {exc}")
        if cancels:
            answers = self.side.cancel_occurrences([ref for _, ref in cancels])
            for (p, _), answer in zip(cancels, answers, strict=True):
                if isinstance(answer, Exception) and not _already_cancelled(answer):
                    failures.setdefault(p.op_index, f"{type(answer).__name__}: {answer}")
        if saves:
            answers = self.side.save_occurrences([native for _, native in saves])
            for (p, _), answer in zip(saves, answers, strict=True):
                if isinstance(answer, Exception):
                    failures.setdefault(p.op_index, f"{type(answer).__name__}: {answer}")
        for found in plans:
            reason = failures.get(found.op_index)
            if reason is None:
                self.side.forget_echo(found.master_id)  # changed since CreateItem/UpdateItem answered
            elif isinstance(ops[found.op_index], Update):
                results[found.op_index] = WriteResult(error=RecordRejected(f"Exchange refused an occurrence: {reason}"))
            else:  # kept as created (a retry would duplicate it); written again with its next update
                log.warning("an occurrence of a new series was not written: %s", reason)

    def _plan(self, index: int, op: WriteOp, result: WriteResult) -> Plan | None:
        if not isinstance(op, Create | Update) or not isinstance(op.record, Event) or not op.record.recurrence:
            return None
        if not result.ok or result.id is None:
            return None
        wanted = mapping.event_echo(op.record)
        if not (wanted.cancelled or wanted.exceptions or isinstance(op, Update)):
            return None
        held = self.before.get(index) if isinstance(op, Update) else None
        if held is not None and held.recurrence and pattern(held) != pattern(wanted):
            self.side.forget_echo(result.id)  # Exchange dropped them: the next read lists the series
            return None
        if held is not None and duration(held) != duration(wanted):
            held = None  # a new End: Exchange dropped them too (not confirmed), so all are written again
        found = plan(index, result.id, wanted, held)
        if found.kept_cancelled:
            self.side.forget_echo(result.id)  # the next read lists the cancellation, for the CRM
        return found if found.saves or found.cancels else None

    def _native(self, found: Plan, index: int, occurrence: Occurrence) -> Any:
        native = mapping.occurrence_to_native(found.series, occurrence)
        native.account = self.side.account
        self.side.keep_all_day_zone(found.master_id, native)
        native.clean(version=self.side.account.version)
        native._id = OccurrenceItemId(id=found.master_id, instance_index=index)  # not an ItemId: after clean
        return native


def _already_cancelled(answer: Exception) -> bool:
    return isinstance(answer, ews_errors.ErrorCalendarOccurrenceIsDeletedFromRecurrence)
