"""The Microsoft Graph plugin against the fake authority and fake Graph, over real TLS sockets."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import trustme
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plugins.graph
from fakes.graph import (
    APP_ROLES,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    Authority,
    GraphApi,
    new_authority,
    new_tenant,
    throttle_rule,
)
from fakes.server import FakeCA, FakeServer
from fakes.tenant import Tenant
from framework import hookimpl
from framework.cli import _mount_plugin_commands, cli
from framework.context import Context
from framework.contracts import CRM_LOGIN_PREFIX, Create, Delete, Item, Update, Window
from framework.engine import Engine
from framework.errors import AuthenticationFailed, ConfigurationError, RecordRejected, SyncStateLost, TransientError
from framework.host import build_host
from framework.model import Contact, Event, Mail, Task, content_hash
from framework.state import User
from framework.testing import MemoryWorld
from plugins import conflicts, entities
from plugins.graph import mapping
from plugins.graph.auth import (
    APP_PERMISSIONS,
    AuthCodeProvider,
    ClientCredentialsProvider,
    GraphApp,
    missing_permissions,
    token_permissions,
)
from plugins.graph.cli import catch_redirect
from plugins.graph.client import GraphClient
from plugins.graph.store import GraphStore

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"
ADMIN_USER = User("u1", ALICE, "Alice Archer", "CEO", "Administrator", is_admin=True, enabled=True)
PLAIN_USER = User("u2", BOB, "Bob Baker", "Sales", "Standard", is_admin=False, enabled=True)
WINDOW = Window.months_back(6)


# -- the fakes --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> FakeCA:
    return FakeCA(tmp_path_factory.mktemp("graph-ca"))


@pytest.fixture(scope="module")
def servers(ca: FakeCA) -> Iterator[tuple[FakeServer, FakeServer]]:
    tenant, _ = new_tenant()
    authority = new_authority(tenant)
    pair = FakeServer(authority, ca=ca).start(), FakeServer(GraphApi(tenant, authority), ca=ca).start()
    yield pair
    for server in pair:
        server.stop()


@dataclass
class Fakes:
    """This test's tenant, authority and Graph, served by the module's two servers."""

    tenant: Tenant
    authority: Authority
    api: GraphApi
    auth_server: FakeServer
    graph_server: FakeServer
    ca: FakeCA

    @property
    def authority_url(self) -> str:
        return self.auth_server.base_url

    @property
    def graph_url(self) -> str:
        return self.graph_server.base_url

    def store(self, user: str | None = None, mailbox: str = ALICE, calls: list[bool] | None = None) -> GraphStore:
        """A store on ``mailbox`` with an app token (``user`` None) or ``user``'s delegated token."""

        def tokens(force: bool) -> str:
            if calls is not None:
                calls.append(force)
            scopes = ("Contacts.ReadWrite", "Calendars.ReadWrite", "Tasks.ReadWrite", "Mail.Read")
            return self.authority.issue_token(CLIENT_ID, user, scopes=scopes)

        client = GraphClient(self.graph_url, tokens, str(self.ca.bundle_path))
        return GraphStore(client, "/me" if user else mailbox, build_host([plugins.graph], entry_points=False).hook)


@pytest.fixture
def fakes(servers: tuple[FakeServer, FakeServer], ca: FakeCA) -> Fakes:
    tenant, _ = new_tenant()
    authority = new_authority(tenant)
    api = GraphApi(tenant, authority)
    auth_server, graph_server = servers
    auth_server.handler, graph_server.handler = authority, api
    for server in servers:
        server.faults.clear()
    return Fakes(tenant, authority, api, auth_server, graph_server, ca)


@pytest.fixture
def ctx(tmp_path: Path, fakes: Fakes) -> Context:
    host = build_host([plugins.graph, entities, conflicts], entry_points=False)
    context = Context(
        f"sqlite:///{tmp_path / 'state.db'}", host=host, acting_as="u1", ca_bundle=str(fakes.ca.bundle_path)
    )
    context.state.upsert_users([ADMIN_USER, PLAIN_USER])
    context.state.set_settings({"installed": True, "scope": "all"})
    for user in (ADMIN_USER, PLAIN_USER):  # both have logged in to the CRM on this machine
        context.vault.put(f"{CRM_LOGIN_PREFIX}{user.crm_id}/refresh_token", f"crm-refresh-{user.crm_id}")
    return context


def requests_of(fakes: Fakes, call: Any) -> int:
    """How many requests ``call()`` sent to the fake Graph."""
    before = fakes.graph_server.requests
    call()
    return fakes.graph_server.requests - before


