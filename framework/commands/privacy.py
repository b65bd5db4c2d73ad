"""The privacy options of ``exsync settings set``: what never leaves the mailbox.

Sensitivity handling and the internal-mail switch are the org's; exclusions and tracking are
the org's, or one user's with ``--user`` (added to the org's).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import click

from framework.context import Context
from framework.errors import UsageError
from framework.privacy import SENSITIVITY_CHOICES, TRACKING_MODES
from framework.settings import ENTITY_NAMES, Settings

_ADDRESS = re.compile(r"^[^@\s]+@[a-z0-9-]+(\.[a-z0-9-]+)+$")
_DOMAIN = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
ORG_ONLY = frozenset(
    {"private", "confidential", "personal", "internal_domain", "internal_mails", "opt_in_category", "opt_out_category"}
)

_OPTIONS: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
    click.option(
        "--private",
        type=click.Choice(SENSITIVITY_CHOICES),
        help="Items marked Private: remove (default: never copied; a copy already in the CRM is deleted), "
        "keep (never copied; a copy already in the CRM stays, no longer synced) or share.",
    ),
    click.option("--confidential", type=click.Choice(SENSITIVITY_CHOICES), help="Items marked Confidential (share)."),
    click.option("--personal", type=click.Choice(SENSITIVITY_CHOICES), help="Items marked Personal (share)."),
    click.option("--exclude-address", multiple=True, help="Never sync contacts at, or mails from or to, this address."),
    click.option("--exclude-domain", multiple=True, help="The same for every address of this domain."),
    click.option("--allow-address", multiple=True, help="Take an address off the excluded list."),
    click.option("--allow-domain", multiple=True, help="Take a domain off the excluded list."),
    click.option("--internal-domain", multiple=True, help="The org's own domains (default: the domains of its users)."),
    click.option(
        "--internal-mails",
        type=click.Choice(["skip", "sync"]),
        help="Mails whose every address is in the org's own domains (skip).",
    ),
    click.option(
        "--track",
        multiple=True,
        metavar="ENTITY=MODE",
        help="all (default), opt-in (only items with the opt-in category) or opt-out "
        "(all but items with the opt-out category); e.g. --track events=opt-in.",
    ),
    click.option("--opt-in-category", help="The Outlook category that opts an item in (CRM)."),
    click.option("--opt-out-category", help="The Outlook category that opts an item out (Not in CRM)."),
    click.option("--user", "user_key", help="Apply the exclusions and --track to this user only (e-mail or CRM id)."),
]


def privacy_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the privacy options to a click command (their values arrive as keyword arguments)."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def privacy_changes(ctx: Context, current: Settings, options: dict[str, Any]) -> dict[str, Any]:
    """The settings the privacy options change (checked; nothing is saved here)."""
    user_key = options.pop("user_key", None)
    given = {name: value for name, value in options.items() if value not in (None, ())}
    if user_key is None:
        return _org_changes(current, given)
    user = ctx.state.user(user_key)
    if user is None:
        raise UsageError(f"{user_key!r} is not a user of the CRM org.", hint="See 'exsync users list'.")
    org_only = sorted(f"--{name.replace('_', '-')}" for name in given if name in ORG_ONLY)
    if org_only:
        raise UsageError(
            f"{', '.join(org_only)} applies to the whole org, not to one user.",
            hint="Run it without --user.",
        )
    if not given:
        raise UsageError("--user needs an exclusion or --track to apply.", hint="See 'exsync settings set --help'.")
    own = dict(current.user_privacy.get(user.crm_id, {}))
    own.update(_lists(own, given))
    if given.get("track"):
        own["tracking"] = {**own.get("tracking", {}), **_tracking(given["track"])}
    return {"user_privacy": {**current.user_privacy, user.crm_id: own}}


def _org_changes(current: Settings, given: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    treatments = {name: given[name] for name in ("private", "confidential", "personal") if name in given}
    if treatments:
        changes["sensitivity"] = {**current.sensitivity, **treatments}
    changes.update(
        _lists({"exclude_addresses": current.exclude_addresses, "exclude_domains": current.exclude_domains}, given)
    )
    if given.get("internal_domain"):
        changes["internal_domains"] = sorted({*current.internal_domains, *map(_domain, given["internal_domain"])})
    if "internal_mails" in given:
        changes["internal_mails"] = given["internal_mails"] == "sync"
    if given.get("track"):
        changes["tracking"] = {**current.tracking, **_tracking(given["track"])}
    for name in ("opt_in_category", "opt_out_category"):
        if name in given:
            changes[name] = _category(given[name])
    return changes


def _lists(current: dict[str, Any], given: dict[str, Any]) -> dict[str, list[str]]:
    """The excluded addresses and domains after adding and taking off those given."""
    changed: dict[str, list[str]] = {}
    for key, add, remove, check in (
        ("exclude_addresses", "exclude_address", "allow_address", _address),
        ("exclude_domains", "exclude_domain", "allow_domain", _domain),
    ):
        if add in given or remove in given:
            values = {*current.get(key, []), *map(check, given.get(add, ()))}
            changed[key] = sorted(values - set(map(check, given.get(remove, ()))))
    return changed


def _address(text: str) -> str:
    value = text.strip().lower()
    if not _ADDRESS.match(value):
        raise UsageError(f"{text!r} is not an e-mail address.", hint="Give one like ann@example.com.")
    return value


def _domain(text: str) -> str:
    value = text.strip().lower().removeprefix("@")
    if not _DOMAIN.match(value):
        raise UsageError(f"{text!r} is not a domain.", hint="Give one like hr.example.com (no address, no scheme).")
    return value


def _tracking(pairs: tuple[str, ...]) -> dict[str, str]:
    tracking = {}
    for text in pairs:
        entity, _, mode = text.partition("=")
        if entity not in ENTITY_NAMES or mode not in TRACKING_MODES:
            raise UsageError(
                f"{text!r} is not a tracking choice.",
                hint=f"Give ENTITY=MODE with ENTITY one of {', '.join(ENTITY_NAMES)} "
                f"and MODE one of {', '.join(TRACKING_MODES)}.",
            )
        tracking[entity] = mode
    return tracking


def _category(text: str) -> str:
    value = text.strip()
    if not value or "," in value or ";" in value:
        raise UsageError(f"{text!r} is not a category name.", hint="Give one Outlook category, e.g. CRM.")
    return value
