"""Infusion centers, their opening hours and their chairs."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime, utcnow


class Center(Base):
    __tablename__ = "centers"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)
    #: IANA time zone the center's clocks run in, e.g. "America/New_York".
    timezone: so.Mapped[str] = so.mapped_column(sa.String(64))
    address: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    #: Public holidays close the center when a country is set (ISO 3166, via `holidays`), with
    #: the subdivision's own holidays when one is set too (e.g. "US" and "NY").
    holiday_country: so.Mapped[str | None] = so.mapped_column(sa.String(2))
    holiday_subdivision: so.Mapped[str | None] = so.mapped_column(sa.String(10))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    opening_hours: so.Mapped[list[OpeningHours]] = so.relationship(
        back_populates="center", order_by="OpeningHours.weekday", cascade="all, delete-orphan"
    )
    chairs: so.Mapped[list[Chair]] = so.relationship(
        back_populates="center", order_by="Chair.id", cascade="all, delete-orphan"
    )
    closures: so.Mapped[list[Closure]] = so.relationship(
        back_populates="center", order_by="Closure.closed_on", cascade="all, delete-orphan"
    )


class OpeningHours(Base):
    __tablename__ = "opening_hours"
    __table_args__ = (
        sa.UniqueConstraint("center_id", "weekday", name="uq_opening_hours_center_weekday"),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        sa.CheckConstraint("opens_at < closes_at", name="opens_before_closes"),
        sa.CheckConstraint("nurses BETWEEN 1 AND 100", name="nurses_range"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    center_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("centers.id", ondelete="CASCADE"))
    #: 0 = Monday ... 6 = Sunday (Python's date.weekday()).
    weekday: so.Mapped[int]
    #: Local wall-clock times in the center's time zone.
    opens_at: so.Mapped[dt.time] = so.mapped_column(sa.Time)
    closes_at: so.Mapped[dt.time] = so.mapped_column(sa.Time)
    #: Infusion nurses on shift that day (the optimiser's capacity).
    nurses: so.Mapped[int] = so.mapped_column(default=1, server_default="1")

    center: so.Mapped[Center] = so.relationship(back_populates="opening_hours")


#: What a place at a center can be.
CHAIR_KINDS = ("recliner", "bed", "chair")


class Chair(Base):
    __tablename__ = "chairs"
    __table_args__ = (
        sa.UniqueConstraint("center_id", "name", name="uq_chairs_center_name"),
        sa.CheckConstraint("kind IN ('recliner', 'bed', 'chair')", name="chair_kind"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    center_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("centers.id", ondelete="CASCADE"))
    name: so.Mapped[str] = so.mapped_column(sa.String(40))
    #: recliner, bed, ... (CHAIR_KINDS).
    kind: so.Mapped[str] = so.mapped_column(
        sa.String(20), default="recliner", server_default="recliner"
    )
    active: so.Mapped[bool] = so.mapped_column(default=True)
    notes: so.Mapped[str | None] = so.mapped_column(sa.String(500))

    center: so.Mapped[Center] = so.relationship(back_populates="chairs")


class Closure(Base):
    """A whole day a center is closed (cycles falling on it shift)."""

    __tablename__ = "closures"
    __table_args__ = (sa.UniqueConstraint("center_id", "closed_on", name="uq_closures_center_day"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    center_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("centers.id", ondelete="CASCADE"))
    closed_on: so.Mapped[dt.date]
    reason: so.Mapped[str] = so.mapped_column(sa.String(200))

    center: so.Mapped[Center] = so.relationship(back_populates="closures")
