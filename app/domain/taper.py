"""Steroid taper arithmetic: prednisone equivalents, tablets, taper plans, dates and exposure.

Pure functions over plain values. The caller reads the clinic's taper rules and passes them
in, so every rule here can be tested without an app, a database or a config file.

Doses are float mg at the edges. Inside, every dose, tablet and decrement is counted in whole
units of the drug's finest tablet decimal (0.1 mg, or finer when a strength needs it) and
equivalences are exact fractions, so 17.5 - 2.5 is exactly 15 and 6 mg of dexamethasone is
exactly 40 mg of prednisone when the band edges are compared.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Literal

from app.domain import packing
from app.domain.problems import Problem, Rejected

Drug = Literal[
    "prednisone", "prednisolone", "methylprednisolone", "dexamethasone", "hydrocortisone"
]

# Float hygiene and compute bounds only: no clinical meaning.
_MIN_SCALE = 10  # doses are never counted coarser than 0.1 mg
_MAX_DENOMINATOR = 10**6  # 20/3 written as a float must read back as exactly 20/3
_MAX_TABLE_UNITS = 10**6  # largest dose, in units, the tablet table is built for

# Sanity range for a prescriber's parameters, as agreed for the taper API (not a clinic setting).
_MIN_STEP_DAYS = 1
_MAX_STEP_DAYS = 365
_PERCENT_OPEN_RANGE = (0.0, 100.0)

_ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Band:
    """One band of a banded taper, in prednisone-equivalent mg.

    The band applies while the current dose is above above_mg; when bands overlap, the one
    with the highest above_mg below the dose wins.
    """

    above_mg: float
    decrement_mg: float
    step_days: int


@dataclass(frozen=True)
class TaperRules:
    """The clinic's taper rules; every mg here except tablet strengths is prednisone-equivalent.

    equivalence maps a drug to the prednisone mg that 1 mg of it equals.
    """

    bands: tuple[Band, ...]
    floor_mg: float
    below_floor_min_step_days: int
    below_floor_max_decrement_mg: float
    equivalence: Mapping[str, float]
    tablet_strengths_mg: Mapping[str, tuple[float, ...]]
    max_start_mg: float


@dataclass(frozen=True)
class StepPlan:
    """One dose of a taper, in mg of the drug itself, held for at least min_days.

    With alternate_day_mg the days alternate: mg_per_day on the step's first day,
    alternate_day_mg on its second, and so on. A 0 mg step is the final stop; every stop
    carries requires_cortisol (`stop_step`): after a course the adrenal axis is checked with a
    morning cortisol before the last dose goes, or a physician records why not.
    """

    mg_per_day: float
    min_days: int
    alternate_day_mg: float | None = None
    requires_cortisol: bool = False


def stop_step(min_days: int = 1) -> StepPlan:
    """The last step of every taper: 0 mg, after a morning cortisol check (DOMAIN.md)."""
    return StepPlan(mg_per_day=0.0, min_days=min_days, requires_cortisol=True)


def custom_plan(items: Sequence[tuple[float, int, float | None]]) -> list[StepPlan]:
    """A physician's own steps, (mg_per_day, min_days, alternate_day_mg); a 0 mg last step is
    the stop and needs its cortisol check like any other (`stop_step`)."""
    steps = [StepPlan(mg, days, alternate) for mg, days, alternate in items]
    if steps and steps[-1].mg_per_day == 0:
        steps[-1] = replace(steps[-1], requires_cortisol=True)
    return steps


#: The range a morning cortisol result may have (nmol/L).
CORTISOL_RANGE_NMOL_L = (0.0, 5000.0)


def cortisol_problem(
    value: float | None, *, overridden: bool, stop_nmol_l: float, recheck_nmol_l: float
) -> Problem | None:
    """Whether the stop may go ahead on this morning cortisol (DOMAIN.md: at or above the stop
    threshold it may; between recheck and stop, continue and recheck; below, do not stop).
    A physician's recorded override lets the stop go ahead without a good result."""
    low, high = CORTISOL_RANGE_NMOL_L
    field = "cortisol_nmol_l"
    if value is not None and not low <= value <= high:
        return Problem(field, f"{field}: {low:g} to {high:g} nmol/L", "out_of_range")
    if (value is not None and value >= stop_nmol_l) or overridden:
        return None
    if value is None:
        return Problem(
            field,
            f"{field}: stopping needs a morning cortisol (>= {stop_nmol_l:g} nmol/L) or a "
            "physician's override reason",
            "cortisol_needed",
        )
    if value >= recheck_nmol_l:
        return Problem(
            field,
            f"{field}: {value:g} nmol/L is between {recheck_nmol_l:g} and {stop_nmol_l:g}: "
            "continue the current dose and recheck",
            "cortisol_recheck",
        )
    return Problem(
        field,
        f"{field}: {value:g} nmol/L is below {recheck_nmol_l:g}: do not stop; consider adrenal "
        "insufficiency",
        "cortisol_low",
    )


