"""Regimens become bookings; changes move only the future; bad input writes nothing."""

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.models import AuditEvent, Infusion, InfusionStatus, Regimen
from app.services import infusions as infusion_service
from app.services import regimens as regimen_service
from app.services.context import Actor
from app.services.errors import Conflict, InvalidInput
from tests.db.clinic_fixtures import (
    Clinic,
    at,
    give,
    make_center,
    make_patient,
    regimen_input,
    review_course,
)

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def clinic(db_session, make_user, settings) -> Clinic:
    center = make_center(db_session)
    physician, nurse = make_user("physician"), make_user("nurse")
    holder = Clinic(center=center, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    holder.patient = make_patient(db_session, holder.nursing, center, settings)
    return holder


def infusions_of(session, patient_id):
    return list(
        session.scalars(
            sa.select(Infusion)
            .where(Infusion.patient_id == patient_id)
            .order_by(Infusion.planned_date, Infusion.day_number, Infusion.id)
        )
    )


def test_worked_example_end_to_end(db_session, clinic, settings):
    regimen, plan = regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(),
        settings,
        now=at(dt.date(2026, 10, 5)),
    )
    assert round(regimen.dosing_weight_kg, 2) == 82.28
    assert round(regimen.calculation["grams_per_cycle"], 2) == 164.56
    assert round(regimen.calculation["grams_per_day"], 2) == 82.28
    assert regimen.grams_per_day == 82.0  # 30 + 30 + 20 + 2, within the 5% tolerance
    assert regimen.calculation["rounding"]["vials"] == [[30.0, 2], [20.0, 1], [2.0, 1]]
    assert regimen.minutes_per_day == 295
    booked = infusions_of(db_session, clinic.patient.id)
    horizon = dt.date(2027, 10, 5)  # 12 months (config) from today
    cycles = (horizon - dt.date(2026, 10, 5)).days // 28 + 1
    assert plan.summary()["created"] == len(booked) == cycles * 2
    first = booked[0]
    assert (first.planned_date, first.day_number, first.cycle_number) == (
        dt.date(2026, 10, 5),
        1,
        1,
    )
    assert booked[1].planned_date == dt.date(2026, 10, 6)
    assert first.starts_at.astimezone(NEW_YORK).time() == dt.time(9, 0)
    assert first.ends_at - first.starts_at == dt.timedelta(minutes=295)
    assert all(i.status == InfusionStatus.SCHEDULED for i in booked)
    event = db_session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "regimen.set"))
    assert event.after["replan"]["created"] == cycles * 2 and event.before is None


def test_daylight_saving_keeps_the_local_clock_time(db_session, clinic, settings):
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(),
        settings,
        now=at(dt.date(2026, 10, 5)),
    )
    booked = infusions_of(db_session, clinic.patient.id)
    before = next(i for i in booked if i.planned_date == dt.date(2026, 10, 5))
    after = next(i for i in booked if i.planned_date == dt.date(2026, 11, 2))
    assert before.starts_at.astimezone(NEW_YORK).time() == dt.time(9, 0)
    assert after.starts_at.astimezone(NEW_YORK).time() == dt.time(9, 0)
    assert (before.starts_at.hour, after.starts_at.hour) == (13, 14)  # UTC moved, not the clinic


