"""Caches that keep per-request work proportional to the items returned.

:class:`Renderer` caches the full EWS element of an item per (id, change key) and shapes it per
request (IdOnly, extended properties). :class:`Snapshots` caches a FindItem's filtered, sorted item
list per query until the folder changes, so paging through 10,000 items costs a slice per page.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from fakes.ews.convert import KIND_BY_FOLDER, render_id, render_item
from fakes.ews.extended import render_extended
from fakes.ews.restrict import Candidate
from fakes.ews.soap import el, local, t, text_of
from fakes.tenant import Item, Mailbox

_PROPERTY_PATHS = ("FieldURI", "IndexedFieldURI")


@dataclass(frozen=True)
class Shape:
    """A parsed ItemShape: whether only ids are wanted, and which extended properties."""

    id_only: bool
    extended: tuple[Element, ...]

    @classmethod
    def parse(cls, shape: Element | None) -> Shape:
        if shape is None:
            return cls(False, ())
        additional = shape.find(t("AdditionalProperties"))
        paths = list(additional) if additional is not None else []
        plain = text_of(shape.find(t("BaseShape")), "IdOnly") == "IdOnly"
        id_only = plain and not any(local(p.tag) in _PROPERTY_PATHS for p in paths)
        return cls(id_only, tuple(p for p in paths if local(p.tag) == "ExtendedFieldURI"))


class Renderer:
    """Renders items, caching full renderings per (id, change key)."""

    def __init__(self, limit: int = 100_000) -> None:
        self._cache: dict[tuple[str, str], Element] = {}
        self._limit = limit

    def full(self, box: Mailbox, item: Item) -> Element:
        """The full rendering of ``item`` (shared: callers must not modify it)."""
        key = (item.id, item.change_key)
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) >= self._limit:
                self._cache.clear()
            cached = self._cache[key] = render_item(KIND_BY_FOLDER[item.home], item, box.address)
        return cached

    def shaped(self, box: Mailbox, item: Item, shape: Shape) -> Element:
        """``item`` rendered for ``shape``, with the requested extended properties appended."""
        base = render_id(KIND_BY_FOLDER[item.home], item) if shape.id_only else self.full(box, item)
        if not shape.extended:
            return base
        node = el(base.tag, **base.attrib)
        node.extend(list(base))
        for uri in shape.extended:
            prop = render_extended(item.data, uri)
            if prop is not None:
                node.append(prop)
        return node

    def candidates(self, box: Mailbox, items: list[Item]) -> list[Candidate]:
        """``items`` paired with their (lazily made) full renderings, for restrictions and sorting."""
        render = functools.partial(self.full, box)
        return [Candidate(item, render) for item in items]


class Snapshots:
    """A small LRU cache of query results, each valid for one version of its folder."""

    def __init__(self, size: int = 32) -> None:
        self._entries: OrderedDict[Hashable, tuple[int, list[Candidate]]] = OrderedDict()
        self._size = size

    def get(self, key: Hashable, version: int, build: Callable[[], list[Candidate]]) -> list[Candidate]:
        """The cached result for ``key`` at folder ``version``, built when missing or stale."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] == version:
            self._entries.move_to_end(key)
            return entry[1]
        result = build()
        self._entries[key] = (version, result)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return result
