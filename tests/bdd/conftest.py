"""Step definitions of the acceptance suite (features/), in the words of the admin guide."""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pytest_bdd import given, parsers, then, when
from series_steps import *  # noqa: F403 - the steps of recurring_series.feature
from series_steps import Made

from fakes.cloud import GRAPH_CLIENT_ID, NO_RIGHT_ACCOUNT, Options
from fakes.ews.versions import SERVER_VERSIONS
from fakes.harness import ADMIN, World, address
from framework.state import audit_table
from plugins.crm.mapping import format_time


@pytest.fixture
def made() -> Made:
    """The series a scenario made in Outlook (features/recurring_series.feature)."""
    return Made()


# -- the org ------------------------------------------------------------------------------------
@given(parsers.parse('a CRM org on the "{edition}" edition'))
def org_on_edition(world: World, edition: str) -> None:
    world.cloud.reset(Options(edition=edition))


@given(parsers.parse('the CRM org lacks the custom field "{name}"'))
def crm_lacks_field(world: World, name: str) -> None:
    module, _, api_name = name.partition(".")
    world.cloud.crm.drop_field(module, api_name)


@then(parsers.parse('the CRM org has the custom field "{name}"'))
def crm_has_field(world: World, name: str) -> None:
    module, _, api_name = name.partition(".")
    assert api_name in [f["api_name"] for f in world.cloud.crm.field_resources(module)]


@given("the administrator has logged in to the CRM")
def admin_logged_in(world: World) -> None:
    world.crm_login(address(ADMIN))


@given(parsers.re(r'exsync is installed in an Enterprise org(?: for "(?P<scope>\w+)")?'))
def installed(world: World, scope: str | None) -> None:
    world.crm_login(address(ADMIN))
    assert world.run(ADMIN, f"exsync install --scope {scope or 'admins'} --accept-terms").exit_code == 0


@given(parsers.re(r'an org synced over "(?P<exchange>ews|graph)"(?P<salesinbox> with SalesInbox in use)?'))
def org_synced_over(world: World, exchange: str, salesinbox: str | None) -> None:
    world.cloud.reset(Options(sales_inbox=bool(salesinbox)))
    world.exchange = exchange
    installed(world, "all")
    result = world.ews_impersonation() if exchange == "ews" else world.graph_client_credentials()
    assert result.exit_code == 0, result.output
    enable_users(world, ADMIN)


@given(parsers.parse('the users "{names}" are enabled for sync'))
def enable_users(world: World, names: str) -> None:
    emails = " ".join(address(n.strip()) for n in names.split(","))
    result = world.run(ADMIN, f"exsync users enable {emails}")
    assert result.exit_code == 0, result.output


# -- commands -----------------------------------------------------------------------------------
@given(parsers.re(r'the administrator runs "(?P<command>[^"]+)"(?: answering "(?P<answer>\w+)")?'))
@when(parsers.re(r'the administrator runs "(?P<command>[^"]+)"(?: answering "(?P<answer>\w+)")?'))
def admin_runs(world: World, command: str, answer: str | None) -> None:
    world.run(ADMIN, command, answer=f"{answer}\n" if answer else None)


@given(parsers.parse('"{user}" runs "{command}"'))
@when(parsers.parse('"{user}" runs "{command}"'))
def user_runs(world: World, user: str, command: str) -> None:
    world.run(user, command)


@then("the command succeeds")
def command_succeeds(world: World) -> None:
    assert world.last.exit_code == 0, world.last.output


@then("the command fails")
def command_fails(world: World) -> None:
    assert world.last.exit_code != 0, world.last.output


@then(parsers.parse('the command fails with "{text}"'))
def command_fails_with(world: World, text: str) -> None:
    assert world.last.exit_code != 0, world.last.output
    assert text.lower() in _flat(world.last.output).lower(), world.last.output


@then(parsers.parse('the output mentions "{text}"'))
def output_mentions(world: World, text: str) -> None:
    assert text.lower() in _flat(world.last.output).lower(), world.last.output


def _flat(text: str) -> str:
    return " ".join(text.split())


# -- EWS ----------------------------------------------------------------------------------------
#: Behaviours whose scenarios run twice: over Windows authentication (Basic off) and over Basic.
EWS_AUTH_BEHAVIOURS = {"B07", "B08", "B09", "B10", "B11", "B17"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the Exchange Server scenarios over NTLM (Basic switched off on the server) and over Basic."""
    tags = {marker.name for marker in metafunc.definition.iter_markers()}
    if tags & EWS_AUTH_BEHAVIOURS and "ews_auth" in metafunc.fixturenames:
        metafunc.parametrize("ews_auth", ["ntlm", "basic"], indirect=True)


@pytest.fixture(autouse=True)
def ews_auth(request: pytest.FixtureRequest, world: World) -> str:
    """The authentication type of the scenario: 'ntlm' also switches Basic off on the fake server."""
    chosen: str = getattr(request, "param", "auto")
    world.ews_auth_type = chosen
    if chosen == "ntlm":
        world.cloud.ews.basic_auth = False
    return chosen


@given("Basic authentication is switched off on the Exchange server")
def ews_basic_off(world: World) -> None:
    world.cloud.ews.basic_auth = False


@given("the Exchange server offers only Negotiate")
def ews_negotiate_only(world: World) -> None:
    world.cloud.ews.basic_auth = False
    world.cloud.ews.windows_auth = ("Negotiate",)


@given(parsers.parse('the administrator authenticates EWS with impersonation and auth type "{kind}"'))
@when(parsers.parse('the administrator authenticates EWS with impersonation and auth type "{kind}"'))
def ews_impersonation_with(world: World, kind: str) -> None:
    world.ews_auth_type = kind
    world.ews_impersonation()


@then("the Exchange server authenticated every request with Windows authentication")
def ews_windows_only(world: World) -> None:
    used = world.cloud.ews.schemes_used
    assert used["NTLM"] + used["Negotiate"] > 0, used
    assert used["Basic"] == 0, used


@given("the administrator authenticates EWS with impersonation")
@when("the administrator authenticates EWS with impersonation")
def ews_impersonation(world: World) -> None:
    world.ews_impersonation()


@when("the administrator authenticates EWS with impersonation over plain http without the insecure flag")
def ews_plain_http(world: World) -> None:
    world.ews_impersonation(endpoint=world.cloud.ews_url.replace("https://", "http://"))


@when("the administrator authenticates EWS with impersonation without trusting the server's CA")
def ews_untrusted(world: World) -> None:
    world.ews_impersonation(trust_ca=False)


@when("the administrator authenticates EWS with impersonation as an account without the right")
def ews_without_right(world: World) -> None:
    world.ews_impersonation(email=NO_RIGHT_ACCOUNT)


@when("the administrator authenticates EWS with impersonation using a wrong password")
def ews_wrong_password(world: World) -> None:
    world.ews_impersonation(password="not-the-password")


@given("EWS is disabled on the Exchange server")
def ews_disabled(world: World) -> None:
    world.cloud.ews.enabled = False


@given(parsers.parse('the Exchange server announces version "{version}"'))
def ews_version(world: World, version: str) -> None:
    world.cloud.ews.version = SERVER_VERSIONS[version]


@given("the administrator chooses individual EWS credentials")
@when("the administrator chooses individual EWS credentials")
def ews_individual(world: World) -> None:
    world.ews_individual()


@given(parsers.parse('"{user}" stores their own EWS credentials'))
@when(parsers.parse('"{user}" stores their own EWS credentials'))
def ews_own(world: World, user: str) -> None:
    world.ews_own_credentials(user)


@when(parsers.parse('"{user}" stores EWS credentials for "{other}"'))
def ews_for_other(world: World, user: str, other: str) -> None:
    world.ews_own_credentials(user, for_user=other)


@when(parsers.parse('"{user}" updates their EWS password'))
def ews_update_password(world: World, user: str) -> None:
    email = address(user)
    box = world.cloud.tenant.mailbox(email)
    box.password = "A-new-Passw0rd"
    world.run(user, f"exsync auth update-password --user {email} --password A-new-Passw0rd")


@then("no output, log or audit entry contains the password")
def password_nowhere(world: World, caplog: pytest.LogCaptureFixture) -> None:
    from fakes.cloud import SERVICE_PASSWORD

    assert SERVICE_PASSWORD not in world.all_output()
    assert SERVICE_PASSWORD not in caplog.text
    with world.state.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_table)).all()
    assert rows and all(SERVICE_PASSWORD not in str(tuple(row)) for row in rows)


@then(parsers.parse('the auth status says "{text}"'))
def auth_status_says(world: World, text: str) -> None:
    world.run(ADMIN, "exsync --json auth status")
    assert text in world.last.stdout, world.last.output


# -- Graph --------------------------------------------------------------------------------------
@given(parsers.parse('"{user}" signs in to Microsoft 365 with the authorization-code flow'))
def graph_auth_code(world: World, user: str) -> None:
    result = world.graph_auth_code(user)
    assert result.exit_code == 0, result.output


@given("the administrator authenticates Microsoft 365 with client credentials")
@when("the administrator authenticates Microsoft 365 with client credentials")
def graph_client_credentials(world: World) -> None:
    world.graph_client_credentials()


@given("the Microsoft 365 access tokens expire")
@when("the Microsoft 365 access tokens expire")
def tokens_expire(world: World) -> None:
    world.cloud.authority.expire_access_tokens()


@given(parsers.parse('the app registration is granted the application permission "{permission}"'))
def grant_app_permission(world: World, permission: str) -> None:
    from fakes.cloud import GRAPH_CLIENT_ID

    world.cloud.authority.grant_app_roles(GRAPH_CLIENT_ID, [permission])


@given(parsers.parse('the app registration lacks the application permissions "{permissions}"'))
def revoke_app_permissions(world: World, permissions: str) -> None:
    from fakes.cloud import GRAPH_CLIENT_ID

    world.cloud.authority.revoke_app_roles(GRAPH_CLIENT_ID, [p.strip() for p in permissions.split(",")])


@when(parsers.parse('"{user}" revokes consent in Microsoft 365'))
def revoke_consent(world: World, user: str) -> None:
    from fakes.cloud import GRAPH_CLIENT_ID

    world.cloud.authority.revoke_consent(GRAPH_CLIENT_ID, address(user))


# -- data in the mailbox ------------------------------------------------------------------------
def _box(world: World, user: str) -> Any:
    return world.cloud.tenant.mailbox(address(user))


def _graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


@given(parsers.parse('the mailbox of "{user}" has a contact "{name}" with e-mail "{email}"'))
def mailbox_contact(world: World, user: str, name: str, email: str) -> None:
    world.cloud.tenant.create(_box(world, user), "contacts", _contact_resource(name, email))


def _contact_resource(name: str, email: str) -> dict[str, Any]:
    """A mailbox contact as the tenant model holds it (Graph's shape)."""
    first, _, last = name.partition(" ")
    return {
        "givenName": first,
        "surname": last,
        "displayName": name,
        "emailAddresses": [{"name": name, "address": email}],
    }


@given(parsers.parse('the mailbox of "{user}" has a task "{title}" due in {days:d} days'))
def mailbox_task(world: World, user: str, title: str, days: int) -> None:
    due = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days)
    data = {"title": title, "status": "notStarted", "importance": "normal", "dueDateTime": _graph_time(due)}
    world.cloud.tenant.create(_box(world, user), "tasks", data)


EVENT_AT = r'the mailbox of "(?P<user>[\w.]+)" has an event "(?P<subject>[^"]+)" (?P<when>\d+ days ago|in \d+ days)'


@given(parsers.re(EVENT_AT))
def mailbox_event(world: World, user: str, subject: str, when: str) -> None:
    days = int("".join(c for c in when if c.isdigit()))
    now = datetime.now(UTC).replace(microsecond=0, second=0, minute=0)
    start = now + timedelta(days=-days if "ago" in when else days)
    data = {
        "subject": subject,
        "start": _graph_time(start),
        "end": _graph_time(start + timedelta(hours=1)),
        "isAllDay": False,
        "iCalUId": f"uid-{subject.replace(' ', '-').lower()}",
        "type": "singleInstance",
    }
    world.cloud.tenant.create(_box(world, user), "calendar", data)


@given(parsers.parse('the mailbox of "{user}" has a series "{subject}" on the second Tuesday of every month'))
def mailbox_second_tuesday_series(world: World, user: str, subject: str) -> None:
    month = (datetime.now(UTC) - timedelta(days=40)).replace(day=1, hour=10, minute=0, second=0, microsecond=0)
    tuesdays = [month + timedelta(days=n) for n in range(14) if (month + timedelta(days=n)).weekday() == 1]
    start = tuesdays[1]
    data = {
        "subject": subject,
        "start": _graph_time(start),
        "end": _graph_time(start + timedelta(hours=1)),
        "isAllDay": False,
        "recurrence": {
            "pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"], "index": "second"},
            "range": {"type": "noEnd", "startDate": start.date().isoformat(), "recurrenceTimeZone": "UTC"},
        },
    }
    world.cloud.tenant.create(_box(world, user), "calendar", data)


@when(parsers.parse('"{user}" moves one occurrence of "{subject}" and cancels another in Outlook'))
def outlook_edits_occurrences(world: World, user: str, subject: str) -> None:
    box = _box(world, user)
    (master,) = [i for i in world.cloud.tenant.items(box, "calendar") if i.data.get("subject") == subject]
    token = world.cloud.authority.issue_token(GRAPH_CLIENT_ID, box.address, scopes=["Calendars.ReadWrite"])
    verify = ssl.create_default_context(cafile=str(world.cloud.ca.bundle_path))
    now = datetime.now(UTC)
    window = {"startDateTime": now.isoformat(), "endDateTime": (now + timedelta(days=120)).isoformat()}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{world.cloud.graph_url}/v1.0", headers=headers, verify=verify) as graph:
        first, second, *_ = graph.get(f"/me/events/{master.id}/instances", params=window).json()["value"]
        graph.patch(f"/me/events/{first['id']}", json={"location": {"displayName": "Room 2"}}).raise_for_status()
        graph.delete(f"/me/events/{second['id']}").raise_for_status()


@then(parsers.parse('the CRM has one event "{subject}" repeating "{rule}"'))
def crm_has_one_series(world: World, subject: str, rule: str) -> None:
    (record,) = [r for r in _crm_find(world, "Events", "Event_Title", subject) if r.get("Recurring_Activity")]
    assert record["Recurring_Activity"]["RRULE"] == rule, record


@given(parsers.parse('the mailbox of "{user}" received a mail "{subject}" from "{sender}" copied to "{cc}"'))
@when(parsers.parse('the mailbox of "{user}" received a mail "{subject}" from "{sender}" copied to "{cc}"'))
def mailbox_mail(world: World, user: str, subject: str, sender: str, cc: str) -> None:
    sent = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    stamp = sent.strftime("%Y-%m-%dT%H:%M:%SZ")
    data = {
        "subject": subject,
        "internetMessageId": f"<{subject.lower()}.{sent.timestamp():.0f}@example.com>",
        "body": {"contentType": "text", "content": f"About {subject}"},
        "from": {"emailAddress": {"address": sender, "name": sender}},
        "toRecipients": [{"emailAddress": {"address": address(user), "name": user}}],
        "ccRecipients": [{"emailAddress": {"address": cc, "name": cc}}],
        "sentDateTime": stamp,
        "receivedDateTime": stamp,
        "hasAttachments": False,
    }
    world.cloud.tenant.create(_box(world, user), "inbox", data)


def _mailbox_contacts(world: World, user: str, email: str) -> list[Any]:
    return [
        item
        for item in world.cloud.tenant.items(_box(world, user), "contacts")
        if any(a.get("address", "").lower() == email.lower() for a in item.data.get("emailAddresses", []))
    ]


@then(parsers.parse('the mailbox of "{user}" has a contact with e-mail "{email}"'))
def mailbox_has_contact(world: World, user: str, email: str) -> None:
    assert _mailbox_contacts(world, user, email)


@then(parsers.parse('the mailbox of "{user}" has no contact with e-mail "{email}"'))
def mailbox_has_no_contact(world: World, user: str, email: str) -> None:
    assert not _mailbox_contacts(world, user, email)


@then(parsers.parse('the mailbox of "{user}" has exactly {count:d} contact with e-mail "{email}"'))
def mailbox_has_exactly(world: World, user: str, count: int, email: str) -> None:
    assert len(_mailbox_contacts(world, user, email)) == count


