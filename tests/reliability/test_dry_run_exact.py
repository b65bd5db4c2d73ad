"""The dry run is exact: over random edits on both sides, under every sync mode, ``sync --dry-run``
plans exactly the writes the real run then makes (per entity and side: created, updated,
deleted), writes nothing itself, and names every record it would delete."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.reliability.conftest import Org

NAMES = st.sampled_from(["Ann", "Bob", "Cy", "Di", "Ed"])
EDITS = st.lists(
    st.tuples(
        st.sampled_from(["crm-add", "box-add", "crm-update", "box-update", "crm-delete", "box-delete", "event"]),
        NAMES,
        st.integers(0, 50),
    ),
    max_size=8,
)
MODES = st.sampled_from(
    [
        ("two_way", "crm-wins", "exchange_to_crm"),
        ("two_way", "exchange-wins", "exchange_to_crm"),
        ("one_way", "crm-wins", "exchange_to_crm"),
        ("one_way", "crm-wins", "crm_to_exchange"),
    ]
)


def _edit(org: Org, edit: tuple[str, str, int], serial: int) -> None:
    kind, name, number = edit
    last = f"{name}{serial}"
    if kind == "crm-add":
        org.crm_add(last, first=name, email=f"{name.lower()}{number}@example.com")
    elif kind == "box-add":
        org.box_add(last, first=name, email=f"{name.lower()}{number}@example.com")
    elif kind == "event":
        (org.crm_event if number % 2 else org.box_event)(f"Meet {last}", days=1 + number % 20)
    elif kind.startswith("crm") and (records := org.crm_records()):
        record = records[number % len(records)]
        if kind == "crm-update":
            org.crm_update(record["id"], {"Title": f"Title {number}"})
        else:
            org.crm_delete(record["id"])
    elif kind.startswith("box") and (items := org.box_items()):
        item = items[number % len(items)]
        if kind == "box-update":
            org.box_update(item.id, {"jobTitle": f"Title {number}"})
        else:
            org.box_delete(item.id)


def _counts(reports: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[int, int, int]]:
    out = {}
    for report in reports:
        for entity, found in report["entities"].items():
            for side in ("crm", "exchange"):
                counts = found[side]
                out[entity, side] = (counts["created"], counts["updated"], counts["deleted"])
    return out


@pytest.mark.parametrize("kind", ["graph", "ews"])
def test_the_dry_run_plans_exactly_what_the_real_run_writes(fresh_org, kind):
    # Each example is a fresh org set up through the CLI: no shrinking (minutes), the example is printed.
    @settings(
        max_examples=int(os.environ.get("EXSYNC_DRY_RUN_EXAMPLES", "12")),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
    )
    @given(mode=MODES, before=EDITS, after=EDITS)
    def check(mode, before, after):
        org = fresh_org(kind, entities=("contacts", "events"))
        sync_type, policy, direction = mode
        for serial, edit in enumerate(before):
            _edit(org, edit, serial)
        org.sync()
        org.settings(sync_type=sync_type, conflict_policy=policy, direction=direction)
        for serial, edit in enumerate(after, start=len(before)):
            _edit(org, edit, serial)
        crm, box = org.crm_contacts(), org.box_contacts()
        planned = org.sync("--dry-run")
        assert (org.crm_contacts(), org.box_contacts()) == (crm, box)  # a dry run writes nothing
        for report in planned:
            for entity in report["entities"].values():
                for line in entity["planned"]:
                    assert not line.startswith("delete") or "@" in line, f"a deletion names its record: {line}"
        done = org.sync()
        assert _counts(planned) == _counts(done)

    check()
