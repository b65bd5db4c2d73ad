"""The fake EWS in the hands of exchangelib, as a customer's own script would use it against Exchange Server.

Windows authentication (NTLM, Negotiate), Basic switched off, and the behaviours of a real server
that a sync product must live with.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from exchangelib import BASIC, DELEGATE, IMPERSONATION, NTLM, Account, Configuration, Credentials, EWSTimeZone
from exchangelib.errors import UnauthorizedError

from fakes.ews import EwsApi, trust_ca
from fakes.server import FakeCA, FakeServer
from fakes.tenant import Tenant

UTC_TZ = EWSTimeZone("UTC")
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
) -> Account:
    """An exchangelib account as a script would open it (``auth_type=None``: what the server offers)."""
    config = Configuration(
        service_endpoint=f"{server.base_url}/EWS/Exchange.asmx",
        credentials=Credentials(login, password),
        auth_type=auth_type,
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
