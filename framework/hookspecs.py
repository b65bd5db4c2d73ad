"""Every hook of exsync: the whole extension surface in one file.

A plugin is a module (or object) with functions named like the specs below, decorated with
``@framework.hookimpl``, registered through an entry point of group ``exsync``::

    [project.entry-points.exsync]
    my_plugin = "my_package.exsync_plugin"

The bundled plugins (``plugins.crm``, ``plugins.ews``, ``plugins.graph``,
``plugins.entities``, ``plugins.conflicts``) are registered the same way, so they are
working examples of every hook. Collection hooks (``exsync_auth_providers`` and friends)
return a list; the host gathers the lists of every plugin. Names must be unique across
plugins: two plugins offering the same name is an error reported at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from framework.audit import AuditEvent
    from framework.contracts import AuthProvider, ConflictPolicy, CrmConnector, EntityDefinition, SideName
    from framework.engine import RunReport
    from framework.model import Record

hookspec = pluggy.HookspecMarker("exsync")


@hookspec
def exsync_auth_providers() -> list[AuthProvider]:
    """Return the ways to authenticate to Exchange that this plugin offers.

    Called once when the host starts. Each :class:`~framework.contracts.AuthProvider` has
    a unique ``name`` (``ews-basic``, ``graph-client-credentials``...), says whether it is
    ``org_wide`` and which entities it cannot carry, and opens a
    :class:`~framework.contracts.Store` on a user's mailbox. The administrator picks one
    with ``exsync auth``; the provider's own commands (``exsync_cli_commands``) collect
    and verify its credentials.
    """


@hookspec
def exsync_crm_connectors() -> list[CrmConnector]:
    """Return the CRMs this plugin can log in to.

    A :class:`~framework.contracts.CrmConnector` keeps its login in the vault and opens
    :class:`~framework.contracts.CrmStore` objects, which also answer for the org (edition,
    SalesInbox) and its users (roles, profiles). The bundled ``crm`` connector speaks the
    Zoho CRM v8 API; a plugin for another CRM implements the same two classes.
    """


@hookspec
def exsync_entities() -> list[EntityDefinition]:
    """Return the entities this plugin defines (contacts, tasks, events, mails).

    An :class:`~framework.contracts.EntityDefinition` names the canonical record type, the
    natural key used to pair existing records on a first sync, the date the six-month
    window applies to, and the sides it may be written to. Stores say which entities they
    carry; an entity that no store carries is simply never synced.
    """


@hookspec
def exsync_conflict_policies() -> list[ConflictPolicy]:
    """Return conflict policies (``crm-wins``, ``exchange-wins``...).

    A policy receives a :class:`~framework.contracts.Conflict`, the same pair changed on
    both sides since the last sync, and returns the winning side. Every resolution is
    audit-logged with the policy's name.
    """


@hookspec
def exsync_cli_commands() -> list[click.Command]:
    """Return click commands to add under ``exsync`` (a group's name may be a path: ``auth``).

    Each command's ``name`` decides where it goes: a command whose ``name`` is ``ews``
    and whose attribute ``exsync_parent`` is ``"auth"`` becomes ``exsync auth ews``. Use
    :func:`framework.cli_support.pass_context` to receive the :class:`Context`.
    """


@hookspec
def exsync_adjust_native(entity: str, side: SideName, record: Record, native: Any) -> None:
    """Adjust the native payload a store built for ``record`` before it is written.

    ``native`` is what the store is about to send: a dict of CRM fields, a dict in Graph's
    JSON shape, or an exchangelib item. Change it in place to customise the field
    mapping, say to copy a contact's department into a custom CRM field. Called for every
    create and update, on every plugin; the return value is ignored.
    """


@hookspec
def exsync_run_started(user: str, entities: list[str], dry_run: bool) -> None:
    """Called when a sync run for CRM user id ``user`` starts, before anything is read."""


@hookspec
def exsync_run_finished(report: RunReport) -> None:
    """Called when a run ends, with its report (counts per entity and side, errors)."""


@hookspec
def exsync_audit_event(event: AuditEvent) -> None:
    """Called for every audit entry once it is stored; secrets have already been removed.

    Forward it to a SIEM, a chat channel, a log file. Exceptions raised here are logged
    and ignored: an observer can never break a sync.
    """
