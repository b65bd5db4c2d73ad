Feature: Sync settings and "Sync now"
  The same toggles, sync type, direction and conflict behaviour apply to every way of
  authenticating; "Sync now" runs a sync by them and the dashboard shows what happened.

  @B12 @B20
  Scenario Outline: A disabled entity is not touched
    Given an org synced over "<exchange>"
    And the mailbox of "amelia.admin" has a contact "Bob Ray" with e-mail "bob@example.com"
    When the administrator runs "exsync settings set --disable contacts"
    And the administrator runs "exsync sync"
    Then the CRM has no contact with e-mail "bob@example.com"
    When the administrator runs "exsync settings set --enable contacts"
    And the administrator runs "exsync sync"
    Then the CRM has a contact with e-mail "bob@example.com" owned by "amelia.admin"

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @B13 @B20
  Scenario Outline: Both ways copies new records in each direction
    Given an org synced over "<exchange>"
    And the CRM has a contact "Ann Lee" with e-mail "ann@example.com" owned by "amelia.admin"
    And the mailbox of "amelia.admin" has a contact "Bob Ray" with e-mail "bob@example.com"
    When the administrator runs "exsync sync"
    Then the CRM has a contact with e-mail "bob@example.com" owned by "amelia.admin"
    And the mailbox of "amelia.admin" has a contact with e-mail "ann@example.com"
    When the administrator runs "exsync sync"
    Then the last sync wrote nothing

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @B14 @B20
  Scenario Outline: One way from Microsoft to the CRM never writes Exchange
    Given an org synced over "<exchange>"
    And the CRM has a contact "Ann Lee" with e-mail "ann@example.com" owned by "amelia.admin"
    And the mailbox of "amelia.admin" has a contact "Bob Ray" with e-mail "bob@example.com"
    When the administrator runs "exsync settings set --sync-type one_way --direction exchange_to_crm"
    And the administrator runs "exsync sync"
    Then the CRM has a contact with e-mail "bob@example.com" owned by "amelia.admin"
    And the mailbox of "amelia.admin" has no contact with e-mail "ann@example.com"

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @B14 @B20
  Scenario Outline: One way from the CRM to Microsoft never writes the CRM
    Given an org synced over "<exchange>"
    And the CRM has a contact "Ann Lee" with e-mail "ann@example.com" owned by "amelia.admin"
    And the mailbox of "amelia.admin" has a contact "Bob Ray" with e-mail "bob@example.com"
    When the administrator runs "exsync settings set --sync-type one_way --direction crm_to_exchange"
    And the administrator runs "exsync sync"
    Then the mailbox of "amelia.admin" has a contact with e-mail "ann@example.com"
    And the CRM has no contact with e-mail "bob@example.com"

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @B15 @B20
  Scenario Outline: A conflict is resolved by the chosen behaviour and audit-logged
    Given an org synced over "<exchange>"
    And the CRM has a contact "Ann Lee" with e-mail "ann@example.com" owned by "amelia.admin"
    And the administrator runs "exsync sync"
    And the administrator runs "exsync settings set --conflict-policy <policy>"
    When the contact "ann@example.com" gets job title "CRM title" in the CRM
    And the contact "ann@example.com" gets job title "Exchange title" in the mailbox of "amelia.admin"
    And the administrator runs "exsync sync"
    Then the contact "ann@example.com" has job title "<winner>" on both sides
    And the audit log has an "ok" entry for action "resolve-conflict"

    Examples:
      | exchange | policy        | winner         |
      | ews      | crm-wins      | CRM title      |
      | ews      | exchange-wins | Exchange title |
      | graph    | crm-wins      | CRM title      |
      | graph    | exchange-wins | Exchange title |

  @B16 @B20
  Scenario Outline: Sync now prints a summary and the dashboard shows the run
    Given an org synced over "<exchange>"
    And the mailbox of "amelia.admin" has a contact "Bob Ray" with e-mail "bob@example.com"
    When the administrator runs "exsync sync"
    Then the output mentions "Sync summary"
    When the administrator runs "exsync --json dashboard"
    Then the JSON output's recent run for "amelia.admin" created 1 contact in the CRM

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @B16
  Scenario: Nothing syncs into a CRM module whose custom fields the org lacks
    Given an org synced over "ews"
    And the CRM org lacks the custom field "Contacts.Exsync_Link"
    And the mailbox of "amelia.admin" has a contact "Bob Ray" with e-mail "bob@example.com"
    When the administrator runs "exsync sync"
    Then the command fails
    And the output mentions "lacks the custom fields exsync writes to Contacts"
    And the output mentions "Contacts.Exsync_Link (text, 255)"
    And the output mentions "--create-fields"
    And the CRM has no contact with e-mail "bob@example.com"

  @B16
  Scenario: A dry run prints the plan and writes nothing
    Given an org synced over "graph"
    And the mailbox of "amelia.admin" has a contact "Bob Ray" with e-mail "bob@example.com"
    When the administrator runs "exsync sync --dry-run"
    Then the output mentions "create on crm: Bob Ray <bob@example.com>"
    And the output mentions "Dry run"
    And the CRM has no contact with e-mail "bob@example.com"
