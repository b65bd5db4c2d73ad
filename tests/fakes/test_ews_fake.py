"""The fake EWS, driven by exchangelib exactly as a client product would use it."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import requests
from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    Account,
    CalendarItem,
    Configuration,
    Contact,
    Credentials,
    EWSDate,
    EWSDateTime,
    EWSTimeZone,
    ExtendedProperty,
    FaultTolerance,
    HTMLBody,
    Message,
    Task,
)
from exchangelib.errors import (
    ErrorAccessDenied,
    ErrorImpersonateUserDenied,
    ErrorInvalidContactEmailAddress,
    ErrorInvalidSyncStateData,
    ErrorIrresolvableConflict,
    ErrorItemNotFound,
    ErrorNonExistentMailbox,
    ErrorServerBusy,
    TransportError,
    UnauthorizedError,
)
from exchangelib.fields import InvalidField
from exchangelib.indexed_properties import EmailAddress, PhoneNumber, PhysicalAddress
from exchangelib.properties import Attendee, Mailbox
from exchangelib.recurrence import (
    AbsoluteMonthlyPattern,
    DailyPattern,
    EndDatePattern,
    NoEndPattern,
    Recurrence,
    WeeklyPattern,
)
from exchangelib.services import GetFolder

from fakes.ews import EwsApi, trust_ca
from fakes.server import FakeCA, FakeServer
from fakes.tenant import Tenant

UTC_TZ = EWSTimeZone("UTC")
LINK_SET = "c11ff724-aa03-4555-9952-8fa248a11c3e"
ALICE, ALICE_PW = "alice@contoso.example", "alice-pw"
SVC, SVC_PW = "svc@contoso.example", "svc-pw"
BOB, BOB_PW = "bob@contoso.example", "bob-pw"


class ExsyncLink(ExtendedProperty):
    """The cross-link id the sync product stores on items."""

    property_set_id = LINK_SET
    property_name = "exsyncLink"
    property_type = "String"


# fixtures ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> FakeCA:
    return FakeCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def tenant() -> Tenant:
    tenant = Tenant()
    tenant.add_user(ALICE, "Alice Example", ALICE_PW)
    tenant.add_user(BOB, "Bob Example", BOB_PW)
    tenant.add_user(SVC, "Sync Service", SVC_PW, can_impersonate=True)
    return tenant


@pytest.fixture
def api(tenant: Tenant) -> EwsApi:
    return EwsApi(tenant)


@pytest.fixture(scope="module")
def shared_server(ca: FakeCA) -> Iterator[FakeServer]:
    """One HTTPS server for the module; each test installs its own EwsApi as the handler."""
    server = FakeServer(EwsApi(Tenant()), ca=ca).start()
    yield server
    server.stop()


@pytest.fixture
def server(shared_server: FakeServer, api: EwsApi, ca: FakeCA) -> Iterator[FakeServer]:
    """The server answering with this test's ``api``, trusted by exchangelib."""
    shared_server.handler = api
    with trust_ca(ca.bundle_path):
        yield shared_server


def connect(
    server: FakeServer,
    access_type: str = DELEGATE,
    *,
    address: str = ALICE,
    login: str | None = None,
    password: str | None = None,
    **config: Any,
) -> Account:
    """An exchangelib account: Alice's own login (delegate) or the service account (impersonation)."""
    default_login, default_password = (ALICE, ALICE_PW) if access_type == DELEGATE else (SVC, SVC_PW)
    configuration = Configuration(
        service_endpoint=f"{server.base_url}/EWS/Exchange.asmx",
        credentials=Credentials(login or default_login, password or default_password),
        auth_type=BASIC,
        **config,
    )
    return Account(address, config=configuration, autodiscover=False, access_type=access_type, default_timezone=UTC_TZ)


@pytest.fixture(params=[DELEGATE, IMPERSONATION])
def account(request: pytest.FixtureRequest, server: FakeServer) -> Account:
    return connect(server, request.param)


@pytest.fixture
def alice(tenant: Tenant) -> Any:
    return tenant.mailbox(ALICE)


@pytest.fixture
def link_property() -> Iterator[None]:
    """Register :class:`ExsyncLink` as ``exsync_link``, replacing (and afterwards restoring) any other."""
    previous = {}
    for cls in (Contact, CalendarItem):
        with contextlib.suppress(InvalidField):
            previous[cls] = cls.get_field_by_fieldname("exsync_link").value_cls
            cls.deregister("exsync_link")
        cls.register("exsync_link", ExsyncLink)
    yield
    for cls in (Contact, CalendarItem):
        cls.deregister("exsync_link")
        if cls in previous:
            cls.register("exsync_link", previous[cls])


