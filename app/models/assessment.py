"""Response assessments and the suggestions the rules engine makes from them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime, utcnow
from app.domain.scores import SCORE_RANGES
from app.models.user import User


class Assessment(Base):
    __tablename__ = "assessments"
    __table_args__ = (
        *(
            sa.CheckConstraint(
                f"{name} IS NULL OR {name} BETWEEN {low} AND {high}", name=f"{name}_range"
            )
            for name, low, high in SCORE_RANGES
        ),
        sa.Index("ix_assessments_patient_date", "patient_id", "assessed_on"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("patients.id", ondelete="RESTRICT"))
    assessed_on: so.Mapped[dt.date]
    #: CDASI activity 0-100 and damage 0-32.
    cdasi_activity: so.Mapped[float | None]
    cdasi_damage: so.Mapped[float | None]
    #: Manual muscle testing, eight groups, 0-80.
    mmt8: so.Mapped[float | None]
    #: Creatine kinase (U/L) and the lab's upper limit of normal.
    ck: so.Mapped[float | None]
    ck_uln: so.Mapped[float | None]
    #: Global activity on 0-10 scales.
    physician_global: so.Mapped[float | None]
    patient_global: so.Mapped[float | None]
    pruritus: so.Mapped[float | None]
    #: HAQ disability index 0-3 and extramuscular global activity 0-10 (for the TIS).
    haq: so.Mapped[float | None]
    extramuscular_global: so.Mapped[float | None]
    notes: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    recorded_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)


SUGGESTION_STATUSES = ("pending", "approved", "rejected", "superseded", "expired")


class Suggestion(Base):
    """A rule's proposal, shaped like a CDS Hooks card; therapy changes only on approval."""

    __tablename__ = "suggestions"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ({})".format(", ".join(f"'{s}'" for s in SUGGESTION_STATUSES)),
            name="status_known",
        ),
        sa.CheckConstraint("indicator IN ('info', 'warning', 'critical')", name="indicator_known"),
        sa.Index("ix_suggestions_patient_status", "patient_id", "status"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("patients.id", ondelete="RESTRICT"))
    #: Patient, rule, rule version and evidence: evaluating twice cannot make a second row.
    dedupe_key: so.Mapped[str] = so.mapped_column(sa.String(200), unique=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(40))
    rule_id: so.Mapped[str] = so.mapped_column(sa.String(60))
    rule_version: so.Mapped[int]
    indicator: so.Mapped[str] = so.mapped_column(sa.String(10))
    #: Card summary (< 140 characters) and detail (the explanation in plain words).
    summary: so.Mapped[str] = so.mapped_column(sa.String(140))
    detail: so.Mapped[str] = so.mapped_column(sa.Text)
    #: The proposed change (from -> to) and its parameters.
    proposal: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON)
    #: Facts as evaluated, and the assessment ids they rest on.
    facts: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON)
    evidence: so.Mapped[list[int]] = so.mapped_column(sa.JSON)
    status: so.Mapped[str] = so.mapped_column(sa.String(12), default="pending")
    decided_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    decided_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    decision_reason: so.Mapped[str | None] = so.mapped_column(sa.Text)
    #: What approving it created: a regimen version, or the taper step it approved.
    applied_regimen_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("regimens.id", ondelete="RESTRICT")
    )
    applied_step_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("taper_steps.id", ondelete="RESTRICT")
    )
    #: The taper step a taper-step suggestion proposes: one decision governs both.
    step_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("taper_steps.id", ondelete="RESTRICT"), index=True
    )
    version: so.Mapped[int] = so.mapped_column(default=1)
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    updated_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    decided_by: so.Mapped[User | None] = so.relationship()
