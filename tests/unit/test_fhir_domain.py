"""The FHIR mappings' laws: taper steps dated exactly as the plan dates them, units that
convert both ways, statuses mapped for every value we store."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import fhir, taper
from app.models.infusion import InfusionStatus

steps = st.lists(
    st.builds(
        taper.StepPlan,
        mg_per_day=st.sampled_from([60.0, 40.0, 20.0, 12.5, 7.5, 5.0, 2.0, 1.0]),
        min_days=st.integers(1, 60),
        alternate_day_mg=st.none() | st.sampled_from([0.0, 2.5, 5.0]),
    ),
    min_size=1,
    max_size=12,
)


def as_rows(dated: list[taper.DatedStep]) -> list[fhir.StepRow]:
    """A new plan as create_plan stores it: the first step active from its day, the rest
    planned on their earliest days."""
    return [
        fhir.StepRow(
            position=d.index,
            mg_per_day=d.step.mg_per_day,
            min_days=d.step.min_days,
            alternate_day_mg=d.step.alternate_day_mg,
            requires_cortisol=d.step.requires_cortisol,
            status="active" if d.index == 0 else "planned",
            earliest_on=d.starts_on,
            started_on=d.starts_on if d.index == 0 else None,
            ended_on=None,
        )
        for d in dated
    ]


@given(steps, st.booleans(), st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1)))
def test_step_bounds_reproduce_the_plans_dates(plan, with_stop, starts_on):
    plan = [*plan, taper.stop_step(7)] if with_stop else plan
    dated = taper.date_steps(plan, starts_on)
    bounds = fhir.step_bounds(list(reversed(as_rows(dated))))
    assert [(b.sequence, b.first_day, b.last_day) for b in bounds] == [
        (d.index + 1, d.starts_on, d.ends_on - dt.timedelta(days=1)) for d in dated
    ]
    # No gap, no overlap: each step starts the day after the one before ends.
    for before, after in itertools.pairwise(bounds):
        assert after.first_day == before.last_day + dt.timedelta(days=1)


def test_skipped_and_cancelled_steps_are_left_out_and_an_ended_step_ends_the_day_before():
    day = dt.date(2026, 1, 5)
    rows = [
        fhir.StepRow(0, 20, 14, None, False, "completed", day, day, day + dt.timedelta(10)),
        fhir.StepRow(1, 15, 14, None, False, "skipped", day, None, None),
        fhir.StepRow(2, 10, 14, None, False, "cancelled", day, None, None),
    ]
    (only,) = fhir.step_bounds(rows)
    assert (only.first_day, only.last_day) == (day, day + dt.timedelta(days=9))


@pytest.mark.parametrize(
    ("test", "value", "unit", "to", "expected"),
    [
        ("creatinine", 1.0, "mg/dL", "umol/L", 88.4),
        ("creatinine", 0.1, "mmol/L", "umol/L", 100.0),
        ("hemoglobin", 12.5, "g/dL", "g/L", 125.0),
        ("ck", 2.0, "ukat/L", "U/L", 120.0),
        ("ck", 100.0, "[IU]/L", "U/L", 100.0),
        ("egfr", 70.0, "mL/min/{1.73_m2}", "mL/min/{1.73_m2}", 70.0),
    ],
)
def test_units_convert(test, value, unit, to, expected):
    assert fhir.convert(test, value, unit, to) == pytest.approx(expected)
    assert fhir.convert(test, expected, to, unit) == pytest.approx(value)


def test_units_that_do_not_convert_say_none():
    assert fhir.convert("creatinine", 1.0, "g/L", "umol/L") is None
    assert fhir.convert("egfr", 70.0, "mL/min", "mL/min/{1.73_m2}") is None
    assert fhir.convert("glucose", 5.0, "mmol/L", "mmol/L") is None


def test_the_units_we_store_have_ucum_codes():
    assert fhir.ucum_code("µmol/L") == "umol/L"
    assert fhir.ucum_code("μmol/L") == "umol/L"
    assert fhir.ucum_code("mL/min/1.73 m²") == "mL/min/{1.73_m2}"
    assert fhir.ucum_code("g/L") == "g/L"
    assert fhir.ucum_code("furlongs") is None


def test_every_infusion_status_has_an_appointment_status():
    assert set(fhir.APPOINTMENT_STATUS) == {s.value for s in InfusionStatus}
    assert set(fhir.ADMINISTRATION_STATUS) == {"given", "partial"}


def test_every_loinc_code_names_one_test():
    codes = [c for lab in fhir.LAB_CODES.values() for c in (lab.loinc, *lab.also)]
    assert len(codes) == len(set(codes))
    assert all(fhir.lab_of_loinc(c) is not None for c in codes)
    assert fhir.lab_of_loinc("2160-0") == "creatinine"


@pytest.mark.parametrize(
    ("grade", "severity", "outcome", "resolved", "code"),
    [
        (1, "mild", None, False, "ongoing"),
        (2, "moderate", "improving", False, "recovering"),
        (3, "severe", "ongoing", True, "resolved"),
        (5, "severe", "resolved", True, "fatal"),
    ],
)
def test_adverse_event_severity_and_outcome(grade, severity, outcome, resolved, code):
    assert fhir.ae_severity(grade) == severity
    assert fhir.ae_outcome(grade, outcome, resolved) == code