def at(day: int, hour: int = 9) -> EWSDateTime:
    return EWSDateTime(2025, 3, day, hour, tzinfo=UTC_TZ)


# folders, auth, versions ---------------------------------------------------------------------------
def test_distinguished_folders_and_hierarchy(account: Account) -> None:
    assert account.contacts.name == "Contacts"
    assert account.calendar.folder_class == "IPF.Appointment"
    assert account.tasks.name == "Tasks"
    assert account.inbox.name == "Inbox"
    assert account.sent.name == "Sent Items"
    names = {folder.name for folder in account.root.walk()}
    assert {"Top of Information Store", "Contacts", "Calendar", "Tasks", "Inbox", "Sent Items"} <= names


def test_wrong_password_is_unauthorized(server: FakeServer) -> None:
    with pytest.raises(UnauthorizedError):
        _ = connect(server, password="wrong", version=None).contacts


def test_disabled_ews_answers_403_not_401(server: FakeServer, tenant: Tenant, ca: FakeCA) -> None:
    server.handler = EwsApi(tenant, enabled=False)
    with pytest.raises(TransportError, match="Code: 403"):
        _ = connect(server).contacts
    wrong = requests.post(f"{server.base_url}/EWS/Exchange.asmx", auth=(ALICE, "x"), verify=str(ca.bundle_path))
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == 'Negotiate, NTLM, Basic realm="contoso.example"'


def test_impersonation_needs_the_right(server: FakeServer) -> None:
    account = connect(server, IMPERSONATION, login=BOB, password=BOB_PW)
    with pytest.raises(ErrorImpersonateUserDenied):
        _ = account.contacts


def test_impersonating_an_unknown_user(server: FakeServer) -> None:
    with pytest.raises(ErrorNonExistentMailbox):
        _ = connect(server, IMPERSONATION, address="nobody@contoso.example").root


def test_delegate_cannot_open_another_mailbox(server: FakeServer) -> None:
    with pytest.raises(ErrorAccessDenied):
        _ = connect(server, DELEGATE, address=BOB).root


@pytest.mark.parametrize(
    ("version", "api_version", "build"),
    [
        ("Exchange2007_SP1", "Exchange2007_SP1", (8, 1)),
        ("Exchange2010", "Exchange2010", (14, 0)),
        ("Exchange2010_SP2", "Exchange2010_SP2", (14, 2)),
        ("Exchange2013", "Exchange2013", (15, 0)),
        ("Exchange2013_SP1", "Exchange2013_SP1", (15, 0)),
        ("Exchange2016", "Exchange2016", (15, 1)),
    ],
)
def test_version_is_detected(
    server: FakeServer, tenant: Tenant, version: str, api_version: str, build: tuple[int, int]
) -> None:
    server.handler = EwsApi(tenant, version=version)
    account = connect(server)
    assert account.version.api_version == api_version
    assert (account.version.build.major_version, account.version.build.minor_version) == build
    Contact(folder=account.contacts, display_name="Versioned").save()
    assert [c.display_name for c in account.contacts.all()] == ["Versioned"]


def test_unknown_version_is_rejected(tenant: Tenant) -> None:
    with pytest.raises(ValueError, match="unknown Exchange version"):
        EwsApi(tenant, version="Exchange2019")


# contacts ------------------------------------------------------------------------------------------
def test_contact_round_trip_and_graph_shape(account: Account, tenant: Tenant, alice: Any) -> None:
    contact = Contact(
        folder=account.contacts,
        display_name="Carol Client",
        given_name="Carol",
        surname="Client",
        company_name="Acme",
        job_title="Buyer",
        department="Purchasing",
        nickname="CC",
        body="met at the fair",
        email_addresses=[
            EmailAddress(email="carol@acme.test", label="EmailAddress1"),
            EmailAddress(email="c.client@acme.test", label="EmailAddress2"),
        ],
        phone_numbers=[
            PhoneNumber(label="BusinessPhone", phone_number="+49 30 1"),
            PhoneNumber(label="MobilePhone", phone_number="+49 170 2"),
            PhoneNumber(label="HomePhone", phone_number="+49 30 3"),
            PhoneNumber(label="BusinessFax", phone_number="+49 30 4"),
        ],
        physical_addresses=[
            PhysicalAddress(label="Business", street="Main St 1", city="Berlin", zipcode="10115", country="DE")
        ],
    )
    contact.save()
    data = tenant.get(alice, "contacts", contact.id).data
    assert data["displayName"] == "Carol Client"
    assert data["givenName"] == "Carol" and data["surname"] == "Client"
    assert data["emailAddresses"] == [
        {"name": "carol@acme.test", "address": "carol@acme.test"},
        {"name": "c.client@acme.test", "address": "c.client@acme.test"},
    ]
    assert data["businessPhones"] == ["+49 30 1"]
    assert data["mobilePhone"] == "+49 170 2"
    assert data["homePhones"] == ["+49 30 3"]
    assert data["businessAddress"] == {
        "street": "Main St 1",
        "city": "Berlin",
        "countryOrRegion": "DE",
        "postalCode": "10115",
    }
    assert data["companyName"] == "Acme" and data["jobTitle"] == "Buyer" and data["department"] == "Purchasing"
    assert data["personalNotes"] == "met at the fair"

    fetched = account.contacts.get(id=contact.id)
    assert fetched.nickname == "CC"
    assert {e.label: e.email for e in fetched.email_addresses} == {
        "EmailAddress1": "carol@acme.test",
        "EmailAddress2": "c.client@acme.test",
    }
    assert {p.label: p.phone_number for p in fetched.phone_numbers}["BusinessFax"] == "+49 30 4"
    assert fetched.physical_addresses[0].city == "Berlin"
    assert fetched.body == "met at the fair"


