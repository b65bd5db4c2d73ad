"""The EWS store: one exchangelib Account, and a side per entity.

Reading uses SyncFolderItems (the folder's sync state is the cursor, 512 changes per call, the
most EWS allows), so a run costs what changed, not what the mailbox holds. Writing sends one
CreateItem, UpdateItem or DeleteItem call per batch of up to 100 items; an item the server
refuses gets its own error result while the rest of the batch goes through. Deletions move items
to Deleted Items (DeleteType MoveToDeletedItems), where the user can still restore them.

A recurring series is one item, its master. Its cancelled occurrences are the master's
DeletedOccurrences; its exceptions are its ModifiedOccurrences, whose own subject, location and
body are read with one GetItem for all the series of a page. Writing a series writes its
exceptions and cancellations to its occurrences afterwards (:mod:`plugins.ews.occurrences`): one
DeleteItem and one UpdateItem for a whole batch, and for updated series one GetItem of the
masters (and one of their exceptions) beforehand, to compare with what Exchange holds.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, ClassVar, TypeVar

from exchangelib import Account, CalendarItem, ItemId, Mailbox
from exchangelib import Contact as NativeContact
from exchangelib import Message as NativeMessage
from exchangelib import Task as NativeTask
from exchangelib import errors as ews_errors
from exchangelib.folders import Calendar, Contacts, DistinguishedFolderId, Inbox, Root, SentItems, Tasks
from exchangelib.items import ALL_OCCURRENCES, ALWAYS_OVERWRITE, MOVE_TO_DELETED_ITEMS, SAVE_ONLY, SEND_TO_NONE
from exchangelib.services import CreateItem, DeleteItem, UpdateItem

from framework.contracts import Changes, Create, Delete, Item, Side, Store, Update, Window, WriteOp, WriteResult
from framework.errors import AuthenticationFailed, ConfigurationError, RecordRejected, SyncError, SyncStateLost
from framework.model import Event, Record
from plugins.ews import mapping
from plugins.ews.occurrences import OccurrenceWriter

T = TypeVar("T")
Translate = Callable[[Exception], SyncError]
Adjust = Callable[[str, Record, Any], None]

BATCH = 100
MAX_CHANGES = 512  # the most SyncFolderItems returns per call
MAIL_FOLDERS = {"inbox": Inbox, "sentitems": SentItems}  # canonical folder -> exchangelib folder class
ID_FIELDS = ("id", "changekey")
EXCEPTION_FIELDS = (
    "subject",
    "start",
    "end",
    "is_all_day",
    "_start_timezone",  # an all-day occurrence's dates are those of its own zone
    "_end_timezone",
    "location",
    "body",
    "text_body",
)


def distinguished(account: Account, folder_cls: Any) -> Any:
    """``account``'s distinguished folder of ``folder_cls``, addressed by name without a GetFolder call.

    exchangelib's ``account.contacts`` looks up the root and then the folder (two calls a
    folder and run); EWS accepts a DistinguishedFolderId wherever a folder id goes.
    """
    mailbox = Mailbox(email_address=account.primary_smtp_address)
    root = Root(
        account=account, _distinguished_id=DistinguishedFolderId(id=Root.DISTINGUISHED_FOLDER_ID, mailbox=mailbox)
    )
    return folder_cls(
        root=root, _distinguished_id=DistinguishedFolderId(id=folder_cls.DISTINGUISHED_FOLDER_ID, mailbox=mailbox)
    )


_AUTH_ERRORS = (
    ews_errors.UnauthorizedError,
    ews_errors.ErrorImpersonateUserDenied,
    ews_errors.ErrorImpersonationDenied,
    ews_errors.ErrorNonExistentMailbox,
    ews_errors.ErrorAccessDenied,
)


class _CreateItem(CreateItem):
    """CreateItem answering every refused item with its own error instead of failing the batch."""

    ERRORS_TO_CATCH_IN_RESPONSE = (ews_errors.ResponseMessageError,)


class _UpdateItem(UpdateItem):
    """UpdateItem answering every refused item with its own error instead of failing the batch."""

    ERRORS_TO_CATCH_IN_RESPONSE = (ews_errors.ResponseMessageError,)


class _DeleteItem(DeleteItem):
    """DeleteItem answering every refused item with its own error instead of failing the batch."""

    ERRORS_TO_CATCH_IN_RESPONSE = (ews_errors.ResponseMessageError,)


class EwsStore(Store):
    """An open EWS connection to one mailbox; ``close`` returns exchangelib's connections."""

    entities: ClassVar[frozenset[str]] = frozenset({"contacts", "tasks", "events", "mails"})

    def __init__(
        self, account: Account, *, translate: Translate, adjust: Adjust, release: Callable[[Any], None]
    ) -> None:
        self.account = account
        self.translate = translate
        self.adjust = adjust
        self._release = release
        self._sides: dict[str, Side] = {}

    def side(self, entity: str) -> Side:
        if entity not in self.entities:
            raise ConfigurationError(f"The EWS store does not carry {entity!r}.")
        if entity not in self._sides:
            self._sides[entity] = MailSide(self) if entity == "mails" else FolderSide(self, entity)
        return self._sides[entity]

    def guard(self, call: Callable[[], T]) -> T:
        """Run ``call``, turning exchangelib's failures into the engine's errors."""
        try:
            return call()
        except ews_errors.EWSError as exc:
            raise self.translate(exc) from exc

    def guard_pages(self, pages: Iterator[T]) -> Iterator[T]:
        """Iterate ``pages``, turning exchangelib's failures into the engine's errors."""
        try:
            yield from pages
        except ews_errors.EWSError as exc:
            raise self.translate(exc) from exc

    def close(self) -> None:
        self._release(self.account.protocol.config)


