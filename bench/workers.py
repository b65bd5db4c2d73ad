"""``python -m bench --only workers``: sweeps of many users on the celery executor.

Needs the PostgreSQL and RabbitMQ of ``EXSYNC_BENCH_POSTGRES`` / ``EXSYNC_BENCH_BROKER``
(default: this machine's); without them the benchmark says so and is left out. It makes a
database and a queue of its own, configures Graph client credentials for many generated
users, sets the cursors with one in-process sweep, then for each latency and worker-process
count starts ``exsync worker --concurrency P``, and measures a sweep after a few changes in
every mailbox and a sweep with no change, each queued and waited for as ``exsync sync`` does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.cloud import RemoteCloud
from bench.world import Measure, Setup, measure
from framework.engine import RunReport

POSTGRES = os.environ.get("EXSYNC_BENCH_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
BROKER = os.environ.get("EXSYNC_BENCH_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
TICKS = os.sysconf("SC_CLK_TCK")


class WorkersSetup(Setup):
    """A :class:`Setup` whose state is a PostgreSQL database of its own."""

    def __init__(self, cloud: RemoteCloud, database_url: str) -> None:
        super().__init__(cloud, "graph-cc")
        self.database_url = database_url

    @property
    def state_url(self) -> str:
        return self.database_url


def missing_services() -> str:
    """Why the benchmark cannot run here ('' when it can)."""
    try:
        engine = sa.create_engine(POSTGRES)
        with engine.connect():
            pass
        engine.dispose()
        from kombu import Connection

        with Connection(BROKER, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"PostgreSQL ({POSTGRES}) or RabbitMQ ({BROKER}) is not reachable, or Celery missing: {exc!r}"
    return ""


def workers_sweeps(
    cloud: RemoteCloud, users: int, processes: list[int], latencies: list[int], log: Any
) -> list[dict[str, Any]]:
    """The rows of the workers table (none when the services are missing)."""
    missing = missing_services()
    if missing:
        log(f"[yellow]workers: left out: {missing}[/]")
        return []
    rows: list[dict[str, Any]] = []
    with _database() as url, _queue() as queue:
        os.environ.update(EXSYNC_BROKER=BROKER, EXSYNC_QUEUE=queue)
        cloud.reset()
        emails = cloud.call("add_users", users)
        setup = WorkersSetup(cloud, url)
        log(f"workers: configuring {len(emails):,} users, state on PostgreSQL, queue {queue}")
        setup.configure(emails)
        everyone = setup.users(emails)
        log("workers: first sync of every user, in-process (empty mailboxes: it sets the cursors)")
        setup.sync(everyone)
        setup.cli("settings set --executor celery")
        for latency in latencies:
            cloud.call("latency", latency / 1000)
            for count in processes:
                with _worker(setup, count) as group:
                    for changes in (True, False):
                        made = cloud.call("new_records", emails) if changes else 0
                        log(f"workers: {count} process(es), {latency} ms, {made:,} changes")
                        before = _group_cpu(group)
                        reports, cost = measure(cloud, lambda: _sweep(setup, everyone))
                        rows.append(_row(reports, cost, count, latency, made, _group_cpu(group) - before))
        cloud.call("latency", 0)
        setup.close()
    return rows


def _sweep(setup: Setup, users: list[Any]) -> list[RunReport]:
    from framework.executors import workers

    ctx = setup.context()
    return list(workers.wait(ctx, workers.enqueue(ctx, users, None, dry_run=False, force=False)))


def _row(
    reports: list[RunReport], cost: Measure, processes: int, latency: int, changes: int, cpu: float
) -> dict[str, Any]:
    failed = [r for r in reports if r.outcome != "ok"]
    return {
        "processes": processes,
        "latency": latency,
        "changes": changes,
        "users": len(reports),
        "failed": len(failed),
        "cost": cost,
        "workers_cpu": cpu,
    }


@contextmanager
def _database() -> Iterator[str]:
    name = f"exsync_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def _queue() -> Iterator[str]:
    from kombu import Connection

    name = f"exsync-bench-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        with Connection(BROKER) as connection:
            connection.default_channel.queue_delete(name)


@contextmanager
def _worker(setup: Setup, processes: int) -> Iterator[int]:
    """``exsync worker --concurrency processes``, ready; its process group id."""
    log = Path(setup.directory) / f"worker-{processes}.log"
    command = [sys.executable, "-m", "framework", "--state", setup.state_url, "--ca-bundle", setup.info["ca_bundle"]]
    command += ["worker", f"--concurrency={processes}", "--loglevel=INFO"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while b" ready." not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def _group_cpu(group: int) -> float:
    """CPU seconds used so far by the processes of ``group`` (a worker and its pool)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICKS
