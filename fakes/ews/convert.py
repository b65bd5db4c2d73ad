"""EWS item elements <-> the tenant's Graph-shaped item data.

Each tenant folder holds one item kind: contacts hold ``Contact``, calendar ``CalendarItem``,
tasks ``Task`` and inbox/sentitems ``Message``. A :class:`Kind` lists the fields EWS and Graph
share; an element no field claims is kept in the private store (``_ews.extra``: the text of a plain
leaf element, else ``{"xml": ...}``) so it round-trips over EWS.
"""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET
from xml.etree.ElementTree import Element

from fakes.ews import fields as f
from fakes.ews import occurrences
from fakes.ews.extended import apply_extended, delete_extended
from fakes.ews.fields import AttendeesField, Field
from fakes.ews.folders import id_element
from fakes.ews.recurrence import read_recurrence, write_recurrence
from fakes.ews.soap import EwsError, el, local, sub, t
from fakes.ews.values import (
    Data,
    ews_datetime,
    get_path,
    graph_when,
    peek_private,
    private,
    prune_private,
    set_path,
)
from fakes.tenant import Item, Mailbox

# Elements the server computes; a client sending them is ignored.
READ_ONLY = frozenset(
    {
        "ItemId",
        "ParentFolderId",
        "ItemClass",
        "DateTimeCreated",
        "LastModifiedTime",
        "CalendarItemType",
        "Size",
        "OriginalStart",
        "FirstOccurrence",
        "LastOccurrence",
        "ModifiedOccurrences",
        "DeletedOccurrences",
        "TextBody",
    }
)
UPDATE_KINDS = {"SetItemField": "set", "AppendToItemField": "append"}

_IMPORTANCE = f.choice((("Low", "low"), ("Normal", "normal"), ("High", "high")))
_SENSITIVITY = f.choice(
    (("Normal", "normal"), ("Personal", "personal"), ("Private", "private"), ("Confidential", "confidential"))
)
_SHOW_AS = f.choice(
    (
        ("Free", "free"),
        ("Tentative", "tentative"),
        ("Busy", "busy"),
        ("OOF", "oof"),
        ("WorkingElsewhere", "workingElsewhere"),
        ("NoData", "unknown"),
    )
)
_STATUS = f.choice(
    (
        ("NotStarted", "notStarted"),
        ("InProgress", "inProgress"),
        ("Completed", "completed"),
        ("WaitingOnOthers", "waitingOnOthers"),
        ("Deferred", "deferred"),
    )
)


class Kind:
    """One EWS item type stored in one kind of tenant folder."""

    def __init__(
        self,
        tag: str,
        item_class: str,
        fields: list[Field],
        complete: Callable[[Data, Mailbox], None],
        extras: Callable[[Item], list[Element]],
        recompute: Callable[[Data | None, Data], None] | None = None,
    ) -> None:
        self.tag = tag
        self.item_class = item_class
        self.fields = fields
        self.complete = complete
        self.extras = extras
        self.recompute = recompute or _nothing
        self._by_tag = {field.tag: field for field in fields}

    def field_for_tag(self, tag: str) -> Field | None:
        return self._by_tag.get(tag)

    def field_for_uri(self, uri: str) -> Field | None:
        return next((field for field in self.fields if field.matches(uri)), None)


def _nothing(old: Data | None, new: Data) -> None:
    return None


# the kinds -----------------------------------------------------------------------------------------
def _text(tag: str, uri: str, path: str) -> Field:
    return Field(tag, uri, path)


def _common(body_path: str = "body") -> list[Field]:
    body = (
        Field("Body", "item:Body", body_path, f.read_body, f.write_body)
        if body_path == "body"
        else Field("Body", "item:Body", body_path, f.read_text, f.write_notes)
    )
    text_body = Field("TextBody", "item:TextBody", body_path, f.read_body, f.write_text_body)
    texts = [text_body] if body_path == "body" else []
    return [body, *texts, Field("Categories", "item:Categories", "categories", f.read_strings, f.write_strings)]


def _importance() -> Field:
    return Field("Importance", "item:Importance", "importance", *_IMPORTANCE)


def _received(item: Item) -> list[Element]:
    return [el(t("DateTimeReceived"), ews_datetime(item.created))]


def _contact_defaults(data: Data, owner: Mailbox) -> None:
    for key in ("emailAddresses", "businessPhones", "homePhones", "categories"):
        data.setdefault(key, [])


