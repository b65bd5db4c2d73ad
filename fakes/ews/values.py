"""Value helpers shared by the EWS converters: date-times, dotted key paths and the private store.

Graph-shaped item data keeps what Graph has no property for under the private key ``_ews``, so that
such fields still round-trip over EWS. Its sections: ``extra`` (EWS elements no field maps, by tag),
``phones`` (phone keys such as BusinessFax that Graph lacks) and ``slots`` (the EWS keys of
``emailAddresses``/``businessPhones``/``homePhones`` entries when they are not the first ones in
order, e.g. only EmailAddress2). Other fakes should hide keys that start with an underscore.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fakes.series import zone

Data = dict[str, Any]
PRIVATE = "_ews"


# date-times ----------------------------------------------------------------------------------------
def parse_ews_datetime(text: str) -> datetime:
    """An EWS xs:dateTime (``Z``, offset or naive meaning UTC) as an aware UTC datetime."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def ews_datetime(moment: datetime) -> str:
    """``moment`` as EWS writes UTC date-times: ``2025-01-01T09:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_when(moment: datetime) -> dict[str, str]:
    """``moment`` as a Graph dateTimeTimeZone in UTC."""
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def parse_graph_when(value: Mapping[str, Any]) -> datetime:
    """A Graph dateTimeTimeZone (IANA or Windows zone name) as an aware UTC datetime."""
    moment = datetime.fromisoformat(str(value["dateTime"]))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(str(value.get("timeZone") or "UTC")))
    return moment.astimezone(UTC)


# dotted key paths ----------------------------------------------------------------------------------
def get_path(data: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` (``location.displayName``), or None."""
    node: Any = data
    for key in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def set_path(data: Data, path: str, value: Any) -> None:
    """Set the value at dotted ``path``, creating intermediate dicts."""
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def pop_path(data: Data, path: str) -> None:
    """Remove the value at dotted ``path``; intermediate dicts left empty are removed too."""
    head, _, rest = path.partition(".")
    if not rest:
        data.pop(head, None)
        return
    child = data.get(head)
    if isinstance(child, dict):
        pop_path(child, rest)
        if not child:
            data.pop(head)


# private store -------------------------------------------------------------------------------------
def private(data: Data, section: str) -> dict[str, Any]:
    """The (created on demand) section of the private EWS store in ``data``."""
    store: dict[str, dict[str, Any]] = data.setdefault(PRIVATE, {})
    return store.setdefault(section, {})


def peek_private(data: Mapping[str, Any], section: str) -> Mapping[str, Any]:
    """A section of the private store for reading; empty when missing."""
    store = data.get(PRIVATE) or {}
    return store.get(section) or {}


def prune_private(data: Data) -> None:
    """Drop empty sections of the private store, and the store when it is empty."""
    store = data.get(PRIVATE)
    if store is None:
        return
    for section in [name for name, value in store.items() if not value]:
        del store[section]
    if not store:
        del data[PRIVATE]
