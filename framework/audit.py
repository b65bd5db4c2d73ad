"""The audit log: every operation done through exsync, kept 30 days, secrets never included."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from framework.state import StateStore, audit_table
from framework.vault import REDACTOR

RETENTION = timedelta(days=30)
OUTCOMES = ("ok", "failed", "refused", "skipped", "interrupted")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditEvent:
    """One audit entry."""

    action: str
    outcome: str
    actor: str = ""
    user_id: str = ""
    entity: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: int | None = None


class AuditLog:
    """Append-only; entries older than :data:`RETENTION` are pruned as new ones arrive."""

    def __init__(self, state: StateStore, observers: Any = None) -> None:
        self._state = state
        self._observers = observers  # the ``exsync_audit_event`` hook caller
        self._pruned_at: datetime | None = None

    def record(
        self,
        action: str,
        outcome: str,
        *,
        actor: str = "",
        user_id: str = "",
        entity: str = "",
        **detail: Any,
    ) -> AuditEvent:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {outcome!r}")
        text = json.dumps(_scrub(detail), sort_keys=True)
        event = AuditEvent(action, outcome, actor, user_id, entity, json.loads(text))
        with self._state.transaction() as conn:
            result = conn.execute(
                audit_table.insert().values(
                    at=event.at,
                    actor=actor,
                    user_id=user_id,
                    entity=entity,
                    action=action,
                    outcome=outcome,
                    detail=text,
                )
            )
            self._prune(conn, event.at)
        new_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        stored = dataclasses.replace(event, id=new_id)
        self._notify(stored)
        return stored

    def query(
        self,
        *,
        since: datetime | None = None,
        user_id: str | None = None,
        entity: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEvent]:
        t = audit_table
        query = sa.select(t).order_by(t.c.id.desc()).limit(limit)
        for column, value in (
            (t.c.user_id, user_id),
            (t.c.entity, entity),
            (t.c.action, action),
            (t.c.outcome, outcome),
        ):
            if value:
                query = query.where(column == value)
        if since:
            query = query.where(t.c.at >= _utc(since))
        with self._state.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            AuditEvent(
                r.action, r.outcome, r.actor, r.user_id, r.entity, json.loads(r.detail or "{}"), _aware(r.at), r.id
            )
            for r in rows
        ]

    def prune(self, now: datetime | None = None) -> int:
        """Delete entries older than the retention period; returns how many."""
        with self._state.transaction() as conn:
            return self._prune(conn, _utc(now or datetime.now(UTC)), force=True)

    def _prune(self, conn: sa.Connection, now: datetime, force: bool = False) -> int:
        if not force and self._pruned_at and now - self._pruned_at < timedelta(hours=1):
            return 0
        self._pruned_at = now
        result = conn.execute(audit_table.delete().where(audit_table.c.at < now - RETENTION))
        return int(result.rowcount or 0)

    def _notify(self, event: AuditEvent) -> None:
        if self._observers is None:
            return
        # Each observer on its own: through the hook caller, the first one that raised would
        # keep every later one from seeing the event.
        impls = getattr(self._observers, "get_hookimpls", lambda: None)()
        if impls is None or any(impl.hookwrapper or impl.wrapper for impl in impls):
            observers = [lambda: self._observers(event=event)]
        else:
            observers = [functools.partial(impl.function, **dict.fromkeys(impl.argnames, event)) for impl in impls]
        for observer in reversed(observers):  # pluggy's order: the last registered first
            try:
                observer()
            except Exception:
                log.exception("an exsync_audit_event observer failed")


def _scrub(value: Any) -> Any:
    """``value`` made JSON-ready with every known secret blanked.

    Strings are redacted before serialising: once in JSON, a secret holding a quote, a
    backslash or a non-ASCII character is escaped and would no longer match.
    """
    if isinstance(value, str):
        return REDACTOR(value)
    if isinstance(value, dict):
        return {REDACTOR(str(k)): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return REDACTOR(str(value))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC (naive means UTC): SQLite stores the wall time and drops the offset."""
    return _aware(moment).astimezone(UTC)
