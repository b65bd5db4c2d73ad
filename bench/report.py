"""The results as tables: printed with rich, and as Markdown for bench/README.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

from bench.baselines import Copied
from bench.world import Measure

MIB = 1024 * 1024
ENTITY_SIDES = 8  # contacts, tasks, events, mails x (CRM, Exchange): what one run reads


@dataclass
class Table:
    """One printed table: a title, headers, rows and a note under it."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""

    def rich(self) -> RichTable:
        table = RichTable(title=self.title, caption=self.note or None, caption_justify="left")
        for index, header in enumerate(self.headers):
            table.add_column(header, justify="left" if index == 0 else "right")
        for row in self.rows:
            table.add_row(*row)
        return table

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.headers) + " |"]
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.headers))) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)


def _num(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def _requests(cost: Measure) -> str:
    parts = [f"{name} {count:,}" for name, count in cost.requests.items() if count and name != "login"]
    return ", ".join(parts) or "0"


def _spread(values: list[float]) -> str:
    if len(values) < 2:
        return _num(values[0]) if values else "-"
    return f"{_num(min(values))}-{_num(max(values))}"


def initial_table(rows: list[dict[str, Any]]) -> Table:
    headers = [
        "exchange",
        "N/entity",
        "records",
        "sync s",
        "rec/s",
        "req/rec",
        "peak MiB",
        "RSS+ MiB",
        "CPU s sync/fakes",
        "floor s",
        "CPU s floor/fakes",
        "sync/floor",
        "pairs",
        "naive s",
        "naive/sync",
        "naive req/rec",
    ]
    out = []
    for row in rows:
        sync: Measure | None = row.get("sync")
        records = row.get("records", 0)
        cells = [row["exchange"], f"{row['size']:,}"]
        if sync is not None:
            cells += [
                f"{records:,}",
                _num(sync.seconds),
                f"{records / sync.seconds:,.0f}",
                _num(sync.total_requests / max(records, 1), 3),
                _num(row["peak"] / MIB, 1) if row.get("peak") is not None else "-",
                _num((sync.rss_growth_bytes or 0) / MIB, 1),
                sync.cpu_split,
            ]
        else:
            cells += ["-"] * 7
        floor: tuple[Copied, Measure] | None = row.get("floor")
        naive: tuple[Copied, Measure] | None = row.get("naive")
        if floor is not None:
            cells += [
                _num(floor[0].seconds),
                floor[1].cpu_split,
                _num(sync.seconds / floor[0].seconds) if sync else "-",
                _spread(row.get("pairs") or []),
            ]
        else:
            cells += ["-", "-", "-", "-"]
        if naive is not None:
            copied, cost = naive
            mark = "≈" if copied.extrapolated else ""
            per_record = cost.total_requests / max(copied.measured, 1)
            cells += [
                mark + _num(copied.seconds),
                mark + _num(copied.seconds / sync.seconds, 1) if sync else "-",
                _num(per_record, 2),
            ]
        else:
            cells += ["-", "-", "-"]
        out.append(cells)
    note = (
        "records: records written by the sync (both directions; the floor and the naive way copy the same "
        "set). req/rec: HTTP requests to the CRM and Exchange fakes per record written. peak MiB: tracemalloc "
        "peak of the sync process (the fakes run in another process). RSS+: peak RSS growth during the timed "
        "run. sync s and floor s: the fastest of their runs (--repeat, in turns). pairs: sync/floor of each "
        "sync and the floor run right after it, lowest-highest. "
        "CPU s: CPU seconds of the product's process and of the fakes' process during the run. "
        "≈: naive time measured on a spread sample of each entity and direction and scaled up."
    )
    return Table("Initial sync of one mailbox", headers, out, note)


def distant_table(rows: list[dict[str, Any]]) -> Table:
    headers = [
        "exchange",
        "N/entity",
        "latency ms",
        "records",
        "sync s",
        "requests",
        "floor s",
        "sync/floor",
        "naive s",
        "naive/sync",
    ]
    out = []
    for row in rows:
        sync: Measure = row["sync"]
        floor: Copied = row["floor"][0]
        naive: Copied = row["naive"][0]
        mark = "≈" if naive.extrapolated else ""
        out.append(
            [
                row["exchange"],
                f"{row['size']:,}",
                str(row["latency"]),
                f"{row['records']:,}",
                _num(sync.seconds),
                _requests(sync),
                _num(floor.seconds),
                _num(sync.seconds / floor.seconds),
                mark + _num(naive.seconds),
                mark + _num(naive.seconds / sync.seconds, 1),
            ]
        )
    note = (
        "The same work as above, every fake answering each request that many milliseconds late, as a CRM "
        "and an Exchange on the network would (a real one is tens of ms away; loopback answers in well under "
        "one). ≈: the naive way copies a spread sample of each entity and direction (--distant-cap) and is "
        "scaled up."
    )
    return Table("Initial sync against distant services", headers, out, note)


def incremental_table(rows: list[dict[str, Any]]) -> Table:
    headers = ["exchange", "N/entity", "k/entity", "changes", "records", "seconds", "requests", "req/entity-side"]
    out = []
    for row in rows:
        cost: Measure = row["cost"]
        out.append(
            [
                row["exchange"],
                f"{row['size']:,}",
                f"{row['k']:,}" if isinstance(row["k"], int) else "after the initial sync",
                f"{row['changes']:,}",
                f"{row['records']:,}",
                _num(cost.seconds, 3),
                _requests(cost),
                _num(cost.total_requests / ENTITY_SIDES, 2),
            ]
        )
    note = (
        "after the initial sync: the first run after it, with no change; it reads the records the initial "
        "sync wrote back once (no-ops by hash), which is what the rows below no longer pay. "
        "k per entity: contacts, tasks and events each get k updates (half in the CRM, half in the mailbox) "
        "and the inbox k new mails. req/entity-side: requests / 8 (4 entities x 2 sides); it includes the "
        "CRM token refresh each run opens with."
    )
    return Table("Incremental sync after k changes", headers, out, note)


def users_table(rows: list[dict[str, Any]]) -> Table:
    headers = [
        "run",
        "users",
        "concurrency",
        "latency ms",
        "changes",
        "records",
        "seconds",
        "users/s",
        "requests",
        "req/user",
    ]
    out = []
    for row in rows:
        cost: Measure = row["cost"]
        out.append(
            [
                row["run"],
                f"{row['users']:,}",
                str(row["concurrency"]),
                str(row["latency"]),
                f"{row['changes']:,}",
                f"{row['records']:,}",
                _num(cost.seconds),
                _num(row["users"] / cost.seconds, 1),
                _requests(cost),
                _num(cost.total_requests / row["users"], 1),
            ]
        )
    note = (
        "Graph client credentials (tasks are not synced: the app lacks Tasks.ReadWrite.All). Concurrency 1 is "
        "users one after another; N > 1 is Engine(ctx, concurrency=N) (or, on an engine without it, N threads "
        "each running Engine.run for one user); a mailbox sees at most two requests at a time (Graph allows 4). "
        "latency ms: every fake answers each request that much later (a distant service; 0: loopback as it is)."
    )
    return Table("Many users: incremental sweep", headers, out, note)


def workers_table(rows: list[dict[str, Any]]) -> Table:
    headers = ["sweep", "users", "processes", "latency ms", "seconds", "mailboxes/s", "requests", "req/mailbox"]
    headers += ["CPU ms/mailbox", "failed"]
    out = []
    for row in rows:
        cost: Measure = row["cost"]
        users = max(row["users"], 1)
        out.append(
            [
                f"{row['changes']:,} changes" if row["changes"] else "no change",
                f"{row['users']:,}",
                str(row["processes"]),
                str(row["latency"]),
                _num(cost.seconds),
                _num(users / cost.seconds, 1),
                _requests(cost),
                _num(cost.total_requests / users, 2),
                _num((cost.cpu + row["workers_cpu"]) * 1000 / users, 1),
                str(row["failed"]),
            ]
        )
    note = (
        "Celery executor: 'exsync sync' queues one job per user on RabbitMQ and waits; one 'exsync worker "
        "--concurrency P' runs them, state on PostgreSQL. Graph client credentials (no tasks): contacts, events, "
        "mails. CPU ms/mailbox: the queuing process and every worker process (not the fakes)."
    )
    return Table("Many users on Celery workers: sweeps", headers, out, note)


def profile_tables(rows: list[dict[str, Any]]) -> list[Table]:
    tables = []
    for row in rows:
        profiled = row["profile"]
        headers = ["function", "own s", "total s"]
        out = [[name, _num(own), _num(total)] for name, own, total in profiled.top]
        note = (
            f"pyinstrument, initial sync over {profiled.exchange}, N={profiled.size:,} per entity, "
            f"{profiled.records:,} records in {profiled.cost.seconds:.1f} s (profiled). Own time summed over "
            "call sites."
        )
        tables.append(Table(f"Where the time goes ({profiled.exchange}, N={profiled.size:,})", headers, out, note))
    return tables


def all_tables(results: dict[str, list[dict[str, Any]]]) -> list[Table]:
    tables = []
    if results.get("initial"):
        tables.append(initial_table(results["initial"]))
    if results.get("distant"):
        tables.append(distant_table(results["distant"]))
    if results.get("incremental"):
        tables.append(incremental_table(results["incremental"]))
    if results.get("users"):
        tables.append(users_table(results["users"]))
    if results.get("workers"):
        tables.append(workers_table(results["workers"]))
    if results.get("profile"):
        tables += profile_tables(results["profile"])
    return tables


def show(console: Console, tables: list[Table]) -> None:
    for table in tables:
        console.print(table.rich())
        console.print()
