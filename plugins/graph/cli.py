"""``exsync auth graph``: sign in to Microsoft 365 and keep the credentials in the vault.

``--flow client-credentials`` is an administrator's one-time, org-wide set-up (B19);
``--flow auth-code`` signs one user in with their own Microsoft account (B18), the first
time by an administrator who also registers the app. Secrets are prompted for (hidden),
stored only in the vault and never printed; every attempt is audit-logged.
"""

from __future__ import annotations

import re
import warnings
import webbrowser
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from time import monotonic
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
import msal
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from framework.cli_support import emit, pass_context, say
from framework.context import Context
from framework.errors import AuthenticationFailed, ExsyncError, NotAllowed, UsageError
from framework.state import User
from framework.vault import REDACTOR
from plugins.graph.auth import (
    APP_PERMISSIONS,
    APP_TASKS_PERMISSION,
    DEFAULT_AUTHORITY,
    DEFAULT_GRAPH_URL,
    DEFAULT_REDIRECT_URI,
    USER_PERMISSIONS,
    USER_SCOPES,
    AuthCodeProvider,
    ClientCredentialsProvider,
    Credential,
    GraphApp,
    build_app,
    http_session,
    missing_permissions,
    token_permissions,
)
from plugins.graph.client import GraphClient

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", re.S)
PROVIDERS = {"auth-code": "graph-auth-code", "client-credentials": "graph-client-credentials"}


@dataclass(frozen=True)
class AppOptions:
    """The app-registration options given on the command line (None: not given)."""

    tenant: str | None
    client_id: str | None
    client_secret: str | None
    certificate: str | None
    thumbprint: str | None
    authority: str | None
    graph_url: str | None
    redirect_uri: str | None


@dataclass(frozen=True)
class SignIn:
    """How the auth-code flow gets the redirect back from the browser."""

    code_url: str | None
    auto: bool
    open_browser: bool
    login_hint: str | None
    timeout: float


class AuthSubcommand(click.Command):
    """A command that the host mounts under ``exsync auth``."""

    exsync_parent = "auth"


@click.command("graph", cls=AuthSubcommand)
@click.option("--flow", type=click.Choice(sorted(PROVIDERS)), required=True, help="OAuth flow to use.")
@click.option("--tenant", help="Tenant name, domain or id (contoso.onmicrosoft.com).")
@click.option("--client-id", help="Application (client) id of the app registration.")
@click.option(
    "--client-secret",
    prompt="Client secret",
    prompt_required=False,
    hide_input=True,
    envvar="EXSYNC_GRAPH_CLIENT_SECRET",
    help="Give the flag alone to be prompted (hidden), or set EXSYNC_GRAPH_CLIENT_SECRET.",
)
@click.option(
    "--certificate",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM file with the app certificate's private key (and the certificate) instead of a secret.",
)
@click.option(
    "--thumbprint",
    help="SHA-1 thumbprint as the portal shows it (default: the SHA-256 one of the certificate in the PEM).",
)
@click.option("--authority", help=f"Identity platform URL (default {DEFAULT_AUTHORITY}).")
@click.option("--graph-url", help=f"Microsoft Graph URL (default {DEFAULT_GRAPH_URL}).")
@click.option("--redirect-uri", help=f"Redirect URI registered for the app (default {DEFAULT_REDIRECT_URI}).")
@click.option("--user", "user_key", help="auth-code: the CRM user whose account signs in (default: you).")
@click.option("--code-url", help="auth-code: the URL the browser was redirected to, pasted instead of caught.")
@click.option("--login-hint", help="auth-code: the Microsoft account to suggest at sign-in.")
@click.option("--open", "open_browser", is_flag=True, help="auth-code: open the sign-in page in a browser.")
@click.option(
    "--auto",
    is_flag=True,
    help="auth-code: follow the sign-in URL without a browser. Only for test tenants that consent "
    "automatically, such as the fakes of 'exsync fakes serve'.",
)
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds to wait for the redirect.")
@pass_context
def graph_command(
    ctx: Context,
    flow: str,
    user_key: str | None,
    code_url: str | None,
    login_hint: str | None,
    open_browser: bool,
    auto: bool,
    timeout: float,
    **app_options: Any,
) -> None:
    """Authenticate exsync to Microsoft 365 (Exchange Online) through Microsoft Graph.

    client-credentials: an administrator authenticates the app once and every user's
    mailbox syncs (contacts, events, mails; tasks when the app holds Tasks.ReadWrite.All).
    auth-code: each user signs in with their own Microsoft account; an administrator runs it
    first with the app's tenant, client id and secret. Either way the permissions the token
    carries are checked first, and each missing one is named.
    """
    options = AppOptions(**app_options)
    actor = ctx.require_in_scope("authenticate")
    if options.client_secret:
        REDACTOR.add(options.client_secret)
    try:
        if flow == "client-credentials":
            _client_credentials(ctx, options)
        else:
            sign_in = SignIn(code_url, auto, open_browser, login_hint, timeout)
            _auth_code(ctx, actor, _target(ctx, actor, user_key), options, sign_in)
    except NotAllowed:
        raise
    except ExsyncError as exc:
        ctx.audit.record(
            "authenticate",
            "failed",
            actor=actor.email,
            user_id=actor.crm_id,
            provider=PROVIDERS[flow],
            reason=exc.message,
        )
        raise


