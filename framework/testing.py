"""In-memory stores for testing the engine and plugins without any server.

:class:`MemoryWorld` holds a CRM side and an Exchange side per (user, entity) and a plugin
(:meth:`MemoryWorld.plugin`) that offers them as the ``memory`` CRM connector and the
``memory`` auth provider. Register it with ``build_host(extra=[world.plugin()])``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from framework import hookimpl
from framework.context import Context
from framework.contracts import (
    AuthProvider,
    Changes,
    Create,
    CrmConnector,
    CrmStore,
    CrmUser,
    Delete,
    Item,
    OrgInfo,
    Side,
    Store,
    Update,
    Window,
    WriteOp,
    WriteResult,
)
from framework.engine import CHUNK, Engine, RunReport
from framework.errors import RecordRejected, SyncStateLost
from framework.host import build_host
from framework.model import Record
from framework.state import User

ENTITIES = frozenset({"contacts", "tasks", "events", "mails"})


@dataclass
class MemorySide(Side):
    """A side kept in a dict, with a change log for cursors and optional write failures."""

    prefix: str
    records: dict[str, tuple[Record, str]] = field(default_factory=dict)
    log: list[tuple[int, str]] = field(default_factory=list)
    reject: set[str] = field(default_factory=set)  # records whose subject/last name is listed fail
    page_size: int = 0  # items or deletions per page of a read (0: one page)
    writes: int = 0
    generation: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _seq: Any = field(default_factory=lambda: itertools.count(1))

    batch_size: ClassVar[int] = 7

    # what a user does -----------------------------------------------------------------------
    def put(self, record: Record, item_id: str | None = None, link: str = "") -> str:
        item_id = item_id or f"{self.prefix}{next(self._ids)}"
        old_link = self.records.get(item_id, (None, link))[1]
        self.records[item_id] = (record, link or old_link)
        self.log.append((next(self._seq), item_id))
        return item_id

    def remove(self, item_id: str) -> None:
        del self.records[item_id]
        self.log.append((next(self._seq), item_id))

    # Side -----------------------------------------------------------------------------------
    def pages(self, cursor: str | None, window: Window) -> Iterator[Changes]:
        changes = self._changes(cursor)
        size = self.page_size or max(1, len(changes.items), len(changes.deleted))
        for start in range(0, len(changes.items), size):
            yield Changes(changes.items[start : start + size], [], None, changes.full)
        for start in range(0, len(changes.deleted), size):
            yield Changes([], changes.deleted[start : start + size], None, changes.full)
        yield Changes([], [], changes.cursor, changes.full)

    def _changes(self, cursor: str | None) -> Changes:
        head = self.log[-1][0] if self.log else 0
        if cursor is None:
            items = [Item(i, r, link) for i, (r, link) in self.records.items()]
            return Changes(items, [], self._cursor(head), full=True)
        state = json.loads(cursor)
        if state["generation"] != self.generation:
            raise SyncStateLost("the sync state expired")
        touched = {item_id for seq, item_id in self.log if seq > state["seq"]}
        items = [Item(i, *self.records[i]) for i in sorted(touched) if i in self.records]
        deleted = [i for i in sorted(touched) if i not in self.records]
        return Changes(items, deleted, self._cursor(head))

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        assert len(ops) <= self.batch_size
        self.writes += 1
        return [self._write(op) for op in ops]

    def _write(self, op: WriteOp) -> WriteResult:
        if isinstance(op, Delete):
            if op.id in self.records:
                self.remove(op.id)
            return WriteResult(op.id)
        if _label(op.record) in self.reject:
            return WriteResult(error=RecordRejected(f"{_label(op.record)!r} is not accepted"))
        if isinstance(op, Create):
            return WriteResult(self.put(op.record, link=op.link))
        assert isinstance(op, Update)
        if op.id not in self.records:
            return WriteResult(error=RecordRejected(f"{op.id} does not exist"))
        return WriteResult(self.put(op.record, op.id, op.link))

    def _cursor(self, head: int) -> str:
        return json.dumps({"seq": head, "generation": self.generation})


def _label(record: Record) -> str:
    return str(getattr(record, "subject", "") or getattr(record, "last_name", ""))


class _MemoryStore(CrmStore):
    def __init__(self, world: MemoryWorld, side: str, user_id: str) -> None:
        self.world, self.which, self.user_id = world, side, user_id

    entities = ENTITIES

    def side(self, entity: str) -> Side:
        return self.world.side(self.which, self.user_id, entity)

    def org(self) -> OrgInfo:
        return OrgInfo("org1", "Memory Org", self.world.edition, self.world.sales_inbox)

    def users(self) -> list[CrmUser]:
        return list(self.world.users)

    def current_user(self) -> CrmUser:
        return self.world.users[0]


@dataclass
class MemoryWorld:
    """Both sides of every (user, entity), and the plugin that serves them."""

    users: list[CrmUser] = field(
        default_factory=lambda: [CrmUser("u1", "admin@example.com", "Ada Admin", "CEO", "Administrator", True)]
    )
    edition: str = "Enterprise"
    sales_inbox: bool = False
    sides: dict[tuple[str, str, str], MemorySide] = field(default_factory=dict)
    page_size: int = 0  # of every side's reads (0: one page)

    def side(self, which: str, user_id: str, entity: str) -> MemorySide:
        key = (which, user_id, entity)
        if key not in self.sides:
            self.sides[key] = MemorySide(prefix="C" if which == "crm" else "X", page_size=self.page_size)
        return self.sides[key]

    def plugin(self) -> Any:
        world = self

        class Connector(CrmConnector):
            """The memory world's CRM."""

            name = "memory"

            def login(self, ctx: Any, options: dict[str, Any]) -> CrmUser:
                return world.users[0]

            def open(self, ctx: Any, user: Any = None) -> CrmStore:
                return _MemoryStore(world, "crm", user.crm_id if user else "")

        class Provider(AuthProvider):
            """The memory world's Exchange, reaching every user's mailbox."""

            name = "memory"
            org_wide = True

            def open(self, ctx: Any, user: Any) -> Store:
                return _MemoryStore(world, "exchange", user.crm_id)

            def has_credentials(self, ctx: Any, user: Any) -> bool:
                return True

        class Plugin:
            """Offers the connector and the provider as the ``memory`` plugin."""

            __name__ = "memory"

            @hookimpl
            def exsync_crm_connectors(self) -> list[CrmConnector]:
                return [Connector()]

            @hookimpl
            def exsync_auth_providers(self) -> list[AuthProvider]:
                return [Provider()]

        return Plugin()


