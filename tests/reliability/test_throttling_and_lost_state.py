"""Failure modes 6 and 7 of issue 8: throttling, and lost delta state.

The engine runs with its sleep recorded instead of slept, so a Retry-After of minutes costs
nothing; what is checked is that each throttled answer is followed by exactly one wait of at
least what the service asked (a retry before that would reset the service's wait), and that
the run ends exactly as an unthrottled run does.
"""

from __future__ import annotations

import pytest

from fakes.server import FaultRule
from framework.state import audit_table
from plugins.ews.store import FolderSide


def populate(org, n=25):
    for i in range(n):
        org.crm_add(f"Crm{i}", first="C", email=f"crm{i}@example.com")
        org.box_add(f"Box{i}", first="B", email=f"box{i}@example.com")


def expected(n=25):
    crm = {("C", f"Crm{i}", f"crm{i}@example.com", ""): 1 for i in range(n)}
    box = {("B", f"Box{i}", f"box{i}@example.com", ""): 1 for i in range(n)}
    return {**crm, **box}


def created(reports):
    ((report,),) = [reports]
    contacts = report.entities["contacts"]
    return contacts.outcome, contacts.sides["crm"].created, contacts.sides["exchange"].created


# 6 ---------------------------------------------------------------------------------------------
def test_an_unthrottled_run_for_reference(org):
    populate(org)
    assert created(org.run()) == ("ok", 25, 25)
    assert org.agree() == expected() and org.sleeps == []


@pytest.mark.parametrize("kind", ["graph"])
def test_graph_throttling_of_reads_batches_and_batch_items_is_waited_out(org):
    populate(org)
    crm = org.cloud.servers["crm"].faults
    graph = org.cloud.servers["graph"].faults
    rules = [
        crm.add(FaultRule(path="/crm/v8/Contacts", status=429, retry_after=3, times=2)),
        graph.add(FaultRule(path="/delta", status=429, retry_after=7, times=2)),
        graph.add(FaultRule(path="/$batch", status=503, retry_after=5, times=1)),
    ]
    org.cloud.graph.throttle_batch_items(3, retry_after=4)
    assert created(org.run()) == ("ok", 25, 25)
    assert org.agree() == expected()
    assert all(rule.fired == rule.times for rule in rules)
    # one wait per throttled answer (the three throttled batch items share one), each as long as asked
    assert sorted(org.sleeps) == [3, 3, 4, 5, 7, 7]
    assert org.wrote_nothing([r.as_dict() for r in org.run()])


@pytest.mark.parametrize("kind", ["ews"])
def test_ews_server_busy_back_off_is_waited_out(org):
    populate(org)
    org.cloud.ews.throttle(3, 2500)
    assert created(org.run()) == ("ok", 25, 25)
    assert org.agree() == expected()
    assert org.sleeps == [2.5, 2.5, 2.5]


@pytest.mark.parametrize("kind", ["ews"])
def test_ews_server_busy_on_a_write_is_waited_out_and_nothing_is_written_twice(org, monkeypatch):
    populate(org)
    org.run()
    for i in range(25, 30):
        org.crm_add(f"Crm{i}", first="C", email=f"crm{i}@example.com")
    original = FolderSide._create
    armed = [True]

    def busy_create(self, natives):
        if armed.pop() if armed else False:
            org.cloud.ews.throttle(1, 30_000)  # this CreateItem request itself is refused as busy
        return original(self, natives)

    monkeypatch.setattr(FolderSide, "_create", busy_create)
    reports = org.run()
    assert created(reports) == ("ok", 0, 5), reports[0].entities["contacts"].errors
    assert org.sleeps == [30.0]
    assert org.agree() == {**expected(), **{("C", f"Crm{i}", f"crm{i}@example.com", ""): 1 for i in range(25, 30)}}


@pytest.mark.parametrize("kind", ["graph"])
def test_a_retry_after_longer_than_a_minute_is_still_waited_in_full(org):
    populate(org, 3)
    org.cloud.servers["graph"].faults.add(FaultRule(path="/delta", status=429, retry_after=150, times=1))
    assert created(org.run()) == ("ok", 3, 3)
    assert org.sleeps == [150]


