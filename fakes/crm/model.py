"""The fake CRM's state and rules: one Zoho-CRM-v8-shaped organisation.

:class:`CrmOrg` holds the org (name, edition, SalesInbox flag), its users with their OAuth
tokens, each module's field metadata (:mod:`fakes.crm.fields`), the records of the modules
in :data:`MODULES`, the mails associated with records, and the org's API limits
(:class:`ApiLimits`). A record is a dict keyed by Zoho field API names. A field the module
does not have (a custom field such as ``Exsync_Link`` before it is created) is ignored. Every
write is checked against the field metadata, and a broken rule raises :class:`CrmError` with
Zoho's error code and details.

Time: each write takes the next instant of one monotonic org clock, at least one microsecond
after the previous write, so modification order and modification time always agree.
``Modified_Time`` is shown to the second with the org's UTC offset. "Modified since" filters
on the full instant and includes changes made exactly at the given instant. A client that
sends back the last ``Modified_Time`` it saw therefore never misses a later change made in
the same second, though it may see a record twice.

Indexing: each module keeps its records in a dict by id and in a list ordered by
modification. A "modified since" page is then a bisect plus a slice. E-mail, lookups and
unique fields are indexed, and mails by the records they are associated with, so matching and
related lists do not scan the module.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import itertools
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from fakes.crm.fields import (
    CUSTOM_TYPES,
    STANDARD_FIELDS,
    Field,
    FieldError,
    ModuleFields,
    api_name_of,
    check_mail,
    check_value,
    custom_field,
    field_resource,
)

MODULES = ("Contacts", "Leads", "Accounts", "Deals", "Tasks", "Events")
DEFAULT_UNIQUE_FIELDS: dict[str, tuple[str, ...]] = {"Accounts": ("Account_Name",)}
# the system-defined duplicate check fields of upsert, by module (Zoho's Upsert Records page)
UPSERT_FIELDS: dict[str, tuple[str, ...]] = {
    "Contacts": ("Email",),
    "Leads": ("Email",),
    "Accounts": ("Account_Name",),
    "Deals": ("Deal_Name",),
}
ADMIN_ROLES = frozenset({"CEO", "Administrator"})
READ_ONLY_FIELDS = frozenset({"id", "Created_Time", "Modified_Time", "Created_By", "Modified_By", "Full_Name"})
DELETED_TYPES = ("all", "recycle", "permanent")
MAIL_MODULES = ("Contacts", "Leads", "Accounts", "Deals")  # modules mails can be associated with

_INDEXED: dict[str, tuple[str, ...]] = {
    "Contacts": ("Email", "Account_Name"),
    "Leads": ("Email",),
    "Deals": ("Account_Name", "Contact_Name"),
    "Events": ("Exsync_Series",),
}
_DISPLAY_FIELD = {
    "Accounts": "Account_Name",
    "Deals": "Deal_Name",
    "Tasks": "Subject",
    "Events": "Event_Title",
}
_PERSON_MODULES = ("Contacts", "Leads")
_CLEARABLE = frozenset({"text", "textarea", "email", "phone", "website"})  # "" clears them as null does
_ID_BASE = 4150868000000000000  # ids are 19-digit numbers, like Zoho's


class CrmError(Exception):
    """A Zoho rule was broken: ``code`` is Zoho's error code, ``details`` its details object."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details or {}

    @classmethod
    def of(cls, error: FieldError) -> CrmError:
        return cls(error.code, error.message, error.details)

    def payload(self) -> dict[str, Any]:
        """The error as Zoho writes it on the wire."""
        return {"code": self.code, "details": self.details, "message": self.message, "status": "error"}


@dataclass
class CrmUser:
    """A user of the org, with role and profile (name and id) and an explicit admin flag."""

    id: str
    full_name: str
    email: str
    role: str
    role_id: str
    profile: str
    profile_id: str
    is_admin: bool
    status: str = "active"

    def ref(self) -> dict[str, str]:
        """The ``{name, id}`` reference Zoho uses in Owner, Created_By and the like."""
        return {"name": self.full_name, "id": self.id}

    def resource(self) -> dict[str, Any]:
        """The user as ``GET /crm/v8/users`` shows it."""
        return {
            "id": self.id,
            "full_name": self.full_name,
            "email": self.email,
            "role": {"name": self.role, "id": self.role_id},
            "profile": {"name": self.profile, "id": self.profile_id},
            "status": self.status,
        }


