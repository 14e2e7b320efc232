"""The therapy-integrity defects, one test each: every one failed on the main of 2026-12-01.

Each scenario runs on the test clock (app.clock), so "today" is a fixed day in 2027 whatever
the machine's date, and on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from app import clock
from app.models import AdverseEvent, AuditEvent, Infusion, InfusionStatus, StepStatus, Suggestion
from app.services import adverse_events as adverse_event_service
from app.services import assessments, infusions, scheduling, suggestions, tapers
from app.services import regimens as regimen_service
from app.services.context import unit_of_work
from app.services.errors import ServiceError
from tests.db.clinic_fixtures import (
    NEW_YORK,
    Clinic,
    give,
    make_clinic,
    make_patient,
    review_course,
)

MONDAY = dt.date(2027, 3, 1)


def at(day: dt.date, hour: int = 7, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=NEW_YORK)


def day(offset: int) -> dt.date:
    return MONDAY + dt.timedelta(days=offset)


@pytest.fixture
def tick() -> Iterator[object]:
    """Set the clock to a New York wall time: tick(day, hour)."""

    def _set(when: dt.date, hour: int = 7, minute: int = 0) -> None:
        clock.set_now(at(when, hour, minute))

    yield _set
    clock.set_now(None)


@pytest.fixture
def clinic(db_session, make_user, settings, tick) -> Clinic:
    tick(day(-10))
    return make_clinic(db_session, make_user, settings)


def set_regimen(db_session, clinic, settings, based_on=None, **changes):
    values = {
        "product": "Octagam 10%",
        "dose_g_per_kg": 2.0,
        "days_per_cycle": 2,
        "interval_weeks": 4,
        "weight_basis": "adjusted",
        "starts_on": MONDAY,
        "preferred_time": dt.time(9, 0),
        "reason": "Refractory cutaneous DM",
        "based_on_version": based_on,
    }
    values.update(changes)
    regimen, _plan = regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_service.RegimenInput(**values),
        settings,
    )
    return regimen


def rows(db_session, clinic, live_only=True):
    statement = sa.select(Infusion).where(Infusion.patient_id == clinic.patient.id)
    if live_only:
        statement = statement.where(Infusion.status != InfusionStatus.CANCELLED)
    return list(db_session.scalars(statement.order_by(Infusion.planned_date, Infusion.day_number)))


def on(db_session, clinic, when: dt.date) -> Infusion:
    (infusion,) = [i for i in rows(db_session, clinic) if i.planned_date == when]
    return infusion


def give_through(db_session, clinic, settings, tick, last: dt.date):
    """Give every booked infusion up to a date, each at its planned time, advancing the clock."""
    for infusion in rows(db_session, clinic):
        if infusion.planned_date > last or infusion.status != InfusionStatus.SCHEDULED:
            continue
        tick(infusion.planned_date, 21)
        give(db_session, clinic.nursing, infusion, settings)


def assess(db_session, clinic, settings, tick, when: dt.date, activity: float, **scores):
    tick(when, 16)
    return assessments.record_assessment(
        db_session,
        clinic.nursing,
        clinic.patient.id,
        assessments.AssessmentInput(
            assessed_on=when, scores={"cdasi_activity": activity, **scores}
        ),
        when,
        after_record=suggestions.evaluation_hook(settings),
    )


def pending(db_session, clinic) -> dict[str, Suggestion]:
    found = db_session.scalars(
        sa.select(Suggestion).where(
            Suggestion.patient_id == clinic.patient.id, Suggestion.status == "pending"
        )
    )
    return {s.kind: s for s in found}


def responder(db_session, clinic, settings, tick, through_week=12):
    """A patient on 2 g/kg every 4 weeks whose CDASI activity falls 40 -> 30 -> 29."""
    tick(day(-3))
    set_regimen(db_session, clinic, settings)
    assess(db_session, clinic, settings, tick, day(-1), 40)
    give_through(db_session, clinic, settings, tick, day(7 * through_week))
    assess(db_session, clinic, settings, tick, day(7 * 8), 30)
    assess(db_session, clinic, settings, tick, day(7 * 12), 29)


def responder_on_a_taper(db_session, clinic, settings, tick):
    """The responder, on 60 mg prednisone tapered by bands: the first step is due by week 12."""
    tick(day(-3))
    tapers.create_plan(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        tapers.PlanInput(
            drug="prednisone", start_mg=60, template="banded", starts_on=MONDAY, reason="DM"
        ),
        settings,
        day(-3),
    )
    responder(db_session, clinic, settings, tick)


# --- 1. the horizon roll --------------------------------------------------------------------


def test_1_the_horizon_roll_numbers_new_cycles_after_the_last_booked(
    db_session, clinic, settings, tick
):
    tick(day(-3))
    set_regimen(db_session, clinic, settings)
    give_through(db_session, clinic, settings, tick, day(1))
    tick(day(40), 2)
    with unit_of_work(db_session):
        added = scheduling.extend_horizon(db_session, clinic.patient.id, settings)
    assert added.created  # the horizon moved on 40 days: new cycles were booked
    keys = Counter((i.cycle_number, i.day_number) for i in rows(db_session, clinic))
    assert [key for key, count in keys.items() if count > 1] == []
    numbers = sorted({i.cycle_number for i in rows(db_session, clinic)})
    assert numbers == list(range(1, len(numbers) + 1))
    # The second half of the defect: after cycle 2 is given, a new regimen re-plans every
    # cycle not begun; none stays at the old 82 g.
    give_through(db_session, clinic, settings, tick, day(29))
    tick(day(30), 10)
    lower = set_regimen(
        db_session,
        clinic,
        settings,
        based_on=1,
        dose_g_per_kg=1.0,
        interval_weeks=6,
        starts_on=day(28 + 42),
        reason="Responding",
    )
    future = [i for i in rows(db_session, clinic) if i.planned_date > day(30)]
    assert future and {(i.regimen_id, i.planned_grams) for i in future} == {
        (lower.id, lower.grams_per_day)
    }


# --- 2. a reschedule and the regimen's limits -----------------------------------------------


def test_2_a_reschedule_cannot_crowd_two_cycles_into_a_week(db_session, clinic, settings, tick):
    tick(day(-3))
    set_regimen(db_session, clinic, settings, dose_g_per_kg=1.5)
    assert on(db_session, clinic, day(28)).planned_grams == 62.0
    chair = clinic.center.chairs[0].id
    before = [(i.id, i.planned_date, i.starts_at) for i in rows(db_session, clinic)]
    # Cycle 2 day 2 onto Wednesday of cycle 1's week: 3 x 62 g within three days.
    with pytest.raises(ServiceError) as excinfo:
        infusions.reschedule(
            db_session,
            clinic.nursing,
            on(db_session, clinic, day(29)).id,
            chair,
            at(day(2), 9),
            settings,
        )
    assert excinfo.value.status == 409 and "grams_in_window" in excinfo.value.message
    # Cycle 2 day 1 a week after cycle 1 (its day 2 comes along): 4 x 62 g within 9 days.
    with pytest.raises(ServiceError) as excinfo:
        infusions.reschedule(
            db_session,
            clinic.nursing,
            on(db_session, clinic, day(28)).id,
            chair,
            at(day(7), 9),
            settings,
        )
    assert excinfo.value.status == 409 and "grams_in_window" in excinfo.value.message
    db_session.expire_all()
    assert [(i.id, i.planned_date, i.starts_at) for i in rows(db_session, clinic)] == before


# --- 3. a nurse's reschedule and a later regimen change ---------------------------------------


def test_3_a_later_regimen_change_keeps_a_nurses_move(db_session, clinic, settings, tick):
    tick(day(-3))
    set_regimen(db_session, clinic, settings)
    moved = on(db_session, clinic, day(28))
    other_chair = clinic.center.chairs[1].id
    tick(day(2), 10)
    infusions.reschedule(
        db_session, clinic.nursing, moved.id, other_chair, at(day(28), 13), settings
    )
    sequence = moved.sequence
    tick(day(3), 10)
    set_regimen(db_session, clinic, settings, based_on=1, dose_g_per_kg=1.5, reason="Lower")
    db_session.refresh(moved)
    assert moved.status == InfusionStatus.SCHEDULED and moved.planned_grams == 62.0
    assert moved.starts_at.astimezone(NEW_YORK) == at(day(28), 13)
    # Same chair and start; only its end moves (1.5 g/kg runs shorter): one SEQUENCE step.
    assert moved.chair_id == other_chair and moved.sequence == sequence + 1
    assert moved.ends_at - moved.starts_at == dt.timedelta(minutes=moved.planned_minutes)


def test_3b_a_move_that_cannot_be_kept_reaches_the_nurses_worklist(
    db_session, clinic, settings, tick
):
    from app.services import worklist

    tick(day(-3))
    set_regimen(db_session, clinic, settings)
    moved = on(db_session, clinic, day(28))
    tick(day(2), 10)
    infusions.reschedule(
        db_session,
        clinic.nursing,
        moved.id,
        clinic.center.chairs[1].id,
        at(day(28), 13),
        settings,
    )
    tick(day(3), 10)
    # Three days a cycle: the nurse's two-day cycle cannot stay as she left it.
    set_regimen(db_session, clinic, settings, based_on=1, days_per_cycle=3, reason="Split")
    (notice,) = worklist.open_notices(db_session, clinic.nurse.id)
    assert notice.kind == "reschedule_not_kept" and notice.infusion_id == moved.id
    assert "3 day(s) per cycle" in notice.message
    worklist.mark_done(db_session, clinic.nursing, notice.id)
    assert worklist.open_notices(db_session, clinic.nurse.id) == []


# --- 4. rejecting a taper step --------------------------------------------------------------


def test_4_rejecting_a_taper_suggestion_holds_the_step(db_session, clinic, settings, tick):
    responder_on_a_taper(db_session, clinic, settings, tick)
    proposal = pending(db_session, clinic)["taper_step"]
    suggestions.reject(db_session, clinic.doctor, proposal.id, "stay at 60 mg")
    step = db_session.get(tapers.TaperStep, proposal.proposal["step_id"])
    assert step.status == StepStatus.HELD and "stay at 60 mg" in step.status_reason
    assert step.id not in {s.id for s in tapers.due_queue(db_session, day(7 * 12))}


def test_4b_approving_the_step_from_the_taper_queue_decides_its_suggestion(
    db_session, clinic, settings, tick
):
    responder_on_a_taper(db_session, clinic, settings, tick)
    proposal = pending(db_session, clinic)["taper_step"]
    tapers.approve_step(db_session, clinic.doctor, proposal.step_id, settings)
    db_session.refresh(proposal)
    assert proposal.status == "approved" and proposal.applied_step_id == proposal.step_id
    assert proposal.decision_reason == "Step approved from the taper queue"


def test_4c_holding_the_step_from_the_taper_queue_rejects_its_suggestion(
    db_session, clinic, settings, tick, client
):
    from tests.conftest import login

    responder_on_a_taper(db_session, clinic, settings, tick)
    proposal = pending(db_session, clinic)["taper_step"]
    login(client, clinic.physician.email)
    queue = client.get("/approvals?all=1").get_data(as_text=True)
    assert 'data-testid="step-suggestion"' in queue and "Suggested by rule taper_step" in queue
    tapers.set_step_status(
        db_session, clinic.doctor, proposal.step_id, StepStatus.HELD, "wait for the CK"
    )
    db_session.refresh(proposal)
    assert (
        proposal.status == "rejected" and proposal.decision_reason == "Step held: wait for the CK"
    )
    card = client.get(f"/patients/{clinic.patient.id}").get_data(as_text=True)
    assert "Step held: wait for the CK" in card and "(wait for the CK)" in card


# --- 5. an unrelated reaction and a rejected suggestion -------------------------------------


def test_5_a_mild_reaction_does_not_revive_a_rejected_deescalation(
    db_session, clinic, settings, tick
):
    responder(db_session, clinic, settings, tick)
    proposal = pending(db_session, clinic)["deescalate_ivig"]
    suggestions.reject(db_session, clinic.doctor, proposal.id, "Keep 2 g/kg until summer")
    next_one = [i for i in rows(db_session, clinic) if i.status == InfusionStatus.GIVEN][-1]
    tick(next_one.planned_date + dt.timedelta(days=1), 9)
    adverse_event_service.record_adverse_event(
        db_session,
        clinic.nursing,
        next_one.id,
        adverse_event_service.AdverseEventInput(
            event_type="headache", grade=1, occurred_on=next_one.planned_date, serious=False
        ),
        next_one.planned_date + dt.timedelta(days=1),
        after_record=suggestions.evaluation_hook(settings),
    )
    assert "deescalate_ivig" not in pending(db_session, clinic)


# --- 6. resolving a serious adverse event ---------------------------------------------------


def test_6_a_physician_resolves_a_serious_event_and_the_hold_lifts(
    db_session, clinic, settings, tick
):
    responder(db_session, clinic, settings, tick, through_week=4)
    given = [i for i in rows(db_session, clinic) if i.status == InfusionStatus.GIVEN][-1]
    event = adverse_event_service.record_adverse_event(
        db_session,
        clinic.nursing,
        given.id,
        adverse_event_service.AdverseEventInput(
            event_type="thrombosis", grade=3, occurred_on=given.planned_date
        ),
        day(7 * 12),
        after_record=suggestions.evaluation_hook(settings),
    )
    hold = pending(db_session, clinic)["safety_hold"]
    assert "deescalate_ivig" not in pending(db_session, clinic)
    tick(day(7 * 12 + 2), 11)
    adverse_event_service.resolve_adverse_event(
        db_session,
        clinic.doctor,
        event.id,
        day(7 * 12 + 1),
        "Anticoagulated; duplex clear",
        day(7 * 12 + 2),
        after_record=suggestions.evaluation_hook(settings),
    )
    db_session.refresh(hold)
    assert hold.status == "expired"
    stored = db_session.get(AdverseEvent, event.id)
    assert stored.resolved_on == day(7 * 12 + 1) and stored.resolved_by_id == clinic.physician.id
    assert db_session.scalar(
        sa.select(AuditEvent.id).where(AuditEvent.action == "adverse_event.resolve")
    )
    assert "deescalate_ivig" in pending(db_session, clinic)  # no longer blocked


# --- 7. a flare before the lower dose is first given ----------------------------------------


def test_7_a_flare_after_an_approved_deescalation_returns_to_the_controlling_regimen(
    db_session, clinic, settings, tick
):
    responder(db_session, clinic, settings, tick)
    tick(day(7 * 12), 18)
    suggestions.approve(
        db_session, clinic.doctor, pending(db_session, clinic)["deescalate_ivig"].id, settings
    )
    lower = regimen_service.current_regimen(db_session, clinic.patient.id)
    assert lower.dose_g_per_kg == 1.5 and lower.starts_on == day(7 * 16)
    assess(db_session, clinic, settings, tick, day(7 * 13), 42)  # 13 up, before any 1.5 g/kg
    flare = pending(db_session, clinic).get("flare_return")
    assert flare is not None and flare.proposal["to_version"] == 1


# --- 8. contradictory cards -----------------------------------------------------------------


def test_8_a_tis_responder_is_not_reviewed_for_non_response(db_session, clinic, settings, tick):
    tick(day(-3))
    set_regimen(db_session, clinic, settings)
    baseline = {
        "physician_global": 6,
        "patient_global": 6,
        "mmt8": 60,
        "haq": 1.5,
        "ck": 500,
        "ck_uln": 200,
        "extramuscular_global": 5,
    }
    better = {
        "physician_global": 3,
        "patient_global": 3,
        "mmt8": 70,
        "haq": 1.0,
        "ck": 200,
        "ck_uln": 200,
        "extramuscular_global": 2,
    }
    assess(db_session, clinic, settings, tick, day(-1), 40, **baseline)
    give_through(db_session, clinic, settings, tick, day(7 * 12))
    assess(db_session, clinic, settings, tick, day(7 * 8), 39, **better)
    assess(db_session, clinic, settings, tick, day(7 * 12), 38, **better)
    kinds = set(pending(db_session, clinic))
    assert "deescalate_ivig" in kinds and "review_nonresponse" not in kinds


# --- 9. records of what happened ------------------------------------------------------------


def test_9_a_future_infusion_cannot_be_recorded_as_given(db_session, clinic, settings, tick):
    tick(day(-3))
    set_regimen(db_session, clinic, settings)
    tick(day(0), 23)
    planned_tuesday = on(db_session, clinic, day(1))
    # Monday night, the nurse "records" Tuesday's infusion as given on Monday evening.
    with pytest.raises(ServiceError) as excinfo:
        infusions.record_given(
            db_session,
            clinic.nursing,
            planned_tuesday.id,
            infusions.GivenInput(
                given_grams=82,
                started_at=at(day(0), 17, 11),
                ended_at=at(day(0), 22, 6),
                lot_numbers="L1",
                max_rate_ml_per_kg_min=0.04,
            ),
            settings,
        )
    assert excinfo.value.status == 409 and "recorded_when_it_happened" in excinfo.value.message
    db_session.refresh(planned_tuesday)
    assert planned_tuesday.status == InfusionStatus.SCHEDULED


def test_9b_a_recorded_infusion_is_amended_and_the_original_stays_visible(
    db_session, clinic, settings, tick
):
    tick(day(-3))
    set_regimen(db_session, clinic, settings)
    monday = on(db_session, clinic, day(0))
    give_through(db_session, clinic, settings, tick, day(0))
    tick(day(1), 8)
    amended = infusions.amend_infusion(
        db_session,
        clinic.nursing,
        monday.id,
        infusions.AmendmentInput(
            reason="Pump log: stopped at 60 g after a headache",
            status=InfusionStatus.PARTIAL,
            given=infusions.GivenInput(
                given_grams=60,
                started_at=monday.given_started_at,
                ended_at=monday.given_ended_at,
                lot_numbers="L1",
                max_rate_ml_per_kg_min=0.03,
                reason="Headache",
            ),
        ),
        settings,
    )
    assert amended.status == InfusionStatus.PARTIAL and amended.given_grams == 60
    (amendment,) = infusions.get_infusion(db_session, monday.id).amendments
    assert amendment.before["given_grams"] == 82 and amendment.before["status"] == "given"
    assert amendment.after["given_grams"] == 60 and amendment.reason.startswith("Pump log")
    assert db_session.scalar(sa.select(AuditEvent.id).where(AuditEvent.action == "infusion.amend"))
    # An amendment is bound by the same rules: it cannot move the record into the future.
    with pytest.raises(ServiceError) as excinfo:
        infusions.amend_infusion(
            db_session,
            clinic.nursing,
            monday.id,
            infusions.AmendmentInput(
                reason="typo",
                status=InfusionStatus.GIVEN,
                given=infusions.GivenInput(
                    given_grams=82,
                    started_at=at(day(1), 9),
                    ended_at=at(day(1), 14),
                    lot_numbers="L1",
                    max_rate_ml_per_kg_min=0.04,
                ),
            ),
            settings,
        )
    assert excinfo.value.status in (409, 422)
    db_session.refresh(amended)
    assert amended.given_grams == 60


# --- 11. a full dose in one day ------------------------------------------------------------


def test_11_a_two_gram_cycle_in_one_day_needs_an_override(db_session, clinic, settings, tick):
    tick(day(-3))
    # A 60 kg, 165 cm woman: 2 g/kg of her dosing weight is about 106 g, within a day's maximum.
    clinic.patient = make_patient(
        db_session,
        clinic.nursing,
        clinic.center,
        settings,
        mrn="T-200",
        weight_kg=60,
        height_cm=165,
        sex="female",
    )
    with pytest.raises(ServiceError) as excinfo:
        set_regimen(db_session, clinic, settings, days_per_cycle=1)
    assert excinfo.value.field == "override_reason" and "one day" in excinfo.value.message
    regimen = set_regimen(
        db_session, clinic, settings, days_per_cycle=1, override_reason="Travels 300 km"
    )
    assert [p["code"] for p in regimen.soft_stops] == ["one_day_cycle_dose"]


# --- found in review ------------------------------------------------------------------------


def test_a_patient_who_came_a_day_late_is_moved_to_that_day_then_recorded(
    db_session, clinic, settings, tick
):
    tick(day(-3))
    set_regimen(db_session, clinic, settings)
    monday, tuesday = on(db_session, clinic, day(0)), on(db_session, clinic, day(1))
    tick(day(1), 16)  # Tuesday afternoon: the patient came at 09:00 instead of Monday
    infusions.reschedule(
        db_session, clinic.nursing, monday.id, monday.chair_id, at(day(1), 9), settings
    )
    db_session.refresh(tuesday)
    assert monday.planned_date == day(1) and tuesday.planned_date == day(2)  # day 2 follows
    give(db_session, clinic.nursing, monday, settings)
    assert monday.status == InfusionStatus.GIVEN
    with pytest.raises(ServiceError) as excinfo:  # but not to an earlier day
        infusions.reschedule(
            db_session, clinic.nursing, tuesday.id, tuesday.chair_id, at(day(0), 9), settings
        )
    assert excinfo.value.field == "starts_at"


def test_recording_no_shows_never_moves_a_cycle_closer_to_the_next(
    db_session, clinic, settings, tick
):
    tick(day(-4))
    set_regimen(db_session, clinic, settings, days_per_cycle=3, starts_on=day(3))  # Thu Fri Mon
    thursday, friday = on(db_session, clinic, day(3)), on(db_session, clinic, day(4))
    tick(day(4), 20)
    for infusion in (thursday, friday):
        infusions.set_status(
            db_session, clinic.nursing, infusion.id, InfusionStatus.MISSED, "did not come"
        )
    assert friday.status == InfusionStatus.MISSED


def test_an_override_covers_the_move_it_was_given_for_not_a_later_one(
    db_session, clinic, settings, tick
):
    tick(day(-3))
    set_regimen(db_session, clinic, settings)
    cycle_2 = on(db_session, clinic, day(28))
    chair = cycle_2.chair_id
    infusions.reschedule(
        db_session,
        clinic.doctor,
        cycle_2.id,
        chair,
        at(day(32), 9),
        settings,
        override_reason="abroad",
    )
    assert "shift_window" in cycle_2.waived_rules  # the rows it concerned carry the waiver
    with pytest.raises(ServiceError) as excinfo:  # a nurse moving it further is refused
        infusions.reschedule(
            db_session, clinic.nursing, cycle_2.id, chair, at(day(39), 9), settings
        )
    assert excinfo.value.status == 409 and "shift_window" in excinfo.value.message


def test_the_horizon_stops_and_tells_the_physician_instead_of_failing(
    db_session, clinic, settings, tick
):
    from app.services import worklist

    clinic.patient.treating_physician_id = clinic.physician.id
    tick(day(-3))
    set_regimen(db_session, clinic, settings)
    last = max(rows(db_session, clinic), key=lambda i: i.planned_date)
    first_day = on(db_session, clinic, last.planned_date - dt.timedelta(days=1))
    tick(last.planned_date - dt.timedelta(days=20), 9)
    infusions.reschedule(
        db_session,
        clinic.doctor,
        first_day.id,
        first_day.chair_id,
        at(first_day.planned_date + dt.timedelta(days=7), 9),
        settings,
        override_reason="Wedding",
    )
    review_course(db_session, clinic, settings, last.planned_date - dt.timedelta(days=20))
    tick(last.planned_date - dt.timedelta(days=2), 2)
    with unit_of_work(db_session):
        result = scheduling.extend_horizon(db_session, clinic.patient.id, settings)
    assert result.blocked_on is not None and result.created == []
    (notice,) = worklist.open_notices(db_session, clinic.physician.id)
    assert notice.kind == "horizon_blocked"
    with unit_of_work(db_session):  # the next night says nothing new
        scheduling.extend_horizon(db_session, clinic.patient.id, settings)
    assert len(worklist.open_notices(db_session, clinic.physician.id)) == 1


def test_an_approved_change_starts_on_the_regimens_grid_not_on_a_nurses_move(
    db_session, clinic, settings, tick
):
    responder(db_session, clinic, settings, tick)
    next_cycle = on(db_session, clinic, day(7 * 16))
    tick(day(7 * 12), 17)
    infusions.reschedule(
        db_session,
        clinic.nursing,
        next_cycle.id,
        next_cycle.chair_id,
        at(day(7 * 16 + 2), 9),
        settings,
    )
    suggestions.approve(
        db_session, clinic.doctor, pending(db_session, clinic)["deescalate_ivig"].id, settings
    )
    lower = regimen_service.current_regimen(db_session, clinic.patient.id)
    assert lower.starts_on == day(7 * 16)
    db_session.refresh(next_cycle)  # the nurse's move still stands, now at the lower dose
    assert next_cycle.planned_date == day(7 * 16 + 2) and next_cycle.regimen_id == lower.id


def test_two_serious_events_then_one_resolved_leave_one_safety_hold(
    db_session, clinic, settings, tick
):
    responder(db_session, clinic, settings, tick, through_week=4)
    given = [i for i in rows(db_session, clinic) if i.status == InfusionStatus.GIVEN]
    events = [
        adverse_event_service.record_adverse_event(
            db_session,
            clinic.nursing,
            infusion.id,
            adverse_event_service.AdverseEventInput(
                event_type="thrombosis", grade=3, occurred_on=infusion.planned_date
            ),
            day(7 * 12),
            after_record=suggestions.evaluation_hook(settings),
        )
        for infusion in given[-2:]
    ]
    adverse_event_service.resolve_adverse_event(
        db_session,
        clinic.doctor,
        events[1].id,
        day(7 * 12),
        "settled",
        day(7 * 12),
        after_record=suggestions.evaluation_hook(settings),
    )
    holds = db_session.scalars(
        sa.select(Suggestion).where(
            Suggestion.patient_id == clinic.patient.id,
            Suggestion.kind == "safety_hold",
            Suggestion.status == "pending",
        )
    ).all()
    assert len(holds) == 1


def test_rule_made_changes_name_the_request_behind_them_and_a_hold_lists_what_it_cancelled(
    db_session, clinic, settings, tick
):
    from app.services.context import Actor

    responder(db_session, clinic, settings, tick, through_week=4)
    given = [i for i in rows(db_session, clinic) if i.status == InfusionStatus.GIVEN][-1]
    nurse = Actor(
        label=clinic.nurse.email,
        user_id=clinic.nurse.id,
        role="nurse",
        request_id="req-" + "a" * 28,
    )
    adverse_event_service.record_adverse_event(
        db_session,
        nurse,
        given.id,
        adverse_event_service.AdverseEventInput(
            event_type="thrombosis", grade=3, occurred_on=given.planned_date
        ),
        day(7 * 12),
        after_record=suggestions.evaluation_hook(settings),
    )
    hold = pending(db_session, clinic)["safety_hold"]
    made = db_session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.action == "suggestion.create", AuditEvent.entity_id == str(hold.id)
        )
    )
    assert made.request_id == nurse.request_id and clinic.nurse.email in made.actor_label
    future = [i.id for i in rows(db_session, clinic) if i.status == InfusionStatus.SCHEDULED]
    tick(day(7 * 12), 18)
    suggestions.approve(db_session, clinic.doctor, hold.id, settings)
    approval = db_session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.action == "suggestion.approve", AuditEvent.entity_id == str(hold.id)
        )
    )
    cancelled = approval.after["proposal"]["cancelled_infusions"]
    assert cancelled and set(cancelled) <= set(future)
    assert approval.after["proposal"]["cancelled_count"] == len(cancelled)