def test_graph_contact_renders_over_ews(account: Account, tenant: Tenant, alice: Any) -> None:
    created = tenant.create(
        alice,
        "contacts",
        {
            "displayName": "Hana Graph",
            "givenName": "Hana",
            "surname": "Graph",
            "emailAddresses": [{"name": "Hana", "address": "hana@g.test"}, {"name": "H", "address": "h@g.test"}],
            "businessPhones": ["+1 555 0100", "+1 555 0101"],
            "homePhones": [],
            "mobilePhone": "+1 555 0199",
            "businessAddress": {"street": "1 Way", "city": "Seattle", "state": "WA", "postalCode": "98052"},
            "companyName": "Contoso",
            "personalNotes": "from graph",
            "categories": ["VIP"],
        },
    )
    contact = account.contacts.get(id=created.id)
    assert (contact.display_name, contact.given_name, contact.surname) == ("Hana Graph", "Hana", "Graph")
    assert [(e.label, e.email) for e in contact.email_addresses] == [
        ("EmailAddress1", "hana@g.test"),
        ("EmailAddress2", "h@g.test"),
    ]
    assert {p.label: p.phone_number for p in contact.phone_numbers} == {
        "BusinessPhone": "+1 555 0100",
        "BusinessPhone2": "+1 555 0101",
        "MobilePhone": "+1 555 0199",
    }
    address = contact.physical_addresses[0]
    assert (address.label, address.street, address.city, address.state, address.zipcode) == (
        "Business",
        "1 Way",
        "Seattle",
        "WA",
        "98052",
    )
    assert (contact.company_name, contact.body, contact.categories) == ("Contoso", "from graph", ["VIP"])


def test_update_contact_fields(account: Account, tenant: Tenant, alice: Any) -> None:
    contact = Contact(
        folder=account.contacts,
        display_name="Dan",
        given_name="Dan",
        email_addresses=[
            EmailAddress(email="dan1@x.test", label="EmailAddress1"),
            EmailAddress(email="dan3@x.test", label="EmailAddress3"),
        ],
    )
    contact.save()
    old_key = contact.changekey
    contact.surname = "Dawson"
    contact.given_name = None
    contact.email_addresses = [EmailAddress(email="dan2@x.test", label="EmailAddress2")]
    contact.phone_numbers = [PhoneNumber(label="BusinessPhone2", phone_number="42")]
    contact.save(update_fields=["surname", "given_name", "email_addresses", "phone_numbers"])
    assert contact.changekey != old_key

    data = tenant.get(alice, "contacts", contact.id).data
    assert data["surname"] == "Dawson" and "givenName" not in data
    assert data["emailAddresses"] == [{"name": "dan2@x.test", "address": "dan2@x.test"}]
    assert data["businessPhones"] == ["42"]
    fetched = account.contacts.get(id=contact.id)
    assert [(e.label, e.email) for e in fetched.email_addresses] == [("EmailAddress2", "dan2@x.test")]
    assert [(p.label, p.phone_number) for p in fetched.phone_numbers] == [("BusinessPhone2", "42")]
    assert fetched.given_name is None


