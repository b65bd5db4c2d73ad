"""Microsoft's own msgraph-sdk and the O365 library, used as a customer's script would, against
the fake Graph and its authority: what they send must be what Graph takes, what they get back
what they can parse."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Coroutine, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import msal
import pytest
from azure.identity import ClientSecretCredential
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.contact import Contact
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.day_of_week import DayOfWeek
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.event import Event
from msgraph.generated.models.patterned_recurrence import PatternedRecurrence
from msgraph.generated.models.recurrence_pattern import RecurrencePattern
from msgraph.generated.models.recurrence_pattern_type import RecurrencePatternType
from msgraph.generated.models.recurrence_range import RecurrenceRange
from msgraph.generated.models.recurrence_range_type import RecurrenceRangeType
from msgraph.generated.models.todo_task import TodoTask
from msgraph.generated.models.week_index import WeekIndex
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.users.item.events.item.instances.instances_request_builder import InstancesRequestBuilder
from msgraph_core import GraphClientFactory
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from O365 import Account, MSGraphProtocol
from O365.utils.token import MemoryTokenBackend

from fakes.cloud import GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, TENANT_ID, FakeCloud
from fakes.graph.seed import seed_mailbox

USER = "sofia.sales@contoso.example"
T = TypeVar("T")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCloud]:
    with FakeCloud(tmp_path_factory.mktemp("graph-clients")) as started:
        yield started


@pytest.fixture
def fresh(cloud: FakeCloud) -> FakeCloud:
    cloud.reset()
    return cloud


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def sdk_client(cloud: FakeCloud) -> GraphServiceClient:
    """msgraph-sdk with azure-identity's client-secret credential, as Microsoft documents it,
    pointed at the fake authority and Graph and trusting their CA."""
    ca = str(cloud.ca.bundle_path)
    credential = ClientSecretCredential(
        TENANT_ID,
        GRAPH_CLIENT_ID,
        GRAPH_CLIENT_SECRET,
        authority=cloud.authority_url.removeprefix("https://"),
        disable_instance_discovery=True,
        connection_verify=ca,
    )
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=["https://graph.microsoft.com/.default"], allowed_hosts=["127.0.0.1"]
    )
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca))
    )
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = f"{cloud.graph_url}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


def _when(moment: datetime) -> DateTimeTimeZone:
    return DateTimeTimeZone(date_time=moment.strftime("%Y-%m-%dT%H:%M:%S"), time_zone="UTC")


# msgraph-sdk -------------------------------------------------------------------------------------
def test_sdk_users_contacts_and_contacts_delta(fresh: FakeCloud) -> None:
    client = sdk_client(fresh)
    box = client.users.by_user_id(USER)

    async def script() -> tuple[Any, ...]:
        users = await client.users.get()
        created = await box.contacts.post(
            Contact(given_name="Ada", surname="Lovelace", email_addresses=[EmailAddress(address="ada@x.example")])
        )
        first = await box.contacts.delta.get()  # GET .../contacts/delta() as generated
        await box.contacts.by_contact_id(created.id).patch(Contact(job_title="Countess"))
        again = await box.contacts.delta.with_url(first.odata_delta_link).get()
        return users, created, first, again

    users, created, first, again = _run(script())

    assert USER in [u.mail for u in users.value]
    assert [c.given_name for c in first.value] == ["Ada"]
    assert "/contacts/delta()" in first.odata_delta_link
    assert [(c.id, c.job_title) for c in again.value] == [(created.id, "Countess")]


def test_sdk_refusals_arrive_as_odata_errors(fresh: FakeCloud) -> None:
    box = sdk_client(fresh).users.by_user_id(USER)
    emails = [EmailAddress(address=f"a{n}@x.example") for n in range(4)]

    with pytest.raises(APIError) as refused:
        _run(box.contacts.post(Contact(given_name="Ada", email_addresses=emails)))

    assert refused.value.response_status_code == 400
    assert refused.value.error.code == "ErrorInvalidProperty"


def test_sdk_series_instances_and_calendar_view_delta(fresh: FakeCloud) -> None:
    box = sdk_client(fresh).users.by_user_id(USER)
    start = datetime(2026, 1, 13, 9, tzinfo=UTC)  # the second Tuesday of January
    second_tuesday = PatternedRecurrence(
        pattern=RecurrencePattern(
            type=RecurrencePatternType.RelativeMonthly,
            interval=1,
            days_of_week=[DayOfWeek.Tuesday],
            index=WeekIndex.Second,
        ),
        range=RecurrenceRange(type=RecurrenceRangeType.NoEnd, start_date=date(2026, 1, 13)),
    )
    window = {"start_date_time": "2026-01-01T00:00:00Z", "end_date_time": "2026-05-01T00:00:00Z"}

    async def script() -> tuple[Any, ...]:
        series = await box.events.post(
            Event(subject="Board", start=_when(start), end=_when(start + timedelta(hours=1)), recurrence=second_tuesday)
        )
        instances = await box.events.by_event_id(series.id).instances.get(
            RequestConfiguration(
                query_parameters=InstancesRequestBuilder.InstancesRequestBuilderGetQueryParameters(**window)
            )
        )
        delta = await box.calendar_view.delta.get(
            RequestConfiguration(query_parameters=DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(**window))
        )
        master = await box.events.by_event_id(delta.value[0].series_master_id).get()
        return series, instances, delta, master

    series, instances, delta, master = _run(script())

    assert [i.start.date_time[:10] for i in instances.value] == ["2026-01-13", "2026-02-10", "2026-03-10", "2026-04-14"]
    assert {i.series_master_id for i in instances.value} == {series.id}
    assert {e.type.value for e in delta.value} == {"occurrence"}
    assert (master.type.value, master.recurrence.pattern.index) == ("seriesMaster", WeekIndex.Second)


def test_sdk_todo_under_application_permissions_messages_and_batch(fresh: FakeCloud) -> None:
    fresh.authority.grant_app_roles(GRAPH_CLIENT_ID, ["Tasks.ReadWrite.All"])
    seed_mailbox(fresh.tenant, fresh.tenant.mailbox(USER), size=6)
    client = sdk_client(fresh)
    box = client.users.by_user_id(USER)

    async def script() -> tuple[Any, ...]:
        lists = await box.todo.lists.get()
        default = next(x for x in lists.value if x.wellknown_list_name.value == "defaultList")
        task = await box.todo.lists.by_todo_task_list_id(default.id).tasks.post(TodoTask(title="Call Ada"))
        inbox = await box.mail_folders.by_mail_folder_id("inbox").messages.get()
        contacts_request = BatchRequestItem(box.contacts.to_get_request_information())
        tasks_request = BatchRequestItem(
            box.todo.lists.by_todo_task_list_id(default.id).tasks.to_get_request_information()
        )
        as_built = await client.batch.post(BatchRequestContent({"c": contacts_request}))
        batch = BatchRequestContent()
        for item in (contacts_request, tasks_request):  # msgraph-core keeps absolute URLs, which Graph
            item.url = item.url.removeprefix(f"{fresh.graph_url}/v1.0")  # refuses: the usual workaround
            batch.add_request(item.id, item)
        answers = await client.batch.post(batch)
        return task, inbox, as_built, answers, contacts_request.id, tasks_request.id

    task, inbox, as_built, answers, contacts_id, tasks_id = _run(script())

    assert task.title == "Call Ada"
    assert inbox.value and all(m.subject for m in inbox.value)
    assert list(as_built.get_response_status_codes().values()) == [400]
    assert answers.get_response_status_codes() == {contacts_id: 200, tasks_id: 200}


# O365 ----------------------------------------------------------------------------------------------
def o365_account(cloud: FakeCloud, monkeypatch: pytest.MonkeyPatch) -> Account:
    """O365 with client credentials; its protocol URL and msal authority pointed at the fakes."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cloud.ca.bundle_path))

    class FakeGraphProtocol(MSGraphProtocol):  # as for a national cloud: Graph at another URL
        _protocol_url = f"{cloud.graph_url}/"

    account = Account(
        (GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET),
        auth_flow_type="credentials",
        tenant_id=TENANT_ID,
        protocol=FakeGraphProtocol(default_resource=USER),
        token_backend=MemoryTokenBackend(),  # not the default o365_token.txt in the working directory
    )
    account.con._msal_client = msal.ConfidentialClientApplication(  # the authority O365 has no option for
        GRAPH_CLIENT_ID,
        client_credential=GRAPH_CLIENT_SECRET,
        authority=f"{cloud.authority_url}/{TENANT_ID}",
        instance_discovery=False,
        token_cache=account.con.token_backend,
        verify=str(cloud.ca.bundle_path),
    )
    assert account.authenticate()
    return account