@then(parsers.parse('the mailbox of "{user}" still has the event "{subject}"'))
def mailbox_still_has_event(world: World, user: str, subject: str) -> None:
    assert any(i.data.get("subject") == subject for i in world.cloud.tenant.items(_box(world, user), "calendar"))


# -- data in the CRM ----------------------------------------------------------------------------
def _crm_user(world: World, user: str) -> Any:
    return next(u for u in world.cloud.crm.users() if u.email == address(user))


@given(parsers.parse('the CRM has a contact "{name}" with e-mail "{email}" owned by "{user}"'))
def crm_contact(world: World, name: str, email: str, user: str) -> None:
    first, _, last = name.partition(" ")
    world.cloud.crm.insert("Contacts", {"First_Name": first, "Last_Name": last, "Email": email}, _crm_user(world, user))


CONTACT_AT_ACCOUNT = (
    'the CRM has a contact "{name}" with e-mail "{email}" at the account "{account}" with the deal "{deal}"'
)


@given(parsers.parse(CONTACT_AT_ACCOUNT))
def crm_contact_with_account(world: World, name: str, email: str, account: str, deal: str) -> None:
    owner = _crm_user(world, ADMIN)
    crm = world.cloud.crm
    acct = crm.insert("Accounts", {"Account_Name": account}, owner)
    first, _, last = name.partition(" ")
    contact = crm.insert(
        "Contacts",
        {"First_Name": first, "Last_Name": last, "Email": email, "Account_Name": {"id": acct["id"]}},
        owner,
    )
    crm.insert(
        "Deals",
        {
            "Deal_Name": deal,
            "Stage": "Qualification",
            "Closing_Date": "2030-12-31",
            "Account_Name": {"id": acct["id"]},
            "Contact_Name": {"id": contact["id"]},
        },
        owner,
    )


@given(parsers.parse('the CRM has a lead "{name}" with e-mail "{email}"'))
def crm_lead(world: World, name: str, email: str) -> None:
    first, _, last = name.partition(" ")
    world.cloud.crm.insert(
        "Leads", {"First_Name": first, "Last_Name": last, "Email": email, "Company": "Indie"}, _crm_user(world, ADMIN)
    )


def _crm_find(world: World, module: str, field: str, value: str) -> list[dict[str, Any]]:
    return list(world.cloud.crm.search(module, [(field, value)]).records)


@then(parsers.parse('the CRM has a contact with e-mail "{email}" owned by "{user}"'))
def crm_has_contact(world: World, email: str, user: str) -> None:
    found = _crm_find(world, "Contacts", "Email", email)
    assert found, f"no CRM contact {email}; last output: {world.last.output}"
    assert found[0]["Owner"]["id"] == _crm_user(world, user).id


@then(parsers.parse('the CRM has no contact with e-mail "{email}"'))
def crm_has_no_contact(world: World, email: str) -> None:
    assert not _crm_find(world, "Contacts", "Email", email)


@then(parsers.parse('the CRM has exactly {count:d} contact with e-mail "{email}"'))
def crm_has_exactly(world: World, count: int, email: str) -> None:
    assert len(_crm_find(world, "Contacts", "Email", email)) == count


@then(parsers.parse('the CRM has a task "{subject}" owned by "{user}"'))
def crm_has_task(world: World, subject: str, user: str) -> None:
    found = _crm_find(world, "Tasks", "Subject", subject)
    assert found and found[0]["Owner"]["id"] == _crm_user(world, user).id


@then(parsers.parse('the CRM has an event "{subject}"'))
def crm_has_event(world: World, subject: str) -> None:
    assert _crm_find(world, "Events", "Event_Title", subject)


@then(parsers.parse('the CRM has no event "{subject}"'))
def crm_has_no_event(world: World, subject: str) -> None:
    assert not _crm_find(world, "Events", "Event_Title", subject)


@then(parsers.parse('the CRM has no mail "{subject}"'))
def crm_has_no_mail(world: World, subject: str) -> None:
    assert subject not in [m["subject"] for m in world.cloud.crm.all_mails()]


MAIL_LISTED = (
    r'the mail "(?P<subject>[^"]+)" is listed in the CRM under the (?P<kind>contact|account|deal|lead) "(?P<key>[^"]+)"'
)


