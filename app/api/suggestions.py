"""JSON API for the rules engine's suggestions (physicians decide)."""

from __future__ import annotations

from typing import Any

from app import http
from app.api import bp, guarded
from app.policy import Action
from app.schemas.suggestions import (
    SuggestionApproveIn,
    SuggestionList,
    SuggestionOut,
    SuggestionPreviewOut,
    SuggestionRejectIn,
)
from app.services import patients as patient_service
from app.services import suggestions as suggestion_service


@bp.get("/suggestions")
@guarded(Action.DECIDE_SUGGESTION)
@bp.output(SuggestionList)
def suggestion_queue() -> Any:
    """Pending suggestions: critical first, then by date."""
    return {"suggestions": suggestion_service.queue(http.db())}


@bp.get("/patients/<int:patient_id>/suggestions")
@guarded(Action.VIEW_PATIENTS)
@bp.output(SuggestionList)
def patient_suggestions(patient_id: int) -> Any:
    """A patient's suggestion history, newest first."""
    patient_service.get_patient(http.db(), patient_id)
    return {"suggestions": suggestion_service.for_patient(http.db(), patient_id)}


@bp.post("/suggestions/<int:suggestion_id>/approve")
@guarded(Action.DECIDE_SUGGESTION)
@bp.input(SuggestionApproveIn, arg_name="body")
@bp.output(SuggestionOut)
def approve_suggestion(suggestion_id: int, body: SuggestionApproveIn) -> Any:
    """Approve and apply (one transaction); a changed value needs a reason."""
    return suggestion_service.approve(
        http.db(),
        http.actor(),
        suggestion_id,
        http.settings(),
        body.version,
        body.value,
        body.reason,
        fingerprint=body.fingerprint,
    )


@bp.post("/suggestions/<int:suggestion_id>/preview")
@guarded(Action.DECIDE_SUGGESTION)
@bp.input(SuggestionApproveIn, arg_name="body")
@bp.output(SuggestionPreviewOut)
def preview_suggestion(suggestion_id: int, body: SuggestionApproveIn) -> Any:
    """What approving would change (regimen before and after, bookings); saves nothing. Send
    its fingerprint with the approval to apply exactly this (physician)."""
    summary, preview = suggestion_service.preview_approval(
        http.db(),
        http.actor(),
        suggestion_id,
        http.settings(),
        suggestion_service.Decision(body.version, body.value, body.reason),
    )
    return summary | {"preview": preview.as_dict()}


@bp.post("/suggestions/<int:suggestion_id>/reject")
@guarded(Action.DECIDE_SUGGESTION)
@bp.input(SuggestionRejectIn, arg_name="body")
@bp.output(SuggestionOut)
def reject_suggestion(suggestion_id: int, body: SuggestionRejectIn) -> Any:
    """Reject with a reason."""
    return suggestion_service.reject(
        http.db(), http.actor(), suggestion_id, body.reason, body.version
    )
