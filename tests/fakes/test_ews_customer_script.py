"""The fake EWS in the hands of exchangelib, as a customer's own script would use it against Exchange Server.

Windows authentication (NTLM, Negotiate), Basic switched off, and the behaviours of a real server
that a sync product must live with.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
import spnego
from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    NTLM,
    Account,
    Build,
    CalendarItem,
    Configuration,
    Contact,
    Credentials,
    EWSDate,
    EWSDateTime,
    EWSTimeZone,
    FileAttachment,
    Message,
    Task,
    Version,
)
from exchangelib.attachments import AttachmentId
from exchangelib.errors import (
    ErrorAccessDenied,
    ErrorCalendarCannotMoveOrCopyOccurrence,
    ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange,
    ErrorCalendarOccurrenceIsDeletedFromRecurrence,
    ErrorInvalidIdMalformed,
    ErrorMoveCopyFailed,
    ErrorSchemaValidation,
    UnauthorizedError,
)
from exchangelib.fields import MONDAY
from exchangelib.recurrence import AbsoluteYearlyPattern, Recurrence, WeeklyPattern
from exchangelib.services import GetAttachment

from fakes.ews import SERVER_VERSIONS, EwsApi, trust_ca
from fakes.server import FakeCA, FakeServer
from fakes.tenant import Tenant

UTC_TZ = EWSTimeZone("UTC")
_NO_SHAPE = {"include_mime_content": False, "body_type": None, "filter_html_content": None, "additional_fields": None}
ALICE, ALICE_PW = "alice@contoso.example", "Alice-pw-1"
BOB, BOB_PW = "bob@contoso.example", "Bob-pw-1"
SVC, SVC_PW = "svc@contoso.example", "Svc-pw-1"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> FakeCA:
    return FakeCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def tenant() -> Tenant:
    tenant = Tenant(domain="contoso.example")
    tenant.add_user(ALICE, "Alice Example", ALICE_PW)
    tenant.add_user(BOB, "Bob Example", BOB_PW)
    tenant.add_user(SVC, "Sync Service", SVC_PW, can_impersonate=True)
    return tenant


@pytest.fixture
def api(tenant: Tenant) -> EwsApi:
    return EwsApi(tenant, basic_auth=False)  # Windows authentication only, as many organisations run it


@pytest.fixture(scope="module")
def shared_server(ca: FakeCA) -> Iterator[FakeServer]:
    server = FakeServer(EwsApi(Tenant()), ca=ca).start()
    yield server
    server.stop()


@pytest.fixture
def server(shared_server: FakeServer, api: EwsApi, ca: FakeCA) -> Iterator[FakeServer]:
    shared_server.handler = api
    with trust_ca(ca.bundle_path):
        yield shared_server


def connect(
    server: FakeServer,
    login: str = "CONTOSO\\alice",
    password: str = ALICE_PW,
    *,
    address: str = ALICE,
    auth_type: str | None = NTLM,
    access_type: str = DELEGATE,
    version: Version | None = None,
) -> Account:
    """An exchangelib account as a script would open it (``auth_type=None``: what the server offers)."""
    config = Configuration(
        service_endpoint=f"{server.base_url}/EWS/Exchange.asmx",
        credentials=Credentials(login, password),
        auth_type=auth_type,
        version=version,
    )
    return Account(address, config=config, autodiscover=False, access_type=access_type, default_timezone=UTC_TZ)


# Windows authentication ---------------------------------------------------------------------------
@pytest.mark.parametrize("login", ["CONTOSO\\alice", "contoso.example\\alice", ALICE])
def test_ntlm_with_a_domain_account_or_a_upn(server: FakeServer, api: EwsApi, login: str) -> None:
    account = connect(server, login)
    assert account.root.tois.name == "Top of Information Store"
    assert account.inbox.total_count == 0
    assert api.schemes_used["NTLM"] >= 2 and not api.schemes_used["Basic"]


def test_a_wrong_password_fails_inside_the_ntlm_handshake(server: FakeServer, api: EwsApi) -> None:
    with pytest.raises(UnauthorizedError):
        _ = connect(server, password="not-the-password").root
    assert not api.schemes_used


def test_the_connection_stays_authenticated_after_the_handshake(server: FakeServer, api: EwsApi) -> None:
    account = connect(server)
    for _ in range(3):
        _ = account.inbox.total_count
    session = account.protocol.get_session()
    try:
        before = server.requests
        plain = session.post(account.protocol.service_endpoint, data=b"", auth=None, allow_redirects=False)
    finally:
        account.protocol.release_session(session)
    assert server.requests - before == 1  # no new handshake on an authenticated connection
    assert plain.status_code == 500 and b"ErrorSchemaValidation" in plain.content  # served, not challenged


def test_negotiate_falls_back_to_ntlm(server: FakeServer, api: EwsApi) -> None:
    api.windows_auth = ("Negotiate",)
    account = connect(server)
    assert account.root.tois.name == "Top of Information Store"
    assert api.schemes_used["Negotiate"] >= 2 and not api.schemes_used["NTLM"]


def test_a_spnego_client_negotiates_and_falls_back_to_ntlm(server: FakeServer, api: EwsApi, ca: FakeCA) -> None:
    """What a Windows client outside the domain sends: SPNEGO tokens (NTLM inside) under the Negotiate scheme."""
    client = spnego.client("CONTOSO\\alice", ALICE_PW, hostname="127.0.0.1", service="HTTP", protocol="negotiate")
    url, session = f"{server.base_url}/EWS/Exchange.asmx", requests.Session()

    def post(token: bytes) -> requests.Response:
        header = {"Authorization": f"Negotiate {base64.b64encode(token).decode()}"}
        return session.post(url, data=b"", headers=header, verify=str(ca.bundle_path))

    challenge = post(client.step() or b"")
    assert challenge.status_code == 401
    scheme, _, token = challenge.headers["WWW-Authenticate"].partition(" ")
    served = post(client.step(base64.b64decode(token)) or b"")
    assert served.status_code == 500 and b"ErrorSchemaValidation" in served.content  # authenticated, then served
    client.step(base64.b64decode(served.headers["WWW-Authenticate"].partition(" ")[2]))  # the final SPNEGO token
    assert scheme == "Negotiate" and client.complete and api.schemes_used == {"Negotiate": 1}


@pytest.mark.parametrize("scheme", ["NTLM", "Negotiate"])
@pytest.mark.parametrize("token", [b"garbage", b"NTLMSSP\x00\x01\x00\x00\x00"])
def test_a_malformed_token_is_refused_with_the_challenge(
    server: FakeServer, ca: FakeCA, scheme: str, token: bytes
) -> None:
    header = {"Authorization": f"{scheme} {base64.b64encode(token).decode()}"}
    answer = requests.post(f"{server.base_url}/EWS/Exchange.asmx", headers=header, verify=str(ca.bundle_path))
    assert answer.status_code == 401 and answer.raw.headers.getlist("WWW-Authenticate") == ["Negotiate", "NTLM"]


def test_auto_detection_prefers_ntlm_and_basic_can_be_switched_off(server: FakeServer, api: EwsApi) -> None:
    api.basic_auth = True
    auto = connect(server, auth_type=None)
    _ = auto.root
    assert auto.protocol.auth_type == NTLM
    api.basic_auth = False
    with pytest.raises(UnauthorizedError):
        _ = connect(server, ALICE, auth_type=BASIC).root
    api.basic_auth = True
    assert connect(server, ALICE, auth_type=BASIC).inbox.total_count == 0


def test_the_challenge_lists_every_scheme_offered(server: FakeServer, api: EwsApi, ca: FakeCA) -> None:
    url = f"{server.base_url}/EWS/Exchange.asmx"
    answer = requests.post(url, data=b"", verify=str(ca.bundle_path))
    assert answer.status_code == 401
    assert answer.raw.headers.getlist("WWW-Authenticate") == ["Negotiate", "NTLM"]
    api.basic_auth = True
    answer = requests.post(url, data=b"", verify=str(ca.bundle_path))
    assert answer.raw.headers.getlist("WWW-Authenticate")[-1] == 'Basic realm="contoso.example"'


def test_impersonation_over_ntlm(server: FakeServer, tenant: Tenant) -> None:
    account = connect(server, "CONTOSO\\svc", SVC_PW, address=BOB, access_type=IMPERSONATION)
    assert account.contacts.total_count == 0
    denied = connect(server, "CONTOSO\\alice", ALICE_PW, address=BOB, access_type=IMPERSONATION)
    with pytest.raises(Exception, match="impersonate"):
        _ = denied.contacts.total_count


# Deleted Items and Recoverable Items --------------------------------------------------------------
def test_move_to_trash_then_soft_delete_then_hard_delete(server: FakeServer, tenant: Tenant) -> None:
    account = connect(server)
    task = Task(folder=account.tasks, subject="Call Ann")
    task.save()
    assert _changes(account.tasks) == ["create"]
    state = account.tasks.item_sync_state

    task_id = task.id
    task.move_to_trash()
    assert task.folder == account.trash
    (trashed,) = list(account.trash.all())
    assert trashed.subject == "Call Ann" and trashed.id != task_id  # a moved item gets a new id
    assert account.tasks.all().count() == 0
    account.tasks.item_sync_state = state
    assert _changes(account.tasks) == ["delete"]  # the tasks folder reports it gone

    trashed.soft_delete()
    assert account.trash.all().count() == 0
    (recoverable,) = list(account.recoverable_items_deletions.all())
    assert recoverable.subject == "Call Ann"
    assert "recoverableitemsroot" not in {f.name for f in account.root.walk()}  # the dumpster is not listed

    recoverable.delete()
    assert account.recoverable_items_deletions.all().count() == 0
    box = tenant.mailbox(ALICE)
    assert not any(box.folders[name] for name in ("tasks", "deleteditems", "recoverableitemsdeletions"))


def test_move_to_trash_from_deleted_items_moves_to_the_dumpster(server: FakeServer) -> None:
    account = connect(server)
    message = Message(folder=account.inbox, subject="Old news")
    message.save()
    message.move_to_trash()
    (trashed,) = list(account.trash.all())
    trashed.move_to_trash()
    assert account.trash.all().count() == 0
    assert [m.subject for m in account.recoverable_items_deletions.all()] == ["Old news"]


def test_delete_type_is_required_and_calendar_items_need_meeting_cancellations(server: FakeServer) -> None:
    account = connect(server)
    item = CalendarItem(folder=account.calendar, subject="Sync", start=_at(9), end=_at(10))
    item.save()
    body = _delete_request(item.id, "")
    answer = _post(account, body)
    assert answer.status_code == 500 and b"ErrorSchemaValidation" in answer.content
    answer = _post(account, _delete_request(item.id, 'DeleteType="HardDelete"'))
    assert b"ErrorSendMeetingCancellationsRequired" in answer.content
    answer = _post(account, _delete_request(item.id, 'DeleteType="HardDelete" SendMeetingCancellations="SendToNone"'))
    assert b'ResponseClass="Success"' in answer.content and account.calendar.all().count() == 0


def _changes(folder: Any) -> list[str]:
    return [kind for kind, _ in folder.sync_items()]


def _at(hour: int) -> EWSDateTime:
    return EWSDateTime(2030, 1, 7, hour, tzinfo=UTC_TZ)


def _delete_request(item_id: str, attributes: str) -> bytes:
    return _envelope(f'<m:DeleteItem {attributes}><m:ItemIds><t:ItemId Id="{item_id}"/></m:ItemIds></m:DeleteItem>')


def _post(account: Account, body: bytes) -> requests.Response:
    """A raw SOAP request over one of the account's authenticated sessions."""
    session = account.protocol.get_session()
    try:
        return session.post(account.protocol.service_endpoint, data=body, headers={"Content-Type": "text/xml"})
    finally:
        account.protocol.release_session(session)


