"""What plugins implement: sides, stores, auth providers, entities and conflict policies.

The engine only ever talks to these types. A *side* is one service's view of one entity for
one user (the CRM's contacts of Alice, Alice's Exchange calendar); a *store* is an open,
authenticated connection to one service for one user that hands out sides; an *auth
provider* opens Exchange stores, a *CRM connector* opens CRM stores and knows the org.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from framework.errors import ConfigurationError, SyncError
from framework.model import Record

if TYPE_CHECKING:
    from framework.context import Context
    from framework.state import User

SideName = Literal["crm", "exchange"]
SIDES: tuple[SideName, SideName] = ("crm", "exchange")


def other(side: SideName) -> SideName:
    """The side opposite ``side``."""
    return "exchange" if side == "crm" else "crm"


# -- the window -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """Items dated before ``since`` are neither read nor written (B24); future ones are."""

    since: datetime

    @classmethod
    def months_back(cls, months: int, now: datetime | None = None) -> Window:
        now = now or datetime.now(UTC)
        return cls(now - timedelta(days=round(months * 30.44)))

    def contains(self, moment: datetime | date | None) -> bool:
        if moment is None:
            return True
        if not isinstance(moment, datetime):
            moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
        return moment.astimezone(UTC) >= self.since


# -- reading and writing a side ---------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One record as read from a side.

    ``link`` is the cross-link this side stores for the item: the id of its counterpart on
    the other side, written there by an earlier sync (an Exchange extended property, a CRM
    field). It lets a sync that lost its state re-pair records instead of duplicating them.
    """

    id: str
    record: Record
    link: str = ""


@dataclass
class Changes:
    """What a side read since a cursor.

    ``full`` is True when ``items`` is the complete listing within the window (first sync,
    or a resync after the cursor was lost): an item that is absent is *not* deleted.
    ``cursor`` is saved once every change read has been applied.
    """

    items: list[Item]
    deleted: list[str]
    cursor: str | None
    full: bool = False

    @classmethod
    def merged(cls, pages: Iterable[Changes]) -> Changes:
        """One :class:`Changes` holding every page of a read; the cursor is the last page's."""
        whole = cls([], [], None)
        for page in pages:
            whole.items += page.items
            whole.deleted += page.deleted
            whole.cursor, whole.full = page.cursor, page.full
        return whole


@dataclass(frozen=True)
class Create:
    """Create ``record`` on the side; ``link`` is the counterpart's id to store with it."""

    record: Record
    link: str


@dataclass(frozen=True)
class Update:
    """Overwrite item ``id`` with ``record``."""

    id: str
    record: Record
    link: str


@dataclass(frozen=True)
class Delete:
    """Delete item ``id``."""

    id: str


WriteOp = Create | Update | Delete


@dataclass(frozen=True)
class WriteResult:
    """The outcome of one write: the item's id on success, else the error."""

    id: str | None = None
    error: SyncError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Side(ABC):
    """One service's view of one entity for one user.

    A side implements :meth:`pages` or :meth:`read` (each is written in terms of the other).
    ``pages`` yields the changes since ``cursor`` (None: everything within the window) a page
    at a time, so that the engine never holds a whole mailbox; only the last page carries
    the new cursor. Within one read an item listed again supersedes its earlier listing,
    and an item listed as changed wins over a deletion of the same id. Both raise
    :class:`~framework.errors.SyncStateLost` when the cursor has expired.
    ``write`` applies at most ``batch_size`` operations as few requests as the service
    allows and returns one :class:`WriteResult` per operation, in order; a rejected
    record is an error result, not an exception. ``echo`` returns what reading a record
    back after writing it would give (the fields this side cannot hold cleared, values
    normalised), so that the engine recognises its own writes. ``read_back`` is True for a
    side whose cursor will not report what happens to records written after it was issued
    (an EWS sync state only knows items it listed): after writing there, the engine reads
    again so that the cursor it saves covers its own writes.
    """

    batch_size: ClassVar[int] = 100
    read_back: ClassVar[bool] = False

    def pages(self, cursor: str | None, window: Window) -> Iterator[Changes]:
        """The changes since ``cursor``, a page at a time; the last page carries the cursor."""
        yield self.read(cursor, window)

    def read(self, cursor: str | None, window: Window) -> Changes:
        """Every change since ``cursor`` as one :class:`Changes`."""
        return Changes.merged(self.pages(cursor, window))

    @abstractmethod
    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]: ...

    def echo(self, record: Record) -> Record:
        return record


class Store(ABC):
    """An open, authenticated connection to one service for one user."""

    entities: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def side(self, entity: str) -> Side:
        """The side of ``entity``; raise ConfigurationError if this store does not carry it."""

    def close(self) -> None:  # noqa: B027 - optional for stores holding no resources
        """Release connections."""


# -- the CRM ---------------------------------------------------------------------------------
#: where a CRM connector keeps each user's login in the vault: ``crm/login/<CRM user id>``
CRM_LOGIN_PREFIX = "crm/login/"


@dataclass(frozen=True)
class CrmUser:
    """A user of the CRM org."""

    id: str
    email: str
    name: str
    role: str
    profile: str
    is_admin: bool
    active: bool = True


