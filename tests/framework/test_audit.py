"""The audit log: recorded, queried by every filter, kept 30 days, secrets blanked, observers isolated."""

from __future__ import annotations

import json
import logging
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_state import BACKENDS, database_url  # type: ignore[import-not-found]

from framework import hookimpl
from framework.audit import RETENTION, AuditEvent, AuditLog
from framework.host import build_host
from framework.state import StateStore, audit_table
from framework.vault import REDACTED, REDACTOR


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    with database_url(request.param, tmp_path) as url:
        store = StateStore(url)
        yield store
        store.engine.dispose()


@pytest.fixture
def audit(store: StateStore) -> AuditLog:
    return AuditLog(store)


def insert_at(store: StateStore, at: datetime, action: str = "old") -> None:
    with store.transaction() as conn:
        conn.execute(audit_table.insert().values(at=at, action=action, outcome="ok", detail="{}"))


def actions(events: list[AuditEvent]) -> list[str]:
    return [e.action for e in events]


# -- recording and querying -------------------------------------------------------------------
def test_a_recorded_event_is_stored_and_returned_with_its_id(audit):
    before = datetime.now(UTC)
    event = audit.record("install", "ok", actor="admin@example.com", user_id="u1", entity="contacts", scope="all")
    assert event.id is not None
    (stored,) = audit.query()
    assert stored == event
    assert stored.detail == {"scope": "all"}
    assert stored.at.tzinfo is not None and before <= stored.at <= datetime.now(UTC)


def test_query_filters_by_user_entity_action_and_outcome(audit):
    audit.record("sync", "ok", user_id="u1", entity="contacts")
    audit.record("sync", "failed", user_id="u1", entity="tasks")
    audit.record("sync", "ok", user_id="u2", entity="contacts")
    audit.record("install", "refused", actor="x@example.com")
    assert actions(audit.query()) == ["install", "sync", "sync", "sync"]  # newest first
    assert [(e.user_id, e.entity) for e in audit.query(user_id="u1")] == [("u1", "tasks"), ("u1", "contacts")]
    assert [e.user_id for e in audit.query(entity="contacts")] == ["u2", "u1"]
    assert actions(audit.query(action="install")) == ["install"]
    assert [(e.user_id, e.entity) for e in audit.query(outcome="failed")] == [("u1", "tasks")]
    assert audit.query(user_id="u1", entity="contacts", outcome="ok")[0].user_id == "u1"
    assert audit.query(user_id="u1", outcome="refused") == []
    assert len(audit.query(limit=2)) == 2


def test_query_since_keeps_only_later_entries(audit, store):
    now = datetime.now(UTC)
    insert_at(store, now - timedelta(days=3), "three-days-ago")
    insert_at(store, now - timedelta(hours=2), "two-hours-ago")
    audit.record("now", "ok")
    assert actions(audit.query(since=now - timedelta(days=1))) == ["now", "two-hours-ago"]
    assert actions(audit.query(since=now - timedelta(minutes=1))) == ["now"]
    assert len(audit.query(since=now - timedelta(days=4))) == 3


@pytest.mark.parametrize(
    "zone", [timezone(timedelta(hours=2)), timezone(timedelta(hours=-7)), None], ids=["+02", "-07", "naive-is-utc"]
)
def test_query_since_means_the_same_moment_in_any_timezone(audit, store, zone):
    now = datetime.now(UTC).replace(microsecond=0)
    insert_at(store, now - timedelta(hours=3), "before")
    insert_at(store, now - timedelta(hours=1), "after")
    since = now - timedelta(hours=2)
    since = since.replace(tzinfo=None) if zone is None else since.astimezone(zone)
    assert actions(audit.query(since=since)) == ["after"]


def test_an_unknown_outcome_is_refused_and_not_stored(audit):
    with pytest.raises(ValueError, match="'maybe'"):
        audit.record("sync", "maybe")
    assert audit.query() == []


# -- retention --------------------------------------------------------------------------------
def test_entries_older_than_30_days_are_pruned_when_a_new_one_is_recorded(audit, store):
    now = datetime.now(UTC)
    insert_at(store, now - RETENTION - timedelta(hours=1), "too-old")
    insert_at(store, now - timedelta(days=90), "much-too-old")
    insert_at(store, now - RETENTION + timedelta(hours=1), "still-kept")
    audit.record("new", "ok")
    assert actions(audit.query()) == ["new", "still-kept"]


