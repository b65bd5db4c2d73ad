"""The fake Microsoft Graph v1.0 over a :class:`~fakes.tenant.Tenant`.

:class:`GraphApi` is a server handler. Every request needs a bearer token of the
:class:`~fakes.graph.authority.Authority` with Graph as audience (401 InvalidAuthenticationToken
otherwise, also when expired). App-only tokens reach every mailbox through ``/users/{id|upn}``;
delegated tokens only their own (``/me`` or their own ``/users/{id}``), others are 403
ErrorAccessDenied. Routes, under ``/v1.0`` and for both ``/me`` and ``/users/{id}``::

    GET /me, GET /users, GET /users/{id}
    GET|POST /contacts, GET|PATCH|DELETE /contacts/{id}, GET /contacts/delta
        (also under /contactFolders/contacts/...)
    GET|POST /events, GET|PATCH|DELETE /events/{id}, GET /events/{id}/instances
    GET /calendarView, GET /calendarView/delta           (startDateTime & endDateTime)
    GET /todo/lists, GET /todo/lists/{id}                 (delegated tokens only: app-only is 403)
    GET|POST /todo/lists/{id}/tasks, GET|PATCH|DELETE .../tasks/{id}, GET .../tasks/delta
    GET /messages, GET /messages/{id}, GET /messages/{id}/attachments
    GET /mailFolders/{inbox|sentitems}/messages[/{id}|/delta]
    POST /$batch

Query options: ``$top`` (default 10, users 100, at most 999), ``$skip``, ``$select`` (``id`` and
``@odata.etag`` always kept), ``$filter`` (``eq ne gt ge lt le`` on top-level string, boolean
and date fields, joined by ``and``; anything else is 400),
``$expand=singleValueExtendedProperties($filter=id eq '...' [or id eq '...'])``. Other ``$``
options are 400. Listings are snapshots: the ids are taken once on the first page and the
rest is served by ``$skiptoken`` in O(page); the last :data:`CURSOR_LIMIT` snapshots are kept.

Delta: the first round lists the current items; its last page carries a ``$deltatoken`` that
encodes the change-log number at the start of the round, the window, the query options and a
generation (:meth:`GraphApi.expire_delta_tokens` makes all tokens 410 SyncStateNotFound).
Later rounds read only ``Tenant.changes`` (O(changes)): full resources for changed items and
``{"id", "@removed": {"reason": "deleted"}}`` for deleted ones. Page size:
``Prefer: odata.maxpagesize=N`` (default 100).

Events: start/end are returned in UTC, or in the zone of ``Prefer: outlook.timezone``, with
``originalStartTimeZone``/``originalEndTimeZone``; IANA names and common Windows names are
understood, unknown zones count as UTC. An event with ``recurrence`` is a ``seriesMaster``;
calendarView and instances expand daily, weekly and absoluteMonthly patterns (other patterns
yield only the first instance) with endDate/noEnd/numbered ranges, at most
:data:`MAX_OCCURRENCES` per series. Occurrences have ids ``{masterId}_{yyyymmdd}`` that are
not addressable, and exceptions to a series are not modelled. calendarView/delta reports
series masters (one record per series), not occurrences; an item is reported when it (or an
occurrence) overlaps the window; an item that moves out of the window is not reported, all
deletions are.

Bodies: ``Prefer: outlook.body-content-type="text"`` turns HTML bodies into plain text.

Extended properties: ``singleValueExtendedProperties`` are stored with the item, merged by
id on PATCH, and returned only through ``$expand``; ids compare case- and space-insensitively.

Batch: at most 20 steps, run in order through the same router with the outer Authorization;
``dependsOn`` must name earlier steps (a failed dependency gives 424);
:meth:`GraphApi.throttle_batch_items` makes the next steps 429 with Retry-After.

Not reproduced: permission scopes (any Graph token may do anything its principal may reach),
creating messages, attachment content, other folders than the default ones, ``$orderby``,
``$search``, ``$count``, change notifications.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import operator
import re
import secrets
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fakes.graph.authority import GRAPH_RESOURCE, Authority, TokenError, TokenInfo
from fakes.server import FaultRule, Request, Response
from fakes.tenant import Item, Mailbox, Tenant, TenantError, html_to_text

MAIL_FOLDERS = ("inbox", "sentitems")
CONTACT_FOLDER_ID = "contacts"
TASK_LIST_ID = "AAMkADefaultTaskList"
MAX_BATCH = 20
MAX_PAGE = 999
LIST_PAGE = 10
USERS_PAGE = 100
DELTA_PAGE = 100
MAX_OCCURRENCES = 1000
CURSOR_LIMIT = 64

Row = tuple[str, str | dict[str, Any]]  # (folder, item id) rendered live, or (folder, resource)
Window = tuple[datetime, datetime]

_READ_ONLY = frozenset(
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
    }
)
_ALWAYS = frozenset({"id", "@odata.etag", "@odata.type", "singleValueExtendedProperties"})
_QUERY_OPTIONS = ("$select", "$expand", "$filter")
_SUPPORTED_OPTIONS = frozenset({"$top", "$skip", "$skiptoken", "$deltatoken", *_QUERY_OPTIONS})
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_CLAUSE = re.compile(r"(\w+)\s+(eq|ne|gt|ge|lt|le)\s+('(?:[^']|'')*'|\S+)", re.IGNORECASE)
_EXPAND = re.compile(r"singleValueExtendedProperties\(\$filter=(.+)\)", re.IGNORECASE)
_EXPAND_ID = re.compile(r"id\s+eq\s+'((?:[^']|'')*)'", re.IGNORECASE)
_WEEKDAYS = {
    day: n for n, day in enumerate(("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"))
}
_WINDOWS_ZONES = {
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "Pacific Standard Time": "America/Los_Angeles",
    "India Standard Time": "Asia/Kolkata",
    "Tokyo Standard Time": "Asia/Tokyo",
    "AUS Eastern Standard Time": "Australia/Sydney",
}


# errors ---------------------------------------------------------------------------------------
class GraphError(Exception):
    """A Graph error answer: HTTP status, OData error code and message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self, request: Request | None = None) -> Response:
        return Response.json(error_payload(self.code, self.message, request), self.status, self.headers)


