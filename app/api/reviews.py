"""JSON API: course reviews and authorisations."""

from __future__ import annotations

from typing import Any

from app import http
from app.api import bp, guarded
from app.policy import Action
from app.schemas.reviews import (
    AuthorisationIn,
    AuthorisationRecorded,
    CourseReviewStatus,
    ReviewIn,
    ReviewOut,
)
from app.services import patients as patient_service
from app.services import reviews as review_service


@bp.get("/patients/<int:patient_id>/course-review")
@guarded(Action.VIEW_PATIENTS)
@bp.output(CourseReviewStatus)
def course_review(patient_id: int) -> Any:
    """When the course's next review is due, what it still needs, and the authorisation."""
    today = patient_service.local_today(http.db(), patient_id)
    state = review_service.status(http.db(), patient_id, http.settings(), today)
    return {
        "next_review": state.point,
        "overdue": state.overdue,
        "stopped": state.stopped,
        "missing_measures": list(state.missing),
        "authorised_until": state.authorised_until,
        "needs_renewal": state.needs_renewal,
        "reviews": state.history,
        "authorisations": state.authorisations,
    }


@bp.post("/patients/<int:patient_id>/reviews")
@guarded(Action.REVIEW_COURSE)
@bp.input(ReviewIn, arg_name="body")
@bp.output(ReviewOut, status_code=201)
def record_review(patient_id: int, body: ReviewIn) -> Any:
    """Record a course review (physician): it rests on the latest assessment's measures."""
    return review_service.record_review(
        http.db(), http.actor(), patient_id, body.review_input(), http.settings()
    )


@bp.post("/patients/<int:patient_id>/authorisations")
@guarded(Action.REVIEW_COURSE)
@bp.input(AuthorisationIn, arg_name="body")
@bp.output(AuthorisationRecorded, status_code=201)
def record_authorisation(patient_id: int, body: AuthorisationIn) -> Any:
    """Record an authorisation or its renewal (physician); the horizon books up to its end."""
    granted, booked = review_service.record_authorisation(
        http.db(), http.actor(), patient_id, body.authorisation_input(), http.settings()
    )
    return {"authorisation": granted, "booked": booked}
