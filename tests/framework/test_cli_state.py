"""The ``--state`` a command works on: one that does not exist is refused (only ``crm login``
starts a new one), a damaged one gives one clear line and a non-zero exit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner, Result

from framework.cli import build_cli
from framework.state import StateStore, User


def exsync(*args: str) -> Result:
    return CliRunner().invoke(build_cli(), list(args))


def test_a_state_file_that_does_not_exist_is_refused_and_not_created(tmp_path: Path):
    missing = tmp_path / "typo.db"
    result = exsync("--state", f"sqlite:///{missing}", "status")
    assert result.exit_code == 1
    assert f"There is no state database at {missing}" in result.output
    assert "exsync crm login" in result.output
    assert not missing.exists()


def test_a_state_directory_that_does_not_exist_is_refused_and_not_created(tmp_path: Path):
    result = exsync("--state", f"sqlite:///{tmp_path / 'nowhere' / 'state.db'}", "users", "list")
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert not (tmp_path / "nowhere").exists()


def test_a_database_without_exsync_state_is_refused_untouched(tmp_path: Path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (text)")
    result = exsync("--state", f"sqlite:///{other}", "status")
    assert result.exit_code == 1
    assert "holds no exsync state" in result.output
    with sqlite3.connect(other) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["notes"]


def _damaged(path: Path, start: int) -> None:
    store = StateStore(f"sqlite:///{path}")
    store.set_settings({"crm_login_user": "u1"})
    store.upsert_users([User("u1", "ann@example.com", is_admin=True)])
    store.engine.dispose()
    data = bytearray(path.read_bytes())
    for i in range(start, len(data), 7):
        data[i] = 0xAB
    path.write_bytes(bytes(data))


def test_a_damaged_state_file_gives_one_line_and_a_hint_not_a_traceback(tmp_path: Path):
    for start, name in ((4096, "pages.db"), (0, "header.db")):
        path = tmp_path / name
        _damaged(path, start)
        result = exsync("--state", f"sqlite:///{path}", "status")
        assert result.exit_code == 1, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert lines[0].startswith(f"Error: The state database sqlite:///{path} cannot be read: "), lines
        assert "Traceback" not in result.output and "[SQL:" not in result.output
        assert len(lines) <= 4  # the error and its hint, wrapped
