"""The fake CRM through the wire, with httpx against a real TLS socket."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest.mock import ANY

import httpx
import pytest

from fakes.crm import CLIENT_ID, CLIENT_SECRET, CrmApi, CrmError, CrmOrg, new_org, seed_org
from fakes.crm.seed import add_default_users, add_exsync_fields
from fakes.server import FakeCA, FakeServer

T0 = datetime(2026, 11, 25, 10, 0, 0, 200_000, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> FakeCA:
    return FakeCA(tmp_path_factory.mktemp("crm-ca"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def org(clock: Clock) -> CrmOrg:
    org = CrmOrg("Zylker", "Enterprise", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, clock=clock)
    add_default_users(org)
    add_exsync_fields(org)
    return org


@pytest.fixture(scope="module")
def shared_server(ca: FakeCA) -> Iterator[FakeServer]:
    server = FakeServer(CrmApi(CrmOrg()), ca=ca).start()
    yield server
    server.stop()  # takes half a second, so the server is shared by the module's tests


@pytest.fixture
def server(shared_server: FakeServer, org: CrmOrg) -> FakeServer:
    """The shared server, serving this test's org, with no fault rules."""
    shared_server.handler = CrmApi(org)
    shared_server.faults.clear()
    return shared_server


@pytest.fixture
def http(server: FakeServer, ca: FakeCA) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cafile=str(ca.bundle_path))
    with httpx.Client(base_url=server.base_url, verify=context) as client:
        yield client


FIELDS = "First_Name,Last_Name,Full_Name,Email,Title,Description,Subject,Account_Name,Owner,Modified_Time,Exsync_Link"


@pytest.fixture
def crm(http: httpx.Client, org: CrmOrg) -> httpx.Client:
    """The client, signed in as the org's admin, asking for :data:`FIELDS` on every read."""
    http.headers["Authorization"] = _auth(http, org.issue_refresh_token(org.admin.id))
    http.params = httpx.QueryParams({"fields": FIELDS})
    return http


def _token_reply(http: httpx.Client, refresh_token: str, secret: str = CLIENT_SECRET) -> dict[str, Any]:
    form = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": secret}
    reply = http.post("/oauth/v2/token", data={**form, "refresh_token": refresh_token})
    assert reply.status_code == 200
    result: dict[str, Any] = reply.json()
    return result


def _auth(http: httpx.Client, refresh_token: str) -> str:
    return f"Zoho-oauthtoken {_token_reply(http, refresh_token)['access_token']}"


def _contacts(org: CrmOrg, count: int) -> list[str]:
    return [org.insert("Contacts", {"Last_Name": f"Person {n}"})["id"] for n in range(count)]


def _ids(reply: httpx.Response) -> list[str]:
    return [r["id"] for r in reply.json()["data"]]


def _codes(reply: httpx.Response) -> list[str]:
    return [r["code"] for r in reply.json()["data"]]


# OAuth ---------------------------------------------------------------------------------------
def test_refresh_token_gets_an_access_token_and_the_fakes_api_domain(
    http: httpx.Client, server: FakeServer, org: CrmOrg
) -> None:
    reply = _token_reply(http, org.issue_refresh_token(org.admin.id))

    assert reply["api_domain"] == server.base_url
    assert reply["token_type"] == "Bearer"
    assert reply["expires_in"] == 3600
    assert http.get("/crm/v8/org", headers={"Authorization": f"Zoho-oauthtoken {reply['access_token']}"}).is_success


def test_unknown_refresh_token_is_http_200_invalid_code(http: httpx.Client) -> None:
    assert _token_reply(http, "1000.not.issued") == {"error": "invalid_code"}


def test_wrong_client_secret_is_invalid_client(http: httpx.Client, org: CrmOrg) -> None:
    reply = _token_reply(http, org.issue_refresh_token(org.admin.id), secret="wrong")

    assert reply == {"error": "invalid_client"}


@pytest.mark.parametrize("header", [None, "Bearer abc", "Zoho-oauthtoken 1000.unknown.token"])
def test_missing_or_bad_token_is_401_invalid_token(http: httpx.Client, header: str | None) -> None:
    reply = http.get("/crm/v8/Contacts", headers={"Authorization": header} if header else {})

    assert reply.status_code == 401
    assert reply.json() == {"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"}


def test_expired_token_is_401_until_refreshed(crm: httpx.Client, org: CrmOrg) -> None:
    org.expire_tokens()

    expired = crm.get("/crm/v8/Contacts")
    crm.headers["Authorization"] = _auth(crm, org.issue_refresh_token(org.admin.id))

    assert expired.status_code == 401
    assert expired.json()["code"] == "INVALID_TOKEN"
    assert "expired" in expired.json()["message"]
    assert crm.get("/crm/v8/Contacts").status_code == 204


def test_token_lifetime_runs_on_the_org_clock(crm: httpx.Client, clock: Clock) -> None:
    clock.now = T0 + timedelta(seconds=3601)

    assert crm.get("/crm/v8/Contacts").status_code == 401


def test_revoked_refresh_token_no_longer_works_nor_its_access_tokens(http: httpx.Client, org: CrmOrg) -> None:
    refresh = org.issue_refresh_token(org.admin.id)
    auth = _auth(http, refresh)

    org.revoke_refresh_token(refresh)

    assert http.get("/crm/v8/Contacts", headers={"Authorization": auth}).status_code == 401
    assert _token_reply(http, refresh) == {"error": "invalid_code"}


# listing ---------------------------------------------------------------------------------------
def test_listing_pages_with_more_records(crm: httpx.Client, org: CrmOrg) -> None:
    ids = _contacts(org, 450)

    pages = [crm.get("/crm/v8/Contacts", params={"page": n, "per_page": 200}) for n in (1, 2, 3, 4)]

    infos = [(i["count"], i["more_records"], i["page"]) for i in (p.json()["info"] for p in pages[:3])]
    assert infos == [(200, True, 1), (200, True, 2), (50, False, 3)]
    assert [i for p in pages[:3] for i in _ids(p)] == ids
    assert pages[3].status_code == 204
    assert pages[3].content == b""


