"""The placement queue page: a nurse puts each day waiting for a chair into a free slot."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from app import clock, http
from app.auth import require
from app.policy import Action
from app.schemas.infusions import RescheduleIn
from app.services import clinic, placements
from app.services import infusions as infusion_service
from app.services.errors import ServiceError
from app.web import forms
from app.web.care import bp, local_time


@bp.get("/centers/<int:center_id>/placements")
@require(Action.VIEW_SCHEDULE)
def placement_queue(center_id: int) -> http.ResponseValue:
    """Days waiting for a chair at the center, with the free slots for each."""
    return _queue_page(center_id)


def _queue_page(center_id: int, status: int = 200) -> http.ResponseValue:
    center = clinic.get_center(http.db(), center_id)
    today = clock.clinic_today(center.timezone)
    waiting = placements.queue(http.db(), center_id, http.settings(), today)
    return render_template("care/placements.html", center=center, waiting=waiting), status


@bp.post("/centers/<int:center_id>/placements/<int:infusion_id>")
@require(Action.RECORD_INFUSION)
def place(center_id: int, infusion_id: int) -> http.ResponseValue:
    """Put a waiting day on the chair and time the nurse picked."""
    center = clinic.get_center(http.db(), center_id)
    try:
        move = forms.parse(RescheduleIn, timezone=center.timezone)
        infusion = infusion_service.reschedule(
            http.db(),
            http.actor(),
            infusion_id,
            move.chair_id,
            move.starts_at,
            http.settings(),
            move.version,
        )
    except ServiceError as exc:
        flash(exc.message, "error")
        return _queue_page(center_id, exc.status)
    flash(
        f"Placed {infusion.patient.display_name} on {infusion.planned_date:%a %d %b} "
        f"at {local_time(infusion.starts_at, center.timezone)}.",
        "success",
    )
    return redirect(url_for("care.placement_queue", center_id=center_id))
