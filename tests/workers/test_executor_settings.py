"""Choosing the executor: refused on SQLite, a broker that answers, and the options that need it.

These run without RabbitMQ or PostgreSQL: every refusal happens before either is needed.
"""

from __future__ import annotations

import json
import socket

import pytest

from fakes.harness import ADMIN, World, address
from framework.engine import EntityReport, RunReport
from framework.errors import ConfigurationError
from framework.executors import require_shared_state
from framework.state import User


@pytest.fixture
def installed(world: World) -> World:
    world.crm_login(address(ADMIN))
    assert world.run(ADMIN, "exsync install --scope all --accept-terms").exit_code == 0
    return world


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_celery_executor_refuses_a_sqlite_state(installed: World) -> None:
    result = installed.run(ADMIN, "exsync settings set --executor celery --broker amqp://guest:guest@127.0.0.1//")

    assert result.exit_code != 0
    assert "needs the state on PostgreSQL; this state is on sqlite" in result.output
    assert installed.settings.executor == "in-process"


def test_the_worker_refuses_a_sqlite_state(installed: World) -> None:
    result = installed.invoke(["worker"])

    assert result.exit_code != 0
    assert "needs the state on PostgreSQL" in result.output


def test_a_broker_that_does_not_answer_is_refused_before_anything_is_stored(
    installed: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import framework.executors as executors

    monkeypatch.setattr(executors, "require_shared_state", lambda url: None)  # as if on PostgreSQL
    broker = f"amqp://guest:s3cret-pw@127.0.0.1:{_closed_port()}//"

    result = installed.run(ADMIN, f"exsync settings set --executor celery --broker {broker}")

    assert result.exit_code != 0
    assert "Cannot reach the broker amqp://guest:**@127.0.0.1" in result.output
    assert "s3cret-pw" not in result.output
    assert installed.settings.executor == "in-process"
    assert not installed.vault_names("executor/")


def test_no_wait_needs_the_celery_executor(installed: World) -> None:
    assert installed.graph_client_credentials().exit_code == 0

    result = installed.run(ADMIN, "exsync sync --no-wait")

    assert result.exit_code == 2
    assert "--no-wait needs the celery executor" in result.output


@pytest.mark.parametrize(
    ("url", "backend"),
    [("sqlite:///state.db", "sqlite"), ("mysql+pymysql://u@h/db", "mysql"), ("not a url", "not a url")],
)
def test_only_postgresql_is_shared_state(url: str, backend: str) -> None:
    with pytest.raises(ConfigurationError, match=f"this state is on {backend}"):
        require_shared_state(url)
    require_shared_state("postgresql+psycopg2://postgres@127.0.0.1/exsync")


def test_a_report_stored_by_a_worker_reads_back_the_same() -> None:
    pytest.importorskip("celery", reason="the celery executor is the 'workers' extra")
    from framework.executors.workers import report_from_dict

    user = User("u1", "u1@example.com")
    report = RunReport(user, dry_run=True, outcome="partial", error="", run_id=None)
    entity = EntityReport("contacts", conflicts=2, errors=["create on crm: Email"], outcome="partial")
    entity.sides["crm"].created, entity.sides["exchange"].deleted = 3, 1
    entity.planned.append("create on crm: Pat")
    report.entities["contacts"] = entity
    report.entities["tasks"] = EntityReport("tasks", outcome="skipped", skipped_reason="no To Do")

    again = report_from_dict(user, json.loads(json.dumps({**report.as_dict(), "run_id": 7})))

    assert again.as_dict() == report.as_dict()
    assert again.run_id == 7
