"""Pages for one infusion: what is recorded at the chair, and its .ics file."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Response, flash, redirect, render_template, request, url_for

from app import clock, http
from app.auth import require
from app.db import utcnow
from app.domain import ical
from app.models import InfusionStatus
from app.models.infusion import ADVERSE_EVENT_TYPES
from app.policy import Action
from app.schemas.infusions import (
    AdverseEventIn,
    AmendIn,
    GivenIn,
    ReasonIn,
    RescheduleIn,
    UndoIn,
)
from app.services import adverse_events as adverse_event_service
from app.services import clinic
from app.services import feeds as feed_service
from app.services import infusions as infusion_service
from app.services.errors import ServiceError
from app.services.suggestions import evaluation_hook
from app.web import forms
from app.web.care import bp


@bp.get("/infusions/<int:infusion_id>")
@require(Action.VIEW_SCHEDULE)
def infusion(infusion_id: int) -> http.ResponseValue:
    """One infusion: plan, record, reactions."""
    return _infusion_page(infusion_id)


def _infusion_page(infusion_id: int, status: int = 200) -> http.ResponseValue:
    item = infusion_service.get_infusion(http.db(), infusion_id)
    zone = ZoneInfo(item.center.timezone)
    now_local = utcnow().astimezone(zone)
    return (
        render_template(
            "care/infusion.html",
            i=item,
            chairs=[c for c in clinic.get_center(http.db(), item.center_id).chairs if c.active],
            open_statuses=(InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED),
            event_types=ADVERSE_EVENT_TYPES,
            default_start=(
                item.starts_at.astimezone(zone)
                if item.starts_at and item.starts_at < utcnow()
                else now_local - dt.timedelta(minutes=item.planned_minutes)
            ).strftime("%Y-%m-%dT%H:%M"),
            default_end=(
                item.ends_at.astimezone(zone)
                if item.ends_at and item.ends_at < utcnow()
                else now_local
            ).strftime("%Y-%m-%dT%H:%M"),
            form=request.form,
        ),
        status,
    )


def _infusion_action(infusion_id: int, action: str) -> http.ResponseValue:
    item = infusion_service.get_infusion(http.db(), infusion_id)
    timezone = item.center.timezone
    try:
        if action == "given":
            infusion_service.record_given(
                http.db(),
                http.actor(),
                infusion_id,
                forms.parse(GivenIn, timezone=timezone).given_input(),
                http.settings(),
            )
        elif action in ("missed", "cancelled"):
            body = forms.parse(ReasonIn)
            infusion_service.set_status(
                http.db(),
                http.actor(),
                infusion_id,
                InfusionStatus(action),
                body.reason,
                body.version,
            )
        elif action == "reschedule":
            move = forms.parse(RescheduleIn, timezone=timezone)
            infusion_service.reschedule(
                http.db(),
                http.actor(),
                infusion_id,
                move.chair_id,
                move.starts_at,
                http.settings(),
                move.version,
                override_reason=move.override_reason,
            )
        elif action == "amend":
            infusion_service.amend_infusion(
                http.db(),
                http.actor(),
                infusion_id,
                forms.parse(AmendIn, timezone=timezone).amendment_input(),
                http.settings(),
            )
        else:
            # An unticked "serious" leaves it to the grade (as the API's omitted field does).
            event = forms.parse(AdverseEventIn, serious=True if forms.checkbox("serious") else None)
            adverse_event_service.record_adverse_event(
                http.db(),
                http.actor(),
                infusion_id,
                event.event_input(clock.clinic_today(timezone)),
                clock.clinic_today(timezone),
                after_record=evaluation_hook(http.settings()),
            )
    except ServiceError as exc:
        forms.refuse(exc, "reaction" if action == "adverse_event" else action)
        return _infusion_page(infusion_id, exc.status)
    flash("Saved.", "success")
    return redirect(url_for("care.infusion", infusion_id=infusion_id))


@bp.get("/infusions/<int:infusion_id>.ics")
@require(Action.VIEW_SCHEDULE)
def infusion_ics(infusion_id: int) -> http.ResponseValue:
    """Download one appointment as an .ics file (for a patient without a feed)."""
    body = ical.render(feed_service.appointment_calendar(http.db(), infusion_id, http.settings()))
    return Response(
        body,
        content_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="infusion-{infusion_id}.ics"'},
    )


@bp.post("/infusions/<int:infusion_id>/given")
@require(Action.RECORD_INFUSION)
def record_given(infusion_id: int) -> http.ResponseValue:
    """Record the infusion as given or partly given."""
    return _infusion_action(infusion_id, "given")


@bp.post("/infusions/<int:infusion_id>/missed")
@require(Action.RECORD_INFUSION)
def record_missed(infusion_id: int) -> http.ResponseValue:
    """Record a missed infusion."""
    return _infusion_action(infusion_id, "missed")


@bp.post("/infusions/<int:infusion_id>/cancel")
@require(Action.RECORD_INFUSION)
def cancel(infusion_id: int) -> http.ResponseValue:
    """Cancel an infusion."""
    return _infusion_action(infusion_id, "cancelled")


@bp.post("/infusions/<int:infusion_id>/undo-cancel")
@require(Action.RECORD_INFUSION)
def undo_cancel(infusion_id: int) -> http.ResponseValue:
    """Bring a cancelled infusion back while its slot is free."""
    try:
        body = forms.parse(UndoIn)
        infusion_service.undo_cancel(http.db(), http.actor(), infusion_id, body.version)
    except ServiceError as exc:
        flash(exc.message, "error")
        return _infusion_page(infusion_id, exc.status)
    flash("Cancellation undone: the infusion is booked again.", "success")
    return redirect(url_for("care.infusion", infusion_id=infusion_id))


@bp.post("/infusions/<int:infusion_id>/reschedule")
@require(Action.RECORD_INFUSION)
def reschedule(infusion_id: int) -> http.ResponseValue:
    """Move an infusion to another chair or time."""
    return _infusion_action(infusion_id, "reschedule")


@bp.post("/infusions/<int:infusion_id>/adverse-events")
@require(Action.RECORD_INFUSION)
def adverse_event(infusion_id: int) -> http.ResponseValue:
    """Record a reaction or adverse event."""
    return _infusion_action(infusion_id, "adverse_event")


@bp.post("/infusions/<int:infusion_id>/amend")
@require(Action.AMEND_INFUSION)
def amend(infusion_id: int) -> http.ResponseValue:
    """Correct a recorded infusion, with a reason (the original stays visible)."""
    return _infusion_action(infusion_id, "amend")
