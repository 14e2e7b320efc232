"""Rows the processes keep about themselves."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime


class SchedulerHeartbeat(Base):
    """One row per scheduler process name; /healthz reports when it was last seen."""

    __tablename__ = "scheduler_heartbeats"

    name: so.Mapped[str] = so.mapped_column(sa.String(60), primary_key=True)
    last_seen_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime())
    #: host:pid of the process that wrote the last beat.
    process: so.Mapped[str] = so.mapped_column(sa.String(120))


class ContentRevision(Base):
    """A counter bumped in every transaction that changes a name feeds show ("names").

    Feeds answer 304 from it and from their own rows' versions, without rendering.
    """

    __tablename__ = "content_revisions"

    name: so.Mapped[str] = so.mapped_column(sa.String(40), primary_key=True)
    revision: so.Mapped[int] = so.mapped_column(default=0)


class RateWindow(Base):
    """Requests counted per key and minute, shared by every web worker (one database)."""

    __tablename__ = "rate_windows"

    #: SHA-256 of what is limited (a feed token), never the token itself.
    key: so.Mapped[str] = so.mapped_column(sa.String(64), primary_key=True)
    #: Minutes since the Unix epoch (UTC).
    minute: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False, index=True)
    hits: so.Mapped[int] = so.mapped_column(default=0)


class IdempotentRequest(Base):
    """A write the API already answered for a client's Idempotency-Key, kept for 24 hours."""

    __tablename__ = "idempotent_requests"

    #: SHA-256 of the user id and the client's key (the key is the client's, not ours).
    key: so.Mapped[str] = so.mapped_column(sa.String(64), primary_key=True)
    #: SHA-256 of the method, the path and the body: the same key for another request is refused.
    request_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    #: None while the first request is still running.
    status: so.Mapped[int | None]
    body: so.Mapped[bytes | None] = so.mapped_column(sa.LargeBinary)
    content_type: so.Mapped[str | None] = so.mapped_column(sa.String(100))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), index=True)


JOB_RUN_STATUSES = ("running", "ok", "failed", "skipped", "interrupted")


class JobRun(Base):
    """One run of a scheduler job: what it did, or why it failed (the admin's jobs page)."""

    __tablename__ = "job_runs"
    __table_args__ = (
        sa.Index("ix_job_runs_job_started", "job", "started_at"),
        sa.CheckConstraint(
            "status IN ({})".format(", ".join(f"'{s}'" for s in JOB_RUN_STATUSES)),
            name="status_known",
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    job: so.Mapped[str] = so.mapped_column(sa.String(60))
    started_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime())
    finished_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    #: running, ok, failed, skipped (another process held the job), interrupted (killed).
    status: so.Mapped[str] = so.mapped_column(sa.String(12))
    #: What the run did, e.g. {"sent": 12, "batches": 1}.
    counts: so.Mapped[dict[str, int]] = so.mapped_column(sa.JSON, default=dict)
    #: The traceback of a failed run (its last lines).
    error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    #: host:pid of the process that ran it; "cli" runs say so.
    process: so.Mapped[str] = so.mapped_column(sa.String(120))
