"""The stewardship ledger and the rule outcomes on a real database: hand-made histories whose
figures are worked out by hand here, the split adding up, and the clinic's ledger in the same
number of statements whatever the number of patients."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from app import clock
from app.domain.stewardship import CAUSES
from app.models import Infusion, Regimen, Suggestion
from app.services import stewardship, suggestions
from app.services.context import system_actor
from app.services.errors import InvalidInput
from tests.db.clinic_fixtures import (
    Clinic,
    at,
    booked_course,
    give,
    make_clinic,
    make_patient,
    review_course,
)

MONDAY = dt.date(2026, 10, 5)
D0 = dt.date(2026, 1, 5)


@pytest.fixture(autouse=True)
def _clock():
    yield
    clock.set_now(None)


def selects(sent: list[str]) -> list[str]:
    """The queries among the statements (not the test transaction's savepoints)."""
    return [statement for statement in sent if statement.lstrip().upper().startswith("SELECT")]


def assert_adds_up(ledger) -> None:
    assert sum(ledger.saved.values()) == pytest.approx(ledger.grams_saved, abs=1e-6)
    assert ledger.grams_saved == pytest.approx(ledger.baseline_grams - ledger.grams_given)


def test_a_course_dosed_on_adjusted_weight_saves_the_weight_basis_and_the_rounding(
    db_session, make_user, settings
):
    clinic = booked_course(db_session, make_user, settings, MONDAY)
    first_two = db_session.scalars(
        sa.select(Infusion)
        .where(Infusion.patient_id == clinic.patient.id, Infusion.cycle_number <= 2)
        .order_by(Infusion.planned_date)
    ).all()
    assert [i.planned_date for i in first_two] == [
        MONDAY,
        MONDAY + dt.timedelta(days=1),
        MONDAY + dt.timedelta(weeks=4),
        MONDAY + dt.timedelta(weeks=4, days=1),
    ]
    for infusion in first_two:
        give(db_session, clinic.nursing, infusion, settings)
    # By hand (DOMAIN.md's worked example): 100 kg, 175 cm man; Devine IBW 50 + 2.3 x
    # (175/2.54 - 60) kg; adjusted IBW + 0.4 x (100 - IBW) = 82.28 kg; 2 g/kg = 164.56 g per
    # cycle; a day's 82.28 g in Octagam vials is 30 + 30 + 20 + 2 = 82 g, so 164 g a cycle.
    ibw = 50 + 2.3 * (175 / 2.54 - 60)
    adjusted = ibw + 0.4 * (100 - ibw)
    regimen = db_session.scalars(
        sa.select(Regimen).where(Regimen.patient_id == clinic.patient.id)
    ).one()
    assert regimen.calculation["grams_per_cycle"] == pytest.approx(2 * adjusted)
    assert regimen.grams_per_cycle == 164

    _patient, ledger = stewardship.patient_ledger(
        db_session, clinic.patient.id, settings, MONDAY + dt.timedelta(weeks=4, days=1)
    )
    # Two cycles given, 28 days apart at a 4-week interval, and the day since cycle 2 began:
    # the baseline is 1 + 29/28 cycles of 2 g/kg x 100 kg = 200 g; every one of the expected
    # cycles (as many) saves 200 - 164.56 g on the weight basis and 0.56 g on the rounding;
    # the day that has run of the next cycle's interval is 164/28 g not given yet.
    cycles = 1 + 29 / 28
    assert ledger.cycles_given == 2 and ledger.baseline_cycles == pytest.approx(cycles)
    assert ledger.grams_given == pytest.approx(328)
    assert ledger.baseline_grams == pytest.approx(200 * cycles)
    assert ledger.saved["weight_basis"] == pytest.approx(cycles * (200 - 2 * adjusted))
    assert ledger.saved["vial_rounding"] == pytest.approx(cycles * (2 * adjusted - 164))
    assert ledger.saved["not_given"] == pytest.approx(164 / 28)
    for cause in ("interval_widening", "de_escalation", "weight_change", "stopping"):
        assert ledger.saved[cause] == pytest.approx(0, abs=1e-9), cause
    minutes = regimen.minutes_per_day
    assert ledger.chair_hours_given == pytest.approx(4 * minutes / 60)
    assert ledger.chair_hours_saved == pytest.approx((cycles - 2) * 2 * minutes / 60)
    assert_adds_up(ledger)


# --- hand-made histories: 80 kg on actual weight, whole vials, 2 days a cycle ----------------


def add_version(
    session, clinic: Clinic, version: int, starts_on: dt.date, dose: float, interval: int
) -> Regimen:
    """A regimen version on actual weight whose grams are whole vials (no rounding)."""
    grams_per_cycle = dose * 80
    regimen = Regimen(
        patient_id=clinic.patient.id,
        version=version,
        product="Octagam 10%",
        dose_g_per_kg=dose,
        days_per_cycle=2,
        interval_weeks=interval,
        weight_basis="actual",
        starts_on=starts_on,
        preferred_time=dt.time(9),
        center_id=clinic.center.id,
        weight_kg=80.0,
        height_cm=175.0,
        dosing_weight_kg=80.0,
        grams_per_day=grams_per_cycle / 2,
        grams_per_cycle=grams_per_cycle,
        minutes_per_day=180,
        calculation={"grams_per_cycle": grams_per_cycle},
        reason=f"version {version}",
    )
    session.add(regimen)
    session.flush()
    return regimen


def add_cycle(
    session, clinic: Clinic, regimen: Regimen, number: int, on: dt.date, grams: float | None = None
) -> None:
    """Both days of a cycle given (day 2 the day after), each its planned half unless told."""
    for day in (1, 2):
        planned = regimen.grams_per_cycle / 2
        session.add(
            Infusion(
                patient_id=clinic.patient.id,
                regimen_id=regimen.id,
                cycle_number=number,
                day_number=day,
                planned_date=on + dt.timedelta(days=day - 1),
                cycle_planned_on=on,
                center_id=clinic.center.id,
                status="given",
                planned_grams=planned,
                planned_vials=[[30.0, 1]],
                planned_minutes=180,
                given_grams=planned if grams is None else grams / 2,
                given_started_at=at(on + dt.timedelta(days=day - 1), 9),
                given_ended_at=at(on + dt.timedelta(days=day - 1), 12),
            )
        )
    session.flush()


@pytest.fixture
def clinic(db_session, make_user, settings) -> Clinic:
    made = make_clinic(db_session, make_user, settings)
    db_session.commit()
    return made


def ledger_of(db_session, clinic, settings, today: dt.date, **kw):
    return stewardship.patient_ledger(db_session, clinic.patient.id, settings, today, **kw)[1]


def test_a_dose_lowered_from_2_to_1_5_g_per_kg_saves_half_a_gram_per_kg_per_cycle(
    db_session, clinic, settings
):
    v1 = add_version(db_session, clinic, 1, D0, 2.0, 4)
    for n in range(3):
        add_cycle(db_session, clinic, v1, n + 1, D0 + dt.timedelta(weeks=4 * n))
    v2 = add_version(db_session, clinic, 2, D0 + dt.timedelta(weeks=12), 1.5, 4)
    add_cycle(db_session, clinic, v2, 4, D0 + dt.timedelta(weeks=12))
    add_cycle(db_session, clinic, v2, 5, D0 + dt.timedelta(weeks=16))
    db_session.commit()

    ledger = ledger_of(db_session, clinic, settings, D0 + dt.timedelta(weeks=16, days=1))
    # By hand: the baseline is 1 + 113/28 cycles (to day 2 of cycle 5) of 2 x 80 = 160 g.
    # Given 3 x 160 + 2 x 120 = 720 g. The two cycles at 1.5 g/kg save 0.5 x 80 = 40 g each.
    # The day since cycle 5 began is 1/28 of a cycle of 120 g not yet due: "not given".
    assert ledger.grams_given == pytest.approx(720)
    assert ledger.baseline_cycles == pytest.approx(1 + 113 / 28)
    assert ledger.saved["de_escalation"] == pytest.approx(2 * 40 + 40 / 28)
    assert ledger.saved["not_given"] == pytest.approx(120 / 28)
    for cause in (
        "interval_widening",
        "weight_change",
        "weight_basis",
        "vial_rounding",
        "stopping",
    ):
        assert ledger.saved[cause] == pytest.approx(0, abs=1e-9), cause
    assert_adds_up(ledger)
    # On cycle 5's first day the figures are whole: 5 x 160 - 720 = 80 g, all de-escalation.
    whole = ledger_of(db_session, clinic, settings, D0 + dt.timedelta(weeks=16))
    assert whole.grams_given == pytest.approx(660)  # day 2 of cycle 5 is after it
    assert whole.baseline_grams == pytest.approx(800)
    assert whole.saved["de_escalation"] == pytest.approx(80)
    assert whole.saved["not_given"] == pytest.approx(60)  # cycle 5's second day
    assert_adds_up(whole)


def test_an_interval_widened_from_4_to_6_weeks_saves_half_a_cycle_per_cycle(
    db_session, clinic, settings
):
    v1 = add_version(db_session, clinic, 1, D0, 2.0, 4)
    for n in range(3):
        add_cycle(db_session, clinic, v1, n + 1, D0 + dt.timedelta(weeks=4 * n))
    # Approved after cycle 3 (week 8): the first 6-week cycle comes 6 weeks after it.
    v2 = add_version(db_session, clinic, 2, D0 + dt.timedelta(weeks=14), 2.0, 6)
    add_cycle(db_session, clinic, v2, 4, D0 + dt.timedelta(weeks=14))
    add_cycle(db_session, clinic, v2, 5, D0 + dt.timedelta(weeks=20))
    db_session.commit()

    ledger = ledger_of(db_session, clinic, settings, D0 + dt.timedelta(weeks=20))
    # By hand: 140 days, 1 + 140/28 = 6 baseline cycles of 160 g = 960 g; given cycles 1-4
    # whole and day 1 of cycle 5: 4 x 160 + 80 = 720 g. Each 42-day stretch before a 6-week
    # cycle holds 1.5 baseline cycles against 1: widening 2 x 0.5 x 160 = 160 g; cycle 5's
    # second day (tomorrow) is 80 g "not given" yet.
    assert ledger.baseline_grams == pytest.approx(960)
    assert ledger.grams_given == pytest.approx(720)
    assert ledger.saved["interval_widening"] == pytest.approx(160)
    assert ledger.saved["not_given"] == pytest.approx(80)
    assert ledger.saved["de_escalation"] == pytest.approx(0, abs=1e-9)
    assert_adds_up(ledger)
    # Four weeks on, no cycle is due yet (the next is at week 26): 28 more days are 1 baseline
    # cycle against 28/42 of a 6-week one: widening gains 160/3 g, and the 2/3 cycle that has
    # run is "not given" until the cycle comes due.
    add_cycle(db_session, clinic, v2, 6, D0 + dt.timedelta(weeks=30))  # after as_of: not counted
    later = ledger_of(db_session, clinic, settings, D0 + dt.timedelta(weeks=24))
    assert later.saved["interval_widening"] == pytest.approx(160 + 160 / 3)
    assert later.saved["not_given"] == pytest.approx(160 * 2 / 3)  # cycle 5 now whole
    assert_adds_up(later)


def test_a_course_stopped_by_a_review_saves_the_cycles_due_after_it(db_session, clinic, settings):
    v1 = add_version(db_session, clinic, 1, D0, 2.0, 4)
    for n in range(3):
        add_cycle(db_session, clinic, v1, n + 1, D0 + dt.timedelta(weeks=4 * n))
    db_session.commit()
    review_course(db_session, clinic, settings, D0 + dt.timedelta(weeks=10), decision="stop")

    ledger = ledger_of(db_session, clinic, settings, D0 + dt.timedelta(weeks=16))
    # By hand: 112 days, 1 + 4 = 5 baseline cycles = 800 g; given 3 x 160 = 480 g. The stop
    # (week 10) came before the next cycle was due (week 12): from the last cycle given
    # (week 8) to today is 56 days = 2 cycles of 160 g saved by stopping.
    assert ledger.baseline_grams == pytest.approx(800)
    assert ledger.grams_given == pytest.approx(480)
    assert ledger.saved["stopping"] == pytest.approx(320)
    assert ledger.saved["not_given"] == pytest.approx(0, abs=1e-9)
    assert ledger.chair_hours_saved == pytest.approx(2 * 2 * 3)  # 2 cycles of 2 x 180 min
    assert_adds_up(ledger)
    # Before the review, the same weeks were only "not given".
    before = ledger_of(db_session, clinic, settings, D0 + dt.timedelta(weeks=9))
    assert before.saved["stopping"] == 0 and before.saved["not_given"] == pytest.approx(160 / 4)


def test_a_missed_cycle_a_partial_one_and_a_new_weight_each_land_in_their_cause(
    db_session, clinic, settings
):
    v1 = add_version(db_session, clinic, 1, D0, 2.0, 4)
    add_cycle(db_session, clinic, v1, 1, D0)
    add_cycle(db_session, clinic, v1, 2, D0 + dt.timedelta(weeks=4), grams=100)  # stopped early
    # Cycle 3 (week 8) was missed; version 2 was set at 75 kg for week 12.
    v2 = add_version(db_session, clinic, 2, D0 + dt.timedelta(weeks=12), 2.0, 4)
    v2.weight_kg = v2.dosing_weight_kg = 75.0
    v2.grams_per_cycle = 150.0
    add_cycle(db_session, clinic, v2, 4, D0 + dt.timedelta(weeks=12))
    db_session.commit()

    ledger = ledger_of(db_session, clinic, settings, D0 + dt.timedelta(weeks=12))
    # By hand: 4 baseline cycles = 640 g; given 160 + 100 + 75 (day 1 of cycle 4) = 335 g.
    # The 56-day stretch before cycle 4 holds 2 cycles of version 2: one given, one missed
    # (150 g not given); both at 75 kg: 2 x 2 x 5 = 20 g weight change. Cycle 2 gave 60 g
    # less than planned, cycle 4 so far 75 g less.
    assert ledger.grams_given == pytest.approx(335)
    assert ledger.saved["weight_change"] == pytest.approx(20)
    assert ledger.saved["not_given"] == pytest.approx(150 + 60 + 75)
    assert ledger.grams_saved == pytest.approx(640 - 335)
    assert_adds_up(ledger)


def test_a_date_range_starts_at_the_first_cycle_given_in_it(db_session, clinic, settings):
    v1 = add_version(db_session, clinic, 1, D0, 2.0, 4)
    for n in range(4):
        add_cycle(db_session, clinic, v1, n + 1, D0 + dt.timedelta(weeks=4 * n))
    db_session.commit()
    since, until = D0 + dt.timedelta(weeks=3), D0 + dt.timedelta(weeks=8, days=1)
    ledger = ledger_of(db_session, clinic, settings, dt.date(2026, 12, 1), since=since, until=until)
    assert ledger.first_cycle_on == D0 + dt.timedelta(weeks=4) and ledger.as_of == until
    assert ledger.cycles_given == 2 and ledger.grams_given == pytest.approx(320)
    with pytest.raises(InvalidInput) as refused:
        ledger_of(db_session, clinic, settings, dt.date(2026, 12, 1), since=until, until=since)
    assert refused.value.field == "until"


# --- the clinic's ledger --------------------------------------------------------------------


def add_patients(db_session, clinic: Clinic, settings, count: int, start: int) -> None:
    for k in range(start, start + count):
        patient = make_patient(db_session, clinic.nursing, clinic.center, settings, mrn=f"S-{k}")
        other = Clinic(clinic.center, clinic.physician, clinic.nurse, patient)
        patient.treating_physician_id = clinic.physician.id if k % 2 else None
        v1 = add_version(db_session, other, 1, D0, 2.0, 4)
        for n in range(3):
            # S-1's cycle 2 was stopped early (100 g of 160), a day later than planned.
            late = k == 1 and n == 1
            on = D0 + dt.timedelta(weeks=4 * n, days=1 if late else 0)
            add_cycle(db_session, other, v1, n + 1, on, grams=100 if late else None)
        v2 = add_version(db_session, other, 2, D0 + dt.timedelta(weeks=12), 1.5, 4)
        add_cycle(db_session, other, v2, 4, D0 + dt.timedelta(weeks=12))
    db_session.commit()


def test_the_clinic_ledger_adds_the_patients_up_in_a_fixed_number_of_statements(
    db_session, clinic, settings, count_queries
):
    today = D0 + dt.timedelta(weeks=12, days=1)
    add_patients(db_session, clinic, settings, 2, 0)
    with count_queries() as few:
        small = stewardship.clinic_ledger(db_session, stewardship.ClinicFilter(), settings, today)
    add_patients(db_session, clinic, settings, 5, 2)
    with count_queries() as many:
        large = stewardship.clinic_ledger(db_session, stewardship.ClinicFilter(), settings, today)
    assert len(small.lines) == 2 and len(large.lines) == 7
    assert len(selects(few)) == len(selects(many)) == 4
    # Each: 4 cycles, the last at 1.5 g/kg: 3 x 160 + 120 = 600 g given; 40 g de-escalation on
    # cycle 4, and 40/28 g on the day since it began.
    # The database's sums per cycle and version give each patient's own ledger (summed here
    # from the days).
    for line in large.lines:
        own = stewardship.patient_ledger(db_session, line.patient_id, settings, today)[1]
        assert stewardship.figures(line.ledger, "") == stewardship.figures(own, "")
    assert large.total.patients == 7
    assert large.total.grams_given == pytest.approx(7 * 600 - 60)
    assert large.total.saved["de_escalation"] == pytest.approx(7 * (40 + 40 / 28))
    assert sum(large.total.saved[c] for c in CAUSES) == pytest.approx(large.total.grams_saved)

    mine = stewardship.ClinicFilter(physician_id=clinic.physician.id, center_id=clinic.center.id)
    db_session.expire_all()
    with count_queries() as filtered:
        theirs = stewardship.clinic_ledger(db_session, mine, settings, today)
    assert [line.mrn for line in theirs.lines] == ["S-1", "S-3", "S-5"]
    assert len(selects(filtered)) == 6  # the center and the physician looked up first
    with pytest.raises(InvalidInput) as refused:
        stewardship.clinic_ledger(
            db_session, stewardship.ClinicFilter(physician_id=clinic.nurse.id), settings, today
        )
    assert refused.value.field == "physician"
    with pytest.raises(InvalidInput) as refused:
        stewardship.clinic_ledger(
            db_session, stewardship.ClinicFilter(center_id=999999), settings, today
        )
    assert refused.value.field == "center"


# --- rule outcomes --------------------------------------------------------------------------


def suggestion(
    db_session, clinic: Clinic, key: str, rule: str, status: str, reason: str | None = None, **kw
) -> Suggestion:
    made = Suggestion(
        patient_id=clinic.patient.id,
        dedupe_key=key,
        kind=kw.pop("kind", "deescalate_ivig"),
        rule_id=rule,
        rule_version=kw.pop("version", 1),
        indicator="info",
        summary=f"{rule} {key}",
        detail="",
        proposal=kw.pop("proposal", {"change": "dose", "from": 2.0, "to": 1.5}),
        facts={},
        evidence=[],
        status=status,
        decision_reason=reason,
        **kw,
    )
    db_session.add(made)
    db_session.flush()
    return made


def test_rule_outcomes_count_each_decision_and_the_rejection_reasons(
    db_session, clinic, settings, count_queries
):
    v1 = add_version(db_session, clinic, 1, D0, 2.0, 4)
    as_proposed = add_version(db_session, clinic, 2, D0, 1.5, 4)
    other_value = add_version(db_session, clinic, 3, D0, 1.0, 4)
    suggestion(db_session, clinic, "a", "dose_step", "approved", applied_regimen_id=as_proposed.id)
    suggestion(
        db_session,
        clinic,
        "b",
        "dose_step",
        "approved",
        "Lower still",
        applied_regimen_id=other_value.id,
    )
    for key in ("c", "d", "e", "f"):
        suggestion(db_session, clinic, key, "dose_step", "pending")
    suggestion(db_session, clinic, "g", "dose_step", "expired", "No longer indicated: changed")
    suggestion(db_session, clinic, "h", "dose_step", "approved", version=2)
    suggestion(
        db_session, clinic, "i", "order-sign.dose", "approved", "EHR accepted", kind="order_check"
    )
    suggestion(
        db_session,
        clinic,
        "j",
        "order-sign.dose",
        "rejected",
        "Patient weighed today",
        kind="order_check",
    )
    assert v1.version == 1
    db_session.commit()
    # Through the services: two rejections with one reason, one with another, and housekeeping
    # expiring the fourth pending one for want of a decision.
    pending = db_session.scalars(
        sa.select(Suggestion).where(Suggestion.status == "pending").order_by(Suggestion.id)
    ).all()
    for item, why in zip(pending[:3], ("Too early", "Too early", "Flare last month"), strict=True):
        suggestions.reject(db_session, clinic.doctor, item.id, why)
    late = pending[3]
    late.created_at = at(D0)
    db_session.commit()
    assert (
        suggestions.expire_undecided(
            db_session, settings, at(D0 + dt.timedelta(days=400)), system_actor("test")
        )
        == 1
    )

    with count_queries() as sent:
        outcomes = stewardship.rule_outcomes(db_session)
    assert len(selects(sent)) == 3
    by_rule = {(o.rule_id, o.rule_version): o for o in outcomes}
    assert set(by_rule) == {("dose_step", 1), ("dose_step", 2), ("order-sign.dose", 1)}
    step = by_rule["dose_step", 1]
    assert dict(step.counts) == {
        "approved": 1,
        "changed": 1,
        "rejected": 3,
        "expired_undecided": 1,
        "expired": 1,
        "superseded": 0,
        "pending": 0,
    }
    assert step.reasons == (("Too early", 2), ("Flare last month", 1))
    assert step.approved_percent == pytest.approx(40)
    assert by_rule["dose_step", 2].counts["approved"] == 1
    ehr = by_rule["order-sign.dose", 1]
    assert ehr.kinds == ("order_check",)
    assert ehr.counts["approved"] == 1 and ehr.counts["rejected"] == 1
    assert ehr.reasons == (("Patient weighed today", 1),)
