"""Rule-engine suggestions and their decisions."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.schemas.base import Input, Output
from app.schemas.previews import PreviewOut


class SuggestionOut(Output):
    id: int
    patient_id: int
    kind: str
    rule_id: str
    rule_version: int
    indicator: Literal["info", "warning", "critical"]
    summary: str
    detail: str
    proposal: dict[str, Any]
    facts: dict[str, Any]
    evidence: list[int]
    status: Literal["pending", "approved", "rejected", "superseded", "expired"]
    decided_by_id: int | None
    decided_at: dt.datetime | None
    decision_reason: str | None
    applied_regimen_id: int | None
    applied_step_id: int | None
    step_id: int | None
    version: int
    created_at: dt.datetime


class SuggestionList(BaseModel):
    suggestions: list[SuggestionOut]


class SuggestionApproveIn(Input):
    version: int | None = Field(None, ge=1)
    value: float | None = Field(
        None, gt=0, le=100, description="a different dose (g/kg) or interval (weeks)"
    )
    reason: str | None = Field(None, max_length=2000)
    fingerprint: str | None = Field(
        None,
        max_length=64,
        description="from a preview: apply only what it showed (409 with the new one if not)",
    )


class SuggestionRejectIn(Input):
    reason: str = Field(min_length=1, max_length=2000)
    version: int | None = Field(None, ge=1)


class SuggestionPreviewOut(BaseModel):
    kind: str
    summary: str
    old: dict[str, Any] | None = Field(description="the regimen now, when approving changes it")
    new: dict[str, Any] | None = Field(description="the regimen approving would set")
    step_mg_per_day: float | None = Field(description="the taper dose approving would start")
    preview: PreviewOut
