"""The built-in ``exsync`` commands; plugins add theirs through ``exsync_cli_commands``."""

from __future__ import annotations

import re
import ssl
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from framework.audit import OUTCOMES
from framework.cli import cli
from framework.cli_support import emit, json_mode, pass_context, say
from framework.commands.privacy import privacy_changes, privacy_options
from framework.context import Context
from framework.contracts import CRM_LOGIN_PREFIX, CrmStore, RequiredField
from framework.errors import ConfigurationError, NotAllowed, UsageError
from framework.executors import EXECUTORS, executor_changes
from framework.executors.jobs import JobBoard
from framework.host import plugin_infos
from framework.report import print_audit, print_dashboard, print_status
from framework.settings import DIRECTIONS, EDITIONS_ALLOWED, ENTITY_NAMES, SCOPES, SYNC_TYPES, Settings, check_choice
from framework.state import User


# -- plugins ----------------------------------------------------------------------------------
@cli.command()
@pass_context
def plugins(ctx: Context) -> None:
    """List every loaded plugin and what it provides."""
    provides = _provided_names(ctx)
    infos = plugin_infos(ctx.host)
    data = [
        {
            "name": i.name,
            "module": i.module,
            "distribution": i.distribution,
            "version": i.version,
            "hooks": list(i.hooks),
            "provides": provides.get(i.name, []),
        }
        for i in infos
    ]
    emit(
        data,
        title="Plugins",
        columns=["plugin", "distribution", "provides", "hooks"],
        rows=[
            (
                f"{d['name']} ({d['module']})",
                f"{d['distribution']} {d['version']}",
                d["provides"],
                [h.removeprefix("exsync_") for h in d["hooks"]],
            )
            for d in data
        ],
    )


def _provided_names(ctx: Context) -> dict[str, list[str]]:
    """Per plugin name, the providers, connectors, entities and policies it returns."""
    out: dict[str, list[str]] = {}
    hooks = {
        "auth": ctx.hook.exsync_auth_providers,
        "crm": ctx.hook.exsync_crm_connectors,
        "entity": ctx.hook.exsync_entities,
        "policy": ctx.hook.exsync_conflict_policies,
        "command": ctx.hook.exsync_cli_commands,
    }
    for kind, caller in hooks.items():
        for impl in caller.get_hookimpls():
            for item in impl.function() or []:
                out.setdefault(impl.plugin_name, []).append(f"{kind}:{item.name}")
    return out


# -- installation -----------------------------------------------------------------------------
@cli.command()
@click.option("--scope", type=click.Choice(SCOPES), default="admins", show_default=True, help="Who may use exsync.")
@click.option(
    "--profile", "profiles", multiple=True, help="A CRM profile allowed to use exsync (with --scope profiles)."
)
@click.option("--accept-terms", is_flag=True, help="Accept the terms of service (required).")
@click.option("--create-fields", is_flag=True, help="Create the custom fields exsync writes that the CRM org lacks.")
@pass_context
def install(ctx: Context, scope: str, profiles: tuple[str, ...], accept_terms: bool, create_fields: bool) -> None:
    """Install exsync in the CRM org (administrators; Enterprise edition or higher).

    The CRM's field metadata is checked for every custom field exsync writes; with
    --create-fields the missing ones are created, otherwise they are named and nothing syncs
    into a module until its fields exist."""
    actor = ctx.require_admin("install")
    with ctx.org_crm() as crm:
        org, crm_users = crm.org(), _active_users(crm)
        missing = crm.missing_fields()
    if org.edition.lower() not in EDITIONS_ALLOWED:
        ctx.audit.record("install", "refused", actor=actor.email, edition=org.edition)
        raise NotAllowed(
            f"exsync needs the Enterprise edition or higher; this org is on {org.edition}.",
            hint="Upgrade the CRM org to Enterprise (or Ultimate) and try again.",
        )
    if not accept_terms and not click.confirm("Do you accept the terms of service?", default=False):
        ctx.audit.record("install", "refused", actor=actor.email, reason="terms not accepted")
        raise UsageError("The terms of service were not accepted; nothing was installed.", hint="Pass --accept-terms.")
    if scope == "profiles" and not profiles:
        raise UsageError("--scope profiles needs at least one --profile.", hint="e.g. --profile Standard")
    if missing and create_fields:
        missing = _create_fields(ctx, actor.email, missing)
    settings = ctx.settings
    settings.installed, settings.scope, settings.profiles = True, scope, list(profiles)
    settings.terms_accepted_by = actor.email
    settings.save(ctx.state)
    ctx.state.upsert_users(crm_users)
    lacking = [f.describe() for f in missing]
    ctx.audit.record("install", "ok", actor=actor.email, scope=scope, profiles=list(profiles), missing_fields=lacking)
    say(f"exsync is installed for {scope}. Next: 'exsync auth ews' or 'exsync auth graph', then 'exsync settings'.")
    if lacking:
        say(
            "The CRM org lacks these custom fields, and nothing syncs into their modules until they exist: "
            f"{', '.join(lacking)}. Create them in the CRM (Setup > Modules and Fields) with these API names, "
            "or run 'exsync install --accept-terms --create-fields'."
        )


