"""The benchmarks themselves; each returns rows for :mod:`bench.report`."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench.baselines import Copied, baseline
from bench.cloud import RemoteCloud
from bench.world import Measure, Setup, errors, measure, written
from framework.engine import Engine, RunReport

Row = dict[str, Any]
T = TypeVar("T")
Log = Callable[[str], None]


@dataclass
class Config:
    """What to run, at which sizes."""

    sizes: list[int]
    exchanges: list[str]
    ks: list[int]
    users: int
    concurrency: list[int]
    processes: list[int]  # worker processes in the workers sweeps
    latencies: list[int]  # milliseconds the fakes answer late in the many-users sweeps
    profile_size: int
    naive_cap: int
    distant_cap: int  # records per entity and direction the naive way copies against late fakes
    trace_memory: list[str]  # the exchanges whose initial syncs also run under tracemalloc
    only: set[str]
    repeat: int = 1  # initial syncs and floors run this many times each, in turns; the fastest is shown
    profile_html: Path | None = None
    results: dict[str, list[Row]] = field(default_factory=dict)

    def wants(self, name: str) -> bool:
        return not self.only or name in self.only


def _fresh(cloud: RemoteCloud, exchange: str, size: int, users: list[str] | None = None) -> Setup:
    cloud.reset()
    setup = Setup(cloud, exchange)
    setup.configure(users)
    cloud.call("seed_user", setup.admin, size)
    return setup


def _check(reports: list[RunReport], what: str, log: Log) -> None:
    found = errors(reports)
    if found:
        log(f"[yellow]{what}: {len(found)} errors, first: {found[0]}[/]")


# -- initial sync, floor, naive, incremental ------------------------------------------------------
def one_mailbox(cloud: RemoteCloud, config: Config, log: Log) -> None:
    """Initial sync vs. floor vs. naive at every size and exchange; incremental at the largest size."""
    initial = config.results.setdefault("initial", [])
    incremental = config.results.setdefault("incremental", [])
    largest = max(config.sizes)
    for exchange in config.exchanges:
        for size in config.sizes:
            row: Row = {"exchange": exchange, "size": size, "pairs": []}
            for attempt in range(config.repeat):  # the sync and the floor in turns: both see the same machine
                sync: Measure | None = None
                if config.wants("initial") or (config.wants("incremental") and size == largest and not attempt):
                    log(f"initial sync, {exchange}, N={size:,}" + (f" (run {attempt + 1})" if attempt else ""))
                    setup = _fresh(cloud, exchange, size)
                    reports, sync = measure(cloud, setup.sync)
                    _check(reports, f"initial sync {exchange} N={size}", log)
                    if "sync" not in row or sync.seconds < row["sync"].seconds:
                        row.update(sync=sync, records=written(reports))
                    if config.wants("incremental") and size == largest and not attempt:
                        incremental += _incremental(cloud, setup, config, log)
                    setup.close()
                if config.wants("floor") or (config.wants("initial") and not config.only):
                    floor = _baseline(cloud, exchange, size, "floor", 0, log)
                    if "floor" not in row or floor[0].seconds < row["floor"][0].seconds:
                        row["floor"] = floor
                    if sync is not None:
                        row["pairs"].append(sync.seconds / floor[0].seconds)
            if exchange in config.trace_memory and config.wants("initial"):
                log(f"initial sync under tracemalloc, {exchange}, N={size:,}")
                setup = _fresh(cloud, exchange, size)
                _reports, traced = measure(cloud, setup.sync, trace=True)
                row["peak"] = traced.peak_bytes
                setup.close()
            if config.wants("naive") or (config.wants("initial") and not config.only):
                row["naive"] = _baseline(cloud, exchange, size, "naive", config.naive_cap, log)
            if config.wants("initial") or config.wants("floor") or config.wants("naive"):
                initial.append(row)


def _baseline(
    cloud: RemoteCloud, exchange: str, size: int, kind: str, cap: int, log: Log, latency: int = 0
) -> tuple[Copied, Measure]:
    log(f"{kind}, {exchange}, N={size:,}" + (f", {latency} ms away" if latency else ""))
    setup = _fresh(cloud, exchange, size)
    copied, cost = _late(cloud, latency, functools.partial(baseline, setup, kind, cap))
    setup.close()
    return copied, cost


def _late(cloud: RemoteCloud, latency: int, work: Callable[[], T]) -> tuple[T, Measure]:
    """``work`` measured with every fake answering ``latency`` milliseconds late."""
    cloud.call("latency", latency / 1000)
    try:
        return measure(cloud, work)
    finally:
        cloud.call("latency", 0)


def distant(cloud: RemoteCloud, config: Config, log: Log) -> None:
    """The initial sync, the floor and the naive way at the smallest size against fakes that
    answer each request late, as a CRM and an Exchange on the network would."""
    rows = config.results.setdefault("distant", [])
    size = min(config.sizes)
    for latency in [ms for ms in config.latencies if ms]:
        for exchange in config.exchanges:
            log(f"initial sync, {exchange}, N={size:,}, {latency} ms away")
            setup = _fresh(cloud, exchange, size)
            reports, sync = _late(cloud, latency, setup.sync)
            _check(reports, f"initial sync {exchange} N={size} at {latency} ms", log)
            setup.close()
            floor = _baseline(cloud, exchange, size, "floor", 0, log, latency)
            naive = _baseline(cloud, exchange, size, "naive", config.distant_cap, log, latency)
            row = {"exchange": exchange, "size": size, "latency": latency, "records": written(reports)}
            rows.append({**row, "sync": sync, "floor": floor, "naive": naive})


def _incremental(cloud: RemoteCloud, setup: Setup, config: Config, log: Log) -> list[Row]:
    """The sync after the initial one (it reads the initial sync's own writes back once, as
    no-ops), then a sync after k changes for each k."""
    rows = []
    for k in ["next", *config.ks]:
        made = cloud.call("change", setup.admin, k, 100 + k) if isinstance(k, int) else 0
        log(f"incremental, {setup.exchange}, k={k} ({made} changes)")
        reports, cost = measure(cloud, setup.sync)
        _check(reports, f"incremental k={k}", log)
        row = {"exchange": setup.exchange, "size": max(config.sizes), "k": k, "changes": made}
        rows.append({**row, "records": written(reports), "cost": cost})
    return rows


# -- many users -------------------------------------------------------------------------------------
def many_users(cloud: RemoteCloud, config: Config, log: Log) -> None:
    """An incremental sweep over many users under Graph client credentials, at each concurrency."""
    rows = config.results.setdefault("users", [])
    cloud.reset()
    emails = cloud.call("add_users", config.users)
    setup = Setup(cloud, "graph-cc")
    log(f"many users: configuring {len(emails):,} users")
    setup.configure(emails)
    users = setup.users(emails)
    log("many users: first sync of every user (empty mailboxes: it sets the cursors)")
    reports, cost = measure(cloud, lambda: setup.sync(users))
    _check(reports, "first sweep", log)
    rows.append(
        {
            "run": "first sync (empty)",
            "concurrency": 1,
            "latency": 0,
            "changes": 0,
            "records": written(reports),
            "cost": cost,
            "users": len(users),
        }
    )
    for latency in config.latencies:
        cloud.call("latency", latency / 1000)
        for concurrency in config.concurrency:
            made = cloud.call("new_records", emails)
            log(f"many users: sweep after {made:,} changes, concurrency {concurrency}, latency {latency} ms")
            reports, cost = measure(cloud, functools.partial(sweep, setup, users, concurrency))
            _check(reports, f"sweep concurrency {concurrency}", log)
            rows.append(
                {
                    "run": "incremental sweep",
                    "concurrency": concurrency,
                    "latency": latency,
                    "changes": made,
                    "records": written(reports),
                    "cost": cost,
                    "users": len(users),
                }
            )
    cloud.call("latency", 0)
    setup.close()


def sweep(setup: Setup, users: list[Any], concurrency: int) -> list[RunReport]:
    """Every user once, ``concurrency`` users at a time: the engine's own ``concurrency`` setting
    when it has one, else threads each running ``Engine.run`` for one user (either way a
    mailbox sees at most two requests at a time from a user's run)."""
    ctx = setup.context()
    if "concurrency" in inspect.signature(Engine).parameters:
        return Engine(ctx, concurrency=concurrency).run(users)  # type: ignore[call-arg,unused-ignore]
    if concurrency <= 1:
        return Engine(ctx).run(users)
    engine = Engine(ctx)
    with ThreadPoolExecutor(concurrency, thread_name_prefix="bench-sweep") as pool:
        return [r for reports in pool.map(lambda u: engine.run([u]), users) for r in reports]


# -- profile ------------------------------------------------------------------------------------------
@dataclass
class Profiled:
    """A profiled initial sync and its hottest functions."""

    exchange: str
    size: int
    cost: Measure
    records: int
    top: list[tuple[str, float, float]]  # (function, own seconds, total seconds)
    text: str


def profile(cloud: RemoteCloud, config: Config, log: Log, exchange: str = "graph") -> None:
    """The initial sync at ``profile_size`` under pyinstrument: the functions that take the time."""
    from pyinstrument import Profiler

    size = config.profile_size
    log(f"profile of the initial sync, {exchange}, N={size:,}")
    setup = _fresh(cloud, exchange, size)
    profiler = Profiler(interval=0.002)
    profiler.start()
    reports, cost = measure(cloud, setup.sync)
    profiler.stop()
    setup.close()
    session = profiler.last_session
    assert session is not None
    top = _top_functions(session.root_frame(), 15)
    text = profiler.output_text(unicode=False, color=False, show_all=False, timeline=False)
    if config.profile_html is not None:
        config.profile_html.write_text(profiler.output_html())
    config.results.setdefault("profile", []).append(
        {"profile": Profiled(exchange, size, cost, written(reports), top, text)}
    )


def _top_functions(root: Any, count: int) -> list[tuple[str, float, float]]:
    """Functions by own (self) time, summed over every place they were called from.

    pyinstrument keeps a frame's own time in synthetic ``[self]`` children."""
    own: dict[str, float] = {}
    total: dict[str, float] = {}
    stack: list[tuple[Any, str, frozenset[str]]] = [(root, "", frozenset())]
    while stack:
        frame, parent, outer = stack.pop()
        if frame.is_synthetic_leaf:
            own[parent] = own.get(parent, 0.0) + frame.time
            continue
        key = f"{frame.function}  {_short(frame.file_path_short or '')}:{frame.line_no}"
        if key not in outer:  # recursion is counted once
            total[key] = total.get(key, 0.0) + frame.time
        stack += [(child, key, outer | {key}) for child in frame.children]
    ranked = sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:count]
    return [(name, seconds, total.get(name, seconds)) for name, seconds in ranked]


def _short(path: str) -> str:
    for marker in ("site-packages/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def now() -> float:
    return time.perf_counter()


__all__ = ["Config", "Copied", "many_users", "now", "one_mailbox", "profile"]
