"""The two Microsoft 365 auth providers: authorization code (B18) and client credentials (B19).

Both run msal unchanged. The app registration (tenant, client id, authority, Graph URL,
redirect URI) is kept in the ``graph`` setting; the client secret or certificate only in the
vault, under the provider's org prefix. With the authorization-code flow each user signs in
with their own account and their msal token cache lives in the vault under their prefix,
refreshed silently; with client credentials one app token reaches every mailbox.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import msal
import requests

from framework.contracts import AuthProvider
from framework.errors import AuthenticationFailed, ConfigurationError, TransientError
from framework.executors.limiter import GRAPH as GRAPH_LIMITS
from framework.tls import certificate_error
from plugins.graph.client import GraphClient
from plugins.graph.store import GraphStore

if TYPE_CHECKING:
    from framework.context import Context
    from framework.state import User

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com"
DEFAULT_REDIRECT_URI = "http://localhost:8765/callback"
GRAPH_RESOURCE = "https://graph.microsoft.com"
APP_SCOPES = [f"{GRAPH_RESOURCE}/.default"]
USER_PERMISSIONS = ("User.Read", "Contacts.ReadWrite", "Calendars.ReadWrite", "Tasks.ReadWrite", "Mail.Read")
USER_SCOPES = [f"{GRAPH_RESOURCE}/{scope}" for scope in USER_PERMISSIONS]
APP_PERMISSIONS = ("User.Read.All", "Contacts.ReadWrite", "Calendars.ReadWrite", "Mail.Read")
"""The application permissions an org-wide sync needs: users, contacts, events, mails."""
APP_TASKS_PERMISSION = "Tasks.ReadWrite.All"
"""The application permission that lets client credentials sync To Do tasks too."""
IMPLIED_BY = {
    "User.Read": ("User.ReadWrite", "User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All"),
    "User.Read.All": ("User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    "Mail.Read": ("Mail.ReadWrite",),
}
"""Broader permissions that also grant a permission exsync asks for."""
SETTING = "graph"
SIGN_IN_AGAIN = "exsync auth graph --flow auth-code"

Credential = str | dict[str, str]


@dataclass(frozen=True)
class GraphApp:
    """The app registration exsync uses (no secrets here: those stay in the vault)."""

    flow: str
    tenant: str
    client_id: str
    authority: str = DEFAULT_AUTHORITY
    graph_url: str = DEFAULT_GRAPH_URL
    redirect_uri: str = DEFAULT_REDIRECT_URI
    permissions: tuple[str, ...] = ()  # what the last token checked by 'exsync auth graph' carried

    def __post_init__(self) -> None:
        for what, url in (("authority", self.authority), ("Graph URL", self.graph_url)):
            if urlsplit(url).scheme != "https":
                raise ConfigurationError(
                    f"The {what} {url!r} is not an https URL; OAuth tokens never travel over plain http.",
                    hint="Use https (with --ca-bundle for an internal CA or the fakes).",
                )

    @property
    def authority_url(self) -> str:
        return f"{self.authority.rstrip('/')}/{self.tenant}"

    @classmethod
    def load(cls, ctx: Context) -> GraphApp | None:
        stored = ctx.state.get_setting(SETTING)
        if not isinstance(stored, dict):
            return None
        return cls(**{**stored, "permissions": tuple(stored.get("permissions") or ())})

    def save(self, ctx: Context) -> None:
        ctx.state.set_settings({SETTING: asdict(self)})


def token_permissions(access_token: str) -> frozenset[str] | None:
    """The permissions an access token carries (``roles`` of an app token, ``scp`` of a user's),
    read from its JWT claims; None when the token is not a JWT exsync can read."""
    try:
        payload = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    if not isinstance(claims, dict):
        return None
    granted = claims.get("roles") or str(claims.get("scp") or "").split()
    return frozenset(str(p) for p in granted) if isinstance(granted, list) else None


def missing_permissions(granted: frozenset[str], needed: tuple[str, ...]) -> list[str]:
    """Those of ``needed`` that ``granted`` holds neither as such nor through a broader permission."""
    held = {p.lower() for p in granted}
    return [p for p in needed if not {p.lower(), *(b.lower() for b in IMPLIED_BY.get(p, ()))} & held]


def http_session(ctx: Context) -> requests.Session:
    """A requests session trusting ctx's CA bundle, deaf to REQUESTS_CA_BUNDLE and proxies."""
    session = requests.Session()
    session.trust_env = False
    session.verify = ctx.tls_verify
    return session


def _msal_error(result: dict[str, Any] | None, what: str) -> str:
    if not result:
        return f"{what}: no token was returned"
    description = str(result.get("error_description") or "").splitlines()
    return f"{what}: {result.get('error', 'error')}" + (f" ({description[0]})" if description else "")


def build_app(
    ctx: Context, app: GraphApp, credential: Credential, cache: msal.TokenCache | None = None
) -> msal.ConfidentialClientApplication:
    """An msal app on ``app``'s authority; discovery happens here, so failures surface now."""
    try:
        return msal.ConfidentialClientApplication(
            app.client_id,
            client_credential=credential,
            authority=app.authority_url,
            instance_discovery=False,
            http_client=http_session(ctx),
            token_cache=cache or msal.SerializableTokenCache(),
        )
    except (ValueError, requests.RequestException) as exc:
        untrusted = certificate_error(urlsplit(app.authority_url).hostname or app.authority_url, exc)
        if untrusted is not None:
            raise untrusted from exc
        raise AuthenticationFailed(
            f"The authority {app.authority_url} could not be used: {exc}",
            hint="Check --authority, --tenant and --ca-bundle.",
        ) from exc


class _GraphProvider(AuthProvider):
    """What both Graph providers share: the app registration and its credential."""

    flow: ClassVar[str]

    def app(self, ctx: Context) -> GraphApp:
        app = GraphApp.load(ctx)
        if app is None or app.flow != self.flow:
            raise AuthenticationFailed(
                f"Microsoft 365 ({self.name}) is not set up.", hint=f"Run 'exsync auth graph --flow {self.flow}'."
            )
        return app

    def app_key(self) -> str:
        return f"{self.vault_prefix(None)}app"

    def credential(self, ctx: Context) -> Credential:
        stored = ctx.vault.get_json(self.app_key())
        if not stored:
            raise AuthenticationFailed(
                f"No client credential is stored for {self.name}.", hint=f"Run 'exsync auth graph --flow {self.flow}'."
            )
        return stored["client_secret"] if "client_secret" in stored else dict(stored)

    def store_credential(self, ctx: Context, credential: Credential) -> None:
        value = {"client_secret": credential} if isinstance(credential, str) else credential
        ctx.vault.put(self.app_key(), value)

    def _store(self, ctx: Context, app: GraphApp, tokens: Callable[[bool], str], mailbox: str) -> GraphStore:
        limit = ctx.request_limit(GRAPH_LIMITS, app.client_id, mailbox)  # shared by every worker, if set
        client = GraphClient(app.graph_url, tokens, ctx.tls_verify, limit=limit)
        return GraphStore(client, mailbox, ctx.hook)


class ClientCredentialsProvider(_GraphProvider):
    """One app token reaches every mailbox of the tenant (B19); To Do tasks too when the app
    holds the application permission ``Tasks.ReadWrite.All``."""

    name = "graph-client-credentials"
    description = "Microsoft 365 via Graph, client credentials: an admin authenticates once, every user syncs."
    flow = "client-credentials"
    org_wide = True

    def refused_entities(self, ctx: Context) -> dict[str, str]:
        """Tasks, unless the permissions checked at 'exsync auth graph' include Tasks.ReadWrite.All."""
        app = GraphApp.load(ctx)
        granted = frozenset(app.permissions if app is not None and app.flow == self.flow else ())
        if not missing_permissions(granted, (APP_TASKS_PERMISSION,)):
            return {}
        return {
            "tasks": f"the app registration lacks the application permission {APP_TASKS_PERMISSION} "
            "(Microsoft To Do); an administrator grants it with admin consent in Microsoft Entra ID, "
            "then runs 'exsync auth graph --flow client-credentials' again"
        }

    def __init__(self) -> None:
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._lock = threading.Lock()

    def open(self, ctx: Context, user: User) -> GraphStore:
        app = self.app(ctx)
        tokens = self.token_provider(ctx, app, self.credential(ctx))
        return self._store(ctx, app, tokens, f"/users/{user.address}")

    def has_credentials(self, ctx: Context, user: User | None) -> bool:
        return ctx.vault.get(self.app_key()) is not None

    def token_provider(self, ctx: Context, app: GraphApp, credential: Credential) -> Callable[[bool], str]:
        """Tokens for the app itself; one msal app (and its cache) is shared by every user's store."""
        key = hashlib.sha256(json.dumps([asdict(app), credential, str(ctx.tls_verify)]).encode()).hexdigest()
        with self._lock:
            if key not in self._apps:
                self._apps[key] = build_app(ctx, app, credential)
            msal_app = self._apps[key]

        def token(force: bool) -> str:
            if force:
                _drop_access_tokens(msal_app.token_cache)
            with _reaching(app.authority_url):
                result = msal_app.acquire_token_for_client(APP_SCOPES)
            if "access_token" not in result:
                raise AuthenticationFailed(
                    _msal_error(result, "The app could not get a token"),
                    hint="An administrator checks the client secret or certificate: "
                    "'exsync auth graph --flow client-credentials'.",
                )
            return str(result["access_token"])

        return token


class AuthCodeProvider(_GraphProvider):
    """Each user signs in with their own Microsoft account (B18); tokens refresh silently."""

    name = "graph-auth-code"
    description = "Microsoft 365 via Graph, authorization code: each user signs in with their own account."
    flow = "auth-code"
    org_wide = False

    def open(self, ctx: Context, user: User) -> GraphStore:
        app = self.app(ctx)
        msal_app, cache = self.user_app(ctx, app, user)
        if not msal_app.get_accounts():
            raise AuthenticationFailed(f"{user.email} has not signed in to Microsoft 365.", hint=SIGN_IN_AGAIN)
        return self._store(ctx, app, self.token_provider(ctx, user, msal_app, cache), "/me")

    def has_credentials(self, ctx: Context, user: User | None) -> bool:
        if user is None:
            return ctx.vault.get(self.app_key()) is not None
        return ctx.vault.get(self.cache_key(user)) is not None

    def cache_key(self, user: User) -> str:
        return f"{self.vault_prefix(user)}token_cache"

    def user_app(
        self, ctx: Context, app: GraphApp, user: User
    ) -> tuple[msal.ConfidentialClientApplication, msal.SerializableTokenCache]:
        """The msal app over ``user``'s token cache as stored in the vault."""
        cache = msal.SerializableTokenCache()
        stored = ctx.vault.get(self.cache_key(user))
        if stored:
            cache.deserialize(stored)
        return build_app(ctx, app, self.credential(ctx), cache), cache

    def save_cache(self, ctx: Context, user: User, cache: msal.SerializableTokenCache) -> None:
        if cache.has_state_changed:
            ctx.vault.put(self.cache_key(user), cache.serialize())
            cache.has_state_changed = False

    def token_provider(
        self, ctx: Context, user: User, msal_app: msal.ConfidentialClientApplication, cache: msal.SerializableTokenCache
    ) -> Callable[[bool], str]:
        """Tokens of ``user``'s account, from the cache or silently refreshed (saved back to the vault)."""

        def token(force: bool) -> str:
            accounts = msal_app.get_accounts()
            result = None
            if accounts:
                with _reaching("the Microsoft identity platform"):
                    result = msal_app.acquire_token_silent_with_error(USER_SCOPES, accounts[0], force_refresh=force)
            self.save_cache(ctx, user, cache)
            if not result or "access_token" not in result:
                raise AuthenticationFailed(
                    _msal_error(result, f"{user.email}'s Microsoft 365 sign-in expired or was revoked")
                    + "; they must sign in again",
                    hint=SIGN_IN_AGAIN,
                )
            return str(result["access_token"])

        return token


@contextmanager
def _reaching(authority: str) -> Iterator[None]:
    """A failure to reach the authority is transient: the run retries later."""
    try:
        yield
    except requests.RequestException as exc:
        untrusted = certificate_error(urlsplit(authority).hostname or authority, exc)
        if untrusted is not None:
            raise untrusted from exc
        raise TransientError(f"{authority} could not be reached: {exc}") from exc


def _drop_access_tokens(cache: msal.TokenCache) -> None:
    """Forget cached access tokens so that the next acquisition asks the authority."""
    for token in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
        cache.remove_at(token)
