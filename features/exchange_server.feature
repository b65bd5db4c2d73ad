Feature: Exchange Server over EWS
  exsync reaches an on-premises Exchange Server through EWS with Windows authentication (NTLM,
  also behind Negotiate) or Basic, whichever the server offers (NTLM first), either with a
  service account holding ApplicationImpersonation or with each user's own credentials. The
  choice between the two is made once. The scenarios of B07-B11 and B17 run twice: over NTLM
  with Basic switched off on the server, and over Basic.

  @B07
  Scenario: Basic is not a prerequisite: with Basic switched off exsync uses Windows authentication
    Given exsync is installed in an Enterprise org for "all"
    And Basic authentication is switched off on the Exchange server
    And the administrator authenticates EWS with impersonation and auth type "auto"
    And the users "amelia.admin, sam.standard" are enabled for sync
    And the mailbox of "sam.standard" has a contact "Bob Ray" with e-mail "bob@example.com"
    When the administrator runs "exsync sync"
    Then the command succeeds
    And the CRM has a contact with e-mail "bob@example.com" owned by "sam.standard"
    And the Exchange server authenticated every request with Windows authentication

  @B07
  Scenario: Automatic choice prefers Windows authentication to Basic
    Given exsync is installed in an Enterprise org
    When the administrator authenticates EWS with impersonation and auth type "auto"
    Then the command succeeds
    And the output mentions "NTLM"
    And the Exchange server authenticated every request with Windows authentication

  @B07
  Scenario: A server that offers only Negotiate is reached with NTLM inside it
    Given exsync is installed in an Enterprise org
    And the Exchange server offers only Negotiate
    When the administrator authenticates EWS with impersonation and auth type "ntlm"
    Then the command succeeds
    And the Exchange server authenticated every request with Windows authentication

  @B07
  Scenario: Basic chosen while the server has it switched off is reported as such
    Given exsync is installed in an Enterprise org
    And Basic authentication is switched off on the Exchange server
    When the administrator authenticates EWS with impersonation and auth type "basic"
    Then the command fails with "does not accept Basic authentication"
    And no Exchange authentication is set up

  @B07
  Scenario: Plain http is refused unless explicitly allowed for a test server
    Given exsync is installed in an Enterprise org
    When the administrator authenticates EWS with impersonation over plain http without the insecure flag
    Then the command fails with "https"
    And no Exchange authentication is set up

  @B07
  Scenario: An untrusted certificate is reported as a TLS problem
    Given exsync is installed in an Enterprise org
    When the administrator authenticates EWS with impersonation without trusting the server's CA
    Then the command fails with "certificate"
    And no Exchange authentication is set up

  @B07
  Scenario: EWS disabled on the server is reported as such
    Given exsync is installed in an Enterprise org
    And EWS is disabled on the Exchange server
    When the administrator authenticates EWS with impersonation
    Then the command fails with "EWS"
    And no Exchange authentication is set up

  @B08 @B11
  Scenario: With impersonation every enabled user syncs without authenticating themselves
    Given exsync is installed in an Enterprise org for "all"
    And the administrator authenticates EWS with impersonation
    And the users "amelia.admin, sam.standard" are enabled for sync
    And the mailbox of "sam.standard" has a contact "Bob Ray" with e-mail "bob@example.com"
    When the administrator runs "exsync sync"
    Then the command succeeds
    And the CRM has a contact with e-mail "bob@example.com" owned by "sam.standard"

  @B08 @B11
  Scenario: A service account without ApplicationImpersonation is refused
    Given exsync is installed in an Enterprise org
    When the administrator authenticates EWS with impersonation as an account without the right
    Then the command fails with "ApplicationImpersonation"
    And no Exchange authentication is set up

  @B08 @B11
  Scenario: With individual credentials only users who stored their own credentials sync
    Given exsync is installed in an Enterprise org for "all"
    And the administrator chooses individual EWS credentials
    And the users "amelia.admin, sam.standard" are enabled for sync
    And "sam.standard" stores their own EWS credentials
    And the mailbox of "sam.standard" has a contact "Bob Ray" with e-mail "bob@example.com"
    When the administrator runs "exsync sync"
    Then the CRM has a contact with e-mail "bob@example.com" owned by "sam.standard"
    And the status of "amelia.admin" says they need attention

  @B09
  Scenario Outline: Exchange Server versions are detected
    Given exsync is installed in an Enterprise org
    And the Exchange server announces version "<version>"
    When the administrator authenticates EWS with impersonation
    Then the command succeeds
    And the output mentions "<shown>"

    Examples:
      | version          | shown |
      | Exchange2007_SP1 | 2007  |
      | Exchange2010_SP2 | 2010  |
      | Exchange2013     | 2013  |
      | Exchange2016     | 2016  |

  @B10
  Scenario: Credentials are verified before they are stored, and never shown
    Given exsync is installed in an Enterprise org
    When the administrator authenticates EWS with impersonation using a wrong password
    Then the command fails with "user name or password"
    And no Exchange authentication is set up
    When the administrator authenticates EWS with impersonation
    Then the command succeeds
    And no output, log or audit entry contains the password

  @B17
  Scenario: The impersonation choice can be made only once
    Given exsync is installed in an Enterprise org
    And the administrator authenticates EWS with impersonation
    When the administrator chooses individual EWS credentials
    Then the command fails with "cannot be changed"
    And the auth status says "impersonation"
