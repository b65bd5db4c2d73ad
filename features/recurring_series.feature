Feature: Recurring series with moved and cancelled occurrences
  A series is one CRM event holding its rule; an occurrence moved or changed on its own is a
  CRM event of its own linked to the series, and the dates taken out of the series are its
  exception dates, so the CRM calendar shows every occurrence once. Changes made on either side
  reach the other as exceptions, never as standalone events, never twice.

  @B13 @series
  Scenario Outline: A weekly series with one moved and one cancelled occurrence, made in Exchange, shows correctly in the CRM
    Given an org synced over "<exchange>"
    And the calendar of "amelia.admin" has a weekly series "Team sync" at 09:00 "Europe/Berlin"
    And the administrator runs "exsync sync"
    When "amelia.admin" moves occurrence 2 of "Team sync" to 11:00 in Outlook
    And "amelia.admin" cancels occurrence 3 of "Team sync" in Outlook
    And the administrator runs "exsync sync"
    Then the command succeeds
    And the CRM has one series "Team sync" repeating "FREQ=WEEKLY;BYDAY=MO;COUNT=10" in "Europe/Berlin"
    And the CRM series "Team sync" leaves out occurrences 2 and 3
    And the CRM has occurrence 2 of "Team sync" at 11:00 "Europe/Berlin", linked to its series
    And the CRM calendar shows "Team sync" 9 times, each once
    And a second "exsync sync" writes nothing

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @B13 @series
  Scenario Outline: An occurrence changed or cancelled in the CRM is an exception in Exchange
    Given an org synced over "<exchange>"
    And the calendar of "amelia.admin" has a weekly series "Team sync" at 09:00 "Europe/Berlin"
    And the administrator runs "exsync sync"
    When a CRM user moves occurrence 4 of "Team sync" to 14:00 in "Hall B"
    And a CRM user cancels occurrence 5 of "Team sync"
    And the administrator runs "exsync sync"
    Then the command succeeds
    And in Outlook occurrence 4 of "Team sync" is at 14:00 "Europe/Berlin" in "Hall B"
    And in Outlook "Team sync" has no occurrence 5
    And the calendar of "amelia.admin" has one series "Team sync"
    And a second "exsync sync" writes nothing

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @B13 @series
  Scenario Outline: A series keeps its wall-clock time across the change to summer time, on both sides
    Given an org synced over "<exchange>"
    And the calendar of "amelia.admin" has a weekly series "Team sync" at 09:00 "Europe/Berlin" across a daylight saving change
    When the administrator runs "exsync sync"
    Then every occurrence of "Team sync" in Outlook is at 09:00 "Europe/Berlin"
    When the CRM series "Team sync" is renamed "Team sync (EMEA)"
    And the administrator runs "exsync sync"
    Then every occurrence of "Team sync (EMEA)" in Outlook is at 09:00 "Europe/Berlin"
    And the CRM has one series "Team sync (EMEA)" repeating "FREQ=WEEKLY;BYDAY=MO;COUNT=10" in "Europe/Berlin"

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @B13 @series
  Scenario Outline: An all-day series stays all-day, with its cancelled day
    Given an org synced over "<exchange>"
    And the calendar of "amelia.admin" has an all-day daily series "Trade fair" of 5 days
    When "amelia.admin" cancels occurrence 2 of "Trade fair" in Outlook
    And the administrator runs "exsync sync"
    Then the CRM has one all-day series "Trade fair" repeating "FREQ=DAILY;COUNT=5"
    And the CRM series "Trade fair" leaves out occurrence 2
    And a second "exsync sync" writes nothing

    Examples:
      | exchange |
      | ews      |
      | graph    |

  @B13 @series
  Scenario Outline: Deleting a series deletes its exceptions; changing its pattern drops them, as Exchange does
    Given an org synced over "<exchange>"
    And the calendar of "amelia.admin" has a weekly series "Team sync" at 09:00 "Europe/Berlin"
    And the calendar of "amelia.admin" has a weekly series "Standup" at 08:30 "Europe/Berlin"
    And "amelia.admin" moves occurrence 2 of "Team sync" to 11:00 in Outlook
    And "amelia.admin" moves occurrence 2 of "Standup" to 10:00 in Outlook
    And the administrator runs "exsync sync"
    When "amelia.admin" deletes the series "Team sync" in Outlook
    And "amelia.admin" makes "Standup" repeat on Tuesdays in Outlook
    And the administrator runs "exsync sync"
    Then the command succeeds
    And the CRM has no event "Team sync"
    And the CRM has one series "Standup" repeating "FREQ=WEEKLY;BYDAY=TU;COUNT=10" in "Europe/Berlin"
    And the CRM series "Standup" has no exceptions
    And a second "exsync sync" writes nothing

    Examples:
      | exchange |
      | ews      |
      | graph    |
