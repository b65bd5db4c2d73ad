"""The limiter every worker shares on Redis: Graph's 4 requests in flight per mailbox, and its
budgets, held by separate clients as separate worker processes would hold them."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from fakes.cloud import GRAPH_CLIENT_ID
from fakes.harness import ADMIN, World, address
from framework.executors.limiter import GRAPH, LEASE, Budget, ServiceLimits, SharedLimiter

REDIS = os.environ.get("EXSYNC_TEST_REDIS", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="module")
def redis_url() -> str:
    try:
        SharedLimiter(REDIS).redis.ping()
    except Exception as exc:
        if os.environ.get("EXSYNC_TEST_WORKERS_REQUIRED"):
            pytest.fail(f"EXSYNC_TEST_WORKERS_REQUIRED is set, but Redis is not reachable at {REDIS}: {exc!r}")
        pytest.skip(f"Redis is not reachable at {REDIS} ({exc.__class__.__name__}); set EXSYNC_TEST_REDIS")
    return REDIS


@pytest.fixture
def app() -> Iterator[str]:
    yield f"test-app-{uuid.uuid4().hex[:8]}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_no_more_than_four_requests_to_a_mailbox_are_in_flight_across_clients(redis_url: str, app: str) -> None:
    clients = [SharedLimiter(redis_url) for _ in range(3)]  # as three worker processes
    in_flight, most, lock = 0, 0, threading.Lock()

    def requests(client: SharedLimiter) -> None:
        nonlocal in_flight, most
        for _ in range(5):
            with client.request(GRAPH, app, "amelia@contoso.example"):
                with lock:
                    in_flight += 1
                    most = max(most, in_flight)
                time.sleep(0.02)
                with lock:
                    in_flight -= 1

    threads = [threading.Thread(target=requests, args=(clients[n % 3],)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert 2 <= most <= 4
    assert clients[0].in_flight(app, "amelia@contoso.example") == 0


def test_another_mailbox_has_slots_of_its_own(redis_url: str, app: str) -> None:
    limiter = SharedLimiter(redis_url)
    with ExitStack() as held:
        for _ in range(4):
            held.enter_context(limiter.request(GRAPH, app, "a@x"))
        assert limiter.in_flight(app, "a@x") == 4
        with limiter.request(GRAPH, app, "b@x"):
            assert limiter.in_flight(app, "b@x") == 1


def test_a_spent_budget_waits_for_the_next_window(redis_url: str, app: str) -> None:
    clock = FakeClock()
    limits = ServiceLimits(concurrent_per_mailbox=4, per_mailbox=Budget(3, 600), per_app=Budget(100, 10))
    limiter = SharedLimiter(redis_url, sleep=clock.sleep, clock=clock)
    for _ in range(3):
        with limiter.request(limits, app, "a@x"):
            pass
    assert clock.slept == []

    with limiter.request(limits, app, "a@x"):
        pass

    assert len(clock.slept) == 1 and 0 < clock.slept[0] <= 600


def test_a_batch_spends_one_request_of_the_budget_for_each_it_holds(redis_url: str, app: str) -> None:
    clock = FakeClock()
    limits = ServiceLimits(concurrent_per_mailbox=4, per_mailbox=Budget(10_000, 600), per_app=Budget(20, 10))
    limiter = SharedLimiter(redis_url, sleep=clock.sleep, clock=clock)
    with limiter.request(limits, app, "a@x", cost=20):
        pass
    with limiter.request(limits, app, "b@x", cost=1):  # another mailbox, the same app: its budget is spent
        pass
    assert len(clock.slept) == 1


def test_a_slot_held_by_a_dead_process_frees_itself(redis_url: str, app: str) -> None:
    clock = FakeClock()
    limiter = SharedLimiter(redis_url, sleep=clock.sleep, clock=clock)
    held = [limiter.request(GRAPH, app, "a@x") for _ in range(4)]
    for slot in held:
        slot.__enter__()  # never given back, as by a killed process
    clock.now += LEASE + 1

    with limiter.request(GRAPH, app, "a@x"):
        assert limiter.in_flight(app, "a@x") == 1


def test_a_sync_counts_its_graph_requests_in_the_shared_limiter(world: World, redis_url: str) -> None:
    limiter = SharedLimiter(redis_url)
    for key in limiter.redis.scan_iter(f"exsync:budget:{GRAPH_CLIENT_ID}*"):
        limiter.redis.delete(key)
    world.crm_login(address(ADMIN))
    assert world.run(ADMIN, "exsync install --scope all --accept-terms").exit_code == 0
    assert world.graph_client_credentials().exit_code == 0
    assert world.run(ADMIN, f"exsync users enable {address(ADMIN)}").exit_code == 0
    configured = world.run(ADMIN, f"exsync settings set --limiter {redis_url}")
    assert configured.exit_code == 0, configured.output

    assert world.run(ADMIN, "exsync sync").exit_code == 0

    spent = sum(int(limiter.redis.get(k)) for k in limiter.redis.scan_iter(f"exsync:budget:{GRAPH_CLIENT_ID}:*@*"))
    assert spent > 0


def test_a_limiter_that_does_not_answer_is_refused(world: World) -> None:
    world.crm_login(address(ADMIN))
    assert world.run(ADMIN, "exsync install --scope all --accept-terms").exit_code == 0

    result = world.run(ADMIN, "exsync settings set --limiter redis://:pw-secret@127.0.0.1:1/0")

    assert result.exit_code != 0
    assert "Cannot reach the limiter's Redis" in result.output
    assert "pw-secret" not in result.output
