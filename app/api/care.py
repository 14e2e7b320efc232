"""JSON API for dosing, patients, regimens, infusions and the day board."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from app import clock, http
from app.api import bp, guarded
from app.api import schemas as s
from app.domain import dosing
from app.models import InfusionStatus
from app.policy import Action
from app.services import assessments as assessment_service
from app.services import centers as center_service
from app.services import infusions as infusion_service
from app.services import patients as patient_service
from app.services import regimens as regimen_service
from app.services.errors import InvalidInput
from app.services.suggestions import evaluation_hook


def dose_out(result: dosing.DoseResult) -> dict[str, Any]:
    """Flatten a dose result into the API's answer."""
    return {
        "weight_basis": result.weight_basis,
        "ideal_body_weight_kg": round(result.ideal_body_weight_kg, 2),
        "adjusted_body_weight_kg": round(result.adjusted_body_weight_kg, 2),
        "dosing_weight_kg": round(result.dosing_weight_kg, 2),
        "grams_per_cycle": round(result.grams_per_cycle, 2),
        "grams_per_day": round(result.grams_per_day, 2),
        "rounded_grams_per_day": result.rounding.rounded_g,
        "rounded_grams_per_cycle": result.rounded_grams_per_cycle,
        "vials_per_day": [{"size_g": size, "count": n} for size, n in result.rounding.vials],
        "vial_count_per_day": result.rounding.vial_count,
        "deviation_percent": result.rounding.deviation_percent,
        "waste_g_per_day": round(result.rounding.waste_g, 2),
        "within_tolerance": result.rounding.within_tolerance,
        "volume_ml_per_day": round(result.infusion.volume_ml, 1),
        "rate_steps": [dataclasses.asdict(step) for step in result.infusion.steps],
        "minutes_per_day": result.infusion.minutes,
        "max_rate_ml_per_kg_min": result.infusion.max_rate_ml_per_kg_min,
        "soft_stops": [dataclasses.asdict(problem) for problem in result.soft_stops],
    }


@bp.post("/dosing/ivig")
@guarded(Action.USE_CALCULATOR)
@bp.input(s.DoseIn, arg_name="body")
@bp.output(s.DoseOut)
def calculate_ivig_dose(body: s.DoseIn) -> Any:
    """Work out an IVIG dose, vials and rate plan; saves nothing."""
    request = dosing.DoseRequest(**body.model_dump())
    return dose_out(regimen_service.calculate(request, http.settings()))


@bp.post("/patients")
@guarded(Action.MANAGE_PATIENTS)
@bp.input(s.PatientCreateIn, arg_name="body")
@bp.output(s.PatientOut, status_code=201)
def create_patient(body: s.PatientCreateIn) -> Any:
    """Register a patient."""
    return patient_service.create_patient(
        http.db(),
        http.actor(),
        patient_service.PatientInput(**body.model_dump()),
        http.settings(),
    )


def _detail(patient_id: int) -> patient_service.PatientDetail:
    today = patient_service.local_today(http.db(), patient_id)
    return patient_service.patient_detail(http.db(), patient_id, http.settings(), today)


@bp.get("/patients/<int:patient_id>")
@guarded(Action.VIEW_PATIENTS)
@bp.output(s.PatientDetailOut)
def patient(patient_id: int) -> Any:
    """A patient with measurements, the current regimen and the weight review prompt."""
    detail = _detail(patient_id)
    p = detail.patient
    return {
        "patient": p,
        "height_cm": p.height_cm,
        "dm_subtype": p.dm_subtype,
        "thrombosis_risk": p.thrombosis_risk,
        "renal_risk": p.renal_risk,
        "weights": detail.weights,
        "current_regimen": detail.regimens[0] if detail.regimens else None,
        "weight_change_percent": detail.weight_change_percent,
        "weight_review_needed": detail.weight_review_needed,
    }


@bp.patch("/patients/<int:patient_id>")
@guarded(Action.MANAGE_PATIENTS)
@bp.input(s.PatientChangesIn, arg_name="body")
@bp.output(s.PatientOut)
def update_patient(patient_id: int, body: s.PatientChangesIn) -> Any:
    """Change height, DM subtype or risk flags (audited; they change dosing)."""
    return patient_service.update_patient(
        http.db(),
        http.actor(),
        patient_id,
        patient_service.PatientChanges(**body.model_dump()),
        http.settings(),
    )


