"""A user's calendar as Outlook edits it, over Microsoft Graph or EWS, and the CRM as its users
edit it: series, their moved and cancelled occurrences, read back through each service's own
protocol (Graph's ``/instances``, exchangelib's CalendarView, the CRM's records), never through
the product, so that a test sees what a user would see.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx
from exchangelib import DELEGATE, NTLM, Account, CalendarItem, Configuration, Credentials, EWSDateTime, EWSTimeZone
from exchangelib.errors import ErrorCalendarOccurrenceIsDeletedFromRecurrence
from exchangelib.recurrence import (
    AbsoluteMonthlyPattern,
    AbsoluteYearlyPattern,
    DailyPattern,
    EndDatePattern,
    NoEndPattern,
    NumberedPattern,
    Recurrence,
    RelativeMonthlyPattern,
    RelativeYearlyPattern,
    WeeklyPattern,
)

from fakes.cloud import GRAPH_CLIENT_ID, mailbox_password
from fakes.ews import trust_ca
from fakes.harness import World, address

HORIZON = timedelta(days=800)  # a yearly series of two, starting a few weeks ahead, ends within it
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
GRAPH_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
GRAPH_INDEX = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}


@dataclass(frozen=True, order=True)
class Seen:
    """One occurrence as the user sees it: where the series put it, and where it is now."""

    original_start: datetime
    start: datetime
    end: datetime
    subject: str
    location: str


@dataclass(frozen=True)
class Series:
    """A series to make: its first occurrence (wall clock in ``zone``), length and RRULE."""

    subject: str
    first: datetime
    length: timedelta
    rule: str
    zone: str = "UTC"
    all_day: bool = False
    location: str = ""


class Calendar(Protocol):
    """A mailbox calendar, edited as Outlook would."""

    def create(self, series: Series) -> str: ...
    def occurrences(self, series_id: str) -> list[Seen]: ...
    def change(self, series_id: str, original_start: datetime, **fields: Any) -> None: ...
    def cancel(self, series_id: str, original_start: datetime) -> None: ...
    def delete(self, series_id: str) -> None: ...
    def change_pattern(self, series_id: str, series: Series) -> None: ...


def parts(rule: str) -> dict[str, str]:
    """An RRULE's parts, upper-case names."""
    return {k.upper(): v for k, v in (p.split("=", 1) for p in rule.removeprefix("RRULE:").split(";") if p)}


def _by_day(value: str) -> tuple[int | None, list[int]]:
    """(week index or None, weekdays 0=Monday) of a BYDAY value such as ``2TU`` or ``MO,WE``."""
    index = None
    days = []
    for token in value.split(","):
        head = token.rstrip("AEFHMORSTUW")
        if head:
            index = int(head)
        days.append(DAYS.index(token[len(head) :]))
    return index, days


