"""The visit at the chair: its states and the checks every record of it must pass.

Pure functions over plain values (no configuration, no database, no clock): the service
passes in the clinic's limits and "now". Each check returns every problem it finds, so a nurse
sees all of them at once; the service turns them into one refusal and writes nothing.

States: scheduled -> checked_in -> in_chair -> given (completed) or partial (stopped early);
missed and cancelled before the infusion starts. A time is never in the future (beyond the
clock skew allowed at the chair) and never before the step that came before it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from app.domain.problems import Problem, Rejected

#: Which state each visit action leads from and to.
TRANSITIONS: Mapping[str, tuple[frozenset[str], str]] = {
    "check_in": (frozenset({"scheduled"}), "checked_in"),
    "start": (frozenset({"checked_in"}), "in_chair"),
    "complete": (frozenset({"in_chair"}), "given"),
    "stop": (frozenset({"in_chair"}), "partial"),
}

_GRAMS_EPS = 0.005  # float hygiene on sums of vial sizes (no clinical meaning)


class VisitRejected(Rejected):
    """A visit record that breaks one or more of the rules."""


def _fmt(value: float) -> str:
    return f"{value:g}"


def check_transition(action: str, status: str) -> None:
    """Raise VisitRejected unless `action` may follow the visit's current `status`."""
    allowed, _to = TRANSITIONS[action]
    if status not in allowed:
        need = " or ".join(sorted(allowed))
        raise VisitRejected(
            [
                Problem(
                    "status",
                    f"status: the visit is {status.replace('_', ' ')}; this needs it "
                    f"{need.replace('_', ' ')}",
                    "visit_order",
                )
            ]
        )


def time_problems(
    field: str,
    at: dt.datetime,
    now: dt.datetime,
    skew: dt.timedelta,
    not_before: dt.datetime | None = None,
    before_what: str = "",
) -> list[Problem]:
    """A moment at the chair: with its offset, not in the future, not before the step it
    follows."""
    if at.utcoffset() is None:
        return [
            Problem(field, f"{field}: give the time with its offset, e.g. 09:30Z", "naive_time")
        ]
    problems = []
    if at > now + skew:
        problems.append(Problem(field, f"{field}: {at:%H:%M} is in the future", "future_time"))
    if not_before is not None and at < not_before:
        problems.append(
            Problem(
                field,
                f"{field}: {at:%H:%M} is before {before_what} ({not_before:%H:%M})",
                "time_order",
            )
        )
    return problems


# --- the pre-infusion check ---------------------------------------------------------------


@dataclass(frozen=True)
class DayDose:
    """The day's dose from the day's weight, against the dose the booking carries."""

    planned_grams: float
    day_grams: float
    change_percent: float
    needs_approval: bool


def day_dose(planned_grams: float, day_grams: float, threshold_percent: float) -> DayDose:
    """Compare the dose recomputed from today's weight with the booked one; a change beyond
    the clinic's threshold (default 5%) waits for a physician's approval."""
    if planned_grams <= 0 or day_grams <= 0:
        raise ValueError("grams must be positive")
    change = (day_grams - planned_grams) / planned_grams * 100
    return DayDose(
        planned_grams=planned_grams,
        day_grams=day_grams,
        change_percent=round(change, 1),
        needs_approval=abs(change) > threshold_percent + 1e-9,
    )


def visit_grams(planned_grams: float, day_grams: float | None, approval: str | None) -> float:
    """The grams a visit gives: the day's dose once the check set it (and a physician approved
    it when it had to be), else the booked dose."""
    if day_grams is None or approval == "waiting":
        return planned_grams
    return day_grams


def on_the_booked_day(
    field: str, at: dt.datetime, booked_on: dt.date, local_day: dt.date
) -> list[Problem]:
    """A visit is checked in and started on its booked day (the center's date)."""
    if local_day == booked_on:
        return []
    return [
        Problem(
            field,
            f"{field}: the visit is booked on {booked_on}, not {local_day}; move it to that day "
            "first",
            "visit_day",
        )
    ]


