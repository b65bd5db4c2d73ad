"""SyncFolderItems over the tenant's change log.

The opaque sync state encodes a generation (bumped by ``EwsApi.invalidate_sync_states``), the
mailbox and folder, a *base* (the log number up to which the client has a complete picture) and a
*cursor* (how far the log has been read). While paging, the base stays put and the cursor moves;
the last page moves both. An item is reported at its latest log entry only, as ``Create`` when it
was created after the base, else as ``Update``; deletions of items the client cannot have seen are
left out.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from dataclasses import dataclass, replace

from fakes.ews.soap import EwsError
from fakes.tenant import Item, Mailbox, Tenant

_PREFIX = "exsync-ews-sync:v1"


@dataclass(frozen=True)
class SyncState:
    """The decoded sync state."""

    generation: int
    address: str
    folder: str
    base: int
    cursor: int

    def encode(self) -> str:
        raw = "|".join((_PREFIX, str(self.generation), self.address, self.folder, str(self.base), str(self.cursor)))
        return base64.b64encode(raw.encode()).decode()

    @classmethod
    def decode(cls, text: str, generation: int, address: str, folder: str) -> SyncState:
        """Parse ``text``; a foreign, malformed or old-generation state is ErrorInvalidSyncStateData."""
        state = cls._parse(text)
        if state is None or (state.generation, state.address, state.folder) != (generation, address, folder):
            raise EwsError("ErrorInvalidSyncStateData", "Synchronization state data is corrupt or otherwise invalid.")
        return state

    @classmethod
    def _parse(cls, text: str) -> SyncState | None:
        try:
            prefix, gen, owner, name, base, cursor = base64.b64decode(text, validate=True).decode().split("|")
            return cls(int(gen), owner, name, int(base), int(cursor)) if prefix == _PREFIX else None
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None


@dataclass
class Change:
    """One reported change: ``Create``/``Update`` with the item, or ``Delete`` with the item id."""

    kind: str
    item_id: str
    item: Item | None


@dataclass
class SyncPage:
    """The changes of one SyncFolderItems response and the state that follows them."""

    changes: list[Change]
    state: SyncState
    last: bool


class CreationIndex:
    """The change-log number that created each item, learnt incrementally from the tenant log."""

    def __init__(self) -> None:
        self._first: dict[tuple[str, str], dict[str, int]] = {}
        self._read: dict[tuple[str, str], int] = {}

    def first_seqs(self, box: Mailbox, folder: str) -> dict[str, int]:
        """Item id -> creating log number for ``folder`` (call with the tenant lock held)."""
        key = (box.user_id, folder)
        first = self._first.setdefault(key, {})
        log = box.log[folder]
        for change in log[self._read.get(key, 0) :]:
            first.setdefault(change.item_id, change.seq)
        self._read[key] = len(log)
        return first


def next_page(
    tenant: Tenant, index: CreationIndex, box: Mailbox, state: SyncState, limit: int, ignore: set[str]
) -> SyncPage:
    """Up to ``limit`` changes after ``state`` (call with the tenant lock held)."""
    folder = state.folder
    log = box.log.get(folder, [])
    first = index.first_seqs(box, folder) if folder in box.log else {}
    changes: list[Change] = []
    cursor = state.cursor
    for change in log[bisect.bisect_right(log, state.cursor, key=lambda c: c.seq) :]:
        if len(changes) >= limit:
            return SyncPage(changes, replace(state, cursor=cursor), last=False)
        cursor = change.seq
        if change.item_id in ignore:
            continue
        if change.deleted:
            if first[change.item_id] <= state.cursor:
                changes.append(Change("Delete", change.item_id, None))
            continue
        item = box.folders[folder].get(change.item_id)
        if item is not None and item.seq == change.seq:
            kind = "Create" if first[item.id] > state.base else "Update"
            changes.append(Change(kind, item.id, item))
    return SyncPage(changes, replace(state, base=tenant.seq, cursor=tenant.seq), last=True)
