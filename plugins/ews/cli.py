"""``exsync auth ews`` and ``exsync auth update-password``: the EWS plugin's commands."""

from __future__ import annotations

import click

from framework.cli_support import emit, pass_context, say
from framework.context import Context
from framework.errors import UsageError
from framework.state import User
from plugins.ews import auth
from plugins.ews.auth import EwsLogin, EwsServer


def _password(password: str | None, prompt: str) -> str:
    if password is None:
        password = click.prompt(prompt, hide_input=True)
    if not password:
        raise UsageError("The password is empty.")
    return password


@click.command("ews")
@click.option("--endpoint", metavar="URL", help="The EWS URL, e.g. https://mail.example.com/EWS/Exchange.asmx.")
@click.option("--email", metavar="ADDRESS", help="The Exchange account's e-mail address (default: the user's).")
@click.option("--password", help="The Exchange password (prompted, hidden, when left out).")
@click.option("--domain", default="", help="The Windows domain of the account, if the server wants DOMAIN\\user.")
@click.option(
    "--impersonation",
    "mode",
    flag_value="impersonation",
    help="Org-wide: a service account with ApplicationImpersonation syncs every enabled user (admins; chosen once).",
)
@click.option(
    "--individual",
    "mode",
    flag_value="individual",
    help="Each user stores their own Exchange credentials (admins; chosen once).",
)
@click.option(
    "--version",
    "version",
    default="auto",
    show_default=True,
    type=click.Choice([*auth.VERSIONS, "auto"]),
    help="The Exchange Server version, or detect it.",
)
@click.option(
    "--auth-type",
    default="auto",
    show_default=True,
    type=click.Choice(list(auth.AUTH_TYPES)),
    help="How to authenticate: what the server offers (NTLM before Basic), Windows authentication (NTLM, "
    "also behind Negotiate), or Basic (admins, with --impersonation or --individual).",
)
@click.option("--insecure-http", is_flag=True, help="Allow a plain-http endpoint (test servers and the fakes only).")
@click.option("--user", "user_key", metavar="EMAIL", help="Store credentials for this CRM user ('me': yourself).")
@pass_context
def ews_command(
    ctx: Context,
    endpoint: str | None,
    email: str | None,
    password: str | None,
    domain: str,
    mode: str | None,
    version: str,
    auth_type: str,
    insecure_http: bool,
    user_key: str | None,
) -> None:
    """Authenticate to Exchange Server over EWS (Windows authentication or Basic), verified before anything is stored.

    An administrator first chooses, once and for good, between --impersonation (one service account)
    and --individual (each user stores their own login). With individual credentials every user then
    runs 'exsync auth ews --password' for their own mailbox.
    """
    if mode == "impersonation" or (mode == "individual" and ctx.actor.is_admin):
        if not endpoint:
            raise UsageError("--endpoint is required to set up EWS.", hint="Give the server's EWS URL.")
        server = auth.configure_server(ctx, endpoint, version, insecure_http, auth_type)
        if mode == "impersonation":
            _impersonation(ctx, server, email, password, domain)
            return
        auth.choose_individual(ctx, server)
        say(
            f"Individual Exchange credentials chosen for {server.host} ({server.product}, "
            f"{server.authentication}); each user now stores their own login."
        )
        if password is None and email is None:
            return
    else:
        if endpoint:
            auth.check_org_endpoint(ctx, endpoint, insecure_http)
        if auth_type != "auto":
            auth.check_org_auth_type(ctx, auth_type)
    _own_login(ctx, user_key, email, password, domain)


def _impersonation(ctx: Context, server: EwsServer, email: str | None, password: str | None, domain: str) -> None:
    if not email:
        raise UsageError("--email of the service account is required with --impersonation.")
    login = EwsLogin(email, _password(password, "Service account password"), domain)
    verified = auth.setup_impersonation(ctx, server, login)
    emit(
        {
            "auth_method": "ews-impersonation",
            "endpoint": verified.endpoint,
            "service_account": email,
            "exchange_version": verified.product,
            "exchange_build": verified.build,
            "authentication": verified.authentication,
        },
        title="EWS impersonation set up",
    )


def _own_login(ctx: Context, user_key: str | None, email: str | None, password: str | None, domain: str) -> None:
    secret = _password(password, "Exchange password")

    def login_for(user: User) -> EwsLogin:
        return EwsLogin(email or user.address, secret, domain)

    user = auth.store_user_login(ctx, user_key, login_for)
    emit({"auth_method": "ews-basic", "user": user.email, "stored": True}, title="Exchange credentials stored")


@click.command("update-password")
@click.option("--password", help="The new password (prompted, hidden, when left out).")
@click.option("--user", "user_key", metavar="EMAIL", help="An administrator may update another user's password.")
@pass_context
def update_password_command(ctx: Context, password: str | None, user_key: str | None) -> None:
    """Update the stored Exchange password (yours, or the service account's for admins), verified first (B32)."""
    account = auth.update_password(ctx, _password(password, "New Exchange password"), user_key)
    say(f"The password of {account} was verified and stored.")


ews_command.exsync_parent = "auth"  # type: ignore[attr-defined]
update_password_command.exsync_parent = "auth"  # type: ignore[attr-defined]
COMMANDS: list[click.Command] = [ews_command, update_password_command]
