"""The built-in commands, registered on :data:`framework.cli.cli` when imported."""

from framework.commands import admin, auth, sync

__all__ = ["admin", "auth", "sync"]
