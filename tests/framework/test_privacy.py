"""What never leaves the mailbox: the privacy rules as a pure function, the engine applying
them on the memory stores, and the property that no private or excluded item ever reaches
the CRM over random edits on both sides."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.model import Contact, Event, Mail, Record, Task
from framework.privacy import PrivacyRules, Withheld
from framework.settings import Settings
from framework.state import SCHEMA_VERSION, Pair, StateStore, User
from framework.testing import ADMIN, MemoryOrg, make_org

SOON = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
RULES = PrivacyRules(
    excluded_addresses=frozenset({"ceo@partner.example"}),
    excluded_domains=frozenset({"hr.example"}),
    internal_domains=frozenset({"example.com"}),
)


def event(subject: str = "Visit", body: str = "", **privacy: Any) -> Event:
    return Event(subject=subject, start=SOON, end=SOON + timedelta(hours=1), body=body, **privacy)


# -- the decision -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("entity", "side", "record", "expected"),
    [
        ("events", "exchange", event(sensitivity="private"), Withheld("private", remove_copy=True)),
        ("tasks", "exchange", Task(subject="x", sensitivity="private"), Withheld("private", remove_copy=True)),
        ("events", "exchange", event(sensitivity="confidential"), None),
        ("events", "exchange", event(sensitivity="personal"), None),
        ("events", "exchange", event(), None),
        ("contacts", "exchange", Contact(email="Ceo@Partner.example"), Withheld("excluded address", True)),
        ("contacts", "crm", Contact(email="ann@hr.example"), Withheld("excluded domain", True)),
        ("contacts", "crm", Contact(email="ann@customer.example"), None),
        (
            "mails",
            "exchange",
            Mail(sender="a@customer.example", cc=("x@HR.example",)),
            Withheld("excluded domain", True),
        ),
        ("mails", "exchange", Mail(sender="a@example.com", to=("b@example.com",)), Withheld("internal only")),
        ("mails", "exchange", Mail(sender="a@example.com", to=("b@customer.example",)), None),
        ("events", "crm", event(sensitivity="private"), None),  # the CRM carries no sensitivity
    ],
)
def test_what_the_rules_withhold_and_why(entity, side, record, expected):
    assert RULES.withheld(entity, side, record) == expected


def test_confidential_and_personal_are_withheld_when_the_administrator_says_so():
    rules = PrivacyRules(sensitivity={"private": "keep", "confidential": "remove", "personal": "keep"})
    assert rules.withheld("events", "exchange", event(sensitivity="private")) == Withheld("private")
    assert rules.withheld("events", "exchange", event(sensitivity="confidential")) == Withheld("confidential", True)
    assert rules.withheld("events", "exchange", event(sensitivity="personal")) == Withheld("personal")
    assert (
        PrivacyRules(sensitivity={"private": "share"}).withheld("events", "exchange", event(sensitivity="private"))
        is None
    )


def test_opt_in_tracks_only_items_carrying_the_category_and_opt_out_all_but_those():
    opt_in = PrivacyRules(tracking={"events": "opt-in"})
    assert opt_in.withheld("events", "exchange", event()) == Withheld("not opted in")
    assert opt_in.withheld("events", "exchange", event(categories=("crm",))) is None  # Outlook ignores case
    assert opt_in.withheld("tasks", "exchange", Task(subject="x")) is None  # another entity: everything
    opt_out = PrivacyRules(tracking={"events": "opt-out"})
    assert opt_out.withheld("events", "exchange", event()) is None
    assert opt_out.withheld("events", "exchange", event(categories=("Not in CRM",))) == Withheld("opted out")
    assert opt_in.stamped("events", event()).categories == ("CRM",)
    assert opt_out.stamped("events", event()).categories == ()


def test_a_users_own_exclusions_and_tracking_add_to_the_orgs():
    org = Settings(exclude_domains=["hr.example"], tracking={"events": "opt-out"})
    org.user_privacy = {"u2": {"exclude_addresses": ["Wife@Home.example"], "tracking": {"events": "opt-in"}}}
    ann, bob = User("u2", "ann@example.com"), User("u3", "bob@example.com", mailbox="bob@mail.example")
    rules = org.privacy_rules(ann, [ann, bob])
    assert rules.excluded_addresses == {"wife@home.example"}
    assert rules.excluded_domains == {"hr.example"}
    assert rules.tracking == {"events": "opt-in"}
    assert rules.internal_domains == {"example.com", "mail.example"}  # the org's users' domains by default
    assert org.privacy_rules(bob, [ann, bob]).excluded_addresses == frozenset()
    shown = rules.describe()
    assert shown["tracking"] == {"events": "opt-in"} and shown["excluded_addresses"] == ["wife@home.example"]
    assert shown["internal_mails"] == "skip (example.com, mail.example)"


# -- the engine ---------------------------------------------------------------------------------
def sides(org: MemoryOrg, entity: str) -> tuple[Any, Any]:
    return org.world.side("crm", "u1", entity), org.world.side("exchange", "u1", entity)


def bodies(side: Any) -> set[str]:
    return {getattr(r, "body", "") or getattr(r, "notes", "") for r, _link in side.records.values()}


def test_a_private_item_is_never_copied_and_the_run_says_how_many_and_why():
    org = make_org()
    crm, exchange = sides(org, "events")
    exchange.put(event("Doctor", "blood test", sensitivity="private"))
    exchange.put(event("Customer visit", "agenda"))
    report = org.sync()
    assert bodies(crm) == {"agenda"}
    assert report.entities["events"].withheld == {"private": 1}
    assert report.as_dict()["entities"]["events"]["withheld"] == {"private": 1}
    (entry,) = org.ctx.audit.query(action="sync")
    assert entry.detail["entities"]["events"]["withheld"] == {"private": 1}
    assert "blood test" not in str(entry.detail) and "Doctor" not in str(entry.detail)


@pytest.mark.parametrize("treatment", ["remove", "keep"])
def test_an_item_made_private_after_it_synced_is_removed_or_kept_as_chosen_and_audit_logged(treatment):
    org = make_org()
    org.set(sensitivity={"private": treatment})
    crm, exchange = sides(org, "events")
    item = exchange.put(event("Lunch", "v1"))
    org.sync()
    exchange.put(event("Lunch", "v2 private", sensitivity="private"), item)
    report = org.sync()
    assert "v2 private" not in bodies(crm)
    assert bodies(crm) == (set() if treatment == "remove" else {"v1"})
    assert report.entities["events"].withheld == {"private": 1}
    (entry,) = org.ctx.audit.query(action="withhold-record")
    assert entry.detail["reason"] == "private"
    assert entry.detail["copy"] == ("removed" if treatment == "remove" else "kept")
    if treatment == "keep":  # a CRM change never overwrites the private item
        (crm_id,) = crm.records
        crm.put(event("Lunch", "edited in the CRM"), crm_id)
        org.sync()
        assert exchange.records[item][0].body == "v2 private"
    exchange.put(event("Lunch", "v3 public"), item)  # made public again: it syncs again
    org.sync()
    assert bodies(crm) == {"v3 public"}
    assert org.ctx.state.count_withheld(ADMIN.crm_id) == {}


def test_a_crm_record_matching_a_private_item_is_paired_without_writing_either():
    org = make_org()
    crm, exchange = sides(org, "contacts")
    crm.put(Contact(last_name="Lee", email="ann@customer.example", notes="crm"))
    exchange.put(Contact(last_name="Lee", email="ann@customer.example", notes="secret", sensitivity="private"))
    org.sync()
    org.sync()
    assert bodies(crm) == {"crm"} and bodies(exchange) == {"secret"}
    assert (crm.writes, exchange.writes) == (0, 0)


def test_contacts_at_excluded_addresses_and_domains_sync_neither_way():
    org = make_org()
    org.set(exclude_domains=["hr.example"], exclude_addresses=["wife@home.example"])
    crm, exchange = sides(org, "contacts")
    crm.put(Contact(last_name="Hr", email="boss@hr.example"))
    exchange.put(Contact(last_name="Wife", email="wife@home.example"))
    exchange.put(Contact(last_name="Buyer", email="buyer@customer.example"))
    report = org.sync()
    assert [r.email for r, _ in crm.records.values()] == ["boss@hr.example", "buyer@customer.example"]
    assert [r.email for r, _ in exchange.records.values()] == ["wife@home.example", "buyer@customer.example"]
    assert report.entities["contacts"].withheld == {"excluded address": 1, "excluded domain": 1}


def test_internal_only_mails_are_skipped_unless_enabled():
    org = make_org()  # the org's user is admin@example.com
    _, exchange = sides(org, "mails")
    exchange.put(Mail("<a@x>", "Team lunch", "bob@example.com", ("admin@example.com",), sent_at=SOON - timedelta(1)))
    assert org.sync().entities["mails"].withheld == {"internal only": 1}
    org.set(internal_mails=True)
    exchange.put(Mail("<b@x>", "Offsite", "bob@example.com", ("admin@example.com",), sent_at=SOON - timedelta(1)))
    assert org.sync().entities["mails"].sides["crm"].created == 1


def test_a_mail_in_the_crm_is_kept_when_its_mailbox_copy_is_withheld_later():
    """A mail record is shared by every mailbox holding the mail: it is never removed for one."""
    org = make_org()
    crm, exchange = sides(org, "mails")
    mail = Mail("<q@x>", "Quote", "ann@customer.example", ("admin@example.com",), sent_at=SOON - timedelta(1))
    item = exchange.put(mail)
    org.sync()
    org.set(exclude_domains=["customer.example"])
    exchange.put(dataclasses.replace(mail, categories=("Done",)), item)
    report = org.sync()
    assert len(crm.records) == 1 and report.entities["mails"].withheld == {"excluded domain": 1}
    (entry,) = org.ctx.audit.query(action="withhold-record")
    assert entry.detail["copy"] == "kept"


def test_opt_in_copies_only_tagged_items_and_tags_what_the_crm_puts_in_the_mailbox():
    org = make_org()
    org.set(tracking={"events": "opt-in"})
    crm, exchange = sides(org, "events")
    exchange.put(event("Private chat", "untagged"))
    tagged = exchange.put(event("Deal review", "tagged", categories=("CRM",)))
    crm.put(event("Kickoff", "from the crm"))
    report = org.sync()
    assert bodies(crm) == {"tagged", "from the crm"}
    assert report.entities["events"].withheld == {"not opted in": 1}
    created = [r for r, _ in exchange.records.values() if r.body == "from the crm"]
    assert [r.categories for r in created] == [("CRM",)]
    exchange.put(event("Deal review", "untagged now"), tagged)  # untracked: the CRM copy stays, unsynced
    org.sync()
    assert bodies(crm) == {"tagged", "from the crm"}


def test_a_dry_run_counts_what_it_withholds_and_names_no_content():
    org = make_org()
    crm, exchange = sides(org, "events")
    item = exchange.put(event("Lunch", "v1"))
    org.sync()
    exchange.put(event("Therapy", "v2", sensitivity="private"), item)
    report = org.sync(dry_run=True)
    assert report.entities["events"].withheld == {"private": 1}
    assert any(line.startswith("withhold (private): remove the copy") for line in report.entities["events"].planned)
    assert "Therapy" not in str(report.as_dict())
    assert bodies(crm) == {"v1"}  # nothing written


# -- the property ------------------------------------------------------------------------------
NAMES = ("Ann", "Bob", "Cy")
DOMAINS = ("customer.example", "hr.example")  # hr.example is excluded
edits = st.lists(
    st.tuples(
        st.sampled_from(["crm", "exchange"]),
        st.sampled_from(["create", "update", "mark", "tag", "delete", "sync"]),
        st.sampled_from(NAMES),
        st.sampled_from(("normal", "private", "confidential", "personal")),
        st.sampled_from(DOMAINS),
    ),
    max_size=25,
)


def _record(entity: str, name: str, marker: str, sensitivity: str, domain: str) -> Record:
    if entity == "contacts":
        return Contact(last_name=name, email=f"{name.lower()}@{domain}", notes=marker, sensitivity=sensitivity)
    start = SOON + timedelta(days=len(name))
    return Event(subject=name, start=start, end=start + timedelta(hours=1), body=marker, sensitivity=sensitivity)


def _marker(record: Record) -> str:
    return record.notes if isinstance(record, Contact) else record.body  # type: ignore[union-attr]


@pytest.mark.parametrize("entity", ["contacts", "events"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=edits,
    policy=st.sampled_from(["crm-wins", "exchange-wins"]),
    private=st.sampled_from(["remove", "keep"]),
    confidential=st.sampled_from(["share", "remove", "keep"]),
    tracking=st.sampled_from(["all", "opt-in"]),
)
def test_no_private_or_excluded_item_ever_reaches_the_crm(entity, history, policy, private, confidential, tracking):
    """Random edits on both sides, sensitivity and category changes included. Every content
    version is unique (a marker); the CRM may hold only what it made itself or what was in a
    shared Exchange item when a sync began. A withheld Exchange item is never written, and
    one whose copy is to be removed has none left in the CRM after the sync."""
    org = make_org()
    org.set(conflict_policy=policy, sensitivity={"private": private, "confidential": confidential})
    org.set(exclude_domains=["hr.example"], tracking={entity: tracking})
    check = _Check(org, entity, {"private": private, "confidential": confidential}, opt_in=tracking == "opt-in")
    markers = itertools.count()
    for which, action, name, sensitivity, domain in history:
        side = check.crm if which == "crm" else check.exchange
        marker = f"{which}{next(markers)}"
        if which == "crm":
            check.allowed.add(marker)
        if action == "sync":
            check.sync()
        elif action == "create":
            side.put(_record(entity, name, marker, "normal" if which == "crm" else sensitivity, domain))
        elif side.records:
            target = sorted(side.records)[hash(name) % len(side.records)]
            record = side.records[target][0]
            if action == "update":
                side.put(dataclasses.replace(record, **_marked(record, marker)), target)
            elif action == "mark" and which == "exchange":  # only Exchange carries a sensitivity
                side.put(dataclasses.replace(record, sensitivity=sensitivity), target)
            elif action == "tag" and which == "exchange":  # and categories: the opt-in one on or off
                side.put(dataclasses.replace(record, categories=() if record.categories else ("crm",)), target)
            elif action == "delete":
                side.remove(target)
    check.sync()


def _marked(record: Record, marker: str) -> dict[str, str]:
    return {"notes": marker} if isinstance(record, Contact) else {"body": marker}


class _Check:
    """Syncs, and checks the privacy invariants around each sync."""

    def __init__(self, org: MemoryOrg, entity: str, treatments: dict[str, str], *, opt_in: bool) -> None:
        self.org, self.entity, self.treatments, self.opt_in = org, entity, treatments, opt_in
        self.crm, self.exchange = sides(org, entity)
        self.allowed: set[str] = set()  # markers the CRM may hold

    def verdict(self, record: Record) -> Withheld | None:
        """The rules of this test, written out on their own (not through framework.privacy)."""
        if self.treatments.get(record.sensitivity, "share") != "share":
            return Withheld(record.sensitivity, self.treatments[record.sensitivity] == "remove")
        if self.opt_in and "CRM" not in {c.upper() for c in record.categories}:
            return Withheld("not opted in")
        if isinstance(record, Contact) and record.email.endswith("@hr.example"):
            return Withheld("excluded domain", True)
        return None

    def sync(self) -> None:
        withheld = {}
        for item_id, (record, _link) in self.exchange.records.items():
            verdict = self.verdict(record)
            if verdict is None:
                self.allowed.add(_marker(record))
            else:
                withheld[item_id] = (record, verdict)
        self.org.sync(force=True)
        in_crm = {_marker(r) for r, _link in self.crm.records.values()}
        assert in_crm <= self.allowed, f"withheld content reached the CRM: {in_crm - self.allowed}"
        for item_id, (record, verdict) in withheld.items():
            assert self.exchange.records.get(item_id, (None,))[0] == record, "a withheld item was written"
            if verdict.remove_copy:
                assert _marker(record) not in in_crm, f"the CRM copy of a {verdict.reason} item was kept"


def test_a_state_database_of_the_previous_schema_gains_the_withheld_flag_and_keeps_its_pairs(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    old = StateStore(url)
    with old.transaction() as conn:
        conn.execute(sa.text("ALTER TABLE pairs DROP COLUMN withheld"))  # as version 2 made it
        conn.execute(sa.text("UPDATE meta SET value = '2' WHERE key = 'schema'"))
        conn.execute(
            sa.text(
                "INSERT INTO pairs (user_id, entity, crm_id, exchange_id, crm_hash, exchange_hash, label)"
                " VALUES ('u1', 'events', 'c1', 'x1', 'a', 'b', '')"
            )
        )
    old.engine.dispose()
    new = StateStore(url)
    assert new.schema_version == SCHEMA_VERSION == 3
    (pair,) = new.pairs("u1", "events")
    assert (pair.crm_id, pair.withheld) == ("c1", "")
    with new.transaction() as conn:
        new.save_pairs(conn, "u1", "events", [Pair("c1", "x1", "a", "b", withheld="exchange:private")], [])
    (pair,) = new.pairs_touching("u1", "events", ["c1"], [])
    assert (pair.withheld_side, pair.withheld_reason) == ("exchange", "private")
    assert new.count_withheld("u1") == {"events": 1}
