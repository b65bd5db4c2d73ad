Feature: What never leaves the mailbox
  Private items, excluded addresses and domains, internal-only mails and items a user does
  not track are never copied to the CRM; the dry run, the audit log, the status and the
  dashboard say how many were skipped and why, never what they held.

  @privacy
  Scenario Outline: A private appointment never reaches the CRM, and only its count is reported
    Given an org synced over "<exchange>"
    And the mailbox of "amelia.admin" has an event "Doctor visit" in 3 days marked "private"
    And the mailbox of "amelia.admin" has an event "Customer visit" in 4 days
    When the administrator runs "exsync sync"
    Then the CRM has an event "Customer visit"
    And the CRM has no event "Doctor visit"
    And the output mentions "withheld: 1 private"
    And the status of "amelia.admin" shows 1 withheld as "private"
    And no audit entry mentions "Doctor visit"

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @privacy
  Scenario: A contact and a mail marked Private in Outlook never reach the CRM (Exchange Server)
    Given an org synced over "ews"
    And the mailbox of "amelia.admin" has a contact "Jo Doe" with e-mail "jo@customer.example" marked "private" in Outlook
    And the mailbox of "amelia.admin" has a contact "Ann Lee" with e-mail "ann@customer.example"
    And the mailbox of "amelia.admin" received a mail "Personal matter" from "ann@customer.example" marked "private" in Outlook
    When the administrator runs "exsync sync"
    Then the CRM has no contact with e-mail "jo@customer.example"
    And the CRM has a contact with e-mail "ann@customer.example" owned by "amelia.admin"
    And the CRM has no mail "Personal matter"
    And the status of "amelia.admin" shows 2 withheld as "private"

  @privacy
  Scenario Outline: An appointment made private after it synced is removed from the CRM, audit-logged
    Given an org synced over "<exchange>"
    And the mailbox of "amelia.admin" has an event "Lunch" in 3 days
    And the administrator runs "exsync sync"
    When the event "Lunch" is marked "private" in the mailbox of "amelia.admin"
    And the administrator runs "exsync sync --dry-run"
    Then the output mentions "withhold (private): remove the copy"
    And the CRM has an event "Lunch"
    When the administrator runs "exsync sync"
    Then the CRM has no event "Lunch"
    And the mailbox of "amelia.admin" still has the event "Lunch"
    And the audit log has an "ok" entry for action "withhold-record"

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @privacy
  Scenario Outline: With "--private keep" the CRM copy stays, and a CRM change never reaches the private item
    Given an org synced over "<exchange>"
    And the administrator runs "exsync settings set --private keep"
    And the mailbox of "amelia.admin" has an event "Lunch" in 3 days
    And the administrator runs "exsync sync"
    When the event "Lunch" is marked "private" in the mailbox of "amelia.admin"
    And the administrator runs "exsync sync"
    And the event "Lunch" is renamed "Lunch with the sales team" in the CRM
    And the administrator runs "exsync sync"
    Then the mailbox of "amelia.admin" still has the event "Lunch"
    And the mailbox of "amelia.admin" has no event "Lunch with the sales team"
    And the dashboard's last run withheld 1 and it shows 1 withheld pair

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @privacy
  Scenario Outline: Confidential appointments are withheld once the administrator says so
    Given an org synced over "<exchange>"
    And the administrator runs "exsync settings set --confidential remove"
    And the mailbox of "amelia.admin" has an event "Board meeting" in 3 days marked "confidential"
    And the mailbox of "amelia.admin" has an event "Team meeting" in 3 days marked "personal"
    When the administrator runs "exsync sync"
    Then the CRM has no event "Board meeting"
    And the CRM has an event "Team meeting"

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @privacy
  Scenario Outline: Mails from or to an excluded domain, and contacts at excluded addresses, are never copied
    Given an org synced over "<exchange>"
    And the administrator runs "exsync settings set --exclude-domain hr.example --exclude-address wife@home.example"
    And the mailbox of "amelia.admin" received a mail "Salary review" from "payroll@hr.example" copied to "ann@customer.example"
    And the mailbox of "amelia.admin" received a mail "Quote" from "ann@customer.example" copied to "lou@customer.example"
    And the mailbox of "amelia.admin" has a contact "Jo Home" with e-mail "wife@home.example"
    And the mailbox of "amelia.admin" has a contact "Ann Lee" with e-mail "ann@customer.example"
    When the administrator runs "exsync sync --dry-run"
    Then the output mentions "withheld: 1 excluded domain"
    And the output mentions "withheld: 1 excluded address"
    When the administrator runs "exsync sync"
    Then the CRM has no mail "Salary review"
    And the CRM has a mail "Quote"
    And the CRM has no contact with e-mail "wife@home.example"
    And the CRM has a contact with e-mail "ann@customer.example" owned by "amelia.admin"
    And no audit entry mentions "Salary review"

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @privacy
  Scenario Outline: Internal-only mails are skipped unless enabled
    Given an org synced over "<exchange>"
    And the CRM has a contact "Carol Inside" with e-mail "carol@contoso.example" owned by "amelia.admin"
    And the mailbox of "amelia.admin" received a mail "Team lunch" from "bob@contoso.example" copied to "carol@contoso.example"
    When the administrator runs "exsync sync"
    Then the CRM has no mail "Team lunch"
    And the output mentions "withheld: 1 internal only"
    When the administrator runs "exsync settings set --internal-mails sync"
    And the mailbox of "amelia.admin" received a mail "Team offsite" from "bob@contoso.example" copied to "carol@contoso.example"
    And the administrator runs "exsync sync"
    Then the CRM has a mail "Team offsite"

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @privacy
  Scenario Outline: A user who opts in has only appointments in the "CRM" category synced
    Given an org synced over "<exchange>"
    And the administrator runs "exsync settings set --user amelia.admin@contoso.example --track events=opt-in"
    And the mailbox of "amelia.admin" has an event "Deal review" in 3 days in the category "CRM"
    And the mailbox of "amelia.admin" has an event "Dentist" in 3 days
    And the CRM has an event "Kickoff" in 5 days owned by "amelia.admin"
    When the administrator runs "exsync sync"
    Then the CRM has an event "Deal review"
    And the CRM has no event "Dentist"
    And the output mentions "withheld: 1 not opted in"
    And the user profile of "amelia.admin" tracks events as "opt-in"
    And the event "Kickoff" in the mailbox of "amelia.admin" is in the category "CRM"
    When the administrator runs "exsync sync"
    Then the last sync wrote nothing

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @privacy
  Scenario: A user who opts out keeps the appointments in the opt-out category out of the CRM
    Given an org synced over "graph"
    And the administrator runs "exsync settings set --track events=opt-out --opt-out-category Personal"
    And the mailbox of "amelia.admin" has an event "Gym" in 3 days in the category "Personal"
    And the mailbox of "amelia.admin" has an event "Deal review" in 3 days
    When the administrator runs "exsync sync"
    Then the CRM has an event "Deal review"
    And the CRM has no event "Gym"

  @privacy
  Scenario Outline: Bad privacy settings are refused with the reason
    Given an org synced over "graph"
    When the administrator runs "<command>"
    Then the command fails with "<reason>"

    Examples:
      | command                                                          | reason                          |
      | exsync settings set --exclude-domain ann@hr.example              | is not a domain                 |
      | exsync settings set --exclude-address hr.example                 | is not an e-mail address        |
      | exsync settings set --track events=sometimes                     | is not a tracking choice        |
      | exsync settings set --user nobody@contoso.example --track events=opt-in | is not a user of the CRM org |
      | exsync settings set --user amelia.admin@contoso.example --private keep | applies to the whole org |
