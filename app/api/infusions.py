"""JSON API: a patient's infusions and what is recorded at the chair."""

from __future__ import annotations

from typing import Any

from app import clock, http
from app.api import bp, guarded
from app.api.patients import patient_detail
from app.models import InfusionStatus
from app.policy import Action
from app.schemas.infusions import (
    AdverseEventIn,
    AdverseEventOut,
    GivenIn,
    InfusionList,
    InfusionOut,
    ReasonIn,
    RescheduleIn,
    UndoIn,
)
from app.services import adverse_events as adverse_event_service
from app.services import infusions as infusion_service
from app.services.errors import InvalidInput
from app.services.suggestions import evaluation_hook


@bp.get("/patients/<int:patient_id>/infusions")
@guarded(Action.VIEW_SCHEDULE)
@bp.output(InfusionList)
def patient_infusions(patient_id: int) -> Any:
    """The patient's infusions, past and planned, cancelled included."""
    detail = patient_detail(patient_id)
    return {"infusions": detail.past[::-1] + detail.upcoming}


@bp.get("/infusions/<int:infusion_id>")
@guarded(Action.VIEW_SCHEDULE)
@bp.output(InfusionOut)
def infusion(infusion_id: int) -> Any:
    """One infusion."""
    return infusion_service.get_infusion(http.db(), infusion_id)


@bp.post("/infusions/<int:infusion_id>/given")
@guarded(Action.RECORD_INFUSION)
@bp.input(GivenIn, arg_name="body")
@bp.output(InfusionOut)
def record_given(infusion_id: int, body: GivenIn) -> Any:
    """Record the infusion as given (or partly given)."""
    return infusion_service.record_given(
        http.db(),
        http.actor(),
        infusion_id,
        body.given_input(),
        http.settings(),
    )


def _set_status(infusion_id: int, body: ReasonIn, status: InfusionStatus) -> Any:
    return infusion_service.set_status(
        http.db(), http.actor(), infusion_id, status, body.reason, body.version
    )


@bp.post("/infusions/<int:infusion_id>/missed")
@guarded(Action.RECORD_INFUSION)
@bp.input(ReasonIn, arg_name="body")
@bp.output(InfusionOut)
def record_missed(infusion_id: int, body: ReasonIn) -> Any:
    """Record that the patient did not come."""
    return _set_status(infusion_id, body, InfusionStatus.MISSED)


@bp.post("/infusions/<int:infusion_id>/cancel")
@guarded(Action.RECORD_INFUSION)
@bp.input(ReasonIn, arg_name="body")
@bp.output(InfusionOut)
def cancel(infusion_id: int, body: ReasonIn) -> Any:
    """Cancel an infusion, with a reason."""
    return _set_status(infusion_id, body, InfusionStatus.CANCELLED)


@bp.post("/infusions/<int:infusion_id>/undo-cancel")
@guarded(Action.RECORD_INFUSION)
@bp.input(UndoIn, arg_name="body")
@bp.output(InfusionOut)
def undo_cancel(infusion_id: int, body: UndoIn) -> Any:
    """Bring back an infusion a person cancelled, on its chair and time, while that slot is
    free (409 when it is taken, has passed, or a re-plan cancelled it)."""
    return infusion_service.undo_cancel(http.db(), http.actor(), infusion_id, body.version)


@bp.post("/infusions/<int:infusion_id>/reschedule")
@guarded(Action.RECORD_INFUSION)
@bp.input(RescheduleIn, arg_name="body")
@bp.output(InfusionOut)
def reschedule(infusion_id: int, body: RescheduleIn) -> Any:
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
@bp.input(AdverseEventIn, arg_name="body")
@bp.output(AdverseEventOut, status_code=201)
def adverse_event(infusion_id: int, body: AdverseEventIn) -> Any:
    """Record an infusion reaction or adverse event."""
    item = infusion_service.get_infusion(http.db(), infusion_id)
    today = clock.clinic_today(item.center.timezone)
    return adverse_event_service.record_adverse_event(
        http.db(),
        http.actor(),
        infusion_id,
        body.event_input(today),
        today,
        after_record=evaluation_hook(http.settings()),
    )
