Feature: Microsoft 365 over Microsoft Graph
  Microsoft 365 is reached with OAuth: each user signs in with the authorization-code flow,
  or the administrator authenticates the whole organisation with client credentials.

  @B18
  Scenario: Each user signs in with their own account, and their data syncs
    Given exsync is installed in an Enterprise org for "all"
    And "sam.standard" signs in to Microsoft 365 with the authorization-code flow
    And the users "sam.standard" are enabled for sync
    And the mailbox of "sam.standard" has a contact "Bob Ray" with e-mail "bob@example.com"
    And the mailbox of "sam.standard" has a task "Call Bob" due in 3 days
    When the administrator runs "exsync sync"
    Then the command succeeds
    And the CRM has a contact with e-mail "bob@example.com" owned by "sam.standard"
    And the CRM has a task "Call Bob" owned by "sam.standard"

  @B18
  Scenario: An expired access token is refreshed silently; revoked consent asks to sign in again
    Given exsync is installed in an Enterprise org for "all"
    And "sam.standard" signs in to Microsoft 365 with the authorization-code flow
    And the users "sam.standard" are enabled for sync
    And the Microsoft 365 access tokens expire
    When the administrator runs "exsync sync"
    Then the command succeeds
    When "sam.standard" revokes consent in Microsoft 365
    And the Microsoft 365 access tokens expire
    And the administrator runs "exsync sync"
    Then the command fails
    And the status of "sam.standard" says they need attention

  @B18
  Scenario: A series in the mailbox is one CRM event with its rule, never its plain occurrences
    Given exsync is installed in an Enterprise org for "all"
    And "sam.standard" signs in to Microsoft 365 with the authorization-code flow
    And the users "sam.standard" are enabled for sync
    And the mailbox of "sam.standard" has a series "Board review" on the second Tuesday of every month
    When the administrator runs "exsync sync"
    Then the command succeeds
    And the CRM has one event "Board review" repeating "FREQ=MONTHLY;BYDAY=2TU"
    When "sam.standard" moves one occurrence of "Board review" and cancels another in Outlook
    And the administrator runs "exsync sync"
    Then the command succeeds
    And the CRM has one event "Board review" repeating "FREQ=MONTHLY;BYDAY=2TU"

  @B19
  Scenario: Client credentials sync every user of the organisation
    Given exsync is installed in an Enterprise org for "all"
    And the administrator authenticates Microsoft 365 with client credentials
    And the users "amelia.admin, sofia.sales" are enabled for sync
    And the mailbox of "sofia.sales" has a contact "Cy Young" with e-mail "cy@example.com"
    When the administrator runs "exsync sync"
    Then the CRM has a contact with e-mail "cy@example.com" owned by "sofia.sales"

  @B19
  Scenario: Without Tasks.ReadWrite.All, tasks are refused with client credentials, naming the permission
    Given exsync is installed in an Enterprise org for "all"
    And the administrator authenticates Microsoft 365 with client credentials
    When the administrator runs "exsync settings set --enable tasks"
    Then the command fails with "Tasks.ReadWrite.All"

  @B19
  Scenario: With Tasks.ReadWrite.All, client credentials sync every user's tasks
    Given exsync is installed in an Enterprise org for "all"
    And the app registration is granted the application permission "Tasks.ReadWrite.All"
    And the administrator authenticates Microsoft 365 with client credentials
    And the users "sofia.sales" are enabled for sync
    And the mailbox of "sofia.sales" has a task "Call Cy" due in 3 days
    When the administrator runs "exsync settings set --enable tasks"
    Then the command succeeds
    When the administrator runs "exsync sync"
    Then the command succeeds
    And the CRM has a task "Call Cy" owned by "sofia.sales"

  @B19
  Scenario: Authenticating names each application permission the app registration lacks
    Given exsync is installed in an Enterprise org for "all"
    And the app registration lacks the application permissions "User.Read.All, Calendars.ReadWrite"
    When the administrator authenticates Microsoft 365 with client credentials
    Then the command fails with "User.Read.All, Calendars.ReadWrite"
