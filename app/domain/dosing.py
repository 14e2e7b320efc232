"""IVIG dose arithmetic: dosing weight, grams per cycle and day, whole vials, infusion rate steps.

Pure functions over plain values. The caller reads the clinic's settings and passes them in,
so every rule here can be tested without an app, a database or a config file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from app.domain import packing
from app.domain.problems import Problem, Rejected

WeightBasis = Literal["actual", "ideal", "adjusted"]
Sex = Literal["female", "male"]

# Devine formula (a definition, not a clinic setting).
_DEVINE_BASE_KG: Mapping[str, float] = {"male": 50.0, "female": 45.5}
_DEVINE_KG_PER_INCH = 2.3
_DEVINE_BASE_HEIGHT_IN = 60.0
_CM_PER_INCH = 2.54

# Float hygiene only: no clinical meaning.
_EPS = 1e-9
#: The multiplication sign between a vial size and its count (U+00D7, not the letter x).
_TIMES = "\u00d7"


@dataclass(frozen=True)
class RatePlan:
    """How fast a product may run, in mL per kg per minute."""

    start_ml_per_kg_min: float
    step_ml_per_kg_min: float
    step_every_minutes: int
    max_ml_per_kg_min: float
    max_at_risk_ml_per_kg_min: float


@dataclass(frozen=True)
class Product:
    """An IVIG product as the clinic stocks it."""

    name: str
    concentration_g_per_ml: float
    vial_sizes_g: tuple[float, ...]
    max_g_per_day: float
    rate_plan: RatePlan


@dataclass(frozen=True)
class DosingLimits:
    """The clinic's hard and soft limits on a regimen."""

    max_dose_g_per_kg_per_cycle: float
    min_dose_g_per_kg_per_cycle: float
    min_weight_kg: float
    max_weight_kg: float
    min_height_cm: float
    max_height_cm: float
    min_days_per_cycle: int
    max_days_per_cycle: int
    min_interval_weeks: int
    max_interval_weeks: int
    rounding_tolerance_percent: float
    thrombosis_soft_stop_g_per_day: float
    adjusted_weight_factor: float
    #: A one-day cycle above this dose needs a physician's override (the label splits 2-5 days).
    one_day_cycle_max_g_per_kg: float = 1.0


@dataclass(frozen=True)
class DoseRequest:
    """What the prescriber asks for; dose_g_per_kg is per cycle."""

    weight_kg: float
    height_cm: float
    sex: Sex
    dose_g_per_kg: float
    days_per_cycle: int
    weight_basis: WeightBasis
    product: str
    interval_weeks: int | None = None
    thrombosis_risk: bool = False
    renal_risk: bool = False


class DoseRejected(Rejected):
    """A dose request that hits one or more hard stops."""


@dataclass(frozen=True)
class VialRounding:
    """One day's dose rounded to whole vials."""

    target_g: float
    rounded_g: float
    vials: tuple[tuple[float, int], ...]
    vial_count: int
    deviation_percent: float
    waste_g: float
    within_tolerance: bool


@dataclass(frozen=True)
class RateStep:
    """One constant rate of an infusion day."""

    starts_at_minute: float
    minutes: float
    rate_ml_per_kg_min: float
    rate_ml_per_hour: float
    volume_ml: float


@dataclass(frozen=True)
class InfusionDayPlan:
    """The rate steps that give one day's grams."""

    grams: float
    volume_ml: float
    steps: tuple[RateStep, ...]
    minutes: int
    max_rate_ml_per_kg_min: float


@dataclass(frozen=True)
class DoseResult:
    """A computed regimen cycle.

    ideal_body_weight_kg and adjusted_body_weight_kg are the formula values, shown for
    reference; dosing_weight_kg is the weight actually used (see `dosing_weight_kg`).
    """

    weight_basis: WeightBasis
    ideal_body_weight_kg: float
    adjusted_body_weight_kg: float
    dosing_weight_kg: float
    grams_per_cycle: float
    grams_per_day: float
    rounding: VialRounding
    rounded_grams_per_cycle: float
    infusion: InfusionDayPlan
    soft_stops: tuple[Problem, ...]