def memory_settings() -> dict[str, Any]:
    """State-store settings that install the org on the memory plugin."""
    return {"installed": True, "scope": "all", "auth_method": "memory", "crm_connector": "memory"}


ADMIN = User("u1", "admin@example.com", "Ada Admin", "CEO", "Administrator", is_admin=True, enabled=True)


@dataclass
class MemoryOrg:
    """An org installed on the memory plugin, with one enabled admin user, ready to sync."""

    world: MemoryWorld
    ctx: Context
    chunk: int = CHUNK  # records the engine plans together

    def sync(self, **kwargs: Any) -> RunReport:
        """One run for the admin user, never sleeping on back-off."""
        (report,) = Engine(self.ctx, sleep=lambda _s: None, chunk=self.chunk).run([ADMIN], **kwargs)
        return report

    def set(self, **settings: Any) -> None:
        self.ctx.state.set_settings(settings)


def make_org(url: str = "sqlite://") -> MemoryOrg:
    """A memory org on a fresh state database (in memory by default), with every installed plugin."""
    world = MemoryWorld()
    ctx = Context(url, host=build_host(extra=[world.plugin()]), acting_as=ADMIN.crm_id)
    ctx.state.set_settings(memory_settings())
    ctx.state.upsert_users([ADMIN])
    return MemoryOrg(world, ctx)


__all__ = ["ADMIN", "MemoryOrg", "MemorySide", "MemoryWorld", "make_org", "memory_settings"]