@dataclass(frozen=True)
class Tombstone:
    """What is left of a deleted record for the deleted-records listing."""

    id: str
    display_name: str
    type: str
    deleted_by: dict[str, str]
    created_by: dict[str, str]
    deleted_time: datetime

    def resource(self, tz: tzinfo) -> dict[str, Any]:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "type": self.type,
            "deleted_by": dict(self.deleted_by),
            "created_by": dict(self.created_by),
            "deleted_time": format_time(self.deleted_time, tz),
        }


@dataclass
class Page:
    """One page of a listing; ``more`` says whether later pages hold more."""

    records: list[dict[str, Any]]
    more: bool


# concurrent API calls an org may have in flight, by edition (Zoho's API limits page)
CONCURRENCY = {"Free": 5, "Standard": 10, "Professional": 15, "Enterprise": 20, "Ultimate": 25}
CREDIT_WINDOW = timedelta(hours=24)


class ApiLimits:
    """Zoho's limits on one org's API calls: ``concurrency`` calls in flight at once, of which
    at most ``sub_concurrency`` to a resource-intensive API (COQL queries here), and ``credits``
    calls (one credit each) in any rolling 24 hours (None: no credit limit). A call over any
    limit is refused with 429 ``TOO_MANY_REQUESTS`` and no Retry-After."""

    def __init__(
        self, concurrency: int, clock: Callable[[], datetime], api_credits: int | None = None, sub_concurrency: int = 10
    ) -> None:
        self.concurrency = concurrency
        self.sub_concurrency = sub_concurrency
        self.credits = api_credits
        self._clock = clock
        self._in_flight = 0
        self._heavy_in_flight = 0
        self._spent: collections.deque[datetime] = collections.deque()
        self._lock = threading.Lock()

    def begin(self, heavy: bool = False) -> None:
        """Admit one call (``heavy``: to a resource-intensive API), or raise CrmError TOO_MANY_REQUESTS."""
        with self._lock:
            now = self._clock()
            while self._spent and self._spent[0] <= now - CREDIT_WINDOW:
                self._spent.popleft()
            if self.credits is not None and len(self._spent) >= self.credits:
                raise CrmError("TOO_MANY_REQUESTS", "the API credits of the org for 24 hours are used up", {})
            if self._in_flight >= self.concurrency or (heavy and self._heavy_in_flight >= self.sub_concurrency):
                raise CrmError("TOO_MANY_REQUESTS", "too many concurrent requests", {})
            self._in_flight += 1
            self._heavy_in_flight += heavy
            if self.credits is not None:
                self._spent.append(now)

    def end(self, heavy: bool = False) -> None:
        with self._lock:
            self._in_flight -= 1
            self._heavy_in_flight -= heavy


@dataclass
class Mail:
    """A mail associated with a record (and optionally linked to another): ``email`` is the
    associate_email payload as checked by :func:`check_mail`."""

    id: str
    record: tuple[str, str]
    linked: tuple[str, str] | None
    email: dict[str, Any]
    owner: dict[str, str]
    time: datetime

    def resource(self, tz: tzinfo, name_of: Callable[[str, str], str]) -> dict[str, Any]:
        """The mail as the Emails related list shows it (Zoho's ``email`` schema)."""
        email = self.email
        module, record_id = self.linked or self.record
        sent_time = str(email["date_time"])
        return {
            "message_id": self.id,
            "owner": dict(self.owner),
            "from": dict(email["from"]),
            "to": [dict(a) for a in email["to"]],
            "cc": [dict(a) for a in email.get("cc") or []],
            "subject": email.get("subject"),
            "content": email.get("content"),
            "summary": (email.get("content") or "")[:200] or None,
            "sent": bool(email["sent"]),
            "sent_time": sent_time,
            "time": sent_time,
            "read": None,
            "source": "associated",
            "mail_format": email.get("mail_format") or "html",
            "has_attachment": bool(email.get("attachments")),
            "has_thread_attachment": False,
            "status": [{"type": "sent" if email["sent"] else "received", "bounced_time": None, "bounced_reason": None}],
            "linked_record": {
                "id": record_id,
                "name": name_of(module, record_id),
                "module": {"api_name": module, "id": ""},
            },
            "intent": None,
            "sentiment_info": None,
            "emotion": None,
            "activity_info": None,
        }


@dataclass
class _AccessToken:
    user_id: str
    refresh_token: str
    expires_at: datetime


