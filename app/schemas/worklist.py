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
    done_at: dt.datetime | None


class NoticeList(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    notices: list[NoticeOut]
