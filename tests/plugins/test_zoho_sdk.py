"""Zoho's own Python SDK (``zohocrmsdk8-0``) against the fake CRM, used as a customer's script
would use it: it signs in, reads the field metadata it needs to decode records, and works on
records, searches, COQL and mails. Whatever the SDK cannot read from the fake would fail here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.api.authenticator.store.file_store import FileStore
from zohocrmsdk.src.com.zoho.crm.api import HeaderMap, ParameterMap, coql, fields
from zohocrmsdk.src.com.zoho.crm.api import associate_email as mails
from zohocrmsdk.src.com.zoho.crm.api import record as records
from zohocrmsdk.src.com.zoho.crm.api.dc.data_center import DataCenter
from zohocrmsdk.src.com.zoho.crm.api.initializer import Initializer
from zohocrmsdk.src.com.zoho.crm.api.sdk_config import SDKConfig
from zohocrmsdk.src.com.zoho.crm.api.util import Choice

from fakes.crm import CLIENT_ID, CLIENT_SECRET, CrmApi, CrmOrg, new_org
from fakes.server import FakeCA, FakeServer


@pytest.fixture(scope="module")
def org() -> CrmOrg:
    return new_org()


@pytest.fixture(scope="module")
def crm(org: CrmOrg, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeServer]:
    """The fake CRM, and the SDK initialised against it as the org's admin."""
    tmp = tmp_path_factory.mktemp("sdk")
    ca = FakeCA(tmp / "ca")
    server = FakeServer(CrmApi(org), ca=ca).start()
    old = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = str(ca.bundle_path)  # the SDK calls through requests
    environment = DataCenter.Environment(server.base_url, f"{server.base_url}/oauth/v2/token", server.base_url)
    token = OAuthToken(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=org.issue_refresh_token(org.admin.id)
    )
    Initializer.initialize(
        environment=environment,
        token=token,
        store=FileStore(str(tmp / "tokens.csv")),
        sdk_config=SDKConfig(auto_refresh_fields=False, pick_list_validation=False),
        resource_path=str(tmp),
    )
    yield server
    server.stop()
    if old is None:
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
    else:
        os.environ["REQUESTS_CA_BUNDLE"] = old


def _record(**values: Any) -> Any:
    record = records.Record()
    for key, value in values.items():
        record.add_key_value(key, value)
    return record


def _body(*items: Any, **extra: Any) -> Any:
    body = records.BodyWrapper()
    body.set_data(list(items))
    for key, value in extra.items():
        getattr(body, f"set_{key}")(value)
    return body


def _outcomes(response: Any) -> list[tuple[str, dict[str, Any]]]:
    """(code, details) of each item of an action response."""
    wrapper = response.get_object()
    return [(item.get_code().get_value(), item.get_details()) for item in wrapper.get_data()]


def _fields(*names: str) -> ParameterMap:
    params = ParameterMap()
    params.add(records.GetRecordsParam.fields, ",".join(names))
    return params


def test_the_sdk_creates_reads_updates_and_deletes_a_record(crm: FakeServer, org: CrmOrg) -> None:
    contacts = records.RecordOperations("Contacts")

    created = contacts.create_records(_body(_record(Last_Name="Sdk", Email="sdk@example.com")), HeaderMap())
    ((code, details),) = _outcomes(created)
    record_id = int(details["id"])  # the SDK takes ids as numbers
    updated = contacts.update_record(record_id, _body(_record(Title="Chief")), HeaderMap())
    read = contacts.get_record(record_id, _fields("Last_Name", "Title", "Email"), HeaderMap())
    (got,) = read.get_object().get_data()
    deleted = contacts.delete_record(record_id, ParameterMap(), HeaderMap())

    assert (created.get_status_code(), code) == (201, "SUCCESS")
    assert _outcomes(updated)[0][0] == "SUCCESS"
    assert (got.get_id(), got.get_key_value("Last_Name"), got.get_key_value("Title")) == (record_id, "Sdk", "Chief")
    assert str(record_id) == details["id"]
    assert _outcomes(deleted)[0][0] == "SUCCESS"
    assert org.count("Contacts") == 0


def test_the_sdk_sees_the_fakes_refusals_in_zohos_shape(crm: FakeServer) -> None:
    tasks = records.RecordOperations("Tasks")

    response = tasks.create_records(_body(_record(Subject="Odd", Status=Choice("Sort of done"))), HeaderMap())

    assert response.get_status_code() == 400
    assert _outcomes(response) == [("INVALID_DATA", {"api_name": "Status", "expected_data_type": "picklist"})]


def test_the_sdk_upserts_on_the_email(crm: FakeServer, org: CrmOrg) -> None:
    leads = records.RecordOperations("Leads")
    lead = {"Last_Name": "Up", "Company": "Acme", "Email": "up@example.com"}

    first = leads.upsert_records(_body(_record(**lead), duplicate_check_fields=["Email"]), HeaderMap())
    second = leads.upsert_records(
        _body(_record(**{**lead, "Company": "Acme Ltd"}), duplicate_check_fields=["Email"]), HeaderMap()
    )

    assert [item.get_action().get_value() for item in first.get_object().get_data()] == ["insert"]
    assert [item.get_action().get_value() for item in second.get_object().get_data()] == ["update"]
    (stored,) = [r for r in org.list_records("Leads").records if r["Email"] == "up@example.com"]
    assert stored["Company"] == "Acme Ltd"


def test_the_sdk_searches_and_queries_with_coql(crm: FakeServer, org: CrmOrg) -> None:
    org.insert("Contacts", {"Last_Name": "Found", "Email": "found@example.com"})
    params = ParameterMap()
    params.add(records.SearchRecordsParam.email, "FOUND@example.com")
    query = coql.BodyWrapper()
    query.set_select_query("select Last_Name, Email from Contacts where Email = 'found@example.com' limit 10")

    searched = records.RecordOperations("Contacts").search_records(params, HeaderMap())
    queried = coql.CoqlOperations().get_records(query)

    assert [r.get_key_value("Last_Name") for r in searched.get_object().get_data()] == ["Found"]
    assert [r.get_key_value("Email") for r in queried.get_object().get_data()] == ["found@example.com"]


def test_the_sdk_reads_the_field_metadata(crm: FakeServer) -> None:
    params = ParameterMap()
    params.add(fields.GetFieldsParam.module, "Events")

    response = fields.FieldsOperations().get_fields(params)

    by_name = {f.get_api_name(): f for f in response.get_object().get_fields()}
    assert by_name["Start_DateTime"].get_data_type() == "datetime"
    assert by_name["Start_DateTime"].get_system_mandatory() is True
    assert by_name["Exsync_UID"].get_custom_field() is True


def test_the_sdk_associates_a_mail_that_the_related_list_then_shows(crm: FakeServer, org: CrmOrg) -> None:
    contact = org.insert("Contacts", {"Last_Name": "Mailed", "Email": "mailed@example.com"})["id"]
    sender, to = mails.From(), mails.To()
    sender.set_user_name("amelia")
    sender.set_email(org.admin.email)
    to.set_user_name("mailed")
    to.set_email("mailed@example.com")
    mail = mails.AssociateEmail()
    mail.set_from(sender)
    mail.set_to([to])
    mail.set_subject("From the SDK")
    mail.set_content("Hello")
    mail.set_original_message_id("<sdk-1@example.com>")
    mail.set_sent(True)
    mail.set_date_time(datetime(2030, 1, 1, 9, tzinfo=UTC))
    body = mails.BodyWrapper()
    body.set_emails([mail])

    response = mails.AssociateEmailOperations().associate(int(contact), "Contacts", body)

    assert response.get_status_code() == 201
    ((code, details),) = [(i.get_code().get_value(), i.get_details()) for i in response.get_object().get_emails()]
    assert code == "SUCCESS" and details["message_id"]
    (listed,) = org.mails_of("Contacts", contact)
    assert (listed["message_id"], listed["subject"], listed["sent"]) == (details["message_id"], "From the SDK", True)