# -- the command line -------------------------------------------------------------------------
@pytest.fixture
def run_cli(tmp_path: Path, ctx: Context, fakes: Fakes) -> Any:
    from framework import commands  # noqa: F401  (registers the built-in commands)

    _mount_plugin_commands(cli)
    state = f"sqlite:///{tmp_path / 'state.db'}"

    def run(*args: str, user: str = ALICE, input: str | None = None) -> Any:  # noqa: A002
        base = ["--state", state, "--as", user, "--ca-bundle", str(fakes.ca.bundle_path), "auth", "graph"]
        return CliRunner().invoke(cli, [*base, *args], input=input)

    return run


def app_args(fakes: Fakes, flow: str) -> list[str]:
    return [
        "--flow", flow, "--tenant", "contoso", "--client-id", CLIENT_ID,
        "--authority", fakes.authority_url, "--graph-url", fakes.graph_url,
    ]  # fmt: skip


def test_client_credentials_end_to_end_through_msal_then_every_mailbox_opens(
    run_cli: Any, ctx: Context, fakes: Fakes
) -> None:
    result = run_cli(*app_args(fakes, "client-credentials"), "--client-secret", input=f"{CLIENT_SECRET}\n")
    assert result.exit_code == 0, result.output
    assert CLIENT_SECRET not in result.output
    assert ctx.settings.auth_method == "graph-client-credentials"
    provider = ctx.auth_provider()
    assert provider.has_credentials(ctx, None)
    fakes.tenant.create(fakes.tenant.mailbox(BOB), "contacts", {"givenName": "Zed", "surname": "Zulu"})
    store = provider.open(ctx, PLAIN_USER)
    changes = store.side("contacts").read(None, WINDOW)
    assert [i.record.last_name for i in changes.items] == ["Zulu"]
    (event,) = ctx.audit.query(action="authenticate")
    assert event.outcome == "ok" and CLIENT_SECRET not in str(event.detail)


def test_client_credentials_with_a_certificate(run_cli: Any, ctx: Context, fakes: Fakes, tmp_path: Path) -> None:
    key = trustme.CA().issue_cert("exsync-app", key_type=trustme.KeyType.RSA)
    fakes.authority.register_app("cert-app", certificate_pem=key.cert_chain_pems[0].bytes(), roles=APP_ROLES)
    pem = tmp_path / "app.pem"
    pem.write_bytes(key.private_key_pem.bytes() + key.cert_chain_pems[0].bytes())
    args = app_args(fakes, "client-credentials")
    args[args.index(CLIENT_ID)] = "cert-app"
    result = run_cli(*args, "--certificate", str(pem))
    assert result.exit_code == 0, result.output
    assert "PRIVATE KEY" not in result.output
    thumbprint = x509.load_pem_x509_certificate(key.cert_chain_pems[0].bytes()).fingerprint(hashes.SHA1()).hex()
    result = run_cli(*args, "--certificate", str(pem), "--thumbprint", thumbprint)  # the portal's SHA-1 form
    assert result.exit_code == 0, result.output
    assert ctx.auth_provider().open(ctx, ADMIN_USER).side("events").read(None, WINDOW).full


def test_a_certificate_without_an_rsa_key_is_refused(run_cli: Any, tmp_path: Path, fakes: Fakes) -> None:
    key = trustme.CA().issue_cert("exsync-app")  # an EC key: Entra ID wants RSA
    pem = tmp_path / "app.pem"
    pem.write_bytes(key.private_key_pem.bytes() + key.cert_chain_pems[0].bytes())
    result = run_cli(*app_args(fakes, "client-credentials"), "--certificate", str(pem))
    assert result.exit_code == 2 and "RSA" in result.output


def test_a_wrong_secret_is_refused_and_audited_without_the_secret(run_cli: Any, ctx: Context, fakes: Fakes) -> None:
    result = run_cli(*app_args(fakes, "client-credentials"), "--client-secret", "not-the-secret")
    assert result.exit_code == 1
    assert "not-the-secret" not in result.output and "invalid_client" in result.output
    (event,) = ctx.audit.query(action="authenticate")
    assert event.outcome == "failed" and "not-the-secret" not in str(event.detail)
    assert not ctx.settings.auth_method


def test_client_credentials_is_for_administrators_only(run_cli: Any, ctx: Context, fakes: Fakes) -> None:
    result = run_cli(*app_args(fakes, "client-credentials"), "--client-secret", CLIENT_SECRET, user=BOB)
    assert result.exit_code == 1 and "administrator" in result.output
    assert ctx.audit.query(action="authenticate-org")[0].outcome == "refused"


def test_another_method_needs_change_auth_first(run_cli: Any, ctx: Context, fakes: Fakes) -> None:
    ctx.state.set_settings({"auth_method": "ews-basic"})
    result = run_cli(*app_args(fakes, "client-credentials"), "--client-secret", CLIENT_SECRET)
    assert result.exit_code == 1 and "change-auth" in result.output
    assert ctx.settings.auth_method == "ews-basic"


