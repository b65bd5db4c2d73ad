"""The sync engine: per (user, entity) read both sides, plan, apply in batches, commit.

Each (user, entity) is an independent job. Its cursors are saved only once every change
read has been applied, and its pairs after each applied batch, so a run stopped anywhere is
finished by the next one: a re-read change whose hash already matches is a no-op, and a
record written just before the stop is re-paired by the cross-link it carries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from framework.context import Context
from framework.contracts import SIDES, Changes, Create, Delete, Item, Side, SideName, Update, Window, WriteResult
from framework.errors import AuthenticationFailed, ExsyncError, RecordRejected, SyncError, SyncStateLost, TransientError
from framework.model import content_hash, describe, from_plain, to_plain
from framework.plan import Plan, PlanInput, Write, plan
from framework.state import Pair, User

log = logging.getLogger(__name__)

T = TypeVar("T")
Progress = Callable[[str, str, int, int], None]  # (user email, entity, done, total)

MAX_ATTEMPTS = 5
MAX_ROUNDS = 3
MAX_WAIT = 60.0  # the longest back-off of our own (when the service names no wait)
MAX_RETRY_AFTER = 900.0  # a service's Retry-After is waited in full up to this; longer: next run


class MassDeleteRefused(ExsyncError):
    """A run would delete more than the configured share of one side."""


@dataclass
class SideCounts:
    """What a run did to one side of one entity."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    errors: int = 0


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "conflicts": self.conflicts,
            "skipped_reason": self.skipped_reason,
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

    def __init__(self, ctx: Context, *, sleep: Callable[[float], None] = time.sleep, concurrency: int = 1) -> None:
        self.ctx = ctx
        self.sleep = sleep
        self.concurrency = max(1, concurrency)

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

        A user's entities run one after the other, so a mailbox never sees more than one
        request at a time from exsync (Graph allows four per mailbox).
        """
        settings = self.ctx.settings
        wanted = [e for e in settings.enabled_entities() if entities is None or e in entities]

        def one(user: User) -> RunReport:
            return self._run_user(user, wanted, dry_run, force, progress)

        if self.concurrency == 1 or len(users) < 2:
            return [one(user) for user in users]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(one, users))

    # one user -----------------------------------------------------------------------------
    def _run_user(
        self, user: User, entities: list[str], dry_run: bool, force: bool, progress: Progress | None
    ) -> RunReport:
        report = RunReport(user, dry_run)
        if not dry_run:
            report.run_id = self.ctx.state.start_run(user.crm_id)
        self.ctx.hook.exsync_run_started(user=user.crm_id, entities=entities, dry_run=dry_run)
        try:
            with ExitStack() as stores:
                crm = stores.enter_context(closing(self.ctx.crm(user)))
                exchange = stores.enter_context(closing(self.ctx.exchange(user)))
                for entity in entities:
                    report.entities[entity] = self._run_entity(user, entity, crm, exchange, dry_run, force, progress)
        except AuthenticationFailed as exc:
            self._needs_attention(user, exc)
            report.outcome, report.error = "failed", exc.message
        if report.outcome == "ok" and any(e.outcome in ("failed", "partial") for e in report.entities.values()):
            report.outcome = "partial"
        self._finish(report)
        return report

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
            entities=summary["entities"],
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
    ) -> EntityReport:
        report = EntityReport(entity)
        reason = self._skip_reason(entity, crm, exchange)
        if reason:
            report.outcome, report.skipped_reason = "skipped", reason
            self.ctx.audit.record("sync-entity", "skipped", user_id=user.crm_id, entity=entity, reason=reason)
            return report
        job = _Job(self, user, entity, {"crm": crm.side(entity), "exchange": exchange.side(entity)}, report, progress)
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
        provider = self.ctx.auth_provider()
        if entity in provider.unsupported_entities:
            return provider.unsupported_reason or f"{provider.name} cannot sync {entity}"
        if entity not in self.ctx.entities:
            return f"no plugin defines the entity {entity!r}"
        if entity not in crm.entities or entity not in exchange.entities:
            return f"{entity} is not carried by both stores"
        if entity == "mails" and crm.org().sales_inbox:
            return "the CRM org uses SalesInbox, which handles mails itself (B22)"
        return ""


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

    def run(self, dry_run: bool, force: bool) -> Plan:
        """Read, plan, apply; then again while a round wrote to a ``read_back`` side (at most
        :data:`MAX_ROUNDS`).

        The cursors a round saves were issued before its writes, and an EWS sync state only
        covers what it listed: a record we created and a user deleted before the next read
        would never be reported as deleted. The next round reads our writes back (no-ops by
        hash) so the saved cursors cover them; the next run would have read them anyway.
        """
        the_plan = self._round(dry_run, force, retries=True)
        for _ in range(MAX_ROUNDS - 1):
            before = self._written()
            if dry_run or not self._wrote_to_read_back_side(the_plan):
                break
            the_plan = self._round(dry_run, force, retries=False)
            if self._written() == before:
                break
        return the_plan

    def _wrote_to_read_back_side(self, the_plan: Plan) -> bool:
        return any(self.sides[write.side].read_back for write in the_plan.writes)

    def _written(self) -> int:
        return sum(c.created + c.updated + c.deleted for c in self.report.sides.values())

    def _round(self, dry_run: bool, force: bool, *, retries: bool) -> Plan:
        changes = {side: self._read(side, retries=retries) for side in SIDES}
        settings = self.settings
        pairs = self.ctx.state.pairs_touching(
            self.user.crm_id, self.entity, _ids(changes["crm"]), _ids(changes["exchange"])
        )
        if changes["exchange"].full and not dry_run:
            self._follow_new_ids(pairs, changes["exchange"])
        the_plan = plan(
            PlanInput(
                entity=self.definition,
                pairs=pairs,
                crm=changes["crm"],
                exchange=changes["exchange"],
                writable=settings.writable_sides(),
                policy=self.ctx.conflict_policies[settings.conflict_policy],
                echo_hash=self._echo_hash,
            )
        )
        self._guard_mass_delete(the_plan, force)
        self._count_plan(the_plan)
        if dry_run:
            self._report_planned(the_plan)
            return the_plan
        self._apply(the_plan)
        with self.ctx.state.transaction() as conn:
            for side in SIDES:
                self.ctx.state.save_cursor(conn, self.user.crm_id, self.entity, side, changes[side].cursor)
        return the_plan

    def _follow_new_ids(self, pairs: list[Pair], listing: Changes) -> None:
        """Re-key pairs whose Exchange record is listed under a new id (after a change of
        authentication the same item may have another id format), recognised by the cross-link
        it carries: the CRM id of its pair."""
        listed = {item.id for item in listing.items}
        by_crm = {pair.crm_id: pair for pair in pairs}
        moved = []
        for item in listing.items:
            pair = by_crm.get(item.link)
            if pair is not None and pair.exchange_id != item.id and pair.exchange_id not in listed:
                pair.exchange_id = item.id
                moved.append(pair)
        if moved:
            with self.ctx.state.transaction() as conn:
                self.ctx.state.save_pairs(conn, self.user.crm_id, self.entity, moved, [])

    def _echo_hash(self, side: SideName, item: Item) -> str:
        return content_hash(self.sides[side].echo(item.record))

    # reading ------------------------------------------------------------------------------
    def _read(self, side: SideName, *, retries: bool = True) -> Changes:
        cursor = self.ctx.state.cursor(self.user.crm_id, self.entity, side)
        try:
            changes = self._retrying(lambda: self.sides[side].read(cursor, self.window), may_repeat=True)
        except SyncStateLost as exc:
            self.ctx.audit.record(
                "resync", "ok", user_id=self.user.crm_id, entity=self.entity, side=side, reason=exc.message
            )
            changes = self._retrying(lambda: self.sides[side].read(None, self.window), may_repeat=True)
            changes.full = True
            if self.definition.dated is None:
                self._absent_are_deleted(side, changes)
        dated = self.definition.dated
        if dated is not None:
            kept = [i for i in changes.items if self.window.contains(dated(i.record))]
            self.report.sides[side].skipped += len(changes.items) - len(kept)
            changes.items = kept
        if retries:  # once a run: a record refused in this run waits for the next
            self._add_retries(side, changes)
        return changes

    def _absent_are_deleted(self, side: SideName, changes: Changes) -> None:
        """A resync after a lost cursor names no deletions: a paired record it lacks was deleted.

        Only for undated entities (a dated record may just have left the window, which is not
        a deletion), and only after a lost cursor: a listing after ``change-auth`` or a first
        sync deletes nothing.
        """
        listed = {i.id for i in changes.items} | set(changes.deleted)
        pairs = self.ctx.state.pairs(self.user.crm_id, self.entity)
        ids = (p.crm_id if side == "crm" else p.exchange_id for p in pairs)
        changes.deleted = [*changes.deleted, *(i for i in ids if i not in listed)]

    def _add_retries(self, side: SideName, changes: Changes) -> None:
        """Records an earlier run could not write are tried again, unless read afresh or deleted since."""
        fresh = {i.id for i in changes.items}
        gone = set(changes.deleted)
        for item_id, data, _attempts in self.ctx.state.retries(self.user.crm_id, self.entity, side):
            self.retrying.add((side, item_id))
            if item_id in gone:
                with self.ctx.state.transaction() as conn:
                    self.ctx.state.clear_retry(conn, self.user.crm_id, self.entity, side, item_id)
            elif item_id not in fresh:
                changes.items.append(Item(item_id, from_plain(data["record"]), data.get("link", "")))

    # planning checks ----------------------------------------------------------------------
    def _guard_mass_delete(self, the_plan: Plan, force: bool) -> None:
        ratio = self.settings.mass_delete_ratio
        deletes = {side: the_plan.count(side, Delete) for side in SIDES}
        if force or max(deletes.values()) < 5:
            return
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
            counts = self.report.sides[write.side]
            if isinstance(write.op, Create):
                counts.created += 1
            elif isinstance(write.op, Update):
                counts.updated += 1
            else:
                counts.deleted += 1
            what = describe(write.source.record) if write.source else write.op.id  # type: ignore[union-attr]
            self.report.planned.append(f"{type(write.op).__name__.lower()} on {write.side}: {what}")

    # applying -----------------------------------------------------------------------------
    def _apply(self, the_plan: Plan) -> None:
        state = self.ctx.state
        with state.transaction() as conn:
            state.save_pairs(
                conn,
                self.user.crm_id,
                self.entity,
                [link.pair for link in the_plan.links],
                [unlink.pair for unlink in the_plan.unlinks],
            )
        total, done = len(the_plan.writes), 0
        for side in SIDES:
            writes = [w for w in the_plan.writes if w.side == side]
            size = self.sides[side].batch_size
            for start in range(0, len(writes), size):
                batch = writes[start : start + size]
                self._apply_batch(side, batch)
                done += len(batch)
                if self.progress:
                    self.progress(self.user.email, self.entity, done, total)
        if self.progress and not total:
            self.progress(self.user.email, self.entity, 0, 0)

    def _apply_batch(self, side: SideName, batch: list[Write]) -> None:
        results = self._write_with_retries(side, batch)
        upserts: list[Pair] = []
        removed: list[Pair] = []
        failures: list[tuple[Write, SyncError]] = []
        state = self.ctx.state
        with state.transaction() as conn:
            for write, result in zip(batch, results, strict=True):
                if result.error is None:
                    self._record_success(write, result, upserts, removed)
                    if write.source and write.source_side and (write.source_side, write.source.id) in self.retrying:
                        state.clear_retry(conn, self.user.crm_id, self.entity, write.source_side, write.source.id)
                        self.retrying.discard((write.source_side, write.source.id))
                else:
                    self._keep_for_retry(conn, write, result.error)
                    failures.append((write, result.error))
            state.save_pairs(conn, self.user.crm_id, self.entity, upserts, removed)
        for write, error in failures:
            self._report_failure(write, error)

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

    def _record_success(self, write: Write, result: WriteResult, upserts: list[Pair], removed: list[Pair]) -> None:
        counts = self.report.sides[write.side]
        if isinstance(write.op, Delete):
            counts.deleted += 1
            assert write.pair is not None
            removed.append(write.pair)
            return
        source = write.source
        assert source is not None and result.id is not None
        target_hash = self._echo_hash(write.side, source)
        source_hash = content_hash(source.record)
        if write.side == "crm":
            upserts.append(Pair(result.id, source.id, target_hash, source_hash))
        else:
            upserts.append(Pair(source.id, result.id, source_hash, target_hash))
        if isinstance(write.op, Create):
            counts.created += 1
        elif isinstance(write.op, Update):
            counts.updated += 1

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


def _describe(write: Write, error: SyncError) -> str:
    return f"{type(write.op).__name__.lower()} on {write.side}: {error.message}"


def _ids(changes: Changes) -> list[str]:
    return [item.id for item in changes.items] + list(changes.deleted)
