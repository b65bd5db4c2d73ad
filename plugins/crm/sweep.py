"""What the CRM stores of one sweep over many users share: the connection, the org, the listings.

Zoho lists modified and deleted records for the whole org, not per owner, so each user's read
lists every change in the org: without sharing, a sweep costs users x changes. Within a
sweep, the first incremental listing of a module since a moment is kept (up to :data:`KEEP`
records) and served to every later read whose cursor is at or after that moment; each read
still keeps only its user's records. Full listings (a first sync's) are never kept.
A read whose cursor is earlier than the kept listing's lists for itself, and its listing is
kept instead: users whose cursors differ (as after first syncs made at different moments) cost
a few listings in their first sweep, and agree after it. Serving a listing made a little
earlier is safe: a cursor is made from what its read saw, so whatever changed after the
listing is read by the next sweep.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from framework.contracts import OrgInfo
from plugins.crm.client import CrmClient, Page
from plugins.crm.mapping import Native, parse_time, read_fields

KEEP = 5_000  # records of one module's listing a sweep keeps; beyond it each read lists for itself
WAIT = 120.0  # seconds a read waits for another read fetching the same listing
Kind = Literal["modified", "deleted"]
_STAMP = {"modified": "Modified_Time", "deleted": "deleted_time"}


@dataclass
class _Kept:
    since: datetime
    records: list[tuple[datetime | None, Native]] | None  # None: too many to keep
    served_at: datetime | None = None
    complete: bool = True  # else the first pages only: the read that fetched them stopped there


class Listings:
    """Modified and deleted records of a module since a moment, through ``client``, keeping up
    to ``keep`` records a listing for later reads (0: nothing is kept)."""

    def __init__(self, client: CrmClient, keep: int = 0) -> None:
        self.client = client
        self.keep = keep
        self._kept: dict[tuple[Kind, str], _Kept] = {}
        self._fetching: dict[tuple[Kind, str], threading.Event] = {}  # listings being fetched now
        self._lock = threading.Lock()
        self.org: OrgInfo | None = None  # the org, asked once a sweep
        self.fields: dict[str, set[str]] = {}  # API names of each module's fields, asked once a sweep
        self.fields_lock = threading.Lock()  # held while they are asked: the other users wait

    def pages(self, kind: Kind, module: str, since: datetime | None) -> Iterator[Page]:
        """Pages of the listing, newest first as the CRM gives them. While another user's read
        is fetching the same listing, this one waits for it rather than fetch it again."""
        if not self.keep or since is None:  # a full listing is a first sync's: too big to keep
            return self._fetch(kind, module, since)
        key = (kind, module)
        while True:
            with self._lock:
                kept = self._kept.get(key)
                if kept is not None and kept.since <= since:
                    break
                fetching = self._fetching.get(key)
                if fetching is None:
                    self._fetching[key] = threading.Event()
            if fetching is None:
                return _started(self._list_and_keep(kind, module, since))
            if not fetching.wait(WAIT):
                return self._fetch(kind, module, since)
        if kept.records is None:
            return self._fetch(kind, module, since)
        # what If-Modified-Since would keep; exact, as cursors hold the CRM's whole-second times
        records = [native for moment, native in kept.records if moment is None or moment >= since]
        first = Page(records, not kept.complete, kept.served_at)
        if kept.complete:
            return iter([first])
        # a read going past the kept pages lists everything again (records seen twice are skipped)
        return itertools.chain([first], self._fetch(kind, module, since))

    def _list_and_keep(self, kind: Kind, module: str, since: datetime) -> Iterator[Page]:
        """The listing, page by page as it is fetched, then kept: whole, or as far as the read
        went (a read stops at the record its last read ended on)."""
        records: list[tuple[datetime | None, Native]] | None = []
        served_at, complete = None, False
        try:
            for page in self._fetch(kind, module, since):
                served_at = served_at or page.served_at
                if records is not None:
                    records += [(parse_time(native.get(_STAMP[kind])), native) for native in page.records]
                    if len(records) > self.keep:
                        records = None  # too many to keep: later reads list for themselves
                complete = not page.more
                yield page
        finally:
            with self._lock:
                self._kept[(kind, module)] = _Kept(since, records, served_at, complete)
                self._fetching.pop((kind, module)).set()

    def _fetch(self, kind: Kind, module: str, since: datetime | None) -> Iterator[Page]:
        if kind == "modified":
            return self.client.list_modified(module, read_fields(module), since)
        return self.client.deleted(module, since)


def _started(pages: Iterator[Page]) -> Iterator[Page]:
    """``pages`` with its first page already fetched: a listing that registered itself as
    being fetched always reaches the end that unregisters it, even if nobody reads it."""
    first = next(pages, None)
    return itertools.chain([first] if first is not None else [], pages)
