"""``exsync worker``, and ``exsync sync`` through it: one job per user on Celery workers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from framework.cli import cli
from framework.cli_support import console, err_console, json_mode, pass_context, say
from framework.commands.sync import print_reports
from framework.context import Context
from framework.engine import RunReport
from framework.executors import celery_executor, require_shared_state
from framework.executors.jobs import SweepProgress
from framework.state import User

if TYPE_CHECKING:
    from framework.executors.workers import Enqueued


@cli.command()
@click.option(
    "--concurrency", default=2, show_default=True, type=click.IntRange(1, 64), help="Jobs (processes) run at once."
)
@click.option("--loglevel", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
@pass_context
def worker(ctx: Context, concurrency: int, loglevel: str) -> None:
    """Run a worker for the celery executor: it takes users' jobs from the broker, until stopped.

    Every worker uses the same state database (--state, PostgreSQL), the same EXSYNC_KEY,
    the broker of 'exsync settings set --broker' (or EXSYNC_BROKER) and queue (EXSYNC_QUEUE).
    """
    workers = celery_executor()
    require_shared_state(ctx.state.url)
    say(
        f"exsync worker: {concurrency} process(es) on queue {workers.queue_name()!r} of "
        f"{workers.safe_broker(workers.broker_url(ctx))}, state {ctx.state.safe_url}"
    )
    workers.serve(ctx, concurrency, loglevel)


def distributed_round(
    ctx: Context, users: list[User], entities: list[str] | None, dry_run: bool, force: bool, *, wait: bool
) -> list[RunReport]:
    """Enqueue one job per user; unless ``wait`` is off, wait with progress and print the summary."""
    if not users:  # a --watch round with nobody due
        return []
    workers = celery_executor()
    enqueued = workers.enqueue(ctx, users, entities, dry_run=dry_run, force=force)
    if not wait:
        say(f"Sweep {enqueued.sweep_id}: {len(users)} job(s) queued. Follow it with 'exsync status'.")
        return []
    reports = workers.wait(ctx, enqueued, progress=None, quiet=_quiet) if json_mode() else _wait_with_bar(ctx, enqueued)
    print_reports(reports, dry_run)
    return reports


def _wait_with_bar(ctx: Context, enqueued: Enqueued) -> list[RunReport]:
    workers = celery_executor()
    if not console.is_terminal:
        return workers.wait(ctx, enqueued, quiet=_quiet)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("users synced", total=len(enqueued.users) or 1)

        def update(now: SweepProgress) -> None:
            bar.update(task, completed=now.done, description=f"users synced ({now.running} running)")

        return workers.wait(ctx, enqueued, progress=update, quiet=_quiet)


def _quiet() -> None:
    err_console.print(
        "No worker has taken a job yet. Is 'exsync worker' running with this broker, queue and state?",
        highlight=False,
    )