@then(parsers.re(MAIL_LISTED))
def mail_listed_under(world: World, subject: str, kind: str, key: str) -> None:
    module, field = {
        "contact": ("Contacts", "Email"),
        "lead": ("Leads", "Email"),
        "account": ("Accounts", "Account_Name"),
        "deal": ("Deals", "Deal_Name"),
    }[kind]
    (record,) = _crm_find(world, module, field, key)
    subjects = [m["subject"] for m in world.cloud.crm.mails_of(module, record["id"])]
    assert subject in subjects, subjects


@then(parsers.parse('the CRM has {count:d} mails linked to the contact "{email}"'))
def mails_linked(world: World, count: int, email: str) -> None:
    (record,) = _crm_find(world, "Contacts", "Email", email)
    assert len(world.cloud.crm.mails_of("Contacts", record["id"])) == count


# -- conflicts ----------------------------------------------------------------------------------
@when(parsers.parse('the contact "{email}" gets job title "{title}" in the CRM'))
def crm_title(world: World, email: str, title: str) -> None:
    (record,) = _crm_find(world, "Contacts", "Email", email)
    world.cloud.crm.update("Contacts", record["id"], {"Title": title})


@when(parsers.parse('the contact "{email}" gets job title "{title}" in the mailbox of "{user}"'))
def mailbox_title(world: World, email: str, title: str, user: str) -> None:
    (item,) = _mailbox_contacts(world, user, email)
    world.cloud.tenant.update(_box(world, user), "contacts", item.id, {"jobTitle": title})


@then(parsers.parse('the contact "{email}" has job title "{title}" on both sides'))
def title_on_both_sides(world: World, email: str, title: str) -> None:
    (record,) = _crm_find(world, "Contacts", "Email", email)
    (item,) = _mailbox_contacts(world, ADMIN, email)
    assert (record.get("Title"), item.data.get("jobTitle")) == (title, title)


# -- state, settings, audit ---------------------------------------------------------------------
@then(parsers.parse('the settings still say sync type "{sync_type}"'))
def settings_sync_type(world: World, sync_type: str) -> None:
    assert world.settings.sync_type == sync_type


@then("exsync is not installed")
def not_installed(world: World) -> None:
    assert not world.settings.installed


@then("no Exchange authentication is set up")
def no_auth(world: World) -> None:
    assert world.settings.auth_method == ""


@then("the vault holds no Exchange credentials")
def vault_empty(world: World) -> None:
    assert world.vault_names("auth/") == []


@then("the vault holds no CRM login")
def vault_has_no_crm_login(world: World) -> None:
    assert world.vault_names("crm/login/") == []


@when("the administrator logs in to the CRM again")
def admin_logs_in_again(world: World) -> None:
    world.crm_login(address(ADMIN))


@then(parsers.re(r'the audit log has an? "(?P<outcome>\w+)" entry for action "(?P<action>[\w-]+)"'))
def audit_has(world: World, outcome: str, action: str) -> None:
    with world.state.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_table).where(audit_table.c.action == action, audit_table.c.outcome == outcome)
        ).all()
    assert rows, f"no {outcome} {action} entry"


@given(parsers.parse("the audit log has an entry from {days:d} days ago"))
def old_audit_entry(world: World, days: int) -> None:
    with world.state.transaction() as conn:
        conn.execute(
            audit_table.insert().values(
                at=datetime.now(UTC) - timedelta(days=days),
                actor="someone",
                user_id="",
                entity="",
                action="ancient",
                outcome="ok",
                detail="{}",
            )
        )


@then("the last sync wrote nothing")
def last_sync_wrote_nothing(world: World) -> None:
    assert world.last.exit_code == 0, world.last.output
    (run,) = world.state.runs(limit=1)
    for entity in run.summary["entities"].values():
        for side in ("crm", "exchange"):
            assert entity[side]["created"] == entity[side]["updated"] == entity[side]["deleted"] == 0, entity


@then(parsers.parse('the status of "{user}" says they need attention'))
def needs_attention(world: World, user: str) -> None:
    world.run(ADMIN, "exsync --json status")
    rows = {row["email"]: row for row in world.json()}
    assert rows[address(user)]["needs_attention"], rows[address(user)]


