"""Patient page: the course review and the authorisation (physician)."""

from __future__ import annotations

from flask import flash, redirect, url_for

from app import http
from app.auth import require
from app.policy import Action
from app.schemas.reviews import AuthorisationIn, ReviewIn
from app.services import reviews as review_service
from app.services.errors import ServiceError
from app.web import forms
from app.web.care import bp
from app.web.patients import patient_page


@bp.post("/patients/<int:patient_id>/reviews")
@require(Action.REVIEW_COURSE)
def record_review(patient_id: int) -> http.ResponseValue:
    """Record a course review with its decision."""
    try:
        review = review_service.record_review(
            http.db(),
            http.actor(),
            patient_id,
            forms.parse(ReviewIn).review_input(),
            http.settings(),
        )
    except ServiceError as exc:
        forms.refuse(exc, "review")
        return patient_page(patient_id, exc.status)
    flash(f"Course review recorded: {review.decision}.", "success")
    return redirect(url_for("care.patient", patient_id=patient_id, _anchor="course-review"))


@bp.post("/patients/<int:patient_id>/authorisations")
@require(Action.REVIEW_COURSE)
def record_authorisation(patient_id: int) -> http.ResponseValue:
    """Record an authorisation or its renewal; the horizon books up to its end."""
    try:
        granted, booked = review_service.record_authorisation(
            http.db(),
            http.actor(),
            patient_id,
            forms.parse(AuthorisationIn).authorisation_input(),
            http.settings(),
        )
    except ServiceError as exc:
        forms.refuse(exc, "authorisation")
        return patient_page(patient_id, exc.status)
    flash(
        f"Authorisation {granted.reference} recorded to {granted.ends_on}"
        + (f"; {booked} infusion(s) booked." if booked else "."),
        "success",
    )
    return redirect(url_for("care.patient", patient_id=patient_id, _anchor="course-review"))