def _create_fields(ctx: Context, actor: str, missing: list[RequiredField]) -> list[RequiredField]:
    """Create each missing field through the CRM; the ones still missing (named) if any failed."""
    with ctx.org_crm() as crm:
        for required in missing:
            crm.create_field(required)
            ctx.audit.record("create-field", "ok", actor=actor, field=required.describe())
            say(f"Created the custom field {required.describe()}.")
        return crm.missing_fields()


@cli.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def uninstall(ctx: Context, yes: bool) -> None:
    """Stop syncing; remove Exchange credentials, the CRM logins and the settings. Synced data stays on both sides."""
    actor = ctx.require_admin("uninstall")
    if not yes:
        click.confirm(
            "Uninstall exsync? Credentials, CRM logins and settings are removed; synced data stays.", abort=True
        )
    removed = ctx.vault.delete_prefix("auth/")
    ca_bundle = ctx.settings.ca_bundle
    ctx.state.clear_settings()
    ctx.state.set_settings({"ca_bundle": ca_bundle or None})
    ctx.state.forget_cursors()
    ctx.audit.record("uninstall", "ok", actor=actor.email, secrets_removed=removed)
    logins = ctx.vault.delete_prefix(CRM_LOGIN_PREFIX)  # last: the audit entry above still names the actor
    say(
        f"exsync is uninstalled: nothing syncs any more; {removed} Exchange credential(s) and "
        f"{logins} CRM login(s) are removed, with the settings; CRM and Exchange data are untouched. "
        "To start again: 'exsync crm login', then 'exsync install'."
    )


# -- settings ---------------------------------------------------------------------------------
@cli.group(invoke_without_command=True)
@click.pass_context
def settings(click_ctx: click.Context) -> None:
    """Show or change sync type, direction, conflict policy and entity toggles."""
    if click_ctx.invoked_subcommand is None:
        click_ctx.invoke(settings_show)


@settings.command("show")
@pass_context
def settings_show(ctx: Context) -> None:
    """Show the org's settings."""
    ctx.require_in_scope("view-settings")
    emit(ctx.settings.describe(), title="Settings")