@then(parsers.parse('the JSON output\'s recent run for "{user}" created {count:d} contact in the CRM'))
def dashboard_run(world: World, user: str, count: int) -> None:
    runs = [r for r in world.json()["recent_runs"] if r["user"] == address(user)]
    assert runs[0]["entities"]["contacts"]["crm"]["created"] == count


@then(parsers.parse('the JSON output has "{key}" = "{value}"'))
def json_has(world: World, key: str, value: str) -> None:
    assert json.dumps(world.json()[key]).strip('"').lower() == value.lower()


@then(parsers.re(r'the JSON status of "(?P<user>[\w.]+)" has result "(?P<result>\w*)" and (?P<rest>.+)'))
def json_status(world: World, user: str, result: str, rest: str) -> None:
    rows = {row["email"]: row for row in world.json()}
    row = rows[address(user)]
    assert row["result"] == result, row
    if rest.startswith("created"):
        assert row["counts"].get("created") == int(rest.split()[1]), row
    else:
        assert row["last_run"] == rest.split('"')[1], row


@then(parsers.parse('the JSON status of "{user}" has its next run in {minutes:d} minutes'))
def json_status_next_run(world: World, user: str, minutes: int) -> None:
    rows = {row["email"]: row for row in world.json()}
    due = datetime.fromisoformat(rows[address(user)]["next_run"])
    expected = datetime.now(UTC) + timedelta(minutes=minutes)
    assert abs((due - expected).total_seconds()) < 120, rows[address(user)]


@then(parsers.parse('the JSON status of "{user}" mentions "{text}" as last error'))
def json_status_error(world: World, user: str, text: str) -> None:
    rows = {row["email"]: row for row in world.json()}
    assert text.lower() in rows[address(user)]["last_error"].lower(), rows[address(user)]


@then(parsers.parse('the JSON output lists only "{outcome}" entries'))
def json_only_outcome(world: World, outcome: str) -> None:
    entries = world.json()
    assert entries and {e["outcome"] for e in entries} == {outcome}


@then(parsers.parse('the JSON output has an entry for action "{action}"'))
def json_has_action(world: World, action: str) -> None:
    assert any(e["action"] == action for e in world.json()), world.last.stdout


@then("the JSON output has no entry older than 30 days")
def json_no_old_entries(world: World) -> None:
    entries = world.json()
    cutoff = datetime.now(UTC) - timedelta(days=30, minutes=1)
    assert entries and all(datetime.fromisoformat(e["at"]) >= cutoff for e in entries)


# -- privacy: what never leaves the mailbox ------------------------------------------------------
MARKED_EVENT = (
    r'the mailbox of "(?P<user>[\w.]+)" has an event "(?P<subject>[^"]+)" in (?P<days>\d+) days'
    r' (?:marked "(?P<sensitivity>\w+)"|in the category "(?P<category>[^"]+)")'
)


@given(parsers.re(MARKED_EVENT))
def mailbox_event_marked(world: World, user: str, subject: str, days: str, sensitivity: str, category: str) -> None:
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=int(days))
    data = {
        "subject": subject,
        "start": _graph_time(start),
        "end": _graph_time(start + timedelta(hours=1)),
        "isAllDay": False,
        "type": "singleInstance",
        "sensitivity": sensitivity or "normal",
        "categories": [category] if category else [],
    }
    world.cloud.tenant.create(_box(world, user), "calendar", data)


def _mailbox_event(world: World, user: str, subject: str) -> Any:
    return next(i for i in world.cloud.tenant.items(_box(world, user), "calendar") if i.data.get("subject") == subject)


@when(parsers.parse('the event "{subject}" is marked "{sensitivity}" in the mailbox of "{user}"'))
def event_marked(world: World, subject: str, sensitivity: str, user: str) -> None:
    item = _mailbox_event(world, user, subject)
    world.cloud.tenant.update(_box(world, user), "calendar", item.id, {"sensitivity": sensitivity})


@when(parsers.parse('the event "{subject}" is renamed "{new}" in the CRM'))
def crm_event_renamed(world: World, subject: str, new: str) -> None:
    (record,) = _crm_find(world, "Events", "Event_Title", subject)
    world.cloud.crm.update("Events", record["id"], {"Event_Title": new})


