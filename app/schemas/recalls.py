"""Lot recalls: the patients who received a lot."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from app.schemas.base import Output


class VialCountOut(Output):
    count: int
    vial_grams: float


class RecipientOut(Output):
    patient_id: int
    mrn: str
    family_name: str
    given_name: str
    birth_date: dt.date
    infusion_id: int
    planned_date: dt.date = Field(description="the infusion's local date at its center")
    started_at: dt.datetime | None = Field(description="UTC")
    ended_at: dt.datetime | None = Field(description="UTC")
    status: str = Field(description="the infusion's status (given or partial when recorded)")
    center_id: int
    center_name: str
    center_timezone: str = Field(description="IANA time zone to show the times in")
    product: str
    lot_number: str
    expires_on: dt.date | None = Field(description="null: a lot named in the record's text only")
    vials: list[VialCountOut] = Field(description="the vials of this lot, by size")
    vial_count: int = Field(description="vials of this lot in all")
    grams: float | None = Field(description="grams from this lot; null when not recorded")


class RecipientList(BaseModel):
    lot: str = Field(description="the lot searched, as stored: upper-case, without spaces")
    recipients: list[RecipientOut] = Field(description="by date, then patient")