def ideal_body_weight_kg(sex: Sex, height_cm: float) -> float:
    """Return the Devine ideal body weight, unrounded.

    Below 60 in the formula keeps going under its base weight; nothing is clamped here
    because the height hard stop in `check_request` keeps such heights out of a regimen.
    """
    if sex not in _DEVINE_BASE_KG:
        raise ValueError(f"sex must be one of {', '.join(get_args(Sex))}, got {sex!r}")
    if not math.isfinite(height_cm) or height_cm <= 0:
        raise ValueError(f"height_cm must be a positive finite number, got {height_cm!r}")
    height_in = height_cm / _CM_PER_INCH
    return _DEVINE_BASE_KG[sex] + _DEVINE_KG_PER_INCH * (height_in - _DEVINE_BASE_HEIGHT_IN)


def adjusted_body_weight_kg(actual_kg: float, ideal_kg: float, factor: float) -> float:
    """Return the adjusted body weight: ideal + factor x (actual - ideal), unrounded."""
    if not math.isfinite(factor) or not 0.0 <= factor <= 1.0:
        # Outside [0, 1] the result would no longer lie between ideal and actual weight.
        raise ValueError(f"adjusted weight factor must be between 0 and 1, got {factor!r}")
    return ideal_kg + factor * (actual_kg - ideal_kg)


def dosing_weight_kg(
    basis: WeightBasis, sex: Sex, weight_kg: float, height_cm: float, factor: float
) -> float:
    """Return the weight a dose is computed on for this basis.

    Decision: when the actual weight is below the ideal body weight, the "ideal" and
    "adjusted" bases both use the actual weight, so a small patient is never dosed on a
    heavier weight than their own.
    """
    if basis not in get_args(WeightBasis):
        raise ValueError(
            f"weight_basis must be one of {', '.join(get_args(WeightBasis))}, got {basis!r}"
        )
    if not math.isfinite(weight_kg) or weight_kg <= 0:
        raise ValueError(f"weight_kg must be a positive finite number, got {weight_kg!r}")
    if basis == "actual":
        return weight_kg
    ideal = ideal_body_weight_kg(sex, height_cm)
    if basis == "ideal":
        return min(weight_kg, ideal)
    return min(weight_kg, adjusted_body_weight_kg(weight_kg, ideal, factor))


def round_to_vials(
    target_g: float, vial_sizes_g: Sequence[float], tolerance_percent: float
) -> VialRounding:
    """Round a daily dose to the nearest total of whole vials, using the fewest vials.

    The chosen total is the achievable total nearest to the target; ties go to the total
    needing fewer vials, then to the lower total. At least one vial is always chosen: a
    positive dose is never rounded to nothing. within_tolerance is judged on the
    2-decimal deviation_percent, so the flag always agrees with the number shown.
    """
    if not math.isfinite(target_g) or target_g <= 0:
        raise ValueError(f"target_g must be a positive finite number, got {target_g!r}")
    if not math.isfinite(tolerance_percent) or tolerance_percent < 0:
        raise ValueError(f"tolerance_percent must be >= 0, got {tolerance_percent!r}")
    sizes = sorted(set(vial_sizes_g), reverse=True)
    if not sizes:
        raise ValueError("vial_sizes_g must name at least one vial size")
    if any(not math.isfinite(size) or size <= 0 for size in sizes):
        raise ValueError(f"vial sizes must be positive finite numbers: {list(vial_sizes_g)}")

    # Integer units make "same total" exact; float sums of 2.5 g vials would drift.
    scale = packing.scale_for(sizes, "vial sizes")
    units = [round(size * scale) for size in sizes]
    target_units = target_g * scale
    # The nearest total above the target is at most one (largest) vial beyond it.
    top = math.ceil(target_units) + units[0]
    fewest = packing.fewest_table(units, top)
    unreachable = top + 1

    chosen = 0
    chosen_distance = math.inf
    tie = _EPS * max(1.0, target_units)
    for total in range(1, top + 1):
        if fewest[total] == unreachable:
            continue
        distance = abs(total - target_units)
        # Ascending totals: an exact tie on distance and count keeps the lower total.
        if distance < chosen_distance - tie or (
            distance <= chosen_distance + tie and fewest[total] < fewest[chosen]
        ):
            chosen, chosen_distance = total, distance

    counts = packing.counts_for(units, fewest, chosen)
    rounded_g = chosen / scale
    deviation = round((rounded_g - target_g) / target_g * 100, 2)
    return VialRounding(
        target_g=target_g,
        rounded_g=rounded_g,
        vials=tuple(
            (float(size), count) for size, count in zip(sizes, counts, strict=True) if count
        ),
        vial_count=sum(counts),
        deviation_percent=deviation,
        waste_g=max(0.0, rounded_g - target_g),
        within_tolerance=abs(deviation) <= tolerance_percent + _EPS,
    )


