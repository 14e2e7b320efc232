"""Pages for steroid tapers: the approval queue, plan set-up and the printable schedule."""

from __future__ import annotations

import datetime as dt
import functools

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import clock, http
from app.auth import require
from app.models import StepStatus
from app.policy import Action
from app.schemas.infusions import ReasonIn
from app.schemas.tapers import ApproveIn, StepDoseIn, TaperPlanIn
from app.services import patients as patient_service
from app.services import suggestions as suggestion_service
from app.services import tapers as taper_service
from app.services.errors import ServiceError
from app.services.previews import PreviewChanged
from app.web import forms

bp = Blueprint("tapers", __name__)


@bp.get("/approvals")
@require(Action.APPROVE_TAPER)
def queue() -> http.ResponseValue:
    """Steps due for a physician's approval."""
    user = http.current_user()
    mine = request.args.get("all") != "1"
    steps = taper_service.due_queue(http.db(), None, user.id if (mine and user) else None)
    return render_template(
        "tapers/queue.html",
        steps=steps,
        suggested=suggestion_service.pending_for_steps(http.db(), [s.id for s in steps]),
        mine=mine,
        tablets=functools.partial(taper_service.tablets, http.settings()),
    )


@bp.post("/patients/<int:patient_id>/tapers")
@require(Action.APPROVE_TAPER)
def create(patient_id: int) -> http.ResponseValue:
    """Set a taper plan from a template."""
    try:
        body = forms.parse(TaperPlanIn, steps=None)
        data = body.plan_input(body.reason, body.based_on_version)
        today = patient_service.local_today(http.db(), patient_id)
        plan = taper_service.create_plan(
            http.db(), http.actor(), patient_id, data, http.settings(), today
        )
    except ServiceError as exc:
        from app.web.patients import patient_page  # the patient page draws the taper form

        forms.refuse(exc, "taper")
        return patient_page(patient_id, exc.status)
    flash(f"Taper plan version {plan.version} set: {len(plan.steps)} steps.", "success")
    return redirect(url_for("care.patient", patient_id=patient_id, _anchor="taper"))


def _step_action(step_id: int, action: str) -> http.ResponseValue:
    try:
        if action == "approve":
            approval = forms.parse(ApproveIn)
            step = taper_service.approve_step(
                http.db(),
                http.actor(),
                step_id,
                http.settings(),
                None,
                approval.version,
                approval.cortisol_nmol_l,
                approval.override_reason,
            )
            message = f"Approved: {step.mg_per_day:g} mg/day from today."
        elif action == "dose":
            change = forms.parse(StepDoseIn)
            step = taper_service.change_step_dose(
                http.db(),
                http.actor(),
                step_id,
                change.mg_per_day,
                change.reason,
                http.settings(),
                change.version,
                fingerprint=change.fingerprint,
            )
            message = f"Step changed to {step.mg_per_day:g} mg/day."
        else:
            status = {
                "hold": StepStatus.HELD,
                "release": StepStatus.PLANNED,
                "skip": StepStatus.SKIPPED,
            }[action]
            body = forms.parse(ReasonIn)
            step = taper_service.set_step_status(
                http.db(), http.actor(), step_id, status, body.reason, body.version
            )
            message = f"Step {status}."
    except PreviewChanged:
        flash("The taper changed since the preview was shown: preview the change again.", "error")
    except ServiceError as exc:
        flash(exc.message, "error")
    else:
        flash(message, "success")
    return redirect(http.redirect_target(url_for("tapers.queue")))


@bp.post("/taper-steps/<int:step_id>/approve")
@require(Action.APPROVE_TAPER)
def approve(step_id: int) -> http.ResponseValue:
    """Approve a due step."""
    return _step_action(step_id, "approve")


@bp.post("/taper-steps/<int:step_id>/hold")
@require(Action.APPROVE_TAPER)
def hold(step_id: int) -> http.ResponseValue:
    """Hold a step."""
    return _step_action(step_id, "hold")