FILE_AS_MAPPING = "FileAsMapping"


def _contact_names(old: Data | None, new: Data) -> None:
    """What Exchange computes for a contact: DisplayName when none is given, FileAs from its FileAsMapping.

    FileAs follows the name fields (LastCommaFirst unless the item says otherwise) whenever they
    change, unless the same request sets FileAs itself.
    """
    given, surname = new.get("givenName") or "", new.get("surname") or ""
    company = new.get("companyName") or ""
    if not new.get("displayName"):
        new["displayName"] = " ".join(p for p in (given, new.get("middleName") or "", surname) if p) or company
    keys = ("givenName", "middleName", "surname", "companyName")
    names_changed = old is None or any(old.get(k) != new.get(k) for k in keys)
    file_as_set = new.get("fileAs") and (old is None or old.get("fileAs") != new.get("fileAs"))
    if names_changed and not file_as_set:
        mapping = peek_private(new, "extra").get(FILE_AS_MAPPING) or "LastCommaFirst"
        new["fileAs"] = _file_as(str(mapping), given, surname, company) or new["displayName"]


def _file_as(mapping: str, given: str, surname: str, company: str) -> str:
    last_first = ", ".join(p for p in (surname, given) if p)
    first_last = " ".join(p for p in (given, surname) if p)
    if mapping == "FirstSpaceLast":
        return first_last
    if mapping == "Company":
        return company or last_first
    if mapping == "LastSpaceFirst":
        return " ".join(p for p in (surname, given) if p)
    if mapping == "LastCommaFirstCompany":
        return " ".join(p for p in (last_first, f"({company})" if company else "") if p)
    return last_first


CONTACT = Kind(
    "Contact",
    "IPM.Contact",
    [
        *_common("personalNotes"),
        _text("FileAs", "contacts:FileAs", "fileAs"),
        _text("DisplayName", "contacts:DisplayName", "displayName"),
        _text("GivenName", "contacts:GivenName", "givenName"),
        _text("Initials", "contacts:Initials", "initials"),
        _text("MiddleName", "contacts:MiddleName", "middleName"),
        _text("Nickname", "contacts:Nickname", "nickName"),
        _text("CompanyName", "contacts:CompanyName", "companyName"),
        f.EmailAddressesField(),
        f.PhysicalAddressesField(),
        f.PhoneNumbersField(),
        _text("AssistantName", "contacts:AssistantName", "assistantName"),
        Field("Birthday", "contacts:Birthday", "birthday", f.read_stamp, f.write_stamp),
        _text("BusinessHomePage", "contacts:BusinessHomePage", "businessHomePage"),
        Field("Children", "contacts:Children", "children", f.read_strings, f.write_strings),
        _text("Department", "contacts:Department", "department"),
        _text("Generation", "contacts:Generation", "generation"),
        _text("JobTitle", "contacts:JobTitle", "jobTitle"),
        _text("Manager", "contacts:Manager", "manager"),
        _text("OfficeLocation", "contacts:OfficeLocation", "officeLocation"),
        _text("Profession", "contacts:Profession", "profession"),
        _text("SpouseName", "contacts:SpouseName", "spouseName"),
        _text("Surname", "contacts:Surname", "surname"),
    ],
    _contact_defaults,
    _received,
    _contact_names,
)


def _event_defaults(data: Data, owner: Mailbox) -> None:
    data.setdefault("attendees", [])
    data.setdefault("categories", [])
    data.setdefault("isAllDay", False)
    data.setdefault("iCalUId", "040000008200E00074C5B7101A82E008" + uuid.uuid4().hex.upper())
    data.setdefault("organizer", {"emailAddress": {"name": owner.display_name, "address": owner.address}})
    data["type"] = "seriesMaster" if data.get("recurrence") else "singleInstance"
    window = (data.get("recurrence") or {}).get("range")
    if window is not None and data.get("originalStartTimeZone"):  # Graph's name for the series' zone
        window["recurrenceTimeZone"] = data["originalStartTimeZone"]


_ITEM_TYPES = {"seriesMaster": "RecurringMaster", "occurrence": "Occurrence", "exception": "Exception"}


def _event_extras(item: Item) -> list[Element]:
    series = occurrences.is_master(item.data)
    kind = "RecurringMaster" if series else _ITEM_TYPES.get(str(item.data.get("type")), "Single")
    extras = [*_received(item), el(t("CalendarItemType"), kind)]
    if kind in ("Occurrence", "Exception"):
        extras.append(f.write_when("OriginalStart", item.data["originalStart"]))
    if series:
        extras.extend(_series_info(item))
    return extras


