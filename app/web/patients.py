"""Pages for a patient: registration, details, weights, assessments, regimens, reactions."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from app import clock, http
from app.auth import require
from app.domain.scores import SCORES
from app.models.review import REVIEW_DECISIONS
from app.policy import Action
from app.schemas.assessments import AssessmentIn
from app.schemas.infusions import ResolveIn
from app.schemas.patients import PatientChangesIn, PatientCreateIn, WeightIn
from app.services import adverse_events as adverse_event_service
from app.services import assessments as assessment_service
from app.services import clinic, scheduling
from app.services import labs as lab_service
from app.services import patients as patient_service
from app.services import reviews as review_service
from app.services import subscriptions as subscription_service
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
            body = forms.parse(PatientCreateIn)
            data = patient_service.PatientInput(**body.model_dump())
            patient = patient_service.create_patient(http.db(), http.actor(), data, http.settings())
        except ServiceError as exc:
            forms.refuse(exc, "patient")
            status = exc.status
        else:
            flash(f"Registered {patient.display_name}.", "success")
            return redirect(url_for("care.patient", patient_id=patient.id))
    return (
        render_template("care/new_patient.html", centers=centers, physicians=physicians),
        status,
    )


def patient_page(patient_id: int, status: int = 200) -> http.ResponseValue:
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
            feeds=subscription_service.list_for(http.db(), patient_id=patient_id),
            assessments=assessment_service.list_assessments(http.db(), patient_id),
            labs=lab_service.trend(
                http.db(), patient_id, settings.labs, settings.labs.trend_results
            ),
            suggestions=suggestion_service.for_patient(http.db(), patient_id),
            adverse_events=adverse_event_service.adverse_events_of(http.db(), patient_id),
            score_names=SCORES,
            chart=dose_chart(taper_view.daily, today),
            current=current,
            products=list(settings.product_catalog()),
            centers=clinic.list_centers(http.db()),
            physicians=clinic.list_physicians(http.db()),
            default_basis=settings.dosing.weight_basis_default,
            default_time=settings.scheduling.default_start_time,
            today=today,
            next_cycle_on=scheduling.next_planned_start(http.db(), patient_id, today),
            review=review_service.status(http.db(), patient_id, settings, today),
            review_decisions=REVIEW_DECISIONS,
            measure_labels=review_service.MEASURE_LABELS,
            form=request.form,
        ),
        status,
    )


@bp.get("/patients/<int:patient_id>")
@require(Action.VIEW_PATIENTS)
def patient(patient_id: int) -> http.ResponseValue:
    """The patient page: measurements, regimen history, infusions."""
    return patient_page(patient_id)


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
                # The details form shows the allergies: an emptied field clears them.
                **forms.parse(
                    PatientChangesIn, allergies=request.form.get("allergies", "")[:600]
                ).model_dump()
            ),
            http.settings(),
        )
    except ServiceError as exc:
        forms.refuse(exc, "details")
        return patient_page(patient_id, exc.status)
    flash("Patient details saved.", "success")
    return redirect(url_for("care.patient", patient_id=patient_id))


@bp.post("/patients/<int:patient_id>/weights")
@require(Action.MANAGE_PATIENTS)
def record_weight(patient_id: int) -> http.ResponseValue:
    """Record a body weight."""
    try:
        today = patient_service.local_today(http.db(), patient_id)
        body = forms.parse(WeightIn)
        patient_service.record_weight(
            http.db(),
            http.actor(),
            patient_id,
            body.weight_kg,
            body.measured_on or today,
            http.settings(),
            today,
        )
    except ServiceError as exc:
        forms.refuse(exc, "weight")
        return patient_page(patient_id, exc.status)
    flash("Weight recorded.", "success")
    return redirect(url_for("care.patient", patient_id=patient_id))


@bp.post("/patients/<int:patient_id>/assessments")
@require(Action.RECORD_ASSESSMENT)
def record_assessment(patient_id: int) -> http.ResponseValue:
    """Record a response assessment."""
    try:
        today = patient_service.local_today(http.db(), patient_id)
        assessment_service.record_assessment(
            http.db(),
            http.actor(),
            patient_id,
            forms.parse(AssessmentIn).assessment_input(),
            today,
            after_record=evaluation_hook(http.settings()),
        )
    except ServiceError as exc:
        forms.refuse(exc, "assessment")
        return patient_page(patient_id, exc.status)
    flash("Assessment recorded.", "success")
    return redirect(url_for("care.patient", patient_id=patient_id, _anchor="assessments"))


@bp.post("/patients/<int:patient_id>/adverse-events/<int:event_id>/resolve")
@require(Action.RESOLVE_ADVERSE_EVENT)
def resolve_adverse_event(patient_id: int, event_id: int) -> http.ResponseValue:
    """Mark an adverse event resolved (physician); its safety hold lifts."""
    try:
        body = forms.parse(ResolveIn)
        adverse_event_service.resolve_adverse_event(
            http.db(),
            http.actor(),
            event_id,
            body.resolved_on,
            body.note,
            after_record=evaluation_hook(http.settings()),
        )
    except ServiceError as exc:
        forms.refuse(exc, "resolve")
        return patient_page(patient_id, exc.status)
    flash("Marked resolved.", "success")
    return redirect(url_for("care.patient", patient_id=patient_id, _anchor="adverse-events"))
