"""Clinic reports: grams per month and product, patients by response status with the time to
response, adverse events by type and grade, and steroid exposure.

Pure: the service loads each patient's course (the cycles given, the assessments, the reviews,
the adverse events, the approved reviews of non-response, the prednisone-equivalent steps) as
plain values; nothing here reads a session or a clock. Every clinical number comes in from
config.toml [reports] (`Thresholds`) or the rule file (remission, the TIS table); DOMAIN.md
gives their sources.

The course
    Starts on the first day of the first cycle given (`started_on`); only what happened on or
    before `as_of` (today, or the end of the report's date range) counts.

Response
    The first assessment after the course started at which the patient is a responder as the
    rule file defines it (its [settings], the rules engine's `responder` fact): against the
    course's baseline (the last assessment on or before the course started, as
    app.domain.rules.facts has it), CDASI activity better by at least mcid_points and by at
    least responder_min_percent, or a Total Improvement Score (facts.total_improvement_score,
    against the baseline facts.tis_series scores from) of at least responder_tis. Time to
    response: the cycles begun before that assessment's day (a visit on a treatment day comes
    before the infusion), and the weeks from the course start to it.

Status (the first that applies)
    remission
        Responded, and the latest CDASI activity (on or before the day the course was stopped,
        or `as_of`) is at most the rule file's remission_activity_max: still on IVIG, or
        stopped by a review in remission (the seed: "some reached remission and stopped").
    stopped
        The last review up to `as_of` decided to stop (app.domain.reviews.course_stopped_on),
        not in remission. Stopped for an adverse event: an adverse event on or before the stop
        that was serious, or still open on the day of the stop.
    responder
        Responded, not in remission, not stopped.
    non_responder
        No response, and `window_weeks` have passed since the course started, or a physician
        approved a review of non-response (a `review_nonresponse` suggestion of the rule file).
    in_review
        No response yet, within the window: too early to judge.

Shares
    Improved: patients who responded (whatever their status now) of those whose response can
    be judged (every status but in_review), beside the seed's 80%. Stopped for adverse events:
    of every patient counted, beside the seed's 6 of 42. TIS at week N (ProDERM's week 16):
    of the patients at least N weeks into their course with an assessment scored after the
    start and by week N, those whose last such TIS is at least `week_tis` (ProDERM's 20).

Steroid exposure
    Per patient with a taper step started by `as_of`, from the prednisone-equivalent steps
    (app.services.timeline.prednisone_steps, the steps started): the current mg/day (the step
    in force on `as_of`) and the cumulative mg over the period (from `since`, or the first
    step, to `as_of`, both days included), each step's mg/day held until the next step starts.
"""

from __future__ import annotations

import bisect
import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from app.domain import reviews as review_rules
from app.domain.rules import facts
from app.domain.timeline import Step

#: The response statuses, in the order of every page and CSV.
STATUSES: tuple[str, ...] = ("responder", "non_responder", "in_review", "remission", "stopped")
STATUS_LABELS: Mapping[str, str] = {
    "responder": "Responder",
    "non_responder": "Non-responder",
    "in_review": "In review",
    "remission": "Remission",
    "stopped": "Stopped",
}
#: CTCAE grades (DOMAIN.md, Reviews: 1 mild to 5 death).
GRADES: tuple[int, ...] = (1, 2, 3, 4, 5)
_DAYS_PER_WEEK = 7
# Float hygiene only (40 - 35 against a 5-point MCID), as app.domain.rules.facts.
_EPS = 1e-9


@dataclass(frozen=True)
class Thresholds:
    """The definitions a report applies: the responder's and remission's of the rule file,
    the window and ProDERM's endpoint of config.toml [reports]."""

    mcid_points: float
    responder_min_percent: float
    responder_tis: float
    remission_activity_max: float
    window_weeks: int
    #: The week at which the share with a TIS of at least week_tis is measured (ProDERM's).
    week: int
    week_tis: float


