"""The spool: what a round read, on disk, with the listing semantics sides promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.contracts import Item
from framework.model import Contact, Event, Mail, Record, Task
from framework.spool import DONE, NEW, UNPAIRED, Spool


def keys(record: object) -> tuple[str, ...]:
    return (f"email:{record.email}",) if record.email else ()  # type: ignore[attr-defined]


def contact(name: str, email: str = "") -> Contact:
    return Contact(last_name=name, email=email)


def test_a_relisted_item_replaces_the_earlier_listing_and_an_item_wins_over_a_deletion() -> None:
    with Spool(keys) as spool:
        spool.add("crm", [Item("1", contact("old"))], ["2"])
        spool.add("crm", [Item("1", contact("new")), Item("2", contact("back"))], ["1"])
        changes = spool.changes("crm", ["1", "2", "3"])
    assert sorted((i.id, i.record.last_name) for i in changes.items) == [("1", "new"), ("2", "back")]  # type: ignore[attr-defined]
    assert changes.deleted == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(*(st.from_type(t) for t in (Contact, Task, Event, Mail))), max_size=5))
def test_every_record_comes_back_from_the_spool_as_it_went_in(records: list[Record]) -> None:
    with Spool(lambda record: ()) as spool:
        spool.add("exchange", [Item(str(n), r, link=f"l{n}") for n, r in enumerate(records)])
        back = spool.changes("exchange", [str(n) for n in range(len(records))]).items
    assert sorted(back, key=lambda item: int(item.id)) == [Item(str(n), r, f"l{n}") for n, r in enumerate(records)]


def test_scan_sees_marks_made_between_chunks_and_keeps_listing_order() -> None:
    with Spool(keys) as spool:
        spool.add("exchange", [Item(str(n), contact(f"N{n}")) for n in range(7)], ["gone"])
        seen: list[list[str]] = []
        for chunk in spool.scan("exchange", 3, state=NEW):
            seen.append([e.id for e in chunk])
            spool.mark("exchange", [str(n) for n in range(7)], DONE)  # the rest is done meanwhile
        assert seen == [["0", "1", "2"], ["gone"]]
        assert spool.count(state=DONE) == 7 and spool.count(deleted=True) == 1


def test_cross_links_and_natural_keys_offer_only_unpaired_partners() -> None:
    with Spool(keys) as spool:
        spool.add("crm", [Item("C1", contact("A", "a@x")), Item("C2", contact("B", "b@x"), link="X9")])
        spool.add("exchange", [Item("X1", contact("A", "a@x"), link="C1"), Item("X9", contact("B2"))])
        spool.add("exchange", [Item("X2", contact("A", "a@x")), Item("X3", contact("A", "a@x"))])
        spool.mark("crm", ["C1", "C2"], UNPAIRED)
        spool.mark("exchange", ["X1", "X9", "X2"], UNPAIRED)  # X3 is paired already
        ((crm, exchange),) = list(spool.cross_linked(10))
        assert [e.id for e in crm] == ["C1", "C2"] and [e.id for e in exchange] == ["X1", "X9"]
        assert [e.id for e in spool.sharing_keys(["email:a@x"])] == ["X1", "X2"]


def test_only_crm_items_sharing_a_key_with_an_unpaired_exchange_item_wait_for_matching() -> None:
    with Spool(keys) as spool:
        spool.add("crm", [Item(f"C{n}", contact(f"N{n}", f"{n}@x")) for n in range(6)] + [Item("C9", contact("K"))])
        spool.add("exchange", [Item("X1", contact("N1", "1@x")), Item("X4", contact("N", "4@x"))])
        spool.add("exchange", [Item("X5", contact("N", "5@x")), Item("X0", contact("N", "0@x"))], ["X3"])
        spool.mark("crm", [f"C{n}" for n in (0, 1, 2, 3, 4, 9)], UNPAIRED)  # C5 is paired already
        spool.mark("exchange", ["X1", "X4"], UNPAIRED)  # X5 and X0 are paired already
        assert [[e.id for e in chunk] for chunk in spool.sharing_a_key(1)] == [["C1"], ["C4"]]
        spool.add("exchange", [Item("X4", contact("N", "moved@x"))])  # listed again with another key
        assert [[e.id for e in chunk] for chunk in spool.sharing_a_key(5)] == [["C1"]]


_SPILL = """
import os, sys
from framework.contracts import Item
from framework.model import Contact
from framework.spool import Spool

def under(folder):
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return [path for path in found if path.startswith(folder)]

spool = Spool(lambda record: ())
spool.db.execute("PRAGMA cache_size = 10")  # pages: a small cache spills early
spool.add("crm", [Item(str(n), Contact(last_name="x" * 500)) for n in range(2000)])
print(spool.count(), len(under(sys.argv[1])), len(os.listdir(sys.argv[1])))
spool.close()
print(len(under(sys.argv[1])))
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see open files")
def test_a_large_spool_is_spilled_to_a_file_that_is_gone_when_the_round_ends(tmp_path: Path) -> None:
    env = {**os.environ, "SQLITE_TMPDIR": str(tmp_path)}  # read once per process: a child of its own
    out = subprocess.run([sys.executable, "-c", _SPILL, str(tmp_path)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    during, after = out.stdout.splitlines()
    assert during == "2000 1 0"  # every entry, in one spilled file, open but already unlinked
    assert after == "0"


def test_planning_queries_neither_sort_nor_read_a_whole_side_per_chunk() -> None:
    """Each chunk is read from where the last ended, in seq order, and natural keys are looked
    up by their index: planning a round stays linear in its size."""
    with Spool(keys) as spool:
        statements: list[str] = []
        spool.db.set_trace_callback(statements.append)
        for side in ("crm", "exchange"):
            list(spool.scan(side, 100, state=UNPAIRED, deleted=False))
        list(spool.scan("exchange", 100, deleted=False, linked=True))
        list(spool.cross_linked(100))
        list(spool.sharing_a_key(100))
        spool.sharing_keys(["email:a@x"])
        spool.db.set_trace_callback(None)
        plans = {sql: [row[3] for row in spool.db.execute(f"EXPLAIN QUERY PLAN {sql}")] for sql in statements}
    assert len(plans) == 6
    for sql, steps in plans.items():
        assert not [s for s in steps if "TEMP B-TREE" in s or s.startswith("SCAN")], (sql, steps)
        assert "entry USING INTEGER PRIMARY KEY" in steps[0] or "natural_key_key" in steps[0], (sql, steps)
