"""The fake CRM's field metadata: each module's fields, and how a written value is checked.

The tables are ours, written from Zoho CRM's published v8 OpenAPI specification (the
``zoho/crm-oas`` repository: ``fields.json`` for the metadata shape and the data types,
``record.json`` for the error codes) and from the standard fields of Zoho's modules as its
API documentation lists them. A field is :class:`Field`; :data:`STANDARD_FIELDS` holds the
fields an org has before anyone customises it; :func:`field_resource` is a field as
``GET /crm/v8/settings/fields?module=`` shows it.

Checks a written value goes through (:func:`check_value`), each refusing with ``INVALID_DATA``
and ``details`` naming ``api_name`` and ``expected_data_type`` (Zoho's ``InvalidTypeDetails``):
text kinds take strings no longer than ``length`` (``maximum_length`` then), ``email`` a
mail address, ``date`` a real ``yyyy-MM-dd`` day, ``datetime`` ``yyyy-MM-ddTHH:mm:ss±HH:mm``,
``boolean`` true or false, ``integer``/``double``/``currency`` numbers, ``picklist`` one of its
values, lookups an object with an ``id`` (resolved by the model), ``participants`` a list of
``{type, participant}``. ``RRULE`` (``Recurring_Activity``, Zoho's ``Recurring_Activity``
schema: ``RRULE`` and ``EXDATE`` strings) is checked by :func:`check_recurrence`: an object
whose ``RRULE`` is a well-formed rule and whose ``EXDATE`` (optional) lists ``yyyy-MM-dd``
dates separated by commas; a refusal names the key (``api_name``) and its ``json_path``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NoReturn

from dateutil.rrule import rrulestr

TEXT_TYPES = frozenset({"text", "textarea", "email", "phone", "website"})
CUSTOM_TYPES = {  # data types the Create Custom Fields API takes here, with their default length
    "text": 255,
    "textarea": 32000,
    "email": 100,
    "phone": 30,
    "website": 255,
    "integer": 9,
    "boolean": 0,
    "date": 0,
    "datetime": 0,
}
_JSON_TYPE = {
    "boolean": "boolean",
    "integer": "integer",
    "double": "double",
    "currency": "double",
    "lookup": "jsonobject",
    "ownerlookup": "jsonobject",
    "RRULE": "jsonobject",
    "participants": "jsonarray",
}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
PARTICIPANT_TYPES = frozenset({"email", "contact", "lead", "user"})


class FieldError(ValueError):
    """A value a field refuses: Zoho's error ``code`` and ``details``."""

    def __init__(self, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


@dataclass(frozen=True)
class Field:
    """One field of a module: its API name, Zoho data type and rules."""

    api_name: str
    data_type: str
    length: int = 0
    mandatory: bool = False
    unique: bool = False
    read_only: bool = False
    custom: bool = False
    picklist: tuple[str, ...] = ()
    lookup: str = ""  # the module a lookup points to
    label: str = ""
    id: str = ""

    @property
    def display_label(self) -> str:
        return self.label or self.api_name.replace("_", " ")


def _text(name: str, length: int = 255, **rules: Any) -> Field:
    return Field(name, "text", length, **rules)


def _system(module_fields: Iterable[Field]) -> tuple[Field, ...]:
    """``module_fields`` and the system fields every module has."""
    return (
        Field("Owner", "ownerlookup"),
        *module_fields,
        Field("Created_By", "ownerlookup", read_only=True),
        Field("Modified_By", "ownerlookup", read_only=True),
        Field("Created_Time", "datetime", read_only=True),
        Field("Modified_Time", "datetime", read_only=True),
    )


_PERSON = (
    _text("First_Name", 40),
    _text("Last_Name", 80, mandatory=True),
    Field("Full_Name", "text", 120, read_only=True),
    Field("Email", "email", 100),
    Field("Secondary_Email", "email", 100),
    Field("Phone", "phone", 30),
    Field("Mobile", "phone", 30),
    _text("Title", 100),
    Field("Lead_Source", "picklist", picklist=("-None-", "Advertisement", "Cold Call", "Web Download", "Partner")),
    Field("Email_Opt_Out", "boolean"),
    Field("Description", "textarea", 32000),
)

STANDARD_FIELDS: dict[str, tuple[Field, ...]] = {
    "Contacts": _system(
        (
            *_PERSON,
            _text("Department", 100),
            Field("Account_Name", "lookup", lookup="Accounts"),
            Field("Date_of_Birth", "date"),
            _text("Mailing_Street", 250),
            _text("Mailing_City", 100),
            _text("Mailing_State", 100),
            _text("Mailing_Zip", 30),
            _text("Mailing_Country", 100),
        )
    ),
    "Leads": _system(
        (
            *_PERSON,
            _text("Company", 200, mandatory=True),
            Field(
                "Lead_Status",
                "picklist",
                picklist=("-None-", "Attempted to Contact", "Contact in Future", "Contacted", "Not Contacted"),
            ),
            _text("Street", 250),
            _text("City", 100),
            _text("State", 100),
            _text("Zip_Code", 30),
            _text("Country", 100),
        )
    ),
    "Accounts": _system(
        (
            _text("Account_Name", 200, mandatory=True, unique=True),
            Field("Phone", "phone", 30),
            Field("Website", "website", 255),
            Field("Industry", "picklist", picklist=("-None-", "ASP", "Data/Telecom OEM", "ERP", "Government")),
            Field("Description", "textarea", 32000),
        )
    ),
    "Deals": _system(
        (
            _text("Deal_Name", 120, mandatory=True),
            Field("Account_Name", "lookup", lookup="Accounts"),
            Field("Contact_Name", "lookup", lookup="Contacts"),
            Field(
                "Stage",
                "picklist",
                mandatory=True,
                picklist=(
                    "Qualification",
                    "Needs Analysis",
                    "Value Proposition",
                    "Id. Decision Makers",
                    "Perception Analysis",
                    "Proposal/Price Quote",
                    "Negotiation/Review",
                    "Closed Won",
                    "Closed Lost",
                    "Closed Lost to Competition",
                ),
            ),
            Field("Closing_Date", "date", mandatory=True),
            Field("Amount", "currency"),
            Field("Description", "textarea", 32000),
        )
    ),
    "Tasks": _system(
        (
            _text("Subject", 255, mandatory=True),
            Field("Due_Date", "date"),
            Field(
                "Status",
                "picklist",
                picklist=("Not Started", "Deferred", "In Progress", "Completed", "Waiting for input"),
            ),
            Field("Priority", "picklist", picklist=("Highest", "High", "Normal", "Low", "Lowest")),
            Field("Description", "textarea", 32000),
        )
    ),
    "Events": _system(
        (
            _text("Event_Title", 255, mandatory=True),
            Field("Start_DateTime", "datetime", mandatory=True),
            Field("End_DateTime", "datetime", mandatory=True),
            Field("All_day", "boolean"),
            _text("Venue", 255),
            Field("Description", "textarea", 32000),
            Field("Participants", "participants"),
            Field("Recurring_Activity", "RRULE"),
        )
    ),
}


def custom_field(api_name: str, data_type: str, length: int | None = None, field_id: str = "") -> Field:
    """A custom field as the Create Custom Fields API makes it."""
    default = CUSTOM_TYPES[data_type]
    return Field(api_name, data_type, default if length is None else length, custom=True, id=field_id)


def api_name_of(label: str) -> str:
    """The API name Zoho gives a custom field from its label: words joined by ``_``."""
    return "_".join(re.sub(r"[^A-Za-z0-9 ]", " ", label).split())


def check_value(spec: Field, value: Any) -> None:
    """Raise :class:`FieldError` unless ``value`` (not None) fits ``spec``."""
    kind = spec.data_type
    if kind in TEXT_TYPES:
        _check_text(spec, value)
    elif kind == "date":
        _expect(spec, isinstance(value, str) and _DATE.fullmatch(value) is not None and _real_date(value))
    elif kind == "datetime":
        _expect(spec, isinstance(value, str) and _DATETIME.fullmatch(value) is not None and _real_datetime(value))
    elif kind == "boolean":
        _expect(spec, isinstance(value, bool))
    elif kind in ("integer",):
        _expect(spec, isinstance(value, int) and not isinstance(value, bool))
    elif kind in ("double", "currency"):
        _expect(spec, isinstance(value, int | float) and not isinstance(value, bool))
    elif kind == "picklist":
        _expect(spec, isinstance(value, str) and value in spec.picklist)
    elif kind in ("lookup", "ownerlookup"):
        _expect(spec, isinstance(value, dict) and bool(value.get("id")))
    elif kind == "RRULE":
        check_recurrence(spec, value)
    elif kind == "participants":
        _expect(spec, isinstance(value, list) and all(map(_participant, value)))


RRULE_PARTS = frozenset(
    {
        "FREQ",
        "INTERVAL",
        "COUNT",
        "UNTIL",
        "BYDAY",
        "BYMONTHDAY",
        "BYMONTH",
        "BYSETPOS",
        "BYYEARDAY",
        "BYWEEKNO",
        "WKST",
        "DTSTART",
    }
)
FREQUENCIES = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})  # what Zoho's calendar repeats by
_RULE_DATE = re.compile(r"\d{4}-?\d{2}-?\d{2}(T\d{6}Z?)?")


