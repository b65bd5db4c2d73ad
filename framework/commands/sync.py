"""``exsync sync``: "Sync now", by the org's settings, with progress and a summary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from framework.cli import cli
from framework.cli_support import console, emit, json_mode
from framework.cli_support import pass_context as pass_ctx
from framework.context import Context
from framework.engine import Engine
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
@pass_ctx
def sync(
    ctx: Context, user_keys: tuple[str, ...], entities: tuple[str, ...], dry_run: bool, force: bool, concurrency: int
) -> None:
    """Sync now: every enabled user, every enabled entity, by the settings."""
    actor = ctx.require_admin("sync")
    settings = ctx.settings
    if not settings.installed:
        raise ConfigurationError("exsync is not installed in this org.", hint="Run 'exsync install --accept-terms'.")
    ctx.auth_provider()  # fails early, with a hint, when no authentication is set up
    users = _users_to_sync(ctx, user_keys)
    with _progress() as progress:
        engine = Engine(ctx, concurrency=concurrency)
        reports = engine.run(users, list(entities) or None, dry_run=dry_run, force=force, progress=progress)
    if json_mode():
        emit([r.as_dict() for r in reports])
    else:
        console.print("Sync summary")
        for table in summary_tables(reports):
            console.print(table)
        if dry_run:
            console.print("Dry run: nothing was written.")
    ctx.audit.record("sync-now", "ok", actor=actor.email, users=len(users), dry_run=dry_run)
    if any(r.outcome != "ok" for r in reports):
        raise SystemExit(1)


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
    if json_mode() or not console.is_terminal:
        yield None
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
