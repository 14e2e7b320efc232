"""The physician's suggestion queue."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import http
from app.auth import require
from app.models import Patient, Suggestion
from app.policy import Action
from app.schemas.suggestions import SuggestionApproveIn, SuggestionRejectIn
from app.services import suggestions as suggestion_service
from app.services.errors import ServiceError
from app.services.previews import Preview, PreviewChanged
from app.web import forms

bp = Blueprint("suggestions", __name__, url_prefix="/suggestions")


@bp.get("")
@require(Action.DECIDE_SUGGESTION)
def queue() -> http.ResponseValue:
    """Pending suggestions, critical first."""
    user = http.current_user()
    mine = request.args.get("all") != "1"
    items = suggestion_service.queue(http.db(), user.id if (mine and user) else None)
    patients = {
        p.id: p
        for p in http.db().query(Patient).filter(Patient.id.in_({s.patient_id for s in items}))
    }
    return render_template("suggestions/queue.html", items=items, patients=patients, mine=mine)


def _decision(body: SuggestionApproveIn) -> suggestion_service.Decision:
    return suggestion_service.Decision(body.version, body.value, body.reason)


def _preview_page(
    suggestion_id: int,
    body: SuggestionApproveIn,
    summary: dict[str, object],
    preview: Preview,
    status: int = 200,
) -> http.ResponseValue:
    suggestion = http.db().get(Suggestion, suggestion_id)
    assert suggestion is not None
    patient = http.db().get(Patient, suggestion.patient_id)
    return (
        render_template(
            "suggestions/preview.html",
            s=suggestion,
            patient=patient,
            body=body,
            summary=summary,
            preview=preview,
            back=http.redirect_target(url_for("suggestions.queue")),
        ),
        status,
    )


@bp.post("/<int:suggestion_id>/preview")
@require(Action.DECIDE_SUGGESTION)
def preview(suggestion_id: int) -> http.ResponseValue:
    """Show what approving would change; nothing is saved."""
    try:
        body = forms.parse(SuggestionApproveIn, fingerprint=None)
        summary, shown = suggestion_service.preview_approval(
            http.db(), http.actor(), suggestion_id, http.settings(), _decision(body)
        )
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(http.redirect_target(url_for("suggestions.queue")))
    return _preview_page(suggestion_id, body, summary, shown)


@bp.post("/<int:suggestion_id>/approve")
@require(Action.DECIDE_SUGGESTION)
def approve(suggestion_id: int) -> http.ResponseValue:
    """Approve (and apply) a suggestion; from a preview, exactly what it showed."""
    try:
        body = forms.parse(SuggestionApproveIn)
        suggestion_service.approve(
            http.db(),
            http.actor(),
            suggestion_id,
            http.settings(),
            body.version,
            body.value,
            body.reason,
            fingerprint=body.fingerprint,
        )
    except PreviewChanged as exc:
        flash("The bookings changed since the preview was shown: check it again.", "error")
        summary, shown = suggestion_service.preview_approval(
            http.db(), http.actor(), suggestion_id, http.settings(), _decision(body)
        )
        return _preview_page(suggestion_id, body, summary, shown, exc.status)
    except ServiceError as exc:
        flash(exc.message, "error")
    else:
        flash("Approved and applied.", "success")
    return redirect(http.redirect_target(url_for("suggestions.queue")))


@bp.post("/<int:suggestion_id>/reject")
@require(Action.DECIDE_SUGGESTION)
def reject(suggestion_id: int) -> http.ResponseValue:
    """Reject a suggestion with a reason."""
    try:
        rejection = forms.parse(SuggestionRejectIn)
        suggestion_service.reject(
            http.db(), http.actor(), suggestion_id, rejection.reason, rejection.version
        )
    except ServiceError as exc:
        flash(exc.message, "error")
    else:
        flash("Rejected.", "success")
    return redirect(http.redirect_target(url_for("suggestions.queue")))
