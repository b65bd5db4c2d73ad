"""The CRM store: a Zoho CRM v8 org seen by one user, with one side per entity.

Reading. The cursor of a side is JSON ``{"modified": ISO, "deleted": ISO, "edge": {id:
fingerprint}}``: the latest ``Modified_Time`` seen, the latest ``deleted_time`` seen (null
before anything was seen) and short digests of the records modified in that latest second.
No cursor means a full listing (``Changes.full``) of the module, kept to the six-month
window for dated entities; the deletion mark then starts at the latest modification seen.
Later reads list records modified since the cursor (``If-Modified-Since``, one second of
overlap; re-reading is harmless, the engine compares hashes), newest first, and stop at the
first record the last read ended on, unchanged: Zoho's times have whole seconds, and without
the edge every record of the latest second would be read again on every run. Then the
deleted-records listing since the deletion mark. Only records owned by the user count; a
record that changes hands is reported as deleted to its former owner.

Writing. A batch of at most 100 operations is at most three calls: one insert (Owner set to
the user), one update, one delete. Each record's outcome is its own: a record Zoho refuses
is a :class:`RecordRejected` naming the field; deleting a record already gone succeeds.

Events: a recurring series with changed occurrences is several records read as one item
(:class:`EventSide`); the cursor of the events side also keeps which series each override
record known belongs to.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from framework.contracts import (
    Changes,
    Create,
    CrmStore,
    CrmUser,
    Delete,
    Item,
    OrgInfo,
    RequiredField,
    Side,
    Update,
    Window,
    WriteOp,
    WriteResult,
)
from framework.errors import AuthenticationFailed, ConfigurationError, RecordRejected, SyncError, SyncStateLost
from framework.model import Event, Mail, Record
from framework.state import User
from plugins.crm.client import MAX_CRITERIA, MAX_SELECT_VALUES, MAX_WRITE, CrmApiError, CrmClient, quotable
from plugins.crm.mapping import (
    CUSTOM_FIELDS,
    CUSTOM_LENGTH,
    CUSTOM_TYPE,
    LINK_FIELD,
    MAPPINGS,
    SERIES_FIELD,
    ModuleMapping,
    Native,
    has_exdates,
    mail_fingerprint,
    override_content,
    override_key,
    overrides_to_native,
    parse_time,
    series_from_native,
    series_of,
)
from plugins.crm.sweep import Listings

OVERLAP = timedelta(seconds=1)
EDGE_MAX = 1000
LINKED_MODULES = ("Contacts", "Leads")
PEOPLE_CACHE = 5_000  # addresses whose Contacts and Leads a mail side remembers
MAILS_CURSOR = "associated"  # the cursor of a mail side, which lists nothing
UNLINKED = "unlinked:"  # the CRM id of a mail associated with nobody: unlinked:<Message-ID>

Adjust = Callable[..., Any]  # the ``exsync_adjust_native`` hook caller


@dataclass
class Cursor:
    """Where a side's last read ended: the newest modification and deletion seen, and the
    fingerprints of (up to :data:`EDGE_MAX`) records modified in that newest second; for events,
    the series of each override record known (Zoho's deleted listing names only ids)."""

    modified: datetime | None = None
    deleted: datetime | None = None
    edge: dict[str, str] = field(default_factory=dict)
    series: dict[str, str] = field(default_factory=dict)  # override record id -> its series' id

    @classmethod
    def parse(cls, text: str) -> Cursor:
        try:
            data = json.loads(text)
            edge = {str(k): str(v) for k, v in (data.get("edge") or {}).items()}
            series = {str(k): str(v) for k, v in (data.get("series") or {}).items()}
            return cls(parse_time(data.get("modified")), parse_time(data.get("deleted")), edge, series)
        except (ValueError, TypeError, AttributeError) as exc:
            raise SyncStateLost("The CRM read cursor is not readable; reading everything again.") from exc

    def dump(self) -> str:
        data: dict[str, Any] = {"modified": _iso(self.modified), "deleted": _iso(self.deleted), "edge": self.edge}
        if self.series:
            data["series"] = self.series
        return json.dumps(data)

    def saw(self, native: Native) -> None:
        """Move the modification mark on to ``native`` if it is the newest seen."""
        moment = parse_time(native.get("Modified_Time"))
        if moment is None:
            return
        if self.modified is None or moment > self.modified:
            self.modified, self.edge = moment, {}
        record_id = str(native["id"])
        if moment == self.modified and (record_id in self.edge or len(self.edge) < EDGE_MAX):
            self.edge[record_id] = fingerprint(native)

    def known(self, native: Native) -> bool:
        """Whether ``native`` is, unchanged, a record the last read ended on."""
        seen = self.edge.get(str(native["id"]))
        return seen is not None and seen == fingerprint(native)  # no digest for records not on the edge


def fingerprint(native: Native) -> str:
    """A short digest of a record as listed (its content, owner and modification time)."""
    text = json.dumps(native, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ZohoCrmStore(CrmStore):
    """A Zoho CRM org through ``client``, for ``user``'s records (None: org questions only)."""

    entities = frozenset(MAPPINGS)

    def __init__(
        self, client: CrmClient, user: User | None, adjust: Adjust | None = None, sweep: Listings | None = None
    ) -> None:
        """With ``sweep``, the store shares the sweep's client, org and listings (and leaves the
        client open when it closes)."""
        self.client = client
        self.user = user
        self._adjust = adjust
        self._shared = sweep is not None
        self.listings = sweep if sweep is not None else Listings(client)

    def org(self) -> OrgInfo:
        if self.listings.org is None:
            data = self.client.org()
            edition = data.get("edition") or (data.get("license_details") or {}).get("paid_type") or ""
            self.listings.org = OrgInfo(
                id=str(data.get("id") or ""),
                name=str(data.get("company_name") or ""),
                edition=str(edition),
                sales_inbox=bool(data.get("sales_inbox_enabled")),
            )
        return self.listings.org

    def users(self) -> list[CrmUser]:
        admins = {str(u.get("id")) for u in self.client.users("AdminUsers")}
        return [crm_user(u, admins) for u in self.client.users("AllUsers")]

    def current_user(self) -> CrmUser:
        me = self.client.current_user()
        admins = {str(u.get("id")) for u in self.client.users("AdminUsers")}
        return crm_user(me, admins)

    def side(self, entity: str) -> Side:
        """The side of ``entity``; ConfigurationError if the org lacks a custom field it writes."""
        mapping = MAPPINGS.get(entity)
        if mapping is None:
            raise ConfigurationError(f"The CRM store does not carry {entity!r}.")
        if self.user is None:
            raise ConfigurationError("A CRM side needs the user whose records it holds.")
        missing = self._missing_in(mapping.module)
        if missing:
            names = ", ".join(f.describe() for f in missing)
            raise ConfigurationError(
                f"The CRM org lacks the custom fields exsync writes to {mapping.module}: {names}; "
                f"{entity} are not synced until they exist.",
                hint="Run 'exsync install --accept-terms --create-fields', or create them in the CRM "
                "(Setup > Modules and Fields) with these API names.",
            )
        kind = {"mails": MailSide, "events": EventSide}.get(entity, ModuleSide)
        return kind(self.listings, mapping, self.user.crm_id, self._adjust)

    def missing_fields(self) -> list[RequiredField]:
        """The custom fields of :data:`CUSTOM_FIELDS` the org lacks (read from /settings/fields)."""
        return [f for module in CUSTOM_FIELDS for f in self._missing_in(module, fresh=True)]

    def create_field(self, required: RequiredField) -> None:
        """Create ``required`` with Zoho's Create Custom Fields API."""
        outcome = self.client.create_field(required.module, required.label, required.data_type, required.length)
        if not _ok(outcome):
            raise ConfigurationError(
                f"The CRM did not create the field {required.describe()}: "
                f"{outcome.get('code', 'ERROR')} ({outcome.get('message') or 'refused'}).",
                hint="The login needs the scope ZohoCRM.settings.fields.ALL; or create the field in the CRM.",
            )
        self.listings.fields.pop(required.module, None)

    def _missing_in(self, module: str, fresh: bool = False) -> list[RequiredField]:
        """The custom fields of ``module`` the org lacks; the metadata is read once a sweep."""
        wanted = CUSTOM_FIELDS.get(module, ())
        if not wanted:
            return []
        with self.listings.fields_lock:
            if fresh or module not in self.listings.fields:
                self.listings.fields[module] = {str(f.get("api_name")) for f in self.client.fields(module)}
            present = self.listings.fields[module]
        return [
            RequiredField(module, name, label, CUSTOM_TYPE, CUSTOM_LENGTH)
            for name, label in wanted
            if name not in present
        ]

    def mails(self, window: Window) -> list[Record]:
        """The user's mails, read back through the Emails related lists of their contacts and leads."""
        side = self.side("mails")
        assert isinstance(side, MailSide)
        return list(side.mails(window))

    def close(self) -> None:
        if not self._shared:
            self.client.close()


def crm_user(resource: dict[str, Any], admin_ids: set[str]) -> CrmUser:
    """A CRM user from the users listing; admins are those the AdminUsers listing names."""
    user_id = str(resource.get("id"))
    return CrmUser(
        id=user_id,
        email=str(resource.get("email") or ""),
        name=str(resource.get("full_name") or ""),
        role=str((resource.get("role") or {}).get("name") or ""),
        profile=str((resource.get("profile") or {}).get("name") or ""),
        is_admin=user_id in admin_ids,
        active=resource.get("status", "active") == "active",
    )


class ModuleSide(Side):
    """One entity of one user in one Zoho module."""

    batch_size: ClassVar[int] = 100

    def __init__(self, listings: Listings, mapping: ModuleMapping, owner_id: str, adjust: Adjust | None) -> None:
        self.client = listings.client
        self.listings = listings
        self.mapping = mapping
        self.module = mapping.module
        self.owner_id = owner_id
        self._adjust = adjust
        self._sent: dict[Record, Native] = {}  # payloads written, until their echo is asked

    # reading ------------------------------------------------------------------------------
    def pages(self, cursor: str | None, window: Window) -> Iterator[Changes]:
        full = cursor is None
        before = Cursor() if cursor is None else Cursor.parse(cursor)
        after = Cursor(before.modified, before.deleted, dict(before.edge), dict(before.series))
        since = before.modified - OVERLAP if before.modified and not full else None
        seen: set[str] = set()  # listed newest first: a record listed again is an older copy
        clock: datetime | None = None  # when the CRM listed the first page
        for page, served_at in self._modified_since(since, before):
            clock = clock or served_at
            fresh: list[Native] = []
            for native in page:
                after.saw(native)
                record_id = str(native["id"])
                if record_id not in seen:
                    seen.add(record_id)
                    fresh.append(native)
            items, gone = self._changes_in(fresh, full, after)
            yield Changes([i for i in items if self._in_window(i.record, window)], gone, None, full)
        # nothing modified yet: the next read starts from the CRM's clock, not from the beginning;
        # a cursor made from records is the same for every user who read them
        after.modified = after.modified or clock
        if full:
            after.deleted = after.modified
        else:
            after.deleted = yield from self._deleted_pages(before.deleted, after, window)
        yield Changes([], [], after.dump(), full)

    def _changes_in(self, natives: list[Native], full: bool, after: Cursor) -> tuple[list[Item], list[str]]:
        """The items of records listed as modified, and the ids of those that are no longer
        the user's (reported as deleted, except in a full read)."""
        items: list[Item] = []
        gone: list[str] = []
        for native in natives:
            if self._owned(native):
                items.append(self._item(native))
            elif not full:
                gone.append(str(native["id"]))
        return items, gone

    def _modified_since(self, since: datetime | None, last: Cursor) -> Iterator[tuple[list[Native], datetime | None]]:
        """Pages of records modified since ``since`` (and when the CRM listed them), newest first,
        up to the first one the last read ended on, unchanged: everything older was read then."""
        for page in self.listings.pages("modified", self.module, since):
            fresh: list[Native] = []
            for native in page.records:
                if last.known(native):
                    yield fresh, page.served_at
                    return
                fresh.append(native)
            yield fresh, page.served_at

    def _deleted_pages(
        self, since: datetime | None, after: Cursor, window: Window
    ) -> Generator[Changes, None, datetime | None]:
        """Pages of the deleted-records listing since ``since``; returns the newest deletion seen."""
        latest = since
        for page in self.listings.pages("deleted", self.module, since - OVERLAP if since else None):
            yield self._deleted_changes([str(entry["id"]) for entry in page.records], after, window)
            for entry in page.records:
                latest = _later(latest, parse_time(entry.get("deleted_time")))
        return latest

    def _deleted_changes(self, ids: list[str], after: Cursor, window: Window) -> Changes:
        """What the deletion of the records ``ids`` changes: those items are deleted."""
        return Changes([], ids, None)

    def _owned(self, native: Native) -> bool:
        owner = native.get("Owner")
        return isinstance(owner, dict) and str(owner.get("id")) == self.owner_id

    def _item(self, native: Native) -> Item:
        return Item(str(native["id"]), self.mapping.from_native(native), str(native.get(LINK_FIELD) or ""))

    def _in_window(self, record: Record, window: Window) -> bool:
        return self.mapping.dated is None or window.contains(self.mapping.dated(record))

    # writing ------------------------------------------------------------------------------
    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(ops)
        for kind, call in ((Create, self._create), (Update, self._update), (Delete, self._delete)):
            indexes = [i for i, op in enumerate(ops) if isinstance(op, kind)]
            if indexes:
                for index, result in zip(indexes, self._guarded(call, [ops[i] for i in indexes]), strict=True):
                    results[index] = result
        return [r for r in results if r is not None]

    def _guarded(self, call: Callable[[list[Any]], list[WriteResult]], ops: list[Any]) -> list[WriteResult]:
        """A call's results; a failure of the whole call becomes each of its records' error."""
        try:
            return call(ops)
        except AuthenticationFailed:
            raise
        except SyncError as exc:
            return [WriteResult(error=exc) for _ in ops]

    def _create(self, ops: list[Create]) -> list[WriteResult]:
        self._prepare([op.record for op in ops])
        owner = {"id": self.owner_id}
        natives = [self._payload(op.record, op.link) for op in ops]
        outcomes = self.client.insert(self.module, [{**native, "Owner": owner} for native in natives])
        return self._sent_for_echo(ops, natives, [self._created(o) for o in outcomes])

    def _update(self, ops: list[Update]) -> list[WriteResult]:
        self._prepare([op.record for op in ops])
        natives = [self._payload(op.record, op.link) for op in ops]
        outcomes = self.client.update(
            self.module, [{**native, "id": op.id} for native, op in zip(natives, ops, strict=True)]
        )
        return self._sent_for_echo(ops, natives, [self._updated(o) for o in outcomes])

    def _sent_for_echo(
        self, ops: Sequence[Create | Update], natives: list[Native], results: list[WriteResult]
    ) -> list[WriteResult]:
        """Keep the payload of each record written, so that its :meth:`echo` need not build it again."""
        for op, native, result in zip(ops, natives, results, strict=True):
            if result.error is None:
                self._sent[op.record] = native
        return results

    def _delete(self, ops: list[Delete]) -> list[WriteResult]:
        outcomes = self.client.delete(self.module, [op.id for op in ops])
        return [
            WriteResult(id=op.id) if _ok(o) or _field(o) == "id" else WriteResult(error=self._rejected(o))
            for op, o in zip(ops, outcomes, strict=True)
        ]

    def _prepare(self, records: list[Record]) -> None:
        """Look up what the payloads of ``records`` need (nothing for most modules)."""

    def _payload(self, record: Record, link: str) -> Native:
        native = self._native(record)
        native[LINK_FIELD] = link or None
        if self._adjust is not None:
            self._adjust(entity=self.mapping.entity, side="crm", record=record, native=native)
        return native

    def _native(self, record: Record) -> Native:
        return self.mapping.to_native(record)

    def _created(self, outcome: dict[str, Any]) -> WriteResult:
        return WriteResult(id=_record_id(outcome)) if _ok(outcome) else WriteResult(error=self._rejected(outcome))

    def _updated(self, outcome: dict[str, Any]) -> WriteResult:
        if _ok(outcome):
            return WriteResult(id=_record_id(outcome))
        if _field(outcome) == "id":
            return WriteResult(error=RecordRejected(f"The {self.module} record no longer exists in the CRM."))
        return WriteResult(error=self._rejected(outcome))

    def _rejected(self, outcome: dict[str, Any]) -> RecordRejected:
        details = outcome.get("details") or {}
        field = details.get("api_name")
        where = f" in the field {field}" if field else ""
        limit = f" (at most {details['maximum_length']} characters)" if details.get("maximum_length") else ""
        reason = outcome.get("message") or "rejected"
        return RecordRejected(
            f"The CRM refused the {self.module} record: {outcome.get('code', 'ERROR')}, {reason}{where}{limit}.",
            hint="Correct the record on the Exchange side; it is tried again on the next run.",
        )

    # echo ---------------------------------------------------------------------------------
    def echo(self, record: Record) -> Record:
        """What reading ``record`` back gives: the mapping's round trip (from the payload
        written, when it was), with the ``exsync_adjust_native`` hook applied as on writes."""
        native = self._sent.pop(record, None) or self._payload(record, "")
        result: Record = self.mapping.from_native(native)
        return result


class EventSide(ModuleSide):
    """Events, a recurring series with its changed occurrences as one item.

    A series is one Events record (``Recurring_Activity`` with its RRULE and EXDATE); each
    changed occurrence is an override record of its own (:mod:`plugins.crm.mapping`), never an
    item. Reading: a series whose EXDATE is not empty is read with its override records (found
    with a COQL query on ``Exsync_Series``, or searches once the CRM refused COQL; the records
    not listed already fetched a hundred at a time); a changed override record makes its
    series an item of the read, and a deleted one (its series known from the cursor) too.
    Writing: a series is written first, then its override records are created, updated or
    deleted to match its exceptions, a hundred a call; deleting a series deletes them.
    """

    def __init__(self, listings: Listings, mapping: ModuleMapping, owner_id: str, adjust: Adjust | None) -> None:
        super().__init__(listings, mapping, owner_id, adjust)
        self._built: set[str] = set()  # series made items in this read
        self._coql = True

    def pages(self, cursor: str | None, window: Window) -> Iterator[Changes]:
        self._built = set()
        return super().pages(cursor, window)

    # reading ------------------------------------------------------------------------------
    def _changes_in(self, natives: list[Native], full: bool, after: Cursor) -> tuple[list[Item], list[str]]:
        listed: dict[str, Native] = {}
        wanted: set[str] = set()  # series read with their override records
        for native in natives:
            record_id, series_id = str(native["id"]), series_of(native)
            if series_id:
                if self._owned(native):  # override records belong to their series' owner
                    after.series[record_id] = series_id
                    wanted.add(series_id)
            elif record_id not in self._built:  # else an older copy of a series read already
                listed[record_id] = native
        items: list[Item] = []
        gone: list[str] = []
        for record_id, native in listed.items():
            if not self._owned(native):
                wanted.discard(record_id)
                if not full:
                    gone.append(record_id)
            elif has_exdates(native):
                wanted.add(record_id)
            elif record_id not in wanted:
                items.append(self._item(native))
        at_hand = {str(n["id"]): n for n in natives}
        return items + self._series_items(wanted, at_hand, after), gone

    def _deleted_changes(self, ids: list[str], after: Cursor, window: Window) -> Changes:
        """Deleted series are deleted items; a series whose override record was deleted is read again."""
        deleted = set(ids)
        overrides = {i: after.series.pop(i) for i in ids if i in after.series}
        for override_id, series_id in list(after.series.items()):
            if series_id in deleted:
                del after.series[override_id]
        items = self._series_items(set(overrides.values()) - deleted, {}, after)
        kept = [i for i in items if self._in_window(i.record, window)]
        return Changes(kept, [i for i in ids if i not in overrides], None)

    def _series_items(self, ids: set[str], at_hand: dict[str, Native], after: Cursor) -> list[Item]:
        """The items of the series ``ids`` that are the user's, each with its override records
        (``at_hand``: records listed already, as they are now)."""
        ids = ids - self._built
        if not ids:
            return []
        self._built |= ids
        pairs = self._override_ids(sorted(ids))
        for override_id, series_id in list(after.series.items()):
            if series_id in ids:
                del after.series[override_id]
        after.series.update(pairs)
        natives = {**at_hand, **self._fetch([i for i in (*sorted(ids), *pairs) if i not in at_hand])}
        overrides: dict[str, list[Native]] = {}
        for override_id, series_id in pairs.items():
            native = natives.get(override_id)
            if native is not None and series_of(native) == series_id:
                overrides.setdefault(series_id, []).append(native)
        items = []
        for series_id in sorted(ids):
            master = natives.get(series_id)
            if master is not None and self._owned(master) and not series_of(master):
                event = series_from_native(master, overrides.get(series_id, []))
                items.append(Item(series_id, event, str(master.get(LINK_FIELD) or "")))
        return items

    def _override_ids(self, series_ids: Sequence[str]) -> dict[str, str]:
        """The override records of ``series_ids``: {override id: series id}."""
        found: dict[str, str] = {}
        for chunk in _chunks([i for i in series_ids if quotable(i)], MAX_SELECT_VALUES):
            for record in self._select_overrides(chunk):
                if series_of(record) in chunk:
                    found[str(record["id"])] = series_of(record)
        return found

    def _select_overrides(self, series_ids: list[str]) -> list[Native]:
        if self._coql:
            try:
                return self.client.select_in(self.module, SERIES_FIELD, series_ids, (SERIES_FIELD,))
            except (CrmApiError, AuthenticationFailed):  # a login that truly fails fails the search too
                self._coql = False
        search = self.client.search_any
        return [r for part in _chunks(series_ids, MAX_CRITERIA) for r in search(self.module, SERIES_FIELD, part)]

    def _fetch(self, ids: Sequence[str]) -> dict[str, Native]:
        """The records of ``ids`` that exist, by id, a hundred a call."""
        found: dict[str, Native] = {}
        for chunk in _chunks(list(dict.fromkeys(ids)), MAX_WRITE):
            found.update((str(n["id"]), n) for n in self.client.get_many(self.module, chunk, self.mapping.read_fields))
        return found

    # writing ------------------------------------------------------------------------------
    def _create(self, ops: list[Create]) -> list[WriteResult]:
        results = super()._create(ops)
        series = {
            r.id: op.record
            for op, r in zip(ops, results, strict=True)
            if r.id and isinstance(op.record, Event) and _changed_series(op.record)
        }
        if not series:
            return results
        owner = {"id": self.owner_id}
        inserts = [(i, {**n, "Owner": owner}) for i, event in series.items() for n in overrides_to_native(event, i)]
        failed = self._write_overrides(inserts, [], [])
        if failed:
            self._guarded(self._delete, [Delete(i) for i in failed])  # no half-made series is left
        return [WriteResult(error=failed[r.id]) if r.id in failed else r for r in results]

    def _update(self, ops: list[Update]) -> list[WriteResult]:
        results = super()._update(ops)
        written = {op.id: op.record for op, r in zip(ops, results, strict=True) if r.ok}
        if not written:
            return results
        try:
            existing = self._overrides_of(list(written))
        except AuthenticationFailed:
            raise
        except SyncError as exc:
            return [WriteResult(error=exc) if op.id in written else r for op, r in zip(ops, results, strict=True)]
        inserts: list[tuple[str, Native]] = []
        updates: list[tuple[str, Native]] = []
        deletes: list[tuple[str, str]] = []
        owner = {"id": self.owner_id}
        for series_id, record in written.items():
            wanted = overrides_to_native(record, series_id) if isinstance(record, Event) else []
            have: dict[tuple[str, datetime | None], Native] = {}
            for native in existing.get(series_id, []):  # one record an occurrence: copies go
                if override_key(native) in have:
                    deletes.append((series_id, str(native["id"])))
                else:
                    have[override_key(native)] = native
            for native in wanted:
                current = have.pop(override_key(native), None)
                if current is None:
                    inserts.append((series_id, {**native, "Owner": owner}))
                elif override_content(current) != override_content(native):
                    updates.append((series_id, {**native, "id": str(current["id"])}))
            deletes += [(series_id, str(n["id"])) for n in have.values()]
        failed = self._write_overrides(inserts, updates, deletes)
        return [WriteResult(error=failed[op.id]) if op.id in failed else r for op, r in zip(ops, results, strict=True)]

    def _delete(self, ops: list[Delete]) -> list[WriteResult]:
        results = super()._delete(ops)
        gone = [op.id for op, r in zip(ops, results, strict=True) if r.ok]
        if gone:
            try:
                overrides = self._override_ids(gone)
                self._write_overrides([], [], [(s, o) for o, s in overrides.items()])
            except AuthenticationFailed:
                raise
            except SyncError:  # an override record left behind is never an item
                pass
        return results

    def _overrides_of(self, series_ids: list[str]) -> dict[str, list[Native]]:
        """The override records of ``series_ids``, by series."""
        pairs = self._override_ids(series_ids)
        found: dict[str, list[Native]] = {}
        for override_id, native in self._fetch(list(pairs)).items():
            if series_of(native) == pairs[override_id]:
                found.setdefault(pairs[override_id], []).append(native)
        return found

    def _write_overrides(
        self, inserts: list[tuple[str, Native]], updates: list[tuple[str, Native]], deletes: list[tuple[str, str]]
    ) -> dict[str, SyncError]:
        """Insert, update and delete override records, a hundred a call; the first error of each
        series whose override records were not all written."""
        failed: dict[str, SyncError] = {}
        calls: list[tuple[Callable[[str, list[Any]], list[dict[str, Any]]], list[tuple[str, Any]]]] = [
            (self.client.insert, inserts),
            (self.client.update, updates),
            (self.client.delete, deletes),
        ]
        for call, entries in calls:
            for start in range(0, len(entries), MAX_WRITE):
                chunk = entries[start : start + MAX_WRITE]
                try:
                    outcomes = call(self.module, [payload for _, payload in chunk])
                except AuthenticationFailed:
                    raise
                except SyncError as exc:
                    for series_id, _ in chunk:
                        failed.setdefault(series_id, exc)
                    continue
                for (series_id, _), outcome in zip(chunk, outcomes, strict=True):
                    if not _ok(outcome) and not (call == self.client.delete and _field(outcome) == "id"):
                        failed.setdefault(series_id, self._rejected(outcome))
        return failed

    # echo ---------------------------------------------------------------------------------
    def echo(self, record: Record) -> Record:
        """What reading ``record`` back gives; a series read with its override records."""
        if not _changed_series(record):
            return super().echo(record)
        assert isinstance(record, Event)
        native = self._sent.pop(record, None) or self._payload(record, "")
        return series_from_native(native, overrides_to_native(record, ""))


def _changed_series(record: Record) -> bool:
    """Whether ``record`` is a series with cancelled or changed occurrences."""
    return isinstance(record, Event) and bool(record.recurrence) and bool(record.cancelled or record.exceptions)


class MailSide(ModuleSide):
    """Mails associated with every Contact and Lead whose address they carry (B21, B23).

    Zoho keeps no module of mails: ``POST /{module}/{id}/actions/associate_email`` links a mail
    to a record, and the record's Emails related list shows it. Zoho links mails to contacts
    and shows a deal's contacts' mails from the deal (its Emails related list, "associated
    with the contact"; Zoho's help on email association with deals), and the fake shows an
    account's contacts' mails from the account, so the people are associated and nothing else.

    A mail is associated once per person: before associating, the person's Emails related
    list is read (once a side) and a mail already there (same sender, subject and time: the
    list does not show Message-IDs) is not associated again, so a run that lost its state
    adds nothing twice. The pair's CRM id is Zoho's ``message_id`` of the first association;
    a mail whose addresses match no contact or lead has nothing to be associated with and is
    paired with ``unlinked:<Message-ID>``. Mails flow from Exchange only: reading this side
    lists nothing, an update changes nothing (an associated mail cannot be edited) and a
    deletion is never asked for (mails keep deleted).
    """

    def __init__(self, listings: Listings, mapping: ModuleMapping, owner_id: str, adjust: Adjust | None) -> None:
        super().__init__(listings, mapping, owner_id, adjust)
        self._people: dict[str, list[dict[str, str]]] = {}
        self._associated: dict[tuple[str, str], dict[tuple[str, str, str], str]] = {}
        self._coql = True

    def pages(self, cursor: str | None, window: Window) -> Iterator[Changes]:
        yield Changes([], [], MAILS_CURSOR, cursor is None)

    def _create(self, ops: list[Create]) -> list[WriteResult]:
        self._prepare([op.record for op in ops])
        done: dict[str, WriteResult] = {}
        results = []
        for op in ops:
            key = _message_id(op.record)
            if key and key in done:
                results.append(_same_mail_twice())
                continue
            result = self._associate(op.record)
            done[key] = result
            results.append(result)
        return results

    def _associate(self, record: Record) -> WriteResult:
        """Associate ``record`` with each of its people it is not associated with yet."""
        native = self._payload(record, "")
        native.pop(LINK_FIELD, None)
        targets = self._targets(record)
        if not targets:
            return WriteResult(id=f"{UNLINKED}{_message_id(record)}")
        mine = mail_fingerprint(native)
        first = ""
        for target in targets:
            known = self._known_mails(target)
            if mine in known:
                first = first or known[mine]
                continue
            try:
                outcome = self.client.associate_email(*target, native)
            except AuthenticationFailed:
                raise
            except SyncError as exc:
                return WriteResult(error=exc)
            if not _ok(outcome):
                return WriteResult(error=self._rejected(outcome))
            known[mine] = str((outcome.get("details") or {}).get("message_id") or "")
            first = first or known[mine]
        self._sent[record] = native
        return WriteResult(id=first)

    def people(self, mails: Sequence[Record]) -> list[list[tuple[str, str]]]:
        """The (module, id) of the contacts and leads each of ``mails`` is to be associated with."""
        self._prepare(list(mails))
        return [self._targets(mail) for mail in mails]

    def _targets(self, record: Record) -> list[tuple[str, str]]:
        assert isinstance(record, Mail)
        return sorted({(link["module"], link["id"]) for a in record.addresses() for link in self._people.get(a, [])})

    def _known_mails(self, target: tuple[str, str]) -> dict[tuple[str, str, str], str]:
        """The mails already in ``target``'s Emails related list, by fingerprint (read once)."""
        if target not in self._associated:
            listed = self.client.related_emails(*target, owner_id=self.owner_id)
            self._associated[target] = {mail_fingerprint(m): str(m.get("message_id") or "") for m in listed}
        return self._associated[target]

    def _update(self, ops: list[Update]) -> list[WriteResult]:
        return [WriteResult(id=op.id) for op in ops]

    def _delete(self, ops: list[Delete]) -> list[WriteResult]:
        return [WriteResult(id=op.id) for op in ops]

    def _prepare(self, records: list[Record]) -> None:
        """Look up the Contacts and Leads of every new address, in as few calls as the CRM allows."""
        if len(self._people) > PEOPLE_CACHE:  # a mailbox's addresses are not kept all at once
            self._people.clear()
        addresses = sorted({a for r in records if isinstance(r, Mail) for a in r.addresses()} - self._people.keys())
        by_email: dict[str, list[str]] = {}
        for address in addresses:
            self._people[address] = []
            by_email.setdefault(address.strip().lower(), []).append(address)
        for module in LINKED_MODULES:
            for found in self._people_in(module, addresses):
                for address in by_email.get(str(found.get("Email") or "").strip().lower(), ()):
                    self._people[address].append({"module": module, "id": str(found["id"])})

    def _people_in(self, module: str, addresses: list[str]) -> Iterator[dict[str, Any]]:
        """Records of ``module`` with one of ``addresses``: a COQL query for up to
        :data:`MAX_SELECT_VALUES` addresses; a search for up to :data:`MAX_CRITERIA` for the
        addresses COQL cannot quote, and for all of them once the CRM refused COQL (a login
        without the ``ZohoCRM.coql.READ`` scope)."""
        for chunk in _chunks([a for a in addresses if quotable(a)], MAX_SELECT_VALUES):
            if self._coql:
                try:
                    yield from self.client.select_in(module, "Email", chunk, ("Email",))
                    continue
                except (CrmApiError, AuthenticationFailed):  # a login that truly fails fails the search too
                    self._coql = False
            for part in _chunks(chunk, MAX_CRITERIA):
                yield from self._search(module, part)
        for part in _chunks([a for a in addresses if not quotable(a)], MAX_CRITERIA):
            yield from self._search(module, part)

    def _search(self, module: str, addresses: list[str]) -> list[dict[str, Any]]:
        try:
            if len(addresses) == 1:
                return self.client.search(module, email=addresses[0])
            return self.client.search_any(module, "Email", addresses)
        except CrmApiError:  # addresses the CRM cannot search for link nothing: try each alone
            if len(addresses) == 1:
                return []
            return [found for address in addresses for found in self._search(module, [address])]

    def mails(self, window: Window) -> list[Mail]:
        """The mails in the Emails related lists of the user's contacts and leads, each once."""
        found: dict[tuple[str, str, str], Mail] = {}
        for module in LINKED_MODULES:
            for page in self.client.list_modified(module, ("Email", "Owner")):
                for person in filter(self._owned, page.records):
                    for listed in self.client.related_emails(module, str(person["id"]), owner_id=self.owner_id):
                        mail = self.mapping.from_native(listed)
                        if window.contains(mail.sent_at):
                            found.setdefault(mail_fingerprint(listed), mail)
        return list(found.values())


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _message_id(record: Record) -> str:
    assert isinstance(record, Mail)
    return record.message_id.strip().lower()


def _same_mail_twice() -> WriteResult:
    return WriteResult(error=RecordRejected("Another copy of this mail (same Message-ID) is stored in the same batch."))


def _ok(outcome: dict[str, Any]) -> bool:
    return outcome.get("status") == "success"


def _field(outcome: dict[str, Any]) -> str:
    return str((outcome.get("details") or {}).get("api_name") or "")


def _record_id(outcome: dict[str, Any]) -> str:
    return str((outcome.get("details") or {})["id"])


def _later(current: datetime | None, candidate: datetime | None) -> datetime | None:
    if candidate is None:
        return current
    return candidate if current is None or candidate > current else current


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
