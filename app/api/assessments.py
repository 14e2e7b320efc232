"""JSON API: response assessments (CDASI, MMT-8, CK, globals)."""

from __future__ import annotations

from typing import Any

from app import http
from app.api import bp, guarded
from app.policy import Action
from app.schemas.assessments import AssessmentIn, AssessmentList, AssessmentOut
from app.services import assessments as assessment_service
from app.services import patients as patient_service
from app.services.suggestions import evaluation_hook


@bp.post("/patients/<int:patient_id>/assessments")
@guarded(Action.RECORD_ASSESSMENT)
@bp.input(AssessmentIn, arg_name="body")
@bp.output(AssessmentOut, status_code=201)
def record_assessment(patient_id: int, body: AssessmentIn) -> Any:
    """Record a response assessment (the rules engine reads it in the same transaction)."""
    return assessment_service.record_assessment(
        http.db(),
        http.actor(),
        patient_id,
        body.assessment_input(),
        patient_service.local_today(http.db(), patient_id),
        after_record=evaluation_hook(http.settings()),
    )


@bp.get("/patients/<int:patient_id>/assessments")
@guarded(Action.VIEW_PATIENTS)
@bp.output(AssessmentList)
def assessments(patient_id: int) -> Any:
    """A patient's assessments, newest first."""
    patient_service.get_patient(http.db(), patient_id)
    return {"assessments": assessment_service.list_assessments(http.db(), patient_id)}
