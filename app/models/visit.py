"""The visit at the chair: what was checked, given and seen, for safety and traceability.

One infusion row carries the visit's state and times (checked in, started, ended); these
tables carry its documentation: each vial (product, lot, expiry), the premedication and
hydration, the rate steps as run, the vital signs. Lab results belong to the patient."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.infusion import Infusion
    from app.models.user import User


class InfusionVial(Base):
    """Vials of one product and lot used in an infusion (a recall finds who got them)."""

    __tablename__ = "infusion_vials"
    __table_args__ = (
        sa.CheckConstraint("vial_grams > 0", name="vial_grams_positive"),
        sa.CheckConstraint("count BETWEEN 1 AND 100", name="count_range"),
        # The recall lookup: which infusions used lot X (case-folded on the way in).
        sa.Index("ix_infusion_vials_lot", "lot_number"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    infusion_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("infusions.id", ondelete="RESTRICT"), index=True
    )
    #: The brand as the clinic's product catalogue names it (e.g. "Octagam 10%").
    product: so.Mapped[str] = so.mapped_column(sa.String(60))
    #: Stored upper-case without surrounding spaces, as printed on the vial.
    lot_number: so.Mapped[str] = so.mapped_column(sa.String(40))
    expires_on: so.Mapped[dt.date]
    vial_grams: so.Mapped[float]
    count: so.Mapped[int]
    recorded_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    infusion: so.Mapped[Infusion] = so.relationship(back_populates="vials")


class Premedication(Base):
    """A premedication or hydration given at the visit, from the clinic's list."""

    __tablename__ = "premedications"
    __table_args__ = (sa.CheckConstraint("dose > 0", name="dose_positive"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    infusion_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("infusions.id", ondelete="RESTRICT"), index=True
    )
    name: so.Mapped[str] = so.mapped_column(sa.String(80))
    dose: so.Mapped[float]
    unit: so.Mapped[str] = so.mapped_column(sa.String(10))
    route: so.Mapped[str] = so.mapped_column(sa.String(10))
    given_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime())
    recorded_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )

    infusion: so.Mapped[Infusion] = so.relationship(back_populates="premedications")


#: What a rate step records: a step of the plan, or a change after a reaction.
RATE_ACTIONS = ("step", "slowed", "paused", "resumed")


class RateStep(Base):
    """A rate the infusion ran at from a moment on (mL/h; 0 while paused)."""

    __tablename__ = "rate_steps"
    __table_args__ = (
        sa.CheckConstraint("rate_ml_per_h >= 0", name="rate_not_negative"),
        sa.CheckConstraint(
            "action IN ({})".format(", ".join(f"'{a}'" for a in RATE_ACTIONS)),
            name="action_known",
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    infusion_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("infusions.id", ondelete="RESTRICT"), index=True
    )
    started_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime())
    rate_ml_per_h: so.Mapped[float]
    action: so.Mapped[str] = so.mapped_column(sa.String(10), default="step")
    note: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    recorded_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )

    infusion: so.Mapped[Infusion] = so.relationship(back_populates="rate_steps")


class VitalSigns(Base):
    """One set of vital signs at the chair (any may be missing)."""

    __tablename__ = "vital_signs"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    infusion_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("infusions.id", ondelete="RESTRICT"), index=True
    )
    taken_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime())
    systolic_mmhg: so.Mapped[int | None]
    diastolic_mmhg: so.Mapped[int | None]
    pulse_bpm: so.Mapped[int | None]
    temperature_c: so.Mapped[float | None]
    respiratory_rate: so.Mapped[int | None]
    spo2_percent: so.Mapped[int | None]
    recorded_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )

    infusion: so.Mapped[Infusion] = so.relationship(back_populates="vitals")


class LabResult(Base):
    """A laboratory result of a patient, with its unit and the lab's reference range."""

    __tablename__ = "lab_results"
    __table_args__ = (
        sa.Index("ix_lab_results_patient_test_taken", "patient_id", "test", "taken_on"),
        sa.CheckConstraint(
            "ref_low IS NULL OR ref_high IS NULL OR ref_low <= ref_high", name="range_in_order"
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("patients.id", ondelete="RESTRICT"))
    #: A test the clinic's lab list knows (config.toml [labs]), e.g. "creatinine", "egfr".
    test: so.Mapped[str] = so.mapped_column(sa.String(30))
    value: so.Mapped[float]
    unit: so.Mapped[str] = so.mapped_column(sa.String(20))
    ref_low: so.Mapped[float | None]
    ref_high: so.Mapped[float | None]
    taken_on: so.Mapped[dt.date]
    recorded_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    recorded_by: so.Mapped[User | None] = so.relationship()
