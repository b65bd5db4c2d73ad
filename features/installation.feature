Feature: Installation
  An administrator installs exsync after accepting the terms of service, for administrators
  only, for every user, or for chosen profiles; then the exsync commands are usable.

  @B04
  Scenario: Install requires the terms of service to be accepted
    Given a CRM org on the "Enterprise" edition
    And the administrator has logged in to the CRM
    When the administrator runs "exsync install --scope all" answering "n"
    Then the command fails with "terms of service were not accepted"
    And exsync is not installed

  @B04
  Scenario: Install with the terms accepted
    Given a CRM org on the "Enterprise" edition
    And the administrator has logged in to the CRM
    When the administrator runs "exsync install --scope all --accept-terms"
    Then the command succeeds
    And the audit log has an "ok" entry for action "install"

  @B05
  Scenario: Scope "admins" keeps standard users out
    Given exsync is installed in an Enterprise org for "admins"
    When "sam.standard" runs "exsync dashboard"
    Then the command fails with "installed for administrators only"

  @B05
  Scenario: Scope "profiles" lets in only the chosen profiles
    Given a CRM org on the "Enterprise" edition
    And the administrator has logged in to the CRM
    And the administrator runs "exsync install --scope profiles --profile Standard --accept-terms"
    When "sam.standard" runs "exsync dashboard"
    Then the command succeeds

  @B05
  Scenario: Scope "all" lets every user in
    Given exsync is installed in an Enterprise org for "all"
    When "sofia.sales" runs "exsync dashboard"
    Then the command succeeds

  @B06
  Scenario Outline: After install the exsync commands offer help
    Given exsync is installed in an Enterprise org for "all"
    When the administrator runs "<command> --help"
    Then the command succeeds
    And the output mentions "<words>"

    Examples:
      | command         | words                       |
      | exsync          | Keep a CRM and Microsoft Exchange in sync |
      | exsync sync     | Sync now                    |
      | exsync settings set | conflict                |
      | exsync auth ews | endpoint                    |
      | exsync auth graph | client-credentials        |
      | exsync dashboard | summary                    |

  @B04
  Scenario: Install names the custom fields the CRM org lacks
    Given a CRM org on the "Enterprise" edition
    And the CRM org lacks the custom field "Contacts.Exsync_Link"
    And the administrator has logged in to the CRM
    When the administrator runs "exsync install --scope all --accept-terms"
    Then the command succeeds
    And the output mentions "Contacts.Exsync_Link (text, 255)"
    And the audit log has an "ok" entry for action "install"

  @B04
  Scenario: Install creates the missing custom fields when asked to
    Given a CRM org on the "Enterprise" edition
    And the CRM org lacks the custom field "Events.Exsync_UID"
    And the administrator has logged in to the CRM
    When the administrator runs "exsync install --scope all --accept-terms --create-fields"
    Then the command succeeds
    And the CRM org has the custom field "Events.Exsync_UID"
