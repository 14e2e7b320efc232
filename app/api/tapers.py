"""JSON API for steroid tapers: preview, plans, the approval queue and step actions."""

from __future__ import annotations

from typing import Any

from app import http
from app.api import bp, guarded
from app.models import StepStatus
from app.policy import Action
from app.schemas.infusions import ReasonIn
from app.schemas.tapers import (
    ApproveIn,
    DueList,
    PatientTaperOut,
    StepDoseIn,
    TaperIn,
    TaperPlanIn,
    TaperPlanOut,
    TaperPreviewOut,
    TaperStepOut,
)
from app.services import patients as patient_service
from app.services import tapers as taper_service


def tablets_out(tablets: tuple[tuple[float, int], ...] | None) -> list[dict[str, Any]] | None:
    if tablets is None:
        return None
    return [{"strength_mg": strength, "count": count} for strength, count in tablets]


@bp.post("/dosing/taper")
@guarded(Action.USE_CALCULATOR)
@bp.input(TaperIn, arg_name="body")
@bp.output(TaperPreviewOut)
def preview_taper(body: TaperIn) -> Any:
    """Lay out a taper with dates, tablets and cumulative dose; saves nothing."""
    steps = taper_service.preview(body.plan_input(), http.settings())
    return {
        "drug": body.drug,
        "steps": [
            {
                "index": p.dated.index,
                "starts_on": p.dated.starts_on,
                "ends_on": p.dated.ends_on,
                "mg_per_day": p.dated.step.mg_per_day,
                "alternate_day_mg": p.dated.step.alternate_day_mg,
                "min_days": p.dated.step.min_days,
                "requires_cortisol": p.dated.step.requires_cortisol,
                "tablets": tablets_out(p.tablets),
                "alternate_tablets": tablets_out(p.alternate_tablets),
                "cumulative_prednisone_mg": round(p.cumulative_prednisone_mg, 2),
            }
            for p in steps
        ],
        "total_prednisone_mg": round(steps[-1].cumulative_prednisone_mg, 2) if steps else 0,
    }


@bp.post("/patients/<int:patient_id>/tapers")
@guarded(Action.APPROVE_TAPER)
@bp.input(TaperPlanIn, arg_name="body")
@bp.output(TaperPlanOut, status_code=201)
def create_taper(patient_id: int, body: TaperPlanIn) -> Any:
    """Set a new taper plan version (physician); its first step starts on starts_on."""
    return taper_service.create_plan(
        http.db(),
        http.actor(),
        patient_id,
        body.plan_input(body.reason, body.based_on_version),
        http.settings(),
        patient_service.local_today(http.db(), patient_id),
    )


@bp.get("/patients/<int:patient_id>/taper")
@guarded(Action.VIEW_PATIENTS)
@bp.output(PatientTaperOut)
def patient_taper(patient_id: int) -> Any:
    """The current taper: today's dose in tablets, the next step and its date, exposure."""
    patient_service.get_patient(http.db(), patient_id)
    today = patient_service.local_today(http.db(), patient_id)
    view = taper_service.patient_taper(http.db(), patient_id, http.settings(), today)
    return {
        "plan": view.plan,
        "active_step_id": view.active.id if view.active else None,
        "current_mg_per_day": view.active.mg_per_day if view.active else None,
        "current_tablets": tablets_out(view.active_tablets),
        "next_step_id": view.next.id if view.next else None,
        "next_due_on": view.next_due_on,
        "cumulative_to_date_prednisone_mg": round(view.cumulative_to_date_mg, 2),
        "cumulative_projected_prednisone_mg": round(view.cumulative_projected_mg, 2),
    }


@bp.get("/taper-steps/due")
@guarded(Action.APPROVE_TAPER)
@bp.output(DueList)
def due_steps() -> Any:
    """Steps waiting for approval (all patients)."""
    steps = taper_service.due_queue(http.db())
    return {
        "steps": [
            TaperStepOut.model_validate(step).model_dump()
            | {"patient_name": step.plan.patient.display_name, "drug": step.plan.drug}
            for step in steps
        ]
    }


@bp.post("/taper-steps/<int:step_id>/approve")
@guarded(Action.APPROVE_TAPER)
@bp.input(ApproveIn, arg_name="body")
@bp.output(TaperStepOut)
def approve_step(step_id: int, body: ApproveIn) -> Any:
    """Approve a due step: it starts today (physician; the final stop needs cortisol)."""
    return taper_service.approve_step(
        http.db(),
        http.actor(),
        step_id,
        http.settings(),
        None,
        body.version,
        body.cortisol_nmol_l,
        body.override_reason,
    )


def _status(step_id: int, body: ReasonIn, status: StepStatus) -> Any:
    return taper_service.set_step_status(
        http.db(), http.actor(), step_id, status, body.reason, body.version
    )


@bp.post("/taper-steps/<int:step_id>/hold")
@guarded(Action.APPROVE_TAPER)
@bp.input(ReasonIn, arg_name="body")
@bp.output(TaperStepOut)
def hold_step(step_id: int, body: ReasonIn) -> Any:
    """Hold a step, with a reason."""
    return _status(step_id, body, StepStatus.HELD)


@bp.post("/taper-steps/<int:step_id>/release")
@guarded(Action.APPROVE_TAPER)
@bp.input(ReasonIn, arg_name="body")
@bp.output(TaperStepOut)
def release_step(step_id: int, body: ReasonIn) -> Any:
    """Release a held step back to planned, with a reason."""
    return _status(step_id, body, StepStatus.PLANNED)


@bp.post("/taper-steps/<int:step_id>/skip")
@guarded(Action.APPROVE_TAPER)
@bp.input(ReasonIn, arg_name="body")
@bp.output(TaperStepOut)
def skip_step(step_id: int, body: ReasonIn) -> Any:
    """Skip a step, with a reason."""
    return _status(step_id, body, StepStatus.SKIPPED)


@bp.post("/taper-steps/<int:step_id>/dose")
@guarded(Action.APPROVE_TAPER)
@bp.input(StepDoseIn, arg_name="body")
@bp.output(TaperStepOut)
def change_dose(step_id: int, body: StepDoseIn) -> Any:
    """Change a planned step's dose, with a reason (the plan must still never increase)."""
    return taper_service.change_step_dose(
        http.db(),
        http.actor(),
        step_id,
        body.mg_per_day,
        body.reason,
        http.settings(),
        body.version,
        body.alternate_day_mg
        if "alternate_day_mg" in body.model_fields_set
        else taper_service.UNCHANGED,
        fingerprint=body.fingerprint,
    )
