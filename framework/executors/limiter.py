"""A request limiter every worker shares, on Redis: Microsoft Graph's limits hold across machines.

Microsoft Graph's Outlook limits (learn.microsoft.com/graph/throttling-limits, "Outlook
service limits"; and the global limit of the same page) are per app: at most 4 concurrent
requests to one mailbox, 10,000 requests to one mailbox in 10 minutes, and 130,000 requests
in 10 seconds over all mailboxes. Each worker process keeps to them only with the others'
count, so the count is in Redis:

- the requests in flight to a mailbox are a sorted set of leases (a lease a process died
  holding expires after :data:`LEASE` seconds), taken by a Lua script only while fewer than
  the limit are held;
- each budget is a counter per fixed window, which a request (a ``$batch`` counts each of its
  requests) spends before it is sent; over budget, it waits for the next window.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from framework.errors import ConfigurationError, TransientError
from framework.executors import LIMITER_SECRET

LIMITER_ENV = "EXSYNC_LIMITER"
LEASE = 120.0  # seconds after which a slot its holder never gave back is free again
POLL = 0.02  # seconds between tries for a slot

_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[4])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
  redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[4]))
  return 1
end
return 0
"""
_SPEND = """
local spent = redis.call('INCRBY', KEYS[1], ARGV[1])
if spent == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
if spent > tonumber(ARGV[2]) then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return 0
end
return 1
"""


@dataclass(frozen=True)
class Budget:
    """At most ``requests`` in each window of ``seconds``."""

    requests: int
    seconds: int


@dataclass(frozen=True)
class ServiceLimits:
    """One service's limits per app: requests in flight to a mailbox, and budgets."""

    concurrent_per_mailbox: int
    per_mailbox: Budget
    per_app: Budget


#: Microsoft Graph, Outlook resources (mail, calendar, contacts, To Do), per app ID.
GRAPH = ServiceLimits(concurrent_per_mailbox=4, per_mailbox=Budget(10_000, 600), per_app=Budget(130_000, 10))


class SharedLimiter:
    """Slots and budgets in the Redis at ``url``, shared by every process that uses it."""

    def __init__(
        self, url: str, *, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time
    ):
        try:
            import redis
        except ImportError as exc:
            raise ConfigurationError(
                "The shared limiter needs the redis client.", hint="pip install 'exsync[workers]'."
            ) from exc
        self.redis: Any = redis.Redis.from_url(url)
        self._take = self.redis.register_script(_TAKE)
        self._spend = self.redis.register_script(_SPEND)
        self.sleep, self.clock = sleep, clock

    @contextmanager
    def request(self, limits: ServiceLimits, app: str, mailbox: str, cost: int = 1) -> Iterator[None]:
        """Wait for the budgets and a slot of ``mailbox``, and hold the slot while the block runs.

        A Redis that cannot be reached is a :class:`TransientError`: the request is tried again later.
        """
        key, lease = f"exsync:inflight:{app}:{mailbox.lower()}", uuid.uuid4().hex
        with self._reaching():
            self.spend(f"exsync:budget:{app}", limits.per_app, cost)
            self.spend(f"exsync:budget:{app}:{mailbox.lower()}", limits.per_mailbox, cost)
            while not self._take(keys=[key], args=[self.clock(), limits.concurrent_per_mailbox, lease, LEASE]):
                self.sleep(POLL)
        try:
            yield
        finally:
            with self._reaching():
                self.redis.zrem(key, lease)

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        import redis

        try:
            yield
        except redis.RedisError as exc:
            raise TransientError(f"The shared limiter's Redis could not be reached: {exc.__class__.__name__}") from exc

    def spend(self, name: str, budget: Budget, cost: int) -> None:
        """Spend ``cost`` requests of the budget's current window, waiting for the next while it is spent."""
        cost = min(cost, budget.requests)
        while True:
            now = self.clock()
            window = int(now // budget.seconds)
            if self._spend(keys=[f"{name}:{window}"], args=[cost, budget.requests, budget.seconds * 2]):
                return
            self.sleep((window + 1) * budget.seconds - now)

    def in_flight(self, app: str, mailbox: str) -> int:
        """How many slots of ``mailbox`` are held now."""
        return int(self.redis.zcard(f"exsync:inflight:{app}:{mailbox.lower()}"))


def limiter_url(vault_get: Callable[[str], str | None]) -> str | None:
    """``EXSYNC_LIMITER``, else the URL stored by ``exsync settings set --limiter`` (None: no shared limiter)."""
    return os.environ.get(LIMITER_ENV) or vault_get(LIMITER_SECRET)