def test_prune_deletes_old_entries_and_counts_them(audit, store):
    now = datetime.now(UTC)
    insert_at(store, now - timedelta(days=31))
    insert_at(store, now - timedelta(days=45))
    insert_at(store, now - timedelta(days=29), "kept")
    assert audit.prune() == 2
    assert actions(audit.query()) == ["kept"]
    assert audit.prune() == 0


def test_prune_at_a_moment_given_in_another_timezone(audit, store):
    now = datetime.now(UTC).replace(microsecond=0)
    insert_at(store, now - RETENTION - timedelta(hours=1), "older")
    insert_at(store, now - RETENTION + timedelta(hours=1), "younger")
    assert audit.prune(now.astimezone(timezone(timedelta(hours=-5)))) == 1
    assert actions(audit.query()) == ["younger"]


def test_retention_is_30_days():
    assert timedelta(days=30) == RETENTION


# -- secrets ----------------------------------------------------------------------------------
@pytest.mark.parametrize("secret", ["plain-secret-1234", 'with "quotes" and \\ back', "nön-ascii-sécret"])
def test_known_secrets_are_blanked_from_the_detail_whatever_their_characters(audit, store, secret):
    REDACTOR.add(secret)
    audit.record("login", "failed", password=secret, message=f"rejected {secret}!", deep={"list": [secret]})
    with store.engine.connect() as conn:
        (raw,) = conn.execute(sa.select(audit_table.c.detail)).scalars().all()
    (event,) = audit.query()
    assert event.detail == {"password": REDACTED, "message": f"rejected {REDACTED}!", "deep": {"list": [REDACTED]}}
    for form in (secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]):
        assert form not in raw  # neither as is nor as JSON escapes it


def test_detail_values_that_are_not_json_are_stored_as_text(audit):
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    audit.record("x", "ok", at_time=moment, ids=("a", "b"), count=3, flag=True, nothing=None)
    (event,) = audit.query()
    assert event.detail == {"at_time": str(moment), "ids": ["a", "b"], "count": 3, "flag": True, "nothing": None}


# -- observers --------------------------------------------------------------------------------
def observer_plugin(name: str, seen: list[tuple[str, AuditEvent]], fail: bool = False) -> types.ModuleType:
    plugin = types.ModuleType(name)

    @hookimpl
    def exsync_audit_event(event: AuditEvent) -> None:
        seen.append((name, event))
        if fail:
            raise RuntimeError(f"{name} is down")

    plugin.exsync_audit_event = exsync_audit_event  # type: ignore[attr-defined]
    return plugin


@pytest.mark.parametrize("failing_first", [True, False], ids=["failing-called-first", "failing-called-last"])
def test_an_observer_that_raises_neither_breaks_recording_nor_the_other_observers(store, caplog, failing_first):
    seen: list[tuple[str, AuditEvent]] = []
    good, bad = observer_plugin("siem", seen), observer_plugin("chat", seen, fail=True)
    # pluggy calls the plugin registered last first
    host = build_host(extra=[good, bad] if failing_first else [bad, good], entry_points=False)
    audit = AuditLog(store, observers=host.hook.exsync_audit_event)
    event = audit.record("sync", "ok", user_id="u1")
    assert audit.query() == [event]
    assert sorted(name for name, _ in seen) == ["chat", "siem"]
    assert all(observed == event for _, observed in seen)
    assert "an exsync_audit_event observer failed" in caplog.text and "chat is down" in caplog.text
    audit.record("sync", "ok", user_id="u2")
    assert len(audit.query()) == 2 and len(seen) == 4


def test_an_observer_receives_the_stored_event(audit, store):
    seen: list[AuditEvent] = []
    audit = AuditLog(store, observers=lambda event: seen.append(event))
    event = audit.record("install", "ok", actor="a@x")
    assert seen == [event] and seen[0].id is not None


def test_a_plain_callable_observer_that_raises_is_logged(store, caplog):
    def broken(event: AuditEvent) -> None:
        raise RuntimeError("observer crashed")

    audit = AuditLog(store, observers=broken)
    with caplog.at_level(logging.ERROR):
        event = audit.record("install", "ok")
    assert audit.query() == [event]
    assert "observer crashed" in caplog.text
