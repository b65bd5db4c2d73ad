"""Graph resources made from the tenant's items and users: their shapes and server-set defaults."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from fakes.graph.errors import GraphError, not_found
from fakes.server import Request
from fakes.tenant import Item, Mailbox

MAIL_FOLDERS = ("inbox", "sentitems")
CONTACT_FOLDER_ID = "contacts"
TASK_LIST_ID = "AAMkADefaultTaskList"
READ_ONLY = frozenset(
    {
        "id",
        "changeKey",
        "createdDateTime",
        "lastModifiedDateTime",
        "parentFolderId",
        "type",
        "seriesMasterId",
        "originalStartTimeZone",
        "originalEndTimeZone",
        "originalStart",
    }
)


_ITEM_ID = re.compile(r"AAMk[0-9A-Za-z=_-]+")


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def raw_resource(item: Item) -> dict[str, Any]:
    """The item as Graph holds it, without the model's own bookkeeping (keys starting with ``_``)."""
    resource = {k: v for k, v in item.resource().items() if not k.startswith("_")}
    resource["@odata.etag"] = etag(item)
    if item.folder in MAIL_FOLDERS:
        resource["parentFolderId"] = item.folder
    return resource


def item_field(item: Item, name: str) -> Any:
    special = {"id": item.id, "createdDateTime": item.created, "lastModifiedDateTime": item.modified}
    return special[name] if name in special else item.data.get(name)


def user_resource(box: Mailbox) -> dict[str, Any]:
    given, _, surname = box.display_name.partition(" ")
    return {
        "id": box.user_id,
        "displayName": box.display_name,
        "givenName": given or None,
        "surname": surname or None,
        "mail": box.address,
        "userPrincipalName": box.address,
    }


def task_list() -> dict[str, Any]:
    return {
        "id": TASK_LIST_ID,
        "displayName": "Tasks",
        "wellknownListName": "defaultList",
        "isOwner": True,
        "isShared": False,
    }


def attachment_resources(item: Item) -> list[dict[str, Any]]:
    return [
        {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "id": base64.urlsafe_b64encode(f"{item.id}:{n}".encode()).decode(),
            "name": attachment.get("name"),
            "size": attachment.get("size", 0),
            "contentType": attachment.get("contentType", "application/octet-stream"),
            "isInline": False,
            "lastModifiedDateTime": iso_utc(item.modified),
        }
        for n, attachment in enumerate(item.data.get("attachments") or [])
    ]


def removed_entry(item_id: str) -> dict[str, Any]:
    return {"id": item_id, "@removed": {"reason": "deleted"}}


def writable_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in READ_ONLY and not k.startswith(("@odata.", "_"))}


def with_defaults(folder: str, data: dict[str, Any], box: Mailbox) -> dict[str, Any]:
    """What Graph fills in on create."""
    if folder == "contacts" and "displayName" not in data:
        data["displayName"] = " ".join(filter(None, (data.get("givenName"), data.get("surname"))))
    if folder == "calendar":
        data.setdefault("iCalUId", "040000008200E00074C5B7101A82E008" + uuid.uuid4().hex.upper())
        data.setdefault("isAllDay", False)
        data.setdefault("organizer", {"emailAddress": {"name": box.display_name, "address": box.address}})
    if folder == "tasks":
        for linked in data.get("linkedResources") or []:
            linked.setdefault("id", str(uuid.uuid4()))
        if data.get("body") is None:  # Graph always has a body, empty when none was given
            data["body"] = {"content": "", "contentType": "text"}
        data.setdefault("status", "notStarted")
        data.setdefault("importance", "normal")
    return data


def check_item_id(item_id: str) -> None:
    """Graph's answer to an id that is not one of its item ids at all."""
    if not _ITEM_ID.fullmatch(item_id):
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")


def etag(item: Item) -> str:
    return f'W/"{item.change_key}"'


def check_if_match(request: Request, item: Item) -> None:
    """412 when the request's ``If-Match`` names another version of ``item`` (``*`` matches any)."""
    wanted = request.header("if-match")
    if wanted is None or wanted.strip() == "*":
        return
    tags = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
    if etag(item).removeprefix("W/") not in tags:
        raise GraphError(
            412,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed in the "
            "request does not match the current change key for the item.",
        )


def merged(data: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``data`` as it will be once ``patch`` is applied (a property set to null is removed)."""
    result = {**data, **patch}
    return {k: v for k, v in result.items() if v is not None}


MAIL_FOLDER_NAMES = {"inbox": "Inbox", "sentitems": "Sent Items"}


def mail_folder_id(box: Mailbox, folder: str) -> str:
    """The opaque id of a well-known mail folder of ``box`` (``msgfolderroot``: their parent)."""
    return "AQMk" + base64.urlsafe_b64encode(f"{box.user_id}:{folder}".encode()).decode().rstrip("=")


def mail_folder(box: Mailbox, key: str) -> str:
    """The folder a well-known name (any case) or a folder id stands for."""
    for folder in MAIL_FOLDERS:
        if key.lower() == folder or key == mail_folder_id(box, folder):
            return folder
    raise not_found(f"The fake Graph has no mail folder {key!r}.")


def mail_folder_resource(box: Mailbox, folder: str, items: list[Item]) -> dict[str, Any]:
    return {
        "id": mail_folder_id(box, folder),
        "displayName": MAIL_FOLDER_NAMES[folder],
        "parentFolderId": "AQMk"
        + base64.urlsafe_b64encode(f"{box.user_id}:msgfolderroot".encode()).decode().rstrip("="),
        "childFolderCount": 0,
        "unreadItemCount": sum(1 for i in items if not i.data.get("isRead")),
        "totalItemCount": len(items),
        "isHidden": False,
    }


def calendar_resource(box: Mailbox) -> dict[str, Any]:
    """The mailbox's default calendar."""
    return {
        "id": "AAMk" + base64.urlsafe_b64encode(f"{box.user_id}:calendar".encode()).decode().rstrip("="),
        "name": "Calendar",
        "color": "auto",
        "isDefaultCalendar": True,
        "canEdit": True,
        "canShare": True,
        "canViewPrivateItems": True,
        "isRemovable": False,
        "owner": {"name": box.display_name, "address": box.address},
    }
