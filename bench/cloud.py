"""The fakes in a child process, driven over a pipe.

The benchmarks run :class:`~fakes.cloud.FakeCloud` in its own process, as ``exsync fakes
serve`` would be: the sync and the fakes then use one core each instead of sharing one GIL,
and tracemalloc in the benchmark process measures the sync's memory only, not the mailbox
the fake holds. Seeding, counting requests and making changes happen in the child.
"""

from __future__ import annotations

import multiprocessing
import random
import resource
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

ENTITY_FOLDERS = {"contacts": "contacts", "events": "calendar", "tasks": "tasks"}
CRM_MODULES = {"contacts": "Contacts", "events": "Events", "tasks": "Tasks"}


class RemoteCloud:
    """A :class:`FakeCloud` in a child process; :meth:`call` runs one of :data:`COMMANDS` there."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), daemon=True, name="exsync-fakes")
        self._process.start()
        self.info: dict[str, Any] = self.call("describe")

    def call(self, command: str, *args: Any) -> Any:
        self._conn.send((command, args))
        while not self._conn.poll(0.5):
            if not self._process.is_alive():
                raise RuntimeError(f"the fake cloud process died (exit code {self._process.exitcode})")
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"fake cloud command {command!r} failed:\n{value}")
        return value

    def requests(self) -> dict[str, int]:
        """Requests each server has answered so far (crm, login, graph, ews)."""
        counts: dict[str, int] = self.call("requests")
        return counts

    def reset(self) -> None:
        """Fresh, empty fakes on the same ports."""
        self.info = self.call("reset")

    def close(self) -> None:
        try:
            self.call("stop")
        finally:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.terminate()

    def __enter__(self) -> RemoteCloud:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the child --------------------------------------------------------------------------------
def _serve(conn: Connection) -> None:
    from fakes.cloud import FakeCloud

    cloud = FakeCloud().start()
    try:
        while True:
            command, args = conn.recv()
            if command == "stop":
                conn.send((True, None))
                return
            try:
                conn.send((True, COMMANDS[command](cloud, *args)))
            except Exception:  # report to the parent, keep serving
                conn.send((False, traceback.format_exc()))
    finally:
        cloud.stop()


def _describe(cloud: Any) -> dict[str, Any]:
    admin = cloud.crm.admin
    return {
        "ca_bundle": str(cloud.ca.bundle_path),
        "crm_url": cloud.crm_url,
        "authority_url": cloud.authority_url,
        "graph_url": cloud.graph_url,
        "ews_url": cloud.ews_url,
        "admin": admin.email,
        "admin_token": cloud.crm_refresh_token(admin.email),
    }


def _reset(cloud: Any) -> dict[str, Any]:
    cloud.reset()
    for server in cloud.servers.values():
        server.requests = 0
    return _describe(cloud)


def _requests(cloud: Any) -> dict[str, int]:
    return {name: server.requests for name, server in cloud.servers.items()}


def _cpu(cloud: Any) -> float:
    """CPU seconds this process (the fakes) has used, on every thread."""
    return time.process_time()


def _latency(cloud: Any, seconds: float) -> None:
    """Every server answers each request ``seconds`` late (0: at once), as a distant service would."""
    from fakes.server import FaultRule

    for server in cloud.servers.values():
        server.faults.clear()
        if seconds:
            server.faults.add(FaultRule(latency=seconds))


def _max_rss_mb(cloud: Any) -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Seeding:
    """Faker pools built once per child process (building them is the slow part of seeding)."""

    crm: Any = None
    pools: Any = None

    @classmethod
    def crm_seeder(cls, cloud: Any, seed: int) -> Any:
        from fakes.crm.seed import _Seeder

        if cls.crm is None or cls.crm.org is not cloud.crm:
            cls.crm = _Seeder(cloud.crm, seed)
        return cls.crm

    @classmethod
    def mailbox_maker(cls, cloud: Any, email: str, seed: int) -> Any:
        from fakes.graph.seed import _Maker, _Pools

        if cls.pools is None:
            cls.pools = _Pools.build(seed)
        box = cloud.tenant.mailbox(email)
        return _Maker(random.Random(seed), cls.pools, box, datetime.now(UTC).replace(microsecond=0))


def _seed_user(cloud: Any, email: str, size: int, seed: int = 1) -> dict[str, int]:
    """``size`` contacts, tasks and events owned by ``email`` in the CRM; ``size`` contacts,
    events, tasks and mails in their mailbox."""
    counts = {"crm": 0, "exchange": 0}
    if size <= 0:
        return counts
    org = cloud.crm
    owner = next(u for u in org.users() if u.email == email)
    seeder = _Seeding.crm_seeder(cloud, seed)
    seeder.owners = [owner]
    accounts = seeder.accounts(max(3, size // 20))
    contacts = seeder.contacts(size, accounts)
    seeder.tasks(size)
    seeder.events(size, contacts)
    counts["crm"] = 3 * size
    tenant = cloud.tenant
    maker = _Seeding.mailbox_maker(cloud, email, seed)
    box = maker.box
    for n in range(size):
        tenant.create(box, "contacts", maker.contact(n))
        tenant.create(box, "calendar", maker.event(n))
        tenant.create(box, "tasks", maker.task())
    for folder, received, data in sorted((maker.message(n) for n in range(size)), key=lambda m: m[1]):
        tenant.create(box, folder, data, when=received)
    counts["exchange"] = 4 * size
    return counts


def _change(cloud: Any, email: str, k: int, seed: int = 7) -> int:
    """``k`` changes per entity in ``email``'s data: contacts, tasks and events updated, half in
    the CRM and half in the mailbox; ``k`` new mails in the inbox. Returns the changes made."""
    if k <= 0:
        return 0
    rng = random.Random(seed)
    org, tenant = cloud.crm, cloud.tenant
    owner = next(u for u in org.users() if u.email == email)
    box = tenant.mailbox(email)
    made = 0
    stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")
    for entity, module in CRM_MODULES.items():
        in_crm = (k + 1) // 2
        owned = [r for r in org.list_records(module, per_page=10**9).records if r["Owner"]["id"] == owner.id]
        for record in rng.sample(owned, min(in_crm, len(owned))):
            field = {"contacts": "Title", "tasks": "Description", "events": "Description"}[entity]
            org.update(module, record["id"], {field: f"changed {stamp} {made}"}, owner)
            made += 1
        items = tenant.items(box, ENTITY_FOLDERS[entity])
        for item in rng.sample(items, min(k - in_crm, len(items))):
            key = {"contacts": "jobTitle", "tasks": "title", "events": "subject"}[entity]
            tenant.update(box, item.folder, item.id, {key: f"changed {stamp} {made}"})
            made += 1
    maker = _Seeding.mailbox_maker(cloud, email, seed)
    for n in range(k):
        tenant.create(box, "inbox", _fresh_mail(maker, n))
        made += 1
    return made


def _fresh_mail(maker: Any, n: int) -> dict[str, Any]:
    """A new incoming mail, sent and received now (inside the window)."""
    _folder, _received, data = maker.message(3 * n + 1)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {**data, "sentDateTime": now, "receivedDateTime": now}


def _add_users(cloud: Any, count: int) -> list[str]:
    """``count`` more standard CRM users, each with a mailbox of the same address."""
    from fakes.cloud import mailbox_password

    emails = []
    for n in range(count):
        email = f"bench.user{n:04d}@{cloud.tenant.domain}"
        user = cloud.crm.add_user(f"Bench User{n:04d}", email, role="Manager", profile="Standard")
        cloud.tenant.add_user(user.email, user.full_name, mailbox_password(user.email))
        emails.append(user.email)
    return emails


def _new_records(cloud: Any, emails: list[str], seed: int = 11) -> int:
    """For each user: a new CRM contact, and a new contact, event and mail in their mailbox."""
    made = 0
    seeder = _Seeding.crm_seeder(cloud, seed)
    users = {u.email: u for u in cloud.crm.users()}
    seeder.owners = [cloud.crm.admin]
    accounts = seeder.accounts(3)
    for index, email in enumerate(emails):
        seeder.owners = [users[email]]
        seeder.contacts(1, accounts)
        maker = _Seeding.mailbox_maker(cloud, email, seed + index)
        cloud.tenant.create(maker.box, "contacts", maker.contact(1))
        cloud.tenant.create(maker.box, "calendar", maker.event(5))
        cloud.tenant.create(maker.box, "inbox", _fresh_mail(maker, index))
        made += 4
    return made


COMMANDS: dict[str, Callable[..., Any]] = {
    "describe": _describe,
    "reset": _reset,
    "requests": _requests,
    "max_rss_mb": _max_rss_mb,
    "cpu": _cpu,
    "seed_user": _seed_user,
    "change": _change,
    "add_users": _add_users,
    "new_records": _new_records,
    "latency": _latency,
}
