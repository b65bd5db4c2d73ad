Feature: Using the synced data
  Exchange mails appear in the CRM linked to the records they concern; mails sync only when
  SalesInbox is not used; tasks, events and mails sync only within six months.

  @B21 @B23
  Scenario Outline: A mail is linked to the contact, its account and its deal, and to the lead
    Given an org synced over "<exchange>"
    And the CRM has a contact "Ann Lee" with e-mail "ann@example.com" at the account "Acme" with the deal "Acme renewal"
    And the CRM has a lead "Lou Reed" with e-mail "lou@example.com"
    And the mailbox of "amelia.admin" received a mail "Quote" from "ann@example.com" copied to "lou@example.com"
    When the administrator runs "exsync sync"
    Then the mail "Quote" is listed in the CRM under the contact "ann@example.com"
    And the mail "Quote" is listed in the CRM under the account "Acme"
    And the mail "Quote" is listed in the CRM under the deal "Acme renewal"
    And the mail "Quote" is listed in the CRM under the lead "lou@example.com"

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @B21
  Scenario: Mails received later keep syncing, and none is stored twice
    Given an org synced over "graph"
    And the CRM has a contact "Ann Lee" with e-mail "ann@example.com" owned by "amelia.admin"
    And the mailbox of "amelia.admin" received a mail "First" from "ann@example.com" copied to "nobody@example.com"
    And the administrator runs "exsync sync"
    When the mailbox of "amelia.admin" received a mail "Second" from "ann@example.com" copied to "nobody@example.com"
    And the administrator runs "exsync sync"
    And the administrator runs "exsync sync"
    Then the CRM has 2 mails linked to the contact "ann@example.com"

  @B22
  Scenario: With SalesInbox in use, mails are skipped and the status says why
    Given an org synced over "graph" with SalesInbox in use
    And the mailbox of "amelia.admin" received a mail "Quote" from "ann@example.com" copied to "nobody@example.com"
    When the administrator runs "exsync sync"
    Then the CRM has no mail "Quote"
    And the output mentions "SalesInbox"
    And the audit log has a "skipped" entry for action "sync-entity"

  @B24
  Scenario Outline: Only items of the last six months (and future ones) sync; older ones are left alone
    Given an org synced over "<exchange>"
    And the mailbox of "amelia.admin" has an event "Old meeting" 200 days ago
    And the mailbox of "amelia.admin" has an event "Recent meeting" 20 days ago
    And the mailbox of "amelia.admin" has an event "Future meeting" in 30 days
    When the administrator runs "exsync sync"
    Then the CRM has an event "Recent meeting"
    And the CRM has an event "Future meeting"
    And the CRM has no event "Old meeting"
    And the mailbox of "amelia.admin" still has the event "Old meeting"

    Examples:
      | exchange |
      | ews      |
      | graph    |
