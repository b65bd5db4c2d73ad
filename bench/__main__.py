"""``python -m bench``: run the benchmarks and print their tables (see bench/README.md).

Nothing here asserts anything about time: ``--tiny`` (what CI runs) only checks that every
benchmark still runs end to end.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

from rich.console import Console

from bench.cloud import RemoteCloud
from bench.report import all_tables, show
from bench.runs import Config, distant, many_users, one_mailbox, profile
from bench.workers import workers_sweeps

BENCHMARKS = ("initial", "floor", "naive", "incremental", "distant", "users", "workers", "profile")


def _ints(text: str) -> list[int]:
    return [int(part.replace("_", "").replace(",", "")) for part in text.split("+") if part]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="Everything once at N=20 with 5 users (CI).")
    parser.add_argument(
        "--size",
        type=_ints,
        default=[1000, 10000],
        help="Records per entity and side, '+'-separated (default 1000+10000).",
    )
    parser.add_argument("--k", type=_ints, default=[0, 10, 1000], help="Incremental changes per entity (0+10+1000).")
    parser.add_argument("--users", type=int, default=1000, help="Users in the many-users sweep (1000).")
    parser.add_argument("--concurrency", type=_ints, default=[1, 4], help="Sweep concurrencies (1+4).")
    parser.add_argument(
        "--processes", type=_ints, default=[1, 2, 4], help="Worker processes in the workers sweeps (1+2+4)."
    )
    parser.add_argument(
        "--latency",
        type=_ints,
        default=[0, 20],
        help="Milliseconds every fake answers late: in the sweeps, one sweep per concurrency each; the "
        "initial sync, floor and naive way at the smallest size run again at each latency above 0 (0+20).",
    )
    parser.add_argument(
        "--exchange",
        choices=("graph", "ews"),
        action="append",
        help="Only this way to Exchange (repeatable; default both).",
    )
    parser.add_argument("--only", choices=BENCHMARKS, action="append", help="Only this benchmark (repeatable).")
    parser.add_argument("--profile-size", type=int, help="N of the profiled initial sync (default: the largest).")
    parser.add_argument(
        "--naive-cap",
        type=int,
        default=1000,
        help="Records per entity and direction the naive way really copies; more are scaled (1000).",
    )
    parser.add_argument(
        "--distant-cap",
        type=int,
        default=100,
        help="Records per entity and direction the naive way really copies against late fakes (100).",
    )
    parser.add_argument(
        "--tracemalloc",
        choices=("graph", "all", "none"),
        default="graph",
        help="Initial syncs run again under tracemalloc for peak memory: over Graph only (default; "
        "the engine's memory does not depend on the store), over both, or none.",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Run each initial sync and its floor this many times, in turns, and show the fastest of each "
        "(a shared machine's noise is larger than the differences sought).",
    )
    parser.add_argument("--markdown", type=Path, help="Also write the tables as Markdown to this file.")
    parser.add_argument("--profile-html", type=Path, help="Also write pyinstrument's HTML profile here.")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> Config:
    if args.tiny:
        args.size, args.k, args.users, args.concurrency, args.naive_cap, args.distant_cap = (
            [20],
            [0, 2],
            5,
            [1, 2],
            0,
            0,
        )
        args.latency = [0, 5]
        args.processes = [1]
        args.tracemalloc = "all"
    return Config(
        sizes=sorted(args.size),
        exchanges=args.exchange or ["graph", "ews"],
        ks=args.k,
        users=args.users,
        concurrency=args.concurrency,
        processes=args.processes,
        latencies=args.latency,
        profile_size=args.profile_size or max(args.size),
        naive_cap=args.naive_cap,
        distant_cap=args.distant_cap,
        trace_memory={"graph": ["graph"], "all": ["graph", "ews"], "none": []}[args.tracemalloc],
        only=set(args.only or ()),
        repeat=max(1, args.repeat),
        profile_html=args.profile_html,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    config = config_from(args)
    console = Console()
    if console.width < 170:
        console = Console(width=170)
    started = time.perf_counter()

    def log(message: str) -> None:
        console.log(message)

    with RemoteCloud() as cloud:
        if any(config.wants(b) for b in ("initial", "floor", "naive", "incremental")):
            one_mailbox(cloud, config, log)
        if config.wants("distant") and any(config.latencies):
            distant(cloud, config, log)
        if config.wants("users"):
            many_users(cloud, config, log)
        if config.wants("workers"):
            config.results["workers"] = workers_sweeps(cloud, config.users, config.processes, config.latencies, log)
        if config.wants("profile"):
            profile(cloud, config, log)
    tables = all_tables(config.results)
    show(console, tables)
    machine = (
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.date.today().isoformat()}; whole run {time.perf_counter() - started:,.0f} s"
    )
    console.print(machine)
    profiled = config.results.get("profile")
    if profiled and not args.tiny:
        console.print(profiled[0]["profile"].text)
    if args.markdown:
        args.markdown.write_text("\n\n".join([f"_{machine}_", *(t.markdown() for t in tables)]) + "\n")


if __name__ == "__main__":
    main()
