"""Fields: how one EWS item element maps to the Graph-shaped item data, in both directions.

A :class:`Field` reads an element into the data (``apply``, ``append``), removes it (``delete``,
addressed by the FieldURI of a DeleteItemField) and renders it back (``render``). Readers and
writers for the common EWS value shapes live here too.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from typing import Any
from xml.etree.ElementTree import Element

from fakes.ews.soap import EwsError, el, local, sub, t, text_of
from fakes.ews.values import (
    Data,
    ews_datetime,
    get_path,
    graph_when,
    parse_ews_datetime,
    parse_graph_when,
    peek_private,
    pop_path,
    private,
    set_path,
)
from fakes.tenant import html_to_text

Reader = Callable[[Element], Any]
Writer = Callable[[str, Any], Element | None]

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")


# readers and writers -------------------------------------------------------------------------------
def read_text(elem: Element) -> str:
    return elem.text or ""


def write_text(tag: str, value: Any) -> Element:
    return el(t(tag), str(value))


def read_bool(elem: Element) -> bool:
    return text_of(elem).lower() in ("true", "1")


def write_bool(tag: str, value: Any) -> Element:
    return el(t(tag), "true" if value else "false")


def read_int(elem: Element) -> int:
    return int(text_of(elem, "0"))


def read_number(elem: Element) -> int | float:
    """An xs:double, as an int when it is whole (``100`` for ``100.0``)."""
    value = float(text_of(elem, "0"))
    return int(value) if value.is_integer() else value


def write_number(tag: str, value: Any) -> Element:
    return el(t(tag), str(value))


def read_stamp(elem: Element) -> str:
    """An EWS date-time as a Graph timestamp string (``2025-01-01T09:00:00Z``)."""
    return ews_datetime(parse_ews_datetime(text_of(elem)))


def write_stamp(tag: str, value: Any) -> Element:
    return el(t(tag), ews_datetime(parse_ews_datetime(str(value))))


def read_when(elem: Element) -> dict[str, str]:
    """An EWS date-time as a Graph dateTimeTimeZone in UTC."""
    return graph_when(parse_ews_datetime(text_of(elem)))


def write_when(tag: str, value: Any) -> Element:
    return el(t(tag), ews_datetime(parse_graph_when(value)))


def read_body(elem: Element) -> dict[str, str]:
    kind = "html" if elem.get("BodyType", "Text").lower() == "html" else "text"
    return {"contentType": kind, "content": elem.text or ""}


def write_body(tag: str, value: Any) -> Element:
    kind = "HTML" if str(value.get("contentType", "text")).lower() == "html" else "Text"
    return el(t(tag), str(value.get("content") or ""), BodyType=kind)


def write_text_body(tag: str, value: Any) -> Element:
    """TextBody (Exchange 2013 and later, read-only): the body as plain text, an HTML one converted."""
    content = str(value.get("content") or "")
    if str(value.get("contentType", "text")).lower() == "html":
        content = html_to_text(content)
    return el(t(tag), content, BodyType="Text")


def write_notes(tag: str, value: Any) -> Element:
    """A plain-text Graph property (contact ``personalNotes``) as an EWS Body."""
    return el(t(tag), str(value), BodyType="Text")


def read_strings(elem: Element) -> list[str]:
    return [child.text or "" for child in elem.findall(t("String"))]


def write_strings(tag: str, value: Any) -> Element | None:
    if not value:
        return None
    node = el(t(tag))
    for text in value:
        sub(node, t("String"), str(text))
    return node


def read_zone(elem: Element) -> str:
    return elem.get("Id") or elem.get("Name") or "UTC"


def write_zone(tag: str, value: Any) -> Element:
    return el(t(tag), Id=str(value))


def choice(pairs: Sequence[tuple[str, str]]) -> tuple[Reader, Callable[[str, Any], Element]]:
    """A reader and writer for an EWS enumeration whose values map one to one to Graph values."""
    to_graph = dict(pairs)
    to_ews = {graph: ews for ews, graph in pairs}

    def read(elem: Element) -> str:
        text = text_of(elem)
        return to_graph.get(text, text[:1].lower() + text[1:])

    def write(tag: str, value: Any) -> Element:
        text = str(value)
        return el(t(tag), to_ews.get(text, text[:1].upper() + text[1:]))

    return read, write


# mailboxes -----------------------------------------------------------------------------------------
def checked_address(address: str, code: str) -> str:
    """``address`` when it looks like an SMTP address; otherwise the EWS error ``code``."""
    if not _ADDRESS.match(address):
        raise EwsError(code, f"The e-mail address {address!r} is invalid.")
    return address


def read_mailbox_elem(mailbox: Element, code: str = "ErrorInvalidSmtpAddress") -> dict[str, Any]:
    """A ``t:Mailbox`` element as a Graph recipient ``{"emailAddress": {"name", "address"}}``."""
    address = checked_address(text_of(mailbox.find(t("EmailAddress"))), code)
    return {"emailAddress": {"name": text_of(mailbox.find(t("Name")), address), "address": address}}


def write_mailbox_elem(recipient: Any) -> Element:
    email = recipient.get("emailAddress") or {}
    mailbox = el(t("Mailbox"))
    if email.get("name"):
        sub(mailbox, t("Name"), str(email["name"]))
    sub(mailbox, t("EmailAddress"), str(email.get("address") or ""))
    sub(mailbox, t("RoutingType"), "SMTP")
    sub(mailbox, t("MailboxType"), "Mailbox")
    return mailbox


def read_mailbox(elem: Element) -> dict[str, Any] | None:
    """A single-mailbox property (From, Sender, Organizer)."""
    mailbox = elem.find(t("Mailbox"))
    return None if mailbox is None else read_mailbox_elem(mailbox)


def write_mailbox(tag: str, value: Any) -> Element:
    node = el(t(tag))
    node.append(write_mailbox_elem(value))
    return node


def read_recipients(elem: Element) -> list[dict[str, Any]]:
    return [read_mailbox_elem(mailbox) for mailbox in elem.findall(t("Mailbox"))]


def write_recipients(tag: str, value: Any) -> Element | None:
    if not value:
        return None
    node = el(t(tag))
    node.extend(write_mailbox_elem(recipient) for recipient in value)
    return node


# attachments ---------------------------------------------------------------------------------------
def read_attachments(elem: Element) -> list[dict[str, Any]]:
    """FileAttachments sent inline in a CreateItem, as Graph fileAttachments."""
    found = []
    for node in elem.findall(t("FileAttachment")):
        content = base64.b64decode(text_of(node.find(t("Content"))))
        found.append(
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": text_of(node.find(t("Name"))),
                "contentType": text_of(node.find(t("ContentType")), "application/octet-stream"),
                "size": len(content),
                "isInline": False,
                "contentBytes": base64.b64encode(content).decode(),
            }
        )
    return found


def write_attachments(tag: str, value: Any) -> Element | None:
    if not value:
        return None
    node = el(t(tag))
    for number, attachment in enumerate(value):
        file = sub(node, t("FileAttachment"))
        sub(file, t("AttachmentId"), Id=str(attachment.get("id") or f"att{number}"))
        sub(file, t("Name"), str(attachment.get("name") or ""))
        sub(file, t("ContentType"), str(attachment.get("contentType") or "application/octet-stream"))
        sub(file, t("Size"), str(attachment.get("size") or 0))
        sub(file, t("IsInline"), "true" if attachment.get("isInline") else "false")
    return node


# fields --------------------------------------------------------------------------------------------
def _appended(old: Any, new: Any) -> Any:
    if isinstance(old, list) and isinstance(new, list):
        return old + new
    if isinstance(old, dict) and isinstance(new, dict) and "content" in new:
        return {**new, "content": str(old.get("content") or "") + str(new["content"])}
    if isinstance(old, str) and isinstance(new, str):
        return old + new
    return new


class Field:
    """One EWS element stored at a dotted key path of the Graph-shaped data."""

    def __init__(self, tag: str, uri: str, path: str, read: Reader = read_text, write: Writer = write_text) -> None:
        self.tag = tag
        self.uri = uri
        self.path = path
        self.read = read
        self.write = write

    def matches(self, uri: str) -> bool:
        """Whether a FieldURI / IndexedFieldURI value addresses this field."""
        return uri == self.uri

    def apply(self, data: Data, elem: Element) -> None:
        """SetItemField semantics: replace the value with the element's."""
        value = self.read(elem)
        if value is None:
            pop_path(data, self.path)
        else:
            set_path(data, self.path, value)

    def append(self, data: Data, elem: Element) -> None:
        """AppendToItemField semantics: extend lists, concatenate text and bodies."""
        set_path(data, self.path, _appended(get_path(data, self.path), self.read(elem)))

    def delete(self, data: Data, ref: Element) -> None:
        """DeleteItemField semantics."""
        pop_path(data, self.path)

    def render(self, data: Data) -> Element | None:
        value = get_path(data, self.path)
        return None if value is None else self.write(self.tag, value)


