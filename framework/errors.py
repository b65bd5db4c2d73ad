"""The error taxonomy: what went wrong, what to do about it, and whether to try again.

The command line turns an :class:`ExsyncError` into one sentence plus a hint and an exit
code; the engine uses the subclasses to decide between retrying (transient), marking one
record (rejected) and marking one user (needs attention).
"""

from __future__ import annotations


class ExsyncError(Exception):
    """A failure with a message for people and a hint on what to do next."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(ExsyncError):
    """The command was called wrongly: bad option, bad value, missing argument."""

    exit_code = 2


class NotAllowed(ExsyncError):
    """The acting user may not do this (role, install scope, plan, an earlier choice)."""


class ConfigurationError(ExsyncError):
    """Something is not set up yet, or set up in a way that cannot work."""


class SyncError(ExsyncError):
    """A failure met while reading or writing one side."""

    transient = False


class TransientError(SyncError):
    """Throttling, a 5xx, a dropped connection: retried with back-off."""

    transient = True

    def __init__(self, message: str, hint: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, hint)
        self.retry_after = retry_after


class RecordRejected(SyncError):
    """The other side refused one record (invalid e-mail, too long, mandatory field missing).

    The record is reported and retried on the next run; the rest of the run goes on.
    """


class AuthenticationFailed(SyncError):
    """Credentials or tokens are wrong, expired or revoked: the user must act."""


class SyncStateLost(SyncError):
    """A delta token or sync state is no longer valid: read everything again."""