def test_a_plain_http_authority_is_refused(run_cli: Any, fakes: Fakes) -> None:
    args = app_args(fakes, "client-credentials")
    args[args.index(fakes.authority_url)] = fakes.authority_url.replace("https://", "http://")
    result = run_cli(*args, "--client-secret", CLIENT_SECRET)
    assert result.exit_code == 1 and "https" in result.output


def sign_in(run_cli: Any, fakes: Fakes, *extra: str, user: str = ALICE) -> Any:
    return run_cli(*app_args(fakes, "auth-code"), "--client-secret", CLIENT_SECRET, "--auto", *extra, user=user)


def test_auth_code_sign_in_end_to_end_then_users_sign_in_themselves(run_cli: Any, ctx: Context, fakes: Fakes) -> None:
    result = sign_in(run_cli, fakes)
    assert result.exit_code == 0, result.output
    assert CLIENT_SECRET not in result.output and ALICE in result.output
    provider = ctx.auth_provider()
    assert isinstance(provider, AuthCodeProvider) and not provider.has_credentials(ctx, PLAIN_USER)
    assert run_cli("--flow", "auth-code", "--auto", user=BOB).exit_code == 0
    fakes.tenant.create(fakes.tenant.mailbox(BOB), "tasks", {"title": "Call Ann"})
    tasks = provider.open(ctx, PLAIN_USER).side("tasks").read(None, WINDOW)
    assert [i.record.subject for i in tasks.items] == ["Call Ann"]


def test_a_user_may_sign_in_only_their_own_account(run_cli: Any, ctx: Context, fakes: Fakes) -> None:
    assert sign_in(run_cli, fakes).exit_code == 0
    assert sign_in(run_cli, fakes, user=BOB).exit_code == 0  # the same app registration: fine
    args = app_args(fakes, "auth-code")
    args[args.index(CLIENT_ID)] = "another-app"
    refused = run_cli(*args, "--auto", user=BOB)
    assert refused.exit_code == 1 and "administrator" in refused.output
    assert ctx.audit.query(action="change-graph-app")[0].outcome == "refused"
    result = run_cli("--flow", "auth-code", "--auto", "--user", ALICE, user=BOB)
    assert result.exit_code == 1 and "Only a CRM administrator can authenticate other users" in result.output
    assert ctx.audit.query(action="authenticate-other-users", outcome="refused")


def test_a_pasted_redirect_of_another_sign_in_is_refused(run_cli: Any, ctx: Context, fakes: Fakes) -> None:
    result = run_cli(
        *app_args(fakes, "auth-code"), "--client-secret", CLIENT_SECRET, "--code-url", f"{REDIRECT_URI}?code=x"
    )
    assert result.exit_code == 1 and "does not belong to this sign-in" in result.output


def test_tokens_refresh_silently_and_the_rotated_cache_is_saved(run_cli: Any, ctx: Context, fakes: Fakes) -> None:
    assert sign_in(run_cli, fakes).exit_code == 0
    provider = ctx.auth_provider()
    assert isinstance(provider, AuthCodeProvider)
    cache_before = ctx.vault.get(provider.cache_key(ADMIN_USER))
    fakes.authority.expire_access_tokens()
    store = provider.open(ctx, ADMIN_USER)
    assert store.side("contacts").read(None, WINDOW).full
    assert ctx.vault.get(provider.cache_key(ADMIN_USER)) != cache_before


def test_revoked_consent_means_signing_in_again(run_cli: Any, ctx: Context, fakes: Fakes) -> None:
    assert sign_in(run_cli, fakes).exit_code == 0
    fakes.authority.revoke_consent(CLIENT_ID, ALICE)
    fakes.authority.expire_access_tokens()
    store = ctx.auth_provider().open(ctx, ADMIN_USER)
    with pytest.raises(AuthenticationFailed, match="must sign in again") as caught:
        store.side("contacts").read(None, WINDOW)
    assert "--flow auth-code" in caught.value.hint


def test_the_redirect_is_caught_on_the_loopback_port() -> None:
    uri = "http://127.0.0.1:18765/callback"

    def browser() -> None:
        for _ in range(50):
            try:
                httpx.get(f"{uri}?code=abc&state=xyz")
                return
            except httpx.TransportError:
                time.sleep(0.05)

    thread = threading.Thread(target=browser)
    thread.start()
    assert catch_redirect(uri, 5) == {"code": "abc", "state": "xyz"}
    thread.join()


# -- client credentials and tasks (B19) -------------------------------------------------------
def test_client_credentials_refuse_tasks_without_tasks_readwrite_all(run_cli: Any, ctx: Context, fakes: Fakes) -> None:
    result = run_cli(*app_args(fakes, "client-credentials"), "--client-secret", input=f"{CLIENT_SECRET}\n")
    assert result.exit_code == 0, result.output
    assert "Tasks.ReadWrite.All" in result.output
    reason = ctx.auth_provider().refused_entities(ctx)["tasks"]
    assert "Tasks.ReadWrite.All" in reason
    with pytest.raises(AuthenticationFailed, match="403"):
        fakes.store().side("tasks").read(None, WINDOW)


