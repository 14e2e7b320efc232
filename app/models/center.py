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
    """A time a center, or one of its chairs, is closed: whole days (one or a range) or part
    of each day in the range. Whole days of the whole center shift the cycles falling on
    them; a chair's closure or part of a day only takes the time from the chairs."""

    __tablename__ = "closures"
    __table_args__ = (
        sa.CheckConstraint("closed_on <= closed_until", name="range_in_order"),
        sa.CheckConstraint(
            "(from_time IS NULL AND until_time IS NULL)"
            " OR (from_time IS NOT NULL AND until_time IS NOT NULL AND from_time < until_time)",
            name="part_of_day_in_order",
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    center_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("centers.id", ondelete="CASCADE"), index=True
    )
    #: First and last closed day (the same for one day), the center's local dates.
    closed_on: so.Mapped[dt.date]
    closed_until: so.Mapped[dt.date]
    #: One chair only; None closes the whole center.
    chair_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("chairs.id", ondelete="CASCADE")
    )
    #: Part of each day, local wall-clock times; both None for whole days.
    from_time: so.Mapped[dt.time | None] = so.mapped_column(sa.Time)
    until_time: so.Mapped[dt.time | None] = so.mapped_column(sa.Time)
    reason: so.Mapped[str] = so.mapped_column(sa.String(200))

    center: so.Mapped[Center] = so.relationship(back_populates="closures")
    chair: so.Mapped[Chair | None] = so.relationship()

    @property
    def whole_days(self) -> bool:
        """Whether it closes the whole center for whole days (cycles shift around it)."""
        return self.chair_id is None and self.from_time is None

    def days(self) -> list[dt.date]:
        """The closed days, first to last."""
        count = (self.closed_until - self.closed_on).days + 1
        return [self.closed_on + dt.timedelta(days=n) for n in range(count)]