def test_regimen_change_moves_only_the_future(db_session, clinic, settings):
    _regimen, _ = regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(),
        settings,
        now=at(dt.date(2026, 10, 5)),
    )
    first = infusions_of(db_session, clinic.patient.id)[0]
    give(db_session, clinic.nursing, first, settings, lot="A123")
    given_before = {c.name: getattr(first, c.name) for c in Infusion.__table__.columns}
    second = infusions_of(db_session, clinic.patient.id)[1]
    second_uid, second_sequence = second.uid, second.sequence
    # Day 2 of cycle 1 is still ahead; the physician widens the interval from the next cycle.
    new, plan = regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(
            interval_weeks=6,
            starts_on=dt.date(2026, 11, 16),
            based_on_version=1,
            reason="Responding; widen the interval",
        ),
        settings,
        now=at(dt.date(2026, 10, 6), 6),
    )
    assert new.version == 2
    db_session.expire_all()
    given_after = {
        c.name: getattr(db_session.get(Infusion, first.id), c.name)
        for c in Infusion.__table__.columns
    }
    assert given_after == given_before
    everything = infusions_of(db_session, clinic.patient.id)
    cancelled = [i for i in everything if i.status == InfusionStatus.CANCELLED]
    planned = [i for i in everything if i.status == InfusionStatus.SCHEDULED and i.cycle_number > 1]
    # Day 2 of cycle 1 belongs to a cycle already begun: it is finished as planned, untouched.
    kept = db_session.get(Infusion, second.id)
    assert kept.status == InfusionStatus.SCHEDULED
    assert (kept.uid, kept.sequence) == (second_uid, second_sequence)
    starts = sorted({i.planned_date for i in planned if i.day_number == 1})
    assert starts[0] == dt.date(2026, 11, 16)
    assert all((b - a).days == 42 for a, b in itertools.pairwise(starts))
    assert min(i.cycle_number for i in planned) == 2  # the course continues after cycle 1
    assert plan.summary()["cancelled"] == len(cancelled)
    assert all(i.regimen_id == new.id for i in planned)


def test_unchanged_dates_keep_their_uid_and_sequence(db_session, clinic, settings):
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(),
        settings,
        now=at(dt.date(2026, 10, 1)),
    )
    before = {
        i.planned_date: (i.id, i.uid, i.sequence, i.starts_at)
        for i in infusions_of(db_session, clinic.patient.id)
    }
    _, plan = regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(dose_g_per_kg=1.5, based_on_version=1, reason="Lower the dose"),
        settings,
        now=at(dt.date(2026, 10, 1)),
    )
    after = {
        i.planned_date: (i.id, i.uid, i.sequence, i.starts_at)
        for i in infusions_of(db_session, clinic.patient.id)
    }
    assert set(after) == set(before)
    assert plan.summary()["created"] == 0 and plan.summary()["cancelled"] == 0
    for day, (infusion_id, uid, sequence, _starts) in before.items():
        assert after[day][:2] == (infusion_id, uid)
        assert after[day][2] in (
            sequence,
            sequence + 1,
        )  # +1 only if the time moved (shorter infusion)


def test_stale_version_is_a_conflict_and_writes_nothing(db_session, clinic, settings):
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(),
        settings,
        now=at(dt.date(2026, 10, 1)),
    )
    count = db_session.scalar(sa.select(sa.func.count(Infusion.id)))
    with pytest.raises(Conflict) as excinfo:
        regimen_service.set_regimen(
            db_session,
            clinic.doctor,
            clinic.patient.id,
            regimen_input(dose_g_per_kg=1.5, based_on_version=None),
            settings,
            now=at(dt.date(2026, 10, 1)),
        )
    assert excinfo.value.field == "based_on_version"
    assert db_session.scalar(sa.select(sa.func.count(Regimen.id))) == 1
    assert db_session.scalar(sa.select(sa.func.count(Infusion.id))) == count


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"dose_g_per_kg": 2.5}, "dose_g_per_kg", "2"),
        ({"days_per_cycle": 7}, "days_per_cycle", "5"),
        ({"interval_weeks": 20}, "interval_weeks", "12"),
        ({"product": "Nope 5%"}, "product", "Octagam"),
        ({"reason": "  "}, "reason", "why"),
        ({"preferred_weekday": 9}, "preferred_weekday", "6"),
    ],
)
def test_hard_stops_name_the_field_and_write_nothing(
    db_session, clinic, settings, changes, field, text
):
    with pytest.raises(InvalidInput) as excinfo:
        regimen_service.set_regimen(
            db_session,
            clinic.doctor,
            clinic.patient.id,
            regimen_input(**changes),
            settings,
            now=at(dt.date(2026, 10, 1)),
        )
    assert excinfo.value.field == field
    assert text in excinfo.value.message
    assert db_session.scalar(sa.select(sa.func.count(Regimen.id))) == 0
    assert db_session.scalar(sa.select(sa.func.count(Infusion.id))) == 0
    assert not db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "regimen.set")
    ).all()