def _series_info(master: Item) -> list[Element]:
    """The master's FirstOccurrence, LastOccurrence, ModifiedOccurrences and DeletedOccurrences."""
    nodes = []
    for tag, entries in occurrences.master_info(master):
        node = el(t(tag))
        for entry_tag, occurrence in entries:
            target = sub(node, t(entry_tag)) if entry_tag else node
            if entry_tag == "DeletedOccurrence":
                sub(target, t("Start"), ews_datetime(occurrence.original))
                continue
            data = occurrences.occurrence_data(master.data, occurrence)
            sub(target, t("ItemId"), Id=occurrences.occurrence_id(master.id, occurrence), ChangeKey=master.change_key)
            target.append(f.write_when("Start", data["start"]))
            target.append(f.write_when("End", data["end"]))
            sub(target, t("OriginalStart"), ews_datetime(occurrence.original))
        nodes.append(node)
    return nodes


CALENDAR_ITEM = Kind(
    "CalendarItem",
    "IPM.Appointment",
    [
        _text("Subject", "item:Subject", "subject"),
        *_common(),
        _importance(),
        Field("Sensitivity", "item:Sensitivity", "sensitivity", *_SENSITIVITY),
        Field("ReminderIsSet", "item:ReminderIsSet", "isReminderOn", f.read_bool, f.write_bool),
        Field(
            "ReminderMinutesBeforeStart",
            "item:ReminderMinutesBeforeStart",
            "reminderMinutesBeforeStart",
            f.read_int,
        ),
        _text("UID", "calendar:UID", "iCalUId"),
        Field("Start", "calendar:Start", "start", f.read_when, f.write_when),
        Field("End", "calendar:End", "end", f.read_when, f.write_when),
        Field("IsAllDayEvent", "calendar:IsAllDayEvent", "isAllDay", f.read_bool, f.write_bool),
        Field("LegacyFreeBusyStatus", "calendar:LegacyFreeBusyStatus", "showAs", *_SHOW_AS),
        _text("Location", "calendar:Location", "location.displayName"),
        Field("Organizer", "calendar:Organizer", "organizer", f.read_mailbox, f.write_mailbox),
        AttendeesField("RequiredAttendees", "calendar:RequiredAttendees", "required"),
        AttendeesField("OptionalAttendees", "calendar:OptionalAttendees", "optional"),
        AttendeesField("Resources", "calendar:Resources", "resource"),
        Field("Recurrence", "calendar:Recurrence", "recurrence", read_recurrence, write_recurrence),
        Field("StartTimeZone", "calendar:StartTimeZone", "originalStartTimeZone", f.read_zone, f.write_zone),
        Field("EndTimeZone", "calendar:EndTimeZone", "originalEndTimeZone", f.read_zone, f.write_zone),
    ],
    _event_defaults,
    _event_extras,
)


def _task_defaults(data: Data, owner: Mailbox) -> None:
    data.setdefault("status", "notStarted")
    data.setdefault("importance", "normal")
    data.setdefault("categories", [])


PERCENT = "_ews.task.percentComplete"  # Graph's todoTask has no such property: kept privately


def _task_progress(old: Data | None, new: Data) -> None:
    """What Exchange computes for a task: Completed means PercentComplete 100 and a CompleteDate.

    PercentComplete set to 100 completes the task; a task no longer Completed loses its
    CompleteDate and, if it was at 100, goes back to 0; NotStarted is 0; a NotStarted task given
    some progress becomes InProgress.
    """
    before = old or {}
    percent = float(get_path(new, PERCENT) or 0)
    status_changed = before.get("status") != new.get("status")
    percent_changed = float(get_path(before, PERCENT) or 0) != percent
    if percent_changed and percent >= 100 and not status_changed:
        new["status"] = "completed"
    if new.get("status") == "completed":
        set_path(new, PERCENT, 100)
        new.setdefault("completedDateTime", graph_when(datetime.now(UTC)))
        return
    new.pop("completedDateTime", None)
    if new.get("status") == "notStarted" and percent_changed and 0 < percent < 100:
        new["status"] = "inProgress"
    elif new.get("status") == "notStarted" or (status_changed and before.get("status") == "completed"):
        set_path(new, PERCENT, 0)