@dataclass(frozen=True)
class RenalCheck:
    """Whether a creatinine or eGFR result is recent enough, and what to say if not."""

    required: bool
    latest_on: dt.date | None
    soft_stop: str | None


def renal_check(
    at_risk: bool, latest_on: dt.date | None, today: dt.date, max_age_days: int
) -> RenalCheck:
    """A patient flagged for renal or thrombosis risk needs a creatinine or eGFR no older than
    the clinic's limit; without one the nurse may go on only with a reason (a soft stop)."""
    if not at_risk:
        return RenalCheck(False, latest_on, None)
    if latest_on is None:
        return RenalCheck(
            True, None, "no creatinine or eGFR on record for a patient at renal or thrombosis risk"
        )
    age = (today - latest_on).days
    if age > max_age_days:
        return RenalCheck(
            True,
            latest_on,
            f"the latest creatinine or eGFR is from {latest_on} ({age} days ago; the limit "
            f"for a patient at renal or thrombosis risk is {max_age_days} days)",
        )
    return RenalCheck(True, latest_on, None)


# --- vital signs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    """The physiologically possible range of one vital sign (typos outside it are refused)."""

    low: float
    high: float
    unit: str


def vitals_problems(
    values: Mapping[str, float | None], bounds: Mapping[str, Bound]
) -> list[Problem]:
    """Every vital sign outside its range, with the range and its unit; at least one given."""
    given = {name: value for name, value in values.items() if value is not None}
    if not given:
        return [Problem("vitals", "vitals: give at least one vital sign", "no_vitals")]
    problems = []
    for name, value in given.items():
        bound = bounds[name]
        if not math.isfinite(value) or not bound.low <= value <= bound.high:
            problems.append(
                Problem(
                    name,
                    f"{name}: {_fmt(value)} {bound.unit} is outside "
                    f"{_fmt(bound.low)}-{_fmt(bound.high)} {bound.unit}",
                    "vital_out_of_range",
                )
            )
    if (
        given.get("diastolic_mmhg") is not None
        and given.get("systolic_mmhg") is not None
        and given["diastolic_mmhg"] >= given["systolic_mmhg"]
    ):
        problems.append(
            Problem(
                "diastolic_mmhg",
                f"diastolic_mmhg: {_fmt(given['diastolic_mmhg'])} mmHg must be below the "
                f"systolic {_fmt(given['systolic_mmhg'])} mmHg",
                "vital_out_of_range",
            )
        )
    return problems


# --- the product given ------------------------------------------------------------------------


@dataclass(frozen=True)
class VialUse:
    """Vials of one lot: product, lot number, expiry, vial size and how many."""

    product: str
    lot_number: str
    expires_on: dt.date
    vial_grams: float
    count: int


def normal_lot(lot_number: str) -> str:
    """A lot number as stored and searched: trimmed, upper-case, inner spaces removed."""
    return "".join(lot_number.split()).upper()


