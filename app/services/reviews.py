"""Course reviews and authorisations: recorded by the physician, due by the rules of
app.domain.reviews, and turned into tasks by the daily review job."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import policy
from app.config import REVIEW_MEASURES, Settings
from app.db import utcnow
from app.domain import reviews, schedule
from app.domain.rules import facts
from app.models import (
    Assessment,
    Authorisation,
    Center,
    CourseReview,
    Infusion,
    InfusionStatus,
    Patient,
    Role,
    User,
)
from app.models.review import REVIEW_DECISIONS
from app.services import audit, integrity, jobruns, scheduling, worklist
from app.services.context import Actor, unit_of_work
from app.services.errors import Forbidden, InvalidInput, NotFound

if TYPE_CHECKING:
    from app.services.suggestions import PatientRecord

#: How pages and messages name the measures.
MEASURE_LABELS = {
    "cdasi_activity": "CDASI activity",
    "cdasi_damage": "CDASI damage",
    "mmt8": "MMT-8",
    "physician_global": "physician global",
    "patient_global": "patient global",
}
assert set(MEASURE_LABELS) == set(REVIEW_MEASURES)

#: Task kinds the review job makes; recording a review closes the first three.
REVIEW_TASKS = ("review_measures", "review_due", "review_overdue")
RENEWAL_TASK = "authorisation_renewal"


def review_policy(settings: Settings) -> reviews.ReviewPolicy:
    r = settings.reviews
    return reviews.ReviewPolicy(
        first_before_cycle=r.first_before_cycle,
        interval_months=r.interval_months,
        required_measures=r.required_measures,
        task_days_before=r.task_days_before,
        renewal_days_before=r.renewal_days_before,
    )


def load_courses(
    session: so.Session,
    patient_ids: Sequence[int],
    cycle_starts: dict[int, dict[int, dt.date]] | None = None,
) -> dict[int, reviews.CourseFacts]:
    """Load many patients' course facts with three queries (two with `cycle_starts` known)."""
    starts: dict[int, dict[int, dt.date]] = defaultdict(dict, cycle_starts or {})
    if cycle_starts is None:
        for pid, cycle, first in session.execute(
            sa.select(
                Infusion.patient_id, Infusion.cycle_number, sa.func.min(Infusion.planned_date)
            )
            .where(
                Infusion.patient_id.in_(patient_ids), Infusion.status != InfusionStatus.CANCELLED
            )
            .group_by(Infusion.patient_id, Infusion.cycle_number)
        ):
            starts[pid][cycle] = first
    done: dict[int, list[reviews.ReviewFact]] = defaultdict(list)
    for pid, on, decision in session.execute(
        sa.select(CourseReview.patient_id, CourseReview.reviewed_on, CourseReview.decision).where(
            CourseReview.patient_id.in_(patient_ids)
        )
    ):
        done[pid].append(reviews.ReviewFact(on, decision))
    granted: dict[int, list[reviews.AuthorisationFact]] = defaultdict(list)
    for pid, reference, starts_on, ends_on in session.execute(
        sa.select(
            Authorisation.patient_id,
            Authorisation.reference,
            Authorisation.starts_on,
            Authorisation.ends_on,
        ).where(Authorisation.patient_id.in_(patient_ids))
    ):
        granted[pid].append(reviews.AuthorisationFact(reference, starts_on, ends_on))
    return {
        pid: reviews.CourseFacts(starts[pid], tuple(done[pid]), tuple(granted[pid]))
        for pid in patient_ids
    }


def course_of(session: so.Session, patient_id: int) -> reviews.CourseFacts:
    return load_courses(session, [patient_id])[patient_id]


def _measures(assessment: Assessment | None) -> dict[str, float | None] | None:
    if assessment is None:
        return None
    return {name: getattr(assessment, name) for name in REVIEW_MEASURES}


@dataclasses.dataclass(frozen=True)
class Measures:
    """What the next review can rest on: the latest assessment since the last review with
    every measure required (None if none), and the measures still missing."""

    assessment: Assessment | None
    missing: tuple[str, ...]