# what Exchange computes by itself -------------------------------------------------------------------
def test_completing_a_task_sets_percent_complete_and_complete_date(server: FakeServer, tenant: Tenant) -> None:
    account = connect(server)
    task = Task(folder=account.tasks, subject="Send the offer", status="NotStarted")
    task.save()
    task.status = "Completed"
    task.save(update_fields=["status"])  # only the status is sent
    done = account.tasks.get(id=task.id)
    assert (done.status, done.percent_complete, done.is_complete) == ("Completed", Decimal(100), True)
    assert done.complete_date is not None
    (stored,) = tenant.items(tenant.mailbox(ALICE), "tasks")
    graph = stored.resource()  # what Microsoft Graph shows: To Do has no percentComplete, nor our private keys
    assert graph["status"] == "completed" and graph["completedDateTime"] and "_ews" not in graph

    done.status = "InProgress"
    done.save(update_fields=["status"])
    reopened = account.tasks.get(id=task.id)
    assert (reopened.percent_complete, reopened.complete_date) == (Decimal(0), None)

    reopened.percent_complete = Decimal(100)
    reopened.save(update_fields=["percent_complete"])
    assert account.tasks.get(id=task.id).status == "Completed"


def test_a_contact_gets_its_file_as_and_display_name_from_its_names(server: FakeServer) -> None:
    account = connect(server)
    contact = Contact(folder=account.contacts, given_name="Ann", surname="Lee", display_name="Ann Lee")
    contact.save()
    assert account.contacts.get(id=contact.id).file_as == "Lee, Ann"
    contact.surname = "Lee-Smith"
    contact.save(update_fields=["surname"])
    assert account.contacts.get(id=contact.id).file_as == "Lee-Smith, Ann"
    contact.file_as = "Ann (consultant)"
    contact.save(update_fields=["file_as"])
    assert account.contacts.get(id=contact.id).file_as == "Ann (consultant)"
    other = Contact(
        folder=account.contacts, given_name="Bo", surname="Ek", display_name="x", file_as_mapping="FirstSpaceLast"
    )
    other.save()
    assert account.contacts.get(id=other.id).file_as == "Bo Ek"


