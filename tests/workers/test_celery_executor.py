"""The celery executor end to end: ``exsync sync`` enqueues a job per user, ``exsync worker``
processes run them against the fakes, with the state on PostgreSQL and jobs on RabbitMQ."""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from fakes.harness import ADMIN, address
from fakes.server import FaultRule
from framework.context import Context
from framework.executors.jobs import INTERRUPTED, JobBoard, advisory_lock, lock_held, user_lock_name
from framework.state import User

if TYPE_CHECKING:
    from tests.workers.support import CeleryWorld

USERS = ("amelia.admin", "sofia.sales", "sam.standard")


def _org(world: CeleryWorld, users: tuple[str, ...] = USERS) -> None:
    """An org over Graph (client credentials) with ``users`` enabled, on the celery executor."""
    world.crm_login(address(ADMIN))
    assert world.run(ADMIN, "exsync install --scope all --accept-terms").exit_code == 0
    assert world.graph_client_credentials().exit_code == 0
    enabled = world.run(ADMIN, "exsync users enable " + " ".join(address(u) for u in users))
    assert enabled.exit_code == 0, enabled.output


def _contacts(world: CeleryWorld, user: str, count: int, tag: str = "c") -> list[str]:
    emails = []
    box = world.cloud.tenant.mailbox(address(user))
    for n in range(count):
        email = f"{tag}{n}.{user}@example.com"
        data = {"givenName": "Pat", "surname": f"{tag}{n}", "emailAddresses": [{"name": "Pat", "address": email}]}
        world.cloud.tenant.create(box, "contacts", data)
        emails.append(email)
    return emails


def _crm_emails(world: CeleryWorld) -> list[str]:
    records = world.cloud.crm.list_records("Contacts", per_page=100_000).records
    return [r["Email"] for r in records if r.get("Email")]


def test_sync_runs_one_job_per_user_on_workers_and_prints_the_summary(celery_world: CeleryWorld) -> None:
    world = celery_world
    _org(world)
    expected = {u: _contacts(world, u, 3) for u in USERS}
    world.start_worker(concurrency=2)
    world.start_worker(concurrency=1)

    result = world.run(ADMIN, "exsync sync")

    assert result.exit_code == 0, result.output + world.worker_logs()
    for user in USERS:
        assert f"{address(user)}: ok" in result.output
    crm = _crm_emails(world)
    for emails in expected.values():
        for email in emails:
            assert crm.count(email) == 1
    sweep = world.latest_sweep()
    assert (sweep.done, sweep.total) == (3, 3)
    status = world.run(ADMIN, "exsync --json status")
    rows = {row["email"]: row for row in json.loads(status.stdout)}
    assert all(rows[address(u)]["result"] == "ok" for u in USERS)
    assert rows[address(USERS[0])]["counts"]["created"] == 3
    _contacts(world, USERS[1], 1, tag="planned")
    dry = world.run(ADMIN, "exsync sync --dry-run")
    assert dry.exit_code == 0, dry.output
    assert "create on crm: Pat planned0" in dry.output and "Dry run: nothing was written." in dry.output
    assert "planned0.sofia.sales@example.com" not in _crm_emails(world)