def describe_vials(vials: Iterable[Sequence[float]], total_g: float | None = None) -> str:
    """Write a vial breakdown with its units, as every page shows it.

    `vials` is [[vial size g, count], ...] (a planned infusion's planned_vials, a rounding's
    vials): each size in grams, times its count when more than one, "30 g \u00d7 2 + 20 g + 2 g";
    with `total_g`, the total first: "82 g = 30 g \u00d7 2 + 20 g + 2 g".
    """
    parts = [
        f"{size:g} g" if count == 1 else f"{size:g} g {_TIMES} {count:g}"
        for size, count in vials
        if count
    ]
    breakdown = " + ".join(parts)
    if total_g is None:
        return breakdown
    return f"{total_g:g} g = {breakdown}" if breakdown else f"{total_g:g} g"


def max_rate_ml_per_kg_min(product: Product, at_risk: bool) -> float:
    """Return the highest rate this product may run at for a patient (at risk or not)."""
    plan = product.rate_plan
    # An at-risk cap set above the normal cap must not let at-risk patients run faster.
    if at_risk:
        return min(plan.max_ml_per_kg_min, plan.max_at_risk_ml_per_kg_min)
    return plan.max_ml_per_kg_min


def plan_infusion_day(
    grams: float, dosing_weight_kg: float, product: Product, at_risk: bool
) -> InfusionDayPlan:
    """Plan the rate steps that give one day's grams of this product."""
    if not math.isfinite(grams) or grams <= 0:
        raise ValueError(f"grams must be a positive finite number, got {grams!r}")
    if not math.isfinite(dosing_weight_kg) or dosing_weight_kg <= 0:
        raise ValueError(
            f"dosing_weight_kg must be a positive finite number, got {dosing_weight_kg!r}"
        )
    if product.concentration_g_per_ml <= 0:
        raise ValueError(f"{product.name}: concentration_g_per_ml must be positive")
    plan = product.rate_plan
    if plan.start_ml_per_kg_min <= 0 or plan.max_ml_per_kg_min <= 0:
        raise ValueError(f"{product.name}: start and maximum rates must be positive")
    if plan.max_at_risk_ml_per_kg_min <= 0 or plan.step_every_minutes <= 0:
        raise ValueError(f"{product.name}: at-risk maximum and step minutes must be positive")

    cap = max_rate_ml_per_kg_min(product, at_risk)
    volume_ml = grams / product.concentration_g_per_ml
    steps: list[RateStep] = []
    remaining = volume_ml
    elapsed = 0.0
    index = 0
    while True:
        # start + n x step, not repeated addition, so float error cannot build up over steps;
        # rounding far below clinical precision makes 0.01 + 2 x 0.01 read as 0.03.
        rate = min(cap, round(plan.start_ml_per_kg_min + index * plan.step_ml_per_kg_min, 12))
        final_rate = rate >= cap - _EPS or plan.step_ml_per_kg_min <= 0
        ml_per_minute = dosing_weight_kg * rate
        full_step_ml = ml_per_minute * plan.step_every_minutes
        last = final_rate or full_step_ml >= remaining
        if last:
            minutes, step_ml = remaining / ml_per_minute, remaining
        else:
            minutes, step_ml = float(plan.step_every_minutes), full_step_ml
        steps.append(
            RateStep(
                starts_at_minute=elapsed,
                minutes=minutes,
                rate_ml_per_kg_min=rate,
                rate_ml_per_hour=round(ml_per_minute * 60, 1),
                volume_ml=step_ml,
            )
        )
        elapsed += minutes
        remaining -= step_ml
        if last:
            break
        index += 1

    return InfusionDayPlan(
        grams=grams,
        volume_ml=volume_ml,
        steps=tuple(steps),
        minutes=math.ceil(elapsed - _EPS),
        max_rate_ml_per_kg_min=cap,
    )