# occurrences and exceptions ---------------------------------------------------------------------------
def _weekly_series(account: Account, count: int = 5) -> CalendarItem:
    """A weekly series of ``count`` Monday meetings from 2030-01-07 09:00 UTC."""
    series = CalendarItem(
        folder=account.calendar,
        subject="Weekly review",
        start=_at(9),
        end=_at(10),
        recurrence=Recurrence(
            pattern=WeeklyPattern(interval=1, weekdays=[MONDAY], first_day_of_week=MONDAY),
            start=EWSDate(2030, 1, 7),
            number=count,
        ),
    )
    series.save()
    return series


def test_calendar_view_expands_a_series_into_occurrences_and_exceptions(server: FakeServer, tenant: Tenant) -> None:
    account = connect(server)
    series = _weekly_series(account)
    single = CalendarItem(folder=account.calendar, subject="One-off", start=_at(12), end=_at(13))
    single.save()
    view = list(account.calendar.view(start=_at(0), end=_at(0) + timedelta(days=35)))
    assert [(i.subject, i.type) for i in view] == [
        ("Weekly review", "Occurrence"),
        ("One-off", "Single"),
        *[("Weekly review", "Occurrence")] * 4,
    ]
    assert [i.start.day for i in view if i.type == "Occurrence"] == [7, 14, 21, 28, 4]
    assert len({i.id for i in view}) == 6 and series.id not in {i.id for i in view}

    second = account.calendar.get(id=view[2].id)  # an occurrence id works for GetItem
    assert (second.type, second.original_start, second.start) == (
        "Occurrence",
        _at(9) + timedelta(days=7),
        second.original_start,
    )
    second.subject, second.start, second.end = (
        "Review (moved)",
        second.start + timedelta(hours=2),
        second.end + timedelta(hours=2),
    )
    second.save(update_fields=["subject", "start", "end"])
    third = series.occurrence(index=3)  # by index, without a query
    third.refresh()
    assert third.start == _at(9) + timedelta(days=14)
    third.delete()

    master = account.calendar.get(id=series.id)
    assert master.type == "RecurringMaster"
    assert (master.first_occurrence.start, master.last_occurrence.start) == (_at(9), _at(9) + timedelta(days=28))
    assert [(o.start, o.original_start) for o in master.modified_occurrences] == [
        (_at(11) + timedelta(days=7), _at(9) + timedelta(days=7))
    ]
    assert [d.start for d in master.deleted_occurrences] == [_at(9) + timedelta(days=14)]

    view = [i for i in account.calendar.view(start=_at(0), end=_at(0) + timedelta(days=35)) if i.subject != "One-off"]
    assert [(i.subject, i.type, i.start.day) for i in view] == [
        ("Weekly review", "Occurrence", 7),
        ("Review (moved)", "Exception", 14),
        ("Weekly review", "Occurrence", 28),
        ("Weekly review", "Occurrence", 4),
    ]
    assert len(tenant.items(tenant.mailbox(ALICE), "calendar")) == 2  # the series is still one item