def vial_problems(
    vials: Sequence[VialUse],
    given_grams: float,
    given_on: dt.date,
    product: str,
    vial_sizes_g: Iterable[float],
    stopped_early: bool = False,
) -> list[Problem]:
    """The vials used: the booked product only (brands are not mixed in a visit), sizes it
    comes in, none past expiry on the day given, and whole vials adding up to the grams given
    (an infusion stopped early may leave part of the vials opened unused)."""
    if not vials:
        return [
            Problem("vials", "vials: record each lot used (lot, expiry, size, count)", "no_vials")
        ]
    sizes = set(vial_sizes_g)
    problems = []
    for index, vial in enumerate(vials):
        where = f"vials.{index}"
        if vial.product != product:
            problems.append(
                Problem(
                    f"{where}.product",
                    f"{where}.product: {vial.product} is not the booked {product} (brands are "
                    "not mixed in a visit)",
                    "vial_product",
                )
            )
        if vial.vial_grams not in sizes:
            listed = ", ".join(f"{_fmt(s)} g" for s in sorted(sizes))
            problems.append(
                Problem(
                    f"{where}.vial_grams",
                    f"{where}.vial_grams: {product} comes in {listed} "
                    f"(got {_fmt(vial.vial_grams)} g)",
                    "vial_size",
                )
            )
        if vial.expires_on < given_on:
            problems.append(
                Problem(
                    f"{where}.expires_on",
                    f"{where}.expires_on: lot {vial.lot_number} expired on {vial.expires_on}, "
                    f"before the infusion on {given_on}",
                    "lot_expired",
                )
            )
        if not normal_lot(vial.lot_number):
            problems.append(Problem(f"{where}.lot_number", f"{where}.lot_number: required", "lot"))
    total = sum(v.vial_grams * v.count for v in vials)
    if stopped_early and total + _GRAMS_EPS >= given_grams:
        return problems
    if stopped_early:
        problems.append(
            Problem(
                "vials",
                f"vials: the vials opened hold {_fmt(round(total, 2))} g, less than the "
                f"{_fmt(given_grams)} g given",
                "vials_sum",
            )
        )
    elif abs(total - given_grams) > _GRAMS_EPS:
        problems.append(
            Problem(
                "vials",
                f"vials: the vials add up to {_fmt(round(total, 2))} g, not the "
                f"{_fmt(given_grams)} g given",
                "vials_sum",
            )
        )
    return problems


# --- rate steps -------------------------------------------------------------------------------


def ml_per_kg_min(rate_ml_per_h: float, dosing_weight_kg: float) -> float:
    """A pump rate in mL/h as mL per kg per minute for the patient's dosing weight."""
    if dosing_weight_kg <= 0:
        raise ValueError("dosing_weight_kg must be positive")
    return rate_ml_per_h / 60 / dosing_weight_kg


def rate_problems(
    rate_ml_per_h: float, dosing_weight_kg: float, max_ml_per_kg_min: float, action: str
) -> list[Problem]:
    """A rate as run: none above the regimen's maximum; 0 only while paused."""
    if not math.isfinite(rate_ml_per_h) or rate_ml_per_h < 0:
        return [Problem("rate_ml_per_h", "rate_ml_per_h: give a rate of 0 or more mL/h", "rate")]
    if action == "paused":
        if rate_ml_per_h != 0:
            return [Problem("rate_ml_per_h", "rate_ml_per_h: a pause runs at 0 mL/h", "rate")]
        return []
    if rate_ml_per_h == 0:
        return [
            Problem(
                "rate_ml_per_h", "rate_ml_per_h: 0 mL/h is a pause: record it as paused", "rate"
            )
        ]
    # Pumps and the rate plan show mL/h to one decimal: the maximum is judged the same way.
    highest = round(max_ml_per_kg_min * 60 * dosing_weight_kg, 1)
    if rate_ml_per_h > highest + 1e-9:
        return [
            Problem(
                "rate_ml_per_h",
                f"rate_ml_per_h: {_fmt(rate_ml_per_h)} mL/h is "
                f"{ml_per_kg_min(rate_ml_per_h, dosing_weight_kg):.3f} mL/kg/min, above the "
                f"maximum of {_fmt(max_ml_per_kg_min)} mL/kg/min ({highest:.1f} mL/h at "
                f"{_fmt(round(dosing_weight_kg, 1))} kg)",
                "rate_above_maximum",
            )
        ]
    return []


def slower_problems(rate_ml_per_h: float, running: float | None, action: str) -> list[Problem]:
    """Slowing runs slower than the rate running (when one is recorded)."""
    if action != "slowed" or running is None or rate_ml_per_h < running:
        return []
    return [
        Problem(
            "rate_ml_per_h",
            f"rate_ml_per_h: slowed means below the {_fmt(running)} mL/h running "
            f"(got {_fmt(rate_ml_per_h)} mL/h)",
            "not_slower",
        )
    ]


def refuse(problems: Sequence[Problem]) -> None:
    """Raise VisitRejected when there is any problem."""
    if problems:
        raise VisitRejected(problems)
