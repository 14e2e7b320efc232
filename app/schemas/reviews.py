"""Course reviews and authorisations (DOMAIN.md, "Reviews, authorisations, stewardship")."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from app.schemas.base import Input, Output
from app.services import reviews as review_service


class ReviewIn(Input):
    decision: Literal["continue", "change", "stop"] = Field(
        description="continue the course, change it (say how), or stop it (say why)"
    )
    note: str = Field("", max_length=4000, description="needed for change and stop")
    reviewed_on: dt.date | None = Field(
        None, description="the review's day; left out: today at the patient's center"
    )

    def review_input(self) -> review_service.ReviewInput:
        return review_service.ReviewInput(**self.model_dump())


class ReviewOut(Output):
    id: int
    patient_id: int
    reviewed_on: dt.date
    due_on: dt.date | None = Field(description="the review point it answered")
    decision: str
    note: str
    cdasi_activity: float | None
    mmt8: float | None
    physician_global: float | None
    tis: float | None = Field(description="Total Improvement Score against the baseline")
    reviewed_by_id: int


class AuthorisationIn(Input):
    reference: str = Field(min_length=1, max_length=60, description="e.g. a BloodSTAR number")
    approved_by: str = Field(min_length=1, max_length=120, description="person or body")
    starts_on: dt.date
    ends_on: dt.date = Field(description="on or after starts_on, at most three years later")

    def authorisation_input(self) -> review_service.AuthorisationInput:
        return review_service.AuthorisationInput(**self.model_dump())


class AuthorisationOut(Output):
    id: int
    patient_id: int
    reference: str
    approved_by: str
    starts_on: dt.date
    ends_on: dt.date


class AuthorisationRecorded(Output):
    authorisation: AuthorisationOut
    booked: int = Field(description="infusions the horizon booked up to the new end")


class ReviewPointOut(Output):
    due_on: dt.date
    number: int
    reason: str


class CourseReviewStatus(Output):
    next_review: ReviewPointOut | None = Field(description="null: no course yet, or stopped")
    overdue: bool
    stopped: bool
    missing_measures: list[str] = Field(description="measures the next review still needs")
    authorised_until: dt.date | None = Field(description="null: no authorisation on record")
    needs_renewal: bool = Field(description="the horizon stops at the authorisation's end")
    reviews: list[ReviewOut] = Field(description="newest first")
    authorisations: list[AuthorisationOut]