def _fmt(value: float) -> str:
    return repr(float(value))


def _range_problem(
    field: str, code_stem: str, value: float, low: float, high: float, unit: str
) -> Problem | None:
    show = str if isinstance(value, int) else _fmt
    if value < low:
        return Problem(
            field,
            f"{field}: {show(value)} is below the minimum of {show(low)} {unit}",
            f"{code_stem}_below_minimum",
        )
    if value > high:
        return Problem(
            field,
            f"{field}: {show(value)} is above the maximum of {show(high)} {unit}",
            f"{code_stem}_above_maximum",
        )
    return None


def _check_real(
    field: str, code_stem: str, value: object, low: float, high: float, unit: str
) -> Problem | None:
    # Requests may come from untyped JSON, so the annotation alone is not trusted.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Problem(field, f"{field}: {value!r} is not a number", f"{code_stem}_not_a_number")
    if not math.isfinite(value):
        # NaN compares false with everything, so a range check alone would let it through.
        return Problem(
            field, f"{field}: {value!r} is not a finite number", f"{code_stem}_not_finite"
        )
    return _range_problem(field, code_stem, float(value), low, high, unit)


def _check_whole(
    field: str, code_stem: str, value: object, low: int, high: int, unit: str
) -> Problem | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return Problem(
            field, f"{field}: {value!r} is not a whole number", f"{code_stem}_not_integer"
        )
    return _range_problem(field, code_stem, value, low, high, unit)


def check_request(
    request: DoseRequest, products: Mapping[str, Product], limits: DosingLimits
) -> list[Problem]:
    """List every hard stop in the request itself, in field order; empty when it is valid."""
    checks = [
        _check_real(
            "weight_kg",
            "weight",
            request.weight_kg,
            limits.min_weight_kg,
            limits.max_weight_kg,
            "kg",
        ),
        _check_real(
            "height_cm",
            "height",
            request.height_cm,
            limits.min_height_cm,
            limits.max_height_cm,
            "cm",
        ),
        None
        if request.sex in get_args(Sex)
        else Problem(
            "sex",
            f"sex: {request.sex!r} is not one of {', '.join(get_args(Sex))}",
            "unknown_sex",
        ),
        _check_real(
            "dose_g_per_kg",
            "dose",
            request.dose_g_per_kg,
            limits.min_dose_g_per_kg_per_cycle,
            limits.max_dose_g_per_kg_per_cycle,
            "g/kg per cycle",
        ),
        _check_whole(
            "days_per_cycle",
            "days_per_cycle",
            request.days_per_cycle,
            limits.min_days_per_cycle,
            limits.max_days_per_cycle,
            "day(s) per cycle",
        ),
        None
        if request.weight_basis in get_args(WeightBasis)
        else Problem(
            "weight_basis",
            f"weight_basis: {request.weight_basis!r} is not one of "
            f"{', '.join(get_args(WeightBasis))}",
            "unknown_weight_basis",
        ),
        None
        if request.product in products
        else Problem(
            "product",
            f"product: {request.product!r} is not a known product; known products: "
            f"{', '.join(sorted(products)) or 'none configured'}",
            "unknown_product",
        ),
        None
        if request.interval_weeks is None
        else _check_whole(
            "interval_weeks",
            "interval",
            request.interval_weeks,
            limits.min_interval_weeks,
            limits.max_interval_weeks,
            "weeks",
        ),
    ]
    return [problem for problem in checks if problem is not None]