def error_payload(code: str, message: str, request: Request | None = None) -> dict[str, Any]:
    """Graph's OData error body."""
    request_id = str(uuid.uuid4())
    client_request_id = request.header("client-request-id") if request else None
    inner = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }
    return {"error": {"code": code, "message": message, "innerError": inner}}


def throttle_rule(
    *, retry_after: float = 1.0, times: int | None = 1, path: str = "/v1.0/", method: str | None = None
) -> FaultRule:
    """A fault rule answering 429 TooManyRequests with Retry-After, shaped like Graph's."""
    body = error_payload("TooManyRequests", "Too many requests.")
    return FaultRule(path=path, method=method, status=429, retry_after=retry_after, times=times, body=body)


def _no_route(call: _Call) -> GraphError:
    return GraphError(400, "BadRequest", f"Unsupported request: {call.request.method} {call.request.path}.")


def _not_found(message: str = "The specified object was not found in the store.") -> GraphError:
    return GraphError(404, "ErrorItemNotFound", message)


def _from_tenant(exc: TenantError) -> GraphError:
    if exc.code == "ErrorItemNotFound":
        return _not_found(exc.message)
    if exc.code == "ErrorNonExistentMailbox":
        return GraphError(404, "ErrorInvalidUser", exc.message)
    return GraphError(400, exc.code, exc.message)


# query options --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Clause:
    name: str
    op: str
    value: str | bool | datetime

    def test(self, actual: Any) -> bool:
        compare = _OPERATORS[self.op]
        if isinstance(self.value, datetime):
            moment = _as_instant(actual)
            return moment is not None and compare(moment, self.value)
        if isinstance(self.value, bool):
            return isinstance(actual, bool) and compare(actual, self.value)
        return isinstance(actual, str) and compare(actual.casefold(), self.value.casefold())


@dataclass(frozen=True)
class _Query:
    """The query options of a request: which items, which fields, which time zone."""

    options: dict[str, str]
    select: frozenset[str] | None
    ext_ids: frozenset[str] | None
    clauses: tuple[_Clause, ...]
    zone: str
    text_body: bool

    @classmethod
    def parse(cls, options: dict[str, str], prefs: dict[str, str]) -> _Query:
        """From the query options and the ``Prefer`` header (outlook.timezone, outlook.body-content-type)."""
        select = options.get("$select")
        expand = options.get("$expand")
        text = options.get("$filter")
        return cls(
            options,
            frozenset(n.strip().lower() for n in select.split(",") if n.strip()) if select else None,
            _parse_expand(expand) if expand else None,
            _parse_filter(text) if text else (),
            prefs.get("outlook.timezone", "UTC"),
            prefs.get("outlook.body-content-type", "").lower() == "text",
        )

    def matches(self, get: Callable[[str], Any]) -> bool:
        return all(clause.test(get(clause.name)) for clause in self.clauses)

    def render(self, item: Item) -> dict[str, Any]:
        return self.present(item.folder, _raw(item))

    def present(self, folder: str, resource: dict[str, Any]) -> dict[str, Any]:
        """``resource`` as Graph shows it: expanded properties, event times, body type, $select."""
        if "@removed" in resource:
            return resource
        res = dict(resource)
        stored = res.pop("singleValueExtendedProperties", None) or []
        res.pop("attachments", None)
        expanded = [p for p in stored if isinstance(p, dict) and _ext_key(p.get("id")) in (self.ext_ids or ())]
        if expanded:
            res["singleValueExtendedProperties"] = expanded
        if folder == "calendar":
            _present_event(res, self.zone)
        body = res.get("body")
        if self.text_body and isinstance(body, dict) and str(body.get("contentType")).lower() == "html":
            res["body"] = {"contentType": "text", "content": html_to_text(str(body.get("content") or ""))}
        if self.select is None:
            return res
        return {k: v for k, v in res.items() if k.lower() in self.select or k in _ALWAYS}