def test_o365_contacts_calendar_tasks_and_mail(fresh: FakeCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh.authority.grant_app_roles(GRAPH_CLIENT_ID, ["Tasks.ReadWrite.All"])
    seed_mailbox(fresh.tenant, fresh.tenant.mailbox(USER), size=6)
    account = o365_account(fresh, monkeypatch)

    contact = account.address_book().new_contact()
    contact.name, contact.surname = "Grace", "Hopper"
    contact.emails.add("grace@x.example")
    assert contact.save()
    schedule = account.schedule()
    calendar = schedule.get_default_calendar()
    event = calendar.new_event()
    event.subject = "Weekly sync"
    event.start = datetime(2026, 3, 2, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    event.end = event.start + timedelta(hours=1)
    event.recurrence.set_weekly(
        1, days_of_week=["Monday"], first_day_of_week="Sunday", start=date(2026, 3, 2), occurrences=4
    )
    assert event.save()
    occurrences = list(
        calendar.get_events(
            include_recurring=True,
            start_recurring=datetime(2026, 3, 1, tzinfo=ZoneInfo("UTC")),
            end_recurring=datetime(2026, 4, 1, tzinfo=ZoneInfo("UTC")),
        )
    )
    folder = account.tasks().get_default_folder()
    task = folder.new_task("Send the deck")
    assert task.save()
    messages = list(account.mailbox().inbox_folder().get_messages(limit=50))

    assert "Grace Hopper" in [c.full_name for c in account.address_book().get_contacts(limit=None)]
    assert [(o.subject, o.event_type.value) for o in occurrences] == [("Weekly sync", "occurrence")] * 4
    assert "Send the deck" in [t.subject for t in folder.get_tasks()]
    assert messages and all(m.subject for m in messages)
