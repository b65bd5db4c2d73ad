"""Mails, Exchange -> CRM Emails records, over the fakes: linking, Message-ID de-duplication,
attachments, the window and read-only Exchange (B21, B23, B24)."""

from __future__ import annotations

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
        {"Deal_Name": "Acme renewal", "Account_Name": {"id": account["id"]}, "Contact_Name": {"id": contact["id"]}},
        owner,
    )
    lead = org.crm.insert("Leads", {"Last_Name": "Reed", "Email": "lou@example.com", "Company": "Indie"}, owner)
    return {"Contacts": contact["id"], "Accounts": account["id"], "Deals": deal["id"], "Leads": lead["id"]}


def _subjects(org, module, record_id):
    return sorted(m["Subject"] for m in org.crm.mails_of(module, record_id))


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
    sent = org.record("Emails", "Subject", "Re: Quote")
    assert (sent["From"], sent["To"], sent["Folder"]) == (ME, ["ANN@example.com"], "sentitems")
    assert org.record("Emails", "Subject", "Newsletter")["Linked_Records"] == []
    assert wrote_nothing(org.sync())


@pytest.mark.B21
def test_a_message_id_is_stored_once_across_runs_and_across_inbox_and_sent_items(org):
    org.only("mails")
    _people(org)
    org.put_mail("Note to self", ME, [ME, "ann@example.com"], folder="sentitems", message_id="<self-1@contoso.example>")
    org.put_mail("Note to self", ME, [ME, "ann@example.com"], message_id="<self-1@contoso.example>")
    org.sync()
    assert [m["Message_Id"] for m in org.records("Emails")] == ["<self-1@contoso.example>"]
    org.put_mail("Later", "ann@example.com", [ME], message_id="<later@example.com>")
    org.sync()
    assert wrote_nothing(org.sync())
    assert sorted(m["Subject"] for m in org.records("Emails")) == ["Later", "Note to self"]


def test_attachment_names_and_sizes_are_kept(org):
    org.only("mails")
    org.put_mail("Contract", "ann@example.com", [ME], attachments=(("contract.pdf", 48213), ("日本語.xlsx", 1024)))
    org.sync()
    record = org.record("Emails", "Subject", "Contract")
    assert record["Attachments"] == [{"name": "contract.pdf", "size": 48213}, {"name": "日本語.xlsx", "size": 1024}]


def test_mails_are_never_written_to_exchange(org):
    org.only("mails")
    org.insert("Emails", {"Message_Id": "<crm-only@example.com>", "Subject": "Made in the CRM", "From": ME})
    org.put_mail("Quote", "ann@example.com", [ME])
    report = org.sync()
    assert counts(report, "mails", "exchange") == {"created": 0, "updated": 0, "deleted": 0, "skipped": 0, "errors": 0}
    assert [m["subject"] for m in org.items("inbox")] == ["Quote"] and org.items("sentitems") == []
    record = org.record("Emails", "Subject", "Quote")
    org.update("Emails", record["id"], {"Subject": "Quote (edited in CRM)"})
    report = org.sync()
    assert counts(report, "mails", "exchange")["updated"] == 0
    assert [m["subject"] for m in org.items("inbox")] == ["Quote"]


@pytest.mark.B24
def test_mails_older_than_six_months_are_not_read(org):
    org.only("mails")
    org.put_mail("Ancient", "ann@example.com", [ME], sent=NOW - OLD)
    org.put_mail("Ancient reply", ME, ["ann@example.com"], folder="sentitems", sent=NOW - OLD)
    org.put_mail("Recent", "ann@example.com", [ME], sent=NOW - timedelta(days=30))
    org.sync()
    assert [m["Subject"] for m in org.records("Emails")] == ["Recent"]
    assert len(org.items("inbox")) == 2


def test_a_large_mail_body_is_cut_to_what_the_crm_holds(org):
    """A mail is an archived copy that never flows back: its body is cut to the 32,000
    characters a CRM multi-line field holds rather than the mail being refused."""
    org.only("mails")
    body = "ő" * 50_000 + "x" * 50_000
    org.put_mail("Huge", "ann@example.com", [ME], body=body)
    report = org.sync()
    assert counts(report, "mails", "crm")["errors"] == 0
    content = org.record("Emails", "Subject", "Huge")["Content"]
    assert content == body[:32_000]
    assert wrote_nothing(org.sync())


def test_odd_addresses_are_stored_and_link_nothing_while_the_rest_is_linked(org):
    org.only("mails")
    ids = _people(org)
    org.put_mail("Odd", "undisclosed-recipients:;", ["not an address", "ann@example.com"])
    org.put_mail("Plain", "ann@example.com", [ME])
    report = org.sync()
    assert counts(report, "mails", "crm")["created"] == 2
    assert _subjects(org, "Contacts", ids["Contacts"]) == ["Odd", "Plain"]
