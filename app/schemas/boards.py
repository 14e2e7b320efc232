"""A center's day board."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

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
    chairs: list[BoardChairOut]
    unbooked: list[BoardInfusionOut]