def _parse_filter(text: str) -> tuple[_Clause, ...]:
    return tuple(_clause(part) for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE))


def _clause(text: str) -> _Clause:
    match = _CLAUSE.fullmatch(text.strip())
    if match is None:
        raise _bad_filter(text)
    name, op, literal = match.groups()
    return _Clause(name, op.lower(), _literal(literal, text))


def _literal(raw: str, text: str) -> str | bool | datetime:
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1].replace("''", "'")
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        return _instant(raw)
    except ValueError:
        raise _bad_filter(text) from None


def _bad_filter(text: str) -> GraphError:
    return GraphError(400, "ErrorInvalidUrlQueryFilter", f"The fake Graph cannot evaluate the filter clause {text!r}.")


def _parse_expand(text: str) -> frozenset[str]:
    match = _EXPAND.fullmatch(text.strip())
    ids = [_EXPAND_ID.fullmatch(p.strip()) for p in re.split(r"\s+or\s+", match[1], flags=re.I)] if match else [None]
    if not all(ids):
        raise GraphError(
            400,
            "BadRequest",
            f"The fake Graph supports only $expand=singleValueExtendedProperties($filter=id eq '...'), not {text!r}.",
        )
    return frozenset(_ext_key(m[1].replace("''", "'")) for m in ids if m)


def _ext_key(prop_id: Any) -> str:
    return " ".join(str(prop_id).split()).lower()


def _merge_ext(current: Iterable[dict[str, Any]], new: Any) -> list[dict[str, Any]]:
    """Extended properties of ``current`` updated by id with ``new`` (validated)."""
    valid = isinstance(new, list) and all(isinstance(p, dict) and isinstance(p.get("id"), str) for p in new)
    if not valid:
        raise GraphError(400, "BadRequest", "singleValueExtendedProperties must be a list of {id, value}.")
    merged = {_ext_key(p.get("id")): p for p in current}
    merged.update((_ext_key(p["id"]), {"id": p["id"], "value": p.get("value")}) for p in new)
    return list(merged.values())


# time -----------------------------------------------------------------------------------------
def _zone(name: Any) -> ZoneInfo:
    key = _WINDOWS_ZONES.get(str(name or "UTC"), str(name or "UTC"))
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _as_instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return _instant(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _event_time(when: Any) -> datetime | None:
    """A Graph dateTimeTimeZone as an aware datetime in its zone."""
    if not isinstance(when, dict):
        return None
    try:
        moment = datetime.fromisoformat(str(when.get("dateTime")))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=_zone(when.get("timeZone")))


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.0000000")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def _window(request: Request) -> Window:
    try:
        return _instant(request.arg("startDateTime") or ""), _instant(request.arg("endDateTime") or "")
    except ValueError:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by "
            "the query string parameters StartDateTime and EndDateTime.",
        ) from None


def _present_event(res: dict[str, Any], zone_name: str) -> None:
    """Event times in ``zone_name`` (all-day events keep their dates), as Graph returns them."""
    res.setdefault("type", "seriesMaster" if res.get("recurrence") else "singleInstance")
    res.setdefault("recurrence", None)
    zone = _zone(zone_name)
    for key, original in (("start", "originalStartTimeZone"), ("end", "originalEndTimeZone")):
        when = res.get(key)
        moment = _event_time(when)
        if moment is None or not isinstance(when, dict):
            continue
        res.setdefault(original, when.get("timeZone"))
        local = when["dateTime"] if res.get("isAllDay") else _fmt(moment.astimezone(zone))
        res[key] = {"dateTime": local, "timeZone": zone_name}


def _spans(data: dict[str, Any], window: Window) -> Iterator[tuple[datetime, datetime]]:
    """(start, end) of the event, or of each occurrence of a series, overlapping ``window``."""
    start, end = _event_time(data.get("start")), _event_time(data.get("end"))
    if start is None or end is None:
        return
    recurrence = data.get("recurrence")
    if not isinstance(recurrence, dict):
        if start < window[1] and end > window[0]:
            yield start, end
        return
    duration = end - start
    for day in _recurrence_dates(recurrence, start.date()):
        occurrence = datetime.combine(day, start.timetz())
        if occurrence >= window[1]:
            return
        if occurrence + duration > window[0]:
            yield occurrence, occurrence + duration


def _recurrence_dates(recurrence: dict[str, Any], first: date) -> Iterator[date]:
    bounds = recurrence.get("range") or {}
    kind = bounds.get("type")
    until = _date(bounds.get("endDate")) if kind == "endDate" else None
    count = _int(bounds.get("numberOfOccurrences"), 0) if kind == "numbered" else MAX_OCCURRENCES
    dates = _pattern_dates(recurrence.get("pattern") or {}, _date(bounds.get("startDate")) or first)
    for day in itertools.islice(dates, min(count, MAX_OCCURRENCES)):
        if until is not None and day > until:
            return
        yield day


