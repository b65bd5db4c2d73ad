"""``exsync auth``, ``revoke`` and ``change-auth``: the lifecycle of Exchange credentials."""

from __future__ import annotations

import click

from framework.cli import cli
from framework.cli_support import emit, pass_context, say
from framework.context import Context
from framework.errors import UsageError
from framework.state import User


@cli.group()
def auth() -> None:
    """Authenticate exsync to Exchange (EWS) or Microsoft 365 (Graph)."""


@auth.command("status")
@pass_context
def auth_status(ctx: Context) -> None:
    """Which authentication is set up, and whose credentials are stored."""
    actor = ctx.require_in_scope("view-auth")
    settings = ctx.settings
    provider = ctx.auth_providers.get(settings.auth_method)
    users = ctx.state.users() if actor.is_admin else [actor]
    data = {
        "auth_method": settings.auth_method or "not set up",
        "impersonation_choice": settings.impersonation_choice or "not made",
        "org_wide": bool(provider and provider.org_wide),
        "org_credentials": bool(provider and provider.org_wide and provider.has_credentials(ctx, None)),
        "users": {
            u.email: bool(provider and not provider.org_wide and provider.has_credentials(ctx, u)) for u in users
        },
        "needs_attention": {u.email: u.needs_attention for u in users if u.needs_attention},
    }
    emit(data, title="Authentication")


@cli.command()
@click.option("--user", "user_key", help="Revoke only this user's credentials (individual authentication).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def revoke(ctx: Context, user_key: str | None, yes: bool) -> None:
    """Delete stored credentials and tokens and stop syncing; synced pairs are kept (B29)."""
    actor = ctx.require_admin("revoke")
    settings = ctx.settings
    if not settings.auth_method:
        raise UsageError("There is no authentication to revoke.", hint="See 'exsync auth status'.")
    if not yes:
        click.confirm("Revoke Exchange authentication? Sync stops until someone authenticates again.", abort=True)
    if user_key:
        user = ctx.state.user(user_key)
        if user is None:
            raise UsageError(f"No CRM user {user_key!r}.", hint="See 'exsync users list'.")
        removed = _revoke_user(ctx, user)
    else:
        removed = ctx.vault.delete_prefix("auth/")
        settings.auth_method = ""
        settings.save(ctx.state)
    ctx.audit.record("revoke", "ok", actor=actor.email, user=user_key or "all", secrets_removed=removed)
    say("Authentication revoked. Synced pairs are kept, so authenticating again duplicates nothing.")


def _revoke_user(ctx: Context, user: User) -> int:
    provider = ctx.auth_provider()
    return ctx.vault.delete_prefix(provider.vault_prefix(user))


@cli.command("change-auth")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def change_auth(ctx: Context, yes: bool) -> None:
    """Deauthorise the current method so another can be set up (Basic -> OAuth), keeping pairs (B30)."""
    actor = ctx.require_admin("change-auth")
    settings = ctx.settings
    if not settings.auth_method:
        raise UsageError("No authentication is set up yet.", hint="Run 'exsync auth ews' or 'exsync auth graph'.")
    if not yes:
        click.confirm(f"Deauthorise {settings.auth_method}?", abort=True)
    previous = settings.auth_method
    removed = ctx.vault.delete_prefix("auth/")
    settings.auth_method = ""
    settings.save(ctx.state)
    ctx.state.forget_cursors()
    ctx.audit.record("change-auth", "ok", actor=actor.email, previous=previous, secrets_removed=removed)
    say(
        f"{previous} is deauthorised. Authenticate with the new method now ('exsync auth graph' or "
        "'exsync auth ews'); the next sync re-reads both sides and re-pairs records without duplicates."
    )
