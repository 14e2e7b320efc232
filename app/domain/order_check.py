"""Check an IVIG order drafted elsewhere (an EHR's order-sign) against the clinic's dosing rules.

Pure: the caller reads the draft (app/cds/bodies.py reads FHIR) and the patient's facts, and
passes the clinic's products and limits. Every number is judged by the same functions the
pages use (app.domain.dosing, app.domain.integrity); nothing here computes a dose itself
beyond turning the order's units into theirs.

Decisions:
- A draft's dose is per infusion day (FHIR: the amount per administration), in g/kg or g;
  its dose per cycle is that times the days per cycle.
- A dose in g is read on the dosing weight of the basis the order states, else the clinic's
  policy for the patient (the current regimen's basis, or [dosing].weight_basis_default). A
  dose in g that is a g/kg limit's own whole vials (the pages' rounding of it) is at the limit,
  not past it. The product's grams-per-day maximum is judged on the larger of the grams
  ordered and their whole vials: 142 g of a 140 g product is past it though it rounds to 140.
- Each finding proposes at most one correction, of its own finding, to the draft as sent: the
  EHR calls order-sign again on the revised draft, so what remains is found then.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import Literal

from app.domain import dosing, integrity
from app.domain.problems import Problem

DoseUnit = Literal["g/kg", "g"]
RateUnit = Literal["mL/kg/min", "mL/h", "mg/kg/min"]

#: The order checks' version (a card's source names it; feedback records it).
RULES_VERSION = 1
#: Every check, by rule id (after "order-sign."): what it protects.
RULES: Mapping[str, str] = {
    "dose": "the dose per cycle lies within the clinic's g/kg limits",
    "days-per-cycle": "a cycle has the allowed number of infusion days",
    "interval": "the weeks between cycles lie within the clinic's limits",
    "grams-per-day": "a day's whole vials stay within the product's maximum",
    "rate": "the infusion rate stays within the product's rate plan for this patient",
    "thrombosis-daily-dose": "a patient at thrombosis risk gets less than the daily soft stop",
    "one-day-cycle": "a one-day cycle stays within the one-day dose",
    "vial-rounding": "each day's dose is whole vials, within the rounding tolerance",
    "weight-basis": "the dose is computed on the clinic's dosing-weight basis",
    "interval-too-soon": "a cycle starts at least the interval (less tolerance) after the last",
    "patient": "the patient's measurements allow a dose to be checked",
    "product": "the product is one the clinic stocks",
    "interval-unknown": "an order that does not say the weeks between cycles is said unchecked",
    "order": "the draft's dose and timing can be read (else it is said unchecked)",
}

#: The domain's problem codes (app.domain.dosing) as order-check rule ids; by field otherwise.
_RULE_OF_CODE = {
    "thrombosis_risk_daily_dose": "thrombosis-daily-dose",
    "one_day_cycle_dose": "one-day-cycle",
    "rounding_outside_tolerance": "vial-rounding",
    "daily_dose_above_product_maximum": "grams-per-day",
}
_RULE_OF_FIELD = {
    "dose_g_per_kg": "dose",
    "days_per_cycle": "days-per-cycle",
    "interval_weeks": "interval",
    "grams_per_day": "grams-per-day",
    "weight_basis": "weight-basis",
    "product": "product",
    "weight_kg": "patient",
    "height_cm": "patient",
    "sex": "patient",
}
# Float hygiene only: no clinical meaning.
_EPS = 1e-9
#: The multiplication sign (U+00D7), as app.domain.dosing writes it.
_TIMES = "\u00d7"
#: mg per g, and minutes per hour: unit definitions.
_MG_PER_G = 1000.0
_MINUTES_PER_HOUR = 60.0


@dataclasses.dataclass(frozen=True)
class DraftDose:
    """What an IVIG order asks for, in the order's own units."""

    product: str
    #: Per infusion day.
    amount: float
    unit: DoseUnit
    days_per_cycle: int
    #: None: the order does not say ("daily for 5 days"); not guessed, and said so.
    interval_weeks: int | None
    #: The first infusion day of the cycle ordered.
    starts_on: dt.date
    #: The dosing-weight basis the order states; None: not stated.
    weight_basis: dosing.WeightBasis | None = None
    #: The highest rate the order lets the infusion reach; None: not stated.
    rate: float | None = None
    rate_unit: RateUnit | None = None


