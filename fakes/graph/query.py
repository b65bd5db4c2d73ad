"""The OData query options of a request and how a resource is shown through them.

``$select`` (``id`` and ``@odata.etag`` always kept), ``$filter`` (``eq ne gt ge lt le`` and
``startswith(name,'text')`` on top-level string, boolean and date fields, joined by ``and``),
``$orderby`` (``name [asc|desc]``, comma-separated), ``$count=true``, ``$expand`` of
``singleValueExtendedProperties($filter=id eq '...')`` or ``linkedResources`` (shown whatever
``$select`` says, as expanded properties are), and the ``Prefer`` header's
``outlook.timezone`` and ``outlook.body-content-type``.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fakes.graph.calendar import as_instant, instant, present_event
from fakes.graph.errors import GraphError
from fakes.graph.resources import raw_resource
from fakes.tenant import Item, html_to_text

_ALWAYS = frozenset({"id", "@odata.etag", "@odata.type", "singleValueExtendedProperties"})
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_CLAUSE = re.compile(r"(\w+)\s+(eq|ne|gt|ge|lt|le)\s+('(?:[^']|'')*'|\S+)", re.IGNORECASE)
_STARTSWITH = re.compile(r"startswith\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)", re.IGNORECASE)
_ORDER = re.compile(r"(\w+)(?:\s+(asc|desc))?", re.IGNORECASE)
_EXPAND = re.compile(r"singleValueExtendedProperties\(\$filter=(.+)\)", re.IGNORECASE)
_EXPAND_ID = re.compile(r"id\s+eq\s+'((?:[^']|'')*)'", re.IGNORECASE)


@dataclass(frozen=True)
class _Clause:
    name: str
    op: str
    value: str | bool | datetime

    def test(self, actual: Any) -> bool:
        if self.op == "startswith":
            return isinstance(actual, str) and actual.casefold().startswith(str(self.value).casefold())
        compare = _OPERATORS[self.op]
        if isinstance(self.value, datetime):
            moment = as_instant(actual)
            return moment is not None and compare(moment, self.value)
        if isinstance(self.value, bool):
            return isinstance(actual, bool) and compare(actual, self.value)
        return isinstance(actual, str) and compare(actual.casefold(), self.value.casefold())


@dataclass(frozen=True)
class Query:
    """The query options of a request: which items, which fields, which time zone."""

    options: dict[str, str]
    select: frozenset[str] | None
    ext_ids: frozenset[str] | None
    clauses: tuple[_Clause, ...]
    zone: str
    text_body: bool
    linked: bool = False  # $expand=linkedResources (To Do tasks)
    order: tuple[tuple[str, bool], ...] = ()  # $orderby: (name, descending)
    count: bool = False  # $count=true

    @classmethod
    def parse(cls, options: dict[str, str], prefs: dict[str, str]) -> Query:
        """From the query options and the ``Prefer`` header (outlook.timezone, outlook.body-content-type)."""
        select = options.get("$select")
        expand = options.get("$expand")
        text = options.get("$filter")
        linked = (expand or "").strip().lower() == "linkedresources"
        return cls(
            options,
            frozenset(n.strip().lower() for n in select.split(",") if n.strip()) if select else None,
            _parse_expand(expand) if expand and not linked else None,
            _parse_filter(text) if text else (),
            prefs.get("outlook.timezone", "UTC"),
            prefs.get("outlook.body-content-type", "").lower() == "text",
            linked,
            _parse_order(options.get("$orderby") or ""),
            _parse_count(options.get("$count")),
        )

    def matches(self, get: Callable[[str], Any]) -> bool:
        return all(clause.test(get(clause.name)) for clause in self.clauses)

    def ordered(self, rows: list[Any], get: Callable[[Any, str], Any]) -> list[Any]:
        """``rows`` in ``$orderby`` order (``get(row, name)`` reads a property; nulls first)."""
        for name, descending in reversed(self.order):
            rows = sorted(rows, key=functools.partial(_row_key, get, name), reverse=descending)
        return rows

    def render(self, item: Item) -> dict[str, Any]:
        return self.present(item.folder, raw_resource(item))

    def present(self, folder: str, resource: dict[str, Any]) -> dict[str, Any]:
        """``resource`` as Graph shows it: expanded properties, event times, body type, $select."""
        if "@removed" in resource:
            return resource
        res = dict(resource)
        stored = res.pop("singleValueExtendedProperties", None) or []
        res.pop("attachments", None)
        if not self.linked:
            res.pop("linkedResources", None)
        expanded = [p for p in stored if isinstance(p, dict) and ext_key(p.get("id")) in (self.ext_ids or ())]
        if expanded:
            res["singleValueExtendedProperties"] = expanded
        if folder == "calendar":
            present_event(res, self.zone)
        body = res.get("body")
        if self.text_body and isinstance(body, dict) and str(body.get("contentType")).lower() == "html":
            res["body"] = {"contentType": "text", "content": html_to_text(str(body.get("content") or ""))}
        if self.select is None:
            return res
        expanded_nav = {"linkedResources"} if self.linked else set()
        return {k: v for k, v in res.items() if k.lower() in self.select or k in _ALWAYS or k in expanded_nav}


def _parse_filter(text: str) -> tuple[_Clause, ...]:
    return tuple(_clause(part) for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE))


def _clause(text: str) -> _Clause:
    starts = _STARTSWITH.fullmatch(text.strip())
    if starts is not None:
        return _Clause(starts[1], "startswith", starts[2].replace("''", "'"))
    match = _CLAUSE.fullmatch(text.strip())
    if match is None:
        raise _bad_filter(text)
    name, op, literal = match.groups()
    return _Clause(name, op.lower(), _literal(literal, text))


def _literal(raw: str, text: str) -> str | bool | datetime:
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1].replace("''", "'")
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        return instant(raw)
    except ValueError:
        raise _bad_filter(text) from None


def _bad_filter(text: str) -> GraphError:
    return GraphError(400, "ErrorInvalidUrlQueryFilter", f"The fake Graph cannot evaluate the filter clause {text!r}.")


def _parse_expand(text: str) -> frozenset[str]:
    match = _EXPAND.fullmatch(text.strip())
    ids = [_EXPAND_ID.fullmatch(p.strip()) for p in re.split(r"\s+or\s+", match[1], flags=re.I)] if match else [None]
    if not all(ids):
        raise GraphError(
            400,
            "BadRequest",
            "The fake Graph supports only $expand=singleValueExtendedProperties($filter=id eq '...') "
            f"and $expand=linkedResources, not {text!r}.",
        )
    return frozenset(ext_key(m[1].replace("''", "'")) for m in ids if m)


def ext_key(prop_id: Any) -> str:
    return " ".join(str(prop_id).split()).lower()


def merge_ext(current: Iterable[dict[str, Any]], new: Any) -> list[dict[str, Any]]:
    """Extended properties of ``current`` updated by id with ``new`` (validated)."""
    valid = isinstance(new, list) and all(isinstance(p, dict) and isinstance(p.get("id"), str) for p in new)
    if not valid:
        raise GraphError(400, "BadRequest", "singleValueExtendedProperties must be a list of {id, value}.")
    merged = {ext_key(p.get("id")): p for p in current}
    merged.update((ext_key(p["id"]), {"id": p["id"], "value": p.get("value")}) for p in new)
    return list(merged.values())


def _parse_order(text: str) -> tuple[tuple[str, bool], ...]:
    order = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _ORDER.fullmatch(part)
        if match is None:
            raise GraphError(400, "BadRequest", f"Invalid $orderby expression: {part!r}.")
        order.append((match[1], (match[2] or "").lower() == "desc"))
    return tuple(order)


def _parse_count(value: str | None) -> bool:
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise GraphError(400, "BadRequest", f"Invalid value for $count: {value!r}; it is true or false.")
    return value.lower() == "true"


def _row_key(get: Callable[[Any, str], Any], name: str, row: Any) -> tuple[int, Any]:
    return _sort_key(get(row, name))


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, value)
    if isinstance(value, dict):  # a dateTimeTimeZone or an emailAddress sorts by its text
        return (2, str(value.get("dateTime") or value.get("address") or value.get("name") or "").casefold())
    moment = as_instant(value) if isinstance(value, str) and value[:1].isdigit() else None
    return (3, moment.isoformat()) if moment is not None else (2, str(value).casefold())
