"""Lab results: creatinine, eGFR, haemoglobin, muscle enzymes (config.toml [labs])."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from app.schemas.base import Input, Output
from app.services import labs as lab_service


class LabIn(Input):
    test: str = Field(
        min_length=1,
        max_length=30,
        description="a key of the clinic's lab list (config.toml [labs.tests]), e.g. creatinine",
    )
    value: float = Field(
        ge=0, description="in the test's unit, within its plausible range (config.toml [labs])"
    )
    taken_on: dt.date = Field(description="the day the sample was taken")
    unit: str | None = Field(
        None,
        min_length=1,
        max_length=20,
        description="must be the test's configured unit; left out: that unit",
    )
    ref_low: float | None = Field(
        None, ge=0, description="the lab's lower reference limit; both left out: the default"
    )
    ref_high: float | None = Field(
        None, ge=0, description="the lab's upper reference limit; both left out: the default"
    )

    def lab_input(self) -> lab_service.LabInput:
        return lab_service.LabInput(**self.model_dump())


class LabOut(Output):
    id: int
    patient_id: int
    test: str
    value: float
    unit: str
    ref_low: float | None
    ref_high: float | None
    taken_on: dt.date
    flag: Literal["low", "high"] | None = Field(
        description="low: below ref_low, high: above ref_high, null: within (or no range)"
    )


class LabTrendOut(Output):
    test: str
    label: str
    unit: str
    values: list[LabOut] = Field(description="oldest first")


class LabTrendList(BaseModel):
    tests: list[LabTrendOut]