def test_thrombosis_soft_stop_needs_an_override_reason(db_session, make_user, settings):
    center = make_center(db_session, "Risk Center")
    physician, nurse = make_user("physician"), make_user("nurse")
    clinic = Clinic(center=center, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    patient = make_patient(
        db_session, clinic.nursing, center, settings, mrn="R-1", thrombosis_risk=True
    )
    with pytest.raises(InvalidInput) as excinfo:
        regimen_service.set_regimen(
            db_session,
            clinic.doctor,
            patient.id,
            regimen_input(),
            settings,
            now=at(dt.date(2026, 10, 1)),
        )
    assert excinfo.value.field == "override_reason" and "35" in excinfo.value.message
    regimen, _ = regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        patient.id,
        regimen_input(override_reason="Hydrated, slow rate, benefit outweighs risk"),
        settings,
        now=at(dt.date(2026, 10, 1)),
    )
    assert regimen.override_reason.startswith("Hydrated")
    assert regimen.soft_stops[0]["code"] == "thrombosis_risk_daily_dose"
    assert regimen.calculation["infusion"]["max_rate_ml_per_kg_min"] == 0.03


def test_two_patients_never_share_a_chair(db_session, clinic, settings):
    other = make_patient(db_session, clinic.nursing, clinic.center, settings, mrn="T-200")
    for patient in (clinic.patient, other):
        regimen_service.set_regimen(
            db_session,
            clinic.doctor,
            patient.id,
            regimen_input(),
            settings,
            now=at(dt.date(2026, 10, 1)),
        )
    rows = db_session.scalars(sa.select(Infusion).where(Infusion.chair_id.is_not(None))).all()
    by_chair: dict[int, list[Infusion]] = {}
    for row in rows:
        by_chair.setdefault(row.chair_id, []).append(row)
    for items in by_chair.values():
        items.sort(key=lambda i: i.starts_at)
        for a, b in itertools.pairwise(items):
            assert a.occupied_until <= b.starts_at
    first_day = [i for i in rows if i.planned_date == dt.date(2026, 10, 5)]
    assert {i.starts_at.astimezone(NEW_YORK).time() for i in first_day} == {dt.time(9, 0)}
    assert len({i.chair_id for i in first_day}) == 2  # same time, two chairs


def test_the_database_refuses_a_double_booking(db_session, clinic, settings):
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(),
        settings,
        now=at(dt.date(2026, 10, 1)),
    )
    first = infusions_of(db_session, clinic.patient.id)[0]
    clash = Infusion(
        patient_id=first.patient_id,
        regimen_id=first.regimen_id,
        cycle_number=99,
        day_number=1,
        planned_date=first.planned_date,
        center_id=first.center_id,
        chair_id=first.chair_id,
        starts_at=first.starts_at + dt.timedelta(minutes=30),
        ends_at=first.ends_at,
        occupied_until=first.occupied_until,
        planned_grams=10,
        planned_vials=[],
        planned_minutes=60,
    )
    db_session.add(clash)
    with pytest.raises(sa.exc.DatabaseError, match="chair"), db_session.begin_nested():
        db_session.flush()


def _raw_booking(first: Infusion, starts_at: dt.datetime, hold: dt.timedelta) -> Infusion:
    return Infusion(
        patient_id=first.patient_id,
        regimen_id=first.regimen_id,
        cycle_number=98,
        day_number=1,
        planned_date=first.planned_date,
        cycle_planned_on=first.planned_date,
        center_id=first.center_id,
        chair_id=first.chair_id,
        starts_at=starts_at,
        ends_at=starts_at + hold - dt.timedelta(minutes=15),
        occupied_until=starts_at + hold,
        planned_grams=10,
        planned_vials=[],
        planned_minutes=60,
    )


def test_no_booking_holds_a_chair_a_day_or_more(db_session, clinic, settings):
    # What bounds the chair guard's search in time (and the occupancy queries): a chair held
    # 24 hours is refused by the database itself, on both databases.
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(),
        settings,
        now=at(dt.date(2026, 10, 1)),
    )
    first = infusions_of(db_session, clinic.patient.id)[0]
    far = first.starts_at + dt.timedelta(days=200)
    db_session.add(_raw_booking(first, far, dt.timedelta(hours=24)))
    with (
        pytest.raises(sa.exc.IntegrityError, match="chair_hold_under_a_day"),
        db_session.begin_nested(),
    ):
        db_session.flush()


