"""The engine and planner on in-memory sides: direction, conflicts, deletions, matching, recovery."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.contracts import WriteOp, WriteResult
from framework.model import Contact, content_hash
from framework.testing import make_org


def contents(side: object) -> Counter[str]:
    return Counter(content_hash(record) for record, _link in side.records.values())  # type: ignore[attr-defined]


def sides(org: object, entity: str = "contacts") -> tuple[object, object]:
    world = org.world  # type: ignore[attr-defined]
    return world.side("crm", "u1", entity), world.side("exchange", "u1", entity)


def test_first_sync_copies_both_ways_and_second_run_writes_nothing(org):
    crm, exchange = sides(org)
    crm.put(Contact(first_name="Ann", last_name="Lee", email="ann@example.com"))
    exchange.put(Contact(first_name="Bob", last_name="Ray", email="bob@example.com"))
    first = org.sync()
    assert first.entities["contacts"].sides["exchange"].created == 1
    assert first.entities["contacts"].sides["crm"].created == 1
    assert contents(crm) == contents(exchange)
    writes = (crm.writes, exchange.writes)
    second = org.sync()
    assert (crm.writes, exchange.writes) == writes
    assert all(vars(c) == vars(type(c)()) for c in second.entities["contacts"].sides.values())


def test_first_sync_matches_existing_contacts_by_email_instead_of_duplicating(org):
    crm, exchange = sides(org)
    crm.put(Contact(first_name="Ann", last_name="Lee", email="ANN@example.com"))
    exchange.put(Contact(first_name="Ann", last_name="Lee", email="ann@example.com", phone="123"))
    org.sync()
    assert len(crm.records) == len(exchange.records) == 1
    ((record, _),) = crm.records.values()
    assert record.phone == "123" or record == next(iter(exchange.records.values()))[0]


@pytest.mark.parametrize("direction", ["exchange_to_crm", "crm_to_exchange"])
def test_one_way_never_writes_the_source_side(org, direction):
    org.set(sync_type="one_way", direction=direction)
    crm, exchange = sides(org)
    crm.put(Contact(last_name="FromCrm"))
    exchange.put(Contact(last_name="FromExchange"))
    org.sync()
    source, target = (exchange, crm) if direction == "exchange_to_crm" else (crm, exchange)
    assert source.writes == 0
    assert len(source.records) == 1 and len(target.records) == 2


@pytest.mark.parametrize(("policy", "winner"), [("crm-wins", "crm"), ("exchange-wins", "exchange")])
def test_conflict_is_resolved_by_the_policy_and_audited(org, policy, winner):
    org.set(conflict_policy=policy)
    crm, exchange = sides(org)
    crm_id = crm.put(Contact(last_name="Lee", email="a@x.com"))
    org.sync()
    (exchange_id,) = exchange.records
    crm.put(Contact(last_name="Lee-CRM", email="a@x.com"), crm_id)
    exchange.put(Contact(last_name="Lee-EX", email="a@x.com"), exchange_id)
    report = org.sync()
    assert report.entities["contacts"].conflicts == 1
    expected = f"Lee-{'CRM' if winner == 'crm' else 'EX'}"
    assert crm.records[crm_id][0].last_name == exchange.records[exchange_id][0].last_name == expected
    (event,) = org.ctx.audit.query(action="resolve-conflict")
    assert event.detail["policy"] == policy and event.detail["winner"] == winner


def test_deletion_propagates_and_is_not_undone_by_the_stale_copy(org):
    crm, exchange = sides(org)
    crm_id = crm.put(Contact(last_name="Gone", email="g@x.com"))
    org.sync()
    crm.remove(crm_id)
    org.sync()
    assert exchange.records == {}
    org.sync()
    assert crm.records == {} and exchange.records == {}


def test_rejected_record_is_reported_the_rest_goes_on_and_it_is_retried(org):
    crm, exchange = sides(org)
    exchange.reject.add("Bad")
    crm.put(Contact(last_name="Bad"))
    crm.put(Contact(last_name="Good"))
    report = org.sync()
    entity = report.entities["contacts"]
    assert entity.sides["exchange"].errors == 1 and entity.sides["exchange"].created == 1
    assert any("Bad" in e for e in entity.errors)
    assert org.ctx.state.open_errors()
    exchange.reject.clear()
    report = org.sync()
    assert report.entities["contacts"].sides["exchange"].created == 1
    assert len(exchange.records) == 2 and not org.ctx.state.open_errors()


def test_lost_state_re_pairs_by_cross_link_without_duplicates(org, tmp_path):
    crm, exchange = sides(org)
    for n in range(5):
        crm.put(Contact(last_name=f"P{n}"))  # no e-mail: only the cross-link can pair them
    org.sync()
    fresh = make_org()
    fresh.world.sides = org.world.sides
    fresh.sync()
    assert len(crm.records) == len(exchange.records) == 5


def test_expired_sync_state_falls_back_to_a_full_resync_without_duplicates(org):
    crm, exchange = sides(org)
    crm.put(Contact(last_name="A", email="a@x.com"))
    org.sync()
    exchange.generation += 1
    crm.put(Contact(last_name="B", email="b@x.com"))
    org.sync()
    assert len(exchange.records) == len(crm.records) == 2
    assert org.ctx.audit.query(action="resync")


def test_mass_delete_guard_stops_before_writing_unless_forced(org):
    crm, exchange = sides(org)
    ids = [crm.put(Contact(last_name=f"N{n}", email=f"n{n}@x.com")) for n in range(10)]
    org.sync()
    for item_id in ids:
        crm.remove(item_id)
    report = org.sync()
    assert report.entities["contacts"].outcome == "failed"
    assert "would delete 10 of 10" in report.entities["contacts"].errors[0]
    assert len(exchange.records) == 10
    org.sync(force=True)
    assert exchange.records == {}


class Crash(Exception):
    pass


def _crash_on_write(side: object, at: int) -> None:
    original = side.write  # type: ignore[attr-defined]
    calls = {"n": 0}

    def write(ops: list[WriteOp]) -> list[WriteResult]:
        calls["n"] += 1
        if calls["n"] == at:
            original(ops[: len(ops) // 2])  # half the batch lands, then the process dies
            raise Crash()
        return original(ops)  # type: ignore[no-any-return]

    side.write = write  # type: ignore[attr-defined]


@pytest.mark.parametrize("crash_at", [1, 2, 3, 4])
def test_a_run_killed_at_any_write_boundary_is_finished_exactly_by_the_next(crash_at):
    def populate(org: object) -> None:
        crm, exchange = sides(org)
        for n in range(12):
            crm.put(Contact(last_name=f"C{n}"))
            exchange.put(Contact(last_name=f"X{n}"))

    reference = make_org()
    populate(reference)
    reference.sync()
    org = make_org()
    populate(org)
    crm, exchange = sides(org)
    _crash_on_write(exchange if crash_at % 2 else crm, (crash_at + 1) // 2)
    with pytest.raises(Crash):
        org.sync()
    for side in (crm, exchange):
        side.write = type(side).write.__get__(side)  # the next process has no crash
    org.sync()
    ref_crm, ref_exchange = sides(reference)
    assert contents(crm) == contents(exchange) == contents(ref_crm) == contents(ref_exchange)
    assert len(org.ctx.state.pairs("u1", "contacts")) == 24


def test_users_synced_concurrently_each_get_their_own_records(tmp_path):
    from framework.engine import Engine
    from framework.state import User

    org = make_org(f"sqlite:///{tmp_path}/state.db")
    users = [User(f"u{n}", f"user{n}@example.com", enabled=True) for n in range(1, 6)]
    org.ctx.state.upsert_users(users)
    for user in users:
        for n in range(8):
            org.world.side("crm", user.crm_id, "contacts").put(Contact(last_name=f"{user.crm_id}-{n}"))
    reports = Engine(org.ctx, sleep=lambda _s: None, concurrency=3).run(users)
    assert [r.outcome for r in reports] == ["ok"] * 5
    for user in users:
        exchange = org.world.side("exchange", user.crm_id, "contacts")
        assert sorted(r.last_name for r, _ in exchange.records.values()) == [f"{user.crm_id}-{n}" for n in range(8)]
        assert len(org.ctx.state.pairs(user.crm_id, "contacts")) == 8


def test_pairs_follow_exchange_records_listed_under_new_ids_after_a_change_of_authentication(org):
    crm, exchange = sides(org)
    for n in range(6):
        crm.put(Contact(last_name=f"N{n}", email=f"n{n}@x.com"))
    org.sync()
    for old_id in list(exchange.records):  # the new way in lists the same items under other ids
        record, link = exchange.records.pop(old_id)
        exchange.records[f"new-{old_id}"] = (record, link)
    org.ctx.state.forget_cursors()
    report = org.sync()
    assert len(crm.records) == len(exchange.records) == 6
    assert all(vars(c) == vars(type(c)()) for c in report.entities["contacts"].sides.values())
    assert {p.exchange_id for p in org.ctx.state.pairs("u1", "contacts")} == set(exchange.records)


# planning in chunks ---------------------------------------------------------------------------
emails = st.sampled_from(["", "a@x.com", "b@x.com", "c@x.com", "d@x.com"])
people = st.lists(st.tuples(st.sampled_from(["Ann", "Bob", "Cy"]), emails), max_size=12)


def _first_sync(crm_people: list, exchange_people: list, links: list[int], layout: tuple[int, int]) -> tuple:
    org = make_org()
    org.world.page_size, org.chunk = layout
    crm, exchange = sides(org)
    crm_ids = [crm.put(Contact(last_name=name, email=email)) for name, email in crm_people]
    for n, (name, email) in enumerate(exchange_people):
        link = crm_ids[links[n] % len(crm_ids)] if crm_ids and n < len(links) else ""
        exchange.put(Contact(last_name=name, email=email, notes="x"), link=link)
    report = org.sync().entities["contacts"]
    counts = {side: vars(c) for side, c in report.sides.items()}
    return counts, report.conflicts, contents(crm), contents(exchange), len(org.ctx.state.pairs("u1", "contacts"))


@settings(max_examples=60, deadline=None)
@given(
    crm_people=people,
    exchange_people=people,
    links=st.lists(st.integers(0, 20), max_size=6),
    layout=st.sampled_from([(1, 1), (2, 3), (3, 2)]),
)
def test_planning_in_chunks_pairs_and_copies_exactly_as_planning_at_once(crm_people, exchange_people, links, layout):
    """Cross-links first, then natural keys strongest first: a chunk at a time as all at once."""
    at_once = _first_sync(crm_people, exchange_people, links, (0, 10_000))
    assert _first_sync(crm_people, exchange_people, links, layout) == at_once


def test_the_planner_never_sees_more_than_a_chunk_of_records(org, monkeypatch):
    import framework.engine

    seen: list[int] = []
    real_plan = framework.engine.plan

    def counting_plan(data):  # type: ignore[no-untyped-def]
        seen.append(len(data.crm.items) + len(data.exchange.items) + len(data.pairs))
        return real_plan(data)

    monkeypatch.setattr(framework.engine, "plan", counting_plan)
    org.world.page_size, org.chunk = 10, 10
    crm, exchange = sides(org)
    for n in range(200):
        crm.put(Contact(last_name=f"C{n}", email=f"c{n}@x.com"))
        exchange.put(Contact(last_name=f"X{n}", email=f"x{n}@x.com"))
    for n in range(50):  # 50 records on both sides, matched by e-mail
        exchange.put(Contact(last_name=f"C{n}", email=f"c{n}@x.com"))
    org.sync()
    assert len(crm.records) == len(exchange.records) == 400
    assert max(seen) <= 2 * 10 and sum(1 for _ in seen) >= 45
    crm.put(Contact(last_name="C0", email="c0@x.com", phone="1"), sorted(crm.records)[0])
    seen.clear()
    org.sync()
    assert max(seen) <= 3 * 10