def measures_since(
    session: so.Session,
    patient_ids: Sequence[int],
    since: dict[int, dt.date | None],
    policy: reviews.ReviewPolicy,
    until: dt.date | None = None,
) -> dict[int, Measures]:
    """Each patient's measures after their last review, or after the course's first day (the
    assessment on it is the baseline), up to `until` (one query)."""
    found: dict[int, list[Assessment]] = {pid: [] for pid in patient_ids}
    statement = (
        sa.select(Assessment)
        .where(Assessment.patient_id.in_(patient_ids))
        .order_by(Assessment.patient_id, Assessment.assessed_on, Assessment.id)
    )
    if until is not None:
        statement = statement.where(Assessment.assessed_on <= until)
    for assessment in session.scalars(statement):
        after = since.get(assessment.patient_id)
        if after is None or assessment.assessed_on > after:
            found[assessment.patient_id].append(assessment)
    result = {}
    for pid, assessments in found.items():
        index, missing = reviews.complete_measures(
            policy, [_measures(a) or {} for a in assessments]
        )
        result[pid] = Measures(assessments[index] if index is not None else None, missing)
    return result


def _since(course: reviews.CourseFacts) -> dt.date | None:
    """Measures count after the last review, or after the course's first day (the
    assessment on that day is the baseline the response is judged against)."""
    if course.reviews:
        return max(r.reviewed_on for r in course.reviews)
    if course.cycle_starts:
        return course.cycle_starts[min(course.cycle_starts)]
    return None


@dataclasses.dataclass(frozen=True)
class ReviewStatus:
    """What the patient page shows about the course's reviews and authorisation."""

    point: reviews.ReviewPoint | None
    overdue: bool
    stopped: bool
    #: The measures the review needs, from the latest assessment since the last review.
    assessment: Assessment | None
    missing: tuple[str, ...]
    authorised_until: dt.date | None
    #: Cycles past the authorisation's end wait for a renewal (the horizon stops there).
    needs_renewal: bool
    history: list[CourseReview]
    authorisations: list[Authorisation]

    @property
    def missing_labels(self) -> list[str]:
        return [MEASURE_LABELS[m] for m in self.missing]


def status(
    session: so.Session, patient_id: int, settings: Settings, today: dt.date
) -> ReviewStatus:
    course = course_of(session, patient_id)
    rules = review_policy(settings)
    point = reviews.next_review(course, rules)
    measures = measures_since(session, [patient_id], {patient_id: _since(course)}, rules)[
        patient_id
    ]
    until = reviews.authorised_until(course, today)
    horizon = schedule.add_months(today, settings.scheduling.horizon_months)
    return ReviewStatus(
        point=point,
        overdue=point is not None and point.overdue_on(today),
        stopped=reviews.course_stopped(course),
        assessment=measures.assessment,
        missing=measures.missing,
        authorised_until=until,
        needs_renewal=until is not None and until < horizon and bool(course.cycle_starts),
        history=list(
            session.scalars(
                sa.select(CourseReview)
                .where(CourseReview.patient_id == patient_id)
                .options(so.joinedload(CourseReview.reviewed_by))
                .order_by(CourseReview.reviewed_on.desc(), CourseReview.id.desc())
            )
        ),
        authorisations=list(
            session.scalars(
                sa.select(Authorisation)
                .where(Authorisation.patient_id == patient_id)
                .order_by(Authorisation.ends_on.desc(), Authorisation.id.desc())
            )
        ),
    )


def start_stops(session: so.Session, infusion: Infusion, settings: Settings) -> tuple[str, ...]:
    """Why an infusion day needs a reason to start: on a cycle's first day a review due and
    not recorded, or a course stopped; on any day, no authorisation covering it."""
    course = course_of(session, infusion.patient_id)
    return tuple(
        stop.message
        for stop in reviews.cycle_stops(
            course, review_policy(settings), infusion.planned_date, infusion.day_number == 1
        )
    )


@dataclasses.dataclass(frozen=True)
class CourseLimits:
    """What booking reads: a review overdue, a course stopped, and the authorisation."""

    #: The due date of a course review that is overdue today (None: none is overdue).
    review_overdue_since: dt.date | None
    review_reason: str | None
    #: The day the last review stopped the course (None: it goes on).
    stopped_on: dt.date | None
    #: The last day of the unbroken authorisation from today (None: no authorisation scheme).
    authorised_until: dt.date | None
    authorisations: tuple[reviews.AuthorisationFact, ...] = ()

    @property
    def integrity(self) -> integrity.CourseLimits:
        return _authorised(self.authorisations)

    @property
    def booking_stop(self) -> str | None:
        """Why a physician's reason is needed to book more cycles now, or None."""
        if self.stopped_on is not None:
            return f"the course review of {self.stopped_on} decided to stop IVIG"
        if self.review_overdue_since is not None:
            return (
                f"the course review was due {self.review_overdue_since} "
                f"({self.review_reason}) and is not recorded"
            )
        return None