def test_occurrence_ids_and_indexes_refuse_what_is_not_there(server: FakeServer) -> None:
    account = connect(server)
    series = _weekly_series(account, count=3)
    series.occurrence(index=2).delete()
    with pytest.raises(ErrorCalendarOccurrenceIsDeletedFromRecurrence):
        series.occurrence(index=2).refresh()
    with pytest.raises(ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange):
        series.occurrence(index=4).refresh()
    occurrence = series.occurrence(index=3)
    occurrence.refresh()
    master = occurrence.recurring_master()
    master.refresh()
    assert master.id == series.id and master.type == "RecurringMaster"


def test_sync_folder_items_reports_an_occurrence_change_as_a_change_of_the_master(server: FakeServer) -> None:
    account = connect(server)
    series = _weekly_series(account)
    assert [kind for kind, _ in account.calendar.sync_items()] == ["create"]
    occurrence = series.occurrence(index=2)
    occurrence.refresh()
    occurrence.subject = "Only this week"
    occurrence.save(update_fields=["subject"])
    series.occurrence(index=4).delete()
    changes = list(account.calendar.sync_items())
    assert [(kind, item.id) for kind, item in changes] == [("update", series.id)]


BERLIN = EWSTimeZone("Europe/Berlin")


def _berlin(day: int, month: int = 3, hour: int = 9) -> EWSDateTime:
    return EWSDateTime(2030, month, day, hour, tzinfo=BERLIN)


