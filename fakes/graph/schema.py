"""Request bodies checked against the Graph v1.0 types they write: contact, event, todoTask, message.

The property tables below are our own, made from the entity, complex and enum types of
Microsoft Graph's published v1.0 CSDL (``schemas/v1.0-Prod.csdl`` of the
``microsoftgraph/msgraph-metadata`` repository): each property's name and type, base types
(``entity``, ``outlookItem``) folded in, navigation properties a body may carry listed apart.
A type is a primitive name (``Edm.String``...), a tuple of enum members, a dict (a complex type)
or a one-element list (a collection). Graph reads a body with OData's reader, so what does not
fit the type is 400 ``RequestBodyRead``; what fits but breaks an Outlook rule is refused with the
code Exchange gives it (see :func:`check_rules`).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from fakes.graph.calendar import event_time, known_zone
from fakes.graph.errors import GraphError

Type = str | tuple[str, ...] | dict[str, Any] | list[Any]

# enum types
IMPORTANCE = ("low", "normal", "high")
BODY_TYPE = ("text", "html")
TASK_STATUS = ("notStarted", "inProgress", "completed", "waitingOnOthers", "deferred")
DAY_OF_WEEK = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
WEEK_INDEX = ("first", "second", "third", "fourth", "last")
PATTERN_TYPE = ("daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly")
RANGE_TYPE = ("endDate", "noEnd", "numbered")
ATTENDEE_TYPE = ("required", "optional", "resource")
RESPONSE_TYPE = ("none", "organizer", "tentativelyAccepted", "accepted", "declined", "notResponded")
SENSITIVITY = ("normal", "personal", "private", "confidential")
FREE_BUSY = ("unknown", "free", "tentative", "busy", "oof", "workingElsewhere")
EVENT_TYPE = ("singleInstance", "occurrence", "exception", "seriesMaster")
LOCATION_TYPE = (
    "default", "conferenceRoom", "homeAddress", "businessAddress", "geoCoordinates",
    "streetAddress", "hotel", "restaurant", "localBusiness", "postalAddress",
)  # fmt: skip
LOCATION_ID_TYPE = ("unknown", "locationStore", "directory", "private", "bing")
MEETING_PROVIDER = ("unknown", "skypeForBusiness", "skypeForConsumer", "teamsForBusiness")
FLAG_STATUS = ("notFlagged", "complete", "flagged")
INFERENCE = ("focused", "other")

# complex types
S, B, I32, DBL, DTO, DATE = "Edm.String", "Edm.Boolean", "Edm.Int32", "Edm.Double", "Edm.DateTimeOffset", "Edm.Date"
EMAIL_ADDRESS = {"address": S, "name": S}
DATE_TIME_ZONE = {"dateTime": S, "timeZone": S}
PHYSICAL_ADDRESS = {"city": S, "countryOrRegion": S, "postalCode": S, "state": S, "street": S}
ITEM_BODY = {"content": S, "contentType": BODY_TYPE}
RECIPIENT = {"emailAddress": EMAIL_ADDRESS}
RESPONSE_STATUS = {"response": RESPONSE_TYPE, "time": DTO}
TIME_SLOT = {"start": DATE_TIME_ZONE, "end": DATE_TIME_ZONE}
ATTENDEE = {
    "emailAddress": EMAIL_ADDRESS,
    "type": ATTENDEE_TYPE,
    "status": RESPONSE_STATUS,
    "proposedNewTime": TIME_SLOT,
}
COORDINATES = {"accuracy": DBL, "altitude": DBL, "altitudeAccuracy": DBL, "latitude": DBL, "longitude": DBL}
LOCATION = {
    "address": PHYSICAL_ADDRESS, "coordinates": COORDINATES, "displayName": S, "locationEmailAddress": S,
    "locationType": LOCATION_TYPE, "locationUri": S, "uniqueId": S, "uniqueIdType": LOCATION_ID_TYPE,
}  # fmt: skip
RECURRENCE_PATTERN = {
    "dayOfMonth": I32, "daysOfWeek": [DAY_OF_WEEK], "firstDayOfWeek": DAY_OF_WEEK, "index": WEEK_INDEX,
    "interval": I32, "month": I32, "type": PATTERN_TYPE,
}  # fmt: skip
RECURRENCE_RANGE = {
    "endDate": DATE,
    "numberOfOccurrences": I32,
    "recurrenceTimeZone": S,
    "startDate": DATE,
    "type": RANGE_TYPE,
}
PATTERNED_RECURRENCE = {"pattern": RECURRENCE_PATTERN, "range": RECURRENCE_RANGE}
PHONE = {"number": S, "type": S, "language": S, "region": S}
ONLINE_MEETING = {
    "conferenceId": S, "joinUrl": S, "phones": [PHONE], "quickDial": S, "tollFreeNumbers": [S], "tollNumber": S,
}  # fmt: skip
FOLLOWUP_FLAG = {
    "completedDateTime": DATE_TIME_ZONE, "dueDateTime": DATE_TIME_ZONE, "flagStatus": FLAG_STATUS,
    "startDateTime": DATE_TIME_ZONE,
}  # fmt: skip
HEADER = {"name": S, "value": S}
EXTENDED_PROPERTY = {"id": S, "value": S}
MULTI_EXTENDED_PROPERTY = {"id": S, "value": [S]}
OPEN = "open"  # a navigation property whose items are not checked here (extensions, attachments)

ENTITY: dict[str, Type] = {"id": S}
OUTLOOK_ITEM: dict[str, Type] = {
    **ENTITY,
    "categories": [S],
    "changeKey": S,
    "createdDateTime": DTO,
    "lastModifiedDateTime": DTO,
}
OUTLOOK_NAVIGATION: dict[str, Type] = {
    "singleValueExtendedProperties": [EXTENDED_PROPERTY],
    "multiValueExtendedProperties": [MULTI_EXTENDED_PROPERTY],
    "extensions": [OPEN],
}

CONTACT: dict[str, Type] = {
    **OUTLOOK_ITEM, **OUTLOOK_NAVIGATION,
    "assistantName": S, "birthday": DTO, "businessAddress": PHYSICAL_ADDRESS, "businessHomePage": S,
    "businessPhones": [S], "children": [S], "companyName": S, "department": S, "displayName": S,
    "emailAddresses": [EMAIL_ADDRESS], "fileAs": S, "generation": S, "givenName": S, "homeAddress": PHYSICAL_ADDRESS,
    "homePhones": [S], "imAddresses": [S], "initials": S, "jobTitle": S, "manager": S, "middleName": S,
    "mobilePhone": S, "nickName": S, "officeLocation": S, "otherAddress": PHYSICAL_ADDRESS, "parentFolderId": S,
    "personalNotes": S, "primaryEmailAddress": EMAIL_ADDRESS, "profession": S, "secondaryEmailAddress": EMAIL_ADDRESS,
    "spouseName": S, "surname": S, "tertiaryEmailAddress": EMAIL_ADDRESS, "title": S, "yomiCompanyName": S,
    "yomiGivenName": S, "yomiSurname": S, "photo": OPEN,
}  # fmt: skip
EVENT: dict[str, Type] = {
    **OUTLOOK_ITEM, **OUTLOOK_NAVIGATION,
    "allowNewTimeProposals": B, "attendees": [ATTENDEE], "body": ITEM_BODY, "bodyPreview": S,
    "cancelledOccurrences": [S], "end": DATE_TIME_ZONE, "hasAttachments": B, "hideAttendees": B, "iCalUId": S,
    "importance": IMPORTANCE, "isAllDay": B, "isCancelled": B, "isDraft": B, "isOnlineMeeting": B,
    "isOrganizer": B, "isReminderOn": B, "location": LOCATION, "locations": [LOCATION],
    "onlineMeeting": ONLINE_MEETING, "onlineMeetingProvider": MEETING_PROVIDER, "onlineMeetingUrl": S,
    "organizer": RECIPIENT, "originalEndTimeZone": S, "originalStart": DTO, "originalStartTimeZone": S,
    "recurrence": PATTERNED_RECURRENCE, "reminderMinutesBeforeStart": I32, "responseRequested": B,
    "responseStatus": RESPONSE_STATUS, "sensitivity": SENSITIVITY, "seriesMasterId": S, "showAs": FREE_BUSY,
    "start": DATE_TIME_ZONE, "subject": S, "transactionId": S, "type": EVENT_TYPE, "webLink": S,
    "attachments": [OPEN], "calendar": OPEN, "exceptionOccurrences": [OPEN], "instances": [OPEN],
}  # fmt: skip
TODO_TASK: dict[str, Type] = {
    **ENTITY,
    "body": ITEM_BODY, "bodyLastModifiedDateTime": DTO, "categories": [S], "completedDateTime": DATE_TIME_ZONE,
    "createdDateTime": DTO, "dueDateTime": DATE_TIME_ZONE, "hasAttachments": B, "importance": IMPORTANCE,
    "isReminderOn": B, "lastModifiedDateTime": DTO, "recurrence": PATTERNED_RECURRENCE,
    "reminderDateTime": DATE_TIME_ZONE, "startDateTime": DATE_TIME_ZONE, "status": TASK_STATUS, "title": S,
    "attachments": [OPEN], "attachmentSessions": [OPEN], "checklistItems": [OPEN], "extensions": [OPEN],
    "linkedResources": [OPEN],
}  # fmt: skip
MESSAGE: dict[str, Type] = {
    **OUTLOOK_ITEM, **OUTLOOK_NAVIGATION,
    "bccRecipients": [RECIPIENT], "body": ITEM_BODY, "bodyPreview": S, "ccRecipients": [RECIPIENT],
    "conversationId": S, "conversationIndex": "Edm.Binary", "flag": FOLLOWUP_FLAG, "from": RECIPIENT,
    "hasAttachments": B, "importance": IMPORTANCE, "inferenceClassification": INFERENCE,
    "internetMessageHeaders": [HEADER], "internetMessageId": S, "isDeliveryReceiptRequested": B, "isDraft": B,
    "isRead": B, "isReadReceiptRequested": B, "parentFolderId": S, "receivedDateTime": DTO, "replyTo": [RECIPIENT],
    "sender": RECIPIENT, "sentDateTime": DTO, "subject": S, "toRecipients": [RECIPIENT], "uniqueBody": ITEM_BODY,
    "webLink": S, "attachments": [OPEN],
}  # fmt: skip
TYPES: dict[str, tuple[str, dict[str, Type]]] = {
    "contacts": ("microsoft.graph.contact", CONTACT),
    "calendar": ("microsoft.graph.event", EVENT),
    "tasks": ("microsoft.graph.todoTask", TODO_TASK),
    "inbox": ("microsoft.graph.message", MESSAGE),
    "sentitems": ("microsoft.graph.message", MESSAGE),
}
MAX_ENTRIES = {"emailAddresses": 3, "businessPhones": 2, "homePhones": 2}
"""Outlook's caps on a contact's multi-value properties (Graph answers 400 past them)."""
_DTO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?")


def check_body(folder: str, body: dict[str, Any]) -> None:
    """Refuse, as Graph's OData reader does, a body that does not fit the folder's entity type;
    enum values, which it reads in any case, are put in their declared case."""
    name, table = TYPES[folder]
    _check_object(body, table, name)


def check_rules(folder: str, data: dict[str, Any]) -> None:
    """Outlook's rules on an item as it would be stored (``data``: the body merged into the item)."""
    if folder == "contacts":
        for prop, limit in MAX_ENTRIES.items():
            entries = data.get(prop) or []
            if len(entries) > limit:
                raise GraphError(
                    400,
                    "ErrorInvalidProperty",
                    f"The multi value property {prop[0].upper()}{prop[1:]} has {len(entries)} entries, "
                    f"that exceeds the max allowed value of {limit}",
                )
    for prop in ("start", "end", "dueDateTime", "startDateTime", "reminderDateTime", "completedDateTime"):
        _check_zone(data.get(prop))
    if folder == "calendar":
        start, end = event_time(data.get("start")), event_time(data.get("end"))
        if start is not None and end is not None and end < start:
            raise GraphError(400, "ErrorPropertyValidationFailure", "At least one property failed validation.")
        _check_recurrence(data.get("recurrence"))


