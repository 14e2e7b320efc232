"""Response assessments (CDASI, MMT-8, CK, globals)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from app.domain.scores import SCORE_RANGES
from app.schemas.base import Input, Output
from app.services import assessments as assessment_service

_SCORE_RANGES = {name: (low, high) for name, low, high in SCORE_RANGES}


def _score(name: str, unit: str = "") -> Any:
    """An optional score, documented with the range the service (its 422 names the range)
    and the database's CHECK hold it to."""
    low, high = _SCORE_RANGES[name]
    return Field(
        None,
        description=f"{low:g}-{high:g} {unit}".strip(),
        json_schema_extra={"minimum": low, "maximum": high},
    )


class AssessmentIn(Input):
    assessed_on: dt.date
    cdasi_activity: float | None = _score("cdasi_activity")
    cdasi_damage: float | None = _score("cdasi_damage")
    mmt8: float | None = _score("mmt8")
    ck: float | None = _score("ck", "U/L")
    ck_uln: float | None = _score("ck_uln", "U/L, the lab's upper limit of normal")
    physician_global: float | None = _score("physician_global")
    patient_global: float | None = _score("patient_global")
    pruritus: float | None = _score("pruritus")
    haq: float | None = _score("haq")
    extramuscular_global: float | None = _score("extramuscular_global")
    notes: str = Field("", max_length=4000)

    def assessment_input(self) -> assessment_service.AssessmentInput:
        scores = self.model_dump(exclude={"assessed_on", "notes"})
        return assessment_service.AssessmentInput(
            assessed_on=self.assessed_on, scores=scores, notes=self.notes
        )


class AssessmentOut(Output):
    id: int
    patient_id: int
    assessed_on: dt.date
    cdasi_activity: float | None
    cdasi_damage: float | None
    mmt8: float | None
    ck: float | None
    ck_uln: float | None
    physician_global: float | None
    patient_global: float | None
    pruritus: float | None
    haq: float | None
    extramuscular_global: float | None
    notes: str


class AssessmentList(BaseModel):
    assessments: list[AssessmentOut]
