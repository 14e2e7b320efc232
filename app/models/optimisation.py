"""A proposal of the chair and nurse optimiser, kept until the scheduling nurse decides it.

The solver runs outside any write transaction; what it proposes is stored with the state of
the bookings it saw (a fingerprint of their ids and versions), so accepting applies exactly
the moves that were shown, and refuses when the schedule has changed since.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime, utcnow

PROPOSAL_STATES = ("proposed", "accepted", "discarded", "stale")


class ScheduleProposal(Base):
    __tablename__ = "schedule_proposals"
    __table_args__ = (
        sa.CheckConstraint(
            "state IN ({})".format(", ".join(f"'{s}'" for s in PROPOSAL_STATES)),
            name="state_known",
        ),
        sa.CheckConstraint("until_on >= from_on", name="until_after_from"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    center_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("centers.id", ondelete="RESTRICT"), index=True
    )
    #: The days whose cycles it books (first days from from_on to until_on, center's clock).
    from_on: so.Mapped[dt.date]
    until_on: so.Mapped[dt.date]
    state: so.Mapped[str] = so.mapped_column(sa.String(10), default="proposed")
    #: "cp-sat", or "first-fit" when the optimiser fell back (then `reason` says why).
    method: so.Mapped[str] = so.mapped_column(sa.String(10))
    solver_status: so.Mapped[str | None] = so.mapped_column(sa.String(12))
    reason: so.Mapped[str | None] = so.mapped_column(sa.Text)
    objective: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    bound: so.Mapped[float | None]
    solve_seconds: so.Mapped[float]
    #: The figures of the plan as booked and of the proposal (optimise.Figures as JSON).
    current: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON)
    proposed: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON)
    #: What the proposal changes (optimise.Moves as JSON) and, per infusion, where it goes.
    summary: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON)
    moves: so.Mapped[list[dict[str, Any]]] = so.mapped_column(sa.JSON)
    #: SHA-256 of the (id, version) of every booking the optimiser saw.
    fingerprint: so.Mapped[str] = so.mapped_column(sa.String(64))
    created_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    decided_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    decided_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
