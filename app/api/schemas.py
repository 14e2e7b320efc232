"""Pydantic models that validate API requests and document them in the OpenAPI file."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models.user import ROLE_VALUES

RoleName = Literal["nurse", "physician", "admin"]
assert set(ROLE_VALUES) == {"nurse", "physician", "admin"}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


class UserOut(_Out):
    id: int
    email: str
    full_name: str
    role: RoleName
    active: bool


class UserList(BaseModel):
    users: list[UserOut]


class UserCreateIn(_In):
    email: str = Field(min_length=3, max_length=254)
    full_name: str = Field(min_length=1, max_length=120)
    role: RoleName
    password: str = Field(min_length=1, max_length=1024)


class TokenCreateIn(_In):
    name: str = Field("API token", min_length=1, max_length=100)
    #: Days until it expires; 0 = never; omitted = the clinic default.
    days: int | None = Field(None, ge=0, le=3650)


class TokenOut(_Out):
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class TokenList(BaseModel):
    tokens: list[TokenOut]


class TokenCreatedOut(TokenOut):
    #: The bearer token itself; shown only in this answer.
    token: str


class OpeningHoursOut(_Out):
    weekday: int = Field(description="0 = Monday ... 6 = Sunday")
    opens_at: dt.time
    closes_at: dt.time


class ChairOut(_Out):
    id: int
    name: str
    active: bool


class CenterOut(_Out):
    id: int
    name: str
    timezone: str
    address: str | None
    opening_hours: list[OpeningHoursOut]
    chairs: list[ChairOut]


class CenterList(BaseModel):
    centers: list[CenterOut]


class PatientOut(_Out):
    id: int
    mrn: str
    family_name: str
    given_name: str
    sex: Literal["female", "male"]
    birth_date: dt.date
    home_center_id: int
    treating_physician_id: int | None


class PatientList(BaseModel):
    patients: list[PatientOut]


class PatientQuery(_In):
    q: str = Field("", max_length=100)


class AuditEventOut(_Out):
    id: int
    occurred_at: dt.datetime
    actor_user_id: int | None
    actor_label: str
    action: str
    entity_type: str
    entity_id: str | None
    before: dict | None
    after: dict | None
    request_id: str | None


class AuditQuery(_In):
    actor: str | None = Field(None, max_length=254)
    action: str | None = Field(None, max_length=80)
    entity_type: str | None = Field(None, max_length=60)
    entity_id: str | None = Field(None, max_length=60)
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    page: int = Field(1, ge=1, le=100_000)


class AuditPageOut(BaseModel):
    events: list[AuditEventOut]
    page: int
    pages: int
    total: int