def test_client_credentials_sync_tasks_once_tasks_readwrite_all_is_granted(
    run_cli: Any, ctx: Context, fakes: Fakes
) -> None:
    fakes.authority.grant_app_roles(CLIENT_ID, ["Tasks.ReadWrite.All"])
    fakes.tenant.create(fakes.tenant.mailbox(BOB), "tasks", {"title": "Call Zed", "status": "notStarted"})
    result = run_cli(*app_args(fakes, "client-credentials"), "--client-secret", input=f"{CLIENT_SECRET}\n")
    assert result.exit_code == 0, result.output
    assert ctx.auth_provider().refused_entities(ctx) == {}
    side = ctx.auth_provider().open(ctx, PLAIN_USER).side("tasks")
    assert [i.record.subject for i in side.read(None, WINDOW).items] == ["Call Zed"]
    (written,) = side.write([Create(Task(subject="Call Amy"), "crm-1")])
    assert written.ok, written.error


def test_auth_graph_names_each_missing_application_permission(run_cli: Any, ctx: Context, fakes: Fakes) -> None:
    fakes.authority.revoke_app_roles(CLIENT_ID, ["Contacts.ReadWrite", "Mail.Read"])
    result = run_cli(*app_args(fakes, "client-credentials"), "--client-secret", input=f"{CLIENT_SECRET}\n")
    assert result.exit_code != 0
    assert "Contacts.ReadWrite, Mail.Read" in result.output
    assert not ctx.settings.auth_method
    (event,) = ctx.audit.query(action="authenticate")
    assert event.outcome == "failed"


# -- reading ----------------------------------------------------------------------------------
def contact(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "givenName": f"Ann{n}",
        "surname": f"Lee{n}",
        "emailAddresses": [{"address": f"ann{n}@x.example"}],
        **fields,
    }


def test_contacts_full_round_then_only_changes(fakes: Fakes) -> None:
    box = fakes.tenant.mailbox(ALICE)
    ids = [fakes.tenant.create(box, "contacts", contact(n)).id for n in range(3)]
    side = fakes.store().side("contacts")
    first = side.read(None, WINDOW)
    assert first.full and {i.record.email for i in first.items} == {f"ann{n}@x.example" for n in range(3)}
    fakes.tenant.update(box, "contacts", ids[0], {"jobTitle": "CFO"})
    fakes.tenant.delete(box, "contacts", ids[1])
    new = fakes.tenant.create(box, "contacts", contact(9)).id
    second = side.read(first.cursor, WINDOW)
    assert not second.full
    assert {i.id: i.record.title for i in second.items} == {ids[0]: "CFO", new: ""}
    assert second.deleted == [ids[1]]
    assert requests_of(fakes, lambda: side.read(second.cursor, WINDOW)) == 1


def test_a_full_round_pages_through_large_mailboxes(fakes: Fakes) -> None:
    box = fakes.tenant.mailbox(ALICE)
    for n in range(2100):
        fakes.tenant.create(box, "contacts", contact(n))
    side = fakes.store().side("contacts")
    holder: dict[str, Any] = {}
    # three delta pages of 999, and the links listed in three pages of 999 (delta takes no $expand)
    assert requests_of(fakes, lambda: holder.setdefault("changes", side.read(None, WINDOW))) == 6
    assert len(holder["changes"].items) == 2100


@pytest.mark.parametrize("entity", ["contacts", "events", "tasks"])
def test_links_are_read_on_full_and_later_rounds(fakes: Fakes, entity: str) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    records = {
        "contacts": lambda n: Contact(first_name="Ann", last_name=f"Lee{n}", email=f"ann{n}@x.example"),
        "events": lambda n: Event(subject=f"Demo {n}", start=start, end=start + timedelta(hours=1)),
        "tasks": lambda n: Task(subject=f"Call {n}"),
    }[entity]
    writer = fakes.store(user=ALICE).side(entity)
    creates = [Create(records(n), f"crm-{n}") for n in range(45)]
    ids = [r.id for start in range(0, 45, 20) for r in writer.write(creates[start : start + 20])]
    side = fakes.store(user=ALICE).side(entity)
    first = side.read(None, WINDOW)
    assert {i.id: i.link for i in first.items} == {i: f"crm-{n}" for n, i in enumerate(ids)}
    cursor, sent = first.cursor, []
    for changed in (5, 25):  # each round a new run, which knows none of the links
        updates = [Update(i, records(n + changed), f"crm-{n}-{changed}") for n, i in enumerate(ids[:changed])]
        assert all(r.error is None for r in [*writer.write(updates[:20]), *writer.write(updates[20:])])
        later = fakes.store(user=ALICE).side(entity)
        holder: dict[str, Any] = {}
        sent.append(requests_of(fakes, lambda s=later, c=cursor, h=holder: h.setdefault("c", s.read(c, WINDOW))))
        cursor = holder["c"].cursor
        # a task's linked resource is written on create only
        links = [f"crm-{n}" if entity == "tasks" else f"crm-{n}-{changed}" for n in range(changed)]
        assert {i.id: i.link for i in holder["c"].items} == dict(zip(ids, links, strict=False))
    # after the delta page: 5 contacts' or events' links in one $batch; 25 in one listing, after asking
    # how many there are (fewer requests than two $batch); a task delta expands them
    assert sent == {"contacts": [2, 3], "events": [2, 3], "tasks": [1, 1]}[entity]


