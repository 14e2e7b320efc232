"""Taper plans: a 60 mg banded plan to zero, and no step starts without a physician."""

import datetime as dt
import itertools

import pytest
import sqlalchemy as sa

from app.models import AuditEvent, StepStatus, TaperPlan, TaperStep
from app.services import tapers
from app.services.context import Actor
from app.services.errors import Conflict, InvalidInput
from tests.db.clinic_fixtures import make_center, make_patient

START = dt.date(2026, 9, 1)


@pytest.fixture
def physician(make_user):
    user = make_user("physician")
    return Actor(label=user.email, user_id=user.id, role="physician")


@pytest.fixture
def patient(db_session, physician, settings):
    return make_patient(db_session, physician, make_center(db_session), settings)


def banded(start_mg=60.0, **changes):
    values = {
        "drug": "prednisone",
        "start_mg": start_mg,
        "template": "banded",
        "starts_on": START,
        "reason": "DM",
    }
    values.update(changes)
    return tapers.PlanInput(**values)


def test_sixty_mg_banded_plan_goes_to_zero_slower_under_the_floor(
    db_session, physician, patient, settings
):
    plan = tapers.create_plan(db_session, physician, patient.id, banded(), settings, START)
    doses = [s.mg_per_day for s in plan.steps]
    assert doses[0] == 60 and doses[-1] == 0
    assert all(a > b for a, b in itertools.pairwise(doses))
    floor = settings.steroids.physiological_floor_mg
    for step in plan.steps[1:-1]:
        if step.mg_per_day <= floor:
            assert step.min_days >= settings.steroids.below_floor_min_step_days
    assert plan.steps[-1].requires_cortisol
    assert [s.status for s in plan.steps[:2]] == [StepStatus.ACTIVE, StepStatus.PLANNED]
    assert plan.steps[0].approved_by_id == physician.user_id


def test_no_step_becomes_active_without_approval(db_session, physician, patient, settings):
    plan = tapers.create_plan(db_session, physician, patient.id, banded(), settings, START)
    long_after = START + dt.timedelta(days=400)
    view = tapers.patient_taper(db_session, patient.id, settings, long_after)
    assert view.active.position == 0 and view.active.mg_per_day == 60
    assert [s.position for s in tapers.due_queue(db_session, long_after)] == [1]
    assert (
        db_session.scalar(
            sa.select(sa.func.count(TaperStep.id)).where(
                TaperStep.plan_id == plan.id, TaperStep.status == StepStatus.ACTIVE
            )
        )
        == 1
    )


def test_approval_starts_the_step_and_moves_the_later_dates(
    db_session, physician, patient, settings
):
    plan = tapers.create_plan(db_session, physician, patient.id, banded(), settings, START)
    step_1 = plan.steps[1]
    assert step_1.earliest_on == START + dt.timedelta(days=28)
    with pytest.raises(Conflict, match="not due yet"):
        tapers.approve_step(
            db_session, physician, step_1.id, settings, START + dt.timedelta(days=10)
        )
    approved_on = START + dt.timedelta(days=35)  # a week late
    tapers.approve_step(
        db_session, physician, step_1.id, settings, approved_on, expected_version=step_1.version
    )
    db_session.expire_all()
    steps = db_session.scalars(
        sa.select(TaperStep).where(TaperStep.plan_id == plan.id).order_by(TaperStep.position)
    ).all()
    assert steps[0].status == StepStatus.COMPLETED and steps[0].ended_on == approved_on
    assert steps[1].status == StepStatus.ACTIVE and steps[1].started_on == approved_on
    assert steps[2].earliest_on == approved_on + dt.timedelta(days=steps[1].min_days)
    event = db_session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "taper_step.approve")
    )
    assert event.actor_user_id == physician.user_id and event.after["status"] == "active"
    view = tapers.patient_taper(db_session, patient.id, settings, approved_on)
    assert view.cumulative_to_date_mg == 60 * 35 + 50  # 35 days at 60 mg, today at 50 mg


def test_stale_plan_version_and_bad_input_write_nothing(db_session, physician, patient, settings):
    tapers.create_plan(db_session, physician, patient.id, banded(), settings, START)
    with pytest.raises(Conflict):
        tapers.create_plan(db_session, physician, patient.id, banded(40.0), settings, START)
    with pytest.raises(InvalidInput) as excinfo:
        tapers.create_plan(
            db_session, physician, patient.id, banded(150.0, based_on_version=1), settings, START
        )
    assert excinfo.value.field == "start_mg" and "100" in excinfo.value.message
    assert db_session.scalar(sa.select(sa.func.count(TaperPlan.id))) == 1


def test_a_new_plan_version_replaces_the_waiting_steps(db_session, physician, patient, settings):
    first = tapers.create_plan(db_session, physician, patient.id, banded(), settings, START)
    later = START + dt.timedelta(days=30)
    second = tapers.create_plan(
        db_session,
        physician,
        patient.id,
        banded(40.0, starts_on=later, based_on_version=1, reason="Flare"),
        settings,
        later,
    )
    db_session.expire_all()
    old = db_session.scalars(sa.select(TaperStep).where(TaperStep.plan_id == first.id)).all()
    assert {s.status for s in old} == {StepStatus.COMPLETED, StepStatus.CANCELLED}
    assert second.version == 2 and second.steps[0].status == StepStatus.ACTIVE


def test_skipping_the_next_step_brings_the_one_after_forward(
    db_session, physician, patient, settings
):
    plan = tapers.create_plan(db_session, physician, patient.id, banded(), settings, START)
    tapers.set_step_status(
        db_session, physician, plan.steps[1].id, StepStatus.SKIPPED, "Responding well"
    )
    due_day = START + dt.timedelta(days=28)
    assert [s.mg_per_day for s in tapers.due_queue(db_session, due_day)] == [40]


def test_a_dose_change_is_previewed_and_applied_only_as_shown(
    db_session, physician, patient, settings
):
    from app.services.previews import PreviewChanged

    plan = tapers.create_plan(db_session, physician, patient.id, banded(), settings, START)
    first, second = plan.steps[1], plan.steps[2]
    before, after, preview = tapers.preview_step_dose(
        db_session, physician, first.id, 45, "Slower", settings
    )
    changed = [
        (old["mg_per_day"], new["mg_per_day"])
        for old, new in zip(before, after, strict=True)
        if old != new
    ]
    assert changed == [(50, 45)]
    db_session.expire_all()
    assert db_session.get(TaperStep, first.id).mg_per_day == 50  # nothing kept
    # Meanwhile the step after it is changed too: the plan no longer comes out as shown.
    tapers.change_step_dose(db_session, physician, second.id, 38, "Slower still", settings)
    with pytest.raises(PreviewChanged):
        tapers.change_step_dose(
            db_session, physician, first.id, 45, "Slower", settings, fingerprint=preview.fingerprint
        )
    db_session.expire_all()
    assert db_session.get(TaperStep, first.id).mg_per_day == 50
    _before, _after, fresh = tapers.preview_step_dose(
        db_session, physician, first.id, 45, "Slower", settings
    )
    step = tapers.change_step_dose(
        db_session, physician, first.id, 45, "Slower", settings, fingerprint=fresh.fingerprint
    )
    assert step.mg_per_day == 45
