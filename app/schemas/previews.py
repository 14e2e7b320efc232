"""What a change would do to the booked infusions (see app.services.previews)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class SlotOut(BaseModel):
    day: dt.date
    starts_at: dt.datetime | None
    chair: str | None
    grams: float
    minutes: int


class BookingChangeOut(BaseModel):
    patient_id: int
    patient_name: str
    cycle_number: int
    kind: Literal["moved", "waiting", "cancelled", "booked", "dose"] = Field(
        description="dose: same days and chairs, another dose or duration"
    )
    before: list[SlotOut] = Field(description="the cycle's booked days now, day 1 first")
    after: list[SlotOut] = Field(description="and after the change")


class PreviewOut(BaseModel):
    fingerprint: str
    counts: dict[str, int]
    patients: int
    changes: list[BookingChangeOut] = Field(description="the first 200; counts has them all")