@settings.command("set")
@click.option("--sync-type", type=click.Choice(SYNC_TYPES), help="two_way, or one_way in --direction.")
@click.option("--direction", type=click.Choice(DIRECTIONS), help="For one-way sync: which side is the source.")
@click.option("--conflict-policy", help="Which side wins a conflict (crm-wins, exchange-wins, or a plugin's).")
@click.option("--enable", "enable", multiple=True, type=click.Choice(ENTITY_NAMES), help="Sync this entity.")
@click.option("--disable", "disable", multiple=True, type=click.Choice(ENTITY_NAMES), help="Stop syncing it.")
@click.option("--mass-delete-ratio", type=click.FloatRange(0, 1), help="Refuse runs deleting more than this share.")
@click.option(
    "--interval", type=click.IntRange(0, 10080), help="Minutes between syncs under 'exsync sync --watch' (0: off)."
)
@click.option(
    "--ca-bundle",
    "ca_bundle",
    metavar="PEM",
    type=click.Path(exists=True, dir_okay=False, resolve_path=True),
    help="Trust the CAs of this PEM file from now on (an internal CA's, or the fakes').",
)
@click.option("--executor", type=click.Choice(EXECUTORS), help="Where jobs run: in-process, or celery workers.")
@click.option("--broker", metavar="URL", help="The Celery broker (amqp://... or redis://...), for --executor celery.")
@click.option("--limiter", metavar="URL", help="A Redis (redis://host:6379/0) where workers share Graph's limits.")
@privacy_options
@pass_context
def settings_set(
    ctx: Context,
    sync_type: str | None,
    direction: str | None,
    conflict_policy: str | None,
    enable: tuple[str, ...],
    disable: tuple[str, ...],
    mass_delete_ratio: float | None,
    interval: int | None,
    ca_bundle: str | None,
    executor: str | None,
    broker: str | None,
    limiter: str | None,
    **privacy: Any,
) -> None:
    """Change settings (administrators); the privacy options say what never leaves the mailbox."""
    actor = ctx.require_admin("configure")
    current = ctx.settings
    changes: dict[str, Any] = {}
    if ca_bundle is not None:  # needed to reach the CRM at all: allowed before install
        changes["ca_bundle"] = _checked_ca_bundle(ca_bundle)
    if sync_type:
        changes["sync_type"] = sync_type
    if direction:
        changes["direction"] = direction
    if conflict_policy:
        changes["conflict_policy"] = check_choice(conflict_policy, tuple(ctx.conflict_policies), "conflict policy")
    if mass_delete_ratio is not None:
        changes["mass_delete_ratio"] = mass_delete_ratio
    if interval is not None:
        changes["interval_minutes"] = interval
    if enable or disable:
        changes["entities"] = _toggle(ctx, current, enable, disable)
    if executor or broker or limiter:
        changes.update(executor_changes(ctx, executor, broker, limiter))
    if privacy.get("user_key") and changes:
        raise UsageError("--user applies only to exclusions and --track.", hint="Change org settings without --user.")
    changes.update(privacy_changes(ctx, current, privacy))
    if set(changes) != {"ca_bundle"}:
        _require_installed(current)
    if not changes:
        raise UsageError("Nothing to change.", hint="See 'exsync settings set --help'.")
    for key, value in changes.items():
        setattr(current, key, value)
    current.save(ctx.state)
    ctx.audit.record("configure", "ok", actor=actor.email, **changes)
    emit(current.describe(), title="Settings")


def _checked_ca_bundle(path: str) -> str:
    """``path`` if it holds PEM certificates Python can trust."""
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, ValueError, OSError) as exc:
        raise UsageError(
            f"{path} holds no PEM certificate ({type(exc).__name__}).",
            hint="Give the CA certificate in PEM form (-----BEGIN CERTIFICATE-----).",
        ) from None
    return path


def _toggle(ctx: Context, settings: Settings, enable: tuple[str, ...], disable: tuple[str, ...]) -> dict[str, bool]:
    if set(enable) & set(disable):
        raise UsageError("An entity cannot be both enabled and disabled.")
    if settings.auth_method:
        provider = ctx.auth_provider()
        reasons = provider.refused_entities(ctx)
        refused = sorted(set(enable) & set(reasons))
        if refused:
            raise NotAllowed(
                f"{', '.join(refused)} cannot be synced with {provider.name}: {reasons[refused[0]]}",
                hint="Use another authentication method ('exsync change-auth') to sync it.",
            )
    toggles = dict(settings.entities)
    toggles.update(dict.fromkeys(enable, True))
    toggles.update(dict.fromkeys(disable, False))
    return toggles


