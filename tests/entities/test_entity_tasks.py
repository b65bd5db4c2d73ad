"""Tasks, CRM <-> Exchange (EWS Tasks folder, Graph To Do), over the fakes (B12, B18, B19, B24)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from entity_support import NOW, OLD, counts, graph_date, make_org, wrote_nothing

TODAY = NOW.date()


def test_a_mailbox_task_arrives_in_the_crm_with_every_field(org):
    org.only("tasks")
    org.put_task(
        "Call Bob",
        TODAY + timedelta(days=3),
        status="inProgress",
        importance="high",
        body={"contentType": "text", "content": "Ask about the quote"},
    )
    report = org.sync()
    assert counts(report, "tasks", "crm")["created"] == 1
    record = org.record("Tasks", "Subject", "Call Bob")
    assert record["Due_Date"] == (TODAY + timedelta(days=3)).isoformat()
    assert (record["Status"], record["Priority"], record["Description"]) == (
        "In Progress",
        "High",
        "Ask about the quote",
    )
    assert record["Owner"]["id"] == org.owner.id
    assert wrote_nothing(org.sync())


def test_a_crm_task_arrives_in_the_mailbox_with_every_field(org):
    org.only("tasks")
    due = TODAY + timedelta(days=10)
    org.insert(
        "Tasks",
        {
            "Subject": "Send contract",
            "Due_Date": due.isoformat(),
            "Status": "Waiting for input",
            "Priority": "Low",
            "Description": "Two copies",
        },
    )
    report = org.sync()
    assert counts(report, "tasks", "exchange")["created"] == 1
    task = org.item("tasks", "title", "Send contract")
    assert task["dueDateTime"]["dateTime"][:10] == due.isoformat()
    assert (task["status"], task["importance"]) == ("waitingOnOthers", "low")
    assert task["body"]["content"] == "Two copies"
    assert wrote_nothing(org.sync())


def test_edits_flow_both_ways_and_completion_is_kept(org):
    org.only("tasks")
    task_id = org.put_task("Renew", TODAY + timedelta(days=5))
    org.sync()
    org.patch("tasks", task_id, {"status": "completed", "importance": "high"})
    org.sync()
    record = org.record("Tasks", "Subject", "Renew")
    assert (record["Status"], record["Priority"]) == ("Completed", "High")
    org.update("Tasks", record["id"], {"Subject": "Renew licence", "Due_Date": (TODAY + timedelta(days=9)).isoformat()})
    report = org.sync()
    assert counts(report, "tasks", "exchange")["updated"] == 1
    task = org.item("tasks", "title", "Renew licence")
    assert task["dueDateTime"]["dateTime"][:10] == (TODAY + timedelta(days=9)).isoformat()
    assert task["status"] == "completed"
    assert wrote_nothing(org.sync())


def test_tasks_older_than_six_months_are_neither_read_nor_written_future_ones_are(org):
    org.only("tasks")
    org.put_task("Old mailbox task", TODAY - OLD)
    org.put_task("Future mailbox task", TODAY + timedelta(days=90))
    org.insert("Tasks", {"Subject": "Old CRM task", "Due_Date": (TODAY - OLD).isoformat()})
    org.insert("Tasks", {"Subject": "Future CRM task", "Due_Date": (TODAY + timedelta(days=90)).isoformat()})
    org.sync()
    crm = {r["Subject"] for r in org.records("Tasks")}
    mailbox = {i["title"] for i in org.items("tasks")}
    assert crm == {"Old CRM task", "Future CRM task", "Future mailbox task"}
    assert mailbox == {"Old mailbox task", "Future mailbox task", "Future CRM task"}


def test_a_task_that_ages_out_of_the_window_is_left_alone_on_both_sides(org):
    org.only("tasks")
    due = TODAY + timedelta(days=2)
    mailbox_id = org.put_task("From mailbox", due)
    crm_id = org.insert("Tasks", {"Subject": "From CRM", "Due_Date": due.isoformat()})
    org.sync()
    org.patch("tasks", mailbox_id, {"dueDateTime": graph_date(TODAY - OLD)})
    org.update("Tasks", crm_id, {"Due_Date": (TODAY - OLD).isoformat()})
    report = org.sync()
    assert wrote_nothing(report)
    # neither deleted nor dragged back: the counterpart keeps the last in-window version
    assert org.record("Tasks", "Subject", "From mailbox")["Due_Date"] == due.isoformat()
    assert org.item("tasks", "title", "From CRM")["dueDateTime"]["dateTime"][:10] == due.isoformat()
    assert len(org.records("Tasks")) == len(org.items("tasks")) == 2
    assert wrote_nothing(org.sync())


@pytest.mark.B19
def test_client_credentials_without_tasks_readwrite_all_skip_tasks_and_the_report_says_why(world):
    org = make_org(world, "graph-cc")
    org.put_task("Call Bob", TODAY + timedelta(days=3))
    org.insert("Tasks", {"Subject": "CRM only", "Due_Date": TODAY.isoformat()})
    report = org.sync()
    tasks = report["entities"]["tasks"]
    assert tasks["outcome"] == "skipped"
    assert "Tasks.ReadWrite.All" in tasks["skipped_reason"] and "To Do" in tasks["skipped_reason"]
    assert not any(r["Subject"] == "Call Bob" for r in org.records("Tasks"))
    assert [i["title"] for i in org.items("tasks")] == ["Call Bob"]
    table = world.run("amelia.admin", "exsync sync")
    assert "Tasks.ReadWrite.All" in " ".join(table.output.split())
