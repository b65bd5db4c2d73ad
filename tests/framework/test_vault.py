"""The secret vault: encrypted at rest, keyed from the environment or a 0600 key file, never shown."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.fernet import Fernet
from test_state import BACKENDS, database_url  # type: ignore[import-not-found]

import framework.commands  # noqa: F401  (registers the built-in commands on ``cli``)
from framework import context as context_module
from framework.audit import AuditLog
from framework.cli import ExsyncGroup, cli
from framework.cli_support import Options, pass_context, say
from framework.context import Context
from framework.contracts import CRM_LOGIN_PREFIX
from framework.errors import ConfigurationError
from framework.host import build_host
from framework.state import StateStore, User
from framework.vault import REDACTED, REDACTOR, RedactingFilter, Vault, install_log_redaction, load_key

KEY = Fernet.generate_key()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """A vault installs log redaction process-wide; leave logging as the test found it."""
    factory = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(factory)
    for handler in [*logging.getLogger().handlers, logging.lastResort]:
        for log_filter in [f for f in handler.filters if isinstance(f, RedactingFilter)] if handler else []:
            handler.removeFilter(log_filter)


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


@pytest.fixture
def store(url: str) -> Iterator[StateStore]:
    store = StateStore(url)
    yield store
    store.engine.dispose()


@pytest.fixture
def vault(store: StateStore) -> Vault:
    return Vault(store, key=KEY)


def ciphertext(store: StateStore, name: str) -> bytes:
    with store.engine.connect() as conn:
        return bytes(conn.execute(sa.text("SELECT ciphertext FROM secrets WHERE name = :n"), {"n": name}).scalar_one())


# -- storing and reading ----------------------------------------------------------------------
def test_put_and_get_a_string_and_a_dict(vault):
    vault.put("auth/ews-basic/u1/password", "hunter2-long")
    vault.put("crm/login/u1", {"refresh_token": "1000.abc", "client_id": "cid-1"})
    assert vault.get("auth/ews-basic/u1/password") == "hunter2-long"
    assert vault.get_json("crm/login/u1") == {"refresh_token": "1000.abc", "client_id": "cid-1"}
    assert vault.get("missing") is None and vault.get_json("missing") is None


def test_put_replaces_the_earlier_value(vault):
    vault.put("a/b", "first-value")
    vault.put("a/b", "second-value")
    assert vault.get("a/b") == "second-value"
    assert vault.names() == ["a/b"]


def test_names_lists_by_prefix_and_delete_prefix_counts(vault):
    for name in ("auth/ews/u1/password", "auth/ews/u2/password", "auth/graph/app", "crm/login/u1"):
        vault.put(name, f"value-of-{name}")
    assert vault.names() == ["auth/ews/u1/password", "auth/ews/u2/password", "auth/graph/app", "crm/login/u1"]
    assert vault.names("auth/ews/") == ["auth/ews/u1/password", "auth/ews/u2/password"]
    assert vault.delete_prefix("auth/") == 3
    assert vault.names() == ["crm/login/u1"]
    assert vault.delete_prefix("auth/") == 0


@pytest.mark.parametrize("prefix", ["auth/u_1/", "auth/u%1/", "AUTH/u11/"])
def test_prefixes_match_literally_and_case_sensitively(vault, prefix):
    # LIKE would read _ and % as wildcards, and SQLite's LIKE ignores case: another user's
    # credentials would be listed and deleted with these.
    vault.put("auth/u11/password", "other-users-password")
    assert vault.names(prefix) == []
    assert vault.delete_prefix(prefix) == 0
    assert vault.get("auth/u11/password") == "other-users-password"


def test_a_prefix_with_wildcard_characters_still_matches_itself(vault):
    vault.put("auth/u_1/password", "pw-of-u_1")
    vault.put("auth/u%1/password", "pw-of-u%1")
    assert vault.names("auth/u_1/") == ["auth/u_1/password"]
    assert vault.delete_prefix("auth/u%1/") == 1
    assert vault.names() == ["auth/u_1/password"]


def test_ciphertext_at_rest_does_not_contain_the_plaintext(vault, store, url, tmp_path):
    secret = "correct-horse-battery-staple"
    vault.put("auth/x", secret)
    vault.put("auth/y", {"password": secret})
    for name in ("auth/x", "auth/y"):
        token = ciphertext(store, name)
        assert secret.encode() not in token
        assert Fernet(KEY).decrypt(token).decode() in (secret, json.dumps({"password": secret}))
    if url.startswith("sqlite"):
        store.engine.dispose()
        files = list(tmp_path.glob("state.db*"))  # the database and its write-ahead log
        assert files and all(secret.encode() not in path.read_bytes() for path in files)


# -- keys -------------------------------------------------------------------------------------
def test_the_key_comes_from_exsync_key(store, monkeypatch):
    monkeypatch.setenv("EXSYNC_KEY", KEY.decode())
    Vault(store).put("auth/x", "from-the-env-key")
    assert Fernet(KEY).decrypt(ciphertext(store, "auth/x")) == b"from-the-env-key"


@pytest.mark.parametrize("where", ["EXSYNC_HOME", "EXSYNC_KEY_FILE"])
def test_without_exsync_key_a_key_file_is_created_0600_and_reused(store, monkeypatch, tmp_path, where):
    monkeypatch.delenv("EXSYNC_KEY")
    monkeypatch.delenv("EXSYNC_KEY_FILE", raising=False)
    if where == "EXSYNC_HOME":
        monkeypatch.setenv("EXSYNC_HOME", str(tmp_path / "home"))
        path = tmp_path / "home" / "key"
    else:
        path = tmp_path / "elsewhere" / "exsync.key"
        monkeypatch.setenv("EXSYNC_KEY_FILE", str(path))
    umask = os.umask(0)  # even a permissive umask must not widen the key file
    try:
        Vault(store).put("auth/x", "kept-in-a-key-file")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert Fernet(path.read_bytes()).decrypt(ciphertext(store, "auth/x")) == b"kept-in-a-key-file"
    assert load_key() == path.read_bytes()
    assert Vault(store).get("auth/x") == "kept-in-a-key-file"  # a later process finds the same key


def test_a_wrong_key_is_a_configuration_error_naming_the_secret(vault, store):
    vault.put("auth/ews-basic/u1/password", "only-the-old-key-opens-this")
    with pytest.raises(ConfigurationError) as error:
        Vault(store, key=Fernet.generate_key()).get("auth/ews-basic/u1/password")
    assert "auth/ews-basic/u1/password" in error.value.message
    assert "EXSYNC_KEY" in error.value.hint
    assert "only-the-old-key-opens-this" not in str(error.value)


@pytest.mark.parametrize("bad", ["not-a-key", Fernet.generate_key().decode()[:-4], "é" * 44])
def test_an_invalid_exsync_key_is_a_configuration_error(store, monkeypatch, bad):
    monkeypatch.setenv("EXSYNC_KEY", bad)
    with pytest.raises(ConfigurationError, match="EXSYNC_KEY is not a valid key"):
        Vault(store)


def test_an_invalid_key_file_is_a_configuration_error_naming_the_file(store, monkeypatch, tmp_path):
    path = tmp_path / "broken.key"
    path.write_text("garbage")
    monkeypatch.delenv("EXSYNC_KEY")
    monkeypatch.setenv("EXSYNC_KEY_FILE", str(path))
    with pytest.raises(ConfigurationError, match=r"broken\.key"):
        Vault(store)


# -- never shown ------------------------------------------------------------------------------
SECRETS = ["Pl41n-s3cret-value", 'quo"te\\back-släsh-ünïcode']


def forms(secret: str) -> list[str]:
    """The secret as it would appear printed, or inside JSON with or without ASCII escapes."""
    return [secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]]


def leaks(text: str, secret: str) -> list[str]:
    return [form for form in forms(secret) if form in text]


def raw_audit_rows(store: StateStore) -> str:
    with store.engine.connect() as conn:
        return repr(conn.execute(sa.text("SELECT * FROM audit")).all())


def one_of_each_log_path(secret: str, monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Log ``secret`` through a root handler, a handler added later, and the last resort."""
    logger = logging.getLogger("exsync.test.vault")
    logger.warning("logging in with %s", secret)
    logger.error(f"the server said {secret}")
    try:
        raise RuntimeError(f"401 for password {secret}")
    except RuntimeError:
        logger.exception("login failed")
    late = io.StringIO()
    handler = logging.StreamHandler(late)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        logger.error("a handler added later sees %s", secret)
        try:
            raise ValueError(secret)
        except ValueError:
            logger.exception("and a traceback")
    finally:
        logger.removeHandler(handler)
    unhandled = logging.getLogger("exsync.test.unhandled")
    monkeypatch.setattr(unhandled, "propagate", False)  # nothing handles it: logging's last resort, stderr
    unhandled.error("last resort sees %s", secret)
    return late


