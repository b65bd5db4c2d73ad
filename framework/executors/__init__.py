"""Where a sweep's per-user jobs run: in this process (the default), or on Celery workers.

``in-process`` runs users in threads of the ``exsync sync`` process (:class:`framework.engine.Engine`).
``celery`` enqueues one job per user on a broker (RabbitMQ, or Redis) for ``exsync worker``
processes on any machine, which share the state on PostgreSQL (:mod:`framework.executors.jobs`
keeps the sweeps, the per-user locks and what the jobs of a sweep share).
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from framework.errors import ConfigurationError

if TYPE_CHECKING:
    from framework.context import Context

EXECUTORS = ("in-process", "celery")
LIMITER_SECRET = "executor/limiter"
SHARED_BACKENDS = ("postgresql",)


def require_shared_state(url: str) -> None:
    """Refuse a state database that workers on other machines cannot share (SQLite)."""
    try:
        backend = sa.engine.make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        backend = url.split(":", 1)[0]
    if backend not in SHARED_BACKENDS:
        raise ConfigurationError(
            f"The Celery executor needs the state on PostgreSQL; this state is on {backend}.",
            hint="Point --state (or EXSYNC_STATE) at postgresql+psycopg2://user@host/db on every machine, "
            "or keep the in-process executor ('exsync settings set --executor in-process').",
        )


def executor_changes(ctx: Context, executor: str | None, broker: str | None, limiter: str | None) -> dict[str, Any]:
    """The settings ``exsync settings set --executor/--broker/--limiter`` changes, checked: the
    Celery executor needs PostgreSQL and a broker that answers, a limiter a Redis that answers.
    The URLs go to the vault (they may hold passwords)."""
    changes: dict[str, Any] = {}
    if executor:
        changes["executor"] = executor
    if (executor or ctx.settings.executor) == "celery":
        require_shared_state(ctx.state.url)
    workers = celery_executor()
    if broker:
        workers.check_broker(broker)
        ctx.vault.put(workers.BROKER_SECRET, broker)
        changes["broker"] = workers.safe_broker(broker)
    if executor == "celery":
        workers.broker_url(ctx)  # refuses, with a hint, when no broker is set
    if limiter:
        changes["limiter"] = _check_limiter(limiter)
        ctx.vault.put(LIMITER_SECRET, limiter)
    return changes


def _check_limiter(url: str) -> str:
    """``url`` with its password hidden, once its Redis has answered."""
    from framework.executors.limiter import SharedLimiter

    safe = celery_executor().safe_broker(url)
    try:
        SharedLimiter(url).redis.ping()
    except ConfigurationError:
        raise
    except Exception as exc:  # the redis client's own errors, a bad URL
        raise ConfigurationError(
            f"Cannot reach the limiter's Redis {safe}: {exc.__class__.__name__}",
            hint="Check the URL (redis://[:password@]host:6379/0) and that Redis runs.",
        ) from None
    return str(safe)


def celery_executor() -> ModuleType:
    """:mod:`framework.executors.workers`, imported when used: Celery is the optional 'workers' extra."""
    try:
        from framework.executors import workers
    except ImportError as exc:
        raise ConfigurationError(
            f"The celery executor needs {exc.name}, which is not installed.",
            hint="Install the workers extra: pip install 'exsync[workers]'.",
        ) from None
    return workers