def test_bulk_operations_with_per_item_errors(account: Account, tenant: Tenant, alice: Any) -> None:
    created = account.bulk_create(folder=account.contacts, items=[Contact(display_name=f"Bulk {n}") for n in range(5)])
    assert len(tenant.items(alice, "contacts")) == 5
    ids = [(c.id, c.changekey) for c in created]
    fetched = list(account.fetch(ids=[*ids, ("AAMk" + "0" * 32, "x")]))
    assert [c.display_name for c in fetched[:5]] == [f"Bulk {n}" for n in range(5)]
    assert isinstance(fetched[5], ErrorItemNotFound)
    assert all(r is True for r in account.bulk_delete(ids=ids[:3]))
    assert sorted(c.data["displayName"] for c in tenant.items(alice, "contacts")) == ["Bulk 3", "Bulk 4"]


def test_invalid_contact_email_is_rejected(account: Account) -> None:
    with pytest.raises(ErrorInvalidContactEmailAddress):
        Contact(
            folder=account.contacts,
            display_name="Broken",
            email_addresses=[EmailAddress(email="not an address", label="EmailAddress1")],
        ).save()


def test_never_overwrite_detects_stale_change_key(account: Account) -> None:
    contact = Contact(folder=account.contacts, display_name="Eve")
    contact.save()
    stale = Contact(account=account, folder=account.contacts, id=contact.id, changekey=contact.changekey)
    contact.surname = "First"
    contact.save(update_fields=["surname"])
    stale.surname = "Second"
    with pytest.raises(ErrorIrresolvableConflict):
        stale.save(update_fields=["surname"], conflict_resolution="NeverOverwrite")


def test_filter_contacts_by_email_and_name(account: Account) -> None:
    for name, email in (("Fay", "fay@x.test"), ("Gus", "gus@y.test"), ("Fiona", "fiona@y.test")):
        Contact(
            folder=account.contacts,
            display_name=name,
            email_addresses=[EmailAddress(email=email, label="EmailAddress1")],
        ).save()
    by_email = account.contacts.filter(email_addresses__EmailAddress1="GUS@y.test")
    assert [c.display_name for c in by_email] == ["Gus"]
    assert sorted(c.display_name for c in account.contacts.filter(display_name__startswith="F")) == [
        "Fay",
        "Fiona",
    ]
    ordered = account.contacts.all().order_by("-display_name")
    assert [c.display_name for c in ordered] == ["Gus", "Fiona", "Fay"]


# extended property ---------------------------------------------------------------------------------
def test_extended_property_round_trip(account: Account, tenant: Tenant, alice: Any, link_property: None) -> None:
    contact = Contact(folder=account.contacts, display_name="Linked", exsync_link="crm-1")
    contact.save()
    data = tenant.get(alice, "contacts", contact.id).data
    assert data["singleValueExtendedProperties"] == [{"id": f"String {{{LINK_SET}}} Name exsyncLink", "value": "crm-1"}]
    assert account.contacts.get(id=contact.id).exsync_link == "crm-1"
    assert [c.display_name for c in account.contacts.filter(exsync_link="crm-1")] == ["Linked"]

    contact.exsync_link = "crm-2"
    contact.save(update_fields=["exsync_link"])
    assert account.contacts.get(id=contact.id).exsync_link == "crm-2"

    graph_id = f"String {{{LINK_SET.upper()}}} Name exsyncLink"
    tenant.create(
        alice, "calendar", {**_graph_event(), "singleValueExtendedProperties": [{"id": graph_id, "value": "crm-9"}]}
    )
    assert [e.exsync_link for e in account.calendar.all()] == ["crm-9"]

    contact.exsync_link = None
    contact.save(update_fields=["exsync_link"])
    assert "singleValueExtendedProperties" not in tenant.get(alice, "contacts", contact.id).data


# calendar ------------------------------------------------------------------------------------------
def _graph_event(**extra: Any) -> dict[str, Any]:
    return {
        "subject": "From Graph",
        "body": {"contentType": "html", "content": "<p>hi</p>"},
        "start": {"dateTime": "2025-03-10T09:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2025-03-10T10:00:00.0000000", "timeZone": "UTC"},
        "isAllDay": False,
        "location": {"displayName": "Room 1"},
        "attendees": [
            {
                "type": "required",
                "status": {"response": "accepted", "time": "0001-01-01T00:00:00Z"},
                "emailAddress": {"name": "Bob", "address": BOB},
            }
        ],
        "iCalUId": "040000008200E00074C5B7101A82E008GRAPH",
        "type": "singleInstance",
        **extra,
    }


