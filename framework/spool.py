"""Where one round of a (user, entity) job keeps what it read: a scratch SQLite file.

The engine reads both sides page by page into a :class:`Spool` and plans from it a chunk at
a time, so the memory a sync needs depends on the page and chunk sizes, not on the size of
the mailbox. Records are pickled as their type's number and their field values: the database
is written and read by this process only. It is SQLite's temporary database: held in SQLite's
page cache while small (a sweep's rounds never touch the disk), spilled to an unnamed file of
its own once larger, and gone when the round ends.
"""

from __future__ import annotations

import operator
import pickle
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, NamedTuple

from framework.contracts import Changes, Item, SideName
from framework.model import Record, field_names

NEW, UNPAIRED, DONE = 0, 1, 2  # an entry's planning state
_BATCH = 500  # ids per IN (...) list
# ``+side`` keeps SQLite off the (side, id) index, whose order it would have to sort by seq on
# every chunk: the rowid range over seq comes in order, and LIMIT stops it early.
_IN_SEQ_ORDER = "+side"
_FREE = f"state = {UNPAIRED} AND deleted = 0"
_FREE_X = f"x.state = {UNPAIRED} AND x.deleted = 0"


def _link_decides(item: str) -> str:
    """SQL: Exchange ``item``'s own link names no unpaired CRM item (else it belongs to that one)."""
    unpaired_crm = f"SELECT 1 FROM entry o WHERE o.side = 'crm' AND o.id = {item}.link AND o.state = {UNPAIRED}"
    return f"({item}.link = '' OR NOT EXISTS ({unpaired_crm}))"


_SCHEMA = """
CREATE TABLE entry (
    seq INTEGER PRIMARY KEY,
    side TEXT NOT NULL,
    id TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    link TEXT NOT NULL DEFAULT '',
    data BLOB,
    state INTEGER NOT NULL DEFAULT 0,
    UNIQUE (side, id)
);
CREATE INDEX entry_link ON entry (link) WHERE side = 'exchange' AND link != '';
CREATE TABLE natural_key (side TEXT NOT NULL, id TEXT NOT NULL, key TEXT NOT NULL);
CREATE INDEX natural_key_key ON natural_key (side, key);
CREATE INDEX natural_key_id ON natural_key (side, id);
"""


class Entry(NamedTuple):
    """One spooled listing: a changed item (``data`` holds its record) or a deletion."""

    seq: int
    id: str
    link: str
    deleted: bool
    data: bytes | None

    def item(self) -> Item:
        assert self.data is not None, "a deletion has no record"
        return Item(self.id, _load(self.data), self.link)


