"""Mails, Exchange -> CRM through associate_email, over the fakes: linking, Message-ID
de-duplication (also after the state is lost), the window and read-only Exchange (B21, B23, B24)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from entity_support import NOW, OLD, counts, wrote_nothing

ME = "amelia.admin@contoso.example"


def _people(org):
    owner = org.owner
    account = org.crm.insert("Accounts", {"Account_Name": "Acme"}, owner)
    contact = org.crm.insert(
        "Contacts",
        {"First_Name": "Ann", "Last_Name": "Lee", "Email": "ann@example.com", "Account_Name": {"id": account["id"]}},
        owner,
    )
    deal = org.crm.insert(
        "Deals",
        {
            "Deal_Name": "Acme renewal",
            "Stage": "Qualification",
            "Closing_Date": "2030-01-31",
            "Account_Name": {"id": account["id"]},
            "Contact_Name": {"id": contact["id"]},
        },
        owner,
    )
    lead = org.crm.insert("Leads", {"Last_Name": "Reed", "Email": "lou@example.com", "Company": "Indie"}, owner)
    return {"Contacts": contact["id"], "Accounts": account["id"], "Deals": deal["id"], "Leads": lead["id"]}


def _subjects(org, module, record_id):
    return sorted(m["subject"] for m in org.crm.mails_of(module, record_id))


def _associated(org):
    """Every association made, as (subject, module of the record)."""
    return sorted((m["subject"], m["linked_record"]["module"]["api_name"]) for m in org.crm.all_mails())


@pytest.mark.B21
@pytest.mark.B23
def test_inbox_and_sent_mails_are_linked_to_contacts_and_leads_and_seen_from_account_and_deal(org):
    org.only("mails")
    ids = _people(org)
    org.put_mail("Quote", "ann@example.com", [ME], cc=("lou@example.com",))
    org.put_mail("Re: Quote", ME, ["ANN@example.com"], folder="sentitems")
    org.put_mail("To the lead", ME, ["lou@example.com"], folder="sentitems")
    org.put_mail("Newsletter", "news@example.org", [ME])
    report = org.sync()
    assert counts(report, "mails", "crm")["created"] == 4
    assert _subjects(org, "Contacts", ids["Contacts"]) == ["Quote", "Re: Quote"]
    assert _subjects(org, "Accounts", ids["Accounts"]) == ["Quote", "Re: Quote"]
    assert _subjects(org, "Deals", ids["Deals"]) == ["Quote", "Re: Quote"]
    assert _subjects(org, "Leads", ids["Leads"]) == ["Quote", "To the lead"]
    # associated with the people only: accounts and deals show them through their contacts
    assert _associated(org) == [
        ("Quote", "Contacts"),
        ("Quote", "Leads"),
        ("Re: Quote", "Contacts"),
        ("To the lead", "Leads"),
    ]
    (sent,) = [m for m in org.crm.mails_of("Contacts", ids["Contacts"]) if m["subject"] == "Re: Quote"]
    assert (sent["from"]["email"], [a["email"] for a in sent["to"]], sent["sent"]) == (ME, ["ANN@example.com"], True)
    assert wrote_nothing(org.sync())


@pytest.mark.B21
def test_a_message_id_is_stored_once_across_runs_and_across_inbox_and_sent_items(org):
    org.only("mails")
    _people(org)
    org.put_mail("Note to self", ME, [ME, "ann@example.com"], folder="sentitems", message_id="<self-1@contoso.example>")
    org.put_mail("Note to self", ME, [ME, "ann@example.com"], message_id="<self-1@contoso.example>")
    org.sync()
    assert _associated(org) == [("Note to self", "Contacts")]
    org.put_mail("Later", "ann@example.com", [ME], message_id="<later@example.com>")
    org.sync()
    assert wrote_nothing(org.sync())
    assert _associated(org) == [("Later", "Contacts"), ("Note to self", "Contacts")]


@pytest.mark.B21
def test_after_the_state_is_lost_nothing_already_in_the_related_lists_is_associated_again(org):
    org.only("mails")
    ids = _people(org)
    org.put_mail("Quote", "ann@example.com", [ME], cc=("lou@example.com",))
    org.sync()
    org.forget_state()
    org.put_mail("Later", "ann@example.com", [ME])
    report = org.sync()
    assert counts(report, "mails", "crm")["errors"] == 0
    assert _associated(org) == [("Later", "Contacts"), ("Quote", "Contacts"), ("Quote", "Leads")]
    assert _subjects(org, "Leads", ids["Leads"]) == ["Quote"]


def test_mails_are_never_written_to_exchange(org):
    org.only("mails")
    ids = _people(org)
    org.crm.associate_email(
        "Contacts",
        ids["Contacts"],
        {
            "from": {"user_name": "amelia", "email": ME},
            "to": [{"user_name": "ann", "email": "ann@example.com"}],
            "original_message_id": "<crm-only@example.com>",
            "subject": "Made in the CRM",
            "sent": True,
            "date_time": (NOW - timedelta(days=1)).replace(microsecond=0).isoformat(),
        },
    )
    org.put_mail("Quote", "ann@example.com", [ME])
    report = org.sync()
    assert counts(report, "mails", "exchange") == {"created": 0, "updated": 0, "deleted": 0, "skipped": 0, "errors": 0}
    assert [m["subject"] for m in org.items("inbox")] == ["Quote"] and org.items("sentitems") == []


@pytest.mark.B24
def test_mails_older_than_six_months_are_not_read(org):
    org.only("mails")
    _people(org)
    org.put_mail("Ancient", "ann@example.com", [ME], sent=NOW - OLD)
    org.put_mail("Ancient reply", ME, ["ann@example.com"], folder="sentitems", sent=NOW - OLD)
    org.put_mail("Recent", "ann@example.com", [ME], sent=NOW - timedelta(days=30))
    org.sync()
    assert [m["subject"] for m in org.crm.all_mails()] == ["Recent"]
    assert len(org.items("inbox")) == 2


def test_a_large_mail_body_is_cut_to_what_the_crm_holds(org):
    """A mail is an archived copy that never flows back: its body is cut to the 32,000
    characters a CRM multi-line field holds rather than the mail being refused."""
    org.only("mails")
    _people(org)
    body = "ő" * 50_000 + "x" * 50_000
    org.put_mail("Huge", "ann@example.com", [ME], body=body)
    report = org.sync()
    assert counts(report, "mails", "crm")["errors"] == 0
    (content,) = [m["content"] for m in org.crm.all_mails() if m["subject"] == "Huge"]
    assert content == body[:32_000]
    assert wrote_nothing(org.sync())


def test_odd_recipients_are_left_out_while_the_rest_is_linked(org):
    org.only("mails")
    ids = _people(org)
    org.put_mail("Odd", "ann@example.com", ["not an address", "undisclosed-recipients:;", ME])
    org.put_mail("Plain", "ann@example.com", [ME])
    report = org.sync()
    assert counts(report, "mails", "crm")["created"] == 2
    assert _subjects(org, "Contacts", ids["Contacts"]) == ["Odd", "Plain"]
    (odd,) = [m for m in org.crm.all_mails() if m["subject"] == "Odd"]
    assert [a["email"] for a in odd["to"]] == [ME]


def test_a_mail_whose_sender_is_no_address_is_refused_by_the_crm_and_reported(org):
    org.only("mails")
    _people(org)
    org.put_mail("Odd sender", "undisclosed-recipients:;", ["ann@example.com"])
    report = org.sync()
    assert counts(report, "mails", "crm")["errors"] == 1
    assert "in the field from" in json.dumps(report)
    assert org.crm.all_mails() == []
