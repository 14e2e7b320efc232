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
    version = forms.optional_whole("version")
    try:
        if action == "given":
            infusion_service.record_given(
                http.db(),
                http.actor(),
                infusion_id,
                infusion_service.GivenInput(
                    given_grams=forms.number("given_grams"),
                    started_at=forms.local_datetime("started_at", timezone),
                    ended_at=forms.local_datetime("ended_at", timezone),
                    lot_numbers=forms.text("lot_numbers", 200),
                    max_rate_ml_per_kg_min=forms.number("max_rate_ml_per_kg_min"),
                    partial=forms.checkbox("partial"),
                    reason=forms.optional_text("reason"),
                    expected_version=version,
                ),
                http.settings(),
            )
        elif action in ("missed", "cancelled"):
            infusion_service.set_status(
                http.db(),
                http.actor(),
                infusion_id,
                InfusionStatus(action),
                forms.text("reason", 500),
                version,
            )
        elif action == "reschedule":
            infusion_service.reschedule(
                http.db(),
                http.actor(),
                infusion_id,
                forms.whole("chair_id"),
                forms.local_datetime("starts_at", timezone),
                http.settings(),
                version,
                override_reason=forms.optional_text("override_reason"),
            )
        elif action == "amend":
            status = InfusionStatus(forms.choice("status", infusion_service.AMENDABLE))
            given = None
            if status != InfusionStatus.MISSED:
                given = infusion_service.GivenInput(
                    given_grams=forms.number("given_grams"),
                    started_at=forms.local_datetime("started_at", timezone),
                    ended_at=forms.local_datetime("ended_at", timezone),
                    lot_numbers=forms.text("lot_numbers", 200),
                    max_rate_ml_per_kg_min=forms.number("max_rate_ml_per_kg_min"),
                    reason=forms.optional_text("partial_reason"),
                )
            infusion_service.amend_infusion(
                http.db(),
                http.actor(),
                infusion_id,
                infusion_service.AmendmentInput(
                    reason=forms.text("reason", 2000),
                    status=status,
                    given=given,
                    expected_version=version,
                ),
                http.settings(),
            )
        else:
            infusion_service.record_adverse_event(
                http.db(),
                http.actor(),
                infusion_id,
                infusion_service.AdverseEventInput(
                    event_type=forms.text("event_type", 30),
                    grade=forms.whole("grade"),
                    occurred_on=forms.date("occurred_on"),
                    serious=True if forms.checkbox("serious") else None,
                    description=forms.text("description"),
                ),
                clock.clinic_today(timezone),
                after_record=evaluation_hook(http.settings()),
            )
    except ServiceError as exc:
        flash(exc.message, "error")
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