def _pattern_dates(pattern: dict[str, Any], start: date) -> Iterator[date]:
    interval = min(max(_int(pattern.get("interval"), 1), 1), 99)
    steps = range(0, MAX_OCCURRENCES * interval, interval)
    kind = pattern.get("type")
    if kind == "daily":
        return (start + timedelta(days=n) for n in steps)
    if kind == "weekly":
        return _weekly(start, steps, pattern.get("daysOfWeek") or [])
    if kind == "absoluteMonthly":
        return _monthly(start, steps, _int(pattern.get("dayOfMonth"), start.day))
    return iter([start])


def _weekly(start: date, weeks: range, names: list[Any]) -> Iterator[date]:
    offsets = sorted({_WEEKDAYS[str(n).lower()] for n in names if str(n).lower() in _WEEKDAYS})
    sunday = start - timedelta(days=(start.weekday() + 1) % 7)
    for week in weeks:
        for offset in offsets or [(start.weekday() + 1) % 7]:
            day = sunday + timedelta(weeks=week, days=offset)
            if day >= start:
                yield day


def _monthly(start: date, months: range, day_of_month: int) -> Iterator[date]:
    for step in months:
        year, month = divmod(start.month - 1 + step, 12)
        try:
            day = date(start.year + year, month + 1, day_of_month)
        except ValueError:  # no such day in that month
            continue
        if day >= start:
            yield day


