"""The convergence property of the contacts engine tests, for all four entities, on the memory
stores: random edit histories on both sides converge, a second sync writes nothing, one-way never
writes its source, and mails are never written to Exchange."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.engine import CHUNK
from framework.model import Contact, Event, Mail, Record, Task, content_hash
from framework.state import Pair
from framework.testing import make_org

SOON = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)


def record(entity: str, name: str, edited: bool) -> Record:
    """A record of ``entity`` keyed by ``name``; ``edited`` changes a field that is not its key."""
    offset = timedelta(days=len(name))
    note = "edited" if edited else ""
    if entity == "contacts":
        return Contact(last_name=name, notes=note)
    if entity == "tasks":
        return Task(
            subject=name, due=(SOON + offset).date(), body=note, status="completed" if edited else "not_started"
        )
    if entity == "events":
        start = SOON + offset
        recurrence = "FREQ=WEEKLY;BYDAY=MO;COUNT=4" if name == "Cy" else ""
        return Event(subject=name, start=start, end=start + timedelta(hours=1), body=note, recurrence=recurrence)
    return Mail(
        message_id=f"<{name.lower()}@example.com>",
        subject=name,
        sender=f"{name.lower()}@customer.example",  # from outside the org: an internal-only mail stays
        to=("admin@example.com",),
        sent_at=SOON - timedelta(days=3),
        body=note,
    )


def contents(side: Any) -> Counter[str]:
    return Counter(content_hash(r) for r, _link in side.records.values())


names = st.sampled_from(["Ann", "Bob", "Cy", "Di"])
edits = st.lists(
    st.tuples(st.sampled_from(["crm", "exchange"]), st.sampled_from(["create", "update", "delete", "sync"]), names),
    max_size=20,
)


@pytest.mark.parametrize("entity", ["contacts", "tasks", "events", "mails"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=edits,
    two_way=st.booleans(),
    policy=st.sampled_from(["crm-wins", "exchange-wins"]),
    layout=st.sampled_from([(0, CHUNK), (1, 1), (2, 3)]),  # (page size of every read, engine chunk)
)
def test_random_edit_histories_of_every_entity_converge(entity, history, two_way, policy, layout):
    org = make_org()
    org.world.page_size, org.chunk = layout
    org.set(conflict_policy=policy, sync_type="two_way" if two_way else "one_way", direction="exchange_to_crm")
    crm, exchange = org.world.side("crm", "u1", entity), org.world.side("exchange", "u1", entity)
    for which, action, name in history:
        # mails come from Exchange; a CRM user does not make mail records to sync
        side = exchange if entity == "mails" or which == "exchange" else crm
        if action == "sync":
            org.sync(force=True)
        elif action == "create":
            side.put(record(entity, name, edited=False))
        elif side.records:
            target = sorted(side.records)[hash(name) % len(side.records)]
            if action == "update":
                side.put(record(entity, name, edited=True), target)
            else:
                side.remove(target)
    org.sync(force=True)
    pairs: list[Pair] = org.ctx.state.pairs("u1", entity)
    if entity == "mails":  # a mail deleted in Exchange stays in the CRM
        assert exchange.writes == 0
        assert contents(exchange) - contents(crm) == Counter()
        assert {p.exchange_id for p in pairs} == set(exchange.records)
    elif two_way:
        assert contents(crm) == contents(exchange)
        assert {p.crm_id for p in pairs} == set(crm.records)
        assert {p.exchange_id for p in pairs} == set(exchange.records)
    else:
        assert exchange.writes == 0
        assert {p.crm_id for p in pairs} <= set(crm.records)
        assert {p.exchange_id for p in pairs} <= set(exchange.records)
    before = (crm.writes, exchange.writes)
    org.sync(force=True)
    assert (crm.writes, exchange.writes) == before
