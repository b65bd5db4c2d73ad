"""Crash safety against the fakes: a run stopped at any write boundary is finished exactly by the next.

Each test first runs the same edits uninterrupted on a fresh org for the reference state, then
again with a failure injected at one boundary of the run: a process death inside a side's
``write`` (before the batch is sent, after half of it landed, after all of it landed but before
the answer was seen), a death while committing the pair mapping, or the fake server dropping
the connection on the Nth write request. The next run must end in the reference state: the
same records on both sides, no twins, a pair for each, and a run after that writes nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pytest

from fakes.server import FaultRule
from framework.state import StateStore
from plugins.crm.store import ModuleSide
from plugins.ews.store import FolderSide
from plugins.graph.store import GraphSide

BOUNDARIES = 3  # write calls of the interrupted run: CRM inserts/updates/deletes, Exchange batches


class Crash(Exception):
    """The process dies here (not an exsync error: nothing in the engine catches it)."""


def history(org):
    """Ten contacts a side synced, then edits on both sides: creates, updates and deletions."""
    for i in range(10):
        org.crm_add(f"Crm{i}", first="C", email=f"crm{i}@example.com")
        org.box_add(f"Box{i}", first="B", email=f"box{i}@example.com")
    org.run()
    for i in range(10, 32):  # two Graph batches of 20
        org.crm_add(f"Crm{i}", first="C", email=f"crm{i}@example.com")
    for i in range(10, 15):
        org.box_add(f"Box{i}", first="B", email=f"box{i}@example.com")
    records = {r["Last_Name"]: r["id"] for r in org.crm_records()}
    items = {i.data.get("surname"): i.id for i in org.box_items()}
    for name in ("Crm1", "Box2"):
        org.crm_update(records[name], {"Title": "Edited in CRM"})
    for name in ("Box3", "Crm4"):
        org.box_update(items[name], {"jobTitle": "Edited in Exchange"})
    org.crm_delete(records["Crm5"])
    org.crm_delete(records["Box6"])
    org.box_delete(items["Box7"])
    org.box_delete(items["Crm8"])


@pytest.fixture
def reference(fresh_org, kind):
    """The end state of the history, synced without interruption."""
    org = fresh_org(kind)
    history(org)
    org.run()
    state = org.agree()
    assert sum(state.values()) == 43
    return state


@dataclass
class Killer:
    """Kills the process at the ``at``-th write call, in one of three ways."""

    at: int
    how: str
    calls: int = 0
    fired: bool = False

    def wrap(self, original):
        killer = self

        def write(side, ops):
            killer.calls += 1
            if killer.calls != killer.at:
                return original(side, ops)
            killer.fired = True
            if killer.how == "half":
                original(side, list(ops)[: len(ops) // 2])
            elif killer.how == "all":
                original(side, ops)
            raise Crash(f"killed at write {killer.at}")

        return write


def finish_and_compare(org, reference):
    for _ in range(2):  # the next run finishes the work; the one after finds nothing to do
        ((report,),) = [org.run()]
        assert report.outcome == "ok", report.as_dict()
    assert org.agree() == reference
    assert len(org.pairs()) == sum(reference.values())
    assert org.wrote_nothing([r.as_dict() for r in org.run()])


@pytest.mark.parametrize("how", ["before", "half", "all"])
@pytest.mark.parametrize("at", range(1, BOUNDARIES + 1))
def test_killed_inside_a_write_the_next_run_ends_as_an_uninterrupted_one(fresh_org, kind, reference, at, how):
    org = fresh_org(kind)
    history(org)
    killer = Killer(at, how)
    with pytest.MonkeyPatch.context() as patch:
        for cls in (ModuleSide, GraphSide if kind == "graph" else FolderSide):
            patch.setattr(cls, "write", killer.wrap(cls.write))
        with contextlib.suppress(Crash):
            org.run()
    if not killer.fired:
        pytest.skip(f"the {kind} run has only {killer.calls} write calls")
    finish_and_compare(org, reference)


@pytest.mark.parametrize("at", range(1, BOUNDARIES + 1))
def test_killed_while_committing_the_pairs_the_next_run_ends_as_an_uninterrupted_one(fresh_org, kind, reference, at):
    org = fresh_org(kind)
    history(org)
    calls = {"n": 0}
    original = StateStore.save_pairs

    def save_pairs(self, conn, user_id, entity, upserts, removed):
        calls["n"] += 1
        if calls["n"] == at:  # a chunk's links, or a batch's results
            raise Crash("killed before the commit")
        return original(self, conn, user_id, entity, upserts, removed)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StateStore, "save_pairs", save_pairs)
        try:
            org.run()
        except Crash:
            pass
        else:
            pytest.skip(f"the {kind} run commits pairs only {calls['n']} times")
    finish_and_compare(org, reference)


@dataclass
class DropNthWrite(FaultRule):
    """Drops the connection on the ``nth`` write request (the server never sees it)."""

    nth: int = 1
    seen: int = 0
    writes: tuple[bytes, ...] = ()

    def matches(self, request):
        is_write = request.method in ("POST", "PUT", "PATCH", "DELETE") and self.path in request.path
        if self.writes:
            is_write = is_write and any(word in request.body for word in self.writes)
        if not is_write or self.fired:
            return False
        self.seen += 1
        return self.seen == self.nth


@pytest.mark.parametrize("server", ["crm", "exchange"])
@pytest.mark.parametrize("nth", [1, 2])
def test_a_dropped_connection_on_a_write_is_finished_by_the_next_run(fresh_org, kind, reference, server, nth):
    org = fresh_org(kind)
    history(org)
    if server == "crm":
        rule = DropNthWrite(path="/crm/v8/Contacts", drop=True, nth=nth)
        org.cloud.servers["crm"].faults.add(rule)
    elif kind == "graph":
        # reads go through $batch too (the links of a delta page): only a batch that writes counts
        rule = DropNthWrite(path="/$batch", drop=True, nth=nth, writes=(b'"POST"', b'"PATCH"', b'"DELETE"'))
        org.cloud.servers["graph"].faults.add(rule)
    else:
        rule = DropNthWrite(drop=True, nth=nth, writes=(b"CreateItem", b"UpdateItem", b"DeleteItem"))
        org.cloud.servers["ews"].faults.add(rule)
    ((report,),) = [org.run()]
    if not rule.fired:
        pytest.skip(f"fewer than {nth} write requests to the {server} side")
    assert report.entities["contacts"].outcome in ("failed", "partial"), report.as_dict()
    finish_and_compare(org, reference)
