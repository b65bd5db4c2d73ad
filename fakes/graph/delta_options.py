"""Which OData query options each delta function takes, as Graph v1.0's reference gives them.

- ``calendarView/delta`` ("event: delta"): no ``$select`` (it returns what ``GET /calendarView``
  returns), no ``$expand``, ``$filter``, ``$orderby`` or ``$search``. ``$top`` is refused too,
  the page size being ``Prefer: odata.maxpagesize`` (not in the reference: Graph's own error
  text, "The '$top' parameter is not supported with change tracking over the 'CalendarView'
  resource ...", as quoted by clients; not confirmed).
- ``contacts/delta`` ("contact: delta"): ``$select`` only. The reference names no other
  option; ``$expand``, ``$filter``, ``$orderby``, ``$search`` and ``$top`` are refused as the
  error text quoted by clients lists them for the 'Contacts' resource (not confirmed by the
  reference, which is silent on them).
- ``todo/lists/{id}/tasks/delta`` ("todoTask: delta"): ``$select``, ``$top`` and ``$expand``;
  no ``$search``. The reference allows ``$filter``/``$orderby`` on ``receivedDateTime`` only,
  a property a todoTask does not have (the paragraph is the one of message delta), so both are
  refused here (not confirmed).
- ``mailFolders/{id}/messages/delta`` ("message: delta"): ``$select``, ``$top`` and
  ``$expand``; ``$filter`` only ``receivedDateTime ge|gt {value}``; ``$orderby`` only
  ``receivedDateTime desc``; no ``$search``.

A refused option is 400 ``ErrorInvalidUrlQuery`` with "The following parameters are not
supported with change tracking over the '{resource}' resource: '{options}'." (the code and
text clients quote from Graph; not in the reference, so not confirmed). ``$skip`` and
``$count`` are left as on any listing (the reference says nothing; not confirmed).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from fakes.graph.errors import GraphError

_RECEIVED_FILTER = re.compile(r"receivedDateTime\s+(ge|gt)\s+\S+", re.IGNORECASE)
_RECEIVED_ORDER = re.compile(r"receivedDateTime\s+desc", re.IGNORECASE)


@dataclass(frozen=True)
class DeltaRules:
    """The query options one delta function refuses, and the values it takes of the limited ones."""

    resource: str  # as Graph names it in its error text
    refused: frozenset[str]
    limited: tuple[tuple[str, Callable[[str], bool]], ...] = ()

    def check(self, options: dict[str, str]) -> None:
        """400 ErrorInvalidUrlQuery if ``options`` hold one this delta does not support."""
        bad = [name for name in options if name in self.refused]
        bad += [name for name, allowed in self.limited if name in options and not allowed(options[name].strip())]
        if bad:
            raise GraphError(
                400,
                "ErrorInvalidUrlQuery",
                "The following parameters are not supported with change tracking over the "
                f"'{self.resource}' resource: '{', '.join(sorted(bad))}'.",
            )


CALENDAR_VIEW = DeltaRules("CalendarView", frozenset({"$select", "$expand", "$filter", "$orderby", "$search", "$top"}))
CONTACTS = DeltaRules("Contacts", frozenset({"$expand", "$filter", "$orderby", "$search", "$top"}))
TASKS = DeltaRules("Tasks", frozenset({"$filter", "$orderby", "$search"}))
MESSAGES = DeltaRules(
    "Messages",
    frozenset({"$search"}),
    (
        ("$filter", lambda text: _RECEIVED_FILTER.fullmatch(text) is not None),
        ("$orderby", lambda text: _RECEIVED_ORDER.fullmatch(text) is not None),
    ),
)


def delta_rules(folder: str, *, windowed: bool) -> DeltaRules:
    """The rules of the delta function over ``folder`` (``windowed``: calendarView's)."""
    if windowed or folder == "calendar":
        return CALENDAR_VIEW
    return {"contacts": CONTACTS, "tasks": TASKS}.get(folder, MESSAGES)
