"""Which Microsoft Graph permission each call needs, as the v1.0 permission reference lists them.

A delegated token (``scp``) needs one of the delegated permissions of the resource, an
app-only token (``roles``) one of the application permissions; a call without it answers 403
as Graph does (``ErrorAccessDenied`` for mailbox resources, ``Authorization_RequestDenied``
for the directory). Reading is allowed by any permission that allows writing.
"""

from __future__ import annotations

from dataclasses import dataclass

from fakes.graph.authority import TokenInfo
from fakes.graph.errors import GraphError


@dataclass(frozen=True)
class Needs:
    """The permissions (least privileged first) that allow reading, and those that allow writing."""

    read: tuple[str, ...]
    write: tuple[str, ...]


DELEGATED: dict[str, Needs] = {
    "me": Needs(("User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All", "Directory.Read.All"), ()),
    "users": Needs(("User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All"), ()),
    "contacts": Needs(("Contacts.Read",), ("Contacts.ReadWrite",)),
    "calendar": Needs(("Calendars.ReadBasic", "Calendars.Read"), ("Calendars.ReadWrite",)),
    "tasks": Needs(("Tasks.Read",), ("Tasks.ReadWrite",)),
    "mail": Needs(("Mail.ReadBasic", "Mail.Read"), ("Mail.ReadWrite",)),
}
APPLICATION: dict[str, Needs] = {
    "users": Needs(("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"), ()),
    "contacts": Needs(("Contacts.Read",), ("Contacts.ReadWrite",)),
    "calendar": Needs(("Calendars.ReadBasic", "Calendars.Read"), ("Calendars.ReadWrite",)),
    "tasks": Needs(("Tasks.Read.All",), ("Tasks.ReadWrite.All",)),
    "mail": Needs(("Mail.ReadBasic", "Mail.Read"), ("Mail.ReadWrite",)),
}
_AREAS = {
    "contacts": "contacts",
    "contactFolders": "contacts",
    "events": "calendar",
    "calendar": "calendar",
    "calendars": "calendar",
    "calendarView": "calendar",
    "todo": "tasks",
    "messages": "mail",
    "mailFolders": "mail",
}


def area_of(segment: str) -> str | None:
    """The permission area of a mailbox path segment (``contacts``, ``calendarView``...)."""
    return _AREAS.get(segment)


def require(token: TokenInfo, area: str, *, write: bool) -> None:
    """Raise Graph's 403 unless ``token`` holds a permission that allows this call."""
    table = APPLICATION if token.app_only else DELEGATED
    needs = table.get(area)
    allowed = () if needs is None else (needs.write if write else needs.read + needs.write)
    if any(token.holds(permission) for permission in allowed):
        return
    if area in ("me", "users"):
        raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
