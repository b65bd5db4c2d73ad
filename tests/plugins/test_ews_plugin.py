"""The EWS plugin against the fake EWS: authentication set-up, every side, batching, errors, echo."""

from __future__ import annotations

import base64
import dataclasses
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.fernet import Fernet
from exchangelib import Task as NativeTask
from exchangelib.protocol import Protocol

import framework.commands  # noqa: F401  (registers the built-in commands, the 'auth' group among them)
import plugins.conflicts
import plugins.entities
import plugins.ews
from fakes.ews import EwsApi
from fakes.server import FakeCA, FakeServer
from fakes.tenant import Tenant
from framework import hookimpl
from framework.cli import cli
from framework.context import Context
from framework.contracts import CRM_LOGIN_PREFIX, Create, CrmUser, Delete, Item, Update, Window
from framework.engine import Engine
from framework.errors import (
    AuthenticationFailed,
    ConfigurationError,
    NotAllowed,
    RecordRejected,
    SyncStateLost,
    TransientError,
)
from framework.host import Host
from framework.model import Contact, Event, Task, content_hash
from framework.state import User, audit_table, secrets_table
from framework.testing import MemoryWorld
from plugins.ews import auth
from plugins.ews.auth import EwsLogin, EwsServer
from plugins.ews.cli import COMMANDS
from plugins.ews.store import EwsStore, FolderSide
from plugins.ews.tls import _ChunkedResponse

DOMAIN = "contoso.example"
ADMIN = User("u1", f"admin@{DOMAIN}", "Ada Admin", "CEO", "Administrator", is_admin=True, enabled=True)
BOB = User("u2", f"bob@{DOMAIN}", "Bob", "Sales", "Standard", enabled=True)
PASSWORDS = {"admin": "Adm1n-Secret!", "bob": "B0b-Secret!", "svc": "Svc-Secret-42", "boss": "B0ss-Secret!"}
WINDOW = Window.months_back(6)


# fixtures -----------------------------------------------------------------------------------------
@dataclasses.dataclass
class Exchange:
    """A tenant served by the fake EWS over TLS."""

    tenant: Tenant
    api: EwsApi
    server: FakeServer
    ca: FakeCA

    @property
    def endpoint(self) -> str:
        return f"{self.server.base_url}/EWS/Exchange.asmx"


def _tenant() -> Tenant:
    tenant = Tenant(domain=DOMAIN)
    tenant.add_user(ADMIN.email, ADMIN.name, PASSWORDS["admin"])
    tenant.add_user(BOB.email, BOB.name, PASSWORDS["bob"])
    tenant.add_user(f"svc@{DOMAIN}", "Sync service", PASSWORDS["svc"], can_impersonate=True)
    tenant.add_user(f"boss@{DOMAIN}", "Boss", PASSWORDS["boss"])
    return tenant


def _serve(tmp_path: Path, version: str = "Exchange2016", tls: bool = True) -> Iterator[Exchange]:
    ca = FakeCA(tmp_path / "ca")
    tenant = _tenant()
    api = EwsApi(tenant, version=version)
    server = FakeServer(api, ca=ca if tls else None).start()
    try:
        yield Exchange(tenant, api, server, ca)
    finally:
        server.stop()


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[Exchange]:
    yield from _serve(tmp_path)


def _host(*extra: Any) -> Host:
    host = Host()
    for plugin in (plugins.ews, plugins.entities, plugins.conflicts, *extra):
        host.pm.register(plugin)
    return host


def _context(tmp_path: Path, exchange: Exchange | None, acting_as: str = "u1", *extra: Any) -> Context:
    ca_bundle = str(exchange.ca.bundle_path) if exchange else None
    ctx = Context(f"sqlite:///{tmp_path / 'state.db'}", host=_host(*extra), acting_as=acting_as, ca_bundle=ca_bundle)
    ctx.state.upsert_users([ADMIN, BOB])
    for user in (ADMIN, BOB):  # each has logged in to the CRM on this machine
        ctx.vault.put(f"{CRM_LOGIN_PREFIX}{user.crm_id}", f"crm-refresh-token-of-{user.crm_id}")
    if ctx.state.get_setting("installed") is None:
        ctx.state.set_settings({"installed": True, "scope": "all"})
    return ctx


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXSYNC_KEY", Fernet.generate_key().decode())


@pytest.fixture
def ctx(tmp_path: Path, exchange: Exchange) -> Context:
    return _context(tmp_path, exchange)


def _server(exchange: Exchange, version: str = "auto") -> EwsServer:
    return EwsServer(exchange.endpoint, *auth.declared_version(version))


def _svc(password: str = PASSWORDS["svc"]) -> EwsLogin:
    return EwsLogin(f"svc@{DOMAIN}", password)


@pytest.fixture
def store(ctx: Context, exchange: Exchange) -> Iterator[EwsStore]:
    """An impersonation store on Ada's mailbox."""
    auth.setup_impersonation(ctx, _server(exchange), _svc())
    with _opened(ctx) as opened:
        yield opened


@contextmanager
def _opened(ctx: Context, user: User = ADMIN) -> Iterator[EwsStore]:
    opened = ctx.exchange(user)
    assert isinstance(opened, EwsStore)
    try:
        yield opened
    finally:
        opened.close()


def _record(item: Item) -> Any:
    """The record of an item, untyped for brevity in assertions."""
    return item.record


def _audit_text(ctx: Context) -> str:
    with ctx.state.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_table)).all()
    return "\n".join(str(tuple(row)) for row in rows)


def _run(ctx: Context, exchange: Exchange, *args: str, acting_as: str = "u1", ca: bool = True) -> Any:
    """``exsync`` on the command line, with the plugin's commands mounted."""
    auth_group = cli.commands["auth"]
    assert hasattr(auth_group, "add_command")
    for command in COMMANDS:
        auth_group.add_command(command)
    options = ["--state", ctx.state.url, "--as", acting_as]
    if ca:
        options += ["--ca-bundle", str(exchange.ca.bundle_path)]
    return CliRunner().invoke(cli, [*options, *args], catch_exceptions=False)


