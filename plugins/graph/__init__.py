"""The bundled Microsoft 365 plugin: Exchange Online through Microsoft Graph.

It offers two auth providers (``graph-auth-code``, ``graph-client-credentials``), each
opening a :class:`~plugins.graph.store.GraphStore` on a user's mailbox, and the command
``exsync auth graph`` that signs in and stores the credentials.
"""

from __future__ import annotations

import click

from framework import hookimpl
from framework.contracts import AuthProvider
from plugins.graph.auth import AuthCodeProvider, ClientCredentialsProvider
from plugins.graph.cli import graph_command


@hookimpl
def exsync_auth_providers() -> list[AuthProvider]:
    """Authorization code (each user signs in, B18) and client credentials (org-wide, B19)."""
    return [AuthCodeProvider(), ClientCredentialsProvider()]


@hookimpl
def exsync_cli_commands() -> list[click.Command]:
    """``exsync auth graph``."""
    return [graph_command]
