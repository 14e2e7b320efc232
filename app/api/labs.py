"""JSON API: lab results (creatinine, eGFR, haemoglobin, muscle enzymes) and their trend."""

from __future__ import annotations

from typing import Any

from app import http
from app.api import bp, guarded
from app.policy import Action
from app.schemas.labs import LabIn, LabOut, LabTrendList
from app.services import labs as lab_service
from app.services import patients as patient_service


@bp.post("/patients/<int:patient_id>/labs")
@guarded(Action.RECORD_ASSESSMENT)
@bp.input(LabIn, arg_name="body")
@bp.output(LabOut, status_code=201)
def record_lab(patient_id: int, body: LabIn) -> Any:
    """Record a lab result (the test, unit and plausible range come from config.toml [labs])."""
    result = lab_service.record_lab(
        http.db(),
        http.actor(),
        patient_id,
        body.lab_input(),
        patient_service.local_today(http.db(), patient_id),
        http.settings().labs,
    )
    return lab_service.value_of(result)


@bp.get("/patients/<int:patient_id>/labs")
@guarded(Action.VIEW_PATIENTS)
@bp.output(LabTrendList)
def labs(patient_id: int) -> Any:
    """A patient's lab results per test, each oldest first, flagged against its range."""
    patient_service.get_patient(http.db(), patient_id)
    return {"tests": lab_service.trend(http.db(), patient_id, http.settings().labs)}