@dataclass(frozen=True)
class Course:
    """What the app recorded of one patient's IVIG course."""

    patient_id: int
    #: The first day of each cycle given, ascending (at least one).
    cycle_starts: tuple[dt.date, ...]
    assessments: tuple[facts.Assessment, ...] = ()
    reviews: tuple[review_rules.ReviewFact, ...] = ()
    adverse_events: tuple[facts.AdverseEventFact, ...] = ()
    #: Days a physician approved a review of non-response.
    nonresponse_confirmed_on: tuple[dt.date, ...] = ()


@dataclass(frozen=True)
class Response:
    patient_id: int
    status: str
    started_on: dt.date
    responded_on: dt.date | None
    cycles_to_response: int | None
    weeks_to_response: float | None
    stopped_on: dt.date | None
    stopped_for_adverse_event: bool
    #: The TIS at the report's week (None: not that far yet, or no TIS scored by then).
    tis_at_week: float | None

    @property
    def improved(self) -> bool:
        return self.responded_on is not None

    @property
    def judged(self) -> bool:
        return self.status != "in_review"


def response(
    course: Course, as_of: dt.date, fact_settings: facts.FactSettings, thresholds: Thresholds
) -> Response:
    """One patient's response status as of a day (see the module docstring)."""
    started_on = course.cycle_starts[0]
    visible = sorted(
        (a for a in course.assessments if a.assessed_on <= as_of),
        key=lambda a: (a.assessed_on, a.id),
    )
    # The TIS baseline as facts.tis_series has it: the last assessment on or before the start
    # (else the first); the TIS is computed only where a figure needs it (a clinic has tens
    # of thousands of assessments).
    before = [index for index, a in enumerate(visible) if a.assessed_on <= started_on]
    baseline = visible[before[-1] if before else 0] if visible else None
    after = [a for a in visible if a.assessed_on > started_on]
    scores: dict[int, float] = {}

    def tis_of(item: facts.Assessment) -> float:
        if item.id not in scores:
            scores[item.id] = _tis(baseline, item, fact_settings)
        return scores[item.id]

    by_activity = _activity_response(visible, started_on, thresholds)
    by_tis = next(
        (
            a.assessed_on
            for a in after
            if (by_activity is None or a.assessed_on < by_activity)
            and tis_of(a) >= thresholds.responder_tis
        ),
        None,
    )
    responded_on = by_tis or by_activity
    stopped_on = review_rules.course_stopped_on(
        review_rules.CourseFacts({}, tuple(r for r in course.reviews if r.reviewed_on <= as_of))
    )
    remission = responded_on is not None and _in_remission(
        course.assessments, stopped_on or as_of, thresholds.remission_activity_max
    )
    for_adverse_event = stopped_on is not None and any(
        event.occurred_on <= stopped_on
        and (event.serious or event.resolved_on is None or event.resolved_on > stopped_on)
        for event in course.adverse_events
    )
    window_ends = started_on + dt.timedelta(weeks=thresholds.window_weeks)
    if remission:
        status = "remission"
    elif stopped_on is not None:
        status = "stopped"
    elif responded_on is not None:
        status = "responder"
    elif as_of >= window_ends or any(on <= as_of for on in course.nonresponse_confirmed_on):
        status = "non_responder"
    else:
        status = "in_review"
    week_day = started_on + dt.timedelta(weeks=thresholds.week)
    by_week = (
        next(
            (
                tis
                for a in reversed(after)
                if a.assessed_on <= week_day and (tis := tis_of(a)) != _UNSCORED
            ),
            None,
        )
        if as_of >= week_day
        else None
    )
    return Response(
        patient_id=course.patient_id,
        status=status,
        started_on=started_on,
        responded_on=responded_on,
        cycles_to_response=(
            None if responded_on is None else bisect.bisect_left(course.cycle_starts, responded_on)
        ),
        weeks_to_response=(
            None if responded_on is None else (responded_on - started_on).days / _DAYS_PER_WEEK
        ),
        stopped_on=stopped_on,
        stopped_for_adverse_event=for_adverse_event and not remission,
        tis_at_week=by_week,
    )


#: What _tis answers where an assessment lacks a measure of the score.
_UNSCORED = -1.0