def _task_extras(item: Item) -> list[Element]:
    done = item.data.get("status") == "completed"
    return [*_received(item), el(t("IsComplete"), "true" if done else "false")]


TASK = Kind(
    "Task",
    "IPM.Task",
    [
        _text("Subject", "item:Subject", "title"),
        *_common(),
        _importance(),
        Field("ReminderIsSet", "item:ReminderIsSet", "isReminderOn", f.read_bool, f.write_bool),
        Field("CompleteDate", "task:CompleteDate", "completedDateTime", f.read_when, f.write_when),
        Field("DueDate", "task:DueDate", "dueDateTime", f.read_when, f.write_when),
        Field("StartDate", "task:StartDate", "startDateTime", f.read_when, f.write_when),
        Field("PercentComplete", "task:PercentComplete", PERCENT, f.read_number, f.write_number),
        Field("Status", "task:Status", "status", *_STATUS),
    ],
    _task_defaults,
    _task_extras,
    _task_progress,
)


def _message_defaults(data: Data, owner: Mailbox) -> None:
    now = ews_datetime(datetime.now(UTC))
    for key in ("toRecipients", "ccRecipients", "bccRecipients", "categories"):
        data.setdefault(key, [])
    data.setdefault("from", {"emailAddress": {"name": owner.display_name, "address": owner.address}})
    data.setdefault("sentDateTime", now)
    data.setdefault("receivedDateTime", now)
    data.setdefault("internetMessageId", f"<{uuid.uuid4().hex}@{owner.address.partition('@')[2]}>")
    data.setdefault("isRead", True)
    data.setdefault("isDraft", True)
    data["hasAttachments"] = bool(data.get("attachments"))


def _message_extras(item: Item) -> list[Element]:
    """Received mail always has a Sender; Graph data may only carry ``from``."""
    if item.data.get("sender") or not item.data.get("from"):
        return []
    return [f.write_mailbox("Sender", item.data["from"])]


MESSAGE = Kind(
    "Message",
    "IPM.Note",
    [
        _text("Subject", "item:Subject", "subject"),
        *_common(),
        _importance(),
        Field("Attachments", "item:Attachments", "attachments", f.read_attachments, f.write_attachments),
        Field("HasAttachments", "item:HasAttachments", "hasAttachments", f.read_bool, f.write_bool),
        Field("DateTimeSent", "item:DateTimeSent", "sentDateTime", f.read_stamp, f.write_stamp),
        Field("DateTimeReceived", "item:DateTimeReceived", "receivedDateTime", f.read_stamp, f.write_stamp),
        Field("IsDraft", "item:IsDraft", "isDraft", f.read_bool, f.write_bool),
        Field("Sender", "message:Sender", "sender", f.read_mailbox, f.write_mailbox),
        Field("ToRecipients", "message:ToRecipients", "toRecipients", f.read_recipients, f.write_recipients),
        Field("CcRecipients", "message:CcRecipients", "ccRecipients", f.read_recipients, f.write_recipients),
        Field("BccRecipients", "message:BccRecipients", "bccRecipients", f.read_recipients, f.write_recipients),
        Field(
            "IsReadReceiptRequested",
            "message:IsReadReceiptRequested",
            "isReadReceiptRequested",
            f.read_bool,
            f.write_bool,
        ),
        Field(
            "IsDeliveryReceiptRequested",
            "message:IsDeliveryReceiptRequested",
            "isDeliveryReceiptRequested",
            f.read_bool,
            f.write_bool,
        ),
        Field("From", "message:From", "from", f.read_mailbox, f.write_mailbox),
        _text("InternetMessageId", "message:InternetMessageId", "internetMessageId"),
        Field("IsRead", "message:IsRead", "isRead", f.read_bool, f.write_bool),
        Field("ReplyTo", "message:ReplyTo", "replyTo", f.read_recipients, f.write_recipients),
    ],
    _message_defaults,
    _message_extras,
)

KIND_BY_FOLDER = {
    "contacts": CONTACT,
    "calendar": CALENDAR_ITEM,
    "tasks": TASK,
    "inbox": MESSAGE,
    "sentitems": MESSAGE,
}
KIND_BY_TAG = {kind.tag: kind for kind in (CONTACT, CALENDAR_ITEM, TASK, MESSAGE)}


