"""Staff accounts, API tokens and the audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from app.models.user import EMAIL_PATTERN
from app.schemas.base import Input, Output, RecordId, RoleName


class UserOut(Output):
    id: int
    email: str
    full_name: str
    role: RoleName
    active: bool
    last_login_at: dt.datetime | None
    #: The center the user works at (their home page opens on it); null: every center.
    home_center_id: int | None


class RoleIn(Input):
    role: RoleName


class HomeCenterIn(Input):
    #: The center the user works at; null: every center.
    home_center_id: RecordId | None


class ResetLinkOut(BaseModel):
    #: The one-time link to hand to the user; shown only in this answer.
    url: str
    expires_at: dt.datetime


class ResetLinkSentOut(BaseModel):
    #: The account's own address the one-time link was e-mailed to (the link is not shown).
    sent_to: str
    expires_at: dt.datetime


class PasswordChangeIn(Input):
    current_password: str = Field(min_length=1, max_length=1024)
    password: str = Field(min_length=1, max_length=1024, description="the new password")


class UserList(BaseModel):
    users: list[UserOut]


class UserCreateIn(Input):
    email: str = Field(min_length=6, max_length=254, pattern=EMAIL_PATTERN)
    full_name: str = Field(min_length=1, max_length=120)
    role: RoleName
    password: str = Field(min_length=1, max_length=1024)
    #: The center the user works at; omitted or null: every center.
    home_center_id: RecordId | None = None


class TokenCreateIn(Input):
    name: str = Field("API token", min_length=1, max_length=100)
    #: Days until it expires; 0 = never; omitted = the clinic default.
    days: int | None = Field(None, ge=0, le=3650)


class TokenOut(Output):
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


class AuditEventOut(Output):
    id: int
    occurred_at: dt.datetime
    actor_user_id: int | None
    actor_label: str
    action: str
    entity_type: str
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None


class AuditQuery(Input):
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
