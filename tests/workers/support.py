"""Fixtures for the celery executor against the real RabbitMQ and PostgreSQL this machine runs.

Each test gets a database and a queue of its own (parallel runs never share a job), and starts
``exsync worker`` processes of its own, which it stops (or kills) by their process group.
Without the services the tests are skipped, saying which service is missing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from fakes.cloud import FakeCloud
from fakes.harness import ADMIN, World
from framework.executors.jobs import JobBoard, SweepProgress

POSTGRES = os.environ.get("EXSYNC_TEST_WORKERS_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
BROKER = os.environ.get("EXSYNC_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
READY_WITHIN = 60.0  # seconds a worker may take to start
DONE_WITHIN = 180.0  # seconds a sweep may take in these tests


def _postgres_missing() -> str:
    try:
        engine = sa.create_engine(POSTGRES)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL is not reachable at {POSTGRES} ({exc.__class__.__name__}); set EXSYNC_TEST_WORKERS_POSTGRES"
    return ""


def _broker_missing() -> str:
    try:
        from kombu import Connection
    except ImportError:
        return "Celery is not installed (pip install '.[workers]')"
    try:
        with Connection(BROKER, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"the broker is not reachable at {BROKER} ({exc.__class__.__name__}); set EXSYNC_TEST_BROKER"
    return ""


@pytest.fixture(scope="session")
def services() -> None:
    """Skip, with the reason, unless PostgreSQL and the broker answer (fail instead under
    ``EXSYNC_TEST_WORKERS_REQUIRED``, as in CI)."""
    missing = _postgres_missing() or _broker_missing()
    if missing and os.environ.get("EXSYNC_TEST_WORKERS_REQUIRED"):
        pytest.fail(f"EXSYNC_TEST_WORKERS_REQUIRED is set, but {missing}")
    if missing:
        pytest.skip(missing)


@pytest.fixture
def database(services: None) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = f"exsync_workers_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield str(sa.engine.make_url(POSTGRES).set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def queue(services: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A queue of this test's own on the broker, deleted afterwards."""
    from kombu import Connection

    name = f"exsync-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("EXSYNC_QUEUE", name)
    monkeypatch.setenv("EXSYNC_BROKER", BROKER)
    yield name
    with Connection(BROKER) as connection:
        connection.default_channel.queue_delete(name)


@dataclass
class CeleryWorld(World):
    """A :class:`World` whose state is on PostgreSQL, synced by ``exsync worker`` processes."""

    database_url: str = ""
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    switched: bool = False
    workers_on_switch: tuple[int, ...] = ()  # the concurrency of each worker the switch starts

    @property
    def state_url(self) -> str:
        return self.database_url

    def invoke(self, args: list[str], *, answer: str | None = None, trust_ca: bool = True):  # type: ignore[no-untyped-def]
        """Every command as in :class:`World`; the first sync switches the org to the celery executor
        and starts the workers of :attr:`workers_on_switch`."""
        if "sync" in args and not self.switched:
            self.switched = True
            switch = super().invoke(["--as", f"{ADMIN}@contoso.example", "settings", "set", "--executor", "celery"])
            assert switch.exit_code == 0, switch.output
            for concurrency in self.workers_on_switch:  # a worker needs the state the commands so far made
                self.start_worker(concurrency)
        return super().invoke(args, answer=answer, trust_ca=trust_ca)

    def start_worker(self, concurrency: int = 2) -> subprocess.Popen[bytes]:
        """An ``exsync worker`` process (in a process group of its own), once it is ready."""
        log = self.directory / f"worker-{len(self.workers)}.log"
        command = [sys.executable, "-m", "framework", "--state", self.database_url]
        command += ["--ca-bundle", str(self.cloud.ca.bundle_path), "worker", f"--concurrency={concurrency}"]
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(process)
        deadline = time.monotonic() + READY_WITHIN
        while b" ready." not in log.read_bytes():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"the worker did not start:\n{log.read_text()}"
            time.sleep(0.2)
        return process

    def kill_worker(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL a worker and every process of its pool, as a machine dying would."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    @property
    def board(self) -> JobBoard:
        return JobBoard(self.state.engine)

    def latest_sweep(self) -> SweepProgress:
        sweep = self.board.latest()
        assert sweep is not None, "no sweep was started"
        return sweep

    def wait_for_sweep(self, sweep_id: str) -> SweepProgress:
        deadline = time.monotonic() + DONE_WITHIN
        while True:
            progress = self.board.progress(sweep_id)
            assert progress is not None
            if progress.total and progress.done == progress.total:
                return progress
            assert time.monotonic() < deadline, f"the sweep did not finish: {progress}"
            time.sleep(0.3)

    def worker_logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.directory.glob("worker-*.log")))


@pytest.fixture
def celery_world(cloud: FakeCloud, tmp_path: Path, database: str, queue: str) -> Iterator[CeleryWorld]:
    """Fresh fakes, a fresh PostgreSQL state and queue; workers are started by the test."""
    cloud.reset()
    world = CeleryWorld(cloud, tmp_path, database_url=database)
    try:
        yield world
    finally:
        world.stop_workers()
        world.state.engine.dispose()
