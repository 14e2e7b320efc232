"""Tasks and reminders as rows (Indico's way: kind, subject, recipient, due time, sent time).

A `Notice` is a task on a worklist: for one user, or for a role at a center (every nurse of
the center sees it, any of them marks it done). A `Reminder` is a message to send by e-mail:
the periodic sweep sends those that are due and stamps `sent_at`. Both carry a unique `key`
when a job makes them, so two scheduler processes, or a job run twice, make one row.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime, utcnow
from app.models.patient import Patient


class Notice(Base):
    __tablename__ = "notices"
    __table_args__ = (
        sa.Index("ix_notices_user_open", "user_id", "done_at"),
        sa.Index("ix_notices_role_open", "role", "center_id", "done_at"),
        sa.CheckConstraint("user_id IS NOT NULL OR role IS NOT NULL", name="notice_has_recipient"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: Whose worklist it is on (None: everyone with `role` at `center_id`).
    user_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    #: A task for a role ("nurse"), at a center (None: at every center).
    role: so.Mapped[str | None] = so.mapped_column(sa.String(20))
    center_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("centers.id", ondelete="RESTRICT")
    )
    patient_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("patients.id", ondelete="RESTRICT"), index=True
    )
    infusion_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("infusions.id", ondelete="RESTRICT")
    )
    #: What happened, e.g. "reschedule_not_kept", "review_measures".
    kind: so.Mapped[str] = so.mapped_column(sa.String(40))
    message: so.Mapped[str] = so.mapped_column(sa.Text)
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    #: When it should be done by (None: as soon as seen).
    due_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    #: What makes it unique when a job makes it (e.g. "review_measures:12:2027-01-04").
    key: so.Mapped[str | None] = so.mapped_column(sa.String(120), unique=True)
    #: When the person marked it done (None while it is open).
    done_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    done_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )

    patient: so.Mapped[Patient] = so.relationship()


class Reminder(Base):
    """One e-mail to one recipient, sent once by the sweep when it is due."""

    __tablename__ = "reminders"
    __table_args__ = (
        sa.Index("ix_reminders_unsent", "sent_at", "due_at"),
        sa.CheckConstraint(
            "user_id IS NOT NULL OR patient_id IS NOT NULL", name="reminder_has_recipient"
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: Unique per message and recipient, e.g. "change:812:v4:user:3".
    key: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)
    #: change_notice, day_before, task.
    kind: so.Mapped[str] = so.mapped_column(sa.String(40))
    #: The recipient: a user, or a patient (at their contact e-mail, with consent).
    user_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    patient_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("patients.id", ondelete="RESTRICT"), index=True
    )
    infusion_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("infusions.id", ondelete="RESTRICT")
    )
    subject: so.Mapped[str] = so.mapped_column(sa.String(200))
    body: so.Mapped[str] = so.mapped_column(sa.Text)
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    due_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime())
    #: When the mail server took it (None while waiting).
    sent_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    #: Set instead of sent_at when it will never be sent (no address, consent withdrawn).
    dropped_reason: so.Mapped[str | None] = so.mapped_column(sa.String(200))
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    last_error: so.Mapped[str | None] = so.mapped_column(sa.String(500))
