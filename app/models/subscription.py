"""Calendar feed subscriptions: a secret URL per feed, stored only as a hash."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime, utcnow
from app.models.user import User

SCOPES = ("patient", "center", "chair", "physician")
PRIVACY = ("minimal", "detailed")


class Subscription(Base):
    __tablename__ = "calendar_subscriptions"
    __table_args__ = (
        sa.CheckConstraint(
            "scope IN ({})".format(", ".join(f"'{s}'" for s in SCOPES)), name="scope_known"
        ),
        sa.CheckConstraint(
            "privacy IN ({})".format(", ".join(f"'{p}'" for p in PRIVACY)), name="privacy_known"
        ),
        sa.Index("ix_calendar_subscriptions_scope", "scope", "scope_id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: What the feed shows: a patient's, a center's, a chair's or a physician's events.
    scope: so.Mapped[str] = so.mapped_column(sa.String(10))
    #: The patient, center, chair or physician (user) id.
    scope_id: so.Mapped[int]
    #: Shown in the management list and as the calendar's name.
    label: so.Mapped[str] = so.mapped_column(sa.String(120))
    #: minimal (default): no names, drugs or diagnoses; detailed: staff feeds with full names.
    privacy: so.Mapped[str] = so.mapped_column(sa.String(10), default="minimal")
    #: SHA-256 of the secret in the URL; the secret itself is shown once and never stored.
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    #: First characters of the token, to recognise a URL in the list.
    token_prefix: so.Mapped[str] = so.mapped_column(sa.String(8))
    created_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    expires_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    revoked_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    rotated_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    last_fetched_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    #: Strong ETag and fingerprint of the last body served, and when that body changed
    #: (Last-Modified): If-Modified-Since is answered from this, never from a clock guess.
    content_etag: so.Mapped[str | None] = so.mapped_column(sa.String(80))
    content_fingerprint: so.Mapped[str | None] = so.mapped_column(sa.String(200))
    content_changed_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())

    created_by: so.Mapped[User] = so.relationship()
