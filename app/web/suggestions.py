"""The physician's suggestion queue."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import http
from app.auth import require
from app.models import Patient
from app.policy import Action
from app.schemas.suggestions import SuggestionApproveIn, SuggestionRejectIn
from app.services import suggestions as suggestion_service
from app.services.errors import ServiceError
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


@bp.post("/<int:suggestion_id>/approve")
@require(Action.DECIDE_SUGGESTION)
def approve(suggestion_id: int) -> http.ResponseValue:
    """Approve (and apply) a suggestion."""
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
        )
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