def _check_zone(when: Any) -> None:
    if not isinstance(when, dict):
        return
    zone = when.get("timeZone")
    if zone is not None and not known_zone(str(zone)):
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{zone}'.",
        )
    try:
        datetime.fromisoformat(str(when.get("dateTime")))
    except ValueError:
        raise GraphError(
            400, "ErrorInvalidRequest", f"The dateTime {when.get('dateTime')!r} is not a valid date and time."
        ) from None


def _check_recurrence(recurrence: Any) -> None:
    """A pattern needs what its type uses, a range what its type ends on (Exchange's rules)."""
    if not isinstance(recurrence, dict):
        return
    pattern, bounds = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    needs = {
        "daily": (),
        "weekly": ("daysOfWeek",),
        "absoluteMonthly": ("dayOfMonth",),
        "relativeMonthly": ("daysOfWeek",),
        "absoluteYearly": ("dayOfMonth", "month"),
        "relativeYearly": ("daysOfWeek", "month"),
    }.get(str(pattern.get("type")), ("type",))
    ends = {"endDate": ("endDate",), "numbered": ("numberOfOccurrences",), "noEnd": ()}.get(
        str(bounds.get("type")), ("type",)
    )
    missing = [f"pattern.{n}" for n in needs if not pattern.get(n)] + [
        f"range.{n}" for n in ("startDate", *ends) if not bounds.get(n)
    ]
    if missing:
        raise GraphError(
            400, "ErrorPropertyValidationFailure", f"At least one property failed validation: {', '.join(missing)}."
        )