@dataclass(frozen=True)
class DatedStep:
    """A step placed on the calendar; ends_on is exclusive (the next step starts on it)."""

    index: int
    starts_on: dt.date
    ends_on: dt.date
    step: StepPlan


class TaperRejected(Rejected):
    """A taper request that hits one or more hard stops."""


# --- exact numbers ---------------------------------------------------------------------------


def _exact(value: float) -> Fraction:
    # Settings arrive as floats; 6.666666666666667 must compare as 20/3 at a band edge.
    return Fraction(value).limit_denominator(_MAX_DENOMINATOR)


def _mg(value: float | Fraction) -> str:
    return f"{float(value):g}"


def _is_real(value: object) -> bool:
    # Steps may come from untyped JSON, so the annotation alone is not trusted.
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _clean_strengths(strengths_mg: Sequence[float]) -> tuple[float, ...]:
    sizes = tuple(sorted({float(s) for s in strengths_mg}, reverse=True))
    if not sizes:
        raise ValueError("strengths_mg must name at least one tablet strength")
    if any(not math.isfinite(s) or s <= 0 for s in sizes):
        raise ValueError(f"tablet strengths must be positive finite numbers: {list(strengths_mg)}")
    return sizes


def _fewest_table(units: Sequence[int], top: int) -> Sequence[int]:
    """The fewest tablets for every total 0..top; top + 1 marks an unmakeable total."""
    if top > _MAX_TABLE_UNITS:
        raise ValueError(f"dose of {top} units is too large to build tablets for")
    return _table(tuple(units), top)


@functools.lru_cache(maxsize=256)
def _table(units: tuple[int, ...], top: int) -> tuple[int, ...]:
    # A plan checks every step's dose against the same strengths: the table is built once
    # per (strengths, dose) instead of once per step (a clinic file's tapers, a preview).
    return tuple(packing.fewest_table(units, top))


# --- public arithmetic -----------------------------------------------------------------------


def to_prednisone_mg(drug: str, mg: float, equivalence: Mapping[str, float]) -> float:
    """Return mg of drug as prednisone-equivalent mg."""
    if drug not in equivalence:
        raise ValueError(
            f"drug: {drug!r} has no prednisone equivalence; known: {', '.join(sorted(equivalence))}"
        )
    if not math.isfinite(mg):
        raise ValueError(f"mg must be a finite number, got {mg!r}")
    return float(_exact(mg) * _exact(equivalence[drug]))


