"""The planner: a pure function from what each side reported and the pair state to actions.

A three-way compare, as vdirsyncer does it: each pair remembers the hash each side had at
the last sync, so a side whose current hash differs has changed. Changed on one side:
update the other. Changed on both: a conflict for the policy. Deleted: delete the other.
Unpaired records are first paired by the cross-link a side stores, then by the entity's
natural key, and only then created on the other side, so neither a first sync nor a sync
after lost state duplicates anything.

Privacy is decided here, in one place, before any of that: a record the privacy rules
withhold (:mod:`framework.privacy`) is never copied, and a pair holding one writes nothing
either way (its copy on the other side deleted or kept, as the rules say) until the record
may cross again.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from framework.contracts import (
    SIDES,
    Changes,
    Conflict,
    ConflictPolicy,
    Create,
    Delete,
    EntityDefinition,
    Item,
    SideName,
    Update,
    WriteOp,
    other,
)
from framework.model import Record, content_hash, describe
from framework.privacy import Withheld
from framework.state import Pair


@dataclass(frozen=True)
class Write:
    """Write ``op`` to ``side``; ``source`` is the item it copies (None for deletions)."""

    side: SideName
    op: WriteOp
    source: Item | None
    source_side: SideName | None
    pair: Pair | None
    merged: bool = False
    """Half of a merge written to both sides: the pair then remembers, for the source side too,
    the hash the merged record will be listed with there."""


@dataclass(frozen=True)
class Link:
    """Pair (or re-pair) two records that already agree, writing nothing."""

    pair: Pair


@dataclass(frozen=True)
class Unlink:
    """Forget a pair whose records are gone."""

    pair: Pair


@dataclass(frozen=True)
class Resolution:
    """A conflict and the side its policy chose."""

    conflict: Conflict
    winner: SideName
    policy: str


@dataclass(frozen=True)
class Withdrawal:
    """A synced pair whose ``side`` record is now withheld: its copy removed, or kept unsynced."""

    pair: Pair
    side: SideName
    reason: str
    removed: bool


@dataclass
class Plan:
    """What a run will do for one (user, entity)."""

    writes: list[Write] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    unlinks: list[Unlink] = field(default_factory=list)
    resolutions: list[Resolution] = field(default_factory=list)
    skipped: dict[SideName, int] = field(default_factory=lambda: dict.fromkeys(SIDES, 0))
    unmatched: dict[SideName, list[str]] = field(default_factory=lambda: {side: [] for side in SIDES})
    """Unpaired items left as they are because their side is not in ``copy_unmatched``."""
    withheld: Counter[str] = field(default_factory=Counter)
    """Records not copied (or pairs not written) because of the privacy rules, per reason."""
    withdrawals: list[Withdrawal] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.writes or self.links or self.unlinks)

    def count(self, side: SideName, kind: type) -> int:
        return sum(1 for w in self.writes if w.side == side and isinstance(w.op, kind))


@dataclass(frozen=True)
class PlanInput:
    """Everything the planner looks at."""

    entity: EntityDefinition
    pairs: list[Pair]
    crm: Changes
    exchange: Changes
    writable: frozenset[SideName]
    policy: ConflictPolicy
    echo_hash: Callable[[SideName, Item], str]
    """The hash ``item`` (from the other side) will have on the given side once written there."""
    copy_unmatched: frozenset[SideName] = frozenset(SIDES)
    """The sides whose unpaired, unmatched items are copied to the other side (the engine
    plans in chunks, and an Exchange item a chunk did not match may match a later chunk)."""
    withhold: Callable[[SideName, Record], Withheld | None] = lambda side, record: None
    """Why a record read from a side may not be copied to the other (None: it may)."""
    stamp: Callable[[Record], Record] = lambda record: record
    """A record as it is created in Exchange (e.g. carrying the opt-in category)."""


def plan(data: PlanInput) -> Plan:
    """Decide every action for one (user, entity). Pure: reads nothing, writes nothing."""
    return _Planner(data).run()


class _Planner:
    def __init__(self, data: PlanInput) -> None:
        self.d = data
        self.result = Plan()
        self.pair_of: dict[SideName, dict[str, Pair]] = {
            "crm": {p.crm_id: p for p in data.pairs},
            "exchange": {p.exchange_id: p for p in data.pairs},
        }
        self.items: dict[SideName, dict[str, Item]] = {
            "crm": {i.id: i for i in data.crm.items},
            "exchange": {i.id: i for i in data.exchange.items},
        }
        self.deleted: dict[SideName, set[str]] = {"crm": set(data.crm.deleted), "exchange": set(data.exchange.deleted)}

    def run(self) -> Plan:
        for pair in self._touched_pairs():
            if not self._plan_withheld(pair):
                self._plan_pair(pair)
        unpaired = {side: [i for i in self.items[side].values() if i.id not in self.pair_of[side]] for side in SIDES}
        crm_left, exchange_left = self._match(unpaired["crm"], unpaired["exchange"])
        leftovers: dict[SideName, list[Item]] = {"crm": crm_left, "exchange": exchange_left}
        for side, items in leftovers.items():
            for item in items:
                if side in self.d.copy_unmatched:
                    withheld = self.d.withhold(side, item.record)
                    if withheld is not None:
                        self.result.withheld[withheld.reason] += 1
                    else:
                        self._copy(item, side)
                else:
                    self.result.unmatched[side].append(item.id)
        return self.result

    # privacy -------------------------------------------------------------------------------
    def _verdict(self, pair: Pair) -> tuple[SideName, Withheld, bool] | None:
        """The side whose record of ``pair`` is withheld, why, and whether it was listed now:
        a listed record is judged afresh, one not listed keeps the pair's earlier verdict."""
        judged: tuple[SideName, SideName] = ("exchange", "crm")
        for side in judged:
            item = self._item(side, pair)
            if item is not None:
                withheld = self.d.withhold(side, item.record)
                if withheld is not None:
                    return side, withheld, True
            elif pair.withheld_side == side:
                return side, Withheld(pair.withheld_reason), False
        return None

    def _plan_withheld(self, pair: Pair) -> bool:
        """Plan a pair whose record on one side is (or was) withheld; False leaves it to the
        ordinary three-way compare (a pair released, its flag cleared, goes there too)."""
        verdict = self._verdict(pair)
        if verdict is None:
            if pair.withheld:  # it may cross again: changes made meanwhile sync as usual
                released = dataclasses.replace(pair, withheld="")
                self.result.links.append(Link(released))
                self._plan_pair(released)
                return True
            return False
        side, withheld, listed = verdict
        self.result.withheld[withheld.reason] += 1
        if "deleted" in (self._state("crm", pair), self._state("exchange", pair)):
            self.result.unlinks.append(Unlink(pair))  # one side gone: forget the pair, write nothing
            return True
        flag = f"{side}:{withheld.reason}"
        target = other(side)
        # a mail record is shared by every mailbox holding the mail (keep_deleted): it is kept
        remove = withheld.remove_copy and target == "crm" and target in self._writable_for_entity()
        remove = remove and not self.d.entity.keep_deleted
        if pair.withheld and not (listed and (remove or pair.withheld != flag)):
            return True  # withheld as it was: nothing crosses
        # flagged before any removal, so that a removal that fails leaves nothing syncing
        self.result.links.append(Link(dataclasses.replace(pair, withheld=flag)))
        if remove:
            self.result.writes.append(Write(target, Delete(pair.crm_id), None, None, pair))
        if remove or not pair.withheld:
            self.result.withdrawals.append(Withdrawal(pair, side, withheld.reason, remove))
        return True

    def _match_withheld(self, crm: Item, exchange: Item) -> bool:
        """Pair two matching records of which one is withheld, writing nothing: the other side
        is never written with it, and never copied over it as a duplicate."""
        judged: tuple[tuple[SideName, Item], ...] = (("exchange", exchange), ("crm", crm))
        for side, item in judged:
            withheld = self.d.withhold(side, item.record)
            if withheld is not None:
                self.result.withheld[withheld.reason] += 1
                pair = dataclasses.replace(self._new_pair(crm, exchange), withheld=f"{side}:{withheld.reason}")
                self.result.links.append(Link(pair))
                return True
        return False

    # pairs that one side reported on --------------------------------------------------------
    def _touched_pairs(self) -> list[Pair]:
        seen: dict[int, Pair] = {}
        for side in SIDES:
            for key in (*self.items[side], *self.deleted[side]):
                pair = self.pair_of[side].get(key)
                if pair is not None:
                    seen[id(pair)] = pair
        return list(seen.values())

    def _state(self, side: SideName, pair: Pair) -> str:
        key = pair.crm_id if side == "crm" else pair.exchange_id
        if key in self.deleted[side] and key not in self.items[side]:
            return "deleted"
        item = self.items[side].get(key)
        stored = pair.crm_hash if side == "crm" else pair.exchange_hash
        if item is not None and content_hash(item.record) != stored:
            return "changed"
        return "same"

    def _item(self, side: SideName, pair: Pair) -> Item | None:
        return self.items[side].get(pair.crm_id if side == "crm" else pair.exchange_id)

    def _plan_pair(self, pair: Pair) -> None:
        crm, exchange = self._state("crm", pair), self._state("exchange", pair)
        if crm == exchange == "same":
            return
        if crm == exchange == "deleted":
            self.result.unlinks.append(Unlink(pair))
            return
        if "same" in (crm, exchange):
            changed: SideName = "crm" if exchange == "same" else "exchange"
            self._propagate(changed, pair, deleted=(crm if changed == "crm" else exchange) == "deleted")
            return
        if crm == exchange == "changed" and self._agree(pair):
            return
        winner = self._winner(Conflict(self.d.entity.name, self._item("crm", pair), self._item("exchange", pair)))
        loser_deleted = (crm if winner == "exchange" else exchange) == "deleted"
        if loser_deleted:
            self._copy(self._item(winner, pair), winner, unlink=pair)  # type: ignore[arg-type]
        elif crm == exchange == "changed" and self._merge(winner, pair):
            return
        else:
            self._propagate(winner, pair, deleted=(crm if winner == "crm" else exchange) == "deleted")

    def _merge(self, winner: SideName, pair: Pair) -> bool:
        """Both sides changed a record whose entity merges changes (a series' exceptions, made on
        either side): the merged record is written to both. False when the merge adds nothing to
        the winner's record, which then simply wins."""
        merge = self.d.entity.merge
        if merge is None or self._writable_for_entity() != frozenset(SIDES):
            return False
        won, lost = self._item(winner, pair), self._item(other(winner), pair)
        assert won is not None and lost is not None
        merged = merge(won.record, lost.record)
        if content_hash(merged) == content_hash(won.record):
            return False
        for target in SIDES:
            read = won if other(target) == winner else lost
            source = dataclasses.replace(read, record=merged)
            target_id = pair.crm_id if target == "crm" else pair.exchange_id
            update = Update(target_id, merged, source.id)
            self.result.writes.append(Write(target, update, source, other(target), pair, merged=True))
        return True

    def _agree(self, pair: Pair) -> bool:
        """Both changed to the same content: just remember the new hashes."""
        crm, exchange = self._item("crm", pair), self._item("exchange", pair)
        assert crm is not None and exchange is not None
        if self.d.echo_hash("exchange", crm) != content_hash(exchange.record):
            return False
        self.result.links.append(Link(self._new_pair(crm, exchange)))
        return True

    def _winner(self, conflict: Conflict) -> SideName:
        writable = self.d.writable
        if len(writable) == 1:  # one way: the source always wins
            (target,) = writable
            return other(target)
        winner = self.d.policy.winner(conflict)
        self.result.resolutions.append(Resolution(conflict, winner, self.d.policy.name))
        return winner

    def _propagate(self, source: SideName, pair: Pair, *, deleted: bool) -> None:
        target = other(source)
        target_id = pair.crm_id if target == "crm" else pair.exchange_id
        if target not in self._writable_for_entity() or (deleted and self.d.entity.keep_deleted):
            self.result.skipped[source] += 1
            if deleted:
                self.result.unlinks.append(Unlink(pair))
            return
        if deleted:
            self.result.writes.append(Write(target, Delete(target_id), None, None, pair))
            return
        item = self._item(source, pair)
        assert item is not None
        self.result.writes.append(Write(target, Update(target_id, item.record, item.id), item, source, pair))

    def _copy(self, item: Item, source: SideName, unlink: Pair | None = None) -> None:
        target = other(source)
        if unlink is not None:
            self.result.unlinks.append(Unlink(unlink))
        if target not in self._writable_for_entity():
            self.result.skipped[source] += 1
            return
        if target == "exchange":  # the stamp changes no hash: the source stays the same item
            item = dataclasses.replace(item, record=self.d.stamp(item.record))
        self.result.writes.append(Write(target, Create(item.record, item.id), item, source, None))

    def _writable_for_entity(self) -> frozenset[SideName]:
        return self.d.writable & self.d.entity.writable

    # first-sync matching --------------------------------------------------------------------
    def _match(self, crm: list[Item], exchange: list[Item]) -> tuple[list[Item], list[Item]]:
        """Pair unpaired items by cross-link, then by natural key; return what is left."""
        crm_by_id = {i.id: i for i in crm}
        exchange_by_id = {i.id: i for i in exchange}
        matches: list[tuple[Item, Item]] = []
        for item in exchange:
            if item.link in crm_by_id:
                matches.append((crm_by_id.pop(item.link), exchange_by_id.pop(item.id)))
        for item in list(crm_by_id.values()):
            if item.link in exchange_by_id:
                matches.append((crm_by_id.pop(item.id), exchange_by_id.pop(item.link)))
        by_key = _index(exchange_by_id.values(), self.d.entity)
        for item in list(crm_by_id.values()):
            partner = self._partner(item, by_key, exchange_by_id)
            if partner is not None:
                exchange_by_id.pop(partner.id)
                matches.append((crm_by_id.pop(item.id), partner))
        for crm_item, exchange_item in matches:
            self._plan_match(crm_item, exchange_item)
        return list(crm_by_id.values()), list(exchange_by_id.values())

    def _partner(self, item: Item, by_key: dict[str, list[Item]], unmatched: dict[str, Item]) -> Item | None:
        """The first unmatched Exchange item sharing a natural key with ``item``, strongest key first."""
        for key in self.d.entity.match_keys(item.record):
            for candidate in by_key.get(key, ()):
                if candidate.id in unmatched:
                    return candidate
        return None

    def _plan_match(self, crm: Item, exchange: Item) -> None:
        if self._match_withheld(crm, exchange):
            return
        pair = self._new_pair(crm, exchange)
        if self.d.echo_hash("exchange", crm) == content_hash(exchange.record):
            self.result.links.append(Link(pair))
            return
        winner = self._winner(Conflict(self.d.entity.name, crm, exchange))
        self._propagate(winner, pair, deleted=False)
        if other(winner) not in self._writable_for_entity():
            self.result.links.append(Link(pair))

    def _new_pair(self, crm: Item, exchange: Item) -> Pair:
        return Pair(
            crm.id, exchange.id, content_hash(crm.record), content_hash(exchange.record), label=describe(crm.record)
        )


def _index(items: Iterable[Item], entity: EntityDefinition) -> dict[str, list[Item]]:
    index: dict[str, list[Item]] = {}
    for item in items:
        for key in entity.match_keys(item.record):
            index.setdefault(key, []).append(item)
    return index