@bp.post("/patients/<int:patient_id>/weights")
@guarded(Action.MANAGE_PATIENTS)
@bp.input(s.WeightIn, arg_name="body")
@bp.output(s.WeightOut, status_code=201)
def record_weight(patient_id: int, body: s.WeightIn) -> Any:
    """Record a body weight."""
    today = patient_service.local_today(http.db(), patient_id)
    return patient_service.record_weight(
        http.db(),
        http.actor(),
        patient_id,
        body.weight_kg,
        body.measured_on or today,
        http.settings(),
        today,
    )


@bp.get("/patients/<int:patient_id>/regimens")
@guarded(Action.VIEW_PATIENTS)
@bp.output(s.RegimenList)
def regimens(patient_id: int) -> Any:
    """Every regimen version, newest first."""
    patient_service.get_patient(http.db(), patient_id)
    return {"regimens": regimen_service.regimen_history(http.db(), patient_id)}


@bp.post("/patients/<int:patient_id>/regimens")
@guarded(Action.SET_REGIMEN)
@bp.input(s.RegimenIn, arg_name="body")
@bp.output(s.RegimenSetOut, status_code=201)
def set_regimen(patient_id: int, body: s.RegimenIn) -> Any:
    """Set a new regimen version (physician) and re-plan future infusions."""
    values = body.model_dump()
    values["weight_basis"] = values["weight_basis"] or http.settings().dosing.weight_basis_default
    regimen, plan = regimen_service.set_regimen(
        http.db(),
        http.actor(),
        patient_id,
        regimen_service.RegimenInput(**values),
        http.settings(),
    )
    return {"regimen": regimen, "replan": plan.summary()}


@bp.get("/patients/<int:patient_id>/infusions")
@guarded(Action.VIEW_SCHEDULE)
@bp.output(s.InfusionList)
def patient_infusions(patient_id: int) -> Any:
    """The patient's infusions, past and planned, cancelled included."""
    detail = _detail(patient_id)
    return {"infusions": detail.past[::-1] + detail.upcoming}


@bp.get("/infusions/<int:infusion_id>")
@guarded(Action.VIEW_SCHEDULE)
@bp.output(s.InfusionOut)
def infusion(infusion_id: int) -> Any:
    """One infusion."""
    return infusion_service.get_infusion(http.db(), infusion_id)


@bp.post("/infusions/<int:infusion_id>/given")
@guarded(Action.RECORD_INFUSION)
@bp.input(s.GivenIn, arg_name="body")
@bp.output(s.InfusionOut)
def record_given(infusion_id: int, body: s.GivenIn) -> Any:
    """Record the infusion as given (or partly given)."""
    values = body.model_dump()
    values["expected_version"] = values.pop("version")
    return infusion_service.record_given(
        http.db(),
        http.actor(),
        infusion_id,
        infusion_service.GivenInput(**values),
        http.settings(),
    )


def _set_status(infusion_id: int, body: s.ReasonIn, status: InfusionStatus) -> Any:
    return infusion_service.set_status(
        http.db(), http.actor(), infusion_id, status, body.reason, body.version
    )


@bp.post("/infusions/<int:infusion_id>/missed")
@guarded(Action.RECORD_INFUSION)
@bp.input(s.ReasonIn, arg_name="body")
@bp.output(s.InfusionOut)
def record_missed(infusion_id: int, body: s.ReasonIn) -> Any:
    """Record that the patient did not come."""
    return _set_status(infusion_id, body, InfusionStatus.MISSED)


@bp.post("/infusions/<int:infusion_id>/cancel")
@guarded(Action.RECORD_INFUSION)
@bp.input(s.ReasonIn, arg_name="body")
@bp.output(s.InfusionOut)
def cancel(infusion_id: int, body: s.ReasonIn) -> Any:
    """Cancel an infusion, with a reason."""
    return _set_status(infusion_id, body, InfusionStatus.CANCELLED)


