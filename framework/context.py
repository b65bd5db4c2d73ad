"""The context every command and plugin works in: state, vault, audit, plugins, acting user."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from framework.audit import AuditLog
from framework.contracts import CRM_LOGIN_PREFIX, AuthProvider, ConflictPolicy, CrmConnector, CrmStore, EntityDefinition
from framework.errors import ConfigurationError, NotAllowed
from framework.host import Host, build_host, collect
from framework.settings import Settings
from framework.state import Run, StateStore, User, default_state_url
from framework.vault import Vault

if TYPE_CHECKING:
    from framework.contracts import Store
    from framework.executors.jobs import SweepShare
    from framework.executors.limiter import ServiceLimits, SharedLimiter


ABANDONED = "interrupted: its process stopped (killed or crashed) before the run finished"


class Context:
    """Lazily opens what a command needs; one per command invocation."""

    def __init__(
        self,
        state_url: str | None = None,
        *,
        host: Host | None = None,
        acting_as: str | None = None,
        ca_bundle: str | None = None,
        create_state: bool = True,
    ) -> None:
        self._state_url = state_url
        self._host = host
        self.acting_as = acting_as
        self.ca_bundle = ca_bundle
        self.create_state = create_state  # False: a state database that does not exist is refused
        #: on a worker: what the jobs of the current distributed sweep share (None: one process)
        self.sweep_share: SweepShare | None = None

    # infrastructure ----------------------------------------------------------------------
    @cached_property
    def host(self) -> Host:
        return self._host or build_host()

    @property
    def hook(self) -> Any:
        return self.host.hook

    @property
    def state_url(self) -> str:
        """The state database's URL: ``--state``, else ``EXSYNC_STATE``, else the default file."""
        return self._state_url or default_state_url()

    @cached_property
    def state(self) -> StateStore:
        return StateStore(self._state_url, create=self.create_state)

    @cached_property
    def vault(self) -> Vault:
        return Vault(self.state)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.state, observers=self.hook.exsync_audit_event)

    def settle_abandoned_runs(self) -> list[Run]:
        """Mark runs left "running" by a process that no longer exists (killed, crashed) as
        interrupted, each with an audit entry; the next sync finishes what they left."""
        settled = []
        for run in self.state.running_runs():
            if run.abandoned() and self.state.interrupt_run(run.id, ABANDONED):
                self.audit.record(
                    "sync", "interrupted", actor="exsync", user_id=run.user_id, run=run.id, error=ABANDONED
                )
                settled.append(run)
        return settled

    @cached_property
    def shared_limiter(self) -> SharedLimiter | None:
        """The request limiter every worker shares ('exsync settings set --limiter'), if one is set."""
        from framework.executors.limiter import SharedLimiter, limiter_url

        url = limiter_url(self.vault.get)
        return SharedLimiter(url) if url else None

    def request_limit(
        self, limits: ServiceLimits, app: str, mailbox: str
    ) -> Callable[[int], AbstractContextManager[None]] | None:
        """What a client wraps each request to ``mailbox`` in (given its cost in requests) so that
        ``limits`` hold across every worker; None without a shared limiter."""
        limiter = self.shared_limiter
        return None if limiter is None else functools.partial(limiter.request, limits, app, mailbox)

    @property
    def settings(self) -> Settings:
        return Settings.load(self.state)

    @property
    def tls_verify(self) -> str | bool:
        """The CA bundle to trust (``--ca-bundle``, the stored setting), else the system's."""
        return self.ca_bundle or self.state.get_setting("ca_bundle") or True

    # plugins -----------------------------------------------------------------------------
    @cached_property
    def auth_providers(self) -> dict[str, AuthProvider]:
        return collect(self.hook.exsync_auth_providers(), "auth provider")

    @cached_property
    def crm_connectors(self) -> dict[str, CrmConnector]:
        return collect(self.hook.exsync_crm_connectors(), "CRM connector")

    @cached_property
    def entities(self) -> dict[str, EntityDefinition]:
        return collect(self.hook.exsync_entities(), "entity")

    @cached_property
    def conflict_policies(self) -> dict[str, ConflictPolicy]:
        return collect(self.hook.exsync_conflict_policies(), "conflict policy")

    def auth_provider(self, name: str | None = None) -> AuthProvider:
        """The provider ``name``, or the one configured for the org."""
        name = name or self.settings.auth_method
        if not name:
            raise ConfigurationError(
                "No Exchange authentication is set up.", hint="Run 'exsync auth ews' or 'exsync auth graph' first."
            )
        try:
            return self.auth_providers[name]
        except KeyError:
            raise ConfigurationError(
                f"The auth provider {name!r} is not available.",
                hint=f"Installed providers: {', '.join(sorted(self.auth_providers))}.",
            ) from None

    def crm_connector(self) -> CrmConnector:
        name = self.state.get_setting("crm_connector") or "crm"
        try:
            return self.crm_connectors[name]
        except KeyError:
            raise ConfigurationError(f"The CRM connector {name!r} is not installed.") from None

    def crm(self, user: User | None = None) -> CrmStore:
        """A CRM store for ``user``'s records (None: the org, through the admin's login)."""
        return self.crm_connector().open(self, user)

    @contextmanager
    def org_crm(self) -> Iterator[CrmStore]:
        """The org-level CRM store, closed when the block ends."""
        store = self.crm()
        try:
            yield store
        finally:
            store.close()

    def exchange(self, user: User) -> Store:
        return self.auth_provider().open(self, user)

    # who is acting -----------------------------------------------------------------------
    @cached_property
    def actor(self) -> User:
        """The CRM user running this command: ``--as`` (who must have logged in), else the org's login."""
        key = self.acting_as or self.state.get_setting("crm_login_user")
        if not key:
            raise ConfigurationError(
                "No CRM login is set up.", hint="Run 'exsync crm login' with the CRM's URL and a refresh token."
            )
        user = self.state.user(key)
        if user is None:
            raise NotAllowed(
                f"{key!r} is not a user of the CRM org.", hint="Check the address, or run 'exsync users list'."
            )
        if not self.vault.names(CRM_LOGIN_PREFIX + user.crm_id):
            raise NotAllowed(
                f"{user.email} has not logged in to the CRM on this machine.",
                hint=f"Run 'exsync --as {user.email} crm login' with their own refresh token.",
            )
        return user

    def require_admin(self, action: str) -> User:
        """The actor, if a CRM administrator; otherwise refuse, audit-logged (B01)."""
        actor = self.actor
        if not actor.is_admin:
            self.audit.record(action, "refused", actor=actor.email, user_id=actor.crm_id, reason="not an administrator")
            raise NotAllowed(
                f"Only a CRM administrator can {action.replace('-', ' ')}; {actor.email} is not one.",
                hint="Ask an administrator of the CRM org to do it.",
            )
        return actor

    def require_in_scope(self, action: str) -> User:
        """The actor, if the install scope lets them use exsync at all (B05)."""
        actor = self.actor
        settings = self.settings
        if not settings.installed:
            raise ConfigurationError(
                "exsync is not installed in this org.", hint="An administrator runs 'exsync install'."
            )
        allowed = (
            actor.is_admin
            or settings.scope == "all"
            or (settings.scope == "profiles" and actor.profile in settings.profiles)
        )
        if not allowed:
            self.audit.record(
                action, "refused", actor=actor.email, user_id=actor.crm_id, reason="outside install scope"
            )
            raise NotAllowed(
                f"exsync is installed for {_scope_words(settings)}; {actor.email} is not included.",
                hint="An administrator can widen the scope with 'exsync install --scope'.",
            )
        return actor


def _scope_words(settings: Settings) -> str:
    if settings.scope == "profiles":
        return "the profiles " + ", ".join(settings.profiles)
    return "administrators only" if settings.scope == "admins" else "all users"
