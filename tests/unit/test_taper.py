"""Steroid tapers: worked banded taper, tablets, equivalence, validation, dates and properties."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
import pickle
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.taper import (
    Band,
    DatedStep,
    StepPlan,
    TaperRejected,
    TaperRules,
    banded_plan,
    cortisol_problem,
    cumulative_prednisone_mg,
    custom_plan,
    daily_doses,
    date_steps,
    fewest_tablets,
    fixed_plan,
    percent_plan,
    to_prednisone_mg,
    validate_plan,
)

# Numbers from docs/DOMAIN.md "Steroid tapers"; the domain module never reads them itself.
STRENGTHS = {
    "prednisone": (1.0, 2.5, 5.0, 10.0, 20.0, 50.0),
    "prednisolone": (1.0, 5.0, 25.0),
    "methylprednisolone": (2.0, 4.0, 8.0, 16.0, 32.0),
    "dexamethasone": (0.5, 0.75, 1.0, 1.5, 2.0, 4.0, 6.0),
    "hydrocortisone": (5.0, 10.0, 20.0),
}
EQUIVALENCE = {
    "prednisone": 1.0,
    "prednisolone": 1.0,
    "methylprednisolone": 1.25,
    "dexamethasone": 20 / 3,
    "hydrocortisone": 0.25,
}
RULES = TaperRules(
    bands=(
        Band(above_mg=40, decrement_mg=10, step_days=14),
        Band(above_mg=20, decrement_mg=5, step_days=14),
        Band(above_mg=10, decrement_mg=2.5, step_days=14),
        Band(above_mg=5, decrement_mg=1, step_days=28),
        Band(above_mg=0, decrement_mg=1, step_days=28),
    ),
    floor_mg=7.5,
    below_floor_min_step_days=28,
    below_floor_max_decrement_mg=1.0,
    equivalence=EQUIVALENCE,
    tablet_strengths_mg=STRENGTHS,
    max_start_mg=100,
)
DRUGS = sorted(STRENGTHS)
PREDNISONE = STRENGTHS["prednisone"]
DAY = dt.date(2025, 3, 3)

FAST = settings(max_examples=150, deadline=None, database=None)


def doses(steps: list[StepPlan]) -> list[float]:
    return [step.mg_per_day for step in steps]


def codes(problems: list) -> list[tuple[str, str]]:
    return [(p.field, p.code) for p in problems]


# --- worked banded taper ---------------------------------------------------------------------


def test_60_mg_prednisone_banded_taper_follows_the_bands_to_a_cortisol_checked_stop():
    steps = banded_plan("prednisone", 60, RULES, start_days=28)

    assert doses(steps) == [
        60, 50, 40, 35, 30, 25, 20, 17.5, 15, 12.5, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
    ]  # fmt: skip
    assert [s.min_days for s in steps] == [28] + [14] * 9 + [28] * 10 + [1]
    # Doses at or below the 7.5 mg floor are held at least 28 days and step at most 1 mg.
    below = [s for s in steps[:-1] if s.mg_per_day <= RULES.floor_mg]
    assert below and all(s.min_days >= 28 for s in below)
    assert steps[-1] == StepPlan(mg_per_day=0.0, min_days=1, requires_cortisol=True)
    assert not any(s.requires_cortisol for s in steps[:-1])
    assert all(fewest_tablets(s.mg_per_day, PREDNISONE) is not None for s in steps)
    assert validate_plan("prednisone", steps, RULES) == []


def test_a_dose_exactly_on_a_band_edge_uses_the_band_below_it():
    # 40 mg is not "above 40", so it steps by 5 mg, not 10 mg.
    assert doses(banded_plan("prednisone", 40, RULES, 14))[:2] == [40, 35]


def test_dexamethasone_band_edges_are_exact_despite_a_twenty_thirds_equivalence():
    # 6 mg dexamethasone is exactly 40 mg prednisone: the 20-40 band (-5 mg = -0.75 mg dex).
    # (A cap that the 0.5 mg tablet can meet on alternate days lets the plan reach the stop.)
    rules = dataclasses.replace(RULES, below_floor_max_decrement_mg=2)
    steps = banded_plan("dexamethasone", 6, rules, 14)
    assert doses(steps)[:2] == [6, 5.25]


def test_hydrocortisone_below_the_floor_goes_by_alternate_days_when_no_daily_step_fits_the_cap():
    # 30 mg hydrocortisone = 7.5 mg prednisone; the 1 mg cap is 4 mg hydrocortisone but the
    # smallest tablet step is 5 mg (1.25 mg prednisone): 30/25 on alternate days is 0.625 mg.
    steps = banded_plan("hydrocortisone", 30, RULES, 28)
    assert [(s.mg_per_day, s.alternate_day_mg) for s in steps] == [
        (30, None),
        (30, 25),
        (25, None),
        (25, 20),
        (20, None),
        (20, 15),
        (15, None),
        (15, 10),
        (10, None),
        (10, 5),
        (5, None),
        (5, 0),
        (0, None),
    ]
    assert steps[-1].requires_cortisol and validate_plan("hydrocortisone", steps, RULES) == []


def test_methylprednisolone_below_the_floor_says_the_tablets_cannot_make_the_step():
    # Defect: 48 mg banded ended 10 -> 8 -> 6 -> 4 -> 2 -> 0 mg, 2.5 mg prednisone-equivalent
    # drops at and below the 7.5 mg floor where the rules allow 1 mg.
    with pytest.raises(TaperRejected) as excinfo:
        banded_plan("methylprednisolone", 48, RULES, 28)
    [problem] = excinfo.value.problems
    assert (problem.field, problem.code) == ("drug", "floor_step_not_makeable")
    assert "cannot lower 6 mg (7.5 mg prednisone-equivalent) by at most 1 mg" in problem.message
    assert "oral solution" in problem.message and "custom plan" in problem.message


def test_a_stop_from_above_the_floor_needs_a_cortisol_check_too():
    # House in order: the domain said no and the service forced yes; the product asks for a
    # morning cortisol before every stop (a physician may override with a reason).
    steps = fixed_plan("prednisone", 20, 10, 7, RULES, start_days=7)
    assert doses(steps) == [20, 10, 0]
    assert steps[-1] == StepPlan(mg_per_day=0.0, min_days=1, requires_cortisol=True)
    assert custom_plan([(20, 7, None), (10, 7, None), (0, 1, None)])[-1] == steps[-1]
    assert not custom_plan([(20, 7, None), (10, 7, None)])[-1].requires_cortisol
    # A last step of 0 mg on alternate days is the stop too (it cannot be skipped).
    assert custom_plan([(10, 7, None), (0, 7, 5.0)])[-1] == StepPlan(0, 7, 5.0, True)


@pytest.mark.parametrize(
    ("value", "overridden", "code"),
    [
        (None, False, "cortisol_needed"),
        (None, True, None),
        (320.0, False, None),
        (300.0, False, None),
        (299.0, False, "cortisol_recheck"),
        (150.0, False, "cortisol_recheck"),
        (149.0, False, "cortisol_low"),
        (149.0, True, None),
        (-1.0, True, "out_of_range"),
        (5001.0, False, "out_of_range"),
    ],
)
def test_a_morning_cortisol_decides_the_stop(value, overridden, code):
    problem = cortisol_problem(value, overridden=overridden, stop_nmol_l=300, recheck_nmol_l=150)
    assert (problem.code if problem else None) == code
    if problem:
        assert problem.field == "cortisol_nmol_l"


def test_start_dose_at_or_below_the_floor_is_held_for_the_floor_minimum():
    steps = banded_plan("prednisone", 5, RULES, start_days=7)
    assert steps[0] == StepPlan(mg_per_day=5.0, min_days=28)


def test_fixed_plan_slows_down_at_the_floor():
    steps = fixed_plan("prednisone", 20, 2.5, 7, RULES, start_days=14)
    assert doses(steps) == [20, 17.5, 15, 12.5, 10, 7.5, 6.5, 5.5, 4.5, 3.5, 2.5, 2, 1, 0]
    assert [s.min_days for s in steps] == [14, 7, 7, 7, 7] + [28] * 8 + [1]


def test_percent_plan_steps_by_a_share_of_the_current_dose():
    steps = percent_plan("prednisone", 40, 25, 7, RULES, start_days=14)
    # 40 -> 30 -> 22.5 -> 16.9 ~ 17 -> 12.75 ~ 13 -> 9.75 ~ 10 -> 7.5 (floor: -1 mg steps)
    assert doses(steps) == [40, 30, 22.5, 17, 13, 10, 7.5, 6.5, 5.5, 4.5, 3.5, 2.5, 2, 1, 0]


def test_percent_plan_steps_at_least_one_smallest_tablet():
    # 10% of 3 mg is 0.3 mg; the smallest prednisone tablet is 1 mg.
    assert doses(percent_plan("prednisone", 3, 10, 7, RULES, 7)) == [3, 2, 1, 0]


# --- tablets and equivalence -----------------------------------------------------------------


def test_fewest_tablets_worked_examples():
    assert fewest_tablets(17.5, PREDNISONE) == ((10, 1), (5, 1), (2.5, 1))
    assert fewest_tablets(0, PREDNISONE) == ()
    assert fewest_tablets(0.3, PREDNISONE) is None
    assert fewest_tablets(1.5, PREDNISONE) is None
    # Greedy would take 4 + 2 + 0.5 + ... ; the fewest for 1.25 mg dex is 0.75 + 0.5.
    assert fewest_tablets(1.25, STRENGTHS["dexamethasone"]) == ((0.75, 1), (0.5, 1))
    # Greedy 6 = 4 + 2 would tie; 12 = 6 + 6 beats 6 + 4 + 2.
    assert fewest_tablets(12, STRENGTHS["dexamethasone"]) == ((6, 2),)


def test_fewest_tablets_beats_greedy():
    # Greedy on (1, 3, 4) makes 6 as 4 + 1 + 1; the fewest is 3 + 3.
    assert fewest_tablets(6, (1, 3, 4)) == ((3, 2),)


def test_fewest_tablets_rejects_bad_input():
    with pytest.raises(ValueError, match="dose_mg"):
        fewest_tablets(-1, PREDNISONE)
    with pytest.raises(ValueError, match="dose_mg"):
        fewest_tablets(math.nan, PREDNISONE)
    with pytest.raises(ValueError, match="strength"):
        fewest_tablets(5, ())
    with pytest.raises(ValueError, match="strength"):
        fewest_tablets(5, (0, 5))


def test_equivalence():
    assert to_prednisone_mg("methylprednisolone", 4, EQUIVALENCE) == 5
    assert to_prednisone_mg("hydrocortisone", 20, EQUIVALENCE) == 5
    assert to_prednisone_mg("dexamethasone", 0.75, EQUIVALENCE) == 5
    assert to_prednisone_mg("prednisolone", 5, EQUIVALENCE) == 5
    with pytest.raises(ValueError, match="cortisone acetate"):
        to_prednisone_mg("cortisone acetate", 25, EQUIVALENCE)


# --- rejected parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: banded_plan("budesonide", 10, RULES, 14), [("drug", "unknown_drug")]),
        (lambda: banded_plan("prednisone", 0, RULES, 14), [("start_mg", "start_not_positive")]),
        (lambda: banded_plan("prednisone", math.nan, RULES, 14), [("start_mg", "not_finite")]),
        (
            lambda: banded_plan("prednisone", 120, RULES, 14),
            [("start_mg", "start_above_maximum")],
        ),
        (lambda: banded_plan("prednisone", 0.3, RULES, 14), [("start_mg", "not_makeable")]),
        (lambda: banded_plan("prednisone", 60, RULES, 0), [("start_days", "days_out_of_range")]),
        (lambda: banded_plan("prednisone", 60, RULES, 366), [("start_days", "days_out_of_range")]),
        (
            lambda: fixed_plan("prednisone", 60, 0, 7, RULES, 14),
            [("decrement_mg", "decrement_not_positive")],
        ),
        (
            lambda: fixed_plan("prednisone", 60, 70, 7, RULES, 14),
            [("decrement_mg", "decrement_above_start")],
        ),
        (
            lambda: fixed_plan("prednisone", 60, 5, 0, RULES, 14),
            [("step_days", "days_out_of_range")],
        ),
        (
            lambda: percent_plan("prednisone", 60, 0, 7, RULES, 14),
            [("percent", "percent_out_of_range")],
        ),
        (
            lambda: percent_plan("prednisone", 60, 100, 7, RULES, 14),
            [("percent", "percent_out_of_range")],
        ),
        (
            lambda: percent_plan("prednisone", 60, 10, 7.5, RULES, 14),
            [("step_days", "not_integer")],
        ),
        (
            lambda: fixed_plan("budesonide", -5, -1, 0, RULES, 0),
            [
                ("drug", "unknown_drug"),
                ("start_mg", "start_not_positive"),
                ("decrement_mg", "decrement_not_positive"),
                ("step_days", "days_out_of_range"),
                ("start_days", "days_out_of_range"),
            ],
        ),
    ],
)
def test_plans_reject_bad_parameters_naming_the_field(call, expected):
    with pytest.raises(TaperRejected) as caught:
        call()
    assert codes(list(caught.value.problems)) == expected
    for problem in caught.value.problems:
        assert problem.message.startswith(f"{problem.field}: ")


def test_start_above_maximum_names_the_limit_in_prednisone_equivalent():
    with pytest.raises(TaperRejected) as caught:
        banded_plan("dexamethasone", 16, RULES, 14)
    (problem,) = caught.value.problems
    assert "100 mg prednisone-equivalent" in problem.message
    assert "106.667 mg prednisone-equivalent" in problem.message


def test_taper_rejected_survives_pickling():
    with pytest.raises(TaperRejected) as caught:
        banded_plan("budesonide", 10, RULES, 14)
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own object
    assert copy.problems == caught.value.problems


# --- validate_plan ---------------------------------------------------------------------------

GOOD = [StepPlan(20, 14), StepPlan(10, 14), StepPlan(5, 28), StepPlan(0, 1, requires_cortisol=True)]


def test_a_good_custom_plan_has_no_problems():
    assert validate_plan("prednisone", GOOD, RULES) == []


def test_validate_flags_an_unknown_drug():
    assert codes(validate_plan("budesonide", GOOD, RULES)) == [("drug", "unknown_drug")]


def test_validate_flags_a_start_above_the_maximum_and_names_the_limit():
    problems = validate_plan("prednisone", [StepPlan(120, 14), *GOOD], RULES)
    assert codes(problems) == [("start_mg", "start_above_maximum")]
    assert "maximum of 100 mg prednisone-equivalent" in problems[0].message


def test_validate_flags_a_negative_dose():
    steps = [StepPlan(20, 14), StepPlan(-5, 14), StepPlan(0, 1)]
    assert codes(validate_plan("prednisone", steps, RULES)) == [
        ("steps[1].mg_per_day", "dose_negative")
    ]


def test_validate_flags_a_nan_dose():
    steps = [StepPlan(20, 14), StepPlan(math.nan, 14), StepPlan(0, 1)]
    assert codes(validate_plan("prednisone", steps, RULES)) == [
        ("steps[1].mg_per_day", "not_finite")
    ]


def test_validate_flags_an_absurd_dose_later_in_the_plan():
    steps = [StepPlan(20, 14), StepPlan(1e9, 14), StepPlan(0, 1)]
    assert ("steps[1].mg_per_day", "dose_above_maximum") in codes(
        validate_plan("prednisone", steps, RULES)
    )


def test_validate_flags_a_dose_tablets_cannot_make():
    steps = [StepPlan(20, 14), StepPlan(0.3, 14), StepPlan(0, 1)]
    problems = validate_plan("prednisone", steps, RULES)
    assert codes(problems) == [("steps[1].mg_per_day", "not_makeable")]
    assert "cannot be made" in problems[0].message
    assert "1, 2.5, 5, 10, 20, 50 mg" in problems[0].message


def test_validate_flags_a_dose_increase():
    steps = [StepPlan(20, 14), StepPlan(25, 14), StepPlan(0, 1)]
    assert codes(validate_plan("prednisone", steps, RULES)) == [
        ("steps[1].mg_per_day", "dose_increases")
    ]


def test_validate_compares_daily_averages_for_alternate_day_steps():
    # 20/0 averages 10 mg a day: a decrease from 15 mg, then 12.5 mg daily is an increase.
    steps = [StepPlan(15, 14), StepPlan(20, 14, alternate_day_mg=0), StepPlan(12.5, 14)]
    assert codes(validate_plan("prednisone", steps, RULES)) == [
        ("steps[2].mg_per_day", "dose_increases")
    ]


def test_validate_flags_min_days_below_one():
    steps = [StepPlan(20, 0), StepPlan(0, 1)]
    assert codes(validate_plan("prednisone", steps, RULES)) == [
        ("steps[0].min_days", "min_days_below_one")
    ]


def test_validate_flags_a_zero_dose_before_the_last_step():
    steps = [StepPlan(20, 14), StepPlan(0, 14), StepPlan(5, 14), StepPlan(0, 1)]
    problems = codes(validate_plan("prednisone", steps, RULES))
    assert ("steps[1].mg_per_day", "zero_dose_before_end") in problems


def test_validate_flags_a_negative_alternate_day_dose():
    steps = [StepPlan(20, 14, alternate_day_mg=-5), StepPlan(0, 1)]
    assert codes(validate_plan("prednisone", steps, RULES)) == [
        ("steps[0].alternate_day_mg", "dose_negative")
    ]


def test_validate_flags_an_alternate_day_dose_tablets_cannot_make():
    steps = [StepPlan(20, 14, alternate_day_mg=7.3), StepPlan(0, 1)]
    assert codes(validate_plan("prednisone", steps, RULES)) == [
        ("steps[0].alternate_day_mg", "not_makeable")
    ]


def test_validate_flags_an_empty_plan():
    assert codes(validate_plan("prednisone", [], RULES)) == [("steps", "no_steps")]


# --- dates, daily doses and exposure ---------------------------------------------------------


def test_date_steps_and_daily_doses_expand_an_alternate_day_step():
    steps = [
        StepPlan(10, 2),
        StepPlan(10, 3, alternate_day_mg=5),
        StepPlan(2.5, 1),
        StepPlan(0, 1, requires_cortisol=True),
    ]
    dated = date_steps(steps, DAY)
    assert dated == [
        DatedStep(0, DAY, DAY + dt.timedelta(2), steps[0]),
        DatedStep(1, DAY + dt.timedelta(2), DAY + dt.timedelta(5), steps[1]),
        DatedStep(2, DAY + dt.timedelta(5), DAY + dt.timedelta(6), steps[2]),
        DatedStep(3, DAY + dt.timedelta(6), DAY + dt.timedelta(7), steps[3]),
    ]
    assert daily_doses(dated) == [
        (DAY + dt.timedelta(n), mg) for n, mg in enumerate([10, 10, 10, 5, 10, 2.5, 0])
    ]


def test_the_final_stop_step_lasts_one_day():
    dated = date_steps([StepPlan(5, 3), StepPlan(0, 9)], DAY)
    assert dated[-1].ends_on - dated[-1].starts_on == dt.timedelta(1)


def test_date_steps_rejects_min_days_below_one():
    with pytest.raises(ValueError, match=r"steps\[0\]"):
        date_steps([StepPlan(5, 0), StepPlan(0, 1)], DAY)


def test_cumulative_exposure_by_hand():
    steps = [StepPlan(10, 3), StepPlan(5, 2, alternate_day_mg=2.5), StepPlan(0, 1)]
    daily = daily_doses(date_steps(steps, DAY))
    # 3 x 10 + 5 + 2.5 + 0
    assert cumulative_prednisone_mg("prednisone", daily, EQUIVALENCE) == 37.5
    # Up to and including the fourth day: 3 x 10 + 5.
    assert cumulative_prednisone_mg("prednisone", daily, EQUIVALENCE, DAY + dt.timedelta(3)) == 35
    assert cumulative_prednisone_mg("prednisone", daily, EQUIVALENCE, DAY - dt.timedelta(1)) == 0


def test_cumulative_exposure_converts_to_prednisone_exactly():
    # 3 days of 8 mg methylprednisolone = 24 mg x 1.25 = 30 mg prednisone.
    daily = daily_doses(date_steps([StepPlan(8, 3), StepPlan(0, 1)], DAY))
    assert cumulative_prednisone_mg("methylprednisolone", daily, EQUIVALENCE) == 30
    # 365 days of 0.75 mg dexamethasone = 365 x 5 mg prednisone, with no float drift.
    daily = daily_doses(date_steps([StepPlan(0.75, 365), StepPlan(0, 1)], DAY))
    assert cumulative_prednisone_mg("dexamethasone", daily, EQUIVALENCE) == 1825


# --- properties ------------------------------------------------------------------------------


def exact(mg: float) -> Fraction:
    return Fraction(str(mg))


def brute_force_fewest(dose: Fraction, strengths: list[Fraction]) -> int | None:
    """Return the fewest tablets making dose, trying every combination."""
    if dose == 0:
        return 0
    if not strengths:
        return None
    first, rest = strengths[0], strengths[1:]
    best: int | None = None
    for count in range(int(dose // first) + 1):
        tail = brute_force_fewest(dose - count * first, rest)
        if tail is not None and (best is None or count + tail < best):
            best = count + tail
    return best


strength_sets = st.one_of(
    st.sampled_from(list(STRENGTHS.values())),
    st.lists(
        st.sampled_from([0.5, 0.75, 1.0, 2.0, 2.5, 3.0, 4.0, 7.5]),
        min_size=1,
        max_size=4,
        unique=True,
    ).map(tuple),
)


@FAST
@given(strength_sets, st.integers(0, 60))
def test_tablets_add_up_use_configured_strengths_and_are_fewest(strengths, quarter_mg):
    dose = quarter_mg / 4
    tablets = fewest_tablets(dose, strengths)
    fewest = brute_force_fewest(exact(dose), sorted((exact(s) for s in strengths), reverse=True))
    if fewest is None:
        assert tablets is None
        return
    assert tablets is not None
    assert sum(exact(size) * count for size, count in tablets) == exact(dose)
    assert all(size in strengths and count > 0 for size, count in tablets)
    assert [size for size, _ in tablets] == sorted((s for s, _ in tablets), reverse=True)
    assert sum(count for _, count in tablets) == fewest


def makeable_start(drug: str, prednisone_mg: int) -> float:
    """Return a makeable dose of drug at or just below prednisone_mg, or its smallest tablet."""
    remaining = Fraction(prednisone_mg) / exact(EQUIVALENCE[drug]).limit_denominator(1000)
    dose = Fraction(0)
    for size in sorted((exact(s) for s in STRENGTHS[drug]), reverse=True):
        count = remaining // size
        dose += count * size
        remaining -= count * size
    return float(dose) if dose else min(STRENGTHS[drug])


@st.composite
def plans(draw: st.DrawFn) -> tuple[str, list[StepPlan]]:
    drug = draw(st.sampled_from(DRUGS))
    start = makeable_start(drug, draw(st.integers(1, 100)))
    start_days = draw(st.integers(1, 60))
    kind = draw(st.sampled_from(["banded", "fixed", "percent"]))
    try:
        if kind == "banded":
            return drug, banded_plan(drug, start, RULES, start_days)
        step_days = draw(st.integers(1, 60))
        if kind == "fixed":
            share = draw(st.integers(1, 100))
            decrement = max(round(start * share / 100, 2), 0.01)
            return drug, fixed_plan(drug, start, decrement, step_days, RULES, start_days)
        percent = draw(st.floats(0.5, 99.5, allow_nan=False))
        return drug, percent_plan(drug, start, percent, step_days, RULES, start_days)
    except TaperRejected as exc:
        # Only the floor may refuse a valid start: its tablets cannot make the allowed step.
        assert [p.code for p in exc.problems] == ["floor_step_not_makeable"]
        half_smallest = to_prednisone_mg(drug, min(STRENGTHS[drug]), EQUIVALENCE) / 2
        assert half_smallest > RULES.below_floor_max_decrement_mg
        return drug, None


def average(step: StepPlan) -> float:
    if step.alternate_day_mg is None:
        return step.mg_per_day
    return (step.mg_per_day + step.alternate_day_mg) / 2


@FAST
@given(plans(), st.dates(dt.date(2000, 1, 1), dt.date(2100, 1, 1)))
def test_generated_plans_taper_to_a_makeable_stop_on_a_seamless_calendar(plan, starts_on):
    drug, steps = plan
    if steps is None:
        return
    mg = [average(s) for s in steps]
    assert all(later < earlier for earlier, later in itertools.pairwise(mg))
    assert mg[-1] == 0 and all(dose > 0 for dose in mg[:-1])
    # At or below the floor no step lowers the (average) dose by more than the rules allow.
    for earlier, later in itertools.pairwise(steps):
        if to_prednisone_mg(drug, average(earlier), EQUIVALENCE) <= RULES.floor_mg:
            drop = to_prednisone_mg(drug, average(earlier) - average(later), EQUIVALENCE)
            assert drop <= RULES.below_floor_max_decrement_mg + 1e-9
    assert all(fewest_tablets(s.mg_per_day, STRENGTHS[drug]) is not None for s in steps)
    assert all(step.min_days >= 1 for step in steps)
    floor_doses = [
        s for s in steps[:-1] if to_prednisone_mg(drug, s.mg_per_day, EQUIVALENCE) <= RULES.floor_mg
    ]
    assert all(s.min_days >= RULES.below_floor_min_step_days for s in floor_doses)
    assert steps[-1].requires_cortisol and steps[-1].mg_per_day == 0
    assert validate_plan(drug, steps, RULES) == []

    dated = date_steps(steps, starts_on)
    assert dated[0].starts_on == starts_on
    for previous, current in itertools.pairwise(dated):
        assert current.starts_on == previous.ends_on
    assert all(d.ends_on > d.starts_on for d in dated)

    daily = daily_doses(dated)
    span = (dated[-1].ends_on - dated[0].starts_on).days
    assert [day for day, _ in daily] == [starts_on + dt.timedelta(n) for n in range(span)]
    assert daily[-1][1] == 0
