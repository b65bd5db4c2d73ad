"""The sync engine: per (user, entity) read both sides, plan, apply in batches, commit.

Each (user, entity) is an independent job. Its cursors are saved only once every change
read has been applied, and its pairs every chunk of written records, so a run stopped
anywhere is finished by the next one: a re-read change whose hash already matches is a
no-op, and a record written just before the stop is re-paired by the cross-link it carries.

Pages are read ahead and batches sent behind (:mod:`framework.overlap`), so the engine plans
while the services answer; every answer is still handled in the job's own thread.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

from framework.context import Context
from framework.contracts import (
    SIDES,
    Changes,
    Create,
    Delete,
    Item,
    Side,
    SideName,
    Update,
    Window,
    WriteOp,
    WriteResult,
)
from framework.errors import (
    AuthenticationFailed,
    ConfigurationError,
    ExsyncError,
    RecordRejected,
    SyncError,
    SyncStateLost,
    TransientError,
)
from framework.model import content_hash, describe, from_plain, to_plain
from framework.overlap import THREADS_PER_JOB, Sender, read_ahead
from framework.plan import Plan, PlanInput, Withdrawal, Write, plan
from framework.spool import DONE, NEW, UNPAIRED, Entry, Spool
from framework.state import Pair, User

log = logging.getLogger(__name__)

T = TypeVar("T")
Progress = Callable[[str, str, int, int], None]  # (user email, entity, done, total)

MAX_ATTEMPTS = 5
MAX_ROUNDS = 3
MAX_WAIT = 60.0  # the longest back-off of our own (when the service names no wait)
MAX_RETRY_AFTER = 900.0  # a service's Retry-After is waited in full up to this; longer: next run
CHUNK = 500  # records planned together: with the page and batch sizes, what bounds a run's memory


class MassDeleteRefused(ExsyncError):
    """A run would delete more than the configured share of one side."""


class RunInterrupted(ExsyncError):
    """The run was stopped (Ctrl-C, a stop signal) before it finished; the next run finishes it."""


@dataclass
class SideCounts:
    """What a run did to one side of one entity."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    errors: int = 0

    def count(self, op: WriteOp) -> None:
        """Count one write, done (or, in a dry run, planned)."""
        if isinstance(op, Create):
            self.created += 1
        elif isinstance(op, Update):
            self.updated += 1
        else:
            self.deleted += 1


@dataclass
class EntityReport:
    """The outcome of one (user, entity) job."""

    entity: str
    sides: dict[str, SideCounts] = field(default_factory=lambda: {s: SideCounts() for s in SIDES})
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)
    skipped_reason: str = ""
    outcome: str = "ok"
    planned: list[str] = field(default_factory=list)  # a dry run's actions, one line each
    outside_window: int = 0  # records read but dated outside the sync window (counted as skipped)
    withheld: dict[str, int] = field(default_factory=dict)
    """Records the privacy rules kept from crossing, per reason (counts only, never content)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "conflicts": self.conflicts,
            "withheld": dict(sorted(self.withheld.items())),
            "skipped_reason": self.skipped_reason,
            "outside_window": self.outside_window,
            "errors": self.errors,
            "planned": self.planned,
            **{side: vars(counts) for side, counts in self.sides.items()},
        }


@dataclass
class RunReport:
    """The outcome of one user's run."""

    user: User
    dry_run: bool = False
    entities: dict[str, EntityReport] = field(default_factory=dict)
    outcome: str = "ok"
    error: str = ""
    run_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "user": self.user.email,
            "outcome": self.outcome,
            "error": self.error,
            "dry_run": self.dry_run,
            "entities": {name: report.as_dict() for name, report in self.entities.items()},
        }