@dataclasses.dataclass(frozen=True)
class PatientFacts:
    """The patient as the pages know them."""

    weight_kg: float
    height_cm: float
    sex: dosing.Sex
    #: The clinic's basis for this patient: the current regimen's, or the clinic default.
    policy_basis: dosing.WeightBasis
    thrombosis_risk: bool = False
    renal_risk: bool = False
    #: First day of the last cycle given (a day given or partly given); None: none yet.
    last_cycle_started_on: dt.date | None = None


@dataclasses.dataclass(frozen=True)
class Correction:
    """The draft changed so that one finding goes away; None fields stay as ordered."""

    amount: float | None = None
    rate: float | None = None
    weight_basis: dosing.WeightBasis | None = None
    starts_on: dt.date | None = None


@dataclasses.dataclass(frozen=True)
class Finding:
    """One rule the draft breaks: a hard stop (critical) or a soft one (warning)."""

    rule: str
    hard: bool
    message: str
    #: What the draft says, and what the correction makes it, for people ("1.2 g/kg").
    found: str
    corrected: str | None = None
    correction: Correction | None = None


@dataclasses.dataclass(frozen=True)
class OrderCheck:
    """A draft's findings, with the arithmetic they were judged on."""

    findings: tuple[Finding, ...]
    weight_basis: dosing.WeightBasis
    dosing_weight_kg: float
    dose_g_per_kg_per_cycle: float
    #: The dose as the pages compute it (None when a hard stop kept it from being computed).
    result: dosing.DoseResult | None


@dataclasses.dataclass(frozen=True)
class Rules:
    """The clinic's settings an order is judged by."""

    products: Mapping[str, dosing.Product]
    limits: dosing.DosingLimits
    interval_tolerance_days: int


class Uncheckable(ValueError):
    """The patient's record does not allow the order to be checked (e.g. no height)."""


def _amount(value: float, unit: str) -> str:
    return f"{round(value, 3):g} {unit}"


def _rate_text(value: float, unit: str) -> str:
    return f"{round(value, 4):g} {unit}"


def _rule(problem: Problem) -> str:
    return _RULE_OF_CODE.get(problem.code) or _RULE_OF_FIELD.get(problem.field, "dose")


def _request(
    draft: DraftDose, patient: PatientFacts, basis: dosing.WeightBasis, per_cycle: float
) -> dosing.DoseRequest:
    return dosing.DoseRequest(
        weight_kg=patient.weight_kg,
        height_cm=patient.height_cm,
        sex=patient.sex,
        dose_g_per_kg=per_cycle,
        days_per_cycle=draft.days_per_cycle,
        weight_basis=basis,
        product=draft.product,
        interval_weeks=draft.interval_weeks,
        thrombosis_risk=patient.thrombosis_risk,
        renal_risk=patient.renal_risk,
    )


def _rate_ml_per_kg_min(
    rate: float, unit: RateUnit, weight_kg: float, product: dosing.Product
) -> float:
    """A rate in mL/kg/min (DOMAIN.md: mL/h = weight kg x mL/kg/min x 60)."""
    if unit == "mL/kg/min":
        return rate
    if unit == "mL/h":
        return rate / (weight_kg * _MINUTES_PER_HOUR)
    return rate / (product.concentration_g_per_ml * _MG_PER_G)


