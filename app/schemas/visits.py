"""The visit at the chair: what a nurse records, and the visit record as it stands."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from app.domain import visit
from app.schemas.base import Input, Output
from app.services import adverse_events, visits

RateAction = Literal["step", "slowed", "paused", "resumed"]
ReactionAction = Literal["none", "slowed", "paused", "stopped", "medication"]
ReactionOutcome = Literal["resolved", "improving", "ongoing", "transferred"]


class VitalsIn(Input):
    systolic_mmhg: int | None = Field(None, description="mmHg")
    diastolic_mmhg: int | None = Field(None, description="mmHg")
    pulse_bpm: int | None = Field(None, description="beats per minute")
    temperature_c: float | None = Field(None, description="°C")
    respiratory_rate: int | None = Field(None, description="breaths per minute")
    spo2_percent: int | None = Field(None, description="%")

    def vitals(self) -> visits.Vitals:
        return visits.Vitals(
            **{name: getattr(self, name) for name in visits.Vitals.__dataclass_fields__}
        )


class CheckInIn(Input):
    at: dt.datetime = Field(description="when the patient arrived (with its offset)")
    version: int | None = Field(None, ge=1)


class CheckIn(VitalsIn):
    """The pre-infusion check: the day's weight and a set of vital signs."""

    weight_kg: float = Field(gt=0, le=500)
    taken_at: dt.datetime
    version: int | None = Field(None, ge=1)


class VersionIn(Input):
    version: int | None = Field(None, ge=1)


class ApproveDoseIn(Input):
    version: int = Field(ge=1, description="the visit's version the physician saw")
    keep_booked: bool = Field(False, description="give the booked dose today instead")


class StartIn(Input):
    at: dt.datetime
    override_reason: str | None = Field(
        None, max_length=2000, description="to go on past the check's soft stop (no recent lab)"
    )
    version: int | None = Field(None, ge=1)


class PremedicationIn(Input):
    name: str = Field(min_length=1, max_length=80, description="from the clinic's list")
    dose: float = Field(gt=0, le=100_000)
    given_at: dt.datetime


class RateStepIn(VitalsIn):
    started_at: dt.datetime
    rate_ml_per_h: float = Field(ge=0, le=2000)
    action: RateAction = "step"
    note: str | None = Field(None, max_length=500)


class VitalsTakenIn(VitalsIn):
    taken_at: dt.datetime


class ReactionIn(Input):
    event_type: str = Field(min_length=1, max_length=30)
    grade: int = Field(ge=1, le=5, description="CTCAE grade")
    action_taken: ReactionAction = "none"
    outcome: ReactionOutcome | None = None
    description: str = Field("", max_length=2000)
    serious: bool | None = None
    new_rate_ml_per_h: float | None = Field(
        None, ge=0, le=2000, description="the rate it was slowed to (action slowed)"
    )
    at: dt.datetime | None = Field(None, description="when it happened; omitted: now")

    def event_input(self, today: dt.date) -> adverse_events.AdverseEventInput:
        return adverse_events.AdverseEventInput(
            event_type=self.event_type,
            grade=self.grade,
            occurred_on=today,
            serious=self.serious,
            description=self.description,
            action_taken=self.action_taken,
            outcome=self.outcome,
        )


class VialIn(Input):
    product: str = Field(min_length=1, max_length=60)
    lot_number: str = Field(min_length=1, max_length=40)
    expires_on: dt.date
    vial_grams: float = Field(gt=0, le=100)
    count: int = Field(ge=1, le=100)


class CompleteIn(Input):
    ended_at: dt.datetime
    vials: list[VialIn] = Field(min_length=1, max_length=20)
    stopped_early: bool = False
    given_grams: float | None = Field(None, gt=0, le=1000, description="stopped early only")
    reason: str | None = Field(None, max_length=2000, description="stopped early: why")
    version: int | None = Field(None, ge=1)

    def completion(self) -> visits.Completion:
        return visits.Completion(
            ended_at=self.ended_at,
            vials=tuple(visit.VialUse(**v.model_dump()) for v in self.vials),
            stopped_early=self.stopped_early,
            given_grams=self.given_grams,
            reason=self.reason,
        )


class VialOut(Output):
    product: str
    lot_number: str
    expires_on: dt.date
    vial_grams: float
    count: int


class PremedicationOut(Output):
    name: str
    dose: float
    unit: str
    route: str
    given_at: dt.datetime


class RateStepOut(Output):
    started_at: dt.datetime
    rate_ml_per_h: float
    action: str
    note: str | None


class VitalsOut(Output):
    taken_at: dt.datetime
    systolic_mmhg: int | None
    diastolic_mmhg: int | None
    pulse_bpm: int | None
    temperature_c: float | None
    respiratory_rate: int | None
    spo2_percent: int | None


class PlannedStepOut(BaseModel):
    starts_at_minute: float
    minutes: float
    rate_ml_per_kg_min: float
    rate_ml_per_hour: float


class VisitOut(BaseModel):
    infusion_id: int
    status: str
    version: int
    checked_in_at: dt.datetime | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    planned_grams: float
    day_weight_kg: float | None
    day_grams: float | None
    dose_approval: str | None
    given_grams: float | None
    check_override_reason: str | None
    rate_plan: list[PlannedStepOut]
    premedications: list[PremedicationOut]
    rate_steps: list[RateStepOut]
    vitals: list[VitalsOut]
    vials: list[VialOut]
