"""The CRM plugin against the fake CRM over real TLS: login, sides, batching, errors, mail links."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plugins.conflicts
import plugins.crm
import plugins.entities
from fakes.crm import CLIENT_ID, CLIENT_SECRET, CrmApi, CrmOrg, add_exsync_fields, new_org
from fakes.server import FakeCA, FakeServer
from framework import hookimpl
from framework.cli import cli
from framework.context import Context
from framework.contracts import Create, Delete, Item, Update, Window
from framework.engine import Engine, SideCounts
from framework.errors import AuthenticationFailed, ConfigurationError, RecordRejected, TransientError
from framework.host import Host
from framework.model import Attachment, Contact, Event, Mail, Record, Task, content_hash
from framework.state import User
from framework.testing import MemoryWorld, memory_settings
from plugins.crm.client import CrmClient
from plugins.crm.connector import ZohoCrmConnector
from plugins.crm.mapping import (
    LINK_FIELD,
    MAPPINGS,
    WRITTEN_FIELDS,
    contact_from_native,
    contact_to_native,
    mail_fingerprint,
)
from plugins.crm.store import MailSide, ModuleSide, ZohoCrmStore
from plugins.crm.sweep import Listings

WINDOW = Window.months_back(6)


class Adjuster:
    """A plugin customising the CRM payload: copies the department into a custom field."""

    @hookimpl
    def exsync_adjust_native(self, entity: str, side: str, record: Record, native: Any) -> None:
        if entity == "contacts" and side == "crm" and isinstance(record, Contact) and record.department:
            native["Custom_Department"] = record.department.upper()
            native["Title"] = native.get("Title") or "(none)"


DEAL = {"Stage": "Qualification", "Closing_Date": "2030-12-31"}


# fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> FakeCA:
    return FakeCA(tmp_path_factory.mktemp("crm-plugin-ca"))


@pytest.fixture
def org() -> CrmOrg:
    return new_org()


@pytest.fixture
def server(org: CrmOrg, ca: FakeCA) -> Iterator[FakeServer]:
    server = FakeServer(CrmApi(org), ca=ca).start()
    yield server
    server.stop()


@pytest.fixture
def host() -> Host:
    host = Host()
    host.pm.register(plugins.crm, name="crm")
    host.pm.register(plugins.entities, name="entities")
    host.pm.register(Adjuster(), name="adjuster")
    return host


@pytest.fixture
def ctx(tmp_path: Any, ca: FakeCA, host: Host, monkeypatch: pytest.MonkeyPatch) -> Context:
    monkeypatch.setenv("EXSYNC_KEY", Fernet.generate_key().decode())
    return Context(f"sqlite:///{tmp_path}/s.db", host=host, ca_bundle=str(ca.bundle_path))


def login_options(server: FakeServer, refresh_token: str) -> dict[str, str]:
    return {
        "accounts_url": server.base_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": refresh_token,
    }


@pytest.fixture
def admin_ctx(ctx: Context, org: CrmOrg, server: FakeServer) -> Context:
    """A context whose org login is the fake org's admin."""
    ZohoCrmConnector().login(ctx, login_options(server, org.issue_refresh_token(org.admin.id)))
    return ctx


@pytest.fixture
def sam(admin_ctx: Context, org: CrmOrg) -> User:
    user = admin_ctx.state.user("sam.standard@contoso.example")
    assert user is not None
    return user


@pytest.fixture
def store(admin_ctx: Context, sam: User) -> Iterator[ZohoCrmStore]:
    store = ZohoCrmConnector().open(admin_ctx, sam)
    yield store
    store.close()


def crm_user(org: CrmOrg, email: str) -> Any:
    return next(u for u in org.users() if u.email == email)


def side(store: ZohoCrmStore, entity: str) -> ModuleSide:
    result = store.side(entity)
    assert isinstance(result, ModuleSide)
    return result


def read_back(store: ZohoCrmStore, entity: str, record_id: str) -> Record:
    chosen = side(store, entity)
    native = store.client.get(chosen.module, record_id, chosen.mapping.read_fields)
    assert native is not None
    record: Record = chosen.mapping.from_native(native)
    return record