def check_recurrence(spec: Field, value: Any) -> None:
    """Raise :class:`FieldError` unless ``value`` is a ``Recurring_Activity`` object: ``RRULE``
    a well-formed rule (``FREQ=WEEKLY;BYDAY=MO;COUNT=10``), ``EXDATE`` absent, null or
    ``yyyy-MM-dd`` dates separated by commas."""
    path = f"$.data[0].{spec.api_name}"
    if not isinstance(value, dict):
        _refuse(spec.api_name, path, "jsonobject")
    rule = value.get("RRULE")
    if not isinstance(rule, str) or not _well_formed(rule):
        _refuse("RRULE", f"{path}.RRULE", "text")
    exdate = value.get("EXDATE")
    if exdate is not None and not (isinstance(exdate, str) and _dates(exdate)):
        _refuse("EXDATE", f"{path}.EXDATE", "text")


def _well_formed(rule: str) -> bool:
    parts: dict[str, str] = {}
    for part in rule.split(";"):
        name, equals, value = part.partition("=")
        if not equals or not value or name not in RRULE_PARTS or name in parts:
            return False
        parts[name] = value
    if parts.get("FREQ") not in FREQUENCIES or ("COUNT" in parts and "UNTIL" in parts):
        return False
    if any(not parts.get(n, "1").isdigit() or int(parts.get(n, "1")) < 1 for n in ("COUNT", "INTERVAL")):
        return False
    if any(n in parts and _RULE_DATE.fullmatch(parts[n]) is None for n in ("UNTIL", "DTSTART")):
        return False
    plain = ";".join(f"{n}={v}" for n, v in parts.items() if n not in ("UNTIL", "DTSTART"))
    try:
        rrulestr(plain, dtstart=datetime(2000, 1, 1))
    except (ValueError, TypeError):
        return False
    return True


