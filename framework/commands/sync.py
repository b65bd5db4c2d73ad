"""``exsync sync``: "Sync now", by the org's settings, with progress and a summary."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from framework.cli import cli
from framework.cli_support import console, emit, json_mode, say
from framework.cli_support import pass_context as pass_ctx
from framework.context import Context
from framework.engine import Engine, RunInterrupted, RunReport
from framework.engine import Progress as ProgressCallback
from framework.errors import ConfigurationError, UsageError
from framework.report import summary_tables
from framework.settings import ENTITY_NAMES
from framework.state import User


@cli.command()
@click.option("--user", "user_keys", multiple=True, help="Only this user (repeatable; e-mail or CRM id).")
@click.option("--entity", "entities", multiple=True, type=click.Choice(ENTITY_NAMES), help="Only this entity.")
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--force", is_flag=True, help="Go ahead even when a run would delete more than the allowed share.")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 32), help="Users synced at once.")
@click.option("--watch", is_flag=True, help="Keep running: sync each user again every 'settings --interval' minutes.")
@click.option("--rounds", type=click.IntRange(1), help="With --watch: stop after this many rounds.")
@click.option("--no-wait", is_flag=True, help="With the celery executor: queue the jobs and return at once.")
@pass_ctx
def sync(
    ctx: Context,
    user_keys: tuple[str, ...],
    entities: tuple[str, ...],
    dry_run: bool,
    force: bool,
    concurrency: int,
    watch: bool,
    rounds: int | None,
    no_wait: bool,
) -> None:
    """Sync now: every enabled user, every enabled entity, by the settings."""
    actor = ctx.require_admin("sync")
    settings = ctx.settings
    if not settings.installed:
        raise ConfigurationError("exsync is not installed in this org.", hint="Run 'exsync install --accept-terms'.")
    ctx.auth_provider()  # fails early, with a hint, when no authentication is set up
    if watch and not settings.interval_minutes:
        raise UsageError("--watch needs an interval.", hint="Run 'exsync settings set --interval 15' first.")
    ctx.settle_abandoned_runs()
    distributed = settings.executor == "celery"
    if no_wait and (watch or not distributed):
        raise UsageError("--no-wait needs the celery executor, without --watch.", hint="See 'exsync sync --help'.")
    engine = Engine(ctx, concurrency=concurrency)
    done = 0
    with stop_signal_interrupts(engine.stopping):
        try:
            while True:
                users = _users_to_sync(ctx, user_keys) if not watch else _due_users(ctx, user_keys)
                if distributed:
                    from framework.commands.worker import distributed_round  # imports Celery

                    reports = distributed_round(ctx, users, list(entities) or None, dry_run, force, wait=not no_wait)
                else:
                    reports = _sync_round(engine, users, list(entities) or None, dry_run, force)
                ctx.audit.record("sync-now", "ok", actor=actor.email, users=len(users), dry_run=dry_run)
                done += 1
                if not watch or (rounds and done >= rounds):
                    break
                time.sleep(_seconds_to_next(ctx))
            if engine.stopping.is_set():  # a stop signal that a library swallowed after the last chunk
                raise KeyboardInterrupt
        except (KeyboardInterrupt, RunInterrupted):
            ctx.audit.record("sync-now", "interrupted", actor=actor.email, dry_run=dry_run)
            say("Interrupted: the runs under way are marked interrupted; the next sync finishes them.")
            raise SystemExit(130) from None
    if any(r.outcome != "ok" for r in reports):
        raise SystemExit(1)


@contextmanager
def stop_signal_interrupts(stopping: threading.Event) -> Iterator[None]:
    """SIGTERM (a service manager stopping exsync) stops a sync as Ctrl-C does, so its runs
    are recorded as interrupted; the previous handler is restored afterwards. ``stopping`` (the
    engine's) is set too: a library that swallows the KeyboardInterrupt (msal's optional import check has a
    bare ``except``) cannot keep the run going past its next chunk."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: Any) -> None:
        stopping.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _sync_round(
    engine: Engine, users: list[User], entities: list[str] | None, dry_run: bool, force: bool
) -> list[RunReport]:
    with _progress() as progress:
        reports = engine.run(users, entities, dry_run=dry_run, force=force, progress=progress)
    print_reports(reports, dry_run)
    return reports


def print_reports(reports: list[RunReport], dry_run: bool) -> None:
    """The sweep's summary: JSON, or a table per user (and the plan of a dry run)."""
    if json_mode():
        emit([r.as_dict() for r in reports])
    else:
        console.print("Sync summary")
        for table in summary_tables(reports):
            console.print(table)
        if dry_run:
            _print_plan(reports)
            console.print("Dry run: nothing was written.")


def _print_plan(reports: list[RunReport], most: int = 20) -> None:
    for report in reports:
        for name, entity in report.entities.items():
            if not entity.planned:
                continue
            console.print(f"Plan for {report.user.email}, {name}:")
            for line in entity.planned[:most]:
                console.print(f"  {line}", highlight=False, markup=False)
            if len(entity.planned) > most:
                console.print(f"  ... and {len(entity.planned) - most} more")


def _due_users(ctx: Context, keys: tuple[str, ...]) -> list[User]:
    now = datetime.now(UTC)
    settings = ctx.settings
    due = []
    for user in _users_to_sync(ctx, keys):
        last = ctx.state.last_run(user.crm_id)
        next_run = settings.next_run(last.finished_at if last else None)
        if next_run is not None and next_run <= now:
            due.append(user)
    return due


def _seconds_to_next(ctx: Context) -> float:
    settings = ctx.settings
    moments = [
        settings.next_run(run.finished_at if run else None)
        for run in (ctx.state.last_run(u.crm_id) for u in ctx.state.users() if u.enabled)
    ]
    upcoming = [m for m in moments if m is not None]
    if not upcoming:
        return 60.0
    return min(max((min(upcoming) - datetime.now(UTC)).total_seconds(), 1.0), 300.0)


def _users_to_sync(ctx: Context, keys: tuple[str, ...]) -> list[User]:
    enabled = [u for u in ctx.state.users() if u.enabled]
    if not keys:
        if not enabled:
            raise ConfigurationError("No user is enabled for sync.", hint="Run 'exsync users enable USER'.")
        return enabled
    chosen = []
    for key in keys:
        user = ctx.state.user(key)
        if user is None:
            raise UsageError(f"No CRM user {key!r}.", hint="See 'exsync users list'.")
        if not user.enabled:
            raise ConfigurationError(f"{user.email} is not enabled for sync.", hint=f"Run 'exsync users enable {key}'.")
        chosen.append(user)
    return chosen


@contextmanager
def _progress() -> Iterator[ProgressCallback | None]:
    if json_mode():
        yield None
        return
    if not console.is_terminal:  # piped, cron, a service manager: plain lines as the work goes
        yield _progress_lines
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[tuple[str, str], TaskID] = {}

        def update(user: str, entity: str, done: int, total: int) -> None:
            key = (user, entity)
            if key not in tasks:
                tasks[key] = bar.add_task(f"{user} {entity}", total=total or 1)
            bar.update(tasks[key], completed=done if total else 1)

        yield update


def _progress_lines(user: str, entity: str, done: int, total: int) -> None:
    """One plain line per chunk planned: who, what, how far."""
    if total and not done:
        return
    console.print(
        f"{user} {entity}: {done} of {total} records" if total else f"{user} {entity}: no changes",
        highlight=False,
        markup=False,
    )