def test_throttling_that_never_ends_fails_the_entity_and_the_next_run_finishes(org, kind):
    populate(org, 5)
    server = "graph" if kind == "graph" else "ews"
    if kind == "graph":
        org.cloud.servers[server].faults.add(FaultRule(path="/", status=503, retry_after=2))
    else:
        org.cloud.ews.throttle(1000, 2000)
    ((report,),) = [org.run()]
    assert report.entities["contacts"].outcome == "failed", report.entities["contacts"]
    assert len(org.sleeps) == 4  # five attempts, four waits, then the entity gives up for this run
    org.cloud.servers[server].faults.clear()
    org.cloud.ews.throttle(0, 0)
    assert created(org.run()) == ("ok", 5, 5)
    assert org.agree() == expected(5)


# 7 ---------------------------------------------------------------------------------------------
def lose_delta_state(org):
    if org.kind == "graph":
        org.cloud.graph.expire_delta_tokens()
    else:
        org.cloud.ews.invalidate_sync_states()


def test_lost_delta_state_falls_back_to_a_full_de_duplicating_resync(org):
    populate(org, 10)
    org.sync()
    # changes on both sides while the state is lost: a new contact each, an edit each, a deletion each
    org.crm_add("NewCrm", email="newcrm@example.com")
    org.box_add("NewBox", email="newbox@example.com")
    org.crm_update(next(r for r in org.crm_records() if r["Last_Name"] == "Box1")["id"], {"Title": "Edited"})
    org.box_update(next(i for i in org.box_items() if i.data.get("surname") == "Crm1").id, {"jobTitle": "Edited"})
    org.crm_delete(next(r for r in org.crm_records() if r["Last_Name"] == "Box2")["id"])
    org.box_delete(next(i for i in org.box_items() if i.data.get("surname") == "Crm2").id)
    lose_delta_state(org)
    reports = org.sync()
    counts = org.written(reports)
    assert counts["crm"] == {"created": 1, "updated": 1, "deleted": 1}, reports
    assert counts["exchange"] == {"created": 1, "updated": 1, "deleted": 1}, reports
    contacts = org.agree()
    assert sum(contacts.values()) == 20
    assert ("C", "Crm1", "crm1@example.com", "Edited") in contacts
    assert ("B", "Box1", "box1@example.com", "Edited") in contacts
    assert not any(c[1] in ("Box2", "Crm2") for c in contacts)
    with org.world.state.engine.connect() as conn:
        actions = [r.action for r in conn.execute(audit_table.select()).all()]
    assert "resync" in actions
    assert org.wrote_nothing(org.sync())


def test_a_lost_crm_cursor_resyncs_too(org):
    populate(org, 5)
    org.sync()
    state = org.world.state
    user = org.crm_user().id
    with state.transaction() as conn:
        state.save_cursor(conn, user, "contacts", "crm", "{not json")
    org.crm_add("Late", email="late@example.com")
    reports = org.sync()
    assert org.written(reports)["exchange"]["created"] == 1
    assert org.written(reports)["crm"]["created"] == 0
    assert sum(org.agree().values()) == 11


@pytest.mark.parametrize("resync", [False, True], ids=["incremental", "resync"])
def test_an_event_leaving_the_window_is_not_a_deletion(org, resync):
    org.entities("events")
    org.box_event("Old review", days=-100)
    org.crm_event("Old visit", days=-100)
    org.box_event("Next review", days=5)
    org.sync()
    assert org.event_subjects()[0] == org.event_subjects()[1]
    org.settings(window_months=3)  # both old events now lie before the window
    if resync:
        lose_delta_state(org)
        state = org.world.state
        with state.transaction() as conn:
            state.save_cursor(conn, org.crm_user().id, "events", "crm", None)
    reports = org.sync()
    assert org.written(reports, "events") == {
        side: {"created": 0, "updated": 0, "deleted": 0} for side in ("crm", "exchange")
    }, reports
    crm, box = org.event_subjects()
    assert crm == box == {"Old review": 1, "Old visit": 1, "Next review": 1}
