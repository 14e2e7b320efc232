"""A center's day board."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from app.schemas.base import LocalTime
from app.schemas.infusions import InfusionOut


class BoardInfusionOut(InfusionOut):
    patient_name: str


class BoardChairOut(BaseModel):
    chair_id: int
    name: str
    infusions: list[BoardInfusionOut]


class DayBoardOut(BaseModel):
    center_id: int
    date: dt.date
    opens_at: LocalTime | None
    closes_at: LocalTime | None
    closure: str | None = Field(description="why the center is closed this day, if it is")
    part_closures: list[str] = Field(
        description="closures of one chair or part of the day, in words"
    )
    chairs: list[BoardChairOut]
    unbooked: list[BoardInfusionOut]