def _rate_in(
    ml_per_kg_min: float, unit: RateUnit, weight_kg: float, product: dosing.Product
) -> float:
    """A rate in mL/kg/min back in the order's unit, never above it (rounded down)."""
    if unit == "mL/kg/min":
        return ml_per_kg_min
    if unit == "mL/h":
        return math.floor(ml_per_kg_min * weight_kg * _MINUTES_PER_HOUR * 10 + _EPS) / 10
    return ml_per_kg_min * product.concentration_g_per_ml * _MG_PER_G


def _grams_per_day(
    draft: DraftDose,
    patient: PatientFacts,
    basis: dosing.WeightBasis,
    per_cycle: float,
    rules: Rules,
) -> float | None:
    """Whole vials a day for this dose per cycle on this basis (None when a stop refuses it)."""
    try:
        result = dosing.compute_dose(
            _request(draft, patient, basis, per_cycle), rules.products, rules.limits
        )
    except dosing.DoseRejected:
        return None
    return result.rounding.rounded_g


def _in_draft_unit(
    draft: DraftDose,
    patient: PatientFacts,
    basis: dosing.WeightBasis,
    per_cycle: float,
    rules: Rules,
) -> float | None:
    """A dose per cycle as the draft would write it per day (g/kg, or whole-vial grams)."""
    if draft.unit == "g/kg":
        return per_cycle / draft.days_per_cycle
    return _grams_per_day(draft, patient, basis, per_cycle, rules)


def _as_the_pages_round(
    draft: DraftDose,
    patient: PatientFacts,
    basis: dosing.WeightBasis,
    per_cycle: float,
    rules: Rules,
) -> float:
    """A dose in grams just past a g/kg limit that is the limit's own whole vials (as the
    pages round the limit dose) is the limit: rounding to the vial is what the pages do."""
    limits = rules.limits
    high, low = limits.max_dose_g_per_kg_per_cycle, limits.min_dose_g_per_kg_per_cycle
    if per_cycle > high:
        cap = _grams_per_day(draft, patient, basis, high, rules)
        if cap is not None and draft.amount <= cap + _EPS:
            return high
    if per_cycle < low:
        floor = _grams_per_day(draft, patient, basis, low, rules)
        if floor is not None and draft.amount >= floor - _EPS:
            return low
    return per_cycle


def check_order(draft: DraftDose, patient: PatientFacts, rules: Rules) -> OrderCheck:
    """Judge one drafted IVIG order; hard stops first. Raise Uncheckable when the patient's
    measurements cannot carry a dose."""
    limits = rules.limits
    basis = draft.weight_basis or patient.policy_basis
    try:
        weight = dosing.dosing_weight_kg(
            basis, patient.sex, patient.weight_kg, patient.height_cm, limits.adjusted_weight_factor
        )
    except ValueError as exc:
        raise Uncheckable(str(exc)) from exc
    days = draft.days_per_cycle
    # A dose in g is read on the dosing weight (the module's decision).
    per_cycle = draft.amount * days if draft.unit == "g/kg" else draft.amount * days / weight
    if draft.unit == "g":
        per_cycle = _as_the_pages_round(draft, patient, basis, per_cycle, rules)
    request = _request(draft, patient, basis, per_cycle)
    findings: list[Finding] = []

    problems = dosing.check_request(request, rules.products, limits)
    patient_problems = [p for p in problems if _rule(p) == "patient"]
    if patient_problems:
        raise Uncheckable("; ".join(p.message for p in patient_problems))
    result: dosing.DoseResult | None = None
    findings += [_hard_finding(p, draft, patient, basis, per_cycle, rules) for p in problems]
    if not problems:
        try:
            result = dosing.compute_dose(request, rules.products, limits)
        except dosing.DoseRejected as exc:
            findings += [
                Finding(_rule(p), True, p.message, _found(_rule(p), draft, per_cycle))
                for p in exc.problems
            ]
    findings += _rate_findings(draft, patient, weight, rules)
    if result is not None:
        findings += [
            Finding(_rule(p), False, p.message, _found(_rule(p), draft, per_cycle))
            for p in result.soft_stops
        ]
        maximum = _maximum_findings(draft, result, rules)
        # The maximum's correction is the whole vials the rounding note would propose.
        findings += maximum or _rounding_findings(draft, result)
    findings += _basis_findings(draft, patient, per_cycle, rules)
    findings += _interval_findings(draft, patient, rules)
    findings.sort(key=lambda f: not f.hard)
    return OrderCheck(tuple(findings), basis, weight, per_cycle, result)


