"""FindItem's Restriction, SortOrder and CalendarView, evaluated over rendered items.

Property values are read from the item's full EWS rendering, so every field the fake renders can be
filtered and sorted on. Values compare as date-times, numbers or booleans when both sides parse as
such, otherwise as case-insensitive strings (as Exchange compares text).
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element

from fakes.ews.extended import extended_values
from fakes.ews.soap import EwsError, local, t
from fakes.ews.values import Data, parse_ews_datetime, parse_graph_when
from fakes.tenant import Item

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "IsEqualTo": operator.eq,
    "IsNotEqualTo": operator.ne,
    "IsGreaterThan": operator.gt,
    "IsGreaterThanOrEqualTo": operator.ge,
    "IsLessThan": operator.lt,
    "IsLessThanOrEqualTo": operator.le,
}
_INDEXED_CONTAINERS = {
    "EmailAddress": "EmailAddresses",
    "PhoneNumber": "PhoneNumbers",
    "PhysicalAddress": "PhysicalAddresses",
    "ImAddress": "ImAddresses",
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


class Candidate:
    """An item and its full EWS rendering, made on first use (unfiltered pages never need it)."""

    __slots__ = ("_elem", "_render", "item")

    def __init__(self, item: Item, render: Callable[[Item], Element]) -> None:
        self.item = item
        self._render = render
        self._elem: Element | None = None

    @property
    def elem(self) -> Element:
        if self._elem is None:
            self._elem = self._render(self.item)
        return self._elem


# property values -----------------------------------------------------------------------------------
def path_values(candidate: Candidate, path: Element) -> list[str]:
    """The values of the property a FieldURI / IndexedFieldURI / ExtendedFieldURI addresses."""
    kind = local(path.tag)
    if kind == "ExtendedFieldURI":
        return extended_values(candidate.item.data, path)
    parts = path.get("FieldURI", "").split(":")
    if kind == "IndexedFieldURI":
        return _indexed_values(candidate.elem, parts, path.get("FieldIndex", ""))
    return _texts(candidate.elem.find(t(parts[-1])))


def _indexed_values(elem: Element, parts: list[str], index: str) -> list[str]:
    container = elem.find(t(_INDEXED_CONTAINERS.get(parts[1], parts[1])))
    if container is None:
        return []
    entry = next((e for e in container.findall(t("Entry")) if e.get("Key") == index), None)
    if entry is not None and len(parts) > 2:
        entry = entry.find(t(parts[2]))
    return _texts(entry)


def _texts(node: Element | None) -> list[str]:
    if node is None:
        return []
    if len(node) == 0:
        return [node.text or ""]
    addresses = [e.text or "" for e in node.iter(t("EmailAddress"))]
    return addresses or [child.text or "" for child in node if len(child) == 0]


def _typed(text: str) -> tuple[int, Any] | None:
    if _DATE.match(text):
        try:
            return 0, parse_ews_datetime(text)
        except ValueError:
            return None
    if _NUMBER.match(text):
        return 1, float(text)
    if text.lower() in ("true", "false"):
        return 2, text.lower() == "true"
    return None


def _coerced(left: str, right: str) -> tuple[Any, Any]:
    typed_left, typed_right = _typed(left), _typed(right)
    if typed_left and typed_right and typed_left[0] == typed_right[0]:
        return typed_left[1], typed_right[1]
    return left.casefold(), right.casefold()


# restriction ---------------------------------------------------------------------------------------
def matches(node: Element, candidate: Candidate) -> bool:
    """Whether ``candidate`` satisfies the search expression ``node``."""
    tag = local(node.tag)
    if tag == "And":
        return all(matches(child, candidate) for child in node)
    if tag == "Or":
        return any(matches(child, candidate) for child in node)
    if tag == "Not":
        return not matches(node[0], candidate)
    if tag == "Exists":
        return bool(path_values(candidate, node[0]))
    if tag in _COMPARISONS:
        return _compare(_COMPARISONS[tag], node, candidate)
    if tag == "Contains":
        return _contains(node, candidate)
    if tag == "Excludes":
        return _excludes(node, candidate)
    raise EwsError("ErrorInvalidRestriction", f"The fake EWS does not support the {tag} search expression.")


def _operand(node: Element, candidate: Candidate) -> list[str]:
    inner = node[0]
    if local(inner.tag) == "Constant":
        return [inner.get("Value", "")]
    return path_values(candidate, inner)


def _compare(compare: Callable[[Any, Any], bool], node: Element, candidate: Candidate) -> bool:
    left = path_values(candidate, node[0])
    if not left:
        return compare is operator.ne
    right = _operand(node[1], candidate)
    return any(compare(*_coerced(a, b)) for a in left for b in right)


def _contains(node: Element, candidate: Candidate) -> bool:
    constant = node.find(t("Constant"))
    needle = "" if constant is None else constant.get("Value", "")
    mode = node.get("ContainmentMode", "Substring")
    fold = node.get("ContainmentComparison", "Exact") != "Exact"
    if fold:
        needle = needle.casefold()
    for value in path_values(candidate, node[0]):
        text = value.casefold() if fold else value
        if _contained(mode, needle, text):
            return True
    return False


def _contained(mode: str, needle: str, text: str) -> bool:
    if mode == "FullString":
        return text == needle
    if mode == "Prefixed":
        return text.startswith(needle)
    if mode == "PrefixOnWords":
        return any(word.startswith(needle) for word in text.split())
    return needle in text


def _excludes(node: Element, candidate: Candidate) -> bool:
    bitmask = node.find(t("Bitmask"))
    mask = int(bitmask.get("Value", "0"), 0) if bitmask is not None else 0
    values = path_values(candidate, node[0])
    return any(_NUMBER.match(v) and int(float(v)) & mask == 0 for v in values)


# sorting -------------------------------------------------------------------------------------------
def _sort_key(values: list[str]) -> tuple[int, int, Any]:
    if not values:
        return 0, 0, ""
    typed = _typed(values[0])
    if typed is None:
        return 1, 3, values[0].casefold()
    return 1, typed[0], typed[1]


def sort_candidates(candidates: list[Candidate], order: Element | None) -> None:
    """Sort in place by a SortOrder element (first FieldOrder is the primary key)."""
    if order is None:
        return
    for field_order in reversed(list(order)):
        descending = field_order.get("Order", "Ascending") == "Descending"
        candidates.sort(key=functools.partial(_candidate_key, field_order[0]), reverse=descending)


def _candidate_key(path: Element, candidate: Candidate) -> tuple[int, int, Any]:
    return _sort_key(path_values(candidate, path))


# calendar view -------------------------------------------------------------------------------------
def in_window(data: Data, start: datetime, end: datetime) -> bool:
    """Whether a calendar item (or, for a series master, its series) overlaps ``[start, end)``."""
    if "start" not in data or "end" not in data:
        return False
    first_start, first_end = parse_graph_when(data["start"]), parse_graph_when(data["end"])
    recurrence = data.get("recurrence")
    if recurrence:
        first_end = _series_end(recurrence)
    return first_start < end and (first_end > start or first_start == first_end == start)


def _series_end(recurrence: dict[str, Any]) -> datetime:
    window = recurrence.get("range") or {}
    if window.get("type") == "endDate":
        return datetime.fromisoformat(window["endDate"]).replace(tzinfo=UTC) + timedelta(days=1)
    return datetime.max.replace(tzinfo=UTC)
