"""IVIG regimens: one row per version, never overwritten."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime, utcnow
from app.models.center import Center
from app.models.user import User


class Regimen(Base):
    __tablename__ = "regimens"
    __table_args__ = (
        sa.UniqueConstraint("patient_id", "version", name="uq_regimens_patient_version"),
        sa.CheckConstraint("dose_g_per_kg > 0", name="dose_positive"),
        sa.CheckConstraint("days_per_cycle BETWEEN 1 AND 5", name="days_per_cycle_range"),
        sa.CheckConstraint("interval_weeks BETWEEN 1 AND 52", name="interval_weeks_range"),
        sa.CheckConstraint(
            "weight_basis IN ('actual', 'ideal', 'adjusted')", name="weight_basis_known"
        ),
        sa.CheckConstraint(
            "preferred_weekday IS NULL OR preferred_weekday BETWEEN 0 AND 6",
            name="preferred_weekday_range",
        ),
        sa.CheckConstraint("grams_per_day > 0", name="grams_per_day_positive"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("patients.id", ondelete="RESTRICT"), index=True
    )
    #: 1, 2, 3 ... per patient; the highest is the current regimen.
    version: so.Mapped[int]
    product: so.Mapped[str] = so.mapped_column(sa.String(60))
    dose_g_per_kg: so.Mapped[float]
    days_per_cycle: so.Mapped[int]
    interval_weeks: so.Mapped[int]
    weight_basis: so.Mapped[str] = so.mapped_column(sa.String(10))
    #: First cycle of this version starts on (or, with a preferred weekday, after) this date.
    starts_on: so.Mapped[dt.date]
    #: 0 = Monday ... 6 = Sunday; None = the start date's weekday.
    preferred_weekday: so.Mapped[int | None]
    #: Local start time at the center.
    preferred_time: so.Mapped[dt.time] = so.mapped_column(sa.Time)
    center_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("centers.id", ondelete="RESTRICT"))
    #: Snapshot of the measurements and arithmetic this version was set with.
    weight_kg: so.Mapped[float]
    height_cm: so.Mapped[float]
    dosing_weight_kg: so.Mapped[float]
    grams_per_day: so.Mapped[float]
    grams_per_cycle: so.Mapped[float]
    minutes_per_day: so.Mapped[int]
    #: Full dose calculation (vials, deviation, rate steps) as computed when set.
    calculation: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON)
    #: Soft stops the physician overrode, and why.
    soft_stops: so.Mapped[list[Any]] = so.mapped_column(sa.JSON, default=list)
    override_reason: so.Mapped[str | None] = so.mapped_column(sa.Text)
    #: Why this version was set (free text).
    reason: so.Mapped[str] = so.mapped_column(sa.Text)
    created_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    center: so.Mapped[Center] = so.relationship()
    created_by: so.Mapped[User | None] = so.relationship()
