"""Rich renderings for people: the sync summary and the dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from framework.cli_support import console
from framework.engine import RunReport, SideCounts


def summary_tables(reports: Sequence[RunReport]) -> list[Table]:
    """Per user, one row per entity: what was written to each side, conflicts, skips, errors."""
    return [_user_table(report) for report in reports]


def _user_table(report: RunReport) -> Table:
    title = f"{report.user.email}: {report.outcome}" + (" (dry run)" if report.dry_run else "")
    table = Table(title=title, caption="+created ~updated -deleted", title_justify="left")
    for column in ("entity", "to CRM", "to Exchange", "conflicts", "skipped", "errors"):
        table.add_column(column, no_wrap=True)
    table.add_column("note", overflow="fold")
    if not report.entities:
        table.add_row("-", "", "", "", "", "", report.error)
    for name, entity in report.entities.items():
        crm, exchange = entity.sides["crm"], entity.sides["exchange"]
        notes = [entity.skipped_reason or "; ".join(entity.errors[:3]), withheld_words(entity.withheld)]
        table.add_row(
            name,
            _written(crm),
            _written(exchange),
            str(entity.conflicts),
            str(crm.skipped + exchange.skipped + sum(entity.withheld.values())),
            str(crm.errors + exchange.errors),
            "; ".join(n for n in notes if n),
        )
    return table


def _setting_words(value: Any) -> str:
    """A setting for people: toggles as the names switched on, other mappings as name=value."""
    if not isinstance(value, dict):
        return str(value)
    if all(isinstance(v, bool) for v in value.values()):
        return ", ".join(k for k, v in value.items() if v)
    return ", ".join(f"{k}={v}" for k, v in value.items())


def withheld_words(withheld: dict[str, int]) -> str:
    """``withheld: 2 private, 1 excluded domain`` (counts and reasons only), or ''."""
    if not withheld:
        return ""
    return "withheld: " + ", ".join(f"{count} {reason}" for reason, count in sorted(withheld.items()))


def _written(counts: SideCounts) -> str:
    return f"+{counts.created} ~{counts.updated} -{counts.deleted}"


def print_dashboard(data: dict[str, Any]) -> None:
    """The dashboard as panels: settings, totals, recent runs, open errors."""
    settings = Table(show_header=False)
    for key, value in data["settings"].items():
        settings.add_row(key, _setting_words(value))
    totals = Table("entity", "synced pairs", "withheld")
    withheld_pairs = data.get("withheld_pairs", {})
    for entity, count in sorted(data["synced_pairs"].items()):
        totals.add_row(entity, str(count), str(withheld_pairs.get(entity, 0)))
    runs = Table(title="Recent runs")
    for column in ("user", "finished", "outcome", "created", "updated", "deleted", "errors", "withheld"):
        runs.add_column(column, overflow="fold")
    for run in data["recent_runs"]:
        sums = dict.fromkeys(("created", "updated", "deleted", "errors", "withheld"), 0)
        for entity in run["entities"].values():
            sums["withheld"] += sum(entity.get("withheld", {}).values())
            for side in ("crm", "exchange"):
                for key in ("created", "updated", "deleted", "errors"):
                    sums[key] += entity.get(side, {}).get(key, 0)
        finished = run["finished"].replace("T", " ")[:16]
        runs.add_row(run["user"], finished, run["outcome"], *(str(v) for v in sums.values()))
    errors = Table("user", "entity", "from", "record", "error", "attempts")
    for error in data["open_errors"]:
        errors.add_row(*(str(error[k]) for k in ("user_id", "entity", "side", "item_id", "error", "attempts")))
    console.print(
        Panel(
            Group(settings, totals, runs, errors if data["open_errors"] else "No open errors."),
            title="exsync dashboard",
        )
    )
