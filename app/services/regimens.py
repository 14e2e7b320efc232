"""Set a patient's IVIG regimen (a new version) and re-plan the future in one transaction."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.db import utcnow
from app.domain import dosing, schedule
from app.domain.problems import Problem
from app.models import Center, Infusion, Patient, Regimen, WeightMeasurement
from app.services import audit, integrity, previews, reviews, scheduling, versions
from app.services.context import Actor, unit_of_work
from app.services.errors import Conflict, InvalidInput, NotFound


@dataclasses.dataclass(frozen=True)
class RegimenInput:
    product: str
    dose_g_per_kg: float
    days_per_cycle: int
    interval_weeks: int
    weight_basis: str
    starts_on: dt.date
    reason: str
    #: The version the physician saw; None only for a patient's first regimen.
    based_on_version: int | None = None
    preferred_weekday: int | None = None
    preferred_time: dt.time | None = None
    center_id: int | None = None
    override_reason: str | None = None
    #: The change is an approved suggestion: a physician's decision on the course's evidence,
    #: so an overdue course review does not stop it (it stays due, with its task).
    decided_suggestion: bool = False


class Prescribed(Protocol):
    """What a dose is computed from: a regimen input, or a regimen version as saved."""

    @property
    def product(self) -> str: ...
    @property
    def dose_g_per_kg(self) -> float: ...
    @property
    def days_per_cycle(self) -> int: ...
    @property
    def interval_weeks(self) -> int: ...
    @property
    def weight_basis(self) -> str: ...


def dose_request(patient: Patient, weight_kg: float, data: Prescribed) -> dosing.DoseRequest:
    """Build the domain's dose request from a patient and a regimen (input or version)."""
    if patient.height_cm is None:
        raise InvalidInput("height_cm: record the patient's height first", field="height_cm")
    return dosing.DoseRequest(
        weight_kg=weight_kg,
        height_cm=patient.height_cm,
        sex=patient.sex,  # type: ignore[arg-type]
        dose_g_per_kg=data.dose_g_per_kg,
        days_per_cycle=data.days_per_cycle,
        weight_basis=data.weight_basis,  # type: ignore[arg-type]
        product=data.product,
        interval_weeks=data.interval_weeks,
        thrombosis_risk=patient.thrombosis_risk,
        renal_risk=patient.renal_risk,
    )


def calculate(request: dosing.DoseRequest, settings: Settings) -> dosing.DoseResult:
    """Run the dose arithmetic; hard stops become a 422 naming the first field."""
    try:
        return dosing.compute_dose(request, settings.product_catalog(), settings.dosing_limits())
    except dosing.DoseRejected as exc:
        first = exc.problems[0]
        message = "; ".join(problem.message for problem in exc.problems)
        raise InvalidInput(message, field=first.field) from exc


def latest_weight(session: so.Session, patient_id: int) -> WeightMeasurement | None:
    return session.scalar(
        sa.select(WeightMeasurement)
        .where(WeightMeasurement.patient_id == patient_id)
        .order_by(WeightMeasurement.measured_on.desc(), WeightMeasurement.id.desc())
        .limit(1)
    )


def current_regimen(session: so.Session, patient_id: int, lock: bool = False) -> Regimen | None:
    return versions.latest_version(session, Regimen, patient_id, lock)


def regimen_view(regimen: Regimen | None) -> dict[str, object] | None:
    if regimen is None:
        return None
    return {
        "version": regimen.version,
        "product": regimen.product,
        "dose_g_per_kg": regimen.dose_g_per_kg,
        "days_per_cycle": regimen.days_per_cycle,
        "interval_weeks": regimen.interval_weeks,
        "weight_basis": regimen.weight_basis,
        "dosing_weight_kg": regimen.dosing_weight_kg,
        "grams_per_day": regimen.grams_per_day,
        "starts_on": regimen.starts_on,
        "center_id": regimen.center_id,
        "preferred_time": regimen.preferred_time,
        "override_reason": regimen.override_reason,
        "reason": regimen.reason,
    }


#: Attempts when a concurrent booking took a chair (or locked SQLite) between read and write.
_BOOKING_ATTEMPTS = 3


def set_regimen(
    session: so.Session,
    actor: Actor,
    patient_id: int,
    data: RegimenInput,
    settings: Settings,
    now: dt.datetime | None = None,
    fingerprint: str | None = None,
) -> tuple[Regimen, scheduling.ReplanResult]:
    """Record a new regimen version (physician) and re-plan future infusions; with the
    `fingerprint` of a preview, only if the bookings change exactly as it showed."""
    attempts = 1 if session.info.get("unit_depth", 0) else _BOOKING_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            with unit_of_work(session):
                if fingerprint is None:
                    # No preview was confirmed: nothing to compare the bookings against.
                    return _set_regimen_once(session, actor, patient_id, data, settings, now)
                result, _preview = previews.confirmed(
                    session,
                    Infusion.patient_id == patient_id,
                    lambda: _set_regimen_once(session, actor, patient_id, data, settings, now),
                    fingerprint,
                )
            return result
        except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
            # Another request booked the same chair, or took the next version, after we read;
            # the database refused it (exclusion constraint / trigger / unique key). Try again
            # on fresh data: a lost version race then surfaces as a clean 409 below.
            if attempt == attempts or not scheduling.is_booking_race(exc):
                raise Conflict(
                    "the schedule changed while booking; reload and try again",
                    field="based_on_version",
                ) from exc
    raise AssertionError("unreachable")