@dataclass(slots=True)
class _Entry:
    id: str
    data: dict[str, Any]
    created: datetime
    modified: datetime
    created_by: dict[str, str]
    modified_by: dict[str, str]


class _Module:
    """The records of one module: by id, in modification order, indexed, and tombstones."""

    def __init__(self, name: str, indexed: Iterable[str]) -> None:
        self.name = name
        self.records: dict[str, _Entry] = {}
        self.order: list[_Entry] = []
        self.tombstones: list[Tombstone] = []
        self.indexes: dict[str, dict[str, set[str]]] = {field: {} for field in indexed}

    def add(self, entry: _Entry) -> None:
        """Store ``entry``, whose modification is the newest of the org."""
        self.records[entry.id] = entry
        self.order.append(entry)
        for field, index in self.indexes.items():
            for key in _keys(entry.data.get(field)):
                index.setdefault(key, set()).add(entry.id)

    def remove(self, entry: _Entry) -> None:
        del self.records[entry.id]
        del self.order[bisect.bisect_left(self.order, entry.modified, key=_modified)]
        for field, index in self.indexes.items():
            for key in _keys(entry.data.get(field)):
                ids = index[key]
                ids.discard(entry.id)
                if not ids:
                    del index[key]

    def find(self, field: str, value: Any) -> list[_Entry]:
        """Records whose ``field`` equals ``value`` (case-insensitive), oldest change first."""
        keys = set(_keys(value))
        if field not in self.indexes:
            return [e for e in self.order if keys.intersection(_keys(e.data.get(field)))]
        index = self.indexes[field]
        ids = set().union(*(index.get(key, ()) for key in keys))
        return sorted((self.records[i] for i in ids), key=_modified)


