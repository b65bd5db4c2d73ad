"""What never leaves the mailbox: the privacy rules, and the one decision that applies them.

:func:`PrivacyRules.withheld` is a pure function of a canonical record and the rules: it
says whether the record may be copied to the other side, and if not, why. The planner asks
it of every record it reads, on both sides and for every entity:

- Exchange's sensitivity: Private is never copied by default; Confidential and Personal are
  copied unless the administrator says otherwise (``exsync settings set --private``...);
- excluded addresses and domains: a contact with such an address, a mail from or to one;
- internal-only mails (every address in the org's own domains) unless enabled;
- per user and entity tracking: everything, only items carrying the opt-in category
  (``CRM``), or all but items carrying the opt-out category.

A record withheld after it was synced is no longer synced either way; whether its copy on
the other side is deleted or kept is :attr:`Withheld.remove_copy`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from framework.contracts import SideName
from framework.model import Contact, Mail, Record

SENSITIVITY_CHOICES = ("share", "remove", "keep")
"""What a sensitivity does: ``share`` syncs as any other item; ``remove`` and ``keep``
withhold it, and its copy already in the CRM is deleted or kept (no longer synced)."""
TRACKING_MODES = ("all", "opt-in", "opt-out")
DEFAULT_SENSITIVITY = {"private": "remove", "confidential": "share", "personal": "share"}


@dataclass(frozen=True)
class Withheld:
    """Why a record stays where it is, and what becomes of a copy already on the other side."""

    reason: str
    remove_copy: bool = False


@dataclass(frozen=True)
class PrivacyRules:
    """The rules for one user's records (the org's, with the user's own added)."""

    sensitivity: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SENSITIVITY))
    excluded_addresses: frozenset[str] = frozenset()
    excluded_domains: frozenset[str] = frozenset()
    internal_domains: frozenset[str] = frozenset()
    internal_mails: bool = False
    tracking: Mapping[str, str] = field(default_factory=dict)
    """Entity -> ``all`` | ``opt-in`` | ``opt-out``; an entity not named tracks everything."""
    opt_in_category: str = "CRM"
    opt_out_category: str = "Not in CRM"

    def withheld(self, entity: str, side: SideName, record: Record) -> Withheld | None:
        """Why ``record``, read from ``side``, must not be copied to the other side (None: it may).

        Sensitivity and categories exist in Exchange only, so they are asked of Exchange
        records; addresses of both sides' (a CRM contact at an excluded address stays too).
        """
        if side == "exchange":
            reason = self._by_sensitivity(record) or self._by_tracking(entity, record)
            if reason is not None:
                return reason
        return self._by_address(record)

    def _by_sensitivity(self, record: Record) -> Withheld | None:
        treatment = self.sensitivity.get(record.sensitivity, "share")
        if treatment == "share":
            return None
        return Withheld(record.sensitivity, remove_copy=treatment == "remove")

    def _by_tracking(self, entity: str, record: Record) -> Withheld | None:
        mode = self.tracking.get(entity, "all")
        categories = {c.strip().lower() for c in record.categories}
        if mode == "opt-in" and self.opt_in_category.lower() not in categories:
            return Withheld("not opted in")
        if mode == "opt-out" and self.opt_out_category.lower() in categories:
            return Withheld("opted out")
        return None

    def _by_address(self, record: Record) -> Withheld | None:
        if isinstance(record, Contact):
            addresses = {record.email.strip().lower()} - {""}
        elif isinstance(record, Mail):
            addresses = {a.strip() for a in record.addresses()} - {""}
        else:
            return None
        if addresses & self.excluded_addresses:
            return Withheld("excluded address", remove_copy=True)
        if any(domain_of(a) in self.excluded_domains for a in addresses):
            return Withheld("excluded domain", remove_copy=True)
        if isinstance(record, Mail) and not self.internal_mails and self._internal_only(addresses):
            return Withheld("internal only")
        return None

    def _internal_only(self, addresses: set[str]) -> bool:
        """Every address is in one of the org's own domains (and there is at least one)."""
        return bool(addresses and self.internal_domains) and all(
            domain_of(a) in self.internal_domains for a in addresses
        )

    def describe(self) -> dict[str, object]:
        """The rules as shown to people and scripts (``exsync users show``)."""
        return {
            "sensitivity": dict(self.sensitivity),
            "excluded_addresses": sorted(self.excluded_addresses),
            "excluded_domains": sorted(self.excluded_domains),
            "internal_mails": "sync" if self.internal_mails else f"skip ({', '.join(sorted(self.internal_domains))})",
            "tracking": dict(self.tracking) or "all",
            "opt_in_category": self.opt_in_category,
            "opt_out_category": self.opt_out_category,
        }

    def stamped(self, entity: str, record: Record) -> Record:
        """``record`` as it is created in Exchange: carrying the opt-in category when the
        entity is opt-in, so that what the CRM put in the mailbox stays tracked."""
        if self.tracking.get(entity) != "opt-in":
            return record
        if self.opt_in_category.lower() in {c.lower() for c in record.categories}:
            return record
        return dataclasses.replace(record, categories=(*record.categories, self.opt_in_category))


def domain_of(address: str) -> str:
    """The lower-cased domain of an e-mail address ('' when it has none)."""
    return address.rpartition("@")[2].strip().lower() if "@" in address else ""


def lowered(values: Iterable[str]) -> frozenset[str]:
    """The non-empty values, stripped and lower-cased."""
    return frozenset(v.strip().lower() for v in values if v.strip())


SHARE_EVERYTHING = PrivacyRules(sensitivity={})
"""Rules that withhold nothing (what the planner assumes when it is given none)."""