def test_per_page_above_200_is_clamped(crm: httpx.Client, org: CrmOrg) -> None:
    _contacts(org, 250)

    reply = crm.get("/crm/v8/Contacts", params={"per_page": 500})

    assert len(reply.json()["data"]) == 200
    assert reply.json()["info"]["per_page"] == 200
    assert reply.json()["info"]["more_records"] is True


def test_listing_follows_modification_order_and_selects_fields(crm: httpx.Client, org: CrmOrg) -> None:
    first, second = _contacts(org, 2)
    org.update("Contacts", first, {"Title": "CTO"})

    ascending = crm.get("/crm/v8/Contacts", params={"fields": "Last_Name,Title"})
    descending = crm.get("/crm/v8/Contacts", params={"sort_by": "Modified_Time", "sort_order": "desc"})

    assert ascending.json()["data"] == [
        {"id": second, "Last_Name": "Person 1", "Title": None},
        {"id": first, "Last_Name": "Person 0", "Title": "CTO"},
    ]
    assert _ids(descending) == [first, second]


def test_every_record_read_names_its_fields(crm: httpx.Client, org: CrmOrg) -> None:
    (record_id,) = _contacts(org, 1)
    crm.params = httpx.QueryParams()

    for path in ("/crm/v8/Contacts", f"/crm/v8/Contacts/{record_id}"):
        reply = crm.get(path)
        assert reply.status_code == 400
        assert reply.json() == {
            "code": "REQUIRED_PARAM_MISSING",
            "details": {"param": "fields"},
            "message": "One of the expected parameter is missing",
            "status": "error",
        }
    too_many = ",".join(f"Field_{n}" for n in range(51))
    assert crm.get("/crm/v8/Contacts", params={"fields": too_many}).json()["code"] == "LIMIT_EXCEEDED"


def test_page_reaches_2000_records_and_page_token_the_rest(crm: httpx.Client, org: CrmOrg) -> None:
    ids = _contacts(org, 2150)

    last_by_page = crm.get("/crm/v8/Contacts", params={"page": 10, "per_page": 200})
    beyond = crm.get("/crm/v8/Contacts", params={"page": 11, "per_page": 200})
    token = last_by_page.json()["info"]["next_page_token"]
    by_token = crm.get("/crm/v8/Contacts", params={"page_token": token, "per_page": 200})
    both = crm.get("/crm/v8/Contacts", params={"page_token": token, "page": 11})

    assert _ids(last_by_page) == ids[1800:2000]
    assert (beyond.status_code, beyond.json()["code"]) == (400, "DISCRETE_PAGINATION_LIMIT_EXCEEDED")
    assert _ids(by_token) == ids[2000:2150]
    assert by_token.json()["info"]["more_records"] is False
    assert "next_page_token" not in by_token.json()["info"]
    assert both.status_code == 400
    unknown = crm.get("/crm/v8/Contacts", params={"page_token": "forged"})
    assert (unknown.status_code, unknown.json()["details"]) == (400, {"param": "page_token"})


def test_a_page_token_belongs_to_its_listing(crm: httpx.Client, org: CrmOrg) -> None:
    _contacts(org, 3)
    first = crm.get("/crm/v8/Contacts", params={"per_page": 2})
    token = first.json()["info"]["next_page_token"]

    other = crm.get("/crm/v8/Contacts", params={"page_token": token, "per_page": 2, "sort_order": "desc"})

    assert other.status_code == 400


def test_empty_module_lists_as_204(crm: httpx.Client) -> None:
    reply = crm.get("/crm/v8/Tasks")

    assert (reply.status_code, reply.content) == (204, b"")


def test_if_modified_since_never_misses_a_change_in_the_same_second(
    crm: httpx.Client, org: CrmOrg, clock: Clock
) -> None:
    clock.now = T0 - timedelta(hours=1)
    older = org.insert("Contacts", {"Last_Name": "Older"})["id"]
    clock.now = T0  # 10:00:00.2
    first = org.insert("Contacts", {"Last_Name": "First"})
    cursor = first["Modified_Time"]
    clock.now = T0 + timedelta(milliseconds=500)  # 10:00:00.7, the same second
    org.update("Contacts", older, {"Title": "Later"})

    def since(value: str) -> httpx.Response:
        return crm.get("/crm/v8/Contacts", headers={"If-Modified-Since": value})

    assert cursor == "2026-11-25T10:00:00+00:00"
    assert _ids(since(cursor)) == [first["id"], older]
    assert _ids(since("2026-11-25T15:30:00+05:30")) == [first["id"], older]
    assert since("2026-11-25T10:00:01+00:00").status_code == 204


@pytest.mark.parametrize(
    "value",
    ["yesterday", "Wed, 25 Nov 2026 10:00:00 GMT", "2026-11-25T10:00:00.5+00:00", "2026-11-25T10:00:00", "2026-11-25"],
)
def test_if_modified_since_in_any_other_form_than_zohos_is_refused(crm: httpx.Client, value: str) -> None:
    reply = crm.get("/crm/v8/Contacts", headers={"If-Modified-Since": value})

    assert reply.status_code == 400
    assert reply.json() == {
        "code": "INVALID_DATA",
        "details": {"header": "If-Modified-Since", "expected_data_type": "datetime"},
        "message": "the header If-Modified-Since must be in the format yyyy-MM-ddTHH:mm:ss±HH:mm",
        "status": "error",
    }


def test_writes_in_one_frozen_instant_still_order_and_filter(crm: httpx.Client, org: CrmOrg) -> None:
    a, b = _contacts(org, 2)  # the clock does not move between them

    reply = crm.get("/crm/v8/Contacts", headers={"If-Modified-Since": "2026-11-25T10:00:00+00:00"})

    assert _ids(reply) == [a, b]


