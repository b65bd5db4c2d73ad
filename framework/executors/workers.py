"""The Celery executor: ``exsync sync`` enqueues one job per user, ``exsync worker`` runs them.

A job carries only the sweep's id and a user's CRM id; everything else (settings, secrets,
cursors, pairs, the sweep's order) is in the state database every worker shares. Jobs are
acknowledged late: a worker killed mid-job leaves its job unacknowledged, the broker hands it
to another worker, and the engine finishes the run without duplicates (every record it writes
carries its counterpart's id). Each job holds its user's advisory lock, so a job delivered
twice never runs twice at once; a run left "running" by a lost worker is marked interrupted
by the next job of that user.

Within a worker process, the jobs of one sweep share one CRM connection and token; the CRM's
org-wide change listings are shared by every job of the sweep on every worker through the
sweep's shared record (:class:`~framework.executors.jobs.SweepShare`).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from typing import Any

from celery import Celery
from kombu.utils.url import maybe_sanitize_url

from framework.context import Context
from framework.engine import Engine, EntityReport, RunReport, SideCounts
from framework.errors import ConfigurationError, ExsyncError
from framework.executors import require_shared_state
from framework.executors.jobs import DONE, JobBoard, SweepProgress, SweepShare, advisory_lock, user_lock_name
from framework.host import Host, build_host
from framework.state import User

log = logging.getLogger(__name__)

TASK = "exsync.sync_user"
BROKER_ENV, QUEUE_ENV = "EXSYNC_BROKER", "EXSYNC_QUEUE"
BROKER_SECRET = "executor/broker"  # the broker URL may hold a password: it is kept in the vault
DEFAULT_QUEUE = "exsync"
POLL = 0.5  # seconds between looks at a sweep's progress
QUIET_HINT = 30.0  # seconds without any job taken before the waiting command says so

app = Celery("exsync", set_as_current=False)
app.conf.update(
    task_acks_late=True,  # acknowledged once done: a lost worker's job is delivered again
    task_reject_on_worker_lost=True,  # a killed worker process gives its job back
    worker_prefetch_multiplier=1,  # a process holds one job it has not started, not a batch
    task_ignore_result=True,  # results are in the state database
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": 3600},  # Redis: redelivery after an hour
    worker_hijack_root_logger=False,
)


def queue_name() -> str:
    """The queue jobs go to (``EXSYNC_QUEUE``, else ``exsync``): one per deployment."""
    return os.environ.get(QUEUE_ENV) or DEFAULT_QUEUE


def broker_url(ctx: Context) -> str:
    """``EXSYNC_BROKER``, else the URL stored by ``exsync settings set --broker``."""
    url = os.environ.get(BROKER_ENV) or ctx.vault.get(BROKER_SECRET)
    if not url:
        raise ConfigurationError(
            "No broker is set for the Celery executor.",
            hint="Run 'exsync settings set --broker amqp://user:password@host:5672//' or set EXSYNC_BROKER.",
        )
    return url


def safe_broker(url: str) -> str:
    """The broker URL with its password hidden."""
    return str(maybe_sanitize_url(url))


def check_broker(url: str, timeout: float = 5.0) -> None:
    """Connect to the broker once; a clear error if it cannot be reached."""
    try:
        with app.connection_for_write(url) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:  # kombu raises the transport's own errors
        raise ConfigurationError(
            f"Cannot reach the broker {safe_broker(url)}: {exc.__class__.__name__}",
            hint="Check the URL (amqp://user:password@host:5672/vhost or redis://host:6379/0) and that it runs.",
        ) from None


def configure(broker: str, queue: str) -> None:
    """Point the worker's app at ``broker`` and ``queue`` (once, before it starts)."""
    app.conf.update(broker_url=broker, task_default_queue=queue)


@functools.cache
def _sender(broker: str) -> Celery:
    """An app that sends jobs to ``broker`` (one a broker: an app keeps its connection pool)."""
    sender = Celery("exsync-sender", set_as_current=False)
    sender.conf.update(broker_url=broker, task_serializer="json", broker_connection_retry_on_startup=True)
    return sender


# -- enqueuing and waiting --------------------------------------------------------------------
@dataclass
class Enqueued:
    """A sweep sent to the workers."""

    sweep_id: str
    users: list[User]


def enqueue(
    ctx: Context, users: Sequence[User], entities: Sequence[str] | None, *, dry_run: bool, force: bool
) -> Enqueued:
    """Record the sweep and send one job per user to the broker."""
    require_shared_state(ctx.state.url)
    sender, queue = _sender(broker_url(ctx)), queue_name()
    board = JobBoard(ctx.state.engine)
    actor = _actor_email(ctx)
    sweep_id = board.open([u.crm_id for u in users], list(entities) if entities else None, dry_run, force, actor)
    try:
        with sender.producer_or_acquire() as producer:
            for user in users:
                sender.send_task(TASK, args=[sweep_id, user.crm_id], queue=queue, producer=producer)
    except Exception as exc:
        raise ConfigurationError(
            f"Cannot send jobs to the broker {safe_broker(sender.conf.broker_url)}: {exc.__class__.__name__}",
            hint="Check 'exsync settings set --broker' (or EXSYNC_BROKER) and that the broker runs.",
        ) from None
    return Enqueued(sweep_id, list(users))