def _check_object(value: dict[str, Any], table: dict[str, Type], type_name: str) -> None:
    for key, item in value.items():
        if key.startswith("@odata.") or "@odata." in key:
            continue
        if key not in table:
            raise _body_read(
                f"The property '{key}' does not exist on type '{type_name}'. Make sure to only use property "
                "names that are defined by the type or mark the type as open type."
            )
        if item is not None:
            value[key] = _check_value(item, table[key], key)


def _check_value(value: Any, kind: Type, name: str) -> Any:
    """``value`` if it fits ``kind`` (an enum member in its declared case), else RequestBodyRead."""
    if kind == OPEN:
        return value
    if isinstance(kind, list):
        if not isinstance(value, list):
            raise _node("StartArray", value)
        return [_check_value(entry, kind[0], name) if entry is not None else None for entry in value]
    if isinstance(kind, dict):
        if not isinstance(value, dict):
            raise _node("StartObject", value)
        _check_object(value, kind, f"microsoft.graph.{name}")
        return value
    if isinstance(kind, tuple):
        members = {member.lower(): member for member in kind}
        if not isinstance(value, str) or value.lower() not in members:
            raise _body_read(f"Requested value '{value}' was not found.")
        return members[value.lower()]
    _check_primitive(value, kind)
    return value


