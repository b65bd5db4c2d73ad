"""Extended (MAPI) properties: EWS ``ExtendedFieldURI`` <-> Graph extended-property ids.

Graph keeps them on the resource as ``singleValueExtendedProperties`` (and
``multiValueExtendedProperties`` for ``...Array`` types): ``[{"id": "String {<guid>} Name <name>",
"value": "..."}]``. The id is built from the ExtendedFieldURI: ``<PropertyType> {<set guid>} Name
<PropertyName>``, ``<PropertyType> {<set guid>} Id 0x<PropertyId>`` or ``<PropertyType>
0x<PropertyTag>``; distinguished property sets are replaced by their GUIDs. Ids match
case-insensitively.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

from fakes.ews.soap import EwsError, el, sub, t, text_of
from fakes.ews.values import Data

DISTINGUISHED_SETS = {
    "Meeting": "6ed8da90-450b-101b-98da-00aa003f1305",
    "Appointment": "00062002-0000-0000-c000-000000000046",
    "Common": "00062008-0000-0000-c000-000000000046",
    "PublicStrings": "00020329-0000-0000-c000-000000000046",
    "Address": "00062004-0000-0000-c000-000000000046",
    "InternetHeaders": "00020386-0000-0000-c000-000000000046",
    "CalendarAssistant": "11000e07-b51b-40d6-af21-caa85edab1d0",
    "UnifiedMessaging": "4442858e-a9e3-4e80-b900-317a210cc15b",
    "Task": "00062003-0000-0000-c000-000000000046",
    "Sharing": "00062040-0000-0000-c000-000000000046",
}


def property_id(uri: Element) -> str:
    """The Graph id of the extended property addressed by an ``ExtendedFieldURI`` element."""
    kind = uri.get("PropertyType", "String")
    if uri.get("PropertyTag"):
        return f"{kind} 0x{int(uri.get('PropertyTag', '0'), 0):04x}"
    set_id = uri.get("PropertySetId") or DISTINGUISHED_SETS.get(uri.get("DistinguishedPropertySetId", ""))
    if not set_id:
        raise EwsError("ErrorInvalidExtendedProperty", "The extended property has no property set.")
    if uri.get("PropertyName") is not None:
        return f"{kind} {{{set_id.lower()}}} Name {uri.get('PropertyName')}"
    return f"{kind} {{{set_id.lower()}}} Id 0x{int(uri.get('PropertyId', '0'), 0):x}"


def _collection(uri: Element) -> str:
    is_array = uri.get("PropertyType", "String").endswith("Array")
    return "multiValueExtendedProperties" if is_array else "singleValueExtendedProperties"


def _find(data: Data, uri: Element) -> dict[str, Any] | None:
    wanted = property_id(uri).lower()
    entries = data.get(_collection(uri)) or []
    return next((e for e in entries if str(e.get("id", "")).lower() == wanted), None)


def _without(data: Data, uri: Element) -> list[dict[str, Any]]:
    wanted = property_id(uri).lower()
    return [e for e in data.get(_collection(uri)) or [] if str(e.get("id", "")).lower() != wanted]


def apply_extended(data: Data, prop: Element) -> None:
    """Store a ``t:ExtendedProperty`` element (SetItemField / CreateItem)."""
    uri = prop.find(t("ExtendedFieldURI"))
    if uri is None:
        raise EwsError("ErrorInvalidExtendedProperty", "ExtendedProperty without ExtendedFieldURI.")
    values = prop.find(t("Values"))
    value: Any = text_of(prop.find(t("Value")))
    if values is not None:
        value = [child.text or "" for child in values.findall(t("Value"))]
    data[_collection(uri)] = [*_without(data, uri), {"id": property_id(uri), "value": value}]


def delete_extended(data: Data, uri: Element) -> None:
    """Remove the extended property addressed by ``uri`` (DeleteItemField)."""
    remaining = _without(data, uri)
    if remaining:
        data[_collection(uri)] = remaining
    else:
        data.pop(_collection(uri), None)


def render_extended(data: Data, uri: Element) -> Element | None:
    """The ``t:ExtendedProperty`` element for a requested ``ExtendedFieldURI``, echoing its attributes."""
    entry = _find(data, uri)
    if entry is None:
        return None
    prop = el(t("ExtendedProperty"))
    prop.append(el(t("ExtendedFieldURI"), **uri.attrib))
    value = entry.get("value")
    if isinstance(value, list):
        values = sub(prop, t("Values"))
        for item in value:
            sub(values, t("Value"), str(item))
    else:
        sub(prop, t("Value"), "" if value is None else str(value))
    return prop


def extended_values(data: Data, uri: Element) -> list[str]:
    """The value(s) of an extended property as strings, for restrictions and sorting."""
    entry = _find(data, uri)
    if entry is None:
        return []
    value = entry.get("value")
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