def wait(
    ctx: Context,
    enqueued: Enqueued,
    *,
    progress: Callable[[SweepProgress], None] | None = None,
    quiet: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[RunReport]:
    """Wait until every job of the sweep is done; the reports, in the order of the users."""
    board = JobBoard(ctx.state.engine)
    waited, warned = 0.0, False
    while True:
        now = board.progress(enqueued.sweep_id)
        assert now is not None, "a sweep being waited for is never pruned"
        if progress:
            progress(now)
        if now.done == now.total:
            break
        if quiet and not warned and now.queued == now.total and waited >= QUIET_HINT:
            quiet()
            warned = True
        sleep(POLL)
        waited += POLL
    reports = board.reports(enqueued.sweep_id)
    return [report_from_dict(user, reports[user.crm_id]) for user in enqueued.users]


def report_from_dict(user: User, data: dict[str, Any]) -> RunReport:
    """A :class:`RunReport` again, from what a worker stored (``RunReport.as_dict()`` and ``run_id``)."""
    report = RunReport(user, bool(data.get("dry_run")), outcome=data["outcome"], error=data.get("error", ""))
    report.run_id = data.get("run_id")
    for name, entity in data.get("entities", {}).items():
        counts = {side: SideCounts(**entity[side]) for side in ("crm", "exchange")}
        report.entities[name] = EntityReport(
            name,
            sides=counts,
            conflicts=entity["conflicts"],
            errors=entity["errors"],
            skipped_reason=entity["skipped_reason"],
            outcome=entity["outcome"],
            planned=entity["planned"],
        )
    return report


# -- the worker side --------------------------------------------------------------------------
@dataclass
class WorkerOptions:
    """What ``exsync worker`` passes to its processes (inherited when they fork)."""

    state_url: str | None
    ca_bundle: str | None


_options = WorkerOptions(None, None)


class _Process:
    """What one worker process keeps between jobs: the plugins, the state, and the sweep in
    progress (its CRM connection, token and listings)."""

    def __init__(self, options: WorkerOptions, host: Host) -> None:
        self.ctx = Context(options.state_url, host=host, ca_bundle=options.ca_bundle)
        self.board = JobBoard(self.ctx.state.engine)
        self.sweep_id = ""
        self.sweep = ExitStack()

    def enter_sweep(self, sweep_id: str) -> None:
        """Open the CRM connector's sweep scope for ``sweep_id`` (closing the previous one)."""
        if sweep_id == self.sweep_id:
            return
        self.sweep.close()
        self.sweep_id = sweep_id
        self.ctx.sweep_share = SweepShare(self.board, sweep_id)
        with suppress(ExsyncError):  # reported by the user's run
            self.sweep.enter_context(self.ctx.crm_connector().sweep(self.ctx))


_process: _Process | None = None


def _this_process() -> _Process:
    global _process
    if _process is None:  # made after the fork: connections are never shared between processes
        _process = _Process(_options, build_host())
    return _process


@app.task(name=TASK, bind=True)
def sync_user(task: Any, sweep_id: str, user_id: str) -> None:
    """The Celery task: one user's job of a sweep."""
    process = _this_process()
    run_job(process, sweep_id, user_id, worker=str(task.request.hostname or socket.gethostname()))


def run_job(process: _Process, sweep_id: str, user_id: str, *, worker: str) -> None:
    """Run one user's job under the user's lock; a job already done (delivered again after
    it finished) is not run again."""
    board, ctx = process.board, process.ctx
    order = board.order(sweep_id)
    if order is None or board.job_state(sweep_id, user_id) == DONE:
        return
    with advisory_lock(ctx.state.engine, user_lock_name(user_id)):
        if board.job_state(sweep_id, user_id) == DONE:
            return
        if lost := board.interrupt_lost_runs(user_id):
            log.warning("%d run(s) of user %s were lost with their worker; marked interrupted", lost, user_id)
        board.mark_running(sweep_id, user_id, worker)
        user = ctx.state.user(user_id)
        if user is None:
            board.mark_done(sweep_id, user_id, _failed(user_id, "This user is no longer known to exsync."))
            return
        process.enter_sweep(sweep_id)
        try:
            report = Engine(ctx).run([user], order.entities, dry_run=order.dry_run, force=order.force)[0]
        except ExsyncError as exc:
            board.mark_done(sweep_id, user_id, _failed(user.email, exc.message))
            return
        board.mark_done(sweep_id, user_id, {**report.as_dict(), "run_id": report.run_id})


def _failed(user: str, error: str) -> dict[str, Any]:
    return {"user": user, "outcome": "failed", "error": error, "dry_run": False, "entities": {}}


def serve(ctx: Context, concurrency: int, loglevel: str) -> None:
    """Run a Celery worker for exsync in this process (``exsync worker``) until stopped."""
    require_shared_state(ctx.state.url)
    broker, queue = broker_url(ctx), queue_name()
    check_broker(broker)
    JobBoard(ctx.state.engine)  # the tables exist before the first job
    configure(broker, queue)
    _options.state_url, _options.ca_bundle = ctx.state.url, ctx.ca_bundle
    ctx.state.engine.dispose()  # no connection crosses the fork into the pool's processes
    for chatty in ("httpx", "httpcore"):  # a line per request (URLs with delta tokens) is not a worker's log
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLevelNamesMapping()[loglevel]))
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--queues={queue}",
            f"--loglevel={loglevel}",
            f"--hostname=exsync-{os.getpid()}@{socket.gethostname()}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def _actor_email(ctx: Context) -> str:
    try:
        return ctx.actor.email
    except ExsyncError:
        return "scheduler"