def _authorised(authorisations: Sequence[reviews.AuthorisationFact]) -> integrity.CourseLimits:
    return integrity.CourseLimits(
        authorised=tuple((a.starts_on, a.ends_on) for a in authorisations)
    )


def integrity_limits(course: reviews.CourseFacts) -> integrity.CourseLimits:
    """What the therapy-integrity checker reads of a course: its authorisations."""
    return _authorised(course.authorisations)


def course_limits(
    session: so.Session,
    patient_id: int,
    settings: Settings,
    today: dt.date,
    cycle_starts: dict[int, dt.date] | None = None,
) -> CourseLimits:
    """What booking reads: whether the course review is overdue or stopped the course, and
    the authorisation."""
    known = {patient_id: cycle_starts} if cycle_starts is not None else None
    course = load_courses(session, [patient_id], known)[patient_id]
    point = reviews.next_review(course, review_policy(settings))
    overdue = point is not None and point.overdue_on(today)
    return CourseLimits(
        review_overdue_since=point.due_on if point and overdue else None,
        review_reason=point.reason if point and overdue else None,
        stopped_on=reviews.course_stopped_on(course),
        authorised_until=reviews.authorised_until(course, today),
        authorisations=tuple(course.authorisations),
    )


# --- recording --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ReviewInput:
    decision: str
    note: str = ""
    #: The review's day (default: today at the patient's center).
    reviewed_on: dt.date | None = None


def tis_on(
    session: so.Session,
    patient_id: int,
    settings: Settings,
    on: dt.date,
    *,
    record: PatientRecord | None = None,
) -> float | None:
    """The Total Improvement Score as of a day (the latest assessment on or before it against
    the course's baseline), None when it cannot be computed.

    `record` is the patient's record as app.services.suggestions.load_record loads it: pass
    one loaded once to score many days without a query more (the TIS reads only its
    assessments and regimens, whatever day it was loaded for)."""
    from app.services import suggestions

    if record is None:
        record = suggestions.load_record(session, patient_id, settings, on)
    ruleset = suggestions.load_ruleset(settings)
    value = facts.compute_facts(
        suggestions.history_of(patient_id, record, settings, on), ruleset.settings
    )["tis"]
    return float(value) if isinstance(value, int | float) else None


#: Its name before app.services.review_pack shared it, for any caller still using it.
_tis = tis_on


def record_review(
    session: so.Session,
    actor: Actor,
    patient_id: int,
    data: ReviewInput,
    settings: Settings,
) -> CourseReview:
    """The physician records a course review: the measures it rests on and a decision."""
    if not policy.can(actor.role, policy.Action.REVIEW_COURSE):
        raise Forbidden("only a physician records a course review")
    if data.decision not in REVIEW_DECISIONS:
        raise InvalidInput(f"decision: one of {', '.join(REVIEW_DECISIONS)}", field="decision")
    note = data.note.strip()
    if len(note) > 4000:
        raise InvalidInput("note: at most 4000 characters", field="note")
    if data.decision in ("change", "stop") and not note:
        raise InvalidInput(
            f"note: say what the decision to {data.decision} means for the course", field="note"
        )
    with unit_of_work(session):
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise NotFound(f"patient_id: no patient {patient_id}", field="patient_id")
        integrity.lock_patient(session, patient_id)
        zone = session.get(Center, patient.home_center_id)
        assert zone is not None
        today = schedule.local_date(utcnow(), zone.timezone)
        on = data.reviewed_on or today
        if on > today:
            raise InvalidInput(f"reviewed_on: not after today ({today})", field="reviewed_on")
        course = course_of(session, patient_id)
        if not course.cycle_starts:
            raise InvalidInput(
                "patient_id: the patient has no IVIG course to review yet", field="patient_id"
            )
        last = max((r.reviewed_on for r in course.reviews), default=None)
        if last is not None and on <= last:
            raise InvalidInput(
                f"reviewed_on: after the last review ({last}); one review a day",
                field="reviewed_on",
            )
        rules = review_policy(settings)
        point = reviews.next_review(course, rules)
        since = _since(course)
        measures = measures_since(session, [patient_id], {patient_id: since}, rules, until=on)[
            patient_id
        ]
        assessment, missing = measures.assessment, measures.missing
        if missing:
            labels = _and(MEASURE_LABELS[m] for m in missing)
            them = "it" if len(missing) == 1 else "them"
            raise InvalidInput(
                f"{missing[0]}: a review needs {labels} in one assessment after {since} and "
                f"on or before {on}: record {them} first",
                field=missing[0],
            )
        review = CourseReview(
            patient_id=patient_id,
            reviewed_on=on,
            due_on=point.due_on if point else None,
            cdasi_activity=assessment.cdasi_activity if assessment else None,
            mmt8=assessment.mmt8 if assessment else None,
            physician_global=assessment.physician_global if assessment else None,
            tis=tis_on(session, patient_id, settings, on),
            assessment_id=assessment.id if assessment else None,
            decision=data.decision,
            note=note,
            reviewed_by_id=actor.user_id,
        )
        session.add(review)
        session.flush()
        closed = worklist.close_tasks(session, actor, patient_id, REVIEW_TASKS, utcnow())
        audit.record(
            session,
            actor,
            "course.review",
            "patient",
            patient_id,
            after={**review_view(review), "tasks_closed": closed},
        )
    return review


