"""SOAP 1.1 plumbing of the fake EWS: namespaces, element helpers, errors, envelopes and faults."""

from __future__ import annotations

from xml.etree import ElementTree as ET
from xml.etree.ElementTree import Element

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
MESSAGES_NS = "http://schemas.microsoft.com/exchange/services/2006/messages"
TYPES_NS = "http://schemas.microsoft.com/exchange/services/2006/types"
ERRORS_NS = "http://schemas.microsoft.com/exchange/services/2006/errors"
XML_NS = "http://www.w3.org/XML/1998/namespace"

for _prefix, _uri in (("s", SOAP_NS), ("m", MESSAGES_NS), ("t", TYPES_NS), ("e", ERRORS_NS)):
    ET.register_namespace(_prefix, _uri)


def t(tag: str) -> str:
    """The qualified name of ``tag`` in the EWS types namespace."""
    return f"{{{TYPES_NS}}}{tag}"


def m(tag: str) -> str:
    """The qualified name of ``tag`` in the EWS messages namespace."""
    return f"{{{MESSAGES_NS}}}{tag}"


def local(tag: str) -> str:
    """The local part of a qualified tag name."""
    return tag.rpartition("}")[2]


def el(tag: str, text: str | None = None, **attrs: str) -> Element:
    """A new element with optional text and attributes."""
    elem = Element(tag, attrs)
    elem.text = text
    return elem


def sub(parent: Element, tag: str, text: str | None = None, **attrs: str) -> Element:
    """Append a new child element to ``parent`` and return it."""
    child = el(tag, text, **attrs)
    parent.append(child)
    return child


def text_of(elem: Element | None, default: str = "") -> str:
    """The stripped text of ``elem``, or ``default`` when the element or its text is missing."""
    if elem is None or elem.text is None:
        return default
    return elem.text.strip()


class EwsError(Exception):
    """An error answered in a response message (``ResponseClass="Error"``)."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


class SoapFault(Exception):
    """An error that fails the whole request with a SOAP fault (HTTP 500)."""

    def __init__(self, code: str, text: str, back_off_ms: int | None = None, violation: str | None = None) -> None:
        super().__init__(f"{code}: {text} {violation or ''}".strip())
        self.code = code
        self.text = text
        self.back_off_ms = back_off_ms
        self.violation = violation


def success_message(operation: str) -> Element:
    """A ``<Operation>ResponseMessage`` with ResponseClass Success and ResponseCode NoError."""
    message = el(m(f"{operation}ResponseMessage"), ResponseClass="Success")
    sub(message, m("ResponseCode"), "NoError")
    return message


def error_message(operation: str, error: EwsError) -> Element:
    """A ``<Operation>ResponseMessage`` carrying ``error`` the way Exchange reports item-level errors."""
    message = el(m(f"{operation}ResponseMessage"), ResponseClass="Error")
    sub(message, m("MessageText"), error.text)
    sub(message, m("ResponseCode"), error.code)
    sub(message, m("DescriptiveLinkKey"), "0")
    return message


def envelope(operation: str, messages: list[Element], version_header: Element) -> bytes:
    """The serialized SOAP envelope answering ``operation`` with its response messages."""
    root = el(f"{{{SOAP_NS}}}Envelope")
    header = sub(root, f"{{{SOAP_NS}}}Header")
    header.append(version_header)
    body = sub(root, f"{{{SOAP_NS}}}Body")
    response = sub(body, m(f"{operation}Response"))
    sub(response, m("ResponseMessages")).extend(messages)
    return _serialize(root)


def fault_envelope(fault: SoapFault) -> bytes:
    """The serialized SOAP fault for ``fault``, shaped like Exchange's (``detail`` with e:ResponseCode)."""
    root = el(f"{{{SOAP_NS}}}Envelope")
    body = sub(root, f"{{{SOAP_NS}}}Body")
    node = sub(body, f"{{{SOAP_NS}}}Fault")
    sub(node, "faultcode", f"a:{fault.code}", **{"xmlns:a": TYPES_NS})
    sub(node, "faultstring", fault.text, **{f"{{{XML_NS}}}lang": "en-US"})
    detail = sub(node, "detail")
    sub(detail, f"{{{ERRORS_NS}}}ResponseCode", fault.code)
    sub(detail, f"{{{ERRORS_NS}}}Message", fault.text)
    if fault.back_off_ms is not None:
        message_xml = sub(detail, t("MessageXml"))
        sub(message_xml, t("Value"), str(fault.back_off_ms), Name="BackOffMilliseconds")
    if fault.violation is not None:
        sub(sub(detail, t("MessageXml")), t("Violation"), fault.violation)
    return _serialize(root)


def _serialize(root: Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