def test_calendar_item_round_trip_and_graph_shape(account: Account, tenant: Tenant, alice: Any) -> None:
    item = CalendarItem(
        folder=account.calendar,
        subject="Planning",
        body=HTMLBody("<b>agenda</b>"),
        start=at(3),
        end=at(3, 10),
        location="Room 2",
        required_attendees=[Attendee(mailbox=Mailbox(email_address=BOB, name="Bob"), response_type="Accept")],
        optional_attendees=[Attendee(mailbox=Mailbox(email_address="opt@x.test"), response_type="Unknown")],
        recurrence=Recurrence(
            pattern=WeeklyPattern(interval=1, weekdays=["Monday", "Wednesday"], first_day_of_week="Monday"),
            boundary=EndDatePattern(start=EWSDate(2025, 3, 3), end=EWSDate(2025, 4, 30)),
        ),
        uid="planning-uid-1",
    )
    item.save()
    data = tenant.get(alice, "calendar", item.id).data
    assert data["subject"] == "Planning"
    assert data["body"] == {"contentType": "html", "content": "<b>agenda</b>"}
    assert data["start"] == {"dateTime": "2025-03-03T09:00:00.0000000", "timeZone": "UTC"}
    assert data["end"] == {"dateTime": "2025-03-03T10:00:00.0000000", "timeZone": "UTC"}
    assert data["location"] == {"displayName": "Room 2"}
    assert data["iCalUId"] == "planning-uid-1"
    assert data["type"] == "seriesMaster"
    assert data["isAllDay"] is False
    assert [(a["type"], a["emailAddress"]["address"], a["status"]["response"]) for a in data["attendees"]] == [
        ("required", BOB, "accepted"),
        ("optional", "opt@x.test", "none"),
    ]
    assert data["recurrence"]["pattern"] == {
        "type": "weekly",
        "interval": 1,
        "month": 0,
        "dayOfMonth": 0,
        "daysOfWeek": ["monday", "wednesday"],
        "firstDayOfWeek": "monday",
        "index": "first",
    }
    assert data["recurrence"]["range"]["type"] == "endDate"
    assert data["recurrence"]["range"]["endDate"] == "2025-04-30"
    assert data["originalStartTimeZone"] == "UTC"

    fetched = account.calendar.get(id=item.id)
    assert (fetched.subject, fetched.start, fetched.end, fetched.location) == ("Planning", at(3), at(3, 10), "Room 2")
    assert fetched.type == "RecurringMaster" and fetched.uid == "planning-uid-1"
    assert fetched.recurrence == item.recurrence
    assert [a.mailbox.email_address for a in fetched.required_attendees] == [BOB]
    assert fetched.required_attendees[0].response_type == "Accept"
    assert [a.mailbox.email_address for a in fetched.optional_attendees] == ["opt@x.test"]
    assert fetched.organizer.email_address == ALICE
    assert isinstance(fetched.body, HTMLBody)


@pytest.mark.parametrize(
    "recurrence",
    [
        Recurrence(pattern=DailyPattern(interval=2), boundary=NoEndPattern(start=EWSDate(2025, 3, 1))),
        Recurrence(pattern=AbsoluteMonthlyPattern(interval=1, day_of_month=15), start=EWSDate(2025, 3, 1), number=6),
    ],
)
def test_recurrence_patterns_round_trip(account: Account, recurrence: Recurrence) -> None:
    item = CalendarItem(folder=account.calendar, subject="Series", start=at(1), end=at(1, 10), recurrence=recurrence)
    item.save()
    assert account.calendar.get(id=item.id).recurrence == recurrence


def test_all_day_and_update_calendar_item(account: Account, tenant: Tenant, alice: Any) -> None:
    item = CalendarItem(folder=account.calendar, subject="Offsite", start=at(5, 0), end=at(6, 0), is_all_day=True)
    item.save()
    assert tenant.get(alice, "calendar", item.id).data["isAllDay"] is True
    item.location = "Lake"
    item.end = at(7, 0)
    item.save(update_fields=["location", "end"])
    data = tenant.get(alice, "calendar", item.id).data
    assert data["location"] == {"displayName": "Lake"}
    assert data["end"]["dateTime"] == "2025-03-07T00:00:00.0000000"


def test_calendar_date_restriction_and_view(account: Account) -> None:
    for day in (1, 10, 20):
        CalendarItem(folder=account.calendar, subject=f"Day {day}", start=at(day), end=at(day, 10)).save()
    window = account.calendar.filter(start__gte=at(5, 0), start__lt=at(15, 0))
    assert [i.subject for i in window] == ["Day 10"]
    later = account.calendar.filter(end__gt=at(9, 0)).order_by("-start")
    assert [i.subject for i in later] == ["Day 20", "Day 10"]
    viewed = account.calendar.view(start=at(9, 0), end=at(21, 0))
    assert sorted(i.subject for i in viewed) == ["Day 10", "Day 20"]