def _dates(text: str) -> bool:
    """Whether ``text`` is ``yyyy-MM-dd`` dates separated by commas (empty: none)."""
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    return all(_DATE.fullmatch(p) is not None and _real_date(p) for p in parts)


def _refuse(api_name: str, json_path: str, expected: str) -> NoReturn:
    details = {"api_name": api_name, "json_path": json_path, "expected_data_type": expected}
    raise FieldError("INVALID_DATA", "invalid data", details)


def _check_text(spec: Field, value: Any) -> None:
    _expect(spec, isinstance(value, str))
    if spec.data_type == "email" and value and _EMAIL.fullmatch(value) is None:
        raise FieldError("INVALID_DATA", "invalid data", {"api_name": spec.api_name, "expected_data_type": "email"})
    if spec.length and len(value) > spec.length:
        details = {"api_name": spec.api_name, "maximum_length": spec.length, "expected_data_type": spec.data_type}
        raise FieldError("INVALID_DATA", "invalid data", details)


def _expect(spec: Field, ok: bool) -> None:
    if not ok:
        details = {"api_name": spec.api_name, "expected_data_type": spec.data_type}
        raise FieldError("INVALID_DATA", "invalid data", details)


def _real_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _real_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _participant(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("type") in PARTICIPANT_TYPES
        and isinstance(value.get("participant"), str)
        and bool(value["participant"])
    )