# login, org, users ----------------------------------------------------------------------------
def test_cli_login_stores_users_and_the_org_login_and_never_prints_secrets(
    ctx: Context,
    org: CrmOrg,
    server: FakeServer,
    ca: FakeCA,
    host: Host,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("framework.context.build_host", lambda: host)
    cli.add_command(plugins.crm.exsync_cli_commands()[0])
    token = org.issue_refresh_token(org.admin.id)
    state = f"sqlite:///{tmp_path}/s.db"
    base = ["--state", state, "--ca-bundle", str(ca.bundle_path), "--json", "crm"]

    login = CliRunner().invoke(
        cli,
        [*base, "login", "--accounts-url", server.base_url, "--client-id", CLIENT_ID],
        input=f"{CLIENT_SECRET}\n{token}\n",
    )
    whoami = CliRunner().invoke(cli, [*base, "whoami"])

    assert login.exit_code == 0, login.output
    assert CLIENT_SECRET not in login.output and token not in login.output
    assert json.loads(login.output[login.output.index("{") :])["org_login"] is True
    assert json.loads(whoami.output)["email"] == "amelia.admin@contoso.example"
    assert json.loads(whoami.output)["edition"] == "Enterprise"
    assert {u.email for u in ctx.state.users()} == {u.email for u in org.users()}
    assert ctx.state.get_setting("crm_login_user") == org.admin.id
    assert ctx.vault.get_json(f"crm/login/{org.admin.id}") == login_options(server, token)
    (event,) = ctx.audit.query(action="crm-login")
    assert event.outcome == "ok" and token not in json.dumps(event.detail)


def test_users_carry_roles_profiles_and_the_admin_flag(admin_ctx: Context, org: CrmOrg) -> None:
    users = {u.email: u for u in admin_ctx.state.users()}

    assert users["amelia.admin@contoso.example"].is_admin
    assert users["amelia.admin@contoso.example"].profile == "Administrator"
    assert not users["sam.standard@contoso.example"].is_admin
    assert users["sam.standard@contoso.example"].role == "Manager"


def test_a_non_admin_login_is_kept_but_does_not_become_the_org_login(
    ctx: Context, org: CrmOrg, server: FakeServer
) -> None:
    sofia = crm_user(org, "sofia.sales@contoso.example")

    user = ZohoCrmConnector().login(ctx, login_options(server, org.issue_refresh_token(sofia.id)))

    assert (user.id, user.is_admin) == (sofia.id, False)
    assert ctx.state.get_setting("crm_login_user") is None
    assert ctx.vault.get_json(f"crm/login/{sofia.id}") is not None
    own = ZohoCrmConnector().open(ctx, sofia.id)
    assert own.current_user().id == sofia.id
    own.close()


def test_bad_refresh_token_is_authentication_failed_with_a_hint(ctx: Context, server: FakeServer) -> None:
    with pytest.raises(AuthenticationFailed) as failure:
        ZohoCrmConnector().login(ctx, login_options(server, "1000.not.issued"))

    assert "invalid_code" in failure.value.message
    assert "exsync crm login" in failure.value.hint
    assert ctx.state.users() == []
    assert ctx.audit.query(action="crm-login")[0].outcome == "failed"


def test_open_without_a_stored_login_is_authentication_failed(ctx: Context) -> None:
    with pytest.raises(AuthenticationFailed):
        ZohoCrmConnector().open(ctx, None)


def test_revoked_login_fails_the_next_read(admin_ctx: Context, org: CrmOrg, sam: User) -> None:
    login = admin_ctx.vault.get_json(f"crm/login/{org.admin.id}")
    assert login is not None
    org.revoke_refresh_token(login["refresh_token"])

    store = ZohoCrmConnector().open(admin_ctx, sam)
    with pytest.raises(AuthenticationFailed):
        store.side("contacts").read(None, WINDOW)


def test_org_reports_edition_and_sales_inbox(admin_ctx: Context, org: CrmOrg) -> None:
    org.sales_inbox = True
    store = admin_ctx.crm_connector().open(admin_ctx, None)

    info = store.org()

    assert (info.name, info.edition, info.sales_inbox) == ("Zylker", "Enterprise", True)
    assert store.current_user().is_admin


# reading ----------------------------------------------------------------------------------------
def test_full_then_incremental_read_of_the_users_own_contacts(store: ZohoCrmStore, org: CrmOrg, sam: User) -> None:
    me, other = crm_user(org, sam.email), crm_user(org, "sofia.sales@contoso.example")
    mine = [org.insert("Contacts", {"Last_Name": f"Mine {n}", "Exsync_Link": "ex-1"}, me)["id"] for n in range(250)]
    org.insert("Contacts", {"Last_Name": "Not mine"}, other)
    contacts = side(store, "contacts")

    full = contacts.read(None, WINDOW)
    org.update("Contacts", mine[0], {"Title": "CTO"})
    org.delete("Contacts", mine[1])
    org.update("Contacts", mine[2], {"Owner": {"id": other.id}})
    created = org.insert("Contacts", {"Last_Name": "New"}, me)["id"]
    incremental = contacts.read(full.cursor, WINDOW)
    quiet = contacts.read(incremental.cursor, WINDOW)

    assert full.full and len(full.items) == 250 and {i.id for i in full.items} == set(mine)
    assert {i.link for i in full.items} == {"ex-1"}
    assert set(json.loads(full.cursor or "")) == {"modified", "deleted", "edge"}
    assert not incremental.full
    assert {i.id: getattr(i.record, "title", None) for i in incremental.items if i.id in (mine[0], created)} == {
        mine[0]: "CTO",
        created: "",
    }
    assert {mine[1], mine[2]} <= set(incremental.deleted)
    assert created not in quiet.deleted and mine[1] not in {i.id for i in quiet.items}


def test_full_read_of_dated_entities_keeps_the_six_month_window(store: ZohoCrmStore, org: CrmOrg, sam: User) -> None:
    me = crm_user(org, sam.email)
    today = datetime.now(UTC).date()
    org.insert("Tasks", {"Subject": "old", "Due_Date": (today - timedelta(days=400)).isoformat()}, me)
    org.insert("Tasks", {"Subject": "soon", "Due_Date": (today + timedelta(days=3)).isoformat()}, me)
    org.insert("Tasks", {"Subject": "undated"}, me)

    changes = side(store, "tasks").read(None, WINDOW)

    assert sorted(i.record.subject for i in changes.items if isinstance(i.record, Task)) == ["soon", "undated"]


def test_unreadable_cursor_is_sync_state_lost(store: ZohoCrmStore) -> None:
    from framework.errors import SyncStateLost

    with pytest.raises(SyncStateLost):
        side(store, "contacts").read("not json", WINDOW)


# writing ----------------------------------------------------------------------------------------
def test_writes_go_in_batches_of_100(store: ZohoCrmStore, org: CrmOrg, server: FakeServer) -> None:
    contacts = side(store, "contacts")
    contacts.read(None, WINDOW)  # signs in
    n = 250
    records = [Contact(first_name="P", last_name=f"N{i}", email=f"p{i}@example.com") for i in range(n)]

    before = server.requests
    ids: list[str] = []
    for start in range(0, n, contacts.batch_size):
        results = contacts.write([Create(r, f"ex-{start + i}") for i, r in enumerate(records[start : start + 100])])
        ids += [r.id for r in results if r.id]
    after_create = server.requests
    for start in range(0, n, 100):
        batch = ids[start : start + 100]
        ops = [Update(i, Contact(last_name="Renamed", email=f"r{i}@example.com"), "x") for i in batch]
        assert all(r.ok for r in contacts.write(ops))
    after_update = server.requests
    for start in range(0, n, 100):
        assert all(r.ok for r in contacts.write([Delete(i) for i in ids[start : start + 100]]))

    assert len(ids) == n and org.count("Contacts") == 0
    assert after_create - before == math.ceil(n / 100)
    assert after_update - after_create == math.ceil(n / 100)
    assert server.requests - after_update == math.ceil(n / 100)


def test_created_records_belong_to_the_user_and_carry_the_link(store: ZohoCrmStore, org: CrmOrg, sam: User) -> None:
    (result,) = side(store, "contacts").write([Create(Contact(last_name="Ng", email="ng@example.com"), "EX-9")])

    stored = org.get("Contacts", result.id or "")

    assert stored["Owner"]["id"] == sam.crm_id
    assert stored["Exsync_Link"] == "EX-9"


def test_mixed_batch_is_one_call_per_kind_and_results_keep_order(
    store: ZohoCrmStore, org: CrmOrg, server: FakeServer
) -> None:
    contacts = side(store, "contacts")
    existing = [r.id or "" for r in contacts.write([Create(Contact(last_name=f"E{i}"), "") for i in range(3)])]
    gone = existing[2]
    org.delete("Contacts", gone)

    before = server.requests
    results = contacts.write(
        [
            Delete(existing[0]),
            Create(Contact(last_name="New"), ""),
            Update(existing[1], Contact(last_name="U"), ""),
            Delete(gone),
            Update(gone, Contact(last_name="Z"), ""),
        ]
    )

    assert server.requests - before == 3
    assert [r.ok for r in results] == [True, True, True, True, False]
    assert results[0].id == existing[0] and results[3].id == gone
    assert isinstance(results[4].error, RecordRejected) and "no longer exists" in results[4].error.message


def test_rejected_records_come_back_one_by_one_while_the_rest_succeed(store: ZohoCrmStore, org: CrmOrg) -> None:
    ops = [
        Create(Contact(last_name="Good", email="good@example.com"), ""),
        Create(Contact(last_name="Bad", email="not an address"), ""),
        Create(Contact(), ""),
        Create(Contact(last_name="Long", title="x" * 300), ""),
        Create(Contact(first_name="Only"), ""),
    ]

    results = side(store, "contacts").write(ops)

    assert [r.ok for r in results] == [True, False, False, False, True]
    messages = [r.error.message for r in results if r.error]
    assert isinstance(results[1].error, RecordRejected)
    assert "Email" in messages[0] and "Last_Name" in messages[1]
    assert "Title" in messages[2] and "100" in messages[2]
    assert org.count("Contacts") == 2


def test_contact_without_a_last_name_reads_back_as_echo_predicts(store: ZohoCrmStore) -> None:
    contacts = side(store, "contacts")
    for record in (Contact(first_name="Ann"), Contact(email="zed@example.com")):
        (result,) = contacts.write([Create(record, "")])
        assert content_hash(read_back(store, "contacts", result.id or "")) == content_hash(contacts.echo(record))
    assert contacts.echo(Contact(first_name="Ann")) == Contact(last_name="Ann")
    assert contacts.echo(Contact(email="zed@example.com")) == Contact(last_name="zed", email="zed@example.com")


def test_adjust_native_hook_changes_the_payload_and_echo_predicts_it(store: ZohoCrmStore, org: CrmOrg) -> None:
    contacts = side(store, "contacts")
    record = Contact(last_name="Hook", department="sales")
    org.create_field("Contacts", "Custom Department", "text", 100)

    (result,) = contacts.write([Create(record, "")])

    stored = org.get("Contacts", result.id or "")
    assert stored["Custom_Department"] == "SALES"
    assert read_back(store, "contacts", result.id or "") == contacts.echo(record)
    assert contacts.echo(record) == Contact(last_name="Hook", department="sales", title="(none)")


def test_the_echo_of_a_record_written_reuses_its_payload(store: ZohoCrmStore, monkeypatch: pytest.MonkeyPatch) -> None:
    contacts = side(store, "contacts")
    built: list[Record] = []
    to_native = contacts.mapping.to_native
    monkeypatch.setattr(contacts, "_native", lambda record: built.append(record) or to_native(record))
    written, refused = Contact(last_name="Kept"), Contact(last_name="Refused", email="x" * 200)

    results = contacts.write([Create(written, ""), Create(refused, "")])
    echoes = contacts.echo(written), contacts.echo(refused), contacts.echo(written)

    assert results[0].id and isinstance(results[1].error, RecordRejected)
    assert built == [written, refused, refused, written]  # the write's two; then only what was not kept
    assert echoes[0] == echoes[2] == written


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.builds(
        Contact,
        first_name=st.text(max_size=40),
        last_name=st.text(max_size=40),
        email=st.one_of(st.just(""), st.emails().filter(lambda e: len(e) <= 100)),
        phone=st.text(max_size=30),
        company=st.text(max_size=255),
        title=st.text(max_size=100),
        street=st.text(max_size=60),
        notes=st.text(max_size=2000),
    )
)
def test_echo_hash_equals_the_hash_read_back_for_any_contact(store: ZohoCrmStore, record: Contact) -> None:
    contacts = side(store, "contacts")

    (result,) = contacts.write([Create(record, "EX")])

    if not (record.last_name or record.first_name or record.email.partition("@")[0]):
        assert isinstance(result.error, RecordRejected)
        return
    assert result.ok, result.error
    assert content_hash(read_back(store, "contacts", result.id or "")) == content_hash(contacts.echo(record))