def test_the_bounded_guard_still_sees_a_booking_that_began_almost_a_day_before(
    db_session, clinic, settings
):
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(),
        settings,
        now=at(dt.date(2026, 10, 1)),
    )
    first = infusions_of(db_session, clinic.patient.id)[0]
    # A (late-running) hold of 23 h 50 min from a day with no other booking on the chair,
    # then a booking 23 hours after its start, inside it: refused.
    far = first.starts_at + dt.timedelta(days=200)
    db_session.add(_raw_booking(first, far, dt.timedelta(hours=23, minutes=50)))
    db_session.flush()
    clash = _raw_booking(first, far + dt.timedelta(hours=23), dt.timedelta(minutes=30))
    clash.cycle_number = 97
    db_session.add(clash)
    with pytest.raises(sa.exc.DatabaseError, match="chair"), db_session.begin_nested():
        db_session.flush()


def test_a_day_already_under_way_is_not_booked_twice(db_session, clinic, settings):
    monday = dt.date(2026, 10, 5)
    regimen_service.set_regimen(
        db_session, clinic.doctor, clinic.patient.id, regimen_input(), settings, now=at(monday, 7)
    )
    # Later that Monday (after the 09:00 start) the physician lowers the dose from today on.
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(dose_g_per_kg=1.5, based_on_version=1, reason="Lower"),
        settings,
        now=at(monday, 15),
    )
    on_monday = [
        i
        for i in infusions_of(db_session, clinic.patient.id)
        if i.planned_date == monday and i.status != InfusionStatus.CANCELLED
    ]
    assert len(on_monday) == 1 and on_monday[0].planned_grams == 82.0  # the old plan, under way
    tuesday = [
        i
        for i in infusions_of(db_session, clinic.patient.id)
        if i.planned_date == monday + dt.timedelta(days=1)
    ]
    # Cycle 1 began on Monday: it finishes as planned; the new dose starts with cycle 2.
    assert [i.planned_grams for i in tuesday] == [82.0]
    cycle_2 = [i for i in infusions_of(db_session, clinic.patient.id) if i.cycle_number == 2]
    assert {i.planned_grams for i in cycle_2 if i.status == InfusionStatus.SCHEDULED} == {62.0}


def test_a_closure_moves_the_infusions_booked_on_it(db_session, clinic, settings, make_user):
    from app.services import centers as center_service

    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(),
        settings,
        now=at(dt.date(2026, 10, 1)),
    )
    closed = dt.date(2026, 11, 2)  # day 1 of cycle 2
    before = {i.planned_date for i in infusions_of(db_session, clinic.patient.id)}
    assert closed in before
    admin = make_user("admin")
    _closure, totals = center_service.add_closure(
        db_session,
        Actor(label=admin.email, user_id=admin.id, role="admin"),
        clinic.center.id,
        center_service.ClosureInput(closed, "Staff training"),
        settings,
        now=at(dt.date(2026, 10, 1)),
    )
    assert totals["patients"] == 1
    active = [
        i
        for i in infusions_of(db_session, clinic.patient.id)
        if i.status == InfusionStatus.SCHEDULED
    ]
    assert closed not in {i.planned_date for i in active}
    cycle_2 = sorted(i.planned_date for i in active if i.cycle_number == 2)
    assert cycle_2 == [dt.date(2026, 11, 3), dt.date(2026, 11, 4)]  # shifted +1, kept together
    assert all(i.shift_days == 1 for i in active if i.cycle_number == 2)
    with pytest.raises(Conflict):
        center_service.add_closure(
            db_session,
            Actor(label=admin.email, user_id=admin.id, role="admin"),
            clinic.center.id,
            center_service.ClosureInput(closed, "again"),
            settings,
            now=at(dt.date(2026, 10, 1)),
        )