def fewest_tablets(
    dose_mg: float, strengths_mg: Sequence[float]
) -> tuple[tuple[float, int], ...] | None:
    """Return the fewest tablets that make dose_mg exactly, largest strength first.

    Returns () for 0 mg and None when no combination of the strengths makes the dose. When
    several combinations need equally few tablets, the one using larger strengths wins.
    """
    sizes = _clean_strengths(strengths_mg)
    if not math.isfinite(dose_mg) or dose_mg < 0:
        raise ValueError(f"dose_mg must be a finite number >= 0, got {dose_mg!r}")
    scale = packing.scale_for(sizes, "tablet strengths", _MIN_SCALE)
    target = packing.to_units(dose_mg, scale)
    if target is None or (target == 0 and dose_mg > 0):
        return None  # between units, or a positive dose too small for any tablet
    units = [round(s * scale) for s in sizes]
    fewest = _fewest_table(units, target)
    if fewest[target] > target:
        return None
    counts = packing.counts_for(units, fewest, target)
    return tuple((size, count) for size, count in zip(sizes, counts, strict=True) if count)


# --- plans -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _DrugUnits:
    """A drug's tablets and equivalence in the integer units its doses are counted in."""

    name: str
    equivalence: Fraction
    scale: int
    strengths_mg: tuple[float, ...]
    units: tuple[int, ...]

    def to_prednisone(self, dose_units: int) -> Fraction:
        return Fraction(dose_units) / self.scale * self.equivalence

    def units_from_prednisone(self, prednisone_mg: Fraction) -> Fraction:
        return prednisone_mg / self.equivalence * self.scale

    def mg(self, dose_units: int) -> float:
        return dose_units / self.scale


def _drug_problems(drug: object, rules: TaperRules) -> list[Problem]:
    if not isinstance(drug, str) or drug not in rules.equivalence:
        known = sorted(set(rules.equivalence) & set(rules.tablet_strengths_mg))
        return [
            Problem(
                "drug",
                f"drug: {drug!r} is not a known steroid; known: {', '.join(known) or 'none'}",
                "unknown_drug",
            )
        ]
    if drug not in rules.tablet_strengths_mg:
        return [
            Problem(
                "drug",
                f"drug: {drug!r} has no tablet strengths configured",
                "unknown_drug",
            )
        ]
    return []


def _drug_units(drug: str, rules: TaperRules) -> _DrugUnits:
    equivalence = _exact(rules.equivalence[drug])
    if equivalence <= 0:
        raise ValueError(f"equivalence of {drug} must be positive, got {rules.equivalence[drug]}")
    sizes = _clean_strengths(rules.tablet_strengths_mg[drug])
    scale = packing.scale_for(sizes, "tablet strengths", _MIN_SCALE)
    return _DrugUnits(drug, equivalence, scale, sizes, tuple(round(s * scale) for s in sizes))


def _check_rules(rules: TaperRules) -> None:
    # Rules are configuration, not a prescriber's input: a bad one is a bug, not a hard stop.
    for band in rules.bands:
        if not (math.isfinite(band.above_mg) and math.isfinite(band.decrement_mg)):
            raise ValueError(f"band numbers must be finite: {band}")
        if band.decrement_mg <= 0 or band.step_days < _MIN_STEP_DAYS:
            raise ValueError(f"band needs a positive decrement and step_days >= 1: {band}")
    if rules.below_floor_min_step_days < _MIN_STEP_DAYS:
        raise ValueError("below_floor_min_step_days must be >= 1")
    if not math.isfinite(rules.below_floor_max_decrement_mg) or (
        rules.below_floor_max_decrement_mg <= 0
    ):
        raise ValueError("below_floor_max_decrement_mg must be a positive finite number")
    if not (math.isfinite(rules.floor_mg) and math.isfinite(rules.max_start_mg)):
        raise ValueError("floor_mg and max_start_mg must be finite")


def _number_problem(field: str, value: object) -> Problem | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Problem(field, f"{field}: {value!r} is not a number", "not_a_number")
    if not math.isfinite(value):
        return Problem(field, f"{field}: {value!r} is not a finite number", "not_finite")
    return None