@pytest.mark.parametrize(
    ("entity", "record"),
    [
        ("tasks", Task("Call back", date(2030, 1, 2), "waiting", "high", "notes")),
        ("tasks", Task("Plain")),
        (
            "events",
            Event(
                "Review",
                datetime(2030, 3, 4, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))),
                datetime(2030, 3, 4, 10, 30, tzinfo=UTC),
                location="Room 1",
                body="agenda",
                attendees=("a@example.com", "b@example.com"),
                recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=10",
                ical_uid="uid-1@example.com",
            ),
        ),
        ("events", Event("All day", datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 2, tzinfo=UTC), all_day=True)),
    ],
)
def test_echo_matches_the_record_read_back(store: ZohoCrmStore, entity: str, record: Record) -> None:
    chosen = side(store, entity)

    (result,) = chosen.write([Create(record, "EX")])

    assert result.ok, result.error
    assert read_back(store, entity, result.id or "") == chosen.echo(record)
    assert content_hash(read_back(store, entity, result.id or "")) == content_hash(chosen.echo(record))


def test_mail_echo_matches_the_mail_in_the_related_list(store: ZohoCrmStore, org: CrmOrg, sam: User) -> None:
    contact = org.insert("Contacts", {"Last_Name": "B", "Email": "b@example.com"}, crm_user(org, sam.email))["id"]
    mails = side(store, "mails")
    record = Mail(
        "<m1@example.com>",
        "s" * 300,
        "a@example.com",
        ("b@example.com", "undisclosed-recipients:;"),
        ("c@example.com",),
        datetime(2030, 1, 1, 8, tzinfo=UTC),
        "b" * 40000,
        "sentitems",
        (Attachment("a.pdf", 12),),
    )

    (result,) = mails.write([Create(record, "EX")])

    (listed,) = store.client.related_emails("Contacts", contact, sam.crm_id)
    assert result.id == listed["message_id"]
    read = mails.mapping.from_native(listed)
    assert read == replace(mails.echo(record), message_id="")
    assert (read.subject, read.body, read.folder, read.to) == ("s" * 250, "b" * 32000, "sentitems", ("b@example.com",))