def _tis(
    baseline: facts.Assessment | None, item: facts.Assessment, settings: facts.FactSettings
) -> float:
    """The TIS of an assessment against the baseline (_UNSCORED: a measure is missing)."""
    if baseline is None:
        return _UNSCORED
    tis = facts.total_improvement_score(baseline, item, settings.tis_table)
    return _UNSCORED if tis is None else tis


def _activity_response(
    visible: Sequence[facts.Assessment], started_on: dt.date, thresholds: Thresholds
) -> dt.date | None:
    """The first day after the start whose CDASI activity is better than the baseline's by the
    MCID and by the percent (the rule file's responder by activity)."""
    scored = [a for a in visible if a.cdasi_activity is not None]
    if not scored:
        return None
    before = [index for index, a in enumerate(scored) if a.assessed_on <= started_on]
    baseline = scored[before[-1] if before else 0].cdasi_activity
    assert baseline is not None
    for item in scored:
        assert item.cdasi_activity is not None
        better = baseline - item.cdasi_activity
        if (
            item.assessed_on > started_on
            and baseline > 0
            and better >= thresholds.mcid_points - _EPS
            and better / baseline * 100 >= thresholds.responder_min_percent - _EPS
        ):
            return item.assessed_on
    return None


def _scored(assessments: Iterable[facts.Assessment], on: dt.date) -> list[facts.Assessment]:
    """The assessments with a CDASI activity up to a day, in order."""
    return sorted(
        (a for a in assessments if a.assessed_on <= on and a.cdasi_activity is not None),
        key=lambda a: (a.assessed_on, a.id),
    )


def _in_remission(
    assessments: Iterable[facts.Assessment], on: dt.date, activity_max: float
) -> bool:
    scored = _scored(assessments, on)
    latest = scored[-1].cdasi_activity if scored else None
    return latest is not None and latest <= activity_max


@dataclass(frozen=True)
class Spread:
    """A distribution: how many, the mean and the quartiles (None: no values)."""

    count: int
    mean: float | None = None
    minimum: float | None = None
    lower_quartile: float | None = None
    median: float | None = None
    upper_quartile: float | None = None
    maximum: float | None = None


def spread(values: Iterable[float]) -> Spread:
    """The count, mean, minimum, quartiles and maximum of the values."""
    ordered = sorted(values)
    if not ordered:
        return Spread(0)
    quartiles = (
        statistics.quantiles(ordered, n=4, method="inclusive")
        if len(ordered) > 1
        else [ordered[0]] * 3
    )
    return Spread(
        count=len(ordered),
        mean=statistics.fmean(ordered),
        minimum=ordered[0],
        lower_quartile=quartiles[0],
        median=quartiles[1],
        upper_quartile=quartiles[2],
        maximum=ordered[-1],
    )


def _percent(part: int, whole: int) -> float | None:
    return part / whole * 100 if whole else None


@dataclass(frozen=True)
class ResponseSummary:
    patients: int
    by_status: Mapping[str, int]
    cycles_to_response: Spread
    weeks_to_response: Spread
    judged: int
    improved: int
    stopped_for_adverse_events: int
    #: Patients with a TIS at the report's week, and those of them at the response threshold.
    week_scored: int
    week_responded: int

    @property
    def improved_percent(self) -> float | None:
        return _percent(self.improved, self.judged)

    @property
    def stopped_for_adverse_events_percent(self) -> float | None:
        return _percent(self.stopped_for_adverse_events, self.patients)

    @property
    def week_percent(self) -> float | None:
        return _percent(self.week_responded, self.week_scored)


def summarise(responses: Iterable[Response], week_tis: float) -> ResponseSummary:
    """Count the patients by status, and the shares and times of the module docstring."""
    items = list(responses)
    by_status = dict.fromkeys(STATUSES, 0)
    for item in items:
        by_status[item.status] += 1
    week = [item.tis_at_week for item in items if item.tis_at_week is not None]
    return ResponseSummary(
        patients=len(items),
        by_status=by_status,
        cycles_to_response=spread(
            item.cycles_to_response for item in items if item.cycles_to_response is not None
        ),
        weeks_to_response=spread(
            item.weeks_to_response for item in items if item.weeks_to_response is not None
        ),
        judged=sum(1 for item in items if item.judged),
        improved=sum(1 for item in items if item.improved and item.judged),
        stopped_for_adverse_events=sum(1 for item in items if item.stopped_for_adverse_event),
        week_scored=len(week),
        week_responded=sum(1 for tis in week if tis >= week_tis),
    )


