"""Pages for patients, regimens, the day board, infusions and the dose calculator."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from app import clock, http
from app.auth import require
from app.db import utcnow
from app.domain import dosing, ical
from app.models import InfusionStatus
from app.models.infusion import ADVERSE_EVENT_TYPES
from app.policy import Action
from app.services import assessments as assessment_service
from app.services import clinic, scheduling
from app.services import feeds as feed_service
from app.services import infusions as infusion_service
from app.services import patients as patient_service
from app.services import regimens as regimen_service
from app.services import suggestions as suggestion_service
from app.services import tapers as taper_service
from app.services.errors import ServiceError
from app.services.suggestions import evaluation_hook
from app.web import forms
from app.web.tapers import dose_chart

bp = Blueprint("care", __name__)


def _date_arg(default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(request.args.get("date", ""))
    except ValueError:
        return default


@bp.app_template_filter("local")
def local_time(value: dt.datetime | None, timezone: str, fmt: str = "%H:%M") -> str:
    """Show a UTC time on a center's wall clock."""
    return value.astimezone(ZoneInfo(timezone)).strftime(fmt) if value else "—"


@bp.route("/patients/new", methods=["GET", "POST"])
@require(Action.MANAGE_PATIENTS)
def new_patient() -> http.ResponseValue:
    """Register a patient."""
    centers = clinic.list_centers(http.db())
    physicians = clinic.list_physicians(http.db())
    status = 200
    if request.method == "POST":
        try:
            data = patient_service.PatientInput(
                mrn=forms.text("mrn", 40),
                family_name=forms.text("family_name", 100),
                given_name=forms.text("given_name", 100),
                sex=forms.text("sex", 10),
                birth_date=forms.date("birth_date"),
                home_center_id=forms.whole("home_center_id"),
                height_cm=forms.optional_number("height_cm"),
                weight_kg=forms.optional_number("weight_kg"),
                dm_subtype=forms.text("dm_subtype", 20) or "classic",
                treating_physician_id=forms.optional_whole("treating_physician_id"),
                thrombosis_risk=forms.checkbox("thrombosis_risk"),
                renal_risk=forms.checkbox("renal_risk"),
            )
            patient = patient_service.create_patient(http.db(), http.actor(), data, http.settings())
        except ServiceError as exc:
            flash(exc.message, "error")
            status = exc.status
        else:
            flash(f"Registered {patient.display_name}.", "success")
            return redirect(url_for("care.patient", patient_id=patient.id))
    return (
        render_template(
            "care/new_patient.html", centers=centers, physicians=physicians, form=request.form
        ),
        status,
    )


def _patient_page(patient_id: int, status: int = 200) -> http.ResponseValue:
    settings = http.settings()
    patient = patient_service.get_patient(http.db(), patient_id)
    today = clock.clinic_today(patient.home_center.timezone)
    detail = patient_service.patient_detail(http.db(), patient_id, settings, today)
    current = detail.regimens[0] if detail.regimens else None
    taper_view = taper_service.patient_taper(http.db(), patient_id, settings, today)
    return (
        render_template(
            "care/patient.html",
            d=detail,
            t=taper_view,
            feeds=feed_service.list_for(http.db(), patient_id=patient_id),
            assessments=assessment_service.list_assessments(http.db(), patient_id),
            suggestions=suggestion_service.for_patient(http.db(), patient_id),
            adverse_events=infusion_service.adverse_events_of(http.db(), patient_id),
            score_names=assessment_service.SCORE_NAMES,
            chart=dose_chart(taper_view.daily, today),
            current=current,
            products=list(settings.product_catalog()),
            centers=clinic.list_centers(http.db()),
            default_basis=settings.dosing.weight_basis_default,
            default_time=settings.scheduling.default_start_time,
            today=today,
            next_cycle_on=scheduling.next_planned_start(http.db(), patient_id, today),
            form=request.form,
        ),
        status,
    )


@bp.get("/patients/<int:patient_id>")
@require(Action.VIEW_PATIENTS)
def patient(patient_id: int) -> http.ResponseValue:
    """The patient page: measurements, regimen history, infusions."""
    return _patient_page(patient_id)