def test_mapping_prefers_the_linked_account_name_for_the_company() -> None:
    native = {**contact_to_native(Contact(last_name="X", company="Typed")), "Account_Name": {"id": "1", "name": "Acme"}}

    assert contact_from_native(native).company == "Acme"
    assert contact_from_native(contact_to_native(Contact(last_name="X", company="Typed"))).company == "Typed"


# failures -------------------------------------------------------------------------------------
def test_throttling_is_transient_with_retry_after(store: ZohoCrmStore, server: FakeServer) -> None:
    contacts = side(store, "contacts")
    server.faults.add(path="/crm/v8/Contacts", status=429, retry_after=7, times=1)

    with pytest.raises(TransientError) as failure:
        contacts.read(None, WINDOW)

    assert failure.value.retry_after == 7


def test_throttled_write_is_a_transient_result_per_record(store: ZohoCrmStore, server: FakeServer) -> None:
    contacts = side(store, "contacts")
    contacts.read(None, WINDOW)
    server.faults.add(path="/crm/v8/Contacts", method="POST", status=503, retry_after=2, times=1)

    results = contacts.write([Create(Contact(last_name="A"), ""), Create(Contact(last_name="B"), "")])

    assert all(isinstance(r.error, TransientError) and r.error.retry_after == 2 for r in results)


