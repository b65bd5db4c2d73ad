Feature: What a standard user may do
  A user may authenticate their own account, open the dashboard, read their mails and
  update their password; everything else is for administrators.

  @B32
  Scenario: A user stores and updates their own EWS password
    Given exsync is installed in an Enterprise org for "all"
    And the administrator chooses individual EWS credentials
    When "sam.standard" stores their own EWS credentials
    Then the command succeeds
    When "sam.standard" updates their EWS password
    Then the command succeeds
    And the audit log has an "ok" entry for action "update-password"

  @B32
  Scenario: A user cannot store credentials for someone else
    Given exsync is installed in an Enterprise org for "all"
    And the administrator chooses individual EWS credentials
    When "sam.standard" stores EWS credentials for "sofia.sales"
    Then the command fails with "Only a CRM administrator"

  @B32
  Scenario: A user opens the dashboard and reads their mails, but cannot change settings
    Given an org synced over "graph"
    And the CRM has a contact "Ann Lee" with e-mail "ann@example.com" owned by "sam.standard"
    And the users "sam.standard" are enabled for sync
    And the mailbox of "sam.standard" received a mail "Hello" from "ann@example.com" copied to "nobody@example.com"
    And the administrator runs "exsync sync"
    When "sam.standard" runs "exsync dashboard"
    Then the command succeeds
    When "sam.standard" runs "exsync mails"
    Then the output mentions "Hello"
    When "sam.standard" runs "exsync settings set --disable mails"
    Then the command fails with "Only a CRM administrator"
