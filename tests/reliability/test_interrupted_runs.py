"""A run stopped from outside never stays "running": killed (SIGKILL) it shows as interrupted on
the next command, stopped (Ctrl-C, SIGTERM) it records itself as interrupted; both are audit-logged
and the next sync finishes the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from fakes.harness import ADMIN, address
from framework.commands.sync import stop_signal_interrupts
from framework.state import Run, runs_table


def _start_slow_sync(org: Any) -> subprocess.Popen[str]:
    """``exsync sync`` in a process of its own, against a CRM that answers slowly; returns once
    its run is under way."""
    for i in range(6):
        org.crm_add(f"Slow{i}", first="S", email=f"slow{i}@example.com")
    org.cloud.servers["crm"].faults.add(latency=0.4)
    world = org.world
    command = [sys.executable, "-m", "framework", "--state", world.state_url]
    command += ["--ca-bundle", str(org.cloud.ca.bundle_path), "--as", address(ADMIN), "sync"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(600):
        if world.state.running_runs():
            return process
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"the sync never started a run: {process.communicate()[0]}")


def _last_run(org: Any) -> Run:
    run = org.world.state.last_run(org.world.user(ADMIN).crm_id)
    assert run is not None
    return run


def _interrupted_audit(org: Any) -> list[dict[str, str]]:
    result = org.ok(org.world.run(ADMIN, "exsync --json audit --action sync --outcome interrupted"))
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["graph"])
def test_a_killed_run_shows_as_interrupted_on_the_next_command_and_the_next_sync_finishes_it(org):
    process = _start_slow_sync(org)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    org.cloud.servers["crm"].faults.clear()
    assert _last_run(org).outcome == "running"  # nothing could record the death

    status = json.loads(org.ok(org.world.run(ADMIN, "exsync --json status")).stdout)
    admin = next(row for row in status if row["email"] == address(ADMIN))
    assert admin["result"] == "interrupted"
    assert "killed" in admin["last_error"]
    assert _last_run(org).finished_at is not None
    entries = _interrupted_audit(org)
    assert len(entries) == 1 and entries[0]["user"] == address(ADMIN)

    org.sync()
    assert org.agree()["S", "Slow3", "slow3@example.com", ""] == 1
    assert _last_run(org).outcome == "ok"


@pytest.mark.parametrize("kind", ["graph"])
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stopped_run_records_itself_as_interrupted(org, stop):
    process = _start_slow_sync(org)
    process.send_signal(stop)
    output, _ = process.communicate(timeout=120)
    org.cloud.servers["crm"].faults.clear()
    assert process.returncode == 130, output
    assert "Interrupted" in output
    run = _last_run(org)
    assert (run.outcome, run.finished_at is not None) == ("interrupted", True)
    assert "Ctrl-C" in run.error
    assert len(_interrupted_audit(org)) == 1

    org.sync()
    org.agree()
    assert _last_run(org).outcome == "ok"


def test_a_run_of_a_live_process_or_another_machine_is_left_running(world):
    state = world.state
    run_id = state.start_run("u1")
    assert not state.running_runs()[0].abandoned()  # this process is alive
    state.interrupt_run(run_id, "x")
    with state.transaction() as conn:
        conn.execute(
            runs_table.insert().values(user_id="u2", started_at=datetime.now(UTC), owner="elsewhere.example:1")
        )
    assert [r.abandoned() for r in state.running_runs()] == [False]


@pytest.mark.parametrize("kind", ["graph"])
def test_ctrl_c_while_users_sync_side_by_side_interrupts_every_run_under_way(two_users):
    for i in range(4):
        two_users.crm_add(f"Par{i}", first="P", email=f"par{i}@example.com")
        two_users.crm_add(f"Std{i}", first="S", email=f"std{i}@example.com", user="sam.standard")
    engine = two_users.engine()
    engine.concurrency = 2

    def stop(user: str, entity: str, done: int, total: int) -> None:
        if user == address(ADMIN):
            raise KeyboardInterrupt  # Ctrl-C reaches the admin's run
        engine.stopping.wait(60)  # the other run is under way meanwhile

    users = sorted((u for u in engine.ctx.state.users() if u.enabled), key=lambda u: u.email != address(ADMIN))
    with pytest.raises(KeyboardInterrupt):
        engine.run(users, progress=stop)
    runs = engine.ctx.state.runs()
    assert runs and not engine.ctx.state.running_runs()
    assert {run.outcome for run in runs} == {"interrupted"} and len(runs) == 2
    two_users.sync()
    assert two_users.world.state.last_run(users[0].crm_id).outcome == "ok"


def test_a_stop_signal_a_library_swallows_still_stops_the_engine():
    """msal's optional import check catches everything, a KeyboardInterrupt raised by the stop
    signal's handler included: the engine is told as well, so the run stops at its next chunk."""
    stopping = threading.Event()
    before = signal.getsignal(signal.SIGTERM)
    with stop_signal_interrupts(stopping):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs here
        except BaseException:  # as msal does
            pass
    assert stopping.is_set()
    assert signal.getsignal(signal.SIGTERM) is before
