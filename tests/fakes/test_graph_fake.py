"""The fake identity platform and Graph through the wire: msal and requests, httpx, over TLS."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msal
import pytest
import requests
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fakes.graph import (
    APP_ROLES,
    CLIENT_ID,
    CLIENT_SECRET,
    EXT_PROPERTY_LINK,
    REDIRECT_URI,
    SERVICE_ACCOUNT,
    TASK_LIST_ID,
    Authority,
    GraphApi,
    new_authority,
    new_tenant,
    seed_mailbox,
    throttle_rule,
)
from fakes.server import FakeCA, FakeServer
from fakes.tenant import Tenant

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"
PERMISSIONS = ["User.Read", "Contacts.ReadWrite", "Calendars.ReadWrite", "Tasks.ReadWrite", "Mail.Read"]
SCOPES = [f"https://graph.microsoft.com/{p}" for p in PERMISSIONS]
GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class Cloud:
    """One test's tenant, authority and Graph behind the module's two TLS servers."""

    tenant: Tenant
    passwords: dict[str, str]
    authority: Authority
    api: GraphApi
    login: FakeServer
    graph: FakeServer
    ca: FakeCA

    @property
    def authority_url(self) -> str:
        return f"{self.login.base_url}/contoso"

    def session(self) -> requests.Session:
        session = requests.Session()
        session.verify = str(self.ca.bundle_path)
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        return session

    def msal_app(
        self, credential: Any = CLIENT_SECRET, *, client_id: str = CLIENT_ID, cache: msal.TokenCache | None = None
    ) -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(
            client_id,
            client_credential=credential,
            authority=self.authority_url,
            instance_discovery=False,
            http_client=self.session(),
            token_cache=cache,
        )

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        verify = ssl.create_default_context(cafile=str(self.ca.bundle_path))
        return httpx.Client(base_url=f"{self.graph.base_url}/v1.0", headers=headers, verify=verify, trust_env=False)

    def app_client(self) -> httpx.Client:
        return self.client(self.authority.issue_token(CLIENT_ID))

    def user_client(self, user: str = ALICE) -> httpx.Client:
        return self.client(self.authority.issue_token(CLIENT_ID, user, scopes=PERMISSIONS))


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> FakeCA:
    return FakeCA(tmp_path_factory.mktemp("graph-ca"))


@pytest.fixture(scope="module")
def servers(ca: FakeCA) -> Iterator[tuple[FakeServer, FakeServer]]:
    tenant, _ = new_tenant()
    authority = new_authority(tenant)
    login = FakeServer(authority, ca=ca).start()
    graph = FakeServer(GraphApi(tenant, authority), ca=ca).start()
    yield login, graph
    login.stop()  # stopping takes half a second, so the servers are shared by the module
    graph.stop()


@pytest.fixture
def cloud(servers: tuple[FakeServer, FakeServer], ca: FakeCA) -> Cloud:
    """Fresh state on the shared servers, without fault rules."""
    tenant, passwords = new_tenant()
    authority = new_authority(tenant)
    api = GraphApi(tenant, authority)
    login, graph = servers
    login.handler, graph.handler = authority, api
    login.faults.clear()
    graph.faults.clear()
    return Cloud(tenant, passwords, authority, api, login, graph, ca)


def sign_in(cloud: Cloud, app: msal.ConfidentialClientApplication, user: str = ALICE) -> dict[str, Any]:
    """The auth-code flow as a browser would do it, stopping at the redirect."""
    with warnings.catch_warnings():  # msal recommends form_post; the fake answers in the query
        warnings.simplefilter("ignore", UserWarning)
        flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, login_hint=user)
    reply = cloud.session().get(flow["auth_uri"], allow_redirects=False)
    assert reply.status_code == 302
    query = parse_qs(urlsplit(reply.headers["Location"]).query)
    result: dict[str, Any] = app.acquire_token_by_auth_code_flow(flow, {k: v[0] for k, v in query.items()})
    return result


def collect(client: httpx.Client, url: str, **headers: str) -> tuple[list[dict[str, Any]], str, int]:
    """Every value of a paged collection, its deltaLink (or '') and the number of pages."""
    values: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    body: dict[str, Any] = {}
    while next_url:
        reply = client.get(next_url, headers=headers)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        values += body["value"]
        pages += 1
        next_url = body.get("@odata.nextLink")
    return values, body.get("@odata.deltaLink", ""), pages


def rsa_certificate() -> tuple[str, str]:
    """A certificate PEM and its private key PEM, RSA as msal needs."""
    cert = trustme.CA().issue_cert("exsync-cert-app", key_type=trustme.KeyType.RSA)
    return cert.cert_chain_pems[0].bytes().decode(), cert.private_key_pem.bytes().decode()


# identity platform -----------------------------------------------------------------------------
def test_discovery_document_has_https_endpoints_of_the_server(cloud: Cloud) -> None:
    doc = cloud.session().get(f"{cloud.authority_url}/v2.0/.well-known/openid-configuration").json()

    assert doc["token_endpoint"] == f"{cloud.authority_url}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"] == f"{cloud.authority_url}/oauth2/v2.0/authorize"
    assert doc["issuer"] == f"{cloud.login.base_url}/{cloud.authority.tid}/v2.0"


def test_unknown_tenant_is_invalid_tenant(cloud: Cloud) -> None:
    reply = cloud.session().get(f"{cloud.login.base_url}/fabrikam/v2.0/.well-known/openid-configuration")

    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_tenant"
    assert reply.json()["error_codes"] == [90002]


def test_client_credentials_come_from_the_cache_the_second_time(cloud: Cloud) -> None:
    app = cloud.msal_app()

    first = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    second = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)

    assert first["token_source"] == "identity_provider"
    assert second["token_source"] == "cache"
    assert second["access_token"] == first["access_token"]
    with cloud.client(first["access_token"]) as graph:
        assert graph.get("/users").status_code == 200


def test_wrong_secret_is_invalid_client(cloud: Cloud) -> None:
    result = cloud.msal_app("not-the-secret").acquire_token_for_client(scopes=GRAPH_DEFAULT)

    assert result["error"] == "invalid_client"
    assert 7000215 in result["error_codes"]


def test_client_credentials_need_a_default_scope(cloud: Cloud) -> None:
    result = cloud.msal_app().acquire_token_for_client(scopes=["https://graph.microsoft.com/Contacts.Read"])

    assert result["error"] == "invalid_scope"


@pytest.mark.parametrize("form", ["thumbprint", "public_certificate"])
def test_certificate_credentials_are_verified(cloud: Cloud, form: str) -> None:
    cert_pem, key_pem = rsa_certificate()
    cloud.authority.register_app("exsync-cert-app", certificate_pem=cert_pem.encode())
    thumbprint = x509.load_pem_x509_certificate(cert_pem.encode()).fingerprint(hashes.SHA1()).hex()
    credential = {"private_key": key_pem, form: thumbprint if form == "thumbprint" else cert_pem}

    result = cloud.msal_app(credential, client_id="exsync-cert-app").acquire_token_for_client(scopes=GRAPH_DEFAULT)

    assert "access_token" in result, result
    assert cloud.authority.validate(result["access_token"]).client_id == "exsync-cert-app"


def test_assertion_signed_by_another_key_is_refused(cloud: Cloud) -> None:
    cert_pem, _ = rsa_certificate()
    _, other_key = rsa_certificate()
    cloud.authority.register_app("exsync-cert-app", certificate_pem=cert_pem.encode())
    thumbprint = x509.load_pem_x509_certificate(cert_pem.encode()).fingerprint(hashes.SHA1()).hex()
    credential = {"private_key": other_key, "thumbprint": thumbprint}

    result = cloud.msal_app(credential, client_id="exsync-cert-app").acquire_token_for_client(scopes=GRAPH_DEFAULT)

    assert result["error"] == "invalid_client"
    assert 700027 in result["error_codes"]


def test_auth_code_flow_signs_the_user_in(cloud: Cloud) -> None:
    app = cloud.msal_app()

    result = sign_in(cloud, app)

    assert result["id_token_claims"]["preferred_username"] == ALICE
    assert result["id_token_claims"]["aud"] == CLIENT_ID
    assert [a["username"] for a in app.get_accounts()] == [ALICE]
    with cloud.client(result["access_token"]) as graph:
        assert graph.get("/me").json()["userPrincipalName"] == ALICE


def test_refresh_rotates_and_works_from_a_serialized_cache(cloud: Cloud) -> None:
    app = cloud.msal_app(cache=msal.SerializableTokenCache())
    first = sign_in(cloud, app)
    account = app.get_accounts(username=ALICE)[0]

    refreshed = app.acquire_token_silent(SCOPES, account=account, force_refresh=True)
    cache = msal.SerializableTokenCache()
    cache.deserialize(app.token_cache.serialize())
    restored = cloud.msal_app(cache=cache)
    again = restored.acquire_token_silent(SCOPES, account=restored.get_accounts(username=ALICE)[0], force_refresh=True)
    stale = app.acquire_token_by_refresh_token(first["refresh_token"], SCOPES)

    assert refreshed["access_token"] != first["access_token"]
    assert again["access_token"] not in (first["access_token"], refreshed["access_token"])
    assert stale["error"] == "invalid_grant"  # rotated away by the first refresh
    with cloud.client(again["access_token"]) as graph:
        assert graph.get("/me").json()["mail"] == ALICE


def test_revoked_consent_makes_refresh_invalid_grant(cloud: Cloud) -> None:
    app = cloud.msal_app()
    sign_in(cloud, app)
    account = app.get_accounts(username=ALICE)[0]

    cloud.authority.revoke_consent(CLIENT_ID, ALICE)
    result = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)

    assert result["error"] == "invalid_grant"
    assert 65001 in result["error_codes"]
    assert result["suberror"] == "consent_required"


def test_revoked_refresh_tokens_are_invalid_grant(cloud: Cloud) -> None:
    app = cloud.msal_app()
    first = sign_in(cloud, app)

    cloud.authority.revoke_refresh_tokens(ALICE)
    result = app.acquire_token_by_refresh_token(first["refresh_token"], SCOPES)

    assert result["error"] == "invalid_grant"
    assert 50173 in result["error_codes"]


def test_authorize_redirects_unknown_users_with_an_error(cloud: Cloud) -> None:
    params = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": "s1",
        "login_hint": "nobody@contoso.example",
    }
    url = f"{cloud.authority_url}/oauth2/v2.0/authorize"

    reply = cloud.session().get(url, params=params, allow_redirects=False)
    foreign = cloud.session().get(url, params={**params, "redirect_uri": "https://evil.example/cb"})

    query = parse_qs(urlsplit(reply.headers["Location"]).query)
    assert reply.headers["Location"].startswith(REDIRECT_URI)
    assert query["error"] == ["invalid_request"]
    assert query["state"] == ["s1"]
    assert foreign.status_code == 400


def test_codes_are_single_use_and_bound_to_the_pkce_challenge(cloud: Cloud) -> None:
    session = cloud.session()
    verifier = "a-verifier-" * 5
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = "http://localhost:51234/anything"  # any loopback port and path is allowed

    def new_code() -> str:
        params = {
            "client_id": CLIENT_ID,
            "response_type": "code",
            "redirect_uri": redirect,
            "login_hint": BOB,
            "scope": "openid offline_access Contacts.Read",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        reply = session.get(f"{cloud.authority_url}/oauth2/v2.0/authorize", params=params, allow_redirects=False)
        return parse_qs(urlsplit(reply.headers["Location"]).query)["code"][0]

    def redeem(code: str, code_verifier: str) -> requests.Response:
        form = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "code_verifier": code_verifier,
        }
        return session.post(f"{cloud.authority_url}/oauth2/v2.0/token", data=form)

    wrong = redeem(new_code(), "not-the-verifier")
    code = new_code()
    right = redeem(code, verifier)
    reused = redeem(code, verifier)

    assert wrong.json()["error_codes"] == [501481]
    assert right.status_code == 200
    assert {"access_token", "refresh_token", "id_token", "client_info"} <= right.json().keys()
    assert reused.json()["error_codes"] == [54005]


# Graph: authentication and principals ----------------------------------------------------------
def test_requests_need_a_valid_unexpired_token(cloud: Cloud) -> None:
    token = cloud.authority.issue_token(CLIENT_ID)
    with cloud.client(None) as anonymous, cloud.client("garbage") as garbage, cloud.client(token) as graph:
        assert graph.get("/users").status_code == 200
        cloud.authority.expire_access_tokens()
        replies = [anonymous.get("/users"), garbage.get("/users"), graph.get("/users")]

    assert [r.status_code for r in replies] == [401, 401, 401]
    error = replies[2].json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert "expired" in error["message"]
    assert {"date", "request-id", "client-request-id"} <= error["innerError"].keys()


def test_users_are_paged_and_projected(cloud: Cloud) -> None:
    with cloud.app_client() as graph:
        first = graph.get("/users", params={"$top": "3", "$select": "displayName"}).json()
        users, _, pages = collect(graph, "/users?$top=3")

    assert len(first["value"]) == 3
    assert first["@odata.nextLink"].startswith(f"{cloud.graph.base_url}/v1.0/users?")
    assert all(set(u) == {"id", "displayName"} for u in first["value"])
    assert pages == 2
    assert sorted(u["mail"] for u in users) == sorted(cloud.passwords)


def test_delegated_tokens_reach_only_their_own_mailbox(cloud: Cloud) -> None:
    alice_id = cloud.tenant.mailbox(ALICE).user_id
    with cloud.user_client(ALICE) as graph, cloud.app_client() as app:
        own = graph.get(f"/users/{alice_id}/contacts")
        foreign = graph.get(f"/users/{BOB}/contacts")
        me_app_only = app.get("/me")
        any_box = app.get(f"/users/{BOB}/contacts")

    assert own.status_code == 200
    assert foreign.status_code == 403
    assert foreign.json()["error"]["code"] == "ErrorAccessDenied"
    assert me_app_only.status_code == 400
    assert any_box.status_code == 200


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_access_tokens_are_signed_jwts_with_tid_oid_and_roles_or_scp(cloud: Cloud) -> None:
    app_token = cloud.authority.issue_token(CLIENT_ID)
    user_token = cloud.authority.issue_token(CLIENT_ID, ALICE, scopes=["Contacts.Read", "User.Read"])
    verify = ssl.create_default_context(cafile=str(cloud.ca.bundle_path))
    (key,) = httpx.get(f"{cloud.login.base_url}/contoso/discovery/v2.0/keys", verify=verify).json()["keys"]
    e, n = (int.from_bytes(base64.urlsafe_b64decode(key[k] + "==")) for k in ("e", "n"))
    public = rsa.RSAPublicNumbers(e, n).public_key()
    header, body, signature = user_token.split(".")
    public.verify(
        base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
        f"{header}.{body}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    app_claims, user_claims = _claims(app_token), _claims(user_token)

    assert app_claims["tid"] == user_claims["tid"] == cloud.authority.tid
    assert app_claims["aud"] == "https://graph.microsoft.com"
    assert sorted(app_claims["roles"]) == sorted(APP_ROLES) and "scp" not in app_claims
    assert user_claims["oid"] == cloud.tenant.mailbox(ALICE).user_id
    assert user_claims["scp"] == "Contacts.Read User.Read" and "roles" not in user_claims


def test_a_call_without_its_permission_answers_403(cloud: Cloud) -> None:
    reader = cloud.client(cloud.authority.issue_token(CLIENT_ID, ALICE, scopes=["Contacts.Read"]))
    cloud.authority.revoke_app_roles(CLIENT_ID, ["User.Read.All"])
    with reader, cloud.app_client() as app:
        reads = reader.get("/me/contacts")
        writes = reader.post("/me/contacts", json={"givenName": "Ada"})
        events = reader.get("/me/events")
        me = reader.get("/me")
        batch = reader.post("/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/me/messages"}]}).json()[
            "responses"
        ]
        users = app.get("/users")
        contacts = app.get(f"/users/{ALICE}/contacts")

    assert reads.status_code == 200
    assert (writes.status_code, writes.json()["error"]["code"]) == (403, "ErrorAccessDenied")
    assert events.status_code == 403
    assert (me.status_code, me.json()["error"]["code"]) == (403, "Authorization_RequestDenied")
    assert batch[0]["status"] == 403
    assert (users.status_code, users.json()["error"]["code"]) == (403, "Authorization_RequestDenied")
    assert contacts.status_code == 200


# Graph: items -------------------------------------------------------------------------------------
def test_contacts_crud(cloud: Cloud) -> None:
    with cloud.user_client() as graph:
        created = graph.post(
            "/me/contacts",
            json={"givenName": "Ada", "surname": "Lovelace", "emailAddresses": [{"address": "ada@example.org"}]},
        )
        contact_id = created.json()["id"]
        patched = graph.patch(f"/me/contacts/{contact_id}", json={"surname": "King"})
        fetched = graph.get(f"/me/contacts/{contact_id}")
        deleted = graph.delete(f"/me/contacts/{contact_id}")
        gone = graph.get(f"/me/contacts/{contact_id}")

    assert created.status_code == 201
    assert created.json()["displayName"] == "Ada Lovelace"
    assert patched.json()["changeKey"] != created.json()["changeKey"]
    assert fetched.json()["surname"] == "King"
    assert deleted.status_code == 204
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "ErrorItemNotFound"


def test_extended_properties_are_stored_merged_and_expanded(cloud: Cloud) -> None:
    other = "String {00020329-0000-0000-c000-000000000046} Name other"
    expand = {"$expand": f"singleValueExtendedProperties($filter=id eq '{EXT_PROPERTY_LINK}')"}
    with cloud.user_client() as graph:
        created = graph.post(
            "/me/contacts",
            json={
                "givenName": "Grace",
                "singleValueExtendedProperties": [
                    {"id": EXT_PROPERTY_LINK, "value": "crm:1"},
                    {"id": other, "value": "x"},
                ],
            },
        ).json()
        graph.patch(
            f"/me/contacts/{created['id']}",
            json={"singleValueExtendedProperties": [{"id": EXT_PROPERTY_LINK.upper(), "value": "crm:2"}]},
        )
        plain = graph.get(f"/me/contacts/{created['id']}").json()
        expanded = graph.get(f"/me/contacts/{created['id']}", params=expand).json()
        listed = graph.get("/me/contacts", params=expand).json()["value"]

    assert "singleValueExtendedProperties" not in created
    assert "singleValueExtendedProperties" not in plain
    assert [p["value"] for p in expanded["singleValueExtendedProperties"]] == ["crm:2"]
    assert listed[0]["singleValueExtendedProperties"] == expanded["singleValueExtendedProperties"]


def test_select_and_filter(cloud: Cloud) -> None:
    seed_mailbox(cloud.tenant, ALICE, size=30, now=NOW)
    since = (NOW - timedelta(days=182)).strftime("%Y-%m-%dT%H:%M:%SZ")
    inbox = cloud.tenant.items(cloud.tenant.mailbox(ALICE), "inbox")
    expected = sorted(m.id for m in inbox if m.data["receivedDateTime"] >= since)
    with cloud.app_client() as graph:
        url = f"/users/{ALICE}/mailFolders/inbox/messages"
        params = {"$filter": f"receivedDateTime ge {since}", "$select": "subject,receivedDateTime", "$top": "999"}
        found = graph.get(url, params=params).json()["value"]
        unsupported = graph.get(url, params={"$filter": "contains(subject,'a')"})
        orderby = graph.get(url, params={"$orderby": "subject", "$top": "999"}).json()["value"]
        search = graph.get(url, params={"$search": "hello"})

    assert 0 < len(expected) < len(inbox)
    assert sorted(m["id"] for m in found) == expected
    assert all(set(m) <= {"id", "@odata.etag", "subject", "receivedDateTime"} for m in found)
    assert unsupported.status_code == 400
    assert [m["subject"] for m in orderby] == sorted((m.data["subject"] for m in inbox), key=str.casefold)
    assert search.status_code == 400


def test_contacts_delta_rounds(cloud: Cloud) -> None:
    box = cloud.tenant.mailbox(ALICE)
    ids = [cloud.tenant.create(box, "contacts", {"displayName": f"c{n}"}).id for n in range(25)]
    with cloud.user_client() as graph:
        initial, link, pages = collect(graph, "/me/contacts/delta", Prefer="odata.maxpagesize=10")
        cloud.tenant.update(box, "contacts", ids[0], {"displayName": "changed"})
        cloud.tenant.delete(box, "contacts", ids[1])
        added = cloud.tenant.create(box, "contacts", {"displayName": "new"}).id
        changes, link, _ = collect(graph, link)
        quiet, link, _ = collect(graph, link)
        cloud.api.expire_delta_tokens()
        expired = graph.get(link)
        via_folder, _, _ = collect(graph, "/me/contactFolders/contacts/contacts/delta")

    assert (len(initial), pages) == (25, 3)
    assert {c["id"]: c.get("displayName") for c in changes if "@removed" not in c} == {ids[0]: "changed", added: "new"}
    assert [c for c in changes if "@removed" in c] == [{"id": ids[1], "@removed": {"reason": "deleted"}}]
    assert quiet == []
    assert link
    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == "SyncStateNotFound"
    assert len(via_folder) == 25


def test_incremental_delta_reads_only_the_change_log(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    box = cloud.tenant.mailbox(ALICE)
    for n in range(50):
        cloud.tenant.create(box, "contacts", {"displayName": f"c{n}"})
    with cloud.user_client() as graph:
        _, link, _ = collect(graph, "/me/contacts/delta")

        def no_listing(*args: Any) -> None:
            raise AssertionError("a delta round with a token listed the whole folder")

        monkeypatch.setattr(cloud.tenant, "items", no_listing)
        quiet = graph.get(link)

    assert quiet.status_code == 200
    assert quiet.json()["value"] == []
    assert "@odata.deltaLink" in quiet.json()


# Graph: calendar -------------------------------------------------------------------------------
def _event(subject: str, start: str, end: str, zone: str = "W. Europe Standard Time", **extra: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": start, "timeZone": zone},
        "end": {"dateTime": end, "timeZone": zone},
        **extra,
    }


WEEKLY_JUNE = {
    "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
    "range": {"type": "endDate", "startDate": "2026-06-01", "endDate": "2026-06-29"},
}
JUNE = {"startDateTime": "2026-06-01T00:00:00Z", "endDateTime": "2026-06-22T00:00:00Z"}


def test_calendar_view_expands_series_and_answers_in_utc(cloud: Cloud) -> None:
    with cloud.user_client() as graph:
        series = graph.post(
            "/me/events", json=_event("standup", "2026-06-01T09:00:00", "2026-06-01T09:15:00", recurrence=WEEKLY_JUNE)
        ).json()
        graph.post("/me/events", json=_event("review", "2026-06-02T10:00:00", "2026-06-02T11:00:00"))
        graph.post("/me/events", json=_event("later", "2026-08-01T10:00:00", "2026-08-01T11:00:00"))
        view = graph.get("/me/calendarView", params=JUNE).json()["value"]
        instances = graph.get(f"/me/events/{series['id']}/instances", params=JUNE).json()["value"]
        pacific = graph.get(
            "/me/calendarView", params=JUNE, headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'}
        ).json()["value"]
        no_window = graph.get("/me/calendarView")

    assert series["type"] == "seriesMaster"
    assert [(e["subject"], e["type"]) for e in view] == [
        ("standup", "occurrence"),
        ("review", "singleInstance"),
        ("standup", "occurrence"),
        ("standup", "occurrence"),
    ]
    assert view[0]["start"] == {"dateTime": "2026-06-01T07:00:00.0000000", "timeZone": "UTC"}
    assert view[1]["originalStartTimeZone"] == "W. Europe Standard Time"
    assert [i["seriesMasterId"] for i in instances] == [series["id"]] * 3
    assert pacific[0]["start"] == {"dateTime": "2026-06-01T00:00:00.0000000", "timeZone": "Pacific Standard Time"}
    assert no_window.status_code == 400


def test_calendar_delta_keeps_its_window_and_reports_instances_not_masters(cloud: Cloud) -> None:
    with cloud.user_client() as graph:
        series = graph.post(
            "/me/events", json=_event("standup", "2026-06-01T09:00:00", "2026-06-01T09:15:00", recurrence=WEEKLY_JUNE)
        ).json()
        inside = graph.post("/me/events", json=_event("review", "2026-06-02T10:00:00", "2026-06-02T11:00:00")).json()
        outside = graph.post("/me/events", json=_event("later", "2026-08-01T10:00:00", "2026-08-01T11:00:00")).json()
        initial, link, _ = collect(graph, "/me/calendarView/delta()?" + "&".join(f"{k}={v}" for k, v in JUNE.items()))
        graph.patch(f"/me/events/{outside['id']}", json={"subject": "still later"})
        graph.delete(f"/me/events/{inside['id']}")
        changes, _, _ = collect(graph, link)
        no_window = graph.get("/me/calendarView/delta")

    occurrences = [e for e in initial if e["type"] == "occurrence"]
    assert sorted(e["type"] for e in initial) == ["occurrence"] * 3 + ["singleInstance"]
    assert {e["seriesMasterId"] for e in occurrences} == {series["id"]}
    assert all("subject" not in e for e in occurrences)  # delta gives an occurrence's id, type and times only
    assert "/calendarView/delta()?" in link
    assert changes == [{"id": inside["id"], "@removed": {"reason": "deleted"}}]
    assert no_window.status_code == 400


def test_an_edited_occurrence_is_an_exception_and_a_cancelled_one_is_removed(cloud: Cloud) -> None:
    window = "&".join(f"{k}={v}" for k, v in JUNE.items())
    with cloud.user_client() as graph:
        series = graph.post(
            "/me/events", json=_event("standup", "2026-06-01T09:00:00", "2026-06-01T09:15:00", recurrence=WEEKLY_JUNE)
        ).json()
        _, link, _ = collect(graph, f"/me/calendarView/delta?{window}")
        first, second, third = graph.get(f"/me/events/{series['id']}/instances", params=JUNE).json()["value"]
        moved = graph.patch(f"/me/events/{second['id']}", json={"subject": "standup (moved)"}).json()
        assert graph.delete(f"/me/events/{third['id']}").status_code == 204
        changes, _, _ = collect(graph, link)
        view = graph.get("/me/calendarView", params=JUNE).json()["value"]
        master = graph.get(f"/me/events/{series['id']}").json()
        gone = graph.get(f"/me/events/{third['id']}")
        graph.delete(f"/me/events/{series['id']}")
        after_delete, _, _ = collect(graph, link)

    assert (first["type"], first["subject"], moved["type"], moved["subject"]) == (
        "occurrence",
        "standup",
        "exception",
        "standup (moved)",
    )
    by_id = {c["id"]: c for c in changes}
    assert by_id[first["id"]]["type"] == "occurrence"
    assert by_id[second["id"]]["subject"] == "standup (moved)"
    assert by_id[third["id"]] == {"id": third["id"], "@removed": {"reason": "deleted"}}
    assert [(e["type"], e["subject"]) for e in view] == [("occurrence", "standup"), ("exception", "standup (moved)")]
    assert (master["type"], master["subject"], master["recurrence"]["pattern"]["type"]) == (
        "seriesMaster",
        "standup",
        "weekly",
    )
    assert gone.status_code == 404
    assert sorted(c["id"] for c in after_delete) == sorted([first["id"], second["id"]])
    assert all(c.get("@removed") for c in after_delete)


LINK_EXPAND = f"singleValueExtendedProperties($filter=id eq '{EXT_PROPERTY_LINK}')"
JUNE_VIEW = "startDateTime=2026-06-01T00:00:00Z&endDateTime=2026-07-01T00:00:00Z"
INBOX_DELTA = f"/users/{ALICE}/mailFolders/inbox/messages/delta"
TASKS_DELTA = f"/users/{ALICE}/todo/lists/{TASK_LIST_ID}/tasks/delta"


@pytest.mark.parametrize(
    ("url", "params", "refused"),
    [
        (f"/users/{ALICE}/contacts/delta", {"$expand": LINK_EXPAND}, "'Contacts' resource: '$expand'"),
        (f"/users/{ALICE}/contacts/delta", {"$filter": "surname eq 'Lee'"}, "'Contacts' resource: '$filter'"),
        (f"/users/{ALICE}/contacts/delta", {"$orderby": "surname", "$top": "5"}, "'$orderby, $top'"),
        (f"/users/{ALICE}/calendarView/delta?{JUNE_VIEW}", {"$expand": LINK_EXPAND}, "'CalendarView' resource"),
        (f"/users/{ALICE}/calendarView/delta?{JUNE_VIEW}", {"$select": "subject"}, "'$select'"),
        (f"/users/{ALICE}/calendar/calendarView/delta()?{JUNE_VIEW}", {"$filter": "subject eq 'x'"}, "'$filter'"),
        (f"/users/{ALICE}/calendarView/delta?{JUNE_VIEW}", {"$orderby": "subject"}, "'$orderby'"),
        (f"/users/{ALICE}/calendarView/delta?{JUNE_VIEW}", {"$top": "5"}, "'$top'"),
        (TASKS_DELTA, {"$filter": "status eq 'completed'"}, "'Tasks' resource: '$filter'"),
        (INBOX_DELTA, {"$filter": "subject eq 'x'"}, "'Messages' resource: '$filter'"),
        (INBOX_DELTA, {"$orderby": "subject"}, "'$orderby'"),
    ],
)
def test_a_delta_refuses_the_options_graph_does_not_support_on_it(
    cloud: Cloud, url: str, params: dict[str, str], refused: str
) -> None:
    cloud.authority.grant_app_roles(CLIENT_ID, ["Tasks.ReadWrite.All"])
    with cloud.app_client() as graph:
        reply = graph.get(url, params=params)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "ErrorInvalidUrlQuery"
    assert "not supported with change tracking over the" in error["message"] and refused in error["message"]


def test_a_delta_keeps_the_options_graph_supports_on_it(cloud: Cloud) -> None:
    seed_mailbox(cloud.tenant, ALICE, size=10, now=NOW)
    box = cloud.tenant.mailbox(ALICE)
    cloud.tenant.create(box, "tasks", {"title": "call Ada", "linkedResources": [{"applicationName": "crm"}]})
    cloud.authority.grant_app_roles(CLIENT_ID, ["Tasks.ReadWrite.All"])
    since = (NOW - timedelta(days=182)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with cloud.app_client() as graph:
        contacts = graph.get(f"/users/{ALICE}/contacts/delta", params={"$select": "surname"})
        view = graph.get(f"/users/{ALICE}/calendarView/delta?{JUNE_VIEW}", headers={"Prefer": "odata.maxpagesize=2"})
        tasks = graph.get(TASKS_DELTA, params={"$expand": "linkedResources", "$select": "title", "$top": "50"})
        mails = graph.get(
            INBOX_DELTA,
            params={
                "$select": "subject",
                "$filter": f"receivedDateTime ge {since}",
                "$orderby": "receivedDateTime desc",
                "$top": "5",
            },
        )
        one_contact = contacts.json()["value"][0]["id"]
        expanded = graph.get(f"/users/{ALICE}/contacts/{one_contact}", params={"$expand": LINK_EXPAND})

    assert [r.status_code for r in (contacts, view, tasks, mails, expanded)] == [200] * 5
    assert {k for c in contacts.json()["value"] for k in c} <= {"id", "surname", "@odata.etag", "@odata.type"}
    ada = next(t for t in tasks.json()["value"] if t.get("title") == "call Ada")
    assert [r["applicationName"] for r in ada["linkedResources"]] == ["crm"]
    assert mails.json()["value"]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "W. Europe Standard Time"])
def test_occurrences_keep_the_series_wall_clock_across_daylight_saving_changes(cloud: Cloud, zone: str) -> None:
    mondays = {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "sunday"},
        "range": {"type": "endDate", "startDate": "2026-03-16", "endDate": "2026-11-02", "recurrenceTimeZone": zone},
    }
    window = {"startDateTime": "2026-03-01T00:00:00Z", "endDateTime": "2026-12-01T00:00:00Z", "$top": "100"}
    with cloud.user_client() as graph:
        series = graph.post(
            "/me/events",
            json=_event("jour fixe", "2026-03-16T09:00:00", "2026-03-16T10:00:00", zone, recurrence=mondays),
        ).json()
        listed = graph.get(f"/me/events/{series['id']}/instances", params=window).json()["value"]

    starts = {i["start"]["dateTime"][:16]: i for i in listed}
    assert "2026-03-23T08:00" in starts and "2026-03-30T07:00" in starts  # Berlin changes on 29 March
    assert "2026-10-19T07:00" in starts and "2026-10-26T08:00" in starts  # and back on 25 October
    assert len(listed) == 34
    assert all(i["originalStart"] == i["start"]["dateTime"][:19] + "Z" for i in listed)
    assert {i["originalStartTimeZone"] for i in listed} == {zone}


def test_an_exception_keeps_its_original_start_and_a_pattern_change_drops_it(cloud: Cloud) -> None:
    with cloud.user_client() as graph:
        series = graph.post(
            "/me/events", json=_event("standup", "2026-06-01T09:00:00", "2026-06-01T09:15:00", recurrence=WEEKLY_JUNE)
        ).json()
        first, second, third = graph.get(f"/me/events/{series['id']}/instances", params=JUNE).json()["value"]
        moved = graph.patch(
            f"/me/events/{second['id']}",
            json={"start": {"dateTime": "2026-06-09T11:00:00", "timeZone": "W. Europe Standard Time"},
                  "end": {"dateTime": "2026-06-09T11:15:00", "timeZone": "W. Europe Standard Time"}},
        ).json()  # fmt: skip
        graph.delete(f"/me/events/{third['id']}").raise_for_status()
        graph.patch(f"/me/events/{series['id']}", json={"subject": "daily standup"}).raise_for_status()
        renamed = graph.get(f"/me/events/{series['id']}/instances", params=JUNE).json()["value"]
        longer = {"dateTime": "2026-06-01T09:30:00", "timeZone": "W. Europe Standard Time"}
        graph.patch(f"/me/events/{series['id']}", json={"end": longer}).raise_for_status()
        after = graph.get(f"/me/events/{series['id']}/instances", params=JUNE).json()["value"]
        graph.delete(f"/me/events/{series['id']}").raise_for_status()
        gone = graph.get(f"/me/events/{first['id']}")

    assert (first["originalStart"], first["type"], first["seriesMasterId"]) == (
        "2026-06-01T07:00:00Z",
        "occurrence",
        series["id"],
    )
    assert (moved["type"], moved["originalStart"], moved["start"]["dateTime"]) == (
        "exception",
        "2026-06-08T07:00:00Z",
        "2026-06-09T09:00:00.0000000",
    )
    assert [(i["type"], i["subject"]) for i in renamed] == [
        ("occurrence", "daily standup"),
        ("exception", "daily standup"),
    ]
    assert [(i["type"], i["originalStart"]) for i in after] == [
        ("occurrence", "2026-06-01T07:00:00Z"),
        ("occurrence", "2026-06-08T07:00:00Z"),
        ("occurrence", "2026-06-15T07:00:00Z"),
    ]
    assert gone.status_code == 404


# Graph: To Do and mail -----------------------------------------------------------------------------
def test_todo_takes_delegated_tokens_and_application_permissions(cloud: Cloud) -> None:
    with cloud.user_client() as graph, cloud.app_client() as app:
        lists = graph.get("/me/todo/lists").json()["value"]
        tasks = f"/me/todo/lists/{lists[0]['id']}/tasks"
        created = graph.post(tasks, json={"title": "call Ada"}).json()
        done = graph.patch(f"{tasks}/{created['id']}", json={"status": "completed"}).json()
        delta, _, _ = collect(graph, f"{tasks}/delta()")
        app_only = app.get(f"/users/{ALICE}/todo/lists")
    cloud.authority.grant_app_roles(CLIENT_ID, ["Tasks.Read.All"])
    with cloud.app_client() as app:
        app_reads = app.get(f"/users/{ALICE}/todo/lists/{TASK_LIST_ID}/tasks")
        app_cannot_write = app.post(f"/users/{ALICE}/todo/lists/{TASK_LIST_ID}/tasks", json={"title": "x"})
    cloud.authority.grant_app_roles(CLIENT_ID, ["Tasks.ReadWrite.All"])
    with cloud.app_client() as app:
        app_writes = app.post(f"/users/{ALICE}/todo/lists/{TASK_LIST_ID}/tasks", json={"title": "call Bo"})

    assert lists == [
        {
            "id": TASK_LIST_ID,
            "displayName": "Tasks",
            "wellknownListName": "defaultList",
            "isOwner": True,
            "isShared": False,
        }
    ]
    assert (created["status"], done["status"]) == ("notStarted", "completed")
    assert [t["title"] for t in delta] == ["call Ada"]
    assert (app_only.status_code, app_only.json()["error"]["code"]) == (403, "ErrorAccessDenied")
    assert [t["title"] for t in app_reads.json()["value"]] == ["call Ada"]
    assert app_cannot_write.status_code == 403
    assert app_writes.status_code == 201


def test_messages_delta_per_folder_and_attachments(cloud: Cloud) -> None:
    seed_mailbox(cloud.tenant, ALICE, size=30, now=NOW)
    with cloud.app_client() as graph:
        base = f"/users/{ALICE}/mailFolders"
        inbox, _, pages = collect(graph, f"{base}/inbox/messages/delta", Prefer="odata.maxpagesize=7")
        sent, _, _ = collect(graph, f"{base}/SentItems/messages/delta")
        everything, _, _ = collect(graph, f"/users/{ALICE}/messages?$top=50")
        with_files = next(m for m in inbox if m["hasAttachments"])
        files = graph.get(f"/users/{ALICE}/messages/{with_files['id']}/attachments").json()["value"]
        names = graph.get(f"/users/{ALICE}/messages/{with_files['id']}/attachments?$select=name,size").json()
        as_text = graph.get(
            f"/users/{ALICE}/messages/{with_files['id']}", headers={"Prefer": 'outlook.body-content-type="text"'}
        ).json()

    assert (len(inbox), len(sent), pages) == (20, 10, 3)
    assert {m["parentFolderId"] for m in inbox} == {"inbox"}
    assert len(everything) == 30
    assert all(m["internetMessageId"].endswith("@contoso.example>") for m in everything)
    assert "attachments" not in with_files
    assert files and all(f["@odata.type"] == "#microsoft.graph.fileAttachment" and f["size"] > 0 for f in files)
    assert [set(f) for f in names["value"]] == [{"@odata.type", "id", "name", "size"}] * len(files)
    assert with_files["body"]["contentType"] == "html"
    assert as_text["body"]["contentType"] == "text"
    assert "<" not in as_text["body"]["content"]


# Graph: batch and throttling ---------------------------------------------------------------------------
def test_batch_runs_steps_with_their_own_statuses(cloud: Cloud) -> None:
    twenty = {"requests": [{"id": str(n), "method": "GET", "url": "/me/contacts"} for n in range(20)]}
    mixed = {
        "requests": [
            {
                "id": "new",
                "method": "POST",
                "url": "/me/contacts",
                "body": {"givenName": "Bo"},
                "headers": {"Content-Type": "application/json"},
            },
            {"id": "missing", "method": "GET", "url": "/me/contacts/AAMknothere"},
            {"id": "after", "method": "GET", "url": "/me/contacts", "dependsOn": ["missing"]},
            {"id": "list", "method": "GET", "url": "me/contacts?$select=givenName"},
        ]
    }
    with cloud.user_client() as graph:
        full = graph.post("/$batch", json=twenty).json()["responses"]
        too_many = graph.post(
            "/$batch", json={"requests": [*twenty["requests"], {"id": "x", "method": "GET", "url": "/me"}]}
        )
        results = {r["id"]: r for r in graph.post("/$batch", json=mixed).json()["responses"]}

    assert [r["status"] for r in full] == [200] * 20
    assert too_many.status_code == 400
    assert {k: r["status"] for k, r in results.items()} == {"new": 201, "missing": 404, "after": 424, "list": 200}
    assert results["list"]["body"]["value"] == [
        {"id": results["new"]["body"]["id"], "givenName": "Bo", "@odata.etag": results["new"]["body"]["@odata.etag"]}
    ]


def test_batch_steps_can_be_throttled(cloud: Cloud) -> None:
    cloud.api.throttle_batch_items(1, retry_after=7)
    steps = {"requests": [{"id": str(n), "method": "GET", "url": "/me"} for n in range(3)]}
    with cloud.user_client() as graph:
        responses = graph.post("/$batch", json=steps).json()["responses"]

    assert [r["status"] for r in responses] == [429, 200, 200]
    assert responses[0]["headers"]["Retry-After"] == "7"
    assert responses[0]["body"]["error"]["code"] == "TooManyRequests"


def test_fault_rule_throttles_like_graph(cloud: Cloud) -> None:
    cloud.graph.faults.add(throttle_rule(retry_after=2, times=1))
    with cloud.user_client() as graph:
        throttled = graph.get("/me")
        retried = graph.get("/me")

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert retried.status_code == 200


# seeding ------------------------------------------------------------------------------------------------
def test_new_tenant_and_seeded_mailbox() -> None:
    tenant, passwords = new_tenant()
    box = tenant.mailbox(ALICE)
    seed_mailbox(tenant, box, size=40, seed=3, now=NOW)
    twin, _ = new_tenant()
    seed_mailbox(twin, ALICE, size=40, seed=3, now=NOW)
    messages = tenant.items(box, "inbox") + tenant.items(box, "sentitems")
    half_year_ago = (NOW - timedelta(days=182)).strftime("%Y-%m-%dT%H:%M:%SZ")
    events = [e.data for e in tenant.items(box, "calendar")]

    assert sorted(passwords) == sorted([ALICE, BOB, "carol@contoso.example", SERVICE_ACCOUNT])
    assert tenant.mailbox(SERVICE_ACCOUNT).can_impersonate
    assert passwords[ALICE] == tenant.mailbox(ALICE).password
    counts = {f: len(tenant.items(box, f)) for f in ("contacts", "calendar", "tasks")}
    assert counts == {"contacts": 40, "calendar": 20, "tasks": 20}
    assert len(messages) == 40
    assert any(m.data["receivedDateTime"] < half_year_ago for m in messages)
    assert any(m.data["receivedDateTime"] >= half_year_ago for m in messages)
    assert any(m.data["hasAttachments"] for m in messages)
    assert sum(1 for e in events if e.get("recurrence")) == 2
    assert any(e["isAllDay"] for e in events)
    assert [c.data for c in tenant.items(box, "contacts")] == [
        c.data for c in twin.items(twin.mailbox(ALICE), "contacts")
    ]


# Graph: request bodies, ids and If-Match ------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body", "code", "words"),
    [
        ("/me/contacts", {"givenName": "Ada", "nickname": "A"}, "RequestBodyRead", "'nickname' does not exist"),
        ("/me/contacts", {"givenName": 7}, "RequestBodyRead", "Edm.String"),
        ("/me/contacts", {"emailAddresses": {"address": "a@x.example"}}, "RequestBodyRead", "StartArray"),
        (
            "/me/contacts",
            {"givenName": "Ada", "emailAddresses": [{"address": f"a{n}@x.example"} for n in range(4)]},
            "ErrorInvalidProperty",
            "has 4 entries",
        ),
        (
            "/me/events",
            {"subject": "x", "start": {"dateTime": "2026-06-02T10:00:00", "timeZone": "UTC"},
             "end": {"dateTime": "2026-06-02T09:00:00", "timeZone": "UTC"}},
            "ErrorPropertyValidationFailure",
            "failed validation",
        ),
        (
            "/me/events",
            {"subject": "x", "start": {"dateTime": "2026-06-02T10:00:00", "timeZone": "Mars/Olympus"},
             "end": {"dateTime": "2026-06-02T11:00:00", "timeZone": "UTC"}},
            "TimeZoneNotSupportedException",
            "Mars/Olympus",
        ),
        ("/me/events", {"subject": "x", "showAs": "maybe"}, "RequestBodyRead", "'maybe' was not found"),
        (
            "/me/events",
            {"subject": "x", "recurrence": {"pattern": {"type": "weekly", "interval": 1},
                                            "range": {"type": "noEnd", "startDate": "2026-06-01"}}},
            "ErrorPropertyValidationFailure",
            "pattern.daysOfWeek",
        ),
        (f"/me/todo/lists/{TASK_LIST_ID}/tasks", {"title": "x", "status": "done"}, "RequestBodyRead", "'done'"),
        (
            f"/me/todo/lists/{TASK_LIST_ID}/tasks",
            {"title": "x", "singleValueExtendedProperties": []},
            "RequestBodyRead",
            "microsoft.graph.todoTask",
        ),
    ],
    ids=["unknown", "type", "array", "emails", "end-before-start", "zone", "enum", "recurrence", "status", "ext"],
)  # fmt: skip
def test_bodies_that_do_not_fit_the_v1_types_are_refused(
    cloud: Cloud, path: str, body: dict[str, Any], code: str, words: str
) -> None:
    with cloud.user_client() as graph:
        reply = graph.post(path, json=body)
        stored = graph.get(path).json()["value"]

    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == code
    assert words in reply.json()["error"]["message"]
    assert stored == []


def test_a_patch_is_checked_as_the_item_it_makes(cloud: Cloud) -> None:
    with cloud.user_client() as graph:
        event = graph.post("/me/events", json=_event("x", "2026-06-02T10:00:00", "2026-06-02T11:00:00")).json()
        reply = graph.patch(
            f"/me/events/{event['id']}",
            json={"end": {"dateTime": "2026-06-02T08:00:00", "timeZone": "W. Europe Standard Time"}},
        )
        after = graph.get(f"/me/events/{event['id']}").json()

    assert reply.status_code == 400
    assert after["changeKey"] == event["changeKey"]


def test_malformed_ids_and_if_match(cloud: Cloud) -> None:
    with cloud.user_client() as graph:
        contact = graph.post("/me/contacts", json={"givenName": "Ada"}).json()
        url = f"/me/contacts/{contact['id']}"
        malformed = graph.get("/me/contacts/not-an-id")
        missing = graph.get("/me/contacts/AAMk0000")
        first = graph.patch(url, json={"surname": "King"}, headers={"If-Match": contact["@odata.etag"]})
        stale = graph.patch(url, json={"surname": "Byron"}, headers={"If-Match": contact["@odata.etag"]})
        stale_delete = graph.delete(url, headers={"If-Match": contact["@odata.etag"]})
        anything = graph.patch(url, json={"jobTitle": "Countess"}, headers={"If-Match": "*"})
        current = graph.get(url).json()

    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "ErrorInvalidIdMalformed")
    assert missing.status_code == 404
    assert first.status_code == 200
    assert (stale.status_code, stale.json()["error"]["code"]) == (412, "ErrorIrresolvableConflict")
    assert stale_delete.status_code == 412
    assert anything.status_code == 200
    assert (current["surname"], current["jobTitle"]) == ("King", "Countess")


# Graph: folders, the calendar, $orderby, $count and startswith ----------------------------------------
def test_mail_folders_and_the_default_calendar(cloud: Cloud) -> None:
    seed_mailbox(cloud.tenant, ALICE, size=12, now=NOW)
    with cloud.user_client() as graph:
        folders = graph.get("/me/mailFolders").json()["value"]
        inbox = graph.get("/me/mailFolders/Inbox").json()
        by_id, _, _ = collect(graph, f"/me/mailFolders/{inbox['id']}/messages?$top=50")
        by_name, _, _ = collect(graph, "/me/mailFolders/inbox/messages?$top=50")
        calendar = graph.get("/me/calendar").json()
        via_calendar = graph.get("/me/calendar/calendarView", params=JUNE)
        unknown = graph.get("/me/mailFolders/drafts")

    assert [f["displayName"] for f in folders] == ["Inbox", "Sent Items"]
    assert inbox["totalItemCount"] == len(by_name) == len(by_id) > 0
    assert (calendar["name"], calendar["isDefaultCalendar"]) == ("Calendar", True)
    assert via_calendar.status_code == 200
    assert unknown.status_code == 404


def test_orderby_count_and_startswith(cloud: Cloud) -> None:
    with cloud.user_client() as graph, cloud.app_client() as app:
        for given, surname in (("Cy", "Young"), ("Ada", "Lovelace"), ("Alan", "Turing"), ("Bo", "Diddley")):
            graph.post("/me/contacts", json={"givenName": given, "surname": surname})
        ordered = graph.get("/me/contacts", params={"$orderby": "givenName desc", "$count": "true"}).json()
        starting = graph.get("/me/contacts", params={"$filter": "startswith(givenName,'a')", "$orderby": "surname"})
        users = app.get(
            "/users",
            params={"$count": "true", "$filter": "startswith(displayName,'B')"},
            headers={"ConsistencyLevel": "eventual"},
        ).json()
        no_header = app.get("/users", params={"$count": "true"})
        counted = app.get("/users/$count", headers={"ConsistencyLevel": "eventual"})

    assert [c["givenName"] for c in ordered["value"]] == ["Cy", "Bo", "Alan", "Ada"]
    assert ordered["@odata.count"] == 4
    assert [c["surname"] for c in starting.json()["value"]] == ["Lovelace", "Turing"]
    assert [u["mail"] for u in users["value"]] == [BOB] and users["@odata.count"] == 1
    assert (no_header.status_code, no_header.json()["error"]["code"]) == (400, "Request_BadRequest")
    assert counted.text == str(len(cloud.tenant.users()))
