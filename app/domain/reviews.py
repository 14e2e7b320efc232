"""Course reviews and authorisations: when a review is due, and whether a course may go on.

Pure: the service loads the course's cycle starts, its reviews and its authorisations as plain
values. DOMAIN.md ("Reviews, authorisations, stewardship"): response is judged after 2-3
months (1.82 cycles on average), so the first review comes before cycle 3 (configurable);
Ontario then reviews every 6 months and at least yearly; BloodSTAR's authorisation has an end
date, and continuing needs a recorded review.

Decisions:
- A patient has one IVIG course; cycle numbers run across regimen versions.
- The first review is due on the first day of cycle `first_before_cycle`, or `interval_months`
  after the course's first cycle if that cycle is not booked (a horizon blocked, a hold).
- Each later review is due `interval_months` after the last one recorded, whenever it was
  recorded (an early review moves the next one forward, never back).
- A review whose decision is "stop" ends the course: nothing further is due.
- A review is overdue from the day after its due date; a cycle starting on or after the due
  date without it "starts past the review" (the nurse's soft stop at the chair).
- Authorisations: a course with none is not under an authorisation scheme (nothing to check);
  with some, it is authorised through the latest end date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.domain.schedule import add_months


@dataclass(frozen=True)
class ReviewPolicy:
    first_before_cycle: int
    interval_months: int
    required_measures: tuple[str, ...]
    #: A review point this many days ahead without its measures becomes a nurse task.
    task_days_before: int
    renewal_days_before: int


@dataclass(frozen=True)
class ReviewFact:
    reviewed_on: dt.date
    decision: str


@dataclass(frozen=True)
class AuthorisationFact:
    reference: str
    starts_on: dt.date
    ends_on: dt.date


@dataclass(frozen=True)
class CourseFacts:
    #: Cycle number -> the date of its first day (cycles not cancelled).
    cycle_starts: Mapping[int, dt.date]
    reviews: Sequence[ReviewFact]
    authorisations: Sequence[AuthorisationFact] = ()


@dataclass(frozen=True)
class ReviewPoint:
    due_on: dt.date
    #: 1 for the response review, then 2, 3 ... per review recorded before.
    number: int
    reason: str

    def overdue_on(self, day: dt.date) -> bool:
        """Return whether the review is overdue on a day (the day after it was due)."""
        return day > self.due_on


def course_stopped(facts: CourseFacts) -> bool:
    """Return whether the last review decided to stop the course."""
    last = _last_review(facts)
    return last is not None and last.decision == "stop"


def _last_review(facts: CourseFacts) -> ReviewFact | None:
    return max(facts.reviews, key=lambda r: r.reviewed_on) if facts.reviews else None


def next_review(facts: CourseFacts, policy: ReviewPolicy) -> ReviewPoint | None:
    """Return the next review point of the course, or None (no cycles yet, or stopped)."""
    if not facts.cycle_starts or course_stopped(facts):
        return None
    last = _last_review(facts)
    if last is not None:
        return ReviewPoint(
            add_months(last.reviewed_on, policy.interval_months),
            len(facts.reviews) + 1,
            f"review every {policy.interval_months} months (last {last.reviewed_on})",
        )
    started = facts.cycle_starts[min(facts.cycle_starts)]
    fallback = add_months(started, policy.interval_months)
    before = facts.cycle_starts.get(policy.first_before_cycle)
    if before is not None and before <= fallback:
        return ReviewPoint(before, 1, f"response review before cycle {policy.first_before_cycle}")
    return ReviewPoint(
        fallback,
        1,
        f"response review {policy.interval_months} months after the course began ({started})",
    )


def missing_measures(
    policy: ReviewPolicy, measures: Mapping[str, float | None] | None
) -> tuple[str, ...]:
    """Return the required measures an assessment lacks (all of them without one)."""
    return tuple(m for m in policy.required_measures if measures is None or measures.get(m) is None)


def authorised_until(facts: CourseFacts) -> dt.date | None:
    """Return the last day the course is authorised, or None when it has no authorisation."""
    if not facts.authorisations:
        return None
    return max(a.ends_on for a in facts.authorisations)


@dataclass(frozen=True)
class CycleStop:
    """Why a cycle starting on a day needs a reason to go ahead (a soft stop)."""

    code: str
    message: str


def cycle_stops(
    facts: CourseFacts, policy: ReviewPolicy, starts_on: dt.date
) -> tuple[CycleStop, ...]:
    """Return the soft stops of a cycle that starts on a day: a review due on or before that
    day and not recorded, and a day past the authorisation's end."""
    stops = []
    point = next_review(facts, policy)
    if point is not None and starts_on >= point.due_on:
        stops.append(
            CycleStop(
                "review_due",
                f"the course review was due {point.due_on} ({point.reason}) and is not recorded",
            )
        )
    until = authorised_until(facts)
    if until is not None and starts_on > until:
        stops.append(
            CycleStop("authorisation_expired", f"the course's authorisation ended {until}")
        )
    return tuple(stops)