# --- grams ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayGrams:
    """Grams of one product on one day: given (given or partly given) and still planned."""

    on: dt.date
    product: str
    given_grams: float
    planned_grams: float


@dataclass(frozen=True)
class MonthGrams:
    #: The month as YYYY-MM.
    month: str
    product: str
    given_grams: float
    planned_grams: float


def grams_by_month(days: Iterable[DayGrams]) -> tuple[MonthGrams, ...]:
    """Add the days up per month and product, by month then product."""
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for day in days:
        found = sums[(f"{day.on.year:04d}-{day.on.month:02d}", day.product)]
        found[0] += day.given_grams
        found[1] += day.planned_grams
    return tuple(
        MonthGrams(month, product, given, planned)
        for (month, product), (given, planned) in sorted(sums.items())
    )


# --- adverse events ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EventCount:
    event_type: str
    #: Events of each grade (GRADES order), and the patients with one of the type.
    by_grade: tuple[int, ...]
    patients: int
    serious: int

    @property
    def events(self) -> int:
        return sum(self.by_grade)


def adverse_event_counts(
    events: Iterable[tuple[int, str, int, bool]],
) -> tuple[EventCount, ...]:
    """Count (patient id, type, grade, serious) events per type and grade, by type."""
    grades: dict[str, list[int]] = defaultdict(lambda: [0] * len(GRADES))
    patients: dict[str, set[int]] = defaultdict(set)
    serious: dict[str, int] = defaultdict(int)
    for patient_id, event_type, grade, is_serious in events:
        grades[event_type][GRADES.index(grade)] += 1
        patients[event_type].add(patient_id)
        serious[event_type] += 1 if is_serious else 0
    return tuple(
        EventCount(kind, tuple(grades[kind]), len(patients[kind]), serious[kind])
        for kind in sorted(grades)
    )


# --- steroids ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exposure:
    """A patient's prednisone-equivalent dose: mg/day on `as_of`, and mg over the period."""

    current_mg_per_day: float
    cumulative_mg: float


def exposure(
    steps: Sequence[Step], as_of: dt.date, since: dt.date | None = None
) -> Exposure | None:
    """The dose on `as_of` and the mg taken over the period (None: no step started by then)."""
    started = sorted((s for s in steps if s.since <= as_of), key=lambda s: s.since)
    if not started:
        return None
    end = as_of + dt.timedelta(days=1)
    total = 0.0
    for index, step in enumerate(started):
        until = started[index + 1].since if index + 1 < len(started) else end
        begin = step.since if since is None else max(step.since, since)
        total += step.value * max(0, (until - begin).days)
    return Exposure(current_mg_per_day=started[-1].value, cumulative_mg=total)


def dose_bands(edges_mg: Iterable[float]) -> tuple[tuple[str, float, float | None], ...]:
    """The current-dose bands from the taper's band edges (config.toml [[steroids.bands]]):
    0 mg, then over each edge up to the next, then over the highest; (label, over, up to)."""
    tops = sorted({float(edge) for edge in edges_mg if edge > 0})
    bounds = [0.0, *tops]
    bands: list[tuple[str, float, float | None]] = [("0 mg", -1.0, 0.0)]
    for low, high in zip(bounds, [*tops, None], strict=True):
        label = f"over {low:g} to {high:g} mg" if high is not None else f"over {low:g} mg"
        bands.append((label, low, high))
    return tuple(bands)


def band_counts(
    doses_mg: Iterable[float], bands: Sequence[tuple[str, float, float | None]]
) -> tuple[int, ...]:
    """How many doses fall in each band (over its low edge, up to its high one)."""
    counts = [0] * len(bands)
    for dose in doses_mg:
        for index, (_label, low, high) in enumerate(bands):
            if dose > low and (high is None or dose <= high):
                counts[index] += 1
                break
    return tuple(counts)