@bp.post("/patients/<int:patient_id>/details")
@require(Action.MANAGE_PATIENTS)
def update_details(patient_id: int) -> http.ResponseValue:
    """Change height and risk flags."""
    try:
        patient_service.update_patient(
            http.db(),
            http.actor(),
            patient_id,
            patient_service.PatientChanges(
                height_cm=forms.optional_number("height_cm"),
                thrombosis_risk=forms.checkbox("thrombosis_risk"),
                renal_risk=forms.checkbox("renal_risk"),
            ),
            http.settings(),
        )
    except ServiceError as exc:
        flash(exc.message, "error")
        return _patient_page(patient_id, exc.status)
    flash("Patient details saved.", "success")
    return redirect(url_for("care.patient", patient_id=patient_id))


@bp.post("/patients/<int:patient_id>/weights")
@require(Action.MANAGE_PATIENTS)
def record_weight(patient_id: int) -> http.ResponseValue:
    """Record a body weight."""
    try:
        today = patient_service.local_today(http.db(), patient_id)
        patient_service.record_weight(
            http.db(),
            http.actor(),
            patient_id,
            forms.number("weight_kg"),
            forms.date("measured_on") if forms.text("measured_on") else today,
            http.settings(),
            today,
        )
    except ServiceError as exc:
        flash(exc.message, "error")
        return _patient_page(patient_id, exc.status)
    flash("Weight recorded.", "success")
    return redirect(url_for("care.patient", patient_id=patient_id))


@bp.post("/patients/<int:patient_id>/assessments")
@require(Action.RECORD_ASSESSMENT)
def record_assessment(patient_id: int) -> http.ResponseValue:
    """Record a response assessment."""
    try:
        today = patient_service.local_today(http.db(), patient_id)
        scores = {name: forms.optional_number(name) for name in assessment_service.SCORE_NAMES}
        assessment_service.record_assessment(
            http.db(),
            http.actor(),
            patient_id,
            assessment_service.AssessmentInput(
                assessed_on=forms.date("assessed_on"),
                scores=scores,
                notes=forms.text("notes", 4000),
            ),
            today,
            after_record=evaluation_hook(http.settings()),
        )
    except ServiceError as exc:
        flash(exc.message, "error")
        return _patient_page(patient_id, exc.status)
    flash("Assessment recorded.", "success")
    return redirect(url_for("care.patient", patient_id=patient_id, _anchor="assessments"))


@bp.post("/patients/<int:patient_id>/regimens")
@require(Action.SET_REGIMEN)
def set_regimen(patient_id: int) -> http.ResponseValue:
    """Set a new regimen version and re-plan the future."""
    try:
        data = regimen_service.RegimenInput(
            product=forms.text("product", 60),
            dose_g_per_kg=forms.number("dose_g_per_kg"),
            days_per_cycle=forms.whole("days_per_cycle"),
            interval_weeks=forms.whole("interval_weeks"),
            weight_basis=forms.text("weight_basis", 10),
            starts_on=forms.date("starts_on"),
            preferred_weekday=forms.optional_whole("preferred_weekday"),
            preferred_time=forms.time("preferred_time"),
            center_id=forms.optional_whole("center_id"),
            reason=forms.text("reason"),
            override_reason=forms.optional_text("override_reason"),
            based_on_version=forms.optional_whole("based_on_version"),
        )
        regimen, plan = regimen_service.set_regimen(
            http.db(), http.actor(), patient_id, data, http.settings()
        )
    except ServiceError as exc:
        flash(exc.message, "error")
        return _patient_page(patient_id, exc.status)
    summary = plan.summary()
    flash(
        f"Regimen version {regimen.version} set: {summary['created']} infusions booked, "
        f"{summary['moved']} moved, {summary['cancelled']} cancelled, "
        f"{summary['unbooked']} waiting for a chair.",
        "success",
    )
    return redirect(url_for("care.patient", patient_id=patient_id))


