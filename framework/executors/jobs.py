"""A distributed sweep's shared record on PostgreSQL: its jobs, its locks, what its jobs share.

A *sweep* is one ``exsync sync`` over many users; each user is one *job*, run by whichever
worker takes it from the broker. The board (:class:`JobBoard`) keeps, in the state database
every worker shares:

- ``sweeps``: what was asked (entities, dry run, force, who asked);
- ``sweep_jobs``: each user's job: queued, running (on which worker), done (with its report);
- ``sweep_cache``: what the jobs of one sweep read once and share (the CRM's org-wide listings).

PostgreSQL advisory locks (:func:`advisory_lock`) make sure one user's job never runs twice at
once, on any worker, and that a shared listing is fetched by one job while the others wait. A
session lock dies with its connection, so a worker killed mid-job frees its users at once.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from framework.state import runs_table

KEEP_SWEEPS = timedelta(days=7)
QUEUED, RUNNING, DONE = "queued", "running", "done"
INTERRUPTED = "interrupted"  # a run's outcome when the worker running it was lost

metadata = sa.MetaData()
sweeps_table = sa.Table(
    "sweeps",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor", sa.String(320), nullable=False, default=""),
    sa.Column("entities", sa.Text, nullable=False, default="null"),  # JSON: a list, or null for all enabled
    sa.Column("dry_run", sa.Boolean, nullable=False, default=False),
    sa.Column("force", sa.Boolean, nullable=False, default=False),
)
jobs_table = sa.Table(
    "sweep_jobs",
    metadata,
    sa.Column("sweep_id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False, default=QUEUED),
    sa.Column("worker", sa.String(255), nullable=False, default=""),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("report", sa.Text, nullable=False, default=""),  # JSON RunReport.as_dict() + run_id, once done
)
cache_table = sa.Table(
    "sweep_cache",
    metadata,
    sa.Column("sweep_id", sa.String(36), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


@dataclass(frozen=True)
class SweepOrder:
    """What one sweep was asked to do, as every job of it reads it."""

    id: str
    actor: str
    entities: list[str] | None
    dry_run: bool
    force: bool


@dataclass(frozen=True)
class SweepProgress:
    """Where a sweep stands: how many jobs are queued, running and done."""

    id: str
    started_at: datetime
    queued: int
    running: int
    done: int

    @property
    def total(self) -> int:
        return self.queued + self.running + self.done

    def describe(self) -> str:
        """One line for people: how far the sweep is."""
        state = "finished" if self.done == self.total else f"{self.running} running, {self.queued} queued"
        started = f"{self.started_at:%Y-%m-%d %H:%M} UTC"
        return f"Last sweep {self.id[:8]} (started {started}): {self.done}/{self.total} users done, {state}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "sweep": self.id,
            "started": self.started_at.isoformat(timespec="seconds"),
            "queued": self.queued,
            "running": self.running,
            "done": self.done,
            "total": self.total,
        }


class JobBoard:
    """The sweeps, jobs and shared listings of distributed syncs, in the state database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine, checkfirst=True)

    # sweeps -------------------------------------------------------------------------------
    def open(self, user_ids: list[str], entities: list[str] | None, dry_run: bool, force: bool, actor: str) -> str:
        """Record a new sweep with one queued job per user; older sweeps past a week are pruned."""
        sweep_id, now = str(uuid.uuid4()), _now()
        with self.engine.begin() as conn:
            self._prune(conn, now - KEEP_SWEEPS)
            conn.execute(
                sweeps_table.insert().values(
                    id=sweep_id,
                    started_at=now,
                    actor=actor,
                    entities=json.dumps(entities),
                    dry_run=dry_run,
                    force=force,
                )
            )
            if user_ids:
                conn.execute(
                    jobs_table.insert(),
                    [{"sweep_id": sweep_id, "user_id": u, "state": QUEUED, "updated_at": now} for u in user_ids],
                )
        return sweep_id

    def order(self, sweep_id: str) -> SweepOrder | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sweeps_table).where(sweeps_table.c.id == sweep_id)).first()
        if row is None:
            return None
        return SweepOrder(row.id, row.actor, json.loads(row.entities), row.dry_run, row.force)

    def progress(self, sweep_id: str) -> SweepProgress | None:
        t = jobs_table
        with self.engine.connect() as conn:
            started = conn.execute(sa.select(sweeps_table.c.started_at).where(sweeps_table.c.id == sweep_id)).scalar()
            counts: dict[str, int] = dict(
                conn.execute(
                    sa.select(t.c.state, sa.func.count()).where(t.c.sweep_id == sweep_id).group_by(t.c.state)
                ).all()
            )
        if started is None:
            return None
        return SweepProgress(
            sweep_id, _aware(started), counts.get(QUEUED, 0), counts.get(RUNNING, 0), counts.get(DONE, 0)
        )

    def latest(self) -> SweepProgress | None:
        """The progress of the sweep started last, if any."""
        with self.engine.connect() as conn:
            sweep_id = conn.execute(
                sa.select(sweeps_table.c.id).order_by(sweeps_table.c.started_at.desc()).limit(1)
            ).scalar()
        return self.progress(sweep_id) if sweep_id else None

    def reports(self, sweep_id: str) -> dict[str, dict[str, Any]]:
        """The reports of a sweep's finished jobs, by user id."""
        t = jobs_table
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.user_id, t.c.report).where(t.c.sweep_id == sweep_id, t.c.state == DONE)
            ).all()
        return {row.user_id: json.loads(row.report) for row in rows}

    # jobs ---------------------------------------------------------------------------------
    def job_state(self, sweep_id: str, user_id: str) -> str | None:
        t = jobs_table
        with self.engine.connect() as conn:
            state: str | None = conn.execute(
                sa.select(t.c.state).where(t.c.sweep_id == sweep_id, t.c.user_id == user_id)
            ).scalar()
            return state

    def mark_running(self, sweep_id: str, user_id: str, worker: str) -> None:
        self._update(sweep_id, user_id, state=RUNNING, worker=worker)

    def mark_done(self, sweep_id: str, user_id: str, report: dict[str, Any]) -> None:
        self._update(sweep_id, user_id, state=DONE, report=json.dumps(report, default=str))

    def _update(self, sweep_id: str, user_id: str, **values: Any) -> None:
        t = jobs_table
        with self.engine.begin() as conn:
            conn.execute(
                t.update().where(t.c.sweep_id == sweep_id, t.c.user_id == user_id).values(updated_at=_now(), **values)
            )

    def interrupt_lost_runs(self, user_id: str) -> int:
        """Close the runs of ``user_id`` still marked running: called by the job holding the
        user's lock, so whoever ran them is gone (a worker killed mid-job)."""
        t = runs_table
        with self.engine.begin() as conn:
            result = conn.execute(
                t.update()
                .where(t.c.user_id == user_id, t.c.outcome == "running")
                .values(
                    finished_at=_now(),
                    outcome=INTERRUPTED,
                    error="The worker running this sync stopped before it finished; the job was run again.",
                )
            )
            return int(result.rowcount)

    def shown_outcome(self, user_id: str, outcome: str) -> str:
        """A run's outcome as status shows it: "running" only while a job holds the user's
        lock; without it, the run was lost with its worker: "interrupted"."""
        if outcome == "running" and not lock_held(self.engine, user_lock_name(user_id)):
            return INTERRUPTED
        return outcome

    # what a sweep's jobs share ------------------------------------------------------------
    def cached(self, sweep_id: str, key: str) -> Any:
        t = cache_table
        with self.engine.connect() as conn:
            raw = conn.execute(sa.select(t.c.value).where(t.c.sweep_id == sweep_id, t.c.key == key)).scalar()
        return None if raw is None else json.loads(raw)

    def cache(self, sweep_id: str, key: str, value: Any) -> None:
        t = cache_table
        with self.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.sweep_id == sweep_id, t.c.key == key))
            conn.execute(t.insert().values(sweep_id=sweep_id, key=key, value=json.dumps(value, default=str)))

    def _prune(self, conn: sa.Connection, before: datetime) -> None:
        old = sa.select(sweeps_table.c.id).where(sweeps_table.c.started_at < before)
        for table in (cache_table, jobs_table):
            conn.execute(table.delete().where(table.c.sweep_id.in_(old)))
        conn.execute(sweeps_table.delete().where(sweeps_table.c.started_at < before))


