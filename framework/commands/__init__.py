"""The built-in commands, registered on :data:`framework.cli.cli` when imported."""

from framework.commands import admin, auth, mails, sync, worker

__all__ = ["admin", "auth", "mails", "sync", "worker"]