def _cannot_hold(exc: Exception) -> WriteResult:
    return WriteResult(error=RecordRejected(f"Exchange cannot hold this record: {exc}"))


def _sync(folder: Any, cursor: str | None, *, ids_only: bool = False) -> Iterator[list[tuple[str, Any]]]:
    """The changes of ``folder`` since ``cursor`` (None: every item), a SyncFolderItems page at
    a time (``ids_only``: ids and ChangeKeys, not contents); once they are all read, the new
    state is on the folder."""
    folder.item_sync_state = None  # exchangelib falls back to the folder's last state when cursor is None
    page: list[tuple[str, Any]] = []
    fields = ID_FIELDS if ids_only else None
    for change in folder.sync_items(sync_state=cursor, only_fields=fields, max_changes_returned=MAX_CHANGES):
        if isinstance(change, Exception):
            raise change
        page.append(change)
        if len(page) == MAX_CHANGES:
            yield page
            page = []
    yield page


class FolderSide(Side):
    """Contacts, tasks or the calendar of one mailbox."""

    batch_size = BATCH
    read_back = True
    FOLDERS: ClassVar[dict[str, Any]] = {"contacts": Contacts, "tasks": Tasks, "events": Calendar}
    NATIVE: ClassVar[dict[str, type]] = {"contacts": NativeContact, "tasks": NativeTask, "events": CalendarItem}

    def __init__(self, store: EwsStore, entity: str) -> None:
        self.store = store
        self.entity = entity
        self.to_native, self.from_native, self.fields = mapping.MAPPERS[entity]
        self.native_cls: Any = self.NATIVE[entity]
        self._echoes: dict[str, str] = {}  # id -> ChangeKey of items written since the last read
        # the iCalendar UID given to each event created without one, until its echo is asked
        self._uids: dict[Record, list[str]] = {}
        self._all_day_zones: dict[str, Any] = {}  # all-day series about to be updated -> their zone

    @property
    def account(self) -> Account:
        return self.store.account

    def folder(self) -> Any:
        return distinguished(self.account, self.FOLDERS[self.entity])

    # reading -----------------------------------------------------------------------------------
    def pages(self, cursor: str | None, window: Window) -> Iterator[Changes]:
        return self.store.guard_pages(self._pages(cursor, window))

    def _pages(self, cursor: str | None, window: Window) -> Iterator[Changes]:
        """With items written since the last read, the changes are listed by id and ChangeKey
        first, and only those that are not our own writes, unchanged, are fetched."""
        folder = self.folder()
        echoes, self._echoes = self._echoes, {}
        for page in _sync(folder, cursor, ids_only=bool(cursor and echoes)):
            items: list[Item] = []
            changed = [native for kind, native in page if kind in ("create", "update")]
            if cursor and echoes:
                changed = self._fetch(folder, [n for n in changed if echoes.get(n.id) != n.changekey])
            natives = [native for native in changed if isinstance(native, self.native_cls)]
            for native, record in zip(natives, self._records(natives), strict=True):
                if self._in_window(record, window):
                    items.append(Item(native.id, record, mapping.read_link(native)))
            deleted = [native.id for kind, native in page if kind == "delete"]
            yield Changes(items, deleted, None, full=cursor is None)
        yield Changes([], [], folder.item_sync_state, full=cursor is None)

    def _records(self, natives: list[Any]) -> list[Record]:
        """The records of ``natives``; a series' exceptions are read with one GetItem for all the
        modified occurrences of the page (Exchange lists only their times on the master)."""
        if self.entity != "events":
            return [self.from_native(native) for native in natives]
        changed = self._exception_items([o.id for n in natives for o in n.modified_occurrences or ()])
        return [mapping.event_from_native(native, changed) for native in natives]

    def _exception_items(self, ids: list[str]) -> dict[str, Any]:
        """The items of modified occurrences by id, with the fields an exception carries."""
        if not ids:
            return {}
        fields = [f for f in EXCEPTION_FIELDS if self._supported(f)]
        fetched = self.account.fetch(ids=[ItemId(id=i) for i in ids], folder=self.folder(), only_fields=fields)
        return {n.id: n for n in fetched if isinstance(n, CalendarItem)}

    def _supported(self, field: str) -> bool:
        return bool(CalendarItem.get_field_by_fieldname(field).supports_version(self.account.version))

    def _fetch(self, folder: Any, listed: list[Any]) -> list[Any]:
        """The full items of ``listed`` (GetItem); those deleted meanwhile are left out."""
        if not listed:
            return []
        fetched = self.account.fetch(ids=[ItemId(id=n.id) for n in listed], folder=folder)
        return [n for n in fetched if not isinstance(n, Exception)]

    def _in_window(self, record: Record, window: Window) -> bool:
        """Calendar items that ended before the window are skipped, unless they recur (B24)."""
        if not isinstance(record, Event) or record.recurrence:
            return True
        return window.contains(record.end or record.start)

    def echo(self, record: Record) -> Record:
        try:
            back = mapping.event_echo(record) if isinstance(record, Event) else self.from_native(self.to_native(record))
        except ValueError:
            return record
        uids = self._uids.get(record)
        if uids and isinstance(back, Event):
            back = replace(back, ical_uid=uids.pop(0))
            if not uids:
                del self._uids[record]
        return back

    # writing -----------------------------------------------------------------------------------
    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(ops)
        creates = [(i, op) for i, op in enumerate(ops) if isinstance(op, Create)]
        updates = [(i, op) for i, op in enumerate(ops) if isinstance(op, Update)]
        deletes = [(i, op) for i, op in enumerate(ops) if isinstance(op, Delete)]
        self._all_day_zones = {}
        series_before = self._series_before(updates) if self.entity == "events" else {}
        self._send(results, self._natives(creates, results), self._create)
        self._send(results, self._natives(updates, results), self._update)
        self._send(results, [(i, ItemId(id=op.id)) for i, op in deletes], self._delete)
        done = [r if r is not None else WriteResult(error=RecordRejected("not written")) for r in results]
        if self.entity == "events":
            OccurrenceWriter(self, series_before).write(ops, done)
        return done

    def _series_before(self, updates: list[tuple[int, Any]]) -> dict[int, Event]:
        """What Exchange holds now of each series about to be updated, by op index: one GetItem
        for the masters, one for their modified occurrences. A series that cannot be read is
        left out (its update then fails or finds it gone)."""
        wanted = [(i, op.id) for i, op in updates if isinstance(op.record, Event) and op.record.recurrence]
        if not wanted:
            return {}
        ids = [ItemId(id=item_id) for _, item_id in wanted]
        found = self.store.guard(lambda: list(self.account.fetch(ids=ids, folder=self.folder())))
        masters = {n.id: n for n in found if isinstance(n, CalendarItem)}
        self._all_day_zones = {i: n._start_timezone for i, n in masters.items() if n.is_all_day and n._start_timezone}
        listed = [o.id for n in masters.values() for o in n.modified_occurrences or ()]
        changed = self.store.guard(lambda: self._exception_items(listed))
        return {
            index: mapping.event_from_native(masters[item_id], changed)
            for index, item_id in wanted
            if item_id in masters
        }

    def _natives(self, ops: list[tuple[int, Any]], results: list[WriteResult | None]) -> list[tuple[int, Any]]:
        """Each op's exchangelib item, checked locally; a record Exchange cannot hold is rejected here."""
        natives = []
        for index, op in ops:
            try:
                native = self._native(op)
            except (ValueError, TypeError) as exc:
                results[index] = _cannot_hold(exc)
                continue
            natives.append((index, native))
        return natives

    def _native(self, op: Create | Update) -> Any:
        native = self.to_native(op.record)
        native.account = self.account
        if isinstance(op, Create) and isinstance(native, CalendarItem) and not native.uid:
            # CreateItem answers with the id alone: an event is given its UID here, so its echo is
            # known (Exchange would make one up, to be read back, and the run would write it back)
            native.uid = str(uuid.uuid4()).upper()
            self._uids.setdefault(op.record, []).append(native.uid)
        setattr(native, mapping.LINK_FIELD, op.link or None)
        if isinstance(op, Update):
            native._id = ItemId(id=op.id)
            self.keep_all_day_zone(op.id, native)
        self.store.adjust(self.entity, op.record, native)
        if isinstance(op, Update):
            _UpdateItem(account=self.account)._change_elem(target=native, fieldnames=self._update_fields())
        return native  # a new item is checked when its batch is serialised (see _send)

    def _held(self, batch: list[tuple[int, Any]], results: list[WriteResult | None]) -> list[tuple[int, Any]]:
        """The items of ``batch`` Exchange can hold; the others are rejected, record by record."""
        held = []
        for index, native in batch:
            try:
                native.clean(version=self.account.version)
            except (ValueError, TypeError) as exc:
                results[index] = _cannot_hold(exc)
                continue
            held.append((index, native))
        return held

    def _update_fields(self) -> list[str]:
        return [*self.fields, mapping.LINK_FIELD]

    def _send(
        self, results: list[WriteResult | None], batch: list[tuple[int, Any]], call: Callable[[list[Any]], list[Any]]
    ) -> None:
        """One EWS call for the batch; each answer becomes that op's result."""
        try:
            sent, answers = self._call(batch, results, call)
        except AuthenticationFailed:
            raise
        except SyncError as exc:
            for index, _ in batch:
                results[index] = results[index] or WriteResult(error=exc)
            return
        for (index, native), answer in zip(sent, answers, strict=True):
            results[index] = self._result(native, answer)

    def _call(
        self, batch: list[tuple[int, Any]], results: list[WriteResult | None], call: Callable[[list[Any]], list[Any]]
    ) -> tuple[list[tuple[int, Any]], list[Any]]:
        """The items sent and their answers. exchangelib checks each item as it builds the request;
        when one fails nothing was sent, so the items Exchange cannot hold are rejected and the
        rest sent again (checking every item beforehand would check each twice)."""
        if not batch:
            return [], []
        try:
            return batch, self.store.guard(lambda: call([native for _, native in batch]))
        except (ValueError, TypeError):
            held = self._held(batch, results)
            if len(held) == len(batch):  # not an item's check: nothing to reject
                raise
            return held, self.store.guard(lambda: call([native for _, native in held])) if held else []

    def _result(self, native: Any, answer: Any) -> WriteResult:
        if isinstance(answer, ews_errors.ErrorItemNotFound) and isinstance(native, ItemId):
            return WriteResult(id=native.id)  # already gone: the delete is done
        if isinstance(answer, _AUTH_ERRORS):
            raise self.store.translate(answer)
        if isinstance(answer, ews_errors.ErrorServerBusy):
            return WriteResult(error=self.store.translate(answer))
        if isinstance(answer, Exception):
            return WriteResult(error=RecordRejected(f"Exchange refused the item: {type(answer).__name__}: {answer}"))
        if isinstance(native, ItemId):
            return WriteResult(id=native.id)
        item_id, change_key = answer if isinstance(answer, tuple) else (answer.id, answer.changekey)
        self._echoes[item_id] = change_key
        return WriteResult(id=item_id)

    def _create(self, natives: list[Any]) -> list[Any]:
        service = _CreateItem(account=self.account, chunk_size=BATCH)
        return list(
            service.call(
                items=natives,
                folder=self.folder(),
                message_disposition=SAVE_ONLY,
                send_meeting_invitations=SEND_TO_NONE,
            )
        )

    def _update(self, natives: list[Any], fields: Any = None) -> list[Any]:
        fields = fields or self._update_fields()
        service = _UpdateItem(account=self.account, chunk_size=BATCH)
        return list(
            service.call(
                items=[(native, fields) for native in natives],
                conflict_resolution=ALWAYS_OVERWRITE,
                message_disposition=SAVE_ONLY,
                send_meeting_invitations_or_cancellations=SEND_TO_NONE,
                suppress_read_receipts=True,
            )
        )

    # a series' occurrences (see plugins.ews.occurrences) -------------------------------------------
    def keep_all_day_zone(self, master_id: str, native: Any) -> None:
        """Write an all-day series (or its occurrence) in the zone Exchange holds it in: its dates
        are midnights there, and a series moved to other midnights would lose its exceptions."""
        zone = self._all_day_zones.get(master_id)
        if zone is not None and isinstance(native, CalendarItem) and native.is_all_day:
            native._start_timezone = native._end_timezone = zone

    def forget_echo(self, item_id: str) -> None:
        """Read ``item_id`` again at the next read: what Exchange made of our write is not known."""
        self._echoes.pop(item_id, None)

    def cancel_occurrences(self, refs: list[Any]) -> list[Any]:
        """Delete the occurrences ``refs`` (OccurrenceItemIds) in one call; an answer per occurrence."""
        return self._occurrence_call(lambda: self._delete(refs), len(refs))

    def save_occurrences(self, natives: list[Any]) -> list[Any]:
        """Save start, end, subject, location and body on each occurrence in one call."""
        return self._occurrence_call(lambda: self._update(natives, mapping.OCCURRENCE_FIELDS), len(natives))

    def _occurrence_call(self, call: Callable[[], list[Any]], count: int) -> list[Any]:
        try:
            return self.store.guard(call)
        except AuthenticationFailed:
            raise
        except (SyncError, ValueError, TypeError) as exc:
            return [exc] * count

    def _delete(self, ids: list[Any]) -> list[Any]:
        """Deletions go to Deleted Items, where the user can still restore them (as Outlook deletes)."""
        service = _DeleteItem(account=self.account, chunk_size=BATCH)
        return list(
            service.call(
                items=ids,
                delete_type=MOVE_TO_DELETED_ITEMS,
                send_meeting_cancellations=SEND_TO_NONE,
                affected_task_occurrences=ALL_OCCURRENCES,
                suppress_read_receipts=True,
            )
        )


