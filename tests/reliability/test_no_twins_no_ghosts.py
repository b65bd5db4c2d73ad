"""Failure modes 1-3 of issue 8 against the fakes, over Graph and over EWS.

1. a lost state store / a reinstall must re-pair by cross-link and natural key, never create twins;
2. a deletion is never undone by the stale copy on the other side;
3. our own writes are never read back as user changes, however many runs follow.
"""

from __future__ import annotations

from fakes.harness import ADMIN


def populate(org):
    """Contacts on both sides, some with an e-mail (natural key), some without (cross-link only)."""
    for n in range(4):
        org.crm_add(f"Crm{n}", first="C", email=f"crm{n}@example.com", title="Buyer")
        org.box_add(f"Box{n}", first="B", email=f"box{n}@example.com")
    for n in range(3):
        org.crm_add(f"CrmNoMail{n}")
        org.box_add(f"BoxNoMail{n}", first="X")


# 1 ---------------------------------------------------------------------------------------------
def test_reinstall_with_a_fresh_state_store_re_pairs_everything_without_twins(org, new_world):
    populate(org)
    org.sync()
    before = org.agree()
    assert sum(before.values()) == 14

    again = type(org)(new_world(), org.kind).set_up()  # the state store is gone: a reinstall
    reports = again.sync()
    assert again.written(reports) == {
        side: {"created": 0, "updated": 0, "deleted": 0} for side in ("crm", "exchange")
    }, reports
    assert again.agree() == before
    assert len(again.pairs()) == 14
    assert again.wrote_nothing(again.sync())


def test_reinstall_matches_records_edited_meanwhile_by_their_cross_link(org, new_world):
    populate(org)
    org.sync()
    (item,) = [i for i in org.box_items() if i.data.get("surname") == "CrmNoMail0"]
    org.box_update(item.id, {"surname": "Renamed"})  # no e-mail and a new name: only the link ties it

    again = type(org)(new_world(), org.kind).set_up()
    reports = again.sync()
    counts = again.written(reports)
    assert counts["crm"]["created"] == counts["exchange"]["created"] == 0, reports
    contacts = again.agree()
    assert sum(contacts.values()) == 14
    # no stored base: the two versions are a conflict, which the policy (crm-wins) settles
    assert ("", "CrmNoMail0", "", "") in contacts and counts["exchange"]["updated"] == 1


def test_first_sync_of_two_populated_sides_matches_by_natural_key(org):
    for n in range(3):
        org.crm_add(f"Same{n}", first="S", email=f"same{n}@example.com")
        org.box_add(f"Same{n}", first="S", email=f"SAME{n}@example.com")
    reports = org.sync()
    assert org.written(reports)["crm"]["created"] == org.written(reports)["exchange"]["created"] == 0
    assert sum(org.agree().values()) == 3


# 2 ---------------------------------------------------------------------------------------------
def test_a_deletion_in_the_crm_is_not_undone_by_the_mailbox_copy(org):
    populate(org)
    org.sync()
    victim = next(r for r in org.crm_records() if r["Last_Name"] == "Box1")
    org.crm_delete(victim["id"])
    org.sync()
    for _ in range(2):
        assert org.wrote_nothing(org.sync())
    contacts = org.agree()
    assert not any(c[1] == "Box1" for c in contacts) and sum(contacts.values()) == 13


def test_a_deletion_in_the_mailbox_is_not_undone_by_the_crm_copy(org):
    populate(org)
    org.sync()
    victim = next(i for i in org.box_items() if i.data.get("surname") == "Crm2")
    org.box_delete(victim.id)
    org.sync()
    for _ in range(2):
        assert org.wrote_nothing(org.sync())
    contacts = org.agree()
    assert not any(c[1] == "Crm2" for c in contacts) and sum(contacts.values()) == 13


def test_a_deletion_on_both_sides_just_forgets_the_pair(org):
    populate(org)
    org.sync()
    org.crm_delete(next(r for r in org.crm_records() if r["Last_Name"] == "Crm0")["id"])
    org.box_delete(next(i for i in org.box_items() if i.data.get("surname") == "Crm0").id)
    assert org.wrote_nothing(org.sync())
    assert sum(org.agree().values()) == 13
    assert len(org.pairs()) == 13


def test_a_deletion_made_while_the_delta_state_was_lost_is_still_carried_over(org):
    """A full resync lists what is left: a paired record missing from it was deleted."""
    populate(org)
    org.sync()
    victim = next(i for i in org.box_items() if i.data.get("surname") == "Crm3")
    org.box_delete(victim.id)
    if org.kind == "graph":
        org.cloud.graph.expire_delta_tokens()
    else:
        org.cloud.ews.invalidate_sync_states()
    org.sync()
    contacts = org.agree()
    assert not any(c[1] == "Crm3" for c in contacts) and sum(contacts.values()) == 13
    assert org.wrote_nothing(org.sync())


# 3 ---------------------------------------------------------------------------------------------
def test_our_own_writes_are_never_read_back_as_changes(org):
    org.entities("contacts", "events")
    populate(org)
    org.box_event("Board meeting", days=3)
    org.crm_event("Customer call", days=-10)
    first = org.sync()
    assert org.written(first)["crm"]["created"] == 7 and org.written(first)["exchange"]["created"] == 7
    assert org.written(first, "events")["crm"]["created"] == 1
    assert org.written(first, "events")["exchange"]["created"] == 1
    for _ in range(4):
        assert org.wrote_nothing(org.sync())
    # an edit travels once, and then the run after is quiet again: no ping-pong
    record = next(r for r in org.crm_records() if r["Last_Name"] == "Box0")
    org.crm_update(record["id"], {"Title": "Chief"})
    item = next(i for i in org.box_items() if i.data.get("surname") == "Crm0")
    org.box_update(item.id, {"jobTitle": "Owner"})
    second = org.sync()
    assert org.written(second)["exchange"]["updated"] == 1 and org.written(second)["crm"]["updated"] == 1
    for _ in range(3):
        assert org.wrote_nothing(org.sync())
    contacts = org.agree()
    assert ("B", "Box0", "box0@example.com", "Chief") in contacts
    assert ("C", "Crm0", "crm0@example.com", "Owner") in contacts
    crm_events, box_events = org.event_subjects()
    assert crm_events == box_events == {"Board meeting": 1, "Customer call": 1}


def test_echo_free_over_many_runs_for_a_second_user_too(two_users):
    org = two_users
    org.crm_add("Solo", email="solo@example.com", user="sam.standard")
    org.box_add("Boxed", email="boxed@example.com", user=ADMIN)
    org.sync()
    for _ in range(3):
        assert org.wrote_nothing(org.sync())
    assert (
        org.crm_contacts("sam.standard")
        == org.box_contacts("sam.standard")
        == {("", "Solo", "solo@example.com", ""): 1}
    )
    assert org.agree() == {("", "Boxed", "boxed@example.com", ""): 1}
