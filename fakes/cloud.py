"""All the fakes together: a CRM org, a Microsoft 365 tenant behind Graph and its authority,
and the same tenant's Exchange Server behind EWS, each on its own HTTPS port of 127.0.0.1.

The CRM's users have mailboxes of the same address in the tenant, so a CRM user's Exchange
data is found by e-mail, as in a real org. A service account with ApplicationImpersonation
and one without it are there for the EWS set-ups.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakes.crm.api import CrmApi
from fakes.crm.model import CrmOrg
from fakes.crm.seed import CLIENT_ID as CRM_CLIENT_ID
from fakes.crm.seed import CLIENT_SECRET as CRM_CLIENT_SECRET
from fakes.crm.seed import new_org, seed_org
from fakes.ews.api import EwsApi
from fakes.graph.api import GraphApi
from fakes.graph.authority import Authority
from fakes.graph.seed import APP_ROLES, seed_mailbox
from fakes.server import FakeCA, FakeServer
from fakes.tenant import Tenant

DOMAIN = "contoso.example"
TENANT_ID = "contoso"
GRAPH_CLIENT_ID = "exsync-graph-app"
GRAPH_CLIENT_SECRET = "exsync-graph-secret"
REDIRECT_URI = "http://localhost:8765/callback"
SERVICE_ACCOUNT = f"svc@{DOMAIN}"
SERVICE_PASSWORD = "Svc-Passw0rd!"
NO_RIGHT_ACCOUNT = f"helpdesk@{DOMAIN}"


def mailbox_password(address: str) -> str:
    """The seeded password of a user's mailbox."""
    return f"Pw-{address.split('@')[0]}-1"


@dataclass(frozen=True)
class Options:
    """What can vary between fake clouds: the CRM's plan and SalesInbox, the EWS server."""

    edition: str = "Enterprise"
    sales_inbox: bool = False
    ews_version: str = "Exchange2016"
    ews_enabled: bool = True
    ews_basic: bool = True


class FakeCloud:
    """The three fake services, started together; :meth:`reset` gives them fresh state."""

    def __init__(self, directory: Path | None = None, options: Options = Options()) -> None:
        self.directory = directory or Path(tempfile.mkdtemp(prefix="exsync-fakes-"))
        self.ca = FakeCA(self.directory)
        self._build(options)
        self.servers = {
            "crm": FakeServer(CrmApi(self.crm), ca=self.ca),
            "login": FakeServer(self.authority, ca=self.ca),
            "graph": FakeServer(self.graph, ca=self.ca),
            "ews": FakeServer(self.ews, ca=self.ca),
        }

    def _build(self, options: Options) -> None:
        self.options = options
        self.crm: CrmOrg = new_org(options.edition, options.sales_inbox, domain=DOMAIN)
        self.tenant = Tenant(TENANT_ID, DOMAIN)
        for user in self.crm.users():
            self.tenant.add_user(user.email, user.full_name, mailbox_password(user.email))
        self.tenant.add_user(SERVICE_ACCOUNT, "Sync service", SERVICE_PASSWORD, can_impersonate=True)
        self.tenant.add_user(NO_RIGHT_ACCOUNT, "Help desk", SERVICE_PASSWORD)
        self.authority = Authority(self.tenant)
        self.authority.register_app(
            GRAPH_CLIENT_ID,
            secret=GRAPH_CLIENT_SECRET,
            redirect_uris=[REDIRECT_URI],
            any_loopback_redirect=True,
            roles=APP_ROLES,
        )
        self.graph = GraphApi(self.tenant, self.authority)
        self.ews = EwsApi(
            self.tenant, version=options.ews_version, enabled=options.ews_enabled, basic_auth=options.ews_basic
        )

    # lifecycle --------------------------------------------------------------------------
    def start(self) -> FakeCloud:
        for server in self.servers.values():
            server.start()
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def __enter__(self) -> FakeCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self, options: Options = Options()) -> None:
        """Fresh, empty state on the same servers (cheaper than restarting them)."""
        self._build(options)
        self.servers["crm"].handler = CrmApi(self.crm)
        self.servers["login"].handler = self.authority
        self.servers["graph"].handler = self.graph
        self.servers["ews"].handler = self.ews
        for server in self.servers.values():
            server.faults.clear()

    def seed(self, size: int, seed: int = 1) -> None:
        """Faker data on both sides: CRM records and every CRM user's mailbox."""
        seed_org(self.crm, size=size, seed=seed)
        for index, user in enumerate(self.crm.users()):
            seed_mailbox(self.tenant, self.tenant.mailbox(user.email), size=size, seed=seed + index + 1)

    # where things are ---------------------------------------------------------------------
    @property
    def crm_url(self) -> str:
        return self.servers["crm"].base_url

    @property
    def authority_url(self) -> str:
        return self.servers["login"].base_url

    @property
    def graph_url(self) -> str:
        return self.servers["graph"].base_url

    @property
    def ews_url(self) -> str:
        return f"{self.servers['ews'].base_url}/EWS/Exchange.asmx"

    def crm_refresh_token(self, email: str) -> str:
        """A CRM refresh token for the user with this e-mail."""
        user = next(u for u in self.crm.users() if u.email == email)
        return self.crm.issue_refresh_token(user.id)

    def description(self) -> dict[str, Any]:
        """URLs and seeded credentials, as ``exsync fakes serve --json`` prints them."""
        return {
            "ca_bundle": str(self.ca.bundle_path),
            "crm": {
                "accounts_url": self.crm_url,
                "api_url": self.crm_url,
                "client_id": CRM_CLIENT_ID,
                "client_secret": CRM_CLIENT_SECRET,
                "edition": self.options.edition,
                "users": [
                    {"email": u.email, "admin": u.is_admin, "refresh_token": self.crm_refresh_token(u.email)}
                    for u in self.crm.users()
                ],
            },
            "graph": {
                "authority": self.authority_url,
                "graph_url": self.graph_url,
                "tenant": TENANT_ID,
                "client_id": GRAPH_CLIENT_ID,
                "client_secret": GRAPH_CLIENT_SECRET,
                "redirect_uri": REDIRECT_URI,
                "users": [u.email for u in self.crm.users()],
            },
            "ews": {
                "endpoint": self.ews_url,
                "version": self.options.ews_version,
                "authentication": [*self.ews.windows_auth, *(["Basic"] if self.ews.basic_auth else [])],
                "domain": self.tenant.domain.split(".")[0].upper(),
                "impersonation_account": {"email": SERVICE_ACCOUNT, "password": SERVICE_PASSWORD},
                "users": [{"email": u.email, "password": mailbox_password(u.email)} for u in self.crm.users()],
            },
        }
