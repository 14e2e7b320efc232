"""Patients (the record grows with the regimen issue)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime, utcnow
from app.models.center import Center
from app.models.user import User

DM_SUBTYPES = ("classic", "amyopathic", "juvenile")


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (
        sa.CheckConstraint("sex IN ('female', 'male')", name="sex_known"),
        sa.CheckConstraint(
            "dm_subtype IN ('classic', 'amyopathic', 'juvenile')", name="dm_subtype_known"
        ),
        sa.CheckConstraint("height_cm > 0", name="height_positive"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: Medical record number, unique in the clinic; never leaves the clinic (not in feeds).
    mrn: so.Mapped[str] = so.mapped_column(sa.String(40), unique=True)
    family_name: so.Mapped[str] = so.mapped_column(sa.String(100))
    given_name: so.Mapped[str] = so.mapped_column(sa.String(100))
    #: Sex used by the Devine ideal-body-weight formula.
    sex: so.Mapped[str] = so.mapped_column(sa.String(10))
    birth_date: so.Mapped[dt.date]
    home_center_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("centers.id", ondelete="RESTRICT"), index=True
    )
    treating_physician_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    #: Height for the Devine ideal body weight; None until measured.
    height_cm: so.Mapped[float | None]
    #: Dermatomyositis subtype: classic, amyopathic or juvenile.
    dm_subtype: so.Mapped[str] = so.mapped_column(sa.String(20), server_default="classic")
    #: Risk of thrombosis (age > 65, prior thrombosis, immobility, estrogens...): lower rate cap.
    thrombosis_risk: so.Mapped[bool] = so.mapped_column(server_default=sa.false())
    #: Risk of renal injury (kidney disease, diabetes...): lower rate cap.
    renal_risk: so.Mapped[bool] = so.mapped_column(server_default=sa.false())
    #: Shown as a banner at every visit (the labels' contraindications: IgA deficiency with
    #: anti-IgA antibodies, prior anaphylaxis to immunoglobulin).
    allergies: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    iga_deficient: so.Mapped[bool] = so.mapped_column(server_default=sa.false())
    #: Where change notices and day-before reminders go (at the patient feed's privacy level:
    #: no drug, no dose), only while `contact_consent` is recorded.
    contact_email: so.Mapped[str | None] = so.mapped_column(sa.String(254))
    #: When the patient agreed to be e-mailed (None: no e-mail is sent).
    contact_consent_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    home_center: so.Mapped[Center] = so.relationship()
    treating_physician: so.Mapped[User | None] = so.relationship()
    weights: so.Mapped[list[WeightMeasurement]] = so.relationship(
        back_populates="patient",
        order_by="(WeightMeasurement.measured_on.desc(), WeightMeasurement.id.desc())",
    )

    @property
    def display_name(self) -> str:
        return f"{self.family_name}, {self.given_name}"


class WeightMeasurement(Base):
    """A body weight; dosing uses the latest one."""

    __tablename__ = "weight_measurements"
    __table_args__ = (sa.CheckConstraint("weight_kg > 0", name="weight_positive"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    measured_on: so.Mapped[dt.date]
    weight_kg: so.Mapped[float]
    recorded_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    patient: so.Mapped[Patient] = so.relationship(back_populates="weights")
