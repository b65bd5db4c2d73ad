"""The CRM connector: logging in to a Zoho CRM org, opening stores, and ``exsync crm``.

A login is the OAuth client and refresh token of one CRM user, verified against the CRM
and kept in the vault under ``crm/login/<CRM user id>`` (never printed, never logged). The
first administrator who logs in becomes the org's login (setting ``crm_login_user``): every
store, for every user, reads and writes through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import click

from framework.cli_support import creates_state, emit, pass_context, say
from framework.context import Context
from framework.contracts import CrmConnector, CrmUser
from framework.errors import AuthenticationFailed, UsageError
from framework.state import User
from plugins.crm.client import CrmClient
from plugins.crm.shared_sweep import SharedListings
from plugins.crm.store import ZohoCrmStore
from plugins.crm.sweep import KEEP, Listings

LOGIN_KEYS = ("accounts_url", "client_id", "client_secret", "refresh_token")
LOGIN_SETTING = "crm_login_user"


def vault_name(crm_user_id: str) -> str:
    """Where the login of a CRM user is kept in the vault."""
    return f"crm/login/{crm_user_id}"


class ZohoCrmConnector(CrmConnector):
    """Zoho CRM v8 (and the fake CRM): refresh-token logins, one store per user."""

    name: ClassVar[str] = "crm"
    description: ClassVar[str] = "Zoho CRM v8 API, signed in with an OAuth client and a refresh token."

    def __init__(self) -> None:
        self._sweep: Listings | None = None  # while a sweep runs: its client, org and listings

    @contextmanager
    def sweep(self, ctx: Context) -> Iterator[None]:
        """One client (one token) for every store of the sweep that uses the org's login, and
        the org-wide listings read once for all of them."""
        key = ctx.state.get_setting(LOGIN_SETTING)
        secrets = ctx.vault.get_json(vault_name(key)) if key else None
        if secrets is None or self._sweep is not None:
            yield
            return
        client = _client(secrets, ctx)
        shared = ctx.sweep_share  # jobs of the sweep on other workers too
        self._sweep = Listings(client, keep=KEEP) if shared is None else SharedListings(client, shared, keep=KEEP)
        try:
            yield
        finally:
            client, self._sweep = self._sweep.client, None
            client.close()

    def login(self, ctx: Context, options: dict[str, Any]) -> CrmUser:
        missing = [key for key in LOGIN_KEYS if not options.get(key)]
        if missing:
            raise UsageError(f"A CRM login needs {', '.join(missing)}.")
        login = {key: str(options[key]) for key in LOGIN_KEYS}
        store = ZohoCrmStore(_client(login, ctx), None, ctx.hook.exsync_adjust_native)
        try:
            me = store.current_user()
            users = store.users()
        except AuthenticationFailed as exc:
            ctx.audit.record("crm-login", "failed", accounts_url=login["accounts_url"], error=exc.message)
            raise
        finally:
            store.close()
        ctx.vault.put(vault_name(me.id), login)
        ctx.state.upsert_users([User.from_crm(u) for u in users if u.active])
        if me.is_admin and not ctx.state.get_setting(LOGIN_SETTING):
            ctx.state.set_settings({LOGIN_SETTING: me.id})
        ctx.audit.record(
            "crm-login", "ok", actor=me.email, user_id=me.id, accounts_url=login["accounts_url"], users=len(users)
        )
        return me

    def open(self, ctx: Context, login: User | str | None = None) -> ZohoCrmStore:
        """A store for ``login``'s records (a User, or a CRM user id whose own login is used);
        None: org questions only. Users' records are reached through the org's admin login,
        else through the user's own login."""
        if isinstance(login, str):
            owner: User | None = ctx.state.user(login) or User(login, "")
            candidates: list[str | None] = [login]
        else:
            owner = login
            candidates = [ctx.state.get_setting(LOGIN_SETTING), owner.crm_id if owner else None]
        if self._sweep is not None and owner is not None and not isinstance(login, str):  # the org's login
            return ZohoCrmStore(self._sweep.client, owner, ctx.hook.exsync_adjust_native, sweep=self._sweep)
        for key in filter(None, candidates):
            secrets = ctx.vault.get_json(vault_name(key))
            if secrets is not None:
                return ZohoCrmStore(_client(secrets, ctx), owner, ctx.hook.exsync_adjust_native)
        raise AuthenticationFailed(
            "No CRM login is stored.", hint="An administrator runs 'exsync crm login' with a refresh token."
        )


def _client(login: dict[str, Any], ctx: Context) -> CrmClient:
    return CrmClient(
        str(login["accounts_url"]),
        str(login["client_id"]),
        str(login["client_secret"]),
        str(login["refresh_token"]),
        verify=ctx.tls_verify,
    )


def _user_data(user: CrmUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "profile": user.profile,
        "admin": user.is_admin,
    }


@click.group("crm", help="Connect exsync to the CRM.")
def crm_group() -> None:
    """Connect exsync to the CRM."""


@crm_group.command("login")
@click.option(
    "--accounts-url",
    required=True,
    metavar="URL",
    help="The CRM's accounts (OAuth) server, e.g. https://accounts.zoho.com.",
)
@click.option("--client-id", required=True, help="The OAuth client id of the CRM's self client.")
@click.option("--client-secret", prompt=True, hide_input=True, help="The OAuth client secret (prompted if absent).")
@click.option("--refresh-token", prompt=True, hide_input=True, help="A CRM user's refresh token (prompted if absent).")
@creates_state
@pass_context
def login_command(ctx: Context, accounts_url: str, client_id: str, client_secret: str, refresh_token: str) -> None:
    """Verify a CRM login, keep it encrypted in the vault, and refresh the CRM users."""
    options = {
        "accounts_url": accounts_url,
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
    }
    user = ctx.crm_connectors[ZohoCrmConnector.name].login(ctx, options)
    org_login = ctx.state.get_setting(LOGIN_SETTING) == user.id
    say(f"Logged in to the CRM as {user.name} <{user.email}>.")
    if not org_login:
        say("This login is kept for this user only; the org's login is an administrator's.")
    emit({**_user_data(user), "org_login": org_login}, title="CRM login")


@crm_group.command("whoami")
@pass_context
def whoami_command(ctx: Context) -> None:
    """Show the CRM user and org of the stored org login."""
    store = ctx.crm()
    try:
        user, org = store.current_user(), store.org()
    finally:
        store.close()
    emit(
        {**_user_data(user), "org": org.name, "edition": org.edition, "sales_inbox": org.sales_inbox}, title="CRM login"
    )
