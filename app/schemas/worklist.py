"""Each user's worklist of notices."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict

from app.schemas.base import Output


class NoticeOut(Output):
    id: int
    patient_id: int
    infusion_id: int | None
    kind: str
    message: str
    created_at: dt.datetime
    #: When it should be done by (a review point), if it has a date.
    due_at: dt.datetime | None
    #: A task for a role at a center (any of them may mark it done), else the user's own.
    role: str | None
    center_id: int | None
    done_at: dt.datetime | None


class NoticeList(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    notices: list[NoticeOut]