def _hard_finding(
    problem: Problem,
    draft: DraftDose,
    patient: PatientFacts,
    basis: dosing.WeightBasis,
    per_cycle: float,
    rules: Rules,
) -> Finding:
    """A hard stop of the request itself, with its correction where there is one."""
    if problem.code == "unknown_product":
        return _unstocked(draft, rules)
    rule = _rule(problem)
    finding = Finding(rule, True, problem.message, _found(rule, draft, per_cycle))
    if problem.code != "dose_above_maximum":
        return finding
    high = rules.limits.max_dose_g_per_kg_per_cycle
    fixed = _in_draft_unit(draft, patient, basis, high, rules)
    if fixed is None:
        return finding
    return dataclasses.replace(
        finding,
        corrected=f"{_amount(fixed, f'{draft.unit} per day')} ({_amount(high, 'g/kg')} per cycle)",
        correction=Correction(amount=fixed),
    )


def _unstocked(draft: DraftDose, rules: Rules) -> Finding:
    """The order names a product the clinic does not stock: no correction (the product is
    the prescriber's choice), and what cannot be checked said."""
    stocked = ", ".join(sorted(rules.products)) or "none configured"
    return Finding(
        "product",
        True,
        f"product: the order names {draft.product}, which the clinic does not stock (it "
        f"stocks {stocked}); its grams per day, whole vials and rate cannot be checked against "
        "the clinic's vial sizes and rate plan",
        draft.product,
    )


def _found(rule: str, draft: DraftDose, per_cycle: float) -> str:
    if rule == "days-per-cycle":
        return f"{draft.days_per_cycle} day(s) per cycle"
    if rule == "interval":
        return f"every {draft.interval_weeks} weeks"
    return (
        f"{_amount(draft.amount, draft.unit)} per day {_TIMES} {draft.days_per_cycle} = "
        f"{_amount(per_cycle, 'g/kg')} per cycle"
    )


def _rate_findings(
    draft: DraftDose, patient: PatientFacts, weight: float, rules: Rules
) -> list[Finding]:
    """The rate on the dosing weight, against the product's cap for this patient (judged
    whatever the dose: a rate too fast stays too fast at a corrected dose)."""
    product = rules.products.get(draft.product)
    if draft.rate is None or draft.rate_unit is None or product is None:
        return []
    rate = _rate_ml_per_kg_min(draft.rate, draft.rate_unit, weight, product)
    cap = dosing.max_rate_ml_per_kg_min(product, patient.thrombosis_risk or patient.renal_risk)
    if rate <= cap + _EPS:
        return []
    fixed = _rate_in(cap, draft.rate_unit, weight, product)
    return [
        Finding(
            "rate",
            True,
            f"rate: {_rate_text(draft.rate, draft.rate_unit)} is {rate:.4f} mL/kg/min on "
            f"{weight:.1f} kg, above the {product.name} maximum of {cap:g} mL/kg/min for this "
            "patient",
            _rate_text(draft.rate, draft.rate_unit),
            _rate_text(fixed, draft.rate_unit),
            Correction(rate=fixed),
        )
    ]


