"""Course reviews and authorisations: proof that the IVIG course works, and leave to go on.

DOMAIN.md, "Reviews, authorisations, stewardship": Ontario reviews at 6 months, then at least
yearly; BloodSTAR gives each course an authorisation with an end date and a review before it
may continue. A patient has one IVIG course (cycle numbers run across regimen versions).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime, utcnow
from app.models.user import User

REVIEW_DECISIONS = ("continue", "change", "stop")


class CourseReview(Base):
    __tablename__ = "course_reviews"
    __table_args__ = (
        sa.CheckConstraint(
            "decision IN ({})".format(", ".join(f"'{d}'" for d in REVIEW_DECISIONS)),
            name="decision_known",
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("patients.id", ondelete="RESTRICT"), index=True
    )
    #: The day the physician reviewed the course (on the center's clock).
    reviewed_on: so.Mapped[dt.date]
    #: The review point it answers (the due date then), for the record.
    due_on: so.Mapped[dt.date | None]
    #: The outcome measures the decision rests on (the latest assessment's, as of review).
    cdasi_activity: so.Mapped[float | None]
    mmt8: so.Mapped[float | None]
    physician_global: so.Mapped[float | None]
    #: Total improvement score against the baseline, when one can be computed.
    tis: so.Mapped[float | None]
    assessment_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("assessments.id", ondelete="RESTRICT")
    )
    decision: so.Mapped[str] = so.mapped_column(sa.String(10))
    note: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    reviewed_by_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    reviewed_by: so.Mapped[User] = so.relationship()


class Authorisation(Base):
    """Leave to give IVIG from a payer or programme (BloodSTAR), with its end date."""

    __tablename__ = "authorisations"
    __table_args__ = (sa.CheckConstraint("ends_on >= starts_on", name="ends_after_start"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("patients.id", ondelete="RESTRICT"), index=True
    )
    #: The payer's or programme's reference, e.g. a BloodSTAR authorisation number.
    reference: so.Mapped[str] = so.mapped_column(sa.String(60))
    #: Who approved it (a person or body, as written on the approval).
    approved_by: so.Mapped[str] = so.mapped_column(sa.String(120))
    starts_on: so.Mapped[dt.date]
    ends_on: so.Mapped[dt.date]
    recorded_by_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
