"""Org-level settings: install scope, authentication, sync type, direction, policy, toggles."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from framework.contracts import SIDES, SideName
from framework.errors import UsageError
from framework.privacy import DEFAULT_SENSITIVITY, PrivacyRules, domain_of, lowered
from framework.state import StateStore, User

SCOPES = ("admins", "all", "profiles")
SYNC_TYPES = ("two_way", "one_way")
DIRECTIONS = ("exchange_to_crm", "crm_to_exchange")
ENTITY_NAMES = ("contacts", "tasks", "events", "mails")
EDITIONS_ALLOWED = ("enterprise", "ultimate", "zoho one", "crm plus")


@dataclass
class Settings:
    """Everything the administrator configures, stored in the state store."""

    installed: bool = False
    scope: str = "admins"
    profiles: list[str] = field(default_factory=list)
    terms_accepted_by: str = ""
    auth_method: str = ""
    impersonation_choice: str = ""  # "impersonation" or "individual", chosen once (B17)
    sync_type: str = "two_way"
    direction: str = "exchange_to_crm"
    conflict_policy: str = "crm-wins"
    entities: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(ENTITY_NAMES, True))
    window_months: int = 6
    mass_delete_ratio: float = 0.5
    interval_minutes: int = 0  # 0: only when someone runs 'exsync sync'
    ca_bundle: str = ""  # a PEM file of CAs to trust (an internal CA); --ca-bundle overrides it
    # privacy (framework/privacy.py): what never leaves the mailbox
    sensitivity: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SENSITIVITY))
    exclude_addresses: list[str] = field(default_factory=list)
    exclude_domains: list[str] = field(default_factory=list)
    internal_domains: list[str] = field(default_factory=list)  # empty: the domains of the org's users
    internal_mails: bool = False
    tracking: dict[str, str] = field(default_factory=dict)  # entity -> all | opt-in | opt-out
    opt_in_category: str = "CRM"
    opt_out_category: str = "Not in CRM"
    user_privacy: dict[str, dict[str, Any]] = field(default_factory=dict)
    """CRM user id -> that user's own ``exclude_addresses``, ``exclude_domains`` and ``tracking``."""
    executor: str = "in-process"  # or "celery": jobs run by 'exsync worker' processes
    broker: str = ""  # the Celery broker, password hidden (the URL itself is in the vault)
    limiter: str = ""  # the Redis every worker counts requests in, password hidden (the URL is in the vault)

    @classmethod
    def load(cls, state: StateStore) -> Settings:
        stored = state.all_settings()
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in stored.items() if k in names})

    def save(self, state: StateStore) -> None:
        state.set_settings(dataclasses.asdict(self))

    def writable_sides(self) -> frozenset[SideName]:
        """The sides a run may write: both when two-way, the target of the direction when one-way."""
        if self.sync_type == "two_way":
            return frozenset(SIDES)
        return frozenset({"crm"} if self.direction == "exchange_to_crm" else {"exchange"})

    def enabled_entities(self) -> list[str]:
        return [name for name, on in self.entities.items() if on]

    def privacy_rules(self, user: User, org_users: list[User]) -> PrivacyRules:
        """The privacy rules for ``user``'s records: the org's, with the user's own added
        (their exclusions too; their tracking choice per entity over the org's)."""
        own = self.user_privacy.get(user.crm_id, {})
        internal = self.internal_domains or [
            domain_of(address) for u in org_users for address in (u.email, u.mailbox) if address
        ]
        return PrivacyRules(
            sensitivity={**DEFAULT_SENSITIVITY, **self.sensitivity},
            excluded_addresses=lowered([*self.exclude_addresses, *own.get("exclude_addresses", [])]),
            excluded_domains=lowered([*self.exclude_domains, *own.get("exclude_domains", [])]),
            internal_domains=lowered(internal),
            internal_mails=self.internal_mails,
            tracking={**self.tracking, **own.get("tracking", {})},
            opt_in_category=self.opt_in_category,
            opt_out_category=self.opt_out_category,
        )

    def next_run(self, last_finished: datetime | None) -> datetime | None:
        """When ``exsync sync --watch`` next syncs a user who last finished then (None: manual only)."""
        if not self.interval_minutes:
            return None
        if last_finished is None:
            return datetime.fromtimestamp(0, UTC)  # never synced: due at once
        return last_finished + timedelta(minutes=self.interval_minutes)

    def describe(self) -> dict[str, Any]:
        """The settings as shown to people and scripts."""
        out = dataclasses.asdict(self)
        if self.sync_type == "two_way":
            out.pop("direction")
        return out


def check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``allowed``, else a usage error naming the choices."""
    if value not in allowed:
        raise UsageError(f"{value!r} is not a valid {what}.", hint=f"Choose one of: {', '.join(allowed)}.")
    return value