_RESPONSES = (
    ("Unknown", "none"),
    ("Organizer", "organizer"),
    ("Tentative", "tentativelyAccepted"),
    ("Accept", "accepted"),
    ("Decline", "declined"),
    ("NoResponseReceived", "notResponded"),
)
_READ_RESPONSE, _WRITE_RESPONSE = choice(_RESPONSES)


class AttendeesField(Field):
    """RequiredAttendees / OptionalAttendees / Resources: the Graph attendees of one type."""

    def __init__(self, tag: str, uri: str, kind: str) -> None:
        super().__init__(tag, uri, "attendees")
        self.kind = kind

    def _others(self, data: Data) -> list[Any]:
        return [a for a in data.get("attendees") or [] if a.get("type") != self.kind]

    def _parse(self, elem: Element) -> list[dict[str, Any]]:
        parsed = []
        for attendee in elem.findall(t("Attendee")):
            mailbox = attendee.find(t("Mailbox"))
            response = attendee.find(t("ResponseType"))
            entry = read_mailbox_elem(mailbox if mailbox is not None else el(t("Mailbox")))
            answer = "none" if response is None else _READ_RESPONSE(response)
            entry.update(type=self.kind, status={"response": answer, "time": "0001-01-01T00:00:00Z"})
            parsed.append(entry)
        return parsed

    def apply(self, data: Data, elem: Element) -> None:
        data["attendees"] = self._others(data) + self._parse(elem)

    def append(self, data: Data, elem: Element) -> None:
        data["attendees"] = list(data.get("attendees") or []) + self._parse(elem)

    def delete(self, data: Data, ref: Element) -> None:
        data["attendees"] = self._others(data)

    def render(self, data: Data) -> Element | None:
        mine = [a for a in data.get("attendees") or [] if a.get("type") == self.kind]
        if not mine:
            return None
        node = el(t(self.tag))
        for attendee in mine:
            entry = sub(node, t("Attendee"))
            entry.append(write_mailbox_elem(attendee))
            response = (attendee.get("status") or {}).get("response") or "none"
            entry.append(_WRITE_RESPONSE("ResponseType", response))
        return node


