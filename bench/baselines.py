"""What the sync is compared with: the protocol floor and the naive way.

Both copy the same records as an initial sync does (contacts, tasks and events each way,
mails from Exchange to the CRM, the six-month window applied) with the same client
libraries: the CRM plugin's httpx client, the Graph plugin's httpx client, exchangelib. The
clients come from the product's own stores (``ctx.crm(user)``, ``ctx.exchange(user)``) so
authentication is the same; the field mappings are the plugins' (a copy must convert).
What they leave out is everything a sync adds: state, hashes, planning, pairing, cursors.

* floor: read every record from its source in the largest pages the service allows (CRM
  200, Graph 999, EWS SyncFolderItems 512) and write them in the largest batches (CRM 100,
  Graph ``$batch`` 20, EWS CreateItem 100). Mails are written without looking up the
  contacts they link to.
* naive: one request per record: list the ids, GET each record, create each on the other
  side with its own request. Its cost is linear by construction, so at large sizes it may
  run on every n-th record (at most ``cap``) of each entity and direction and be scaled up (marked).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from exchangelib import CalendarItem, ItemId
from exchangelib import Contact as NativeContact
from exchangelib import Message as NativeMessage
from exchangelib import Task as NativeTask
from exchangelib.items import SAVE_ONLY, SEND_TO_NONE

from framework.contracts import Window
from framework.model import Mail, Record
from plugins.crm.client import CrmClient
from plugins.crm.mapping import MAPPINGS
from plugins.crm.store import MailSide
from plugins.crm.sweep import Listings
from plugins.entities import EVENTS, MAILS, TASKS
from plugins.ews import mapping as ews_mapping
from plugins.ews.store import MAX_CHANGES
from plugins.graph import mapping as graph_mapping
from plugins.graph.client import BATCH_LIMIT, BatchRequest, GraphClient
from plugins.graph.store import MAIL_FOLDERS, MAIL_SELECT, PAGE_SIZE, UTC_PREFER, GraphStore

CRM_BATCH = 100
EWS_BATCH = 100
ENTITIES = ("contacts", "tasks", "events")
DATED: dict[str, Any] = {  # entity -> the moment the window applies to
    "tasks": TASKS.dated,
    "events": EVENTS.dated,
    "mails": MAILS.dated,
}
EWS_CLASSES: dict[str, type] = {"contacts": NativeContact, "tasks": NativeTask, "events": CalendarItem}
EWS_FOLDERS = {"contacts": "contacts", "tasks": "tasks", "events": "calendar"}


@dataclass
class Copied:
    """What a baseline copied, and for the naive way how much was measured vs. scaled up."""

    records: int = 0
    measured: int = 0  # records actually copied (the rest are extrapolated)
    seconds: float = 0.0  # wall seconds, the per-record part scaled up to ``records``
    sampled: float = 0.0  # seconds of the per-record part actually measured
    directions: dict[str, int] = field(default_factory=dict)

    @property
    def extrapolated(self) -> bool:
        return self.measured < self.records


def _in_window(entity: str, record: Record, window: Window) -> bool:
    dated = DATED.get(entity)
    return dated is None or window.contains(dated(record))


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Crm:
    """The CRM end: the user's records of a module, written as the user."""

    def __init__(self, client: CrmClient, owner_id: str) -> None:
        self.client = client
        self.owner = {"id": owner_id}

    def records(self, entity: str, window: Window) -> Iterator[Record]:
        mapping = MAPPINGS[entity]
        for page in self.client.list_modified(mapping.module, mapping.read_fields):
            for native in page.records:
                if (native.get("Owner") or {}).get("id") == self.owner["id"]:
                    record = mapping.from_native(native)
                    if _in_window(entity, record, window):
                        yield record

    def payload(self, entity: str, record: Record) -> dict[str, Any]:
        return {**MAPPINGS[entity].to_native(record), "Owner": self.owner}

    def insert(self, entity: str, records: list[Record]) -> None:
        if entity == "mails":
            self.associate(records)
            return
        outcomes = self.client.insert(MAPPINGS[entity].module, [self.payload(entity, r) for r in records])
        _check(all(o.get("status") == "success" for o in outcomes), f"CRM insert of {entity}")

    def associate(self, mails: list[Record]) -> None:
        """Each mail associated with the contacts and leads of its addresses: the mail side's
        look-ups, then one associate_email call per mail and person (no related list read)."""
        side = MailSide(Listings(self.client), MAPPINGS["mails"], self.owner["id"], None)
        for mail, people in zip(mails, side.people(mails), strict=True):
            for module, record_id in people:
                outcome = self.client.associate_email(module, record_id, MAPPINGS["mails"].to_native(mail))
                _check(outcome.get("status") == "success", "CRM association of a mail")

    # naive: one request per record
    def ids(self, entity: str) -> list[str]:
        module = MAPPINGS[entity].module
        found = []
        for page in self.client._pages(module, {"fields": "Owner"}):
            found += [str(r["id"]) for r in page.records if (r.get("Owner") or {}).get("id") == self.owner["id"]]
        return found

    def get(self, entity: str, record_id: str) -> Record:
        mapping = MAPPINGS[entity]
        native = self.client.get(mapping.module, record_id, mapping.read_fields)
        _check(native is not None, f"CRM read of {entity}")
        record: Record = mapping.from_native(native or {})
        return record


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise RuntimeError(f"{what} failed")


