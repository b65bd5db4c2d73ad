"""The state store: settings, users, pair mappings, cursors, runs, retries, secrets and audit.

SQLAlchemy Core over any URL; a SQLite file in the user's data directory by default. The
schema carries a version number; :data:`MIGRATIONS` lifts an older file to the current
version in place, and a file written by a newer release is refused rather than damaged.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from framework.contracts import CrmUser
from framework.errors import ConfigurationError

SCHEMA_VERSION = 3
LABEL_LENGTH = 300

metadata = sa.MetaData()

meta_table = sa.Table("meta", metadata, sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text))
settings_table = sa.Table(
    "settings", metadata, sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text)
)
users_table = sa.Table(
    "users",
    metadata,
    sa.Column("crm_id", sa.String(64), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("name", sa.String(255), nullable=False, default=""),
    sa.Column("role", sa.String(255), nullable=False, default=""),
    sa.Column("profile", sa.String(255), nullable=False, default=""),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=False),
    sa.Column("mailbox", sa.String(320), nullable=False, default=""),
    sa.Column("needs_attention", sa.Text, nullable=False, default=""),
)
pairs_table = sa.Table(
    "pairs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(32), nullable=False),
    sa.Column("crm_id", sa.String(255), nullable=False),
    sa.Column("exchange_id", sa.String(512), nullable=False),
    sa.Column("crm_hash", sa.String(64), nullable=False),
    sa.Column("exchange_hash", sa.String(64), nullable=False),
    sa.Column("label", sa.String(LABEL_LENGTH), nullable=False, default=""),  # the record, for people
    sa.Column("withheld", sa.String(96), nullable=False, default=""),  # see Pair.withheld
    sa.UniqueConstraint("user_id", "entity", "crm_id", name="uq_pairs_crm"),
    sa.UniqueConstraint("user_id", "entity", "exchange_id", name="uq_pairs_exchange"),
)
cursors_table = sa.Table(
    "cursors",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("side", sa.String(16), primary_key=True),
    sa.Column("cursor", sa.Text, nullable=False),
)
retries_table = sa.Table(
    "retries",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("side", sa.String(16), primary_key=True),  # the side the record was read from
    sa.Column("item_id", sa.String(512), primary_key=True),
    sa.Column("item", sa.Text, nullable=False),  # the item as read, JSON
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
)
runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("outcome", sa.String(16), nullable=False, default="running"),
    sa.Column("summary", sa.Text, nullable=False, default="{}"),
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Column("owner", sa.String(300), nullable=False, default=""),  # host:pid of the process running it
)
audit_table = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor", sa.String(320), nullable=False, default=""),
    sa.Column("user_id", sa.String(64), nullable=False, default=""),
    sa.Column("entity", sa.String(32), nullable=False, default=""),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
)
secrets_table = sa.Table(
    "secrets",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
)


def _add_run_owner_and_pair_label(conn: Connection) -> None:
    """Version 2: each run names the process that runs it (a run whose process died is recognised),
    each pair a label of its record (a planned deletion names what it deletes)."""
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN owner VARCHAR(300) NOT NULL DEFAULT ''"))
    conn.execute(sa.text(f"ALTER TABLE pairs ADD COLUMN label VARCHAR({LABEL_LENGTH}) NOT NULL DEFAULT ''"))


def _add_withheld(conn: Connection) -> None:
    """Version 3: a pair remembers that one of its records is withheld (framework/privacy.py)."""
    conn.execute(sa.text("ALTER TABLE pairs ADD COLUMN withheld VARCHAR(96) NOT NULL DEFAULT ''"))


_PAIR_COLUMNS = (
    pairs_table.c.id,
    pairs_table.c.crm_id,
    pairs_table.c.exchange_id,
    pairs_table.c.crm_hash,
    pairs_table.c.exchange_hash,
    pairs_table.c.label,
    pairs_table.c.withheld,
)

#: version -> function that lifts a database from that version to the next one.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _add_run_owner_and_pair_label, 2: _add_withheld}


def default_state_url() -> str:
    """``EXSYNC_STATE``, else a SQLite file in the per-user data directory."""
    if url := os.environ.get("EXSYNC_STATE"):
        return url
    return f"sqlite:///{data_dir() / 'state.db'}"


def data_dir() -> Path:
    """``EXSYNC_HOME``, else ``$XDG_DATA_HOME/exsync`` (``~/.local/share/exsync``)."""
    if home := os.environ.get("EXSYNC_HOME"):
        return Path(home)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "exsync"


@dataclass
class User:
    """A CRM user as exsync knows them: whether they sync, and into which mailbox."""

    crm_id: str
    email: str
    name: str = ""
    role: str = ""
    profile: str = ""
    is_admin: bool = False
    enabled: bool = False
    mailbox: str = ""
    needs_attention: str = ""

    @property
    def address(self) -> str:
        """The Exchange mailbox address (the CRM e-mail unless set otherwise)."""
        return self.mailbox or self.email

    @classmethod
    def from_crm(cls, user: CrmUser) -> User:
        """A CRM user as first known to exsync: not yet enabled for sync."""
        return cls(user.id, user.email, user.name, user.role, user.profile, user.is_admin)


@dataclass
class Pair:
    """A CRM record and its Exchange counterpart, with each side's hash at the last sync."""

    crm_id: str
    exchange_id: str
    crm_hash: str
    exchange_hash: str
    id: int | None = None
    label: str = ""  # the record for people ("Ann Lee <ann@example.com>"), as last synced
    withheld: str = ""
    """``side:reason`` while the record of that side may not cross (framework/privacy.py):
    nothing is written either way until it may again; '' for a pair that syncs."""

    @property
    def withheld_side(self) -> str:
        """The side whose record is withheld ('' when none is)."""
        return self.withheld.partition(":")[0]

    @property
    def withheld_reason(self) -> str:
        return self.withheld.partition(":")[2]