@pytest.fixture
def plain_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI contexts load only the plugins under test, whatever else is installed."""
    monkeypatch.setattr("framework.context.build_host", _host)


# authentication: basic, individual credentials (B10, B11, B32) ----------------------------------
@pytest.mark.usefixtures("plain_host")
def test_individual_credentials_are_verified_then_stored_and_never_shown(ctx: Context, exchange: Exchange) -> None:
    chosen = _run(ctx, exchange, "auth", "ews", "--endpoint", exchange.endpoint, "--individual")
    assert chosen.exit_code == 0, chosen.output
    stored = _run(ctx, exchange, "auth", "ews", "--password", PASSWORDS["bob"], acting_as="u2")
    assert stored.exit_code == 0, stored.output

    provider = auth.EwsBasic()
    login = provider.login(ctx, BOB)
    assert login == EwsLogin(BOB.email, PASSWORDS["bob"])
    settings = ctx.settings
    assert (settings.auth_method, settings.impersonation_choice) == ("ews-basic", "individual")
    assert EwsServer.load(ctx).build.startswith("15.1.")  # detected from the server
    for text in (chosen.output, stored.output, _audit_text(ctx)):
        assert PASSWORDS["bob"] not in text
    with ctx.state.engine.connect() as conn:
        ciphertexts = [row.ciphertext for row in conn.execute(sa.select(secrets_table))]
    assert ciphertexts and all(PASSWORDS["bob"].encode() not in c for c in ciphertexts)
    events = ctx.audit.query(action="authenticate")
    assert [(e.outcome, e.user_id) for e in events] == [("ok", "u2")]


def test_password_prompt_is_hidden(ctx: Context, exchange: Exchange, plain_host: None) -> None:
    auth.choose_individual(ctx, _server(exchange))
    auth_group = cli.commands["auth"]
    for command in COMMANDS:
        auth_group.add_command(command)  # type: ignore[attr-defined]
    args = ["--state", ctx.state.url, "--as", "u2", "--ca-bundle", str(exchange.ca.bundle_path), "auth", "ews"]
    result = CliRunner().invoke(cli, args, input=PASSWORDS["bob"] + "\n", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert PASSWORDS["bob"] not in result.output
    assert auth.EwsBasic().has_credentials(ctx, BOB)


def test_wrong_password_is_refused_and_nothing_is_stored(ctx: Context, exchange: Exchange) -> None:
    auth.choose_individual(ctx, _server(exchange))
    with pytest.raises(AuthenticationFailed, match="refused the user name or password"):
        auth.store_user_login(ctx, "me", lambda user: EwsLogin(user.address, "wrong-password"))
    assert not auth.EwsBasic().has_credentials(ctx, ADMIN)
    assert [e.outcome for e in ctx.audit.query(action="authenticate")] == ["failed"]
    assert "wrong-password" not in _audit_text(ctx)


def test_a_non_admin_may_store_only_their_own_credentials(tmp_path: Path, ctx: Context, exchange: Exchange) -> None:
    auth.choose_individual(ctx, _server(exchange))
    as_bob = _context(tmp_path, exchange, "u2")
    with pytest.raises(NotAllowed):
        auth.store_user_login(as_bob, ADMIN.email, lambda user: EwsLogin(user.address, PASSWORDS["admin"]))
    with pytest.raises(NotAllowed):
        auth.choose_individual(as_bob, _server(exchange))
    auth.store_user_login(as_bob, None, lambda user: EwsLogin(user.address, PASSWORDS["bob"]))
    assert auth.EwsBasic().has_credentials(ctx, BOB)


def test_ews_disabled_is_reported_as_such(ctx: Context, exchange: Exchange) -> None:
    exchange.api.enabled = False
    with pytest.raises(ConfigurationError, match="EWS is disabled"):
        auth.setup_impersonation(ctx, _server(exchange), _svc())
    assert ctx.settings.impersonation_choice == ""


def test_an_untrusted_certificate_points_at_ca_bundle(tmp_path: Path, exchange: Exchange) -> None:
    ctx = _context(tmp_path, None)  # no --ca-bundle: REQUESTS_CA_BUNDLE / the system store does not know the CA
    with pytest.raises(ConfigurationError, match="not trusted") as caught:
        auth.setup_impersonation(ctx, _server(exchange), _svc())
    assert "--ca-bundle" in caught.value.hint


def test_an_unreachable_server_is_reported(ctx: Context, exchange: Exchange) -> None:
    exchange.server.stop()
    with pytest.raises(ConfigurationError, match="Cannot reach"):
        auth.setup_impersonation(ctx, _server(exchange), _svc())


@pytest.mark.usefixtures("plain_host")
def test_plain_http_needs_insecure_http(tmp_path: Path) -> None:
    for exchange in _serve(tmp_path, tls=False):
        ctx = _context(tmp_path, exchange)
        args = ["auth", "ews", "--endpoint", exchange.endpoint, "--impersonation", "--email", f"svc@{DOMAIN}"]
        refused = _run(ctx, exchange, *args, "--password", PASSWORDS["svc"])
        assert refused.exit_code == 1
        assert "plain http" in refused.output
        assert ctx.settings.auth_method == ""
        accepted = _run(ctx, exchange, *args, "--password", PASSWORDS["svc"], "--insecure-http")
        assert accepted.exit_code == 0, accepted.output
        assert ctx.settings.auth_method == "ews-impersonation"


@pytest.mark.parametrize("host", ["outlook.office365.com", "eur01.outlook.office365.com", "outlook.office.com"])
def test_microsoft_365_endpoints_are_refused(host: str) -> None:  # B03
    with pytest.raises(ConfigurationError, match="Microsoft 365") as caught:
        auth.check_endpoint(f"https://{host}/EWS/Exchange.asmx")
    assert "October 2026" in caught.value.message
    assert "exsync auth graph" in caught.value.hint


def test_the_endpoint_path_defaults_to_ews() -> None:
    assert auth.check_endpoint("https://mail.example.com") == "https://mail.example.com/EWS/Exchange.asmx"


# versions (B09) -----------------------------------------------------------------------------------
SERVER_OF = {"2007": "Exchange2007_SP1", "2010": "Exchange2010", "2013": "Exchange2013", "2016": "Exchange2016"}
API_OF = {"2007": "Exchange2007", "2010": "Exchange2010", "2013": "Exchange2013", "2016": "Exchange2016"}


@pytest.mark.parametrize("declared", list(SERVER_OF))
def test_a_declared_version_is_used_as_is(tmp_path: Path, declared: str) -> None:
    for exchange in _serve(tmp_path, version=SERVER_OF[declared]):
        ctx = _context(tmp_path, exchange)
        server = auth.setup_impersonation(ctx, _server(exchange, declared), _svc())
        assert server.api_version == API_OF[declared]
        with _opened(ctx) as opened:
            assert opened.account.version.api_version == API_OF[declared]
            assert opened.side("contacts").read(None, WINDOW).items == []


@pytest.mark.parametrize("release", list(SERVER_OF))
def test_the_version_is_detected_from_the_server(tmp_path: Path, release: str) -> None:
    for exchange in _serve(tmp_path, version=SERVER_OF[release]):
        ctx = _context(tmp_path, exchange)
        server = auth.setup_impersonation(ctx, _server(exchange, "auto"), _svc())
        expected = exchange.api.version
        assert server.build.split(".")[:2] == [str(expected.major), str(expected.minor)]
        assert f"Exchange Server {release}" in server.product
        assert EwsServer.load(ctx) == server


# impersonation (B08) and the choice made once (B17) -----------------------------------------------
def test_impersonation_is_verified_by_an_impersonated_call(ctx: Context, exchange: Exchange) -> None:
    auth.setup_impersonation(ctx, _server(exchange), _svc())
    assert (ctx.settings.auth_method, ctx.settings.impersonation_choice) == ("ews-impersonation", "impersonation")
    assert auth.EwsImpersonation().has_credentials(ctx, None)
    assert exchange.api.calls["GetFolder"] >= 2  # its own mailbox, then Ada's impersonated
    with _opened(ctx, BOB) as opened:  # any enabled user's mailbox, no personal credentials
        assert opened.account.primary_smtp_address == BOB.email
        assert opened.side("tasks").read(None, WINDOW).full


def test_impersonation_without_the_right_is_explained(ctx: Context, exchange: Exchange) -> None:
    boss = EwsLogin(f"boss@{DOMAIN}", PASSWORDS["boss"])  # a valid account without ApplicationImpersonation
    with pytest.raises(AuthenticationFailed, match="ApplicationImpersonation"):
        auth.setup_impersonation(ctx, _server(exchange), boss)
    assert ctx.settings.impersonation_choice == ""
    assert not auth.EwsImpersonation().has_credentials(ctx, None)
    assert [e.outcome for e in ctx.audit.query(action="authenticate-org")] == ["failed"]


def test_only_an_admin_sets_up_impersonation(tmp_path: Path, ctx: Context, exchange: Exchange) -> None:
    as_bob = _context(tmp_path, exchange, "u2")
    with pytest.raises(NotAllowed, match="administrator"):
        auth.setup_impersonation(as_bob, _server(exchange), _svc())
    assert [e.outcome for e in ctx.audit.query(action="authenticate-org")] == ["refused"]


@pytest.mark.usefixtures("plain_host")
def test_the_impersonation_choice_is_made_once(ctx: Context, exchange: Exchange) -> None:  # B17
    auth.setup_impersonation(ctx, _server(exchange), _svc())
    refused = _run(ctx, exchange, "auth", "ews", "--endpoint", exchange.endpoint, "--individual")
    assert refused.exit_code == 1
    assert "cannot be changed" in refused.output and "uninstall" in refused.output
    assert ctx.settings.impersonation_choice == "impersonation"
    auth.setup_impersonation(ctx, _server(exchange), _svc())  # the same choice again is fine


def test_individual_then_impersonation_is_refused(ctx: Context, exchange: Exchange) -> None:
    auth.choose_individual(ctx, _server(exchange))
    with pytest.raises(NotAllowed, match="installing it again"):
        auth.setup_impersonation(ctx, _server(exchange), _svc())
    assert ctx.settings.auth_method == "ews-basic"


# opening stores ----------------------------------------------------------------------------------------
def test_a_user_without_credentials_must_authenticate(ctx: Context, exchange: Exchange) -> None:
    auth.choose_individual(ctx, _server(exchange))
    with pytest.raises(AuthenticationFailed, match="has not stored Exchange credentials") as caught:
        ctx.exchange(BOB)
    assert "exsync auth ews --user" in caught.value.hint


def test_a_rejected_stored_password_asks_for_update_password(ctx: Context, exchange: Exchange) -> None:
    auth.choose_individual(ctx, _server(exchange))
    auth.store_user_login(ctx, None, lambda user: EwsLogin(user.address, PASSWORDS["admin"]))
    exchange.tenant.mailbox(ADMIN.email).password = "changed-on-the-server"
    with _opened(ctx) as opened, pytest.raises(AuthenticationFailed) as caught:
        opened.side("contacts").read(None, WINDOW)
    assert "exsync auth update-password" in caught.value.hint


@pytest.mark.usefixtures("plain_host")
def test_update_password_verifies_before_storing(ctx: Context, exchange: Exchange) -> None:
    auth.choose_individual(ctx, _server(exchange))
    auth.store_user_login(ctx, None, lambda user: EwsLogin(user.address, PASSWORDS["admin"]))
    exchange.tenant.mailbox(ADMIN.email).password = "N3w-Secret!"
    wrong = _run(ctx, exchange, "auth", "update-password", "--password", "not-it")
    assert wrong.exit_code == 1 and "refused" in wrong.output
    right = _run(ctx, exchange, "auth", "update-password", "--password", "N3w-Secret!")
    assert right.exit_code == 0, right.output
    assert "N3w-Secret!" not in right.output + _audit_text(ctx)
    login = auth.EwsBasic().login(ctx, ADMIN)
    assert login is not None and login.password == "N3w-Secret!"
    assert [e.outcome for e in ctx.audit.query(action="update-password")] == ["ok", "failed"]


def test_update_password_of_the_service_account(ctx: Context, exchange: Exchange) -> None:
    auth.setup_impersonation(ctx, _server(exchange), _svc())
    exchange.tenant.mailbox(f"svc@{DOMAIN}").password = "R0tated-Secret"
    assert auth.update_password(ctx, "R0tated-Secret") == f"svc@{DOMAIN}"
    with _opened(ctx) as opened:
        assert opened.side("contacts").read(None, WINDOW).items == []


# the authentication type: auto, ntlm, basic (B07, B10) --------------------------------------------------
def _with_auth(exchange: Exchange, auth_type: str) -> EwsServer:
    return dataclasses.replace(_server(exchange), auth_type=auth_type)


@pytest.mark.parametrize(
    ("basic", "chosen", "used"),
    [(True, "auto", "NTLM"), (False, "auto", "NTLM"), (False, "ntlm", "NTLM"), (True, "basic", "basic")],
)
def test_the_chosen_authentication_is_what_reaches_the_server(
    ctx: Context, exchange: Exchange, basic: bool, chosen: str, used: str
) -> None:
    exchange.api.basic_auth = basic
    server = auth.setup_impersonation(ctx, _with_auth(exchange, chosen), _svc())
    assert (server.auth_type, server.auth_used) == (chosen, used)
    assert EwsServer.load(ctx) == server
    account = auth.connect(ctx, server, _svc(), BOB.email, impersonate=True)
    assert account.protocol.config.auth_type == used  # what auto found is used without asking the server again
    auth.release_protocol(account.protocol.config)
    with _opened(ctx, BOB) as opened:  # a sync opens mailboxes the same way
        assert opened.side("tasks").read(None, WINDOW).full
    seen = exchange.api.schemes_used
    assert (seen["Basic"] > 0) == (used == "basic")
    assert (seen["NTLM"] > 0) == (used == "NTLM")


def test_a_wrong_password_over_ntlm_is_refused_by_the_handshake(ctx: Context, exchange: Exchange) -> None:
    exchange.api.basic_auth = False
    with pytest.raises(AuthenticationFailed, match="user name or password"):
        auth.setup_impersonation(ctx, _with_auth(exchange, "ntlm"), _svc("not-the-password"))
    assert not exchange.api.schemes_used  # no request was ever served
    assert not auth.EwsImpersonation().has_credentials(ctx, None)


def test_basic_switched_off_on_the_server_is_explained(ctx: Context, exchange: Exchange) -> None:
    exchange.api.basic_auth = False
    with pytest.raises(ConfigurationError, match="does not accept Basic") as caught:
        auth.setup_impersonation(ctx, _with_auth(exchange, "basic"), _svc())
    assert "--auth-type ntlm" in str(caught.value.hint)


def test_auto_against_a_server_offering_only_negotiate_names_the_way_out(ctx: Context, exchange: Exchange) -> None:
    exchange.api.basic_auth, exchange.api.windows_auth = False, ("Negotiate",)
    with pytest.raises(ConfigurationError, match="offers no authentication") as caught:
        auth.setup_impersonation(ctx, _with_auth(exchange, "auto"), _svc())
    assert "--auth-type ntlm" in str(caught.value.hint)
    server = auth.setup_impersonation(ctx, _with_auth(exchange, "ntlm"), _svc())
    assert server.auth_used == "NTLM" and exchange.api.schemes_used["Negotiate"] > 0


@pytest.mark.usefixtures("plain_host")
def test_auth_type_on_the_command_line(ctx: Context, exchange: Exchange) -> None:
    exchange.api.basic_auth = False
    args = ["auth", "ews", "--individual", "--endpoint", exchange.endpoint, "--auth-type", "ntlm"]
    result = _run(ctx, exchange, *args)
    assert result.exit_code == 0, result.output
    assert "Windows authentication (NTLM)" in result.output
    assert EwsServer.load(ctx).auth_type == "ntlm"
    own = ["auth", "ews", "--password", PASSWORDS["bob"], "--email", BOB.email]
    refused = _run(ctx, exchange, *own, "--auth-type", "basic", acting_as="u2")
    assert refused.exit_code != 0 and "only an administrator" in refused.output
    stored = _run(ctx, exchange, *own, acting_as="u2")
    assert stored.exit_code == 0, stored.output
    bad = _run(ctx, exchange, "auth", "ews", "--individual", "--endpoint", exchange.endpoint, "--auth-type", "kerberos")
    assert bad.exit_code != 0 and "kerberos" in bad.output


# the sides ----------------------------------------------------------------------------------------------
NOW = datetime.now(UTC).replace(microsecond=0)
RECORDS: dict[str, list[Any]] = {
    "contacts": [
        Contact(
            "Ann",
            "Lee",
            "ann@example.com",
            "+1 555 0100",
            "+1 555 0101",
            "Acme",
            "CTO",
            "R&D",
            "1 Main St",
            "Springfield",
            "IL",
            "62701",
            "US",
            "Met at the fair",
        ),
        Contact(last_name="Solo"),
        Contact("Cy", "Berg", "cy@example.com"),
    ],
    "tasks": [
        Task("Call Ann", date.today() + timedelta(days=3), "in_progress", "high", "About the offer"),
        Task("Send quote", None, "completed", "low"),
        Task("Plan", date.today(), "waiting"),
    ],
    "events": [
        Event(
            "Review",
            NOW + timedelta(days=1),
            NOW + timedelta(days=1, hours=1),
            False,
            "Room 1",
            "Agenda",
            ("ann@example.com", "cy@example.com"),
            "",
            "uid-review-1",
        ),
        Event(
            "Offsite",
            datetime.combine(date.today(), datetime.min.time(), UTC) + timedelta(days=7),
            datetime.combine(date.today(), datetime.min.time(), UTC) + timedelta(days=9),
            True,
        ),
        Event("Standup", NOW, NOW + timedelta(minutes=15), recurrence="FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=30"),
        Event(
            "Monthly", NOW, NOW + timedelta(hours=1), recurrence="FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=5;UNTIL=20991231"
        ),
        Event("Daily", NOW, NOW + timedelta(hours=1), recurrence="FREQ=DAILY;INTERVAL=3"),
    ],
}


@pytest.mark.parametrize("entity", list(RECORDS))
def test_full_read_then_incremental_changes(store: EwsStore, entity: str) -> None:
    side = store.side(entity)
    first, second, third, *_ = RECORDS[entity]
    created = side.write([Create(first, "crm-1"), Create(second, "crm-2")])
    assert all(r.ok for r in created), created
    full = side.read(None, WINDOW)
    assert full.full and not full.deleted
    assert sorted(i.id for i in full.items) == sorted(str(r.id) for r in created)

    other_client = FolderSide(store, entity)  # a read lists what others changed (its own writes it knows)
    changed = other_client.write([Update(str(created[0].id), third, "crm-1"), Delete(str(created[1].id))])
    added = other_client.write([Create(second, "crm-3")])
    delta = side.read(full.cursor, WINDOW)
    assert not delta.full
    assert {i.id: i.link for i in delta.items} == {changed[0].id: "crm-1", added[0].id: "crm-3"}
    assert delta.deleted == [created[1].id]
    assert side.read(delta.cursor, WINDOW).items == []


def test_exchangelib_parses_answers_from_whole_chunks_not_single_bytes(
    store: EwsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    iter_slices = requests.models.iter_slices  # what iter_content() uses over a body already read

    def spy(body: Any, size: int) -> Any:
        sizes.append(size)
        return iter_slices(body, size)

    monkeypatch.setattr(requests.models, "iter_slices", spy)
    side = store.side("contacts")
    contacts = [Create(Contact(last_name=f"N{n}"), f"crm-{n}") for n in range(20)]
    assert all(r.ok for r in side.write(contacts))
    assert len(side.read(None, WINDOW).items) == 20
    assert sizes and min(sizes) > 1000  # exchangelib asks for one byte at a time unless told otherwise


def test_a_streamed_answer_is_still_given_as_it_arrives() -> None:
    response = requests.Response()
    response.raw = io.BytesIO(b"<a/>")
    response.__class__ = _ChunkedResponse
    assert list(response.iter_content()) == [b"<", b"a", b"/", b">"]  # not held back to fill 64 KiB


@pytest.mark.parametrize("entity", list(RECORDS))
def test_echo_equals_what_is_read_back(store: EwsStore, entity: str) -> None:
    side = store.side(entity)
    results = side.write([Create(record, f"crm-{n}") for n, record in enumerate(RECORDS[entity])])
    assert all(r.ok for r in results), results
    read = {i.id: i for i in side.read(None, WINDOW).items}
    for n, (record, result) in enumerate(zip(RECORDS[entity], results, strict=True)):
        item = read[str(result.id)]
        echoed: Any = side.echo(record)
        if entity == "events" and not record.ical_uid:
            echoed = dataclasses.replace(echoed, ical_uid=_record(item).ical_uid)  # Exchange assigns one
        assert content_hash(echoed) == content_hash(item.record), (echoed, item.record)
        assert item.link == f"crm-{n}"


def test_updates_clear_fields_and_move_the_cross_link(store: EwsStore) -> None:
    side = store.side("contacts")
    (created,) = side.write([Create(RECORDS["contacts"][0], "crm-1")])
    bare = Contact("Ann", "Lee")
    (updated,) = side.write([Update(str(created.id), bare, "crm-9")])
    assert updated.ok and updated.id == created.id
    (item,) = side.read(None, WINDOW).items
    assert item.record == side.echo(bare) == bare
    assert item.link == "crm-9"


def test_events_ended_before_the_window_are_skipped_unless_recurring(store: EwsStore) -> None:
    side = store.side("events")
    old = NOW - timedelta(days=400)
    side.write(
        [
            Create(Event("Old", old, old + timedelta(hours=1)), "crm-old"),
            Create(Event("Old series", old, old + timedelta(hours=1), recurrence="FREQ=DAILY"), "crm-series"),
            Create(Event("Soon", NOW, NOW + timedelta(hours=1)), "crm-soon"),
        ]
    )
    assert sorted(_record(i).subject for i in side.read(None, WINDOW).items) == ["Old series", "Soon"]


def test_an_invalid_sync_state_means_sync_state_lost(store: EwsStore, exchange: Exchange) -> None:
    side = store.side("contacts")
    cursor = side.read(None, WINDOW).cursor
    exchange.api.invalidate_sync_states()
    with pytest.raises(SyncStateLost):
        side.read(cursor, WINDOW)
    with pytest.raises(SyncStateLost):
        store.side("mails").read("not json", WINDOW)


def test_writes_are_batched_one_call_per_operation_kind(store: EwsStore, exchange: Exchange) -> None:
    side = store.side("contacts")
    assert isinstance(side, FolderSide)
    side.read(None, WINDOW)  # the folder lookups happen once
    contacts = [Contact(f"P{n}", "Batch", f"p{n}@example.com") for n in range(100)]
    before = exchange.server.requests
    created = side.write([Create(c, f"crm-{n}") for n, c in enumerate(contacts)])
    assert exchange.server.requests - before == 1
    assert all(r.ok for r in created), created

    before = exchange.server.requests
    ops = [
        Update(str(r.id), dataclasses.replace(c, title="Buyer"), "x")
        for r, c in zip(created[:50], contacts[:50], strict=True)
    ]
    results = side.write([*ops, *(Delete(str(r.id)) for r in created[50:])])
    assert exchange.server.requests - before == 2  # one UpdateItem, one DeleteItem
    assert all(r.ok for r in results)
    assert exchange.api.calls["CreateItem"] == 1 and exchange.api.calls["DeleteItem"] == 1


def test_a_rejected_record_does_not_fail_its_batch(store: EwsStore) -> None:
    side = store.side("contacts")
    results = side.write(
        [
            Create(Contact("Good", "One", "good@example.com"), "crm-1"),
            Create(Contact("Bad", "Address", "not-an-address"), "crm-2"),
            Create(Contact("Good", "Two"), "crm-3"),
            Create(Contact("Also", "Good"), "crm-4"),
        ]
    )
    assert [r.ok for r in results] == [True, False, True, True]
    assert isinstance(results[1].error, RecordRejected)
    assert len(side.read(None, WINDOW).items) == 3


def test_a_record_exchange_cannot_hold_is_rejected_locally(store: EwsStore, exchange: Exchange) -> None:
    side = store.side("events")
    before = exchange.api.calls["CreateItem"]
    results = side.write(
        [
            Create(Event("No time"), "crm-1"),
            Create(Event("Triennial", NOW, NOW, recurrence="FREQ=YEARLY;INTERVAL=3"), "c"),
        ]
    )
    assert all(isinstance(r.error, RecordRejected) for r in results)
    assert exchange.api.calls["CreateItem"] == before  # nothing worth sending


def test_an_item_failing_its_check_is_rejected_and_the_rest_of_its_batch_sent_once(
    store: EwsStore, exchange: Exchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    side = store.side("tasks")
    checked: list[str] = []
    check = NativeTask.clean

    def clean(item: Any, version: Any = None) -> None:
        checked.append(item.subject)
        if item.subject == "Unholdable":
            raise ValueError("no such thing")
        check(item, version=version)

    monkeypatch.setattr(NativeTask, "clean", clean)
    before = exchange.api.calls["CreateItem"]
    results = side.write([Create(Task("First"), "c1"), Create(Task("Unholdable"), "c2"), Create(Task("Last"), "c3")])
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, RecordRejected) and "no such thing" in results[1].error.message
    assert exchange.api.calls["CreateItem"] == before + 1  # the failed build sent nothing
    assert sorted(i.record.subject for i in side.read(None, WINDOW).items) == ["First", "Last"]  # type: ignore[attr-defined]
    assert checked.count("First") == 3  # built, checked alone, built again: the check runs only on failure


def test_deleting_an_item_already_gone_succeeds(store: EwsStore) -> None:
    side = store.side("tasks")
    (created,) = side.write([Create(Task("Gone soon"), "crm-1")])
    assert side.write([Delete(str(created.id))])[0].ok
    assert side.write([Delete(str(created.id))]) == [created]


@pytest.mark.parametrize(("entity", "record"), [("tasks", Task("Recover me")), ("contacts", Contact("Ann", "Lee"))])
def test_deletions_go_to_deleted_items_where_the_user_can_restore_them(
    store: EwsStore, exchange: Exchange, entity: str, record: Any
) -> None:
    side = store.side(entity)
    (created,) = side.write([Create(record, "crm-1")])
    assert side.write([Delete(str(created.id))])[0].ok
    box = exchange.tenant.mailbox(ADMIN.email)
    (kept,) = exchange.tenant.items(box, "deleteditems")
    assert kept.origin == {"tasks": "tasks", "contacts": "contacts"}[entity]
    assert not exchange.tenant.items(box, kept.origin)
    assert side.read(None, WINDOW).items == []  # what is in Deleted Items is not read back as a record


def test_server_busy_is_transient_with_its_back_off(store: EwsStore, exchange: Exchange) -> None:
    side = store.side("tasks")
    side.read(None, WINDOW)
    exchange.api.throttle(1, 2500)
    with pytest.raises(TransientError) as caught:
        side.read(None, WINDOW)
    assert caught.value.retry_after == 2.5
    exchange.api.throttle(1, 1500)
    (result,) = side.write([Create(Task("Later"), "crm-1")])
    assert isinstance(result.error, TransientError) and result.error.retry_after == 1.5
    assert side.write([Create(Task("Later"), "crm-1")])[0].ok


def test_mails_are_read_from_inbox_and_sent_items(store: EwsStore, exchange: Exchange) -> None:
    box = exchange.tenant.mailbox(ADMIN.email)
    sent_at = NOW - timedelta(days=1)
    exchange.tenant.create(
        box,
        "inbox",
        _message(
            "<m1@example.com>",
            "Hello",
            "ann@example.com",
            [ADMIN.email],
            sent_at,
            attachment=("offer.pdf", "JVBERi0xLjQK"),
        ),
    )
    exchange.tenant.create(
        box, "sentitems", _message("<m2@example.com>", "Re: Hello", ADMIN.email, ["ann@example.com"], sent_at)
    )
    side = store.side("mails")
    full = side.read(None, WINDOW)
    assert full.full
    mails = {_record(i).message_id: _record(i) for i in full.items}
    assert mails["<m1@example.com>"].folder == "inbox"
    assert mails["<m1@example.com>"].sender == "ann@example.com"
    assert mails["<m1@example.com>"].to == (ADMIN.email,)
    assert mails["<m1@example.com>"].sent_at == sent_at
    assert [a.name for a in mails["<m1@example.com>"].attachments] == ["offer.pdf"]
    assert mails["<m2@example.com>"].folder == "sentitems"
    exchange.tenant.create(box, "inbox", _message("<m3@example.com>", "New", "cy@example.com", [ADMIN.email], NOW))
    delta = side.read(full.cursor, WINDOW)
    assert [_record(i).message_id for i in delta.items] == ["<m3@example.com>"]
    assert not side.write([Create(mails["<m2@example.com>"], "crm-1")])[0].ok  # read only


def _message(
    message_id: str, subject: str, sender: str, to: list[str], sent: datetime, attachment: tuple[str, str] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "internetMessageId": message_id,
        "subject": subject,
        "from": {"emailAddress": {"address": sender}},
        "sender": {"emailAddress": {"address": sender}},
        "toRecipients": [{"emailAddress": {"address": a}} for a in to],
        "sentDateTime": sent.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "receivedDateTime": sent.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "body": {"contentType": "text", "content": f"Body of {subject}"},
    }
    if attachment:
        name, content = attachment
        data["attachments"] = [
            {"@odata.type": "#microsoft.graph.fileAttachment", "name": name, "contentBytes": content, "size": 9}
        ]
        data["hasAttachments"] = True
    return data


# the native-adjust hook ----------------------------------------------------------------------------------
class _CopyTitle:
    """A plugin that copies a contact's job title into its department on the way to Exchange."""

    @hookimpl
    def exsync_adjust_native(self, entity: str, side: str, record: Any, native: Any) -> None:
        if entity == "contacts" and side == "exchange":
            native.department = f"Dept of {record.title}"


def test_plugins_adjust_the_native_item(tmp_path: Path, exchange: Exchange) -> None:
    ctx = _context(tmp_path, exchange, "u1", _CopyTitle())
    auth.setup_impersonation(ctx, _server(exchange), _svc())
    with _opened(ctx) as opened:
        side = opened.side("contacts")
        side.write([Create(Contact("Ann", "Lee", title="CTO"), "crm-1")])
        (item,) = side.read(None, WINDOW).items
    assert _record(item).department == "Dept of CTO"


# connections and logs --------------------------------------------------------------------------------------
def test_closing_a_store_releases_exchangelib_connections(ctx: Context, exchange: Exchange) -> None:
    auth.setup_impersonation(ctx, _server(exchange), _svc())
    with _opened(ctx) as opened:
        opened.side("contacts").read(None, WINDOW)
        config = opened.account.protocol.config
        assert Protocol[config][0] is opened.account.protocol
    with pytest.raises(KeyError):
        Protocol[config]
    assert opened.account.protocol._session_pool.qsize() == 0


def test_debug_logs_never_show_the_basic_auth_header(
    ctx: Context, exchange: Exchange, caplog: pytest.LogCaptureFixture
) -> None:
    token = base64.b64encode(f"svc@{DOMAIN}:{PASSWORDS['svc']}".encode()).decode()
    with caplog.at_level(logging.DEBUG, logger="exchangelib"):
        auth.setup_impersonation(ctx, _server(exchange), _svc())
    assert "Request headers" in caplog.text
    assert token not in caplog.text and PASSWORDS["svc"] not in caplog.text


