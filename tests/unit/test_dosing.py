"""IVIG dose arithmetic: worked example, hard and soft stops, and properties of the rules."""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from fractions import Fraction
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.dosing import (
    DoseRejected,
    DoseRequest,
    DosingLimits,
    Product,
    RatePlan,
    adjusted_body_weight_kg,
    check_request,
    compute_dose,
    dosing_weight_kg,
    ideal_body_weight_kg,
    plan_infusion_day,
    round_to_vials,
)

# Numbers from config.toml ([dosing] and [[products]]); the domain module never reads config.
RATE_PLAN = RatePlan(
    start_ml_per_kg_min=0.01,
    step_ml_per_kg_min=0.01,
    step_every_minutes=30,
    max_ml_per_kg_min=0.04,
    max_at_risk_ml_per_kg_min=0.03,
)
OCTAGAM = Product("Octagam 10%", 0.1, (2, 5, 10, 20, 30), 140.0, RATE_PLAN)
GAMUNEX = Product("Gamunex-C", 0.1, (1, 2.5, 5, 10, 20, 40), 140.0, RATE_PLAN)
GAMMAGARD = Product("Gammagard Liquid", 0.1, (1, 2.5, 5, 10, 20, 30), 140.0, RATE_PLAN)
GAMMAKED = Product("Gammaked", 0.1, (1, 2.5, 5, 10, 20), 140.0, RATE_PLAN)
BIVIGAM = Product("Bivigam", 0.1, (5, 10), 140.0, RATE_PLAN)
PRODUCTS = {p.name: p for p in (OCTAGAM, GAMUNEX, GAMMAGARD, GAMMAKED, BIVIGAM)}
LIMITS = DosingLimits(
    max_dose_g_per_kg_per_cycle=2.0,
    min_dose_g_per_kg_per_cycle=0.2,
    min_weight_kg=25.0,
    max_weight_kg=250.0,
    min_height_cm=120.0,
    max_height_cm=230.0,
    min_days_per_cycle=1,
    max_days_per_cycle=5,
    min_interval_weeks=2,
    max_interval_weeks=12,
    rounding_tolerance_percent=5.0,
    thrombosis_soft_stop_g_per_day=35.0,
    adjusted_weight_factor=0.4,
)
TOLERANCE = LIMITS.rounding_tolerance_percent

WORKED = DoseRequest(
    weight_kg=100.0,
    height_cm=175.0,
    sex="male",
    dose_g_per_kg=2.0,
    days_per_cycle=2,
    weight_basis="adjusted",
    product="Octagam 10%",
    interval_weeks=4,
)

FAST = settings(max_examples=150, deadline=None, database=None)


def devine_male_kg(height_cm: float) -> float:
    return 50 + 2.3 * (height_cm / 2.54 - 60)


# --- worked example -------------------------------------------------------------------------


def test_worked_example_weights():
    ideal = ideal_body_weight_kg("male", 175.0)
    assert round(ideal, 2) == 70.46
    assert round(adjusted_body_weight_kg(100.0, ideal, 0.4), 2) == 82.28
    assert round(dosing_weight_kg("adjusted", "male", 100.0, 175.0, 0.4), 2) == 82.28
    assert round(dosing_weight_kg("ideal", "male", 100.0, 175.0, 0.4), 2) == 70.46
    assert dosing_weight_kg("actual", "male", 100.0, 175.0, 0.4) == 100.0
    # Female base is 4.5 kg lighter at any height.
    assert ideal_body_weight_kg("female", 175.0) == pytest.approx(ideal - 4.5)