def _require_installed(settings: Settings) -> None:
    if not settings.installed:
        raise ConfigurationError("exsync is not installed in this org.", hint="Run 'exsync install --accept-terms'.")


# -- users ------------------------------------------------------------------------------------
@cli.group()
def users() -> None:
    """Every user of the CRM org, and whether their data syncs."""


@users.command("list")
@pass_context
def users_list(ctx: Context) -> None:
    """List the CRM org's users with their sync toggle."""
    ctx.require_admin("list-users")
    with ctx.org_crm() as crm:
        ctx.state.upsert_users(_active_users(crm))
    rows = ctx.state.users()
    emit(
        [_user_dict(u) for u in rows],
        title="Users",
        columns=["e-mail", "name", "profile", "admin", "sync"],
        rows=[(u.email, u.name, u.profile, u.is_admin, "enabled" if u.enabled else "disabled") for u in rows],
    )


@users.command("enable")
@click.argument("user_keys", nargs=-1, required=True, metavar="USER...")
@click.option("--mailbox", help="Exchange address, when it differs from the CRM e-mail (one user only).")
@pass_context
def users_enable(ctx: Context, user_keys: tuple[str, ...], mailbox: str | None) -> None:
    """Enable sync for users (e-mail or CRM id)."""
    _set_enabled(ctx, user_keys, True, mailbox)


@users.command("disable")
@click.argument("user_keys", nargs=-1, required=True, metavar="USER...")
@pass_context
def users_disable(ctx: Context, user_keys: tuple[str, ...]) -> None:
    """Disable sync for users; their synced data stays."""
    _set_enabled(ctx, user_keys, False, None)


def _set_enabled(ctx: Context, keys: tuple[str, ...], enabled: bool, mailbox: str | None) -> None:
    actor = ctx.require_admin("manage-users")
    _require_installed(ctx.settings)
    if mailbox and len(keys) != 1:
        raise UsageError("--mailbox applies to one user at a time.")
    found = [_user_or_fail(ctx, key) for key in keys]
    for user in found:
        values: dict[str, Any] = {"enabled": enabled}
        if mailbox:
            values["mailbox"] = mailbox
        ctx.state.update_user(user.crm_id, **values)
        ctx.audit.record("enable-user" if enabled else "disable-user", "ok", actor=actor.email, user_id=user.crm_id)
    say(f"{'Enabled' if enabled else 'Disabled'} sync for {', '.join(u.email for u in found)}.")


@users.command("show")
@click.argument("user_key", metavar="USER", required=False)
@pass_context
def users_show(ctx: Context, user_key: str | None) -> None:
    """Every sync detail of one user (yourself by default)."""
    actor = ctx.require_in_scope("view-user")
    ctx.settle_abandoned_runs()
    user = _user_or_fail(ctx, user_key) if user_key else actor
    if user.crm_id != actor.crm_id:
        ctx.require_admin("view-user")
    settings = ctx.settings
    provider = ctx.auth_providers.get(settings.auth_method)
    data = {
        **_user_dict(user),
        "auth_method": settings.auth_method or "not set up",
        "credentials": _credential_state(ctx, user),
        "sync_type": settings.sync_type,
        "direction": settings.direction if settings.sync_type == "one_way" else "both ways",
        "conflict_policy": settings.conflict_policy,
        "entities": [e for e in settings.enabled_entities() if not provider or e not in provider.refused_entities(ctx)],
        "synced_pairs": ctx.state.count_pairs(user.crm_id),
        "privacy": settings.privacy_rules(user, ctx.state.users()).describe(),
        **_status_dict(ctx, user),
    }
    emit(data, title=f"User {user.email}")