# with the engine ------------------------------------------------------------------------------------------
def test_the_engine_syncs_into_exchange_and_then_sees_no_echo(tmp_path: Path, exchange: Exchange) -> None:
    world = MemoryWorld(users=[CrmUser("u1", ADMIN.email, ADMIN.name, "CEO", "Administrator", True)])
    ctx = _context(tmp_path, exchange, "u1", world.plugin())
    ctx.state.set_settings({"crm_connector": "memory"})
    auth.setup_impersonation(ctx, _server(exchange), _svc())
    crm_ids = {entity: [world.side("crm", "u1", entity).put(r) for r in RECORDS[entity]] for entity in RECORDS}

    engine = Engine(ctx, sleep=lambda _seconds: None)
    (first,) = engine.run([ADMIN], list(RECORDS))
    assert first.outcome == "ok", first.as_dict()
    assert all(first.entities[e].sides["exchange"].created == len(RECORDS[e]) for e in RECORDS)

    (second,) = engine.run([ADMIN], list(RECORDS))
    for entity, report in second.entities.items():
        exchange_side, crm_side = report.sides["exchange"], report.sides["crm"]
        assert (exchange_side.created, exchange_side.updated, crm_side.created) == (0, 0, 0), entity
        # an event that had no iCalUId is given one as it is created, known to its echo: nothing travels back
        assert first.entities[entity].sides["crm"].updated + crm_side.updated == 0, entity
    (third,) = engine.run([ADMIN], list(RECORDS))
    assert all(not any(vars(c).values()) for r in third.entities.values() for c in r.sides.values())
    with _opened(ctx) as opened:
        links = {i.link for i in opened.side("contacts").read(None, WINDOW).items}
    assert links == set(crm_ids["contacts"])