# writing ---------------------------------------------------------------------------------------
def test_insert_reports_a_status_per_record(crm: httpx.Client, org: CrmOrg) -> None:
    records = [
        {"Last_Name": "Valid", "Email": "val@example.com", "Exsync_Link": "ex-42", "Description": "d" * 32000},
        {"First_Name": "No last name"},
        {"Last_Name": "Bad mail", "Email": "not-an-address"},
        {"Last_Name": "Long title", "Title": "t" * 256},
        {"Last_Name": "Long text", "Description": "d" * 32001},
    ]

    reply = crm.post("/crm/v8/Contacts", json={"data": records})

    data = reply.json()["data"]
    assert reply.status_code == 201
    assert _codes(reply) == ["SUCCESS", "MANDATORY_NOT_FOUND", "INVALID_DATA", "INVALID_DATA", "INVALID_DATA"]
    assert data[0]["action"] == "insert"
    assert data[1]["details"] == {"api_name": "Last_Name"}
    assert data[2]["details"] == {"api_name": "Email", "expected_data_type": "email"}
    assert data[2]["message"] == "invalid data"
    assert data[3]["details"] == {"api_name": "Title", "maximum_length": 100, "expected_data_type": "text"}
    assert data[4]["details"] == {"api_name": "Description", "maximum_length": 32000, "expected_data_type": "textarea"}
    stored = crm.get(f"/crm/v8/Contacts/{data[0]['details']['id']}").json()["data"][0]
    assert stored["Exsync_Link"] == "ex-42"
    assert stored["Owner"] == {"name": org.admin.full_name, "id": org.admin.id}
    assert len(stored["id"]) == 19
    assert org.count("Contacts") == 1


def test_insert_with_every_record_invalid_is_400(crm: httpx.Client) -> None:
    reply = crm.post("/crm/v8/Leads", json={"data": [{"Last_Name": "No company"}]})

    assert reply.status_code == 400
    assert reply.json()["data"][0]["details"] == {"api_name": "Company"}


def test_update_reports_a_status_per_record(crm: httpx.Client, org: CrmOrg) -> None:
    first, second = _contacts(org, 2)
    records = [
        {"id": first, "Title": "CTO"},
        {"id": "4150868000999999999", "Title": "Ghost"},
        {"Title": "No id"},
        {"id": second, "Email": "broken@"},
        {"id": second, "Last_Name": ""},
    ]

    reply = crm.put("/crm/v8/Contacts", json={"data": records})

    assert reply.status_code == 200
    assert _codes(reply) == ["SUCCESS", "INVALID_DATA", "MANDATORY_NOT_FOUND", "INVALID_DATA", "MANDATORY_NOT_FOUND"]
    assert reply.json()["data"][0]["action"] == "update"
    assert org.get("Contacts", first)["Title"] == "CTO"
    assert org.get("Contacts", second)["Last_Name"] == "Person 1"


def test_upsert_updates_matches_and_inserts_the_rest(crm: httpx.Client, org: CrmOrg) -> None:
    existing = org.insert("Contacts", {"Last_Name": "Old", "Email": "kim@example.com"})["id"]
    records = [{"Last_Name": "Kim", "Email": "KIM@example.com"}, {"Last_Name": "New", "Email": "new@example.com"}]

    reply = crm.post("/crm/v8/Contacts/upsert", json={"data": records, "duplicate_check_fields": ["Email"]})

    data = reply.json()["data"]
    assert reply.status_code == 201
    assert [(d["action"], d["duplicate_field"]) for d in data] == [("update", "Email"), ("insert", None)]
    assert data[0]["details"]["id"] == existing
    assert org.get("Contacts", existing)["Last_Name"] == "Kim"
    assert org.count("Contacts") == 2


def test_duplicate_account_name_is_duplicate_data(crm: httpx.Client) -> None:
    reply = crm.post("/crm/v8/Accounts", json={"data": [{"Account_Name": "Zylker"}, {"Account_Name": "zylker"}]})

    assert _codes(reply) == ["SUCCESS", "DUPLICATE_DATA"]
    assert reply.json()["data"][1]["details"]["api_name"] == "Account_Name"


def test_lookup_to_a_missing_record_is_invalid_data(org: CrmOrg) -> None:
    with pytest.raises(CrmError) as caught:
        org.insert("Contacts", {"Last_Name": "X", "Account_Name": {"id": "4150868000999999999"}})

    assert (caught.value.code, caught.value.details) == ("INVALID_DATA", {"api_name": "Account_Name"})


def test_lookups_show_the_current_name_of_the_record(org: CrmOrg) -> None:
    account = org.insert("Accounts", {"Account_Name": "Zylker"})["id"]
    contact = org.insert("Contacts", {"Last_Name": "Kim", "Account_Name": {"id": account}})["id"]

    org.update("Accounts", account, {"Account_Name": "Zylker Corp"})

    assert org.get("Contacts", contact)["Account_Name"] == {"id": account, "name": "Zylker Corp"}


def test_concurrent_writes_get_distinct_ids_and_ordered_times() -> None:
    org = CrmOrg()  # the real clock
    add_default_users(org)
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda n: org.insert("Tasks", {"Subject": f"T{n}"})["id"], range(400)))

    listed = org.list_records("Tasks", per_page=200)
    assert len(set(ids)) == org.count("Tasks") == 400
    assert listed.more is True
    assert [r["Modified_Time"] for r in listed.records] == sorted(r["Modified_Time"] for r in listed.records)


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_more_than_100_records_is_limit_exceeded(crm: httpx.Client, method: str) -> None:
    records = [{"id": str(n), "Last_Name": f"P{n}"} for n in range(101)]

    reply = crm.request(method, "/crm/v8/Contacts", json={"data": records})

    assert reply.status_code == 400
    assert reply.json()["code"] == "LIMIT_EXCEEDED"


def test_deleting_more_than_100_ids_is_limit_exceeded(crm: httpx.Client) -> None:
    ids = ",".join(str(4150868000000000000 + n) for n in range(101))

    reply = crm.delete("/crm/v8/Contacts", params={"ids": ids})

    assert (reply.status_code, reply.json()["code"]) == (400, "LIMIT_EXCEEDED")