def test_worked_example_end_to_end():
    result = compute_dose(WORKED, PRODUCTS, LIMITS)

    assert result.weight_basis == "adjusted"
    assert round(result.ideal_body_weight_kg, 2) == 70.46
    assert round(result.adjusted_body_weight_kg, 2) == 82.28
    assert result.dosing_weight_kg == result.adjusted_body_weight_kg
    assert round(result.grams_per_cycle, 2) == 164.56
    assert round(result.grams_per_day, 2) == 82.28

    rounding = result.rounding
    assert rounding.target_g == result.grams_per_day
    assert rounding.rounded_g == 82.0
    assert rounding.vials == ((30.0, 2), (20.0, 1), (2.0, 1))
    assert rounding.vial_count == 4
    assert rounding.deviation_percent == -0.34
    assert rounding.waste_g == 0.0
    assert rounding.within_tolerance
    assert result.rounded_grams_per_cycle == 164.0
    assert result.soft_stops == ()

    infusion = result.infusion
    assert infusion.grams == 82.0
    assert infusion.volume_ml == pytest.approx(820.0)
    assert infusion.max_rate_ml_per_kg_min == 0.04
    assert [s.rate_ml_per_kg_min for s in infusion.steps] == [0.01, 0.02, 0.03, 0.04]
    assert [s.starts_at_minute for s in infusion.steps] == [0, 30, 60, 90]
    assert [s.minutes for s in infusion.steps[:3]] == [30, 30, 30]
    assert [s.rate_ml_per_hour for s in infusion.steps] == [49.4, 98.7, 148.1, 197.5]

    # Independent of the module: the formula written out by hand.
    weight = devine_male_kg(175.0) + 0.4 * (100.0 - devine_male_kg(175.0))
    first_90_min_ml = weight * (0.01 + 0.02 + 0.03) * 30
    last_step_min = (82.0 / 0.1 - first_90_min_ml) / (weight * 0.04)
    total_min = 90 + last_step_min
    assert infusion.steps[-1].minutes == pytest.approx(last_step_min)
    assert infusion.steps[-1].volume_ml == pytest.approx(820.0 - first_90_min_ml)
    for step, rate in zip(infusion.steps, (0.01, 0.02, 0.03), strict=False):
        assert step.volume_ml == pytest.approx(weight * rate * 30)
    assert infusion.minutes == math.ceil(total_min) == 295
    assert 4.8 < total_min / 60 < 5.0


# --- hard stops -----------------------------------------------------------------------------

HARD_STOPS = [
    ({"weight_kg": 24.9}, "weight_kg", "weight_below_minimum", "minimum of 25.0 kg"),
    ({"weight_kg": 250.5}, "weight_kg", "weight_above_maximum", "maximum of 250.0 kg"),
    ({"height_cm": 119.0}, "height_cm", "height_below_minimum", "minimum of 120.0 cm"),
    ({"height_cm": 231.0}, "height_cm", "height_above_maximum", "maximum of 230.0 cm"),
    ({"dose_g_per_kg": 2.5}, "dose_g_per_kg", "dose_above_maximum", "maximum of 2.0 g/kg"),
    ({"dose_g_per_kg": 0.1}, "dose_g_per_kg", "dose_below_minimum", "minimum of 0.2 g/kg"),
    ({"days_per_cycle": 0}, "days_per_cycle", "days_per_cycle_below_minimum", "minimum of 1"),
    ({"days_per_cycle": 6}, "days_per_cycle", "days_per_cycle_above_maximum", "maximum of 5"),
    ({"days_per_cycle": 2.0}, "days_per_cycle", "days_per_cycle_not_integer", "whole number"),
    ({"interval_weeks": 1}, "interval_weeks", "interval_below_minimum", "minimum of 2 weeks"),
    ({"interval_weeks": 13}, "interval_weeks", "interval_above_maximum", "maximum of 12 weeks"),
    ({"weight_kg": math.nan}, "weight_kg", "weight_not_finite", "not a finite number"),
    ({"height_cm": math.inf}, "height_cm", "height_not_finite", "not a finite number"),
    ({"dose_g_per_kg": -math.inf}, "dose_g_per_kg", "dose_not_finite", "not a finite number"),
    ({"weight_kg": "100"}, "weight_kg", "weight_not_a_number", "not a number"),
    ({"sex": "other"}, "sex", "unknown_sex", "female, male"),
    ({"weight_basis": "lean"}, "weight_basis", "unknown_weight_basis", "actual, ideal, adjusted"),
    ({"product": "Privigen"}, "product", "unknown_product", "Gamunex-C, Octagam 10%"),
]


@pytest.mark.parametrize(("change", "field", "code", "limit_text"), HARD_STOPS)
def test_each_hard_stop_names_field_and_limit(change, field, code, limit_text):
    request = replace(WORKED, **change)

    [problem] = check_request(request, PRODUCTS, LIMITS)
    assert (problem.field, problem.code) == (field, code)
    assert problem.message.startswith(f"{field}: ")
    assert limit_text in problem.message

    with pytest.raises(DoseRejected) as caught:
        compute_dose(request, PRODUCTS, LIMITS)
    assert caught.value.problems == (problem,)
    assert str(caught.value) == problem.message