def _and(words: Iterable[str]) -> str:
    items = list(words)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def review_view(review: CourseReview) -> dict[str, Any]:
    return {
        "id": review.id,
        "reviewed_on": review.reviewed_on,
        "due_on": review.due_on,
        "decision": review.decision,
        "note": review.note,
        "cdasi_activity": review.cdasi_activity,
        "mmt8": review.mmt8,
        "physician_global": review.physician_global,
        "tis": review.tis,
    }


@dataclasses.dataclass(frozen=True)
class AuthorisationInput:
    reference: str
    approved_by: str
    starts_on: dt.date
    ends_on: dt.date


def record_authorisation(
    session: so.Session,
    actor: Actor,
    patient_id: int,
    data: AuthorisationInput,
    settings: Settings,
) -> tuple[Authorisation, int]:
    """Record an authorisation (or its renewal); the horizon then books up to its end.
    Returns the authorisation and how many infusions were booked with it."""
    if not policy.can(actor.role, policy.Action.REVIEW_COURSE):
        raise Forbidden("only a physician records an authorisation")
    problems = []
    reference, approved_by = data.reference.strip(), data.approved_by.strip()
    if not 1 <= len(reference) <= 60:
        problems.append(InvalidInput("reference: 1 to 60 characters", field="reference"))
    if not 1 <= len(approved_by) <= 120:
        problems.append(
            InvalidInput("approved_by: who approved it, 1 to 120 characters", field="approved_by")
        )
    if data.ends_on < data.starts_on:
        problems.append(
            InvalidInput(f"ends_on: not before starts_on ({data.starts_on})", field="ends_on")
        )
    if data.ends_on > data.starts_on + dt.timedelta(days=3 * 366):
        problems.append(
            InvalidInput("ends_on: at most three years after starts_on", field="ends_on")
        )
    if problems:
        raise InvalidInput.every(problems) if len(problems) > 1 else problems[0]
    with unit_of_work(session):
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise NotFound(f"patient_id: no patient {patient_id}", field="patient_id")
        integrity.lock_patient(session, patient_id)
        granted = Authorisation(
            patient_id=patient_id,
            reference=reference,
            approved_by=approved_by,
            starts_on=data.starts_on,
            ends_on=data.ends_on,
            recorded_by_id=actor.user_id,
        )
        session.add(granted)
        session.flush()
        worklist.close_tasks(session, actor, patient_id, (RENEWAL_TASK,), utcnow())
        booked = scheduling.extend_horizon(session, patient_id, settings)
        audit.record(
            session,
            actor,
            "course.authorisation",
            "patient",
            patient_id,
            after={
                "reference": reference,
                "approved_by": approved_by,
                "starts_on": data.starts_on,
                "ends_on": data.ends_on,
                "booked": len(booked.created),
            },
        )
    return granted, len(booked.created)


# --- the daily job ----------------------------------------------------------------------------


def sweep_due(session: so.Session, settings: Settings, now: dt.datetime) -> dict[str, int]:
    """Daily: tasks for review points coming due (a nurse's for missing measures, the
    physician's for the review) and for authorisations ending; each once, in batches."""
    rules = review_policy(settings)
    counts = {"patients": 0, "measure_tasks": 0, "review_tasks": 0, "renewal_tasks": 0}
    patient_ids = scheduling.patients_with_regimens(session)
    for start in range(0, len(patient_ids), settings.scheduler.batch_size):
        batch = patient_ids[start : start + settings.scheduler.batch_size]
        counts["patients"] += len(batch)
        made: dict[str, int] = jobruns.in_batch(
            session, functools.partial(_sweep_batch, session, batch, rules, now)
        )
        for kind, count in made.items():
            counts[kind] += count
    return counts