@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}])
def test_server_errors_and_dropped_connections_are_transient(
    store: ZohoCrmStore, server: FakeServer, fault: dict[str, Any]
) -> None:
    contacts = side(store, "contacts")
    contacts.read(None, WINDOW)
    server.faults.add(path="/crm/v8/Contacts", times=1, **fault)

    with pytest.raises(TransientError) as failure:
        contacts.read(None, WINDOW)

    assert failure.value.retry_after is None


def test_expired_access_token_is_refreshed_once_transparently(store: ZohoCrmStore, org: CrmOrg) -> None:
    contacts = side(store, "contacts")
    contacts.read(None, WINDOW)
    org.expire_tokens()

    assert contacts.read(None, WINDOW).full


# mails ----------------------------------------------------------------------------------------
def test_mails_are_linked_to_contacts_leads_accounts_and_deals(
    store: ZohoCrmStore, org: CrmOrg, server: FakeServer, sam: User
) -> None:
    me = crm_user(org, sam.email)
    account = org.insert("Accounts", {"Account_Name": "Acme"})["id"]
    contact = org.insert(
        "Contacts", {"Last_Name": "Cho", "Email": "cho@acme.example", "Account_Name": {"id": account}}, me
    )
    lead = org.insert("Leads", {"Last_Name": "Lee", "Company": "Lee Ltd", "Email": "lee@lead.example"}, me)["id"]
    deal = org.insert("Deals", {**DEAL, "Deal_Name": "Big", "Contact_Name": {"id": contact["id"]}})["id"]
    mails = store.side("mails")
    assert isinstance(mails, MailSide)
    store.client.refresh()  # signs in
    sent = datetime.now(UTC).replace(microsecond=0)
    first = Mail("<1@x>", "Hello", sam.email, ("CHO@acme.example",), ("lee@lead.example",), sent, "hi")
    second = Mail("<2@x>", "Again", "cho@acme.example", (sam.email,), (), sent, "re")
    queries, listed = server.faults.add(path="/coql"), server.faults.add(path="/Emails")

    before = server.requests
    (one,) = mails.write([Create(first, "ex-1")])
    (two,) = mails.write([Create(second, "ex-2")])

    assert queries.fired == 2  # three addresses in one COQL query of Contacts and one of Leads
    assert listed.fired == 2  # each person's related list is read once, before the first association
    assert server.requests - before == 2 + 2 + 3  # and three associations: the second mail's people are cached
    related = {
        module: [m["message_id"] for m in store.client.related_emails(module, record_id, sam.crm_id)]
        for module, record_id in (("Contacts", contact["id"]), ("Accounts", account), ("Deals", deal))
    }
    assert related == {"Contacts": [one.id, two.id], "Accounts": [one.id, two.id], "Deals": [one.id, two.id]}
    assert len(list(store.client.related_emails("Leads", lead, sam.crm_id))) == 1
    assert [a["linked_record"]["module"]["api_name"] for a in org.all_mails()] == ["Contacts", "Leads", "Contacts"]
    assert sorted(m.subject for m in store.mails(WINDOW) if isinstance(m, Mail)) == ["Again", "Hello"]


def _mails_to(sam: User, addresses: list[str]) -> list[Create]:
    sent = datetime.now(UTC).replace(microsecond=0)
    return [Create(Mail(f"<{n}@x>", "Hi", sam.email, (a,), (), sent), f"ex-{n}") for n, a in enumerate(addresses)]


def _linked(org: CrmOrg, module: str, record_id: str) -> int:
    return len(org.mails_of(module, record_id))


def test_mail_addresses_are_looked_up_five_hundred_a_query_and_quoted_ones_by_search(
    store: ZohoCrmStore, org: CrmOrg, server: FakeServer, sam: User
) -> None:
    addresses = [f"person{n}@x.example" for n in range(599)] + ["o'neil@x.example"]
    contacts = [org.insert("Contacts", {"Last_Name": "C", "Email": a})["id"] for a in addresses[::20]]
    lead = org.insert("Leads", {"Last_Name": "L", "Company": "Co", "Email": "O'Neil@x.example"})["id"]
    mails = store.side("mails")
    mails.read(None, WINDOW)  # signs in
    queries, searches = server.faults.add(path="/coql"), server.faults.add(path="/search")
    sent = datetime.now(UTC).replace(microsecond=0)
    to_many = [
        Create(Mail(f"<{n}@x>", "Hi", sam.email, tuple(addresses[n * 100 : n * 100 + 100]), (), sent), f"ex-{n}")
        for n in range(6)
    ]

    results = mails.write(to_many)

    assert all(r.id for r in results)
    assert (queries.fired, searches.fired) == (4, 2)  # 599 + the sender: 500 + 100 a module; the quoted one searched
    assert [_linked(org, "Contacts", c) for c in contacts] == [1] * len(contacts)
    assert _linked(org, "Leads", lead) == 1