def test_changes_exchange_makes_by_itself_never_come_back_as_edits(tmp_path: Path, exchange: Exchange) -> None:
    """A task completed on either side: Exchange adds PercentComplete 100 and a CompleteDate, and a contact
    gets a FileAs; none of that travels back as an edit, and nothing ping-pongs on later runs."""
    world = MemoryWorld(users=[CrmUser("u1", ADMIN.email, ADMIN.name, "CEO", "Administrator", True)])
    ctx = _context(tmp_path, exchange, "u1", world.plugin())
    ctx.state.set_settings({"crm_connector": "memory"})
    auth.setup_impersonation(ctx, _server(exchange), _svc())
    crm_tasks, crm_contacts = world.side("crm", "u1", "tasks"), world.side("crm", "u1", "contacts")
    from_crm = crm_tasks.put(Task("Done in the CRM", status="completed"))
    crm_contacts.put(Contact("Ann", "Lee", "ann@example.com"))
    box = exchange.tenant.mailbox(ADMIN.email)
    from_exchange = exchange.tenant.create(box, "tasks", {"title": "Done in Outlook", "status": "notStarted"})

    engine = Engine(ctx, sleep=lambda _seconds: None)
    (first,) = engine.run([ADMIN], ["tasks", "contacts"])
    assert first.outcome == "ok", first.as_dict()
    made = {i.data["title"]: i for i in exchange.tenant.items(box, "tasks")}
    assert made["Done in the CRM"].data["completedDateTime"]  # computed by Exchange, not sent by us
    assert made["Done in the CRM"].data["_ews"]["task"]["percentComplete"] == 100
    assert exchange.tenant.items(box, "contacts")[0].data["fileAs"] == "Lee, Ann"

    with _opened(ctx) as opened:  # the user completes the task in Outlook: Exchange fills in the rest
        (native,) = [n for n in opened.account.tasks.all() if n.subject == "Done in Outlook"]
        native.status = "Completed"
        native.save(update_fields=["status"])
    (second,) = engine.run([ADMIN], ["tasks", "contacts"])
    crm_task = crm_tasks.records[next(k for k, (r, _) in crm_tasks.records.items() if r.subject == "Done in Outlook")]
    assert crm_task[0].status == "completed"
    assert second.entities["tasks"].sides["crm"].updated == 1
    writes_before = crm_tasks.writes + crm_contacts.writes
    for _ in range(2):
        (later,) = engine.run([ADMIN], ["tasks", "contacts"])
        assert all(not any(vars(c).values()) for r in later.entities.values() for c in r.sides.values())
    assert crm_tasks.writes + crm_contacts.writes == writes_before
    assert from_crm in crm_tasks.records and len(crm_tasks.records) == 2  # nothing duplicated or lost
    assert {i.id for i in exchange.tenant.items(box, "tasks")} == {made["Done in the CRM"].id, from_exchange.id}


