"""JSON API for corrections and follow-up: amended infusion records, resolved adverse events,
and each user's worklist of notices."""

from __future__ import annotations

from typing import Any

from app import http
from app.api import bp, guarded
from app.policy import Action
from app.schemas.infusions import (
    AdverseEventList,
    AdverseEventOut,
    AmendedInfusionOut,
    AmendIn,
    ResolveIn,
)
from app.schemas.worklist import NoticeList, NoticeOut
from app.services import adverse_events as adverse_event_service
from app.services import infusions as infusion_service
from app.services import patients as patient_service
from app.services import worklist
from app.services.suggestions import evaluation_hook


@bp.post("/infusions/<int:infusion_id>/amend")
@guarded(Action.AMEND_INFUSION)
@bp.input(AmendIn, arg_name="body")
@bp.output(AmendedInfusionOut)
def amend_infusion(infusion_id: int, body: AmendIn) -> Any:
    """Correct a recorded infusion with a reason; the original stays in its amendments."""
    infusion_service.amend_infusion(
        http.db(),
        http.actor(),
        infusion_id,
        body.amendment_input(),
        http.settings(),
    )
    return infusion_service.get_infusion(http.db(), infusion_id)


@bp.get("/patients/<int:patient_id>/adverse-events")
@guarded(Action.VIEW_PATIENTS)
@bp.output(AdverseEventList)
def adverse_events(patient_id: int) -> Any:
    """A patient's adverse events: open ones first, then resolved, newest first."""
    patient_service.get_patient(http.db(), patient_id)
    return {"adverse_events": adverse_event_service.adverse_events_of(http.db(), patient_id)}


@bp.post("/adverse-events/<int:event_id>/resolve")
@guarded(Action.RESOLVE_ADVERSE_EVENT)
@bp.input(ResolveIn, arg_name="body")
@bp.output(AdverseEventOut)
def resolve_adverse_event(event_id: int, body: ResolveIn) -> Any:
    """Mark an adverse event resolved (physician); its safety hold lifts."""
    return adverse_event_service.resolve_adverse_event(
        http.db(),
        http.actor(),
        event_id,
        body.resolved_on,
        body.note,
        after_record=evaluation_hook(http.settings()),
    )


@bp.get("/worklist")
@guarded(Action.VIEW_SCHEDULE)
@bp.output(NoticeList)
def my_worklist() -> Any:
    """The caller's open notices (e.g. a move of theirs that a re-plan could not keep)."""
    return {"notices": worklist.open_notices(http.db(), http.actor().user_id or 0)}


@bp.post("/worklist/<int:notice_id>/done")
@guarded(Action.VIEW_SCHEDULE)
@bp.output(NoticeOut)
def notice_done(notice_id: int) -> Any:
    """Mark one of your notices done."""
    return worklist.mark_done(http.db(), http.actor(), notice_id)