def _maximum_findings(draft: DraftDose, result: dosing.DoseResult, rules: Rules) -> list[Finding]:
    """A dose in grams above the product's daily maximum, though its whole vials are not: the
    larger of the grams ordered and the grams rounded is judged (the order says what is to
    be given; the pages judge the whole vials of a g/kg dose, which is what they hang)."""
    product = rules.products.get(draft.product)
    rounded = result.rounding.rounded_g
    if draft.unit != "g" or product is None:
        return []
    if max(draft.amount, rounded) <= product.max_g_per_day + _EPS:
        return []
    # compute_dose refuses whole vials above the maximum, so the rounded grams are within it.
    vials = dosing.describe_vials(result.rounding.vials, rounded)
    return [
        Finding(
            "grams-per-day",
            True,
            f"grams_per_day: {_amount(draft.amount, 'g')} a day as ordered is above the "
            f"{product.name} maximum of {_amount(product.max_g_per_day, 'g')} per infusion day "
            f"(whole vials: {vials})",
            _amount(draft.amount, "g per day"),
            _amount(rounded, "g per day"),
            Correction(amount=rounded),
        )
    ]


def _rounding_findings(draft: DraftDose, result: dosing.DoseResult) -> list[Finding]:
    """A dose in grams that is not whole vials, where whole vials lie within the tolerance
    (outside it, the dosing soft stop says so)."""
    rounding = result.rounding
    if draft.unit != "g" or not rounding.within_tolerance:
        return []
    if abs(rounding.rounded_g - draft.amount) <= _EPS:
        return []
    vials = dosing.describe_vials(rounding.vials, rounding.rounded_g)
    return [
        Finding(
            "vial-rounding",
            False,
            f"rounding: {_amount(draft.amount, 'g')} per day is not whole vials of "
            f"{draft.product}; the nearest is {vials} ({rounding.deviation_percent:+.2f}%)",
            _amount(draft.amount, "g per day"),
            _amount(rounding.rounded_g, "g per day"),
            Correction(amount=rounding.rounded_g),
        )
    ]


def _basis_findings(
    draft: DraftDose, patient: PatientFacts, per_cycle: float, rules: Rules
) -> list[Finding]:
    if draft.weight_basis is None or draft.weight_basis == patient.policy_basis:
        return []
    policy = patient.policy_basis
    amount = (
        draft.amount
        if draft.unit == "g/kg"
        else _grams_per_day(draft, patient, policy, per_cycle, rules)
    )
    message = (
        f"weight_basis: the order doses on the {draft.weight_basis} weight; the clinic doses "
        f"this patient on the {policy} weight"
    )
    if amount is None:
        return [Finding("weight-basis", False, message, f"{draft.weight_basis} weight")]
    corrected = f"{policy} weight" + (
        f", {_amount(amount, 'g per day')}" if draft.unit == "g" else ""
    )
    return [
        Finding(
            "weight-basis",
            False,
            message,
            f"{draft.weight_basis} weight",
            corrected,
            Correction(amount=amount if draft.unit == "g" else None, weight_basis=policy),
        )
    ]


def _interval_findings(draft: DraftDose, patient: PatientFacts, rules: Rules) -> list[Finding]:
    if draft.interval_weeks is None:
        return [
            Finding(
                "interval-unknown",
                False,
                f"interval: the order gives the dose daily for {draft.days_per_cycle} day(s) "
                "and not the weeks until the next cycle, so the interval and the time since "
                "the last cycle given were not checked; state it in the order or check it by "
                "hand",
                f"daily for {draft.days_per_cycle} day(s)",
            )
        ]
    last = patient.last_cycle_started_on
    limits = rules.limits
    if last is None or not (
        limits.min_interval_weeks <= draft.interval_weeks <= limits.max_interval_weeks
    ):
        return []
    minimum = integrity.min_days_between_cycles(draft.interval_weeks, rules.interval_tolerance_days)
    gap = (draft.starts_on - last).days
    if gap >= minimum:
        return []
    planned = last + dt.timedelta(weeks=draft.interval_weeks)
    return [
        Finding(
            "interval-too-soon",
            False,
            f"starts_on: {draft.starts_on.isoformat()} is {gap} days after the last cycle given "
            f"began ({last.isoformat()}); every {draft.interval_weeks} weeks needs at least "
            f"{minimum} days",
            f"starts {draft.starts_on.isoformat()}",
            f"starts {planned.isoformat()}",
            Correction(starts_on=planned),
        )
    ]