def test_a_changed_or_cancelled_occurrence_never_becomes_a_record_of_its_own(
    tmp_path: Path, exchange: Exchange
) -> None:
    world = MemoryWorld(users=[CrmUser("u1", ADMIN.email, ADMIN.name, "CEO", "Administrator", True)])
    ctx = _context(tmp_path, exchange, "u1", world.plugin())
    ctx.state.set_settings({"crm_connector": "memory"})
    auth.setup_impersonation(ctx, _server(exchange), _svc())
    crm_events = world.side("crm", "u1", "events")
    start = NOW + timedelta(days=1)
    crm_events.put(Event("Standup", start, start + timedelta(minutes=15), recurrence="FREQ=DAILY;COUNT=10"))
    engine = Engine(ctx, sleep=lambda _seconds: None)
    (first,) = engine.run([ADMIN], ["events"])
    assert first.outcome == "ok", first.as_dict()

    with _opened(ctx) as opened:  # the user moves the 2nd occurrence and cancels the 3rd in Outlook
        (series,) = opened.account.calendar.all()
        moved = series.occurrence(index=2)
        moved.refresh()
        moved.start, moved.end = moved.start + timedelta(hours=3), moved.end + timedelta(hours=3)
        moved.save(update_fields=["start", "end"])
        series.occurrence(index=3).delete()
        shown = list(opened.account.calendar.view(start=start - timedelta(days=1), end=start + timedelta(days=12)))
        assert sorted(i.type for i in shown) == ["Exception", *["Occurrence"] * 8]
    for _ in range(2):
        (later,) = engine.run([ADMIN], ["events"])
        assert later.outcome == "ok", later.as_dict()
        crm_side, exchange_side = later.entities["events"].sides["crm"], later.entities["events"].sides["exchange"]
        assert (crm_side.created, crm_side.deleted, exchange_side.created, exchange_side.deleted) == (0, 0, 0, 0)
    (record,) = [r for r, _ in crm_events.records.values()]
    assert record.recurrence == "FREQ=DAILY;COUNT=10"
    assert len(exchange.tenant.items(exchange.tenant.mailbox(ADMIN.email), "calendar")) == 1


