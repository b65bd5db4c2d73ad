"""The Microsoft 365 / Exchange tenant that the fake Graph and the fake EWS both serve.

One :class:`Tenant` holds the users and their mailboxes. A mailbox has folders
(``contacts``, ``calendar``, ``tasks``, ``inbox``, ``sentitems``, and ``deleteditems`` and
``recoverableitemsdeletions`` for what was deleted but can still be recovered) of :class:`Item`. An item's
``data`` is the Graph resource shape (contact, event, todoTask, message) without ``id`` and
``changeKey``: Graph returns it almost as is, EWS converts it to and from SOAP elements.
Every create, update and delete gets the next number of one monotonic change log, which
drives Graph delta tokens and EWS sync states alike.
"""

from __future__ import annotations

import bisect
import copy
import html
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

FOLDERS = ("contacts", "calendar", "tasks", "inbox", "sentitems", "deleteditems", "recoverableitemsdeletions")


class TenantError(Exception):
    """A rule of the service was broken; ``code`` is the EWS/Graph style error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Item:
    """One item in a mailbox folder; ``origin`` is the folder it was made in when it was moved since."""

    id: str
    folder: str
    data: dict[str, Any]
    change_key: str
    created: datetime
    modified: datetime
    seq: int
    origin: str = ""

    @property
    def home(self) -> str:
        """The folder whose kind of item this is (``contacts`` for a contact in Deleted Items)."""
        return self.origin or self.folder

    def resource(self) -> dict[str, Any]:
        """The Graph representation: ``data`` (without the private keys, ``_``-prefixed, other APIs keep
        there) plus id, changeKey and timestamps."""
        out = {key: copy.deepcopy(value) for key, value in self.data.items() if not key.startswith("_")}
        out["id"] = self.id
        out["changeKey"] = self.change_key
        out["createdDateTime"] = _iso(self.created)
        out["lastModifiedDateTime"] = _iso(self.modified)
        return out


@dataclass
class _Change:
    seq: int
    item_id: str
    deleted: bool
    gone: Item | None = None  # the item as it was when deleted


@dataclass
class Mailbox:
    """A user and their mailbox."""

    user_id: str
    address: str
    display_name: str
    password: str
    can_impersonate: bool = False
    full_access: set[str] = field(default_factory=set)  # delegates' addresses (Add-MailboxPermission FullAccess)
    folders: dict[str, dict[str, Item]] = field(default_factory=lambda: {f: {} for f in FOLDERS})
    log: dict[str, list[_Change]] = field(default_factory=lambda: {f: [] for f in FOLDERS})


@dataclass
class Changes:
    """What changed in one folder after a change-log number."""

    changed: list[Item]
    deleted: list[str]
    seq: int
    gone: dict[str, Item] = field(default_factory=dict)  # deleted id -> the item as it was


class Tenant:
    """Users, mailboxes and the change log of one organisation. Thread-safe."""

    def __init__(self, tenant_id: str = "contoso", domain: str = "contoso.example") -> None:
        self.tenant_id = tenant_id
        self.domain = domain
        self.lock = threading.RLock()
        self._by_address: dict[str, Mailbox] = {}
        self._by_id: dict[str, Mailbox] = {}
        self.seq = 0

    # users -------------------------------------------------------------------------------
    def add_user(
        self, address: str, display_name: str, password: str = "", *, can_impersonate: bool = False
    ) -> Mailbox:
        with self.lock:
            box = Mailbox(str(uuid.uuid4()), address.lower(), display_name, password, can_impersonate)
            self._by_address[box.address] = box
            self._by_id[box.user_id] = box
            return box

    def grant_full_access(self, owner: str, delegate: str) -> None:
        """Give ``delegate`` FullAccess to the mailbox of ``owner`` (open it, read and change its items)."""
        with self.lock:
            self.mailbox(owner).full_access.add(self.mailbox(delegate).address)

    def users(self) -> list[Mailbox]:
        with self.lock:
            return list(self._by_address.values())

    def mailbox(self, key: str) -> Mailbox:
        """A mailbox by address (any case) or user id."""
        with self.lock:
            box = self._by_address.get(key.lower()) or self._by_id.get(key)
        if box is None:
            raise TenantError("ErrorNonExistentMailbox", f"No mailbox for {key!r}")
        return box

    # items -------------------------------------------------------------------------------
    def items(self, box: Mailbox, folder: str) -> list[Item]:
        """Every item of a folder, oldest first."""
        with self.lock:
            return sorted(box.folders[folder].values(), key=lambda i: i.seq)

    def get(self, box: Mailbox, folder: str, item_id: str) -> Item:
        with self.lock:
            item = box.folders[folder].get(item_id)
        if item is None:
            raise TenantError("ErrorItemNotFound", f"The specified object {item_id!r} was not found in the store.")
        return item

    def holds(self, box: Mailbox, item_id: str) -> bool:
        """Whether ``box`` has an item ``item_id`` in any folder."""
        with self.lock:
            return any(item_id in box.folders[folder] for folder in FOLDERS)

    def find(self, box: Mailbox, item_id: str) -> Item:
        """An item by id in whatever folder it is."""
        with self.lock:
            for folder in FOLDERS:
                if item_id in box.folders[folder]:
                    return box.folders[folder][item_id]
        raise TenantError("ErrorItemNotFound", f"The specified object {item_id!r} was not found in the store.")

    def create(self, box: Mailbox, folder: str, data: dict[str, Any], when: datetime | None = None) -> Item:
        with self.lock:
            seq = self._next_seq()
            now = when or datetime.now(UTC)
            item = Item(_new_id(), folder, copy.deepcopy(data), _change_key(seq), now, now, seq)
            box.folders[folder][item.id] = item
            box.log[folder].append(_Change(seq, item.id, False))
            return item

    def update(self, box: Mailbox, folder: str, item_id: str, patch: dict[str, Any]) -> Item:
        """Merge ``patch`` into the item's data (a key set to None is removed)."""
        with self.lock:
            item = self.get(box, folder, item_id)
            for key, value in patch.items():
                if value is None:
                    item.data.pop(key, None)
                else:
                    item.data[key] = copy.deepcopy(value)
            item.seq = self._next_seq()
            item.change_key = _change_key(item.seq)
            item.modified = datetime.now(UTC)
            box.log[folder].append(_Change(item.seq, item.id, False))
            return item

    def delete(self, box: Mailbox, folder: str, item_id: str) -> None:
        with self.lock:
            item = self.get(box, folder, item_id)
            del box.folders[folder][item_id]
            box.log[folder].append(_Change(self._next_seq(), item_id, True, item))

    def move(self, box: Mailbox, folder: str, item_id: str, target: str) -> Item:
        """Move an item to folder ``target``: it leaves ``folder`` (a deletion there) and gets a new id."""
        with self.lock:
            item = self.get(box, folder, item_id)
            del box.folders[folder][item_id]
            box.log[folder].append(_Change(self._next_seq(), item_id, True))
            seq = self._next_seq()
            moved = Item(_new_id(), target, item.data, _change_key(seq), item.created, datetime.now(UTC), seq)
            moved.origin = "" if target == item.home else item.home
            box.folders[target][moved.id] = moved
            box.log[target].append(_Change(seq, moved.id, False))
            return moved

    def changes(self, box: Mailbox, folder: str, since: int) -> Changes:
        """Items created or updated, and ids deleted (with what they were), after change-log number ``since``.

        An item created and deleted within the range is reported as deleted only.
        """
        with self.lock:
            log = box.log[folder]
            start = bisect.bisect_right(log, since, key=lambda c: c.seq)
            last: dict[str, _Change] = {}
            for change in log[start:]:
                last[change.item_id] = change
            changed = [box.folders[folder][c.item_id] for c in last.values() if not c.deleted]
            deleted = [c.item_id for c in last.values() if c.deleted]
            gone = {c.item_id: c.gone for c in last.values() if c.deleted and c.gone is not None}
            changed.sort(key=lambda i: i.seq)
            return Changes(changed, deleted, self.seq, gone)

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq


def _new_id() -> str:
    return "AAMk" + uuid.uuid4().hex


def _change_key(seq: int) -> str:
    return f"CQAAAB{seq:08d}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def html_to_text(markup: str) -> str:
    """Roughly what Exchange makes of an HTML body when text is asked for (Graph's
    ``Prefer: outlook.body-content-type="text"``, EWS's ``TextBody``): the same text both ways."""
    text = re.sub(r"<(br|/p|/div|/li|/tr|/h\d)\b[^>]*>", "\n", markup, flags=re.IGNORECASE)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()