# deleting ---------------------------------------------------------------------------------------
def test_delete_leaves_a_tombstone_in_the_deleted_listing(crm: httpx.Client, org: CrmOrg, clock: Clock) -> None:
    target = org.insert("Contacts", {"First_Name": "Ada", "Last_Name": "Lovelace"})["id"]
    clock.now = T0 + timedelta(minutes=5)

    reply = crm.delete("/crm/v8/Contacts", params={"ids": f"{target},4150868000999999999"})

    assert reply.status_code == 200
    assert _codes(reply) == ["SUCCESS", "INVALID_DATA"]
    assert crm.get(f"/crm/v8/Contacts/{target}").json()["code"] == "INVALID_DATA"
    deleted = crm.get("/crm/v8/Contacts/deleted", params={"type": "all"}).json()["data"]
    assert deleted == [
        {
            "id": target,
            "display_name": "Ada Lovelace",
            "type": "recycle",
            "deleted_by": org.admin.ref(),
            "created_by": org.admin.ref(),
            "deleted_time": "2026-11-25T10:05:00+00:00",
        }
    ]
    later = crm.get("/crm/v8/Contacts/deleted", headers={"If-Modified-Since": "2026-11-25T10:05:01+00:00"})
    assert later.status_code == 204
    assert crm.get("/crm/v8/Contacts/deleted", params={"type": "permanent"}).status_code == 204


# search, users, org --------------------------------------------------------------------------------
def test_search_by_email_and_by_criteria(crm: httpx.Client, org: CrmOrg) -> None:
    kim = org.insert("Contacts", {"First_Name": "Kim", "Last_Name": "Lee", "Email": "kim.lee@example.com"})["id"]
    org.insert("Contacts", {"First_Name": "Ann", "Last_Name": "Lee", "Email": "ann.lee@example.com"})

    by_email = crm.get("/crm/v8/Contacts/search", params={"email": "Kim.Lee@Example.com"})
    criteria = "((Last_Name:equals:lee)and(First_Name:equals:Kim))"
    by_criteria = crm.get("/crm/v8/Contacts/search", params={"criteria": criteria})

    assert _ids(by_email) == [kim]
    assert _ids(by_criteria) == [kim]
    assert crm.get("/crm/v8/Contacts/search", params={"email": "nobody@example.com"}).status_code == 204
    unsupported = crm.get("/crm/v8/Contacts/search", params={"criteria": "(Last_Name:starts_with:L)"})
    assert (unsupported.status_code, unsupported.json()["code"]) == (400, "INVALID_QUERY")


def test_search_by_criteria_joined_by_or(crm: httpx.Client, org: CrmOrg) -> None:
    kim = org.insert("Contacts", {"Last_Name": "Lee", "Email": "kim.lee@example.com"})["id"]
    ann = org.insert("Contacts", {"Last_Name": "Lee", "Email": "ann(x)@example.com"})["id"]
    org.insert("Contacts", {"Last_Name": "Roe", "Email": "bo.roe@example.com"})

    def search(criteria: str) -> httpx.Response:
        return crm.get("/crm/v8/Contacts/search", params={"criteria": criteria})

    either = search(r"((Email:equals:KIM.lee@example.com)or(Email:equals:ann\(x\)@example.com)or(Email:equals:no@x))")
    too_many = search("(" + "or".join(f"(Email:equals:{n}@x)" for n in range(11)) + ")")
    mixed = search("((Last_Name:equals:Lee)and(Email:equals:a@x)or(Email:equals:b@x))")

    assert _ids(either) == [kim, ann]
    assert (too_many.status_code, too_many.json()["code"]) == (400, "INVALID_QUERY")
    assert (mixed.status_code, mixed.json()["code"]) == (400, "INVALID_QUERY")


def test_coql_selects_records_whose_field_is_in_a_list_page_by_page(crm: httpx.Client, org: CrmOrg) -> None:
    ids = [org.insert("Contacts", {"Last_Name": f"P{n}", "Email": f"p{n}@x.example"})["id"] for n in range(250)]
    org.insert("Contacts", {"Last_Name": "Other", "Email": "other@x.example"})
    wanted = ", ".join(f"'P{n}@X.example'" for n in range(0, 250, 5))  # 50 values, matched in any case

    def query(text: str) -> httpx.Response:
        return crm.post("/crm/v8/coql", json={"select_query": text})

    first = query(f"SELECT Email FROM Contacts WHERE Email IN ({wanted}) LIMIT 20 OFFSET 0")
    last = query(f"select Email, Last_Name from Contacts where Email in ({wanted}) limit 20 offset 40")
    one = query("select Email from Contacts where Email = 'P7@x.example'")

    assert first.json()["data"] == [{"id": ids[n], "Email": f"p{n}@x.example"} for n in range(0, 100, 5)]
    assert first.json()["info"] == {"count": 20, "more_records": True}
    assert [r["Last_Name"] for r in last.json()["data"]] == [f"P{n}" for n in range(200, 250, 5)]
    assert last.json()["info"] == {"count": 10, "more_records": False}
    assert one.json()["data"] == [{"id": ids[7], "Email": "p7@x.example"}]
    assert query("select Email from Contacts where Email = 'nobody@x.example'").status_code == 204


