"""The fake Microsoft identity platform and Microsoft Graph v1.0 over the shared tenant.

Serve each with its own :class:`~fakes.server.FakeServer` (TLS from :class:`~fakes.server.FakeCA`)::

    tenant, passwords = new_tenant()
    authority = new_authority(tenant)
    auth_server = FakeServer(authority, ca=ca).start()     # msal authority: f"{auth_server.base_url}/contoso"
    graph_server = FakeServer(GraphApi(tenant, authority), ca=ca).start()   # f"{graph_server.base_url}/v1.0"
"""

from fakes.graph.api import GraphApi
from fakes.graph.authority import GRAPH_RESOURCE, App, Authority, OAuthError, TokenError, TokenInfo
from fakes.graph.errors import GraphError, throttle_rule
from fakes.graph.resources import TASK_LIST_ID
from fakes.graph.seed import (
    APP_ROLES,
    CLIENT_ID,
    CLIENT_SECRET,
    EXT_PROPERTY_LINK,
    REDIRECT_URI,
    SERVICE_ACCOUNT,
    new_authority,
    new_tenant,
    seed_mailbox,
)

__all__ = [
    "APP_ROLES",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "EXT_PROPERTY_LINK",
    "GRAPH_RESOURCE",
    "REDIRECT_URI",
    "SERVICE_ACCOUNT",
    "TASK_LIST_ID",
    "App",
    "Authority",
    "GraphApi",
    "GraphError",
    "OAuthError",
    "TokenError",
    "TokenInfo",
    "new_authority",
    "new_tenant",
    "seed_mailbox",
    "throttle_rule",
]