def _occurrence(master: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
    occurrence = copy.deepcopy(master)
    zone = master["start"].get("timeZone")
    occurrence.update(
        id=f"{master['id']}_{start:%Y%m%d}",
        type="occurrence",
        seriesMasterId=master["id"],
        recurrence=None,
        start={"dateTime": _fmt(start), "timeZone": zone},
        end={"dateTime": _fmt(end), "timeZone": zone},
    )
    return occurrence


def _view_rows(item: Item, window: Window) -> list[tuple[datetime, Row]]:
    """calendarView rows of an event: itself, or its occurrences in ``window``."""
    spans = list(_spans(item.data, window))
    if not isinstance(item.data.get("recurrence"), dict):
        return [(start, ("calendar", item.id)) for start, _ in spans]
    master = _raw(item)
    return [(start, ("calendar", _occurrence(master, start, end))) for start, end in spans]


# resources ------------------------------------------------------------------------------------
def _raw(item: Item) -> dict[str, Any]:
    resource = item.resource()
    resource["@odata.etag"] = f'W/"{item.change_key}"'
    if item.folder in MAIL_FOLDERS:
        resource["parentFolderId"] = item.folder
    return resource


def _item_field(item: Item, name: str) -> Any:
    special = {"id": item.id, "createdDateTime": item.created, "lastModifiedDateTime": item.modified}
    return special[name] if name in special else item.data.get(name)


def _user_resource(box: Mailbox) -> dict[str, Any]:
    given, _, surname = box.display_name.partition(" ")
    return {
        "id": box.user_id,
        "displayName": box.display_name,
        "givenName": given or None,
        "surname": surname or None,
        "mail": box.address,
        "userPrincipalName": box.address,
    }


def _task_list() -> dict[str, Any]:
    return {
        "id": TASK_LIST_ID,
        "displayName": "Tasks",
        "wellknownListName": "defaultList",
        "isOwner": True,
        "isShared": False,
    }


def _attachments(item: Item) -> list[dict[str, Any]]:
    return [
        {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "id": base64.urlsafe_b64encode(f"{item.id}:{n}".encode()).decode(),
            "name": attachment.get("name"),
            "size": attachment.get("size", 0),
            "contentType": attachment.get("contentType", "application/octet-stream"),
            "isInline": False,
            "lastModifiedDateTime": _iso(item.modified),
        }
        for n, attachment in enumerate(item.data.get("attachments") or [])
    ]


def _removed(item_id: str) -> dict[str, Any]:
    return {"id": item_id, "@removed": {"reason": "deleted"}}


def _writable(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in _READ_ONLY and not k.startswith("@odata.")}


def _with_defaults(folder: str, data: dict[str, Any], box: Mailbox) -> dict[str, Any]:
    """What Graph fills in on create."""
    if folder == "contacts" and "displayName" not in data:
        data["displayName"] = " ".join(filter(None, (data.get("givenName"), data.get("surname"))))
    if folder == "calendar":
        data.setdefault("iCalUId", "040000008200E00074C5B7101A82E008" + uuid.uuid4().hex.upper())
        data.setdefault("isAllDay", False)
        data.setdefault("organizer", {"emailAddress": {"name": box.display_name, "address": box.address}})
    if folder == "tasks":
        data.setdefault("status", "notStarted")
        data.setdefault("importance", "normal")
    return data


def _mail_folder(folder_id: str) -> str:
    if folder_id.lower() not in MAIL_FOLDERS:
        raise _not_found(f"The fake Graph has no mail folder {folder_id!r}.")
    return folder_id.lower()


# request helpers ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Call:
    request: Request
    token: TokenInfo

    @property
    def method(self) -> str:
        return self.request.method


def _prefs(request: Request) -> dict[str, str]:
    """The ``Prefer`` header as {name: value}."""
    prefs = {}
    for part in (request.header("prefer") or "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            prefs[name.strip().lower()] = value.strip().strip('"')
    return prefs


def _options(request: Request) -> dict[str, str]:
    return {name: value for name in _QUERY_OPTIONS if (value := request.arg(name)) is not None}


def _check_options(request: Request) -> None:
    unknown = sorted(k for k in request.query if k.startswith("$") and k not in _SUPPORTED_OPTIONS)
    if unknown:
        raise GraphError(400, "BadRequest", f"Query option '{unknown[0]}' is not supported by the fake Graph.")


def _top(request: Request, default: int) -> int:
    raw = request.arg("$top")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise GraphError(
            400, "BadRequest", f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE} inclusive."
        )
    return int(raw)


def _skip(request: Request) -> int:
    raw = request.arg("$skip", "0") or "0"
    if not raw.isdigit():
        raise GraphError(400, "BadRequest", f"Invalid $skip value '{raw}'.")
    return int(raw)


def _max_page_size(request: Request) -> int:
    size = _int(_prefs(request).get("odata.maxpagesize"), DELTA_PAGE)
    return size if 1 <= size <= MAX_PAGE else DELTA_PAGE


def _body(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.")
    return body


def _json(payload: Any, status: int = 200) -> Response:
    return Response.json(payload, status)


# paging and delta state ------------------------------------------------------------------------
@dataclass
class _Cursor:
    """One listing or delta round: the rows to page through and how to show them."""

    box: Mailbox | None
    rows: list[Row]
    query: _Query
    size: int
    delta_token: str | None = None  # for the @odata.deltaLink of the last page
    key: str = field(default_factory=lambda: secrets.token_urlsafe(12))


@dataclass(frozen=True)
class _DeltaState:
    """What a $deltatoken encodes."""

    generation: int
    user_id: str
    folder: str
    seq: int
    window: Window | None
    options: dict[str, str]

    def encode(self) -> str:
        window = [moment.isoformat() for moment in self.window] if self.window else None
        payload = [self.generation, self.user_id, self.folder, self.seq, window, self.options]
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> _DeltaState:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        generation, user_id, folder, seq, window, options = json.loads(raw)
        bounds = (_instant(window[0]), _instant(window[1])) if window else None
        return cls(int(generation), str(user_id), str(folder), int(seq), bounds, dict(options))


def _sub_request(outer: Request, step: dict[str, Any]) -> Request:
    """A $batch step as a request of its own, with the outer request's Authorization."""
    split = urlsplit(step["url"])
    headers = {str(k).lower(): str(v) for k, v in (step.get("headers") or {}).items()}
    headers["authorization"] = outer.header("authorization") or ""
    body = step.get("body")
    return Request(
        method=step["method"].upper(),
        path="/v1.0/" + split.path.lstrip("/"),
        query=parse_qs(split.query, keep_blank_values=True),
        headers=headers,
        body=json.dumps(body).encode() if body is not None else b"",
        base_url=outer.base_url,
    )


def _batch_steps(request: Request) -> list[dict[str, Any]]:
    try:
        payload = request.json()
    except ValueError:
        payload = None
    steps = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(steps, list) or not steps:
        raise GraphError(400, "BadRequest", "Invalid batch payload: 'requests' must be a non-empty list.")
    if len(steps) > MAX_BATCH:
        raise GraphError(400, "BadRequest", f"The number of batch requests exceeds the limit of {MAX_BATCH}.")
    seen: set[str] = set()
    for step in steps:
        _check_step(step, seen)
        seen.add(step["id"])
    return steps


def _check_step(step: Any, seen: set[str]) -> None:
    if not isinstance(step, dict) or not all(isinstance(step.get(k), str) for k in ("id", "method", "url")):
        raise GraphError(400, "BadRequest", "Every batch request needs a string id, method and url.")
    if step["id"] in seen:
        raise GraphError(400, "BadRequest", f"Batch request id '{step['id']}' is used twice.")
    if not set(step.get("dependsOn") or []) <= seen:
        raise GraphError(400, "BadRequest", "dependsOn must name earlier requests of the batch.")


def _step_error(
    step_id: str, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "id": step_id,
        "status": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": error_payload(code, message),
    }


# the API --------------------------------------------------------------------------------------
class GraphApi:
    """Microsoft Graph v1.0 over ``tenant`` for tokens of ``authority``; a server handler."""

    def __init__(self, tenant: Tenant, authority: Authority, *, cursor_limit: int = CURSOR_LIMIT) -> None:
        self.tenant = tenant
        self.authority = authority
        self.cursor_limit = cursor_limit
        self._lock = threading.Lock()
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._generation = 0
        self._batch_throttle: tuple[int, float] = (0, 0.0)

    def expire_delta_tokens(self) -> None:
        """Make every outstanding delta and skip token fail with 410 SyncStateNotFound."""
        with self._lock:
            self._generation += 1
            self._cursors.clear()

    def throttle_batch_items(self, count: int, retry_after: float = 1.0) -> None:
        """Answer the next ``count`` $batch steps with 429 and ``Retry-After: retry_after``."""
        with self._lock:
            self._batch_throttle = (count, retry_after)

    def __call__(self, request: Request) -> Response:
        if request.method == "POST" and unquote(request.path) == "/v1.0/$batch":
            return self._guarded(self._batch, request)
        return self._guarded(self._dispatch, request)

    def _guarded(self, handler: Callable[[Request], Response], request: Request) -> Response:
        try:
            return handler(request)
        except GraphError as exc:
            return exc.response(request)
        except TenantError as exc:
            return _from_tenant(exc).response(request)

    def _authenticate(self, request: Request) -> TokenInfo:
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("Access token is empty.")
        try:
            info = self.authority.validate(token.strip())
        except TokenError as exc:
            raise _unauthorized(str(exc)) from None
        if info.audience != GRAPH_RESOURCE:
            raise _unauthorized("Access token validation failure. Invalid audience.")
        return info

    def _dispatch(self, request: Request) -> Response:
        segments = [unquote(s) for s in request.path.split("/")]
        if segments[:2] != ["", "v1.0"]:
            raise GraphError(400, "BadRequest", f"Invalid version: {request.path}")
        call = _Call(request, self._authenticate(request))
        _check_options(request)
        return self._route(call, segments[2:])

    def _query(self, call: _Call, options: dict[str, str] | None = None) -> _Query:
        return _Query.parse(_options(call.request) if options is None else options, _prefs(call.request))

    # routing ----------------------------------------------------------------------------------
    def _route(self, call: _Call, segments: list[str]) -> Response:
        match segments:
            case ["me"] if call.method == "GET":
                return _json(self._query(call).present("", _user_resource(self._own_box(call))))
            case ["users"] if call.method == "GET":
                return self._users(call)
            case ["users", key] if call.method == "GET":
                return self._user(call, key)
            case ["me", *rest]:
                return self._mailbox(call, self._own_box(call), rest)
            case ["users", key, *rest]:
                return self._mailbox(call, self._box_for(call, key), rest)
        raise _no_route(call)

    def _mailbox(self, call: _Call, box: Mailbox, rest: list[str]) -> Response:
        get = call.method == "GET"
        match rest:
            case ["contacts", *tail]:
                return self._items(call, box, "contacts", tail)
            case ["contactFolders", folder_id, "contacts", *tail] if folder_id.lower() == CONTACT_FOLDER_ID:
                return self._items(call, box, "contacts", tail)
            case ["events", event_id, "instances"] if get:
                return self._instances(call, box, event_id)
            case ["events", *tail]:
                return self._items(call, box, "calendar", tail, delta=False)
            case ["calendarView"] if get:
                return self._calendar_view(call, box)
            case ["calendarView", "delta"] if get:
                return self._delta(call, box, "calendar", windowed=True)
            case ["todo", *tail]:
                return self._todo(call, box, tail)
            case ["messages"] if get:
                return self._list(call, box, *MAIL_FOLDERS)
            case ["messages", message_id, *tail] if get:
                return self._message(call, box, message_id, tail)
            case ["mailFolders", folder_id, "messages", *tail]:
                return self._items(call, box, _mail_folder(folder_id), tail, writable=False)
        raise _no_route(call)

    def _items(
        self, call: _Call, box: Mailbox, folder: str, tail: list[str], *, delta: bool = True, writable: bool = True
    ) -> Response:
        match (call.method, tail, writable):
            case ("GET", [], _):
                return self._list(call, box, folder)
            case ("GET", ["delta"], _) if delta:
                return self._delta(call, box, folder)
            case ("GET", [item_id], _):
                return _json(self._query(call).render(self.tenant.get(box, folder, item_id)))
            case ("POST", [], True):
                return self._create(call, box, folder)
            case ("PATCH", [item_id], True):
                return self._patch(call, box, folder, item_id)
            case ("DELETE", [item_id], True):
                self.tenant.delete(box, folder, item_id)
                return Response(204)
        raise _no_route(call)

    def _todo(self, call: _Call, box: Mailbox, rest: list[str]) -> Response:
        if call.token.app_only:
            raise GraphError(
                403,
                "ErrorAccessDenied",
                "Microsoft To Do needs a delegated token; application permissions cannot reach tasks.",
            )
        match rest:
            case ["lists"] if call.method == "GET":
                return _json({"value": [_task_list()]})
            case ["lists", list_id] if call.method == "GET" and list_id == TASK_LIST_ID:
                return _json(_task_list())
            case ["lists", list_id, "tasks", *tail] if list_id == TASK_LIST_ID:
                return self._items(call, box, "tasks", tail)
            case ["lists", list_id, *_]:
                raise _not_found(f"The task list {list_id!r} does not exist.")
        raise _no_route(call)

    # principals -------------------------------------------------------------------------------
    def _own_box(self, call: _Call) -> Mailbox:
        if call.token.user_id is None:
            raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
        return self.tenant.mailbox(call.token.user_id)

    def _box_for(self, call: _Call, key: str) -> Mailbox:
        box = self.tenant.mailbox(key)
        if not call.token.app_only and call.token.user_id != box.user_id:
            raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        return box

    def _users(self, call: _Call) -> Response:
        def build() -> _Cursor:
            query = self._query(call)
            users = map(_user_resource, self.tenant.users())
            rows: list[Row] = [("", user) for user in users if query.matches(user.get)]
            return _Cursor(None, rows, query, _top(call.request, USERS_PAGE))

        return self._serve(call, build)

    def _user(self, call: _Call, key: str) -> Response:
        try:
            box = self.tenant.mailbox(key)
        except TenantError:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
            ) from None
        return _json(self._query(call).present("", _user_resource(box)))

    # items ------------------------------------------------------------------------------------
    def _list(self, call: _Call, box: Mailbox, *folders: str) -> Response:
        def build() -> _Cursor:
            query = self._query(call)
            items = sorted(
                itertools.chain.from_iterable(self.tenant.items(box, f) for f in folders), key=lambda item: item.seq
            )
            rows: list[Row] = [(i.folder, i.id) for i in items if query.matches(partial(_item_field, i))]
            return _Cursor(box, rows, query, _top(call.request, LIST_PAGE))

        return self._serve(call, build)

    def _create(self, call: _Call, box: Mailbox, folder: str) -> Response:
        data = _writable(_body(call.request))
        if "singleValueExtendedProperties" in data:
            data["singleValueExtendedProperties"] = _merge_ext([], data["singleValueExtendedProperties"])
        item = self.tenant.create(box, folder, _with_defaults(folder, data, box))
        return _json(self._query(call).render(item), 201)

    def _patch(self, call: _Call, box: Mailbox, folder: str, item_id: str) -> Response:
        patch = _writable(_body(call.request))
        with self.tenant.lock:
            if "singleValueExtendedProperties" in patch:
                stored = self.tenant.get(box, folder, item_id).data.get("singleValueExtendedProperties") or []
                patch["singleValueExtendedProperties"] = _merge_ext(stored, patch["singleValueExtendedProperties"])
            item = self.tenant.update(box, folder, item_id, patch)
        return _json(self._query(call).render(item))

    def _message(self, call: _Call, box: Mailbox, message_id: str, tail: list[str]) -> Response:
        item = self.tenant.find(box, message_id)
        if item.folder not in MAIL_FOLDERS:
            raise _not_found()
        match tail:
            case []:
                return _json(self._query(call).render(item))
            case ["attachments"]:
                query = self._query(call)
                return _json({"value": [query.present("", a) for a in _attachments(item)]})
        raise _no_route(call)

    # calendar ---------------------------------------------------------------------------------
    def _calendar_view(self, call: _Call, box: Mailbox) -> Response:
        def build() -> _Cursor:
            window = _window(call.request)
            query = self._query(call)
            timed: list[tuple[datetime, Row]] = []
            for item in self.tenant.items(box, "calendar"):
                if query.matches(partial(_item_field, item)):
                    timed.extend(_view_rows(item, window))
            timed.sort(key=lambda pair: pair[0])
            return _Cursor(box, [row for _, row in timed], query, _top(call.request, LIST_PAGE))

        return self._serve(call, build)

    def _instances(self, call: _Call, box: Mailbox, event_id: str) -> Response:
        def build() -> _Cursor:
            item = self.tenant.get(box, "calendar", event_id)
            window = _window(call.request)
            series = isinstance(item.data.get("recurrence"), dict)
            rows = [row for _, row in _view_rows(item, window)] if series else []
            return _Cursor(box, rows, self._query(call), _top(call.request, LIST_PAGE))

        return self._serve(call, build)

    # delta ------------------------------------------------------------------------------------
    def _delta(self, call: _Call, box: Mailbox, folder: str, *, windowed: bool = False) -> Response:
        return self._serve(call, lambda: self._delta_round(call, box, folder, windowed))

    def _delta_round(self, call: _Call, box: Mailbox, folder: str, windowed: bool) -> _Cursor:
        token = call.request.arg("$deltatoken")
        if token is None:
            window = _window(call.request) if windowed else None
            query = self._query(call)
            with self.tenant.lock:
                seq = self.tenant.seq
                items = self.tenant.items(box, folder)
            rows: list[Row] = [(folder, i.id) for i in items if _wanted(i, query, window)]
        else:
            state = self._delta_state(token, box, folder)
            window, query = state.window, self._query(call, state.options)
            changes = self.tenant.changes(box, folder, state.seq)
            seq = changes.seq
            rows = [(folder, i.id) for i in changes.changed if _wanted(i, query, window)]
            rows += [(folder, _removed(item_id)) for item_id in changes.deleted]
        state = _DeltaState(self._generation, box.user_id, folder, seq, window, query.options)
        return _Cursor(box, rows, query, _max_page_size(call.request), state.encode())

    def _delta_state(self, token: str, box: Mailbox, folder: str) -> _DeltaState:
        try:
            state = _DeltaState.decode(token)
        except (ValueError, TypeError, KeyError, IndexError):
            state = None
        if state is None or (state.generation, state.user_id, state.folder) != (self._generation, box.user_id, folder):
            raise _sync_state_not_found()
        return state

    # paging -----------------------------------------------------------------------------------
    def _serve(self, call: _Call, build: Callable[[], _Cursor]) -> Response:
        token = call.request.arg("$skiptoken")
        if token:
            cursor, offset = self._resume(call, token)
        else:
            cursor, offset = build(), _skip(call.request)
        return self._page(call, cursor, offset)

    def _page(self, call: _Call, cursor: _Cursor, offset: int) -> Response:
        end = offset + cursor.size
        shown = (self._show(cursor, row) for row in cursor.rows[offset:end])
        body: dict[str, Any] = {"value": [resource for resource in shown if resource is not None]}
        url = f"{call.request.base_url}{call.request.path}"
        if end < len(cursor.rows):
            self._keep(cursor)
            body["@odata.nextLink"] = f"{url}?$skiptoken={cursor.key}.{end}"
        elif cursor.delta_token is not None:
            body["@odata.deltaLink"] = f"{url}?$deltatoken={cursor.delta_token}"
        return _json(body)

    def _show(self, cursor: _Cursor, row: Row) -> dict[str, Any] | None:
        folder, ref = row
        if isinstance(ref, dict):
            return cursor.query.present(folder, ref)
        try:
            item = self.tenant.get(cursor.box, folder, ref) if cursor.box is not None else None
        except TenantError:
            item = None
        if item is None:  # deleted since the round started
            return _removed(ref) if cursor.delta_token is not None else None
        return cursor.query.render(item)

    def _keep(self, cursor: _Cursor) -> None:
        with self._lock:
            self._cursors[cursor.key] = cursor
            self._cursors.move_to_end(cursor.key)
            while len(self._cursors) > self.cursor_limit:
                self._cursors.popitem(last=False)

    def _resume(self, call: _Call, token: str) -> tuple[_Cursor, int]:
        key, _, offset = token.rpartition(".")
        with self._lock:
            cursor = self._cursors.get(key)
        if cursor is not None and offset.isdigit():
            return cursor, int(offset)
        if call.request.path.endswith("/delta"):
            raise _sync_state_not_found()
        raise GraphError(400, "BadRequest", "The $skiptoken is invalid or has expired.")

    # batch ------------------------------------------------------------------------------------
    def _batch(self, request: Request) -> Response:
        self._authenticate(request)
        statuses: dict[str, int] = {}
        responses = []
        for step in _batch_steps(request):
            result = self._step(request, step, statuses)
            statuses[step["id"]] = result["status"]
            responses.append(result)
        return _json({"responses": responses})

    def _step(self, outer: Request, step: dict[str, Any], statuses: dict[str, int]) -> dict[str, Any]:
        if any(statuses[dep] >= 400 for dep in step.get("dependsOn") or []):
            return _step_error(step["id"], 424, "FailedDependency", "A request this one depends on failed.")
        retry_after = self._take_batch_throttle()
        if retry_after is not None:
            headers = {"Retry-After": f"{retry_after:g}"}
            return _step_error(step["id"], 429, "TooManyRequests", "Too many requests.", headers)
        response = self._guarded(self._dispatch, _sub_request(outer, step))
        result: dict[str, Any] = {"id": step["id"], "status": response.status, "headers": dict(response.headers)}
        if response.body:
            result["body"] = json.loads(response.body)
        return result

    def _take_batch_throttle(self) -> float | None:
        with self._lock:
            count, retry_after = self._batch_throttle
            if count <= 0:
                return None
            self._batch_throttle = (count - 1, retry_after)
            return retry_after


def _wanted(item: Item, query: _Query, window: Window | None) -> bool:
    if window is not None and next(_spans(item.data, window), None) is None:
        return False
    return query.matches(partial(_item_field, item))


def _unauthorized(message: str) -> GraphError:
    return GraphError(401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": 'Bearer realm=""'})


def _sync_state_not_found() -> GraphError:
    return GraphError(
        410, "SyncStateNotFound", "The sync state is not found or has expired; start a new delta round without a token."
    )