def _berlin_series(account: Account) -> CalendarItem:
    """Mondays at 09:00 in Berlin from 18 March 2030, five times: summer time begins on 31 March."""
    series = CalendarItem(
        folder=account.calendar,
        subject="Jour fixe",
        start=_berlin(18),
        end=_berlin(18, hour=10),
        recurrence=Recurrence(
            pattern=WeeklyPattern(interval=1, weekdays=[MONDAY], first_day_of_week=MONDAY),
            start=EWSDate(2030, 3, 18),
            number=5,
        ),
    )
    series.save()
    return series


def test_a_series_keeps_its_wall_clock_time_in_its_own_zone_across_daylight_saving(
    server: FakeServer, tenant: Tenant
) -> None:
    account = connect(server)
    series = _berlin_series(account)
    (stored,) = tenant.items(tenant.mailbox(ALICE), "calendar")
    assert stored.data["originalStartTimeZone"] == "W. Europe Standard Time"  # as exchangelib sent StartTimeZone

    view = list(account.calendar.view(start=_berlin(1), end=_berlin(30, month=4)))
    local = [i.start.astimezone(BERLIN) for i in view]
    assert [(t.month, t.day, t.hour) for t in local] == [(3, 18, 9), (3, 25, 9), (4, 1, 9), (4, 8, 9), (4, 15, 9)]
    assert [i.start.astimezone(UTC_TZ).hour for i in view] == [8, 8, 7, 7, 7]  # CET, then CEST

    master = account.calendar.get(id=series.id)
    assert master._start_timezone == BERLIN
    assert (master.first_occurrence.start, master.last_occurrence.start) == (_berlin(18), _berlin(15, month=4))
    third = series.occurrence(index=3)
    third.refresh()
    assert (third.type, third.original_start, third.start) == ("Occurrence", _berlin(1, month=4), _berlin(1, month=4))


