Feature: User management, status and audit
  Administrators see every CRM user with a sync toggle, each user's sync details and
  status, and an audit log of the last month.

  @B25
  Scenario: A user's profile shows every sync detail configured by the admin
    Given an org synced over "ews"
    When the administrator runs "exsync --json users show amelia.admin@contoso.example"
    Then the command succeeds
    And the JSON output has "auth_method" = "ews-impersonation"
    And the JSON output has "sync_type" = "two_way"
    And the JSON output has "conflict_policy" = "crm-wins"
    And the JSON output has "enabled" = "true"

  @B26
  Scenario: Every CRM user is listed with a toggle, and only enabled users sync
    Given an org synced over "graph"
    And the mailbox of "sofia.sales" has a contact "Cy Young" with e-mail "cy@example.com"
    When the administrator runs "exsync users list"
    Then the output mentions "sam.standard@contoso.example"
    And the output mentions "sofia.sales@contoso.example"
    When the administrator runs "exsync sync"
    Then the CRM has no contact with e-mail "cy@example.com"
    When the administrator runs "exsync users enable sofia.sales@contoso.example"
    And the administrator runs "exsync sync"
    Then the CRM has a contact with e-mail "cy@example.com" owned by "sofia.sales"

  @B27
  Scenario: Sync status shows every user's last run, result, counts and errors
    Given an org synced over "graph"
    And the mailbox of "amelia.admin" has a contact "Bob Ray" with e-mail "bob@example.com"
    And the administrator runs "exsync sync"
    When the administrator runs "exsync --json status"
    Then the JSON status of "amelia.admin" has result "ok" and created 1
    And the JSON status of "sam.standard" has result "" and last run "never"

  @B27
  Scenario: --json works after the command too, as people type it
    Given an org synced over "graph"
    And the administrator runs "exsync sync"
    When the administrator runs "exsync status --json"
    Then the JSON status of "amelia.admin" has result "ok" and created 0

  @B27
  Scenario: With an interval set, sync --watch runs on schedule and the status shows the next run
    Given an org synced over "graph"
    And the administrator runs "exsync settings set --interval 15"
    When the administrator runs "exsync sync --watch --rounds 1"
    Then the command succeeds
    When the administrator runs "exsync --json status"
    Then the JSON status of "amelia.admin" has its next run in 15 minutes

  @B27
  Scenario: A record the other side rejects shows up as an open error and is retried
    Given an org synced over "graph"
    And the mailbox of "amelia.admin" has a contact "Zed" with e-mail "not-an-address"
    When the administrator runs "exsync sync"
    Then the command fails
    And the output mentions "Email"
    When the administrator runs "exsync --json status"
    Then the JSON status of "amelia.admin" mentions "Email" as last error

  @B28
  Scenario: The audit log records operations and can be filtered
    Given an org synced over "ews"
    And the administrator runs "exsync sync"
    And "sam.standard" runs "exsync settings set --sync-type one_way"
    When the administrator runs "exsync --json audit --since 7d --outcome refused"
    Then the JSON output lists only "refused" entries
    And the JSON output has an entry for action "configure"
    When the administrator runs "exsync --json audit --action sync --user amelia.admin@contoso.example"
    Then the JSON output has an entry for action "sync"

  @B28
  Scenario: Entries older than a month are pruned
    Given an org synced over "ews"
    And the audit log has an entry from 40 days ago
    When the administrator runs "exsync --json audit --since 60d"
    Then the JSON output has no entry older than 30 days