def test_graph_event_renders_over_ews(account: Account, tenant: Tenant, alice: Any) -> None:
    zoned = _graph_event(
        start={"dateTime": "2025-03-10T09:00:00.0000000", "timeZone": "Pacific Standard Time"},
        end={"dateTime": "2025-03-10T10:00:00.0000000", "timeZone": "America/Los_Angeles"},
    )
    created = tenant.create(alice, "calendar", zoned)
    item = account.calendar.get(id=created.id)
    assert item.subject == "From Graph"
    assert item.start == EWSDateTime(2025, 3, 10, 16, tzinfo=UTC_TZ)  # PDT is UTC-7 on March 10
    assert item.end == EWSDateTime(2025, 3, 10, 17, tzinfo=UTC_TZ)
    assert item.location == "Room 1"
    assert item.uid == "040000008200E00074C5B7101A82E008GRAPH"
    assert item.required_attendees[0].mailbox.email_address == BOB
    assert item.type == "Single"


def test_an_html_body_is_served_as_text_too_and_optional_attendees_apart(
    account: Account, tenant: Tenant, alice: Any
) -> None:
    """TextBody (Exchange 2013+, read-only) is the body as text, as Graph gives it when text is
    preferred; optional attendees are listed apart from required ones, and cleared on request."""
    attendees = [
        {"type": "required", "emailAddress": {"address": BOB}},
        {"type": "optional", "emailAddress": {"address": "opt@example.com"}},
    ]
    body = {"contentType": "html", "content": "<p>Agenda</p><p>Bring &amp; share</p>"}
    created = tenant.create(alice, "calendar", _graph_event(body=body, attendees=attendees))
    item = account.calendar.get(id=created.id)
    assert item.text_body == "Agenda\nBring & share"
    assert "<p>" in item.body
    assert [a.mailbox.email_address for a in item.required_attendees] == [BOB]
    assert [a.mailbox.email_address for a in item.optional_attendees] == ["opt@example.com"]
    item.optional_attendees = None
    item.save(update_fields=["optional_attendees"])
    assert [a["emailAddress"]["address"] for a in tenant.get(alice, "calendar", created.id).data["attendees"]] == [BOB]


# tasks and messages --------------------------------------------------------------------------------
def test_task_round_trip(account: Account, tenant: Tenant, alice: Any) -> None:
    task = Task(
        folder=account.tasks,
        subject="Call back",
        due_date=EWSDate(2025, 3, 12),
        status="InProgress",
        importance="High",
        body="about the offer",
    )
    task.save()
    data = tenant.get(alice, "tasks", task.id).data
    assert data["title"] == "Call back"
    assert data["status"] == "inProgress" and data["importance"] == "high"
    assert data["dueDateTime"] == {"dateTime": "2025-03-12T00:00:00.0000000", "timeZone": "UTC"}
    assert data["body"] == {"contentType": "text", "content": "about the offer"}
    task.status = "WaitingOnOthers"
    task.save(update_fields=["status"])
    assert tenant.get(alice, "tasks", task.id).data["status"] == "waitingOnOthers"

    graph_task = tenant.create(alice, "tasks", {"title": "From Graph", "status": "deferred", "importance": "low"})
    fetched = account.tasks.get(id=graph_task.id)
    assert (fetched.subject, fetched.status, fetched.importance) == ("From Graph", "Deferred", "Low")


def test_messages_round_trip_and_graph_attachments(account: Account, tenant: Tenant, alice: Any) -> None:
    message = Message(
        folder=account.inbox,
        subject="Offer",
        body="see attached",
        to_recipients=[Mailbox(email_address=BOB, name="Bob")],
        cc_recipients=["cc@x.test"],
    )
    message.save()
    data = tenant.get(alice, "inbox", message.id).data
    assert data["subject"] == "Offer"
    assert data["toRecipients"] == [{"emailAddress": {"name": "Bob", "address": BOB}}]
    assert data["ccRecipients"] == [{"emailAddress": {"name": "cc@x.test", "address": "cc@x.test"}}]
    assert data["from"]["emailAddress"]["address"] == ALICE

    graph = tenant.create(
        alice,
        "inbox",
        {
            "subject": "Invoice",
            "body": {"contentType": "text", "content": "pay"},
            "from": {"emailAddress": {"name": "Shop", "address": "shop@x.test"}},
            "toRecipients": [{"emailAddress": {"name": "Alice", "address": ALICE}}],
            "sentDateTime": "2025-03-01T08:00:00Z",
            "receivedDateTime": "2025-03-01T08:00:05Z",
            "internetMessageId": "<inv-1@x.test>",
            "hasAttachments": True,
            "attachments": [{"id": "att-1", "name": "invoice.pdf", "contentType": "application/pdf", "size": 2048}],
        },
    )
    fetched = account.inbox.get(id=graph.id)
    assert fetched.author.email_address == "shop@x.test"
    assert fetched.sender.email_address == "shop@x.test"
    assert fetched.datetime_received == EWSDateTime(2025, 3, 1, 8, 0, 5, tzinfo=UTC_TZ)
    assert fetched.datetime_sent == EWSDateTime(2025, 3, 1, 8, tzinfo=UTC_TZ)
    assert fetched.message_id == "<inv-1@x.test>"
    assert fetched.has_attachments is True
    assert [(a.name, a.size) for a in fetched.attachments] == [("invoice.pdf", 2048)]
    received = account.inbox.filter(datetime_received__gt=EWSDateTime(2025, 3, 1, tzinfo=UTC_TZ))
    assert "Invoice" in [m.subject for m in received]