def _set_regimen_once(
    session: so.Session,
    actor: Actor,
    patient_id: int,
    data: RegimenInput,
    settings: Settings,
    now: dt.datetime | None,
) -> tuple[Regimen, scheduling.ReplanResult]:
    if not data.reason.strip():
        raise InvalidInput("reason: say why the regimen is set or changed", field="reason")
    if data.preferred_weekday is not None and not 0 <= data.preferred_weekday <= 6:
        raise InvalidInput("preferred_weekday: 0 (Monday) to 6 (Sunday)", field="preferred_weekday")
    with unit_of_work(session):
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise NotFound(f"patient_id: no patient {patient_id}", field="patient_id")
        integrity.lock_patient(session, patient_id)
        current = current_regimen(session, patient_id, lock=True)
        current_version = current.version if current else None
        versions.require_based_on(current_version, data.based_on_version, "regimen")
        weight = latest_weight(session, patient_id)
        if weight is None:
            raise InvalidInput("weight_kg: record the patient's weight first", field="weight_kg")
        result = calculate(dose_request(patient, weight.weight_kg, data), settings)
        soft_stops = list(result.soft_stops)
        override = (data.override_reason or "").strip() or None
        # The booked schedule is checked at commit (app.services.integrity): a cycle too soon
        # after the last one is a soft rule this override may also cover.
        integrity.guard(session, field="starts_on", actor=actor, override_reason=override)
        center_id = data.center_id or patient.home_center_id
        center = session.get(Center, center_id)
        if center is None:
            raise InvalidInput(f"center_id: no center {center_id}", field="center_id")
        now = now or utcnow()
        today = schedule.local_date(now, center.timezone)
        course = reviews.course_limits(session, patient_id, settings, today)
        if course.booking_stop is not None and not data.decided_suggestion:
            code = "course_stopped" if course.stopped_on else "review_overdue"
            soft_stops.append(Problem("override_reason", course.booking_stop, code))
        if soft_stops and override is None:
            warnings = "; ".join(problem.message for problem in soft_stops)
            raise InvalidInput(
                f"override_reason: a physician's reason is needed to go ahead: {warnings}",
                field="override_reason",
            )
        regimen = build_version(
            patient,
            (current_version or 0) + 1,
            data,
            weight.weight_kg,
            result,
            soft_stops,
            override if soft_stops else None,
            center_id,
            settings,
            actor,
        )
        session.add(regimen)
        session.flush()
        plan = scheduling.replan(session, regimen, settings, today, now, course=course)
        audit.record(
            session,
            actor,
            "regimen.set",
            "regimen",
            regimen.id,
            before=regimen_view(current),
            after={
                **(regimen_view(regimen) or {}),
                "patient_id": patient_id,
                "replan": plan.summary(),
            },
        )
    return regimen, plan


def build_version(
    patient: Patient,
    version: int,
    data: RegimenInput,
    weight_kg: float,
    result: dosing.DoseResult,
    soft_stops: Sequence[Problem],
    override_reason: str | None,
    center_id: int,
    settings: Settings,
    actor: Actor,
) -> Regimen:
    """A regimen version as saved: the prescription, the dose computed for it, and who set it
    (setting a regimen on the page, and the clinic file's import, build it here)."""
    return Regimen(
        patient_id=patient.id,
        version=version,
        product=data.product,
        dose_g_per_kg=data.dose_g_per_kg,
        days_per_cycle=data.days_per_cycle,
        interval_weeks=data.interval_weeks,
        weight_basis=data.weight_basis,
        starts_on=data.starts_on,
        preferred_weekday=data.preferred_weekday,
        preferred_time=data.preferred_time or settings.scheduling.default_start_time,
        center_id=center_id,
        weight_kg=weight_kg,
        height_cm=patient.height_cm,
        dosing_weight_kg=result.dosing_weight_kg,
        grams_per_day=result.rounding.rounded_g,
        grams_per_cycle=result.rounded_grams_per_cycle,
        minutes_per_day=result.infusion.minutes,
        calculation=audit.json_safe(dataclasses.asdict(result)),
        soft_stops=[dataclasses.asdict(problem) for problem in soft_stops],
        override_reason=override_reason,
        reason=data.reason.strip(),
        created_by_id=actor.user_id,
    )


def preview_regimen(
    session: so.Session,
    actor: Actor,
    patient_id: int,
    data: RegimenInput,
    settings: Settings,
    now: dt.datetime | None = None,
) -> tuple[dict[str, Any], previews.Preview]:
    """What setting this regimen would do: the versions old and new (dose, grams and vials a
    day, minutes) and the bookings that change; nothing is saved."""

    def change() -> dict[str, Any]:
        before = regimen_view(current_regimen(session, patient_id))
        regimen, plan = set_regimen(session, actor, patient_id, data, settings, now)
        vials = regimen.calculation.get("rounding", {}).get("vials", [])
        new = (regimen_view(regimen) or {}) | {
            "vials_per_day": vials,
            "minutes_per_day": regimen.minutes_per_day,
        }
        return {"old": before, "new": new, "replan": plan.summary()}

    return previews.dry_run(session, Infusion.patient_id == patient_id, change)


def regimen_history(session: so.Session, patient_id: int) -> list[Regimen]:
    """Return every regimen version of a patient, newest first."""
    return list(
        session.scalars(
            sa.select(Regimen)
            .where(Regimen.patient_id == patient_id)
            .options(so.joinedload(Regimen.created_by), so.joinedload(Regimen.center))
            .order_by(Regimen.version.desc())
        )
    )