class Spool:
    """The changes both sides reported in one round, on disk, with each entry's planning state.

    Listing semantics follow :class:`~framework.contracts.Side`: an item listed again
    replaces its earlier listing, and an item wins over a deletion of the same id.
    ``match_keys`` gives the natural keys of records, indexed for first-sync matching.
    """

    def __init__(self, match_keys: Callable[[Record], Sequence[str]]) -> None:
        self.match_keys = match_keys
        self.db = sqlite3.connect("")  # a temporary database: see the module's docstring
        self.db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
        self.done = 0  # entries planned so far

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    # filling ------------------------------------------------------------------------------
    def add(self, side: SideName, items: Sequence[Item], deleted: Iterable[str] = ()) -> None:
        """Spool one page of a side's listing."""
        rows = [(side, i.id, i.link, _dump(i.record)) for i in items]
        relisted = self.listed(side, [i.id for i in items], deleted=False)  # their earlier keys go
        with self.db:
            self.db.executemany(
                "INSERT INTO entry (side, id, deleted, link, data) VALUES (?, ?, 0, ?, ?)"
                " ON CONFLICT (side, id) DO UPDATE SET deleted = 0, link = excluded.link, data = excluded.data",
                rows,
            )
            self.db.executemany(
                "INSERT INTO entry (side, id, deleted) VALUES (?, ?, 1) ON CONFLICT (side, id) DO NOTHING",
                [(side, item_id) for item_id in deleted],
            )
            if items:
                self._index_keys(side, items, relisted)

    def _index_keys(self, side: SideName, items: Sequence[Item], relisted: set[str]) -> None:
        if relisted:
            self.db.executemany("DELETE FROM natural_key WHERE side = ? AND id = ?", [(side, i) for i in relisted])
        keys = [(side, i.id, key) for i in items for key in self.match_keys(i.record)]
        self.db.executemany("INSERT INTO natural_key (side, id, key) VALUES (?, ?, ?)", keys)

    def clear(self, side: SideName) -> None:
        """Forget a side's listing (before reading it again)."""
        with self.db:
            self.db.execute("DELETE FROM entry WHERE side = ?", (side,))
            self.db.execute("DELETE FROM natural_key WHERE side = ?", (side,))

    # looking up ---------------------------------------------------------------------------
    def entries(self, side: SideName, ids: Iterable[str]) -> list[Entry]:
        """The entries of these ids that were listed (as items or deletions)."""
        found: list[Entry] = []
        wanted = list(ids)
        for start in range(0, len(wanted), _BATCH):
            part = wanted[start : start + _BATCH]
            found += self._select(f"side = ? AND id IN ({_marks(part)})", (side, *part))
        return found

    def listed(self, side: SideName, ids: Iterable[str], *, deleted: bool | None = None) -> set[str]:
        """Which of ``ids`` were listed (only as items, or only as deletions, if ``deleted`` says)."""
        found: set[str] = set()
        wanted = list(ids)
        kind = "" if deleted is None else f" AND deleted = {int(deleted)}"
        for start in range(0, len(wanted), _BATCH):
            part = wanted[start : start + _BATCH]
            query = f"SELECT id FROM entry WHERE side = ? AND id IN ({_marks(part)}){kind}"
            found.update(row[0] for row in self.db.execute(query, (side, *part)))
        return found

    def changes(self, side: SideName, ids: Iterable[str]) -> Changes:
        """The listed items and deletions among ``ids``, for the planner."""
        entries = self.entries(side, ids)
        return Changes([e.item() for e in entries if not e.deleted], [e.id for e in entries if e.deleted], None)

    def scan(
        self, side: SideName, size: int, *, state: int | None = None, deleted: bool | None = None, linked: bool = False
    ) -> Iterator[list[Entry]]:
        """Entries in listing order, ``size`` at a time; the filters are applied to each chunk
        as it is fetched, so entries marked meanwhile are seen in their new state."""
        where = f"{_IN_SEQ_ORDER} = ? AND seq > ?"
        if state is not None:
            where += f" AND state = {int(state)}"
        if deleted is not None:
            where += f" AND deleted = {int(deleted)}"
        if linked:
            where += " AND link != ''"
        last = 0
        while chunk := self._select(f"{where} ORDER BY seq LIMIT {int(size)}", (side, last)):
            yield chunk
            last = chunk[-1].seq

    def cross_linked(self, size: int) -> Iterator[tuple[list[Entry], list[Entry]]]:
        """Unpaired CRM items with the unpaired Exchange items cross-linked with them, ``size``
        CRM items at a time. An Exchange item whose own link names another unpaired CRM item
        is left to that item: its link decides."""
        last = 0
        while crm := self._select(
            f"{_IN_SEQ_ORDER} = 'crm' AND state = {UNPAIRED} AND deleted = 0 AND seq > ?"
            " AND (EXISTS (SELECT 1 FROM entry x"
            f" WHERE x.side = 'exchange' AND x.link != '' AND x.link = entry.id AND {_FREE_X})"
            f" OR EXISTS (SELECT 1 FROM entry x WHERE x.side = 'exchange' AND x.id = entry.link AND {_FREE_X}"
            f" AND {_link_decides('x')}))"
            f" ORDER BY seq LIMIT {int(size)}",
            (last,),
        ):
            last = crm[-1].seq
            ids = [e.id for e in crm]
            links = [e.link for e in crm if e.link]
            by_link = f"side = 'exchange' AND link != '' AND link IN ({_marks(ids)}) AND {_FREE}"
            by_id = f"side = 'exchange' AND id IN ({_marks(links)}) AND {_FREE} AND {_link_decides('entry')}"
            found = {e.seq: e for e in [*self._select(by_link, ids), *self._select(by_id, links)]}
            yield crm, [found[seq] for seq in sorted(found)]

    def sharing_a_key(self, size: int) -> Iterator[list[Entry]]:
        """Unpaired CRM items having a natural key of an unpaired Exchange item, ``size`` at a
        time in listing order: the only ones matching by natural key can pair."""
        last = 0
        while crm := self._select(
            f"{_IN_SEQ_ORDER} = 'crm' AND {_FREE} AND seq > ?"
            " AND EXISTS (SELECT 1 FROM natural_key c"
            " CROSS JOIN natural_key k ON k.side = 'exchange' AND k.key = c.key"
            " CROSS JOIN entry x ON x.side = 'exchange' AND x.id = k.id"
            f" WHERE c.side = 'crm' AND c.id = entry.id AND {_FREE_X})"
            f" ORDER BY seq LIMIT {int(size)}",
            (last,),
        ):
            last = crm[-1].seq
            yield crm

    def sharing_keys(self, keys: Sequence[str]) -> list[Entry]:
        """Unpaired Exchange items having any of these natural keys."""
        found: dict[int, Entry] = {}
        for start in range(0, len(keys), _BATCH):
            part = keys[start : start + _BATCH]
            rows = self.db.execute(
                "SELECT e.seq, e.id, e.link, e.deleted, e.data FROM natural_key k"
                " CROSS JOIN entry e ON e.side = 'exchange' AND e.id = k.id"  # CROSS: keys first, by their index
                f" WHERE k.side = 'exchange' AND k.key IN ({_marks(part)}) AND e.state = {UNPAIRED} AND e.deleted = 0",
                part,
            )
            for seq, item_id, link, deleted, data in rows:
                found[seq] = Entry(seq, item_id, link, bool(deleted), data)
        return [found[seq] for seq in sorted(found)]

    def count(self, *, state: int | None = None, deleted: bool | None = None) -> int:
        where = "1"
        if state is not None:
            where += f" AND state = {int(state)}"
        if deleted is not None:
            where += f" AND deleted = {int(deleted)}"
        return int(self.db.execute(f"SELECT count(*) FROM entry WHERE {where}").fetchone()[0])

    # planning state -----------------------------------------------------------------------
    def mark(self, side: SideName, ids: Iterable[str], state: int) -> None:
        with self.db:
            done = self.db.executemany(
                "UPDATE entry SET state = ? WHERE side = ? AND id = ? AND state != ?",
                [(state, side, i, state) for i in ids],
            )
        if state == DONE:
            self.done += max(done.rowcount, 0)

    def _select(self, where: str, params: Sequence[object]) -> list[Entry]:
        rows = self.db.execute(f"SELECT seq, id, link, deleted, data FROM entry WHERE {where}", tuple(params))
        return [Entry(seq, item_id, link, bool(deleted), data) for seq, item_id, link, deleted, data in rows]


def _dump(record: Record) -> bytes:
    number, values = _CODES.get(type(record)) or _code(type(record))
    return pickle.dumps((number, values(record)), pickle.HIGHEST_PROTOCOL)


def _load(data: bytes) -> Record:
    number, values = pickle.loads(data)
    record: Record = _TYPES[number](*values)
    return record


# Pickling a dataclass itself names its class and looks its fields up again for every record:
# three times the cost of a tuple of its values.
_TYPES: list[type] = []
_CODES: dict[type, tuple[int, Callable[[Any], tuple[Any, ...]]]] = {}


def _code(cls: type) -> tuple[int, Callable[[Any], tuple[Any, ...]]]:
    names = field_names(cls)
    values = operator.attrgetter(*names) if len(names) > 1 else lambda r: tuple(getattr(r, n) for n in names)
    _TYPES.append(cls)
    _CODES[cls] = (len(_TYPES) - 1, values)
    return _CODES[cls]


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values)) or "NULL"