def test_send_delivers_to_tenant_mailboxes(account: Account, tenant: Tenant) -> None:
    Message(account=account, subject="Hello Bob", body="hi", to_recipients=[BOB, "ext@x.test"]).send_and_save()
    bob_inbox = tenant.items(tenant.mailbox(BOB), "inbox")
    assert [(m.data["subject"], m.data["isRead"], m.data["isDraft"]) for m in bob_inbox] == [
        ("Hello Bob", False, False)
    ]
    assert [m.data["subject"] for m in tenant.items(tenant.mailbox(ALICE), "sentitems")] == ["Hello Bob"]


# paging, sync, throttling --------------------------------------------------------------------------
def test_find_item_pages_past_the_cap(server: FakeServer, tenant: Tenant, alice: Any) -> None:
    for n in range(120):
        tenant.create(alice, "contacts", {"displayName": f"Paged {n:03d}"})
    api = server.handler = EwsApi(tenant, find_cap=50)
    names = [c.display_name for c in connect(server).contacts.all()]
    assert names == [f"Paged {n:03d}" for n in range(120)]
    assert api.calls["FindItem"] == 3


def test_find_item_slicing_uses_offsets(account: Account, tenant: Tenant, alice: Any) -> None:
    for n in range(30):
        tenant.create(alice, "contacts", {"displayName": f"Slice {n:02d}"})
    assert [c.display_name for c in account.contacts.all()[10:13]] == ["Slice 10", "Slice 11", "Slice 12"]
    assert account.contacts.all().count() == 30


def test_sync_items_pages_and_reports_changes(account: Account, tenant: Tenant, alice: Any, api: EwsApi) -> None:
    originals = [tenant.create(alice, "contacts", {"displayName": f"Sync {n}"}) for n in range(25)]
    folder = account.contacts
    first = list(folder.sync_items(max_changes_returned=10))
    assert [kind for kind, _ in first] == ["create"] * 25
    assert api.calls["SyncFolderItems"] == 3
    state = folder.item_sync_state

    tenant.update(alice, "contacts", originals[0].id, {"surname": "Updated"})
    tenant.delete(alice, "contacts", originals[1].id)
    added = Contact(folder=folder, display_name="Sync new")
    added.save()
    temporary = tenant.create(alice, "contacts", {"displayName": "Gone again"})
    tenant.delete(alice, "contacts", temporary.id)

    changes = list(folder.sync_items(sync_state=state, max_changes_returned=2))
    kinds = dict(changes)
    assert sorted(kind for kind, _ in changes) == ["create", "delete", "update"]
    assert kinds["update"].surname == "Updated"
    assert kinds["delete"].id == originals[1].id
    assert kinds["create"].display_name == "Sync new"
    assert list(folder.sync_items(sync_state=folder.item_sync_state)) == []


def test_invalid_and_invalidated_sync_states(account: Account, api: EwsApi) -> None:
    folder = account.contacts
    with pytest.raises(ErrorInvalidSyncStateData):
        list(folder.sync_items(sync_state=base64.b64encode(b"garbage").decode()))
    list(folder.sync_items())
    state = folder.item_sync_state
    api.invalidate_sync_states()
    with pytest.raises(ErrorInvalidSyncStateData):
        list(folder.sync_items(sync_state=state))


def test_server_busy_carries_the_back_off(server: FakeServer, api: EwsApi) -> None:
    account = connect(server)
    _ = account.contacts
    api.throttle(1, 2500)
    with pytest.raises(ErrorServerBusy) as raised:
        list(account.contacts.all())
    assert raised.value.back_off == 2.5


def test_fault_tolerant_policy_retries_after_back_off(server: FakeServer, api: EwsApi) -> None:
    account = connect(server, retry_policy=FaultTolerance(max_wait=30))
    _ = account.contacts
    api.throttle(2, 50)
    started = datetime.now(UTC)
    assert list(account.contacts.all()) == []
    assert datetime.now(UTC) - started < timedelta(seconds=10)
    assert api.calls["FindItem"] == 1