def _check_primitive(value: Any, kind: str) -> None:
    if isinstance(value, str) and kind in (B, I32, DBL):  # OData's reader also takes them as strings
        value = _from_text(value)
    fits = {
        S: isinstance(value, str),
        B: isinstance(value, bool),
        I32: isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31,
        DBL: isinstance(value, int | float) and not isinstance(value, bool),
        DTO: isinstance(value, str) and bool(_DTO.fullmatch(value)),
        DATE: isinstance(value, str) and _is_date(value),
        "Edm.Binary": isinstance(value, str),
    }.get(kind, True)
    if not fits:
        if isinstance(value, dict | list):
            raise _node("PrimitiveValue", value)
        raise _body_read(f"Cannot convert the literal '{value}' to the expected type '{kind}'.")


def _from_text(text: str) -> Any:
    """A primitive written as a JSON string ("false", "30"), as the value it spells if any."""
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def _node(expected: str, value: Any) -> GraphError:
    found = "StartArray" if isinstance(value, list) else "StartObject" if isinstance(value, dict) else "PrimitiveValue"
    return _body_read(
        f"An unexpected '{found}' node was found when reading from the JSON reader. A '{expected}' node was expected."
    )


def _body_read(message: str) -> GraphError:
    return GraphError(400, "RequestBodyRead", message)
