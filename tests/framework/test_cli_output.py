"""What people read, against the fakes: tables that fit 80 columns, audit details as short
key=value text, users by e-mail, plain progress lines when piped, and what revoke and
uninstall leave behind."""

from __future__ import annotations

import json
import re

import pytest

from fakes.harness import ADMIN, World, address
from framework.cli_support import console
from tests.reliability.conftest import STANDARD, Org

WIDTH = 80


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", WIDTH)


@pytest.fixture
def synced(world: World) -> Org:
    org = Org(world, "graph").set_up(users=(ADMIN, STANDARD), entities=("contacts", "events"))
    for n in range(3):
        org.crm_add(f"Lee{n}", first="Ann", email=f"ann{n}@example.com")
        org.box_add(f"Box{n}", first="Bo", email=f"bo{n}@example.com")
    org.ok(world.run(ADMIN, "exsync sync"))
    return org


def _fits(output: str, *emails: str) -> list[str]:
    lines = output.splitlines()
    assert all(len(line) <= WIDTH for line in lines), max(lines, key=len)
    for email in emails:
        assert any(email in line for line in lines), f"{email} is split or missing"
    return lines


@pytest.mark.usefixtures("narrow")
def test_tables_fit_80_columns_and_show_users_by_email(synced: Org):
    world, emails = synced.world, (address(ADMIN), address(STANDARD))
    for command in ("exsync status", "exsync users list", "exsync dashboard", "exsync sync"):
        result = synced.ok(world.run(ADMIN, command))
        _fits(result.output, *emails)
    summary = world.results[-1].output
    assert "contacts" in summary and "+created ~updated -deleted" in summary
    assert synced.world.user(ADMIN).crm_id not in world.run(ADMIN, "exsync status").output


@pytest.mark.usefixtures("narrow")
def test_the_audit_log_is_compact_key_value_text(synced: Org):
    world = synced.world
    entries = json.loads(synced.ok(world.run(ADMIN, "exsync --json audit --since 7d")).stdout)
    lines = _fits(synced.ok(world.run(ADMIN, "exsync audit --since 7d")).output, address(ADMIN))
    assert len(lines) <= 1 + 3 * len(entries)  # a heading, then a line or two (wrapped: three) an entry
    text = "\n".join(lines)
    assert "{" not in text and "'" not in text  # no Python dict
    assert "contacts: +3 ~0 -0 to CRM" in text or "contacts: +3 ~0 -0 to Exchange" in text
    assert "scope=all" in text
    assert entries[0]["user"] in ("", address(ADMIN), address(STANDARD))


def test_a_sync_without_a_terminal_prints_plain_progress_lines_as_it_goes(synced: Org):
    synced.crm_add("Late", first="Lou", email="lou@example.com")
    output = synced.ok(synced.world.run(ADMIN, "exsync sync")).output
    progress = output[: output.index("Sync summary")]
    assert re.search(rf"^{re.escape(address(ADMIN))} contacts: (\d+) of \1 records$", progress, re.MULTILINE)
    assert f"{address(STANDARD)} events: no changes" in progress
    assert "\x1b[" not in output  # no terminal control codes


def test_after_revoke_status_and_dashboard_say_authentication_is_missing(synced: Org):
    world = synced.world
    synced.ok(world.run(ADMIN, "exsync revoke --yes"))
    status = " ".join(synced.ok(world.run(ADMIN, "exsync status")).output.split())
    assert "Authentication: missing" in status and "exsync auth graph" in status
    rows = json.loads(synced.ok(world.run(ADMIN, "exsync --json status")).stdout)
    assert {row["next_run"] for row in rows if row["enabled"]} == {"not scheduled (no authentication)"}
    assert {row["credentials"] for row in rows} == {"none (not authenticated)"}
    dashboard = json.loads(synced.ok(world.run(ADMIN, "exsync --json dashboard")).stdout)
    assert dashboard["authentication"].startswith("missing")
    assert "authentication missing" in " ".join(synced.ok(world.run(ADMIN, "exsync dashboard")).output.split())


def test_uninstall_removes_the_crm_login_as_its_help_says(synced: Org):
    world = synced.world
    assert "CRM login" in world.invoke(["uninstall", "--help"]).output
    result = synced.ok(world.run(ADMIN, "exsync uninstall --yes"))
    assert "CRM login(s) are removed" in " ".join(result.output.split())
    assert world.vault_names("crm/login/") == [] and world.vault_names("auth/") == []
    assert world.state.get_setting("crm_login_user") is None
    again = world.run(ADMIN, "exsync status")
    assert again.exit_code == 1 and "has not logged in to the CRM" in again.output
