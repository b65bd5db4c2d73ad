"""Fixtures of the entity tests: an org synced over EWS or Graph, and helpers that put data on
either side (the tenant's Graph-shaped items, the fake CRM's Zoho records) and look at it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fakes.cloud import Options
from fakes.harness import ADMIN, World, address
from framework.state import cursors_table, pairs_table, retries_table

NOW = datetime.now(UTC).replace(microsecond=0)
OLD = timedelta(days=200)  # well beyond the six-month window
EXCHANGES = ("ews", "graph")  # graph: the authorization-code flow, which carries every entity
FOLDER_OF = {"tasks": "tasks", "events": "calendar", "mails": "inbox", "contacts": "contacts"}


def graph_time(moment: datetime, zone: str = "UTC") -> dict[str, str]:
    """A Graph dateTimeTimeZone: ``moment`` as wall time in ``zone`` (a naive ``moment`` is taken as is)."""
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": zone}


def graph_date(day: date) -> dict[str, str]:
    return graph_time(datetime(day.year, day.month, day.day))


def instant(when: dict[str, str]) -> datetime:
    """A UTC Graph dateTimeTimeZone (as the fake stores it after a write) as an aware datetime."""
    assert when["timeZone"] == "UTC", when
    return datetime.fromisoformat(when["dateTime"][:19]).replace(tzinfo=UTC)


@dataclass
class Org:
    """An installed org whose admin syncs over ``exchange``; helpers for both sides."""

    world: World
    exchange: str

    # running ------------------------------------------------------------------------------------
    def sync(self, *args: str) -> dict[str, Any]:
        """Run ``exsync --json sync``; the admin's run report (entities -> counts, errors...)."""
        result = self.world.run(ADMIN, " ".join(["exsync --json sync", *args]))
        assert result.exit_code in (0, 1), result.output
        (report,) = json.loads(result.stdout)
        assert report["outcome"] in ("ok", "partial"), report
        return dict(report)

    def forget_state(self) -> None:
        """Lose what exsync knew: every pair, cursor and pending retry."""
        with self.world.state.transaction() as conn:
            for table in (pairs_table, cursors_table, retries_table):
                conn.execute(table.delete())

    def only(self, *entities: str) -> None:
        """Sync only these entities."""
        wanted = set(entities)
        enable = " ".join(f"--enable {e}" for e in sorted(wanted))
        disable = " ".join(f"--disable {e}" for e in ("contacts", "tasks", "events", "mails") if e not in wanted)
        result = self.world.run(ADMIN, f"exsync settings set {enable} {disable}")
        assert result.exit_code == 0, result.output

    # the mailbox ----------------------------------------------------------------------------------
    @property
    def box(self) -> Any:
        return self.world.cloud.tenant.mailbox(address(ADMIN))

    def put(self, folder: str, data: dict[str, Any]) -> str:
        return str(self.world.cloud.tenant.create(self.box, folder, data).id)

    def patch(self, folder: str, item_id: str, patch: dict[str, Any]) -> None:
        self.world.cloud.tenant.update(self.box, folder, item_id, patch)

    def items(self, folder: str) -> list[dict[str, Any]]:
        return [{**i.data, "id": i.id} for i in self.world.cloud.tenant.items(self.box, folder)]

    def item(self, folder: str, key: str, value: Any) -> dict[str, Any]:
        (found,) = [i for i in self.items(folder) if i.get(key) == value]
        return found

    def put_task(self, title: str, due: date | None, **extra: Any) -> str:
        data: dict[str, Any] = {"title": title, "status": "notStarted", "importance": "normal", **extra}
        if due is not None:
            data["dueDateTime"] = graph_date(due)
        return self.put("tasks", data)

    def put_event(self, subject: str, start: datetime, end: datetime, zone: str = "UTC", **extra: Any) -> str:
        data = {
            "subject": subject,
            "start": graph_time(start, zone),
            "end": graph_time(end, zone),
            "isAllDay": False,
            "iCalUId": f"uid-{subject.replace(' ', '-').lower()}-{start:%Y%m%d%H%M}",
            **extra,
        }
        return self.put("calendar", data)

    def put_mail(
        self,
        subject: str,
        sender: str,
        to: list[str],
        *,
        folder: str = "inbox",
        cc: tuple[str, ...] = (),
        sent: datetime | None = None,
        message_id: str | None = None,
        body: str = "",
        attachments: tuple[tuple[str, int], ...] = (),
    ) -> str:
        sent = sent or NOW - timedelta(hours=1)
        stamp = sent.strftime("%Y-%m-%dT%H:%M:%SZ")
        data: dict[str, Any] = {
            "subject": subject,
            "internetMessageId": message_id or f"<{subject.replace(' ', '.').lower()}@example.com>",
            "body": {"contentType": "text", "content": body or f"About {subject}"},
            "from": {"emailAddress": {"address": sender, "name": sender}},
            "toRecipients": [{"emailAddress": {"address": a, "name": a}} for a in to],
            "ccRecipients": [{"emailAddress": {"address": a, "name": a}} for a in cc],
            "sentDateTime": stamp,
            "receivedDateTime": stamp,
            "isDraft": False,
            "hasAttachments": bool(attachments),
            "attachments": [
                {"name": name, "size": size, "contentType": "application/octet-stream"} for name, size in attachments
            ],
        }
        return self.put(folder, data)

    # the CRM --------------------------------------------------------------------------------------
    @property
    def crm(self) -> Any:
        return self.world.cloud.crm

    @property
    def owner(self) -> Any:
        return next(u for u in self.crm.users() if u.email == address(ADMIN))

    def insert(self, module: str, data: dict[str, Any]) -> str:
        return str(self.crm.insert(module, data, self.owner)["id"])

    def update(self, module: str, record_id: str, patch: dict[str, Any]) -> None:
        self.crm.update(module, record_id, patch)

    def records(self, module: str) -> list[dict[str, Any]]:
        return list(self.crm.list_records(module, per_page=200).records)

    def record(self, module: str, key: str, value: Any) -> dict[str, Any]:
        (found,) = [r for r in self.records(module) if r.get(key) == value]
        return found


def counts(report: dict[str, Any], entity: str, side: str) -> dict[str, int]:
    return dict(report["entities"][entity][side])


def wrote_nothing(report: dict[str, Any]) -> bool:
    return all(
        e[side][kind] == 0
        for e in report["entities"].values()
        for side in ("crm", "exchange")
        for kind in ("created", "updated", "deleted")
    )


def make_org(world: World, exchange: str, options: Options | None = None) -> Org:
    world.cloud.reset(options or Options())
    world.crm_login(address(ADMIN))
    assert world.run(ADMIN, "exsync install --scope all --accept-terms").exit_code == 0
    if exchange == "ews":
        result = world.ews_impersonation()
    elif exchange == "graph":
        result = world.graph_auth_code(ADMIN)
    else:
        result = world.graph_client_credentials()
    assert result.exit_code == 0, result.output
    assert world.run(ADMIN, f"exsync users enable {address(ADMIN)}").exit_code == 0
    return Org(world, exchange)