def test_get_folder_for_many_folders_in_one_call(account: Account) -> None:
    folders = [account.calendar, account.contacts, account.tasks]
    results = list(GetFolder(account=account).call(folders=folders, additional_fields=[], shape="IdOnly"))
    assert [f.name for f in results] == ["Calendar", "Contacts", "Tasks"]


# raw SOAP ------------------------------------------------------------------------------------------
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
M_NS = "http://schemas.microsoft.com/exchange/services/2006/messages"
T_NS = "http://schemas.microsoft.com/exchange/services/2006/types"
E_NS = "http://schemas.microsoft.com/exchange/services/2006/errors"


@pytest.fixture
def soap(server: FakeServer, ca: FakeCA) -> Callable[..., requests.Response]:
    """Post a hand-written SOAP body, as Alice unless told otherwise."""

    def post(body: str, version: str = "Exchange2016", auth: tuple[str, str] = (ALICE, ALICE_PW)) -> requests.Response:
        envelope = (
            f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP_NS}" xmlns:m="{M_NS}" '
            f'xmlns:t="{T_NS}"><s:Header><t:RequestServerVersion Version="{version}"/></s:Header>'
            f"<s:Body>{body}</s:Body></s:Envelope>"
        )
        url = f"{server.base_url}/EWS/Exchange.asmx"
        return requests.post(url, data=envelope.encode(), auth=auth, verify=str(ca.bundle_path), timeout=10)

    return post


def _fault_code(response: requests.Response) -> str:
    return ET.fromstring(response.content).findtext(f".//{{{E_NS}}}ResponseCode") or ""


def test_http_level_answers(server: FakeServer, soap: Callable[..., requests.Response], ca: FakeCA) -> None:
    verify = str(ca.bundle_path)
    assert requests.post(f"{server.base_url}/other", verify=verify, timeout=10).status_code == 404
    assert (
        requests.get(server.base_url + "/EWS/Exchange.asmx", auth=(ALICE, ALICE_PW), verify=verify).status_code == 405
    )
    broken = requests.post(server.base_url + "/ews/exchange.asmx", data=b"<nope", auth=(ALICE, ALICE_PW), verify=verify)
    assert (broken.status_code, _fault_code(broken)) == (500, "ErrorSchemaValidation")
    unknown = soap("<m:GetUserOofSettingsRequest/>")
    assert (unknown.status_code, _fault_code(unknown)) == (500, "ErrorInternalServerError")


def test_server_version_header_and_newer_request(server: FakeServer, tenant: Tenant, soap: Any) -> None:
    server.handler = EwsApi(tenant, version="Exchange2010_SP1")
    get_folder = (
        "<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds>"
        '<t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>'
    )
    answer = soap(get_folder, version="Exchange2010")
    info = ET.fromstring(answer.content).find(f".//{{{T_NS}}}ServerVersionInfo")
    assert info is not None
    assert (info.get("MajorVersion"), info.get("MinorVersion"), info.get("Version")) == ("14", "1", "Exchange2010_SP1")
    newer = soap(get_folder, version="Exchange2013")
    assert (newer.status_code, _fault_code(newer)) == (500, "ErrorInvalidServerVersion")


def test_append_delete_field_and_malformed_ids(soap: Any, tenant: Tenant, alice: Any) -> None:
    item = tenant.create(alice, "contacts", {"displayName": "Raw", "personalNotes": "first", "nickName": "R"})
    update = (
        '<m:UpdateItem ConflictResolution="AlwaysOverwrite"><m:ItemChanges><t:ItemChange>'
        f'<t:ItemId Id="{item.id}" ChangeKey="stale"/><t:Updates>'
        '<t:AppendToItemField><t:FieldURI FieldURI="item:Body"/><t:Contact><t:Body BodyType="Text"> second</t:Body>'
        "</t:Contact></t:AppendToItemField>"
        '<t:DeleteItemField><t:FieldURI FieldURI="contacts:Nickname"/></t:DeleteItemField>'
        "</t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"
    )
    assert soap(update).status_code == 200
    data = tenant.get(alice, "contacts", item.id).data
    assert data["personalNotes"] == "first second" and "nickName" not in data
    get = (
        "<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ItemIds>"
        f'<t:ItemId Id="not-an-id"/><t:ItemId Id="{item.id}"/></m:ItemIds></m:GetItem>'
    )
    codes = [e.text for e in ET.fromstring(soap(get).content).iter(f"{{{M_NS}}}ResponseCode")]
    assert codes == ["ErrorInvalidIdMalformed", "NoError"]