def _days_problem(field: str, value: object) -> Problem | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return Problem(field, f"{field}: {value!r} is not a whole number of days", "not_integer")
    if not _MIN_STEP_DAYS <= value <= _MAX_STEP_DAYS:
        return Problem(
            field,
            f"{field}: {value} is outside {_MIN_STEP_DAYS} to {_MAX_STEP_DAYS} days",
            "days_out_of_range",
        )
    return None


def _not_makeable(field: str, mg: float, drug: _DrugUnits) -> Problem:
    return Problem(
        field,
        f"{field}: {_mg(mg)} mg {drug.name} cannot be made exactly from tablets of "
        f"{', '.join(_mg(s) for s in sorted(drug.strengths_mg))} mg",
        "not_makeable",
    )


def _start_problems(drug: _DrugUnits | None, start_mg: object, rules: TaperRules) -> list[Problem]:
    problem = _number_problem("start_mg", start_mg)
    if problem is not None:
        return [problem]
    assert isinstance(start_mg, int | float)  # narrowed by _number_problem
    if start_mg <= 0:
        return [
            Problem(
                "start_mg", f"start_mg: {_mg(start_mg)} mg must be above 0 mg", "start_not_positive"
            )
        ]
    if drug is None:
        return []
    prednisone = _exact(start_mg) * drug.equivalence
    if prednisone > _exact(rules.max_start_mg):
        return [_start_above_maximum(drug, start_mg, prednisone, rules)]
    if fewest_tablets(start_mg, drug.strengths_mg) is None:
        return [_not_makeable("start_mg", start_mg, drug)]
    return []


def _start_above_maximum(
    drug: _DrugUnits, mg: float, prednisone: Fraction, rules: TaperRules
) -> Problem:
    return Problem(
        "start_mg",
        f"start_mg: {_mg(mg)} mg {drug.name} ({_mg(prednisone)} mg prednisone-equivalent) is "
        f"above the maximum of {_mg(rules.max_start_mg)} mg prednisone-equivalent",
        "start_above_maximum",
    )


def _prepare(
    drug: str,
    start_mg: float,
    rules: TaperRules,
    start_days: int,
    more: Callable[[], list[Problem | None]],
) -> tuple[_DrugUnits, int, int]:
    """Return the drug, start dose in units and start days, or raise listing every problem."""
    _check_rules(rules)
    problems = _drug_problems(drug, rules)
    units = None if problems else _drug_units(drug, rules)
    problems += _start_problems(units, start_mg, rules)
    # Listed in signature order: drug, start_mg, the schedule's own parameters, start_days.
    problems += [p for p in (*more(), _days_problem("start_days", start_days)) if p is not None]
    if problems:
        raise TaperRejected(problems)
    assert units is not None  # no drug problem means the drug resolved
    start_units = packing.to_units(start_mg, units.scale)
    assert start_units is not None  # makeable doses are whole units
    return units, start_units, start_days


# A step rule gives, for a dose in units, the decrement to the next dose (in units) and the
# days the dose is held, before the floor slow-down is applied.
_StepRule = Callable[[int], tuple[Fraction, int]]


def _next_dose(dose: int, decrement: Fraction, makeable: list[int], cap: Fraction | None) -> int:
    """Return the makeable dose nearest dose - decrement that is below dose and not below 0.

    With a cap (at or below the floor) the step stays within the cap whenever some makeable
    dose allows it; when none does, the smallest possible step is taken. Ties go to the
    higher dose: the gentler step.
    """
    end = bisect.bisect_left(makeable, dose)  # makeable[:end] are strictly lower; [0] is 0
    start = 0
    if cap is not None:
        start = bisect.bisect_left(makeable, math.ceil(dose - cap), 0, end)
        if start == end:
            return makeable[end - 1]
    target = dose - decrement
    index = bisect.bisect_left(makeable, target, start, end)
    options = makeable[max(start, index - 1) : min(end, index + 1)]
    return min(options, key=lambda u: (abs(u - target), -u))


