"""Sensitivity and categories through the EWS and Graph mappings: read on every item they
exist on, written when an item is created, never touched by an update (the CRM carries
neither, so an update from the CRM must not clear what the mailbox holds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from exchangelib import Contact as NativeContact
from exchangelib import Message as NativeMessage
from exchangelib import Task as NativeTask

from framework.model import Contact, Event, Task
from plugins.ews import mapping as ews
from plugins.graph import mapping as graph

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
EVENT = Event(subject="Visit", start=START, end=START + timedelta(hours=1), sensitivity="private", categories=("CRM",))


@pytest.mark.parametrize(
    ("to_native", "from_native", "record"),
    [
        (ews.event_to_native, ews.event_from_native, EVENT),
        (ews.contact_to_native, ews.contact_from_native, Contact(last_name="Lee", sensitivity="personal")),
        (
            ews.task_to_native,
            ews.task_from_native,
            Task(subject="x", sensitivity="confidential", categories=("A", "B")),
        ),
    ],
)
def test_ews_carries_sensitivity_and_categories_on_every_item(to_native, from_native, record):
    native = to_native(record)
    assert native.sensitivity == ews.SENSITIVITY[record.sensitivity]
    assert from_native(native) == record


def test_ews_reads_a_mails_sensitivity_and_categories():
    message = NativeMessage(subject="Salary", sensitivity="Private", categories=["HR"])
    mail = ews.mail_from_native(message, "inbox")
    assert (mail.sensitivity, mail.categories) == ("private", ("HR",))


def test_ews_updates_never_name_sensitivity_or_categories():
    for _to, _from, fields in ews.MAPPERS.values():
        assert not {"sensitivity", "categories"} & set(fields)


def test_ews_reads_a_missing_sensitivity_as_normal():
    assert ews.contact_from_native(NativeContact(display_name="x")).sensitivity == "normal"
    assert ews.task_from_native(NativeTask(subject="x", sensitivity=None)).sensitivity == "normal"


def test_graph_creates_an_event_with_its_sensitivity_and_categories_and_updates_neither():
    created = graph.event_to_graph(EVENT, create=True)
    assert (created["sensitivity"], created["categories"]) == ("private", ["CRM"])
    updated = graph.event_to_graph(EVENT, create=False)
    assert "sensitivity" not in updated and "categories" not in updated
    assert graph.event_from_graph({**created, "iCalUId": ""}).sensitivity == "private"


@pytest.mark.parametrize(
    ("to_graph", "from_graph", "record"),
    [
        (graph.contact_to_graph, graph.contact_from_graph, Contact(last_name="Lee", categories=("CRM",))),
        (graph.task_to_graph, graph.task_from_graph, Task(subject="x", categories=("CRM", "Red"))),
    ],
)
def test_graph_creates_contacts_and_tasks_with_their_categories_and_updates_leave_them(to_graph, from_graph, record):
    assert to_graph(record, create=True)["categories"] == list(record.categories)
    assert "categories" not in to_graph(record, create=False)
    assert from_graph(to_graph(record, create=True)).categories == record.categories


def test_graph_reads_a_messages_categories_and_an_unknown_sensitivity_as_normal():
    mail = graph.mail_from_graph({"subject": "x", "categories": ["CRM", 3, ""]}, "inbox")
    assert mail.categories == ("CRM",)
    assert graph.event_from_graph({"subject": "x", "sensitivity": "secret"}).sensitivity == "normal"