class MailSide(Side):
    """Inbox and sent items, read only; the cursor is the JSON of both folders' sync states."""

    batch_size = BATCH
    read_back = True

    def __init__(self, store: EwsStore) -> None:
        self.store = store

    def pages(self, cursor: str | None, window: Window) -> Iterator[Changes]:
        states = self._states(cursor)
        return self.store.guard_pages(self._pages(states, window))

    @staticmethod
    def _states(cursor: str | None) -> dict[str, str | None]:
        if cursor is None:
            return dict.fromkeys(MAIL_FOLDERS)
        try:
            states = json.loads(cursor)
            return {name: states[name] for name in MAIL_FOLDERS}
        except (ValueError, KeyError, TypeError):
            raise SyncStateLost("The stored mail cursor is not readable.") from None

    def _pages(self, states: dict[str, str | None], window: Window) -> Iterator[Changes]:
        new_states: dict[str, str | None] = {}
        full = all(state is None for state in states.values())
        for name, state in states.items():
            folder = distinguished(self.store.account, MAIL_FOLDERS[name])
            for page in _sync(folder, state):
                items: list[Item] = []
                deleted: list[str] = []
                for kind, native in page:
                    if kind == "delete":
                        deleted.append(native.id)
                    elif kind in ("create", "update") and isinstance(native, NativeMessage):
                        items.append(Item(native.id, mapping.mail_from_native(native, name), mapping.read_link(native)))
                yield Changes(items, deleted, None, full=full)
            new_states[name] = folder.item_sync_state
        yield Changes([], [], json.dumps(new_states, sort_keys=True), full=full)

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        refused = RecordRejected("Mails are only read from Exchange, never written to it.")
        return [WriteResult(error=refused) for _ in ops]
