"""Rule outcomes: how often each rule version's suggestions were approved, changed, rejected
or expired, and why they were rejected, so a clinic can tune its rules.

Pure: the service counts the suggestions by rule, version, kind and outcome, and the rejection
reasons, in grouped queries; this module files them per rule version.

Outcomes (each suggestion has exactly one):
    approved           approved as proposed (an order-sign card the EHR's clinician accepted
                       counts here: its correction is the proposal)
    changed            approved with another value than proposed (a de-escalation approved at
                       another dose or interval: its applied regimen version differs from the
                       proposal's "to")
    rejected           rejected with a reason (on our pages, or overridden in the EHR)
    expired_undecided  not decided in time (housekeeping's expiry; DOMAIN.md: unapproved
                       orders expire)
    expired            no longer indicated (the facts changed, or a safety hold blocked it)
    superseded         a newer suggestion of its kind replaced it while pending
    pending            still waiting for a decision
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SuggestionCount:
    """Suggestions of one rule version in one state (a grouped count)."""

    rule_id: str
    rule_version: int
    kind: str
    #: pending, approved, changed, rejected, expired_undecided, expired, superseded
    outcome: str
    count: int


@dataclass(frozen=True)
class ReasonCount:
    rule_id: str
    rule_version: int
    reason: str
    count: int


#: Outcomes in the order the pages show them.
OUTCOMES: tuple[str, ...] = (
    "approved",
    "changed",
    "rejected",
    "expired_undecided",
    "expired",
    "superseded",
    "pending",
)
OUTCOME_LABELS: Mapping[str, str] = {
    "approved": "Approved as proposed",
    "changed": "Approved with a change",
    "rejected": "Rejected",
    "expired_undecided": "Expired undecided",
    "expired": "Expired (no longer indicated)",
    "superseded": "Superseded",
    "pending": "Pending",
}


@dataclass(frozen=True)
class RuleOutcome:
    rule_id: str
    rule_version: int
    kinds: tuple[str, ...]
    counts: Mapping[str, int]
    #: Rejection reasons, most frequent first (ties by text).
    reasons: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def decided(self) -> int:
        """Approved (as proposed or changed) or rejected: a physician's decision."""
        return self.counts["approved"] + self.counts["changed"] + self.counts["rejected"]

    @property
    def approved_percent(self) -> float | None:
        """Share of decided suggestions approved (with or without a change)."""
        if not self.decided:
            return None
        return (self.counts["approved"] + self.counts["changed"]) / self.decided * 100


def rule_outcomes(
    counts: Iterable[SuggestionCount], reasons: Iterable[ReasonCount]
) -> list[RuleOutcome]:
    """Each rule version's outcomes and rejection reasons, by rule then version."""
    tallies: dict[tuple[str, int], dict[str, int]] = {}
    kinds: dict[tuple[str, int], set[str]] = {}
    for row in counts:
        key = (row.rule_id, row.rule_version)
        tally = tallies.setdefault(key, dict.fromkeys(OUTCOMES, 0))
        if row.outcome not in tally:
            raise ValueError(f"outcome: {row.outcome!r} is not one of {', '.join(OUTCOMES)}")
        tally[row.outcome] += row.count
        kinds.setdefault(key, set()).add(row.kind)
    said: dict[tuple[str, int], dict[str, int]] = {}
    for reason in reasons:
        key = (reason.rule_id, reason.rule_version)
        tallies.setdefault(key, dict.fromkeys(OUTCOMES, 0))
        kinds.setdefault(key, set())
        bucket = said.setdefault(key, {})
        bucket[reason.reason] = bucket.get(reason.reason, 0) + reason.count
    return [
        RuleOutcome(
            rule_id=key[0],
            rule_version=key[1],
            kinds=tuple(sorted(kinds[key])),
            counts=tallies[key],
            reasons=tuple(sorted(said.get(key, {}).items(), key=lambda item: (-item[1], item[0]))),
        )
        for key in sorted(tallies)
    ]