# -- client credentials -----------------------------------------------------------------------
def _client_credentials(ctx: Context, options: AppOptions) -> None:
    actor = ctx.require_admin("authenticate-org")
    provider = ctx.auth_providers[PROVIDERS["client-credentials"]]
    assert isinstance(provider, ClientCredentialsProvider)
    _check_method(ctx, actor, provider.name)
    app = _app(ctx, "client-credentials", options)
    credential = _credential(options)
    if credential is None:
        raise UsageError(
            "Client credentials need a client secret or a certificate.",
            hint="Add --client-secret (you are prompted, hidden) or --certificate PEM [--thumbprint X].",
        )
    tokens = provider.token_provider(ctx, app, credential)
    granted = _check_permissions(tokens(True), APP_PERMISSIONS, "application permission")
    app = replace(app, permissions=tuple(sorted(granted)))
    with GraphClient(app.graph_url, tokens, ctx.tls_verify) as client:
        client.get("/users", {"$top": "1", "$select": "id"})
    provider.store_credential(ctx, credential)
    tasks = not missing_permissions(granted, (APP_TASKS_PERMISSION,))
    if not tasks:
        say(
            f"Tasks are not synced: the app lacks the application permission {APP_TASKS_PERMISSION} "
            "(grant it with admin consent in Microsoft Entra ID, then run this again)."
        )
    _finish(ctx, actor, actor, provider.name, app, {"permissions": " ".join(app.permissions), "tasks": str(tasks)})


def _check_permissions(access_token: str, needed: tuple[str, ...], kind: str) -> frozenset[str]:
    """The permissions the token carries; refuse, naming each, when one of ``needed`` is missing."""
    granted = token_permissions(access_token)
    if granted is None:
        raise AuthenticationFailed(
            "The access token is not a JWT whose permissions exsync can read.",
            hint="Check --authority: exsync needs Microsoft Entra ID's v1.0 or v2.0 access tokens for Graph.",
        )
    missing = missing_permissions(granted, needed)
    if missing:
        names = ", ".join(missing)
        raise AuthenticationFailed(
            f"The app registration lacks the Microsoft Graph {kind}{'s' if len(missing) > 1 else ''} {names}; "
            "nothing was stored.",
            hint=f"An administrator grants {names} (with admin consent) in Microsoft Entra ID, then runs this again.",
        )
    return granted


# -- authorization code -----------------------------------------------------------------------
def _target(ctx: Context, actor: User, user_key: str | None) -> User:
    """Whose account signs in: a non-admin may only sign in themselves (B32)."""
    if not user_key:
        return actor
    user = ctx.state.user(user_key)
    if user is None:
        raise UsageError(f"No CRM user {user_key!r}.", hint="See 'exsync users list'.")
    if user.crm_id != actor.crm_id:
        ctx.require_admin("authenticate-other-users")  # a user signs in only their own account (B32)
    return user