def _credential_state(ctx: Context, user: User) -> str:
    settings = ctx.settings
    if not settings.auth_method:
        return "none (not authenticated)"
    provider = ctx.auth_provider()
    if provider.org_wide:
        return "org-wide" if provider.has_credentials(ctx, None) else "missing (org)"
    return "stored" if provider.has_credentials(ctx, user) else "missing"


def _user_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.crm_id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "profile": user.profile,
        "admin": user.is_admin,
        "enabled": user.enabled,
        "mailbox": user.address,
    }


def _user_or_fail(ctx: Context, key: str) -> User:
    user = ctx.state.user(key)
    if user is None:
        raise UsageError(f"No CRM user {key!r}.", hint="See 'exsync users list'.")
    return user


def _active_users(crm: CrmStore) -> list[User]:
    return [User.from_crm(u) for u in crm.users() if u.active]


# -- status, dashboard, audit -----------------------------------------------------------------
def _status_dict(ctx: Context, user: User, board: JobBoard | None = None) -> dict[str, Any]:
    run = ctx.state.last_run(user.crm_id)
    errors = ctx.state.open_errors(user.crm_id)
    totals: dict[str, int] = {}
    withheld: dict[str, int] = {}
    if run:
        for counts in run.summary.get("entities", {}).values():
            for side in ("crm", "exchange"):
                for key, value in counts.get(side, {}).items():
                    totals[key] = totals.get(key, 0) + value
            for reason, value in counts.get("withheld", {}).items():
                withheld[reason] = withheld.get(reason, 0) + value
    if withheld:
        totals["withheld"] = sum(withheld.values())
    credentials = _credential_state(ctx, user)
    return {
        "last_run": run.finished_at.isoformat(timespec="seconds") if run and run.finished_at else "never",
        "result": (board.shown_outcome(user.crm_id, run.outcome) if board else run.outcome) if run else "",
        "counts": totals,
        "withheld": dict(sorted(withheld.items())),
        "credentials": credentials,
        "last_error": user.needs_attention or (run.error if run else "") or (errors[-1]["error"] if errors else ""),
        "needs_attention": bool(user.needs_attention),
        "next_run": _next_run(ctx, user, run.finished_at if run else None, credentials),
    }


def authentication_state(ctx: Context) -> str:
    """The org's Exchange authentication in a few words, saying when it is missing and what to do."""
    settings = ctx.settings
    provider = ctx.auth_providers.get(settings.auth_method)
    if not settings.auth_method or provider is None:
        return "missing: nothing syncs until 'exsync auth ews' or 'exsync auth graph'"
    if provider.org_wide:
        if provider.has_credentials(ctx, None):
            return f"{settings.auth_method} (org-wide)"
        return f"{settings.auth_method}: credentials missing; authenticate again"
    enabled = [u for u in ctx.state.users() if u.enabled]
    ready = sum(1 for u in enabled if provider.has_credentials(ctx, u))
    return f"{settings.auth_method} (each user's own: {ready} of {len(enabled)} enabled users authenticated)"


def _next_run(ctx: Context, user: User, last_finished: datetime | None, credentials: str) -> str:
    if not user.enabled:
        return "not scheduled (disabled)"
    if credentials.startswith(("none", "missing")):
        return "not scheduled (no authentication)"
    due = ctx.settings.next_run(last_finished)
    if due is None:
        return "manual ('exsync sync')"
    return due.isoformat(timespec="minutes") if due > datetime.now(UTC) else "due now"


@cli.command()
@pass_context
def status(ctx: Context) -> None:
    """The sync status of every user: last run, result, counts, last error, next run."""
    ctx.require_admin("view-status")
    ctx.settle_abandoned_runs()
    board = _job_board(ctx)
    data = [{"email": u.email, "enabled": u.enabled, **_status_dict(ctx, u, board)} for u in ctx.state.users()]
    if json_mode():
        emit(data)
    else:
        print_status(data, authentication_state(ctx))
    if board and (sweep := board.latest()):
        say(sweep.describe())