def test_occurrences_of_a_zoned_series_are_changed_and_cancelled_by_index(server: FakeServer) -> None:
    account = connect(server)
    series = _berlin_series(account)
    moved = series.occurrence(index=2)
    moved.refresh()
    moved.subject, moved.start, moved.end = "Jour fixe (later)", _berlin(25, hour=11), _berlin(25, hour=12)
    moved.save(update_fields=["subject", "start", "end"])
    series.occurrence(index=4).delete()
    with pytest.raises(ErrorCalendarOccurrenceIsDeletedFromRecurrence):
        series.occurrence(index=4).refresh()
    with pytest.raises(ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange):
        series.occurrence(index=6).refresh()

    master = account.calendar.get(id=series.id)
    ((changed),) = master.modified_occurrences
    assert (changed.start, changed.end, changed.original_start) == (
        _berlin(25, hour=11),
        _berlin(25, hour=12),
        _berlin(25),
    )
    assert [d.start for d in master.deleted_occurrences] == [_berlin(8, month=4)]
    (exception,) = account.fetch(ids=[changed])  # GetItem by the ModifiedOccurrences ItemId
    assert (exception.type, exception.subject) == ("Exception", "Jour fixe (later)")
    view = list(account.calendar.view(start=_berlin(1), end=_berlin(30, month=4)))
    assert [(i.type, i.start.astimezone(BERLIN).day, i.start.astimezone(BERLIN).hour) for i in view] == [
        ("Occurrence", 18, 9),
        ("Exception", 25, 11),
        ("Occurrence", 1, 9),
        ("Occurrence", 15, 9),
    ]

    master.recurrence = Recurrence(
        pattern=WeeklyPattern(interval=1, weekdays=[MONDAY], first_day_of_week=MONDAY),
        start=EWSDate(2030, 3, 18),
        number=6,
    )
    master.save(update_fields=["recurrence"])  # a new pattern: Exchange drops exceptions and cancellations
    master = account.calendar.get(id=series.id)
    assert master.modified_occurrences is None and master.deleted_occurrences is None
    assert master.last_occurrence.start == _berlin(22, month=4)


def test_a_series_without_end_lists_its_exceptions_however_far_ahead(server: FakeServer) -> None:
    account = connect(server)
    series = CalendarItem(
        folder=account.calendar,
        subject="Anniversary",
        start=_berlin(18),
        end=_berlin(18, hour=10),
        recurrence=Recurrence(pattern=AbsoluteYearlyPattern(day_of_month=18, month=3), start=EWSDate(2030, 3, 18)),
    )
    series.save()
    far = series.occurrence(index=20)  # 2049
    far.refresh()
    far.subject = "Twentieth"
    far.save(update_fields=["subject"])
    series.occurrence(index=30).delete()
    master = account.calendar.get(id=series.id)
    assert master.last_occurrence is None
    assert [o.original_start for o in master.modified_occurrences] == [_berlin(18).replace(year=2049)]
    assert [d.start for d in master.deleted_occurrences] == [_berlin(18).replace(year=2059)]


def test_an_all_day_series_keeps_its_dates(server: FakeServer) -> None:
    account = connect(server)
    series = CalendarItem(
        folder=account.calendar,
        subject="Inventory",
        start=EWSDate(2030, 3, 25),
        end=EWSDate(2030, 3, 25),
        is_all_day=True,
        recurrence=Recurrence(
            pattern=WeeklyPattern(interval=1, weekdays=[MONDAY], first_day_of_week=MONDAY),
            start=EWSDate(2030, 3, 25),
            number=3,
        ),
    )
    series.save()
    view = list(account.calendar.view(start=_berlin(1), end=_berlin(30, month=4)))
    assert [(i.is_all_day, i.start, i.end) for i in view] == [
        (True, EWSDate(2030, 3, 25), EWSDate(2030, 3, 25)),
        (True, EWSDate(2030, 4, 1), EWSDate(2030, 4, 1)),
        (True, EWSDate(2030, 4, 8), EWSDate(2030, 4, 8)),
    ]


# attachments, hierarchy, delegates, schema ---------------------------------------------------------
def test_attachments_have_unique_ids_and_their_content_comes_from_get_attachment(server: FakeServer) -> None:
    account = connect(server)
    for subject, names in (("Offer", ["a.pdf", "b.txt"]), ("Invoice", ["a.pdf"])):
        message = Message(folder=account.inbox, subject=subject)
        for name in names:
            message.attach(FileAttachment(name=name, content=f"{subject}:{name}".encode()))
        message.save()
    by_subject = {m.subject: m for m in account.inbox.all()}
    ids = [a.attachment_id.id for m in by_subject.values() for a in m.attachments]
    assert len(ids) == 3 and len(set(ids)) == 3
    (invoice_pdf,) = by_subject["Invoice"].attachments
    assert invoice_pdf.content == b"Invoice:a.pdf"  # fetched with GetAttachment
    assert [a.content for a in by_subject["Offer"].attachments] == [b"Offer:a.pdf", b"Offer:b.txt"]
    (refused,) = GetAttachment(account=account).call(items=[AttachmentId(id="not-an-attachment")], **_NO_SHAPE)
    assert isinstance(refused, ErrorInvalidIdMalformed)