def test_interval_is_optional():
    assert check_request(replace(WORKED, interval_weeks=None), PRODUCTS, LIMITS) == []


def test_limits_themselves_are_allowed():
    request = replace(WORKED, weight_kg=25.0, dose_g_per_kg=0.2, days_per_cycle=5)
    assert check_request(request, PRODUCTS, LIMITS) == []
    request = replace(WORKED, height_cm=230.0, dose_g_per_kg=2.0, days_per_cycle=5)
    assert check_request(request, PRODUCTS, LIMITS) == []


def test_every_problem_is_reported_not_just_the_first():
    request = replace(
        WORKED,
        weight_kg=300.0,
        dose_g_per_kg=math.nan,
        days_per_cycle=9,
        product="Unknown",
        interval_weeks=20,
    )
    with pytest.raises(DoseRejected) as caught:
        compute_dose(request, PRODUCTS, LIMITS)
    problems = caught.value.problems
    assert [p.field for p in problems] == [
        "weight_kg",
        "dose_g_per_kg",
        "days_per_cycle",
        "product",
        "interval_weeks",
    ]
    assert all(p.message in str(caught.value) for p in problems)
    assert isinstance(caught.value, ValueError)


def test_daily_grams_above_product_maximum_is_a_hard_stop():
    # 2 g/kg x 100 kg in one day = 200 g, above Octagam's 140 g per day.
    request = replace(WORKED, weight_basis="actual", days_per_cycle=1)
    assert check_request(request, PRODUCTS, LIMITS) == []
    with pytest.raises(DoseRejected) as caught:
        compute_dose(request, PRODUCTS, LIMITS)
    [problem] = caught.value.problems
    assert (problem.field, problem.code) == ("grams_per_day", "daily_dose_above_product_maximum")
    assert "200.0 g" in problem.message
    assert "140.0 g" in problem.message


def test_daily_grams_at_product_maximum_is_allowed():
    # 2 g/kg x 70 kg in one day = 140 g = 30+30+30+30+20.
    request = replace(WORKED, weight_kg=70.0, weight_basis="actual", days_per_cycle=1)
    assert compute_dose(request, PRODUCTS, LIMITS).rounding.rounded_g == 140.0


def test_dose_rejected_survives_copying():
    rejected = DoseRejected(check_request(replace(WORKED, weight_kg=1.0), PRODUCTS, LIMITS))
    # deepcopy goes through __reduce__, as pickling between processes does.
    assert copy.deepcopy(rejected).problems == rejected.problems


# --- soft stops -----------------------------------------------------------------------------


def codes(result):
    return [p.code for p in result.soft_stops]


def test_thrombosis_risk_at_or_above_the_daily_soft_stop_is_reported():
    # 1 g/kg x 70 kg over 2 days = 35 g per day, exactly the soft stop.
    request = replace(WORKED, weight_kg=70.0, weight_basis="actual", dose_g_per_kg=1.0)
    assert codes(compute_dose(request, PRODUCTS, LIMITS)) == []

    result = compute_dose(replace(request, thrombosis_risk=True), PRODUCTS, LIMITS)
    assert result.rounding.rounded_g == 35.0
    [stop] = result.soft_stops
    assert (stop.field, stop.code) == ("grams_per_day", "thrombosis_risk_daily_dose")
    assert "35.0 g" in stop.message

    below = replace(request, weight_kg=68.0, thrombosis_risk=True)  # 34 g per day
    assert codes(compute_dose(below, PRODUCTS, LIMITS)) == []


def test_worked_example_with_thrombosis_risk_needs_an_override():
    result = compute_dose(replace(WORKED, thrombosis_risk=True), PRODUCTS, LIMITS)
    assert codes(result) == ["thrombosis_risk_daily_dose"]


def test_rounding_outside_tolerance_is_a_soft_stop():
    # 0.5 g/kg x 25 kg = 12.5 g; Bivigam gives 10 or 15 (equally near): the single vial wins.
    request = replace(
        WORKED,
        weight_kg=25.0,
        weight_basis="actual",
        dose_g_per_kg=0.5,
        days_per_cycle=1,
        product="Bivigam",
    )
    result = compute_dose(request, PRODUCTS, LIMITS)
    assert result.rounding.rounded_g == 10.0
    assert result.rounding.vials == ((10.0, 1),)
    assert result.rounding.deviation_percent == -20.0
    assert not result.rounding.within_tolerance
    [stop] = result.soft_stops
    assert (stop.field, stop.code) == ("rounding", "rounding_outside_tolerance")
    assert "cannot be rounded to whole vials" in stop.message
    assert "±5.0%" in stop.message