@bp.post("/taper-steps/<int:step_id>/release")
@require(Action.APPROVE_TAPER)
def release(step_id: int) -> http.ResponseValue:
    """Release a held step."""
    return _step_action(step_id, "release")


@bp.post("/taper-steps/<int:step_id>/skip")
@require(Action.APPROVE_TAPER)
def skip(step_id: int) -> http.ResponseValue:
    """Skip a step."""
    return _step_action(step_id, "skip")


@bp.post("/taper-steps/<int:step_id>/dose/preview")
@require(Action.APPROVE_TAPER)
def preview_dose(step_id: int) -> http.ResponseValue:
    """Show the plan's steps before and after the dose change; nothing is saved."""
    try:
        change = forms.parse(StepDoseIn, fingerprint=None)
        before, after, preview = taper_service.preview_step_dose(
            http.db(),
            http.actor(),
            step_id,
            change.mg_per_day,
            change.reason,
            http.settings(),
            change.version,
        )
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(http.redirect_target(url_for("tapers.queue")))
    rows = [(old, new) for old, new in zip(before, after, strict=False) if old != new]
    return render_template(
        "tapers/dose_preview.html",
        step_id=step_id,
        change=change,
        rows=rows,
        fingerprint=preview.fingerprint,
        back=http.redirect_target(url_for("tapers.queue")),
    )


@bp.post("/taper-steps/<int:step_id>/dose")
@require(Action.APPROVE_TAPER)
def change_dose(step_id: int) -> http.ResponseValue:
    """Change a planned step's dose."""
    return _step_action(step_id, "dose")


@bp.get("/patients/<int:patient_id>/taper/print")
@require(Action.VIEW_PATIENTS)
def printable(patient_id: int) -> http.ResponseValue:
    """The patient's schedule with tablets: a line per step (two pages at most for a long
    taper), or day by day with ?days=1."""
    patient = patient_service.get_patient(http.db(), patient_id)
    today = clock.clinic_today(patient.home_center.timezone)
    settings = http.settings()
    view = taper_service.patient_taper(http.db(), patient_id, settings, today)
    drug = view.plan.drug if view.plan else ""

    def made(mg: float | None) -> tuple[tuple[float, int], ...] | None:
        return None if mg is None else taper_service.tablets(settings, drug, mg)

    steps = [
        (
            dated,
            dated.ends_on - dt.timedelta(days=1),
            made(dated.step.mg_per_day),
            made(dated.step.alternate_day_mg),
        )
        for dated in view.dated
        if dated.ends_on > today
    ]
    by_day = request.args.get("days") == "1"
    days = [(day, mg, made(mg)) for day, mg in view.daily if day >= today] if by_day else []
    return render_template(
        "tapers/print.html", patient=patient, view=view, steps=steps, days=days, by_day=by_day
    )


def dose_chart(
    daily: list[tuple[dt.date, float]], today: dt.date, width: int = 640, height: int = 160
) -> dict[str, object] | None:
    """Geometry of an SVG step chart of daily dose over time."""
    if not daily:
        return None
    first, last = daily[0][0], daily[-1][0]
    span = max(1, (last - first).days)
    top = max(mg for _, mg in daily) or 1.0

    def x(day: dt.date) -> float:
        return round((day - first).days / span * width, 1)

    def y(mg: float) -> float:
        return round(height - mg / top * (height - 10), 1)

    points = []
    previous = None
    for day, mg in daily:
        if previous is not None and mg != previous:
            points.append(f"{x(day)},{y(previous)}")
        if mg != previous:
            points.append(f"{x(day)},{y(mg)}")
        previous = mg
    points.append(f"{x(last)},{y(daily[-1][1])}")
    return {
        "width": width,
        "height": height,
        "points": " ".join(points),
        "today_x": x(today) if first <= today <= last else None,
        "first": first,
        "last": last,
        "top": top,
    }