def _job_board(ctx: Context) -> JobBoard | None:
    """The sweeps of the celery executor (None with the in-process one)."""
    return JobBoard(ctx.state.engine) if ctx.settings.executor == "celery" else None


@cli.command()
@pass_context
def dashboard(ctx: Context) -> None:
    """The summary after a sync: settings, totals per entity, recent runs, open errors."""
    actor = ctx.require_in_scope("view-dashboard")
    ctx.settle_abandoned_runs()
    user_id = None if actor.is_admin else actor.crm_id
    runs = ctx.state.runs(user_id, limit=10)
    users = {u.crm_id: u.email for u in ctx.state.users()}
    board = _job_board(ctx)
    data = {
        "authentication": authentication_state(ctx),
        "settings": ctx.settings.describe(),
        "synced_pairs": ctx.state.count_pairs(user_id),
        "withheld_pairs": ctx.state.count_withheld(user_id),
        "recent_runs": [
            {
                "user": users.get(r.user_id, r.user_id),
                "finished": r.finished_at.isoformat(timespec="seconds") if r.finished_at else "running",
                "outcome": board.shown_outcome(r.user_id, r.outcome) if board else r.outcome,
                "entities": r.summary.get("entities", {}),
            }
            for r in runs
        ],
        "open_errors": [{"user": users.get(e["user_id"], e["user_id"]), **e} for e in ctx.state.open_errors(user_id)],
    }
    sweep = board.latest() if board and actor.is_admin else None
    if sweep:
        data["sweep"] = sweep.as_dict()
    if json_mode():
        emit(data)
    else:
        print_dashboard(data)
        if sweep:
            say(sweep.describe())


_DURATION = re.compile(r"^(\d+)([mhd])$")


def parse_since(text: str) -> datetime:
    """``7d``, ``12h``, ``30m`` or an ISO date into a moment."""
    match = _DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        delta = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}[unit]
        return datetime.now(UTC) - delta
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{text!r} is not a duration or a date.", hint="Use e.g. 7d, 12h, 30m or 2026-11-01."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@cli.command()
@click.option("--since", default="30d", show_default=True, help="How far back: 7d, 12h, 30m or an ISO date.")
@click.option("--user", "user_key", help="Only this user (e-mail or CRM id).")
@click.option("--entity", type=click.Choice(ENTITY_NAMES), help="Only this entity.")
@click.option("--action", help="Only this action (sync, authenticate, install...).")
@click.option("--outcome", type=click.Choice(OUTCOMES), help="Only this outcome.")
@click.option("--limit", default=200, show_default=True, help="At most this many entries.")
@pass_context
def audit(
    ctx: Context,
    since: str,
    user_key: str | None,
    entity: str | None,
    action: str | None,
    outcome: str | None,
    limit: int,
) -> None:
    """The audit log of the last month: every operation done through exsync."""
    ctx.require_admin("view-audit")
    ctx.settle_abandoned_runs()
    user_id = _user_or_fail(ctx, user_key).crm_id if user_key else None
    ctx.audit.prune()
    events = ctx.audit.query(
        since=parse_since(since), user_id=user_id, entity=entity, action=action, outcome=outcome, limit=limit
    )
    emails = {u.crm_id: u.email for u in ctx.state.users()}
    data = [
        {
            "at": e.at.isoformat(timespec="seconds"),
            "actor": e.actor,
            "user": emails.get(e.user_id, e.user_id),
            "user_id": e.user_id,
            "entity": e.entity,
            "action": e.action,
            "outcome": e.outcome,
            "detail": e.detail,
        }
        for e in events
    ]
    if json_mode():
        emit(data)
    else:
        print_audit(data)