def test_the_horizon_rolls_forward_without_touching_what_is_booked(db_session, clinic, settings):
    from app.services import scheduling

    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(),
        settings,
        now=at(dt.date(2026, 10, 1)),
    )
    before = {(i.id, i.starts_at, i.sequence) for i in infusions_of(db_session, clinic.patient.id)}
    last = max(i.planned_date for i in infusions_of(db_session, clinic.patient.id))
    same_day = scheduling.extend_horizon(
        db_session, clinic.patient.id, settings, now=at(dt.date(2026, 10, 1))
    )
    assert same_day.created == []
    review_course(db_session, clinic, settings, dt.date(2026, 11, 27))
    later = scheduling.extend_horizon(
        db_session, clinic.patient.id, settings, now=at(dt.date(2026, 12, 1))
    )
    after = infusions_of(db_session, clinic.patient.id)
    assert before <= {(i.id, i.starts_at, i.sequence) for i in after}
    assert later.created and min(i.planned_date for i in later.created) > last
    again = scheduling.extend_horizon(
        db_session, clinic.patient.id, settings, now=at(dt.date(2026, 12, 1))
    )
    assert again.created == []


def test_the_horizon_job_never_recreates_what_a_nurse_cancelled(db_session, clinic, settings):
    from app.services import scheduling

    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(),
        settings,
        now=at(dt.date(2026, 10, 1)),
    )
    target = next(i for i in infusions_of(db_session, clinic.patient.id) if i.cycle_number == 2)
    infusion_service.set_status(
        db_session, clinic.nursing, target.id, InfusionStatus.CANCELLED, "Patient travelling"
    )
    count = len(infusions_of(db_session, clinic.patient.id))
    result = scheduling.extend_horizon(
        db_session, clinic.patient.id, settings, now=at(dt.date(2026, 10, 2))
    )
    assert result.created == []
    assert len(infusions_of(db_session, clinic.patient.id)) == count
    assert db_session.get(Infusion, target.id).status == InfusionStatus.CANCELLED


def test_a_new_cycle_soon_after_one_was_given_needs_an_override(db_session, clinic, settings):
    from app.services.integrity import TherapyRuleBroken

    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(),
        settings,
        now=at(dt.date(2026, 10, 1)),
    )
    first, second = infusions_of(db_session, clinic.patient.id)[:2]
    give(db_session, clinic.nursing, first, settings, lot="L1")
    give(db_session, clinic.nursing, second, settings, lot="L1")
    count = db_session.scalar(sa.select(sa.func.count()).select_from(Regimen))

    def restart(starts_on: dt.date, override: str | None = None):
        return regimen_service.set_regimen(
            db_session,
            clinic.doctor,
            clinic.patient.id,
            regimen_input(
                starts_on=starts_on,
                based_on_version=1,
                reason="restart",
                override_reason=override,
            ),
            settings,
            now=at(dt.date(2026, 10, 7)),
        )

    # A week after a full 2 g/kg cycle is a hard stop: two cycles' grams within half an interval.
    with pytest.raises(TherapyRuleBroken) as hard:
        restart(dt.date(2026, 10, 12), override="Severe flare; discussed with the patient")
    assert hard.value.rules == ("grams_in_window",) and not hard.value.overridable
    assert hard.value.field == "starts_on"
    # Three weeks after is sooner than the 4-week interval (less 3 days' tolerance): soft.
    with pytest.raises(TherapyRuleBroken) as soft:
        restart(dt.date(2026, 10, 26))
    assert soft.value.rules == ("cycle_interval",) and soft.value.overridable
    assert "21 days after cycle 1" in soft.value.message
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Regimen)) == count
    regimen, _ = restart(dt.date(2026, 10, 26), override="Severe flare; discussed with the patient")
    assert regimen.version == 2
    waived = [i for i in infusions_of(db_session, clinic.patient.id) if i.waived_rules]
    assert [(i.planned_date, i.waived_rules) for i in waived] == [
        (dt.date(2026, 10, 26), ["cycle_interval"])
    ]
    override = db_session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "integrity.override")
    )
    assert override.after["reason"] == "Severe flare; discussed with the patient"