def test_a_crm_refusing_coql_links_mails_through_searches_and_is_not_asked_again(
    store: ZohoCrmStore, org: CrmOrg, server: FakeServer, sam: User
) -> None:
    addresses = [f"person{n}@x.example" for n in range(59)]
    contact = org.insert("Contacts", {"Last_Name": "C", "Email": addresses[42]})["id"]
    mails = store.side("mails")
    mails.read(None, WINDOW)
    scope = {"code": "OAUTH_SCOPE_MISMATCH", "message": "invalid oauth scope to access this URL", "status": "error"}
    refused = server.faults.add(path="/coql", status=401, body=scope)
    searches = server.faults.add(path="/search")

    results = mails.write(_mails_to(sam, addresses))

    assert all(r.id for r in results)
    assert refused.fired == 1
    assert searches.fired == 12  # 59 + the sender, 10 a search, in each module
    assert _linked(org, "Contacts", contact) == 1


def test_a_mail_already_stored_is_not_stored_twice(admin_ctx: Context, store: ZohoCrmStore, org: CrmOrg) -> None:
    sofia = admin_ctx.state.user("sofia.sales@contoso.example")
    assert sofia is not None
    org.insert("Contacts", {"Last_Name": "Sofia", "Email": "sofia@x.example"})
    mail = Mail("<shared@x>", "Shared", "sam@x.example", ("sofia@x.example",), (), datetime(2030, 1, 1, tzinfo=UTC))
    (mine,) = store.side("mails").write([Create(mail, "sam-copy")])

    theirs = ZohoCrmConnector().open(admin_ctx, sofia)
    results = theirs.side("mails").write([Create(mail, "sofia-copy"), Create(mail, "sofia-copy-2")])
    theirs.close()

    assert results[0].id == mine.id
    assert isinstance(results[1].error, RecordRejected)
    assert len(org.all_mails()) == 1


def test_a_mail_involving_no_contact_or_lead_is_associated_with_nothing(store: ZohoCrmStore, org: CrmOrg) -> None:
    mail = Mail("<alone@x>", "Alone", "nobody@x.example", ("no-one@x.example",), (), datetime(2030, 1, 1, tzinfo=UTC))

    (result,) = store.side("mails").write([Create(mail, "ex")])

    assert result.id == "unlinked:<alone@x>"
    assert org.all_mails() == []


def test_the_mail_side_lists_nothing_as_mails_flow_from_exchange_only(store: ZohoCrmStore, server: FakeServer) -> None:
    mails = store.side("mails")
    store.client.refresh()  # signs in
    before = server.requests

    changes = mails.read(None, WINDOW)

    assert (changes.items, changes.deleted, server.requests - before) == ([], [], 0)


def test_reading_items_carries_the_link(store: ZohoCrmStore) -> None:
    contacts = side(store, "contacts")
    contacts.write([Create(Contact(last_name="Linked"), "EXCHANGE-ID")])

    (item,) = contacts.read(None, WINDOW).items

    assert item == Item(item.id, Contact(last_name="Linked"), "EXCHANGE-ID")


@pytest.mark.parametrize(
    ("entity", "module", "native"),
    [
        ("contacts", "Contacts", {"Last_Name": "Kim"}),
        ("tasks", "Tasks", {"Subject": "Call"}),
        (
            "events",
            "Events",
            {
                "Event_Title": "Meet",
                "Start_DateTime": "2030-01-01T09:00:00+00:00",
                "End_DateTime": "2030-01-01T10:00:00+00:00",
            },
        ),
    ],
)
def test_every_side_reads_full_then_modified_and_deleted(
    store: ZohoCrmStore, org: CrmOrg, sam: User, entity: str, module: str, native: dict[str, Any]
) -> None:
    me = crm_user(org, sam.email)
    kept = org.insert(module, native, me)["id"]
    dropped = org.insert(module, native, me)["id"]
    chosen = side(store, entity)

    full = chosen.read(None, WINDOW)
    org.update(module, kept, {"Description": "changed"})
    org.delete(module, dropped)
    incremental = chosen.read(full.cursor, WINDOW)

    assert full.full and {i.id for i in full.items} == {kept, dropped}
    assert [i.id for i in incremental.items] == [kept] and incremental.deleted == [dropped]
    assert json.loads(incremental.cursor or "")["deleted"] is not None


