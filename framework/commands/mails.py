"""``exsync mails``: the acting user's mails as synced into the CRM (B21, B32)."""

from __future__ import annotations

import click

from framework.cli import cli
from framework.cli_support import emit, pass_context
from framework.context import Context
from framework.contracts import Window
from framework.model import Mail


@cli.command()
@click.option("--limit", default=50, show_default=True, help="At most this many mails, newest first.")
@pass_context
def mails(ctx: Context, limit: int) -> None:
    """Your mails synced into the CRM, newest first."""
    actor = ctx.require_in_scope("read-mails")
    store = ctx.crm(actor)
    try:
        held = store.mails(Window.months_back(ctx.settings.window_months))
    finally:
        store.close()
    found = sorted(
        (m for m in held if isinstance(m, Mail)),
        key=lambda m: m.sent_at.isoformat() if m.sent_at else "",
        reverse=True,
    )[:limit]
    data = [
        {
            "sent": m.sent_at.isoformat(timespec="minutes") if m.sent_at else "",
            "from": m.sender,
            "to": list(m.to),
            "subject": m.subject,
            "folder": m.folder,
        }
        for m in found
    ]
    emit(
        data, title="Mails", columns=["sent", "from", "to", "subject", "folder"], rows=[tuple(d.values()) for d in data]
    )