class _Copy:
    """The floor: every record read in the largest pages, written in the largest batches, no sync logic."""

    crm: _Crm
    window: Window
    batch_size: int

    def _exchange_records(self, entity: str) -> list[Record]:
        raise NotImplementedError

    def _mails(self) -> list[Mail]:
        raise NotImplementedError

    def _create_in_exchange(self, entity: str, records: list[Record]) -> None:
        raise NotImplementedError

    def floor(self) -> Copied:
        copied = Copied()
        for entity in ENTITIES:
            from_exchange = self._exchange_records(entity)
            to_exchange = 0
            for chunk in _chunks(self.crm.records(entity, self.window), self.batch_size):
                self._create_in_exchange(entity, chunk)
                to_exchange += len(chunk)
            for chunk in _chunks(from_exchange, CRM_BATCH):
                self.crm.insert(entity, chunk)
            copied.directions[f"{entity} crm->exchange"] = to_exchange
            copied.directions[f"{entity} exchange->crm"] = len(from_exchange)
        mails = self._mails()
        for chunk in _chunks(mails, CRM_BATCH):
            self.crm.insert("mails", chunk)
        copied.directions["mails exchange->crm"] = len(mails)
        copied.records = copied.measured = sum(copied.directions.values())
        return copied


# -- Graph ------------------------------------------------------------------------------------
class GraphCopy(_Copy):
    """Copies between the CRM and one mailbox over Graph."""

    batch_size = BATCH_LIMIT

    def __init__(self, crm: _Crm, store: GraphStore, window: Window) -> None:
        self.crm = crm
        self.store = store
        self.graph: GraphClient = store.client
        self.window = window

    def _exchange_records(self, entity: str) -> list[Record]:
        side: Any = self.store.side(entity)
        url, params = side.first_delta(self.window)
        round_ = self.graph.delta(url, params, page_size=PAGE_SIZE, headers={"Prefer": UTC_PREFER})
        records = []
        for resource in round_.items:
            if resource.get("type") in ("occurrence", "exception"):
                continue
            record = graph_mapping.FROM_GRAPH[entity](resource)
            if _in_window(entity, record, self.window):
                records.append(record)
        return records

    def _mails(self) -> list[Mail]:
        mails = []
        for folder in MAIL_FOLDERS:
            url = f"{self.store.mailbox}/mailFolders/{folder}/messages/delta"
            params = {"$select": MAIL_SELECT, "$filter": f"receivedDateTime ge {graph_mapping_iso(self.window)}"}
            round_ = self.graph.delta(url, params, page_size=PAGE_SIZE, headers={"Prefer": UTC_PREFER})
            with_files = [m for m in round_.items if m.get("hasAttachments")]
            files: dict[str, list[Any]] = {}
            for chunk in _chunks(with_files, BATCH_LIMIT):
                requests = [
                    BatchRequest("GET", f"{self.store.mailbox}/messages/{m['id']}/attachments?$select=name,size")
                    for m in chunk
                ]
                for message, answer in zip(chunk, self.graph.batch(requests), strict=True):
                    files[str(message["id"])] = list(answer.body.get("value") or [])
            for message in round_.items:
                mail = graph_mapping.mail_from_graph(message, folder, files.get(str(message["id"])))
                if _in_window("mails", mail, self.window):
                    mails.append(mail)
        return mails

    def _create_in_exchange(self, entity: str, records: list[Record]) -> None:
        collection = self.store.side(entity).collection()  # type: ignore[attr-defined]
        requests = [BatchRequest("POST", collection, graph_mapping.to_graph(entity, r, create=True)) for r in records]
        answers = self.graph.batch(requests)
        _check(all(a.error is None for a in answers), f"Graph $batch of {entity}")

    def naive(self, cap: int) -> Copied:
        copied = Copied()
        for entity in ENTITIES:
            side: Any = self.store.side(entity)
            collection = side.collection()
            ids = [str(r["id"]) for r in self.graph.pages(collection, {"$select": "id", "$top": str(PAGE_SIZE)})]

            def from_exchange(item_id: str, entity: str = entity, collection: str = collection) -> int:
                resource = self.graph.get(f"{collection}/{item_id}", headers={"Prefer": UTC_PREFER})
                record = graph_mapping.FROM_GRAPH[entity](resource)
                if not _in_window(entity, record, self.window):
                    return 0
                self.crm.insert(entity, [record])
                return 1

            def to_exchange(record_id: str, entity: str = entity, collection: str = collection) -> int:
                record = self.crm.get(entity, record_id)
                if not _in_window(entity, record, self.window):
                    return 0
                self.graph.request("POST", collection, json=graph_mapping.to_graph(entity, record, create=True))
                return 1

            crm_ids = self.crm.ids(entity)  # listed before anything is written to the CRM
            _naive(copied, f"{entity} exchange->crm", ids, from_exchange, cap)
            _naive(copied, f"{entity} crm->exchange", crm_ids, to_exchange, cap)
        for folder in MAIL_FOLDERS:
            url = f"{self.store.mailbox}/mailFolders/{folder}/messages"
            ids = [str(m["id"]) for m in self.graph.pages(url, {"$select": "id", "$top": str(PAGE_SIZE)})]

            def mail(item_id: str, folder: str = folder) -> int:
                path = f"{self.store.mailbox}/messages/{item_id}"
                message = self.graph.get(path, {"$select": MAIL_SELECT}, headers={"Prefer": UTC_PREFER})
                files = self.graph.get(f"{path}/attachments")["value"] if message.get("hasAttachments") else None
                record = graph_mapping.mail_from_graph(message, folder, files)
                if not _in_window("mails", record, self.window):
                    return 0
                self.crm.insert("mails", [record])
                return 1

            _naive(copied, f"mails {folder}->crm", ids, mail, cap)
        return copied


