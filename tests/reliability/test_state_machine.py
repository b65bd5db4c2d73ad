"""A hypothesis state machine over both fakes: random edits on both sides, random faults, runs.

Each example is a fresh org (fresh fakes, fresh state store, set up through the CLI) synced over
Graph or EWS, two-way under either conflict policy or one-way in either direction. Steps edit
contacts in the CRM and in the mailbox through the fake models, arm faults (429/503 with
Retry-After, EWS ErrorServerBusy, a dropped connection on a write, lost delta state, expired
tokens) and run syncs with their sleep recorded. A *clean run* clears the faults and syncs;
after it the invariants are checked:

- two-way: both sides hold the same contacts (no twins, nothing lost);
- a second run writes nothing and resolves no conflict;
- one-way: the protected side was never written, by any run, faulty or clean: it holds exactly
  what the user's edits made of it;
- the pair mapping covers every pair: in two-way every record of either side is paired, once;
  in one-way every source record is paired and every pair names records that exist.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from fakes.server import FaultRule

DEFAULT_PHASES = tuple(Phase)
EXPLORE = (Phase.generate,)  # long exploratory runs (EXSYNC_MACHINE_EXAMPLES=200) skip the slow shrinking
NAMES = st.sampled_from(["Ann", "Bob", "Cy", "Di"])
TITLES = st.sampled_from(["", "Buyer", "Owner"])
FAULTS = [
    "crm-429",
    "exchange-429",
    "batch-items",
    "crm-drop-write",
    "exchange-drop-write",
    "lost-delta",
    "expired-tokens",
]
MODES = st.sampled_from(
    [
        ("two_way", "crm-wins", None),
        ("two_way", "exchange-wins", None),
        ("one_way", "crm-wins", "exchange_to_crm"),
        ("one_way", "crm-wins", "crm_to_exchange"),
    ]
)


class DropNextWrite(FaultRule):
    """Drops the connection on the next write request to the server (it never sees it)."""

    def matches(self, request):
        writes = request.method in ("POST", "PUT", "PATCH", "DELETE") and self.path in request.path
        if writes and request.path.lower().endswith("exchange.asmx"):  # EWS: only item writes, not reads
            writes = any(op in request.body for op in (b"CreateItem", b"UpdateItem", b"DeleteItem"))
        return writes and not self.fired


class SyncMachine(RuleBasedStateMachine):
    make_org = None  # set per test: builds a fresh org of the wanted kind

    def __init__(self):
        super().__init__()
        self.org = type(self).make_org()
        self.counter = itertools.count()
        self.protected = None
        self.protected_writes = 0
        self.model = Counter()  # the protected side as the user's edits made it (one-way)

    @initialize(mode=MODES)
    def choose_mode(self, mode):
        sync_type, policy, direction = mode
        self.org.settings(sync_type=sync_type, conflict_policy=policy, direction=direction or "exchange_to_crm")
        if sync_type == "one_way":
            self.protected = "exchange" if direction == "exchange_to_crm" else "crm"

    # edits -----------------------------------------------------------------------------------
    def _email(self, name):
        return f"{name.lower()}{next(self.counter)}@example.com"

    def _note(self, side, before, after):
        if side == self.protected:
            if before is not None:
                self.model[before] -= 1
            if after is not None:
                self.model[after] += 1
            self.model = +self.model

    @rule(name=NAMES, title=TITLES)
    def crm_create(self, name, title):
        email = self._email(name)
        self.org.crm_add(name, email=email, title=title)
        self._note("crm", None, ("", name, email, title))

    @rule(name=NAMES, title=TITLES)
    def box_create(self, name, title):
        email = self._email(name)
        self.org.box_add(name, email=email, title=title)
        self._note("exchange", None, ("", name, email, title))

    @rule(data=st.data(), title=TITLES)
    def crm_edit(self, data, title):
        records = sorted(self.org.crm_records(), key=lambda r: r["id"])
        if records:
            record = data.draw(st.sampled_from(records))
            before = _crm_contact(record)
            self.org.crm_update(record["id"], {"Title": title or None})
            self._note("crm", before, (*before[:3], title))

    @rule(data=st.data(), title=TITLES)
    def box_edit(self, data, title):
        items = self.org.box_items()
        if items:
            item = data.draw(st.sampled_from(items))
            before = _box_contact(item.data)
            self.org.box_update(item.id, {"jobTitle": title or None})
            self._note("exchange", before, (*before[:3], title))

    @rule(data=st.data())
    def crm_remove(self, data):
        records = sorted(self.org.crm_records(), key=lambda r: r["id"])
        if records:
            record = data.draw(st.sampled_from(records))
            self.org.crm_delete(record["id"])
            self._note("crm", _crm_contact(record), None)

    @rule(data=st.data())
    def box_remove(self, data):
        items = self.org.box_items()
        if items:
            item = data.draw(st.sampled_from(items))
            self.org.box_delete(item.id)
            self._note("exchange", _box_contact(item.data), None)

    # faults and runs -------------------------------------------------------------------------
    @rule(fault=st.sampled_from(FAULTS))
    def arm_fault(self, fault):
        cloud, kind = self.org.cloud, self.org.kind
        exchange = cloud.servers["graph" if kind == "graph" else "ews"].faults
        if fault == "crm-429":
            cloud.servers["crm"].faults.add(FaultRule(path="/crm/v8/", status=429, retry_after=30, times=2))
        elif fault == "exchange-429" and kind == "graph":
            exchange.add(FaultRule(path="/v1.0/", status=503, retry_after=12, times=2))
        elif fault == "exchange-429":
            cloud.ews.throttle(2, 12_000)
        elif fault == "batch-items" and kind == "graph":
            cloud.graph.throttle_batch_items(3, retry_after=5)
        elif fault == "crm-drop-write":
            cloud.servers["crm"].faults.add(DropNextWrite(path="/crm/v8/Contacts", drop=True))
        elif fault == "exchange-drop-write":
            exchange.add(DropNextWrite(path="/v1.0/$batch" if kind == "graph" else "/EWS/", drop=True))
        elif fault == "lost-delta" and kind == "graph":
            cloud.graph.expire_delta_tokens()
        elif fault == "lost-delta":
            cloud.ews.invalidate_sync_states()
        elif fault == "expired-tokens":
            cloud.crm.expire_tokens()
            cloud.authority.expire_access_tokens()

    def _run(self):
        reports = self.org.run(force=True)
        for report in reports:
            for entity in report.entities.values():
                if self.protected:
                    counts = entity.sides[self.protected]
                    self.protected_writes += counts.created + counts.updated + counts.deleted
        return reports

    @rule()
    def sync(self):
        self._run()

    @rule()
    def clean_sync(self):
        for server in self.org.cloud.servers.values():
            server.faults.clear()
        self.org.cloud.ews.throttle(0, 0)
        self.org.cloud.graph.throttle_batch_items(0)
        ((report,),) = [self._run()]
        assert report.outcome == "ok", report.as_dict()
        self.check()

    def teardown(self):
        self.clean_sync()

    # the invariants --------------------------------------------------------------------------
    def check(self):
        org = self.org
        crm_records, box_items = org.crm_records(), org.box_items()
        pairs = org.pairs()
        assert self.protected_writes == 0, f"the protected {self.protected} side was written"
        if self.protected is None:
            assert org.crm_contacts() == org.box_contacts(), (org.crm_contacts(), org.box_contacts())
            assert sorted(p.crm_id for p in pairs) == sorted(r["id"] for r in crm_records)
            assert sorted(p.exchange_id for p in pairs) == sorted(i.id for i in box_items)
        else:
            source = org.crm_contacts() if self.protected == "crm" else org.box_contacts()
            assert source == self.model
            # a copy the user deletes on the target side is let go (its pair forgotten), so not
            # every source record need be paired; but every pair names two live records, once
            crm_ids, box_ids = {r["id"] for r in crm_records}, {i.id for i in box_items}
            assert all(p.crm_id in crm_ids and p.exchange_id in box_ids for p in pairs)
            assert len({p.crm_id for p in pairs}) == len({p.exchange_id for p in pairs}) == len(pairs)
        ((again,),) = [self._run()]
        assert again.outcome == "ok"
        assert org.wrote_nothing([again.as_dict()]), again.as_dict()
        assert all(e.conflicts == 0 for e in again.entities.values())


def _crm_contact(record):
    return (
        record.get("First_Name") or "",
        record["Last_Name"],
        (record.get("Email") or "").lower(),
        record.get("Title") or "",
    )


def _box_contact(data):
    emails = data.get("emailAddresses") or [{}]
    return (
        data.get("givenName") or "",
        data.get("surname") or "",
        (emails[0].get("address") or "").lower(),
        data.get("jobTitle") or "",
    )


@pytest.mark.parametrize("kind", ["graph", "ews"])
def test_random_edits_faults_and_runs_keep_both_sides_in_step(fresh_org, kind):
    class Machine(SyncMachine):
        make_org = staticmethod(lambda: fresh_org(kind))

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=int(os.environ.get("EXSYNC_MACHINE_EXAMPLES", "8")),
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            derandomize="EXSYNC_MACHINE_EXAMPLES" not in os.environ,  # CI: the same examples every time
            phases=EXPLORE if "EXSYNC_MACHINE_EXAMPLES" in os.environ else DEFAULT_PHASES,
        ),
    )