@pytest.mark.parametrize(
    ("flags", "cap"),
    [
        ({}, 0.04),
        ({"renal_risk": True}, 0.03),
        ({"thrombosis_risk": True}, 0.03),
        ({"renal_risk": True, "thrombosis_risk": True}, 0.03),
    ],
)
def test_at_risk_patients_get_the_lower_rate_cap(flags, cap):
    infusion = compute_dose(replace(WORKED, **flags), PRODUCTS, LIMITS).infusion
    assert infusion.max_rate_ml_per_kg_min == cap
    assert infusion.steps[-1].rate_ml_per_kg_min == cap
    assert all(s.rate_ml_per_kg_min <= cap for s in infusion.steps)


# --- dosing weight --------------------------------------------------------------------------


def test_a_patient_lighter_than_ideal_is_dosed_on_actual_weight():
    assert ideal_body_weight_kg("female", 170.0) > 50.0
    for basis in ("actual", "ideal", "adjusted"):
        assert dosing_weight_kg(basis, "female", 50.0, 170.0, 0.4) == 50.0


def test_dosing_weight_rejects_bad_inputs():
    with pytest.raises(ValueError, match="sex"):
        ideal_body_weight_kg("other", 170.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weight_basis"):
        dosing_weight_kg("lean", "male", 80.0, 170.0, 0.4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="factor"):
        adjusted_body_weight_kg(100.0, 70.0, 1.5)


# --- vial rounding --------------------------------------------------------------------------


def test_half_gram_vials_are_rounded_exactly():
    rounding = round_to_vials(3.5, GAMUNEX.vial_sizes_g, TOLERANCE)
    assert rounding.rounded_g == 3.5
    assert rounding.vials == ((2.5, 1), (1.0, 1))
    assert rounding.deviation_percent == 0.0


def test_rounding_ties_go_to_fewer_vials_then_the_lower_total():
    # 9 g from 2 g and 10 g vials: 10 g (one vial) beats 8 g (four vials).
    assert round_to_vials(9.0, (2, 10), TOLERANCE).vials == ((10.0, 1),)
    # 3 g from 2 g vials: 2 g (one vial) beats 4 g (two vials).
    assert round_to_vials(3.0, (2,), TOLERANCE).rounded_g == 2.0
    # 3 g from 2 g and 4 g vials: one vial either way, so the lower total.
    assert round_to_vials(3.0, (2, 4), TOLERANCE).rounded_g == 2.0


def test_rounding_finds_fewest_vials_where_largest_first_would_not():
    # Largest first would be 4 + 1 + 1.
    assert round_to_vials(6.0, (1, 3, 4), TOLERANCE).vials == ((3.0, 2),)


def test_a_positive_dose_is_never_rounded_to_no_vials():
    rounding = round_to_vials(0.5, OCTAGAM.vial_sizes_g, TOLERANCE)
    assert rounding.rounded_g == 2.0
    assert rounding.waste_g == 1.5
    assert not rounding.within_tolerance


@pytest.mark.parametrize("target", [0.0, -1.0, math.nan, math.inf])
def test_rounding_rejects_a_target_that_is_not_positive(target):
    with pytest.raises(ValueError, match="target_g"):
        round_to_vials(target, OCTAGAM.vial_sizes_g, TOLERANCE)


def test_rounding_rejects_bad_vial_sizes():
    with pytest.raises(ValueError):
        round_to_vials(10.0, (), TOLERANCE)
    with pytest.raises(ValueError):
        round_to_vials(10.0, (0, 5), TOLERANCE)


def test_rounding_is_fast_for_large_doses():
    rounding = round_to_vials(399.97, GAMUNEX.vial_sizes_g, TOLERANCE)
    assert rounding.rounded_g == 400.0
    assert rounding.vials == ((40.0, 10),)


# --- infusion plan --------------------------------------------------------------------------


def test_a_small_dose_finishes_during_the_first_step():
    # 2 g = 20 mL at 0.01 mL/kg/min x 80 kg = 0.8 mL/min: 25 minutes.
    plan = plan_infusion_day(2.0, 80.0, OCTAGAM, at_risk=False)
    [step] = plan.steps
    assert step.minutes == pytest.approx(25.0)
    assert step.volume_ml == pytest.approx(20.0)
    assert plan.minutes == 25


def test_a_start_rate_above_the_cap_starts_at_the_cap():
    fast_start = replace(OCTAGAM, rate_plan=replace(RATE_PLAN, start_ml_per_kg_min=0.05))
    plan = plan_infusion_day(50.0, 70.0, fast_start, at_risk=True)
    assert [s.rate_ml_per_kg_min for s in plan.steps] == [0.03]


def test_infusion_rejects_nonpositive_grams():
    with pytest.raises(ValueError, match="grams"):
        plan_infusion_day(0.0, 70.0, OCTAGAM, at_risk=False)


# --- properties -----------------------------------------------------------------------------

# The configured sets, plus sets where taking the largest vial first is not the fewest vials.
VIAL_SETS = [p.vial_sizes_g for p in PRODUCTS.values()] + [(1, 3, 4), (3, 7), (2.5, 6)]
vial_sets = st.sampled_from(VIAL_SETS)
products = st.sampled_from(list(PRODUCTS.values()))
SMALL_MAX_G = 60


@cache
def brute_force_totals(vial_sizes: tuple[float, ...]) -> dict[Fraction, int]:
    """Every positive total near small targets, with its fewest vials, by enumeration."""
    # Tenths of a gram as integers: exact, and fast enough to enumerate.
    tenths = sorted({int(Fraction(str(s)) * 10) for s in vial_sizes})
    assert all(Fraction(str(s)) * 10 in tenths for s in vial_sizes)
    # The largest total at or below a target plus the smallest vial lies above the target,
    # so no nearer total lies beyond SMALL_MAX_G + smallest vial.
    up_to = SMALL_MAX_G * 10 + tenths[0]
    fewest: dict[int, int] = {}

    def walk(index: int, total: int, count: int) -> None:
        if index == len(tenths):
            if count and count < fewest.get(total, count + 1):
                fewest[total] = count
            return
        for n in range((up_to - total) // tenths[index] + 1):
            walk(index + 1, total + n * tenths[index], count + n)

    walk(0, 0, 0)
    return {Fraction(total, 10): count for total, count in fewest.items()}


small_targets = st.one_of(
    st.floats(min_value=0.1, max_value=SMALL_MAX_G, allow_nan=False),
    # Whole and half grams often sit exactly between two totals: the tie rules matter there.
    st.integers(min_value=1, max_value=SMALL_MAX_G * 2).map(lambda n: n / 2),
)


@FAST
@given(
    target=st.floats(min_value=0.1, max_value=400, allow_nan=False),
    sizes=vial_sets,
)
def test_vials_add_up_and_only_configured_sizes_are_used(target, sizes):
    rounding = round_to_vials(target, sizes, TOLERANCE)
    assert sum(size * count for size, count in rounding.vials) == pytest.approx(rounding.rounded_g)
    assert {size for size, _ in rounding.vials} <= set(sizes)
    assert all(count > 0 for _, count in rounding.vials)
    assert [size for size, _ in rounding.vials] == sorted(
        (size for size, _ in rounding.vials), reverse=True
    )
    assert rounding.vial_count == sum(count for _, count in rounding.vials)
    assert rounding.waste_g == max(0.0, rounding.rounded_g - target)


def deviation(total: Fraction, target: float) -> float:
    return round((float(total) - target) / target * 100, 2)


@FAST
@given(target=small_targets, sizes=vial_sets)
def test_outside_tolerance_only_when_no_total_is_within_it(target, sizes):
    rounding = round_to_vials(target, sizes, TOLERANCE)
    assert abs(rounding.deviation_percent) <= TOLERANCE or not rounding.within_tolerance
    if not rounding.within_tolerance:
        totals = brute_force_totals(sizes)
        assert all(abs(deviation(t, target)) > TOLERANCE for t in totals)


@FAST
@given(target=small_targets, sizes=vial_sets)
def test_no_achievable_total_is_nearer_than_the_chosen_one(target, sizes):
    rounding = round_to_vials(target, sizes, TOLERANCE)
    totals = brute_force_totals(sizes)
    chosen = Fraction(str(rounding.rounded_g))
    assert chosen in totals
    best = abs(float(chosen) - target)
    for total, count in totals.items():
        distance = abs(float(total) - target)
        assert distance >= best - 1e-9
        if math.isclose(distance, best, abs_tol=1e-9):
            # Equally near: the choice has no more vials, and is lower when counts tie.
            assert (totals[chosen], chosen) <= (count, total)


@FAST
@given(target=small_targets, sizes=vial_sets)
def test_vial_count_is_minimal_for_the_chosen_total(target, sizes):
    rounding = round_to_vials(target, sizes, TOLERANCE)
    totals = brute_force_totals(sizes)
    assert rounding.vial_count == totals[Fraction(str(rounding.rounded_g))]


weights = st.floats(min_value=25, max_value=250, allow_nan=False)
grams = st.floats(min_value=0.5, max_value=200, allow_nan=False)


@FAST
@given(weight=weights, a=grams, b=grams, product=products, at_risk=st.booleans())
def test_more_grams_never_infuse_faster(weight, a, b, product, at_risk):
    low, high = sorted((a, b))
    shorter = plan_infusion_day(low, weight, product, at_risk)
    longer = plan_infusion_day(high, weight, product, at_risk)
    assert shorter.minutes <= longer.minutes
    end = [p.steps[-1].starts_at_minute + p.steps[-1].minutes for p in (shorter, longer)]
    assert end[0] <= end[1] + 1e-9


rate_plans = st.builds(
    RatePlan,
    start_ml_per_kg_min=st.floats(min_value=0.001, max_value=0.08),
    step_ml_per_kg_min=st.floats(min_value=0.0, max_value=0.03),
    step_every_minutes=st.integers(min_value=5, max_value=60),
    max_ml_per_kg_min=st.floats(min_value=0.005, max_value=0.08),
    max_at_risk_ml_per_kg_min=st.floats(min_value=0.005, max_value=0.08),
)


@FAST
@given(
    amount=grams,
    weight=weights,
    product=products,
    rate_plan=st.one_of(st.just(RATE_PLAN), rate_plans),
    at_risk=st.booleans(),
)
def test_step_volumes_add_up_and_no_step_exceeds_the_cap(
    amount, weight, product, rate_plan, at_risk
):
    plan = plan_infusion_day(amount, weight, replace(product, rate_plan=rate_plan), at_risk)
    assert plan.volume_ml == pytest.approx(amount / product.concentration_g_per_ml)
    assert sum(s.volume_ml for s in plan.steps) == pytest.approx(plan.volume_ml, abs=1e-6)
    cap = rate_plan.max_ml_per_kg_min
    if at_risk:
        cap = min(cap, rate_plan.max_at_risk_ml_per_kg_min)
    assert plan.max_rate_ml_per_kg_min == cap
    assert all(0 < s.rate_ml_per_kg_min <= cap for s in plan.steps)
    assert all(s.volume_ml > 0 and s.minutes > 0 for s in plan.steps)
    rates = [s.rate_ml_per_kg_min for s in plan.steps]
    assert rates == sorted(rates)
    for before, after in zip(plan.steps, plan.steps[1:], strict=False):
        assert after.starts_at_minute == pytest.approx(before.starts_at_minute + before.minutes)
    end = plan.steps[-1].starts_at_minute + plan.steps[-1].minutes
    assert plan.minutes == math.ceil(end - 1e-9)


@FAST
@given(
    sex=st.sampled_from(["female", "male"]),
    height=st.floats(min_value=120, max_value=230),
    actual=weights,
    factor=st.floats(min_value=0, max_value=1),
)
def test_dosing_weight_lies_between_ideal_and_actual(sex, height, actual, factor):
    ideal = ideal_body_weight_kg(sex, height)
    by_ideal = dosing_weight_kg("ideal", sex, actual, height, factor)
    by_adjusted = dosing_weight_kg("adjusted", sex, actual, height, factor)
    assert dosing_weight_kg("actual", sex, actual, height, factor) == actual
    if actual >= ideal:
        assert by_ideal == ideal
        assert ideal - 1e-9 <= by_adjusted <= actual + 1e-9
    else:
        assert by_ideal == by_adjusted == actual