def test_hierarchy_sync_lists_the_folders_once(server: FakeServer) -> None:
    top = connect(server).root.tois
    first = list(top.sync_hierarchy())
    names = {folder.name for change, folder in first if change == "create"}
    assert {"Inbox", "Sent Items", "Deleted Items", "Contacts", "Calendar", "Tasks"} <= names
    assert "Deletions" not in names  # the dumpster is not part of the hierarchy
    assert top.folder_sync_state and list(top.sync_hierarchy()) == []  # nothing changed since


def test_full_access_lets_a_delegate_work_in_another_mailbox(server: FakeServer, tenant: Tenant) -> None:
    as_bob = connect(server, "CONTOSO\\bob", BOB_PW, address=ALICE)
    with pytest.raises(ErrorAccessDenied):
        _ = as_bob.contacts.total_count
    tenant.grant_full_access(ALICE, BOB)
    as_bob = connect(server, "CONTOSO\\bob", BOB_PW, address=ALICE)
    contact = Contact(folder=as_bob.contacts, given_name="Ann", surname="Lee", display_name="Ann Lee")
    contact.save()
    contact.job_title = "Buyer"
    contact.save(update_fields=["job_title"])
    assert [c.job_title for c in connect(server).contacts.all()] == ["Buyer"]  # in Alice's own mailbox
    contact.move_to_trash()
    assert connect(server).trash.all().count() == 1
    assert not tenant.items(tenant.mailbox(BOB), "contacts") and not tenant.items(tenant.mailbox(BOB), "deleteditems")


def test_more_than_512_changes_per_call_fails_schema_validation(server: FakeServer) -> None:
    account = connect(server)
    with pytest.raises(ErrorSchemaValidation, match="MaxChangesReturned"):
        list(account.inbox.sync_items(max_changes_returned=513))
    assert list(account.inbox.sync_items(max_changes_returned=512)) == []


@pytest.mark.parametrize(
    ("operation", "violation"),
    [
        ("<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ItemIds/></m:GetItem>", "ItemIds"),
        ('<m:GetItem><m:ItemShape/><m:ItemIds><t:ItemId Id="x"/></m:ItemIds></m:GetItem>', "BaseShape"),
        (
            "<m:FindItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ParentFolderIds>"
            '<t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>',
            "Traversal",
        ),
        (
            '<m:UpdateItem ConflictResolution="Sometimes"><m:ItemChanges><t:ItemChange><t:ItemId Id="x"/>'
            "<t:Updates/></t:ItemChange></m:ItemChanges></m:UpdateItem>",
            "ConflictResolution",
        ),
    ],
)
def test_requests_the_schema_refuses_fail_with_error_schema_validation(
    server: FakeServer, operation: str, violation: str
) -> None:
    answer = _post(connect(server), _envelope(operation))
    assert answer.status_code == 500
    fault = answer.content.decode()
    assert "<e:ResponseCode>ErrorSchemaValidation</e:ResponseCode>" in fault and violation in fault


def _envelope(operation: str) -> bytes:
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
        'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">'
        f"<s:Body>{operation}</s:Body></s:Envelope>"
    ).encode()


def test_an_item_in_deleted_items_can_be_restored(server: FakeServer) -> None:
    account = connect(server)
    task = Task(folder=account.tasks, subject="Keep me")
    task.save()
    task.move_to_trash()
    (trashed,) = list(account.trash.all())
    trashed.move(account.tasks)  # MoveItem back where it came from
    (restored,) = list(account.tasks.all())
    assert restored.subject == "Keep me" and account.trash.all().count() == 0
    with pytest.raises(ErrorMoveCopyFailed):
        restored.move(account.contacts)
    series = _weekly_series(account, count=2)
    with pytest.raises(ErrorCalendarCannotMoveOrCopyOccurrence):
        series.occurrence(index=1).move(account.trash)


def test_the_dumpster_is_only_in_schemas_from_exchange_2010_sp1(server: FakeServer, api: EwsApi) -> None:
    api.version = SERVER_VERSIONS["Exchange2010"]
    account = connect(server, version=Version(build=Build(14, 0)))
    assert account.trash.all().count() == 0
    with pytest.raises(ErrorSchemaValidation, match="recoverableitemsdeletions"):
        account.recoverable_items_deletions.all().count()
