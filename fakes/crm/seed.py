"""Ready-made fake CRM orgs: well-known users and OAuth client, and faker-generated records.

:func:`new_org` makes an org whose OAuth client is :data:`CLIENT_ID` / :data:`CLIENT_SECRET`
and whose users are :data:`DEFAULT_USERS` at the given mail domain (``org.admin`` is the CEO).
:func:`seed_org` fills an org with reproducible records. With the same seed and size it
produces the same data.
"""

from __future__ import annotations

import random
import re
from datetime import date, datetime, timedelta
from typing import Any

from faker import Faker

from fakes.crm.model import CrmOrg, CrmUser

CLIENT_ID = "exsync-crm-client"
CLIENT_SECRET = "exsync-crm-secret"
# (full name, mailbox local part, role, profile)
DEFAULT_USERS = (
    ("Amelia Admin", "amelia.admin", "CEO", "Administrator"),
    ("Sam Standard", "sam.standard", "Manager", "Standard"),
    ("Sofia Sales", "sofia.sales", "Manager", "Standard"),
)
# the custom fields of an org set up for exsync, by module (labels; API names replace spaces with _)
EXSYNC_FIELDS = {
    "Contacts": ("Exsync Link", "Exsync Company"),
    "Tasks": ("Exsync Link",),
    "Events": ("Exsync Link", "Exsync UID", "Exsync Time Zone", "Exsync Series", "Exsync Original Start"),
}
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting for input", "Deferred")
TASK_PRIORITIES = ("Highest", "High", "Normal", "Low", "Lowest")
DEAL_STAGES = ("Qualification", "Needs Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won")
PAST_DAYS = 365  # dated records spread over the past year ...
FUTURE_DAYS = 60  # ... and the next two months
# faker is slow (tens of microseconds a value), so record fields are drawn from pools of this
# many faker values; names still combine into POOL_SIZE**2 different people.
POOL_SIZE = 300
_POOLED = (
    "first_name",
    "last_name",
    "phone_number",
    "job",
    "street_address",
    "city",
    "state",
    "postcode",
    "country",
    "catch_phrase",
    "sentence",
    "company",
    "bs",
    "free_email_domain",
)


def new_org(
    edition: str = "Enterprise",
    sales_inbox: bool = False,
    *,
    name: str = "Zylker",
    domain: str = "contoso.example",
    custom_fields: bool = True,
) -> CrmOrg:
    """An empty org with the well-known OAuth client and :data:`DEFAULT_USERS` at ``domain``;
    with ``custom_fields``, set up for exsync (the fields of :data:`EXSYNC_FIELDS` exist)."""
    org = CrmOrg(name, edition, sales_inbox=sales_inbox, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    add_default_users(org, domain)
    if custom_fields:
        add_exsync_fields(org)
    return org


def add_exsync_fields(org: CrmOrg) -> None:
    """Create the custom fields an org set up for exsync has (single lines of 255)."""
    for module, labels in EXSYNC_FIELDS.items():
        for label in labels:
            org.create_field(module, label, "text", 255)


def add_default_users(org: CrmOrg, domain: str = "contoso.example") -> list[CrmUser]:
    """Add :data:`DEFAULT_USERS`: one admin (CEO, Administrator) and two standard users."""
    return [
        org.add_user(full_name, f"{local}@{domain}", role=role, profile=profile)
        for full_name, local, role, profile in DEFAULT_USERS
    ]


def seed_org(org: CrmOrg, *, size: int, seed: int = 1) -> None:
    """Fill ``org`` with ``size`` contacts and proportionate accounts, leads, deals, tasks
    and events, owned by its users (the default users are added if it has none)."""
    if not org.users():
        add_default_users(org)
    seeder = _Seeder(org, seed)
    accounts = seeder.accounts(max(3, size // 20))
    contacts = seeder.contacts(size, accounts)
    seeder.leads(max(3, size // 10))
    seeder.deals(max(2, size // 10), accounts, contacts)
    seeder.tasks(size // 2)
    seeder.events(size // 2, contacts)


class _Seeder:
    """Makes one kind of record per method, from one seeded faker and one seeded RNG."""

    def __init__(self, org: CrmOrg, seed: int) -> None:
        self.org = org
        self.fake = Faker()
        self.fake.seed_instance(seed)
        self.rng = random.Random(seed)
        self.pools = {name: [str(getattr(self.fake, name)()) for _ in range(POOL_SIZE)] for name in _POOLED}
        self.owners = org.users()
        self.now = org.now()
        self.emails: set[str] = set()

    def accounts(self, count: int) -> list[dict[str, Any]]:
        return [self._insert("Accounts", self._account()) for _ in range(count)]

    def contacts(self, count: int, accounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self._insert("Contacts", self._contact(accounts)) for _ in range(count)]

    def leads(self, count: int) -> None:
        for _ in range(count):
            first, last = self._pick("first_name"), self._pick("last_name")
            lead = {"First_Name": first, "Last_Name": last, "Company": self._pick("company")}
            self._insert("Leads", {**lead, "Email": self._email(first, last)})

    def deals(self, count: int, accounts: list[dict[str, Any]], contacts: list[dict[str, Any]]) -> None:
        members: dict[str, list[dict[str, Any]]] = {}
        for contact in contacts:
            members.setdefault((contact.get("Account_Name") or {}).get("id", ""), []).append(contact)
        for _ in range(count):
            account = self.rng.choice(accounts)
            contact = self.rng.choice(members.get(account["id"]) or contacts)
            deal = {
                "Deal_Name": f"{account['Account_Name']}: {self._pick('bs')}"[:120],
                "Stage": self.rng.choice(DEAL_STAGES),
                "Closing_Date": self._day().isoformat(),
                "Amount": self.rng.randrange(1_000, 200_000, 500),
                "Account_Name": {"id": account["id"]},
                "Contact_Name": {"id": contact["id"]},
            }
            self._insert("Deals", deal)

    def tasks(self, count: int) -> None:
        for _ in range(count):
            task = {
                "Subject": self._pick("catch_phrase"),
                "Due_Date": self._day().isoformat(),
                "Status": self.rng.choice(TASK_STATUSES),
                "Priority": self.rng.choice(TASK_PRIORITIES),
                "Description": self._pick("sentence"),
            }
            self._insert("Tasks", task)

    def events(self, count: int, contacts: list[dict[str, Any]]) -> None:
        for _ in range(count):
            self._insert("Events", self._event(contacts))

    def _account(self) -> dict[str, Any]:
        return {
            "Account_Name": self.fake.unique.company(),
            "Phone": self._pick("phone_number"),
            "Website": self.fake.url(),
            "Description": self._pick("catch_phrase"),
        }

    def _contact(self, accounts: list[dict[str, Any]]) -> dict[str, Any]:
        first, last = self._pick("first_name"), self._pick("last_name")
        data: dict[str, Any] = {
            "First_Name": first,
            "Last_Name": last,
            "Email": self._email(first, last),
            "Phone": self._pick("phone_number"),
            "Mobile": self._pick("phone_number"),
            "Title": self._pick("job")[:100],
            "Department": self.rng.choice(("Sales", "Marketing", "Finance", "Operations", "IT")),
            "Mailing_Street": self._pick("street_address"),
            "Mailing_City": self._pick("city"),
            "Mailing_State": self._pick("state"),
            "Mailing_Country": self._pick("country")[:100],
            "Mailing_Zip": self._pick("postcode")[:30],
        }
        if self.rng.random() < 0.6:
            data["Account_Name"] = {"id": self.rng.choice(accounts)["id"]}
        return data

    def _event(self, contacts: list[dict[str, Any]]) -> dict[str, Any]:
        start = self._moment()
        all_day = self.rng.random() < 0.1
        if all_day:
            start = start.replace(hour=0, minute=0)
        length = timedelta(days=1) if all_day else timedelta(minutes=self.rng.choice((30, 60, 90, 120)))
        guests = self.rng.sample(contacts, k=min(len(contacts), self.rng.randint(0, 2)))
        data: dict[str, Any] = {
            "Event_Title": self._pick("catch_phrase"),
            "Start_DateTime": start.isoformat(),
            "End_DateTime": (start + length).isoformat(),
            "All_day": all_day,
            "Venue": self._pick("city"),
            "Description": self._pick("sentence"),
            "Participants": [{"participant": c["Email"], "type": "email"} for c in guests],
        }
        if self.rng.random() < 0.1:
            data["Recurring_Activity"] = {"RRULE": f"FREQ=WEEKLY;INTERVAL=1;COUNT={self.rng.randint(2, 12)}"}
        return data

    def _pick(self, pool: str) -> str:
        return self.rng.choice(self.pools[pool])

    def _insert(self, module: str, data: dict[str, Any]) -> dict[str, Any]:
        return self.org.insert(module, data, self.rng.choice(self.owners))

    def _email(self, first: str, last: str) -> str:
        """A new address from the name (numbered when taken) at a free-mail domain."""
        local = re.sub(r"[^a-z0-9.]", "", f"{first}.{last}".lower())
        domain = self._pick("free_email_domain")
        address, n = f"{local}@{domain}", 1
        while address in self.emails:
            n += 1
            address = f"{local}{n}@{domain}"
        self.emails.add(address)
        return address

    def _moment(self) -> datetime:
        """A time on the hour or half hour within the seeded window, in the org's time zone."""
        base = self.now.replace(minute=0, second=0, microsecond=0)
        return base + timedelta(minutes=30 * self.rng.randrange(-PAST_DAYS * 48, FUTURE_DAYS * 48))

    def _day(self) -> date:
        return (self.now + timedelta(days=self.rng.randint(-PAST_DAYS, FUTURE_DAYS))).date()
