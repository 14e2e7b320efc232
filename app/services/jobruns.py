"""Scheduler job runs: one row per run, a lock so a job runs once at a time, and batches.

A job body is a service function `(session, settings, now) -> counts`. `run` wraps it: it
takes the job's lock (PostgreSQL: a session-level advisory lock on a connection of its own,
released by the server if the process dies; SQLite, the single-machine quick start, has one
writer at a time and relies on the rows' unique keys), records the run, and records how it
ended, with the traceback when it failed. The caller (the scheduler) keeps running either way.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import socket
import time
import traceback
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeVar

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.db import utcnow
from app.models import JobRun
from app.services.context import unit_of_work

log = logging.getLogger("scheduler.jobs")

Body = Callable[[so.Session, Settings, dt.datetime], Mapping[str, int]]
T = TypeVar("T")

#: First half of every job's advisory lock key (the second is a hash of the job's name).
_LOCK_SPACE = 480_178


def process_name(label: str | None = None) -> str:
    return (label or f"{socket.gethostname()}:{os.getpid()}")[:120]


#: PostgreSQL: serialization failure, deadlock, lock not available: the loser of a race with
#: another job or a request is rolled back whole and may simply run again.
_RETRY_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def in_batch(session: so.Session, work: Callable[[], T], attempts: int = 3) -> T:
    """Run one batch of a job in its own transaction; a batch that lost a deadlock or a
    serialization race (rolled back whole) runs again, up to `attempts` times."""
    for attempt in range(1, attempts + 1):
        try:
            with unit_of_work(session):
                return work()
        except sa.exc.DBAPIError as exc:
            state = getattr(exc.orig, "sqlstate", None)
            if state not in _RETRY_SQLSTATES or attempt == attempts:
                raise
            log.info("batch lost a race (%s); running it again (%d)", state, attempt)
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Split work into batches; the caller runs each in its own unit of work."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclasses.dataclass
class Counts:
    """What a job did, added up over its batches."""

    values: dict[str, int] = dataclasses.field(default_factory=dict)

    def add(self, **more: int) -> None:
        for name, value in more.items():
            self.values[name] = self.values.get(name, 0) + value


def run(
    session: so.Session,
    settings: Settings,
    job: str,
    body: Body,
    *,
    now: Callable[[], dt.datetime] = utcnow,
    process: str | None = None,
) -> JobRun:
    """Run one job once, now, unless another process is running it; return its run row."""
    lock = _Lock(session, job)
    record = JobRun(job=job, started_at=now(), status="running", counts={}, process="")
    record.process = process_name(process)
    if not lock.acquire():
        record.status, record.finished_at = "skipped", now()
        record.error = "another process was running this job"
        with unit_of_work(session):
            session.add(record)
        log.info("%s: skipped, another process is running it", job)
        return record
    try:
        with unit_of_work(session):
            # A run still marked running while we hold the lock was killed.
            session.execute(
                sa.update(JobRun)
                .where(JobRun.job == job, JobRun.status == "running")
                .values(status="interrupted", error="the process stopped before the run ended")
            )
            session.add(record)
        try:
            counts = dict(body(session, settings, now()))
        except Exception:
            session.rollback()
            record.status, record.error = "failed", traceback.format_exc()[-4000:]
            log.exception("%s: failed", job)
        else:
            record.status, record.counts = "ok", counts
            log.info("%s: %s", job, counts)
        with unit_of_work(session):
            record.finished_at = now()
    finally:
        lock.release()
    return record


class _Lock:
    def __init__(self, session: so.Session, job: str) -> None:
        bind = session.get_bind()
        self.engine = bind.engine if isinstance(bind, sa.Connection) else bind
        self.key = zlib.crc32(job.encode()) & 0x7FFFFFFF
        self.connection: sa.Connection | None = None
        self.postgres = self.engine.dialect.name == "postgresql"

    def acquire(self) -> bool:
        if not self.postgres:
            return True
        self.connection = self.engine.connect()
        got = self.connection.scalar(
            sa.text("SELECT pg_try_advisory_lock(:space, :key)"),
            {"space": _LOCK_SPACE, "key": self.key},
        )
        self.connection.commit()
        if not got:
            self.release()
        return bool(got)

    def release(self) -> None:
        if self.connection is None:
            return
        try:
            self.connection.execute(
                sa.text("SELECT pg_advisory_unlock(:space, :key)"),
                {"space": _LOCK_SPACE, "key": self.key},
            )
            self.connection.commit()
        finally:
            self.connection.close()
            self.connection = None


@dataclasses.dataclass(frozen=True)
class JobStatus:
    """A job as the admin page shows it: its last runs."""

    name: str
    title: str
    schedule: str
    next_run_at: dt.datetime | None
    runs: list[JobRun]


def recent_runs(
    session: so.Session, jobs: Sequence[str], per_job: int = 5
) -> dict[str, list[JobRun]]:
    """The last runs of each job, newest first (one query)."""
    ranked = (
        sa.select(
            JobRun.id,
            sa.func.row_number()
            .over(partition_by=JobRun.job, order_by=(JobRun.started_at.desc(), JobRun.id.desc()))
            .label("rank"),
        )
        .where(JobRun.job.in_(jobs))
        .subquery()
    )
    rows = session.scalars(
        sa.select(JobRun)
        .join(ranked, ranked.c.id == JobRun.id)
        .where(ranked.c.rank <= per_job)
        .order_by(JobRun.started_at.desc(), JobRun.id.desc())
    )
    found: dict[str, list[JobRun]] = {job: [] for job in jobs}
    for row in rows:
        found[row.job].append(row)
    return found


def prune(session: so.Session, settings: Settings, now: dt.datetime) -> int:
    """Delete job runs older than the history kept (housekeeping)."""
    cutoff = now - dt.timedelta(days=settings.scheduler.job_history_days)
    with unit_of_work(session):
        result = session.execute(
            sa.delete(JobRun).where(JobRun.started_at < cutoff, JobRun.status != "running")
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