def _sweep_batch(
    session: so.Session, batch: Sequence[int], rules: reviews.ReviewPolicy, now: dt.datetime
) -> dict[str, int]:
    """One batch of the review job: the patients' courses, measures and tasks (made once)."""
    courses = load_courses(session, batch)
    doctor = so.aliased(User)
    people = {
        p.id: (p, tz, bool(active))
        for p, tz, active in session.execute(
            sa.select(Patient, Center.timezone, doctor.active)
            .join(Center, Center.id == Patient.home_center_id)
            .outerjoin(doctor, doctor.id == Patient.treating_physician_id)
            .where(Patient.id.in_(batch))
        )
    }
    latest = measures_since(session, batch, {pid: _since(c) for pid, c in courses.items()}, rules)
    tasks: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for pid in batch:
        patient, timezone, physician_active = people[pid]
        today = schedule.local_date(now, timezone)
        for kind, task in _tasks_for(
            patient,
            physician_for(patient, physician_active),
            courses[pid],
            latest[pid],
            rules,
            today,
            ZoneInfo(timezone),
        ):
            tasks[kind].append(task)
    return {kind: worklist.add_tasks(session, made, now) for kind, made in tasks.items()}


def physician_for(patient: Patient, active: bool) -> dict[str, Any]:
    """Who a physician's task goes to: the treating physician while their account is active,
    else every physician of the patient's home center."""
    if patient.treating_physician_id is not None and active:
        return {"user_id": patient.treating_physician_id}
    return {"role": Role.PHYSICIAN.value, "center_id": patient.home_center_id}


def _tasks_for(
    patient: Patient,
    physician: dict[str, Any],
    course: reviews.CourseFacts,
    measures: Measures,
    rules: reviews.ReviewPolicy,
    today: dt.date,
    zone: ZoneInfo,
) -> list[tuple[str, dict[str, Any]]]:
    """The tasks a patient's course calls for today. A review point's tasks are keyed by its
    number (the first review, the second ...), so a cycle moved a day makes none twice."""
    found: list[tuple[str, dict[str, Any]]] = []
    point = reviews.next_review(course, rules)
    if point is not None and (point.due_on - today).days <= rules.task_days_before:
        due_at = dt.datetime.combine(point.due_on, dt.time(8), tzinfo=zone).astimezone(dt.UTC)
        missing = measures.missing
        if missing:
            labels = _and(MEASURE_LABELS[m] for m in missing)
            found.append(
                (
                    "measure_tasks",
                    {
                        "key": f"review_measures:{patient.id}:{point.number}",
                        "kind": "review_measures",
                        "role": Role.NURSE.value,
                        "center_id": patient.home_center_id,
                        "patient_id": patient.id,
                        "message": "The course review "
                        + ("was" if point.overdue_on(today) else "is")
                        + f" due {point.due_on} ({point.reason}); record {labels} at the "
                        "next visit.",
                        "due_at": due_at,
                    },
                )
            )
        overdue = point.overdue_on(today)
        found.append(
            (
                "review_tasks",
                {
                    "key": f"review_{'overdue' if overdue else 'due'}:{patient.id}:{point.number}",
                    "kind": "review_overdue" if overdue else "review_due",
                    "patient_id": patient.id,
                    "message": "The course review "
                    + (
                        f"was due {point.due_on} and is overdue"
                        if overdue
                        else f"is due {point.due_on}"
                    )
                    + f" ({point.reason}). Record it on the patient's page.",
                    "due_at": due_at,
                    **physician,
                },
            )
        )
    until = reviews.authorised_until(course, today)
    if until is not None and (until - today).days <= rules.renewal_days_before:
        found.append(
            (
                "renewal_tasks",
                {
                    "key": f"renewal:{patient.id}:{until}",
                    "kind": RENEWAL_TASK,
                    "patient_id": patient.id,
                    "message": f"The IVIG authorisation ends {until}; cycles after it "
                    "are not booked until it is renewed.",
                    "due_at": dt.datetime.combine(until, dt.time(8), tzinfo=zone).astimezone(
                        dt.UTC
                    ),
                    **physician,
                },
            )
        )
    return found