def _auth_code(ctx: Context, actor: User, target: User, options: AppOptions, sign_in: SignIn) -> None:
    provider = ctx.auth_providers[PROVIDERS["auth-code"]]
    assert isinstance(provider, AuthCodeProvider)
    _check_method(ctx, actor, provider.name)
    app = _app(ctx, "auth-code", options)
    stored = GraphApp.load(ctx)
    registered = stored is not None and provider.has_credentials(ctx, None)
    if registered and not actor.is_admin and app != stored:
        ctx.require_admin("change-graph-app")  # users sign in to the org's app; only an admin changes it
    given = _credential(options) if actor.is_admin or not registered else None
    credential = given or provider.credential(ctx)
    cache = msal.SerializableTokenCache()
    msal_app = build_app(ctx, app, credential, cache)
    with warnings.catch_warnings():  # msal prefers form_post; a pasted redirect URL needs the query mode
        warnings.simplefilter("ignore", UserWarning)
        flow = msal_app.initiate_auth_code_flow(
            USER_SCOPES, redirect_uri=app.redirect_uri, login_hint=sign_in.login_hint or target.address
        )
    params = _redirect_params(ctx, flow["auth_uri"], app.redirect_uri, sign_in)
    try:
        result = msal_app.acquire_token_by_auth_code_flow(flow, params)
    except ValueError as exc:  # msal: state mismatch, or a flow that was already used
        raise AuthenticationFailed(f"The sign-in answer does not belong to this sign-in: {exc}") from exc
    if "access_token" not in result:
        raise AuthenticationFailed(str(result.get("error_description") or result.get("error") or "sign-in failed"))
    _check_permissions(str(result["access_token"]), USER_PERMISSIONS, "delegated permission")
    signed_in = str((result.get("id_token_claims") or {}).get("preferred_username") or "")
    tokens = provider.token_provider(ctx, target, msal_app, cache)
    with GraphClient(app.graph_url, tokens, ctx.tls_verify) as client:
        client.get("/me", {"$select": "id"})
    if given:
        provider.store_credential(ctx, credential)
    ctx.vault.put(provider.cache_key(target), cache.serialize())
    _finish(ctx, actor, target, provider.name, app, {"user": target.email, "signed_in_as": signed_in})


def _redirect_params(ctx: Context, auth_uri: str, redirect_uri: str, sign_in: SignIn) -> dict[str, str]:
    """The query of the redirect that ends the sign-in: pasted, followed (--auto) or caught locally."""
    if sign_in.code_url:
        return _query(sign_in.code_url)
    if sign_in.auto:
        with http_session(ctx) as session:
            response = session.get(auth_uri, allow_redirects=False, timeout=30)
        location = response.headers.get("Location", "")
        if not location.startswith(redirect_uri):
            raise UsageError(
                "The sign-in page did not redirect straight back (it wants a person to sign in).",
                hint="--auto is only for test tenants that consent automatically; sign in with a browser.",
            )
        return _query(location)
    say(f"Sign in to Microsoft 365 at:\n{auth_uri}")
    if sign_in.open_browser:
        webbrowser.open(auth_uri)
    return catch_redirect(redirect_uri, sign_in.timeout)


