Feature: Prerequisites
  Only CRM administrators run exsync for the org, only on the Enterprise plan or higher,
  and Microsoft 365 is reached with OAuth through Microsoft Graph, never with Basic over EWS.

  @B01
  Scenario: A non-admin cannot configure the org, and the refusal is audit-logged
    Given an org synced over "ews"
    When "sam.standard" runs "exsync settings set --sync-type one_way"
    Then the command fails with "Only a CRM administrator"
    And the settings still say sync type "two_way"
    And the audit log has a "refused" entry for action "configure"

  @B01
  Scenario Outline: Admin-only commands refuse a standard user
    Given an org synced over "ews"
    When "sam.standard" runs "<command>"
    Then the command fails with "Only a CRM administrator"

    Examples:
      | command                     |
      | exsync users enable sam.standard@contoso.example |
      | exsync revoke --yes         |
      | exsync change-auth --yes    |
      | exsync uninstall --yes      |
      | exsync audit                |
      | exsync sync                 |

  @B02
  Scenario: Install is refused below the Enterprise edition
    Given a CRM org on the "Professional" edition
    And the administrator has logged in to the CRM
    When the administrator runs "exsync install --scope all --accept-terms"
    Then the command fails with "needs the Enterprise edition or higher; this org is on Professional"
    And exsync is not installed

  @B02
  Scenario: Install succeeds on the Ultimate edition
    Given a CRM org on the "Ultimate" edition
    And the administrator has logged in to the CRM
    When the administrator runs "exsync install --scope all --accept-terms"
    Then the command succeeds

  @B03
  Scenario: Basic over EWS against a Microsoft 365 endpoint is refused with the reason
    Given exsync is installed in an Enterprise org
    When the administrator runs "exsync auth ews --endpoint https://outlook.office365.com/EWS/Exchange.asmx --impersonation --email svc@contoso.example --password pw --domain CONTOSO"
    Then the command fails with "Microsoft 365"
    And the output mentions "exsync auth graph"
    And no Exchange authentication is set up