# -- Microsoft Graph ------------------------------------------------------------------------------
class GraphCalendar:
    """The user's calendar through Microsoft Graph, with the user's own token."""

    def __init__(self, world: World, user: str) -> None:
        cloud = world.cloud
        token = cloud.authority.issue_token(GRAPH_CLIENT_ID, address(user), scopes=["Calendars.ReadWrite"])
        self.http = httpx.Client(
            base_url=f"{cloud.graph_url}/v1.0",
            headers={"Authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=str(cloud.ca.bundle_path)),
            timeout=30,
        )

    def close(self) -> None:
        self.http.close()

    def create(self, series: Series) -> str:
        body = {"subject": series.subject, "location": {"displayName": series.location}, "isAllDay": series.all_day}
        body |= self._times(series.first, series.first + series.length, series.zone, series.all_day)
        body["recurrence"] = graph_recurrence(series)
        answer = self.http.post("/me/events", json=body)
        answer.raise_for_status()
        return str(answer.json()["id"])

    def change_pattern(self, series_id: str, series: Series) -> None:
        body = {"recurrence": graph_recurrence(series)}
        body |= self._times(series.first, series.first + series.length, series.zone, series.all_day)
        self.http.patch(f"/me/events/{series_id}", json=body).raise_for_status()

    @staticmethod
    def _times(start: datetime, end: datetime, zone: str, all_day: bool) -> dict[str, Any]:
        def when(moment: datetime) -> dict[str, str]:
            local = moment.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
            return {"dateTime": local.isoformat(timespec="seconds"), "timeZone": "UTC" if all_day else zone}

        return {"start": when(start), "end": when(end)}

    def _instances(self, series_id: str) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        window = {"startDateTime": (now - HORIZON).isoformat(), "endDateTime": (now + HORIZON).isoformat()}
        found: list[dict[str, Any]] = []
        url: str | None = f"/me/events/{series_id}/instances"
        params: dict[str, str] | None = window
        headers = {"Prefer": 'outlook.timezone="UTC"'}
        while url:
            page = self.http.get(url, params=params, headers=headers)
            page.raise_for_status()
            found += page.json()["value"]
            url, params = page.json().get("@odata.nextLink"), None
        return found

    def occurrences(self, series_id: str) -> list[Seen]:
        return sorted(
            Seen(
                _instant(i["originalStart"]),
                _graph_instant(i["start"]),
                _graph_instant(i["end"]),
                i.get("subject") or "",
                (i.get("location") or {}).get("displayName") or "",
            )
            for i in self._instances(series_id)
        )

    def _instance_id(self, series_id: str, original_start: datetime) -> str:
        for instance in self._instances(series_id):
            if _instant(instance["originalStart"]) == original_start:
                return str(instance["id"])
        raise LookupError(f"no occurrence of the series originally at {original_start}")

    def change(self, series_id: str, original_start: datetime, **fields: Any) -> None:
        body: dict[str, Any] = {}
        for name in ("start", "end"):
            if name in fields:
                body[name] = {
                    "dateTime": fields[name].astimezone(UTC).replace(tzinfo=None).isoformat(),
                    "timeZone": "UTC",
                }
        if "subject" in fields:
            body["subject"] = fields["subject"]
        if "location" in fields:
            body["location"] = {"displayName": fields["location"]}
        occurrence = self._instance_id(series_id, original_start)
        self.http.patch(f"/me/events/{occurrence}", json=body).raise_for_status()

    def cancel(self, series_id: str, original_start: datetime) -> None:
        occurrence = self._instance_id(series_id, original_start)
        self.http.delete(f"/me/events/{occurrence}").raise_for_status()

    def delete(self, series_id: str) -> None:
        self.http.delete(f"/me/events/{series_id}").raise_for_status()


def graph_recurrence(series: Series) -> dict[str, Any]:
    """The Graph ``patternedRecurrence`` of ``series``' RRULE, written by hand from Graph's docs."""
    rule = parts(series.rule)
    local = series.first.astimezone(ZoneInfo(series.zone))
    pattern: dict[str, Any] = {"interval": int(rule.get("INTERVAL", "1"))}
    index, days = _by_day(rule["BYDAY"]) if "BYDAY" in rule else (None, [local.weekday()])
    freq = rule["FREQ"]
    if freq == "DAILY":
        pattern["type"] = "daily"
    elif freq == "WEEKLY":
        pattern |= {"type": "weekly", "daysOfWeek": [GRAPH_DAYS[d] for d in days], "firstDayOfWeek": "monday"}
    elif freq in ("MONTHLY", "YEARLY"):
        prefix = "absolute" if index is None else "relative"
        pattern["type"] = prefix + ("Monthly" if freq == "MONTHLY" else "Yearly")
        if index is None:
            pattern["dayOfMonth"] = int(rule.get("BYMONTHDAY", local.day))
        else:
            pattern |= {"daysOfWeek": [GRAPH_DAYS[d] for d in days], "index": GRAPH_INDEX[index]}
        if freq == "YEARLY":
            pattern["month"] = int(rule.get("BYMONTH", local.month))
    span: dict[str, Any] = {"startDate": local.date().isoformat(), "recurrenceTimeZone": series.zone}
    if "COUNT" in rule:
        span |= {"type": "numbered", "numberOfOccurrences": int(rule["COUNT"])}
    elif "UNTIL" in rule:
        span |= {"type": "endDate", "endDate": _until(rule["UNTIL"]).isoformat()}
    else:
        span["type"] = "noEnd"
    return {"pattern": pattern, "range": span}


def _until(value: str) -> date:
    digits = value.replace("-", "")[:8]
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _graph_instant(when: dict[str, str]) -> datetime:
    moment = datetime.fromisoformat(when["dateTime"][:19])
    zone = when.get("timeZone") or "UTC"
    return moment.replace(tzinfo=ZoneInfo("UTC" if zone.upper() == "UTC" else zone)).astimezone(UTC)


# -- Exchange Server (EWS) ------------------------------------------------------------------------
class EwsCalendar:
    """The user's calendar through EWS, opened with exchangelib as the user, as a script would."""

    def __init__(self, world: World, user: str) -> None:
        self._trust = trust_ca(world.cloud.ca.bundle_path)
        self._trust.__enter__()
        config = Configuration(
            service_endpoint=world.cloud.ews_url,
            credentials=Credentials(address(user), mailbox_password(address(user))),
            auth_type=NTLM,
        )
        self.account = Account(
            address(user), config=config, autodiscover=False, access_type=DELEGATE, default_timezone=EWSTimeZone("UTC")
        )

    def close(self) -> None:
        self.account.protocol.close()
        self._trust.__exit__(None, None, None)

    def create(self, series: Series) -> str:
        zone = EWSTimeZone(series.zone)
        start = EWSDateTime.from_datetime(series.first.astimezone(ZoneInfo(series.zone)).replace(tzinfo=None))
        item = CalendarItem(
            account=self.account,
            folder=self.account.calendar,
            subject=series.subject,
            location=series.location or None,
            start=start.replace(tzinfo=zone),
            end=(start + series.length).replace(tzinfo=zone),
            is_all_day=series.all_day,
            recurrence=ews_recurrence(series),
        )
        item.save()
        return str(item.id)

    def change_pattern(self, series_id: str, series: Series) -> None:
        item = self.account.calendar.get(id=series_id)
        zone = EWSTimeZone(series.zone)
        start = EWSDateTime.from_datetime(series.first.astimezone(ZoneInfo(series.zone)).replace(tzinfo=None))
        item.start, item.end = start.replace(tzinfo=zone), (start + series.length).replace(tzinfo=zone)
        item.recurrence = ews_recurrence(series)
        item.save(update_fields=["start", "end", "recurrence"])

    def _master(self, series_id: str) -> CalendarItem:
        return self.account.calendar.get(id=series_id)

    def occurrences(self, series_id: str) -> list[Seen]:
        master = self._master(series_id)
        now = datetime.now(UTC)
        view = self.account.calendar.view(start=now - HORIZON, end=now + HORIZON)
        return sorted(
            Seen(
                _aware(item.original_start or item.start),
                _aware(item.start),
                _aware(item.end),
                item.subject or "",
                item.location or "",
            )
            for item in view
            if item.uid == master.uid and item.type in ("Occurrence", "Exception")
        )

    def _occurrence(self, series_id: str, original_start: datetime) -> CalendarItem:
        master = self._master(series_id)
        for index in range(1, 1000):
            occurrence = master.occurrence(index)
            try:
                occurrence.refresh()
            except ErrorCalendarOccurrenceIsDeletedFromRecurrence:
                continue  # cancelled: Exchange still counts it
            if _aware(occurrence.original_start) == original_start:
                return occurrence
        raise LookupError(f"no occurrence of the series originally at {original_start}")

    def change(self, series_id: str, original_start: datetime, **fields: Any) -> None:
        occurrence = self._occurrence(series_id, original_start)
        for name, value in fields.items():
            setattr(
                occurrence,
                name,
                EWSDateTime.from_datetime(value.astimezone(ZoneInfo("UTC"))) if name in ("start", "end") else value,
            )
        occurrence.save(update_fields=list(fields))

    def cancel(self, series_id: str, original_start: datetime) -> None:
        self._occurrence(series_id, original_start).delete()

    def delete(self, series_id: str) -> None:
        self._master(series_id).delete()


def _aware(moment: Any) -> datetime:
    if isinstance(moment, datetime):  # an EWSDateTime converts only to an EWSTimeZone: go by its instant
        return datetime.fromtimestamp(moment.timestamp(), tz=UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def ews_recurrence(series: Series) -> Recurrence:
    """The exchangelib Recurrence of ``series``' RRULE, written by hand from the EWS schema."""
    rule = parts(series.rule)
    local = series.first.astimezone(ZoneInfo(series.zone))
    interval = int(rule.get("INTERVAL", "1"))
    index, days = _by_day(rule["BYDAY"]) if "BYDAY" in rule else (None, [local.weekday()])
    weekdays = [d + 1 for d in days]  # exchangelib: 1 = Monday
    week = {1: 1, 2: 2, 3: 3, 4: 4, -1: 5}.get(index or 1, 1)
    freq = rule["FREQ"]
    pattern: Any
    if freq == "DAILY":
        pattern = DailyPattern(interval=interval)
    elif freq == "WEEKLY":
        pattern = WeeklyPattern(interval=interval, weekdays=weekdays, first_day_of_week=1)
    elif freq == "MONTHLY" and index is None:
        pattern = AbsoluteMonthlyPattern(interval=interval, day_of_month=int(rule.get("BYMONTHDAY", local.day)))
    elif freq == "MONTHLY":
        pattern = RelativeMonthlyPattern(interval=interval, weekday=weekdays[0], week_number=week)
    elif index is None:
        pattern = AbsoluteYearlyPattern(
            day_of_month=int(rule.get("BYMONTHDAY", local.day)), month=int(rule.get("BYMONTH", local.month))
        )
    else:
        pattern = RelativeYearlyPattern(
            weekday=weekdays[0], week_number=week, month=int(rule.get("BYMONTH", local.month))
        )
    first = local.date()
    boundary: Any
    if "COUNT" in rule:
        boundary = NumberedPattern(start=first, number=int(rule["COUNT"]))
    elif "UNTIL" in rule:
        boundary = EndDatePattern(start=first, end=_until(rule["UNTIL"]))
    else:
        boundary = NoEndPattern(start=first)
    return Recurrence(pattern=pattern, boundary=boundary)


# -- the CRM ---------------------------------------------------------------------------------------
SERIES_LINK = "Exsync_Series"
ORIGINAL_START = "Exsync_Original_Start"
SERIES_ZONE = "Exsync_Time_Zone"


class CrmCalendar:
    """The CRM's Events as its users see and edit them: a series is the record holding the rule,
    an occurrence changed on its own is an event linked to it, its date left out of the series."""

    def __init__(self, world: World) -> None:
        self.crm = world.cloud.crm

    def events(self, subject: str) -> list[dict[str, Any]]:
        return list(self.crm.search("Events", [("Event_Title", subject)]).records)

    def series(self, subject: str) -> dict[str, Any]:
        (master,) = [r for r in self.events(subject) if r.get("Recurring_Activity")]
        return master

    def overrides(self, master: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.crm.search("Events", [(SERIES_LINK, master["id"])]).records)

    @staticmethod
    def left_out(master: dict[str, Any]) -> set[date]:
        """The series' exception dates."""
        text = (master.get("Recurring_Activity") or {}).get("EXDATE") or ""
        return {date.fromisoformat(d.strip()) for d in text.split(",") if d.strip()}

    def leave_out(self, master: dict[str, Any], day: date) -> None:
        recurring = dict(master["Recurring_Activity"])
        recurring["EXDATE"] = ",".join(sorted(d.isoformat() for d in self.left_out(master) | {day}))
        self.crm.update("Events", master["id"], {"Recurring_Activity": recurring})
        master["Recurring_Activity"] = recurring

    def change(self, master: dict[str, Any], original: datetime, zone: str, **fields: Any) -> None:
        """Change one occurrence: an event of its own linked to the series, its date left out."""
        start = fields.get("start", original)
        end = fields.get("end", start + (_crm_time(master["End_DateTime"]) - _crm_time(master["Start_DateTime"])))
        self.crm.insert(
            "Events",
            {
                "Event_Title": fields.get("subject", master["Event_Title"]),
                "Start_DateTime": _crm_format(start),
                "End_DateTime": _crm_format(end),
                "Venue": fields.get("location", master.get("Venue") or ""),
                SERIES_LINK: master["id"],
                ORIGINAL_START: original.astimezone(UTC).isoformat(),
                "Owner": master["Owner"],
            },
        )
        self.leave_out(master, original.astimezone(ZoneInfo(zone)).date())


def _crm_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _crm_format(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@contextmanager
def calendar(world: World, user: str, exchange: str) -> Iterator[Calendar]:
    """``user``'s calendar over ``exchange`` ("ews", or Graph for anything else)."""
    opened: GraphCalendar | EwsCalendar = EwsCalendar(world, user) if exchange == "ews" else GraphCalendar(world, user)
    try:
        yield opened
    finally:
        opened.close()
