"""Infusions: recording, rescheduling, amending; adverse events."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.models import InfusionStatus
from app.schemas.base import Input, Output
from app.services import adverse_events as adverse_event_service
from app.services import infusions as infusion_service
from app.services.errors import InvalidInput


class InfusionOut(Output):
    id: int
    patient_id: int
    regimen_id: int
    cycle_number: int
    day_number: int
    planned_date: dt.date
    shift_days: int
    center_id: int
    chair_id: int | None
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    status: Literal[
        "scheduled", "unbooked", "checked_in", "in_chair", "given", "partial", "missed", "cancelled"
    ]
    planned_grams: float
    planned_vials: list[list[float]]
    planned_minutes: int
    given_grams: float | None
    lot_numbers: str | None
    given_started_at: dt.datetime | None
    given_ended_at: dt.datetime | None
    max_rate_ml_per_kg_min: float | None
    status_reason: str | None
    cycle_planned_on: dt.date
    pinned_by_id: int | None
    waived_rules: list[str]
    version: int


class InfusionList(BaseModel):
    infusions: list[InfusionOut]


class GivenIn(Input):
    given_grams: float = Field(gt=0, le=1000)
    started_at: dt.datetime
    ended_at: dt.datetime
    lot_numbers: str = Field(min_length=1, max_length=200)
    max_rate_ml_per_kg_min: float = Field(gt=0, le=1)
    partial: bool = False
    reason: str | None = Field(None, max_length=2000)
    version: int | None = Field(None, ge=1, description="the infusion version you saw")

    def given_input(self) -> infusion_service.GivenInput:
        values = self.model_dump()
        values["expected_version"] = values.pop("version")
        return infusion_service.GivenInput(**values)


class ReasonIn(Input):
    reason: str = Field(min_length=1, max_length=500)
    version: int | None = Field(None, ge=1)


class UndoIn(Input):
    version: int | None = Field(None, ge=1, description="the infusion version you saw")


class RescheduleIn(Input):
    chair_id: int
    starts_at: dt.datetime
    version: int | None = Field(None, ge=1)
    override_reason: str | None = Field(
        None,
        max_length=2000,
        description="physicians only: go ahead past a soft therapy rule (interval, shift window)",
    )


class AdverseEventIn(Input):
    event_type: str = Field(min_length=1, max_length=30)
    grade: int = Field(ge=1, le=5)
    occurred_on: dt.date | None = None
    serious: bool | None = None
    description: str = Field("", max_length=2000)

    def event_input(self, today: dt.date) -> adverse_event_service.AdverseEventInput:
        """The event as the service takes it; without a date it happened today."""
        values = self.model_dump() | {"occurred_on": self.occurred_on or today}
        return adverse_event_service.AdverseEventInput(**values)


class AdverseEventOut(Output):
    id: int
    infusion_id: int | None
    patient_id: int
    occurred_on: dt.date
    event_type: str
    grade: int
    serious: bool
    description: str
    resolved_on: dt.date | None
    resolved_by_id: int | None
    resolution_note: str | None


#: What an amended given or partial record must say.
_GIVEN_FIELDS = ("given_grams", "started_at", "ended_at", "lot_numbers", "max_rate_ml_per_kg_min")


class AmendIn(Input):
    reason: str = Field(min_length=1, max_length=2000, description="why the record changes")
    status: Literal["given", "partial", "missed"]
    given_grams: float | None = Field(None, gt=0, le=1000)
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    lot_numbers: str | None = Field(None, min_length=1, max_length=200)
    max_rate_ml_per_kg_min: float | None = Field(None, gt=0, le=1)
    partial_reason: str | None = Field(None, max_length=2000)
    version: int | None = Field(None, ge=1, description="the infusion version you saw")

    def amendment_input(self) -> infusion_service.AmendmentInput:
        """The correction as the service takes it; a given or partial record needs every
        field of what was given."""
        given = None
        if self.status != "missed":
            values = {name: getattr(self, name) for name in _GIVEN_FIELDS}
            missing = [name for name, value in values.items() if value is None]
            if missing:
                message = f"{missing[0]}: needed for a {self.status} record"
                raise InvalidInput(message, field=missing[0])
            given = infusion_service.GivenInput(**values, reason=self.partial_reason)
        return infusion_service.AmendmentInput(
            reason=self.reason,
            status=InfusionStatus(self.status),
            given=given,
            expected_version=self.version,
        )


class AmendmentOut(Output):
    id: int
    infusion_id: int
    reason: str
    before: dict[str, Any]
    after: dict[str, Any]
    amended_by_id: int | None
    amended_at: dt.datetime


class AmendedInfusionOut(InfusionOut):
    amendments: list[AmendmentOut]


class ResolveIn(Input):
    resolved_on: dt.date
    note: str = Field(min_length=1, max_length=2000)


class AdverseEventList(BaseModel):
    adverse_events: list[AdverseEventOut]