def test_redis_works_as_the_broker(celery_world: CeleryWorld, queue: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from kombu import Connection

    broker = "redis://127.0.0.1:6379/14"
    try:
        with Connection(broker, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        pytest.skip(f"Redis is not reachable at {broker} ({exc.__class__.__name__})")
    monkeypatch.setenv("EXSYNC_BROKER", broker)
    world = celery_world
    _org(world, users=(ADMIN,))
    emails = _contacts(world, ADMIN, 2)
    world.start_worker(concurrency=1)
    try:
        result = world.run(ADMIN, "exsync sync")
        assert result.exit_code == 0, result.output + world.worker_logs()
        assert sorted(_crm_emails(world)) == sorted(emails)
    finally:
        world.stop_workers()
        with Connection(broker) as connection:
            connection.default_channel.queue_delete(queue)


def test_the_crm_listings_are_read_once_a_sweep_by_all_workers(celery_world: CeleryWorld) -> None:
    world = celery_world
    _org(world)
    world.start_worker(concurrency=2)
    world.start_worker(concurrency=2)
    assert world.run(ADMIN, "exsync sync").exit_code == 0  # first syncs: full listings, never shared
    for user in USERS:
        _contacts(world, user, 1, tag="new")
    listings = world.cloud.servers["crm"].faults.add(FaultRule(path="/Contacts/deleted"))

    result = world.run(ADMIN, "exsync sync --entity contacts")

    assert result.exit_code == 0, result.output
    assert listings.fired == 1  # three users, four worker processes, one listing


def test_no_wait_returns_at_once_and_status_shows_the_sweep(celery_world: CeleryWorld) -> None:
    world = celery_world
    _org(world)

    queued = world.run(ADMIN, "exsync sync --no-wait")

    assert queued.exit_code == 0, queued.output
    assert "3 job(s) queued" in queued.output
    sweep = world.latest_sweep()
    assert (sweep.queued, sweep.done) == (3, 0)
    assert "0/3 users done, 0 running, 3 queued" in world.run(ADMIN, "exsync status").output
    world.start_worker(concurrency=2)
    assert world.wait_for_sweep(sweep.id).done == 3
    assert "3/3 users done, finished" in world.run(ADMIN, "exsync status").output
    dashboard = json.loads(world.run(ADMIN, "exsync --json dashboard").stdout)
    assert dashboard["sweep"]["done"] == 3


def test_a_killed_worker_s_job_runs_again_with_nothing_lost_or_duplicated(celery_world: CeleryWorld) -> None:
    world = celery_world
    _org(world, users=(ADMIN,))
    emails = _contacts(world, ADMIN, 300)
    world.cloud.servers["crm"].faults.add(FaultRule(path="/Contacts", method="POST", latency=0.4))
    doomed = world.start_worker(concurrency=1)
    assert world.run(ADMIN, "exsync sync --no-wait").exit_code == 0
    sweep = world.latest_sweep()
    _wait_until(lambda: 0 < len(_crm_emails(world)) < len(emails), "some contacts written")

    world.kill_worker(doomed)
    assert not lock_held(world.state.engine, user_lock_name(world.user(ADMIN).crm_id))
    status = world.run(ADMIN, "exsync --json status")
    assert {r["email"]: r["result"] for r in json.loads(status.stdout)}[address(ADMIN)] == INTERRUPTED
    board = json.loads(world.run(ADMIN, "exsync --json dashboard").stdout)
    assert board["recent_runs"][0]["outcome"] == INTERRUPTED  # not "running" until delivered again
    world.start_worker(concurrency=1)

    assert world.wait_for_sweep(sweep.id).done == 1
    crm = _crm_emails(world)
    assert sorted(crm) == sorted(emails)  # every contact once: none lost, none twice
    runs = world.state.runs(world.user(ADMIN).crm_id)
    assert [r.outcome for r in runs] == ["ok", INTERRUPTED]
    dashboard = world.run(ADMIN, "exsync --json dashboard")
    assert INTERRUPTED in [r["outcome"] for r in json.loads(dashboard.stdout)["recent_runs"]]


def test_one_user_s_jobs_never_run_at_once(celery_world: CeleryWorld) -> None:
    world = celery_world
    _org(world, users=(ADMIN,))
    emails = _contacts(world, ADMIN, 60)
    world.cloud.servers["crm"].faults.add(FaultRule(path="/Contacts", method="POST", latency=0.3))
    world.start_worker(concurrency=2)
    world.start_worker(concurrency=2)

    for _ in range(3):  # three sweeps of the same user, queued together
        assert world.run(ADMIN, "exsync sync --no-wait").exit_code == 0
    sweeps = [world.board.latest()]
    _wait_until(lambda: len(world.state.runs(world.user(ADMIN).crm_id)) == 3 and _all_finished(world), "3 runs")

    runs = sorted(world.state.runs(world.user(ADMIN).crm_id), key=lambda r: r.started_at)
    for earlier, later in itertools.pairwise(runs):
        assert earlier.finished_at is not None and earlier.finished_at <= later.started_at
    assert sorted(_crm_emails(world)) == sorted(emails)
    assert sweeps[0] is not None


def test_an_advisory_lock_waits_for_its_holder(celery_world: CeleryWorld) -> None:
    engine = celery_world.state.engine
    order: list[str] = []
    with advisory_lock(engine, "exsync/test"):
        assert lock_held(engine, "exsync/test")
        waiter = threading.Thread(target=lambda: _take(engine, order))
        waiter.start()
        time.sleep(0.5)
        order.append("holder done")
    waiter.join(10)
    assert order == ["holder done", "waiter got it"]
    assert not lock_held(engine, "exsync/test")


def _take(engine: Any, order: list[str]) -> None:
    with advisory_lock(engine, "exsync/test"):
        order.append("waiter got it")


def _all_finished(world: CeleryWorld) -> bool:
    return all(r.finished_at is not None for r in world.state.runs(world.user(ADMIN).crm_id))


def _wait_until(condition: Any, what: str, within: float = 120.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for: {what}")
        time.sleep(0.1)


def test_waiting_without_any_worker_says_so_once_and_keeps_waiting(database: str) -> None:
    from framework.executors import workers

    ctx = Context(database)
    board = JobBoard(ctx.state.engine)
    user = User("u1", "u1@example.com")
    sweep_id = board.open([user.crm_id], None, False, False, "admin@example.com")
    said: list[str] = []
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if sum(slept) > workers.QUIET_HINT * 2:  # a worker comes, long after the hint
            board.mark_done(sweep_id, user.crm_id, {"user": user.email, "outcome": "ok", "entities": {}})

    reports = workers.wait(ctx, workers.Enqueued(sweep_id, [user]), quiet=lambda: said.append("hint"), sleep=sleep)

    assert said == ["hint"]
    assert [r.outcome for r in reports] == ["ok"]
