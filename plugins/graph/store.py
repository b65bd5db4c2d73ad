"""One mailbox through Microsoft Graph: contacts, events, To Do tasks (read/write) and mails (read).

Every side reads with delta queries (the cursor is the ``@odata.deltaLink``, so an unchanged
mailbox costs one request) and writes through JSON ``$batch`` of 20. Writes carry the
counterpart's id in a single-value extended property (a linked resource on To Do tasks), read
back into :attr:`Item.link`. calendarView and contact delta do not take ``$expand``, so the
links of what a delta page brings are read apart: on a full round, every item's link in one
listing of the collection (999 a page, only the id and the link); on a later round, the
changed items' links 20 per ``$batch``, or the listing when that takes fewer requests. To
Do's task delta expands the linked resources itself. A recurring series is one record read
from its master, its exceptions and cancelled occurrences from its instances
(:mod:`plugins.graph.series`); they are written to its occurrences after the master.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from framework.contracts import Changes, Create, Delete, Item, Side, Store, Update, Window, WriteOp, WriteResult
from framework.errors import ConfigurationError, RecordRejected, SyncError
from framework.model import Event, Record
from framework.recurrence import pattern
from plugins.graph import mapping, series
from plugins.graph.client import BATCH_LIMIT, BatchRequest, BatchResponse, GraphClient, Json

PAGE_SIZE = 999  # the largest page Graph serves
UTC_PREFER = 'outlook.timezone="UTC", outlook.body-content-type="text"'
MAIL_FOLDERS = ("inbox", "sentitems")
MAIL_SELECT = "internetMessageId,subject,from,toRecipients,ccRecipients,sentDateTime,body,hasAttachments,categories"
EVENT_HORIZON = timedelta(days=730)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id(item_id: str) -> str:
    """A Graph id as a path segment (ids are URL-safe base64, perhaps with '=' padding)."""
    return quote(item_id, safe="=")


class GraphSide(Side):
    """A read/write side over one Graph collection that has a delta function."""

    batch_size: ClassVar[int] = BATCH_LIMIT
    entity: ClassVar[str]
    link_expand: ClassVar[str] = mapping.LINK_EXPAND
    delta_expands: ClassVar[bool] = False  # whether the delta function takes $expand of the link

    def __init__(self, client: GraphClient, mailbox: str, hook: Any) -> None:
        self.client = client
        self.mailbox = mailbox
        self.hook = hook
        # what was sent for each record written and what Graph answered, until its echo is asked;
        # equal records written together each keep their own, taken in the order written
        self._sent: dict[Record, list[tuple[Json, Json]]] = {}
        # the @odata.etag of each item as this run read or wrote it: updates and deletes send it
        # as If-Match, so that a change made in Exchange meanwhile is never overwritten
        self._etags: dict[str, str] = {}
        # the cross-link of each item as this run read or wrote it, and whether every item's was listed
        self._links: dict[str, str] = {}
        self._links_listed = False
        self._size: int | None = None  # the collection's item count, once asked

    # reading ------------------------------------------------------------------------------------
    @abstractmethod
    def collection(self) -> str:
        """The path items are created in (``/me/contacts``)."""

    def first_delta(self, window: Window) -> tuple[str, dict[str, str]]:
        """The delta URL and parameters that start a full round."""
        return f"{self.collection()}/delta", {"$expand": self.link_expand} if self.delta_expands else {}

    def pages(self, cursor: str | None, window: Window) -> Iterator[Changes]:
        url, params = (cursor, None) if cursor else self.first_delta(window)
        for page in self.client.delta_pages(url, params, page_size=PAGE_SIZE, headers={"Prefer": UTC_PREFER}):
            self.read_links(page.items, full=cursor is None)
            items = [self.item(resource) for resource in page.items]
            cursor_after = page.delta_link or None
            yield Changes([i for i in items if i is not None], page.removed, cursor_after, full=cursor is None)

    def item(self, resource: Json) -> Item | None:
        self._remember_etag(resource)
        record = mapping.FROM_GRAPH[self.entity](resource)
        return Item(str(resource["id"]), record, self._link(resource))

    # cross-links ------------------------------------------------------------------------------
    def read_links(self, resources: Sequence[Json], *, full: bool) -> None:
        """Learn the cross-links of ``resources``, a delta page: from the resources when the delta
        expanded them; else, on a ``full`` round, every item's from one listing; then the rest
        (items not listed, later rounds' changes) 20 per ``$batch``."""
        if self.delta_expands:
            self._links.update((str(r["id"]), mapping.link_of(r)) for r in resources)
            return
        missing = [str(r["id"]) for r in resources if str(r["id"]) not in self._links]
        if missing and not self._links_listed and (full or self._listing_is_cheaper(len(missing))):
            self._list_links()
            missing = [i for i in missing if i not in self._links]
        self._get_links(missing)

    def _listing_is_cheaper(self, count: int) -> bool:
        """Whether listing every item's link takes fewer requests than reading ``count`` of them
        20 per ``$batch`` (the size of the collection is asked once, when it may be)."""
        batches = -(-count // BATCH_LIMIT)
        if batches <= 1:
            return False
        if self._size is None:
            answer = self.client.get(self.collection(), {"$count": "true", "$top": "1", "$select": "id"})
            self._size = int(answer.get("@odata.count") or 0)
        return bool(self._size) and -(-self._size // PAGE_SIZE) < batches

    def _link(self, resource: Json) -> str:
        """The cross-link of ``resource``. A caller that did not read its page's links first
        (:meth:`read_links`) has every item's listed, once per run."""
        if str(resource["id"]) not in self._links:
            self.read_links([resource], full=True)
        return self._links.get(str(resource["id"]), "")

    def note_link(self, resource: Json) -> None:
        """Remember the cross-link of ``resource``, read with the link expanded."""
        self._links[str(resource["id"])] = mapping.link_of(resource)

    def _list_links(self) -> None:
        """Every item's cross-link, listed :data:`PAGE_SIZE` a page with only the id and the link."""
        params = {"$select": "id", "$expand": self.link_expand, "$top": str(PAGE_SIZE)}
        for resource in self.client.pages(self.collection(), params):
            self.note_link(resource)
        self._links_listed = True

    def _get_links(self, ids: list[str]) -> None:
        """The cross-links of ``ids``, read 20 per ``$batch`` (an item gone meanwhile has none)."""
        for start in range(0, len(ids), BATCH_LIMIT):
            chunk = ids[start : start + BATCH_LIMIT]
            url = f"{self.collection()}/{{}}?$select=id&$expand={quote(self.link_expand)}"
            requests = [BatchRequest("GET", url.format(_id(i))) for i in chunk]
            for item_id, answer in zip(chunk, self.client.batch(requests), strict=True):
                if answer.error is not None and answer.status != 404:
                    raise answer.error
                self._links[item_id] = mapping.link_of(answer.body) if answer.error is None else ""

    def echo(self, record: Record) -> Record:
        """What reading ``record`` back gives: read from the payload written, when it was
        (the ``exsync_adjust_native`` hook's changes included), else from the one it would get."""
        sent = self._sent.get(record)
        if not sent:
            return mapping.echo(self.entity, record)
        payload, answer = sent.pop(0)
        if not sent:
            del self._sent[record]
        return self._echo_of(record, payload, answer)

    def _echo_of(self, record: Record, payload: Json, answer: Json) -> Record:
        """What reading ``record`` back gives once written with ``payload``, Graph having answered ``answer``."""
        return mapping.read_back(self.entity, record, payload)

    def _remember_etag(self, resource: Json) -> None:
        if resource.get("@odata.etag") and resource.get("id"):
            self._etags[str(resource["id"])] = str(resource["@odata.etag"])

    # writing ------------------------------------------------------------------------------------
    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Write ``ops`` as one ``$batch``; updates and deletes carry ``If-Match``: a 412 (the
        item changed in Exchange since it was read) fails that write, and the next run reads the
        item again and plans anew instead of overwriting the change."""
        self._read_etags([op.id for op in ops if isinstance(op, Update) and op.id not in self._etags])
        requests: list[BatchRequest | WriteResult] = [self._request(op) for op in ops]
        outgoing = [r for r in requests if isinstance(r, BatchRequest)]
        answers = iter(self.client.batch(outgoing))
        return [
            r if isinstance(r, WriteResult) else self._result(op, r, next(answers))
            for op, r in zip(ops, requests, strict=True)
        ]

    def _read_etags(self, ids: list[str]) -> None:
        """The current etags of items to update that this run has not read (20 per ``$batch``)."""
        for start in range(0, len(ids), BATCH_LIMIT):
            chunk = ids[start : start + BATCH_LIMIT]
            requests = [BatchRequest("GET", f"{self.collection()}/{_id(i)}?$select=id") for i in chunk]
            for answer in self.client.batch(requests):
                if answer.error is None:
                    self._remember_etag(answer.body)

    def _if_match(self, item_id: str) -> dict[str, str] | None:
        etag = self._etags.get(item_id)
        return {"If-Match": etag} if etag else None

    def _request(self, op: WriteOp) -> BatchRequest | WriteResult:
        if isinstance(op, Delete):
            return BatchRequest("DELETE", f"{self.collection()}/{_id(op.id)}", headers=self._if_match(op.id))
        try:
            payload = mapping.to_graph(self.entity, op.record, create=isinstance(op, Create))
        except RecordRejected as exc:
            return WriteResult(error=exc)
        self.hook.exsync_adjust_native(entity=self.entity, side="exchange", record=op.record, native=payload)
        mapping.with_link(self.entity, payload, op.link, create=isinstance(op, Create))
        if isinstance(op, Create):
            return BatchRequest("POST", self.collection(), payload)
        return BatchRequest("PATCH", f"{self.collection()}/{_id(op.id)}", payload, self._if_match(op.id))

    def _result(self, op: WriteOp, request: BatchRequest, answer: BatchResponse) -> WriteResult:
        if isinstance(op, Delete):  # already gone counts as deleted
            ok = answer.error is None or answer.status == 404
            return WriteResult(op.id) if ok else WriteResult(error=answer.error)
        if answer.error is not None:
            return WriteResult(error=answer.error)
        self._remember_etag(answer.body)
        if request.body is not None:
            self._sent.setdefault(op.record, []).append((request.body, answer.body))
        item_id = str(answer.body.get("id") or (op.id if isinstance(op, Update) else ""))
        if item_id and request.body is not None and mapping.carries_link(request.body):
            self._links[item_id] = mapping.link_of(request.body)
        return WriteResult(item_id or None)


class ContactsSide(GraphSide):
    """The mailbox's default contacts folder."""

    entity = "contacts"

    def collection(self) -> str:
        return f"{self.mailbox}/contacts"


class EventsSide(GraphSide):
    """The default calendar, from the window's start to two years ahead; a series is one record,
    its exceptions and cancelled occurrences read from and written to its instances."""

    entity = "events"

    def __init__(self, client: GraphClient, mailbox: str, hook: Any) -> None:
        super().__init__(client, mailbox, hook)
        # each series as this run last saw it, and whether its instances were read with it
        self._held: dict[str, tuple[Event, bool]] = {}
        # each series written, as it holds its exceptions and cancellations once written
        self._series_back: dict[str, Event] = {}
        self._written: list[tuple[Create | Update, Json, Json]] = []

    def collection(self) -> str:
        return f"{self.mailbox}/events"

    def first_delta(self, window: Window) -> tuple[str, dict[str, str]]:
        params = {
            "startDateTime": _iso(window.since),
            "endDateTime": _iso(_horizon()),
        }
        return f"{self.mailbox}/calendarView/delta", params

    def _echo_of(self, record: Record, payload: Json, answer: Json) -> Record:
        """Graph assigns an event's iCalUId itself: reading back gives the one it answered; a
        series holds the exceptions and cancellations its occurrences took."""
        back = super()._echo_of(record, payload, answer)
        uid = answer.get("iCalUId")
        if not isinstance(back, Event):
            return back
        back = replace(back, ical_uid=str(uid)) if uid else back
        held = self._series_back.get(str(answer.get("id") or ""))
        return replace(back, exceptions=held.exceptions, cancelled=held.cancelled) if held else back

    def item(self, resource: Json) -> Item | None:
        if resource.get("type") in series.INSTANCE_TYPES:
            return None  # a series travels as its master only
        return super().item(resource)

    # reading ------------------------------------------------------------------------------------
    def pages(self, cursor: str | None, window: Window) -> Iterator[Changes]:
        """calendarView/delta lists single events, occurrences and exceptions; a series is read
        from its master (``seriesMasterId``), once per round, so that it stays one record, with
        its exceptions and cancellations read from its instances.

        The cursor keeps the deltaLink and the ids of the series seen: Graph reports the end of
        a series as removed occurrences, so a round with removals checks each known series."""
        state = _events_cursor(cursor)
        full = not state["delta"]
        known: set[str] = set() if full else set(state["series"])
        url, params = (state["delta"], None) if not full else self.first_delta(window)
        seen: set[str] = set()
        for page in self.client.delta_pages(url, params, page_size=PAGE_SIZE, headers={"Prefer": UTC_PREFER}):
            wanted = {str(r["seriesMasterId"]) for r in page.items if r.get("type") in series.INSTANCE_TYPES}
            if page.removed and not full:
                wanted |= known
            masters, gone = self._masters(sorted(wanted - seen))
            self.read_links([r for r in page.items if r.get("type") not in series.INSTANCE_TYPES], full=full)
            seen |= wanted
            known = (known | {str(m["id"]) for m in masters}) - set(gone)
            items = [i for i in map(self.item, page.items) if i is not None] + self._series_items(masters)
            after = json.dumps({"delta": page.delta_link, "series": sorted(known)}) if page.delta_link else None
            yield Changes(items, [*page.removed, *gone], after, full=full)

    def _masters(self, ids: list[str]) -> tuple[list[Json], list[str]]:
        """The series masters of ``ids`` (read 20 per ``$batch``) and the ids no longer there."""
        found: list[Json] = []
        gone: list[str] = []
        headers = {"Prefer": UTC_PREFER}
        for start in range(0, len(ids), BATCH_LIMIT):
            chunk = ids[start : start + BATCH_LIMIT]
            requests = [
                BatchRequest(
                    "GET", f"{self.collection()}/{_id(i)}?$expand={quote(mapping.LINK_EXPAND)}", headers=headers
                )
                for i in chunk
            ]
            for master_id, answer in zip(chunk, self.client.batch(requests), strict=True):
                if answer.status == 404:
                    gone.append(master_id)
                elif answer.error is not None:
                    raise answer.error
                else:
                    self.note_link(answer.body)
                    found.append(answer.body)
        return found, gone

    def _series_items(self, masters: list[Json]) -> list[Item]:
        """The series of ``masters``, each with the exceptions and cancellations its instances show."""
        events: dict[str, tuple[Event, Json]] = {}
        for master in masters:
            self._remember_etag(master)
            record = mapping.event_from_graph(master)
            events[str(master["id"])] = (record, master)
        listings = self._listings(events)
        items = []
        for master_id, (record, master) in events.items():
            listing = listings.get(master_id)
            record = series.with_listing(record, listing) if listing else record
            self._held[master_id] = (record, True)
            items.append(Item(master_id, record, mapping.link_of(master)))
        return items

    def _listings(self, wanted: dict[str, tuple[Event, Json]]) -> dict[str, series.Listing]:
        """What each series of ``wanted`` (id: (series, master)) holds, from its instances."""
        windows = {}
        for master_id, (record, _) in wanted.items():
            window = series.listing_window(record, _horizon()) if record.recurrence else None
            if window is not None:
                windows[master_id] = window
        instances = self._instances(windows)
        return {
            master_id: series.read_listing(wanted[master_id][0], wanted[master_id][1], found, windows[master_id][1])
            for master_id, found in instances.items()
        }

    def _instances(self, windows: dict[str, tuple[datetime, datetime]]) -> dict[str, list[Json]]:
        """The occurrences and exceptions of each series in its window (20 series per ``$batch``);
        a series no longer there has none."""
        found: dict[str, list[Json]] = {}
        headers = {"Prefer": UTC_PREFER}
        ids = sorted(windows)
        for start in range(0, len(ids), BATCH_LIMIT):
            chunk = ids[start : start + BATCH_LIMIT]
            requests = [BatchRequest("GET", self._instances_url(i, *windows[i]), headers=headers) for i in chunk]
            for master_id, answer in zip(chunk, self.client.batch(requests), strict=True):
                if answer.status == 404:
                    continue
                if answer.error is not None:
                    raise answer.error
                found[master_id] = list(answer.body.get("value") or [])
                next_link = answer.body.get("@odata.nextLink")
                if next_link:
                    found[master_id] += self.client.pages(str(next_link), headers=headers)
        return found

    def _instances_url(self, master_id: str, since: datetime, until: datetime) -> str:
        query = f"startDateTime={_iso(since)}&endDateTime={_iso(until)}&$select={series.INSTANCE_SELECT}"
        return f"{self.collection()}/{_id(master_id)}/instances?{query}&$top={PAGE_SIZE}"

    # writing ------------------------------------------------------------------------------------
    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Write ``ops`` as one ``$batch``, then the occurrences of the series written: a new
        series takes its record's cancellations and exceptions; an updated one whose pattern
        is unchanged is reconciled with its record, one whose pattern changed is left as
        Graph leaves it, without exceptions and cancellations."""
        self._read_current(
            [
                op.id
                for op in ops
                if isinstance(op, Update)
                and (op.id not in self._etags or (_is_series(op.record) and op.id not in self._held))
            ]
        )
        before = {op.id: self._held.get(op.id) for op in ops if isinstance(op, Update) and _is_series(op.record)}
        self._written = []
        results = super().write(ops)
        failed = self._write_occurrences(before)
        # an update is written again next run; a new series stays written, its occurrences as they are
        return [
            WriteResult(error=failed[op.id]) if isinstance(op, Update) and op.id in failed else result
            for op, result in zip(ops, results, strict=True)
        ]

    def _read_current(self, ids: list[str]) -> None:
        """The etags of items to update that this run has not read, and the patterns of such
        series (20 per ``$batch``)."""
        headers = {"Prefer": UTC_PREFER}
        for start in range(0, len(ids), BATCH_LIMIT):
            chunk = ids[start : start + BATCH_LIMIT]
            requests = [
                BatchRequest("GET", f"{self.collection()}/{_id(i)}?$select={CURRENT_SELECT}", headers=headers)
                for i in chunk
            ]
            for item_id, answer in zip(chunk, self.client.batch(requests), strict=True):
                if answer.error is not None:
                    continue
                if item_id not in self._etags:
                    self._remember_etag(answer.body)
                if answer.body.get("recurrence"):
                    self._held[item_id] = (mapping.event_from_graph(answer.body), False)

    def _result(self, op: WriteOp, request: BatchRequest, answer: BatchResponse) -> WriteResult:
        result = super()._result(op, request, answer)
        if result.ok and request.body is not None and isinstance(op, Create | Update):
            self._written.append((op, request.body, answer.body))
        return result

    def _write_occurrences(self, before: dict[str, tuple[Event, bool] | None]) -> dict[str, SyncError]:
        """Cancel and change the occurrences of the series just written as their records say;
        the errors of those whose occurrences could not all be written."""
        wanted: dict[str, tuple[Event, Json]] = {}
        for op, payload, answer in self._written:
            record = op.record
            if not isinstance(record, Event) or not record.recurrence:
                continue
            item_id = str(answer.get("id") or (op.id if isinstance(op, Update) else ""))
            written = mapping.read_back(self.entity, record, payload)
            assert isinstance(written, Event)
            bare = replace(written, exceptions=(), cancelled=())
            previous = before.get(op.id) if isinstance(op, Update) else None
            if isinstance(op, Update) and (previous is None or pattern(previous[0]) != pattern(bare)):
                self._keep(item_id, bare)  # Exchange dropped the exceptions with the old pattern
            elif _needs_listing(written, previous, create=isinstance(op, Create)):
                wanted[item_id] = (written, answer)
            else:
                self._keep(item_id, bare)
        failed: dict[str, SyncError] = {}
        try:
            listings = self._listings(wanted)
        except SyncError as exc:  # the series are written; their occurrences wait for a next write
            listings, failed = {}, dict.fromkeys(wanted, exc)
        writes = {i: series.plan(wanted[i][0], listing) for i, listing in listings.items()}
        outcomes = self._occurrence_writes(writes, {i: wanted[i][0] for i in writes})
        for item_id, (written, _) in wanted.items():
            listing = listings.get(item_id)
            if listing is None:
                self._keep(item_id, replace(written, exceptions=(), cancelled=()))
                continue
            errors = outcomes[item_id]
            after = series.applied(listing, writes[item_id], [e is None for e in errors])
            self._keep(item_id, series.with_listing(written, after))
            first_error = next((e for e in errors if e is not None), None)
            if first_error is not None:
                failed[item_id] = first_error
        return failed

    def _keep(self, item_id: str, record: Event) -> None:
        self._series_back[item_id] = record
        self._held[item_id] = (record, True)

    def _occurrence_writes(
        self, writes: dict[str, list[series.OccurrenceWrite]], records: dict[str, Event]
    ) -> dict[str, list[SyncError | None]]:
        """Send ``writes`` (per series) 20 per ``$batch``; the error of each (None: written)."""
        flat = [(item_id, write) for item_id, planned in writes.items() for write in planned]
        outcomes: list[SyncError | None] = []
        for start in range(0, len(flat), BATCH_LIMIT):
            chunk = flat[start : start + BATCH_LIMIT]
            requests = [self._occurrence_request(records[item_id], write) for item_id, write in chunk]
            try:
                answers = self.client.batch(requests)
            except SyncError as exc:
                outcomes += [exc] * len(chunk)
                continue
            outcomes += [None if a.error is None or a.status == 404 else a.error for a in answers]
        errors: dict[str, list[SyncError | None]] = {item_id: [] for item_id in writes}
        for (item_id, _), error in zip(flat, outcomes, strict=True):
            errors[item_id].append(error)
        return errors

    def _occurrence_request(self, record: Event, write: series.OccurrenceWrite) -> BatchRequest:
        url = f"{self.collection()}/{_id(write.instance_id)}"
        if write.values is None:
            return BatchRequest("DELETE", url)
        return BatchRequest("PATCH", url, mapping.occurrence_to_graph(record, write.values))


CURRENT_SELECT = "id,subject,start,end,isAllDay,recurrence,originalStartTimeZone,location,body"


def _horizon() -> datetime:
    return datetime.now(UTC) + EVENT_HORIZON


def _is_series(record: Record) -> bool:
    return isinstance(record, Event) and bool(record.recurrence)


def _needs_listing(written: Event, previous: tuple[Event, bool] | None, *, create: bool) -> bool:
    """Whether a series written must be listed: it has exceptions or cancellations to apply,
    or (an update) may hold ones its record no longer has."""
    if written.exceptions or written.cancelled:
        return True
    if create:
        return False
    return previous is None or not previous[1] or bool(previous[0].exceptions or previous[0].cancelled)


def _events_cursor(cursor: str | None) -> dict[str, Any]:
    """The events cursor: {"delta": deltaLink, "series": [master ids]}; an older bare
    deltaLink, which knows no series, starts a new full round."""
    state = json.loads(cursor) if cursor and cursor.startswith("{") else {}
    return {"delta": str(state.get("delta") or ""), "series": list(state.get("series") or [])}


class TasksSide(GraphSide):
    """The default Microsoft To Do list; the cursor remembers the list with the deltaLink."""

    entity = "tasks"
    link_expand = mapping.TASK_LINK_EXPAND
    delta_expands = True  # "todoTask: delta" takes $select, $top and $expand

    def __init__(self, client: GraphClient, mailbox: str, hook: Any) -> None:
        super().__init__(client, mailbox, hook)
        self._list_id = ""

    def collection(self) -> str:
        if not self._list_id:
            self._list_id = self._default_list()
        return f"{self.mailbox}/todo/lists/{_id(self._list_id)}/tasks"

    def _default_list(self) -> str:
        for todo_list in self.client.pages(f"{self.mailbox}/todo/lists"):
            if todo_list.get("wellknownListName") == "defaultList":
                return str(todo_list["id"])
        raise ConfigurationError("The mailbox has no default Microsoft To Do list.")

    def pages(self, cursor: str | None, window: Window) -> Iterator[Changes]:
        state = json.loads(cursor) if cursor else {}
        self._list_id = state.get("list", self._list_id)
        for page in super().pages(state.get("delta"), window):
            if page.cursor is not None:
                page.cursor = json.dumps({"list": self._list_id, "delta": page.cursor})
            yield page


class MailsSide(Side):
    """Inbox and sent items, read only: mails are written to the CRM, never to Exchange."""

    batch_size: ClassVar[int] = BATCH_LIMIT

    def __init__(self, client: GraphClient, mailbox: str) -> None:
        self.client = client
        self.mailbox = mailbox

    def pages(self, cursor: str | None, window: Window) -> Iterator[Changes]:
        links: dict[str, str] = json.loads(cursor) if cursor else {}
        for folder in MAIL_FOLDERS:
            if folder in links:
                url, params = links[folder], None
            else:
                url = f"{self.mailbox}/mailFolders/{folder}/messages/delta"
                params = {"$select": MAIL_SELECT, "$filter": f"receivedDateTime ge {_iso(window.since)}"}
            for page in self.client.delta_pages(url, params, page_size=PAGE_SIZE, headers={"Prefer": UTC_PREFER}):
                attachments = self._attachments([m for m in page.items if m.get("hasAttachments")])
                items = [
                    Item(str(m["id"]), mapping.mail_from_graph(m, folder, attachments.get(str(m["id"]))))
                    for m in page.items
                ]
                if page.delta_link:
                    links[folder] = page.delta_link
                last = folder == MAIL_FOLDERS[-1] and bool(page.delta_link)
                yield Changes(items, page.removed, json.dumps(links, sort_keys=True) if last else None, cursor is None)

    def _attachments(self, messages: list[Json]) -> dict[str, list[Json]]:
        """Names and sizes of the attachments of ``messages``, fetched 20 messages per $batch."""
        found: dict[str, list[Json]] = {}
        for start in range(0, len(messages), BATCH_LIMIT):
            chunk = messages[start : start + BATCH_LIMIT]
            requests = [
                BatchRequest("GET", f"{self.mailbox}/messages/{_id(str(m['id']))}/attachments?$select=name,size")
                for m in chunk
            ]
            for message, answer in zip(chunk, self.client.batch(requests), strict=True):
                if answer.error is not None:
                    raise answer.error
                found[str(message["id"])] = list(answer.body.get("value") or [])
        return found

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        error = RecordRejected("Mails are read from Exchange only; exsync never writes them there.")
        return [WriteResult(error=error) for _ in ops]

    def echo(self, record: Record) -> Record:
        return mapping.echo("mails", record)


class GraphStore(Store):
    """One mailbox (``/me`` or ``/users/{address}``) through one :class:`GraphClient`."""

    entities = frozenset({"contacts", "events", "tasks", "mails"})

    def __init__(self, client: GraphClient, mailbox: str, hook: Any) -> None:
        self.client = client
        self.mailbox = mailbox if mailbox == "/me" else f"/users/{quote(mailbox.removeprefix('/users/'), safe='@')}"
        self.hook = hook
        self._sides: dict[str, Side] = {}

    def side(self, entity: str) -> Side:
        if entity not in self._sides:
            self._sides[entity] = self._make(entity)
        return self._sides[entity]

    def _make(self, entity: str) -> Side:
        sides: dict[str, type[GraphSide]] = {"contacts": ContactsSide, "events": EventsSide, "tasks": TasksSide}
        if entity == "mails":
            return MailsSide(self.client, self.mailbox)
        if entity not in sides:
            raise ConfigurationError(f"Microsoft Graph does not carry {entity!r}.")
        return sides[entity](self.client, self.mailbox, self.hook)

    def close(self) -> None:
        self.client.close()
