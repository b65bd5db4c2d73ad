"""The org-wide listings of a sweep whose jobs run on many workers, read once for all of them.

:class:`Listings` shares a listing between the users of one process. When a sweep's jobs run
on Celery workers, each listing is fetched by the first job that needs it, under the sweep's
lock for that listing, and kept in the sweep's shared record (the state database); a job on
any worker whose cursor is at or after the kept listing's moment is served from it, as within
one process. Kept listings are whole (up to :data:`~plugins.crm.sweep.KEEP` records): a job
fetching one reads it to the end before the others are served.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from framework.executors.jobs import SweepShare
from plugins.crm.client import CrmClient, Page
from plugins.crm.mapping import parse_time
from plugins.crm.sweep import _STAMP, Kind, Listings, _Kept


class SharedListings(Listings):
    """:class:`Listings` whose kept listings are shared through ``share`` by every worker."""

    def __init__(self, client: CrmClient, share: SweepShare, keep: int) -> None:
        super().__init__(client, keep)
        self.share = share

    def pages(self, kind: Kind, module: str, since: datetime | None) -> Iterator[Page]:
        if self.keep and since is not None:
            self._load_shared(kind, module, since)
        return super().pages(kind, module, since)

    def _load_shared(self, kind: Kind, module: str, since: datetime) -> None:
        """Make sure this process keeps a listing that serves ``since``, if any job of the sweep
        made one or this job can make one."""
        key = (kind, module)
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and kept.since <= since:
            return
        name = f"crm/{kind}/{module}"
        with self.share.lock(name):
            kept = _decode(self.share.get(name))
            if kept is None or kept.since > since:
                kept = self._list_whole(kind, module, since)
                self.share.put(name, _encode(kept))
        with self._lock:
            self._kept[key] = kept

    def _list_whole(self, kind: Kind, module: str, since: datetime) -> _Kept:
        records: list[tuple[datetime | None, Any]] = []
        served_at = None
        for page in self._fetch(kind, module, since):
            served_at = served_at or page.served_at
            records += [(parse_time(native.get(_STAMP[kind])), native) for native in page.records]
            if len(records) > self.keep:
                return _Kept(since, None, served_at)  # too many to keep: each job lists for itself
        return _Kept(since, records, served_at)


def _encode(kept: _Kept) -> dict[str, Any]:
    return {
        "since": kept.since.isoformat(),
        "records": None
        if kept.records is None
        else [[moment.isoformat() if moment else None, native] for moment, native in kept.records],
        "served_at": kept.served_at.isoformat() if kept.served_at else None,
    }


def _decode(data: dict[str, Any] | None) -> _Kept | None:
    if data is None:
        return None
    records = data["records"]
    return _Kept(
        datetime.fromisoformat(data["since"]),
        None if records is None else [(_moment(m), native) for m, native in records],
        _moment(data["served_at"]),
    )


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