@bp.get("/centers/<int:center_id>/day")
@require(Action.VIEW_SCHEDULE)
def day_board(center_id: int) -> http.ResponseValue:
    """The center's day board: chairs x hours."""
    center = clinic.get_center(http.db(), center_id)
    day = _date_arg(clock.clinic_today(center.timezone))
    board = infusion_service.day_board(http.db(), center_id, day)
    return render_template(
        "care/day.html", board=board, rows=_board_rows(board), one_day=dt.timedelta(days=1)
    )


def _board_rows(board: infusion_service.DayBoard) -> dict[str, object]:
    """Grid geometry: 15-minute rows from opening to closing, and each infusion's rows."""
    if board.hours is None:
        return {"times": [], "placement": {}}
    zone = ZoneInfo(board.center.timezone)
    opens = dt.datetime.combine(board.day, board.hours[0])
    closes = dt.datetime.combine(board.day, board.hours[1])
    times = []
    cursor = opens
    while cursor < closes:
        times.append(cursor.time())
        cursor += dt.timedelta(minutes=15)
    placement = {}
    for column, chair in enumerate(board.chairs, start=2):
        for infusion in board.by_chair.get(chair.id, []):
            assert infusion.starts_at is not None and infusion.ends_at is not None  # on a chair
            start = infusion.starts_at.astimezone(zone).replace(tzinfo=None)
            end = infusion.ends_at.astimezone(zone).replace(tzinfo=None)
            first = max(0, int((start - opens).total_seconds() // 900))
            last = max(first + 1, int(-(-(end - opens).total_seconds() // 900)))
            placement[infusion.id] = (column, first + 2, min(last, len(times)) + 2)
    return {"times": times, "placement": placement}


@bp.get("/centers/<int:center_id>/week")
@require(Action.VIEW_SCHEDULE)
def week_board(center_id: int) -> http.ResponseValue:
    """The center's week: infusions per day."""
    center = clinic.get_center(http.db(), center_id)
    day = _date_arg(clock.clinic_today(center.timezone))
    monday = day - dt.timedelta(days=day.weekday())
    boards = infusion_service.week_board(http.db(), center_id, monday)
    return render_template(
        "care/week.html", boards=boards, center=center, monday=monday, week=dt.timedelta(days=7)
    )


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


@bp.post("/patients/<int:patient_id>/adverse-events/<int:event_id>/resolve")
@require(Action.RESOLVE_ADVERSE_EVENT)
def resolve_adverse_event(patient_id: int, event_id: int) -> http.ResponseValue:
    """Mark an adverse event resolved (physician); its safety hold lifts."""
    try:
        infusion_service.resolve_adverse_event(
            http.db(),
            http.actor(),
            event_id,
            forms.date("resolved_on"),
            forms.text("note", 2000),
            after_record=evaluation_hook(http.settings()),
        )
    except ServiceError as exc:
        flash(exc.message, "error")
        return _patient_page(patient_id, exc.status)
    flash("Marked resolved.", "success")
    return redirect(url_for("care.patient", patient_id=patient_id, _anchor="adverse-events"))


@bp.route("/dosing/ivig", methods=["GET", "POST"])
@require(Action.USE_CALCULATOR)
def calculator() -> http.ResponseValue:
    """The dose calculator: saves nothing."""
    settings = http.settings()
    result = None
    status = 200
    if request.method == "POST":
        try:
            request_value = dosing.DoseRequest(
                weight_kg=forms.number("weight_kg"),
                height_cm=forms.number("height_cm"),
                sex=forms.text("sex", 10),  # type: ignore[arg-type]
                dose_g_per_kg=forms.number("dose_g_per_kg"),
                days_per_cycle=forms.whole("days_per_cycle"),
                weight_basis=forms.text("weight_basis", 10),  # type: ignore[arg-type]
                product=forms.text("product", 60),
                thrombosis_risk=forms.checkbox("thrombosis_risk"),
                renal_risk=forms.checkbox("renal_risk"),
            )
            result = regimen_service.calculate(request_value, settings)
        except ServiceError as exc:
            flash(exc.message, "error")
            status = exc.status
    return (
        render_template(
            "care/calculator.html",
            result=result,
            products=list(settings.product_catalog()),
            default_basis=settings.dosing.weight_basis_default,
            form=request.form,
        ),
        status,
    )