@pytest.mark.parametrize("secret", SECRETS, ids=["plain", "quote-backslash-unicode"])
def test_no_secret_reaches_stdout_stderr_logs_or_the_audit_table(store, url, secret, caplog, capsys, monkeypatch):
    caplog.set_level(logging.DEBUG)
    Vault(store, key=KEY).put("auth/ews-basic/u1/login", {"username": "u1-login", "password": secret})
    install_log_redaction()

    # logs: root handlers (caplog), a handler added afterwards, the last-resort stderr handler
    late = one_of_each_log_path(secret, monkeypatch)
    assert "logging in with " + REDACTED in caplog.text
    assert "Traceback" in caplog.text and "401 for password " + REDACTED in caplog.text
    assert not leaks(caplog.text, secret)
    assert not [r for r in caplog.records if leaks(r.getMessage(), secret)]
    assert "later sees " + REDACTED in late.getvalue() and "ValueError: " + REDACTED in late.getvalue()
    assert not leaks(late.getvalue(), secret)

    # the audit table, read raw, and what observers receive
    observed = []
    audit = AuditLog(store, observers=lambda event: observed.append(event))
    audit.record(
        "authenticate",
        "failed",
        actor="admin@example.com",
        user_id="u1",
        password=secret,
        error=f"server said: {secret}",
        nested={"tokens": [secret, {"refresh": secret}]},
    )
    assert not leaks(raw_audit_rows(store), secret)
    assert not leaks(json.dumps(observed[0].detail), secret) and not leaks(repr(observed[0]), secret)
    assert observed[0].detail["password"] == REDACTED
    assert observed[0].detail["error"] == f"server said: {REDACTED}"

    # the command line: the audit log as a table and as JSON, and an error through fail()
    store.upsert_users([User("u1", "admin@example.com", "Ada", is_admin=True)])
    Vault(store, key=KEY).put(CRM_LOGIN_PREFIX + "u1", {"refresh_token": "1000.refresh-token-of-u1"})
    monkeypatch.setattr(context_module, "build_host", lambda: build_host(entry_points=False))
    runner = CliRunner()
    for args in (["audit"], ["--json", "audit"]):
        result = runner.invoke(cli, ["--state", url, "--as", "u1", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "authenticate" in result.stdout
        assert not leaks(result.stdout, secret) and not leaks(result.stderr, secret)
    (entry,) = json.loads(result.stdout)
    assert entry["detail"]["error"] == f"server said: {REDACTED}"

    @click.group(cls=ExsyncGroup)
    @click.pass_context
    def group(click_ctx: click.Context) -> None:
        click_ctx.obj = Options(url, False, None, None)

    @group.command()
    @pass_context
    def reveal(ctx: Context) -> None:
        say("reading the login")
        Vault(ctx.state, key=Fernet.generate_key()).get("auth/ews-basic/u1/login")

    result = runner.invoke(group, ["reveal"])
    assert result.exit_code == 1
    assert "auth/ews-basic/u1/login" in result.stderr and "reading the login" in result.stdout
    assert not leaks(result.stdout, secret) and not leaks(result.stderr, secret)

    captured = capsys.readouterr()
    assert "last resort sees " + REDACTED in captured.err
    assert not leaks(captured.out, secret) and not leaks(captured.err, secret)


def test_a_secret_read_back_in_a_new_process_is_redacted_too(vault, monkeypatch, caplog):
    secret = "read-back-token-value"
    vault.put("auth/graph/app", {"client_secret": secret, "scopes": [secret + "-in-a-list"]})
    monkeypatch.setattr(REDACTOR, "_secrets", set())  # a fresh process knows no secret yet
    assert REDACTOR(secret) == secret
    fresh = Vault(vault._state, key=KEY)
    assert fresh.get_json("auth/graph/app") is not None
    assert REDACTOR(f"x {secret} y") == f"x {REDACTED} y"
    assert REDACTOR(f"{secret}-in-a-list") == REDACTED
    logging.getLogger("exsync.test.vault").warning("token %s", secret)
    assert secret not in caplog.text and REDACTED in caplog.text


def test_very_short_values_are_not_treated_as_secrets():
    REDACTOR.add("abc")
    assert REDACTOR("abc abc") == "abc abc"
