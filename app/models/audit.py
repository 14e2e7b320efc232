"""The audit trail: append-only, one row per change that matters."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_entity", "entity_type", "entity_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    occurred_at: so.Mapped[dt.datetime] = so.mapped_column(
        UTCDateTime(), default=utcnow, index=True
    )
    #: The user who acted; None for the system (scheduler, migrations, CLI without a user).
    actor_user_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    #: Who acted, as text that survives the user row (email, or "system:scheduler").
    actor_label: so.Mapped[str] = so.mapped_column(sa.String(254))
    #: Dotted verb, e.g. "user.create", "regimen.approve".
    action: so.Mapped[str] = so.mapped_column(sa.String(80), index=True)
    entity_type: so.Mapped[str] = so.mapped_column(sa.String(60))
    entity_id: so.Mapped[str | None] = so.mapped_column(sa.String(60))
    before: so.Mapped[dict[str, Any] | None] = so.mapped_column(sa.JSON)
    after: so.Mapped[dict[str, Any] | None] = so.mapped_column(sa.JSON)
    #: The X-Request-ID of the HTTP request, or the job run id.
    request_id: so.Mapped[str | None] = so.mapped_column(sa.String(64), index=True)