@dataclass
class Run:
    """One sync run of one user."""

    id: int
    user_id: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    summary: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    owner: str = ""

    def abandoned(self) -> bool:
        """Still marked running, by a process of this machine that no longer exists (killed,
        crashed). A run of another machine cannot be checked from here and counts as alive."""
        if self.outcome != "running" or not self.owner:
            return False
        host, _, pid = self.owner.rpartition(":")
        return host == socket.gethostname() and pid.isdigit() and not _process_alive(int(pid))


class StateStore:
    """All persistent state, behind one SQLAlchemy engine."""

    def __init__(self, url: str | None = None, *, create: bool = True) -> None:
        """Open the state at ``url`` (default: :func:`default_state_url`); without ``create``, a
        database that does not exist yet, or holds no exsync state, is refused."""
        self.url = url or default_state_url()
        self.create = create
        if not create:
            _require_sqlite_file(self.url)
        self.engine = _create_engine(self.url, create=create)
        try:
            self._prepare()
        except sa.exc.DBAPIError as exc:
            self.engine.dispose()
            raise unreadable_state(self.url, exc) from exc

    # schema -------------------------------------------------------------------------------
    def _prepare(self) -> None:
        # The version is read before any other table is created: a database of a newer release
        # is refused untouched, and migrations run before tables new in this release exist.
        with self.engine.begin() as conn:
            if self.create:
                meta_table.create(conn, checkfirst=True)
            elif not sa.inspect(conn).has_table("meta"):
                raise ConfigurationError(
                    f"The state database {self.safe_url} holds no exsync state.", hint=_NEW_STATE_HINT
                )
            version = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema")).scalar()
            if version is None and not self.create:
                raise ConfigurationError(
                    f"The state database {self.safe_url} holds no exsync state.", hint=_NEW_STATE_HINT
                )
            if version is None:
                metadata.create_all(conn)
                conn.execute(meta_table.insert().values(key="schema", value=str(SCHEMA_VERSION)))
                return
            current = int(version)
            if current > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"The state database {self.safe_url} has schema version {current}, "
                    f"newer than this exsync understands ({SCHEMA_VERSION}).",
                    hint="Upgrade exsync, or point --state at another database.",
                )
            while current < SCHEMA_VERSION:
                MIGRATIONS[current](conn)
                current += 1
            metadata.create_all(conn)
            conn.execute(meta_table.update().where(meta_table.c.key == "schema").values(value=str(current)))

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden."""
        return _safe_url(self.url)

    @property
    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema")).scalar_one())

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # settings -----------------------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        with self.engine.connect() as conn:
            raw = conn.execute(sa.select(settings_table.c.value).where(settings_table.c.key == key)).scalar()
        return default if raw is None else json.loads(raw)

    def all_settings(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(settings_table)).all()
        return {row.key: json.loads(row.value) for row in rows}

    def set_settings(self, values: dict[str, Any]) -> None:
        with self.transaction() as conn:
            for key, value in values.items():
                conn.execute(settings_table.delete().where(settings_table.c.key == key))
                if value is not None:
                    conn.execute(settings_table.insert().values(key=key, value=json.dumps(value)))

    def clear_settings(self) -> None:
        with self.transaction() as conn:
            conn.execute(settings_table.delete())

    # users --------------------------------------------------------------------------------
    def upsert_users(self, users: Iterable[User]) -> None:
        """Insert or refresh users from the CRM; the sync toggle and mailbox are kept."""
        with self.transaction() as conn:
            for user in users:
                values = {
                    "email": user.email,
                    "name": user.name,
                    "role": user.role,
                    "profile": user.profile,
                    "is_admin": user.is_admin,
                }
                updated = conn.execute(users_table.update().where(users_table.c.crm_id == user.crm_id).values(**values))
                if updated.rowcount == 0:
                    conn.execute(
                        users_table.insert().values(
                            crm_id=user.crm_id, enabled=user.enabled, mailbox=user.mailbox, needs_attention="", **values
                        )
                    )

    def users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users_table).order_by(users_table.c.email)).all()
        return [User(**row._asdict()) for row in rows]

    def user(self, key: str) -> User | None:
        """A user by CRM id or e-mail (any case)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(users_table).where(
                    sa.or_(users_table.c.crm_id == key, sa.func.lower(users_table.c.email) == key.lower())
                )
            ).first()
        return User(**row._asdict()) if row else None

    def update_user(self, crm_id: str, **values: Any) -> None:
        with self.transaction() as conn:
            conn.execute(users_table.update().where(users_table.c.crm_id == crm_id).values(**values))

    # pairs --------------------------------------------------------------------------------
    def pairs(self, user_id: str, entity: str) -> list[Pair]:
        t = pairs_table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*_PAIR_COLUMNS).where(t.c.user_id == user_id, t.c.entity == entity)).all()
        return [_pair(r) for r in rows]

    def pairs_touching(
        self, user_id: str, entity: str, crm_ids: Iterable[str], exchange_ids: Iterable[str]
    ) -> list[Pair]:
        """The pairs holding any of these ids: what a run needs, without reading every pair."""
        t = pairs_table
        found: dict[int, Pair] = {}
        for column, ids in ((t.c.crm_id, list(crm_ids)), (t.c.exchange_id, list(exchange_ids))):
            for start in range(0, len(ids), 500):
                query = sa.select(*_PAIR_COLUMNS).where(
                    t.c.user_id == user_id, t.c.entity == entity, column.in_(ids[start : start + 500])
                )
                with self.engine.connect() as conn:
                    for r in conn.execute(query).all():
                        found[r.id] = _pair(r)
        return list(found.values())

    def count_withheld(self, user_id: str | None = None) -> dict[str, int]:
        """Pairs whose record on one side is withheld, per entity (framework/privacy.py)."""
        t = pairs_table
        query = sa.select(t.c.entity, sa.func.count()).where(t.c.withheld != "").group_by(t.c.entity)
        if user_id:
            query = query.where(t.c.user_id == user_id)
        with self.engine.connect() as conn:
            return {str(row[0]): int(row[1]) for row in conn.execute(query).all()}

    def count_pairs(self, user_id: str | None = None) -> dict[str, int]:
        t = pairs_table
        query = sa.select(t.c.entity, sa.func.count()).group_by(t.c.entity)
        if user_id:
            query = query.where(t.c.user_id == user_id)
        with self.engine.connect() as conn:
            return {str(row[0]): int(row[1]) for row in conn.execute(query).all()}

    def save_pairs(self, conn: Connection, user_id: str, entity: str, upserts: list[Pair], removed: list[Pair]) -> None:
        """Write pair changes inside the caller's transaction: a few statements a batch, not one a pair.

        A pair replaces any pair holding either of its ids; within ``upserts`` the last one wins.
        """
        t = pairs_table
        latest: dict[str, Pair] = {}
        taken: dict[str, str] = {}  # exchange id -> crm id of the pair that holds it
        for pair in upserts:
            if pair.exchange_id in taken:
                latest.pop(taken[pair.exchange_id], None)
            latest[pair.crm_id] = pair
            taken[pair.exchange_id] = pair.crm_id
        pairs = list(latest.values())
        doomed = {
            t.c.crm_id: [p.crm_id for p in removed] + [p.crm_id for p in pairs],
            t.c.exchange_id: [p.exchange_id for p in pairs],
        }
        for column, ids in doomed.items():
            for start in range(0, len(ids), 500):
                conn.execute(
                    t.delete().where(t.c.user_id == user_id, t.c.entity == entity, column.in_(ids[start : start + 500]))
                )
        if pairs:
            conn.execute(
                t.insert(),
                [
                    {
                        "user_id": user_id,
                        "entity": entity,
                        "crm_id": p.crm_id,
                        "exchange_id": p.exchange_id,
                        "crm_hash": p.crm_hash,
                        "exchange_hash": p.exchange_hash,
                        "label": p.label[:LABEL_LENGTH],
                        "withheld": p.withheld,
                    }
                    for p in pairs
                ],
            )

    # cursors ------------------------------------------------------------------------------
    def cursor(self, user_id: str, entity: str, side: str) -> str | None:
        t = cursors_table
        with self.engine.connect() as conn:
            value: str | None = conn.execute(
                sa.select(t.c.cursor).where(t.c.user_id == user_id, t.c.entity == entity, t.c.side == side)
            ).scalar()
            return value

    def save_cursor(self, conn: Connection, user_id: str, entity: str, side: str, cursor: str | None) -> None:
        t = cursors_table
        conn.execute(t.delete().where(t.c.user_id == user_id, t.c.entity == entity, t.c.side == side))
        if cursor is not None:
            conn.execute(t.insert().values(user_id=user_id, entity=entity, side=side, cursor=cursor))

    def forget_cursors(self, user_id: str | None = None) -> None:
        with self.transaction() as conn:
            query = cursors_table.delete()
            if user_id:
                query = query.where(cursors_table.c.user_id == user_id)
            conn.execute(query)

    # retries ------------------------------------------------------------------------------
    def retries(self, user_id: str, entity: str, side: str) -> list[tuple[str, dict[str, Any], int]]:
        """Items of ``side`` that an earlier run could not write: (id, item JSON, attempts)."""
        t = retries_table
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.item_id, t.c.item, t.c.attempts).where(
                    t.c.user_id == user_id, t.c.entity == entity, t.c.side == side
                )
            ).all()
        return [(r.item_id, json.loads(r.item), r.attempts) for r in rows]

    def save_retry(
        self, conn: Connection, user_id: str, entity: str, side: str, item_id: str, item: dict[str, Any], error: str
    ) -> None:
        t = retries_table
        key = (t.c.user_id == user_id, t.c.entity == entity, t.c.side == side, t.c.item_id == item_id)
        attempts = conn.execute(sa.select(t.c.attempts).where(*key)).scalar() or 0
        conn.execute(t.delete().where(*key))
        conn.execute(
            t.insert().values(
                user_id=user_id,
                entity=entity,
                side=side,
                item_id=item_id,
                item=json.dumps(item),
                error=error,
                attempts=attempts + 1,
            )
        )

    def clear_retry(self, conn: Connection, user_id: str, entity: str, side: str, item_id: str) -> None:
        t = retries_table
        conn.execute(
            t.delete().where(t.c.user_id == user_id, t.c.entity == entity, t.c.side == side, t.c.item_id == item_id)
        )

    def open_errors(self, user_id: str | None = None) -> list[dict[str, Any]]:
        t = retries_table
        query = sa.select(t.c.user_id, t.c.entity, t.c.side, t.c.item_id, t.c.error, t.c.attempts)
        if user_id:
            query = query.where(t.c.user_id == user_id)
        with self.engine.connect() as conn:
            return [row._asdict() for row in conn.execute(query).all()]

    # runs ---------------------------------------------------------------------------------
    def start_run(self, user_id: str) -> int:
        """A run of ``user_id``, marked running and owned by this process until it finishes."""
        with self.transaction() as conn:
            result = conn.execute(
                runs_table.insert().values(
                    user_id=user_id, started_at=_now(), outcome="running", summary="{}", error="", owner=this_process()
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def running_runs(self) -> list[Run]:
        """Every run still marked running, of any process."""
        return self._runs(sa.select(runs_table).where(runs_table.c.outcome == "running").order_by(runs_table.c.id))

    def interrupt_run(self, run_id: int, error: str) -> bool:
        """Mark a run that stopped without finishing as interrupted; False if it was no longer running."""
        t = runs_table
        with self.transaction() as conn:
            done = conn.execute(
                t.update()
                .where(t.c.id == run_id, t.c.outcome == "running")
                .values(finished_at=_now(), outcome="interrupted", error=error)
            )
        return bool(done.rowcount)

    def finish_run(self, run_id: int, outcome: str, summary: dict[str, Any], error: str = "") -> None:
        with self.transaction() as conn:
            conn.execute(
                runs_table.update()
                .where(runs_table.c.id == run_id)
                .values(finished_at=_now(), outcome=outcome, summary=json.dumps(summary), error=error)
            )

    def runs(self, user_id: str | None = None, limit: int = 20) -> list[Run]:
        t = runs_table
        query = sa.select(t).order_by(t.c.id.desc()).limit(limit)
        if user_id:
            query = query.where(t.c.user_id == user_id)
        return self._runs(query)

    def _runs(self, query: sa.Select[Any]) -> list[Run]:
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Run(
                r.id,
                r.user_id,
                _aware(r.started_at),
                _aware(r.finished_at),
                r.outcome,
                json.loads(r.summary),
                r.error,
                r.owner,
            )
            for r in rows
        ]

    def last_run(self, user_id: str) -> Run | None:
        runs = self.runs(user_id, limit=1)
        return runs[0] if runs else None


def _pair(row: Any) -> Pair:
    return Pair(row.crm_id, row.exchange_id, row.crm_hash, row.exchange_hash, row.id, row.label, row.withheld or "")


def this_process() -> str:
    """``host:pid``: who owns a run while it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


_NEW_STATE_HINT = (
    "Check --state / EXSYNC_STATE; a new state is started by 'exsync crm login' (it may also be "
    "another exsync's, or a backup's)."
)


def unreadable_state(url: str, exc: sa.exc.DBAPIError) -> ConfigurationError:
    """The error for a state database that exists but cannot be read (damaged, not a database, locked)."""
    return ConfigurationError(
        f"The state database {_safe_url(url)} cannot be read: {_reason(exc)}.",
        hint="Restore it from a backup, or point --state at another database; 'exsync crm login' starts a new one.",
    )


def _reason(exc: sa.exc.DBAPIError) -> str:
    """The driver's own first line (no SQL, no parameters: they may hold secrets)."""
    lines = str(exc.orig).strip().splitlines() if exc.orig is not None else []
    return _safe_url(lines[0]) if lines else type(exc).__name__


def _require_sqlite_file(url: str) -> None:
    """Refuse a SQLite URL whose file (or directory) does not exist: SQLite would create it empty."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return  # reported with the URL by _create_engine
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    if not path.parent.is_dir():
        raise ConfigurationError(
            f"The directory {path.parent} of the state database does not exist.", hint=_NEW_STATE_HINT
        )
    if not path.is_file():
        raise ConfigurationError(f"There is no state database at {path}.", hint=_NEW_STATE_HINT)


def _create_engine(url: str, *, create: bool = True) -> Engine:
    # Everything that can fail on a bad URL is inside the try: an unparsable URL (ArgumentError),
    # a bad port (ValueError), a SQLite directory that cannot be created (OSError).
    try:
        parsed = sa.engine.make_url(url)
        if create and parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, future=True)
        if parsed.get_backend_name() == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        with engine.connect():
            pass
    except ImportError as exc:
        raise ConfigurationError(
            f"The database driver for {_safe_url(url)} is not installed ({exc.name}).",
            hint="Install it (e.g. 'pip install psycopg2-binary' and use postgresql+psycopg2://...).",
        ) from exc
    except sa.exc.DatabaseError as exc:
        if not isinstance(exc, sa.exc.OperationalError):  # there, but not a database, or damaged
            raise unreadable_state(url, exc) from exc
        raise ConfigurationError(
            f"Cannot open the state database {_safe_url(url)}: {_reason(exc)}",
            hint="Check --state / EXSYNC_STATE (any SQLAlchemy URL, e.g. sqlite:///path/state.db).",
        ) from exc
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, sa.exc.DBAPIError, ValueError, OSError) as exc:
        raise ConfigurationError(
            f"Cannot open the state database {_safe_url(url)}: {exc.__class__.__name__}",
            hint="Check --state / EXSYNC_STATE (any SQLAlchemy URL, e.g. sqlite:///path/state.db).",
        ) from exc
    return engine


def _safe_url(url: str) -> str:
    """``url`` with its password hidden, even when SQLAlchemy cannot parse it."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return re.sub(r"(://[^:/?#@]*:)[^/?#]*@", r"\1***@", url)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> Any:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment
