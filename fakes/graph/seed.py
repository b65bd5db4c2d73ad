"""Seeding the fake tenant: users, the exsync app registration and Faker-made mailbox contents.

Contents are in Graph resource shape (what :class:`~fakes.tenant.Tenant` stores) and depend
only on ``seed`` and ``now``. Faker fills small pools of names, companies and sentences
once; items combine them with a seeded ``random.Random``, so 10,000 items seed in seconds.
"""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from faker import Faker

from fakes.graph.authority import Authority
from fakes.tenant import Mailbox, Tenant

CLIENT_ID = "exsync-graph-app"
CLIENT_SECRET = "exsync-graph-secret"
REDIRECT_URI = "http://localhost:8765/callback"
SERVICE_ACCOUNT = "svc@contoso.example"
EXSYNC_PROPERTY_SET = "{c1a0e2b4-5f3d-4e8a-9b7c-2d6f8a1e4b90}"  # as plugins.graph.mapping uses
EXT_PROPERTY_LINK = f"String {EXSYNC_PROPERTY_SET} Name exsyncLink"
APP_ROLES = ("User.Read.All", "Contacts.ReadWrite", "Calendars.ReadWrite", "Mail.Read")
"""The application permissions the exsync app is granted: all an org-wide sync needs but To Do's
``Tasks.ReadWrite.All``, which :meth:`~fakes.graph.authority.Authority.grant_app_roles` adds."""

_USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
_SURNAMES = ("Archer", "Baker", "Chen", "Dunn", "Evans", "Fisher", "Garcia", "Hughes")
_ZONES = ("UTC", "W. Europe Standard Time", "Pacific Standard Time", "Europe/London", "America/New_York")
_TASK_STATUSES = ("notStarted", "notStarted", "inProgress", "completed", "waitingOnOthers", "deferred")
_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_POOL = 300


def new_tenant(
    users: int = 3, *, size: int = 0, seed: int = 1, now: datetime | None = None
) -> tuple[Tenant, dict[str, str]]:
    """A tenant with ``users`` users and the EWS service account, and {address: password}.

    Users are alice, bob, carol, ... @contoso.example (``user9@`` and so on past the eighth)
    with password ``"<Name>-Passw0rd!"``; ``svc@contoso.example`` (``"Svc-Passw0rd!"``) may
    impersonate. With ``size`` each user's mailbox is seeded (seed ``seed + n`` for the n-th).
    """
    tenant = Tenant()
    passwords: dict[str, str] = {}
    for n in range(users):
        login = _USERS[n] if n < len(_USERS) else f"user{n + 1}"
        surname = _SURNAMES[n] if n < len(_SURNAMES) else "Tester"
        box = tenant.add_user(f"{login}@{tenant.domain}", f"{login.capitalize()} {surname}", _password(login))
        passwords[box.address] = box.password
        if size:
            seed_mailbox(tenant, box, size=size, seed=seed + n, now=now)
    service = tenant.add_user(SERVICE_ACCOUNT, "exsync Service", _password("svc"), can_impersonate=True)
    passwords[service.address] = service.password
    return tenant, passwords


def new_authority(tenant: Tenant, **options: Any) -> Authority:
    """An :class:`Authority` for ``tenant`` with the exsync app registered.

    The app is confidential: ``CLIENT_ID``/``CLIENT_SECRET``, redirect URI ``REDIRECT_URI``
    and any other http://localhost URL, application permissions :data:`APP_ROLES`.
    ``options`` go to :class:`Authority`.
    """
    authority = Authority(tenant, **options)
    authority.register_app(
        CLIENT_ID, secret=CLIENT_SECRET, redirect_uris=[REDIRECT_URI], any_loopback_redirect=True, roles=APP_ROLES
    )
    return authority


def seed_mailbox(tenant: Tenant, box: Mailbox | str, *, size: int, seed: int = 1, now: datetime | None = None) -> None:
    """Fill a mailbox: ``size`` contacts and messages, ``size // 2`` events and To Do tasks.

    Events spread over now ± 180 days in a few zones, every seventh all-day, the first two
    weekly series (one ending, one without end). Messages spread over the past year (a third
    in sentitems, a few with attachments), created oldest first.
    """
    mailbox = tenant.mailbox(box) if isinstance(box, str) else box
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    maker = _Maker(random.Random(seed), _Pools.build(seed), mailbox, moment)
    for n in range(size):
        tenant.create(mailbox, "contacts", maker.contact(n))
    for n in range(size // 2):
        tenant.create(mailbox, "calendar", maker.event(n))
        tenant.create(mailbox, "tasks", maker.task())
    for folder, received, data in sorted((maker.message(n) for n in range(size)), key=lambda m: m[1]):
        tenant.create(mailbox, folder, data, when=received)


def _password(login: str) -> str:
    return f"{login.capitalize()}-Passw0rd!"


@dataclass(frozen=True)
class _Pools:
    """Faker-made values that items are combined from."""

    first_names: list[str]
    last_names: list[str]
    companies: list[str]
    jobs: list[str]
    streets: list[str]
    cities: list[str]
    sentences: list[str]
    paragraphs: list[str]
    words: list[str]

    @classmethod
    def build(cls, seed: int) -> _Pools:
        fake = Faker("en_US")
        fake.seed_instance(seed)

        def pool(make: Any) -> list[str]:
            return [str(make()) for _ in range(_POOL)]

        return cls(
            pool(fake.first_name),
            pool(fake.last_name),
            pool(fake.company),
            pool(fake.job),
            pool(fake.street_address),
            pool(fake.city),
            pool(lambda: fake.sentence(nb_words=6).rstrip(".")),
            pool(fake.paragraph),
            pool(fake.word),
        )


class _Maker:
    """Makes the Graph resources of one mailbox."""

    def __init__(self, rng: random.Random, pools: _Pools, box: Mailbox, now: datetime) -> None:
        self.rng = rng
        self.pools = pools
        self.box = box
        self.now = now
        self.used_addresses: set[str] = set()

    def person(self) -> tuple[str, str, str, str]:
        """First name, last name, company and a unique e-mail address."""
        first, last = self.rng.choice(self.pools.first_names), self.rng.choice(self.pools.last_names)
        company = self.rng.choice(self.pools.companies)
        domain = re.sub(r"[^a-z0-9]+", "", company.lower()) + ".example"
        address = f"{first}.{last}@{domain}".lower()
        while address in self.used_addresses:
            address = f"{first}.{last}{self.rng.randint(2, 9999)}@{domain}".lower()
        self.used_addresses.add(address)
        return first, last, company, address

    def recipient(self) -> dict[str, Any]:
        first, last, _, address = self.person()
        return {"emailAddress": {"name": f"{first} {last}", "address": address}}

    def phone(self) -> str:
        return f"+1 {self.rng.randint(201, 989)} 555 {self.rng.randint(0, 9999):04d}"

    def contact(self, n: int) -> dict[str, Any]:
        first, last, company, address = self.person()
        return {
            "givenName": first,
            "surname": last,
            "displayName": f"{first} {last}",
            "emailAddresses": [{"name": f"{first} {last}", "address": address}],
            "businessPhones": [self.phone()],
            "mobilePhone": self.phone() if n % 3 else None,
            "companyName": company,
            "jobTitle": self.rng.choice(self.pools.jobs),
            "businessAddress": {
                "street": self.rng.choice(self.pools.streets),
                "city": self.rng.choice(self.pools.cities),
                "state": "",
                "postalCode": f"{self.rng.randint(10000, 99999)}",
                "countryOrRegion": "United States",
            },
            "personalNotes": self.rng.choice(self.pools.sentences),
        }

    def event(self, n: int) -> dict[str, Any]:
        series = n < 2
        offset = -30 if series else self.rng.randint(-180, 180)
        day = (self.now + timedelta(days=offset)).date()
        all_day = n % 7 == 3 and not series
        zone = self.rng.choice(_ZONES)
        if all_day:
            start = datetime.combine(day, time())
            end = start + timedelta(days=1)
        else:
            start = datetime.combine(day, time(self.rng.randint(8, 17), self.rng.choice((0, 30))))
            end = start + timedelta(minutes=self.rng.choice((30, 60, 90)))
        data = {
            "subject": self.rng.choice(self.pools.sentences),
            "body": {"contentType": "html", "content": f"<p>{self.rng.choice(self.pools.paragraphs)}</p>"},
            "start": {"dateTime": _local(start), "timeZone": zone},
            "end": {"dateTime": _local(end), "timeZone": zone},
            "isAllDay": all_day,
            "location": {"displayName": f"{self.rng.choice(self.pools.cities)} office"},
            "attendees": [self.attendee() for _ in range(self.rng.randint(0, 3))],
            "organizer": {"emailAddress": {"name": self.box.display_name, "address": self.box.address}},
            "iCalUId": "040000008200E00074C5B7101A82E008" + self._hex().upper(),
            "showAs": "free" if all_day else "busy",
            "importance": "normal",
            "sensitivity": "normal",
            "isReminderOn": not all_day,
            "reminderMinutesBeforeStart": 15,
            "categories": [],
        }
        if series:
            data["recurrence"] = _weekly_recurrence(day, zone, ends=n == 0)
        return data

    def attendee(self) -> dict[str, Any]:
        return {
            **self.recipient(),
            "type": self.rng.choice(("required", "optional")),
            "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
        }

    def task(self) -> dict[str, Any]:
        status = self.rng.choice(_TASK_STATUSES)
        data: dict[str, Any] = {
            "title": self.rng.choice(self.pools.sentences),
            "status": status,
            "importance": self.rng.choice(("low", "normal", "normal", "high")),
            "body": {"contentType": "text", "content": self.rng.choice(self.pools.paragraphs)},
            "isReminderOn": False,
            "categories": [],
        }
        if self.rng.random() < 0.7:
            due = datetime.combine((self.now + timedelta(days=self.rng.randint(-60, 90))).date(), time())
            data["dueDateTime"] = {"dateTime": _local(due), "timeZone": "UTC"}
        if status == "completed":
            data["completedDateTime"] = {"dateTime": _local(self.now.replace(tzinfo=None)), "timeZone": "UTC"}
        return data

    def message(self, n: int) -> tuple[str, datetime, dict[str, Any]]:
        """(folder, receivedDateTime, message)."""
        received = self.now - timedelta(minutes=self.rng.randint(0, 365 * 24 * 60))
        sent = received - timedelta(seconds=self.rng.randint(1, 600))
        me = {"emailAddress": {"name": self.box.display_name, "address": self.box.address}}
        other = self.recipient()
        incoming = n % 3 != 0
        sender = other if incoming else me
        attachments = [self.attachment() for _ in range(self.rng.randint(1, 2))] if n % 20 == 7 else []
        paragraph = self.rng.choice(self.pools.paragraphs)
        data = {
            "internetMessageId": f"<{self._hex()}@contoso.example>",
            "subject": self.rng.choice(self.pools.sentences),
            "body": {"contentType": "html", "content": f"<html><body><p>{paragraph}</p></body></html>"},
            "bodyPreview": paragraph[:255],
            "from": sender,
            "sender": sender,
            "toRecipients": [me] if incoming else [other],
            "ccRecipients": [self.recipient()] if self.rng.random() < 0.3 else [],
            "bccRecipients": [],
            "sentDateTime": _utc(sent),
            "receivedDateTime": _utc(received),
            "hasAttachments": bool(attachments),
            "attachments": attachments,
            "isRead": not incoming or self.rng.random() < 0.7,
            "isDraft": False,
            "importance": "normal",
            "conversationId": f"AAQk{self._hex()}",
            "categories": [],
        }
        return ("inbox" if incoming else "sentitems"), received, data

    def attachment(self) -> dict[str, Any]:
        kind, content_type = self.rng.choice(
            (
                ("pdf", "application/pdf"),
                ("png", "image/png"),
                ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            )
        )
        return {
            "name": f"{self.rng.choice(self.pools.words)}.{kind}",
            "size": self.rng.randint(2_000, 2_000_000),
            "contentType": content_type,
        }

    def _hex(self) -> str:
        return uuid.UUID(int=self.rng.getrandbits(128)).hex


def _weekly_recurrence(day: date, zone: str, *, ends: bool) -> dict[str, Any]:
    return {
        "pattern": {
            "type": "weekly",
            "interval": 1,
            "daysOfWeek": [_WEEKDAY_NAMES[day.weekday()]],
            "firstDayOfWeek": "sunday",
        },
        "range": {
            "type": "endDate" if ends else "noEnd",
            "startDate": day.isoformat(),
            "endDate": (day + timedelta(weeks=12)).isoformat() if ends else "0001-01-01",
            "recurrenceTimeZone": zone,
            "numberOfOccurrences": 0,
        },
    }


def _local(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.0000000")


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
