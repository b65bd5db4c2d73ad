"""Failure modes 8 and 10 of issue 8, and the mass-delete guard, end to end through the CLI.

8. an expired token is refreshed silently; revoked consent (Graph) or a changed password (EWS)
   marks that one user as needing attention, in ``exsync status`` and the audit log, and every
   other user still syncs;
10. a mailbox and a CRM larger than one page (EWS SyncFolderItems 512, CRM 200, Graph's pages)
   sync completely.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from fakes.cloud import GRAPH_CLIENT_ID
from fakes.harness import ADMIN, address
from framework.state import audit_table

SAM = "sam.standard"


def audit(org, action, outcome):
    with org.world.state.engine.connect() as conn:
        query = sa.select(audit_table).where(audit_table.c.action == action, audit_table.c.outcome == outcome)
        return conn.execute(query).all()


def status(org):
    org.ok(org.world.run(ADMIN, "exsync --json status"))
    return {row["email"]: row for row in org.world.json()}


# 8 ---------------------------------------------------------------------------------------------
def test_expired_tokens_are_refreshed_without_anyone_noticing(org):
    org.crm_add("Before", email="before@example.com")
    org.sync()
    org.cloud.crm.expire_tokens()
    if org.kind == "graph":
        org.cloud.authority.expire_access_tokens()
    org.crm_add("After", email="after@example.com")
    reports = org.sync()
    assert reports[0]["outcome"] == "ok" and org.written(reports)["exchange"]["created"] == 1
    assert sum(org.agree().values()) == 2
    assert not status(org)[address(ADMIN)]["needs_attention"]


def test_one_users_lost_access_marks_only_them_and_the_others_still_sync(own_credentials):
    org = own_credentials
    org.sync()
    if org.kind == "graph":
        org.cloud.authority.revoke_consent(GRAPH_CLIENT_ID, address(SAM))
        org.cloud.authority.expire_access_tokens()
    else:
        org.box(SAM).password = "Changed-Passw0rd!"
    org.crm_add("ForAdmin", email="admin-contact@example.com")
    org.box_add("FromAdminBox", email="admin-box@example.com")
    org.crm_add("ForSam", email="sam-contact@example.com", user=SAM)

    reports = {r["user"]: r for r in org.sync(expect_ok=False)}
    assert org.world.last.exit_code != 0
    assert reports[address(ADMIN)]["outcome"] == "ok"
    assert reports[address(SAM)]["outcome"] == "failed" and reports[address(SAM)]["error"]
    assert sum(org.agree().values()) == 2  # the admin synced both ways
    assert org.box_contacts(SAM) == {}  # Sam's contact waits for Sam

    rows = status(org)
    assert rows[address(SAM)]["needs_attention"] and not rows[address(ADMIN)]["needs_attention"]
    failed = audit(org, "authenticate", "failed")
    assert [r.user_id for r in failed] == [org.crm_user(SAM).id]

    # Sam signs in again (or the stored password is updated): the next run clears the flag and catches up
    if org.kind == "graph":
        org.ok(org.world.graph_auth_code(SAM))
    else:
        org.box(SAM).password = "Changed-Passw0rd!"
        org.ok(org.world.run(SAM, f"exsync auth update-password --user {address(SAM)} --password Changed-Passw0rd!"))
    reports = {r["user"]: r for r in org.sync()}
    assert reports[address(SAM)]["outcome"] == "ok"
    assert org.box_contacts(SAM) == org.crm_contacts(SAM) == {("", "ForSam", "sam-contact@example.com", ""): 1}
    assert not status(org)[address(SAM)]["needs_attention"]


# 10 --------------------------------------------------------------------------------------------
def test_mailbox_and_crm_larger_than_a_page_sync_completely(org, monkeypatch):
    monkeypatch.setattr("plugins.graph.store.PAGE_SIZE", 100)  # Graph may serve smaller pages than asked
    n = 530  # > 512 changes per SyncFolderItems call, > 200 CRM records per page, > 5 Graph pages
    for i in range(n):
        org.crm_add(f"Crm{i:03}", email=f"crm{i}@example.com")
        org.box_add(f"Box{i:03}", email=f"box{i}@example.com")
    reports = org.sync()
    assert org.written(reports)["crm"]["created"] == org.written(reports)["exchange"]["created"] == n
    assert sum(org.agree().values()) == 2 * n
    assert len(org.pairs()) == 2 * n
    assert org.wrote_nothing(org.sync())


# the mass-delete guard -------------------------------------------------------------------------
def test_mass_delete_guard_stops_before_writing_says_why_and_yields_to_force(org):
    ids = [org.box_add(f"Box{i}", email=f"box{i}@example.com") for i in range(10)]
    org.sync()
    for item_id in ids:
        org.box_delete(item_id)
    result = org.world.run(ADMIN, "exsync sync")
    assert result.exit_code != 0
    text = " ".join(result.output.split())
    assert "would delete 10 of 10 contacts on the crm side" in text, text
    assert sum(org.crm_contacts().values()) == 10  # nothing was written
    assert audit(org, "sync-entity", "failed")
    # refused again on the next run: the deletions are not forgotten, nor applied
    assert org.world.run(ADMIN, "exsync sync").exit_code != 0
    assert sum(org.crm_contacts().values()) == 10
    org.ok(org.world.run(ADMIN, "exsync sync --force"))
    assert org.crm_contacts() == {} and org.pairs() == []


def test_mass_delete_guard_catches_a_side_that_reads_as_empty_after_a_lost_state(org):
    ids = [org.box_add(f"Box{i}", email=f"box{i}@example.com") for i in range(8)]
    org.sync()
    for item_id in ids:
        org.box_delete(item_id)
    if org.kind == "graph":
        org.cloud.graph.expire_delta_tokens()
    else:
        org.cloud.ews.invalidate_sync_states()
    result = org.world.run(ADMIN, "exsync sync")
    assert result.exit_code != 0 and "would delete 8 of 8" in " ".join(result.output.split())
    assert sum(org.crm_contacts().values()) == 8


@pytest.mark.parametrize("kind", ["graph"])
def test_mass_delete_ratio_is_configurable(org):
    ids = [org.box_add(f"Box{i}", email=f"box{i}@example.com") for i in range(10)]
    org.sync()
    org.ok(org.world.run(ADMIN, "exsync settings set --mass-delete-ratio 0.8"))
    for item_id in ids[:7]:
        org.box_delete(item_id)
    reports = org.sync()
    assert org.written(reports)["crm"]["deleted"] == 7
    assert sum(org.agree().values()) == 3


# 9 ---------------------------------------------------------------------------------------------
def test_oversized_and_malformed_records_are_reported_retried_and_the_rest_goes_on(org):
    big = org.box_add("Big", email="big@example.com", title="T" * 300)  # the CRM holds 255 characters
    bad = org.box_add("Bad", email="not-an-address")
    for i in range(5):
        org.box_add(f"Fine{i}", email=f"fine{i}@example.com")
    reports = org.sync(expect_ok=False)
    contacts = reports[0]["entities"]["contacts"]
    assert contacts["outcome"] == "partial" and contacts["crm"]["errors"] == 2
    assert contacts["crm"]["created"] == 5
    assert len(audit(org, "write-record", "failed")) == 2
    assert org.world.state.open_errors()
    # still refused next run: reported again, nothing duplicated
    reports = org.sync(expect_ok=False)
    assert reports[0]["entities"]["contacts"]["crm"]["errors"] == 2
    assert sum(org.crm_contacts().values()) == 5
    # the user corrects them: the next run takes them over
    org.box_update(big, {"jobTitle": "T" * 20})
    org.box_update(bad, {"emailAddresses": [{"address": "bad@example.com", "name": "Bad"}]})
    reports = org.sync()
    assert reports[0]["entities"]["contacts"]["crm"]["created"] == 2
    assert sum(org.agree().values()) == 7
    assert not org.world.state.open_errors()
