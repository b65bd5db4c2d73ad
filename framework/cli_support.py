"""What every ``exsync`` command shares: the context, output as tables or JSON, errors."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from rich import box
from rich.console import Console
from rich.table import Table

from framework.context import Context
from framework.errors import ExsyncError

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
err_console = Console(stderr=True)


class Options:
    """The global options, kept on the click context object."""

    def __init__(self, state: str | None, json_output: bool, acting_as: str | None, ca_bundle: str | None) -> None:
        self.json = json_output
        self.context = Context(state, acting_as=acting_as, ca_bundle=ca_bundle, create_state=False)


def pass_context(func: F) -> F:
    """Give a command the :class:`Context` as its first argument."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        options = click.get_current_context().find_object(Options)
        assert options is not None, "exsync commands run under the exsync group"
        return func(options.context, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def creates_state(func: F) -> F:
    """Let a command start a new state database (``crm login``): every other command refuses a
    ``--state`` that does not exist, rather than working on an empty one."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        options = click.get_current_context().find_object(Options)
        if options is not None:
            options.context.create_state = True
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def json_mode() -> bool:
    options = click.get_current_context().find_object(Options)
    return bool(options and options.json)


def emit(
    data: Any, *, title: str = "", columns: Sequence[str] | None = None, rows: Sequence[Sequence[Any]] = ()
) -> None:
    """Print ``data`` as JSON under ``--json``; otherwise a table of ``rows`` (or ``data`` as key/value)."""
    if json_mode():
        click.echo(json.dumps(data, default=str, indent=2))
        return
    if columns is None:
        table = Table(title=title or None, show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for key, value in data.items() if isinstance(data, dict) else []:
            table.add_row(str(key), _cell(value))
    else:
        cells = [[_cell(v) for v in row] for row in rows]
        table = Table(title=title or None, box=box.SIMPLE_HEAD, title_justify="left")
        for index, column in enumerate(columns):
            # a column of single words (e-mails, ids, dates) is never split; text wraps at spaces
            words = all(" " not in row[index] and len(row[index]) <= 40 for row in cells)
            table.add_column(column, no_wrap=words, overflow="ellipsis" if words else "fold")
        for row in cells:
            table.add_row(*row)
    console.print(table)


def say(message: str) -> None:
    """A line for people (suppressed under ``--json``, where only data is printed)."""
    if not json_mode():
        console.print(message, highlight=False)


def fail(error: ExsyncError) -> None:
    """Print ``error`` as one sentence and a hint, then exit with its code."""
    if json_mode():
        click.echo(json.dumps({"error": error.message, "hint": error.hint}), err=True)
    else:
        err_console.print(f"[bold red]Error:[/] {error.message}", highlight=False)
        if error.hint:
            err_console.print(f"[dim]Hint:[/] {error.hint}", highlight=False)
    sys.exit(error.exit_code)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return key_values(value)
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    return "" if value is None else str(value)


def key_values(data: dict[str, Any], *, most: int = 60) -> str:
    """A dict as short ``key=value`` text for people: nested keys joined with dots, empty values
    left out, long values cut to ``most`` characters."""
    parts = []
    for key, value in _flat(data):
        text = _cell(value)
        if text:
            parts.append(f"{key}={text if len(text) <= most else text[: most - 1] + '…'}")
    return " ".join(parts)


def _flat(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            pairs.extend(_flat(value, f"{prefix}{key}."))
        elif value not in (None, "", [], {}):
            pairs.append((f"{prefix}{key}", value))
    return pairs
