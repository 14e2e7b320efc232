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


class AuditLink(Base):
    """One link of the audit hash chain: each event's hash covers it and the link before it.

    Written in the transaction that writes the event, in commit order; append-only like the
    events (a trigger refuses UPDATE and DELETE). A changed, removed or slipped-in event, or a
    removed link, breaks the chain where `flask audit verify` says.
    """

    __tablename__ = "audit_chain"

    #: Position in the chain, 1, 2, 3 ... with no gaps.
    seq: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    event_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("audit_events.id", ondelete="RESTRICT"), unique=True
    )
    #: SHA-256 (hex) of the previous link's hash and this event's canonical content.
    hash: so.Mapped[str] = so.mapped_column(sa.String(64))