@dataclass(frozen=True)
class OrgInfo:
    """What the product needs to know of the CRM org."""

    id: str
    name: str
    edition: str
    sales_inbox: bool


class CrmConnector(ABC):
    """Logs in to a CRM and opens CRM stores."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    @abstractmethod
    def login(self, ctx: Context, options: dict[str, Any]) -> CrmUser:
        """Verify ``options`` (URLs, client, token), keep the secrets in the vault, return the user."""

    @abstractmethod
    def open(self, ctx: Context, user: User | None = None) -> CrmStore:
        """A store on ``user``'s records through the org's admin login (None: org-level queries only)."""

    def sweep(self, ctx: Context) -> AbstractContextManager[None]:
        """The scope of one run over many users: stores opened inside may share a connection,
        the org, and the org-wide listings every user's read begins with."""
        return nullcontext()


@dataclass(frozen=True)
class RequiredField:
    """A custom field a CRM store writes, which the org must have: where, its API name, the
    label it is created with, its data type and length."""

    module: str
    api_name: str
    label: str
    data_type: str
    length: int

    def describe(self) -> str:
        """``Contacts.Exsync_Link (text, 255)``."""
        return f"{self.module}.{self.api_name} ({self.data_type}, {self.length})"


class CrmStore(Store):
    """A CRM store also answers questions about the org and its users, and about the custom
    fields it needs: :meth:`missing_fields` names those the org lacks, :meth:`create_field`
    creates one (``exsync install --create-fields``)."""

    @abstractmethod
    def org(self) -> OrgInfo: ...

    @abstractmethod
    def users(self) -> list[CrmUser]: ...

    @abstractmethod
    def current_user(self) -> CrmUser: ...

    def missing_fields(self) -> list[RequiredField]:
        """The custom fields this store writes that the org does not have (none by default)."""
        return []

    def create_field(self, required: RequiredField) -> None:
        """Create ``required`` in the org; ConfigurationError if the CRM cannot."""
        raise ConfigurationError(f"This CRM cannot create the field {required.describe()}; create it by hand.")

    def mails(self, window: Window) -> list[Record]:
        """The user's mails as the CRM holds them, within ``window`` (``exsync mails``); by
        default what the ``mails`` side reads."""
        return [item.record for item in self.side("mails").read(None, window).items]


# -- Exchange ---------------------------------------------------------------------------------
class AuthProvider(ABC):
    """A way to authenticate to Exchange, opening Exchange stores for users.

    ``org_wide`` providers (impersonation, client credentials) are set up once by an admin
    and reach every enabled user's mailbox; the others need each user's own credentials.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    org_wide: ClassVar[bool] = False
    unsupported_entities: ClassVar[frozenset[str]] = frozenset()
    unsupported_reason: ClassVar[str] = ""

    @abstractmethod
    def open(self, ctx: Context, user: User) -> Store:
        """A store on ``user``'s mailbox; raise AuthenticationFailed when they must sign in."""

    @abstractmethod
    def has_credentials(self, ctx: Context, user: User | None) -> bool:
        """Whether credentials are stored for ``user`` (None: the org-wide credentials)."""

    def refused_entities(self, ctx: Context) -> dict[str, str]:
        """The entities this provider cannot sync as it is set up in ``ctx``, each with the reason
        (by default :attr:`unsupported_entities`; a provider may depend on what was granted to it)."""
        reason = self.unsupported_reason or f"{self.name} cannot sync them"
        return dict.fromkeys(self.unsupported_entities, reason)

    def vault_prefix(self, user: User | None) -> str:
        """Where this provider keeps its secrets in the vault; revoke deletes this prefix."""
        owner = user.crm_id if user is not None else "org"
        return f"auth/{self.name}/{owner}/"


# -- entities and conflicts -------------------------------------------------------------------
@dataclass(frozen=True)
class EntityDefinition:
    """An entity the engine can sync, and the rules that are the same on every store.

    ``match_keys`` gives the natural keys used to pair existing records on a first sync,
    strongest first (an event's iCalendar UID, then its start and subject); ``dated`` the
    moment the six-month window applies to (None: the entity is not windowed);
    ``writable`` the sides it may be written to; with ``keep_deleted`` a deletion on one side
    is not carried to the other (a mail deleted in Exchange stays in the CRM). ``merge``, when
    given, settles a pair changed on both sides by combining the two records (the conflict
    policy's winner first, then the other) rather than by the winner's alone; the result is
    written to both sides.
    """

    name: str
    record_type: type
    match_keys: Callable[[Record], tuple[str, ...]]
    dated: Callable[[Record], datetime | date | None] | None = None
    writable: frozenset[SideName] = field(default_factory=lambda: frozenset(SIDES))
    keep_deleted: bool = False
    description: str = ""
    merge: Callable[[Record, Record], Record] | None = None


@dataclass(frozen=True)
class Conflict:
    """The same pair changed on both sides since the last sync (or one changed, one deleted)."""

    entity: str
    crm: Item | None
    exchange: Item | None


class ConflictPolicy(ABC):
    """Decides which side wins a :class:`Conflict`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    @abstractmethod
    def winner(self, conflict: Conflict) -> SideName: ...
