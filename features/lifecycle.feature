Feature: Revoke, change of authentication and uninstall
  Credentials can be revoked and set up again, Exchange Server users move from Basic to
  OAuth, and uninstalling stops syncing while leaving the synced data where it is.

  @B29
  Scenario: Revoke removes credentials and stops sync; authenticating again duplicates nothing
    Given an org synced over "ews"
    And the CRM has a contact "Ann Lee" with e-mail "ann@example.com" owned by "amelia.admin"
    And the administrator runs "exsync sync"
    When the administrator runs "exsync revoke --yes"
    Then the command succeeds
    And no Exchange authentication is set up
    And the vault holds no Exchange credentials
    When the administrator runs "exsync status"
    Then the output mentions "Authentication: missing"
    When the administrator runs "exsync dashboard"
    Then the output mentions "authentication missing"
    When the administrator runs "exsync sync"
    Then the command fails with "No Exchange authentication"
    When the administrator authenticates EWS with impersonation
    And the administrator runs "exsync sync"
    Then the mailbox of "amelia.admin" has exactly 1 contact with e-mail "ann@example.com"

  @B30
  Scenario: Moving from Basic over EWS to OAuth over Graph keeps the pairs
    Given an org synced over "ews"
    And the CRM has a contact "Ann Lee" with e-mail "ann@example.com" owned by "amelia.admin"
    And the mailbox of "amelia.admin" has a contact "Bob Ray" with e-mail "bob@example.com"
    And the administrator runs "exsync sync"
    When the administrator runs "exsync change-auth --yes"
    And the administrator authenticates Microsoft 365 with client credentials
    And the administrator runs "exsync sync"
    Then the command succeeds
    And the mailbox of "amelia.admin" has exactly 1 contact with e-mail "ann@example.com"
    And the CRM has exactly 1 contact with e-mail "bob@example.com"

  @B31
  Scenario: Uninstall stops syncing, removes credentials and settings, and keeps synced data
    Given an org synced over "graph"
    And the CRM has a contact "Ann Lee" with e-mail "ann@example.com" owned by "amelia.admin"
    And the administrator runs "exsync sync"
    When the administrator runs "exsync uninstall --yes"
    Then the command succeeds
    And exsync is not installed
    And the vault holds no Exchange credentials
    And the vault holds no CRM login
    And the mailbox of "amelia.admin" has exactly 1 contact with e-mail "ann@example.com"
    And the CRM has exactly 1 contact with e-mail "ann@example.com"
    When the administrator runs "exsync sync"
    Then the command fails with "has not logged in to the CRM"
    When the administrator logs in to the CRM again
    And the administrator runs "exsync sync"
    Then the command fails with "not installed"
