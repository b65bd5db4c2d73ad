"""Attendees never duplicate: one org synced through EWS and through Graph (a change of
authentication, or two installations) keeps each attendee once on both sides, and the first
sync after the change writes nothing that did not change."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fakes.harness import ADMIN, World
from tests.reliability.conftest import Org


def _when(days: int) -> dict[str, str]:
    moment = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=days)
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def _meetings(org: Org) -> None:
    """Meetings with required and optional attendees and an HTML body in Exchange, and one in the
    CRM with an address in capitals."""
    attendees = [("ann@example.com", "required"), ("bob@example.com", "optional"), ("cy@example.com", "optional")]
    for n in range(3):
        org.cloud.tenant.create(
            org.box(),
            "calendar",
            {
                "subject": f"Review {n}",
                "body": {"contentType": "html", "content": f"<p>Agenda {n}</p><p>Bring &amp; share</p>"},
                "start": _when(n + 1),
                "end": _when(n + 2),
                "isAllDay": False,
                "iCalUId": f"uid-review-{n}",
                "attendees": [{"emailAddress": {"address": a}, "type": kind} for a, kind in attendees],
            },
        )
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=5)
    participants = ["Dee@Example.com", "eve@example.com"]
    org.cloud.crm.insert(
        "Events",
        {
            "Event_Title": "Planning",
            "Start_DateTime": start.isoformat(timespec="seconds"),
            "End_DateTime": (start + timedelta(hours=1)).isoformat(timespec="seconds"),
            "Participants": [{"type": "email", "participant": a} for a in participants],
        },
        org.crm_user(),
    )


def _participants(org: Org) -> dict[str, list[str]]:
    return {
        r["Event_Title"]: [(p.get("participant") or p.get("Email") or "").lower() for p in r.get("Participants") or []]
        for r in org.crm_records("Events")
    }


def _attendees(org: Org) -> dict[str, list[str]]:
    return {
        i.data["subject"]: [a["emailAddress"]["address"].lower() for a in i.data.get("attendees") or []]
        for i in org.box_items("calendar")
    }


def _no_duplicates(org: Org) -> None:
    for side in (_participants(org), _attendees(org)):
        for title, addresses in side.items():
            assert len(addresses) == len(set(addresses)), f"{title}: {Counter(addresses)}"
    assert sorted(_participants(org)["Review 0"]) == ["ann@example.com", "bob@example.com", "cy@example.com"]
    assert sorted(_attendees(org)["Planning"]) == ["dee@example.com", "eve@example.com"]


def _events(org: Org) -> dict[str, Any]:
    return org.written(org.sync(), "events")


def test_change_auth_from_ews_to_graph_writes_nothing_unchanged_and_never_duplicates_attendees(world: World):
    org = Org(world, "ews").set_up(entities=("events",))
    _meetings(org)
    _events(org)
    assert org.wrote_nothing(org.sync())
    _no_duplicates(org)

    org.ok(world.run(ADMIN, "exsync change-auth --yes"))
    org.ok(world.graph_client_credentials())
    assert org.wrote_nothing(org.sync("--dry-run"))
    assert org.wrote_nothing(org.sync())
    assert org.wrote_nothing(org.sync())
    _no_duplicates(org)


def test_one_org_synced_through_ews_and_graph_in_turn_converges_without_duplicates(cloud, tmp_path: Path):
    cloud.reset()
    ews = Org(World(cloud, tmp_path / "ews"), "ews").set_up(entities=("events",))
    graph = Org(World(cloud, tmp_path / "graph"), "graph").set_up(entities=("events",))
    _meetings(ews)
    _events(ews)
    _events(graph)  # a first sync may give the CRM the iCalendar UIDs it lacks
    _no_duplicates(graph)
    for _ in range(2):
        for org in (ews, graph):
            assert org_writes(org) == 0
            _no_duplicates(org)


def org_writes(org: Org) -> int:
    return sum(sum(side.values()) for side in _events(org).values())
