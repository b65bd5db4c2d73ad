"""The bundled CRM plugin: a Zoho CRM v8 connector and the ``exsync crm`` commands.

The connector (:mod:`plugins.crm.connector`) logs in with a refresh token and opens
:class:`~plugins.crm.store.ZohoCrmStore` objects, whose sides read and write Contacts,
Tasks and Events records and associate mails with Contacts and Leads
(:mod:`plugins.crm.mapping`) through :class:`~plugins.crm.client.CrmClient`.
"""

from __future__ import annotations

import click

from framework import hookimpl
from framework.contracts import CrmConnector
from plugins.crm.connector import ZohoCrmConnector, crm_group


@hookimpl
def exsync_crm_connectors() -> list[CrmConnector]:
    """The Zoho CRM v8 connector, named ``crm``."""
    return [ZohoCrmConnector()]


@hookimpl
def exsync_cli_commands() -> list[click.Command]:
    """The ``exsync crm`` group: ``login`` and ``whoami``."""
    return [crm_group]