class Engine:
    """Runs syncs for users, by the org's settings."""

    def __init__(
        self,
        ctx: Context,
        *,
        sleep: Callable[[float], None] = time.sleep,
        concurrency: int = 1,
        chunk: int = CHUNK,
    ) -> None:
        self.ctx = ctx
        self.sleep = sleep
        self.concurrency = max(1, concurrency)
        self.chunk = max(1, chunk)
        self.stopping = threading.Event()  # set on Ctrl-C: every user's run stops at its next chunk
        self.org_users: list[User] = []

    def run(
        self,
        users: Sequence[User],
        entities: Sequence[str] | None = None,
        *,
        dry_run: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> list[RunReport]:
        """Sync each user, ``concurrency`` users at a time; one user's failure never stops the others.

        A user's entities run one after the other, so a mailbox never sees more than
        :data:`~framework.overlap.IN_FLIGHT` requests at a time from exsync (Graph allows four).
        """
        settings = self.ctx.settings
        wanted = [e for e in settings.enabled_entities() if entities is None or e in entities]
        self.org_users = self.ctx.state.users()  # whose domains make a mail internal (privacy)

        with self._sweep(), ThreadPoolExecutor(self.concurrency * THREADS_PER_JOB, "exsync-io") as io:

            def one(user: User) -> RunReport:
                return self._run_user(user, wanted, dry_run, force, progress, io)

            if self.concurrency == 1 or len(users) < 2:
                return [one(user) for user in users]
            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                try:
                    return list(pool.map(one, users))
                except BaseException:  # Ctrl-C (or one run's crash): set before the pool waits for the others
                    self.stopping.set()  # the other users' runs stop at their next chunk, interrupted
                    raise

    def _sweep(self) -> AbstractContextManager[None]:
        try:
            connector = self.ctx.crm_connector()
        except ExsyncError:  # reported by each user's run
            return nullcontext()
        return connector.sweep(self.ctx)

    # one user -----------------------------------------------------------------------------
    def _run_user(
        self, user: User, entities: list[str], dry_run: bool, force: bool, progress: Progress | None, io: Executor
    ) -> RunReport:
        report = RunReport(user, dry_run)
        if self.stopping.is_set():
            raise RunInterrupted(f"The sync was interrupted before {user.email}'s run began.")
        if not dry_run:
            report.run_id = self.ctx.state.start_run(user.crm_id)
        self.ctx.hook.exsync_run_started(user=user.crm_id, entities=entities, dry_run=dry_run)
        try:
            self._run_entities(report, entities, dry_run, force, progress, io)
        except BaseException as exc:  # Ctrl-C, a stop signal, a crash: the run must not stay "running"
            self._interrupted(report, exc)
            raise
        if report.outcome == "ok" and any(e.outcome in ("failed", "partial") for e in report.entities.values()):
            report.outcome = "partial"
        self._finish(report)
        return report

    def _run_entities(
        self,
        report: RunReport,
        entities: list[str],
        dry_run: bool,
        force: bool,
        progress: Progress | None,
        io: Executor,
    ) -> None:
        user = report.user
        try:
            with ExitStack() as stores:
                crm = stores.enter_context(closing(self.ctx.crm(user)))
                exchange = stores.enter_context(closing(self.ctx.exchange(user)))
                for entity in entities:
                    report.entities[entity] = self._run_entity(
                        user, entity, crm, exchange, dry_run, force, progress, io
                    )
        except AuthenticationFailed as exc:
            self._needs_attention(user, exc)
            report.outcome, report.error = "failed", exc.message
        except ConfigurationError as exc:  # e.g. a certificate not trusted: the run fails, with what to do
            report.outcome, report.error = "failed", f"{exc.message} {exc.hint}".strip()

    def _interrupted(self, report: RunReport, exc: BaseException) -> None:
        """Record a run stopped before it finished as interrupted, with an audit entry."""
        if isinstance(exc, KeyboardInterrupt | RunInterrupted):
            report.error = "interrupted (Ctrl-C or a stop signal) before it finished"
        else:
            report.error = f"stopped by an unexpected {type(exc).__name__} before it finished"
        report.outcome = "interrupted"
        if report.run_id is not None:
            self.ctx.state.interrupt_run(report.run_id, report.error)
        self.ctx.audit.record(
            "sync" if not report.dry_run else "sync-dry-run",
            "interrupted",
            actor=self._actor_email(),
            user_id=report.user.crm_id,
            error=report.error,
        )

    def _finish(self, report: RunReport) -> None:
        summary = report.as_dict()
        if report.run_id is not None:
            self.ctx.state.finish_run(report.run_id, report.outcome, summary, report.error)
            if report.outcome == "ok" and report.user.needs_attention:
                self.ctx.state.update_user(report.user.crm_id, needs_attention="")
        outcome = {"ok": "ok", "partial": "failed", "failed": "failed"}[report.outcome]
        self.ctx.audit.record(
            "sync" if not report.dry_run else "sync-dry-run",
            outcome,
            actor=self._actor_email(),
            user_id=report.user.crm_id,
            entities={name: _without_plan(entity) for name, entity in summary["entities"].items()},
            error=report.error,
        )
        self.ctx.hook.exsync_run_finished(report=report)

    def _needs_attention(self, user: User, exc: AuthenticationFailed) -> None:
        self.ctx.state.update_user(user.crm_id, needs_attention=exc.message)
        self.ctx.audit.record(
            "authenticate", "failed", actor=self._actor_email(), user_id=user.crm_id, error=exc.message, hint=exc.hint
        )

    def _actor_email(self) -> str:
        try:
            return self.ctx.actor.email
        except ExsyncError:
            return "scheduler"

    # one entity ---------------------------------------------------------------------------
    def _run_entity(
        self,
        user: User,
        entity: str,
        crm: Any,
        exchange: Any,
        dry_run: bool,
        force: bool,
        progress: Progress | None,
        io: Executor,
    ) -> EntityReport:
        report = EntityReport(entity)
        reason = self._skip_reason(entity, crm, exchange)
        if reason:
            report.outcome, report.skipped_reason = "skipped", reason
            self.ctx.audit.record("sync-entity", "skipped", user_id=user.crm_id, entity=entity, reason=reason)
            return report
        try:
            sides: dict[SideName, Side] = {"crm": crm.side(entity), "exchange": exchange.side(entity)}
        except ConfigurationError as exc:  # e.g. the CRM org lacks a field this entity writes
            report.outcome = "failed"
            report.errors.append(f"{exc.message} {exc.hint}".strip())
            self.ctx.audit.record(
                "sync-entity", "failed", user_id=user.crm_id, entity=entity, error=exc.message, hint=exc.hint
            )
            return report
        job = _Job(self, user, entity, sides, report, progress, io)
        try:
            job.run(dry_run, force)
            if report.errors:
                report.outcome = "partial"
        except (TransientError, RecordRejected, SyncStateLost, MassDeleteRefused) as exc:
            report.outcome = "failed"
            report.errors.append(exc.message)
            self.ctx.audit.record(
                "sync-entity", "failed", user_id=user.crm_id, entity=entity, error=exc.message, hint=exc.hint
            )
        return report

    def _skip_reason(self, entity: str, crm: Any, exchange: Any) -> str:
        refused = self.ctx.auth_provider().refused_entities(self.ctx)
        if entity in refused:
            return refused[entity]
        if entity not in self.ctx.entities:
            return f"no plugin defines the entity {entity!r}"
        if entity not in crm.entities or entity not in exchange.entities:
            return f"{entity} is not carried by both stores"
        if entity == "mails" and crm.org().sales_inbox:
            return "the CRM org uses SalesInbox, which handles mails itself (B22)"
        return ""


@dataclass
class _Read:
    """What reading one side into the spool gave, besides the records."""

    cursor: str | None
    full: bool
    outside_window: int = 0


class _Job:
    """One (user, entity) sync."""

    def __init__(
        self,
        engine: Engine,
        user: User,
        entity: str,
        sides: dict[SideName, Side],
        report: EntityReport,
        progress: Progress | None,
        io: Executor,
    ) -> None:
        self.engine = engine
        self.ctx = engine.ctx
        self.user = user
        self.entity = entity
        self.definition = self.ctx.entities[entity]
        self.sides = sides
        self.report = report
        self.progress = progress
        self.settings = self.ctx.settings
        self.retrying: set[tuple[SideName, str]] = set()  # (side read from, id) with a retry row
        self.window = Window.months_back(self.settings.window_months)
        self.queued: dict[SideName, list[Write]] = {side: [] for side in SIDES}
        self.upserts: list[Pair] = []  # pairs written but not saved yet
        self.removed: list[Pair] = []
        self.wrote_back = False  # this round wrote to a read_back side
        self.io = io  # the run's threads for reading ahead and sending behind
        self.senders: dict[SideName, Sender[list[WriteResult]]] = {}
        self.privacy = self.settings.privacy_rules(user, engine.org_users or self.ctx.state.users())

    def run(self, dry_run: bool, force: bool) -> None:
        """Read, plan, apply; then again while a round wrote to a ``read_back`` side (at most
        :data:`MAX_ROUNDS`).

        The cursors a round saves were issued before its writes, and an EWS sync state only
        covers what it listed: a record we created and a user deleted before the next read
        would never be reported as deleted. The next round reads our writes back (no-ops by
        hash) so the saved cursors cover them; the next run would have read them anyway.
        """
        wrote_back = self._round(dry_run, force, retries=True)
        for _ in range(MAX_ROUNDS - 1):
            if dry_run or not wrote_back:
                break
            before = self._written()
            wrote_back = self._round(dry_run, force, retries=False)
            if self._written() == before:
                break

    def _written(self) -> int:
        return sum(c.created + c.updated + c.deleted for c in self.report.sides.values())

    def _round(self, dry_run: bool, force: bool, *, retries: bool) -> bool:
        """One read, plan and apply of every change; True when it wrote to a ``read_back`` side."""
        self.wrote_back = False
        with Spool(self.definition.match_keys) as spool, self._sending():
            reads = {side: self._read(spool, side, retries=retries) for side in SIDES}
            if reads["exchange"].full and not dry_run:
                self._follow_new_ids(spool)
            self._guard_mass_delete(spool, force)
            total = spool.count()
            for the_plan in self._plans(spool):
                if self.engine.stopping.is_set():
                    raise RunInterrupted(f"The {self.entity} of {self.user.email} were interrupted.")
                self._count_plan(the_plan)
                if dry_run:
                    self._report_planned(the_plan)
                else:
                    self._apply(the_plan)
                if self.progress:
                    self.progress(self.user.email, self.entity, spool.done, total)
            if dry_run:
                return False
            if self.engine.stopping.is_set():  # nothing more is sent once the sync is stopped
                raise RunInterrupted(f"The {self.entity} of {self.user.email} were interrupted.")
            self._flush(everything=True)
            for sender in self.senders.values():
                sender.finish()
            with self.ctx.state.transaction() as conn:
                self._save_pairs(conn)
                for side in SIDES:
                    self.ctx.state.save_cursor(conn, self.user.crm_id, self.entity, side, reads[side].cursor)
        if self.progress and not total:
            self.progress(self.user.email, self.entity, 0, 0)
        return self.wrote_back

    def _follow_new_ids(self, spool: Spool) -> None:
        """Re-key pairs whose Exchange record is listed under a new id (after a change of
        authentication the same item may have another id format), recognised by the cross-link
        it carries: the CRM id of its pair."""
        for entries in spool.scan("exchange", self.engine.chunk, deleted=False, linked=True):
            by_crm = {p.crm_id: p for p in self._pairs([e.link for e in entries], [])}
            candidates = [
                (entry.id, pair)
                for entry in entries
                if (pair := by_crm.get(entry.link)) is not None and pair.exchange_id != entry.id
            ]
            listed = spool.listed("exchange", [p.exchange_id for _, p in candidates], deleted=False)
            moved = []
            for item_id, pair in candidates:
                if pair.exchange_id not in listed:
                    pair.exchange_id = item_id
                    moved.append(pair)
            if moved:
                with self.ctx.state.transaction() as conn:
                    self.ctx.state.save_pairs(conn, self.user.crm_id, self.entity, moved, [])

    def _echo_hash(self, side: SideName, item: Item) -> str:
        """The hash ``side`` will list ``item`` with once written. The echo mostly equals the
        record, whose hash the pair needs anyway (cached), so the echo is hashed only when it differs."""
        echo = self.sides[side].echo(item.record)
        return content_hash(item.record if echo == item.record else echo)

    def _pairs(self, crm_ids: Sequence[str], exchange_ids: Sequence[str]) -> list[Pair]:
        return self.ctx.state.pairs_touching(self.user.crm_id, self.entity, crm_ids, exchange_ids)

    # reading ------------------------------------------------------------------------------
    def _read(self, spool: Spool, side: SideName, *, retries: bool = True) -> _Read:
        """Read a side into the spool, page by page; a lost cursor means a full listing."""
        cursor = self.ctx.state.cursor(self.user.crm_id, self.entity, side)
        try:
            read = self._retrying(lambda: self._spool_pages(spool, side, cursor), may_repeat=True)
        except SyncStateLost as exc:
            self.ctx.audit.record(
                "resync", "ok", user_id=self.user.crm_id, entity=self.entity, side=side, reason=exc.message
            )
            read = self._retrying(lambda: self._spool_pages(spool, side, None), may_repeat=True)
            read.full = True
            if self.definition.dated is None:
                self._absent_are_deleted(spool, side)
        self.report.sides[side].skipped += read.outside_window
        self.report.outside_window += read.outside_window
        if retries:  # once a run: a record refused in this run waits for the next
            self._add_retries(spool, side)
        return read

    def _spool_pages(self, spool: Spool, side: SideName, cursor: str | None) -> _Read:
        spool.clear(side)
        read = _Read(None, cursor is None)
        dated = self.definition.dated
        for page in read_ahead(self.sides[side].pages(cursor, self.window), self.io):
            items = page.items
            if dated is not None:
                items = [i for i in items if self.window.contains(dated(i.record))]
                read.outside_window += len(page.items) - len(items)
            spool.add(side, items, page.deleted)
            read.cursor, read.full = page.cursor, page.full
        return read

    def _absent_are_deleted(self, spool: Spool, side: SideName) -> None:
        """A resync after a lost cursor names no deletions: a paired record it lacks was deleted.

        Only for undated entities (a dated record may just have left the window, which is not
        a deletion), and only after a lost cursor: a listing after ``change-auth`` or a first
        sync deletes nothing.
        """
        pairs = self.ctx.state.pairs(self.user.crm_id, self.entity)
        ids = [p.crm_id if side == "crm" else p.exchange_id for p in pairs]
        listed = spool.listed(side, ids)
        spool.add(side, [], [i for i in ids if i not in listed])

    def _add_retries(self, spool: Spool, side: SideName) -> None:
        """Records an earlier run could not write are tried again, unless read afresh or deleted since."""
        rows = self.ctx.state.retries(self.user.crm_id, self.entity, side)
        ids = [item_id for item_id, _, _ in rows]
        fresh, gone = spool.listed(side, ids, deleted=False), spool.listed(side, ids, deleted=True)
        for item_id, data, _attempts in rows:
            self.retrying.add((side, item_id))
            if item_id in gone:
                with self.ctx.state.transaction() as conn:
                    self.ctx.state.clear_retry(conn, self.user.crm_id, self.entity, side, item_id)
            elif item_id not in fresh:
                spool.add(side, [Item(item_id, from_plain(data["record"]), data.get("link", ""))])

    # planning -----------------------------------------------------------------------------
    def _plans(self, spool: Spool) -> Iterator[Plan]:
        """Plan everything spooled, a chunk at a time: pairs either side reported on; then
        unpaired records, matched by cross-link, then by natural key; what is left is copied."""
        size = self.engine.chunk
        for side in SIDES:
            for entries in spool.scan(side, size, state=NEW):
                yield self._plan_pairs(spool, side, entries, mark=True)
        for crm, exchange in spool.cross_linked(size):
            yield self._plan_unpaired(spool, crm, exchange, copy=frozenset())
        for crm in spool.sharing_a_key(size):
            keys = sorted({key for e in crm for key in self.definition.match_keys(e.item().record)})
            yield self._plan_unpaired(spool, crm, spool.sharing_keys(keys), copy=frozenset())
        # what is left is copied, a chunk of each side in turn: both sides are written at once
        left = {side: spool.scan(side, size, state=UNPAIRED, deleted=False) for side in SIDES}
        for crm, exchange in itertools.zip_longest(left["crm"], left["exchange"], fillvalue=[]):
            if crm:
                yield self._plan_unpaired(spool, crm, [], copy=frozenset({"crm"}))
            if exchange:
                yield self._plan_unpaired(spool, [], exchange, copy=frozenset({"exchange"}))

    def _plan_pairs(self, spool: Spool, side: SideName, entries: list[Entry], *, mark: bool) -> Plan:
        """Plan the pairs holding ``entries`` (listed on ``side``) with what both sides listed of them;
        with ``mark``, the rest wait for matching (a deletion of a record never paired needs nothing)."""
        ids = [e.id for e in entries]
        pairs = self._pairs(ids, []) if side == "crm" else self._pairs([], ids)
        crm_ids, exchange_ids = [p.crm_id for p in pairs], [p.exchange_id for p in pairs]
        if mark:
            paired = set(crm_ids if side == "crm" else exchange_ids)
            spool.mark(side, [e.id for e in entries if e.id not in paired and not e.deleted], UNPAIRED)
            spool.mark(side, [e.id for e in entries if e.id not in paired and e.deleted], DONE)
            spool.mark("crm", crm_ids, DONE)
            spool.mark("exchange", exchange_ids, DONE)
        return self._plan(pairs, spool.changes("crm", crm_ids), spool.changes("exchange", exchange_ids))

    def _plan_unpaired(
        self, spool: Spool, crm: list[Entry], exchange: list[Entry], *, copy: frozenset[SideName]
    ) -> Plan:
        """Match unpaired records; copy the unmatched ones of the ``copy`` sides."""
        listed: dict[SideName, list[Entry]] = {"crm": crm, "exchange": exchange}
        changes = {side: Changes([e.item() for e in entries], [], None) for side, entries in listed.items()}
        the_plan = self._plan([], changes["crm"], changes["exchange"], copy)
        for side, entries in listed.items():
            left = set(the_plan.unmatched[side])
            spool.mark(side, [e.id for e in entries if e.id not in left], DONE)
        return the_plan

    def _plan(
        self, pairs: list[Pair], crm: Changes, exchange: Changes, copy: frozenset[SideName] = frozenset(SIDES)
    ) -> Plan:
        return plan(
            PlanInput(
                entity=self.definition,
                pairs=pairs,
                crm=crm,
                exchange=exchange,
                writable=self.settings.writable_sides(),
                policy=self.ctx.conflict_policies[self.settings.conflict_policy],
                echo_hash=self._echo_hash,
                copy_unmatched=copy,
                withhold=functools.partial(self.privacy.withheld, self.entity),
                stamp=functools.partial(self.privacy.stamped, self.entity),
            )
        )

    # planning checks ----------------------------------------------------------------------
    def _guard_mass_delete(self, spool: Spool, force: bool) -> None:
        """Refuse a run that would delete more than the configured share of one side's pairs,
        before anything is written: the pairs of every spooled deletion are planned first."""
        if force or spool.count(deleted=True) < 5:
            return
        deletes = dict.fromkeys(SIDES, 0)
        for side in SIDES:
            for entries in spool.scan(side, self.engine.chunk, deleted=True):
                the_plan = self._plan_pairs(spool, side, entries, mark=False)
                for target in SIDES:
                    deletes[target] += the_plan.count(target, Delete)
        if max(deletes.values()) < 5:
            return
        ratio = self.settings.mass_delete_ratio
        paired = self.ctx.state.count_pairs(self.user.crm_id).get(self.entity, 0)
        for side in SIDES:
            if deletes[side] > ratio * paired:
                raise MassDeleteRefused(
                    f"This run would delete {deletes[side]} of {paired} {self.entity} on the {side} side "
                    f"(more than {ratio:.0%}); nothing was written.",
                    hint="If that is intended, run 'exsync sync --force'; otherwise check the other side.",
                )

    def _count_plan(self, the_plan: Plan) -> None:
        self.report.conflicts += len(the_plan.resolutions)
        for reason, count in the_plan.withheld.items():
            self.report.withheld[reason] = self.report.withheld.get(reason, 0) + count
        for side, count in the_plan.skipped.items():
            self.report.sides[side].skipped += count
        for resolution in the_plan.resolutions:
            self.ctx.audit.record(
                "resolve-conflict",
                "ok",
                user_id=self.user.crm_id,
                entity=self.entity,
                policy=resolution.policy,
                winner=resolution.winner,
                crm_id=resolution.conflict.crm.id if resolution.conflict.crm else "",
                exchange_id=resolution.conflict.exchange.id if resolution.conflict.exchange else "",
            )

    def _report_planned(self, the_plan: Plan) -> None:
        """Count a dry run's writes as if done, and describe each."""
        for write in the_plan.writes:
            self.report.sides[write.side].count(write.op)
            what = describe(write.source.record) if write.source else _deleted_label(write)
            self.report.planned.append(f"{type(write.op).__name__.lower()} on {write.side}: {what}")
        for withdrawal in the_plan.withdrawals:  # ids and reasons only: a withheld record is not described
            copy = "remove" if withdrawal.removed else "keep, no longer synced,"
            self.report.planned.append(f"withhold ({withdrawal.reason}): {copy} the copy {_copy_id(withdrawal)}")

    # applying -----------------------------------------------------------------------------
    def _apply(self, the_plan: Plan) -> None:
        """Save a chunk's links, and queue its writes: each side's are sent in full batches."""
        for withdrawal in the_plan.withdrawals:
            self.ctx.audit.record(
                "withhold-record",
                "ok",
                user_id=self.user.crm_id,
                entity=self.entity,
                side=withdrawal.side,
                reason=withdrawal.reason,
                copy="removed" if withdrawal.removed else "kept",
                crm_id=withdrawal.pair.crm_id,
                exchange_id=withdrawal.pair.exchange_id,
            )
        if the_plan.links or the_plan.unlinks:
            with self.ctx.state.transaction() as conn:
                self.ctx.state.save_pairs(
                    conn,
                    self.user.crm_id,
                    self.entity,
                    [link.pair for link in the_plan.links],
                    [unlink.pair for unlink in the_plan.unlinks],
                )
        for write in the_plan.writes:
            self.queued[write.side].append(write)
        self._flush(everything=False)

    @contextmanager
    def _sending(self) -> Iterator[None]:
        """A sender per side for the round's batches; if the round fails, the batches in
        flight are waited for (not collected: their records are re-paired by cross-link) and
        those still waiting their turn are never sent."""
        self.senders = {side: Sender(self.io, waiting=self._batches_a_chunk(side)) for side in SIDES}
        try:
            yield
        except BaseException:
            for sender in self.senders.values():
                sender.abandon()
            raise

    def _batches_a_chunk(self, side: SideName) -> int:
        """Batches a chunk's writes to ``side`` make: what may wait to be sent while the next
        chunk is planned (its writes go to the other side, written meanwhile)."""
        return math.ceil(self.engine.chunk / self.sides[side].batch_size)

    def _flush(self, *, everything: bool) -> None:
        """Send each side's full batches (with ``everything``, the rest too); a batch's answer
        is handled once that side has more batches in flight, or when the round finishes."""
        for side in SIDES:
            size, queue = self.sides[side].batch_size, self.queued[side]
            while len(queue) >= size or (everything and queue):
                batch, self.queued[side] = queue[:size], queue[size:]
                queue = self.queued[side]
                sender = self.senders[side]
                last = everything and not queue  # nothing is left to plan while it is written
                send = sender.call_here if last else sender.send
                send(
                    functools.partial(self._write_with_retries, side, batch),
                    functools.partial(self._apply_batch, side, batch),
                )
                self.wrote_back = self.wrote_back or self.sides[side].read_back

    def _apply_batch(self, side: SideName, batch: list[Write], results: list[WriteResult]) -> None:
        """Take a written batch's answers; its pairs are saved with the next :data:`CHUNK` (a
        record written but not yet paired when a run stops is re-paired by its cross-link),
        retry rows at once."""
        failures: list[tuple[Write, SyncError]] = []
        cleared: list[Write] = []
        for write, result in zip(batch, results, strict=True):
            if result.error is not None:
                failures.append((write, result.error))
                continue
            self._record_success(write, result)
            if write.source and write.source_side and (write.source_side, write.source.id) in self.retrying:
                cleared.append(write)
        if failures or cleared:
            with self.ctx.state.transaction() as conn:
                for write in cleared:
                    assert write.source is not None and write.source_side is not None
                    self.ctx.state.clear_retry(conn, self.user.crm_id, self.entity, write.source_side, write.source.id)
                    self.retrying.discard((write.source_side, write.source.id))
                for write, error in failures:
                    self._keep_for_retry(conn, write, error)
                self._save_pairs(conn)
        elif len(self.upserts) + len(self.removed) >= self.engine.chunk:
            with self.ctx.state.transaction() as conn:
                self._save_pairs(conn)
        for write, error in failures:
            self._report_failure(write, error)

    def _save_pairs(self, conn: Any) -> None:
        self.ctx.state.save_pairs(conn, self.user.crm_id, self.entity, self.upserts, self.removed)
        self.upserts, self.removed = [], []

    def _write_with_retries(self, side: SideName, batch: list[Write]) -> list[WriteResult]:
        """Write the batch; records throttled one by one are re-sent after their Retry-After."""
        results: list[WriteResult | None] = [None] * len(batch)
        pending = list(range(len(batch)))
        for attempt in range(MAX_ATTEMPTS):
            ops = [batch[i].op for i in pending]
            answers = self._retrying(lambda ops=ops: self.sides[side].write(ops), may_repeat=False)  # type: ignore[misc]
            waits = []
            still: list[int] = []
            for index, answer in zip(pending, answers, strict=True):
                error = answer.error
                if _wait_for(error) is not None and attempt < MAX_ATTEMPTS - 1:
                    still.append(index)
                    waits.append(_wait_for(error) or 0.0)
                else:
                    results[index] = answer
            if not still:
                break
            self.engine.sleep(max(waits))  # in full: retrying sooner would reset the service's wait
            pending = still
        return [r for r in results if r is not None]

    def _retrying(self, call: Callable[[], T], *, may_repeat: bool) -> T:
        """Call, waiting out throttling: a read is always safe to repeat, a write only when
        the service said it did nothing (a Retry-After)."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                return call()
            except TransientError as exc:
                asked = _wait_for(exc)
                too_long = exc.retry_after is not None and asked is None
                if attempt == MAX_ATTEMPTS - 1 or too_long or (asked is None and not may_repeat):
                    raise
                wait = asked if asked is not None else min(2.0**attempt, MAX_WAIT)
                log.info("transient failure (%s); retrying in %.1fs", exc.message, wait)
                self.engine.sleep(wait)
        raise AssertionError("unreachable")

    def _record_success(self, write: Write, result: WriteResult) -> None:
        self.report.sides[write.side].count(write.op)
        if isinstance(write.op, Delete):
            assert write.pair is not None
            self.removed.append(write.pair)
            return
        source = write.source
        assert source is not None and result.id is not None
        target_hash = self._echo_hash(write.side, source)
        assert write.source_side is not None
        source_hash = self._echo_hash(write.source_side, source) if write.merged else content_hash(source.record)
        label = describe(source.record)
        if write.side == "crm":
            self.upserts.append(Pair(result.id, source.id, target_hash, source_hash, label=label))
        else:
            self.upserts.append(Pair(source.id, result.id, source_hash, target_hash, label=label))

    def _keep_for_retry(self, conn: Any, write: Write, error: SyncError) -> None:
        if write.source is not None and write.source_side is not None:
            self.retrying.add((write.source_side, write.source.id))
            self.ctx.state.save_retry(
                conn,
                self.user.crm_id,
                self.entity,
                write.source_side,
                write.source.id,
                {"record": to_plain(write.source.record), "link": write.source.link},
                _describe(write, error),
            )

    def _report_failure(self, write: Write, error: SyncError) -> None:
        self.report.sides[write.side].errors += 1
        self.report.errors.append(_describe(write, error))
        self.ctx.audit.record(
            "write-record",
            "failed",
            user_id=self.user.crm_id,
            entity=self.entity,
            side=write.side,
            source_id=write.source.id if write.source else "",
            error=error.message,
            retried_next_run=write.source is not None,
        )


def _wait_for(error: SyncError | None) -> float | None:
    """The wait a throttled service asked for, if it is one the run waits out (else None)."""
    if isinstance(error, TransientError) and error.retry_after is not None and error.retry_after <= MAX_RETRY_AFTER:
        return error.retry_after
    return None


def _without_plan(entity: dict[str, Any]) -> dict[str, Any]:
    """An entity's summary for the audit log: counts and errors, not a dry run's every line."""
    return {key: value for key, value in entity.items() if key != "planned"}


def _deleted_label(write: Write) -> str:
    """A deletion for people: the record as last synced, and its id on the side it leaves."""
    assert isinstance(write.op, Delete)
    label = write.pair.label if write.pair else ""
    return f"{label} ({write.op.id})" if label else write.op.id


def _copy_id(withdrawal: Withdrawal) -> str:
    """The id of the copy a withdrawal concerns: on the side opposite the withheld record."""
    pair = withdrawal.pair
    return f"{pair.exchange_id} in Exchange" if withdrawal.side == "crm" else f"{pair.crm_id} in the CRM"


def _describe(write: Write, error: SyncError) -> str:
    return f"{type(write.op).__name__.lower()} on {write.side}: {error.message}"
