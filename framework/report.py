"""Rich renderings for people: the sync summary and the dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from framework.cli_support import console
from framework.engine import RunReport

COUNT_KEYS = ("created", "updated", "deleted", "skipped", "errors")


def summary_table(reports: Sequence[RunReport]) -> Table:
    """One row per user, entity and side: created, updated, deleted, conflicts, skipped, errors."""
    table = Table(title="Sync summary")
    for column in ("user", "entity", "written to", *COUNT_KEYS, "conflicts", "note"):
        table.add_column(column, justify="right" if column in COUNT_KEYS or column == "conflicts" else "left")
    for report in reports:
        if not report.entities:
            table.add_row(report.user.email, "-", "-", *([""] * 6), report.error)
        for name, entity in report.entities.items():
            for side, counts in entity.sides.items():
                note = entity.skipped_reason or "; ".join(entity.errors[:2])
                table.add_row(
                    report.user.email,
                    name,
                    side,
                    *(str(getattr(counts, key)) for key in COUNT_KEYS),
                    str(entity.conflicts) if side == "crm" else "",
                    note if side == "crm" else "",
                )
    return table


def print_dashboard(data: dict[str, Any]) -> None:
    """The dashboard as panels: settings, totals, recent runs, open errors."""
    settings = Table(show_header=False)
    for key, value in data["settings"].items():
        settings.add_row(key, ", ".join(k for k, v in value.items() if v) if isinstance(value, dict) else str(value))
    totals = Table("entity", "synced pairs")
    for entity, count in sorted(data["synced_pairs"].items()):
        totals.add_row(entity, str(count))
    runs = Table("user", "finished", "outcome", "created", "updated", "deleted", "errors")
    for run in data["recent_runs"]:
        sums = dict.fromkeys(("created", "updated", "deleted", "errors"), 0)
        for entity in run["entities"].values():
            for side in ("crm", "exchange"):
                for key in sums:
                    sums[key] += entity.get(side, {}).get(key, 0)
        runs.add_row(run["user"], run["finished"], run["outcome"], *(str(v) for v in sums.values()))
    errors = Table("user", "entity", "from", "record", "error", "attempts")
    for error in data["open_errors"]:
        errors.add_row(*(str(error[k]) for k in ("user_id", "entity", "side", "item_id", "error", "attempts")))
    console.print(
        Panel(
            Group(settings, totals, runs, errors if data["open_errors"] else "No open errors."),
            title="exsync dashboard",
        )
    )
