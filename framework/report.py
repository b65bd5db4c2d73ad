"""Rich renderings for people: the sync summary, the status, the audit log and the dashboard.

Each fits an 80-column terminal: e-mails and times are never split across lines, and long
text (errors, notes, audit details) goes on lines of its own under the table, not into a
narrow column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from framework.cli_support import console, key_values
from framework.engine import RunReport, SideCounts


def summary_tables(reports: Sequence[RunReport]) -> list[Table | Text]:
    """Per user, one row per entity: what was written to each side, conflicts, skips, errors;
    then the notes (why an entity was skipped, what went wrong) as lines of their own."""
    out: list[Table | Text] = []
    for report in reports:
        out.append(_user_table(report))
        notes = _notes(report)
        if notes:
            out.append(notes)
    return out


def _user_table(report: RunReport) -> Table:
    title = f"{report.user.email}: {report.outcome}" + (" (dry run)" if report.dry_run else "")
    table = Table(title=title, caption="+created ~updated -deleted", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("entity", "to CRM", "to Exchange", "conflicts", "skipped", "errors"):
        table.add_column(column, no_wrap=True)
    if not report.entities:
        table.add_row("-", "", "", "", "", "")
    for name, entity in report.entities.items():
        crm, exchange = entity.sides["crm"], entity.sides["exchange"]
        table.add_row(
            name,
            _written(crm),
            _written(exchange),
            str(entity.conflicts),
            str(crm.skipped + exchange.skipped + sum(entity.withheld.values())),
            str(crm.errors + exchange.errors),
        )
    return table


def _notes(report: RunReport) -> Text:
    lines = [f"  {report.error}"] if report.error else []
    for name, entity in report.entities.items():
        for note in ([entity.skipped_reason] if entity.skipped_reason else []) + entity.errors[:3]:
            lines.append(f"  {name}: {note}")
        if len(entity.errors) > 3:
            lines.append(f"  {name}: ... and {len(entity.errors) - 3} more errors ('exsync dashboard')")
        outside = entity.outside_window
        if outside:
            lines.append(f"  {name}: {outside} skipped: dated outside the sync window (older than six months)")
        withheld = withheld_words(entity.withheld)
        if withheld:
            lines.append(f"  {name}: {sum(entity.withheld.values())} skipped, {withheld} (privacy settings)")
        left = sum(side.skipped for side in entity.sides.values()) - outside
        if left > 0:
            lines.append(f"  {name}: {left} skipped: not written to that side by the settings (one-way sync)")
    return Text("\n".join(lines))


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


def short_time(iso: str) -> str:
    """``2026-12-03T05:11:49+00:00`` as ``12-03 05:11`` (UTC); other text as it is."""
    return iso[5:16].replace("T", " ") if len(iso) >= 16 and iso[10] == "T" else iso


def print_status(rows: list[dict[str, Any]], authentication: str) -> None:
    """Per user: sync, last run, result, what was written, next run; then the last errors."""
    console.print(f"Authentication: {authentication}", highlight=False)
    table = Table(title="Sync status", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("user", "last run", "result", "written", "next run"):
        table.add_column(column, no_wrap=column in ("user", "last run", "written"))
    for row in rows:
        counts = row["counts"]
        written = f"+{counts.get('created', 0)} ~{counts.get('updated', 0)} -{counts.get('deleted', 0)}"
        table.add_row(
            row["email"],
            short_time(row["last_run"]),
            row["result"] or "-",
            written if counts else "",
            short_time(row["next_run"]) if row["enabled"] else "disabled",
        )
    console.print(table)
    errors = [f"  {row['email']}: {row['last_error']}" for row in rows if row["last_error"]]
    if errors:
        console.print("Last errors:\n" + "\n".join(errors), highlight=False, markup=False)


def print_audit(entries: list[dict[str, Any]]) -> None:
    """Each entry on a line (time, outcome, action, entity, user, and who acted if someone else),
    its details as short key=value text on the next."""
    console.print(f"Audit log: {len(entries)} entries, newest first", highlight=False)
    for entry in entries:
        head = [entry["at"][:16].replace("T", " "), entry["outcome"], entry["action"], entry["entity"], entry["user"]]
        if entry["actor"] and entry["actor"] != entry["user"]:
            head.append(f"(by {entry['actor']})")
        console.print(" ".join(h for h in head if h), highlight=False, markup=False, overflow="fold")
        detail = audit_detail(entry["detail"])
        if detail:
            console.print(Text(detail, style="dim"), overflow="fold", highlight=False)


def audit_detail(detail: dict[str, Any]) -> str:
    """An audit entry's details in a line or two: a run's entities as what was written."""
    rest = dict(detail)
    parts = []
    entities = rest.get("entities")
    if isinstance(entities, dict) and entities and all(isinstance(v, dict) for v in entities.values()):
        del rest["entities"]  # a run's summary (a settings change has toggles there instead)
        for name, counts in entities.items():
            parts.append(f"{name}: {_entity_words(counts)}")
    text = key_values(rest)
    return "  " + "; ".join([*parts, *([text] if text else [])]) if parts or text else ""


def _entity_words(counts: dict[str, Any]) -> str:
    if counts.get("outcome") == "skipped":
        return f"skipped ({counts.get('skipped_reason', '')})"
    words = []
    for side, label in (("crm", "to CRM"), ("exchange", "to Exchange")):
        side_counts = counts.get(side) or {}
        written = [
            f"{sign}{side_counts.get(key, 0)}" for sign, key in (("+", "created"), ("~", "updated"), ("-", "deleted"))
        ]
        if any(side_counts.get(key) for key in ("created", "updated", "deleted")):
            words.append(f"{' '.join(written)} {label}")
    errors = sum((counts.get(side) or {}).get("errors", 0) for side in ("crm", "exchange"))
    if errors:
        words.append(f"{errors} errors")
    if counts.get("conflicts"):
        words.append(f"{counts['conflicts']} conflicts")
    return ", ".join(words) or "nothing to write"


def print_dashboard(data: dict[str, Any]) -> None:
    """The dashboard as panels: authentication and settings, totals, recent runs, open errors."""
    settings = Table(show_header=False, box=box.SIMPLE)
    settings.add_row("authentication", data["authentication"])
    for key, value in data["settings"].items():
        words = _setting_words(value)
        if words:  # a setting left empty (no exclusions, no broker) says nothing
            settings.add_row(key, words)
    totals = Table("entity", "synced pairs", "withheld", box=box.SIMPLE_HEAD)
    withheld_pairs = data.get("withheld_pairs", {})
    for entity, count in sorted(data["synced_pairs"].items()):
        totals.add_row(entity, str(count), str(withheld_pairs.get(entity, 0)))
    runs = Table(title="Recent runs", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("user", "finished", "outcome", "written", "errors"):
        runs.add_column(column, no_wrap=True)
    withheld = 0
    for run in data["recent_runs"]:
        sums = dict.fromkeys(("created", "updated", "deleted", "errors"), 0)
        for entity in run["entities"].values():
            withheld += sum(entity.get("withheld", {}).values())
            for side in ("crm", "exchange"):
                for key in sums:
                    sums[key] += entity.get(side, {}).get(key, 0)
        written = f"+{sums['created']} ~{sums['updated']} -{sums['deleted']}"
        runs.add_row(run["user"], short_time(run["finished"]), run["outcome"], written, str(sums["errors"]))
    held = Text(f"Withheld by the privacy settings in these runs: {withheld}" if withheld else "")
    errors = Text(
        "\n".join(
            f"{e['user']} {e['entity']} from {e['side']} (tried {e['attempts']}x): {e['error']}"
            for e in data["open_errors"]
        )
    )
    console.print(
        Panel(
            Group(settings, totals, runs, held, Text("Open errors:"), errors if data["open_errors"] else "None."),
            title="exsync dashboard",
        )
    )