class SlotField(Field):
    """An EWS dictionary (``Entry`` elements with a ``Key``) spread over several Graph keys."""

    keys: tuple[str, ...] = ()

    def slots(self, data: Data) -> dict[str, Any]:
        """The entries currently stored in ``data``, by EWS key."""
        raise NotImplementedError

    def store(self, data: Data, slots: dict[str, Any]) -> None:
        """Write ``slots`` back into ``data`` in Graph shape."""
        raise NotImplementedError

    def read_entry(self, entry: Element, old: Any) -> Any:
        return entry.text or ""

    def write_entry(self, key: str, value: Any) -> Element:
        return el(t("Entry"), str(value), Key=key)

    def apply(self, data: Data, elem: Element) -> None:
        slots = self.slots(data)
        for entry in elem.findall(t("Entry")):
            key = entry.get("Key", "")
            slots[key] = self.read_entry(entry, slots.get(key))
        self.store(data, slots)

    append = apply

    def delete(self, data: Data, ref: Element) -> None:
        slots = self.slots(data)
        slots.pop(ref.get("FieldIndex", ""), None)
        self.store(data, slots)

    def render(self, data: Data) -> Element | None:
        slots = self.slots(data)
        if not slots:
            return None
        node = el(t(self.tag))
        ordered = [k for k in self.keys if k in slots] + sorted(k for k in slots if k not in self.keys)
        node.extend(self.write_entry(key, slots[key]) for key in ordered)
        return node


def _list_slots(data: Data, name: str, keys: Sequence[str]) -> dict[str, Any]:
    """A Graph list (``businessPhones``) as EWS slots; a private hint remembers non-default keys."""
    values = list(data.get(name) or [])
    hint = peek_private(data, "slots").get(name)
    used = hint if hint and len(hint) == len(values) else keys[: len(values)]
    return dict(zip(used, values, strict=False))


def _store_list(data: Data, name: str, keys: Sequence[str], slots: dict[str, Any]) -> None:
    present = [k for k in keys if k in slots]
    data[name] = [slots[k] for k in present]
    hints = private(data, "slots")
    if present == list(keys[: len(present)]):
        hints.pop(name, None)
    else:
        hints[name] = present