def _walk(
    drug: _DrugUnits, start_units: int, start_days: int, rules: TaperRules, rule: _StepRule
) -> list[StepPlan]:
    fewest = _fewest_table(drug.units, start_units)
    makeable = [u for u, count in enumerate(fewest) if count <= u]
    floor = _exact(rules.floor_mg)
    cap = drug.units_from_prednisone(_exact(rules.below_floor_max_decrement_mg))
    steps: list[StepPlan] = []
    dose = start_units
    while True:
        decrement, days = rule(dose)
        if not steps:
            days = start_days
        below_floor = drug.to_prednisone(dose) <= floor
        if below_floor:
            # Below the physiological dose the adrenal axis needs time to recover.
            days = max(days, rules.below_floor_min_step_days)
            decrement = min(decrement, cap)
        lower = _next_dose(dose, decrement, makeable, cap if below_floor else None)
        if below_floor and dose - lower > cap:
            # The tablets cannot make a daily dose within the step the floor allows: go by
            # alternate days when half the step is small enough, or say so; never a bigger step.
            if Fraction(dose - lower, 2) > cap:
                raise TaperRejected([_floor_step_problem(drug, dose, lower, rules)])
            steps.append(StepPlan(mg_per_day=drug.mg(dose), min_days=days))
            steps.append(
                StepPlan(mg_per_day=drug.mg(dose), min_days=days, alternate_day_mg=drug.mg(lower))
            )
        else:
            steps.append(StepPlan(mg_per_day=drug.mg(dose), min_days=days))
        dose = lower
        if dose == 0:
            steps.append(stop_step())
            return steps


def _floor_step_problem(drug: _DrugUnits, dose: int, lower: int, rules: TaperRules) -> Problem:
    strengths = ", ".join(_mg(s) for s in sorted(drug.strengths_mg))
    step = drug.to_prednisone(dose - lower)
    return Problem(
        "drug",
        f"drug: {drug.name} tablets of {strengths} mg cannot lower {_mg(drug.mg(dose))} mg "
        f"({_mg(drug.to_prednisone(dose))} mg prednisone-equivalent) by at most "
        f"{_mg(rules.below_floor_max_decrement_mg)} mg prednisone-equivalent at or below the "
        f"{_mg(rules.floor_mg)} mg floor, not even on alternate days: the smallest step is "
        f"{_mg(drug.mg(dose - lower))} mg ({_mg(step)} mg prednisone-equivalent). Continue "
        f"below {_mg(drug.mg(dose))} mg with prednisone 1 mg tablets or its oral solution "
        "(5 mg/5 mL), or write a custom plan",
        "floor_step_not_makeable",
    )


def _band_for(prednisone_mg: Fraction, bands: Sequence[Band]) -> Band:
    below = [band for band in bands if _exact(band.above_mg) < prednisone_mg]
    if not below:
        raise ValueError(f"no taper band covers {_mg(prednisone_mg)} mg prednisone-equivalent")
    return max(below, key=lambda band: _exact(band.above_mg))


def banded_plan(drug: str, start_mg: float, rules: TaperRules, start_days: int) -> list[StepPlan]:
    """Plan a taper that follows the rules' dose bands from start_mg down to a stop."""
    units, start_units, start_days = _prepare(drug, start_mg, rules, start_days, lambda: [])

    def rule(dose: int) -> tuple[Fraction, int]:
        band = _band_for(units.to_prednisone(dose), rules.bands)
        return units.units_from_prednisone(_exact(band.decrement_mg)), band.step_days

    return _walk(units, start_units, start_days, rules, rule)


