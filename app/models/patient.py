"""Patients (the record grows with the regimen issue)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime, utcnow
from app.models.center import Center
from app.models.user import User


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (sa.CheckConstraint("sex IN ('female', 'male')", name="sex_known"),)

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
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    home_center: so.Mapped[Center] = so.relationship()
    treating_physician: so.Mapped[User | None] = so.relationship()

    @property
    def display_name(self) -> str:
        return f"{self.family_name}, {self.given_name}"
