"""Infusion centers, their chairs, opening hours and closures."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from app.schemas.base import Input, LocalTime, Output


class OpeningHoursOut(Output):
    weekday: int = Field(description="0 = Monday ... 6 = Sunday")
    opens_at: LocalTime
    closes_at: LocalTime


class ChairOut(Output):
    id: int
    name: str
    active: bool


class CenterOut(Output):
    id: int
    name: str
    timezone: str
    address: str | None
    opening_hours: list[OpeningHoursOut]
    chairs: list[ChairOut]


class CenterList(BaseModel):
    centers: list[CenterOut]


class ClosureIn(Input):
    closed_on: dt.date
    reason: str = Field(min_length=1, max_length=200)


class ClosureOut(BaseModel):
    id: int
    center_id: int
    closed_on: dt.date
    reason: str
    replan: dict[str, int]