def test_an_expired_delta_token_is_sync_state_lost(fakes: Fakes) -> None:
    side = fakes.store().side("contacts")
    cursor = side.read(None, WINDOW).cursor
    fakes.api.expire_delta_tokens()
    with pytest.raises(SyncStateLost):
        side.read(cursor, WINDOW)


def test_events_are_read_in_utc_with_a_series_as_one_record(fakes: Fakes) -> None:
    box = fakes.tenant.mailbox(ALICE)
    start = datetime.now(UTC).replace(microsecond=0, second=0) + timedelta(days=1)
    series = {
        "subject": "Stand-up",
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "recurrence": mapping.rrule_to_graph("FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10", start),
    }
    fakes.tenant.create(box, "calendar", series)
    day = (start + timedelta(days=30)).date().isoformat()
    local = {
        "subject": "Lunch",
        "start": {"dateTime": f"{day}T12:00:00", "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": f"{day}T13:00:00", "timeZone": "Pacific Standard Time"},
        "iCalUId": "040000008200E00074C5B7101A82E008LUNCH",
    }
    fakes.tenant.create(box, "calendar", local)
    old = {**local, "subject": "Old", "start": {"dateTime": "2001-01-01T00:00:00", "timeZone": "UTC"}}
    fakes.tenant.create(box, "calendar", {**old, "end": old["start"]})
    changes = fakes.store().side("events").read(None, WINDOW)
    records = {i.record.subject: i.record for i in changes.items}
    assert set(records) == {"Stand-up", "Lunch"}
    assert records["Stand-up"].recurrence == "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10"
    pacific = datetime.fromisoformat(f"{day}T12:00:00").replace(tzinfo=ZoneInfo("America/Los_Angeles"))
    assert records["Lunch"].start == pacific.astimezone(UTC)
    assert records["Lunch"].ical_uid == "040000008200E00074C5B7101A82E008LUNCH"


