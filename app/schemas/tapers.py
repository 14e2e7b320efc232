"""Steroid taper plans, their steps and approvals."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.schemas.base import Input, Output
from app.services import tapers as taper_service

DrugName = Literal[
    "prednisone", "prednisolone", "methylprednisolone", "dexamethasone", "hydrocortisone"
]


class CustomStepIn(Input):
    mg_per_day: float = Field(ge=0, le=2000)
    min_days: int = Field(ge=1, le=365)
    alternate_day_mg: float | None = Field(None, ge=0, le=2000)


class TaperIn(Input):
    drug: DrugName
    start_mg: float = Field(gt=0, le=2000, description="mg/day of the drug")
    template: Literal["banded", "fixed", "percent", "custom"] = "banded"
    starts_on: dt.date
    start_days: int | None = Field(None, ge=1, le=365)
    decrement_mg: float | None = Field(None, gt=0, le=100, description="fixed template")
    percent: float | None = Field(None, gt=0, lt=100, description="percent template")
    step_days: int | None = Field(None, ge=1, le=365, description="fixed and percent templates")
    steps: list[CustomStepIn] | None = Field(None, description="custom template")

    def plan_input(
        self, reason: str = "", based_on_version: int | None = None
    ) -> taper_service.PlanInput:
        """The plan as the service takes it: the template's parameters gathered."""
        params: dict[str, Any] = {
            name: getattr(self, name)
            for name in ("decrement_mg", "percent", "step_days")
            if getattr(self, name) is not None
        }
        if self.steps is not None:
            params["steps"] = [step.model_dump() for step in self.steps]
        return taper_service.PlanInput(
            drug=self.drug,
            start_mg=self.start_mg,
            template=self.template,
            starts_on=self.starts_on,
            params=params,
            start_days=self.start_days,
            reason=reason,
            based_on_version=based_on_version,
        )


class TaperPlanIn(TaperIn):
    reason: str = Field(min_length=1, max_length=2000)
    based_on_version: int | None = Field(None, ge=1)


class TabletOut(BaseModel):
    strength_mg: float
    count: int


class PreviewStepOut(BaseModel):
    index: int
    starts_on: dt.date
    ends_on: dt.date
    mg_per_day: float
    alternate_day_mg: float | None
    min_days: int
    requires_cortisol: bool
    tablets: list[TabletOut] | None
    alternate_tablets: list[TabletOut] | None
    cumulative_prednisone_mg: float


class TaperPreviewOut(BaseModel):
    drug: DrugName
    steps: list[PreviewStepOut]
    total_prednisone_mg: float


class TaperStepOut(Output):
    id: int
    plan_id: int
    patient_id: int
    position: int
    mg_per_day: float
    alternate_day_mg: float | None
    min_days: int
    requires_cortisol: bool
    status: Literal["planned", "active", "completed", "held", "skipped", "cancelled"]
    earliest_on: dt.date
    started_on: dt.date | None
    ended_on: dt.date | None
    approved_by_id: int | None
    approved_at: dt.datetime | None
    status_reason: str | None
    cortisol_nmol_l: float | None
    version: int


class TaperPlanOut(Output):
    id: int
    patient_id: int
    version: int
    drug: DrugName
    start_mg: float
    template: str
    starts_on: dt.date
    reason: str
    steps: list[TaperStepOut]


class PatientTaperOut(BaseModel):
    plan: TaperPlanOut | None
    active_step_id: int | None
    current_mg_per_day: float | None
    current_tablets: list[TabletOut] | None
    next_step_id: int | None
    next_due_on: dt.date | None
    cumulative_to_date_prednisone_mg: float
    cumulative_projected_prednisone_mg: float


class ApproveIn(Input):
    version: int | None = Field(None, ge=1)
    cortisol_nmol_l: float | None = Field(None, ge=0, le=5000)
    override_reason: str | None = Field(None, max_length=2000)


class StepDoseIn(Input):
    mg_per_day: float = Field(ge=0, le=2000)
    alternate_day_mg: float | None = Field(None, ge=0, le=2000)
    reason: str = Field(min_length=1, max_length=500)
    version: int | None = Field(None, ge=1)
    fingerprint: str | None = Field(
        None,
        max_length=64,
        description="from a preview: apply only what it showed (409 with the new one if not)",
    )


class DueStepOut(TaperStepOut):
    patient_name: str
    drug: DrugName


class DueList(BaseModel):
    steps: list[DueStepOut]