def field_resource(spec: Field, module_id: str) -> dict[str, Any]:
    """``spec`` as ``GET /crm/v8/settings/fields`` shows it (the keys Zoho's ``fields`` schema
    names that a client reads: types, length, mandatory, unique, picklist values, lookup)."""
    resource: dict[str, Any] = {
        "id": spec.id,
        "api_name": spec.api_name,
        "field_label": spec.display_label,
        "display_label": spec.display_label,
        "data_type": spec.data_type,
        "json_type": _JSON_TYPE.get(spec.data_type, "string"),
        "length": spec.length,
        "system_mandatory": spec.mandatory,
        "custom_field": spec.custom,
        "read_only": spec.read_only,
        "field_read_only": spec.read_only,
        "visible": True,
        "unique": {"casesensitive": "false"} if spec.unique else {},
        "pick_list_values": [
            {"display_value": v, "actual_value": v, "id": f"{spec.id}{n}", "sequence_number": n, "type": "used"}
            for n, v in enumerate(spec.picklist, 1)
        ],
        "lookup": {"module": {"api_name": spec.lookup, "id": module_id}} if spec.lookup else {},
    }
    return resource


@dataclass
class ModuleFields:
    """The fields of one module in one org, by API name (standard and custom)."""

    module: str
    by_name: dict[str, Field] = field(default_factory=dict)

    def add(self, spec: Field) -> None:
        self.by_name[spec.api_name] = spec

    def get(self, api_name: str) -> Field | None:
        return self.by_name.get(api_name)

    @property
    def mandatory(self) -> list[str]:
        return [f.api_name for f in self.by_name.values() if f.mandatory]

    @property
    def unique(self) -> list[str]:
        return [f.api_name for f in self.by_name.values() if f.unique]


MAIL_SUBJECT_MAX = 250  # associate_email's subject: 1 to 250 characters
MAIL_REQUIRED = ("from", "to", "original_message_id", "sent", "date_time")
MAIL_FORMATS = ("html", "text")


def check_mail(email: Any) -> dict[str, Any]:
    """One entry of an associate_email body, checked as Zoho's v8 ``associate_email`` schema
    says: ``from`` ({user_name, email}), ``to`` (a list of them), ``original_message_id``,
    ``sent`` (boolean) and ``date_time`` are required (REQUIRED_PARAM_MISSING naming the key);
    ``cc``/``bcc`` are lists of addresses, ``subject`` 1 to 250 characters, ``mail_format``
    html or text, ``date_time`` Zoho's date-time (INVALID_DATA with ``expected_data_type``)."""
    if not isinstance(email, dict):
        raise FieldError("INVALID_DATA", "invalid data", {"api_name": "Emails", "expected_data_type": "jsonobject"})
    for key in MAIL_REQUIRED:
        if email.get(key) in (None, "", []) and email.get(key) is not False:
            raise FieldError("REQUIRED_PARAM_MISSING", "required field not found", {"api_name": key})
    checks: list[tuple[str, str, bool]] = [
        ("from", "jsonobject", _address(email["from"])),
        ("to", "jsonarray", isinstance(email["to"], list) and all(map(_address, email["to"]))),
        ("original_message_id", "text", isinstance(email["original_message_id"], str)),
        ("sent", "boolean", isinstance(email["sent"], bool)),
        ("date_time", "datetime", isinstance(email["date_time"], str) and _zoho_time(email["date_time"])),
        ("subject", "text", _subject(email.get("subject"))),
        ("content", "text", email.get("content") is None or isinstance(email["content"], str)),
        ("mail_format", "text", email.get("mail_format") in (None, *MAIL_FORMATS)),
    ]
    for key in ("cc", "bcc"):
        value = email.get(key)
        checks.append((key, "jsonarray", value is None or (isinstance(value, list) and all(map(_address, value)))))
    for key, expected, ok in checks:
        if not ok:
            raise FieldError("INVALID_DATA", "invalid data", {"api_name": key, "expected_data_type": expected})
    return dict(email)


def _address(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("email"), str)
        and _EMAIL.fullmatch(value["email"]) is not None
        and isinstance(value.get("user_name", ""), str)
    )


def _subject(value: Any) -> bool:
    return value is None or (isinstance(value, str) and 1 <= len(value) <= MAIL_SUBJECT_MAX)


def _zoho_time(text: str) -> bool:
    return _DATETIME.fullmatch(text) is not None and _real_datetime(text)