class EmailAddressesField(SlotField):
    """Contact EmailAddresses (EmailAddress1..3) <-> Graph ``emailAddresses``."""

    keys = ("EmailAddress1", "EmailAddress2", "EmailAddress3")

    def __init__(self) -> None:
        super().__init__("EmailAddresses", "contacts:EmailAddress", "emailAddresses")

    def slots(self, data: Data) -> dict[str, Any]:
        return _list_slots(data, "emailAddresses", self.keys)

    def store(self, data: Data, slots: dict[str, Any]) -> None:
        _store_list(data, "emailAddresses", self.keys, slots)

    def read_entry(self, entry: Element, old: Any) -> Any:
        address = checked_address(text_of(entry), "ErrorInvalidContactEmailAddress")
        return {"name": entry.get("Name") or address, "address": address}

    def write_entry(self, key: str, value: Any) -> Element:
        return el(t("Entry"), str(value.get("address") or ""), Key=key)


_PHONE_LISTS = {"businessPhones": ("BusinessPhone", "BusinessPhone2"), "homePhones": ("HomePhone", "HomePhone2")}


class PhoneNumbersField(SlotField):
    """Contact PhoneNumbers <-> Graph businessPhones, homePhones and mobilePhone (other keys kept privately)."""

    keys = ("BusinessPhone", "BusinessPhone2", "HomePhone", "HomePhone2", "MobilePhone")

    def __init__(self) -> None:
        super().__init__("PhoneNumbers", "contacts:PhoneNumber", "businessPhones")

    def slots(self, data: Data) -> dict[str, Any]:
        slots = dict(peek_private(data, "phones"))
        for name, keys in _PHONE_LISTS.items():
            slots.update(_list_slots(data, name, keys))
        if data.get("mobilePhone"):
            slots["MobilePhone"] = data["mobilePhone"]
        return slots

    def store(self, data: Data, slots: dict[str, Any]) -> None:
        for name, keys in _PHONE_LISTS.items():
            _store_list(data, name, keys, slots)
        if slots.get("MobilePhone"):
            data["mobilePhone"] = slots["MobilePhone"]
        else:
            data.pop("mobilePhone", None)
        others = private(data, "phones")
        others.clear()
        others.update({k: v for k, v in slots.items() if k not in self.keys})


_ADDRESSES = {"Business": "businessAddress", "Home": "homeAddress", "Other": "otherAddress"}
_ADDRESS_PARTS = {
    "Street": "street",
    "City": "city",
    "State": "state",
    "CountryOrRegion": "countryOrRegion",
    "PostalCode": "postalCode",
}


class PhysicalAddressesField(SlotField):
    """Contact PhysicalAddresses (Business/Home/Other) <-> Graph businessAddress, homeAddress, otherAddress."""

    keys = tuple(_ADDRESSES)

    def __init__(self) -> None:
        super().__init__("PhysicalAddresses", "contacts:PhysicalAddress", "businessAddress")

    def matches(self, uri: str) -> bool:
        return uri.startswith("contacts:PhysicalAddress:")

    def slots(self, data: Data) -> dict[str, Any]:
        slots = {}
        for key, name in _ADDRESSES.items():
            address = data.get(name) or {}
            parts = {tag: address[part] for tag, part in _ADDRESS_PARTS.items() if address.get(part)}
            if parts:
                slots[key] = parts
        return slots

    def store(self, data: Data, slots: dict[str, Any]) -> None:
        for key, name in _ADDRESSES.items():
            parts = slots.get(key) or {}
            if parts or name in data:
                data[name] = {part: parts[tag] for tag, part in _ADDRESS_PARTS.items() if tag in parts}

    def read_entry(self, entry: Element, old: Any) -> Any:
        merged = dict(old or {})
        merged.update({local(child.tag): child.text or "" for child in entry})
        return merged

    def write_entry(self, key: str, value: Any) -> Element:
        entry = el(t("Entry"), Key=key)
        for tag in _ADDRESS_PARTS:
            if value.get(tag):
                sub(entry, t(tag), str(value[tag]))
        return entry

    def delete(self, data: Data, ref: Element) -> None:
        slots = self.slots(data)
        key = ref.get("FieldIndex", "")
        part = ref.get("FieldURI", "").rpartition(":")[2]
        slots.get(key, {}).pop(part, None)
        self.store(data, slots)