def compute_dose(
    request: DoseRequest, products: Mapping[str, Product], limits: DosingLimits
) -> DoseResult:
    """Compute one cycle of a regimen, or raise DoseRejected listing every hard stop.

    The daily-grams hard stop needs a computable dose, so it is checked once the request
    itself passes `check_request`.
    """
    problems = check_request(request, products, limits)
    if problems:
        raise DoseRejected(problems)

    product = products[request.product]
    ideal = ideal_body_weight_kg(request.sex, request.height_cm)
    adjusted = adjusted_body_weight_kg(request.weight_kg, ideal, limits.adjusted_weight_factor)
    weight = dosing_weight_kg(
        request.weight_basis,
        request.sex,
        request.weight_kg,
        request.height_cm,
        limits.adjusted_weight_factor,
    )
    grams_per_cycle = request.dose_g_per_kg * weight
    grams_per_day = grams_per_cycle / request.days_per_cycle
    rounding = round_to_vials(
        grams_per_day, product.vial_sizes_g, limits.rounding_tolerance_percent
    )

    # The limit concerns what is actually hung, so it is judged on whole vials.
    if rounding.rounded_g > product.max_g_per_day + _EPS:
        raise DoseRejected(
            [
                Problem(
                    "grams_per_day",
                    f"grams_per_day: {_fmt(rounding.rounded_g)} g in whole vials (dose "
                    f"{_fmt(round(grams_per_day, 2))} g) is above the {product.name} maximum "
                    f"of {_fmt(product.max_g_per_day)} g per infusion day",
                    "daily_dose_above_product_maximum",
                )
            ]
        )

    soft_stops: list[Problem] = []
    if (
        request.thrombosis_risk
        and rounding.rounded_g >= limits.thrombosis_soft_stop_g_per_day - _EPS
    ):
        soft_stops.append(
            Problem(
                "grams_per_day",
                f"grams_per_day: {_fmt(rounding.rounded_g)} g per day in a patient with a "
                f"thrombosis risk is at or above {_fmt(limits.thrombosis_soft_stop_g_per_day)} "
                "g per day; a physician's override reason is needed",
                "thrombosis_risk_daily_dose",
            )
        )
    if (
        request.days_per_cycle == 1
        and request.dose_g_per_kg > limits.one_day_cycle_max_g_per_kg + _EPS
    ):
        soft_stops.append(
            Problem(
                "days_per_cycle",
                f"days_per_cycle: {_fmt(request.dose_g_per_kg)} g/kg in one day is above the "
                f"{_fmt(limits.one_day_cycle_max_g_per_kg)} g/kg meant for one-day cycles (the "
                "label splits a cycle over 2 to 5 days); a physician's override reason is needed",
                "one_day_cycle_dose",
            )
        )
    if not rounding.within_tolerance:
        soft_stops.append(
            Problem(
                "rounding",
                f"rounding: {_fmt(round(grams_per_day, 2))} g per day cannot be rounded to "
                f"whole vials of {product.name} within "
                f"±{_fmt(limits.rounding_tolerance_percent)}% (nearest is "
                f"{_fmt(rounding.rounded_g)} g, {rounding.deviation_percent:+.2f}%); "
                "a physician's override reason is needed",
                "rounding_outside_tolerance",
            )
        )

    return DoseResult(
        weight_basis=request.weight_basis,
        ideal_body_weight_kg=ideal,
        adjusted_body_weight_kg=adjusted,
        dosing_weight_kg=weight,
        grams_per_cycle=grams_per_cycle,
        grams_per_day=grams_per_day,
        rounding=rounding,
        rounded_grams_per_cycle=rounding.rounded_g * request.days_per_cycle,
        infusion=plan_infusion_day(
            rounding.rounded_g, weight, product, request.thrombosis_risk or request.renal_risk
        ),
        soft_stops=tuple(soft_stops),
    )
