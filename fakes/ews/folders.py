"""The folder hierarchy the fake EWS shows for every mailbox.

``root`` holds ``msgfolderroot`` (Top of Information Store), which holds the tenant's item folders
(contacts, calendar, tasks, inbox, sentitems, deleteditems), and ``recoverableitemsroot``, the
dumpster outside the IPM subtree, whose ``recoverableitemsdeletions`` holds soft-deleted items.
The dumpster is reached by its distinguished id only: FindFolder does not list it.
Folder ids are ``<address>:<distinguished id>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element

from fakes.ews.soap import el, sub, t
from fakes.tenant import FOLDERS as TENANT_FOLDERS
from fakes.tenant import Mailbox, Tenant

FOLDER_CHANGE_KEY = "AQAAABYAAAA="


@dataclass(frozen=True)
class FolderInfo:
    """One distinguished folder: its EWS element, folder class, display name and parent."""

    name: str
    tag: str
    folder_class: str | None
    display_name: str
    parent: str | None

    @property
    def holds_items(self) -> bool:
        """Whether the folder is one of the tenant's item folders."""
        return self.name in TENANT_FOLDERS

    @property
    def hidden(self) -> bool:
        """Whether FindFolder leaves it out (the Recoverable Items dumpster)."""
        return self.name.startswith("recoverableitems")


FOLDERS = {
    f.name: f
    for f in (
        FolderInfo("root", "Folder", None, "", None),
        FolderInfo("msgfolderroot", "Folder", None, "Top of Information Store", "root"),
        FolderInfo("contacts", "ContactsFolder", "IPF.Contact", "Contacts", "msgfolderroot"),
        FolderInfo("calendar", "CalendarFolder", "IPF.Appointment", "Calendar", "msgfolderroot"),
        FolderInfo("tasks", "TasksFolder", "IPF.Task", "Tasks", "msgfolderroot"),
        FolderInfo("inbox", "Folder", "IPF.Note", "Inbox", "msgfolderroot"),
        FolderInfo("sentitems", "Folder", "IPF.Note", "Sent Items", "msgfolderroot"),
        FolderInfo("deleteditems", "Folder", "IPF.Note", "Deleted Items", "msgfolderroot"),
        FolderInfo("recoverableitemsroot", "Folder", None, "Recoverable Items", "root"),
        FolderInfo("recoverableitemsdeletions", "Folder", None, "Deletions", "recoverableitemsroot"),
    )
}


def folder_id(address: str, name: str) -> str:
    """The EWS id of distinguished folder ``name`` in the mailbox ``address``."""
    return f"{address}:{name}"


def id_element(tag: str, address: str, name: str) -> Element:
    """A ``FolderId`` / ``ParentFolderId`` element."""
    return el(t(tag), Id=folder_id(address, name), ChangeKey=FOLDER_CHANGE_KEY)


def children(name: str, deep: bool) -> list[FolderInfo]:
    """The subfolders of ``name``: direct ones, or the whole subtree when ``deep``."""
    found = []
    for info in FOLDERS.values():
        if info.parent == name and not info.hidden:
            found.append(info)
            if deep:
                found.extend(children(info.name, deep))
    return found


def render_folder(tenant: Tenant, box: Mailbox, info: FolderInfo) -> Element:
    """The folder element as GetFolder and FindFolder return it."""
    node = el(t(info.tag))
    node.append(id_element("FolderId", box.address, info.name))
    if info.parent:
        node.append(id_element("ParentFolderId", box.address, info.parent))
    if info.folder_class:
        sub(node, t("FolderClass"), info.folder_class)
    sub(node, t("DisplayName"), info.display_name)
    with tenant.lock:
        total = len(box.folders[info.name]) if info.holds_items else 0
    sub(node, t("TotalCount"), str(total))
    sub(node, t("ChildFolderCount"), str(len(children(info.name, deep=False))))
    sub(node, t("UnreadCount"), "0")
    return node