def test_mails_from_inbox_and_sent_items_with_attachment_names(fakes: Fakes) -> None:
    box = fakes.tenant.mailbox(ALICE)
    now = datetime.now(UTC).replace(microsecond=0)

    def message(n: int, attachments: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "internetMessageId": f"<m{n}@x.example>",
            "subject": f"Hello {n}",
            "from": {"emailAddress": {"address": "ann@x.example"}},
            "toRecipients": [{"emailAddress": {"address": ALICE}}],
            "ccRecipients": [],
            "sentDateTime": (now - timedelta(hours=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "receivedDateTime": (now - timedelta(hours=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "body": {"contentType": "text", "content": "Hi"},
            "hasAttachments": bool(attachments),
            "attachments": attachments,
        }

    for n in range(25):
        fakes.tenant.create(box, "inbox", message(n, [{"name": f"a{n}.pdf", "size": n}]))
    fakes.tenant.create(box, "sentitems", message(99, []))
    side = fakes.store().side("mails")
    holder: dict[str, Any] = {}
    # two delta rounds and two $batch calls for the 25 messages with attachments
    assert requests_of(fakes, lambda: holder.setdefault("c", side.read(None, WINDOW))) == 4
    mails = {i.record.message_id: i.record for i in holder["c"].items}
    assert isinstance(mails["<m3@x.example>"], Mail)
    assert mails["<m3@x.example>"].attachments[0].name == "a3.pdf"
    assert mails["<m99@x.example>"].folder == "sentitems"
    assert requests_of(fakes, lambda: side.read(holder["c"].cursor, WINDOW)) == 2
    assert not side.write([Create(Mail(subject="x"), "c1")])[0].ok


def test_a_throttled_read_is_transient_with_retry_after(fakes: Fakes) -> None:
    fakes.graph_server.faults.add(throttle_rule(retry_after=7))
    with pytest.raises(TransientError) as caught:
        fakes.store().side("contacts").read(None, WINDOW)
    assert caught.value.retry_after == 7


def test_an_expired_token_is_refreshed_once(fakes: Fakes) -> None:
    calls: list[bool] = []
    side = fakes.store(calls=calls).side("contacts")
    side.read(None, WINDOW)
    fakes.authority.expire_access_tokens()
    side.read(None, WINDOW)
    assert calls == [False, True]


def test_a_token_refused_twice_is_authentication_failed(fakes: Fakes) -> None:
    client = GraphClient(fakes.graph_url, lambda force: "not-a-token", str(fakes.ca.bundle_path))
    with pytest.raises(AuthenticationFailed):
        GraphStore(client, ALICE, None).side("contacts").read(None, WINDOW)


# -- writing ----------------------------------------------------------------------------------
def test_writes_go_in_batches_of_twenty(fakes: Fakes) -> None:
    side = fakes.store().side("contacts")
    records = [Contact(first_name=f"N{n}", last_name="Batch", email=f"n{n}@x.example") for n in range(45)]
    results: list[Any] = []
    for start in range(0, 45, side.batch_size):
        results += side.write([Create(r, f"crm-{n}") for n, r in enumerate(records[start : start + 20], start)])
    assert all(r.ok for r in results) and len({r.id for r in results}) == 45
    box = fakes.tenant.mailbox(ALICE)
    assert len(fakes.tenant.items(box, "contacts")) == 45
    ops: list[Any] = [Update(results[0].id, replace(records[0], title="Boss"), "crm-0"), Delete(results[1].id)]
    ops.append(Delete(results[1].id))  # already gone: still a success
    assert requests_of(fakes, lambda: results.append(side.write(ops))) <= math.ceil(len(ops) / 20)
    assert all(r.ok for r in results[-1])
    assert fakes.tenant.get(box, "contacts", results[0].id).data["jobTitle"] == "Boss"


def test_a_throttled_write_in_a_batch_carries_retry_after(fakes: Fakes) -> None:
    side = fakes.store().side("contacts")
    fakes.api.throttle_batch_items(1, retry_after=3)
    results = side.write([Create(Contact(last_name=f"T{n}"), "") for n in range(3)])
    assert isinstance(results[0].error, TransientError) and results[0].error.retry_after == 3
    assert results[1].ok and results[2].ok


def test_an_update_of_a_missing_item_is_rejected(fakes: Fakes) -> None:
    (result,) = fakes.store().side("contacts").write([Update("AAMkgone", Contact(last_name="X"), "")])
    assert isinstance(result.error, RecordRejected)


def test_cross_link_round_trip(fakes: Fakes) -> None:
    side = fakes.store().side("events")
    start = datetime.now(UTC) + timedelta(days=2)
    event = Event(subject="Demo", start=start, end=start + timedelta(hours=1))
    (created,) = side.write([Create(event, "crm-42")])
    (item,) = side.read(None, WINDOW).items
    assert item.link == "crm-42" and item.id == created.id


def test_plugins_can_adjust_the_payload(fakes: Fakes) -> None:
    class Adjust:
        @hookimpl
        def exsync_adjust_native(self, entity: str, side: str, record: Any, native: Any) -> None:
            native["jobTitle"] = "Adjusted"

    client = GraphClient(fakes.graph_url, lambda f: fakes.authority.issue_token(CLIENT_ID), str(fakes.ca.bundle_path))
    store = GraphStore(client, ALICE, build_host([plugins.graph, Adjust()], entry_points=False).hook)
    contacts, record = store.side("contacts"), Contact(last_name="Lee")
    contacts.write([Create(record, "")])
    echo, asked_again = contacts.echo(record), contacts.echo(record)
    (item,) = store.side("contacts").read(None, WINDOW).items
    assert item.record.title == "Adjusted"
    assert echo == item.record  # read from the payload written, the hook's change included
    assert asked_again.title == ""  # a payload is kept until its echo is asked, not longer


# -- echo: what we write is what we read back -------------------------------------------------
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)
NOW = datetime.now().replace(microsecond=0)
moments = st.datetimes(NOW + timedelta(days=1), NOW + timedelta(days=600), timezones=st.just(UTC))
contacts = st.builds(
    Contact, first_name=text, last_name=text, email=st.emails(), phone=text, mobile=text, company=text,
    title=text, department=text, street=text, city=text, state=text, postal_code=text, country=text, notes=text,
)  # fmt: skip
tasks = st.builds(
    Task, subject=text, due=st.none() | st.dates(date(2020, 1, 1), date(2035, 1, 1)),
    status=st.sampled_from(("not_started", "in_progress", "completed", "waiting", "deferred")),
    priority=st.sampled_from(("low", "normal", "high")), body=text,
)  # fmt: skip
rrules = st.sampled_from(
    ("", "FREQ=DAILY;COUNT=3", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,FR;UNTIL=20351231", "FREQ=MONTHLY;BYMONTHDAY=15")
)
events = st.builds(
    Event, subject=text, start=moments, end=moments, all_day=st.booleans(), location=text, body=text,
    attendees=st.lists(st.emails(), max_size=3).map(tuple), recurrence=rrules,
)  # fmt: skip


@pytest.mark.parametrize(("entity", "strategy"), [("contacts", contacts), ("events", events), ("tasks", tasks)])
def test_echo_hashes_equal_what_reading_back_gives(fakes: Fakes, entity: str, strategy: Any) -> None:
    store = fakes.store(user=ALICE)

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(strategy, min_size=1, max_size=20))
    def check(records: list[Any]) -> None:
        side = store.side(entity)
        cursor = side.read(None, WINDOW).cursor
        results = side.write([Create(r, "") for r in records])
        back = {i.id: i.record for i in side.read(cursor, WINDOW).items}
        for record, result in zip(records, results, strict=True):
            assert result.ok, result.error
            assert content_hash(side.echo(record)) == content_hash(back[result.id])

    check()


@pytest.mark.parametrize(("entity", "strategy"), [("contacts", contacts), ("events", events), ("tasks", tasks)])
def test_echo_of_an_update_equals_what_reading_back_gives(fakes: Fakes, entity: str, strategy: Any) -> None:
    """An update's payload carries nulls where a create's leaves fields out; the echo read
    from it must still be what Graph gives back."""
    store = fakes.store(user=ALICE)

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(strategy, min_size=2, max_size=10))
    def check(records: list[Any]) -> None:
        side = store.side(entity)
        created = side.write([Create(r, "") for r in records])
        for record in records:
            side.echo(record)  # as the engine asks, after every write
        cursor = side.read(None, WINDOW).cursor
        changed = records[::-1]
        results = side.write([Update(c.id or "", r, "") for c, r in zip(created, changed, strict=True)])
        back = {i.id: i.record for i in side.read(cursor, WINDOW).items}
        for record, result in zip(changed, results, strict=True):
            assert result.ok, result.error
            assert content_hash(side.echo(record)) == content_hash(back[result.id])

    check()


@pytest.mark.parametrize(
    "rrule",
    ["FREQ=DAILY;INTERVAL=3;COUNT=4", "FREQ=WEEKLY;BYDAY=MO,WE", "FREQ=MONTHLY;BYMONTHDAY=2;UNTIL=20300101",
     "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=4", "FREQ=MONTHLY;BYDAY=2TU", "FREQ=MONTHLY;INTERVAL=2;BYDAY=-1FR;COUNT=6",
     "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1", "FREQ=YEARLY;BYDAY=4TH;BYMONTH=11"],
)  # fmt: skip
def test_rrules_round_trip(rrule: str) -> None:
    start = datetime(2030, 1, 1, 9, tzinfo=UTC)
    assert mapping.rrule_from_graph(mapping.rrule_to_graph(rrule, start)) == rrule


@pytest.mark.parametrize(
    "rrule", ["FREQ=MONTHLY;BYDAY=5TU", "FREQ=MONTHLY;BYDAY=1MO,2TU", "FREQ=HOURLY", "FREQ=DAILY;BYHOUR=9"]
)
def test_an_rrule_graph_cannot_hold_is_rejected(rrule: str) -> None:
    with pytest.raises(RecordRejected):
        mapping.rrule_to_graph(rrule, datetime(2030, 1, 1, tzinfo=UTC))


# -- the engine over a Graph mailbox ----------------------------------------------------------
def engine_context(fakes: Fakes, tmp_path: Path, world: MemoryWorld) -> Context:
    """An installed org syncing the memory CRM of ``world`` with the fake Graph (client credentials)."""
    host = build_host([plugins.graph, entities, conflicts, world.plugin()], entry_points=False)
    context = Context(f"sqlite:///{tmp_path / 'e.db'}", host=host, acting_as="u1", ca_bundle=str(fakes.ca.bundle_path))
    context.state.upsert_users([ADMIN_USER])
    context.state.set_settings({"installed": True, "scope": "all", "crm_connector": "memory"})
    GraphApp("client-credentials", "contoso", CLIENT_ID, fakes.authority_url, fakes.graph_url).save(context)
    provider = context.auth_providers["graph-client-credentials"]
    assert isinstance(provider, ClientCredentialsProvider)
    provider.store_credential(context, CLIENT_SECRET)
    context.state.set_settings({"auth_method": provider.name})
    return context


def test_two_way_sync_settles_without_echo_changes(fakes: Fakes, tmp_path: Path) -> None:
    world = MemoryWorld([])
    context = engine_context(fakes, tmp_path, world)
    crm = world.side("crm", "u1", "contacts")
    for n in range(25):
        crm.put(Contact(first_name=f"C{n}", last_name="Crm", email=f"c{n}@x.example", city=" Kyoto "))
    start = datetime.now(UTC) + timedelta(days=3)
    world.side("crm", "u1", "events").put(Event(subject="Kick-off", start=start, end=start + timedelta(hours=1)))
    box = fakes.tenant.mailbox(ALICE)
    fakes.tenant.create(box, "contacts", contact(1))
    engine = Engine(context, sleep=lambda _s: None)
    (first,) = engine.run([ADMIN_USER], ["contacts", "events"])
    assert first.outcome == "ok", first.as_dict()
    assert first.entities["contacts"].sides["exchange"].created == 25
    assert first.entities["contacts"].sides["crm"].created == 1
    (second,) = engine.run([ADMIN_USER], ["contacts", "events"])
    counts = [vars(s) for e in second.entities.values() for s in e.sides.values()]
    assert all(not any(c.values()) for c in counts), json.dumps(second.as_dict())
    exchange = (
        context.auth_providers["graph-client-credentials"]
        .open(context, ADMIN_USER)
        .side("contacts")
        .read(None, WINDOW)
        .items
    )
    assert {i.link for i in exchange} == {f"C{n}" for n in range(1, 26)} | {""}  # the seeded one has none


def test_a_change_made_in_outlook_between_read_and_write_is_never_overwritten(fakes: Fakes, tmp_path: Path) -> None:
    box = fakes.tenant.mailbox(ALICE)

    class OutlookEditsMeanwhile:
        """Just before exsync's write leaves, the user edits the same contact in Outlook."""

        armed = False

        @hookimpl
        def exsync_adjust_native(self, entity: str, side: str, record: Any, native: Any) -> None:
            if self.armed and side == "exchange":
                self.armed = False
                (item,) = fakes.tenant.items(box, "contacts")
                fakes.tenant.update(box, "contacts", item.id, {"mobilePhone": "+81 90 0000 0000"})

    outlook = OutlookEditsMeanwhile()
    world = MemoryWorld([])
    host = build_host([plugins.graph, entities, conflicts, world.plugin(), outlook], entry_points=False)
    context = Context(f"sqlite:///{tmp_path / 'e.db'}", host=host, acting_as="u1", ca_bundle=str(fakes.ca.bundle_path))
    context.state.upsert_users([ADMIN_USER])
    context.state.set_settings({"installed": True, "scope": "all", "crm_connector": "memory"})
    GraphApp("client-credentials", "contoso", CLIENT_ID, fakes.authority_url, fakes.graph_url).save(context)
    provider = context.auth_providers["graph-client-credentials"]
    provider.store_credential(context, CLIENT_SECRET)
    context.state.set_settings({"auth_method": provider.name, "conflict_policy": "crm-wins"})
    fakes.tenant.create(box, "contacts", contact(1))
    engine = Engine(context, sleep=lambda _s: None)
    engine.run([ADMIN_USER], ["contacts"])
    crm = world.side("crm", "u1", "contacts")
    ((crm_id, (record, link)),) = crm.records.items()
    crm.put(replace(record, title="Engineer"), crm_id, link)  # edited in the CRM

    outlook.armed = True
    (second,) = engine.run([ADMIN_USER], ["contacts"])
    stored = dict(fakes.tenant.items(box, "contacts")[0].data)
    (third,) = engine.run([ADMIN_USER], ["contacts"])
    (settled,) = fakes.tenant.items(box, "contacts")

    assert second.entities["contacts"].sides["exchange"].errors == 1
    assert "412" in " ".join(second.entities["contacts"].errors)
    assert stored["mobilePhone"] == "+81 90 0000 0000" and "jobTitle" not in stored
    assert third.entities["contacts"].conflicts == 1  # planned again: both sides changed, the policy decides
    assert settled.data["jobTitle"] == "Engineer"


def test_a_store_refuses_an_entity_it_does_not_carry(fakes: Fakes) -> None:
    with pytest.raises(ConfigurationError):
        fakes.store().side("notes")


def test_items_carry_their_ids(fakes: Fakes) -> None:
    box = fakes.tenant.mailbox(ALICE)
    created = fakes.tenant.create(box, "contacts", contact(1))
    (item,) = fakes.store().side("contacts").read(None, WINDOW).items
    assert isinstance(item, Item) and item.id == created.id


@pytest.mark.parametrize(
    ("granted", "missing"),
    [
        ({"Contacts.ReadWrite", "Calendars.ReadWrite", "Mail.ReadWrite", "Directory.Read.All"}, []),
        ({"contacts.readwrite", "calendars.readwrite", "mail.read", "user.read.all"}, []),
        ({"Contacts.Read", "Calendars.ReadWrite"}, ["User.Read.All", "Contacts.ReadWrite", "Mail.Read"]),
    ],
)
def test_missing_permissions_count_broader_ones_and_ignore_case(granted: set[str], missing: list[str]) -> None:
    assert missing_permissions(frozenset(granted), APP_PERMISSIONS) == missing


def test_token_permissions_read_roles_or_scp_and_refuse_opaque_tokens(fakes: Fakes) -> None:
    app_token = fakes.authority.issue_token(CLIENT_ID)
    user_token = fakes.authority.issue_token(CLIENT_ID, ALICE, scopes=["Mail.Read", "User.Read"])

    assert token_permissions(app_token) == frozenset(APP_ROLES)
    assert token_permissions(user_token) == {"Mail.Read", "User.Read"}
    assert token_permissions("opaque-token") is None
