"""Pages for a patient: registration, details, weights, assessments, regimens, reactions."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from app import clock, http
from app.auth import require
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
from app.web.care import bp
from app.web.tapers import dose_chart


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
