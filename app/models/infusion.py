"""Infusion appointments on chairs, what was given, and adverse events."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime, utcnow
from app.models.center import Center, Chair
from app.models.patient import Patient
from app.models.regimen import Regimen
from app.models.user import User
from app.models.visit import InfusionVial, Premedication, RateStep, VitalSigns


class InfusionStatus(enum.StrEnum):
    SCHEDULED = "scheduled"  # booked on a chair
    UNBOOKED = "unbooked"  # planned, no chair found: a nurse must place it
    CHECKED_IN = "checked_in"  # the patient has arrived; the pre-infusion check is under way
    IN_CHAIR = "in_chair"  # the infusion has started
    GIVEN = "given"
    PARTIAL = "partial"
    MISSED = "missed"
    CANCELLED = "cancelled"


#: Statuses that hold a chair (the no-double-booking rule applies to them).
CHAIR_HOLDING = (
    InfusionStatus.SCHEDULED,
    InfusionStatus.CHECKED_IN,
    InfusionStatus.IN_CHAIR,
    InfusionStatus.GIVEN,
    InfusionStatus.PARTIAL,
)
#: A visit under way: the patient is here; re-planning never moves it.
UNDER_WAY = (InfusionStatus.CHECKED_IN, InfusionStatus.IN_CHAIR)
#: Statuses that are final: re-planning never touches them.
RECORDED = (InfusionStatus.GIVEN, InfusionStatus.PARTIAL, InfusionStatus.MISSED)
_STATUS_VALUES = ", ".join(f"'{s.value}'" for s in InfusionStatus)


def _uid() -> str:
    return uuid.uuid4().hex


class Infusion(Base):
    __tablename__ = "infusions"
    __table_args__ = (
        sa.CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status_known"),
        sa.CheckConstraint(
            "(chair_id IS NULL) = (starts_at IS NULL) AND (starts_at IS NULL) = (ends_at IS NULL)",
            name="booking_complete",
        ),
        sa.CheckConstraint(
            "starts_at < ends_at AND ends_at <= occupied_until", name="times_ordered"
        ),
        sa.CheckConstraint("planned_grams > 0", name="planned_grams_positive"),
        sa.CheckConstraint("day_number BETWEEN 1 AND 5", name="day_number_range"),
        sa.CheckConstraint(
            "dose_approval IS NULL OR dose_approval IN ('waiting', 'approved')",
            name="dose_approval_known",
        ),
        sa.Index("ix_infusions_center_starts", "center_id", "starts_at"),
        sa.Index("ix_infusions_chair_starts", "chair_id", "starts_at"),
        sa.Index("ix_infusions_patient_date", "patient_id", "planned_date"),
        # The stewardship ledger sums each patient's cycles (GROUP BY patient, cycle).
        sa.Index("ix_infusions_patient_cycle", "patient_id", "cycle_number"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: Opaque, stable identifier for calendar feeds (no MRN, no name).
    uid: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True, default=_uid)
    patient_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("patients.id", ondelete="RESTRICT"))
    #: The regimen version that planned this infusion.
    regimen_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("regimens.id", ondelete="RESTRICT"), index=True
    )
    cycle_number: so.Mapped[int]
    day_number: so.Mapped[int]
    #: Local date of the infusion at its center.
    planned_date: so.Mapped[dt.date]
    #: Days the cycle moved from its planned start (closures, full chairs).
    shift_days: so.Mapped[int] = so.mapped_column(default=0)
    #: The cycle's planned start before any shift: which regimen version is in force for it.
    cycle_planned_on: so.Mapped[dt.date]
    center_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("centers.id", ondelete="RESTRICT"))
    chair_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("chairs.id", ondelete="RESTRICT")
    )
    starts_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    #: End of the infusion itself.
    ends_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    #: End of the chair's occupancy: ends_at plus turnover.
    occupied_until: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    status: so.Mapped[str] = so.mapped_column(sa.String(12), default=InfusionStatus.SCHEDULED)
    planned_grams: so.Mapped[float]
    #: [[vial size g, count], ...] for the planned grams.
    planned_vials: so.Mapped[list[list[float]]] = so.mapped_column(sa.JSON)
    planned_minutes: so.Mapped[int]
    #: What was given (recorded by a nurse).
    given_grams: so.Mapped[float | None]
    lot_numbers: so.Mapped[str | None] = so.mapped_column(sa.String(200))
    given_started_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    given_ended_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    max_rate_ml_per_kg_min: so.Mapped[float | None]
    #: The visit: when the patient checked in, and the pre-infusion check (the day's weight,
    #: the dose it gives, and whether a physician must approve it first).
    checked_in_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    day_weight_kg: so.Mapped[float | None]
    day_grams: so.Mapped[float | None]
    #: None: no approval needed; "waiting": the day's dose moved past the threshold;
    #: "approved": a physician approved the day's dose.
    dose_approval: so.Mapped[str | None] = so.mapped_column(sa.String(10))
    dose_approved_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    dose_approved_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    #: Why the nurse went on past a soft stop of the check (no recent creatinine, say).
    check_override_reason: so.Mapped[str | None] = so.mapped_column(sa.Text)
    #: Why it was cancelled, missed or only partly given.
    status_reason: so.Mapped[str | None] = so.mapped_column(sa.Text)
    recorded_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    #: The nurse who moved it by hand; a later re-plan keeps the move while it stays valid.
    pinned_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    #: Soft therapy-integrity rules a physician overrode for this infusion, and why.
    waived_rules: so.Mapped[list[str]] = so.mapped_column(sa.JSON, default=list)
    waiver_reason: so.Mapped[str | None] = so.mapped_column(sa.Text)
    #: iCalendar SEQUENCE: bumped on every change of time, status or location.
    sequence: so.Mapped[int] = so.mapped_column(default=0)
    #: Optimistic lock for concurrent edits (sent back by clients; stale -> 409).
    version: so.Mapped[int] = so.mapped_column(default=1)
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    updated_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    patient: so.Mapped[Patient] = so.relationship()
    regimen: so.Mapped[Regimen] = so.relationship()
    center: so.Mapped[Center] = so.relationship()
    chair: so.Mapped[Chair | None] = so.relationship()
    adverse_events: so.Mapped[list[AdverseEvent]] = so.relationship(
        back_populates="infusion", order_by="AdverseEvent.id"
    )
    amendments: so.Mapped[list[InfusionAmendment]] = so.relationship(
        back_populates="infusion", order_by="InfusionAmendment.id"
    )
    vials: so.Mapped[list[InfusionVial]] = so.relationship(
        back_populates="infusion", order_by="InfusionVial.id"
    )
    premedications: so.Mapped[list[Premedication]] = so.relationship(
        back_populates="infusion", order_by="Premedication.given_at"
    )
    rate_steps: so.Mapped[list[RateStep]] = so.relationship(
        back_populates="infusion", order_by="RateStep.started_at"
    )
    vitals: so.Mapped[list[VitalSigns]] = so.relationship(
        back_populates="infusion", order_by="VitalSigns.taken_at"
    )

    def mark_changed(self, now: dt.datetime, *, significant: bool) -> None:
        """Every change bumps the version; SEQUENCE goes up only for time, status or place
        (RFC 5545), so calendar clients replace the event."""
        if significant:
            self.sequence += 1
        self.version += 1
        self.updated_at = now


class InfusionAmendment(Base):
    """A correction of a recorded infusion: the record as it was, as it became, and why."""

    __tablename__ = "infusion_amendments"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    infusion_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("infusions.id", ondelete="RESTRICT"), index=True
    )
    reason: so.Mapped[str] = so.mapped_column(sa.Text)
    #: The recorded fields before and after the correction.
    before: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON)
    after: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON)
    amended_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    amended_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    infusion: so.Mapped[Infusion] = so.relationship(back_populates="amendments")
    amended_by: so.Mapped[User | None] = so.relationship()


ADVERSE_EVENT_TYPES = (
    "headache",
    "fever",
    "chills",
    "nausea",
    "rash",
    "hypertension",
    "hypotension",
    "anaphylaxis",
    "chest_pain",
    "dyspnoea",
    "thrombosis",
    "renal_injury",
    "hemolysis",
    "aseptic_meningitis",
    "other",
)


#: What a nurse does about a reaction at the chair.
REACTION_ACTIONS = ("none", "slowed", "paused", "stopped", "medication")
#: How a reaction at the chair ended.
REACTION_OUTCOMES = ("resolved", "improving", "ongoing", "transferred")


class AdverseEvent(Base):
    """An infusion reaction or adverse event (grade 1-5, CTCAE style)."""

    __tablename__ = "adverse_events"
    __table_args__ = (
        sa.CheckConstraint("grade BETWEEN 1 AND 5", name="grade_range"),
        sa.CheckConstraint(
            "resolved_on IS NULL OR resolved_on >= occurred_on", name="resolved_after_occurred"
        ),
        sa.CheckConstraint(
            "event_type IN ({})".format(", ".join(f"'{t}'" for t in ADVERSE_EVENT_TYPES)),
            name="event_type_known",
        ),
        sa.CheckConstraint(
            "action_taken IS NULL OR action_taken IN ({})".format(
                ", ".join(f"'{a}'" for a in REACTION_ACTIONS)
            ),
            name="action_taken_known",
        ),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ({})".format(
                ", ".join(f"'{o}'" for o in REACTION_OUTCOMES)
            ),
            name="outcome_known",
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("patients.id", ondelete="RESTRICT"), index=True
    )
    infusion_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("infusions.id", ondelete="RESTRICT"), index=True
    )
    occurred_on: so.Mapped[dt.date]
    event_type: so.Mapped[str] = so.mapped_column(sa.String(30))
    grade: so.Mapped[int]
    serious: so.Mapped[bool]
    description: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    #: What the nurse did (REACTION_ACTIONS) and how it ended (REACTION_OUTCOMES); both
    #: empty for an event recorded away from the chair.
    action_taken: so.Mapped[str | None] = so.mapped_column(sa.String(20))
    outcome: so.Mapped[str | None] = so.mapped_column(sa.String(20))
    #: None while the event is open (the rules engine holds IVIG on open serious events).
    resolved_on: so.Mapped[dt.date | None]
    #: Who marked it resolved (a physician), when, and what they noted.
    resolved_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    resolved_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    resolution_note: so.Mapped[str | None] = so.mapped_column(sa.Text)
    recorded_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    infusion: so.Mapped[Infusion | None] = so.relationship(back_populates="adverse_events")
