"""Infusion centers, their chairs, opening hours and closures."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from app.schemas.base import Input, LocalTime, Output, RecordId
from app.services import centers as center_service

ChairKind = Literal["recliner", "bed", "chair"]


class OpeningHoursOut(Output):
    weekday: int = Field(description="0 = Monday ... 6 = Sunday")
    opens_at: LocalTime
    closes_at: LocalTime
    nurses: int = Field(description="infusion nurses on shift")


class ChairOut(Output):
    id: int
    name: str
    kind: ChairKind
    active: bool
    notes: str | None


class CenterOut(Output):
    id: int
    name: str
    timezone: str
    address: str | None
    holiday_country: str | None
    holiday_subdivision: str | None
    opening_hours: list[OpeningHoursOut]
    chairs: list[ChairOut]


class HoursIn(Input):
    weekday: int = Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")
    opens_at: LocalTime
    closes_at: LocalTime
    nurses: int = Field(1, ge=1, le=center_service.MAX_NURSES, description="infusion nurses")


class ChairIn(Input):
    name: str = Field(min_length=1, max_length=40)
    kind: ChairKind = "recliner"
    active: bool = True
    notes: str | None = Field(None, max_length=500)

    def chair_input(self) -> center_service.ChairInput:
        return center_service.ChairInput(**self.model_dump())


class CenterIn(Input):
    name: str = Field(min_length=1, max_length=120)
    timezone: str = Field(min_length=1, max_length=64, description="IANA, e.g. America/New_York")
    address: str | None = Field(None, max_length=255)
    holiday_country: str | None = Field(
        None,
        pattern="^[A-Z]{2}$",
        description="public holidays close the center (ISO 3166 alpha-2); omit for none",
    )
    holiday_subdivision: str | None = Field(None, min_length=1, max_length=10)
    hours: list[HoursIn] = Field(default_factory=list, max_length=7, description="open weekdays")

    def center_input(
        self, chairs: tuple[center_service.ChairInput, ...] = ()
    ) -> center_service.CenterInput:
        return center_service.CenterInput(
            name=self.name,
            timezone=self.timezone,
            address=self.address,
            holiday_country=self.holiday_country,
            holiday_subdivision=self.holiday_subdivision,
            hours=tuple(center_service.DayHours(**h.model_dump()) for h in self.hours),
            chairs=chairs,
        )


class CenterCreateIn(CenterIn):
    chairs: list[ChairIn] = Field(default_factory=list, max_length=center_service.MAX_CHAIRS)


class ReplanOut(BaseModel):
    patients: int
    moved: int
    created: int
    cancelled: int
    unbooked: int


class CenterChangedOut(BaseModel):
    center: CenterOut
    replan: ReplanOut


class ChairChangedOut(BaseModel):
    chair: ChairOut
    replan: ReplanOut


class CenterList(BaseModel):
    centers: list[CenterOut]


class ClosureIn(Input):
    closed_on: dt.date = Field(description="first closed day (the center's local date)")
    closed_until: dt.date | None = Field(
        None, description="last closed day, inclusive; omit for one day"
    )
    chair_id: RecordId | None = Field(None, description="one chair only; omit for the center")
    from_time: LocalTime | None = Field(None, description="part of each day: from (local)")
    until_time: LocalTime | None = Field(None, description="part of each day: until (local)")
    reason: str = Field(min_length=1, max_length=200)
    fingerprint: str | None = Field(
        None,
        max_length=64,
        description="from a preview: apply only what it showed (409 with the new one if not)",
    )

    def closure_input(self) -> center_service.ClosureInput:
        return center_service.ClosureInput(
            closed_on=self.closed_on,
            reason=self.reason,
            closed_until=self.closed_until,
            chair_id=self.chair_id,
            from_time=self.from_time,
            until_time=self.until_time,
        )


class ClosureOut(BaseModel):
    id: int
    center_id: int
    closed_on: dt.date
    closed_until: dt.date
    chair_id: int | None
    from_time: LocalTime | None
    until_time: LocalTime | None
    reason: str


class ClosureAddedOut(ClosureOut):
    replan: dict[str, int]


class ClosureList(BaseModel):
    closures: list[ClosureOut]
