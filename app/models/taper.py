"""Steroid taper plans (versioned) and their physician-approved steps."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime, utcnow
from app.models.patient import Patient
from app.models.user import User


class StepStatus(enum.StrEnum):
    PLANNED = "planned"  # waiting; "due" is derived: earliest date reached, previous ran its days
    ACTIVE = "active"  # approved by a physician and being taken
    COMPLETED = "completed"
    HELD = "held"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"  # the plan was replaced by a new version


_STEP_STATUSES = ", ".join(f"'{s.value}'" for s in StepStatus)
TEMPLATES = ("banded", "fixed", "percent", "custom")


class TaperPlan(Base):
    __tablename__ = "taper_plans"
    __table_args__ = (
        sa.UniqueConstraint("patient_id", "version", name="uq_taper_plans_patient_version"),
        sa.CheckConstraint("start_mg > 0", name="start_positive"),
        sa.CheckConstraint(
            "template IN ({})".format(", ".join(f"'{t}'" for t in TEMPLATES)), name="template_known"
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("patients.id", ondelete="RESTRICT"), index=True
    )
    version: so.Mapped[int]
    drug: so.Mapped[str] = so.mapped_column(sa.String(30))
    #: mg/day of the drug (not prednisone-equivalent) on the first step.
    start_mg: so.Mapped[float]
    template: so.Mapped[str] = so.mapped_column(sa.String(10))
    #: The template's parameters (decrement, percent, step days...) as entered.
    template_params: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON, default=dict)
    starts_on: so.Mapped[dt.date]
    reason: so.Mapped[str] = so.mapped_column(sa.Text)
    created_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    steps: so.Mapped[list[TaperStep]] = so.relationship(
        back_populates="plan", order_by="TaperStep.position", cascade="all, delete-orphan"
    )
    created_by: so.Mapped[User | None] = so.relationship()
    patient: so.Mapped[Patient] = so.relationship()


class TaperStep(Base):
    __tablename__ = "taper_steps"
    __table_args__ = (
        sa.UniqueConstraint("plan_id", "position", name="uq_taper_steps_plan_position"),
        sa.CheckConstraint(f"status IN ({_STEP_STATUSES})", name="status_known"),
        sa.CheckConstraint("mg_per_day >= 0", name="dose_not_negative"),
        sa.CheckConstraint("min_days >= 1", name="min_days_positive"),
        sa.CheckConstraint(
            "alternate_day_mg IS NULL OR alternate_day_mg >= 0", name="alternate_not_negative"
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: Opaque, stable identifier for calendar feeds.
    uid: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)
    plan_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("taper_plans.id", ondelete="CASCADE"), index=True
    )
    patient_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("patients.id", ondelete="RESTRICT"), index=True
    )
    #: 0 = the start dose.
    position: so.Mapped[int]
    mg_per_day: so.Mapped[float]
    min_days: so.Mapped[int]
    #: Alternate-day pattern: mg_per_day on day 1, this on day 2, and so on.
    alternate_day_mg: so.Mapped[float | None]
    #: The final stop: needs a morning cortisol result or a physician's override.
    requires_cortisol: so.Mapped[bool] = so.mapped_column(default=False)
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default=StepStatus.PLANNED)
    #: Earliest date this step may start (from the plan's dates; moves when earlier steps do).
    earliest_on: so.Mapped[dt.date]
    started_on: so.Mapped[dt.date | None]
    ended_on: so.Mapped[dt.date | None]
    approved_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    approved_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    #: Why it was held, skipped or its dose changed.
    status_reason: so.Mapped[str | None] = so.mapped_column(sa.Text)
    cortisol_nmol_l: so.Mapped[float | None]
    cortisol_override_reason: so.Mapped[str | None] = so.mapped_column(sa.Text)
    #: iCalendar SEQUENCE for feeds.
    sequence: so.Mapped[int] = so.mapped_column(default=0)
    #: Optimistic lock: a stale version gets 409.
    version: so.Mapped[int] = so.mapped_column(default=1)
    updated_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    plan: so.Mapped[TaperPlan] = so.relationship(back_populates="steps")
    approved_by: so.Mapped[User | None] = so.relationship()
