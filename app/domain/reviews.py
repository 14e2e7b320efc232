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
- A review whose decision is "stop" ends the course: nothing further is due, the horizon
  books nothing, and a cycle after it needs a reason (a later review that continues the
  course lifts it).
- A review rests on the measures of one assessment after the last review (or after the
  course's first day: the assessment on the first day is the baseline): the latest one that
  has every measure required.
- A review is overdue from the day after its due date; a cycle starting on or after the due
  date without it "starts past the review" (the nurse's soft stop at the chair).
- Authorisations: a course with none is not under an authorisation scheme (nothing to check);
  with some, each infusion day must lie inside one of them (a gap between two, or a day
  before the first begins, is not authorised).
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


def complete_measures(
    policy: ReviewPolicy, assessments: Sequence[Mapping[str, float | None]]
) -> tuple[int | None, tuple[str, ...]]:
    """Of assessments oldest first: the index of the latest with every required measure (None
    if none has them all), and the measures none of them has."""
    for index in range(len(assessments) - 1, -1, -1):
        if not missing_measures(policy, assessments[index]):
            return index, ()
    absent = tuple(
        m for m in policy.required_measures if all(a.get(m) is None for a in assessments)
    )
    if not assessments:
        return None, policy.required_measures
    return None, absent or missing_measures(policy, assessments[-1])


def course_stopped_on(facts: CourseFacts) -> dt.date | None:
    """Return the day the last review stopped the course, or None."""
    last = _last_review(facts)
    return last.reviewed_on if last is not None and last.decision == "stop" else None


def authorised_on(facts: CourseFacts, day: dt.date) -> bool:
    """Return whether a day lies inside an authorisation (always, with none on record)."""
    return not facts.authorisations or any(
        a.starts_on <= day <= a.ends_on for a in facts.authorisations
    )


def authorised_until(facts: CourseFacts, from_day: dt.date | None = None) -> dt.date | None:
    """Return the last day of the unbroken authorisation from `from_day` (from the first day
    authorised on or after it; without it, the latest end), or None with no authorisation."""
    if not facts.authorisations:
        return None
    if from_day is None:
        return max(a.ends_on for a in facts.authorisations)
    spans = sorted((a.starts_on, a.ends_on) for a in facts.authorisations)
    ahead = [(start, end) for start, end in spans if end >= from_day]
    if not ahead:
        return max(end for _start, end in spans)
    until = ahead[0][1]
    for start, end in ahead[1:]:
        if start > until + dt.timedelta(days=1):
            break
        until = max(until, end)
    return until


@dataclass(frozen=True)
class CycleStop:
    """Why a cycle starting on a day needs a reason to go ahead (a soft stop)."""

    code: str
    message: str


def cycle_stops(
    facts: CourseFacts, policy: ReviewPolicy, on: dt.date, first_day: bool = True
) -> tuple[CycleStop, ...]:
    """Return the soft stops of an infusion day: on a cycle's first day, a review due on or
    before it and not recorded, or a course the last review stopped; on any day, a day no
    authorisation covers."""
    stops = []
    point = next_review(facts, policy)
    if first_day and point is not None and on >= point.due_on:
        stops.append(
            CycleStop(
                "review_due",
                f"the course review was due {point.due_on} ({point.reason}) and is not recorded",
            )
        )
    stopped = course_stopped_on(facts)
    if first_day and stopped is not None and on > stopped:
        stops.append(
            CycleStop("course_stopped", f"the course review of {stopped} decided to stop IVIG")
        )
    if not authorised_on(facts, on):
        until = authorised_until(facts)
        stops.append(
            CycleStop(
                "authorisation_expired",
                f"no authorisation covers {on} (the latest ends {until})",
            )
        )
    return tuple(stops)
