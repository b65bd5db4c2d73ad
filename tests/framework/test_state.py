"""The state store on SQLite and, when EXSYNC_TEST_POSTGRES holds a URL, on PostgreSQL too.

Each PostgreSQL test runs in a schema of its own (``search_path`` set through the URL), dropped
afterwards, so tests never see each other's rows or anyone else's tables in that database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from framework import state
from framework.errors import ConfigurationError
from framework.state import SCHEMA_VERSION, Pair, StateStore, User

POSTGRES = os.environ.get("EXSYNC_TEST_POSTGRES", "")
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES else [])]


@contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    schema = f"exsync_test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(POSTGRES).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


@pytest.fixture
def open_store(url: str) -> Iterator[Callable[[], StateStore]]:
    """Opens stores on ``url`` (as a new process would) and closes them all afterwards."""
    opened: list[StateStore] = []

    def open_() -> StateStore:
        opened.append(StateStore(url))
        return opened[-1]

    yield open_
    for store in opened:
        store.engine.dispose()


@pytest.fixture
def store(open_store: Callable[[], StateStore]) -> StateStore:
    return open_store()


def raw(store: StateStore, sql: str, **params: object) -> list[tuple[object, ...]]:
    with store.engine.begin() as conn:
        result = conn.execute(sa.text(sql), params)
        return [tuple(row) for row in result] if result.returns_rows else []


def tables(store: StateStore) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


# -- schema -----------------------------------------------------------------------------------
def test_a_new_database_gets_every_table_and_records_the_schema_version(store):
    assert {"meta", "settings", "users", "pairs", "cursors", "retries", "runs", "audit", "secrets"} <= tables(store)
    assert store.schema_version == SCHEMA_VERSION
    assert raw(store, "SELECT value FROM meta WHERE key = 'schema'") == [(str(SCHEMA_VERSION),)]


def test_reopening_keeps_the_data_and_the_version(open_store):
    open_store().set_settings({"sync_type": "two_way"})
    again = open_store()
    assert again.get_setting("sync_type") == "two_way"
    assert again.schema_version == SCHEMA_VERSION


def test_a_database_of_a_newer_release_is_refused(open_store, store):
    store.set_settings({"kept": True})
    raw(store, "UPDATE meta SET value = :v WHERE key = 'schema'", v=str(SCHEMA_VERSION + 1))
    with pytest.raises(ConfigurationError) as error:
        open_store()
    assert f"schema version {SCHEMA_VERSION + 1}" in error.value.message
    assert "Upgrade exsync" in error.value.hint
    assert raw(store, "SELECT value FROM meta WHERE key = 'schema'") == [(str(SCHEMA_VERSION + 1),)]
    assert store.get_setting("kept") is True


def test_a_database_of_a_newer_release_is_refused_before_any_table_is_created(url):
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE meta (key VARCHAR(64) PRIMARY KEY, value TEXT)"))
        conn.execute(sa.text("INSERT INTO meta VALUES ('schema', :v)"), {"v": str(SCHEMA_VERSION + 1)})
    try:
        with pytest.raises(ConfigurationError, match="newer than this exsync understands"):
            StateStore(url)
        assert set(sa.inspect(engine).get_table_names()) == {"meta"}  # nothing of ours was added
    finally:
        engine.dispose()


def test_a_registered_migration_lifts_an_older_database_without_losing_rows(open_store, monkeypatch):
    old = open_store()
    old.set_settings({"direction": "crm_to_exchange"})
    old.upsert_users([User("u1", "ann@example.com", "Ann", enabled=True, mailbox="ann@ex.example")])
    with old.transaction() as conn:
        old.save_pairs(conn, "u1", "contacts", [Pair("c1", "x1", "h1", "h2")], [])
    old.engine.dispose()

    calls: list[int] = []

    def add_nickname(conn: sa.Connection) -> None:
        calls.append(1)
        conn.execute(sa.text("ALTER TABLE users ADD COLUMN nickname VARCHAR(64) NOT NULL DEFAULT ''"))
        conn.execute(sa.text("UPDATE users SET nickname = name"))

    monkeypatch.setattr(state, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(state.MIGRATIONS, SCHEMA_VERSION, add_nickname)
    new = open_store()
    assert calls == [1]
    assert new.schema_version == SCHEMA_VERSION + 1
    assert raw(new, "SELECT crm_id, nickname FROM users") == [("u1", "Ann")]
    assert new.get_setting("direction") == "crm_to_exchange"
    assert [(p.crm_id, p.exchange_id) for p in new.pairs("u1", "contacts")] == [("c1", "x1")]
    open_store()
    assert calls == [1]  # an up-to-date database is not migrated again


# -- bad URLs ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad_url",
    [
        "postgresql+psycopg2://bob:hunter22@127.0.0.1:1/exsync",  # nothing listens there
        "nosuchdialect://bob:hunter22@db.example/exsync",
        "postgresql://bob:hunter22@db.example:notaport/exsync",
        "not a url at all",
    ],
    ids=["refused", "unknown-dialect", "bad-port", "unparsable"],
)
def test_a_bad_url_is_a_configuration_error_naming_it_without_its_password(bad_url):
    with pytest.raises(ConfigurationError) as error:
        StateStore(bad_url)
    text = f"{error.value.message} {error.value.hint} {error.value}"
    assert "hunter22" not in text
    shown = bad_url.replace("hunter22", "***")
    assert shown in error.value.message
    assert "EXSYNC_STATE" in error.value.hint


def test_a_sqlite_file_whose_directory_cannot_be_created_is_a_configuration_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigurationError, match="Cannot open the state database"):
        StateStore(f"sqlite:///{blocker / 'state.db'}")


def test_safe_url_hides_the_password():
    store = StateStore("sqlite://")
    assert store.safe_url == "sqlite://"
    assert state._safe_url("postgresql://bob:hunter22@db/x") == "postgresql://bob:***@db/x"


# -- settings ---------------------------------------------------------------------------------
def test_settings_round_trip_as_json_values(store):
    values = {"sync_type": "two_way", "entities": {"contacts": True, "mails": False}, "ratio": 0.5, "on": True}
    store.set_settings(values)
    assert store.all_settings() == values
    assert store.get_setting("entities") == {"contacts": True, "mails": False}
    assert store.get_setting("missing", "fallback") == "fallback"


def test_setting_a_value_to_none_removes_it_and_clear_removes_all(store):
    store.set_settings({"a": 1, "b": 2})
    store.set_settings({"a": None, "b": 3})
    assert store.all_settings() == {"b": 3}
    store.clear_settings()
    assert store.all_settings() == {}


# -- users ------------------------------------------------------------------------------------
def test_upserting_users_refreshes_crm_fields_but_keeps_the_sync_toggle_and_mailbox(store):
    store.upsert_users([User("u1", "ann@example.com", "Ann", "CEO", "Administrator", is_admin=True)])
    assert store.user("u1") == User("u1", "ann@example.com", "Ann", "CEO", "Administrator", is_admin=True)
    store.update_user("u1", enabled=True, mailbox="ann@mail.example", needs_attention="password expired")
    store.upsert_users([User("u1", "ann.lee@example.com", "Ann Lee", "Sales", "Standard", enabled=False, mailbox="")])
    assert store.user("u1") == User(
        "u1",
        "ann.lee@example.com",
        "Ann Lee",
        "Sales",
        "Standard",
        is_admin=False,
        enabled=True,
        mailbox="ann@mail.example",
        needs_attention="password expired",
    )


def test_a_new_user_is_inserted_with_its_own_toggle_and_listed_by_email(store):
    store.upsert_users([User("u2", "bob@example.com", enabled=True, mailbox="b@mail"), User("u1", "ann@example.com")])
    assert [(u.crm_id, u.enabled, u.address) for u in store.users()] == [
        ("u1", False, "ann@example.com"),
        ("u2", True, "b@mail"),
    ]


def test_a_user_is_found_by_id_or_by_email_in_any_case(store):
    store.upsert_users([User("u1", "Ann@Example.com")])
    assert store.user("u1") is not None
    found = store.user("ANN@example.COM")
    assert found is not None and found.crm_id == "u1"
    assert store.user("nobody@example.com") is None


# -- pairs ------------------------------------------------------------------------------------
def test_pairs_are_saved_per_user_and_entity(store):
    with store.transaction() as conn:
        store.save_pairs(conn, "u1", "contacts", [Pair("c1", "x1", "a", "b"), Pair("c2", "x2", "c", "d")], [])
        store.save_pairs(conn, "u1", "tasks", [Pair("t1", "y1", "e", "f")], [])
        store.save_pairs(conn, "u2", "contacts", [Pair("c9", "x9", "g", "h")], [])
    pairs = sorted(store.pairs("u1", "contacts"), key=lambda p: p.crm_id)
    assert [(p.crm_id, p.exchange_id, p.crm_hash, p.exchange_hash) for p in pairs] == [
        ("c1", "x1", "a", "b"),
        ("c2", "x2", "c", "d"),
    ]
    assert all(p.id is not None for p in pairs)
    assert store.count_pairs("u1") == {"contacts": 2, "tasks": 1}
    assert store.count_pairs() == {"contacts": 3, "tasks": 1}


@pytest.mark.parametrize(
    ("replacement", "why"),
    [(Pair("c1", "x-new", "a2", "b2"), "same CRM id"), (Pair("c-new", "x1", "a2", "b2"), "same Exchange id")],
)
def test_saving_a_pair_replaces_the_one_sharing_either_id(store, replacement, why):
    with store.transaction() as conn:
        store.save_pairs(conn, "u1", "contacts", [Pair("c1", "x1", "a", "b"), Pair("c2", "x2", "c", "d")], [])
    with store.transaction() as conn:
        store.save_pairs(conn, "u1", "contacts", [replacement], [])
    pairs = {(p.crm_id, p.exchange_id, p.crm_hash) for p in store.pairs("u1", "contacts")}
    assert pairs == {(replacement.crm_id, replacement.exchange_id, "a2"), ("c2", "x2", "c")}, why


def test_removed_pairs_are_deleted_and_other_users_are_untouched(store):
    with store.transaction() as conn:
        store.save_pairs(conn, "u1", "contacts", [Pair("c1", "x1", "a", "b"), Pair("c2", "x2", "c", "d")], [])
        store.save_pairs(conn, "u2", "contacts", [Pair("c1", "x1", "a", "b")], [])
    with store.transaction() as conn:
        store.save_pairs(conn, "u1", "contacts", [], [Pair("c1", "x1", "a", "b")])
    assert [p.crm_id for p in store.pairs("u1", "contacts")] == ["c2"]
    assert [p.crm_id for p in store.pairs("u2", "contacts")] == ["c1"]


def test_pairs_saved_in_a_failed_transaction_are_not_kept(store):
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.save_pairs(conn, "u1", "contacts", [Pair("c1", "x1", "a", "b")], [])
        raise RuntimeError("crash between the write and the commit")
    assert store.pairs("u1", "contacts") == []


# -- cursors ----------------------------------------------------------------------------------
def test_cursors_round_trip_per_user_entity_and_side(store):
    with store.transaction() as conn:
        store.save_cursor(conn, "u1", "contacts", "crm", "2026-01-01T00:00:00Z")
        store.save_cursor(conn, "u1", "contacts", "exchange", "delta-token-1")
        store.save_cursor(conn, "u2", "contacts", "exchange", "delta-token-9")
    with store.transaction() as conn:
        store.save_cursor(conn, "u1", "contacts", "exchange", "delta-token-2")
    assert store.cursor("u1", "contacts", "crm") == "2026-01-01T00:00:00Z"
    assert store.cursor("u1", "contacts", "exchange") == "delta-token-2"
    assert store.cursor("u1", "tasks", "crm") is None
    with store.transaction() as conn:
        store.save_cursor(conn, "u1", "contacts", "crm", None)
    assert store.cursor("u1", "contacts", "crm") is None


def test_forgetting_cursors_of_one_user_keeps_the_others(store):
    with store.transaction() as conn:
        store.save_cursor(conn, "u1", "contacts", "crm", "a")
        store.save_cursor(conn, "u2", "contacts", "crm", "b")
    store.forget_cursors("u1")
    assert store.cursor("u1", "contacts", "crm") is None
    assert store.cursor("u2", "contacts", "crm") == "b"
    store.forget_cursors()
    assert store.cursor("u2", "contacts", "crm") is None


# -- retries ----------------------------------------------------------------------------------
def test_retries_count_attempts_and_keep_the_latest_item_and_error(store):
    with store.transaction() as conn:
        store.save_retry(conn, "u1", "contacts", "crm", "c1", {"last_name": "Bad"}, "invalid e-mail")
    assert store.retries("u1", "contacts", "crm") == [("c1", {"last_name": "Bad"}, 1)]
    with store.transaction() as conn:
        store.save_retry(conn, "u1", "contacts", "crm", "c1", {"last_name": "Bad2"}, "still invalid")
    with store.transaction() as conn:
        store.save_retry(conn, "u1", "contacts", "crm", "c1", {"last_name": "Bad3"}, "still invalid")
    assert store.retries("u1", "contacts", "crm") == [("c1", {"last_name": "Bad3"}, 3)]
    assert store.retries("u1", "contacts", "exchange") == []
    assert store.open_errors("u1") == [
        {"user_id": "u1", "entity": "contacts", "side": "crm", "item_id": "c1", "error": "still invalid", "attempts": 3}
    ]


def test_a_cleared_retry_starts_counting_again(store):
    with store.transaction() as conn:
        store.save_retry(conn, "u1", "contacts", "crm", "c1", {}, "e")
        store.save_retry(conn, "u2", "contacts", "crm", "c1", {}, "e")
    with store.transaction() as conn:
        store.clear_retry(conn, "u1", "contacts", "crm", "c1")
    assert store.retries("u1", "contacts", "crm") == []
    assert [e["user_id"] for e in store.open_errors()] == ["u2"]
    with store.transaction() as conn:
        store.save_retry(conn, "u1", "contacts", "crm", "c1", {}, "e")
    assert store.retries("u1", "contacts", "crm")[0][2] == 1


# -- runs -------------------------------------------------------------------------------------
def test_runs_are_started_finished_and_listed_newest_first(store):
    before = datetime.now(UTC)
    first = store.start_run("u1")
    running = store.last_run("u1")
    assert running is not None and running.outcome == "running" and running.finished_at is None
    store.finish_run(first, "ok", {"entities": {"contacts": {"crm": {"created": 2}}}})
    second = store.start_run("u1")
    store.finish_run(second, "failed", {}, error="token expired")
    store.finish_run(store.start_run("u2"), "ok", {})
    runs = store.runs("u1")
    assert [r.id for r in runs] == [second, first]
    assert runs[1].summary == {"entities": {"contacts": {"crm": {"created": 2}}}}
    assert (runs[0].outcome, runs[0].error) == ("failed", "token expired")
    for run in runs:
        assert run.started_at.tzinfo is not None and run.finished_at is not None
        assert before <= run.started_at <= run.finished_at <= datetime.now(UTC)
    last = store.last_run("u1")
    assert last is not None and last.id == second
    assert len(store.runs()) == 3 and len(store.runs(limit=1)) == 1
    assert store.last_run("nobody") is None


def test_a_version_1_database_gets_run_owners_and_pair_labels_and_keeps_its_rows(open_store):
    old = open_store()
    old.finish_run(old.start_run("u1"), "ok", {})
    with old.transaction() as conn:
        old.save_pairs(conn, "u1", "contacts", [Pair("c1", "x1", "h1", "h2", label="Ann")], [])
    raw(old, "ALTER TABLE runs DROP COLUMN owner")
    raw(old, "ALTER TABLE pairs DROP COLUMN label")
    raw(old, "ALTER TABLE pairs DROP COLUMN withheld")
    raw(old, "UPDATE meta SET value = '1' WHERE key = 'schema'")
    old.engine.dispose()
    new = open_store()
    assert new.schema_version == SCHEMA_VERSION
    assert [(r.outcome, r.owner) for r in new.runs("u1")] == [("ok", "")]
    assert [(p.crm_id, p.label) for p in new.pairs("u1", "contacts")] == [("c1", "")]
    new.start_run("u1")
    assert new.running_runs()[0].owner.endswith(f":{os.getpid()}")