@bp.post("/infusions/<int:infusion_id>/reschedule")
@guarded(Action.RECORD_INFUSION)
@bp.input(s.RescheduleIn, arg_name="body")
@bp.output(s.InfusionOut)
def reschedule(infusion_id: int, body: s.RescheduleIn) -> Any:
    """Move an infusion to another chair or time (chair rules apply)."""
    if body.starts_at.tzinfo is None:
        raise InvalidInput("starts_at: give a time zone offset, e.g. Z", field="starts_at")
    return infusion_service.reschedule(
        http.db(),
        http.actor(),
        infusion_id,
        body.chair_id,
        body.starts_at,
        http.settings(),
        body.version,
        override_reason=body.override_reason,
    )


@bp.post("/infusions/<int:infusion_id>/adverse-events")
@guarded(Action.RECORD_INFUSION)
@bp.input(s.AdverseEventIn, arg_name="body")
@bp.output(s.AdverseEventOut, status_code=201)
def adverse_event(infusion_id: int, body: s.AdverseEventIn) -> Any:
    """Record an infusion reaction or adverse event."""
    item = infusion_service.get_infusion(http.db(), infusion_id)
    today = clock.clinic_today(item.center.timezone)
    values = body.model_dump() | {"occurred_on": body.occurred_on or today}
    return infusion_service.record_adverse_event(
        http.db(),
        http.actor(),
        infusion_id,
        infusion_service.AdverseEventInput(**values),
        today,
        after_record=evaluation_hook(http.settings()),
    )


def board_infusion(infusion: Any) -> dict[str, Any]:
    return s.InfusionOut.model_validate(infusion).model_dump() | {
        "patient_name": infusion.patient.display_name
    }


@bp.get("/centers/<int:center_id>/day/<day>")
@guarded(Action.VIEW_SCHEDULE)
@bp.output(s.DayBoardOut)
def day_board(center_id: int, day: str) -> Any:
    """The center's chairs and infusions on a local date (YYYY-MM-DD)."""
    try:
        date = dt.date.fromisoformat(day)
    except ValueError as exc:
        raise InvalidInput("day: give a date as YYYY-MM-DD", field="day") from exc
    board = infusion_service.day_board(http.db(), center_id, date)
    return {
        "center_id": center_id,
        "date": date,
        "opens_at": board.hours[0] if board.hours else None,
        "closes_at": board.hours[1] if board.hours else None,
        "chairs": [
            {
                "chair_id": chair.id,
                "name": chair.name,
                "infusions": [board_infusion(i) for i in board.by_chair.get(chair.id, [])],
            }
            for chair in board.chairs
        ],
        "unbooked": [board_infusion(i) for i in board.unbooked],
    }


@bp.post("/centers/<int:center_id>/closures")
@guarded(Action.MANAGE_CENTERS)
@bp.input(s.ClosureIn, arg_name="body")
@bp.output(s.ClosureOut, status_code=201)
def add_closure(center_id: int, body: s.ClosureIn) -> Any:
    """Close a center for a day; infusions booked on it move within the window (admin)."""
    closure, totals = center_service.add_closure(
        http.db(), http.actor(), center_id, body.closed_on, body.reason, http.settings()
    )
    return {
        "id": closure.id,
        "center_id": center_id,
        "closed_on": closure.closed_on,
        "reason": closure.reason,
        "replan": totals,
    }


@bp.post("/patients/<int:patient_id>/assessments")
@guarded(Action.RECORD_ASSESSMENT)
@bp.input(s.AssessmentIn, arg_name="body")
@bp.output(s.AssessmentOut, status_code=201)
def record_assessment(patient_id: int, body: s.AssessmentIn) -> Any:
    """Record a response assessment (the rules engine reads it in the same transaction)."""
    values = body.model_dump()
    assessed_on, notes = values.pop("assessed_on"), values.pop("notes")
    return assessment_service.record_assessment(
        http.db(),
        http.actor(),
        patient_id,
        assessment_service.AssessmentInput(assessed_on=assessed_on, scores=values, notes=notes),
        patient_service.local_today(http.db(), patient_id),
        after_record=evaluation_hook(http.settings()),
    )


@bp.get("/patients/<int:patient_id>/assessments")
@guarded(Action.VIEW_PATIENTS)
@bp.output(s.AssessmentList)
def assessments(patient_id: int) -> Any:
    """A patient's assessments, newest first."""
    patient_service.get_patient(http.db(), patient_id)
    return {"assessments": assessment_service.list_assessments(http.db(), patient_id)}