def catch_redirect(redirect_uri: str, timeout: float) -> dict[str, str]:
    """Serve ``redirect_uri`` (a loopback URL with a port) until the browser comes back to it."""
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in ("localhost", "127.0.0.1") or not parts.port:
        raise UsageError(
            f"The redirect URI {redirect_uri} is not a loopback address exsync can listen on.",
            hint="Sign in in a browser and pass the URL it ends on with --code-url.",
        )
    caught: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        """Catches the sign-in redirect on the loopback port."""

        def do_GET(self) -> None:
            query = _query(self.path)
            if urlsplit(self.path).path == (parts.path or "/") and ("code" in query or "error" in query):
                caught.update(query)
            body = b"exsync: you can close this window and return to the command line."
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    deadline = monotonic() + timeout
    with HTTPServer((parts.hostname, parts.port), Handler) as server:
        while not caught and monotonic() < deadline:
            server.timeout = max(0.1, deadline - monotonic())
            server.handle_request()
    if not caught:
        raise AuthenticationFailed(f"No sign-in came back within {timeout:g} seconds.")
    return caught


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# -- shared -----------------------------------------------------------------------------------
def _check_method(ctx: Context, actor: User, name: str) -> None:
    """Another method can only follow 'exsync change-auth' (B30)."""
    current = ctx.settings.auth_method
    if current and current != name:
        ctx.audit.record(
            "authenticate", "refused", actor=actor.email, user_id=actor.crm_id, reason=f"{current} is set up"
        )
        raise NotAllowed(
            f"Exchange authentication is set up with {current}; {name} cannot be added next to it.",
            hint="An administrator runs 'exsync change-auth' first; synced pairs are kept.",
        )


def _app(ctx: Context, flow: str, options: AppOptions) -> GraphApp:
    """The app registration: the options given, else what is stored for this flow, else defaults."""
    stored = GraphApp.load(ctx)
    stored = stored if stored is not None and stored.flow == flow else None

    def pick(given: str | None, name: str, default: str = "") -> str:
        return given or (getattr(stored, name) if stored else "") or default

    tenant, client_id = pick(options.tenant, "tenant"), pick(options.client_id, "client_id")
    if not tenant or not client_id:
        raise UsageError(
            "The app registration is not known yet.", hint="Give --tenant and --client-id (and its secret)."
        )
    return GraphApp(
        flow,
        tenant,
        client_id,
        pick(options.authority, "authority", DEFAULT_AUTHORITY),
        pick(options.graph_url, "graph_url", DEFAULT_GRAPH_URL),
        pick(options.redirect_uri, "redirect_uri", DEFAULT_REDIRECT_URI),
    )


def _credential(options: AppOptions) -> Credential | None:
    """The client secret, or the certificate's key with its thumbprint or certificate; None if neither."""
    if options.certificate:
        key, certificate = _pem_parts(Path(options.certificate).read_text())
        if options.thumbprint:  # a SHA-1 thumbprint as the portal shows it (RS256 assertions)
            return {"private_key": key, "thumbprint": options.thumbprint.replace(":", "").upper()}
        if not certificate:
            raise UsageError(
                "The PEM file holds no certificate.", hint="Add the certificate to it, or give --thumbprint."
            )
        return {"private_key": key, "public_certificate": certificate}  # msal sends its SHA-256 thumbprint
    return options.client_secret or None


def _pem_parts(pem: str) -> tuple[str, str]:
    """The RSA private key block and the certificate blocks of a PEM file."""
    blocks = [(m.group(1), m.group(0)) for m in _PEM_BLOCK.finditer(pem)]
    key = next((text for kind, text in blocks if kind.endswith("PRIVATE KEY")), "")
    certificate = "\n".join(text for kind, text in blocks if kind == "CERTIFICATE")
    try:
        loaded = serialization.load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError):
        raise UsageError(
            "The certificate file holds no unencrypted private key.", hint="Give a PEM with the app's private key."
        ) from None
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise UsageError("The certificate's key is not an RSA key; Microsoft Entra ID signs in apps with RSA keys.")
    return key, certificate


def _finish(ctx: Context, actor: User, target: User, method: str, app: GraphApp, extra: dict[str, str]) -> None:
    app.save(ctx)
    settings = ctx.settings
    if settings.auth_method != method:
        settings.auth_method = method
        settings.save(ctx.state)
    ctx.audit.record("authenticate", "ok", actor=actor.email, user_id=target.crm_id, provider=method, tenant=app.tenant)
    say(f"Authenticated to Microsoft 365 with {method}.")
    emit({"auth_method": method, "tenant": app.tenant, "client_id": app.client_id, "graph_url": app.graph_url, **extra})
