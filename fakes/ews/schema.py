"""Request checks derived from the published EWS schema (messages.xsd, types.xsd), as our own rules.

Exchange validates every request against its schema before running it, and answers a violation
with a SOAP fault ``ErrorSchemaValidation`` whose ``MessageXml`` names the ``Violation``. The
rules below are the parts of the schema a client can get wrong in practice: required request
elements and attributes, enumerations, and numeric ranges (MaxChangesReturned is 1..512).
Unknown operations and elements are not checked here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from fakes.ews.soap import SoapFault, local, m, t, text_of
from fakes.ews.versions import REQUEST_VERSIONS

SEND_CANCELLATIONS = ("SendToNone", "SendOnlyToAll", "SendToAllAndSaveCopy")
SEND_UPDATES = ("SendToNone", "SendOnlyToAll", "SendOnlyToChanged", "SendToAllAndSaveCopy", "SendToChangedAndSaveCopy")
DISPOSITIONS = ("SaveOnly", "SendOnly", "SendAndSaveCopy")


@dataclass(frozen=True)
class Rule:
    """What one request element must carry: child elements (messages namespace) and attributes.

    ``attributes`` maps a name to (allowed values or () for any, required).
    """

    children: tuple[str, ...] = ()
    attributes: dict[str, tuple[tuple[str, ...], bool]] = field(default_factory=dict)


OPERATIONS = {
    "GetFolder": Rule(("FolderShape", "FolderIds")),
    "FindFolder": Rule(("FolderShape", "ParentFolderIds"), {"Traversal": (("Shallow", "Deep", "SoftDeleted"), True)}),
    "SyncFolderHierarchy": Rule(("FolderShape",)),
    "FindItem": Rule(("ItemShape", "ParentFolderIds"), {"Traversal": (("Shallow", "SoftDeleted", "Associated"), True)}),
    "GetItem": Rule(("ItemShape", "ItemIds")),
    "CreateItem": Rule(
        ("Items",), {"MessageDisposition": (DISPOSITIONS, False), "SendMeetingInvitations": (SEND_CANCELLATIONS, False)}
    ),
    "UpdateItem": Rule(
        ("ItemChanges",),
        {
            "ConflictResolution": (("NeverOverwrite", "AutoResolve", "AlwaysOverwrite"), True),
            "MessageDisposition": (DISPOSITIONS, False),
            "SendMeetingInvitationsOrCancellations": (SEND_UPDATES, False),
        },
    ),
    "DeleteItem": Rule(
        ("ItemIds",),
        {
            "DeleteType": (("HardDelete", "SoftDelete", "MoveToDeletedItems"), True),
            "SendMeetingCancellations": (SEND_CANCELLATIONS, False),
            "AffectedTaskOccurrences": (("AllOccurrences", "SpecifiedOccurrenceOnly"), False),
        },
    ),
    "GetAttachment": Rule(("AttachmentIds",)),
    "MoveItem": Rule(("ToFolderId", "ItemIds")),
    "SyncFolderItems": Rule(("ItemShape", "SyncFolderId", "MaxChangesReturned")),
}

#: Elements anywhere in a request, by qualified name: their attribute rules.
ELEMENTS = {
    t("IndexedPageItemView"): Rule(attributes={"Offset": ((), True), "BasePoint": (("Beginning", "End"), True)}),
    t("IndexedPageFolderView"): Rule(attributes={"Offset": ((), True), "BasePoint": (("Beginning", "End"), True)}),
    t("CalendarView"): Rule(attributes={"StartDate": ((), True), "EndDate": ((), True)}),
    t("OccurrenceItemId"): Rule(attributes={"RecurringMasterId": ((), True), "InstanceIndex": ((), True)}),
    t("BaseShape"): Rule(),
}
INTEGER_ATTRIBUTES = {"Offset", "MaxEntriesReturned", "InstanceIndex"}
#: Request elements whose type is a NonEmptyArrayOf...: at least one child.
NON_EMPTY = tuple(
    m(name) for name in ("ItemIds", "FolderIds", "ParentFolderIds", "Items", "ItemChanges", "AttachmentIds")
)
#: Elements that must hold a child of their own (ItemResponseShapeType, FolderResponseShapeType, ItemChangeType).
REQUIRED_INSIDE = {m("ItemShape"): t("BaseShape"), m("FolderShape"): t("BaseShape"), t("ItemChange"): t("Updates")}
BASE_SHAPES = ("IdOnly", "Default", "AllProperties")
MAX_SYNC_CHANGES = 512
#: DistinguishedFolderIdNameType: the names of the first schema, and those Exchange2010_SP1 added (the
#: dumpster and the archive). Later schemas add more; names are not checked for requests from Exchange2013 on.
FOLDER_NAMES_2007 = frozenset(
    {
        *("calendar", "contacts", "deleteditems", "drafts", "inbox", "journal", "notes", "outbox", "sentitems"),
        *("tasks", "msgfolderroot", "publicfoldersroot", "root", "junkemail", "searchfolders", "voicemail"),
    }
)
_DUMPSTER = ("recoverableitemsroot", "recoverableitemsdeletions", "recoverableitemsversions", "recoverableitemspurges")
FOLDER_NAMES_2010_SP1 = frozenset(
    {
        *_DUMPSTER,
        *(f"archive{name}" for name in _DUMPSTER),
        "archiveroot",
        "archivemsgfolderroot",
        "archivedeleteditems",
    }
)


def violation(text: str) -> SoapFault:
    """The fault Exchange answers a schema violation with."""
    return SoapFault("ErrorSchemaValidation", "The request failed schema validation.", violation=text)


def check(operation: Element, version: str = "Exchange2016") -> None:
    """Raise ErrorSchemaValidation when ``operation`` (a request of schema ``version``) breaks one of the rules."""
    name = local(operation.tag)
    rule = OPERATIONS.get(name)
    if rule is not None:
        _check_element(operation, name, rule)
    for node in operation.iter():
        if node.tag in NON_EMPTY and len(node) == 0:
            raise violation(f"The element '{local(node.tag)}' has incomplete content: it needs at least one child.")
        inside = REQUIRED_INSIDE.get(node.tag)
        if inside is not None and node.find(inside) is None:
            raise violation(f"The element '{local(node.tag)}' has incomplete content: '{local(inside)}' is expected.")
        found = ELEMENTS.get(node.tag)
        if found is not None:
            _check_element(node, local(node.tag), found)
        if node.tag == t("DistinguishedFolderId"):
            _check_folder_name(node.get("Id", ""), version)
        if node.tag == t("BaseShape") and text_of(node) not in BASE_SHAPES:
            raise violation(f"The 'BaseShape' element has an invalid value {text_of(node)!r}: one of {BASE_SHAPES}.")
    if name == "SyncFolderItems":
        _check_max_changes(operation)


def _check_element(node: Element, name: str, rule: Rule) -> None:
    for child in rule.children:
        if node.find(m(child)) is None:
            raise violation(f"The element '{name}' has incomplete content: '{child}' is expected.")
    for attribute, (allowed, required) in rule.attributes.items():
        value = node.get(attribute)
        if value is None:
            if required:
                raise violation(f"The required attribute '{attribute}' of '{name}' is missing.")
            continue
        if allowed and value not in allowed:
            raise violation(f"The '{attribute}' attribute is invalid - the value '{value}' is not one of {allowed}.")
    for attribute in INTEGER_ATTRIBUTES & set(node.attrib):
        if not node.get(attribute, "").strip().lstrip("-").isdigit():
            raise violation(f"The '{attribute}' attribute is invalid - '{node.get(attribute)}' is not an xs:int.")


def _check_folder_name(name: str, version: str) -> None:
    """A distinguished folder name the request's schema version does not have."""
    rank = REQUEST_VERSIONS.index(version) if version in REQUEST_VERSIONS else len(REQUEST_VERSIONS)
    if rank >= REQUEST_VERSIONS.index("Exchange2013"):
        return
    known = FOLDER_NAMES_2007
    if rank >= REQUEST_VERSIONS.index("Exchange2010_SP1"):
        known = known | FOLDER_NAMES_2010_SP1
    if name not in known:
        raise violation(f"The 'Id' attribute is invalid - the value '{name}' is not a DistinguishedFolderIdNameType.")


def _check_max_changes(operation: Element) -> None:
    text = text_of(operation.find(m("MaxChangesReturned")))
    if not text.lstrip("-").isdigit() or not 1 <= int(text) <= MAX_SYNC_CHANGES:
        raise violation(
            f"The 'MaxChangesReturned' element is invalid - the value '{text}' is invalid according to its "
            f"datatype 'MaxSyncChangesReturnedType' - it must be from 1 to {MAX_SYNC_CHANGES}."
        )