def fixed_plan(
    drug: str,
    start_mg: float,
    decrement_mg: float,
    step_days: int,
    rules: TaperRules,
    start_days: int,
) -> list[StepPlan]:
    """Plan a taper that lowers the dose by decrement_mg of the drug every step_days."""

    def more() -> list[Problem | None]:
        problem = _number_problem("decrement_mg", decrement_mg)
        if problem is None and decrement_mg <= 0:
            problem = Problem(
                "decrement_mg",
                f"decrement_mg: {_mg(decrement_mg)} mg must be above 0 mg",
                "decrement_not_positive",
            )
        if problem is None and _is_real(start_mg) and decrement_mg > start_mg:
            problem = Problem(
                "decrement_mg",
                f"decrement_mg: {_mg(decrement_mg)} mg is above the start dose of "
                f"{_mg(start_mg)} mg",
                "decrement_above_start",
            )
        return [problem, _days_problem("step_days", step_days)]

    units, start_units, start_days = _prepare(drug, start_mg, rules, start_days, more)
    decrement = _exact(decrement_mg) * units.scale
    return _walk(units, start_units, start_days, rules, lambda _dose: (decrement, step_days))


def percent_plan(
    drug: str,
    start_mg: float,
    percent: float,
    step_days: int,
    rules: TaperRules,
    start_days: int,
) -> list[StepPlan]:
    """Plan a taper that lowers the dose by percent of the current dose every step_days."""
    low, high = _PERCENT_OPEN_RANGE

    def more() -> list[Problem | None]:
        problem = _number_problem("percent", percent)
        if problem is None and not low < percent < high:
            problem = Problem(
                "percent",
                f"percent: {_mg(percent)} must be above {_mg(low)} and below {_mg(high)}",
                "percent_out_of_range",
            )
        return [problem, _days_problem("step_days", step_days)]

    units, start_units, start_days = _prepare(drug, start_mg, rules, start_days, more)
    fraction = _exact(percent) / 100
    # A percentage of a small dose is less than any tablet: step at least one smallest tablet.
    smallest = min(units.units)
    return _walk(
        units,
        start_units,
        start_days,
        rules,
        lambda dose: (max(dose * fraction, Fraction(smallest)), step_days),
    )


# --- validation ------------------------------------------------------------------------------


def _dose_problems(
    field: str, mg: object, drug: _DrugUnits | None, rules: TaperRules, *, is_start: bool
) -> list[Problem]:
    problem = _number_problem(field, mg)
    if problem is not None:
        return [problem]
    assert isinstance(mg, int | float)  # narrowed by _number_problem
    if mg < 0:
        return [Problem(field, f"{field}: {_mg(mg)} mg is below 0 mg", "dose_negative")]
    if drug is None:
        return []
    prednisone = _exact(mg) * drug.equivalence
    if prednisone > _exact(rules.max_start_mg):
        if is_start:
            return [_start_above_maximum(drug, mg, prednisone, rules)]
        return [
            Problem(
                field,
                f"{field}: {_mg(mg)} mg {drug.name} ({_mg(prednisone)} mg prednisone-equivalent) "
                f"is above the maximum of {_mg(rules.max_start_mg)} mg prednisone-equivalent",
                "dose_above_maximum",
            )
        ]
    if fewest_tablets(mg, drug.strengths_mg) is None:
        return [_not_makeable(field, mg, drug)]
    return []


def _is_dose(value: object, *, optional: bool = False) -> bool:
    if value is None:
        return optional
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value >= 0


