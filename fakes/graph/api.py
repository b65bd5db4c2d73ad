"""The fake Microsoft Graph v1.0 over a :class:`~fakes.tenant.Tenant`.

As moto splits a service, the rules live apart from the wire: the model side is
:mod:`~fakes.graph.resources` (resource shapes, defaults, ids, If-Match),
:mod:`~fakes.graph.calendar` and :mod:`~fakes.graph.recurrence` (series and their instances),
:mod:`~fakes.graph.schema` (the v1.0 property tables) and :mod:`~fakes.graph.permissions`; the
wire side is this module (authentication, mailbox routing, items, delta, paging, ``$batch``),
:mod:`~fakes.graph.directory` (``/me``, ``/users``), :mod:`~fakes.graph.events` (events,
occurrences, calendarView), :mod:`~fakes.graph.todo`, :mod:`~fakes.graph.mail` (messages, mail
folders), :mod:`~fakes.graph.query` (OData query options),
:mod:`~fakes.graph.wire`, :mod:`~fakes.graph.paging`, :mod:`~fakes.graph.batch` and
:mod:`~fakes.graph.errors`.

:class:`GraphApi` is a server handler. Every request needs a bearer token of the
:class:`~fakes.graph.authority.Authority` with Graph as audience (401 InvalidAuthenticationToken
otherwise, also when expired). App-only tokens reach every mailbox through ``/users/{id|upn}``;
delegated tokens only their own (``/me`` or their own ``/users/{id}``), others are 403
ErrorAccessDenied. Each call also needs its permission (:mod:`fakes.graph.permissions`):
``scp`` of a delegated token, ``roles`` of an app-only one, else 403. Routes, under ``/v1.0``
and for both ``/me`` and ``/users/{id}``::

    GET /me, GET /users, GET /users/{id}, GET /users/$count      (ConsistencyLevel: eventual)
    GET /calendar, GET /calendars[/{id}] (the default one; /calendars/{id}/... as /calendar/...)
    GET /mailFolders, GET /mailFolders/{id|wellKnownName}
    GET|POST /contacts, GET|PATCH|DELETE /contacts/{id}, GET /contacts/delta
        (also under /contactFolders/contacts/...)
    GET|POST /events, GET|PATCH|DELETE /events/{id}, GET /events/{id}/instances (also /calendar/events)
    GET /calendarView, GET /calendarView/delta   (startDateTime & endDateTime; also under /calendar)
    GET /todo/lists, GET /todo/lists/{id}      (app-only tokens with Tasks.Read.All / Tasks.ReadWrite.All)
    GET|POST /todo/lists/{id}/tasks, GET|PATCH|DELETE .../tasks/{id}, GET .../tasks/delta
    GET /messages, GET /messages/{id}, GET /messages/{id}/attachments
    GET /mailFolders/{inbox|sentitems}/messages[/{id}|/delta]
    POST /$batch

Query options: ``$top`` (default 10, users 100, at most 999), ``$skip``, ``$select`` (``id`` and
``@odata.etag`` always kept), ``$filter`` (``eq ne gt ge lt le`` and ``startswith()`` on top-level
string, boolean and date fields, joined by ``and``; anything else is 400),
``$expand=singleValueExtendedProperties($filter=id eq '...' [or id eq '...'])`` or (To Do)
``$expand=linkedResources``, ``$orderby`` and ``$count=true`` (``@odata.count``; on users only
with ``ConsistencyLevel: eventual``, else 400 Request_BadRequest). Other ``$``
options are 400. Listings are snapshots: the ids are taken once on the first page and the
rest is served by ``$skiptoken`` in O(page); the last :data:`CURSOR_LIMIT` snapshots are kept.

Delta: the first round lists the current items; its last page carries a ``$deltatoken`` that
encodes the change-log number at the start of the round, the window, the query options and a
generation (:meth:`GraphApi.expire_delta_tokens` makes all tokens 410 SyncStateNotFound).
Later rounds read only ``Tenant.changes`` (O(changes)): full resources for changed items and
``{"id", "@removed": {"reason": "deleted"}}`` for deleted ones. Page size:
``Prefer: odata.maxpagesize=N`` (default 100). Each delta function refuses the query options
Graph's reference says it does not support (:mod:`fakes.graph.delta_options`): calendarView
and contact delta take no ``$expand``, calendarView delta no ``$select`` either.

Events: start/end are returned in UTC, or in the zone of ``Prefer: outlook.timezone``, with
``originalStartTimeZone``/``originalEndTimeZone``; IANA names and common Windows names are
understood. An event with ``recurrence`` is a ``seriesMaster``, listed by ``/events`` and read
by ``/events/{id}``; calendarView and ``/events/{id}/instances`` list its occurrences and
exceptions instead (``type``, ``seriesMasterId``), every pattern and range type expanded
(:mod:`fakes.graph.recurrence`). Occurrence ids (``{masterId}_{yyyymmdd}``) are addressable:
PATCH makes an exception, DELETE cancels the occurrence; a PATCH of the master that changes its
recurrence, start or end drops them all (not confirmed for real Graph). Occurrences keep the
master's wall-clock time in its start's zone across daylight saving changes and carry
``originalStart``. calendarView/delta reports single
events whole, occurrences bare (id, type, seriesMasterId, start, end), exceptions whole and
cancelled occurrences as ``@removed``; a changed series reports all its instances in the
window, a deleted one each of them as ``@removed``. An item that moves out of the window is
not reported, all deletions are. The ``delta()`` form of every delta URL is accepted.

Bodies: ``Prefer: outlook.body-content-type="text"`` turns HTML bodies into plain text. Bodies
written are checked against the v1.0 types (:mod:`fakes.graph.schema`): unknown properties,
wrong types and enum values are 400 RequestBodyRead; Outlook's rules (at most 3 e-mail
addresses, end before start, an unknown time zone, an incomplete recurrence) are refused with
their codes. An id that is not an item id at all is 400 ErrorInvalidIdMalformed. PATCH and
DELETE honour ``If-Match``: an etag other than the item's current one is 412.

Extended properties: ``singleValueExtendedProperties`` are stored with the item, merged by
id on PATCH, and returned only through ``$expand``; ids compare case- and space-insensitively.

Batch: at most 20 steps, run in order through the same router with the outer Authorization;
``dependsOn`` must name earlier steps (a failed dependency gives 424);
:meth:`GraphApi.throttle_batch_items` makes the next steps 429 with Retry-After.

Not reproduced: creating messages, attachment content, other folders than the default ones,
``$search``, change notifications.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import unquote

from fakes.graph.authority import GRAPH_RESOURCE, Authority, TokenError, TokenInfo
from fakes.graph.batch import batch_steps, step_error, sub_request
from fakes.graph.calendar import (
    Row,
    Window,
    delta_rows,
    removed_rows,
    series_patch,
)
from fakes.graph.delta_options import delta_rules
from fakes.graph.directory import DirectoryRoutes
from fakes.graph.errors import (
    GraphError,
    from_tenant,
    no_route,
    sync_state_not_found,
    unauthorized,
)
from fakes.graph.events import EventRoutes
from fakes.graph.mail import MailRoutes
from fakes.graph.paging import CURSOR_LIMIT, Cursor, DeltaState
from fakes.graph.permissions import area_of, require
from fakes.graph.query import Query, merge_ext
from fakes.graph.resources import (
    CONTACT_FOLDER_ID,
    TASK_LIST_ID,
    check_if_match,
    check_item_id,
    item_field,
    merged,
    removed_entry,
    with_defaults,
    writable_fields,
)
from fakes.graph.schema import check_body, check_rules
from fakes.graph.todo import TodoRoutes
from fakes.graph.wire import (
    LIST_PAGE,
    Call,
    body_of,
    check_options,
    json_response,
    max_page_size,
    options_of,
    prefs_of,
    skip_of,
    top_of,
    window_of,
)
from fakes.server import Request, Response
from fakes.tenant import Item, Mailbox, Tenant, TenantError

__all__ = ["TASK_LIST_ID", "GraphApi", "GraphError"]


class GraphApi:
    """Microsoft Graph v1.0 over ``tenant`` for tokens of ``authority``; a server handler."""

    def __init__(self, tenant: Tenant, authority: Authority, *, cursor_limit: int = CURSOR_LIMIT) -> None:
        self.tenant = tenant
        self.authority = authority
        self.cursor_limit = cursor_limit
        self._lock = threading.Lock()
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._generation = 0
        self._batch_throttle: tuple[int, float] = (0, 0.0)
        self.events = EventRoutes(self)
        self.directory = DirectoryRoutes(self)
        self.todo = TodoRoutes(self)
        self.mail = MailRoutes(self)

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
            return from_tenant(exc).response(request)

    def _authenticate(self, request: Request) -> TokenInfo:
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("Access token is empty.")
        try:
            info = self.authority.validate(token.strip())
        except TokenError as exc:
            raise unauthorized(str(exc)) from None
        if info.audience != GRAPH_RESOURCE:
            raise unauthorized("Access token validation failure. Invalid audience.")
        return info

    def _dispatch(self, request: Request) -> Response:
        segments = [unquote(s).removesuffix("()") if s == "delta()" else unquote(s) for s in request.path.split("/")]
        if segments[:2] != ["", "v1.0"]:
            raise GraphError(400, "BadRequest", f"Invalid version: {request.path}")
        call = Call(request, self._authenticate(request))
        check_options(request)
        return self._route(call, segments[2:])

    def query(self, call: Call, options: dict[str, str] | None = None) -> Query:
        """The query options of ``call`` (or ``options``, a delta round's) and its ``Prefer`` header."""
        return Query.parse(options_of(call.request) if options is None else options, prefs_of(call.request))

    # routing ----------------------------------------------------------------------------------
    def _route(self, call: Call, segments: list[str]) -> Response:
        match segments:
            case ["me"] | ["users"] | ["users", _] if call.method == "GET":
                return self.directory.route(call, segments)
            case ["me", *rest]:
                return self._mailbox(call, self.directory.own_box(call), rest)
            case ["users", key, *rest]:
                return self._mailbox(call, self.directory.box_for(call, key), rest)
            case [first, *_] if first not in ("me", "users"):
                raise GraphError(400, "BadRequest", f"Resource not found for the segment '{first}'.")
        raise no_route(call)

    def _mailbox(self, call: Call, box: Mailbox, rest: list[str]) -> Response:
        get = call.method == "GET"
        area = area_of(rest[0]) if rest else None
        if area is not None:
            require(call.token, area, write=not get)
        match rest:
            case ["contacts", *tail]:
                return self.items(call, box, "contacts", tail)
            case ["contactFolders", folder_id, "contacts", *tail] if folder_id.lower() == CONTACT_FOLDER_ID:
                return self.items(call, box, "contacts", tail)
            case ["events" | "calendar" | "calendars" | "calendarView", *_]:
                return self.events.route(call, box, rest)
            case ["todo", *tail]:
                return self.todo.route(call, box, tail)
            case ["messages" | "mailFolders", *_]:
                return self.mail.route(call, box, rest)
        raise no_route(call)

    def items(
        self, call: Call, box: Mailbox, folder: str, tail: list[str], *, delta: bool = True, writable: bool = True
    ) -> Response:
        """A folder's items: list, delta, get, create, update and delete."""
        match (call.method, tail, writable):
            case ("GET", [], _):
                return self.listing(call, box, folder)
            case ("GET", ["delta"], _) if delta:
                return self.delta(call, box, folder)
            case ("GET", [item_id], _):
                check_item_id(item_id)
                return json_response(self.query(call).render(self.tenant.get(box, folder, item_id)))
            case ("POST", [], True):
                return self._create(call, box, folder)
            case ("PATCH", [item_id], True):
                check_item_id(item_id)
                return self._patch(call, box, folder, item_id)
            case ("DELETE", [item_id], True):
                check_item_id(item_id)
                with self.tenant.lock:
                    check_if_match(call.request, self.tenant.get(box, folder, item_id))
                    self.tenant.delete(box, folder, item_id)
                return Response(204)
        raise no_route(call)

    # items ------------------------------------------------------------------------------------
    def listing(self, call: Call, box: Mailbox, *folders: str) -> Response:
        """The items of ``folders``, oldest first unless ``$orderby`` says otherwise."""

        def build() -> Cursor:
            query = self.query(call)
            items = sorted(
                itertools.chain.from_iterable(self.tenant.items(box, f) for f in folders), key=lambda item: item.seq
            )
            wanted = query.ordered([i for i in items if query.matches(partial(item_field, i))], item_field)
            rows: list[Row] = [(i.folder, i.id) for i in wanted]
            return Cursor(box, rows, query, top_of(call.request, LIST_PAGE))

        return self.serve(call, build)

    def _create(self, call: Call, box: Mailbox, folder: str) -> Response:
        body = body_of(call.request)
        check_body(folder, body)
        data = writable_fields(body)
        if "singleValueExtendedProperties" in data:
            data["singleValueExtendedProperties"] = merge_ext([], data["singleValueExtendedProperties"])
        data = with_defaults(folder, data, box)
        check_rules(folder, data)
        item = self.tenant.create(box, folder, data)
        return json_response(self.query(call).render(item), 201)

    def _patch(self, call: Call, box: Mailbox, folder: str, item_id: str) -> Response:
        body = body_of(call.request)
        check_body(folder, body)
        patch = writable_fields(body)
        with self.tenant.lock:
            current = self.tenant.get(box, folder, item_id)
            check_if_match(call.request, current)
            if "singleValueExtendedProperties" in patch:
                stored = current.data.get("singleValueExtendedProperties") or []
                patch["singleValueExtendedProperties"] = merge_ext(stored, patch["singleValueExtendedProperties"])
            check_rules(folder, merged(current.data, patch))
            if folder == "calendar":
                patch = series_patch(current.data, patch)
            item = self.tenant.update(box, folder, item_id, patch)
        return json_response(self.query(call).render(item))

    # delta ------------------------------------------------------------------------------------
    def delta(self, call: Call, box: Mailbox, folder: str, *, windowed: bool = False) -> Response:
        """A delta round of ``folder`` (``windowed``: calendarView's, with startDateTime/endDateTime)."""
        options = {name: call.request.arg(name) or "" for name in call.request.query if name.startswith("$")}
        delta_rules(folder, windowed=windowed).check(options)
        return self.serve(call, lambda: self._delta_round(call, box, folder, windowed))

    def _delta_round(self, call: Call, box: Mailbox, folder: str, windowed: bool) -> Cursor:
        token = call.request.arg("$deltatoken")
        if token is None:
            window = window_of(call.request) if windowed else None
            query = self.query(call)
            with self.tenant.lock:
                seq = self.tenant.seq
                items = self.tenant.items(box, folder)
            rows = [row for item in items for row in _delta_rows(item, query, window)]
        else:
            state = self._delta_state(token, box, folder)
            window, query = state.window, self.query(call, state.options)
            changes = self.tenant.changes(box, folder, state.seq)
            seq = changes.seq
            rows = [row for item in changes.changed for row in _delta_rows(item, query, window)]
            for item_id in changes.deleted:
                gone = changes.gone.get(item_id)
                rows += removed_rows(item_id, gone, window) if window else [(folder, removed_entry(item_id))]
        state = DeltaState(self._generation, box.user_id, folder, seq, window, query.options)
        return Cursor(box, rows, query, max_page_size(call.request), state.encode())

    def _delta_state(self, token: str, box: Mailbox, folder: str) -> DeltaState:
        try:
            state = DeltaState.decode(token)
        except (ValueError, TypeError, KeyError, IndexError):
            state = None
        if state is None or (state.generation, state.user_id, state.folder) != (self._generation, box.user_id, folder):
            raise sync_state_not_found()
        return state

    # paging -----------------------------------------------------------------------------------
    def serve(self, call: Call, build: Callable[[], Cursor]) -> Response:
        """A page of a listing: the one a ``$skiptoken`` continues, else the first of ``build()``."""
        token = call.request.arg("$skiptoken")
        if token:
            cursor, offset = self._resume(call, token)
        else:
            cursor, offset = build(), skip_of(call.request)
        return self._page(call, cursor, offset)

    def _page(self, call: Call, cursor: Cursor, offset: int) -> Response:
        end = offset + cursor.size
        shown = (self._show(cursor, row) for row in cursor.rows[offset:end])
        body: dict[str, Any] = {"value": [resource for resource in shown if resource is not None]}
        if cursor.query.count:
            body["@odata.count"] = len(cursor.rows)
        url = f"{call.request.base_url}{call.request.path}"
        if end < len(cursor.rows):
            self._keep(cursor)
            body["@odata.nextLink"] = f"{url}?$skiptoken={cursor.key}.{end}"
        elif cursor.delta_token is not None:
            body["@odata.deltaLink"] = f"{url}?$deltatoken={cursor.delta_token}"
        return json_response(body)

    def _show(self, cursor: Cursor, row: Row) -> dict[str, Any] | None:
        folder, ref = row
        if isinstance(ref, dict):
            return cursor.query.present(folder, ref)
        try:
            item = self.tenant.get(cursor.box, folder, ref) if cursor.box is not None else None
        except TenantError:
            item = None
        if item is None:  # deleted since the round started
            return removed_entry(ref) if cursor.delta_token is not None else None
        return cursor.query.render(item)

    def _keep(self, cursor: Cursor) -> None:
        with self._lock:
            self._cursors[cursor.key] = cursor
            self._cursors.move_to_end(cursor.key)
            while len(self._cursors) > self.cursor_limit:
                self._cursors.popitem(last=False)

    def _resume(self, call: Call, token: str) -> tuple[Cursor, int]:
        key, _, offset = token.rpartition(".")
        with self._lock:
            cursor = self._cursors.get(key)
        if cursor is not None and offset.isdigit():
            return cursor, int(offset)
        if call.request.path.endswith("/delta"):
            raise sync_state_not_found()
        raise GraphError(400, "BadRequest", "The $skiptoken is invalid or has expired.")

    # batch ------------------------------------------------------------------------------------
    def _batch(self, request: Request) -> Response:
        self._authenticate(request)
        statuses: dict[str, int] = {}
        responses = []
        for step in batch_steps(request):
            result = self._step(request, step, statuses)
            statuses[step["id"]] = result["status"]
            responses.append(result)
        return json_response({"responses": responses})

    def _step(self, outer: Request, step: dict[str, Any], statuses: dict[str, int]) -> dict[str, Any]:
        if any(statuses[dep] >= 400 for dep in step.get("dependsOn") or []):
            return step_error(step["id"], 424, "FailedDependency", "A request this one depends on failed.")
        retry_after = self._take_batch_throttle()
        if retry_after is not None:
            headers = {"Retry-After": f"{retry_after:g}"}
            return step_error(step["id"], 429, "TooManyRequests", "Too many requests.", headers)
        response = self._guarded(self._dispatch, sub_request(outer, step))
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


def _delta_rows(item: Item, query: Query, window: Window | None) -> list[Row]:
    """The rows a delta round shows for ``item``: itself, or (calendarView) its instances in ``window``."""
    if not query.matches(partial(item_field, item)):
        return []
    return delta_rows(item, window) if window is not None else [(item.folder, item.id)]
