"""One handler per EWS operation, as exchangelib.services has one class per operation.

A handler takes the :class:`Context` of the request and the operation element from the SOAP body,
and returns the ``<Operation>ResponseMessage`` elements. Per-item failures become error response
messages while the other items of the request still succeed, as in Exchange.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from xml.etree import ElementTree as ET
from xml.etree.ElementTree import Element

from fakes.ews import occurrences
from fakes.ews.convert import (
    CALENDAR_ITEM,
    KIND_BY_FOLDER,
    KIND_BY_TAG,
    MESSAGE,
    Kind,
    build_item,
    parse_attachment_key,
    patch_between,
    render_id,
    updated_item,
)
from fakes.ews.folders import FOLDERS, FolderInfo, children, render_folder
from fakes.ews.occurrences import Occurrence
from fakes.ews.restrict import Candidate, in_window, matches, sort_candidates
from fakes.ews.soap import EwsError, el, error_message, local, m, sub, success_message, t, text_of
from fakes.ews.store import Renderer, Shape, Snapshots
from fakes.ews.sync import CreationIndex, SyncState, next_page
from fakes.ews.values import ews_datetime, parse_ews_datetime, parse_graph_when
from fakes.tenant import Item, Mailbox, Tenant, TenantError

Handler = Callable[["Context", Element], list[Element]]
_T = TypeVar("_T")

_ITEM_ID = re.compile(r"^AAMk[0-9a-f]{32}$")
_DEFAULT_FOLDER = {"Contact": "contacts", "CalendarItem": "calendar", "Task": "tasks", "Message": "inbox"}
_WRONG_FOLDER = {
    "Contact": "ErrorCannotCreateContactInNonContactFolder",
    "CalendarItem": "ErrorCannotCreateCalendarItemInNonCalendarFolder",
    "Task": "ErrorCannotCreateTaskInNonTaskFolder",
    "Message": "ErrorCannotCreatePostItemInNonMailFolder",
}


@dataclass
class Context:
    """What a handler needs: the tenant, the acting mailbox and the API's caches and settings."""

    tenant: Tenant
    mailbox: Mailbox
    renderer: Renderer
    snapshots: Snapshots
    creations: CreationIndex
    generation: int
    find_cap: int

    owners: dict[str, Mailbox] = field(default_factory=dict)

    def mailbox_for(self, address: str | None) -> Mailbox:
        """The mailbox ``address`` names, if the acting user may open it (their own, or by FullAccess)."""
        if not address:
            return self.mailbox
        box = self.tenant.mailbox(address)
        if box is not self.mailbox and self.mailbox.address not in box.full_access:
            raise EwsError("ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        return box

    def owner(self, item: Item) -> Mailbox:
        """The mailbox an item found by :meth:`target` is in."""
        return self.owners.get(item.id, self.mailbox)

    def folder(self, ref: Element) -> tuple[Mailbox, FolderInfo]:
        """The mailbox and folder a DistinguishedFolderId or FolderId element names."""
        if local(ref.tag) == "DistinguishedFolderId":
            name = ref.get("Id", "")
            address = text_of(ref.find(f"{t('Mailbox')}/{t('EmailAddress')}")) or None
        else:
            address, _, name = ref.get("Id", "").rpartition(":")
            if not address:
                raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
        box = self.mailbox_for(address)
        if name not in FOLDERS:
            raise EwsError("ErrorFolderNotFound", "The specified folder could not be found in the store.")
        return box, FOLDERS[name]

    def item(self, ref: Element) -> Item:
        """The item an ItemId element names, in the acting mailbox (never an occurrence)."""
        item, occurrence = self.target(ref)
        if occurrence is not None:
            raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
        return item

    def target(self, ref: Element) -> tuple[Item, Occurrence | None]:
        """The item, and the occurrence of it, that an ItemId, OccurrenceItemId or RecurringMasterItemId names."""
        tag = local(ref.tag)
        if tag == "OccurrenceItemId":
            master = self._by_id(ref.get("RecurringMasterId", ""))
            return master, occurrences.find(master, index=int(ref.get("InstanceIndex", "")))  # an xs:int: schema
        if tag == "RecurringMasterItemId":
            found, _ = self._resolve(ref.get("OccurrenceId", ""))
            if not occurrences.is_master(found.data):
                raise EwsError(
                    "ErrorCalendarCannotUseIdForRecurringMasterId", "The item is not part of a recurring series."
                )
            return found, None
        if tag != "ItemId":
            raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
        return self._resolve(ref.get("Id", ""))

    def _resolve(self, item_id: str) -> tuple[Item, Occurrence | None]:
        parts = occurrences.split_id(item_id)
        if parts is None:
            return self._by_id(item_id), None
        master = self._by_id(parts[0])
        return master, occurrences.find(master, key=parts[1])

    def _by_id(self, item_id: str) -> Item:
        """An item of the acting mailbox, or of a mailbox it has FullAccess to."""
        if not _ITEM_ID.match(item_id):
            raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
        if self.tenant.holds(self.mailbox, item_id):
            return self.tenant.find(self.mailbox, item_id)
        for box in self.tenant.users():
            if self.mailbox.address in box.full_access and self.tenant.holds(box, item_id):
                self.owners[item_id] = box
                return self.tenant.find(box, item_id)
        return self.tenant.find(self.mailbox, item_id)  # ErrorItemNotFound


def _answer_each(operation: str, action: Callable[[Element], list[Element]], nodes: list[Element]) -> list[Element]:
    """One response message per request element: ``action(node)``'s elements, or the error it raised."""
    return [_answer(operation, action, node) for node in nodes]


def _answer(operation: str, action: Callable[[Element], list[Element]], node: Element) -> Element:
    try:
        elements = action(node)
    except (EwsError, TenantError) as error:
        return error_message(operation, _as_ews_error(error))
    message = success_message(operation)
    message.extend(elements)
    return message


def _as_ews_error(error: EwsError | TenantError) -> EwsError:
    return error if isinstance(error, EwsError) else EwsError(error.code, error.message)


def _container(tag: str, *elements: Element) -> Element:
    node = el(tag)
    node.extend(elements)
    return node


def _children(request: Element, tag: str) -> list[Element]:
    node = request.find(m(tag))
    return list(node) if node is not None else []


# folders -------------------------------------------------------------------------------------------
def get_folder(ctx: Context, request: Element) -> list[Element]:
    """GetFolder: the distinguished folders, by DistinguishedFolderId or FolderId."""

    def one(ref: Element) -> list[Element]:
        box, info = ctx.folder(ref)
        return [_container(m("Folders"), render_folder(ctx.tenant, box, info))]

    return _answer_each("GetFolder", one, _children(request, "FolderIds"))


def find_folder(ctx: Context, request: Element) -> list[Element]:
    """FindFolder: subfolders (Shallow or Deep), paged by IndexedPageFolderView."""
    deep = request.get("Traversal") == "Deep"
    view = request.find(m("IndexedPageFolderView"))

    def one(ref: Element) -> list[Element]:
        box, info = ctx.folder(ref)
        found = children(info.name, deep)
        page, offset, last = _page(found, view, len(found))
        root = el(m("RootFolder"), IndexedPagingOffset=str(offset), TotalItemsInView=str(len(found)))
        root.set("IncludesLastItemInRange", "true" if last else "false")
        sub(root, t("Folders")).extend(render_folder(ctx.tenant, box, f) for f in page)
        return [root]

    return _answer_each("FindFolder", one, _children(request, "ParentFolderIds"))


def _page(entries: list[_T], view: Element | None, cap: int) -> tuple[list[_T], int, bool]:
    """One IndexedPageView page of ``entries``: the page, the next offset and whether it is the last."""
    total = len(entries)
    if view is None:
        return entries[:cap], min(cap, total), cap >= total
    offset = int(view.get("Offset", "0"))
    size = min(int(view.get("MaxEntriesReturned", str(cap))), cap)
    if view.get("BasePoint") == "End":
        stop = max(total - offset, 0)
        return entries[max(stop - size, 0) : stop], offset + min(size, stop), stop <= size
    page = entries[offset : offset + size]
    return page, offset + len(page), offset + len(page) >= total


# FindItem ------------------------------------------------------------------------------------------
def find_item(ctx: Context, request: Element) -> list[Element]:
    """FindItem: restriction, sort order, IndexedPageItemView paging (capped) or CalendarView."""
    shape = Shape.parse(request.find(m("ItemShape")))

    def one(ref: Element) -> list[Element]:
        if request.find(m("QueryString")) is not None:
            raise EwsError("ErrorUnsupportedQueryFilter", "The fake EWS does not support QueryString (AQS).")
        box, info = ctx.folder(ref)
        found = _query(ctx, box, info, request)
        calendar_view = request.find(m("CalendarView"))
        if calendar_view is not None:
            return [_calendar_page(ctx, box, found, calendar_view, shape)]
        page, offset, last = _page(found, request.find(m("IndexedPageItemView")), ctx.find_cap)
        root = el(m("RootFolder"), IndexedPagingOffset=str(offset), TotalItemsInView=str(len(found)))
        root.set("IncludesLastItemInRange", "true" if last else "false")
        sub(root, t("Items")).extend(ctx.renderer.shaped(box, c.item, shape) for c in page)
        return [root]

    return _answer_each("FindItem", one, _children(request, "ParentFolderIds"))


def _calendar_page(ctx: Context, box: Mailbox, found: list[Candidate], view: Element, shape: Shape) -> Element:
    limit = int(view.get("MaxEntriesReturned", str(len(found))))
    page = found[:limit]
    root = el(m("RootFolder"), TotalItemsInView=str(len(found)))
    root.set("IncludesLastItemInRange", "true" if len(page) == len(found) else "false")
    sub(root, t("Items")).extend(ctx.renderer.shaped(box, c.item, shape) for c in page)
    return root


def _query(ctx: Context, box: Mailbox, info: FolderInfo, request: Element) -> list[Candidate]:
    """The folder's items matching the request's restriction and calendar view, sorted (cached)."""
    if not info.holds_items:
        return []
    restriction = request.find(m("Restriction"))
    order = request.find(m("SortOrder"))
    view = request.find(m("CalendarView"))
    key = tuple(ET.tostring(node) if node is not None else b"" for node in (restriction, order, view))
    log = box.log[info.name]
    version = log[-1].seq if log else 0

    def build() -> list[Candidate]:
        items = sorted(box.folders[info.name].values(), key=lambda i: (i.created, i.id))
        if view is not None:
            items = _expanded(items, view)
        found = ctx.renderer.candidates(box, items)
        if restriction is not None and len(restriction):
            found = [c for c in found if matches(restriction[0], c)]
        sort_candidates(found, order)
        return found

    return ctx.snapshots.get((box.user_id, info.name, *key), version, build)


def _expanded(items: list[Item], view: Element) -> list[Item]:
    """A CalendarView: single items, and each series' occurrences and exceptions, in the window, by start."""
    start, end = (parse_ews_datetime(view.get(a, "")) for a in ("StartDate", "EndDate"))
    if end <= start:
        raise EwsError("ErrorCalendarEndDateIsEarlierThanStartDate", "EndDate is earlier than StartDate.")
    found: list[Item] = []
    for item in items:
        if occurrences.is_master(item.data):
            found.extend(occurrences.in_view(item, start, end))
        elif in_window(item.data, start, end):
            found.append(item)
    found.sort(key=lambda i: parse_graph_when(i.data["start"]))
    return found


# items ---------------------------------------------------------------------------------------------
def get_item(ctx: Context, request: Element) -> list[Element]:
    """GetItem: full items (and requested extended properties) for each ItemId, occurrences included."""
    shape = Shape.parse(request.find(m("ItemShape")))

    def one(ref: Element) -> list[Element]:
        item, occurrence = ctx.target(ref)
        box = ctx.owner(item)
        if occurrence is not None:
            item = occurrences.as_item(item, occurrence)
        return [_container(m("Items"), ctx.renderer.shaped(box, item, shape))]

    return _answer_each("GetItem", one, _children(request, "ItemIds"))


def create_item(ctx: Context, request: Element) -> list[Element]:
    """CreateItem: save each item (SavedItemFolderId or its default folder), or send messages."""
    saved = request.find(m("SavedItemFolderId"))
    target = saved[0] if saved is not None and len(saved) else None
    disposition = request.get("MessageDisposition", "SaveOnly")

    def one(elem: Element) -> list[Element]:
        kind = KIND_BY_TAG.get(local(elem.tag))
        if kind is None:
            raise EwsError("ErrorInvalidItemForOperationCreateItem", f"Cannot create {local(elem.tag)} items.")
        box, folder = _target_folder(ctx, kind, target, disposition)
        data = build_item(kind, elem, box)
        if kind is MESSAGE and disposition != "SaveOnly":
            _send(ctx, data, box, folder if disposition == "SendAndSaveCopy" else None)
            return [el(m("Items"))]
        item = ctx.tenant.create(box, folder, data)
        return [_container(m("Items"), render_id(kind, item))]

    return _answer_each("CreateItem", one, _children(request, "Items"))


def _target_folder(ctx: Context, kind: Kind, target: Element | None, disposition: str) -> tuple[Mailbox, str]:
    if target is None:
        default = "sentitems" if disposition == "SendAndSaveCopy" else _DEFAULT_FOLDER[kind.tag]
        return ctx.mailbox, default
    box, info = ctx.folder(target)
    if KIND_BY_FOLDER.get(info.name) is not kind:
        raise EwsError(_WRONG_FOLDER[kind.tag], f"A {kind.tag} cannot be created in folder {info.name!r}.")
    return box, info.name


def _send(ctx: Context, data: dict[str, Any], sender: Mailbox, copy_folder: str | None) -> None:
    """Deliver a message to the recipients that have tenant mailboxes; keep a copy when asked."""
    now = ews_datetime(datetime.now(UTC))
    sent = {**data, "isDraft": False, "sentDateTime": now, "receivedDateTime": now}
    for key in ("toRecipients", "ccRecipients", "bccRecipients"):
        for recipient in data.get(key) or []:
            address = recipient["emailAddress"]["address"]
            try:
                box = ctx.tenant.mailbox(address)
            except TenantError:
                continue  # an external recipient: the message leaves the organisation
            ctx.tenant.create(box, "inbox", {**sent, "isRead": False, "bccRecipients": []})
    if copy_folder:
        ctx.tenant.create(sender, copy_folder, sent)


def update_item(ctx: Context, request: Element) -> list[Element]:
    """UpdateItem: Set/Append/DeleteItemField per ItemChange; NeverOverwrite checks the change key."""
    never_overwrite = request.get("ConflictResolution") == "NeverOverwrite"

    def one(change: Element) -> list[Element]:
        ref = change[0]
        item, occurrence = ctx.target(ref)
        stale = ref.get("ChangeKey") not in (None, item.change_key)
        if never_overwrite and stale:
            raise EwsError(
                "ErrorIrresolvableConflict",
                "The send or update operation could not be performed "
                "because the change key passed in the request does not match the current change key "
                "for the item.",
            )
        kind = KIND_BY_FOLDER[item.home]
        updates = change.find(t("Updates"))
        updates = updates if updates is not None else el(t("Updates"))
        if occurrence is not None:
            return [_container(m("Items"), _update_occurrence(ctx, item, occurrence, updates)), _no_conflicts()]
        box = ctx.owner(item)
        new = updated_item(kind, item.data, updates, box)
        if occurrences.is_master(item.data) and occurrences.series_changed(item.data, new):
            for key in (occurrences.EXCEPTIONS, occurrences.CANCELLED):
                new.pop(key, None)
        item = ctx.tenant.update(box, item.folder, item.id, patch_between(item.data, new))
        return [_container(m("Items"), render_id(kind, item)), _no_conflicts()]

    return _answer_each("UpdateItem", one, _children(request, "ItemChanges"))


def _no_conflicts() -> Element:
    return _container(m("ConflictResults"), el(m("Count"), "0"))


def _update_occurrence(ctx: Context, master: Item, occurrence: Occurrence, updates: Element) -> Element:
    """Change one occurrence: it becomes an exception, stored on (and changing) its master."""
    current = occurrences.occurrence_data(master.data, occurrence)
    box = ctx.owner(master)
    new = updated_item(CALENDAR_ITEM, current, updates, box)
    if new.get("recurrence"):
        raise EwsError("ErrorInvalidPropertySet", "An occurrence cannot have a recurrence of its own.")
    master = ctx.tenant.update(box, master.folder, master.id, occurrences.with_exception(master.data, occurrence, new))
    return render_id(CALENDAR_ITEM, occurrences.as_item(master, occurrence))


DELETED_ITEMS, DELETIONS = "deleteditems", "recoverableitemsdeletions"


def delete_item(ctx: Context, request: Element) -> list[Element]:
    """DeleteItem by its DeleteType (required by the schema).

    HardDelete removes the item for good; SoftDelete moves it to Recoverable Items\\Deletions
    (the dumpster, out of the user's sight); MoveToDeletedItems moves it to Deleted Items, where the
    user can still restore it, and from Deleted Items itself soft-deletes it. A moved item gets a
    new id, and its old folder reports a deletion. Calendar items need SendMeetingCancellations and
    tasks AffectedTaskOccurrences, as Exchange asks.
    """
    delete_type = request.get("DeleteType")  # required and one of three: checked by fakes.ews.schema

    def one(ref: Element) -> list[Element]:
        item, occurrence = ctx.target(ref)
        box = ctx.owner(item)
        _check_delete_options(request, item)
        if occurrence is not None:  # cancelled: the series remembers it among its deleted occurrences
            ctx.tenant.update(box, item.folder, item.id, occurrences.with_exception(item.data, occurrence, None))
        elif delete_type == "HardDelete":
            ctx.tenant.delete(box, item.folder, item.id)
        elif delete_type == "SoftDelete" or item.folder in (DELETED_ITEMS, DELETIONS):
            if item.folder != DELETIONS:
                ctx.tenant.move(box, item.folder, item.id, DELETIONS)
        else:
            ctx.tenant.move(box, item.folder, item.id, DELETED_ITEMS)
        return []

    return _answer_each("DeleteItem", one, _children(request, "ItemIds"))


def _check_delete_options(request: Element, item: Item) -> None:
    home = item.home
    if home == "calendar" and request.get("SendMeetingCancellations") is None:
        raise EwsError(
            "ErrorSendMeetingCancellationsRequired", "SendMeetingCancellations is required for calendar items."
        )
    if home == "tasks" and request.get("AffectedTaskOccurrences") is None:
        raise EwsError("ErrorAffectedTaskOccurrencesRequired", "AffectedTaskOccurrences is required for tasks.")


# SyncFolderItems -----------------------------------------------------------------------------------
def sync_folder_items(ctx: Context, request: Element) -> list[Element]:
    """SyncFolderItems: the next page of changes after the sync state (see :mod:`fakes.ews.sync`)."""
    shape = Shape.parse(request.find(m("ItemShape")))
    try:
        message = _sync(ctx, request, shape)
    except (EwsError, TenantError) as error:
        message = error_message("SyncFolderItems", _as_ews_error(error))
        sub(message, m("SyncState"))
        sub(message, m("IncludesLastItemInRange"), "true")
    return [message]


def _sync(ctx: Context, request: Element, shape: Shape) -> Element:
    ref = _children(request, "SyncFolderId")[0]
    box, info = ctx.folder(ref)
    text = text_of(request.find(m("SyncState")))
    if text:
        state = SyncState.decode(text, ctx.generation, box.address, info.name)
    else:
        state = SyncState(ctx.generation, box.address, info.name, 0, 0)
    limit = int(text_of(request.find(m("MaxChangesReturned"))))  # 1..512: checked by fakes.ews.schema
    ignore = {i.get("Id", "") for i in _children(request, "Ignore")}
    page = next_page(ctx.tenant, ctx.creations, box, state, limit, ignore)
    message = success_message("SyncFolderItems")
    sub(message, m("SyncState"), page.state.encode())
    sub(message, m("IncludesLastItemInRange"), "true" if page.last else "false")
    changes = sub(message, m("Changes"))
    for change in page.changes:
        node = sub(changes, t(change.kind))
        if change.item is None:
            sub(node, t("ItemId"), Id=change.item_id, ChangeKey="AAAAAA==")
        else:
            node.append(ctx.renderer.shaped(box, change.item, shape))
    return message


# MoveItem ------------------------------------------------------------------------------------------
def move_item(ctx: Context, request: Element) -> list[Element]:
    """MoveItem: to a folder of the item's kind (e.g. restored from Deleted Items) or to Deleted Items; a new id.

    An occurrence cannot be moved, nor an item to another mailbox.
    """
    target = _children(request, "ToFolderId")

    def one(ref: Element) -> list[Element]:
        item, occurrence = ctx.target(ref)
        if occurrence is not None:
            raise EwsError("ErrorCalendarCannotMoveOrCopyOccurrence", "An occurrence cannot be moved or copied.")
        box, info = ctx.folder(target[0])
        if box is not ctx.owner(item):
            raise EwsError("ErrorCrossMailboxMoveCopy", "Items cannot be moved to another mailbox.")
        kind = KIND_BY_FOLDER[item.home]
        if info.name not in (DELETED_ITEMS, DELETIONS) and KIND_BY_FOLDER.get(info.name) is not kind:
            raise EwsError("ErrorMoveCopyFailed", f"A {kind.tag} cannot be moved to folder {info.name!r}.")
        moved = ctx.tenant.move(box, item.folder, item.id, info.name)
        return [_container(m("Items"), render_id(kind, moved))]

    return _answer_each("MoveItem", one, _children(request, "ItemIds"))


# GetAttachment -------------------------------------------------------------------------------------
def get_attachment(ctx: Context, request: Element) -> list[Element]:
    """GetAttachment: each file attachment with its Content (base64), by its opaque AttachmentId."""

    def one(ref: Element) -> list[Element]:
        item_id, number = parse_attachment_key(ref.get("Id", ""))
        item = ctx.item(el(t("ItemId"), Id=item_id))
        attachments = item.data.get("attachments") or []
        if not 0 <= number < len(attachments):
            raise EwsError("ErrorInvalidAttachmentId", "The attachment id is not valid.")
        attachment = attachments[number]
        node = el(t("FileAttachment"))
        sub(node, t("AttachmentId"), Id=ref.get("Id", ""))
        sub(node, t("Name"), str(attachment.get("name") or ""))
        sub(node, t("ContentType"), str(attachment.get("contentType") or "application/octet-stream"))
        sub(node, t("Size"), str(attachment.get("size") or 0))
        sub(node, t("IsInline"), "true" if attachment.get("isInline") else "false")
        sub(node, t("Content"), str(attachment.get("contentBytes") or ""))
        return [_container(m("Attachments"), node)]

    return _answer_each("GetAttachment", one, _children(request, "AttachmentIds"))


# SyncFolderHierarchy -------------------------------------------------------------------------------
def sync_folder_hierarchy(ctx: Context, request: Element) -> list[Element]:
    """SyncFolderHierarchy: every folder under the sync folder (default: the mailbox's msgfolderroot) at
    first, then what changed since the state (the fake's folder tree never changes: nothing)."""
    ref = _children(request, "SyncFolderId")
    try:
        box, info = ctx.folder(ref[0]) if ref else (ctx.mailbox, FOLDERS["msgfolderroot"])
        text = text_of(request.find(m("SyncState")))
        known = bool(text) and SyncState.decode(text, ctx.generation, box.address, f"hierarchy:{info.name}") is not None
    except (EwsError, TenantError) as error:
        return [error_message("SyncFolderHierarchy", _as_ews_error(error))]
    state = SyncState(ctx.generation, box.address, f"hierarchy:{info.name}", 1, 1)
    message = success_message("SyncFolderHierarchy")
    sub(message, m("SyncState"), state.encode())
    sub(message, m("IncludesLastFolderInRange"), "true")
    changes = sub(message, m("Changes"))
    if not known:
        for folder in children(info.name, deep=True):
            sub(changes, t("Create")).append(render_folder(ctx.tenant, box, folder))
    return [message]


# ConvertId -----------------------------------------------------------------------------------------
def convert_id(ctx: Context, request: Element) -> list[Element]:
    """Only what exchangelib's version probe needs: every id is reported as malformed."""
    malformed = EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
    return [error_message("ConvertId", malformed) for _ in _children(request, "SourceIds")]


HANDLERS: dict[str, Handler] = {
    "GetFolder": get_folder,
    "FindFolder": find_folder,
    "FindItem": find_item,
    "GetItem": get_item,
    "CreateItem": create_item,
    "UpdateItem": update_item,
    "DeleteItem": delete_item,
    "SyncFolderItems": sync_folder_items,
    "SyncFolderHierarchy": sync_folder_hierarchy,
    "MoveItem": move_item,
    "GetAttachment": get_attachment,
    "ConvertId": convert_id,
}
