"""Bundled conflict policies: the CRM always wins, or Exchange always wins (B15)."""

from __future__ import annotations

from framework import hookimpl
from framework.contracts import Conflict, ConflictPolicy, SideName


class CrmWins(ConflictPolicy):
    """The CRM's version is kept; Exchange is overwritten."""

    name = "crm-wins"
    description = "CRM always wins: Exchange data is overwritten."

    def winner(self, conflict: Conflict) -> SideName:
        return "crm"


class ExchangeWins(ConflictPolicy):
    """Exchange's version is kept; the CRM is overwritten."""

    name = "exchange-wins"
    description = "Exchange always wins: CRM data is overwritten."

    def winner(self, conflict: Conflict) -> SideName:
        return "exchange"


@hookimpl
def exsync_conflict_policies() -> list[ConflictPolicy]:
    return [CrmWins(), ExchangeWins()]