def graph_mapping_iso(window: Window) -> str:
    return window.since.strftime("%Y-%m-%dT%H:%M:%SZ")


def _naive(copied: Copied, direction: str, ids: list[str], copy_one: Callable[[str], int], cap: int) -> None:
    """Copy the records of ``ids`` one request each (the first ``cap``, scaled up to all)."""
    stride = -(-len(ids) // cap) if cap else 1  # every stride-th id: the sample spans the whole listing
    sample = ids[::stride]
    start = time.perf_counter()
    done = sum(copy_one(i) for i in sample)
    seconds = time.perf_counter() - start
    scale = len(ids) / len(sample) if sample else 1.0
    copied.seconds += seconds * scale
    copied.sampled += seconds
    copied.measured += done
    copied.records += round(done * scale)
    copied.directions[direction] = round(done * scale)


# -- EWS --------------------------------------------------------------------------------------
class EwsCopy(_Copy):
    """Copies between the CRM and one mailbox over EWS (exchangelib)."""

    batch_size = EWS_BATCH

    def __init__(self, crm: _Crm, account: Any, window: Window) -> None:
        self.crm = crm
        self.account = account
        self.window = window

    def _folder(self, entity: str) -> Any:
        return getattr(self.account, EWS_FOLDERS[entity])

    def _exchange_records(self, entity: str) -> list[Record]:
        from_native = ews_mapping.MAPPERS[entity][1]
        folder = self._folder(entity)
        folder.item_sync_state = None
        records = []
        for kind, native in folder.sync_items(sync_state=None, max_changes_returned=MAX_CHANGES):
            if kind == "create" and isinstance(native, EWS_CLASSES[entity]):
                record = from_native(native)
                if _in_window(entity, record, self.window):
                    records.append(record)
        return records

    def _mails(self) -> list[Mail]:
        mails = []
        for name, attribute in (("inbox", "inbox"), ("sentitems", "sent")):
            folder = getattr(self.account, attribute)
            folder.item_sync_state = None
            for kind, native in folder.sync_items(sync_state=None, max_changes_returned=MAX_CHANGES):
                if kind == "create" and isinstance(native, NativeMessage):
                    mail = ews_mapping.mail_from_native(native, name)
                    if _in_window("mails", mail, self.window):
                        mails.append(mail)
        return mails

    def _native(self, entity: str, record: Record) -> Any:
        native = ews_mapping.MAPPERS[entity][0](record)
        native.account = self.account
        return native

    def _create_in_exchange(self, entity: str, records: list[Record]) -> None:
        answers = self.account.bulk_create(
            self._folder(entity),
            [self._native(entity, r) for r in records],
            message_disposition=SAVE_ONLY,
            send_meeting_invitations=SEND_TO_NONE,
            chunk_size=EWS_BATCH,
        )
        _check(not any(isinstance(a, Exception) for a in answers), f"EWS CreateItem of {entity}")

    def naive(self, cap: int) -> Copied:
        copied = Copied()
        for entity in ENTITIES:
            folder = self._folder(entity)
            from_native = ews_mapping.MAPPERS[entity][1]
            ids = [str(i.id) for i in folder.all().only("id")]

            def from_exchange(item_id: str, entity: str = entity, from_native: Any = from_native) -> int:
                (native,) = list(self.account.fetch(ids=[ItemId(id=item_id)]))
                record = from_native(native)
                if not _in_window(entity, record, self.window):
                    return 0
                self.crm.insert(entity, [record])
                return 1

            def to_exchange(record_id: str, entity: str = entity, folder: Any = folder) -> int:
                record = self.crm.get(entity, record_id)
                if not _in_window(entity, record, self.window):
                    return 0
                native = self._native(entity, record)
                native.folder = folder
                native.save(send_meeting_invitations=SEND_TO_NONE)
                return 1

            crm_ids = self.crm.ids(entity)
            _naive(copied, f"{entity} exchange->crm", ids, from_exchange, cap)
            _naive(copied, f"{entity} crm->exchange", crm_ids, to_exchange, cap)
        for name, attribute in (("inbox", "inbox"), ("sentitems", "sent")):
            folder = getattr(self.account, attribute)
            ids = [str(i.id) for i in folder.all().only("id")]

            def mail(item_id: str, name: str = name) -> int:
                (native,) = list(self.account.fetch(ids=[ItemId(id=item_id)]))
                record = ews_mapping.mail_from_native(native, name)
                if not _in_window("mails", record, self.window):
                    return 0
                self.crm.insert("mails", [record])
                return 1

            _naive(copied, f"mails {name}->crm", ids, mail, cap)
        return copied


def baseline(setup: Any, kind: str, cap: int = 0) -> Copied:
    """Run the floor (``kind="floor"``) or the naive copy for ``setup``'s admin mailbox."""
    ctx = setup.context()
    (user,) = setup.users()
    crm_store: Any = ctx.crm(user)
    exchange: Any = ctx.exchange(user)
    window = Window.months_back(ctx.settings.window_months)
    crm = _Crm(crm_store.client, user.crm_id)
    try:
        copier: GraphCopy | EwsCopy
        if isinstance(exchange, GraphStore):
            copier = GraphCopy(crm, exchange, window)
        else:
            copier = EwsCopy(crm, exchange.account, window)
        start = time.perf_counter()
        copied = copier.floor() if kind == "floor" else copier.naive(cap)
        wall = time.perf_counter() - start
        # listing ids is not scaled; the per-record part is (``seconds`` holds it scaled)
        copied.seconds = wall if kind == "floor" else wall - copied.sampled + copied.seconds
        return copied
    finally:
        crm_store.close()
        exchange.close()
