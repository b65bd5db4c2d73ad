"""An org synced over Graph or EWS, driven through the CLI, and helpers to edit and compare its two sides.

:class:`Org` wraps a :class:`~fakes.harness.World`: ``org.sync()`` runs ``exsync --json sync``,
``org.engine()`` gives a :class:`~framework.engine.Engine` on the same state with an injected
sleep (so throttling costs no real time), and the ``crm_*`` / ``box_*`` helpers edit the fake
models directly, as a user of either service would.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fakes.cloud import FakeCloud
from fakes.harness import ADMIN, World, address
from fakes.tenant import Mailbox
from framework.context import Context
from framework.engine import Engine, RunReport
from framework.settings import Settings
from framework.state import Pair

Contact = tuple[str, str, str, str]  # (first, last, e-mail, job title), as both sides can hold it
STANDARD = "sam.standard"


@dataclass
class Org:
    """One org synced over ``kind`` ("graph" or "ews") with the admin (and optionally more users) enabled."""

    world: World
    kind: str
    sleeps: list[float] = field(default_factory=list)

    # set-up --------------------------------------------------------------------------------
    def set_up(
        self, *, users: tuple[str, ...] = (ADMIN,), entities: tuple[str, ...] = ("contacts",), per_user: bool = False
    ) -> Org:
        """Install, authenticate (org-wide, or each user with their own credentials), enable, choose entities."""
        self.ok(self.world.run(ADMIN, "exsync install --scope all --accept-terms"))
        if not per_user:
            self.ok(self.world.ews_impersonation() if self.kind == "ews" else self.world.graph_client_credentials())
        elif self.kind == "ews":
            self.ok(self.world.ews_individual())
            for user in users:
                self.ok(self.world.ews_own_credentials(user))
        else:
            for user in users:
                self.ok(self.world.graph_auth_code(user))
        self.ok(self.world.run(ADMIN, "exsync users enable " + " ".join(address(u) for u in users)))
        self.entities(*entities)
        return self

    def entities(self, *wanted: str) -> None:
        flags = " ".join(
            f"--enable {e}" if e in wanted else f"--disable {e}" for e in ("contacts", "tasks", "events", "mails")
        )
        self.ok(self.world.run(ADMIN, f"exsync settings set {flags}"))

    def settings(self, **changes: Any) -> None:
        state = self.world.state
        settings = Settings.load(state)
        for key, value in changes.items():
            setattr(settings, key, value)
        settings.save(state)

    @staticmethod
    def ok(result: Any) -> Any:
        assert result.exit_code == 0, result.output
        return result

    @property
    def cloud(self) -> FakeCloud:
        return self.world.cloud

    # running -------------------------------------------------------------------------------
    def sync(self, *options: str, expect_ok: bool = True) -> list[dict[str, Any]]:
        """``exsync --json sync``; the per-user reports."""
        result = self.world.run(ADMIN, "exsync --json sync " + " ".join(shlex.quote(o) for o in options))
        if expect_ok:
            assert result.exit_code == 0, result.output
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def context(self) -> Context:
        return Context(self.world.state_url, acting_as=address(ADMIN), ca_bundle=str(self.cloud.ca.bundle_path))

    def engine(self, sleep: Callable[[float], None] | None = None) -> Engine:
        """An engine planning 7 records at a time, so that runs cross many chunk boundaries."""
        return Engine(self.context(), sleep=sleep or self.sleeps.append, chunk=7)

    def run(self, *, force: bool = False, users: tuple[str, ...] = (ADMIN,)) -> list[RunReport]:
        """A run through the engine, with sleeps recorded instead of slept."""
        engine = self.engine()
        chosen = [engine.ctx.state.user(address(u)) for u in users]
        return engine.run([u for u in chosen if u is not None], force=force)

    def pairs(self, entity: str = "contacts", user: str = ADMIN) -> list[Pair]:
        return self.world.state.pairs(self.crm_user(user).id, entity)

    # the CRM -------------------------------------------------------------------------------
    def crm_user(self, user: str = ADMIN) -> Any:
        return next(u for u in self.cloud.crm.users() if u.email == address(user))

    def crm_add(self, last: str, first: str = "", email: str = "", title: str = "", user: str = ADMIN) -> str:
        data = {"First_Name": first or None, "Last_Name": last, "Email": email or None, "Title": title or None}
        return str(self.cloud.crm.insert("Contacts", data, self.crm_user(user))["id"])

    def crm_update(self, record_id: str, patch: dict[str, Any]) -> None:
        self.cloud.crm.update("Contacts", record_id, patch, self.crm_user())

    def crm_delete(self, record_id: str) -> None:
        self.cloud.crm.delete("Contacts", record_id, self.crm_user())

    def crm_records(self, module: str = "Contacts", user: str = ADMIN) -> list[dict[str, Any]]:
        owner = self.crm_user(user).id
        records, page = [], 1
        while True:
            found = self.cloud.crm.list_records(module, page=page, per_page=200)
            records += [r for r in found.records if r["Owner"]["id"] == owner]
            if not found.more:
                return records
            page += 1

    def crm_contacts(self, user: str = ADMIN) -> Counter[Contact]:
        return Counter(
            (r.get("First_Name") or "", r.get("Last_Name") or "", (r.get("Email") or "").lower(), r.get("Title") or "")
            for r in self.crm_records(user=user)
        )

    # the mailbox ---------------------------------------------------------------------------
    def box(self, user: str = ADMIN) -> Mailbox:
        return self.cloud.tenant.mailbox(address(user))

    def box_add(self, last: str, first: str = "", email: str = "", title: str = "", user: str = ADMIN) -> str:
        data: dict[str, Any] = {"surname": last, "displayName": f"{first} {last}".strip()}
        if first:
            data["givenName"] = first
        if email:
            data["emailAddresses"] = [{"address": email, "name": last}]
        if title:
            data["jobTitle"] = title
        return self.cloud.tenant.create(self.box(user), "contacts", data).id

    def box_update(self, item_id: str, patch: dict[str, Any]) -> None:
        self.cloud.tenant.update(self.box(), "contacts", item_id, patch)

    def box_delete(self, item_id: str) -> None:
        self.cloud.tenant.delete(self.box(), "contacts", item_id)

    def box_items(self, folder: str = "contacts", user: str = ADMIN) -> list[Any]:
        return self.cloud.tenant.items(self.box(user), folder)

    def box_contacts(self, user: str = ADMIN) -> Counter[Contact]:
        return Counter(
            (
                d.get("givenName") or "",
                d.get("surname") or "",
                ((d.get("emailAddresses") or [{}])[0].get("address") or "").lower(),
                d.get("jobTitle") or "",
            )
            for d in (i.data for i in self.box_items(user=user))
        )

    # events --------------------------------------------------------------------------------
    def box_event(self, subject: str, days: float, hours: float = 1.0) -> str:
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=days)
        data = {
            "subject": subject,
            "start": _graph_time(start),
            "end": _graph_time(start + timedelta(hours=hours)),
            "isAllDay": False,
            "iCalUId": f"uid-{subject.lower().replace(' ', '-')}",
            "type": "singleInstance",
        }
        return self.cloud.tenant.create(self.box(), "calendar", data).id

    def crm_event(self, title: str, days: float, hours: float = 1.0) -> str:
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=days)
        data = {
            "Event_Title": title,
            "Start_DateTime": start.isoformat(timespec="seconds"),
            "End_DateTime": (start + timedelta(hours=hours)).isoformat(timespec="seconds"),
        }
        return str(self.cloud.crm.insert("Events", data, self.crm_user())["id"])

    def event_subjects(self) -> tuple[Counter[str], Counter[str]]:
        crm = Counter(r["Event_Title"] for r in self.crm_records("Events"))
        box = Counter(i.data.get("subject") for i in self.box_items("calendar"))
        return crm, box

    # both ----------------------------------------------------------------------------------
    def agree(self) -> Counter[Contact]:
        """Assert both sides hold the same contacts (no twins on either); return them."""
        crm, box = self.crm_contacts(), self.box_contacts()
        assert crm == box, f"CRM only: {crm - box}; mailbox only: {box - crm}"
        return crm

    # reports -------------------------------------------------------------------------------
    @staticmethod
    def wrote_nothing(reports: list[dict[str, Any]]) -> bool:
        """Whether no side of any entity of any user was created, updated or deleted in."""
        return all(
            counts[k] == 0
            for report in reports
            for entity in report["entities"].values()
            for counts in (entity["crm"], entity["exchange"])
            for k in ("created", "updated", "deleted")
        )

    @staticmethod
    def written(reports: list[dict[str, Any]], entity: str = "contacts") -> dict[str, dict[str, int]]:
        """{side: {created, updated, deleted}} of ``entity`` summed over users."""
        out = {s: {"created": 0, "updated": 0, "deleted": 0} for s in ("crm", "exchange")}
        for report in reports:
            found = report["entities"].get(entity)
            if found:
                for side in out:
                    for key in out[side]:
                        out[side][key] += found[side][key]
        return out


def _graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


@pytest.fixture(params=["graph", "ews"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def org(world: World, kind: str) -> Org:
    """A fresh org synced over Graph (client credentials) or EWS (impersonation): contacts only."""
    return Org(world, kind).set_up()


@pytest.fixture
def two_users(world: World, kind: str) -> Org:
    """The admin and a standard user, both enabled."""
    return Org(world, kind).set_up(users=(ADMIN, STANDARD))


@pytest.fixture
def own_credentials(world: World, kind: str) -> Org:
    """The admin and a standard user, each with their own credentials (Graph auth-code, EWS individual)."""
    return Org(world, kind).set_up(users=(ADMIN, STANDARD), per_user=True)


@pytest.fixture
def fresh_org(cloud: FakeCloud, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Org]:
    """Build a fresh org (fresh fakes, fresh state database) inside a test, e.g. once per hypothesis example."""

    def make(kind: str, **set_up: Any) -> Org:
        cloud.reset()
        return Org(World(cloud, Path(tmp_path_factory.mktemp("org"))), kind).set_up(**set_up)

    return make


@pytest.fixture
def new_world(cloud: FakeCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], World]]:
    """Another exsync installation (fresh state database) on the same fakes, without resetting them."""

    def make() -> World:
        return World(cloud, Path(tmp_path_factory.mktemp("reinstalled")))

    yield make