def test_coql_joins_criteria_with_or_bracketed_two_at_a_time(crm: httpx.Client, org: CrmOrg) -> None:
    ids = [org.insert("Contacts", {"Last_Name": f"P{n}", "Email": f"p{n}@x.example"})["id"] for n in range(120)]

    def found(where: str) -> list[str]:
        reply = crm.post("/crm/v8/coql", json={"select_query": f"select Email from Contacts where {where}"})
        return [r["id"] for r in reply.json()["data"]]

    fifty = [", ".join(f"'p{n}@x.example'" for n in range(start, start + 50)) for start in (0, 50)]
    nested = f"(Email in ({fifty[0]}) or (Email in ({fifty[1]}) or Email = 'p119@x.example'))"

    assert found(nested + " limit 200") == [*ids[:100], ids[119]]
    assert found("Email = 'p3@x.example' or Last_Name = 'P4'") == ids[3:5]
    assert found("(Email = 'p3@x.example')") == [ids[3]]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("select Email from Contacts where Email like 'p%'", "SYNTAX_ERROR"),
        ("select Email from Contacts where Email in ('a\\'b@x')", "SYNTAX_ERROR"),
        ("delete from Contacts", "SYNTAX_ERROR"),
        (
            "select Email from Contacts where Email in (" + ", ".join(f"'{n}@x'" for n in range(51)) + ")",
            "LIMIT_EXCEEDED",
        ),
        ("select Email from Contacts where Email = 'a@x' limit 2001", "LIMIT_EXCEEDED"),
        ("select Email from Contacts where Email = 'a@x' or Email = 'b@x' or Email = 'c@x'", "SYNTAX_ERROR"),
        ("select Email from Contacts where (Email = 'a@x' and Last_Name = 'A')", "SYNTAX_ERROR"),
        ("select Email from Contacts where (Email = 'a@x' or (Email = 'b@x')", "SYNTAX_ERROR"),
        (
            "select Email from Contacts where "
            + "".join(f"(Email = '{n}@x' or " for n in range(25))
            + "Email = 'last@x'"
            + ")" * 25,
            "LIMIT_EXCEEDED",
        ),
        ("select Email from Widgets where Email = 'a@x'", "INVALID_MODULE"),
    ],
)
def test_coql_refuses_what_it_cannot_run(crm: httpx.Client, query: str, code: str) -> None:
    reply = crm.post("/crm/v8/coql", json={"select_query": query})

    assert (reply.status_code, reply.json()["code"]) == (400, code)


def test_users_listing_by_type(crm: httpx.Client, org: CrmOrg) -> None:
    standard = next(u for u in org.users() if not u.is_admin)

    def users(kind: str, **headers: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = crm.get("/crm/v8/users", params={"type": kind}, headers=headers).json()["users"]
        return result

    me = users("CurrentUser", Authorization=_auth(crm, org.issue_refresh_token(standard.id)))
    admins = users("AdminUsers")
    assert len(users("AllUsers")) == len(users("ActiveUsers")) == 3
    assert [(a["role"]["name"], a["profile"]["name"]) for a in admins] == [("CEO", "Administrator")]
    assert [(u["id"], u["email"], u["status"]) for u in me] == [(standard.id, standard.email, "active")]
    assert users("CurrentUser")[0]["id"] == org.admin.id


@pytest.mark.parametrize(("edition", "sales_inbox"), [("Professional", True), ("Free", False)])
def test_org_reports_edition_and_sales_inbox(crm: httpx.Client, org: CrmOrg, edition: str, sales_inbox: bool) -> None:
    org.edition, org.sales_inbox = edition, sales_inbox

    resource = crm.get("/crm/v8/org").json()["org"][0]

    assert resource["license_details"]["paid_type"] == resource["edition"] == edition
    assert resource["sales_inbox_enabled"] is sales_inbox
    assert resource["company_name"] == "Zylker"


# mails ------------------------------------------------------------------------------------------
def _mail(message_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "from": {"user_name": "Kim", "email": "kim@example.com"},
        "to": [{"user_name": "Sam", "email": "sam.standard@contoso.example"}],
        "cc": [],
        "subject": f"About {message_id}",
        "content": "Hello",
        "mail_format": "text",
        "original_message_id": message_id,
        "sent": False,
        "date_time": "2026-11-20T09:00:00+00:00",
        **extra,
    }


DATETIME = "datetime"


def _associate(crm: httpx.Client, module: str, record_id: str, mail: dict[str, Any]) -> httpx.Response:
    return crm.post(f"/crm/v8/{module}/{record_id}/actions/associate_email", json={"Emails": [mail]})


def _related(crm: httpx.Client, module: str, record_id: str) -> list[str]:
    reply = crm.get(f"/crm/v8/{module}/{record_id}/Emails", params={"owner_id": "1"})
    return [] if reply.status_code == 204 else [m["message_id"] for m in reply.json()["Emails"]]


def test_mails_associated_with_contacts_reach_their_accounts_and_deals(crm: httpx.Client, org: CrmOrg) -> None:
    account = org.insert("Accounts", {"Account_Name": "Zylker"})["id"]
    contact = org.insert("Contacts", {"Last_Name": "Kim", "Account_Name": {"id": account}})["id"]
    loner = org.insert("Contacts", {"Last_Name": "Loner"})["id"]
    deal = {"Stage": "Qualification", "Closing_Date": "2026-12-31"}
    by_account = org.insert("Deals", {**deal, "Deal_Name": "Big", "Account_Name": {"id": account}})["id"]
    by_contact = org.insert("Deals", {**deal, "Deal_Name": "Small", "Contact_Name": {"id": loner}})["id"]
    lead = org.insert("Leads", {"Last_Name": "Lead", "Company": "Acme"})["id"]

    reply = _associate(crm, "Contacts", contact, _mail("<m1@example.com>"))
    kim_mail = reply.json()["Emails"][0]["details"]["message_id"]
    loner_mail = _associate(crm, "Contacts", loner, _mail("<m2@example.com>")).json()["Emails"][0]["details"]
    lead_mail = _associate(crm, "Leads", lead, _mail("<m2@example.com>")).json()["Emails"][0]["details"]

    assert reply.status_code == 201
    assert reply.json()["Emails"][0]["code"] == "SUCCESS"
    assert _related(crm, "Contacts", contact) == [kim_mail]
    assert _related(crm, "Accounts", account) == [kim_mail]
    assert _related(crm, "Deals", by_account) == [kim_mail]
    assert _related(crm, "Deals", by_contact) == [loner_mail["message_id"]]
    assert _related(crm, "Leads", lead) == [lead_mail["message_id"]]
    assert _related(crm, "Accounts", org.insert("Accounts", {"Account_Name": "Quiet"})["id"]) == []
    listed = org.mails_of("Contacts", contact)[0]
    assert (listed["from"], listed["subject"], listed["sent_time"]) == (
        {"user_name": "Kim", "email": "kim@example.com"},
        "About <m1@example.com>",
        "2026-11-20T09:00:00+00:00",
    )


def test_the_emails_related_list_needs_an_owner_id(crm: httpx.Client, org: CrmOrg) -> None:
    contact = org.insert("Contacts", {"Last_Name": "Kim"})["id"]

    reply = crm.get(f"/crm/v8/Contacts/{contact}/Emails")

    assert (reply.status_code, reply.json()["details"]) == (400, {"param": "owner_id"})


def test_there_is_no_emails_module(crm: httpx.Client) -> None:
    for reply in (crm.get("/crm/v8/Emails"), crm.post("/crm/v8/Emails", json={"data": [{"Subject": "x"}]})):
        assert (reply.status_code, reply.json()["code"]) == (400, "INVALID_MODULE")


@pytest.mark.parametrize(
    ("change", "code", "details"),
    [
        ({"from": None}, "REQUIRED_PARAM_MISSING", {"api_name": "from"}),
        ({"original_message_id": ""}, "REQUIRED_PARAM_MISSING", {"api_name": "original_message_id"}),
        ({"sent": None}, "REQUIRED_PARAM_MISSING", {"api_name": "sent"}),
        ({"to": [{"email": "not-an-address"}]}, "INVALID_DATA", {"api_name": "to", "expected_data_type": "jsonarray"}),
        ({"subject": "s" * 251}, "INVALID_DATA", {"api_name": "subject", "expected_data_type": "text"}),
        (
            {"date_time": "2026-11-20 09:00"},
            "INVALID_DATA",
            {"api_name": "date_time", "expected_data_type": "datetime"},
        ),
        ({"sent": "yes"}, "INVALID_DATA", {"api_name": "sent", "expected_data_type": "boolean"}),
    ],
)
def test_associate_email_refuses_what_the_v8_schema_refuses(
    crm: httpx.Client, org: CrmOrg, change: dict[str, Any], code: str, details: dict[str, Any]
) -> None:
    contact = org.insert("Contacts", {"Last_Name": "Kim"})["id"]

    reply = _associate(crm, "Contacts", contact, _mail("<m@example.com>", **change))

    assert reply.status_code == 400
    assert reply.json()["Emails"][0] == {"code": code, "details": details, "message": ANY, "status": "error"}
    assert org.all_mails() == []


def test_associate_email_only_on_records_that_hold_mails(crm: httpx.Client, org: CrmOrg) -> None:
    task = org.insert("Tasks", {"Subject": "Call"})["id"]

    reply = _associate(crm, "Tasks", task, _mail("<m@example.com>"))

    assert (reply.status_code, reply.json()["code"]) == (400, "INVALID_MODULE")


# field metadata and strict values -----------------------------------------------------------------
def test_field_metadata_lists_types_lengths_picklists_and_mandatory(crm: httpx.Client) -> None:
    fields = {
        f["api_name"]: f for f in crm.get("/crm/v8/settings/fields", params={"module": "Events"}).json()["fields"]
    }
    tasks = {f["api_name"]: f for f in crm.get("/crm/v8/settings/fields", params={"module": "Tasks"}).json()["fields"]}

    assert fields["Start_DateTime"]["data_type"] == "datetime"
    assert fields["Start_DateTime"]["system_mandatory"] is True
    assert fields["Exsync_UID"]["custom_field"] is True
    assert (fields["Exsync_UID"]["data_type"], fields["Exsync_UID"]["length"]) == ("text", 255)
    assert [v["actual_value"] for v in tasks["Priority"]["pick_list_values"]] == [
        "Highest",
        "High",
        "Normal",
        "Low",
        "Lowest",
    ]
    missing = crm.get("/crm/v8/settings/fields")
    assert (missing.status_code, missing.json()["details"]) == (400, {"param": "module"})
    assert crm.get("/crm/v8/settings/fields", params={"module": "Emails"}).json()["code"] == "INVALID_MODULE"


def test_custom_fields_are_created_through_the_api(crm: httpx.Client, org: CrmOrg) -> None:
    body = {"fields": [{"field_label": "Exsync Extra", "data_type": "text", "length": 100}]}

    created = crm.post("/crm/v8/settings/fields", params={"module": "Contacts"}, json=body)
    again = crm.post("/crm/v8/settings/fields", params={"module": "Contacts"}, json=body)

    assert created.status_code == 201
    assert created.json()["fields"][0]["code"] == "SUCCESS"
    assert (again.status_code, again.json()["fields"][0]["code"]) == (400, "DUPLICATE_DATA")
    inserted = org.insert("Contacts", {"Last_Name": "Kim", "Exsync_Extra": "x" * 100})
    assert inserted["Exsync_Extra"] == "x" * 100


@pytest.mark.parametrize(
    ("module", "record", "code", "details"),
    [
        ("Events", {"Event_Title": "No times"}, "MANDATORY_NOT_FOUND", {"api_name": "Start_DateTime"}),
        (
            "Tasks",
            {"Subject": "Bad day", "Due_Date": "2026-02-30"},
            "INVALID_DATA",
            {"api_name": "Due_Date", "expected_data_type": "date"},
        ),
        (
            "Tasks",
            {"Subject": "Odd status", "Status": "Sort of done"},
            "INVALID_DATA",
            {"api_name": "Status", "expected_data_type": "picklist"},
        ),
        (
            "Events",
            {"Event_Title": "T", "Start_DateTime": "2026-11-20T09:00:00", "End_DateTime": "2026-11-20T10:00:00+00:00"},
            "INVALID_DATA",
            {"api_name": "Start_DateTime", "expected_data_type": "datetime"},
        ),
        (
            "Events",
            {
                "Event_Title": "T",
                "Start_DateTime": "2026-11-20T09:00:00+00:00",
                "End_DateTime": "2026-11-20T10:00:00+00:00",
                "All_day": "no",
            },
            "INVALID_DATA",
            {"api_name": "All_day", "expected_data_type": "boolean"},
        ),
        (
            "Deals",
            {"Deal_Name": "No stage", "Closing_Date": "2026-12-01"},
            "MANDATORY_NOT_FOUND",
            {"api_name": "Stage"},
        ),
    ],
)
def test_written_values_are_checked_against_the_field_metadata(
    crm: httpx.Client, module: str, record: dict[str, Any], code: str, details: dict[str, Any]
) -> None:
    reply = crm.post(f"/crm/v8/{module}", json={"data": [record]})

    assert reply.status_code == 400
    assert (reply.json()["data"][0]["code"], reply.json()["data"][0]["details"]) == (code, details)


def test_a_field_the_module_does_not_have_is_not_stored(crm: httpx.Client, org: CrmOrg) -> None:
    org.drop_field("Contacts", "Exsync_Link")

    reply = crm.post("/crm/v8/Contacts", json={"data": [{"Last_Name": "Kim", "Exsync_Link": "ex-1", "Nope": 1}]})

    stored = org.get("Contacts", reply.json()["data"][0]["details"]["id"])
    assert reply.status_code == 201
    assert "Exsync_Link" not in stored
    assert "Nope" not in stored


def test_upsert_checks_duplicates_only_on_system_and_unique_fields(crm: httpx.Client) -> None:
    allowed = crm.post(
        "/crm/v8/Contacts/upsert", json={"data": [{"Last_Name": "Kim"}], "duplicate_check_fields": ["Email"]}
    )
    refused = crm.post(
        "/crm/v8/Contacts/upsert", json={"data": [{"Last_Name": "Kim"}], "duplicate_check_fields": ["Last_Name"]}
    )

    assert allowed.status_code == 201
    assert refused.status_code == 400
    assert refused.json()["details"]["api_name"] == "Last_Name"


# routing and faults ---------------------------------------------------------------------------------
def test_unknown_module_and_unknown_path(crm: httpx.Client) -> None:
    module = crm.get("/crm/v8/Widgets")
    path = crm.get("/crm/v8/Contacts/123/Notes")
    outside = crm.get("/somewhere")

    assert (module.status_code, module.json()["code"]) == (400, "INVALID_MODULE")
    assert (path.status_code, path.json()["code"]) == (404, "INVALID_URL_PATTERN")
    assert (outside.status_code, outside.json()["code"]) == (404, "INVALID_URL_PATTERN")


def test_throttling_with_retry_after_is_honoured_by_waiting(crm: httpx.Client, server: FakeServer) -> None:
    rule = server.faults.add(path="/crm/v8/Contacts", status=429, retry_after=1, times=1)
    started = time.monotonic()

    throttled = crm.get("/crm/v8/Contacts")
    time.sleep(float(throttled.headers["Retry-After"]))
    retried = crm.get("/crm/v8/Contacts")

    assert throttled.status_code == 429
    assert retried.status_code == 204
    assert rule.fired == 1
    assert time.monotonic() - started >= 1


# seeding ----------------------------------------------------------------------------------------
def test_new_org_has_the_well_known_client_and_users() -> None:
    org = new_org(edition="Standard", sales_inbox=True)

    token = org.refresh_access_token(CLIENT_ID, CLIENT_SECRET, org.issue_refresh_token(org.admin.id))

    assert org.authenticate(token) == org.admin
    assert (org.admin.role, org.admin.profile, org.admin.is_admin) == ("CEO", "Administrator", True)
    assert [u.is_admin for u in org.users()] == [True, False, False]
    assert (org.edition, org.sales_inbox) == ("Standard", True)


def test_seed_org_is_reproducible_and_spreads_dates(org: CrmOrg) -> None:
    twin = CrmOrg(clock=lambda: T0)
    seed_org(org, size=60, seed=7)
    seed_org(twin, size=60, seed=7)

    def names(o: CrmOrg) -> list[str]:
        return [c["Full_Name"] for c in o.list_records("Contacts").records]

    due = [date.fromisoformat(t["Due_Date"]) for t in org.list_records("Tasks").records]
    today = T0.date()
    assert names(org) == names(twin)
    assert {m: org.count(m) for m in ("Contacts", "Tasks", "Events")} == {"Contacts": 60, "Tasks": 30, "Events": 30}
    assert min(org.count(m) for m in ("Accounts", "Leads", "Deals")) >= 2
    assert any(d < today - timedelta(days=183) for d in due)
    assert any(d > today for d in due)
    assert all(today - timedelta(days=365) <= d <= today + timedelta(days=60) for d in due)
    assert any(c.get("Account_Name") for c in org.list_records("Contacts").records)


def test_only_v8_is_served(crm: httpx.Client) -> None:
    reply = crm.get("/crm/v2/Contacts")

    assert reply.status_code == 404
    assert reply.json()["code"] == "INVALID_URL_PATTERN"
    assert set(reply.json()) == {"code", "details", "message", "status"}


def test_calls_beyond_the_orgs_concurrency_are_too_many_requests_without_retry_after(
    crm: httpx.Client, org: CrmOrg
) -> None:
    assert org.limits.concurrency == 20  # Enterprise
    org.limits.concurrency = 0

    reply = crm.get("/crm/v8/org")

    assert reply.status_code == 429
    assert reply.json()["code"] == "TOO_MANY_REQUESTS"
    assert "Retry-After" not in reply.headers
    org.limits.concurrency = 1
    assert crm.get("/crm/v8/org").status_code == 200  # a finished call frees its place


def test_api_credits_are_counted_over_a_rolling_day(crm: httpx.Client, org: CrmOrg, clock: Clock) -> None:
    org.limits.credits = 2
    assert [crm.get("/crm/v8/org").status_code for _ in range(3)] == [200, 200, 429]

    clock.now += timedelta(hours=24)
    crm.headers["Authorization"] = _auth(crm, org.issue_refresh_token(org.admin.id))  # the old token expired

    assert crm.get("/crm/v8/org").status_code == 200


def test_coql_queries_have_their_own_concurrency_limit(crm: httpx.Client, org: CrmOrg) -> None:
    org.limits.sub_concurrency = 0
    query = {"select_query": "select Email from Contacts where Email = 'a@x.example' limit 10"}

    refused = crm.post("/crm/v8/coql", json=query)

    assert (refused.status_code, refused.json()["code"]) == (429, "TOO_MANY_REQUESTS")
    assert crm.get("/crm/v8/org").status_code == 200  # other calls are not held back
    org.limits.sub_concurrency = 10
    assert crm.post("/crm/v8/coql", json=query).status_code == 204


# recurring events ---------------------------------------------------------------------------------
def _event(recurring: Any, title: str = "Weekly") -> dict[str, Any]:
    return {
        "Event_Title": title,
        "Start_DateTime": "2030-03-04T09:00:00+01:00",
        "End_DateTime": "2030-03-04T10:00:00+01:00",
        "Recurring_Activity": recurring,
    }


def test_a_series_keeps_its_rrule_and_exdate_as_written(crm: httpx.Client, org: CrmOrg) -> None:
    recurring = {"RRULE": "FREQ=WEEKLY;BYDAY=MO;COUNT=10", "EXDATE": "2030-03-18,2030-04-01"}

    reply = crm.post("/crm/v8/Events", json={"data": [_event(recurring), _event({"RRULE": "FREQ=DAILY"})]})

    first, second = [r["details"]["id"] for r in reply.json()["data"]]
    assert reply.status_code == 201
    assert org.get("Events", first)["Recurring_Activity"] == recurring
    assert org.get("Events", second)["Recurring_Activity"] == {"RRULE": "FREQ=DAILY"}


@pytest.mark.parametrize(
    ("recurring", "api_name", "path"),
    [
        ("FREQ=WEEKLY", "Recurring_Activity", "$.data[1].Recurring_Activity"),
        (["FREQ=WEEKLY"], "Recurring_Activity", "$.data[1].Recurring_Activity"),
        ({"EXDATE": "2030-03-18"}, "RRULE", "$.data[1].Recurring_Activity.RRULE"),
        ({"RRULE": ""}, "RRULE", "$.data[1].Recurring_Activity.RRULE"),
        ({"RRULE": "FREQ=SOMETIMES"}, "RRULE", "$.data[1].Recurring_Activity.RRULE"),
        ({"RRULE": "FREQ=WEEKLY;BYDAY=XX"}, "RRULE", "$.data[1].Recurring_Activity.RRULE"),
        ({"RRULE": "FREQ=WEEKLY;COUNT=3;UNTIL=2030-05-01"}, "RRULE", "$.data[1].Recurring_Activity.RRULE"),
        ({"RRULE": "FREQ=DAILY;COUNT=0"}, "RRULE", "$.data[1].Recurring_Activity.RRULE"),
        ({"RRULE": "FREQ=DAILY;FREQ=WEEKLY"}, "RRULE", "$.data[1].Recurring_Activity.RRULE"),
        ({"RRULE": "FREQ=DAILY", "EXDATE": "2030/03/18"}, "EXDATE", "$.data[1].Recurring_Activity.EXDATE"),
        ({"RRULE": "FREQ=DAILY", "EXDATE": "2030-02-30"}, "EXDATE", "$.data[1].Recurring_Activity.EXDATE"),
        ({"RRULE": "FREQ=DAILY", "EXDATE": "2030-03-18;2030-03-19"}, "EXDATE", "$.data[1].Recurring_Activity.EXDATE"),
        ({"RRULE": "FREQ=DAILY", "EXDATE": ["2030-03-18"]}, "EXDATE", "$.data[1].Recurring_Activity.EXDATE"),
    ],
)
def test_a_recurrence_zoho_cannot_read_is_refused_naming_where(
    crm: httpx.Client, org: CrmOrg, recurring: Any, api_name: str, path: str
) -> None:
    good = _event({"RRULE": "FREQ=WEEKLY;BYDAY=MO;UNTIL=2030-05-01", "EXDATE": "2030-03-11"}, "Fine")

    reply = crm.post("/crm/v8/Events", json={"data": [good, _event(recurring)]})

    outcome = reply.json()["data"][1]
    assert reply.status_code == 201 and reply.json()["data"][0]["status"] == "success"
    assert (outcome["code"], outcome["details"]["api_name"], outcome["details"]["json_path"]) == (
        "INVALID_DATA",
        api_name,
        path,
    )
    assert org.count("Events") == 1


def test_an_update_with_a_bad_exdate_changes_nothing(crm: httpx.Client, org: CrmOrg) -> None:
    record_id = org.insert("Events", _event({"RRULE": "FREQ=DAILY;COUNT=5"}))["id"]

    reply = crm.put(
        "/crm/v8/Events",
        json={"data": [{"id": record_id, "Recurring_Activity": {"RRULE": "FREQ=DAILY", "EXDATE": "x"}}]},
    )

    assert reply.status_code == 400 and reply.json()["data"][0]["details"]["json_path"] == (
        "$.data[0].Recurring_Activity.EXDATE"
    )
    assert org.get("Events", record_id)["Recurring_Activity"] == {"RRULE": "FREQ=DAILY;COUNT=5"}


def test_records_are_read_by_their_ids_and_coql_selects_by_id(crm: httpx.Client, org: CrmOrg) -> None:
    ids = [org.insert("Events", _event(None, f"E{n}"))["id"] for n in range(3)]

    listed = crm.get(
        "/crm/v8/Events", params={"ids": f"{ids[2]},4150868999999999999,{ids[0]}", "fields": "Event_Title"}
    )
    selected = crm.post(
        "/crm/v8/coql", json={"select_query": f"select Event_Title from Events where id in ('{ids[1]}') limit 200"}
    )
    too_many = crm.get("/crm/v8/Events", params={"ids": ",".join(str(n) for n in range(101)), "fields": "Event_Title"})

    assert [(r["id"], r["Event_Title"]) for r in listed.json()["data"]] == [(ids[2], "E2"), (ids[0], "E0")]
    assert selected.json()["data"] == [{"id": ids[1], "Event_Title": "E1"}]
    assert too_many.status_code == 400 and too_many.json()["code"] == "LIMIT_EXCEEDED"


def test_the_series_fields_of_an_org_set_up_for_exsync_exist_only_once_created(org: CrmOrg) -> None:
    bare = new_org(custom_fields=False)
    names = {"Exsync_Time_Zone", "Exsync_Series", "Exsync_Original_Start"}

    assert names <= {f["api_name"] for f in org.field_resources("Events")}
    assert not names & {f["api_name"] for f in bare.field_resources("Events")}
    stored = bare.insert("Events", {**_event(None), "Exsync_Series": "1", "Exsync_Time_Zone": "Europe/Berlin"})
    assert "Exsync_Series" not in stored and "Exsync_Time_Zone" not in stored
