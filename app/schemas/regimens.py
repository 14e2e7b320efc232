"""The dose calculator and IVIG regimen versions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from app.schemas.base import Input, LocalTime, Output, SexName, WeightBasisName
from app.schemas.previews import PreviewOut
from app.services import regimens as regimen_service


class DoseIn(Input):
    weight_kg: float = Field(gt=0, le=1000)
    height_cm: float = Field(gt=0, le=400)
    sex: SexName
    dose_g_per_kg: float = Field(gt=0, le=10, description="grams per kg per cycle")
    days_per_cycle: int = Field(ge=1, le=10)
    weight_basis: WeightBasisName = "adjusted"
    product: str = Field(min_length=1, max_length=60)
    interval_weeks: int | None = Field(None, ge=1, le=52)
    thrombosis_risk: bool = False
    renal_risk: bool = False


class ProblemOut(BaseModel):
    field: str
    message: str
    code: str


class RateStepOut(BaseModel):
    starts_at_minute: float
    minutes: float
    rate_ml_per_kg_min: float
    rate_ml_per_hour: float
    volume_ml: float


class VialOut(BaseModel):
    size_g: float
    count: int


class DoseOut(BaseModel):
    weight_basis: WeightBasisName
    ideal_body_weight_kg: float
    adjusted_body_weight_kg: float
    dosing_weight_kg: float
    grams_per_cycle: float
    grams_per_day: float
    rounded_grams_per_day: float
    rounded_grams_per_cycle: float
    vials_per_day: list[VialOut]
    vial_count_per_day: int
    deviation_percent: float
    waste_g_per_day: float
    within_tolerance: bool
    volume_ml_per_day: float
    rate_steps: list[RateStepOut]
    minutes_per_day: int
    max_rate_ml_per_kg_min: float
    soft_stops: list[ProblemOut]


class RegimenIn(Input):
    product: str = Field(min_length=1, max_length=60)
    dose_g_per_kg: float = Field(gt=0, le=10)
    days_per_cycle: int = Field(ge=1, le=10)
    interval_weeks: int = Field(ge=1, le=52)
    weight_basis: WeightBasisName | None = None
    starts_on: dt.date
    preferred_weekday: int | None = Field(None, ge=0, le=6)
    preferred_time: LocalTime | None = None
    center_id: int | None = None
    reason: str = Field(min_length=1, max_length=2000)
    override_reason: str | None = Field(None, max_length=2000)
    based_on_version: int | None = Field(
        None, ge=1, description="the current version you saw; omit for the first regimen"
    )
    fingerprint: str | None = Field(
        None,
        max_length=64,
        description="from a preview: apply only what it showed (409 with the new one if not)",
    )

    def regimen_input(self, default_basis: str) -> regimen_service.RegimenInput:
        """The regimen as the service takes it; without a weight basis, the clinic's default."""
        values = self.model_dump(exclude={"fingerprint"})
        values["weight_basis"] = self.weight_basis or default_basis
        return regimen_service.RegimenInput(**values)


class RegimenOut(Output):
    id: int
    version: int
    product: str
    dose_g_per_kg: float
    days_per_cycle: int
    interval_weeks: int
    weight_basis: WeightBasisName
    starts_on: dt.date
    preferred_weekday: int | None
    preferred_time: LocalTime
    center_id: int
    weight_kg: float
    height_cm: float
    dosing_weight_kg: float
    grams_per_day: float
    grams_per_cycle: float
    minutes_per_day: int
    override_reason: str | None
    reason: str
    created_by_id: int | None
    created_at: dt.datetime


class ReplanOut(BaseModel):
    created: int
    moved: int
    unchanged: int
    cancelled: int
    unbooked: int


class RegimenSetOut(BaseModel):
    regimen: RegimenOut
    replan: ReplanOut


class RegimenList(BaseModel):
    regimens: list[RegimenOut]


class RegimenPreviewOut(BaseModel):
    old: dict[str, Any] | None = Field(description="the version in force now, if any")
    new: dict[str, Any] = Field(description="the version this would set, with vials a day")
    replan: dict[str, int]
    preview: PreviewOut