class CrmOrg:
    """One CRM organisation: users, OAuth client and tokens, module records. Thread-safe.

    ``clock`` returns the current aware datetime (the real UTC clock by default), ``tz`` is
    the org's time zone for the times it shows, ``token_lifetime`` the access-token lifetime
    in seconds. ``unique_fields`` maps a module to fields whose values must be unique
    (case-insensitive); by default Account_Name in Accounts. Each module has the fields of
    :data:`~fakes.crm.fields.STANDARD_FIELDS`; custom ones are added with :meth:`create_field`.
    Mails are not records: they are associated with records (:meth:`associate_email`) and
    listed in a record's Emails related list (:meth:`mails_of`).
    """

    def __init__(
        self,
        name: str = "Zylker",
        edition: str = "Enterprise",
        *,
        sales_inbox: bool = False,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_lifetime: int = 3600,
        unique_fields: Mapping[str, Sequence[str]] | None = None,
        clock: Callable[[], datetime] | None = None,
        tz: tzinfo = UTC,
    ) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(_ID_BASE + 1)
        self.id = self._new_id()
        self.name = name
        self.edition = edition
        self.sales_inbox = sales_inbox
        self.client_id = client_id or f"1000.{secrets.token_hex(15).upper()}"
        self.client_secret = client_secret or secrets.token_hex(21)
        self.token_lifetime = token_lifetime
        self.tz = tz
        self._clock = clock or _utcnow
        self._last = datetime.min.replace(tzinfo=UTC)
        self._users: dict[str, CrmUser] = {}
        self._named_ids: dict[tuple[str, str], str] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._access_tokens: dict[str, _AccessToken] = {}
        unique = DEFAULT_UNIQUE_FIELDS if unique_fields is None else unique_fields
        self.fields = {m: self._standard_fields(m, unique.get(m, ())) for m in MODULES}
        self._modules = {m: _Module(m, {*_INDEXED.get(m, ()), *self.fields[m].unique}) for m in MODULES}
        self._module_names = {m.lower(): m for m in MODULES}
        self.module_ids = {m: self._new_id() for m in MODULES}
        self.limits = ApiLimits(CONCURRENCY.get(edition, CONCURRENCY["Enterprise"]), self._clock)
        self._mails: list[Mail] = []
        self._mail_links: dict[tuple[str, str], list[Mail]] = {}

    def _standard_fields(self, module: str, unique: Sequence[str]) -> ModuleFields:
        table = ModuleFields(module)
        for spec in STANDARD_FIELDS[module]:
            table.add(dataclasses.replace(spec, unique=spec.api_name in unique, id=self._new_id()))
        return table

    # field metadata ------------------------------------------------------------------------
    def field_resources(self, module: str) -> list[dict[str, Any]]:
        """The fields of ``module`` as ``GET /crm/v8/settings/fields?module=`` lists them."""
        with self._lock:
            name = self.module_name(module)
            return [field_resource(f, self.module_ids.get(f.lookup, "")) for f in self.fields[name].by_name.values()]

    def create_field(self, module: str, label: str, data_type: str, length: int | None = None) -> Field:
        """A new custom field of ``module`` named from ``label`` (``Exsync Link`` -> ``Exsync_Link``).

        Raises CrmError INVALID_DATA for a data type the fake does not create or a length out
        of range, DUPLICATE_DATA for a label already taken."""
        with self._lock:
            name = self.module_name(module)
            if data_type not in CUSTOM_TYPES:
                raise CrmError(
                    "INVALID_DATA", "invalid data", {"api_name": "data_type", "json_path": "$.fields[0].data_type"}
                )
            if length is not None and not 1 <= length <= max(CUSTOM_TYPES[data_type], 1):
                raise CrmError(
                    "INVALID_DATA", "invalid data", {"api_name": "length", "json_path": "$.fields[0].length"}
                )
            api_name = api_name_of(label)
            if not api_name:
                raise CrmError(
                    "MANDATORY_NOT_FOUND",
                    "required field not found",
                    {"api_name": "field_label", "json_path": "$.fields[0].field_label"},
                )
            if self.fields[name].get(api_name) is not None:
                raise CrmError(
                    "DUPLICATE_DATA",
                    "duplicate data",
                    {"api_name": "field_label", "json_path": "$.fields[0].field_label"},
                )
            spec = dataclasses.replace(custom_field(api_name, data_type, length, self._new_id()), label=label)
            self.fields[name].add(spec)
            return spec

    def drop_field(self, module: str, api_name: str) -> None:
        """Remove a custom field (as an admin deleting it in the CRM's setup)."""
        with self._lock:
            self.fields[self.module_name(module)].by_name.pop(api_name, None)

    # org and users -------------------------------------------------------------------------
    def now(self) -> datetime:
        """The org clock's current time in the org's time zone."""
        return self._clock().astimezone(self.tz)

    def module_name(self, name: str) -> str:
        """The module's API name for ``name`` (any case); CrmError INVALID_MODULE if unknown."""
        module = self._module_names.get(name.lower())
        if module is None:
            raise CrmError("INVALID_MODULE", "the module name given seems to be invalid", {})
        return module

    def add_user(
        self,
        full_name: str,
        email: str,
        *,
        role: str = "Manager",
        profile: str = "Standard",
        is_admin: bool | None = None,
    ) -> CrmUser:
        """Add an active user; by default CEO/Administrator roles and the Administrator
        profile make an admin."""
        with self._lock:
            if any(u.email == email.lower() for u in self._users.values()):
                raise CrmError("DUPLICATE_DATA", "duplicate data", {"api_name": "email"})
            admin = (role in ADMIN_ROLES or profile == "Administrator") if is_admin is None else is_admin
            user = CrmUser(
                self._new_id(),
                full_name,
                email.lower(),
                role,
                self._named_id("role", role),
                profile,
                self._named_id("profile", profile),
                admin,
            )
            self._users[user.id] = user
            return user

    def users(self) -> list[CrmUser]:
        with self._lock:
            return list(self._users.values())

    def user(self, user_id: str) -> CrmUser:
        with self._lock:
            user = self._users.get(user_id)
        if user is None:
            raise CrmError("INVALID_DATA", "invalid data", {"api_name": "id", "id": user_id})
        return user

    @property
    def admin(self) -> CrmUser:
        """The first admin user; records written without an actor belong to them."""
        with self._lock:
            for user in self._users.values():
                if user.is_admin:
                    return user
        raise LookupError(f"org {self.name!r} has no admin user")

    # OAuth -------------------------------------------------------------------------------
    def issue_refresh_token(self, user_id: str) -> str:
        """A new refresh token of the org's OAuth client for ``user_id``."""
        with self._lock:
            self.user(user_id)
            token = _token()
            self._refresh_tokens[token] = user_id
            return token

    def revoke_refresh_token(self, token: str) -> None:
        """Revoke ``token`` and every access token obtained with it."""
        with self._lock:
            self._refresh_tokens.pop(token, None)
            for key in [k for k, v in self._access_tokens.items() if v.refresh_token == token]:
                del self._access_tokens[key]

    def refresh_access_token(self, client_id: str, client_secret: str, refresh_token: str) -> str:
        """A new access token, valid for :attr:`token_lifetime` seconds.

        Raises CrmError ``invalid_client`` for a wrong client, ``invalid_code`` for an
        unknown or revoked refresh token (Zoho's OAuth error codes).
        """
        with self._lock:
            if (client_id, client_secret) != (self.client_id, self.client_secret):
                raise CrmError("invalid_client", "invalid client")
            user_id = self._refresh_tokens.get(refresh_token)
            if user_id is None:
                raise CrmError("invalid_code", "invalid refresh token")
            token = _token()
            expires = self._clock() + timedelta(seconds=self.token_lifetime)
            self._access_tokens[token] = _AccessToken(user_id, refresh_token, expires)
            return token

    def authenticate(self, access_token: str) -> CrmUser:
        """The user an access token belongs to; CrmError INVALID_TOKEN if bad or expired."""
        with self._lock:
            grant = self._access_tokens.get(access_token)
            if grant is None:
                raise CrmError("INVALID_TOKEN", "invalid oauth token")
            if grant.expires_at <= self._clock():
                raise CrmError("INVALID_TOKEN", "invalid oauth token: the access token has expired")
            return self._users[grant.user_id]

    def expire_tokens(self) -> None:
        """Make every access token issued so far expired (refresh tokens stay valid)."""
        with self._lock:
            past = self._clock() - timedelta(seconds=1)
            for grant in self._access_tokens.values():
                grant.expires_at = past

    # records: writes -----------------------------------------------------------------------
    def insert(self, module: str, data: Mapping[str, Any], actor: CrmUser | None = None) -> dict[str, Any]:
        """Create a record; returns it as read back. Owner defaults to ``actor`` (or the admin)."""
        with self._lock:
            store = self._module(module)
            user = actor or self.admin
            fields = self._validated(store, {}, {"Owner": user.ref(), **_writable(data)}, None)
            now = self._tick()
            entry = _Entry(self._new_id(), fields, now, now, user.ref(), user.ref())
            store.add(entry)
            return self._view(store, entry)

    def update(
        self, module: str, record_id: str, patch: Mapping[str, Any], actor: CrmUser | None = None
    ) -> dict[str, Any]:
        """Merge ``patch`` into a record (a field set to None is cleared)."""
        with self._lock:
            store = self._module(module)
            entry = self._entry(store, record_id)
            fields = self._validated(store, entry.data, _writable(patch), entry.id)
            store.remove(entry)
            entry.data, entry.modified = fields, self._tick()
            entry.modified_by = (actor or self.admin).ref()
            store.add(entry)
            return self._view(store, entry)

    def upsert(
        self,
        module: str,
        data: Mapping[str, Any],
        duplicate_check_fields: Sequence[str] = (),
        actor: CrmUser | None = None,
    ) -> tuple[str, dict[str, Any], str | None]:
        """Update the first record matching on a duplicate-check field, else insert.

        Without ``duplicate_check_fields`` the system fields (:data:`UPSERT_FIELDS`) and the
        module's unique fields are used. Returns (``"insert"|"update"``, record, matched field).
        """
        with self._lock:
            store = self._module(module)
            fields = duplicate_check_fields or self.duplicate_check_fields(store.name)
            for field in fields:
                matches = store.find(field, data.get(field))
                if matches:
                    return "update", self.update(store.name, matches[0].id, data, actor), field
            return "insert", self.insert(store.name, data, actor), None

    def duplicate_check_fields(self, module: str) -> list[str]:
        """The fields upsert may check duplicates on: the module's system-defined ones
        (:data:`UPSERT_FIELDS`) and its unique fields."""
        with self._lock:
            name = self.module_name(module)
            return list(dict.fromkeys((*UPSERT_FIELDS.get(name, ()), *self.fields[name].unique)))

    def delete(self, module: str, record_id: str, actor: CrmUser | None = None) -> None:
        """Move a record to the recycle bin, leaving a tombstone."""
        with self._lock:
            store = self._module(module)
            entry = self._entry(store, record_id)
            store.remove(entry)
            name = _display_name(store.name, entry.data)
            deleted_by = (actor or self.admin).ref()
            store.tombstones.append(Tombstone(entry.id, name, "recycle", deleted_by, entry.created_by, self._tick()))

    # records: reads ----------------------------------------------------------------------
    def get(self, module: str, record_id: str) -> dict[str, Any]:
        with self._lock:
            store = self._module(module)
            return self._view(store, self._entry(store, record_id))

    def records_by_id(self, module: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The records of ``ids`` that exist, in that order (``GET /{Module}?ids=``)."""
        with self._lock:
            store = self._module(module)
            return [self._view(store, store.records[i]) for i in ids if i in store.records]

    def count(self, module: str) -> int:
        with self._lock:
            return len(self._module(module).records)

    def list_records(
        self,
        module: str,
        *,
        since: datetime | None = None,
        page: int = 1,
        per_page: int = 200,
        descending: bool = False,
        offset: int | None = None,
    ) -> Page:
        """Records modified at or after the aware instant ``since`` (all when None), page
        ``page`` of ``per_page`` (or ``per_page`` from ``offset``) in modification order
        (oldest first unless ``descending``)."""
        with self._lock:
            store = self._module(module)
            start = 0 if since is None else bisect.bisect_left(store.order, since, key=_modified)
            skip = (page - 1) * per_page if offset is None else offset
            first, last, more = _slice(len(store.order) - start, skip, per_page, descending)
            entries = store.order[start + first : start + last]
            if descending:
                entries.reverse()
            return Page([self._view(store, e) for e in entries], more)

    def deleted(
        self,
        module: str,
        *,
        since: datetime | None = None,
        kind: str = "all",
        page: int = 1,
        per_page: int = 200,
    ) -> Page:
        """Tombstones of records deleted at or after ``since``, oldest first; ``kind`` is
        one of :data:`DELETED_TYPES`."""
        if kind not in DELETED_TYPES:
            raise CrmError("INVALID_DATA", "invalid data", {"param": "type"})
        with self._lock:
            tombs = self._module(module).tombstones
            start = 0 if since is None else bisect.bisect_left(tombs, since, key=_deleted_time)
            chosen = tombs[start:] if kind == "all" else [t for t in tombs[start:] if t.type == kind]
            return paginate([t.resource(self.tz) for t in chosen], page, per_page)

    def search(
        self,
        module: str,
        conditions: Sequence[tuple[str, Any]],
        *,
        any_of: bool = False,
        page: int = 1,
        per_page: int = 200,
    ) -> Page:
        """Records meeting every ``(field, value)`` equality (case-insensitive), or with
        ``any_of`` at least one of them (oldest change first)."""
        if not conditions:
            raise CrmError("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {})
        with self._lock:
            store = self._module(module)
            entries = store.find(*conditions[0])
            for field, value in conditions[1:]:
                if any_of:
                    entries += store.find(field, value)
                else:
                    ids = {e.id for e in store.find(field, value)}
                    entries = [e for e in entries if e.id in ids]
            if any_of:
                entries = sorted({e.id: e for e in entries}.values(), key=_modified)
            return paginate([self._view(store, e) for e in entries], page, per_page)

    def select_in(
        self,
        module: str,
        criteria: Sequence[tuple[str, Sequence[str]]],
        columns: Sequence[str],
        *,
        limit: int,
        offset: int,
    ) -> Page:
        """COQL's ``select columns from module where (F in (values) or ...) limit .. offset ..``,
        ``criteria`` being each (F, values): matching ignores case, records come in id order
        (COQL's default), each with ``id`` and the ``columns`` asked for."""
        with self._lock:
            store = self._module(module)
            found = {
                e.id: e for field, values in criteria for value in values for e in self._matching(store, field, value)
            }
            entries = sorted(found.values(), key=lambda e: int(e.id))
            views = [self._view(store, e) for e in entries[offset : offset + limit]]
        return Page([{c: v.get(c) for c in ("id", *columns)} for v in views], offset + limit < len(entries))

    def _matching(self, store: _Module, field: str, value: str) -> list[_Entry]:
        """Records whose ``field`` is ``value``; ``id`` is the record's id."""
        if field.lower() == "id":
            entry = store.records.get(value)
            return [entry] if entry is not None else []
        return store.find(field, value)

    def associate_email(
        self, module: str, record_id: str, email: Mapping[str, Any], actor: CrmUser | None = None
    ) -> str:
        """Associate a mail with a record (``POST /{module}/{id}/actions/associate_email``);
        returns the mail's id in the CRM (Zoho's ``message_id``). Each call stores the mail
        once more: de-duplicating is the caller's business."""
        with self._lock:
            store = self._module(module)
            if store.name not in MAIL_MODULES:
                raise CrmError(
                    "INVALID_MODULE", "the module name given seems to be invalid", {"resource_path_index": 0}
                )
            entry = self._entry(store, record_id)
            try:
                checked = check_mail(email)
            except FieldError as exc:
                raise CrmError.of(exc) from None
            linked = self._linked_record(checked.get("linked_record"))
            mail = Mail(
                secrets.token_hex(32),  # Zoho's message ids are 64 hex digits
                (store.name, entry.id),
                linked,
                checked,
                (actor or self.admin).ref(),
                self._tick(),
            )
            self._mails.append(mail)
            for key in {mail.record, *([linked] if linked else [])}:
                self._mail_links.setdefault(key, []).append(mail)
            return mail.id

    def mails_of(self, module: str, record_id: str) -> list[dict[str, Any]]:
        """The Emails related list of a record: mails associated with it (or linked to it), and
        for Accounts and Deals those of their contacts (an account's contacts are those whose
        Account_Name is it; a deal's are its Contact_Name and the contacts of its
        Account_Name). Oldest first, as ``GET /{module}/{id}/Emails`` shows them."""
        with self._lock:
            store = self._module(module)
            entry = self._entry(store, record_id)
            targets = [(store.name, entry.id)] + [("Contacts", c.id) for c in self._contacts_of(store.name, entry)]
            found = {m.id: m for target in targets for m in self._mail_links.get(target, ())}
            return [m.resource(self.tz, self._name_of) for m in sorted(found.values(), key=lambda m: m.time)]

    def all_mails(self) -> list[dict[str, Any]]:
        """Every association made, oldest first (one per associate_email call)."""
        with self._lock:
            return [m.resource(self.tz, self._name_of) for m in self._mails]

    def _linked_record(self, value: Any) -> tuple[str, str] | None:
        if value is None:
            return None
        module = value.get("module") if isinstance(value, dict) else None
        name = self._module_names.get(str(module.get("api_name") or "").lower()) if isinstance(module, dict) else None
        record_id = str(value.get("id") or "") if isinstance(value, dict) else ""
        if name is None or record_id not in self._modules[name].records:
            details = {"api_name": "linked_record", "expected_data_type": "jsonobject"}
            raise CrmError("INVALID_DATA", "invalid data", details)
        return name, record_id

    def _name_of(self, module: str, record_id: str) -> str:
        entry = self._modules[module].records.get(record_id)
        return _display_name(module, entry.data) if entry else ""

    # internals -----------------------------------------------------------------------------
    def _module(self, name: str) -> _Module:
        return self._modules[self.module_name(name)]

    def _entry(self, store: _Module, record_id: str) -> _Entry:
        entry = store.records.get(str(record_id))
        if entry is None:
            raise CrmError("INVALID_DATA", "the id given seems to be invalid", {"api_name": "id", "id": record_id})
        return entry

    def _contacts_of(self, module: str, entry: _Entry) -> list[_Entry]:
        contacts = self._modules["Contacts"]
        if module == "Accounts":
            return contacts.find("Account_Name", entry.id)
        if module != "Deals":
            return []
        found = contacts.find("Account_Name", entry.data.get("Account_Name"))
        contact = contacts.records.get(str((entry.data.get("Contact_Name") or {}).get("id")))
        return [*found, contact] if contact else found

    def _validated(
        self, store: _Module, current: Mapping[str, Any], patch: dict[str, Any], record_id: str | None
    ) -> dict[str, Any]:
        """``current`` merged with ``patch``, checked against the module's fields, with
        references resolved. A field the module does not have is ignored, not stored (as
        Zoho does with API names it does not know)."""
        table = self.fields[store.name]
        patch = {name: value for name, value in patch.items() if table.get(name) is not None}
        for name, value in patch.items():
            spec = table.get(name)
            if value is not None and spec is not None and not (spec.data_type in _CLEARABLE and value == ""):
                try:
                    check_value(spec, value)
                except FieldError as exc:
                    raise CrmError.of(exc) from None
        merged = {**current, **patch}
        for name in table.mandatory:
            if merged.get(name) in (None, "", [], {}):
                raise CrmError("MANDATORY_NOT_FOUND", "required field not found", {"api_name": name})
        merged.update(self._resolved(store.name, patch))
        for name in (n for n in table.unique if n in patch):
            clash = [e for e in store.find(name, merged.get(name)) if e.id != record_id]
            if clash:
                raise CrmError("DUPLICATE_DATA", "duplicate data", {"api_name": name, "id": clash[0].id})
        return merged

    def _resolved(self, module: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Reference fields of ``patch`` in stored form: lookups and Owner as {name, id}."""
        out: dict[str, Any] = {}
        for spec in self.fields[module].by_name.values():
            if spec.data_type == "lookup" and patch.get(spec.api_name) is not None:
                out[spec.api_name] = self._lookup(spec.api_name, spec.lookup, patch[spec.api_name])
        if "Owner" in patch:
            out["Owner"] = self._owner(patch["Owner"])
        return out

    def _lookup(self, api_name: str, target: str, value: Any) -> dict[str, str]:
        ref_id = str(value.get("id")) if isinstance(value, dict) else None
        entry = self._modules[target].records.get(ref_id or "")
        if entry is None:
            raise CrmError("INVALID_DATA", "invalid data", {"api_name": api_name})
        return {"id": entry.id, "name": _display_name(target, entry.data)}

    def _owner(self, value: Any) -> dict[str, str]:
        user = self._users.get(str(value.get("id"))) if isinstance(value, dict) else None
        if user is None:
            raise CrmError("INVALID_DATA", "invalid data", {"api_name": "Owner"})
        return user.ref()

    def _view(self, store: _Module, entry: _Entry) -> dict[str, Any]:
        out = _clone(entry.data)
        out["id"] = entry.id
        out["Created_Time"] = format_time(entry.created, self.tz)
        out["Modified_Time"] = format_time(entry.modified, self.tz)
        out["Created_By"] = dict(entry.created_by)
        out["Modified_By"] = dict(entry.modified_by)
        if store.name in _PERSON_MODULES:
            out["Full_Name"] = _display_name(store.name, entry.data)
        for spec in self.fields[store.name].by_name.values():
            ref = out.get(spec.api_name) if spec.data_type == "lookup" else None
            linked = self._modules[spec.lookup].records.get(ref["id"]) if isinstance(ref, dict) else None
            if linked and isinstance(ref, dict):  # the name as it is now, as Zoho shows it
                ref["name"] = _display_name(spec.lookup, linked.data)
        return out

    def _tick(self) -> datetime:
        """The instant of a write: now, but strictly after the previous write."""
        now = self._clock()
        self._last = now if now > self._last else self._last + timedelta(microseconds=1)
        return self._last

    def _new_id(self) -> str:
        return str(next(self._ids))

    def _named_id(self, kind: str, name: str) -> str:
        return self._named_ids.setdefault((kind, name), self._new_id())


def paginate(items: list[dict[str, Any]], page: int, per_page: int) -> Page:
    """Page ``page`` (from 1) of ``items``, ``per_page`` at a time."""
    first, last, more = _window(len(items), page, per_page, False)
    return Page(items[first:last], more)


def format_time(instant: datetime, tz: tzinfo) -> str:
    """Zoho's time format: ISO 8601 to the second with the UTC offset."""
    return instant.astimezone(tz).replace(microsecond=0).isoformat()


def _window(total: int, page: int, per_page: int, descending: bool) -> tuple[int, int, bool]:
    """Slice bounds of a page over ``total`` ascending items, and whether more follow."""
    return _slice(total, (page - 1) * per_page, per_page, descending)


def _slice(total: int, offset: int, limit: int, descending: bool) -> tuple[int, int, bool]:
    """Slice bounds of ``limit`` items from ``offset`` over ``total`` ascending items (read
    from the end when ``descending``), and whether more follow."""
    first = min(offset, total)
    last = min(first + limit, total)
    if descending:
        first, last = total - last, total - first
        return first, last, first > 0
    return first, last, last < total


def _keys(value: Any) -> list[str]:
    """Index keys of a field value: text lower-cased, a lookup by id."""
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return [str(value["id"])] if value.get("id") else []
    return [str(value).strip().lower()]


def _writable(data: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the fields a client may write (read-only system fields dropped)."""
    return {k: _clone(v) for k, v in data.items() if k not in READ_ONLY_FIELDS}


def _clone(value: Any) -> Any:
    """A deep copy of JSON-like data (much cheaper than copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def _display_name(module: str, data: Mapping[str, Any]) -> str:
    if module in _PERSON_MODULES:
        return " ".join(str(data[f]) for f in ("First_Name", "Last_Name") if data.get(f))
    return str(data.get(_DISPLAY_FIELD[module]) or "")


def _modified(entry: _Entry) -> datetime:
    return entry.modified


def _deleted_time(tombstone: Tombstone) -> datetime:
    return tombstone.deleted_time


def _token() -> str:
    return f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"


def _utcnow() -> datetime:
    return datetime.now(UTC)
