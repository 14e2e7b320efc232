"""JSON API: registering patients, their details and weights."""

from __future__ import annotations

from typing import Any

from app import http
from app.api import bp, guarded
from app.policy import Action
from app.schemas.patients import (
    PatientChangesIn,
    PatientCreateIn,
    PatientDetailOut,
    PatientList,
    PatientOut,
    PatientQuery,
    WeightIn,
    WeightOut,
)
from app.services import clinic
from app.services import patients as patient_service


@bp.post("/patients")
@guarded(Action.MANAGE_PATIENTS)
@bp.input(PatientCreateIn, arg_name="body")
@bp.output(PatientOut, status_code=201)
def create_patient(body: PatientCreateIn) -> Any:
    """Register a patient."""
    return patient_service.create_patient(
        http.db(),
        http.actor(),
        patient_service.PatientInput(**body.model_dump()),
        http.settings(),
    )


def patient_detail(patient_id: int) -> patient_service.PatientDetail:
    today = patient_service.local_today(http.db(), patient_id)
    return patient_service.patient_detail(http.db(), patient_id, http.settings(), today)


@bp.get("/patients/<int:patient_id>")
@guarded(Action.VIEW_PATIENTS)
@bp.output(PatientDetailOut)
def patient(patient_id: int) -> Any:
    """A patient with measurements, the current regimen and the weight review prompt."""
    detail = patient_detail(patient_id)
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
@bp.input(PatientChangesIn, arg_name="body")
@bp.output(PatientOut)
def update_patient(patient_id: int, body: PatientChangesIn) -> Any:
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
@bp.input(WeightIn, arg_name="body")
@bp.output(WeightOut, status_code=201)
def record_weight(patient_id: int, body: WeightIn) -> Any:
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


@bp.get("/patients")
@guarded(Action.VIEW_PATIENTS)
@bp.input(PatientQuery, location="query", arg_name="query")
@bp.output(PatientList)
def patients(query: PatientQuery) -> Any:
    """Patients, optionally searched by name or MRN."""
    return {"patients": clinic.list_patients(http.db(), query.q)}
