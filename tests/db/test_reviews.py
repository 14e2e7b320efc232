"""Course reviews and authorisations on a real database: recorded by the physician with their
measures, due by the configured points, turned into tasks once, and stopping what should wait
(the horizon, a regimen change, the start of a cycle) until a reason is given."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from app import clock
from app.models import AuditEvent, CourseReview, Infusion, Notice, Regimen
from app.services import assessments, infusions, reviews, scheduling, visits, worklist
from app.services import regimens as regimen_service
from app.services.errors import Forbidden, InvalidInput
from app.services.integrity import TherapyRuleBroken
from tests.db.clinic_fixtures import at, booked_course, regimen_input, review_course

MONDAY = dt.date(2026, 10, 5)
CYCLE_3 = MONDAY + dt.timedelta(weeks=8)


@pytest.fixture
def course(db_session, make_user, settings):
    """The worked-example patient booked every 4 weeks from MONDAY, the physician treating."""
    yield booked_course(db_session, make_user, settings, MONDAY)
    clock.set_now(None)


def first_day(db_session, clinic, cycle: int) -> Infusion:
    return db_session.scalars(
        sa.select(Infusion).where(
            Infusion.patient_id == clinic.patient.id,
            Infusion.cycle_number == cycle,
            Infusion.day_number == 1,
            Infusion.status != "cancelled",
        )
    ).one()


def assess(db_session, clinic, on: dt.date, **scores: float) -> None:
    assessments.record_assessment(
        db_session,
        clinic.nursing,
        clinic.patient.id,
        assessments.AssessmentInput(assessed_on=on, scores=dict(scores)),
        on,
    )


def test_the_first_review_is_due_before_cycle_three(db_session, settings, course):
    state = reviews.status(db_session, course.patient.id, settings, MONDAY)
    assert state.point is not None and state.point.due_on == CYCLE_3 == (
        first_day(db_session, course, 3).planned_date
    )
    assert not state.overdue and state.missing == settings.reviews.required_measures
    assert reviews.status(
        db_session, course.patient.id, settings, CYCLE_3 + dt.timedelta(1)
    ).overdue


def test_a_review_needs_its_measures_and_writes_nothing_without_them(db_session, settings, course):
    assess(db_session, course, CYCLE_3 - dt.timedelta(days=3), cdasi_activity=14.0, mmt8=70.0)
    clock.set_now(at(CYCLE_3 - dt.timedelta(days=2), 12))
    with pytest.raises(InvalidInput) as refused:
        reviews.record_review(
            db_session, course.doctor, course.patient.id, reviews.ReviewInput("continue"), settings
        )
    assert refused.value.field == "physician_global"
    assert "physician global" in refused.value.message
    assert db_session.scalar(sa.select(sa.func.count()).select_from(CourseReview)) == 0
    with pytest.raises(Forbidden):
        reviews.record_review(
            db_session, course.nursing, course.patient.id, reviews.ReviewInput("continue"), settings
        )
    with pytest.raises(InvalidInput) as bad:
        reviews.record_review(
            db_session, course.doctor, course.patient.id, reviews.ReviewInput("maybe"), settings
        )
    assert bad.value.field == "decision"
    with pytest.raises(InvalidInput) as unexplained:
        reviews.record_review(
            db_session, course.doctor, course.patient.id, reviews.ReviewInput("stop"), settings
        )
    assert unexplained.value.field == "note"


def test_recording_a_review_keeps_its_measures_closes_its_tasks_and_moves_the_next_point(
    db_session, settings, course
):
    with clock.frozen_at(at(CYCLE_3 - dt.timedelta(days=10), 3)):
        made = reviews.sweep_due(db_session, settings, clock.now())
    assert made["measure_tasks"] == 1 and made["review_tasks"] == 1
    on = CYCLE_3 - dt.timedelta(days=2)
    review = review_course(db_session, course, settings, on)
    assert isinstance(review, CourseReview)
    assert (review.cdasi_activity, review.mmt8, review.physician_global) == (12.0, 74.0, 2.0)
    assert review.reviewed_by_id == course.physician.id and review.due_on == CYCLE_3
    assert worklist.open_notices(db_session, course.physician.id) == []
    assert worklist.open_notices(db_session, course.nurse.id) == []
    audit = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "course.review")
    ).one()
    assert audit.after["decision"] == "continue" and audit.after["tasks_closed"] == 2
    state = reviews.status(db_session, course.patient.id, settings, on)
    assert state.point is not None and state.point.due_on == dt.date(2027, 5, 28)


def test_the_review_job_makes_each_task_once_and_only_inside_its_window(
    db_session, settings, course
):
    with clock.frozen_at(at(CYCLE_3 - dt.timedelta(days=30), 3)):
        early = reviews.sweep_due(db_session, settings, clock.now())
    assert early["measure_tasks"] == early["review_tasks"] == 0
    for _ in range(2):
        with clock.frozen_at(at(CYCLE_3 - dt.timedelta(days=10), 3)):
            reviews.sweep_due(db_session, settings, clock.now())
    (nurse_task,) = worklist.open_notices(db_session, course.nurse.id)
    assert nurse_task.kind == "review_measures" and nurse_task.role == "nurse"
    assert "record CDASI activity, MMT-8 and physician global" in nurse_task.message
    (doctor_task,) = worklist.open_notices(db_session, course.physician.id)
    assert doctor_task.kind == "review_due" and str(CYCLE_3) in doctor_task.message
    # Marked done, the nurse task is not made again for the same point; overdue, the
    # physician gets a new task beside the first.
    worklist.mark_done(db_session, course.nursing, nurse_task.id)
    with clock.frozen_at(at(CYCLE_3 + dt.timedelta(days=1), 3)):
        late = reviews.sweep_due(db_session, settings, clock.now())
    assert late["measure_tasks"] == 0 and late["review_tasks"] == 1
    kinds = sorted(n.kind for n in worklist.open_notices(db_session, course.physician.id))
    assert kinds == ["review_due", "review_overdue"]


def test_a_cycle_starting_past_its_review_needs_the_nurses_reason(db_session, settings, course):
    infusion = first_day(db_session, course, 3)
    clock.set_now(infusion.starts_at - dt.timedelta(minutes=20))
    visits.check_in(db_session, course.nursing, infusion.id, clock.now(), settings)
    visits.record_check(
        db_session,
        course.nursing,
        infusion.id,
        100.0,
        visits.Vitals(pulse_bpm=72),
        clock.now(),
        settings,
    )
    clock.set_now(infusion.starts_at + dt.timedelta(minutes=1))
    with pytest.raises(InvalidInput) as refused:
        visits.start(db_session, course.nursing, infusion.id, infusion.starts_at, settings)
    assert refused.value.field == "override_reason"
    assert f"the course review was due {CYCLE_3}" in refused.value.message
    assert db_session.get(Infusion, infusion.id).status == "checked_in"
    visits.start(
        db_session,
        course.nursing,
        infusion.id,
        infusion.starts_at,
        settings,
        override_reason="Physician reviewing today in clinic",
    )
    assert infusion.status == "in_chair"
    assert infusion.check_override_reason == "Physician reviewing today in clinic"
    started = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "visit.start")
    ).one()
    assert any(f"review was due {CYCLE_3}" in stop for stop in started.after["overridden"])


def test_an_overdue_review_stops_the_horizon_and_a_regimen_change_until_a_reason(
    db_session, settings, course
):
    late = at(CYCLE_3 + dt.timedelta(days=3))
    waiting = scheduling.extend_horizon(db_session, course.patient.id, settings, now=late)
    assert waiting.waiting_review and waiting.created == []
    clock.set_now(late)
    change = regimen_input(starts_on=CYCLE_3 + dt.timedelta(weeks=4), based_on_version=1)
    with pytest.raises(InvalidInput) as refused:
        regimen_service.set_regimen(db_session, course.doctor, course.patient.id, change, settings)
    assert refused.value.field == "override_reason" and "course review" in refused.value.message
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Regimen)) == 1
    regimen, _ = regimen_service.set_regimen(
        db_session,
        course.doctor,
        course.patient.id,
        regimen_input(
            starts_on=CYCLE_3 + dt.timedelta(weeks=4),
            based_on_version=1,
            override_reason="Reviewed in clinic; record follows",
        ),
        settings,
    )
    assert regimen.version == 2
    assert any(stop["code"] == "review_overdue" for stop in regimen.soft_stops)


def test_the_horizon_books_to_the_authorisation_end_and_a_renewal_books_on(
    db_session, settings, course
):
    end = MONDAY + dt.timedelta(weeks=5)
    with clock.frozen_at(at(MONDAY - dt.timedelta(days=3))):
        reviews.record_authorisation(
            db_session,
            course.doctor,
            course.patient.id,
            reviews.AuthorisationInput("BS-1", "BloodSTAR", MONDAY, end),
            settings,
        )
        # Set again now that there is an end: cycles after it are not booked.
        regimen_service.set_regimen(
            db_session,
            course.doctor,
            course.patient.id,
            regimen_input(starts_on=MONDAY, based_on_version=1),
            settings,
        )
        state = reviews.status(db_session, course.patient.id, settings, clock.now().date())
    starts = [
        i.planned_date
        for i in db_session.scalars(
            sa.select(Infusion).where(
                Infusion.patient_id == course.patient.id,
                Infusion.day_number == 1,
                Infusion.status != "cancelled",
            )
        )
    ]
    assert starts and max(starts) <= end and state.needs_renewal
    assert state.authorised_until == end
    with clock.frozen_at(at(end - dt.timedelta(days=20), 3)):
        reviews.sweep_due(db_session, settings, clock.now())
    assert [n.kind for n in worklist.open_notices(db_session, course.physician.id)] == [
        "authorisation_renewal"
    ]
    with clock.frozen_at(at(end - dt.timedelta(days=14))):
        _, booked = reviews.record_authorisation(
            db_session,
            course.doctor,
            course.patient.id,
            reviews.AuthorisationInput("BS-2", "BloodSTAR", end, end + dt.timedelta(days=180)),
            settings,
        )
    assert booked > 0
    assert worklist.open_notices(db_session, course.physician.id) == []
    with pytest.raises(InvalidInput) as backwards:
        reviews.record_authorisation(
            db_session,
            course.doctor,
            course.patient.id,
            reviews.AuthorisationInput("", "BloodSTAR", end, end - dt.timedelta(days=1)),
            settings,
        )
    assert {p.field for p in backwards.value.problems} == {"reference", "ends_on"}


def test_moving_a_cycle_past_the_authorisation_is_a_soft_stop(db_session, settings, course):
    with clock.frozen_at(at(MONDAY - dt.timedelta(days=3))):
        reviews.record_authorisation(
            db_session,
            course.doctor,
            course.patient.id,
            reviews.AuthorisationInput("BS-1", "BloodSTAR", MONDAY, MONDAY + dt.timedelta(days=40)),
            settings,
        )
    second = first_day(db_session, course, 2)
    target = dt.datetime.combine(
        MONDAY + dt.timedelta(days=42),
        second.starts_at.astimezone(at(MONDAY).tzinfo).time(),
        tzinfo=at(MONDAY).tzinfo,
    )
    clock.set_now(at(MONDAY - dt.timedelta(days=2)))
    with pytest.raises(TherapyRuleBroken) as refused:
        infusions.reschedule(
            db_session, course.doctor, second.id, second.chair_id, target, settings
        )
    assert "authorised" in refused.value.rules and refused.value.overridable
    assert (
        db_session.scalar(
            sa.select(sa.func.count()).select_from(Notice).where(Notice.kind == "change_notice")
        )
        == 0
    )


def test_a_review_that_stops_the_course_stops_the_horizon_and_the_next_cycle(
    db_session, settings, course
):
    review_course(db_session, course, settings, CYCLE_3 - dt.timedelta(days=2), decision="stop")
    waiting = scheduling.extend_horizon(
        db_session, course.patient.id, settings, now=at(CYCLE_3 + dt.timedelta(weeks=5))
    )
    assert waiting.waiting_review and waiting.created == []
    stops = reviews.start_stops(db_session, first_day(db_session, course, 3), settings)
    assert any("decided to stop IVIG" in stop for stop in stops)
    state = reviews.status(db_session, course.patient.id, settings, CYCLE_3)
    assert state.stopped and state.point is None


def test_the_baseline_on_the_first_day_is_not_the_response_reviews_measures(
    db_session, settings, course
):
    assess(db_session, course, MONDAY, cdasi_activity=30.0, mmt8=60.0, physician_global=6.0)
    with clock.frozen_at(at(CYCLE_3 - dt.timedelta(days=10), 3)):
        made = reviews.sweep_due(db_session, settings, clock.now())
    assert made["measure_tasks"] == 1
    clock.set_now(at(CYCLE_3 - dt.timedelta(days=2), 12))
    with pytest.raises(InvalidInput) as refused:
        reviews.record_review(
            db_session, course.doctor, course.patient.id, reviews.ReviewInput("continue"), settings
        )
    assert refused.value.field == "cdasi_activity" and f"after {MONDAY}" in refused.value.message


def test_a_later_partial_assessment_does_not_hide_a_complete_one(db_session, settings, course):
    on = CYCLE_3 - dt.timedelta(days=2)
    assess(
        db_session,
        course,
        on - dt.timedelta(days=5),
        cdasi_activity=14.0,
        mmt8=70.0,
        physician_global=3.0,
    )
    assess(db_session, course, on - dt.timedelta(days=1), cdasi_activity=13.0)  # CDASI only
    clock.set_now(at(on, 12))
    review = reviews.record_review(
        db_session, course.doctor, course.patient.id, reviews.ReviewInput("continue"), settings
    )
    assert (review.cdasi_activity, review.mmt8) == (14.0, 70.0)
    with pytest.raises(InvalidInput) as again:
        reviews.record_review(
            db_session, course.doctor, course.patient.id, reviews.ReviewInput("continue"), settings
        )
    assert again.value.field == "reviewed_on" and "one review a day" in again.value.message


def test_tasks_go_to_the_centers_physicians_when_the_treating_one_left(
    db_session, settings, course, make_user
):
    colleague = make_user("physician")
    colleague.home_center_id = course.center.id
    course.physician.active = False
    db_session.commit()
    with clock.frozen_at(at(CYCLE_3 - dt.timedelta(days=10), 3)):
        reviews.sweep_due(db_session, settings, clock.now())
    (task,) = worklist.open_notices(db_session, colleague.id)
    assert task.kind == "review_due" and task.role == "physician" and task.user_id is None


def test_a_review_point_moved_a_day_makes_no_second_task(db_session, settings, course):
    with clock.frozen_at(at(CYCLE_3 - dt.timedelta(days=10), 3)):
        reviews.sweep_due(db_session, settings, clock.now())
    third = first_day(db_session, course, 3)
    with clock.frozen_at(at(CYCLE_3 - dt.timedelta(days=9), 7)):
        infusions.reschedule(
            db_session,
            course.doctor,
            third.id,
            third.chair_id,
            third.starts_at + dt.timedelta(days=1),
            settings,
        )
        again = reviews.sweep_due(db_session, settings, clock.now())
    assert again["measure_tasks"] == again["review_tasks"] == 0
    assert len(worklist.open_notices(db_session, course.physician.id)) == 1


def test_every_day_of_a_cycle_must_lie_inside_an_authorisation(db_session, settings, course):
    second = first_day(db_session, course, 2)  # days 1 and 2: MONDAY + 4 weeks and a day
    with clock.frozen_at(at(MONDAY - dt.timedelta(days=3))):
        reviews.record_authorisation(
            db_session,
            course.doctor,
            course.patient.id,
            reviews.AuthorisationInput("BS-1", "BloodSTAR", MONDAY, second.planned_date),
            settings,
        )
    day_two = db_session.scalars(
        sa.select(Infusion).where(
            Infusion.patient_id == course.patient.id,
            Infusion.cycle_number == 2,
            Infusion.day_number == 2,
        )
    ).one()
    assert reviews.start_stops(db_session, second, settings) == ()
    (stop,) = reviews.start_stops(db_session, day_two, settings)
    assert f"no authorisation covers {day_two.planned_date}" in stop
