"""Lab results of a patient: recorded against the clinic's lab list, read as a trend and by
the pre-infusion check (the newest creatinine or eGFR)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from typing import Literal

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import LabsSettings, LabTestSettings
from app.models import LabResult, Patient
from app.services import audit
from app.services.context import Actor, unit_of_work
from app.services.errors import InvalidInput, NotFound

Flag = Literal["low", "high"]


@dataclasses.dataclass(frozen=True)
class LabInput:
    test: str
    value: float
    taken_on: dt.date
    #: None: the test's configured unit (a unit given must be that one).
    unit: str | None = None
    #: The lab's reference range; both None: the test's default range from config.toml.
    ref_low: float | None = None
    ref_high: float | None = None


@dataclasses.dataclass(frozen=True)
class LabValue:
    """One result as a trend shows it: the stored values and where it lies against its range."""

    id: int
    patient_id: int
    test: str
    value: float
    unit: str
    ref_low: float | None
    ref_high: float | None
    taken_on: dt.date
    #: "low" below ref_low, "high" above ref_high, None within the range (or without one).
    flag: Flag | None


@dataclasses.dataclass(frozen=True)
class LabTrend:
    """One test's results, oldest first."""

    test: str
    label: str
    unit: str
    values: list[LabValue]

    @property
    def latest(self) -> LabValue:
        return self.values[-1]


def flag_of(value: float, ref_low: float | None, ref_high: float | None) -> Flag | None:
    """Where a value lies against its reference range (bounds themselves are within)."""
    if ref_low is not None and value < ref_low:
        return "low"
    if ref_high is not None and value > ref_high:
        return "high"
    return None


def value_of(result: LabResult) -> LabValue:
    return LabValue(
        id=result.id,
        patient_id=result.patient_id,
        test=result.test,
        value=result.value,
        unit=result.unit,
        ref_low=result.ref_low,
        ref_high=result.ref_high,
        taken_on=result.taken_on,
        flag=flag_of(result.value, result.ref_low, result.ref_high),
    )


def _unit_key(unit: str) -> str:
    """A unit as compared: "umol/l", "µmol/L" and "μmol/L" (Greek mu) are one unit."""
    folded = "".join(unit.split()).casefold()
    return folded.replace("µ", "u").replace("μ", "u").replace("²", "2")


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{name}: give a number", field=name)
    return float(value)


def _range(low: float, high: float, unit: str) -> str:
    return f"{low:g}-{high:g} {unit}"


def check_lab(data: LabInput, labs: LabsSettings, today: dt.date) -> tuple[LabTestSettings, float]:
    """Return the test's settings and the value, or raise InvalidInput naming the field and
    the limit (the patient's birth date is checked where the patient is loaded)."""
    known = labs.tests.get(data.test)
    if known is None:
        allowed = ", ".join(labs.tests) or "none configured"
        raise InvalidInput(f"test: not on the clinic's lab list; one of {allowed}", field="test")
    if data.unit is not None and _unit_key(data.unit) != _unit_key(known.unit):
        raise InvalidInput(
            f"unit: {known.label} is recorded in {known.unit} (got {data.unit!r}); "
            "convert the value first",
            field="unit",
        )
    value = _number("value", data.value)
    if not known.plausible_min <= value <= known.plausible_max:
        raise InvalidInput(
            f"value: {value:g} {known.unit} is outside the plausible "
            f"{_range(known.plausible_min, known.plausible_max, known.unit)} for {known.label} "
            "(a typo, or another unit?)",
            field="value",
        )
    for name in ("ref_low", "ref_high"):
        bound = getattr(data, name)
        if bound is None:
            continue
        bound = _number(name, bound)
        if not 0 <= bound <= known.plausible_max:
            raise InvalidInput(
                f"{name}: {bound:g} {known.unit} is outside the plausible "
                f"{_range(0, known.plausible_max, known.unit)} for {known.label}",
                field=name,
            )
    if data.ref_low is not None and data.ref_high is not None and data.ref_low > data.ref_high:
        raise InvalidInput(
            f"ref_low: must not be above ref_high ({data.ref_low:g} > {data.ref_high:g} "
            f"{known.unit})",
            field="ref_low",
        )
    if data.taken_on > today:
        raise InvalidInput(f"taken_on: not in the future (today is {today})", field="taken_on")
    return known, value


def record_lab(
    session: so.Session,
    actor: Actor,
    patient_id: int,
    data: LabInput,
    today: dt.date,
    labs: LabsSettings,
) -> LabResult:
    """Record a lab result with its unit and reference range (the lab's, else the default)."""
    known, value = check_lab(data, labs, today)
    given_range = data.ref_low is not None or data.ref_high is not None
    ref_low, ref_high = (
        (data.ref_low, data.ref_high) if given_range else (known.ref_low, known.ref_high)
    )
    with unit_of_work(session):
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise NotFound(f"patient_id: no patient {patient_id}", field="patient_id")
        if data.taken_on < patient.birth_date:
            raise InvalidInput(
                f"taken_on: not before the patient's birth date ({patient.birth_date})",
                field="taken_on",
            )
        result = LabResult(
            patient_id=patient_id,
            test=data.test,
            value=value,
            unit=known.unit,
            ref_low=ref_low,
            ref_high=ref_high,
            taken_on=data.taken_on,
            recorded_by_id=actor.user_id,
        )
        session.add(result)
        session.flush()
        audit.record(
            session,
            actor,
            "lab.record",
            "lab_result",
            result.id,
            after={
                "patient_id": patient_id,
                "test": data.test,
                "value": value,
                "unit": known.unit,
                "ref_low": ref_low,
                "ref_high": ref_high,
                "range_from": "lab" if given_range else "default",
                "taken_on": data.taken_on,
            },
        )
    return result


def latest(session: so.Session, patient_id: int, tests: Sequence[str]) -> LabResult | None:
    """The most recent result of any of `tests` (by the day taken; on one day, the last
    recorded), or None."""
    if not tests:
        return None
    return session.scalar(
        sa.select(LabResult)
        .where(LabResult.patient_id == patient_id, LabResult.test.in_(list(tests)))
        .order_by(LabResult.taken_on.desc(), LabResult.id.desc())
        .limit(1)
    )


def trend(
    session: so.Session,
    patient_id: int,
    labs: LabsSettings | None = None,
    per_test: int | None = None,
) -> list[LabTrend]:
    """A patient's results per test, each oldest first, flagged against their own reference
    range. With `labs`, tests come in the clinic's list order with its labels (a test since
    taken off the list keeps its key as label, after the others); `per_test` keeps the newest
    that many of each."""
    rows = session.scalars(
        sa.select(LabResult)
        .where(LabResult.patient_id == patient_id)
        .order_by(LabResult.test, LabResult.taken_on, LabResult.id)
    )
    by_test: dict[str, list[LabValue]] = {}
    for row in rows:
        by_test.setdefault(row.test, []).append(value_of(row))
    known = labs.tests if labs is not None else {}
    order = [key for key in known if key in by_test] + sorted(set(by_test) - set(known))
    trends = []
    for key in order:
        values = by_test[key]
        if per_test is not None:
            values = values[-per_test:]
        settings = known.get(key)
        trends.append(
            LabTrend(
                test=key,
                label=settings.label if settings else key,
                unit=settings.unit if settings else values[-1].unit,
                values=values,
            )
        )
    return trends
