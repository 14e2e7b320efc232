"""Patients, their details and weights."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from app.schemas.base import Input, Output, SexName
from app.schemas.regimens import RegimenOut


class PatientOut(Output):
    id: int
    mrn: str
    family_name: str
    given_name: str
    sex: Literal["female", "male"]
    birth_date: dt.date
    home_center_id: int
    treating_physician_id: int | None
    allergies: str | None
    iga_deficient: bool


class PatientList(BaseModel):
    patients: list[PatientOut]


class PatientQuery(Input):
    q: str = Field("", max_length=100)


class PatientCreateIn(Input):
    mrn: str = Field(min_length=1, max_length=40)
    family_name: str = Field(min_length=1, max_length=100)
    given_name: str = Field(min_length=1, max_length=100)
    sex: SexName
    birth_date: dt.date
    home_center_id: int
    height_cm: float | None = Field(None, gt=0, le=400)
    weight_kg: float | None = Field(None, gt=0, le=1000)
    dm_subtype: Literal["classic", "amyopathic", "juvenile"] = "classic"
    treating_physician_id: int | None = None
    thrombosis_risk: bool = False
    renal_risk: bool = False
    allergies: str | None = Field(None, max_length=500, description="shown at every visit")
    iga_deficient: bool = False


class WeightIn(Input):
    weight_kg: float = Field(gt=0, le=1000)
    measured_on: dt.date | None = None


class WeightOut(Output):
    id: int
    measured_on: dt.date
    weight_kg: float


class PatientDetailOut(BaseModel):
    patient: PatientOut
    height_cm: float | None
    dm_subtype: str
    thrombosis_risk: bool
    renal_risk: bool
    weights: list[WeightOut]
    current_regimen: RegimenOut | None
    weight_change_percent: float | None
    weight_review_needed: bool


class PatientChangesIn(Input):
    height_cm: float | None = Field(None, gt=0, le=400)
    dm_subtype: Literal["classic", "amyopathic", "juvenile"] | None = None
    thrombosis_risk: bool | None = None
    renal_risk: bool | None = None
    treating_physician_id: int | None = Field(None, ge=1, description="responsible physician")
    allergies: str | None = Field(None, max_length=500, description='"" clears them')
    iga_deficient: bool | None = None
    contact_email: str | None = Field(
        None, max_length=254, description='where change notices go; "" clears it'
    )
    contact_consent: bool | None = Field(
        None, description="the patient agrees to be e-mailed (notices, reminders)"
    )