def user_lock_name(user_id: str) -> str:
    return f"exsync/user/{user_id}"


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a named PostgreSQL advisory lock."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def advisory_lock(engine: Engine, name: str) -> Iterator[None]:
    """Hold the session advisory lock ``name`` for the block, waiting while another holds it.

    The lock lives on a connection of its own, released at the end of the block, or by the
    server when the process holding it dies.
    """
    key = lock_key(name)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()


def lock_held(engine: Engine, name: str) -> bool:
    """Whether any session of this database holds the advisory lock ``name``."""
    unsigned = lock_key(name) & 0xFFFFFFFFFFFFFFFF
    query = sa.text(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database() "
        "AND l.classid = CAST(:high AS oid) AND l.objid = CAST(:low AS oid) AND l.objsubid = 1"
    )
    with engine.connect() as conn:
        return bool(conn.execute(query, {"high": unsigned >> 32, "low": unsigned & 0xFFFFFFFF}).scalar())


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class SweepShare:
    """What the jobs of one sweep share on every worker: JSON values by key, and a lock per
    key so that one job makes a value while the others wait for it."""

    def __init__(self, board: JobBoard, sweep_id: str) -> None:
        self.board = board
        self.sweep_id = sweep_id

    def get(self, key: str) -> Any:
        return self.board.cached(self.sweep_id, key)

    def put(self, key: str, value: Any) -> None:
        self.board.cache(self.sweep_id, key, value)

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        with advisory_lock(self.board.engine, f"exsync/sweep/{self.sweep_id}/{key}"):
            yield