@then(parsers.parse('the mailbox of "{user}" has no event "{subject}"'))
def mailbox_has_no_event(world: World, user: str, subject: str) -> None:
    assert not any(i.data.get("subject") == subject for i in world.cloud.tenant.items(_box(world, user), "calendar"))


@then(parsers.parse('the CRM has a mail "{subject}"'))
def crm_has_mail(world: World, subject: str) -> None:
    assert subject in [m["subject"] for m in world.cloud.crm.all_mails()], world.last.output


@then(parsers.parse('no audit entry mentions "{text}"'))
def audit_never_mentions(world: World, text: str) -> None:
    with world.state.engine.connect() as conn:
        details = [row.detail for row in conn.execute(sa.select(audit_table)).all()]
    assert details and not [d for d in details if text.lower() in d.lower()]


@then(parsers.parse('the status of "{user}" shows {count:d} withheld as "{reason}"'))
def status_shows_withheld(world: World, user: str, count: int, reason: str) -> None:
    world.run(ADMIN, "exsync --json status")
    row = {row["email"]: row for row in world.json()}[address(user)]
    assert row["withheld"].get(reason) == count, row


@then(parsers.parse("the dashboard's last run withheld {count:d} and it shows {pairs:d} withheld pair"))
def dashboard_shows_withheld(world: World, count: int, pairs: int) -> None:
    world.run(ADMIN, "exsync --json dashboard")
    data = world.json()
    last = data["recent_runs"][0]["entities"]
    assert sum(sum(e.get("withheld", {}).values()) for e in last.values()) == count, last
    assert sum(data["withheld_pairs"].values()) == pairs, data["withheld_pairs"]


def _as_marked_in_outlook(data: dict[str, Any], sensitivity: str) -> dict[str, Any]:
    """``data`` as the fake keeps an item whose Sensitivity was set over EWS: Graph has no such
    property on contacts and messages, so only EWS shows it."""
    return {**data, "_ews": {"extra": {"Sensitivity": sensitivity.capitalize()}}}


@given(
    parsers.parse(
        'the mailbox of "{user}" has a contact "{name}" with e-mail "{email}" marked "{sensitivity}" in Outlook'
    )
)
def mailbox_contact_marked(world: World, user: str, name: str, email: str, sensitivity: str) -> None:
    data = _contact_resource(name, email)
    world.cloud.tenant.create(_box(world, user), "contacts", _as_marked_in_outlook(data, sensitivity))


@given(
    parsers.parse(
        'the mailbox of "{user}" received a mail "{subject}" from "{sender}" marked "{sensitivity}" in Outlook'
    )
)
def mailbox_mail_marked(world: World, user: str, subject: str, sender: str, sensitivity: str) -> None:
    stamp = (datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = {
        "subject": subject,
        "internetMessageId": f"<{subject.replace(' ', '.').lower()}@example.com>",
        "body": {"contentType": "text", "content": f"About {subject}"},
        "from": {"emailAddress": {"address": sender, "name": sender}},
        "toRecipients": [{"emailAddress": {"address": address(user), "name": user}}],
        "sentDateTime": stamp,
        "receivedDateTime": stamp,
    }
    world.cloud.tenant.create(_box(world, user), "inbox", _as_marked_in_outlook(data, sensitivity))


@given(parsers.parse('the CRM has an event "{subject}" in {days:d} days owned by "{user}"'))
def crm_event(world: World, subject: str, days: int, user: str) -> None:
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=days)
    data = {
        "Event_Title": subject,
        "Start_DateTime": format_time(start),
        "End_DateTime": format_time(start + timedelta(hours=1)),
    }
    world.cloud.crm.insert("Events", data, _crm_user(world, user))


@then(parsers.parse('the event "{subject}" in the mailbox of "{user}" is in the category "{category}"'))
def mailbox_event_in_category(world: World, subject: str, user: str, category: str) -> None:
    assert category in (_mailbox_event(world, user, subject).data.get("categories") or [])


@then(parsers.parse('the user profile of "{user}" tracks {entity} as "{mode}"'))
def profile_tracks(world: World, user: str, entity: str, mode: str) -> None:
    world.run(ADMIN, f"exsync --json users show {address(user)}")
    assert world.json()["privacy"]["tracking"][entity] == mode, world.last.output