def test_a_contact_deleted_from_the_crm_and_restored_from_deleted_items_comes_back_once(
    tmp_path: Path, exchange: Exchange
) -> None:
    world = MemoryWorld(users=[CrmUser("u1", ADMIN.email, ADMIN.name, "CEO", "Administrator", True)])
    ctx = _context(tmp_path, exchange, "u1", world.plugin())
    ctx.state.set_settings({"crm_connector": "memory"})
    auth.setup_impersonation(ctx, _server(exchange), _svc())
    crm_contacts = world.side("crm", "u1", "contacts")
    ann = crm_contacts.put(Contact("Ann", "Lee", "ann@example.com"))
    engine = Engine(ctx, sleep=lambda _seconds: None)
    engine.run([ADMIN], ["contacts"])
    crm_contacts.remove(ann)
    (deleted,) = engine.run([ADMIN], ["contacts"])
    assert deleted.entities["contacts"].sides["exchange"].deleted == 1
    box = exchange.tenant.mailbox(ADMIN.email)
    assert [i.data["displayName"] for i in exchange.tenant.items(box, "deleteditems")] == ["Ann Lee"]

    with _opened(ctx) as opened:  # the user changes their mind and restores it in Outlook
        (trashed,) = opened.account.trash.all()
        trashed.move(opened.account.contacts)
    for _ in range(2):
        engine.run([ADMIN], ["contacts"])
    assert [(r.email, r.first_name) for r, _ in crm_contacts.records.values()] == [("ann@example.com", "Ann")]
    assert len(exchange.tenant.items(box, "contacts")) == 1 and not exchange.tenant.items(box, "deleteditems")


def test_a_read_after_writing_fetches_only_items_changed_since_our_write(store: EwsStore, exchange: Exchange) -> None:
    side = store.side("contacts")
    cursor = side.read(None, WINDOW).cursor
    created = side.write([Create(Contact(f"P{n}", "Echo", f"e{n}@example.com"), f"crm-{n}") for n in range(30)])
    box = exchange.tenant.mailbox(ADMIN.email)
    exchange.tenant.update(box, "contacts", str(created[3].id), {"jobTitle": "Changed by the user"})
    calls: list[bytes] = []
    handler = exchange.server.handler

    def recording(request: Any) -> Any:
        calls.append(request.body)
        return handler(request)

    exchange.server.handler = recording
    back = side.read(cursor, WINDOW)
    exchange.server.handler = handler

    assert [i.id for i in back.items] == [created[3].id]  # our 29 other writes are not fetched
    assert _record(back.items[0]).title == "Changed by the user"
    assert sum(b"<m:GetItem" in body for body in calls) == 1
    assert all(
        b"AllProperties" not in body and b"<t:FieldURI" not in body for body in calls if b"SyncFolderItems" in body
    )
    again = side.read(back.cursor, WINDOW)  # nothing written since: a plain read
    assert again.items == [] and again.deleted == []