# EWS -> Graph --------------------------------------------------------------------------------------
def _apply_child(kind: Kind, data: Data, child: Element, mode: str) -> None:
    tag = local(child.tag)
    if tag == "ExtendedProperty":
        apply_extended(data, child)
        return
    if tag in READ_ONLY:
        return
    field = kind.field_for_tag(tag)
    if field is None:
        private(data, "extra")[tag] = _stored(child)
    elif mode == "append":
        field.append(data, child)
    else:
        field.apply(data, child)


def _stored(elem: Element) -> str | dict[str, str]:
    """An element no field maps: its text when it is a plain leaf, else its XML."""
    if len(elem) or elem.attrib:
        return {"xml": ET.tostring(elem, encoding="unicode")}
    return elem.text or ""


def _restored(tag: str, value: str | dict[str, str]) -> Element:
    return ET.fromstring(value["xml"]) if isinstance(value, dict) else el(t(tag), value)


def _converted(action: Callable[[], None]) -> None:
    try:
        action()
    except (ValueError, TypeError) as exc:
        raise EwsError("ErrorInvalidValueForProperty", f"A property value is invalid: {exc}") from exc


def build_item(kind: Kind, elem: Element, owner: Mailbox) -> Data:
    """The Graph-shaped data of a new item from its CreateItem element."""
    data: Data = {}

    def fill() -> None:
        for child in elem:
            _apply_child(kind, data, child, "set")

    _converted(fill)
    kind.recompute(None, data)
    kind.complete(data, owner)
    prune_private(data)
    return data


def updated_item(kind: Kind, data: Data, updates: Element, owner: Mailbox) -> Data:
    """A copy of ``data`` with an UpdateItem ``t:Updates`` element applied."""
    work = copy.deepcopy(data)

    def change() -> None:
        for update in updates:
            name = local(update.tag)
            if name == "DeleteItemField":
                _delete_field(kind, work, update[0])
                continue
            for child in update[1]:
                _apply_child(kind, work, child, UPDATE_KINDS.get(name, "set"))

    _converted(change)
    kind.recompute(data, work)
    kind.complete(work, owner)
    prune_private(work)
    return work


def _delete_field(kind: Kind, data: Data, ref: Element) -> None:
    if local(ref.tag) == "ExtendedFieldURI":
        delete_extended(data, ref)
        return
    uri = ref.get("FieldURI", "")
    field = kind.field_for_uri(uri)
    if field is not None:
        field.delete(data, ref)
    else:
        private(data, "extra").pop(uri.rpartition(":")[2], None)


def patch_between(old: Data, new: Data) -> dict[str, Any]:
    """The tenant.update patch turning ``old`` into ``new`` (removed keys map to None)."""
    patch = {key: value for key, value in new.items() if old.get(key) != value}
    patch.update({key: None for key in old if key not in new})
    return patch


# Graph -> EWS --------------------------------------------------------------------------------------
def render_item(kind: Kind, item: Item, address: str) -> Element:
    """The full EWS element of ``item`` (without extended properties, which are added on request)."""
    node = el(t(kind.tag))
    sub(node, t("ItemId"), Id=item.id, ChangeKey=item.change_key)
    node.append(id_element("ParentFolderId", address, item.folder))
    sub(node, t("ItemClass"), kind.item_class)
    sub(node, t("DateTimeCreated"), ews_datetime(item.created))
    sub(node, t("LastModifiedTime"), ews_datetime(item.modified))
    for field in kind.fields:
        rendered = field.render(item.data)
        if rendered is not None:
            node.append(rendered)
    node.extend(kind.extras(item))
    node.extend(_restored(tag, value) for tag, value in peek_private(item.data, "extra").items())
    for number, attachment_id in enumerate(node.iterfind(f"{t('Attachments')}/*/{t('AttachmentId')}")):
        attachment_id.set("Id", attachment_key(item.id, number))
    return node


def attachment_key(item_id: str, number: int) -> str:
    """The opaque, mailbox-wide unique id of the ``number``-th attachment of an item."""
    return base64.urlsafe_b64encode(f"{item_id}/{number}".encode()).decode()


def parse_attachment_key(key: str) -> tuple[str, int]:
    """The item id and position an attachment id stands for; ErrorInvalidIdMalformed when it is not one."""
    try:
        item_id, _, number = base64.urlsafe_b64decode(key.encode()).decode().rpartition("/")
        return item_id, int(number)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.") from exc


def render_id(kind: Kind, item: Item) -> Element:
    """The IdOnly shape of ``item``."""
    node = el(t(kind.tag))
    sub(node, t("ItemId"), Id=item.id, ChangeKey=item.change_key)
    return node
