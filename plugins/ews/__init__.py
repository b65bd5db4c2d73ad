"""The bundled EWS plugin: Exchange Server over EWS with Basic authentication.

Two auth providers (``ews-basic``: each user's own credentials; ``ews-impersonation``: one
service account with ApplicationImpersonation), an :class:`~plugins.ews.store.EwsStore` carrying
contacts, tasks, events and mails, and the ``exsync auth ews`` / ``exsync auth update-password``
commands. Importing the plugin registers the cross-link extended property on exchangelib's items
and keeps Basic-auth headers out of exchangelib's debug log.
"""

from __future__ import annotations

import click

from framework import hookimpl
from framework.contracts import AuthProvider
from plugins.ews.auth import hide_authorization, providers
from plugins.ews.cli import COMMANDS
from plugins.ews.mapping import register_link

register_link()
hide_authorization()


@hookimpl
def exsync_auth_providers() -> list[AuthProvider]:
    """``ews-basic`` (individual credentials) and ``ews-impersonation`` (a service account)."""
    return list(providers().values())


@hookimpl
def exsync_cli_commands() -> list[click.Command]:
    """``exsync auth ews`` and ``exsync auth update-password``."""
    return list(COMMANDS)