def test_no_change_read_costs_two_calls_even_when_everything_changed_in_one_second(ca: FakeCA) -> None:
    frozen = datetime(2030, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    org = CrmOrg(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, clock=lambda: frozen)  # writes 1 µs apart
    add_exsync_fields(org)
    me = org.add_user("Amelia Admin", "amelia@contoso.example", role="CEO")
    ids = [org.insert("Contacts", {"Last_Name": f"N{n}"}, me)["id"] for n in range(450)]
    server = FakeServer(CrmApi(org), ca=ca).start()
    client = CrmClient(server.base_url, CLIENT_ID, CLIENT_SECRET, org.issue_refresh_token(me.id), str(ca.bundle_path))
    contacts = side(ZohoCrmStore(client, User(me.id, me.email)), "contacts")
    try:
        full = contacts.read(None, WINDOW)
        before = server.requests
        quiet = contacts.read(full.cursor, WINDOW)
        calls = server.requests - before
        org.update("Contacts", ids[10], {"Title": "CTO"})  # the same second as the edge
        changed = contacts.read(quiet.cursor, WINDOW)
        again = contacts.read(changed.cursor, WINDOW)
    finally:
        client.close()
        server.stop()

    assert len(full.items) == 450 and (quiet.items, quiet.deleted) == ([], [])
    assert calls == 2  # one listing page, one deleted-records page
    assert [i.id for i in changed.items] == [ids[10]]
    assert again.items == []


def memory_exchange(ctx: Context, host: Host) -> MemoryWorld:
    """The engine syncs this CRM store with in-memory Exchange sides."""
    world = MemoryWorld()
    host.pm.register(world.plugin(), name="memory")
    host.pm.register(plugins.conflicts, name="conflicts")
    ctx.state.set_settings({**memory_settings(), "crm_connector": "crm"})
    return world


def test_engine_syncs_through_the_crm_store_without_echo_loops(
    admin_ctx: Context, host: Host, org: CrmOrg, sam: User
) -> None:
    world = memory_exchange(admin_ctx, host)
    exchange = world.side("exchange", sam.crm_id, "contacts")
    for n in range(150):
        exchange.put(Contact(first_name=f"F{n}", email=f"f{n}@example.com", department="ops"))
    engine = Engine(admin_ctx, sleep=lambda _s: None)

    (first,) = engine.run([sam], ["contacts"])
    (second,) = engine.run([sam], ["contacts"])
    crm_id = next(iter(admin_ctx.state.pairs(sam.crm_id, "contacts"))).crm_id
    org.update("Contacts", crm_id, {"Title": "Boss"})
    (third,) = engine.run([sam], ["contacts"])

    assert first.entities["contacts"].sides["crm"].created == 150, first.entities["contacts"].errors
    assert org.count("Contacts") == 150
    assert second.entities["contacts"].as_dict()["crm"] == vars(SideCounts())
    assert second.entities["contacts"].as_dict()["exchange"] == vars(SideCounts())
    assert third.entities["contacts"].sides["exchange"].updated == 1
    assert any(isinstance(r, Contact) and r.title == "Boss" for r, _link in exchange.records.values())


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_sweep_lists_each_module_once_for_all_users_and_each_user_keeps_their_own(
    admin_ctx: Context, host: Host, org: CrmOrg, server: FakeServer, concurrency: int
) -> None:
    world = memory_exchange(admin_ctx, host)
    users = admin_ctx.state.users()
    engine = Engine(admin_ctx, sleep=lambda _s: None, concurrency=concurrency)
    org.insert("Contacts", {"Last_Name": "Before"})  # the first sync's cursors then hold a time
    engine.run(users, ["contacts"])
    for user in users:
        org.insert("Contacts", {"Last_Name": f"Of {user.email}"}, crm_user(org, user.email))
    calls: list[str] = []
    handler = server.handler

    def recording(request: Any) -> Any:
        calls.append(f"{request.method} {request.path}")
        return handler(request)

    server.handler = recording
    reports = engine.run(users, ["contacts"])

    assert len(users) == 3 and all(r.outcome == "ok" for r in reports)
    assert calls.count("GET /crm/v8/Contacts") == 1  # not one listing per user
    assert calls.count("GET /crm/v8/Contacts/deleted") == 1
    assert sum("/oauth/v2/token" in call for call in calls) == 1  # one token for the sweep
    for user in users:
        mine = world.side("exchange", user.crm_id, "contacts").records.values()
        names = {record.last_name for record, _link in mine} - {"Before"}  # type: ignore[attr-defined]
        assert names == {f"Of {user.email}"}


@pytest.mark.parametrize("keep", [100, 10])
def test_a_sweep_listing_serves_later_reads_from_memory_unless_too_big_to_keep(
    org: CrmOrg, server: FakeServer, ca: FakeCA, keep: int
) -> None:
    for n in range(30):
        org.insert("Contacts", {"Last_Name": f"N{n}"})
    client = CrmClient(
        server.base_url, CLIENT_ID, CLIENT_SECRET, org.issue_refresh_token(org.admin.id), str(ca.bundle_path)
    )
    listings = Listings(client, keep=keep)
    try:
        since = datetime(2000, 1, 1, tzinfo=UTC)
        first = [r["id"] for page in listings.pages("modified", "Contacts", since) for r in page.records]
        before = server.requests
        second = [r["id"] for page in listings.pages("modified", "Contacts", since) for r in page.records]
        later = list(listings.pages("modified", "Contacts", datetime(2100, 1, 1, tzinfo=UTC)))
        requests = server.requests - before
    finally:
        client.close()
    assert len(first) == 30 and second == first
    if keep == 100:
        assert requests == 0 and [r for page in later for r in page.records] == []
    else:
        assert requests >= 2  # too many to keep: each read lists for itself


# v8 paging and headers ------------------------------------------------------------------------
def test_a_listing_past_2000_records_follows_page_tokens(store: ZohoCrmStore, org: CrmOrg) -> None:
    ids = {org.insert("Contacts", {"Last_Name": f"Person {n}"})["id"] for n in range(2150)}
    since = datetime.now(UTC) - timedelta(days=1, microseconds=1)

    pages = list(store.client.list_modified("Contacts", ("Last_Name",), since))

    assert [r["id"] for p in pages for r in p.records] == sorted(ids, reverse=True)
    assert len(pages) == 11
    assert all(set(r) == {"id", "Last_Name"} for p in pages for r in p.records)


# Zoho's throttling ----------------------------------------------------------------------------------
def test_zohos_too_many_requests_is_waited_out_without_a_retry_after(
    admin_ctx: Context, host: Host, org: CrmOrg, server: FakeServer, sam: User
) -> None:
    """Zoho answers calls beyond the org's concurrency with TOO_MANY_REQUESTS and no
    Retry-After; the run waits and repeats them (even writes: the refused call did nothing)."""
    world = memory_exchange(admin_ctx, host)
    world.side("exchange", sam.crm_id, "contacts").put(Contact(last_name="Waited", email="w@example.com"))
    waits: list[float] = []
    body = {"code": "TOO_MANY_REQUESTS", "details": {}, "message": "too many concurrent requests", "status": "error"}
    refused = server.faults.add(path="/crm/v8/Contacts", method="POST", status=429, body=body, times=2)
    engine = Engine(admin_ctx, sleep=waits.append)

    (report,) = engine.run([sam], ["contacts"])

    assert report.entities["contacts"].sides["crm"].created == 1, report
    assert (refused.fired, waits) == (2, [2.0, 2.0])
    assert [c["Last_Name"] for c in org.list_records("Contacts").records] == ["Waited"]


def test_api_credits_spent_are_too_many_requests_until_the_day_has_passed(org: CrmOrg, server: FakeServer) -> None:
    org.limits.credits = 1
    token = org.refresh_access_token(CLIENT_ID, CLIENT_SECRET, org.issue_refresh_token(org.admin.id))
    client = CrmClient(server.base_url, CLIENT_ID, CLIENT_SECRET, "", False)
    client._token, client.api_domain = token, server.base_url

    client.org()
    with pytest.raises(TransientError) as throttled:
        client.org()

    assert "TOO_MANY_REQUESTS" in throttled.value.message
    assert throttled.value.retry_after == 2.0


# custom fields ------------------------------------------------------------------------------------
def test_missing_custom_fields_are_named_and_stop_their_module(store: ZohoCrmStore, org: CrmOrg) -> None:
    org.drop_field("Events", "Exsync_UID")

    missing = store.missing_fields()
    with pytest.raises(ConfigurationError) as refused:
        ZohoCrmStore(store.client, store.user).side("events")

    assert [f.describe() for f in missing] == ["Events.Exsync_UID (text, 255)"]
    assert "Events.Exsync_UID (text, 255)" in refused.value.message
    assert "--create-fields" in refused.value.hint
    store.side("contacts")  # the other modules sync on


def test_missing_custom_fields_are_created_through_the_api(store: ZohoCrmStore, org: CrmOrg) -> None:
    org.drop_field("Contacts", "Exsync_Link")
    org.drop_field("Contacts", "Exsync_Company")

    for required in store.missing_fields():
        store.create_field(required)

    assert store.missing_fields() == []
    fields = {f["api_name"]: f for f in org.field_resources("Contacts")}
    assert (fields["Exsync_Link"]["data_type"], fields["Exsync_Link"]["length"]) == ("text", 255)
    assert fields["Exsync_Company"]["custom_field"] is True


def test_every_field_the_product_writes_exists_in_the_fake_with_the_type_written(org: CrmOrg) -> None:
    written = {
        "Contacts": contact_to_native(
            Contact("Ann", "Lee", "a@example.com", "1", "2", "CTO", "IT", "Acme", "St", "C", "S", "Z", "JP", "n")
        ),
        "Tasks": MAPPINGS["tasks"].to_native(Task("Call", date(2030, 1, 2), "waiting", "high", "notes")),
        "Events": MAPPINGS["events"].to_native(
            Event(
                "Meet",
                datetime(2030, 1, 1, 9, tzinfo=UTC),
                datetime(2030, 1, 1, 10, tzinfo=UTC),
                attendees=("a@example.com",),
                recurrence="FREQ=DAILY;COUNT=2",
                ical_uid="u",
            )
        ),
    }
    for module, native in written.items():
        metadata = {f["api_name"]: f["data_type"] for f in org.field_resources(module)}
        sent = {*native, "Owner", LINK_FIELD}
        assert sent <= set(WRITTEN_FIELDS[module]), sent - set(WRITTEN_FIELDS[module])
        assert {name: metadata.get(name) for name in WRITTEN_FIELDS[module]} == WRITTEN_FIELDS[module]


def test_a_mail_fingerprint_ignores_the_time_zone_and_survives_an_odd_time() -> None:
    utc = {"from": {"email": "A@x.example"}, "subject": "Hi", "date_time": "2030-01-01T09:00:00+00:00"}
    listed = {"from": {"email": "a@x.example"}, "subject": "Hi", "sent_time": "2030-01-01T14:30:00+05:30"}
    odd = {"from": {"email": "a@x.example"}, "subject": "Hi", "sent_time": "Jan 1, 2030 09:00 AM"}

    assert mail_fingerprint(utc) == mail_fingerprint(listed)
    assert mail_fingerprint(odd) == ("a@x.example", "Hi", "Jan 1, 2030 09:00 AM")