def validate_plan(drug: str, steps: Sequence[StepPlan], rules: TaperRules) -> list[Problem]:
    """List every hard stop in a taper's steps, in step order; empty when it is valid."""
    problems = _drug_problems(drug, rules)
    units = None if problems else _drug_units(drug, rules)
    if not steps:
        problems.append(Problem("steps", "steps: a taper needs at least one step", "no_steps"))
        return problems
    previous_average: Fraction | None = None
    previous_index = 0
    last = len(steps) - 1
    for i, step in enumerate(steps):
        field = f"steps[{i}].mg_per_day"
        dose_problems = _dose_problems(field, step.mg_per_day, units, rules, is_start=i == 0)
        problems += dose_problems
        if not dose_problems and step.mg_per_day == 0 and i != last:
            problems.append(
                Problem(
                    field,
                    f"{field}: 0 mg is allowed only on the last step (the stop)",
                    "zero_dose_before_end",
                )
            )
        alt_field = f"steps[{i}].alternate_day_mg"
        alt_problems = (
            []
            if step.alternate_day_mg is None
            else _dose_problems(alt_field, step.alternate_day_mg, units, rules, is_start=False)
        )
        problems += alt_problems
        days_field = f"steps[{i}].min_days"
        if isinstance(step.min_days, bool) or not isinstance(step.min_days, int):
            problems.append(
                Problem(
                    days_field,
                    f"{days_field}: {step.min_days!r} is not a whole number of days",
                    "not_integer",
                )
            )
        elif step.min_days < _MIN_STEP_DAYS:
            problems.append(
                Problem(
                    days_field,
                    f"{days_field}: {step.min_days} is below the minimum of {_MIN_STEP_DAYS} day",
                    "min_days_below_one",
                )
            )
        if not (_is_dose(step.mg_per_day) and _is_dose(step.alternate_day_mg, optional=True)):
            continue
        # An alternate-day step is judged on its daily average: 10/0 is less than 7.5 daily.
        average = _exact(step.mg_per_day)
        if step.alternate_day_mg is not None:
            average = (average + _exact(step.alternate_day_mg)) / 2
        if previous_average is not None and average > previous_average:
            problems.append(
                Problem(
                    field,
                    f"{field}: {_mg(average)} mg a day on average is above the "
                    f"{_mg(previous_average)} mg of steps[{previous_index}]; a taper never "
                    "increases the dose",
                    "dose_increases",
                )
            )
        previous_average, previous_index = average, i
    return problems


# --- calendar and exposure -------------------------------------------------------------------


def date_steps(steps: Sequence[StepPlan], starts_on: dt.date) -> list[DatedStep]:
    """Place the steps back to back from starts_on, each for its min_days."""
    dated: list[DatedStep] = []
    day = starts_on
    last = len(steps) - 1
    for index, step in enumerate(steps):
        # The stop step marks the first day without the drug; it is not a course to hold.
        days = 1 if index == last and step.mg_per_day == 0 else step.min_days
        if isinstance(days, bool) or not isinstance(days, int) or days < _MIN_STEP_DAYS:
            raise ValueError(f"steps[{index}].min_days must be a whole number >= 1, got {days!r}")
        ends_on = day + dt.timedelta(days=days)
        dated.append(DatedStep(index=index, starts_on=day, ends_on=ends_on, step=step))
        day = ends_on
    return dated


def daily_doses(dated: Sequence[DatedStep]) -> list[tuple[dt.date, float]]:
    """List each day's dose of the drug, alternate-day steps expanded, the stop day as 0."""
    doses: list[tuple[dt.date, float]] = []
    for dated_step in dated:
        step = dated_step.step
        day = dated_step.starts_on
        offset = 0
        while day < dated_step.ends_on:
            mg = step.mg_per_day
            if offset % 2 == 1 and step.alternate_day_mg is not None:
                mg = step.alternate_day_mg
            doses.append((day, float(mg)))
            day += _ONE_DAY
            offset += 1
    return doses


def cumulative_prednisone_mg(
    drug: str,
    daily: Sequence[tuple[dt.date, float]],
    equivalence: Mapping[str, float],
    until: dt.date | None = None,
) -> float:
    """Return the prednisone-equivalent mg taken up to and including until (all if None)."""
    if drug not in equivalence:
        raise ValueError(
            f"drug: {drug!r} has no prednisone equivalence; known: {', '.join(sorted(equivalence))}"
        )
    # Summed exactly: a year of 7.5 mg days must not drift.
    total = sum(
        (_exact(mg) for day, mg in daily if until is None or day <= until), start=Fraction(0)
    )
    return float(total * _exact(equivalence[drug]))
