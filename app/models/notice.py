"""Worklist notices: something a person must look at, e.g. a move of theirs a re-plan undid."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime, utcnow
from app.models.patient import Patient


class Notice(Base):
    __tablename__ = "notices"
    __table_args__ = (sa.Index("ix_notices_user_open", "user_id", "done_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: Whose worklist it is on.
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    patient_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("patients.id", ondelete="RESTRICT"), index=True
    )
    infusion_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("infusions.id", ondelete="RESTRICT")
    )
    #: What happened, e.g. "reschedule_not_kept".
    kind: so.Mapped[str] = so.mapped_column(sa.String(40))
    message: so.Mapped[str] = so.mapped_column(sa.Text)
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    #: When the person marked it done (None while it is open).
    done_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())

    patient: so.Mapped[Patient] = so.relationship()
