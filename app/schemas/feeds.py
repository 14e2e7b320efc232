"""Calendar feed subscriptions."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from app.schemas.base import Input, Output


class SubscriptionIn(Input):
    scope: Literal["patient", "center", "chair", "physician"]
    scope_id: int
    privacy: Literal["minimal", "detailed"] = "minimal"
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class SubscriptionOut(Output):
    id: int
    scope: str
    scope_id: int
    label: str
    privacy: str
    token_prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_fetched_at: dt.datetime | None


class SubscriptionCreatedOut(SubscriptionOut):
    #: The feed URLs; shown only in this answer (the token is stored as a hash).
    url: str
    webcal_url: str


class SubscriptionList(BaseModel):
    subscriptions: list[SubscriptionOut]
